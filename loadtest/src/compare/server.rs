//! Servers `compare` starts: a fresh process per run, on a free loopback
//! port, pinned to the server CPUs, awaited until it accepts, and stopped
//! by its PID. Every started process is in a registry, so Ctrl-C (or
//! SIGTERM, SIGHUP) stops them all before wsload exits.
//!
//! A server runs as `/bin/sh -c 'exec COMMAND'`: the shell reads the quotes
//! and `env NAME=VALUE` prefixes, then becomes the server, so the PID
//! wsload samples and stops is the server's own. Each server leads a
//! process group of its own: a terminal's Ctrl-C reaches wsload only, and
//! stopping signals the whole group, so children a server started go with
//! it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a server may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How much of a server's output is kept, for the error when it fails.
const OUTPUT_TAIL: usize = 4096;

/// The PIDs of the servers running now.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn running() -> MutexGuard<'static, Vec<u32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A server wsload started.
pub struct Launched {
    child: Child,
    /// Its process id (and process group id).
    pub pid: u32,
    /// The command it runs, `{port}` replaced.
    pub command: String,
    /// The loopback port it was given.
    pub port: u16,
    output: Option<JoinHandle<Vec<u8>>>,
}

/// Replaces every `{port}` in `template`.
pub fn with_port(template: &str, port: u16) -> String {
    template.replace("{port}", &port.to_string())
}

/// A loopback port nobody listens on now. The server binds it a moment
/// later; if another process takes it first, the server fails to start
/// and [`start`] tries once more with another port.
fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// How many lines of a failed server's output are kept for the report.
pub const OUTPUT_LINES: usize = 10;

/// Why a server could not be started: in words, how it ended, and the
/// last lines of its output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartFailure {
    /// What happened, in one line.
    pub what: String,
    /// How the process ended (`exit status: 127`), if it ran at all.
    pub status: Option<String>,
    /// The last [`OUTPUT_LINES`] lines it printed (stdout and stderr).
    pub output: Vec<String>,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        if !self.output.is_empty() {
            write!(f, "; its output ends:\n{}", self.output.join("\n"))?;
        }
        Ok(())
    }
}

/// Starts `template` on a free port, pinned to `cpus` if given, and waits until it
/// accepts a connection. Returns why it could not, with the end of its output.
pub fn start(template: &str, cpus: Option<libc::cpu_set_t>) -> Result<Launched, StartFailure> {
    match start_once(template, cpus) {
        Ok(l) => Ok(l),
        // A port taken between our probe and the server's bind looks like
        // an early exit: one more try on another port.
        Err(Failure::Exited(_)) => start_once(template, cpus).map_err(Failure::into_start),
        Err(f) => Err(f.into_start()),
    }
}

enum Failure {
    Spawn(String),
    Exited(StartFailure),
    Timeout(StartFailure),
}

impl Failure {
    fn into_start(self) -> StartFailure {
        match self {
            Failure::Spawn(what) => StartFailure {
                what,
                status: None,
                output: Vec::new(),
            },
            Failure::Exited(f) | Failure::Timeout(f) => f,
        }
    }
}

fn start_once(template: &str, cpus: Option<libc::cpu_set_t>) -> Result<Launched, Failure> {
    let port = free_port().map_err(|e| Failure::Spawn(format!("no free port: {e}")))?;
    let command = with_port(template, port);
    let (reader, writer) = io::pipe().map_err(|e| Failure::Spawn(format!("pipe: {e}")))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| Failure::Spawn(format!("pipe: {e}")))?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0);
    // SAFETY: between fork and exec the closure makes only system calls
    // (prctl; sched_setaffinity on a set prepared before the fork): no
    // allocation, no lock, async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // Should wsload itself be killed outright, the server goes too.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            match &cpus {
                Some(set) => crate::cpus::set_affinity(0, set),
                None => Ok(()),
            }
        });
    }
    let child = {
        // Registered under the lock, so an interrupt never misses it.
        let mut reg = running();
        let child = cmd
            .spawn()
            .map_err(|e| Failure::Spawn(format!("cannot run /bin/sh: {e}")))?;
        reg.push(child.id());
        child
    };
    // Our copies of the pipe's write end went with `cmd`: the reader sees
    // the end of the output when the server's group has exited.
    drop(cmd);
    let output = thread::spawn(move || tail(reader));
    let mut l = Launched {
        pid: child.id(),
        child,
        command,
        port,
        output: Some(output),
    };
    if l.await_accepting() {
        return Ok(l);
    }
    let ended = l.stop();
    let output = l.output_lines();
    Err(match ended {
        Ended::Exited(status) => Failure::Exited(StartFailure {
            what: format!(
                "`{}` exited before accepting a connection ({status})",
                l.command
            ),
            status: Some(status),
            output,
        }),
        ended => Failure::Timeout(StartFailure {
            what: format!(
                "`{}` did not accept a connection on 127.0.0.1:{port} within {}s, and was {ended}",
                l.command,
                START_TIMEOUT.as_secs()
            ),
            status: Some(ended.to_string()),
            output,
        }),
    })
}

