//! `compare`: every scenario against every server, rounds interleaved
//! (A B A B ...) so drift on the machine hits every server alike.
//!
//! A server given by `--server` (or a scenario file) is started afresh for
//! every run on a free loopback port, pinned to `--server-cpus`, and
//! stopped after it ([`server`]); wsload's own threads run on
//! `--load-cpus`. Each run's figures, with the server's CPU and RSS from
//! /proc, go into one [`Document`]; the tables, the HTML page and the
//! charts are all drawn from it.

mod record;
pub mod server;

use std::thread;
use std::time::Duration;

use self::server::StartFailure;
use crate::capacity::{self, Searched};
use crate::cli::matrix::{Entry, Matrix, ServerSpec};
use crate::cli::Scenario;
use crate::cpus::CpuList;
use crate::machine::{self, Machine};
use crate::output;
use crate::render::{self, text, Files};
use crate::results::{
    num, Document, Round, ScenarioResult, ServerFailure, ServerInfo, ServerResult, Setup, Units,
    FORMAT,
};
use crate::run;
use crate::target::{parse_target, Target};

/// The pause between runs, so one server's tail does not overlap the next run.
const PAUSE: Duration = Duration::from_millis(300);

/// Runs the matrix, prints its tables and writes its files; returns
/// whether every run was clean and every file written.
pub fn run(m: &Matrix) -> bool {
    let machine = Machine::describe();
    // Servers with no --server-cpus run where wsload could when it
    // started, not on the CPUs wsload then pins itself to.
    let start_cpus = CpuList::allowed().ok();
    let server_set = m
        .server_cpus
        .as_ref()
        .or(start_cpus.as_ref())
        .map(CpuList::to_set);
    if m.servers
        .iter()
        .any(|s| matches!(s, ServerSpec::Start { .. }))
    {
        if let Err(e) = server::stop_all_on_interrupt() {
            eprintln!(
                "wsload compare: cannot catch Ctrl-C ({e}); servers may outlive an interrupt"
            );
        }
    }
    let mut doc = Document {
        format: FORMAT.into(),
        wsload: env!("CARGO_PKG_VERSION").into(),
        started: machine::utc_now(),
        command: std::env::args().collect(),
        machine,
        setup: setup(m),
        scenarios: Vec::new(),
        failed: false,
    };
    let mut clean = true;
    for e in &m.entries {
        let load = e
            .load_cpus
            .as_ref()
            .or(m.load_cpus.as_ref())
            .or(start_cpus.as_ref());
        if let Some(l) = load {
            if let Err(err) = l.pin_current_thread() {
                eprintln!("wsload compare: cannot pin wsload to CPUs {l}: {err}");
                clean = false;
                break;
            }
        }
        let (result, ok) = scenario(e, m, server_set);
        clean &= ok;
        if let Some(mut r) = result {
            r.load_cpus = e
                .load_cpus
                .as_ref()
                .or(m.load_cpus.as_ref())
                .map(|l| l.to_string());
            r.summarise();
            clean &= r.servers.iter().all(|s| s.summary.failed_rounds == 0);
            doc.scenarios.push(r);
        }
        if !ok {
            break;
        }
    }
    doc.failed = !clean;
    let json_to_stdout = output::is_stdout(m.json.as_deref());
    output::print_text(&text::document(&doc), json_to_stdout);
    let files = Files {
        json: m.json.as_deref(),
        html: m.html.as_deref(),
        svg: m.svg.as_deref(),
    };
    render::write(&doc, files, None) && clean
}

fn setup(m: &Matrix) -> Setup {
    Setup {
        rounds: m.rounds,
        server_cpus: m.server_cpus.as_ref().map(|l| l.to_string()),
        load_cpus: m.load_cpus.as_ref().map(|l| l.to_string()),
        servers: m
            .servers
            .iter()
            .map(|s| match s {
                ServerSpec::Start {
                    name, command, url, ..
                } => ServerInfo {
                    name: name.clone(),
                    command: Some(command.clone()),
                    url: url.clone(),
                },
                ServerSpec::Running { name, target, .. } => ServerInfo {
                    name: name.clone(),
                    command: None,
                    url: Some(target.url.clone()),
                },
            })
            .collect(),
    }
}

