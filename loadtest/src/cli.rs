//! Flags, wrk/wrk2 style: `wsload MODE [options] URL`.
//!
//! Each mode has its own flag struct, so its help lists only the flags it
//! uses; the groups several modes share (the phases of a load, the
//! payload, how to connect) are flattened into it. A single run and
//! `compare` take the same mode flags with different outputs: a single run
//! takes one URL (broadcast: one per node), --hgrm and --csv; `compare`
//! takes several URLs, one --server-pid per URL, and --rounds. Parsing
//! ends in a [`Plan`], the same whichever way a scenario was asked for.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use wsd::units::{parse_duration, parse_size};

use crate::payload::Encoding;
use crate::target::{parse_target, Target};
use crate::upgrade::{parse_header, parse_origin, parse_protocol, Header, Upgrade};

/// The largest payload.
const MAX_SIZE: usize = 64 << 20;

/// A load generator for WebSocket (RFC 6455) servers.
///
/// Durations take units (250ms, 10s, 2m); sizes too (64, 4KiB, 1MiB).
/// Exit status: 0 for a clean run, 1 when any error was counted (connection
/// failure, protocol error, mismatched reply, unexpected close), 2 for a
/// usage error.
#[derive(Parser, Debug)]
#[command(name = "wsload", version, about, long_about = None)]
pub struct Cli {
    /// What to measure.
    #[command(subcommand)]
    pub command: Command,
}

/// The modes, each run once against one server.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Closed loop: each connection keeps --depth messages in flight.
    Echo {
        /// The mode's flags.
        #[command(flatten)]
        mode: EchoArgs,
        /// The outputs.
        #[command(flatten)]
        out: SingleOut,
    },
    /// Open loop at a fixed total rate; latency from the intended send time.
    Rate {
        /// The mode's flags.
        #[command(flatten)]
        mode: RateArgs,
        /// The outputs.
        #[command(flatten)]
        out: SingleOut,
    },
    /// Publishers send at a fixed rate; subscribers check every delivery.
    Broadcast {
        /// The mode's flags.
        #[command(flatten)]
        mode: BroadcastArgs,
        /// The outputs.
        #[command(flatten)]
        out: NodesOut,
    },
    /// Opens many idle connections: handshake rate and server memory per connection.
    Conns {
        /// The mode's flags.
        #[command(flatten)]
        mode: ConnsArgs,
        /// The outputs.
        #[command(flatten)]
        out: ConnsOut,
    },
    /// Connections that keep opening, echoing, and closing (cleanly or abruptly).
    Churn {
        /// The mode's flags.
        #[command(flatten)]
        mode: ChurnArgs,
        /// The outputs.
        #[command(flatten)]
        out: SingleOut,
    },
    /// Runs one scenario against several URLs in turn (A B A B ...).
    Compare(CompareArgs),
}

/// `compare`: rounds, then the scenario with several URLs.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// How many times each URL is run (A B A B ...); medians are reported.
    #[arg(long, default_value_t = 3, global = true, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// The scenario.
    #[command(subcommand)]
    pub scenario: CompareCommand,
}

/// The modes as `compare` runs them.
#[derive(Subcommand, Debug)]
pub enum CompareCommand {
    /// Closed-loop echo.
    Echo {
        /// The mode's flags.
        #[command(flatten)]
        mode: EchoArgs,
        /// The outputs.
        #[command(flatten)]
        out: CompareOut,
    },
    /// Open-loop echo at a fixed rate.
    Rate {
        /// The mode's flags.
        #[command(flatten)]
        mode: RateArgs,
        /// The outputs.
        #[command(flatten)]
        out: CompareOut,
    },
    /// Broadcast fan-out, one server per URL.
    Broadcast {
        /// The mode's flags.
        #[command(flatten)]
        mode: BroadcastArgs,
        /// The outputs.
        #[command(flatten)]
        out: CompareOut,
    },
    /// Idle connections: handshakes per second and server memory per connection.
    Conns {
        /// The mode's flags.
        #[command(flatten)]
        mode: ConnsArgs,
        /// The outputs.
        #[command(flatten)]
        out: CompareOut,
    },
    /// Connection churn.
    Churn {
        /// The mode's flags.
        #[command(flatten)]
        mode: ChurnArgs,
        /// The outputs.
        #[command(flatten)]
        out: CompareOut,
    },
}

