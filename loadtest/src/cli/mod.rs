//! Flags, wrk/wrk2 style: `wsload MODE [options] URL`.
//!
//! Each mode has its own flag struct, so its help lists only the flags it
//! uses; the groups several modes share (the phases of a load, the
//! payload, how to connect) are flattened into it. A single run and
//! `compare` take the same mode flags with different outputs: a single run
//! takes one URL (broadcast: one per node), --hgrm and --csv; `compare`
//! takes several URLs, one --server-pid per URL, and --rounds. Parsing
//! ends in a [`Plan`], the same whichever way a scenario was asked for.
//!
//! [`flags`] holds the mode flag structs and the groups they share;
//! [`outputs`] what each kind of run writes and runs against.

mod flags;
mod outputs;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use self::flags::{
    BroadcastArgs, ChurnArgs, ClientArgs, ConnsArgs, EchoArgs, PayloadArgs, Phases, RateArgs,
};
pub use self::outputs::Outputs;
use self::outputs::{CompareOut, ConnsOut, NodesOut, SingleOut};

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
mod tests;