/// How a started server ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited after SIGTERM.
    Term,
    /// It was still running after [`STOP_GRACE`] and got SIGKILL.
    Kill,
    /// It had exited before it was stopped, with this status.
    Exited(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Term => f.write_str("stopped by SIGTERM"),
            Ended::Kill => write!(
                f,
                "killed (SIGKILL): still running {}s after SIGTERM",
                STOP_GRACE.as_secs()
            ),
            Ended::Exited(status) => write!(f, "exited during the run ({status})"),
        }
    }
}

impl Launched {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Whether the server accepted a connection before it exited or
    /// [`START_TIMEOUT`] passed.
    fn await_accepting(&mut self) -> bool {
        let began = Instant::now();
        loop {
            if has_exited(self.pid) {
                return false;
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                return true;
            }
            if began.elapsed() > START_TIMEOUT {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM to its group; SIGKILL after
    /// [`STOP_GRACE`]), reaps it, and says how it ended.
    pub fn stop(&mut self) -> Ended {
        let mut reg = running();
        let ended = if has_exited(self.pid) {
            // It ended on its own: end any children it left, then say how.
            signal_group(self.pid, libc::SIGKILL);
            Ended::Exited(exit_status(&mut self.child))
        } else {
            terminate(self.pid)
        };
        let _ = self.child.wait();
        reg.retain(|&p| p != self.pid);
        ended
    }

    /// The last [`OUTPUT_LINES`] lines the server printed (stdout and
    /// stderr), once it has exited.
    pub fn output_lines(&mut self) -> Vec<String> {
        let bytes = self
            .output
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        last_lines(&String::from_utf8_lossy(&bytes), OUTPUT_LINES)
    }
}

/// The last `n` non-empty lines of `text`, trailing spaces trimmed.
fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let skip = lines.len().saturating_sub(n);
    lines.into_iter().skip(skip).map(String::from).collect()
}

impl Drop for Launched {
    fn drop(&mut self) {
        if running().contains(&self.pid) {
            self.stop();
        }
    }
}

/// Reads `r` to its end, keeping the last [`OUTPUT_TAIL`] bytes.
fn tail(mut r: impl io::Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return kept,
            Ok(n) => {
                kept.extend_from_slice(buf.get(..n).unwrap_or_default());
                if kept.len() > OUTPUT_TAIL {
                    kept.drain(..kept.len() - OUTPUT_TAIL);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return kept,
        }
    }
}

/// Whether `pid` has exited, without reaping it: while it is a zombie its
/// PID (and so its process group's id) cannot be reused, so signalling
/// the group stays safe.
fn has_exited(pid: u32) -> bool {
    // SAFETY: siginfo_t is plain old data; waitid only writes it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid siginfo_t pointer; WNOWAIT leaves the child unreaped.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: after a successful waitid, si_pid is the field it set (0 if
    // the child is still running).
    r == 0 && unsafe { info.si_pid() } != 0
}

fn exit_status(child: &mut Child) -> String {
    match child.try_wait() {
        Ok(Some(s)) => s.to_string(),
        _ => "status unknown".into(),
    }
}

fn signal_group(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; a negative pid names the
    // process group the server leads.
    unsafe { libc::kill(-(pid as libc::pid_t), sig) };
}

/// SIGTERM to the group, a bounded wait, SIGKILL to the group if the
/// server is still there; leaves it unreaped. Says how it ended.
fn terminate(pid: u32) -> Ended {
    signal_group(pid, libc::SIGTERM);
    let began = Instant::now();
    while began.elapsed() < STOP_GRACE {
        if has_exited(pid) {
            // Children that outlived their leader go too.
            signal_group(pid, libc::SIGKILL);
            return Ended::Term;
        }
        thread::sleep(Duration::from_millis(5));
    }
    signal_group(pid, libc::SIGKILL);
    Ended::Kill
}

/// Stops every running server when wsload is interrupted (SIGINT, SIGTERM
/// or SIGHUP), then exits with 128 + the signal's number.
pub fn stop_all_on_interrupt() -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            // Held to the exit: no server starts or stops meanwhile.
            let reg = running();
            for &pid in reg.iter() {
                terminate(pid);
                // SAFETY: reaps our own child; a null status pointer is allowed.
                unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
            }
            eprintln!(
                "\nwsload compare: interrupted; stopped {} server{}",
                reg.len(),
                if reg.len() == 1 { "" } else { "s" }
            );
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_not_found_says_its_status_and_output() {
        let f = match start("exec-this-command-does-not-exist --port {port}", None) {
            Err(f) => f,
            Ok(_) => panic!("a missing command started"),
        };
        assert_eq!(f.status.as_deref(), Some("exit status: 127"), "{f}");
        assert!(
            f.what.contains("exited before accepting a connection"),
            "{f}"
        );
        assert!(
            f.output.iter().any(|l| l.contains("not found")),
            "{:?}",
            f.output
        );
    }

    #[test]
    fn only_the_last_lines_are_kept() {
        let text: String = (1..=30).map(|i| format!("line {i}  \n\n")).collect();
        let kept = last_lines(&text, 3);
        assert_eq!(kept, ["line 28", "line 29", "line 30"]);
        assert!(last_lines("", 3).is_empty());
    }
}
