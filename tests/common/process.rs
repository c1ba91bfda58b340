//! wsd as a child process (the release-like binary, as a user runs it),
//! and what /proc says about a process.

use super::*;

/// Makes the process `cmd` starts get SIGKILL when the thread that starts
/// it ends (`PR_SET_PDEATHSIG`): a test that panics drops its children,
/// but one its watchdog aborts does not, and they would outlive the run.
pub fn die_with_this_thread(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure makes one system call,
    // prctl: no allocation, no lock, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A `wsd` process started by a test, with its stdout banner read and its
/// stderr collected line by line. Dropping it kills (SIGKILL) and reaps the
/// process if it is still running; only this process is ever signalled.
pub struct WsdProcess {
    pub child: std::process::Child,
    /// The `ws://` (or `wss://`) addresses from the banner.
    pub addrs: Vec<SocketAddr>,
    /// The banner line as printed.
    pub banner: String,
    stderr: mpsc::Receiver<String>,
}

impl WsdProcess {
    /// Starts `wsd` with `args` and reads its banner
    /// (`wsd listening on ws://A, ws://B (MODE mode)`).
    pub fn start(args: &[&str]) -> WsdProcess {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wsd"));
        cmd.args(args);
        WsdProcess::launch(cmd)
    }

    /// Spawns `cmd` (which ends up exec'ing wsd) with piped output, and
    /// reads the banner.
    fn launch(mut cmd: std::process::Command) -> WsdProcess {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = die_with_this_thread(&mut cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wsd");
        // Each pipe is read on its own thread into a channel, so neither
        // fills and blocks wsd.
        fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        }
        let out_rx = lines(child.stdout.take().unwrap());
        let mut p = WsdProcess {
            stderr: lines(child.stderr.take().unwrap()),
            child,
            addrs: Vec::new(),
            banner: String::new(),
        };
        let banner = match out_rx.recv_timeout(IO_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let errs: Vec<String> = p.stderr.try_iter().collect();
                panic!("no banner from wsd ({e}); stderr: {errs:?}");
            }
        };
        let rest = banner
            .strip_prefix("wsd listening on ")
            .unwrap_or_else(|| panic!("unexpected banner {banner:?}"));
        let (urls, _mode) = rest
            .rsplit_once(" (")
            .unwrap_or_else(|| panic!("unexpected banner {banner:?}"));
        p.addrs = urls
            .split(", ")
            .map(|u| {
                u.strip_prefix("ws://")
                    .or_else(|| u.strip_prefix("wss://"))
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("bad address {u:?} in banner {banner:?}"))
            })
            .collect();
        p.banner = banner;
        p
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM", "INT") to this process only, by PID.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits (at most `limit`) for the process to exit; panics if it does not.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let until = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < until,
                "wsd (pid {}) still running after {limit:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The next stderr line containing `needle`, waiting at most `limit`
    /// overall; panics (with what was seen) if none comes.
    pub fn stderr_line_containing(&mut self, needle: &str, limit: Duration) -> String {
        let until = std::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("no stderr line containing {needle:?} ({e}); saw {seen:?}"),
            }
        }
    }
}

impl Drop for WsdProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Child::kill is SIGKILL to this child's PID only.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// This process's resident set size in KiB (`VmRSS` in /proc/self/status).
/// An in-process server's memory is part of it.
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// This process's soft limit on open files (`ulimit -n`), from
/// /proc/self/limits; `None` if unlimited or unreadable.
pub fn open_files_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl WsdProcess {
    /// Starts `wsd` with `args` through `sh -c "PREFIX && exec wsd ARGS"`
    /// (say, `ulimit -n 40`), and reads its banner like [`WsdProcess::start`].
    /// `exec` keeps the PID: signals reach wsd itself.
    pub fn start_in_shell(prefix: &str, args: &[&str]) -> WsdProcess {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!("{prefix} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_wsd"))
            .args(args);
        WsdProcess::launch(cmd)
    }

    /// Every stderr line still to come, up to the end of the stream (the
    /// process exited), waiting at most `limit`; panics if it does not end.
    pub fn stderr_to_end(&mut self, limit: Duration) -> Vec<String> {
        let until = std::time::Instant::now() + limit;
        let mut lines = Vec::new();
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(e) => panic!("stderr did not end ({e}); saw {lines:?}"),
            }
        }
    }

    /// Every stderr line received so far (without waiting).
    pub fn stderr_so_far(&mut self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

/// How a `wsd` run that was expected to stop by itself ended.
pub struct WsdExit {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `wsd` with `args` and an environment change (`(name, Some(value))`
/// sets, `None` removes), expecting it to exit by itself within `limit`
/// (a usage error, say); kills it and panics if it does not.
pub fn run_wsd_to_exit(args: &[&str], env: &[(&str, Option<&str>)], limit: Duration) -> WsdExit {
    use std::process::Stdio;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wsd"));
    die_with_this_thread(&mut cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    let mut child = cmd.spawn().expect("spawn wsd");
    let until = std::time::Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() >= until {
            // Child::kill is SIGKILL to this child's PID only.
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsd {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("wsd output");
    WsdExit {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The resident set size of process `pid` in KiB.
pub fn process_rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}