/// The phases of a load: warm-up, the measured window, the grace period.
#[derive(Args, Debug, Clone, Copy)]
pub struct Phases {
    /// Length of the measured window.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,

    /// Load before the measured window, not counted in rates or latencies.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub warmup: Duration,

    /// How long to wait, after the window, for messages still on their way.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub grace: Duration,
}

/// How wsload connects: threads, timeouts, addresses, the upgrade request.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Event-loop threads; connections are shared out among them.
    #[arg(short = 't', long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,

    /// How long a connection may take to connect and complete its handshake.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Spread connections over this many source addresses 127.0.0.1..127.0.0.N
    /// (IPv4 loopback targets only); default: one per 25,000 connections.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=254))]
    pub source_addrs: Option<u8>,

    /// Send this Origin with every upgrade request (for servers that check it).
    #[arg(long, value_name = "ORIGIN", value_parser = parse_origin)]
    pub origin: Option<String>,

    /// Offer this subprotocol (repeatable, in order of preference); the
    /// server must choose one of those offered.
    #[arg(long = "protocol", value_name = "NAME", value_parser = parse_protocol)]
    pub protocols: Vec<String>,

    /// Add this header line to every upgrade request (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<Header>,
}

impl ClientArgs {
    /// What the upgrade requests carry besides wsload's own lines.
    pub fn upgrade(&self) -> Upgrade {
        Upgrade::new(self.origin.as_deref(), &self.protocols, &self.headers)
    }
}

/// Payload flags of the echo modes.
#[derive(Args, Debug, Clone)]
pub struct PayloadArgs {
    /// Payload size, from 0 bytes.
    ///
    /// From 32 bytes (binary) or 64 (text) a payload carries a stamp: its
    /// sender, sequence number, send time and a checksum, so every reply is
    /// checked byte for byte, in order, and timed by the stamp. A smaller
    /// payload is lowercase letters that start at its sequence number modulo
    /// 26: replies are checked for type, length, content and order (modulo
    /// 26), and timed from each connection's send times, since echoes come
    /// back in order.
    #[arg(short = 's', long, default_value = "64", value_parser = parse_payload_size, value_name = "SIZE")]
    pub size: usize,

    /// Send text frames.
    #[arg(long, conflicts_with = "binary")]
    pub text: bool,

    /// Send binary frames (the default).
    #[arg(long)]
    pub binary: bool,
}

/// Payload flags of `broadcast`: the same flags, and what a small payload
/// means for fan-out.
#[derive(Args, Debug, Clone)]
pub struct FanoutPayloadArgs {
    /// Payload size, from 0 bytes.
    ///
    /// From 32 bytes (binary) or 64 (text) a payload carries a stamp: its
    /// publisher, sequence number, send time and a checksum, so every
    /// delivery is checked byte for byte, for loss, duplicates and order
    /// per publisher, and timed by the stamp. A smaller payload names no
    /// publisher: deliveries are checked for type, length and content and
    /// counted (lost: fewer than published; duplicated: more), with no
    /// order check and no fan-out latency.
    #[arg(short = 's', long, default_value = "64", value_parser = parse_payload_size, value_name = "SIZE")]
    pub size: usize,

    /// Send text frames.
    #[arg(long, conflicts_with = "binary")]
    pub text: bool,

    /// Send binary frames (the default).
    #[arg(long)]
    pub binary: bool,
}

impl From<&FanoutPayloadArgs> for PayloadArgs {
    fn from(p: &FanoutPayloadArgs) -> PayloadArgs {
        PayloadArgs {
            size: p.size,
            text: p.text,
            binary: p.binary,
        }
    }
}

