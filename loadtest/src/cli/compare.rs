//! `compare` and `report`: the flags, and the [`Matrix`] they ask for.
//!
//! `compare` takes one mode and its flags (the servers: `--server` to
//! start, URLs of running ones) or a scenario file (`--scenarios`, see
//! [`super::file`]); either way parsing ends in a [`Matrix`]: scenarios
//! × servers × rounds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::flags::{
    parse_positive_duration, BroadcastArgs, ChurnArgs, ConnsArgs, EchoArgs, RateArgs,
};
use super::matrix::{
    check_name, check_url_template, Entry, Matrix, MatrixError, ServerSpec, DEFAULT_ROUNDS,
};
use super::Scenario;
use crate::cpus::{self, CpuList};
use crate::target::{parse_target, Target};

/// `compare`: rounds, servers, pinning and outputs, then a mode and its
/// flags, or `--scenarios FILE`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// How many times each server is run, interleaved A B A B; medians
    /// and min–max are reported [default: 3, or the scenario file's].
    #[arg(long, global = true, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: Option<u32>,
    /// Start this server for every run: NAME=COMMAND, where COMMAND holds
    /// `{port}` (a free loopback port wsload picks). Run by /bin/sh as
    /// `exec COMMAND`, stopped by its PID (SIGTERM, SIGKILL after 5 s).
    /// Repeatable, before the mode; ratios are to the first server.
    #[arg(long = "server", value_name = "NAME=COMMAND", value_parser = parse_server)]
    pub servers: Vec<(String, String)>,
    /// How to reach the started servers: a ws:// or wss:// URL with
    /// `{port}`, e.g. `wss://127.0.0.1:{port}/room` (wss:// takes the
    /// mode's --ca-file or --insecure). NAME=URL for one server; a bare
    /// URL for every other. Default: ws://127.0.0.1:{port}/.
    #[arg(long = "server-url", value_name = "[NAME=]URL", value_parser = parse_server_url)]
    pub server_urls: Vec<(Option<String>, String)>,
    /// Pin the started servers to these CPUs (e.g. 0, or 0-1).
    #[arg(long, global = true, value_name = "LIST", value_parser = cpus::parse)]
    pub server_cpus: Option<CpuList>,
    /// Pin wsload's own threads to these CPUs.
    #[arg(long, global = true, value_name = "LIST", value_parser = cpus::parse)]
    pub load_cpus: Option<CpuList>,
    /// Write everything, every round, the parameters and the machine, as
    /// one JSON document (`-` for stdout); `wsload report` reads it back.
    #[arg(long, global = true, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write one self-contained HTML report: tables and charts.
    #[arg(long, global = true, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the charts as SVG files into this directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub svg: Option<PathBuf>,
    /// Run the scenarios and servers of this TOML file instead of one mode.
    #[arg(long, value_name = "FILE")]
    pub scenarios: Option<PathBuf>,
    /// With --scenarios: run only these scenarios (repeatable, or NAME,NAME).
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        requires = "scenarios"
    )]
    pub only: Vec<String>,
    /// With --scenarios: the measured window of every scenario.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "scenarios")]
    pub duration: Option<Duration>,
    /// The scenario.
    #[command(subcommand)]
    pub scenario: Option<CompareCommand>,
}

/// The modes as `compare` runs them.
#[derive(Subcommand, Debug)]
pub enum CompareCommand {
    /// Closed-loop echo.
    Echo {
        /// The mode's flags.
        #[command(flatten)]
        mode: EchoArgs,
        /// The servers already running.
        #[command(flatten)]
        out: CompareOut,
    },
    /// Open-loop echo at a fixed rate.
    Rate {
        /// The mode's flags.
        #[command(flatten)]
        mode: RateArgs,
        /// The servers already running.
        #[command(flatten)]
        out: CompareOut,
    },
    /// Broadcast fan-out, one server per URL.
    Broadcast {
        /// The mode's flags.
        #[command(flatten)]
        mode: BroadcastArgs,
        /// The servers already running.
        #[command(flatten)]
        out: CompareOut,
    },
    /// Idle connections: handshakes per second and server memory per connection.
    Conns {
        /// The mode's flags.
        #[command(flatten)]
        mode: ConnsArgs,
        /// The servers already running.
        #[command(flatten)]
        out: CompareOut,
    },
    /// Connection churn.
    Churn {
        /// The mode's flags.
        #[command(flatten)]
        mode: ChurnArgs,
        /// The servers already running.
        #[command(flatten)]
        out: CompareOut,
    },
}

/// Servers already running, compared after those `--server` starts.
#[derive(Args, Debug)]
pub struct CompareOut {
    /// Sample the servers' CPU and RSS from /proc: one --server-pid per
    /// URL, in the same order (or write URL@PID).
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// Running servers: ws://host:port/path each, or URL@PID to name the
    /// process to sample.
    #[arg(value_name = "URL", num_args = 0.., value_parser = parse_url_pid)]
    pub urls: Vec<(Target, Option<u32>)>,
}

