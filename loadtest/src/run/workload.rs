//! One thread of a run: its mode's workload built from the scenario and
//! its share of the connections, then the worker's loop.

use std::sync::Arc;

use wsd::proto::Limits;

use crate::cli::Scenario;
use crate::modes::broadcast::{ApiPublishers, Broadcast, Role};
use crate::modes::churn::Churn;
use crate::modes::conns::Idle;
use crate::modes::echo::Echo;
use crate::modes::rate::Rate;
use crate::payload::Codec;
use crate::publish::Api;
use crate::stats::Stats;
use crate::target::Target;
use crate::upgrade::Upgrade;
use crate::window::Timing;
use crate::worker::{ConnSpec, Shared, Worker};

/// Where a thread's connections go, and what their requests add.
pub(super) struct Net {
    /// The WebSocket targets, then the publish API if there is one.
    pub(super) targets: Arc<[Target]>,
    /// How many of them are WebSocket targets (a cluster's nodes).
    pub(super) nodes: usize,
    /// What every upgrade request adds, and expects back.
    pub(super) upgrade: Arc<Upgrade>,
}

/// One thread: builds its workload and runs the loop.
pub(super) fn run_thread(
    s: &Scenario,
    t: usize,
    shared: Arc<Shared>,
    net: Net,
    timing: Timing,
    specs: Vec<ConnSpec>,
    globals: Vec<u32>,
) -> std::io::Result<Stats> {
    // Each thread masks with its own key; any key will do for a server we own.
    let key = [0x5A ^ t as u8, 0x3C, 0x96 ^ (t >> 8) as u8, 0xC3];
    let size = s.payload().map_or(0, |p| p.size);
    let Net {
        targets,
        nodes,
        upgrade,
    } = net;
    let limits = Limits {
        max_message: size.max(64 << 10),
        max_frame: size.max(64 << 10),
        ..Limits::default()
    };
    let codec = s
        .payload()
        .map(|p| Codec::with_fill(p.encoding(), p.size, key, p.fill, p.seed));
    let n = globals.len() as f64;
    let barrier = shared.clone();
    let result = match (s, codec) {
        (Scenario::Echo(a), Some(codec)) => {
            let work = Echo::new(codec, a.depth, globals);
            Worker::new(shared, targets, upgrade, limits, timing, specs, work).map(Worker::run)
        }
        (Scenario::Rate(a), Some(codec)) => {
            let share = a.rate * n / f64::from(a.connections);
            let work = Rate::new(codec, share, globals);
            Worker::new(shared, targets, upgrade, limits, timing, specs, work).map(Worker::run)
        }
        (Scenario::Broadcast(a), Some(codec)) => {
            // Global ordinals below P are publishers; the rest subscribe.
            let mut sub_nodes = Vec::new();
            let roles: Vec<Role> = globals
                .iter()
                .zip(&specs)
                .map(|(&g, spec)| {
                    if g < a.local_publishers() {
                        Role::Publisher(g)
                    } else {
                        sub_nodes.push(spec.target as u32);
                        Role::Subscriber(sub_nodes.len() - 1)
                    }
                })
                .collect();
            let sub_nodes = (nodes > 1).then_some(sub_nodes);
            let local_pubs = roles
                .iter()
                .filter(|r| matches!(r, Role::Publisher(_)))
                .count() as f64;
            let share = a.rate * local_pubs / f64::from(a.publishers);
            let rate = share.max(1e-9);
            let api = a.publish_url.as_ref().map(|t| {
                let enc = a.payload.encoding();
                let api = Api::new(t, &targets[0].path, a.api_key.as_ref(), enc, size);
                ApiPublishers::new(api, specs.len())
            });
            let work = Broadcast::new(codec, shared.clone(), roles, sub_nodes, a.publishers, rate)
                .with_api(api)
                .publishers_elsewhere(a.publishers_elsewhere);
            Worker::new(shared, targets, upgrade, limits, timing, specs, work).map(Worker::run)
        }
        (Scenario::Churn(a), Some(codec)) => {
            // One PRNG stream per thread, all from the one seed.
            let seed = a.payload.seed ^ (t as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
            let work = Churn::new(codec, a.messages, a.depth, a.abrupt, seed, globals);
            Worker::new(shared, targets, upgrade, limits, timing, specs, work).map(Worker::run)
        }
        _ => Worker::new(shared, targets, upgrade, limits, timing, specs, Idle).map(Worker::run),
    };
    result.unwrap_or_else(|e| {
        // The worker never existed: count it at the barrier anyway.
        barrier.arrive();
        Err(e)
    })
}