impl PayloadArgs {
    /// The chosen encoding.
    pub fn encoding(&self) -> Encoding {
        if self.text {
            Encoding::Text
        } else {
            Encoding::Binary
        }
    }
}

/// `echo` flags.
#[derive(Args, Debug, Clone)]
pub struct EchoArgs {
    /// Connections to open.
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The phases.
    #[command(flatten)]
    pub phases: Phases,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Messages in flight per connection (pipelining).
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub depth: u32,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `rate` flags.
#[derive(Args, Debug, Clone)]
pub struct RateArgs {
    /// Connections to open; the rate is shared out among them.
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The phases.
    #[command(flatten)]
    pub phases: Phases,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Total messages per second, over all connections.
    #[arg(short = 'R', long, value_name = "MSGS_PER_S", value_parser = parse_rate)]
    pub rate: f64,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `broadcast` flags.
#[derive(Args, Debug, Clone)]
pub struct BroadcastArgs {
    /// Subscribers to open (the publishers come on top).
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The phases.
    #[command(flatten)]
    pub phases: Phases,
    /// Payload flags.
    #[command(flatten)]
    pub payload: FanoutPayloadArgs,
    /// Publishing connections, besides the -c subscribers.
    #[arg(long, default_value_t = 1, value_name = "P",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub publishers: u32,
    /// Total messages published per second, over all publishers.
    #[arg(short = 'R', long, default_value = "1000", value_name = "MSGS_PER_S", value_parser = parse_rate)]
    pub rate: f64,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `conns` flags: no payload, no warm-up, nothing in flight to wait for.
#[derive(Args, Debug, Clone)]
pub struct ConnsArgs {
    /// Connections to open and hold.
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// How long to hold the connections open once all are open.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `churn` flags.
#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    /// Connection slots: each opens its next connection as soon as its last one ended.
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The phases.
    #[command(flatten)]
    pub phases: Phases,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Echo messages per connection.
    #[arg(long, default_value_t = 10, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub messages: u32,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub depth: u32,
    /// Percent of connections dropped without a Close (at a random
    /// message, sometimes mid-frame, with a FIN or an RST).
    #[arg(long, default_value_t = 30, value_name = "PCT",
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub abrupt: u32,
    /// Seed for choosing how each connection ends.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A single run's outputs: echo, rate and churn.
#[derive(Args, Debug)]
pub struct SingleOut {
    /// Sample this server process's CPU and RSS from /proc.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Write every figure and the run's parameters as one JSON object
    /// (`-` for stdout, which then carries only the JSON).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the latency distribution in HdrHistogram's .hgrm text format (ms).
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write a per-second time series: second,phase,sent,received,errors,p99_us.
    ///
    /// Rows are whole seconds counted from the measured window's start, so
    /// none straddles two phases: `second` is where a row starts (negative
    /// in the warm-up; the first warm-up row and the last measured one may
    /// be short), and `phase` is warmup, measured (the rows the report's
    /// window figures add up from) or drain (after the window: late
    /// replies, nothing new sent).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// The server: ws://host:port/path.
    #[arg(value_name = "URL", value_parser = parse_target)]
    pub url: Target,
}

/// `broadcast`'s outputs: one URL, or one per node of a cluster.
#[derive(Args, Debug)]
pub struct NodesOut {
    /// Sample this server process's CPU and RSS from /proc; with several
    /// URLs, give one per URL in the same order, and the figures are summed.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// Write every figure and the run's parameters as one JSON object
    /// (`-` for stdout, which then carries only the JSON).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the fan-out latency distribution in HdrHistogram's .hgrm text format (ms).
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write a per-second time series: second,phase,sent,received,errors,p99_us.
    ///
    /// Rows are whole seconds counted from the measured window's start, so
    /// none straddles two phases: `second` is where a row starts (negative
    /// in the warm-up; the first warm-up row and the last measured one may
    /// be short), and `phase` is warmup, measured (the rows the report's
    /// window figures add up from) or drain (after the window: late
    /// deliveries, nothing new published). `received` counts deliveries.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// The server: ws://host:port/path. Several URLs are the nodes of one
    /// cluster: the publishers connect to the first, the subscribers to
    /// each in turn, and delivery is checked across them.
    #[arg(value_name = "URL", required = true, num_args = 1.., value_parser = parse_target)]
    pub urls: Vec<Target>,
}

/// `conns`' outputs.
#[derive(Args, Debug)]
pub struct ConnsOut {
    /// Sample this server process's CPU and RSS from /proc.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Write every figure and the run's parameters as one JSON object
    /// (`-` for stdout, which then carries only the JSON).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the handshake latency distribution (connect plus upgrade) in
    /// HdrHistogram's .hgrm text format (ms).
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// The server: ws://host:port/path.
    #[arg(value_name = "URL", value_parser = parse_target)]
    pub url: Target,
}

/// `compare`'s outputs.
#[derive(Args, Debug)]
pub struct CompareOut {
    /// Sample the servers' CPU and RSS from /proc: one --server-pid per
    /// URL, in the same order.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// Write the medians and every run's figures as one JSON object (`-`
    /// for stdout, which then carries only the JSON).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The servers to compare: ws://host:port/path each.
    #[arg(value_name = "URL", required = true, num_args = 1.., value_parser = parse_target)]
    pub urls: Vec<Target>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a rate (messages per second)"))?;
    if r.is_finite() && r > 0.0 && r <= 1e9 {
        Ok(r)
    } else {
        Err(format!("'{s}': the rate must be above 0 and at most 1e9"))
    }
}

fn parse_payload_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if n > MAX_SIZE {
        return Err(format!("{n} bytes is above the 64MiB maximum"));
    }
    Ok(n)
}

/// One scenario: a mode and its flags, however it was asked for.
#[derive(Clone, Debug)]
pub enum Scenario {
    /// Closed-loop echo.
    Echo(EchoArgs),
    /// Open-loop echo at a fixed rate.
    Rate(RateArgs),
    /// Broadcast fan-out.
    Broadcast(BroadcastArgs),
    /// Idle connections.
    Conns(ConnsArgs),
    /// Connection churn.
    Churn(ChurnArgs),
}

impl Scenario {
    /// Connections to open (broadcast: subscribers; churn: slots).
    pub fn connections(&self) -> u32 {
        match self {
            Scenario::Echo(a) => a.connections,
            Scenario::Rate(a) => a.connections,
            Scenario::Broadcast(a) => a.connections,
            Scenario::Conns(a) => a.connections,
            Scenario::Churn(a) => a.connections,
        }
    }

