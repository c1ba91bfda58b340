//! One run of a scenario against one target (broadcast: a cluster's nodes):
//! share the connections out among threads, start them, sample the servers
//! and ourselves at the edges of the measured window, show progress, and
//! merge what the threads counted.

use std::io::{IsTerminal as _, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wsd::proto::Limits;

use crate::cli::Scenario;
use crate::modes::broadcast::{ApiPublishers, Broadcast, Role};
use crate::modes::churn::Churn;
use crate::modes::conns::Idle;
use crate::modes::echo::Echo;
use crate::modes::rate::Rate;
use crate::payload::Codec;
use crate::proc::{self, ProcSample};
use crate::publish::Api;
use crate::stats::Stats;
use crate::target::Target;
use crate::upgrade::Upgrade;
use crate::window::Timing;
use crate::worker::{ConnSpec, Shared, Worker};

/// Connections per source address before another 127.0.0.x is used: well
/// inside the default ephemeral port range of about 28,000.
const CONNS_PER_SOURCE: usize = 25_000;

/// The servers' figures at the edges of the window, summed over processes.
#[derive(Clone, Debug)]
pub struct ServerFigures {
    /// The processes sampled.
    pub pids: Vec<u32>,
    /// Before any connection was opened.
    pub before: ProcSample,
    /// At the start of the measured window (for `conns`: all connections open).
    pub start: ProcSample,
    /// At its end.
    pub end: ProcSample,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Summary {
    /// The mode's name.
    pub mode: &'static str,
    /// The targets: one, or a broadcast cluster's nodes.
    pub targets: Vec<Target>,
    /// The run's parameters, as reported.
    pub params: Value,
    /// The phases' lengths, which lay out the timeline.
    pub timing: Timing,
    /// The merged counts.
    pub stats: Stats,
    /// The measured window's real length.
    pub window: Duration,
    /// Threads used.
    pub threads: usize,
    /// Connections planned (publishers included).
    pub connections: u64,
    /// Broadcast: subscribers planned.
    pub subscribers: u64,
    /// The server's figures, if a pid was given and /proc could be read.
    pub server: Option<ServerFigures>,
    /// Why the server could not be sampled.
    pub server_error: Option<String>,
    /// Our own CPU time during the window.
    pub self_cpu: Duration,
    /// The open-file limit we run with.
    pub nofile: u64,
    /// With `--agents`: what each agent ran and counted (the fields above
    /// are their sum).
    pub agents: Vec<AgentRun>,
    /// With `--agents`: why the run failed (an agent refused, died or
    /// disconnected), naming the agent.
    pub failure: Option<String>,
}

/// The live counts of a run, as the progress line shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Messages sent so far.
    pub sent: u64,
    /// Messages received so far.
    pub received: u64,
    /// Errors so far.
    pub errors: u64,
    /// Connections open now.
    pub open: u64,
    /// Whether every connection has been tried and the load has begun.
    pub started: bool,
}

impl Live {
    fn of(shared: &Shared) -> Live {
        Live {
            sent: shared.sent.load(Ordering::Relaxed),
            received: shared.received.load(Ordering::Relaxed),
            errors: shared.errors.load(Ordering::Relaxed),
            open: shared.open.load(Ordering::Relaxed),
            started: shared.start().is_some(),
        }
    }
}

/// A server sample: none without a pid, the error text if /proc failed.
pub type Sampled = Option<Result<ProcSample, String>>;

/// Samples the servers, if any, and sums their figures; the error text if
/// one cannot be read.
pub fn sample(pids: &[u32]) -> Sampled {
    if pids.is_empty() {
        return None;
    }
    let mut sum = ProcSample {
        cpu: Duration::ZERO,
        rss: 0,
    };
    for &p in pids {
        match proc::sample(p) {
            Ok(one) => {
                sum.cpu += one.cpu;
                sum.rss += one.rss;
            }
            Err(e) => return Some(Err(format!("cannot read /proc/{p}: {e}"))),
        }
    }
    Some(Ok(sum))
}

/// Runs `s` in this process; `observe` is given the live counts about
/// every 100 ms, and ends the load early by answering false.
pub fn run_here(
    s: &Scenario,
    targets: &[Target],
    pids: &[u32],
    progress: bool,
    observe: &mut dyn FnMut(Live) -> bool,
) -> Summary {
    let c = s.client();
    let nofile = proc::raise_nofile_limit().unwrap_or(0);
    let conns = u64::from(s.connections());
    let (total, subscribers) = match s {
        Scenario::Broadcast(b) => (conns + u64::from(b.local_publishers()), conns),
        _ => (conns, 0),
    };
    if nofile > 0 && total + 64 > nofile {
        eprintln!(
            "wsload: warning: {total} connections need as many file descriptors, but the limit is {nofile}; those past it will fail"
        );
    }
    let threads = (c.threads as usize).min(total as usize).max(1);
    let phases = s.phases();
    let timing = Timing {
        warmup: phases.warmup,
        duration: phases.duration,
        grace: phases.grace,
        connect_timeout: c.connect_timeout,
    };
    let before = sample(pids);
    let shared = Shared::new(threads);
    let sources = source_count(targets, c.source_addrs, total as usize);
    // A publish API is one more target, after the WebSocket ones.
    let api = match s {
        Scenario::Broadcast(b) => b.publish_url.clone(),
        _ => None,
    };
    let shared_targets: Arc<[Target]> = targets.iter().cloned().chain(api).collect();
    let upgrade = Arc::new(c.upgrade());
    let place = placement(s, targets.len());
    let mut summary_stats = Stats::new(timing.rows());
    let mut window = Duration::ZERO;
    let mut self_cpu = Duration::ZERO;
    let mut edges: (Sampled, Sampled) = (None, None);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let shared = shared.clone();
                let net = Net {
                    targets: shared_targets.clone(),
                    nodes: targets.len(),
                    upgrade: upgrade.clone(),
                };
                let (specs, globals) = specs_for(t, threads, total as usize, sources, &place);
                scope.spawn(move || run_thread(s, t, shared, net, timing, specs, globals))
            })
            .collect();
        let finished = || handles.iter().all(|h| h.is_finished());
        let mut line = Progress::new(progress && std::io::stderr().is_terminal(), observe);
        let start = loop {
            if let Some(start) = shared.start() {
                break Some(start);
            }
            if finished() {
                break None;
            }
            line.tick(&shared);
            thread::sleep(Duration::from_millis(2));
        };
        if let Some(start) = start {
            let measure_start = start + timing.warmup;
            line.wait_until(measure_start, &shared, &finished);
            let t0 = Instant::now();
            let cpu0 = proc::self_cpu();
            edges.0 = sample(pids);
            line.wait_until(measure_start + timing.duration, &shared, &finished);
            edges.1 = sample(pids);
            self_cpu = proc::self_cpu().saturating_sub(cpu0);
            window = t0.elapsed();
        }
        line.wait_until(
            Instant::now() + Duration::from_secs(3600),
            &shared,
            &finished,
        );
        line.clear();
        for h in handles {
            match h.join() {
                Ok(Ok(stats)) => summary_stats.merge(&stats),
                Ok(Err(e)) => eprintln!("wsload: a worker thread failed: {e}"),
                Err(_) => eprintln!("wsload: a worker thread panicked"),
            }
        }
    });
    let (server, server_error) = server_figures(pids, before, edges.0, edges.1);
    Summary {
        mode: s.name(),
        targets: targets.to_vec(),
        params: params(s, threads),
        timing,
        stats: summary_stats,
        window,
        threads,
        connections: total,
        subscribers,
        server,
        server_error,
        self_cpu,
        nofile,
        agents: Vec::new(),
        failure: None,
    }
}

