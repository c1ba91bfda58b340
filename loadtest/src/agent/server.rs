//! `wsload agent`: waits for a controller, proves the key both ways,
//! checks the plan, runs it when told to, and sends back its counts.
//!
//! One run at a time: a controller that arrives during a run is answered
//! `busy`. The targets are resolved here and each address must be inside
//! `--allow-targets` (loopback by default), so a controller that knows the
//! key still cannot aim the agent elsewhere.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser as _;

use super::wire::{read_msg, write_msg, Msg, VERSION};
use super::{codec, AgentArgs, Report};
use crate::allow::AllowList;
use crate::cli::{ModeOnly, Scenario};
use crate::key::{self, Key};
use crate::run::{self, Live};
use crate::target::{parse_target, Target};

/// How long a controller may take over each step before the run starts.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Controllers being answered at once; more are closed at once.
const MAX_PENDING: usize = 8;
/// The longest wait a `go` may ask for.
const MAX_START_DELAY: u64 = 60_000;
/// The most flags a plan may carry.
const MAX_ARGS: usize = 256;

/// What every connection shares.
struct State {
    key: Key,
    allow: AllowList,
    busy: AtomicBool,
    pending: AtomicUsize,
}

/// Serves controllers until the process is stopped; false if it cannot
/// listen.
pub fn serve(args: &AgentArgs) -> bool {
    let listener = match TcpListener::bind(args.listen.as_str()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("wsload agent: cannot listen on {}: {e}", args.listen);
            return false;
        }
    };
    let shown = listener
        .local_addr()
        .map_or_else(|_| args.listen.clone(), |a| a.to_string());
    // Tests and scripts read this line for the port of `--listen ...:0`.
    println!(
        "wsload agent: listening on {shown}; targets allowed: {}",
        args.allow
    );
    let state = Arc::new(State {
        key: args.key.clone(),
        allow: args.allow.clone(),
        busy: AtomicBool::new(false),
        pending: AtomicUsize::new(0),
    });
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        if state.pending.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING {
            state.pending.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let state = state.clone();
        thread::spawn(move || {
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string());
            if let Err(e) = serve_one(stream, &state) {
                eprintln!("wsload agent: controller {peer}: {e}");
            }
        });
    }
    true
}

/// Releases the busy flag however a run ends.
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Refuses with `reason`, and returns it as the error.
fn refuse(stream: &mut TcpStream, reason: String) -> Result<(), String> {
    let _ = write_msg(
        stream,
        &Msg::Refused {
            reason: reason.clone(),
        },
    );
    Err(reason)
}

fn serve_one(mut stream: TcpStream, state: &State) -> Result<(), String> {
    let result = handshake(&mut stream, state);
    state.pending.fetch_sub(1, Ordering::AcqRel);
    result?;
    if state
        .busy
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return refuse(&mut stream, "busy: another controller's run is on".into());
    }
    let _busy = Busy(&state.busy);
    let (scenario, targets) = match read_msg(&mut stream) {
        Ok(Msg::Plan { mode, args, urls }) => match check_plan(&mode, &args, &urls, &state.allow) {
            Ok(p) => p,
            Err(e) => return refuse(&mut stream, e),
        },
        Ok(_) => return refuse(&mut stream, "expected a plan".into()),
        Err(e) => return Err(e.to_string()),
    };
    write_msg(&mut stream, &Msg::Ready).map_err(|e| e.to_string())?;
    // Broadcast's first agent waits for the others' subscribers to connect.
    let wait = scenario.client().connect_timeout + STEP_TIMEOUT;
    stream
        .set_read_timeout(Some(wait))
        .map_err(|e| e.to_string())?;
    let delay = match read_msg(&mut stream) {
        Ok(Msg::Go { start_in_ms }) => start_in_ms.min(MAX_START_DELAY),
        Ok(_) => return refuse(&mut stream, "expected go".into()),
        Err(e) => return Err(e.to_string()),
    };
    eprintln!("wsload agent: running {}", scenario.describe());
    thread::sleep(Duration::from_millis(delay));
    run_and_report(stream, &scenario, &targets)
}

