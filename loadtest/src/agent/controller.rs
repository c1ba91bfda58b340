//! The controller: proves the key to each agent (and has each prove it
//! back), sends each its share, starts them together, samples the servers
//! at the window's edges, and merges the results. An agent that refuses,
//! dies or goes quiet fails the run, by name.

use std::io::{IsTerminal as _, Write as _};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::codec::{self, Bounds};
use super::wire::{read_msg, write_msg, Msg, WireError, VERSION};
use super::{args, AgentRun, Report};
use crate::cli::Scenario;
use crate::key::{self, Key};
use crate::run::{self, Summary};
use crate::stats::{ErrorKind, Stats};
use crate::target::Target;
use crate::window::Timing;

/// Connecting to an agent, and each step before the run.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// An agent ticks every 250 ms once started; this long past the connect
/// timeout without a message, it is gone. (A killed agent's socket closes
/// at once: that is noticed at once.)
const QUIET: Duration = Duration::from_secs(10);
/// How far ahead the agents are told to start.
const START_IN: Duration = Duration::from_millis(200);

/// Runs `s` on the agents its --agents names and merges their figures;
/// on failure, a summary that says why (and counts it as an error).
pub fn run(s: &Scenario, targets: &[Target], pids: &[u32]) -> Summary {
    let names = &s.client().agents;
    let mut summary = empty(s, targets);
    let merged = s
        .client()
        .key
        .as_ref()
        .ok_or_else(|| "--agents needs --key".to_string())
        .and_then(|key| args::check(s, names.len()).map(|()| key))
        .and_then(|key| drive(s, targets, pids, key, &mut summary));
    if let Err(e) = merged {
        if std::io::stderr().is_terminal() {
            // Over the live line, if there was one.
            eprint!("\r\x1b[K");
        }
        eprintln!("wsload: {e}");
        summary.stats.on_error(None, ErrorKind::Io, 1, || e.clone());
        summary.failure = Some(e);
    }
    summary
}

/// A summary with nothing counted yet.
fn empty(s: &Scenario, targets: &[Target]) -> Summary {
    let phases = s.phases();
    let timing = Timing {
        warmup: phases.warmup,
        duration: phases.duration,
        grace: phases.grace,
        connect_timeout: s.client().connect_timeout,
    };
    let (connections, subscribers) = match s {
        Scenario::Broadcast(b) => (
            u64::from(b.connections) + u64::from(b.publishers),
            u64::from(b.connections),
        ),
        _ => (u64::from(s.connections()), 0),
    };
    Summary {
        mode: s.name(),
        targets: targets.to_vec(),
        params: json!({}),
        timing,
        stats: Stats::new(timing.rows()),
        window: Duration::ZERO,
        threads: 0,
        connections,
        subscribers,
        server: None,
        server_error: None,
        self_cpu: Duration::ZERO,
        nofile: 0,
        agents: Vec::new(),
        failure: None,
    }
}

/// One agent, connected and authenticated.
struct Agent {
    name: String,
    stream: TcpStream,
    share: Scenario,
}

