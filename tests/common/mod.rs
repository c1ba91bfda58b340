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

pub mod tls;

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

// ---------------------------------------------------------------------------
// Server harness

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

// ---------------------------------------------------------------------------
// Frames

/// A client frame with explicit FIN, RSV bits and opcode nibble, masked
/// with `key`, the length in its shortest form.
pub fn masked_frame(fin: bool, rsv: u8, op: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = frame_header(fin, rsv, op, payload.len() as u64, Some(key));
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A frame without a mask (what a client must not send).
pub fn unmasked_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(fin, 0, op, payload.len() as u64, None);
    out.extend_from_slice(payload);
    out
}

/// A frame header alone, declaring `len` payload bytes.
pub fn frame_header(fin: bool, rsv: u8, op: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (op & 0x0F)];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xFFFF {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A Close payload: code and reason bytes.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame received from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub op: u8,
    pub payload: Vec<u8>,
}

/// What [`Client::recv`] returns: a whole data message or one control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The close code (if the payload had one) and the reason bytes.
    Close(Option<u16>, Vec<u8>),
}

/// A parsed HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A standard upgrade request for `key`.
pub fn upgrade_request(key: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

// ---------------------------------------------------------------------------
// Client

/// A blocking client on a real socket, optionally over TLS (rustls's
/// client, driven over the same blocking socket). Input not yet parsed
/// stays in `buf`, so frames that arrive with the 101 answer are not lost.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    seed: u32,
    tls: Option<rustls::ClientConnection>,
}

impl Client {
    /// A TCP connection with no handshake yet.
    pub fn connect_raw(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let seed = u32::from(stream.local_addr().unwrap().port()) | 1;
        Client {
            stream,
            buf: Vec::new(),
            seed,
            tls: None,
        }
    }

    /// A TCP connection with a TLS client session for `localhost` (the TLS
    /// handshake runs with the first write or read) and no upgrade yet.
    pub fn connect_tls_raw(
        addr: SocketAddr,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> Client {
        let mut c = Client::connect_raw(addr);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        c.tls = Some(rustls::ClientConnection::new(config, name).unwrap());
        c
    }

    /// A client upgraded over TLS (wss://).
    pub fn connect_tls(addr: SocketAddr, config: std::sync::Arc<rustls::ClientConfig>) -> Client {
        let mut c = Client::connect_tls_raw(addr, config);
        c.handshake();
        c
    }

    /// The TLS session, if this client speaks TLS.
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        self.tls.as_ref()
    }

    /// Runs the TLS handshake to its end (it otherwise runs with the first
    /// write or read); the error if it fails.
    pub fn tls_handshake(&mut self) -> std::io::Result<()> {
        let tls = self.tls.as_mut().expect("a TLS client");
        while tls.is_handshaking() {
            tls.complete_io(&mut self.stream)?;
        }
        Ok(())
    }

    /// One read of plaintext from the socket, through TLS if any. Over TLS,
    /// `Ok(0)` is a `close_notify`: a TCP end without one is an error
    /// (`UnexpectedEof`), so every test checks the server says it.
    fn read_stream(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.tls {
            None => self.stream.read(buf),
            Some(tls) => rustls::Stream::new(tls, &mut self.stream).read(buf),
        }
    }

    /// A connected client whose upgrade was answered 101 with the right
    /// accept key.
    pub fn connect(addr: SocketAddr) -> Client {
        let mut c = Client::connect_raw(addr);
        c.handshake();
        c
    }

    /// Sends an upgrade request and checks the 101 answer.
    pub fn handshake(&mut self) {
        let key = self.fresh_key();
        self.send_raw(upgrade_request(&key).as_bytes());
        self.expect_upgrade(&key);
    }

    /// A random-looking valid key (16 bytes, base64).
    pub fn fresh_key(&mut self) -> String {
        let mut nonce = [0u8; 16];
        for chunk in nonce.chunks_mut(4) {
            chunk.copy_from_slice(&self.next_mask());
        }
        String::from_utf8(wsd::proto::handshake::client_key(nonce).to_vec()).unwrap()
    }

