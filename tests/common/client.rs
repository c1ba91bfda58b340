//! A small blocking WebSocket client over a real loopback socket, and the
//! bystander that checks a server keeps serving while something hostile
//! happens beside it.

use super::*;

/// A standard upgrade request for `key`.
pub fn upgrade_request(key: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2), computed here with
/// the sha1 and base64 crates, not with wsd's own code: a client that
/// checked the server with the server's function could not catch a bug in it.
pub fn independent_accept_key(key: &str) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let digest = sha1::Sha1::new()
        .chain_update(key.as_bytes())
        .chain_update(GUID.as_bytes())
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

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
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(nonce)
    }

    /// Reads the answer to an upgrade request sent with `key`; it must be a
    /// valid 101.
    pub fn expect_upgrade(&mut self, key: &str) {
        let resp = self.read_http_response();
        assert_eq!(resp.status, 101, "upgrade refused: {resp:?}");
        assert_eq!(
            resp.header("sec-websocket-accept"),
            Some(independent_accept_key(key).as_str()),
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

/// Whether `e` is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` expired).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
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
            assert_eq!(
                resp.header("sec-websocket-accept"),
                Some(independent_accept_key(&key).as_str()),
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
