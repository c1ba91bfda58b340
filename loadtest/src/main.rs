//! `wsload`: a load generator for WebSocket servers.
//!
//! # Layout
//!
//! - [`cli`]: the flags; [`target`]: the `ws://` URL.
//! - [`payload`]: what each message carries and how replies are verified;
//!   pre-encoded masked frames.
//! - [`client`]: one connection's state machine (connect, handshake, frames
//!   through `wsd::proto::Session`).
//! - [`worker`]: one thread's mio loop and the phases of a run; [`modes`]:
//!   the workloads it drives (echo, rate, broadcast, conns, churn).
//! - [`run`]: threads, the start barrier, /proc sampling at the window's
//!   edges, progress; [`compare`]: several targets in turn.
//! - [`stats`], [`report`], [`output`], [`proc`]: counting, figures and
//!   their formats, process figures.

mod cli;
mod client;
mod compare;
mod modes;
mod output;
mod payload;
mod proc;
mod report;
mod run;
mod stats;
mod target;
mod timer;
mod worker;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use crate::cli::{Cli, Scenario};
use crate::report::Figures;
use crate::stats::ErrorKind;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (scenario, rounds) = cli.command.into_scenario();
    if let Err(msg) = scenario.validate(rounds.is_some()) {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit();
    }
    let clean = match rounds {
        Some(k) => compare::run(&scenario, k),
        None => single(&scenario),
    };
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One run: reports, files, and whether it was clean.
fn single(s: &Scenario) -> bool {
    let c = s.common();
    let target = &c.targets[0];
    let summary = run::run(s, target, c.server_pids.first().copied(), true);
    let f = Figures::of(&summary);
    let json_to_stdout = output::is_stdout(c.json.as_deref());
    output::print_text(&report::text(&summary), json_to_stdout);
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
        eprintln!(
            "wsload: cannot connect to {target} ({}): {why}",
            target.addr
        );
    }
    if let Some(path) = &c.json {
        ok &= output::write_json(path, &report::json(&summary));
    }
    if let Some(path) = &c.hgrm {
        ok &= output::write_to(path, |w| report::hgrm(&summary.stats.latency, w));
    }
    if let Some(path) = &c.csv {
        ok &= output::write_to(path, |w| report::csv(&summary, w));
    }
    ok
}
