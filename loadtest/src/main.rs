//! `wsload`: a load generator for WebSocket servers.
//!
//! # Layout
//!
//! - [`cli`]: the flags; [`target`]: the `ws://` or `wss://` URL;
//!   [`tls`]: what a `wss://` client trusts; [`upgrade`]: what `--origin`,
//!   `--protocol` and `-H` add to the upgrade request.
//! - [`payload`]: what each message carries and how replies are verified;
//!   pre-encoded masked frames; below it [`fill`], what pads a payload, and
//!   [`stamp`], the stamp each payload starts with.
//! - [`client`]: one connection's state machine (connect, handshake, frames
//!   through `wsd::proto::Session`; or HTTP to a publish API);
//!   [`publish`]: `broadcast --publish-url`'s requests and answers.
//! - [`worker`]: one thread's mio loop; [`window`]: the phases of a run in
//!   time and the timeline's rows; [`modes`]: the workloads the loop drives
//!   (echo, rate, broadcast, conns, churn).
//! - [`capacity`]: `rate --find-max`, the highest rate a server holds
//!   under a p99 bound, and the curve the search walked.
//! - [`run`]: threads, the start barrier, /proc sampling at the window's
//!   edges, progress.
//! - [`stats`], [`report`], [`tables`], [`output`], [`proc`]: counting,
//!   figures and their formats, process figures.
//! - [`compare`]: scenarios × servers × rounds, starting, pinning and
//!   stopping servers; [`cpus`]: CPU lists and pinning; [`machine`]: the
//!   machine's description; [`results`]: the document a comparison keeps;
//!   [`render`]: its tables, HTML page and SVG charts, and `report`.
//! - [`agent`]: `wsload agent`, and the controller that spreads a run over
//!   agents and merges their figures.

mod agent;
mod allow;
mod auth;
mod capacity;
mod cli;
mod client;
mod compare;
mod cpus;
mod deflate;
mod fill;
mod key;
mod machine;
mod modes;
mod output;
mod payload;
mod proc;
mod publish;
mod render;
mod report;
mod results;
mod rng;
mod run;
mod stamp;
mod stats;
mod tables;
mod target;
mod timer;
mod tls;
mod upgrade;
mod window;
mod wire;
mod worker;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use crate::cli::matrix::MatrixError;
use crate::cli::{Cli, Job, Plan};
use crate::report::Figures;
use crate::stats::ErrorKind;

