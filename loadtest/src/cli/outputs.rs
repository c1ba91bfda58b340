//! What each kind of run writes, and the URLs it runs against.

use std::path::PathBuf;

use clap::Args;

use crate::target::{parse_target, Target};

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

/// The files a single run writes, whatever the mode. The help speaks of
/// the latency; broadcast and conns say which ([`NodesOut`], [`ConnsOut`]).
#[derive(Args, Debug)]
pub struct Files {
    /// Write every figure and the run's parameters as one JSON object
    /// (`-` for stdout, which then carries only the JSON).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the latency distribution in HdrHistogram's .hgrm text format (ms).
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
}

/// The per-second series of the modes that send. Broadcast adds what its
/// rows count ([`NodesOut`]).
#[derive(Args, Debug)]
pub struct Series {
    /// Write a per-second time series: second,phase,sent,received,errors,p99_us,
    /// wire_sent_bytes,wire_received_bytes.
    ///
    /// Rows are whole seconds counted from the measured window's start, so
    /// none straddles two phases: `second` is where a row starts (negative
    /// in the warm-up; the first warm-up row and the last measured one may
    /// be short), and `phase` is warmup, measured (the rows the report's
    /// window figures add up from) or drain (after the window: late
    /// replies, nothing new sent).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

/// A single run's outputs: echo, rate and churn.
#[derive(Args, Debug)]
pub struct SingleOut {
    /// Sample this server process's CPU and RSS from /proc.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pid: Option<u32>,
    /// The files.
    #[command(flatten)]
    pub files: Files,
    /// The per-second series.
    #[command(flatten)]
    pub series: Series,
    /// The server: ws://host:port/path (or wss://).
    #[arg(value_name = "URL", value_parser = parse_target)]
    pub url: Target,
}

/// What `--csv` writes for broadcast: deliveries, late ones in the drain.
const FANOUT_CSV_HELP: &str = "Write a per-second time series: \
second,phase,sent,received,errors,p99_us, wire_sent_bytes,wire_received_bytes.

Rows are whole seconds counted from the measured window's start, so none \
straddles two phases: `second` is where a row starts (negative in the \
warm-up; the first warm-up row and the last measured one may be short), \
and `phase` is warmup, measured (the rows the report's window figures add \
up from) or drain (after the window: late deliveries, nothing new \
published). `received` counts deliveries.";

/// `broadcast`'s outputs: one URL, or one per node of a cluster.
#[derive(Args, Debug)]
#[command(mut_arg("hgrm", |a| a.help(
    "Write the fan-out latency distribution in HdrHistogram's .hgrm text format (ms)"
)))]
#[command(mut_arg("csv", |a| a.long_help(FANOUT_CSV_HELP)))]
pub struct NodesOut {
    /// Sample this server process's CPU and RSS from /proc; with several
    /// URLs, give one per URL in the same order, and the figures are summed.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// The files.
    #[command(flatten)]
    pub files: Files,
    /// The per-second series.
    #[command(flatten)]
    pub series: Series,
    /// The server: ws://host:port/path (or wss://). Several URLs are the nodes of one
    /// cluster: the publishers connect to the first, the subscribers to
    /// each in turn, and delivery is checked across them.
    #[arg(value_name = "URL", required = true, num_args = 1.., value_parser = parse_target)]
    pub urls: Vec<Target>,
}

/// `conns`' outputs.
#[derive(Args, Debug)]
#[command(mut_arg("hgrm", |a| a.help(
    "Write the handshake latency distribution (connect plus upgrade) in HdrHistogram's .hgrm text format (ms)"
)))]
pub struct ConnsOut {
    /// Sample this server process's CPU and RSS from /proc.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pid: Option<u32>,
    /// The files.
    #[command(flatten)]
    pub files: Files,
    /// The server: ws://host:port/path (or wss://).
    #[arg(value_name = "URL", value_parser = parse_target)]
    pub url: Target,
}

impl SingleOut {
    /// The run's targets and outputs.
    pub(super) fn outputs(self) -> Outputs {
        Outputs {
            targets: vec![self.url],
            server_pids: self.server_pid.into_iter().collect(),
            json: self.files.json,
            hgrm: self.files.hgrm,
            csv: self.series.csv,
        }
    }
}

impl NodesOut {
    /// The run's targets and outputs.
    pub(super) fn outputs(self) -> Outputs {
        Outputs {
            targets: self.urls,
            server_pids: self.server_pids,
            json: self.files.json,
            hgrm: self.files.hgrm,
            csv: self.series.csv,
        }
    }
}

impl ConnsOut {
    /// The run's targets and outputs.
    pub(super) fn outputs(self) -> Outputs {
        Outputs {
            targets: vec![self.url],
            server_pids: self.server_pid.into_iter().collect(),
            json: self.files.json,
            hgrm: self.files.hgrm,
            csv: None,
        }
    }
}
