//! The scenario file `compare --scenarios` reads: servers and scenarios in
//! TOML, so one command runs the whole matrix.
//!
//! ```toml
//! rounds = 3            # default for every scenario (3 if absent)
//! server_cpus = "0"     # as --server-cpus; the flags win over the file
//! load_cpus = "1"       # as --load-cpus
//!
//! [[server]]            # in order: ratios are to the first
//! name = "wsd"
//! command = "target/release/wsd --listen 127.0.0.1:{port}"
//! # Another command for the scenarios of one mode:
//! commands.broadcast = "target/release/wsd --listen 127.0.0.1:{port} --mode broadcast"
//! # How to reach it (default ws://127.0.0.1:{port}/): TLS, a room. A
//! # wss:// URL takes the scenario's --ca-file or --insecure.
//! url = "wss://localhost:{port}/room"
//!
//! [[scenario]]
//! name = "echo-d1"
//! mode = "echo"         # echo, rate, broadcast, conns, churn
//! flags = "-c 100 --depth 1 -s 32 -d 5s"   # the mode's flags (or a list of words)
//! title = "echo, 32 B, 1 in flight"        # optional: generated from the flags
//! rounds = 1                               # optional
//! load_cpus = "0-1"                        # optional: wsload's CPUs for this one
//! ```
//!
//! Commands run from wsload's working directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use serde::Deserialize;

use super::matrix::{
    check_name, check_url_template, Entry, Matrix, MatrixError, ServerSpec, DEFAULT_ROUNDS,
};
use super::ModeOnly;
use crate::cpus;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rounds: Option<u32>,
    server_cpus: Option<String>,
    load_cpus: Option<String>,
    #[serde(default)]
    server: Vec<ServerEntry>,
    #[serde(default)]
    scenario: Vec<ScenarioEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    name: String,
    command: String,
    #[serde(default)]
    commands: BTreeMap<String, String>,
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioEntry {
    name: String,
    mode: String,
    #[serde(default)]
    flags: Flags,
    title: Option<String>,
    rounds: Option<u32>,
    load_cpus: Option<String>,
}

/// A mode's flags: one line split at whitespace, or the words themselves.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flags {
    Line(String),
    Words(Vec<String>),
}

impl Default for Flags {
    fn default() -> Flags {
        Flags::Words(Vec::new())
    }
}

impl Flags {
    fn words(&self) -> Vec<String> {
        match self {
            Flags::Line(l) => l.split_whitespace().map(str::to_string).collect(),
            Flags::Words(w) => w.clone(),
        }
    }
}

const MODES: [&str; 5] = ["echo", "rate", "broadcast", "conns", "churn"];

/// Reads the file at `path` into a matrix; `rounds` and `duration` (from
/// the flags) override every scenario's, and `only` picks scenarios.
pub fn load(
    path: &Path,
    rounds: Option<u32>,
    duration: Option<Duration>,
    only: &[String],
) -> Result<Matrix, MatrixError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| MatrixError::File(format!("cannot read {shown}: {e}")))?;
    parse(&text, rounds, duration, only).map_err(|e| MatrixError::File(format!("{shown}: {e}")))
}

