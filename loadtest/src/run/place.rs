//! Sharing the connections out: which thread opens each (global ordinals
//! dealt round-robin), which target it goes to, and from which 127.0.0.x.

use std::net::{IpAddr, Ipv4Addr};

use crate::cli::Scenario;
use crate::target::Target;
use crate::worker::ConnSpec;

/// Connections per source address before another 127.0.0.x is used: well
/// inside the default ephemeral port range of about 28,000.
const CONNS_PER_SOURCE: usize = 25_000;
/// How many 127.0.0.x source addresses to use: as asked, or enough for the
/// connection count; none unless every target is IPv4 loopback.
pub(super) fn source_count(targets: &[Target], asked: Option<u8>, total: usize) -> Option<usize> {
    let loopback = |t: &Target| matches!(t.addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
    if !targets.iter().all(loopback) {
        return None;
    }
    match asked {
        Some(n) => Some(usize::from(n)),
        None if total > CONNS_PER_SOURCE => Some(total.div_ceil(CONNS_PER_SOURCE).min(254)),
        None => None,
    }
}

/// Which target each connection goes to, by global ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Placement {
    /// Ordinals below this (broadcast's publishers) go to the first target,
    /// or to the publish API.
    first_only: u32,
    /// The others go to each target in turn.
    targets: usize,
    /// `--publish-url`: the publishers go to the API, the target after the
    /// WebSocket ones.
    api: bool,
}

impl Placement {
    /// Target and whether it is the publish API.
    fn target(&self, g: u32) -> (usize, bool) {
        match g.checked_sub(self.first_only) {
            Some(k) => (k as usize % self.targets.max(1), false),
            None if self.api => (self.targets, true),
            None => (0, false),
        }
    }
}

/// The publishers on the first node (or the API), subscribers
/// round-robin over all nodes.
pub(super) fn placement(s: &Scenario, targets: usize) -> Placement {
    let (first_only, api) = match s {
        Scenario::Broadcast(b) => (b.local_publishers(), b.publish_url.is_some()),
        _ => (0, false),
    };
    Placement {
        first_only,
        targets,
        api,
    }
}

/// Thread `t`'s connections: global ordinals `t, t + threads, ...`.
pub(super) fn specs_for(
    t: usize,
    threads: usize,
    total: usize,
    sources: Option<usize>,
    place: &Placement,
) -> (Vec<ConnSpec>, Vec<u32>) {
    let globals: Vec<u32> = (t..total).step_by(threads).map(|g| g as u32).collect();
    let specs = globals
        .iter()
        .map(|&g| {
            let (target, api) = place.target(g);
            ConnSpec {
                target,
                source: sources
                    .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (g as usize % n) as u8))),
                seed: g.wrapping_mul(0x9E37_79B9) ^ 0x5BD1_E995 | 1,
                api,
            }
        })
        .collect();
    (specs, globals)
}
