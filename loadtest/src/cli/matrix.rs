//! What `compare` runs, however it was asked for (flags or a scenario
//! file): scenarios × servers × rounds, and the checks clap cannot make.
//! [`super::compare`] builds one from the flags, [`super::file`] from a
//! file; both stand above this.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Scenario;
use crate::cpus::CpuList;
use crate::target::Target;

/// A server to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerSpec {
    /// Started afresh for every run.
    Start {
        /// Its name.
        name: String,
        /// The command, with `{port}`.
        command: String,
        /// Another command for some modes (a scenario file's `commands`).
        by_mode: BTreeMap<String, String>,
        /// How to reach it: a `ws://` or `wss://` URL with `{port}` (a
        /// room in its path, say); `None`: `ws://127.0.0.1:{port}/`.
        url: Option<String>,
    },
    /// Already running.
    Running {
        /// Its name: the URL.
        name: String,
        /// Where it listens.
        target: Target,
        /// Its process, to sample.
        pid: Option<u32>,
    },
}

impl ServerSpec {
    /// Its name in tables and charts.
    pub fn name(&self) -> &str {
        match self {
            ServerSpec::Start { name, .. } | ServerSpec::Running { name, .. } => name,
        }
    }

    /// The URL a started server is loaded at once it listens on `port`
    /// (`None` for a running one: it has its target).
    pub fn url_at(&self, port: u16) -> Option<String> {
        match self {
            ServerSpec::Start { url, .. } => Some(
                url.as_deref()
                    .unwrap_or(DEFAULT_URL)
                    .replace("{port}", &port.to_string()),
            ),
            ServerSpec::Running { .. } => None,
        }
    }

    /// The command a started server runs in `mode`.
    pub fn command_for(&self, mode: &str) -> Option<&str> {
        match self {
            ServerSpec::Start {
                command, by_mode, ..
            } => Some(by_mode.get(mode).unwrap_or(command)),
            ServerSpec::Running { .. } => None,
        }
    }
}

/// One scenario of a comparison.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// What it does, in words.
    pub title: String,
    /// The mode and its flags.
    pub scenario: Scenario,
    /// Its rounds.
    pub rounds: u32,
    /// Where wsload runs for it, if not where the comparison says.
    pub load_cpus: Option<CpuList>,
}

/// What `compare` asks for: scenarios × servers × rounds, and the outputs.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// The scenarios, in order.
    pub entries: Vec<Entry>,
    /// The servers, in order.
    pub servers: Vec<ServerSpec>,
    /// The default rounds.
    pub rounds: u32,
    /// Where started servers run.
    pub server_cpus: Option<CpuList>,
    /// Where wsload runs.
    pub load_cpus: Option<CpuList>,
    /// The JSON document.
    pub json: Option<PathBuf>,
    /// The HTML report.
    pub html: Option<PathBuf>,
    /// The charts' directory.
    pub svg: Option<PathBuf>,
    /// The subcommand path whose usage a usage error shows.
    pub usage: Vec<&'static str>,
}

/// Why a comparison cannot start.
#[derive(Debug, PartialEq, Eq)]
pub enum MatrixError {
    /// The flags do not fit together: a usage error of this mode's command.
    Usage(Vec<&'static str>, String),
    /// The scenario file is wrong.
    File(String),
}

/// Where a started server is loaded unless its URL template says.
pub const DEFAULT_URL: &str = "ws://127.0.0.1:{port}/";

/// Checks a started server's URL template: `ws://` or `wss://`, a
/// `{port}`, and a URL once the port is in. Returns what is wrong.
pub fn check_url_template(t: &str) -> Result<(), String> {
    if !t.contains("{port}") {
        return Err(format!(
            "'{t}': the URL has no {{port}}, so it cannot follow the port the server is given"
        ));
    }
    crate::target::parse_target(&t.replace("{port}", "1")).map(|_| ())
}

/// Rounds when neither the flags nor the file say.
pub const DEFAULT_ROUNDS: u32 = 3;

impl Matrix {
    /// What clap cannot check: unique names, `{port}` in every command,
    /// CPUs this process may use.
    pub fn check(&self) -> Result<(), MatrixError> {
        let usage = |msg: String| MatrixError::Usage(self.usage.clone(), msg);
        let mut names: Vec<&str> = self.servers.iter().map(ServerSpec::name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w.first() == w.get(1)) {
            return Err(usage(format!(
                "two servers are named '{}'",
                w.first().unwrap_or(&"")
            )));
        }
        for s in &self.servers {
            if let ServerSpec::Start {
                name,
                command,
                by_mode,
                url,
            } = s
            {
                if let Some(u) = url {
                    check_url_template(u).map_err(|e| usage(format!("server '{name}': {e}")))?;
                }
                for c in std::iter::once(command).chain(by_mode.values()) {
                    if !c.contains("{port}") {
                        return Err(usage(format!(
                            "server '{name}': its command has no {{port}}, so it cannot be given a free port: {c}"
                        )));
                    }
                }
            }
        }
        for s in &self.servers {
            if let ServerSpec::Running {
                target,
                pid: Some(pid),
                ..
            } = s
            {
                if let Err(e) = crate::proc::sample(*pid) {
                    return Err(usage(format!(
                        "PID {pid} of {target}: cannot read /proc/{pid}: {e}"
                    )));
                }
            }
        }
        for e in &self.entries {
            if let Scenario::Rate(r) = &e.scenario {
                r.capacity
                    .validate(false)
                    .map_err(|m| usage(format!("scenario '{}': {m}", e.name)))?;
            }
            // One API URL cannot follow servers that each get a port.
            if matches!(&e.scenario, Scenario::Broadcast(b) if b.publish_url.is_some()) {
                return Err(usage(format!(
                    "scenario '{}': --publish-url names one server; compare runs several",
                    e.name
                )));
            }
        }
        let allowed = CpuList::allowed().map_err(|e| usage(format!("sched_getaffinity: {e}")))?;
        let lists = [
            ("--server-cpus", &self.server_cpus),
            ("--load-cpus", &self.load_cpus),
        ];
        let scenario_lists = self
            .entries
            .iter()
            .map(|e| ("a scenario's load_cpus", &e.load_cpus));
        for (flag, list) in lists.into_iter().chain(scenario_lists) {
            if let Some(l) = list {
                l.check_allowed(&allowed)
                    .map_err(|e| usage(format!("{flag} {l}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// A server or scenario name: letters, digits, `.`, `_`, `-`, `+`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._-+".contains(c);
    if name.is_empty() || !name.chars().all(ok) {
        return Err(format!(
            "'{name}' is not a name (letters, digits, '.', '_', '-', '+')"
        ));
    }
    Ok(())
}
