//! A fake publish API on a loopback port, sharing no code with wsload: a
//! GET with Sec-WebSocket-Key is a subscriber; `POST /publish/ROOM` with
//! the right `Authorization: Bearer KEY` sends its body to every
//! subscriber as one frame (text for a text/* body, else binary) and
//! answers 200 `{"room": ..., "local_receivers": N}`; a wrong or missing
//! key is a 401, and the connection stays open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use wsd::proto::frame::{decode_header, write_frame, OpCode, Parsing};

use super::{accept_upgrade, key_of};

/// What the fake API saw.
#[derive(Default)]
pub struct Seen {
    /// Publish connections accepted.
    pub api_conns: AtomicUsize,
    /// Requests answered 200.
    pub published: AtomicUsize,
    /// Requests answered 401.
    pub refused: AtomicUsize,
    /// Request targets other than /publish/ROOM of the expected room.
    pub wrong_paths: AtomicUsize,
    /// Bodies whose Content-Type was neither of wsload's two.
    pub wrong_types: AtomicUsize,
}

/// The fake API: where it listens and what it saw.
pub struct FakeApi {
    /// `host:port`: WebSocket and plain HTTP.
    pub addr: String,
    /// `host:port`: HTTPS, the publish API only.
    pub tls_addr: String,
    /// What it saw.
    pub seen: Arc<Seen>,
}

/// Accepts on `listener`, each connection to `serve` in its own thread.
fn accept<F>(listener: TcpListener, state: Arc<State>, serve: F)
where
    F: Fn(TcpStream, &State) + Send + Clone + 'static,
{
    thread::spawn(move || {
        for s in listener.incoming().take(500).flatten() {
            // The watchdog: a stuck peer cannot hold a thread for long.
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let (state, serve) = (state.clone(), serve.clone());
            thread::spawn(move || serve(s, &state));
        }
    });
}

struct State {
    key: String,
    room: String,
    subscribers: Mutex<Vec<TcpStream>>,
    seen: Arc<Seen>,
    delay: Duration,
}

impl FakeApi {
    /// Starts the fake API for room `room` (e.g. `/chat`), wanting `key`.
    pub fn start(room: &str, key: &str) -> FakeApi {
        FakeApi::start_with_delay(room, key, Duration::ZERO)
    }

    /// The same, waiting `delay` before each answer, as a server whose
    /// fan-out takes that long.
    pub fn start_with_delay(room: &str, key: &str, delay: Duration) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let tls_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let tls_addr = tls_listener.local_addr().expect("addr").to_string();
        let seen = Arc::new(Seen::default());
        let state = Arc::new(State {
            key: key.to_string(),
            room: room.to_string(),
            subscribers: Mutex::new(Vec::new()),
            seen: seen.clone(),
            delay,
        });
        let config = tls_config();
        accept(tls_listener, state.clone(), move |s, st| {
            serve_tls(s, st, config.clone())
        });
        accept(listener, state, serve);
        FakeApi {
            addr,
            tls_addr,
            seen,
        }
    }
}

/// Reads a head line by line; `None` at the end of the stream.
fn read_head<S: Read>(r: &mut BufReader<S>) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return Some(lines);
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve(s: TcpStream, state: &State) {
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let Some(head) = read_head(&mut r) else {
        return;
    };
    if head[0].starts_with("GET ") {
        return subscribe(s, r, &head, state);
    }
    publish(r, head, state);
}

/// A publish API connection over TLS, with a certificate made here.
fn serve_tls(s: TcpStream, state: &State, config: Arc<rustls::ServerConfig>) {
    let conn = rustls::ServerConnection::new(config).expect("TLS session");
    let mut r = BufReader::new(rustls::StreamOwned::new(conn, s));
    let Some(head) = read_head(&mut r) else {
        return;
    };
    publish(r, head, state);
}

/// A self-signed certificate for 127.0.0.1 (wsload runs with --insecure).
fn tls_config() -> Arc<rustls::ServerConfig> {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key DER");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .expect("server config");
    Arc::new(config)
}

/// Requests on one keep-alive connection until it ends.
fn publish<S: Read + Write>(mut r: BufReader<S>, head: Vec<String>, state: &State) {
    state.seen.api_conns.fetch_add(1, Ordering::Relaxed);
    let mut head = Some(head);
    while let Some(h) = head.take().or_else(|| read_head(&mut r)) {
        let len: usize = header(&h, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if h[0] != format!("POST /publish{} HTTP/1.1", state.room) {
            state.seen.wrong_paths.fetch_add(1, Ordering::Relaxed);
        }
        let answer = if header(&h, "authorization") != Some(&format!("Bearer {}", state.key)) {
            state.seen.refused.fetch_add(1, Ordering::Relaxed);
            answer(401, "Unauthorized", "{\"error\":\"wrong key\"}")
        } else {
            let op = match header(&h, "content-type") {
                Some("text/plain; charset=utf-8") => OpCode::Text,
                Some("application/octet-stream") => OpCode::Binary,
                _ => {
                    state.seen.wrong_types.fetch_add(1, Ordering::Relaxed);
                    OpCode::Binary
                }
            };
            let mut frame = Vec::new();
            write_frame(&mut frame, op, &body);
            let mut subs = state.subscribers.lock().expect("lock");
            subs.retain_mut(|sub| sub.write_all(&frame).is_ok());
            let n = subs.len();
            drop(subs);
            state.seen.published.fetch_add(1, Ordering::Relaxed);
            let json = format!("{{\"room\": \"{}\", \"local_receivers\": {n}}}", state.room);
            answer(200, "OK", &json)
        };
        thread::sleep(state.delay);
        if r.get_mut().write_all(answer.as_bytes()).is_err() || r.get_mut().flush().is_err() {
            return;
        }
    }
}

fn answer(code: u16, reason: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A subscriber: joins the room, then answers a Close with a Close.
fn subscribe(mut s: TcpStream, mut r: BufReader<TcpStream>, head: &[String], state: &State) {
    let Some(key) = key_of(&head.join("\r\n")) else {
        return;
    };
    if !accept_upgrade(&mut s, &key, "") {
        return;
    }
    let port = s.peer_addr().expect("peer").port();
    state
        .subscribers
        .lock()
        .expect("lock")
        .push(s.try_clone().expect("clone"));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        if let Ok(Parsing::Done { value, .. }) = decode_header(&buf) {
            if value.opcode == OpCode::Close {
                break;
            }
        }
    }
    // Out of the room, then the Close: no frame can follow it.
    let mut subs = state.subscribers.lock().expect("lock");
    subs.retain(|sub| sub.peer_addr().map(|a| a.port()).ok() != Some(port));
    drop(subs);
    let mut close = Vec::new();
    write_frame(&mut close, OpCode::Close, &1000u16.to_be_bytes());
    let _ = s.write_all(&close);
}
