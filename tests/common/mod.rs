//! Shared pieces of the integration tests: an in-process server harness, a
//! small blocking WebSocket client that talks raw bytes over a real loopback
//! socket, and a per-test watchdog.
//!
//! The client frames and parses on its own (it does not use wsd's codec), so
//! a bug shared by the server's encoder and decoder cannot hide itself.
//!
//! A socket operation that waits [`IO_TIMEOUT`] while this process does no
//! work panics with what it was waiting for, and [`watchdog`] aborts a test
//! that makes no progress for [`TEST_DEADLINE`]: a hang fails the test
//! instead of stalling CI, and a busy machine only makes it slower
//! (`watchdog.rs` says how progress is told).

// Each test binary compiles this module on its own and uses a subset of it;
// the unused rest would otherwise be dead-code warnings in every binary.
#![allow(dead_code)]

mod client;
mod frame;
mod http;
mod process;
mod scratch;
pub mod tls;

// A binary that uses nothing of one part would warn of its re-export.
#[allow(unused_imports)]
pub use {client::*, frame::*, http::*, process::*, scratch::*};

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use wsd::{Config, Mode, Server, ShutdownHandle, Stats};

mod watchdog;
pub use watchdog::*;

/// How long a socket operation waits before it looks at whether anything
/// is being done: if this process did no work meanwhile, the operation
/// fails; if it did, the operation waits again (see [`Progress`]).
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The RFC 6455 §1.3 sample key and its accept value.
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opcodes as nibbles, so tests can also send reserved ones.
pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A config listening on an ephemeral loopback port, with keepalive pings
/// off: a test on a busy machine can run past the default 30 s interval,
/// and a Ping would then arrive where it expects data. The keepalive tests
/// turn them on.
pub fn config(mode: Mode) -> Config {
    Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        mode,
        ping_interval: None,
        ..Default::default()
    }
}

/// A wsd server running on its own thread. `Server` is not `Send` (its
/// broadcast frames are `Rc`), so it is bound on that thread and only its
/// address, shutdown handle and final counters cross over.
pub struct TestServer {
    addr: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<Stats>>,
}

impl TestServer {
    /// Binds `cfg` (whose `listen` must be a loopback port 0) and runs it.
    pub fn start(cfg: Config) -> TestServer {
        TestServer::start_all(cfg).0
    }

    /// An echo server with default settings.
    pub fn echo() -> TestServer {
        TestServer::start(config(Mode::Echo))
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connected, upgraded client.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Stops the server and returns its counters.
    pub fn stop(mut self) -> Stats {
        self.handle.shutdown();
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("server thread panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

/// `n` bytes of a recognisable pattern.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

impl TestServer {
    /// Like [`TestServer::start`], also returning every listener's address
    /// in the order configured: `Server::local_addrs`, then
    /// `Server::metrics_addrs`.
    pub fn start_all(cfg: Config) -> (TestServer, Vec<SocketAddr>) {
        TestServer::start_all_with(cfg, || {})
    }

    /// Like [`TestServer::start`], running `on_thread` first on the
    /// server's thread (to mark it for a counting allocator, say).
    pub fn start_with(cfg: Config, on_thread: fn()) -> TestServer {
        TestServer::start_all_with(cfg, on_thread).0
    }

    fn start_all_with(cfg: Config, on_thread: fn()) -> (TestServer, Vec<SocketAddr>) {
        assert!(cfg
            .listen
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 0));
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("wsd-server".into())
            .spawn(move || {
                on_thread();
                let mut server = Server::bind(cfg).expect("bind");
                let addrs = [server.local_addrs(), server.metrics_addrs()].concat();
                tx.send((addrs, server.shutdown_handle())).unwrap();
                server.run().expect("server loop failed");
                server.stats().clone()
            })
            .unwrap();
        let (addrs, handle) = rx.recv_timeout(IO_TIMEOUT).expect("server did not start");
        let server = TestServer {
            addr: addrs[0],
            handle,
            thread: Some(thread),
        };
        (server, addrs)
    }

    /// The handle that drains or stops this server.
    pub fn handle(&self) -> &ShutdownHandle {
        &self.handle
    }

    /// Asks for a graceful drain (`ShutdownHandle::drain`) without waiting.
    pub fn begin_drain(&self) {
        self.handle.drain();
    }

    /// Whether `Server::run` has returned.
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits (at most `limit`) for `Server::run` to return by itself, after
    /// a drain, and returns the counters. Panics if it does not.
    pub fn wait_stopped(mut self, limit: Duration) -> Stats {
        let until = std::time::Instant::now() + limit;
        while !self.finished() {
            assert!(
                std::time::Instant::now() < until,
                "server still running {limit:?} after it was asked to drain"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("server thread panicked")
    }

    /// A graceful drain: asks for it, then waits (at most `limit`) for the
    /// server to return, and gives its counters.
    pub fn drain(self, limit: Duration) -> Stats {
        self.begin_drain();
        self.wait_stopped(limit)
    }
}