fn parse(
    text: &str,
    rounds: Option<u32>,
    duration: Option<Duration>,
    only: &[String],
) -> Result<Matrix, String> {
    let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let list = |s: &Option<String>| s.as_deref().map(cpus::parse).transpose();
    let check_rounds = |r: u32| {
        if (1..=100).contains(&r) {
            Ok(r)
        } else {
            Err(format!("rounds = {r}: from 1 to 100"))
        }
    };
    let default_rounds = check_rounds(rounds.or(f.rounds).unwrap_or(DEFAULT_ROUNDS))?;
    if f.server.is_empty() {
        return Err("no [[server]]: name at least one server to start".into());
    }
    let mut servers = Vec::new();
    for s in f.server {
        check_name(&s.name).map_err(|e| format!("[[server]] {e}"))?;
        if let Some(m) = s.commands.keys().find(|m| !MODES.contains(&m.as_str())) {
            return Err(format!(
                "server '{}': commands.{m}: not a mode ({})",
                s.name,
                MODES.join(", ")
            ));
        }
        if let Some(u) = &s.url {
            check_url_template(u).map_err(|e| format!("server '{}': url {e}", s.name))?;
        }
        servers.push(ServerSpec::Start {
            name: s.name,
            command: s.command,
            by_mode: s.commands,
            url: s.url,
        });
    }
    if let Some(name) = only
        .iter()
        .find(|n| !f.scenario.iter().any(|s| &&s.name == n))
    {
        let names: Vec<&str> = f.scenario.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "--only {name}: no such scenario (there are: {})",
            names.join(", ")
        ));
    }
    let mut entries = Vec::new();
    for s in f.scenario {
        check_name(&s.name).map_err(|e| format!("[[scenario]] {e}"))?;
        if entries.iter().any(|e: &Entry| e.name == s.name) {
            return Err(format!("two scenarios are named '{}'", s.name));
        }
        if !only.is_empty() && !only.contains(&s.name) {
            continue;
        }
        let mut argv = vec!["scenario".to_string(), s.mode.clone()];
        argv.extend(s.flags.words());
        let mut scenario = ModeOnly::try_parse_from(&argv)
            .map_err(|e| format!("scenario '{}': {}", s.name, e.render().to_string().trim()))?
            .into_scenario();
        if let Some(d) = duration {
            scenario.set_duration(d);
        }
        let r = match rounds {
            Some(r) => r,
            None => check_rounds(s.rounds.unwrap_or(default_rounds))?,
        };
        entries.push(Entry {
            title: s.title.unwrap_or_else(|| scenario.describe()),
            name: s.name,
            scenario,
            rounds: r,
            load_cpus: list(&s.load_cpus)?,
        });
    }
    if entries.is_empty() {
        return Err("no [[scenario]] to run".into());
    }
    Ok(Matrix {
        entries,
        servers,
        rounds: default_rounds,
        server_cpus: list(&f.server_cpus)?,
        load_cpus: list(&f.load_cpus)?,
        json: None,
        html: None,
        svg: None,
        usage: vec!["compare"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Scenario;

    const FILE: &str = r#"
rounds = 2
server_cpus = "0"
load_cpus = "1"

[[server]]
name = "wsd"
command = "wsd --listen 127.0.0.1:{port}"
commands.broadcast = "wsd --listen 127.0.0.1:{port} --mode broadcast"

[[server]]
name = "peer"
command = "peer 127.0.0.1:{port}"
url = "wss://localhost:{port}/room"

[[scenario]]
name = "echo-d16"
mode = "echo"
flags = "-c 100 --depth 16 -s 32 -d 5s"

[[scenario]]
name = "fanout"
mode = "broadcast"
flags = ["-c", "1000", "-R", "2000"]
rounds = 1
title = "broadcast at 2k/s"
load_cpus = "0-1"
"#;

    #[test]
    fn a_file_names_servers_and_scenarios() {
        let m = parse(FILE, None, None, &[]).expect("valid");
        assert_eq!(m.servers.len(), 2);
        assert_eq!(
            m.servers[0].command_for("echo"),
            Some("wsd --listen 127.0.0.1:{port}")
        );
        assert_eq!(
            m.servers[0].command_for("broadcast"),
            Some("wsd --listen 127.0.0.1:{port} --mode broadcast")
        );
        assert_eq!(
            m.servers[1].command_for("broadcast"),
            Some("peer 127.0.0.1:{port}")
        );
        let [echo, fanout] = &m.entries[..] else {
            panic!("two scenarios")
        };
        assert!(
            matches!(&echo.scenario, Scenario::Echo(a) if a.depth == 16 && a.connections == 100)
        );
        assert_eq!((echo.rounds, fanout.rounds), (2, 1));
        assert_eq!(fanout.title, "broadcast at 2k/s");
        assert!(
            echo.title.starts_with("echo, 100 connections"),
            "{}",
            echo.title
        );
        assert_eq!(
            fanout.load_cpus.as_ref().map(|l| l.to_string()).as_deref(),
            Some("0-1")
        );
        assert_eq!(m.server_cpus.map(|l| l.to_string()).as_deref(), Some("0"));
        assert_eq!(m.servers[0].url_at(7).as_deref(), Some("ws://127.0.0.1:7/"));
        assert_eq!(
            m.servers[1].url_at(7).as_deref(),
            Some("wss://localhost:7/room")
        );
    }

    #[test]
    fn flags_override_the_file_and_only_picks() {
        let d = Duration::from_millis(300);
        let m = parse(FILE, Some(5), Some(d), &["fanout".into()]).expect("valid");
        let [fanout] = &m.entries[..] else {
            panic!("one scenario")
        };
        assert_eq!(fanout.rounds, 5);
        assert_eq!(fanout.scenario.phases().duration, d);
        assert!(parse(FILE, None, None, &["nope".into()])
            .is_err_and(|e| e.contains("no such scenario (there are: echo-d16, fanout)")));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("rounds = 0\n", "rounds = 0"),
            ("bogus = 1\n", "unknown field"),
            ("[[scenario]]\nname = \"a\"\nmode = \"echo\"\n", "no [[server]]"),
            (
                "[[server]]\nname = \"a\"\ncommand = \"x {port}\"\ncommands.ping = \"y\"\n",
                "commands.ping: not a mode",
            ),
            (
                "[[server]]\nname = \"a\"\ncommand = \"x\"\n[[scenario]]\nname = \"s\"\nmode = \"echo\"\nflags = \"--depth 0\"\n",
                "scenario 's'",
            ),
            (
                "[[server]]\nname = \"a b\"\ncommand = \"x\"\n",
                "is not a name",
            ),
            (
                "[[server]]\nname = \"a\"\ncommand = \"x {port}\"\nurl = \"wss://localhost:9/\"\n",
                "server 'a': url 'wss://localhost:9/': the URL has no {port}",
            ),
            (
                "[[server]]\nname = \"a\"\ncommand = \"x {port}\"\nurl = \"http://localhost:{port}/\"\n",
                "server 'a': url",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text, None, None, &[]).expect_err(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