/// The challenge-response: the controller proves the key, then we do.
fn handshake(stream: &mut TcpStream, state: &State) -> Result<(), String> {
    let io = |e: io::Error| e.to_string();
    stream.set_read_timeout(Some(STEP_TIMEOUT)).map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let mine = key::nonce()?;
    write_msg(
        stream,
        &Msg::Challenge {
            version: VERSION,
            nonce: key::hex(&mine),
        },
    )
    .map_err(io)?;
    let (mac, theirs) = match read_msg(stream) {
        Ok(Msg::Auth { mac, nonce }) => (mac, nonce),
        Ok(_) => return refuse(stream, "expected auth".into()),
        Err(e) => return Err(e.to_string()),
    };
    let mac = key::unhex(&mac, 64).unwrap_or_default();
    if !state.key.verify(key::CONTROLLER, &mine, &mac) {
        return refuse(stream, "wrong key".into());
    }
    let Some(theirs) = key::unhex(&theirs, key::NONCE).filter(|n| n.len() == key::NONCE) else {
        return refuse(stream, "a nonce of the wrong length".into());
    };
    let mac = state.key.sign(key::AGENT, &theirs);
    write_msg(
        stream,
        &Msg::Welcome {
            mac: key::hex(&mac),
        },
    )
    .map_err(io)
}

/// Parses the plan as a local run would, and checks every address it
/// would connect to against `allow`.
fn check_plan(
    mode: &str,
    args: &[String],
    urls: &[String],
    allow: &AllowList,
) -> Result<(Scenario, Vec<Target>), String> {
    if args.len() > MAX_ARGS || urls.is_empty() || urls.len() > MAX_ARGS {
        return Err("a plan with too many flags or URLs, or none".into());
    }
    let argv = ["scenario", mode]
        .into_iter()
        .chain(args.iter().map(String::as_str));
    let mut scenario = ModeOnly::try_parse_from(argv)
        .map_err(|e| format!("the plan's flags: {}", e.kind()))?
        .into_scenario();
    if !scenario.client().agents.is_empty() {
        return Err("an agent does not pass a run on to agents".into());
    }
    let mut targets = urls
        .iter()
        .map(|u| parse_target(u))
        .collect::<Result<Vec<_>, _>>()?;
    let api = match &scenario {
        Scenario::Broadcast(b) => b.publish_url.as_ref().map(|t| t.addr),
        _ => None,
    };
    for addr in targets.iter().map(|t| t.addr).chain(api) {
        check_addr(addr, allow)?;
    }
    let mut plan = crate::cli::Plan {
        scenario,
        out: crate::cli::Outputs {
            targets,
            server_pids: Vec::new(),
            json: None,
            hgrm: None,
            csv: None,
        },
    };
    crate::use_tls(&mut plan)?;
    (scenario, targets) = (plan.scenario, plan.out.targets);
    Ok((scenario, targets))
}

fn check_addr(addr: SocketAddr, allow: &AllowList) -> Result<(), String> {
    if allow.allows(addr.ip()) {
        Ok(())
    } else {
        Err(format!(
            "target {addr} is outside --allow-targets ({allow})"
        ))
    }
}

/// Runs the plan, sending a tick every 250 ms and then the result.
fn run_and_report(mut stream: TcpStream, s: &Scenario, targets: &[Target]) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<Live>();
    let epoch = Instant::now();
    let mut lost: Option<String> = None;
    let gone = AtomicBool::new(false);
    let summary = thread::scope(|scope| {
        let gone = &gone;
        let runner = scope.spawn(move || {
            let (mut last, mut started) = (Instant::now(), false);
            run::run_here(s, targets, &[], false, &mut |live| {
                // At once when the load begins: the controller times the
                // servers' window from it.
                if last.elapsed() >= Duration::from_millis(250) || live.started != started {
                    (last, started) = (Instant::now(), live.started);
                    let _ = tx.send(live);
                }
                !gone.load(Ordering::Acquire)
            })
        });
        while let Ok(live) = rx.recv() {
            if lost.is_some() {
                continue;
            }
            let tick = Msg::Tick {
                sent: live.sent,
                received: live.received,
                errors: live.errors,
                open: live.open,
                started: live.started,
            };
            if let Err(e) = write_msg(&mut stream, &tick) {
                // The load ends early (closing its connections as usual),
                // and its figures are dropped.
                gone.store(true, Ordering::Release);
                lost = Some(format!(
                    "the controller went away ({e}); the run is stopped and its figures dropped"
                ));
            }
        }
        runner.join()
    })
    .map_err(|_| "the run panicked".to_string())?;
    if let Some(e) = lost {
        return Err(e);
    }
    let report = Report {
        stats: codec::encode(&summary.stats, epoch),
        window_s: summary.window.as_secs_f64(),
        cpu_s: summary.self_cpu.as_secs_f64(),
        threads: summary.threads,
        nofile: summary.nofile,
    };
    let value = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    write_msg(
        &mut stream,
        &Msg::Result {
            result: Box::new(value),
        },
    )
    .map_err(|e| e.to_string())
}
