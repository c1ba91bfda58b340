//! Flags, wrk/wrk2 style: `wsload MODE [options] URL`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use wsd::units::{parse_duration, parse_size};

use crate::payload::Encoding;
use crate::target::{parse_target, Target};

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

/// The modes.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Closed loop: each connection keeps --depth messages in flight.
    Echo(EchoArgs),
    /// Open loop at a fixed total rate; latency from the intended send time.
    Rate(RateArgs),
    /// Publishers send at a fixed rate; subscribers check every delivery.
    Broadcast(BroadcastArgs),
    /// Opens many idle connections: handshake rate and server memory per connection.
    Conns(ConnsArgs),
    /// Connections that keep opening, echoing, and closing (cleanly or abruptly).
    Churn(ChurnArgs),
    /// Runs one scenario against several URLs in turn (A B A B ...).
    Compare(CompareArgs),
}

/// One scenario, as `compare` takes it.
#[derive(Subcommand, Debug, Clone)]
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

/// Flags every mode takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Connections to open (subscribers, in broadcast mode).
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,

    /// Length of the measured window.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,

    /// Event-loop threads; connections are shared out among them.
    #[arg(short = 't', long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,

    /// Load before the measured window, not counted in rates or latencies.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub warmup: Duration,

    /// How long to wait for outstanding replies after the window.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub grace: Duration,

    /// How long a connection may take to connect and complete its handshake.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Spread connections over this many source addresses 127.0.0.1..127.0.0.N
    /// (IPv4 loopback targets only); default: one per 25,000 connections.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=254))]
    pub source_addrs: Option<u8>,

    /// Sample this server process's CPU and RSS from /proc. With `compare`,
    /// give one per URL, in the same order.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,

    /// Write every figure and the run's parameters as one JSON object
    /// (`-` for stdout, which then carries only the JSON).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the latency distribution in HdrHistogram's .hgrm text format (ms).
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,

    /// Write a per-second time series: second,sent,received,errors,p99_us.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// The server: ws://host:port/path (`compare` takes several).
    #[arg(value_name = "URL", required = true, num_args = 1.., value_parser = parse_target)]
    pub targets: Vec<Target>,
}

/// Payload flags.
#[derive(Args, Debug, Clone)]
pub struct PayloadArgs {
    /// Payload size (at least 32 bytes binary, 64 text).
    #[arg(short = 's', long, default_value = "64", value_parser = parse_size, value_name = "SIZE")]
    pub size: usize,

    /// Send text frames.
    #[arg(long, conflicts_with = "binary")]
    pub text: bool,

    /// Send binary frames (the default).
    #[arg(long)]
    pub binary: bool,
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
    /// Flags every mode takes.
    #[command(flatten)]
    pub common: Common,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Messages in flight per connection (pipelining).
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub depth: u32,
}

/// `rate` flags.
#[derive(Args, Debug, Clone)]
pub struct RateArgs {
    /// Flags every mode takes.
    #[command(flatten)]
    pub common: Common,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Total messages per second, over all connections.
    #[arg(short = 'R', long, value_name = "MSGS_PER_S", value_parser = parse_rate)]
    pub rate: f64,
}

/// `broadcast` flags.
#[derive(Args, Debug, Clone)]
pub struct BroadcastArgs {
    /// Flags every mode takes.
    #[command(flatten)]
    pub common: Common,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Publishing connections, besides the -c subscribers.
    #[arg(long, default_value_t = 1, value_name = "P",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub publishers: u32,
    /// Total messages published per second, over all publishers.
    #[arg(short = 'R', long, default_value = "1000", value_name = "MSGS_PER_S", value_parser = parse_rate)]
    pub rate: f64,
}

/// `conns` flags.
#[derive(Args, Debug, Clone)]
pub struct ConnsArgs {
    /// Flags every mode takes.
    #[command(flatten)]
    pub common: Common,
}

