//! Helpers for wsload's integration tests: an in-process wsd on a loopback
//! port, and running the wsload binary under a watchdog deadline.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub mod api;

use serde_json::Value;
use wsd::proto::frame::{decode_header, write_frame, OpCode, Parsing};
use wsd::proto::handshake::accept_key;
use wsd::proto::mask::apply_mask;
use wsd::{Config, Mode, Server, ShutdownHandle};

/// How long one wsload run may go without progress before the test fails:
/// neither it (nor the servers it started) nor this process (the
/// in-process wsd) used any CPU in that time. A run on a busy machine is
/// slower, not stuck: under `scripts/stress-tests.sh` its processes get
/// one or two percent of a core.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How long one wsload run may take at all, busy or not (a loop that never
/// ends uses CPU too): ten times [`DEADLINE`].
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Makes the process `cmd` starts get SIGKILL when the thread that starts
/// it ends (`PR_SET_PDEATHSIG`), so a test binary that is killed takes its
/// wsload runs with it.
pub fn die_with_this_thread(cmd: &mut Command) -> &mut Command {
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

/// The target directory and profile this test was built in: it runs as
/// TARGET/PROFILE/deps/NAME-HASH.
pub fn target_dir() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("TARGET/PROFILE/deps");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile")
        .to_string();
    let target = profile_dir.parent().expect("TARGET").to_path_buf();
    (target, profile)
}

/// CPU time in clock ticks of `pid` and every live descendant, with what
/// their reaped children used (utime, stime, cutime, cstime of
/// /proc/PID/stat).
fn tree_ticks(pid: u32) -> u64 {
    let mut total = 0;
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // After the command name (in parentheses) comes field 3; utime is
        // field 14.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        total += rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum::<u64>();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            todo.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    total
}

/// Whether anything was being done between two looks: this process (the
/// in-process wsd) or any process it started (wsload, the servers wsload
/// started) used CPU. Other tests running alongside count too.
pub struct Progress {
    ticks: u64,
}

impl Progress {
    /// Starts watching.
    pub fn start() -> Progress {
        Progress {
            ticks: tree_ticks(std::process::id()),
        }
    }

    /// Whether CPU was used since the start or the last call.
    pub fn made(&mut self) -> bool {
        let now = tree_ticks(std::process::id());
        let made = now > self.ticks;
        self.ticks = now;
        made
    }
}

/// A wsd server on 127.0.0.1:0 in a thread; stopped on drop.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts wsd in `mode`; in broadcast mode, `to_sender` says whether a
    /// publisher gets its own messages.
    pub fn start(mode: Mode, to_sender: bool) -> TestServer {
        TestServer::start_with(Config {
            mode,
            broadcast_to_sender: to_sender,
            ..Config::default()
        })
    }

    /// Starts wsd with `config`, listening on 127.0.0.1:0 whatever it says.
    pub fn start_with(config: Config) -> TestServer {
        // The server is not Send: it is bound in its own thread, which
        // hands back its address and shutdown handle.
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            let mut server = Server::bind(Config {
                listen: vec!["127.0.0.1:0".parse().expect("loopback address")],
                ..config
            })
            .expect("bind wsd");
            let _ = tx.send((server.local_addr(), server.shutdown_handle()));
            server.run().expect("wsd run");
        });
        let (addr, handle) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("wsd started");
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// The server's ws:// URL.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a wsload run left behind.
pub struct Run {
    /// The exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as the `--json -` object.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs wsload with `args`, killing it and failing the test once it made
/// no progress for [`DEADLINE`] or ran for [`RUN_LIMIT`].
pub fn wsload(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsload"));
    let mut child = die_with_this_thread(&mut cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsload");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_thread = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let began = Instant::now();
    let mut progress = Progress::start();
    let (mut quiet_since, mut looked) = (began, began);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if looked.elapsed() >= Duration::from_secs(1) {
            looked = Instant::now();
            if progress.made() {
                quiet_since = looked;
            }
            let stuck = quiet_since.elapsed() > DEADLINE;
            if stuck || began.elapsed() > RUN_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                let why = if stuck {
                    format!("made no progress for {DEADLINE:?}")
                } else {
                    "is still running (busy: it used CPU all along)".into()
                };
                let stderr = err_thread.join().unwrap_or_default();
                let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
                panic!(
                    "wsload {args:?} {why}, {:?} after it started; its stderr ends:\n{}",
                    began.elapsed(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out_thread.join().expect("stdout reader"),
        stderr: err_thread.join().expect("stderr reader"),
    }
}

/// A JSON number as u64, failing the test if it is missing.
pub fn n(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a count in {v}"))
}

/// Connections a fake server accepts before it stops listening.
const MAX_FAKE_CONNECTIONS: usize = 2000;

/// Reads an HTTP request head from `s`.
pub fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// The Sec-WebSocket-Key of a request head.
pub fn key_of(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .map(str::to_string)
}

/// Reads an HTTP request head from `s`; returns its Sec-WebSocket-Key.
pub fn read_key(s: &mut TcpStream) -> Option<String> {
    read_head(s).as_deref().and_then(key_of)
}

/// Answers an upgrade request with `key` with a 101; `extra` is more
/// header lines, each ending in CRLF.
pub fn accept_upgrade(s: &mut TcpStream, key: &str, extra: &str) -> bool {
    let accept = accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        String::from_utf8_lossy(&accept)
    );
    s.write_all(head.as_bytes()).is_ok()
}

/// A fake server on a loopback port: `serve` handles each connection.
pub fn fake_server(serve: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    thread::spawn(move || {
        for s in listener.incoming().take(MAX_FAKE_CONNECTIONS).flatten() {
            // The watchdog: a stuck peer cannot hold the thread for long.
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            thread::spawn(move || serve(s));
        }
    });
    url
}

/// Completes the handshake, then echoes every frame with its last payload
/// byte changed.
pub fn corrupting_echo(mut s: TcpStream) {
    let Some(key) = read_key(&mut s) else { return };
    if !accept_upgrade(&mut s, &key, "") {
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        while let Ok(Parsing::Done { value, offset }) = decode_header(&buf) {
            let end = offset + value.len as usize;
            if buf.len() < end {
                break;
            }
            let mut payload = buf[offset..end].to_vec();
            if let Some(key) = value.mask {
                apply_mask(&mut payload, key, 0);
            }
            buf.drain(..end);
            let mut out = Vec::new();
            match value.opcode {
                OpCode::Close => {
                    write_frame(&mut out, OpCode::Close, &payload);
                    let _ = s.write_all(&out);
                    return;
                }
                op => {
                    if let Some(last) = payload.last_mut() {
                        *last ^= 0x01;
                    }
                    write_frame(&mut out, op, &payload);
                }
            }
            if s.write_all(&out).is_err() {
                return;
            }
        }
    }
}