    /// Reads the answer to an upgrade request sent with `key`; it must be a
    /// valid 101.
    pub fn expect_upgrade(&mut self, key: &str) {
        let resp = self.read_http_response();
        assert_eq!(resp.status, 101, "upgrade refused: {resp:?}");
        let accept = wsd::proto::handshake::accept_key(key.as_bytes());
        assert_eq!(
            resp.header("sec-websocket-accept").map(str::as_bytes),
            Some(&accept[..]),
            "{resp:?}"
        );
        assert!(resp
            .header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
        assert!(resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("upgrade")));
    }

    /// The next masking key (xorshift32; tests need variety, not secrecy).
    pub fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x.to_be_bytes()
    }

    /// Writes `bytes` as they are (through TLS, if this client speaks it).
    /// A write the peer leaves blocked for [`IO_TIMEOUT`] fails unless this
    /// process made progress meanwhile.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut progress = Progress::start();
        let mut sent = 0;
        loop {
            let step = if sent < bytes.len() {
                self.write_stream(&bytes[sent..])
            } else {
                match self.flush_stream() {
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            };
            match step {
                Ok(0) => panic!("write of {} bytes: wrote 0 after {sent}", bytes.len()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) && progress.made() => {}
                Err(e) => panic!("write of {} bytes failed after {sent}: {e}", bytes.len()),
            }
        }
    }

    /// One write to the socket, through TLS if any (where it takes the
    /// plaintext once earlier records are out).
    fn write_stream(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match &mut self.tls {
            None => self.stream.write(bytes),
            Some(tls) => rustls::Stream::new(tls, &mut self.stream).write(bytes),
        }
    }

    /// Over TLS, writes out the records still buffered.
    fn flush_stream(&mut self) -> std::io::Result<()> {
        match &mut self.tls {
            None => Ok(()),
            Some(tls) => rustls::Stream::new(tls, &mut self.stream).flush(),
        }
    }

    /// Writes one masked frame.
    pub fn send_frame(&mut self, fin: bool, op: u8, payload: &[u8]) {
        let key = self.next_mask();
        self.send_raw(&masked_frame(fin, 0, op, payload, key));
    }

    /// Sends a whole text message in one frame.
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, OP_TEXT, text.as_bytes());
    }

    /// Sends a whole binary message in one frame.
    pub fn send_binary(&mut self, data: &[u8]) {
        self.send_frame(true, OP_BINARY, data);
    }

    /// Sends a Close with `code` and `reason`.
    pub fn send_close(&mut self, code: u16, reason: &[u8]) {
        self.send_frame(true, OP_CLOSE, &close_payload(code, reason));
    }

    /// One read into the input buffer; returns the bytes read (0 at EOF).
    /// Panics on timeout or error, saying what was awaited.
    fn fill(&mut self, waiting_for: &str) -> usize {
        let mut chunk = [0u8; 64 << 10];
        let mut progress = Progress::start();
        loop {
            match self.read_stream(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Slow, not stuck: the server is still at work.
                Err(e) if timed_out(&e) && progress.made() => {}
                Err(e) => panic!(
                    "read failed waiting for {waiting_for} ({} bytes buffered): {e}",
                    self.buf.len()
                ),
            }
        }
    }

    /// Reads an HTTP response head and its `Content-Length` body.
    pub fn read_http_response(&mut self) -> HttpResponse {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill("an HTTP response") == 0 {
                panic!(
                    "EOF before a complete HTTP response head: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("ASCII head");
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line:?}");
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header {l:?}"));
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let mut resp = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().expect("Content-Length");
            while self.buf.len() < len {
                if self.fill("an HTTP response body") == 0 {
                    panic!("EOF inside an HTTP response body");
                }
            }
            resp.body = self.buf.drain(..len).collect();
        }
        resp
    }

    /// The next frame from the server. Server frames must be unmasked.
    pub fn recv_frame(&mut self) -> Frame {
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return frame;
            }
            if self.fill("a frame") == 0 {
                panic!(
                    "EOF while waiting for a frame ({} bytes buffered)",
                    self.buf.len()
                );
            }
        }
    }

    /// The next message (data frames reassembled) or control frame.
    pub fn recv(&mut self) -> Message {
        let mut data: Option<(u8, Vec<u8>)> = None;
        loop {
            let f = self.recv_frame();
            assert_eq!(f.rsv, 0, "server set RSV bits: {f:?}");
            match f.op {
                OP_PING => return Message::Ping(f.payload),
                OP_PONG => return Message::Pong(f.payload),
                OP_CLOSE => {
                    assert!(f.fin && f.payload.len() != 1, "bad close frame {f:?}");
                    let code = (f.payload.len() >= 2)
                        .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
                    let reason = f.payload.get(2..).unwrap_or_default().to_vec();
                    return Message::Close(code, reason);
                }
                OP_TEXT | OP_BINARY => {
                    assert!(data.is_none(), "new message inside a fragmented one");
                    data = Some((f.op, f.payload));
                }
                OP_CONT => {
                    let (_, d) = data.as_mut().expect("continuation without a message");
                    d.extend_from_slice(&f.payload);
                }
                op => panic!("server sent opcode {op:#x}"),
            }
            if f.fin {
                let (op, d) = data.take().unwrap();
                return if op == OP_TEXT {
                    Message::Text(String::from_utf8(d).expect("server sent invalid UTF-8"))
                } else {
                    Message::Binary(d)
                };
            }
        }
    }

    /// The next message, which must be text.
    pub fn recv_text(&mut self) -> String {
        match self.recv() {
            Message::Text(t) => t,
            other => panic!("expected a text message, got {}", describe(&other)),
        }
    }

    /// The next message, which must be binary.
    pub fn recv_binary(&mut self) -> Vec<u8> {
        match self.recv() {
            Message::Binary(b) => b,
            other => panic!("expected a binary message, got {}", describe(&other)),
        }
    }

    /// The next frame must be a Close with `code`, and the server must then
    /// close its side of TCP.
    pub fn expect_close(&mut self, code: u16) {
        match self.recv() {
            Message::Close(c, _) => assert_eq!(c, Some(code), "close code"),
            other => panic!("expected Close {code}, got {}", describe(&other)),
        }
        self.expect_eof();
    }

    /// The server closed its side: nothing more arrives, and the end is a
    /// FIN (not a reset).
    pub fn expect_eof(&mut self) {
        let n = self.fill("EOF");
        assert_eq!(
            (n, self.buf.len()),
            (0, 0),
            "expected EOF, got more bytes: {:?}",
            &self.buf[..self.buf.len().min(64)]
        );
    }

    /// A clean closing handshake started by the client.
    pub fn close(mut self) {
        self.send_close(1000, b"bye");
        self.expect_close(1000);
    }

    /// Sends `text` and expects it back.
    pub fn assert_echo(&mut self, text: &str) {
        self.send_text(text);
        assert_eq!(self.recv_text(), text);
    }

    /// Sends a ping and expects the pong (works in every mode).
    pub fn assert_ping(&mut self, payload: &[u8]) {
        self.send_frame(true, OP_PING, payload);
        assert_eq!(self.recv(), Message::Pong(payload.to_vec()));
    }

    /// Half-closes the client's write side.
    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }

    /// Sends TLS `close_notify` (before [`Client::shutdown_write`]).
    pub fn close_notify(&mut self) {
        let tls = self.tls.as_mut().expect("a TLS client");
        tls.send_close_notify();
        while tls.wants_write() {
            tls.write_tls(&mut self.stream).unwrap();
        }
    }
}