/// `churn` flags.
#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    /// Flags every mode takes; -c is the number of connection slots, each
    /// opening its next connection as soon as the last one ended.
    #[command(flatten)]
    pub common: Common,
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
}

/// `compare` flags: rounds, then the scenario with several URLs.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// How many times each URL is run (A B A B ...); medians are reported.
    #[arg(long, default_value_t = 3, global = true, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// The scenario.
    #[command(subcommand)]
    pub scenario: Scenario,
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

impl Scenario {
    /// The flags every mode takes.
    pub fn common(&self) -> &Common {
        match self {
            Scenario::Echo(a) => &a.common,
            Scenario::Rate(a) => &a.common,
            Scenario::Broadcast(a) => &a.common,
            Scenario::Conns(a) => &a.common,
            Scenario::Churn(a) => &a.common,
        }
    }

    /// The payload flags, for modes that send.
    pub fn payload(&self) -> Option<&PayloadArgs> {
        match self {
            Scenario::Echo(a) => Some(&a.payload),
            Scenario::Rate(a) => Some(&a.payload),
            Scenario::Broadcast(a) => Some(&a.payload),
            Scenario::Conns(_) => None,
            Scenario::Churn(a) => Some(&a.payload),
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

    /// Checks what clap cannot: payload size against the stamp, and for a
    /// single run one URL and at most one server pid. Returns the message
    /// of a usage error.
    pub fn validate(&self, compare: bool) -> Result<(), String> {
        let c = self.common();
        if let Some(p) = self.payload() {
            let min = p.encoding().stamp_len();
            if p.size < min {
                return Err(format!(
                    "--size {} is too small: {} payloads carry a {min}-byte stamp",
                    p.size,
                    p.encoding().name()
                ));
            }
            if p.size > 64 << 20 {
                return Err(format!("--size {} is above the 64MiB maximum", p.size));
            }
        }
        if compare {
            if c.hgrm.is_some() || c.csv.is_some() {
                return Err(
                    "--hgrm and --csv describe a single run; `compare` takes --json".into(),
                );
            }
            if !c.server_pids.is_empty() && c.server_pids.len() != c.targets.len() {
                return Err(format!(
                    "{} URLs but {} --server-pid: give one per URL, in the same order, or none",
                    c.targets.len(),
                    c.server_pids.len()
                ));
            }
        } else {
            if c.targets.len() != 1 {
                return Err(format!(
                    "{} URLs given: this mode takes one (use `wsload compare {} ...` for several)",
                    c.targets.len(),
                    self.name()
                ));
            }
            if c.server_pids.len() > 1 {
                return Err("--server-pid given more than once: one server per run".into());
            }
        }
        Ok(())
    }
}

impl Command {
    /// Splits the command into its scenario and, for `compare`, the rounds.
    pub fn into_scenario(self) -> (Scenario, Option<u32>) {
        match self {
            Command::Echo(a) => (Scenario::Echo(a), None),
            Command::Rate(a) => (Scenario::Rate(a), None),
            Command::Broadcast(a) => (Scenario::Broadcast(a), None),
            Command::Conns(a) => (Scenario::Conns(a), None),
            Command::Churn(a) => (Scenario::Churn(a), None),
            Command::Compare(c) => (c.scenario, Some(c.rounds)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<(Scenario, Option<u32>), clap::Error> {
        let mut argv = vec!["wsload"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|c| c.command.into_scenario())
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn wrk_style_echo_flags() {
        let (s, rounds) = parse(&[
            "echo",
            "-c",
            "100",
            "-d",
            "5s",
            "-t",
            "2",
            "-s",
            "1KiB",
            "--depth",
            "8",
            "--text",
            "--warmup",
            "250ms",
            "ws://127.0.0.1:9001/",
        ])
        .expect("valid");
        assert_eq!(rounds, None);
        let Scenario::Echo(a) = &s else {
            panic!("{s:?}")
        };
        assert_eq!(a.common.connections, 100);
        assert_eq!(a.common.duration, Duration::from_secs(5));
        assert_eq!(a.common.threads, 2);
        assert_eq!(a.common.warmup, Duration::from_millis(250));
        assert_eq!(a.payload.size, 1024);
        assert_eq!(a.payload.encoding(), Encoding::Text);
        assert_eq!(a.depth, 8);
        assert_eq!(a.common.targets[0].addr.port(), 9001);
        assert!(s.validate(false).is_ok());
    }

    #[test]
    fn defaults() {
        let (s, _) = parse(&["echo", "ws://127.0.0.1:9001"]).expect("valid");
        let Scenario::Echo(a) = &s else {
            panic!("{s:?}")
        };
        assert_eq!(a.common.connections, 10);
        assert_eq!(a.common.threads, 1);
        assert_eq!(a.depth, 1);
        assert_eq!(a.payload.size, 64);
        assert_eq!(a.payload.encoding(), Encoding::Binary);
    }

    #[test]
    fn rate_needs_a_rate() {
        assert!(parse(&["rate", "ws://127.0.0.1:9001"]).is_err());
        assert!(parse(&["rate", "-R", "0", "ws://127.0.0.1:9001"]).is_err());
        let (s, _) = parse(&["rate", "-R", "2500", "ws://127.0.0.1:9001"]).expect("valid");
        assert!(matches!(s, Scenario::Rate(RateArgs { rate, .. }) if rate == 2500.0));
    }

    #[test]
    fn churn_flags_and_defaults() {
        let (s, _) = parse(&["churn", "-c", "200", "ws://127.0.0.1:9001"]).expect("valid");
        let Scenario::Churn(a) = &s else {
            panic!("{s:?}")
        };
        assert_eq!(a.common.connections, 200);
        assert_eq!((a.messages, a.depth, a.abrupt, a.seed), (10, 1, 30, 1));
        assert!(parse(&["churn", "--abrupt", "101", "ws://127.0.0.1:9001"]).is_err());
        assert!(parse(&["churn", "--messages", "0", "ws://127.0.0.1:9001"]).is_err());
    }

    #[test]
    fn text_and_binary_conflict() {
        assert!(parse(&["echo", "--text", "--binary", "ws://127.0.0.1:1"]).is_err());
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        for url in ["wss://127.0.0.1:9001", "http://127.0.0.1", "nonsense"] {
            let e = parse(&["echo", url]).expect_err(url);
            assert_eq!(e.exit_code(), 2, "{url}");
        }
    }

    #[test]
    fn small_payloads_are_refused() {
        let (s, _) = parse(&["echo", "-s", "16", "ws://127.0.0.1:1"]).expect("parses");
        assert!(s.validate(false).is_err());
        let (s, _) = parse(&["echo", "-s", "40", "--text", "ws://127.0.0.1:1"]).expect("parses");
        assert!(s.validate(false).is_err());
    }

    #[test]
    fn one_url_per_single_run() {
        let (s, _) = parse(&["echo", "ws://127.0.0.1:1", "ws://127.0.0.1:2"]).expect("parses");
        assert!(s.validate(false).is_err());
    }

    #[test]
    fn compare_pairs_server_pids_with_urls() {
        let (s, rounds) = parse(&[
            "compare",
            "echo",
            "-c",
            "100",
            "-d",
            "5s",
            "ws://127.0.0.1:9001",
            "ws://127.0.0.1:9002",
            "--server-pid",
            "123",
            "--server-pid",
            "456",
            "--rounds",
            "5",
        ])
        .expect("valid");
        assert_eq!(rounds, Some(5));
        assert_eq!(s.common().server_pids, [123, 456]);
        assert_eq!(s.common().targets.len(), 2);
        assert!(s.validate(true).is_ok());
        let (s, rounds) = parse(&[
            "compare",
            "echo",
            "ws://127.0.0.1:9001",
            "ws://127.0.0.1:9002",
            "--server-pid",
            "1",
        ])
        .expect("parses");
        assert_eq!(rounds, Some(3));
        assert!(s.validate(true).is_err());
    }
}