/// `report`: re-renders a `compare --json` document, or compares two.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A document `compare --json` wrote.
    #[arg(value_name = "A.json")]
    pub a: PathBuf,
    /// A later one: each figure is compared with A's, and a change is
    /// flagged only when the two runs' min–max ranges do not overlap.
    #[arg(value_name = "B.json")]
    pub b: Option<PathBuf>,
    /// Write the HTML report (of B when two are given, with the changes).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the charts as SVG files into this directory.
    #[arg(long, value_name = "DIR")]
    pub svg: Option<PathBuf>,
}

impl CompareArgs {
    /// The matrix the flags ask for, reading the scenario file if one is named.
    pub fn into_matrix(self) -> Result<Matrix, MatrixError> {
        let usage = |msg: String| MatrixError::Usage(vec!["compare"], msg);
        if let Some((name, _)) = self.server_urls.iter().find(|(n, _)| {
            n.as_ref()
                .is_some_and(|n| !self.servers.iter().any(|s| &s.0 == n))
        }) {
            return Err(usage(format!(
                "--server-url {}=...: no --server of that name",
                name.as_deref().unwrap_or_default()
            )));
        }
        if self.server_urls.iter().filter(|(n, _)| n.is_none()).count() > 1 {
            return Err(usage(
                "--server-url: one bare URL (for every server) at most; name the others NAME=URL"
                    .into(),
            ));
        }
        let url_of = |name: &str| {
            let own = self
                .server_urls
                .iter()
                .find(|(n, _)| n.as_deref() == Some(name));
            let any = self.server_urls.iter().find(|(n, _)| n.is_none());
            own.or(any).map(|(_, u)| u.clone())
        };
        let started: Vec<ServerSpec> = self
            .servers
            .iter()
            .map(|(name, command)| ServerSpec::Start {
                name: name.clone(),
                command: command.clone(),
                by_mode: BTreeMap::new(),
                url: url_of(name),
            })
            .collect();
        if started.is_empty() && !self.server_urls.is_empty() {
            return Err(usage(
                "--server-url without --server: it says how to reach the servers wsload starts"
                    .into(),
            ));
        }
        let mut m = match (self.scenario, &self.scenarios) {
            (Some(_), Some(_)) => {
                return Err(MatrixError::Usage(
                    vec!["compare"],
                    "give a mode or --scenarios FILE, not both".into(),
                ))
            }
            (None, None) => {
                return Err(MatrixError::Usage(
                    vec!["compare"],
                    "give a mode (echo, rate, broadcast, conns, churn) or --scenarios FILE".into(),
                ))
            }
            (None, Some(path)) => {
                let mut m = super::file::load(path, self.rounds, self.duration, &self.only)?;
                if !started.is_empty() {
                    m.servers = started;
                }
                m
            }
            (Some(cmd), None) => one_mode(cmd, started, self.rounds)?,
        };
        m.server_cpus = self.server_cpus.or(m.server_cpus);
        m.load_cpus = self.load_cpus.or(m.load_cpus);
        m.json = self.json;
        m.html = self.html;
        m.svg = self.svg;
        m.check()?;
        for e in &mut m.entries {
            e.scenario
                .client_mut()
                .resolve_credentials()
                .map_err(|msg| MatrixError::Usage(m.usage.clone(), msg))?;
        }
        Ok(m)
    }
}

/// The matrix of one mode given on the command line.
fn one_mode(
    cmd: CompareCommand,
    mut servers: Vec<ServerSpec>,
    rounds: Option<u32>,
) -> Result<Matrix, MatrixError> {
    let (scenario, out) = match cmd {
        CompareCommand::Echo { mode, out } => (Scenario::Echo(mode), out),
        CompareCommand::Rate { mode, out } => (Scenario::Rate(mode), out),
        CompareCommand::Broadcast { mode, out } => (Scenario::Broadcast(mode), out),
        CompareCommand::Conns { mode, out } => (Scenario::Conns(mode), out),
        CompareCommand::Churn { mode, out } => (Scenario::Churn(mode), out),
    };
    let path = vec!["compare", scenario.name()];
    let usage = |msg: String| MatrixError::Usage(path.clone(), msg);
    let (pids, urls) = (out.server_pids.len(), out.urls.len());
    if pids > 0 && pids != urls {
        return Err(usage(format!(
            "{urls} URLs but {pids} --server-pid: give one per URL, in the same order, or none"
        )));
    }
    if pids > 0 && out.urls.iter().any(|(_, p)| p.is_some()) {
        return Err(usage(
            "name processes with --server-pid or with URL@PID, not both".into(),
        ));
    }
    for (i, (target, pid)) in out.urls.into_iter().enumerate() {
        servers.push(ServerSpec::Running {
            name: target.url.clone(),
            target,
            pid: pid.or(out.server_pids.get(i).copied()),
        });
    }
    if servers.is_empty() {
        return Err(usage(
            "nothing to compare: give --server NAME=COMMAND or URLs".into(),
        ));
    }
    let rounds = rounds.unwrap_or(DEFAULT_ROUNDS);
    Ok(Matrix {
        entries: vec![Entry {
            name: match &scenario {
                Scenario::Rate(a) if a.capacity.find_max => "capacity".to_string(),
                s => s.name().to_string(),
            },
            title: scenario.describe(),
            scenario,
            rounds,
            load_cpus: None,
        }],
        servers,
        rounds,
        server_cpus: None,
        load_cpus: None,
        json: None,
        html: None,
        svg: None,
        usage: path,
    })
}