    /// The phases; `conns` has no warm-up and nothing to wait for after.
    pub fn phases(&self) -> Phases {
        match self {
            Scenario::Echo(a) => a.phases,
            Scenario::Rate(a) => a.phases,
            Scenario::Broadcast(a) => a.phases,
            Scenario::Conns(a) => Phases {
                duration: a.duration,
                warmup: Duration::ZERO,
                grace: Duration::ZERO,
            },
            Scenario::Churn(a) => a.phases,
        }
    }

    /// How to connect.
    pub fn client(&self) -> &ClientArgs {
        match self {
            Scenario::Echo(a) => &a.client,
            Scenario::Rate(a) => &a.client,
            Scenario::Broadcast(a) => &a.client,
            Scenario::Conns(a) => &a.client,
            Scenario::Churn(a) => &a.client,
        }
    }

    /// The payload flags, for modes that send.
    pub fn payload(&self) -> Option<PayloadArgs> {
        match self {
            Scenario::Echo(a) => Some(a.payload.clone()),
            Scenario::Rate(a) => Some(a.payload.clone()),
            Scenario::Broadcast(a) => Some(PayloadArgs::from(&a.payload)),
            Scenario::Conns(_) => None,
            Scenario::Churn(a) => Some(a.payload.clone()),
        }
    }

