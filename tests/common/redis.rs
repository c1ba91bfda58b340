//! A throwaway `redis-server` for tests: started on a free loopback port
//! with no persistence, stopped by its PID (never the system service), and
//! killed when dropped.
//!
//! A machine without `redis-server` fails the test with the command that
//! installs it: a bus test that silently skips tests nothing.

// Each test binary uses a subset.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server has to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running (or stopped, to be restarted) redis-server.
pub struct RedisServer {
    port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// The path of `redis-server`; fails the test if it is not installed.
fn redis_server() -> &'static str {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "redis-server is not installed; the bus tests need a real one: run `apt-get install redis-server`"
    );
    "redis-server"
}

impl RedisServer {
    /// A server on a free port.
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port(), &[])
    }

    /// A server on `port`, with extra command-line settings (`--requirepass
    /// x`, ...), answering PING before this returns.
    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        server.restart();
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends `PUBLISH channel payload` as a backend would (a raw RESP
    /// client, no redis-cli) and returns Redis's answer: how many
    /// subscriptions got it.
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> i64 {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, START_TIMEOUT).expect("connect to redis");
        s.set_read_timeout(Some(START_TIMEOUT)).unwrap();
        let mut cmd = b"*3\r\n$7\r\nPUBLISH\r\n".to_vec();
        for arg in [channel, payload] {
            cmd.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            cmd.extend_from_slice(arg);
            cmd.extend_from_slice(b"\r\n");
        }
        s.write_all(&cmd).unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 64];
        while !reply.ends_with(b"\r\n") {
            let n = s.read(&mut buf).expect("PUBLISH reply");
            assert!(n > 0, "redis closed before replying to PUBLISH");
            reply.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&reply);
        text.strip_prefix(':')
            .and_then(|n| n.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("PUBLISH replied {text:?}"))
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Starts it (again) on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let mut cmd = Command::new(redis_server());
        let child = crate::common::die_with_this_thread(&mut cmd)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Kills it (SIGKILL) and waits for it: like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing is read.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = self.pid().expect("not running") as libc::pid_t;
        // SAFETY: kill(2) on the PID of our own child, still unreaped.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let until = Instant::now() + START_TIMEOUT;
        while Instant::now() < until {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "redis-server on port {} exited at start: {status}",
                    self.port
                );
            }
            if ping(addr, self.extra.iter().any(|a| a == "--requirepass")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer in {START_TIMEOUT:?}",
            self.port
        );
    }
}

/// A broadcast wsd node on the bus at `url`, with keepalive pings off (a
/// test on a busy machine can run past the interval, and a Ping would then
/// arrive where it expects data).
pub fn wsd_node(url: &str, extra: &[&str]) -> crate::common::WsdProcess {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--mode",
        "broadcast",
        "--ping-interval",
        "off",
        "--redis",
        url,
    ];
    args.extend_from_slice(extra);
    crate::common::WsdProcess::start(&args)
}

/// Polls the unlabelled metric `name` until `ok` holds; fails after
/// [`START_TIMEOUT`] three times over with the last value.
pub fn wait_metric(addr: SocketAddr, name: &str, ok: impl Fn(f64) -> bool) {
    let until = Instant::now() + 3 * START_TIMEOUT;
    loop {
        let v = crate::common::metric(addr, name);
        if ok(v) {
            return;
        }
        assert!(Instant::now() < until, "{name} stayed at {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a server answers on `addr` (PING, or with a password set, any
/// reply at all: NOAUTH is an answer).
fn ping(addr: SocketAddr, auth_required: bool) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if auth_required => n > 0,
        Ok(n) => buf[..n].starts_with(b"+PONG"),
        Err(_) => false,
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A stopped process dies of SIGKILL all the same.
            self.kill();
        }
    }
}
