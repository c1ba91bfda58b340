//! Distributed load: `wsload agent` on each load machine, and a controller
//! (`wsload MODE ... --agents A,B --key FILE`) that shares a run out among
//! them and merges what they measured into one report.
//!
//! # Layout
//!
//! - [`wire`]: the protocol, length-prefixed JSON messages over TCP, each
//!   length bounded before its body is read.
//! - [`key`]: the shared key and the HMAC challenge-response (the key
//!   never crosses the network).
//! - [`allow`]: `--allow-targets`, the address ranges an agent will load.
//! - [`args`]: a scenario as flags, and each agent's share of it.
//! - [`codec`]: an agent's counts and HdrHistograms (V2, lossless).
//! - [`server`]: the agent; [`controller`]: the controller and the merge.
//!
//! # How the figures combine
//!
//! Counts are summed and histograms added, so merged percentiles are those
//! of one histogram holding every agent's samples. CPU is summed over the
//! agents and shown per agent, each with its own saturation. Broadcast
//! runs every publisher on the first agent and only subscribers on the
//! others: every subscriber checks order and loss per publisher, but only
//! the first agent's subscribers, on the publishers' clock, time fan-out
//! latency (no two machines share a clock to the microsecond).

pub mod args;
pub mod codec;
pub mod controller;
mod report;
pub mod server;
pub mod wire;

use serde::{Deserialize, Serialize};

pub use self::report::{json as report_json, text as report_text};
use crate::cli::Scenario;
use crate::run::{self, Summary};
use crate::target::Target;

pub use crate::cli::agent::AgentArgs;
pub use crate::run::AgentRun;

/// An agent's result message.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// Its counts and histograms.
    pub stats: codec::Doc,
    /// Its measured window, in seconds.
    pub window_s: f64,
    /// Its CPU time in the window, in seconds.
    pub cpu_s: f64,
    /// Its event-loop threads.
    pub threads: usize,
    /// Its open-file limit.
    pub nofile: u64,
}

/// Runs `s` against `targets` (one, except a broadcast cluster's nodes),
/// sampling the processes `pids`: here, or with `--agents` on the agents
/// ([`controller`]). `progress` allows the live line (shown only when
/// stderr is a terminal).
pub fn run(s: &Scenario, targets: &[Target], pids: &[u32], progress: bool) -> Summary {
    if s.client().agents.is_empty() {
        run::run_here(s, targets, pids, progress, &mut |_| true)
    } else {
        controller::run(s, targets, pids)
    }
}
