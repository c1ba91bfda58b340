//! One run of a scenario against one target (broadcast: a cluster's nodes):
//! share the connections out among threads, start them, sample the servers
//! and ourselves at the edges of the measured window, show progress, and
//! merge what the threads counted.
//!
//! The run is [`run_here`], here; each job has a file: `place` which
//! thread opens each connection and where it goes, `workload` one thread's
//! workload and loop, `progress` the live counts and the progress line,
//! `params` the run's parameters for the report.

mod params;
mod place;
mod progress;
mod workload;

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use self::params::params;
use self::place::{placement, source_count, specs_for};
pub use self::progress::Live;
use self::progress::Progress;
use self::workload::{run_thread, Net};
use crate::cli::Scenario;
use crate::proc::{self, ProcSample};
use crate::stats::Stats;
use crate::target::Target;
use crate::window::Timing;
use crate::worker::Shared;

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
        // Threads all done before the window opens (no connection opened,
        // or none outlived the warm-up) leave no window to measure: timed
        // anyway, it lasts microseconds, and the CPU of the threads ending
        // over it reads as a saturated wsload.
        let window_start = start.and_then(|start| {
            line.wait_until(start + timing.warmup, &shared, &finished);
            (!finished()).then_some(start + timing.warmup)
        });
        if let Some(measure_start) = window_start {
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