/// Parses `NAME=COMMAND`.
fn parse_server(s: &str) -> Result<(String, String), String> {
    let (name, command) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected NAME=COMMAND"))?;
    let name = name.trim();
    check_name(name)?;
    if command.trim().is_empty() {
        return Err(format!("'{s}': the command is empty"));
    }
    Ok((name.to_string(), command.trim().to_string()))
}

/// Parses `[NAME=]URL`: a URL starts with its scheme, a name does not.
fn parse_server_url(s: &str) -> Result<(Option<String>, String), String> {
    let s = s.trim();
    let (name, url) = match s.split_once('=') {
        Some((name, url)) if !name.contains("://") => (Some(name.trim()), url.trim()),
        _ => (None, s),
    };
    if let Some(n) = name {
        check_name(n)?;
    }
    check_url_template(url)?;
    Ok((name.map(str::to_string), url.to_string()))
}

/// Parses `URL` or `URL@PID`.
fn parse_url_pid(s: &str) -> Result<(Target, Option<u32>), String> {
    if let Some((url, pid)) = s.rsplit_once('@') {
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
            let pid = pid
                .parse()
                .map_err(|_| format!("'{pid}' is not a process id"))?;
            return Ok((parse_target(url)?, Some(pid)));
        }
    }
    Ok((parse_target(s)?, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Job};
    use clap::Parser as _;

    fn matrix(args: &[&str]) -> Result<Matrix, MatrixError> {
        let mut argv = vec!["wsload", "compare"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).map(|c| c.command.into_job()) {
            Ok(Job::Compare(c)) => c.into_matrix(),
            other => panic!("not compare: {other:?}"),
        }
    }

    #[test]
    fn a_server_url_is_a_template_with_an_optional_name() {
        assert_eq!(
            parse_server_url("wss://127.0.0.1:{port}/room?a=b"),
            Ok((None, "wss://127.0.0.1:{port}/room?a=b".into()))
        );
        assert_eq!(
            parse_server_url("peer=ws://localhost:{port}/x"),
            Ok((Some("peer".into()), "ws://localhost:{port}/x".into()))
        );
        assert!(parse_server_url("wss://127.0.0.1:9001/").is_err_and(|e| e.contains("no {port}")));
        assert!(parse_server_url("http://127.0.0.1:{port}/").is_err());
        assert!(parse_server_url("a b=ws://127.0.0.1:{port}/").is_err());
    }

    #[test]
    fn each_started_server_takes_its_own_url_or_the_bare_one() {
        let m = matrix(&[
            "--server",
            "a=x {port}",
            "--server",
            "b=y {port}",
            "--server",
            "c=z {port}",
            "--server-url",
            "wss://localhost:{port}/room",
            "--server-url",
            "b=ws://127.0.0.1:{port}/b",
            "echo",
        ])
        .expect("valid");
        let urls: Vec<String> = m.servers.iter().filter_map(|s| s.url_at(5)).collect();
        assert_eq!(
            urls,
            [
                "wss://localhost:5/room",
                "ws://127.0.0.1:5/b",
                "wss://localhost:5/room"
            ]
        );
        let m = matrix(&["--server", "a=x {port}", "echo"]).expect("valid");
        assert_eq!(m.servers[0].url_at(5).as_deref(), Some("ws://127.0.0.1:5/"));
    }

    #[test]
    fn a_server_url_must_have_a_server_to_reach() {
        let usage = |args: &[&str]| match matrix(args) {
            Err(MatrixError::Usage(_, msg)) => msg,
            other => panic!("{args:?}: {other:?}"),
        };
        let url = "ws://127.0.0.1:{port}/";
        assert!(
            usage(&["--server-url", url, "echo", "ws://127.0.0.1:9/"]).contains("without --server")
        );
        let named = format!("zz={url}");
        assert!(
            usage(&["--server", "a=x {port}", "--server-url", &named, "echo"])
                .contains("no --server of that name")
        );
        assert!(usage(&[
            "--server",
            "a=x {port}",
            "--server-url",
            url,
            "--server-url",
            url,
            "echo"
        ])
        .contains("one bare URL"));
    }
}
