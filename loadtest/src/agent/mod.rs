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

pub mod allow;
pub mod args;
pub mod codec;
pub mod controller;
pub mod key;
mod report;
pub mod server;
pub mod wire;

use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use self::allow::{parse_allow, AllowList};
use self::key::{parse_key_file, Key};
pub use self::report::{json as report_json, text as report_text};
use crate::stats::Stats;

/// `wsload agent` flags.
#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// Where to wait for a controller: ADDR:PORT (port 0: any free port,
    /// printed on the first line).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    /// The key shared with the controller (a file of at least 16 bytes).
    #[arg(long, value_name = "FILE", value_parser = parse_key_file)]
    pub key: Key,
    /// The address ranges this agent may send load to, comma-separated
    /// (10.0.0.0/8,fd00::/8,192.0.2.7); default loopback only. Targets are
    /// checked after DNS resolution.
    #[arg(long = "allow-targets", value_name = "CIDR,...", value_parser = parse_allow,
          default_value_t = AllowList::loopback())]
    pub allow: AllowList,
}

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
        self.busy() >= crate::report::SATURATED
    }
}
