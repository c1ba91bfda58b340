//! Flags, wrk/wrk2 style: `wsload MODE [options] URL`.
//!
//! Each mode has its own flag struct, so its help lists only the flags it
//! uses; the groups several modes share (the phases of a load, the
//! payload, how to connect) are flattened into it. A single run and
//! `compare` take the same mode flags with different outputs: a single run
//! takes one URL (broadcast: one per node), --hgrm and --csv; `compare`
//! takes servers to start, URLs of running ones, --rounds, pinning and
//! its reports. A single run's parsing ends in a [`Plan`]; `compare`'s in
//! a [`matrix::Matrix`], from the flags or a scenario file.
//!
//! [`flags`] holds the mode flag structs and the groups they share;
//! [`outputs`] what each kind of run writes and runs against; [`compare`]
//! the flags of `compare` and `report`; [`file`] the scenario file; below
//! both, [`matrix`] what a comparison runs and its checks.

pub mod agent;
pub mod capacity;
pub mod compare;
mod file;
mod flags;
pub mod matrix;
mod outputs;

use std::time::Duration;

use clap::{Parser, Subcommand};

use self::compare::{CompareArgs, ReportArgs};
pub use self::flags::{parse_positive_duration, parse_rate};
pub use self::flags::{
    BroadcastArgs, ChurnArgs, ClientArgs, ConnsArgs, EchoArgs, PayloadArgs, Phases, RateArgs,
};
pub use self::outputs::Outputs;
use self::outputs::{ConnsOut, NodesOut, SingleOut};

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
        /// The capacity search's page.
        #[command(flatten)]
        curve: capacity::CurveOut,
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
    /// Runs scenarios against several servers in turn (A B A B ...),
    /// starting each afresh if asked; medians, spreads, CPU per message.
    Compare(Box<CompareArgs>),
    /// Shows a `compare --json` document again, or compares two.
    Report(ReportArgs),
    /// Waits for a controller (`wsload MODE ... --agents`) and runs its
    /// share of the load, one run at a time.
    Agent(agent::AgentArgs),
}

/// A mode and its flags alone: a scenario file's `mode` and `flags`.
#[derive(Parser, Debug)]
#[command(name = "scenario")]
pub enum ModeOnly {
    /// Closed-loop echo.
    Echo(EchoArgs),
    /// Open-loop echo.
    Rate(RateArgs),
    /// Broadcast fan-out.
    Broadcast(BroadcastArgs),
    /// Idle connections.
    Conns(ConnsArgs),
    /// Connection churn.
    Churn(ChurnArgs),
}

impl ModeOnly {
    /// The scenario.
    pub fn into_scenario(self) -> Scenario {
        match self {
            ModeOnly::Echo(a) => Scenario::Echo(a),
            ModeOnly::Rate(a) => Scenario::Rate(a),
            ModeOnly::Broadcast(a) => Scenario::Broadcast(a),
            ModeOnly::Conns(a) => Scenario::Conns(a),
            ModeOnly::Churn(a) => Scenario::Churn(a),
        }
    }
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

    /// How to connect, to change.
    pub fn client_mut(&mut self) -> &mut ClientArgs {
        match self {
            Scenario::Echo(a) => &mut a.client,
            Scenario::Rate(a) => &mut a.client,
            Scenario::Broadcast(a) => &mut a.client,
            Scenario::Conns(a) => &mut a.client,
            Scenario::Churn(a) => &mut a.client,
        }
    }

    /// The payload flags, for modes that send.
    pub fn payload(&self) -> Option<PayloadArgs> {
        match self {
            Scenario::Echo(a) => Some(a.payload.clone()),
            Scenario::Rate(a) => Some(a.payload.clone()),
            Scenario::Broadcast(a) => Some(a.payload.clone()),
            Scenario::Conns(_) => None,
            Scenario::Churn(a) => Some(a.payload.clone()),
        }
    }

    /// Sets the measured window (`conns`: how long connections are held).
    pub fn set_duration(&mut self, d: Duration) {
        match self {
            Scenario::Echo(a) => a.phases.duration = d,
            Scenario::Rate(a) => a.phases.duration = d,
            Scenario::Broadcast(a) => a.phases.duration = d,
            Scenario::Conns(a) => a.duration = d,
            Scenario::Churn(a) => a.phases.duration = d,
        }
    }

    /// The scenario in words: `echo, 100 connections, 32 B binary, depth 16, 5s`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}, {} connections", self.name(), self.connections());
        if let Scenario::Broadcast(a) = self {
            s = format!(
                "broadcast, {} subscribers, {} publisher{}",
                a.connections,
                a.publishers,
                if a.publishers == 1 { "" } else { "s" }
            );
        }
        if let Some(p) = self.payload() {
            let size = match p.size {
                n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
                n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
                n => format!("{n} B"),
            };
            s.push_str(&format!(", {size} {}", p.encoding().name()));
        }
        match self {
            Scenario::Echo(a) => s.push_str(&format!(", depth {}", a.depth)),
            Scenario::Rate(a) if a.capacity.find_max => {
                s.push_str(&format!(", {}", capacity::describe(&a.capacity)));
            }
            Scenario::Rate(a) => s.push_str(&format!(", {} msg/s", a.rate)),
            Scenario::Broadcast(a) => s.push_str(&format!(", {} msg/s", a.rate)),
            Scenario::Churn(a) => s.push_str(&format!(
                ", {} messages each, {}% abrupt",
                a.messages, a.abrupt
            )),
            Scenario::Conns(_) => {}
        }
        let d = self.phases().duration;
        s.push_str(&format!(", {}s", d.as_secs_f64()));
        s
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

/// A single run: what the command line asks for.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario.
    pub scenario: Scenario,
    /// Its outputs and targets.
    pub out: Outputs,
}

/// What to do.
#[derive(Debug)]
pub enum Job {
    /// One run of one mode.
    Single(Box<Plan>),
    /// `compare`.
    Compare(Box<CompareArgs>),
    /// `report`.
    Report(ReportArgs),
    /// `agent`.
    Agent(agent::AgentArgs),
}

impl Command {
    /// The job the command asks for.
    pub fn into_job(self) -> Job {
        let single = |scenario, out| Job::Single(Box::new(Plan { scenario, out }));
        match self {
            Command::Echo { mode, out } => single(Scenario::Echo(mode), out.outputs()),
            Command::Rate {
                mut mode,
                out,
                curve,
            } => {
                mode.capacity.html = curve.html;
                single(Scenario::Rate(mode), out.outputs())
            }
            Command::Broadcast { mode, out } => single(Scenario::Broadcast(mode), out.outputs()),
            Command::Conns { mode, out } => single(Scenario::Conns(mode), out.outputs()),
            Command::Churn { mode, out } => single(Scenario::Churn(mode), out.outputs()),
            Command::Compare(c) => Job::Compare(c),
            Command::Report(r) => Job::Report(r),
            Command::Agent(a) => Job::Agent(a),
        }
    }
}

impl Plan {
    /// The subcommand path, for a usage error's usage line.
    pub fn command_path(&self) -> Vec<&'static str> {
        vec![self.scenario.name()]
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
        if let Scenario::Rate(r) = &self.scenario {
            r.capacity.validate(o.hgrm.is_some() || o.csv.is_some())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