impl Drop for Agent {
    /// Ends the connection, so its reader thread returns and, after a
    /// failure, the agent hears at once that its controller is gone.
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Connects to `name` and runs the challenge-response both ways.
fn connect(name: &str, key: &Key) -> Result<TcpStream, String> {
    let addr = name
        .to_socket_addrs()
        .map_err(|e| format!("agent {name}: {e}"))?
        .next()
        .ok_or_else(|| format!("agent {name}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, STEP_TIMEOUT)
        .map_err(|e| format!("agent {name}: cannot connect: {e}"))?;
    let fail = |e: &dyn std::fmt::Display| format!("agent {name}: {e}");
    stream
        .set_read_timeout(Some(STEP_TIMEOUT))
        .map_err(|e| fail(&e))?;
    stream.set_nodelay(true).map_err(|e| fail(&e))?;
    let theirs = match read_msg(&mut stream).map_err(|e| fail(&e))? {
        Msg::Challenge { version, nonce } if version == VERSION => nonce,
        Msg::Challenge { version, .. } => {
            return Err(fail(&format!("protocol version {version}, not {VERSION}")))
        }
        _ => return Err(fail(&"expected a challenge")),
    };
    let theirs = key::unhex(&theirs, key::NONCE)
        .filter(|n| n.len() == key::NONCE)
        .ok_or_else(|| fail(&"a nonce of the wrong length"))?;
    let mine = key::nonce()?;
    let auth = Msg::Auth {
        mac: key::hex(&key.sign(key::CONTROLLER, &theirs)),
        nonce: key::hex(&mine),
    };
    write_msg(&mut stream, &auth).map_err(|e| fail(&e))?;
    match read_msg(&mut stream).map_err(|e| fail(&e))? {
        Msg::Welcome { mac } => {
            let mac = key::unhex(&mac, 64).unwrap_or_default();
            if !key.verify(key::AGENT, &mine, &mac) {
                return Err(fail(&"it does not hold the key"));
            }
        }
        Msg::Refused { reason } => return Err(fail(&format!("refused: {reason}"))),
        _ => return Err(fail(&"expected a welcome")),
    }
    Ok(stream)
}

/// Sends each agent its share; every one must be ready.
fn plan(s: &Scenario, targets: &[Target], key: &Key) -> Result<Vec<Agent>, String> {
    let names = &s.client().agents;
    let urls: Vec<String> = targets.iter().map(|t| t.url.clone()).collect();
    let mut agents = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let mut stream = connect(name, key)?;
        let share = args::share(s, i, names.len());
        let msg = Msg::Plan {
            mode: s.name().into(),
            args: args::to_args(&share),
            urls: urls.clone(),
        };
        let fail = |e: &dyn std::fmt::Display| format!("agent {name}: {e}");
        write_msg(&mut stream, &msg).map_err(|e| fail(&e))?;
        match read_msg(&mut stream).map_err(|e| fail(&e))? {
            Msg::Ready => {}
            Msg::Refused { reason } => return Err(fail(&format!("refused the run: {reason}"))),
            _ => return Err(fail(&"expected ready")),
        }
        agents.push(Agent {
            name: name.clone(),
            stream,
            share,
        });
    }
    Ok(agents)
}

/// What a reader thread hears from its agent.
type Event = (usize, Result<Msg, WireError>);

/// Reads agent `i`'s messages until its result or an error.
fn listen(i: usize, mut stream: TcpStream, quiet: Duration, tx: mpsc::Sender<Event>) {
    let _ = stream.set_read_timeout(Some(quiet));
    thread::spawn(move || loop {
        let msg = read_msg(&mut stream);
        let last = !matches!(msg, Ok(Msg::Tick { .. }));
        if tx.send((i, msg)).is_err() || last {
            return;
        }
    });
}

fn go(a: &mut Agent) -> Result<Instant, String> {
    let start_in_ms = START_IN.as_millis() as u64;
    write_msg(&mut a.stream, &Msg::Go { start_in_ms })
        .map_err(|e| format!("agent {}: {e}", a.name))?;
    Ok(Instant::now() + START_IN)
}

/// The run itself: plan, start, watch, sample, merge into `summary`.
fn drive(
    s: &Scenario,
    targets: &[Target],
    pids: &[u32],
    key: &Key,
    summary: &mut Summary,
) -> Result<(), String> {
    let mut agents = plan(s, targets, key)?;
    let n = agents.len();
    let (tx, rx) = mpsc::channel();
    for (i, a) in agents.iter().enumerate() {
        let stream = a
            .stream
            .try_clone()
            .map_err(|e| format!("agent {}: {e}", a.name))?;
        listen(
            i,
            stream,
            summary.timing.connect_timeout + QUIET,
            tx.clone(),
        );
    }
    drop(tx);
    let before = run::sample(pids);
    let mut epochs = vec![None; n];
    // Broadcast: the subscribers' agents first, then, once they are
    // connected, the publishers' (the first), so none misses a message.
    let (first_go, mut rest_go) = match s {
        Scenario::Broadcast(_) if n > 1 => (1..n, Some(0)),
        _ => (0..n, None),
    };
    for i in first_go {
        epochs[i] = Some(go(&mut agents[i])?);
    }
    let mut started = vec![false; n];
    let mut live = vec![[0u64; 4]; n];
    let mut line = Line::new();
    let mut reports: Vec<Option<Report>> = (0..n).map(|_| None).collect();
    let mut edges = (None, None);
    let mut window_at: Option<(Instant, Instant)> = None;
    let timing = summary.timing;
    while reports.iter().any(Option::is_none) {
        if let (None, Some((t0, t1))) = (&edges.1, window_at) {
            let now = Instant::now();
            if edges.0.is_none() && now >= t0 {
                edges.0 = run::sample(pids);
            } else if edges.0.is_some() && now >= t1 {
                edges.1 = run::sample(pids);
            }
        }
        let (i, msg) = match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let name = &agents[i].name;
        match msg {
            Ok(Msg::Tick {
                started: st,
                sent,
                received,
                errors,
                open,
            }) => {
                started[i] |= st;
                live[i] = [sent, received, errors, open];
                line.show(&live);
            }
            Ok(Msg::Result { result }) => {
                let r: Report = serde_json::from_value(*result)
                    .map_err(|e| format!("agent {name}: a malformed result: {e}"))?;
                reports[i] = Some(r);
            }
            Ok(Msg::Refused { reason }) => return Err(format!("agent {name} stopped: {reason}")),
            Ok(_) => return Err(format!("agent {name}: an unexpected message")),
            Err(e) => return Err(format!("agent {name} failed mid-run: {e}")),
        }
        if let Some(p) = rest_go {
            if started.iter().skip(1).all(|&b| b) {
                epochs[p] = Some(go(&mut agents[p])?);
                rest_go = None;
            }
        }
        if window_at.is_none() && started.iter().all(|&b| b) && rest_go.is_none() {
            let t0 = Instant::now() + timing.warmup;
            window_at = Some((t0, t0 + timing.duration));
        }
    }
    line.clear();
    if edges.0.is_some() && edges.1.is_none() {
        // The agents ended their window before the controller's clock did
        // (it learns of their start a tick late): the servers are idle now.
        edges.1 = run::sample(pids);
    }
    merge(s, &agents, reports, &epochs, summary)?;
    (summary.server, summary.server_error) = run::server_figures(pids, before, edges.0, edges.1);
    Ok(())
}

/// The live line on a terminal: the agents' ticks summed, once a second.
struct Line {
    on: bool,
    began: Instant,
    last: Instant,
    last_counts: (u64, u64),
}

impl Line {
    fn new() -> Line {
        let now = Instant::now();
        Line {
            on: std::io::stderr().is_terminal(),
            began: now,
            last: now,
            last_counts: (0, 0),
        }
    }

    fn show(&mut self, live: &[[u64; 4]]) {
        if !self.on || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        let secs = self.last.elapsed().as_secs_f64();
        self.last = Instant::now();
        let sum = |k: usize| live.iter().map(|l| l[k]).sum::<u64>();
        let (sent, recv) = (sum(0), sum(1));
        let (s0, r0) = std::mem::replace(&mut self.last_counts, (sent, recv));
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{:>5.0}s  {} agents  sent {:>9.0}/s  received {:>9.0}/s  errors {}  open {}",
            self.began.elapsed().as_secs_f64(),
            live.len(),
            sent.saturating_sub(s0) as f64 / secs,
            recv.saturating_sub(r0) as f64 / secs,
            sum(2),
            sum(3),
        );
    }

    fn clear(&self) {
        if self.on {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

/// Decodes each report within the bounds of its share and sums them.
fn merge(
    s: &Scenario,
    agents: &[Agent],
    reports: Vec<Option<Report>>,
    epochs: &[Option<Instant>],
    summary: &mut Summary,
) -> Result<(), String> {
    let rows = summary.timing.rows();
    for ((a, r), epoch) in agents.iter().zip(reports).zip(epochs) {
        let r = r.ok_or_else(|| format!("agent {}: no result", a.name))?;
        let connections = match &a.share {
            Scenario::Broadcast(b) => b.connections + b.local_publishers(),
            other => other.connections(),
        };
        let bounds = Bounds {
            rows,
            connections: connections as usize,
            nodes: summary.targets.len(),
        };
        let epoch = epoch.unwrap_or_else(Instant::now);
        let stats =
            codec::decode(&r.stats, epoch, bounds).map_err(|e| format!("agent {}: {e}", a.name))?;
        summary.stats.merge(&stats);
        let window = Duration::try_from_secs_f64(r.window_s).unwrap_or_default();
        let cpu = Duration::try_from_secs_f64(r.cpu_s).unwrap_or_default();
        summary.window = summary.window.max(window);
        summary.threads += r.threads;
        summary.self_cpu += cpu;
        summary.nofile = match summary.nofile {
            0 => r.nofile,
            n => n.min(r.nofile),
        };
        summary.agents.push(AgentRun {
            name: a.name.clone(),
            connections: u64::from(connections),
            threads: r.threads,
            window,
            cpu,
            stats,
        });
    }
    summary.params = run::params(s, summary.threads);
    summary.params["agents"] = json!(agents.len());
    Ok(())
}