/// A short description of a message (payloads can be megabytes).
pub fn describe(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("Text({} bytes: {:?})", t.len(), &t[..t.len().min(40)]),
        Message::Binary(b) => format!("Binary({} bytes)", b.len()),
        other => format!("{other:?}"),
    }
}

/// Whether `e` is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` expired).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Parses one unmasked frame from the start of `buf`: the frame and the
/// bytes it took, or `None` if incomplete.
fn parse_server_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "server frame is masked");
    let (len, at) = match b1 & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().unwrap())),
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()), 10),
        n => (u64::from(n), 2),
    };
    let end = at + usize::try_from(len).unwrap();
    let payload = buf.get(at..end)?.to_vec();
    Some((
        Frame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 7,
            op: b0 & 0x0F,
            payload,
        },
        end,
    ))
}

/// `n` bytes of a recognisable pattern.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// ---------------------------------------------------------------------------
// Helpers for the HTTP, rooms, keepalive, shutdown and negotiation tests.

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

/// An upgrade request for `path` with `key` and extra header lines
/// (`extra` is complete lines, each ending in CRLF).
pub fn upgrade_request_with(path: &str, key: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

impl Client {
    /// A client upgraded on `path` (the room, in broadcast mode).
    pub fn connect_path(addr: SocketAddr, path: &str) -> Client {
        let (c, resp) = Client::try_upgrade(addr, path, "");
        assert_eq!(resp.status, 101, "upgrade on {path} refused: {resp:?}");
        c
    }

    /// Sends an upgrade request for `path` with `extra` header lines and
    /// returns the answer, whatever it is (a refusal with its body). A 101
    /// is checked to carry the right accept key.
    pub fn try_upgrade(addr: SocketAddr, path: &str, extra: &str) -> (Client, HttpResponse) {
        let mut c = Client::connect_raw(addr);
        let key = c.fresh_key();
        c.send_raw(upgrade_request_with(path, &key, extra).as_bytes());
        let mut resp = c.read_http_head();
        if resp.status != 101 {
            // A refusal: its body too, by Content-Length.
            let len: usize = resp
                .header("content-length")
                .map_or(0, |l| l.parse().expect("Content-Length"));
            while c.buf.len() < len {
                if c.fill("an HTTP response body") == 0 {
                    panic!("EOF inside an HTTP response body");
                }
            }
            resp.body = c.buf.drain(..len).collect();
        } else {
            let accept = wsd::proto::handshake::accept_key(key.as_bytes());
            assert_eq!(
                resp.header("sec-websocket-accept").map(str::as_bytes),
                Some(&accept[..]),
                "{resp:?}"
            );
        }
        (c, resp)
    }

    /// Reads an HTTP response head only (no body: for HEAD answers and
    /// 101s); the body, if any, stays buffered.
    pub fn read_http_head(&mut self) -> HttpResponse {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill("an HTTP response head") == 0 {
                panic!(
                    "EOF before a complete HTTP response head: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head: Vec<u8> = self.buf.drain(..head_end).collect();
        let head = String::from_utf8(head).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line:?}");
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header {l:?}"));
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        HttpResponse {
            status,
            headers,
            body: Vec::new(),
        }
    }

    /// Every header named `name` in `resp` (case-insensitive), in order.
    pub fn all_headers<'r>(resp: &'r HttpResponse, name: &str) -> Vec<&'r str> {
        resp.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Waits for the next message that is not a Ping, answering none.
    pub fn recv_skipping_pings(&mut self) -> Message {
        loop {
            match self.recv() {
                Message::Ping(_) => {}
                other => return other,
            }
        }
    }

    /// Sets this client's read timeout (a bounded wait for "nothing comes").
    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    /// Asserts that nothing arrives within `wait` (the read times out),
    /// then restores the usual timeout.
    pub fn expect_silence(&mut self, wait: Duration) {
        if let Some((f, _)) = parse_server_frame(&self.buf) {
            panic!("expected silence, a frame was buffered: {f:?}");
        }
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut chunk = [0u8; 4096];
        let res = loop {
            match self.read_stream(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match res {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("expected silence, got EOF"),
            Ok(n) => panic!("expected silence, got {n} bytes: {:?}", &chunk[..n.min(64)]),
            Err(e) => panic!("expected silence, read failed: {e}"),
        }
    }
}

/// A plain HTTP exchange on a fresh connection: sends `request` as is,
/// reads the answer (its body by `Content-Length` unless `head_only`), and
/// checks that the server then closes the connection (EOF).
pub fn http_exchange(addr: SocketAddr, request: &str, head_only: bool) -> HttpResponse {
    let mut c = Client::connect_raw(addr);
    c.send_raw(request.as_bytes());
    let resp = if head_only {
        c.read_http_head()
    } else {
        c.read_http_response()
    };
    c.expect_eof();
    resp
}

/// `GET path` as a plain HTTP request (no upgrade); the answer, after which
/// the server has closed the connection.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        false,
    )
}

// ---------------------------------------------------------------------------
// The wsd binary as a child process

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

impl Client {
    /// The next message or control frame if its first bytes arrive within
    /// `wait`, else `None` (nothing was lost: partial input stays buffered).
    /// Once bytes come, the rest is awaited with the usual timeout.
    pub fn try_recv(&mut self, wait: Duration) -> Option<Message> {
        if parse_server_frame(&self.buf).is_some() {
            return Some(self.recv());
        }
        match self.poll_bytes(wait)? {
            0 => panic!("EOF while waiting for a frame"),
            _ => Some(self.recv()),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers for the hostile-client tests (tests/hostile.rs).

/// A well-behaved client kept open while something hostile happens on the
/// same server; [`Bystander::check`] is one round trip, called between every
/// hostile step, so a stalled or starved server fails the test at once.
pub struct Bystander {
    pub client: Client,
    pub rounds: usize,
}

impl Bystander {
    /// An upgraded bystander on `path` (its room, in broadcast mode).
    pub fn connect(addr: SocketAddr, path: &str) -> Bystander {
        Bystander {
            client: Client::connect_path(addr, path),
            rounds: 0,
        }
    }

    /// An echo round trip with a fresh numbered message (echo mode).
    pub fn check(&mut self) {
        self.rounds += 1;
        let text = format!("bystander round {}", self.rounds);
        self.client.assert_echo(&text);
    }

    /// A ping round trip with a fresh numbered payload (any mode, as long
    /// as no broadcast traffic is addressed to it).
    pub fn check_ping(&mut self) {
        self.rounds += 1;
        let payload = format!("bystander ping {}", self.rounds);
        self.client.assert_ping(payload.as_bytes());
    }

    /// A clean closing handshake.
    pub fn close(self) {
        self.client.close();
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

/// The value of the unlabelled metric `name` in a `/metrics` answer.
pub fn metric(addr: SocketAddr, name: &str) -> f64 {
    let resp = http_get(addr, "/metrics");
    assert_eq!(resp.status, 200, "{resp:?}");
    let body = String::from_utf8(resp.body).expect("UTF-8 metrics");
    body.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().expect("metric value"))
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

/// Polls `/metrics` (bounded by [`IO_TIMEOUT`]) until `wsd_connections_open`
/// is `open` (the `/metrics` connection itself counts); panics with the
/// last value if it never gets there.
pub fn wait_connections_open(addr: SocketAddr, open: usize) {
    let until = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let now = metric(addr, "wsd_connections_open");
        if now == open as f64 {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "wsd_connections_open stayed at {now}, expected {open}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Client {
    /// One read into the input buffer if bytes (or EOF) come within
    /// `wait`: `Some(bytes read)` (0 at EOF), or `None` on timeout. The
    /// usual timeout is restored.
    pub fn poll_bytes(&mut self, wait: Duration) -> Option<usize> {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut chunk = [0u8; 16 << 10];
        let res = loop {
            match self.read_stream(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match res {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
            Err(e) => panic!("read failed ({} bytes buffered): {e}", self.buf.len()),
        }
    }

    /// Bytes received but not yet parsed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Sets `SO_LINGER` to zero, so that dropping the socket sends a reset
    /// (RST) instead of a FIN.
    pub fn set_linger_zero(&self) {
        socket2::SockRef::from(&self.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
    }
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

    /// Every stderr line received so far (without waiting).
    pub fn stderr_so_far(&mut self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

// ---------------------------------------------------------------------------
// Helpers for the daemon tests (tests/daemon.rs) and usage errors.

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

// ---------------------------------------------------------------------------
// permessage-deflate (RFC 7692), with flate2 directly rather than wsd's own
// wrapper, so that the tests check wsd against an independent codec.

/// The tail a sync flush ends with (RFC 7692 §7.2.1).
pub const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compresses `msg` as one message's payload: raw DEFLATE, sync flush, the
/// tail removed. `z` keeps its context between calls (reset it for none).
pub fn deflate_message(z: &mut flate2::Compress, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 64);
    let mut input = msg;
    loop {
        out.reserve(input.len() / 2 + 1024);
        let before = z.total_in();
        z.compress_vec(input, &mut out, flate2::FlushCompress::Sync)
            .expect("deflate");
        input = &input[(z.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&DEFLATE_TAIL), "no sync flush tail");
    out.truncate(out.len() - 4);
    out
}

/// Inflates one message's payload (the tail appended). `z` keeps its
/// context between calls.
pub fn inflate_message(z: &mut flate2::Decompress, payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&DEFLATE_TAIL);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    let mut rest = &input[..];
    loop {
        out.reserve(64 << 10);
        let before = z.total_in();
        let status = z
            .decompress_vec(rest, &mut out, flate2::FlushDecompress::Sync)
            .expect("inflate");
        rest = &rest[(z.total_in() - before) as usize..];
        if status == flate2::Status::StreamEnd || (rest.is_empty() && out.len() < out.capacity()) {
            return out;
        }
    }
}

/// A raw-DEFLATE compressor and inflater pair with 15-bit windows.
pub fn deflate_pair() -> (flate2::Compress, flate2::Decompress) {
    (
        flate2::Compress::new(flate2::Compression::default(), false),
        flate2::Decompress::new(false),
    )
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

impl Client {
    /// A client whose upgrade request offers `offer` in
    /// `Sec-WebSocket-Extensions`; returns it and the server's answer to
    /// the offer (the header's value, if any).
    pub fn connect_offering(addr: SocketAddr, offer: &str) -> (Client, Option<String>) {
        let (c, resp) =
            Client::try_upgrade(addr, "/", &format!("Sec-WebSocket-Extensions: {offer}\r\n"));
        assert_eq!(resp.status, 101, "{resp:?}");
        let answer = resp.header("sec-websocket-extensions").map(str::to_string);
        (c, answer)
    }

    /// Sends `msg` compressed with `z` as one frame, RSV1 set.
    pub fn send_compressed(&mut self, op: u8, z: &mut flate2::Compress, msg: &[u8]) {
        let payload = deflate_message(z, msg);
        let key = self.next_mask();
        self.send_raw(&masked_frame(true, 0b100, op, &payload, key));
    }

    /// The next data message, inflated with `z` if its first frame had
    /// RSV1: its opcode, payload, and whether it came compressed. Control
    /// frames in between are skipped, except Close, which panics.
    pub fn recv_maybe_compressed(&mut self, z: &mut flate2::Decompress) -> (u8, Vec<u8>, bool) {
        let mut first: Option<Frame> = None;
        let mut data = Vec::new();
        loop {
            let f = self.recv_frame();
            match f.op {
                OP_PING | OP_PONG => continue,
                OP_CLOSE => panic!("Close {:?} while waiting for a message", f.payload),
                _ => {}
            }
            assert_eq!(f.rsv & 0b011, 0, "RSV2/RSV3 set: {f:?}");
            if let Some(head) = &first {
                assert_eq!((f.op, f.rsv), (OP_CONT, 0), "after {head:?}");
            } else {
                assert!(f.op == OP_TEXT || f.op == OP_BINARY, "{f:?}");
            }
            data.extend_from_slice(&f.payload);
            let fin = f.fin;
            first.get_or_insert(f);
            if fin {
                let head = first.unwrap();
                let compressed = head.rsv == 0b100;
                if compressed {
                    data = inflate_message(z, &data);
                }
                return (head.op, data, compressed);
            }
        }
    }
}