/// One scenario's rounds against every server. Returns what ran (`None`
/// if nothing did) and `false` if a server could not be started, which
/// ends the comparison.
fn scenario(
    e: &Entry,
    m: &Matrix,
    server_set: Option<libc::cpu_set_t>,
) -> (Option<ScenarioResult>, bool) {
    let mut results: Vec<ServerResult> = m
        .servers
        .iter()
        .map(|s| ServerResult {
            name: s.name().to_string(),
            summary: Default::default(),
            notes: Vec::new(),
            rounds: Vec::new(),
            failure: None,
        })
        .collect();
    let mut params = serde_json::Value::Null;
    let mut ok = true;
    'rounds: for round in 1..=e.rounds {
        for (s, result) in m.servers.iter().zip(&mut results) {
            let label = format!("{} round {round}/{}: {}", e.name, e.rounds, s.name());
            match one_round(e, s, round, server_set, &label) {
                Ok(r) => {
                    params = r.run["params"].clone();
                    eprintln!("wsload compare: {label}: {}", brief(&r, e.scenario.name()));
                    result.rounds.push(r);
                }
                Err(f) => {
                    eprintln!("wsload compare: {label}: {f}");
                    result.failure = Some(ServerFailure {
                        round,
                        what: f.what,
                        status: f.status,
                        output: f.output,
                    });
                    ok = false;
                    break 'rounds;
                }
            }
            thread::sleep(PAUSE);
        }
    }
    if results
        .iter()
        .all(|r| r.rounds.is_empty() && r.failure.is_none())
    {
        return (None, ok);
    }
    let r = ScenarioResult {
        name: e.name.clone(),
        title: e.title.clone(),
        mode: e.scenario.name().to_string(),
        params,
        load_cpus: None,
        servers: results,
    };
    (Some(r), ok)
}

/// A round's figures in one line.
fn brief(r: &Round, mode: &str) -> String {
    let u = Units::of(mode);
    let f = &r.figures;
    let mut s = format!("{} {}", num(f.rate), u.rate);
    if let Some(c) = f.cost {
        s.push_str(&format!(", {} {}", num(c), u.cost));
    }
    s.push_str(&format!(", p99 {} µs", num(f.p99_us)));
    if f.errors > 0 {
        s.push_str(&format!(", {} errors", f.errors));
    }
    if f.saturated {
        s.push_str(" (wsload was the limit: the rate is a floor)");
    }
    s
}

/// One run: start the server if it is ours, load it, stop it.
fn one_round(
    e: &Entry,
    s: &ServerSpec,
    round: u32,
    server_set: Option<libc::cpu_set_t>,
    label: &str,
) -> Result<Round, StartFailure> {
    let mode = e.scenario.name();
    let failed = |what: String| StartFailure {
        what,
        status: None,
        output: Vec::new(),
    };
    match s {
        ServerSpec::Start { .. } => {
            let template = s.command_for(mode).unwrap_or_default();
            let mut l = server::start(template, server_set)?;
            let url = s.url_at(l.port).unwrap_or_default();
            let target = parse_target(&url).and_then(|t| with_tls(t, e));
            let target = match target {
                Ok(t) => t,
                Err(msg) => {
                    l.stop();
                    return Err(failed(msg));
                }
            };
            eprintln!("wsload compare: {label}: started pid {} on {url}", l.pid);
            let loaded = load(e, &target, &[l.pid], label);
            let ended = l.stop();
            let mut r = loaded.record(round, Some(l.command.clone()), Some(ended.to_string()));
            if matches!(ended, server::Ended::Exited(_)) {
                r.output = l.output_lines();
            }
            Ok(r)
        }
        ServerSpec::Running { target, pid, .. } => {
            let pids: Vec<u32> = pid.iter().copied().collect();
            let target = with_tls(target.clone(), e).map_err(failed)?;
            Ok(load(e, &target, &pids, label).record(round, None, None))
        }
    }
}

/// What one round's load measured: one run, or a capacity search.
enum Loaded {
    Run(run::Summary),
    Search(Searched),
}

/// Loads `target` as `e` says, sampling `pids`: one run, or the steps of
/// a capacity search (`rate --find-max`), each a line on stderr.
fn load(e: &Entry, target: &Target, pids: &[u32], label: &str) -> Loaded {
    let targets = std::slice::from_ref(target);
    match &e.scenario {
        Scenario::Rate(a) if a.capacity.find_max => {
            let label = format!("wsload compare: {label}: ");
            Loaded::Search(capacity::search(a, targets, pids, &label))
        }
        s => Loaded::Run(crate::agent::run(s, targets, pids, true)),
    }
}

impl Loaded {
    fn record(&self, round: u32, command: Option<String>, ended: Option<String>) -> Round {
        match self {
            Loaded::Run(s) => record::round(s, round, command, ended),
            Loaded::Search(found) => record::capacity_round(found, round, command, ended),
        }
    }
}

/// Gives a `wss://` target the TLS client config of the scenario's
/// --ca-file or --insecure (the CA file is read here, once a round).
fn with_tls(mut target: Target, e: &Entry) -> Result<Target, String> {
    if target.tls_name.is_some() {
        let client = e.scenario.client();
        let config = crate::tls::client_config(client.ca_file.as_deref(), client.insecure)?;
        target.use_tls(&config);
    }
    Ok(target)
}