fn main() -> ExitCode {
    let clean = match Cli::parse().command.into_job() {
        Job::Single(mut plan) => {
            // Everything is checked before any connection is opened.
            if let Err(msg) = plan
                .validate()
                .and_then(|()| check_pids(&plan))
                .and_then(|()| use_tls(&mut plan))
                .and_then(|()| plan.scenario.client_mut().resolve_credentials())
            {
                usage_error(&plan.command_path(), &msg);
            }
            match &plan.scenario {
                cli::Scenario::Rate(r) if r.capacity.find_max => find_max(&plan, r),
                _ => single(&plan),
            }
        }
        Job::Compare(args) => match args.into_matrix() {
            Ok(m) => compare::run(&m),
            Err(MatrixError::Usage(path, msg)) => usage_error(&path, &msg),
            Err(MatrixError::File(msg)) => {
                eprintln!("wsload compare: {msg}");
                return ExitCode::from(2);
            }
        },
        Job::Report(args) => render::report(&args),
        Job::Agent(args) => agent::server::serve(&args),
    };
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every --server-pid must be a process whose figures can be read.
fn check_pids(plan: &Plan) -> Result<(), String> {
    for &pid in &plan.out.server_pids {
        if let Err(e) = proc::sample(pid) {
            return Err(format!("--server-pid {pid}: cannot read /proc/{pid}: {e}"));
        }
    }
    Ok(())
}

/// Gives `wss://` (and `https://` publish API) targets the TLS client config --ca-file and --insecure
/// ask for (built once; the CA file is read here).
pub(crate) fn use_tls(plan: &mut Plan) -> Result<(), String> {
    let api = match &plan.scenario {
        cli::Scenario::Broadcast(b) => b.publish_url.as_ref(),
        _ => None,
    };
    if plan
        .out
        .targets
        .iter()
        .chain(api)
        .all(|t| t.tls_name.is_none())
    {
        return Ok(());
    }
    let client = plan.scenario.client();
    let config = tls::client_config(client.ca_file.as_deref(), client.insecure)?;
    for t in &mut plan.out.targets {
        t.use_tls(&config);
    }
    if let cli::Scenario::Broadcast(b) = &mut plan.scenario {
        if let Some(t) = b.publish_url.as_mut() {
            t.use_tls(&config);
        }
    }
    Ok(())
}

/// Exits with a usage error, under the usage line of the command at `path`.
fn usage_error(path: &[&str], msg: &str) -> ! {
    let mut cmd = Cli::command();
    cmd.build();
    for name in path {
        if let Some(sub) = cmd.find_subcommand(name).cloned() {
            cmd = sub;
        }
    }
    cmd.error(clap::error::ErrorKind::ArgumentConflict, msg)
        .exit()
}

/// One run: reports, files, and whether it was clean.
fn single(plan: &Plan) -> bool {
    let (s, out) = (&plan.scenario, &plan.out);
    let summary = crate::agent::run(s, &out.targets, &out.server_pids, true);
    if summary.failure.is_some() {
        // Said on stderr, naming the agent; no figures to report.
        return false;
    }
    let f = Figures::of(&summary);
    let json_to_stdout = output::is_stdout(out.json.as_deref());
    let text = report::text(&summary) + &agent::report_text(&summary.agents);
    output::print_text(&text, json_to_stdout);
    let mut ok = !f.failed(&summary);
    if summary.stats.opened == 0 {
        let why = summary
            .stats
            .errors
            .iter()
            .next()
            .map(|(k, _, d)| match k {
                ErrorKind::Refused => "connection refused; is the server running?".to_string(),
                ErrorKind::HandshakeStatus(_) => format!("the server refused the upgrade: {d}"),
                _ => format!("{k}: {d}"),
            })
            .unwrap_or_else(|| "no connection was attempted".into());
        let target = &out.targets[0];
        eprintln!(
            "wsload: cannot connect to {target} ({}): {why}",
            target.addr
        );
    }
    if let Some(path) = &out.json {
        let mut doc = report::json(&summary);
        if !summary.agents.is_empty() {
            doc["agents"] = agent::report_json(&summary.agents);
        }
        ok &= output::write_json(path, &doc);
    }
    if let Some(path) = &out.hgrm {
        // conns sends no messages: its latency is the handshake's.
        let h = match s {
            cli::Scenario::Conns(_) => &summary.stats.connect,
            _ => &summary.stats.latency,
        };
        ok &= output::write_to(path, |w| tables::hgrm(h, w));
    }
    if let Some(path) = &out.csv {
        ok &= output::write_to(path, |w| tables::csv(&summary, w));
    }
    ok
}

/// Runs the search the plan asks for; prints the curve and writes the
/// files. Clean when some rate held.
fn find_max(plan: &Plan, rate: &cli::RateArgs) -> bool {
    let cap = &rate.capacity;
    let curve = capacity::search(rate, &plan.out.targets, &plan.out.server_pids, "wsload: ").curve;
    let outcome = curve.outcome;
    let json_to_stdout = crate::output::is_stdout(plan.out.json.as_deref());
    crate::output::print_text(&curve.text(), json_to_stdout);
    let mut ok = outcome.max.is_some();
    if let Some(path) = &plan.out.json {
        ok &= crate::output::write_json(path, &curve.json());
    }
    if let Some(path) = &cap.html {
        ok &= match render::capacity::page(&curve) {
            Ok(page) => crate::output::write_to(path, |w| w.write_all(page.as_bytes())),
            Err(e) => {
                eprintln!("wsload: {e}");
                false
            }
        };
    }
    ok
}