    /// The mode's name.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Echo(_) => "echo",
            Scenario::Rate(_) => "rate",
            Scenario::Broadcast(_) => "broadcast",
            Scenario::Conns(_) => "conns",
            Scenario::Churn(_) => "churn",
        }
    }
}

/// Where a run's figures go, and what it runs against.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// The servers: one, a broadcast cluster's nodes, or those `compare`d.
    pub targets: Vec<Target>,
    /// Server processes to sample: none, or one per target.
    pub server_pids: Vec<u32>,
    /// The JSON report.
    pub json: Option<PathBuf>,
    /// The .hgrm latency table.
    pub hgrm: Option<PathBuf>,
    /// The per-second CSV.
    pub csv: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario.
    pub scenario: Scenario,
    /// Its outputs and targets.
    pub out: Outputs,
    /// `compare`'s rounds; `None` for a single run.
    pub rounds: Option<u32>,
}

impl SingleOut {
    fn outputs(self) -> Outputs {
        Outputs {
            targets: vec![self.url],
            server_pids: self.server_pid.into_iter().collect(),
            json: self.json,
            hgrm: self.hgrm,
            csv: self.csv,
        }
    }
}

impl NodesOut {
    fn outputs(self) -> Outputs {
        Outputs {
            targets: self.urls,
            server_pids: self.server_pids,
            json: self.json,
            hgrm: self.hgrm,
            csv: self.csv,
        }
    }
}

impl ConnsOut {
    fn outputs(self) -> Outputs {
        Outputs {
            targets: vec![self.url],
            server_pids: self.server_pid.into_iter().collect(),
            json: self.json,
            hgrm: self.hgrm,
            csv: None,
        }
    }
}

impl CompareOut {
    fn outputs(self) -> Outputs {
        Outputs {
            targets: self.urls,
            server_pids: self.server_pids,
            json: self.json,
            hgrm: None,
            csv: None,
        }
    }
}

impl Command {
    /// The plan the command asks for.
    pub fn into_plan(self) -> Plan {
        let single = |scenario, out| Plan {
            scenario,
            out,
            rounds: None,
        };
        match self {
            Command::Echo { mode, out } => single(Scenario::Echo(mode), out.outputs()),
            Command::Rate { mode, out } => single(Scenario::Rate(mode), out.outputs()),
            Command::Broadcast { mode, out } => single(Scenario::Broadcast(mode), out.outputs()),
            Command::Conns { mode, out } => single(Scenario::Conns(mode), out.outputs()),
            Command::Churn { mode, out } => single(Scenario::Churn(mode), out.outputs()),
            Command::Compare(c) => {
                let (scenario, out) = match c.scenario {
                    CompareCommand::Echo { mode, out } => (Scenario::Echo(mode), out),
                    CompareCommand::Rate { mode, out } => (Scenario::Rate(mode), out),
                    CompareCommand::Broadcast { mode, out } => (Scenario::Broadcast(mode), out),
                    CompareCommand::Conns { mode, out } => (Scenario::Conns(mode), out),
                    CompareCommand::Churn { mode, out } => (Scenario::Churn(mode), out),
                };
                Plan {
                    scenario,
                    out: out.outputs(),
                    rounds: Some(c.rounds),
                }
            }
        }
    }
}

impl Plan {
    /// The subcommand path, for a usage error's usage line.
    pub fn command_path(&self) -> Vec<&'static str> {
        match self.rounds {
            Some(_) => vec!["compare", self.scenario.name()],
            None => vec![self.scenario.name()],
        }
    }

    /// Checks what clap cannot: that server pids pair with the URLs.
    /// Returns the message of a usage error.
    pub fn validate(&self) -> Result<(), String> {
        let o = &self.out;
        let (pids, urls) = (o.server_pids.len(), o.targets.len());
        if pids > 0 && pids != urls {
            return Err(format!(
                "{urls} URLs but {pids} --server-pid: give one per URL, in the same order, or none"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
