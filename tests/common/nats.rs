//! A throwaway `nats-server` for tests: started on a free loopback port
//! with its own config file (limits, a cluster port and routes to other
//! test servers), stopped by its PID (never a system service), killed when
//! dropped.
//!
//! A machine without `nats-server` fails the test with the command that
//! installs it: a bus test that silently skips tests nothing.

// Each test binary uses a subset.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server has to greet a client.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// The path of `nats-server`; fails the test if it is not installed.
fn nats_server() -> &'static str {
    let found = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "nats-server is not installed; the NATS bus tests need a real one: run scripts/test.sh or `apt-get install nats-server`"
    );
    "nats-server"
}

/// A running (or stopped, to be restarted) nats-server.
pub struct NatsServer {
    port: u16,
    conf: PathBuf,
    child: Option<Child>,
}

/// How to start one.
#[derive(Default)]
pub struct Setup {
    /// `max_payload`, if not the default 1 MiB.
    pub max_payload: Option<usize>,
    /// Join a cluster: this server's route port, and the route ports of
    /// the others.
    pub cluster: Option<(u16, Vec<u16>)>,
    /// Require this user and password.
    pub auth: Option<(&'static str, &'static str)>,
}

impl NatsServer {
    /// A lone server on a free port, with the defaults.
    pub fn start() -> NatsServer {
        NatsServer::start_with(Setup::default())
    }

    /// A server on a free port, as `setup` says, greeting clients before
    /// this returns.
    pub fn start_with(setup: Setup) -> NatsServer {
        let port = free_port();
        let mut conf = format!("listen: \"127.0.0.1:{port}\"\n");
        if let Some(n) = setup.max_payload {
            conf.push_str(&format!("max_payload: {n}\n"));
        }
        if let Some((user, pass)) = setup.auth {
            conf.push_str(&format!(
                "authorization {{\n  user: {user}\n  password: \"{pass}\"\n}}\n"
            ));
        }
        if let Some((own, others)) = &setup.cluster {
            let routes: Vec<String> = others
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            conf.push_str(&format!(
                "cluster {{\n  name: wsdtest\n  listen: \"127.0.0.1:{own}\"\n  routes: [{}]\n}}\n",
                routes.join(", ")
            ));
        }
        let path =
            std::env::temp_dir().join(format!("wsd-test-nats-{}-{port}.conf", std::process::id()));
        std::fs::write(&path, conf).expect("write nats-server config");
        let mut server = NatsServer {
            port,
            conf: path,
            child: None,
        };
        server.restart();
        server
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same ports.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut cmd = Command::new(nats_server());
        let child = crate::common::die_with_this_thread(&mut cmd)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nats-server");
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

    /// Publishes `payload` to `subject` as a backend would (a raw protocol
    /// client), and waits for the server to have handled it (PING/PONG).
    pub fn publish(&self, subject: &str, payload: &[u8]) {
        let mut s = self.client();
        let mut cmd = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        cmd.extend_from_slice(payload);
        cmd.extend_from_slice(b"\r\nPING\r\n");
        s.write_all(&cmd).unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 256];
        while !reply.ends_with(b"PONG\r\n") {
            let n = s.read(&mut buf).expect("PONG");
            assert!(
                n > 0,
                "nats-server closed before PONG: {:?}",
                String::from_utf8_lossy(&reply)
            );
            reply.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&reply);
        assert!(!text.contains("-ERR"), "{text}");
    }

    /// A connected, logged-in protocol client (INFO read, CONNECT sent).
    fn client(&self) -> TcpStream {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, START_TIMEOUT).expect("connect to nats");
        s.set_read_timeout(Some(START_TIMEOUT)).unwrap();
        let mut info = Vec::new();
        let mut byte = [0u8; 1];
        while !info.ends_with(b"\r\n") {
            assert_eq!(s.read(&mut byte).expect("INFO"), 1, "no INFO");
            info.push(byte[0]);
        }
        assert!(info.starts_with(b"INFO "));
        s.write_all(b"CONNECT {\"verbose\":false}\r\n").unwrap();
        s
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
                    "nats-server on port {} exited at start: {status}",
                    self.port
                );
            }
            if greets(addr) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "nats-server on port {} did not greet in {START_TIMEOUT:?}",
            self.port
        );
    }
}

/// Whether a server sends INFO on `addr`.
fn greets(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).is_ok() && &buf == b"INFO "
}

/// Two servers joined by a route.
pub fn cluster_of_two() -> (NatsServer, NatsServer) {
    let (r1, r2) = (free_port(), free_port());
    let one = NatsServer::start_with(Setup {
        cluster: Some((r1, vec![r2])),
        ..Setup::default()
    });
    let two = NatsServer::start_with(Setup {
        cluster: Some((r2, vec![r1])),
        ..Setup::default()
    });
    (one, two)
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.conf);
    }
}

/// A broadcast wsd node on the NATS bus at `url`, keepalive pings off.
pub fn wsd_node(url: &str, extra: &[&str]) -> crate::common::WsdProcess {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--mode",
        "broadcast",
        "--ping-interval",
        "off",
        "--nats",
        url,
    ];
    args.extend_from_slice(extra);
    crate::common::WsdProcess::start(&args)
}