/// The servers' figures from samples before the run and at the window's
/// edges, or why there are none.
pub fn server_figures(
    pids: &[u32],
    before: Sampled,
    start: Sampled,
    end: Sampled,
) -> (Option<ServerFigures>, Option<String>) {
    match (before, start, end) {
        (Some(Ok(before)), Some(Ok(start)), Some(Ok(end))) => (
            Some(ServerFigures {
                pids: pids.to_vec(),
                before,
                start,
                end,
            }),
            None,
        ),
        (None, _, _) => (None, None),
        (Some(Err(e)), _, _) | (_, Some(Err(e)), _) | (_, _, Some(Err(e))) => (None, Some(e)),
        _ => (
            None,
            Some("the run ended before its measured window".into()),
        ),
    }
}

/// Where a thread's connections go, and what their requests add.
struct Net {
    /// The WebSocket targets, then the publish API if there is one.
    targets: Arc<[Target]>,
    /// How many of them are WebSocket targets (a cluster's nodes).
    nodes: usize,
    upgrade: Arc<Upgrade>,
}

/// One thread: builds its workload and runs the loop.
fn run_thread(
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

/// How many 127.0.0.x source addresses to use: as asked, or enough for the
/// connection count; none unless every target is IPv4 loopback.
fn source_count(targets: &[Target], asked: Option<u8>, total: usize) -> Option<usize> {
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
struct Placement {
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
fn placement(s: &Scenario, targets: usize) -> Placement {
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
fn specs_for(
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

/// The run's parameters for the JSON report.
pub fn params(s: &Scenario, threads: usize) -> Value {
    let phases = s.phases();
    let mut p = json!({
        "mode": s.name(),
        "connections": s.connections(),
        "threads": threads,
        "duration_s": phases.duration.as_secs_f64(),
    });
    if !matches!(s, Scenario::Conns(_)) {
        p["warmup_s"] = json!(phases.warmup.as_secs_f64());
        p["grace_s"] = json!(phases.grace.as_secs_f64());
    }
    if let Some(pl) = s.payload() {
        let enc = pl.encoding();
        p["size"] = json!(pl.size);
        p["encoding"] = json!(enc.name());
        p["payload"] = json!(pl.fill.name());
        p["seed"] = json!(pl.seed);
        // What a reply is checked against: a stamp, or only its content.
        p["checks"] = json!(if pl.size >= enc.stamp_len() {
            "stamp"
        } else {
            "content"
        });
    }
    let c = s.client();
    p["deflate"] = json!(c.deflate);
    if let Some(cr) = &c.credentials {
        // How the token travels, never the token.
        p["auth"] = json!(cr.describe());
    }
    if let Some(o) = &c.origin {
        p["origin"] = json!(o);
    }
    if !c.protocols.is_empty() {
        p["protocols"] = json!(c.protocols);
    }
    if !c.headers.is_empty() {
        // Names only: values may be credentials.
        let names: Vec<&str> = c.headers.iter().map(|h| h.name.as_str()).collect();
        p["headers"] = json!(names);
    }
    match s {
        Scenario::Echo(a) => p["depth"] = json!(a.depth),
        Scenario::Rate(a) => p["rate"] = json!(a.rate),
        Scenario::Broadcast(a) => {
            p["rate"] = json!(a.rate);
            p["publishers"] = json!(a.publishers);
            if let Some(t) = &a.publish_url {
                p["publish_url"] = json!(t.url);
                // Whether a key was sent, never the key.
                p["api_key"] = json!(a.api_key.is_some());
            }
        }
        Scenario::Conns(_) => {}
        Scenario::Churn(a) => {
            p["messages"] = json!(a.messages);
            p["depth"] = json!(a.depth);
            p["abrupt_pct"] = json!(a.abrupt);
        }
    }
    p
}

/// The live line on stderr, and the observer of the live counts.
struct Progress<'a> {
    on: bool,
    began: Instant,
    last: Instant,
    last_counts: (u64, u64),
    observe: &'a mut dyn FnMut(Live) -> bool,
    observed: Instant,
}

impl<'a> Progress<'a> {
    fn new(on: bool, observe: &'a mut dyn FnMut(Live) -> bool) -> Progress<'a> {
        let now = Instant::now();
        Progress {
            on,
            began: now,
            last: now,
            last_counts: (0, 0),
            observe,
            observed: now,
        }
    }

    /// Prints the line if a second has passed.
    fn tick(&mut self, shared: &Shared) {
        if self.observed.elapsed() >= Duration::from_millis(100) {
            self.observed = Instant::now();
            if !(self.observe)(Live::of(shared)) {
                shared.stop.store(true, Ordering::Relaxed);
            }
        }
        if !self.on || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        let secs = self.last.elapsed().as_secs_f64();
        self.last = Instant::now();
        let sent = shared.sent.load(Ordering::Relaxed);
        let recv = shared.received.load(Ordering::Relaxed);
        let (s0, r0) = self.last_counts;
        self.last_counts = (sent, recv);
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{:>5.0}s  sent {:>9.0}/s  received {:>9.0}/s  errors {}  open {}",
            self.began.elapsed().as_secs_f64(),
            (sent - s0) as f64 / secs,
            (recv - r0) as f64 / secs,
            shared.errors.load(Ordering::Relaxed),
            shared.open.load(Ordering::Relaxed),
        );
    }

    /// Sleeps until `deadline` or until every thread has finished.
    fn wait_until(&mut self, deadline: Instant, shared: &Shared, finished: &dyn Fn() -> bool) {
        loop {
            let now = Instant::now();
            if now >= deadline || finished() {
                return;
            }
            self.tick(shared);
            thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
    }

    fn clear(&self) {
        if self.on {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

/// What one agent ran and counted.
#[derive(Clone, Debug)]
pub struct AgentRun {
    /// HOST:PORT as given.
    pub name: String,
    /// Connections it was given (publishers included).
    pub connections: u64,
    /// Its event-loop threads.
    pub threads: usize,
    /// Its measured window.
    pub window: Duration,
    /// Its CPU time in the window.
    pub cpu: Duration,
    /// Its counts.
    pub stats: Stats,
}

impl AgentRun {
    /// CPU per thread over the window, 1.0 being every thread busy.
    pub fn busy(&self) -> f64 {
        let secs = self.window.as_secs_f64().max(1e-9);
        self.cpu.as_secs_f64() / secs / self.threads.max(1) as f64
    }

    /// Whether the agent was saturated (as a local run says of itself).
    pub fn saturated(&self) -> bool {
        self.busy() >= SATURATED
    }
}

/// Our CPU use per thread above which the figures are a floor.
pub const SATURATED: f64 = 0.9;
