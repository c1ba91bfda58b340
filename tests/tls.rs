//! wss:// and https:// on the same reactor: echo, broadcast, closing,
//! keepalive and the HTTP endpoints over TLS; TLS failures (plain HTTP,
//! garbage, an old version, a distrusting client, a client that stops
//! mid-handshake) closed cleanly, counted by reason, and never stalling
//! anyone else. The certificate files: tests/tls_files.rs.
//!
//! Certificates are made by the tests (rcgen); the client is rustls over a
//! blocking socket. A TLS client here fails on a TCP end without
//! `close_notify`, so every clean close checks the server said it.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::tls::*;
use common::*;
use wsd::{Config, Mode};

/// An in-process TLS server with its CA and files.
struct TlsServer {
    server: TestServer,
    ca: TestCa,
    client: Arc<rustls::ClientConfig>,
    _files: Scratch,
}

impl TlsServer {
    fn start(mut cfg: Config) -> TlsServer {
        let ca = TestCa::new("wsd test CA");
        let files = Scratch::new();
        let (cert, key) = files.write_pair(&ca.server_cert("wsd test server"));
        cfg.tls = Some(slot(&cert, &key));
        TlsServer {
            server: TestServer::start(cfg),
            client: ca.client_config(),
            ca,
            _files: files,
        }
    }

    fn echo() -> TlsServer {
        TlsServer::start(config(Mode::Echo))
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    fn client(&self) -> Client {
        Client::connect_tls(self.addr(), self.client.clone())
    }

    /// `GET path` over https; the answer, after which the server closed.
    fn get(&self, path: &str) -> HttpResponse {
        https_get(self.addr(), self.client.clone(), path)
    }

    /// Waits (bounded) until the server holds `n` connections, the
    /// `/metrics` one included.
    fn wait_open(&self, n: usize) {
        let until = std::time::Instant::now() + IO_TIMEOUT;
        loop {
            let now = sample(&self.get("/metrics").body, "wsd_connections_open");
            if now == n as f64 {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "{now} connections open, expected {n}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `wsd_tls_handshake_failures_total{reason}`.
    fn failures(&self, reason: &str) -> f64 {
        let body = self.get("/metrics").body;
        sample(
            &body,
            &format!("wsd_tls_handshake_failures_total{{reason=\"{reason}\"}}"),
        )
    }

    /// Waits (bounded) until `reason` has been counted `n` times.
    fn wait_failures(&self, reason: &str, n: f64) {
        let until = std::time::Instant::now() + IO_TIMEOUT;
        loop {
            let now = self.failures(reason);
            if now == n {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "{reason}: {now} failures counted, expected {n}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads a raw (non-TLS) socket until EOF or a reset; what came.
fn read_to_end(c: &mut Client) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("read failed after {} bytes: {e}", got.len()),
        }
    }
}

// ---------------------------------------------------------------------------
// The WebSocket over TLS

#[test]
fn echo_of_every_size_class_over_wss() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let mut c = s.client();
    // 7-bit, 16-bit and 64-bit lengths, each side of the TLS record size
    // (16 KiB) and of the server's 64 KiB read.
    for (i, n) in [0, 1, 125, 126, 16 << 10, 65_535, 65_536, 100_000, 1 << 20]
        .into_iter()
        .enumerate()
    {
        let data = pattern(n, i as u8);
        c.send_binary(&data);
        assert_eq!(c.recv_binary(), data, "{n} bytes");
    }
    c.assert_echo("héllo över TLS");
    // A fragmented message, one fragment per write.
    c.send_frame(false, OP_TEXT, b"frag");
    c.send_frame(false, OP_CONT, b"men");
    c.send_frame(true, OP_CONT, b"ted");
    assert_eq!(c.recv_text(), "fragmented");
    assert_eq!(
        c.tls().unwrap().alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "ALPN"
    );
    c.close();
}

#[test]
fn many_messages_in_one_tls_write_are_all_answered() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let mut c = s.client();
    // 3000 frames in one write: rustls decrypts records faster than one
    // read buffer holds, so plaintext waits inside it between reads.
    let mut batch = Vec::new();
    for i in 0..3000u32 {
        let key = c.next_mask();
        batch.extend(masked_frame(
            true,
            0,
            OP_TEXT,
            format!("m{i:05}").as_bytes(),
            key,
        ));
    }
    let big = pattern(200_000, 9);
    let key = c.next_mask();
    batch.extend(masked_frame(true, 0, OP_BINARY, &big, key));
    c.send_raw(&batch);
    for i in 0..3000u32 {
        assert_eq!(c.recv_text(), format!("m{i:05}"));
    }
    assert_eq!(c.recv_binary(), big);
    c.close();
}

#[test]
fn tls_1_2_clients_are_served_too() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(s.ca.der()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut c = Client::connect_tls(s.addr(), Arc::new(config));
    assert_eq!(
        c.tls().unwrap().protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    c.assert_echo("over TLS 1.2");
    c.close();
    let mut c13 = s.client();
    assert_eq!(
        c13.tls().unwrap().protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    c13.assert_echo("over TLS 1.3");
    c13.close();
}

#[test]
fn broadcast_reaches_every_wss_member() {
    let _w = watchdog();
    let s = TlsServer::start(config(Mode::Broadcast));
    let mut members: Vec<Client> = (0..4)
        .map(|_| {
            let mut c = Client::connect_tls_raw(s.addr(), s.client.clone());
            let key = c.fresh_key();
            c.send_raw(upgrade_request_with("/room", &key, "").as_bytes());
            c.expect_upgrade(&key);
            c
        })
        .collect();
    for round in 0..3 {
        let text = format!("round {round}");
        members[round].send_text(&text);
        for m in &mut members {
            assert_eq!(m.recv_text(), text);
        }
    }
    let big = pattern(300_000, 3);
    members[3].send_binary(&big);
    for m in &mut members {
        assert_eq!(m.recv_binary(), big);
    }
    for m in members {
        m.close();
    }
}

#[test]
fn closes_over_wss_end_with_close_notify_and_a_fin() {
    let _w = watchdog();
    let s = TlsServer::echo();
    // The client closes: Close answered, then close_notify and FIN (the
    // client's reads fail on a FIN without close_notify).
    s.client().close();
    // The server closes for a protocol error (an unmasked frame).
    let mut c = s.client();
    c.send_raw(&unmasked_frame(true, OP_TEXT, b"no mask"));
    c.expect_close(1002);
    // The client says close_notify and half-closes without a Close frame.
    let mut c = s.client();
    c.assert_echo("then leaves");
    c.close_notify();
    c.shutdown_write();
    c.expect_eof();
    s.wait_open(1);
    let stats = s.server.stop();
    assert_eq!(stats.closes.get(&1000), Some(&1));
    assert_eq!(stats.closes.get(&1002), Some(&1));
    assert_eq!(stats.io_errors, 0, "{stats:?}");
}

#[test]
fn keepalive_pings_reach_wss_clients_and_their_pongs_count() {
    let _w = watchdog();
    let s = TlsServer::start(Config {
        ping_interval: Some(Duration::from_millis(150)),
        ..config(Mode::Echo)
    });
    let mut c = s.client();
    for _ in 0..3 {
        match c.recv() {
            Message::Ping(p) => c.send_frame(true, OP_PONG, &p),
            other => panic!("expected a ping, got {}", describe(&other)),
        }
    }
    c.assert_echo("still here");
    c.close();
    let stats = s.server.stop();
    assert!(stats.pings_sent >= 3, "{stats:?}");
    assert_eq!(stats.ping_timeouts, 0);
}

// ---------------------------------------------------------------------------
// HTTP over TLS

#[test]
fn health_metrics_and_the_page_are_served_over_https() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let health = s.get("/healthz");
    assert_eq!((health.status, &health.body[..]), (200, &b"ok\n"[..]));
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("wss://"));
    let metrics = s.get("/metrics");
    assert_eq!(metrics.status, 200);
    // Every reason is there from the start, at 0.
    for reason in [
        "plain_http",
        "not_tls",
        "protocol",
        "incompatible",
        "alert",
        "eof",
        "timeout",
    ] {
        let series = format!("wsd_tls_handshake_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(&metrics.body, &series), 0.0, "{series}");
    }
    for result in ["ok", "error"] {
        let series = format!("wsd_tls_reloads_total{{result=\"{result}\"}}");
        assert_eq!(sample(&metrics.body, &series), 0.0, "{series}");
    }
}

#[test]
fn the_metrics_address_stays_plain_http() {
    let _w = watchdog();
    let ca = TestCa::new("ca");
    let files = Scratch::new();
    let (cert, key) = files.write_pair(&ca.server_cert("server"));
    let mut cfg = config(Mode::Echo);
    cfg.metrics_listen = vec!["127.0.0.1:0".parse().unwrap()];
    cfg.tls = Some(slot(&cert, &key));
    let (server, addrs) = TestServer::start_all(cfg);
    let metrics_addr = *addrs.last().unwrap();
    assert_ne!(metrics_addr, server.addr());
    let resp = http_get(metrics_addr, "/metrics");
    assert_eq!(resp.status, 200);
    assert!(String::from_utf8_lossy(&resp.body).contains("wsd_tls_reloads_total"));
    let mut c = Client::connect_tls(server.addr(), ca.client_config());
    c.assert_echo("wss beside a plain metrics port");
    c.close();
}

// ---------------------------------------------------------------------------
// TLS failures: closed cleanly, counted, and nobody else stalls

#[test]
fn a_plain_ws_client_on_the_tls_port_gets_a_400_in_the_clear() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let mut bystander = s.client();
    let mut c = Client::connect_raw(s.addr());
    let key = c.fresh_key();
    c.send_raw(upgrade_request(&key).as_bytes());
    let resp = c.read_http_response();
    assert_eq!(resp.status, 400);
    assert!(
        String::from_utf8_lossy(&resp.body).contains("wss://"),
        "{resp:?}"
    );
    c.expect_eof();
    bystander.assert_echo("unbothered");
    s.wait_failures("plain_http", 1.0);
    bystander.close();
}

#[test]
fn garbage_instead_of_a_client_hello_gets_an_alert_and_a_close() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let mut bystander = s.client();
    for first in [0x00u8, 0x80, 0xFF] {
        let mut c = Client::connect_raw(s.addr());
        let garbage: Vec<u8> = (0..300u32).map(|i| first ^ (i as u8)).collect();
        c.send_raw(&garbage);
        let got = read_to_end(&mut c);
        // A TLS alert record (content type 21), or nothing at all.
        assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
        bystander.assert_echo(&format!("after {first:#x}"));
    }
    // A handshake record whose body is garbage.
    let mut c = Client::connect_raw(s.addr());
    c.send_raw(&[0x16, 0x03, 0x01, 0x00, 0x08, 0xEE, 0, 0, 4, 1, 2, 3, 4]);
    let got = read_to_end(&mut c);
    assert_eq!(got.first(), Some(&0x15), "{got:?}");
    s.wait_failures("not_tls", 3.0);
    s.wait_failures("protocol", 1.0);
    bystander.assert_echo("still fine");
    bystander.close();
}

#[test]
fn an_ssh_banner_on_the_tls_port_is_not_tls_and_gets_no_http_answer() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let mut bystander = s.client();
    let mut c = Client::connect_raw(s.addr());
    c.send_raw(b"SSH-2.0-OpenSSH_9.2p1\r\n");
    let got = read_to_end(&mut c);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
    s.wait_failures("not_tls", 1.0);
    s.wait_failures("plain_http", 0.0);
    bystander.assert_echo("after ssh");
    bystander.close();
}

#[test]
fn a_tls_1_0_client_hello_is_refused_as_incompatible() {
    let _w = watchdog();
    let s = TlsServer::echo();
    // ClientHello, version 3.1 (TLS 1.0), one cipher suite
    // (TLS_RSA_WITH_AES_128_CBC_SHA), no compression, no extensions.
    let mut hello = vec![0x03, 0x01];
    hello.extend_from_slice(&[0x42; 32]);
    hello.extend_from_slice(&[0x00, 0x00, 0x02, 0x00, 0x2F, 0x01, 0x00]);
    let mut handshake = vec![0x01, 0x00, 0x00, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend(handshake);
    let mut c = Client::connect_raw(s.addr());
    c.send_raw(&record);
    let got = read_to_end(&mut c);
    assert_eq!(got.first(), Some(&0x15), "an alert: {got:?}");
    s.wait_failures("incompatible", 1.0);
}

#[test]
fn a_client_that_does_not_trust_the_certificate_is_counted_as_its_alert() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let stranger = TestCa::new("another CA");
    let mut c = Client::connect_tls_raw(s.addr(), stranger.client_config());
    let err = c
        .tls_handshake()
        .expect_err("the certificate is not trusted");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    s.wait_failures("alert", 1.0);
    s.client().close();
}

#[test]
fn a_client_that_stops_mid_handshake_is_closed_at_the_handshake_timeout() {
    let _w = watchdog();
    let s = TlsServer::start(Config {
        handshake_timeout: Duration::from_millis(300),
        ..config(Mode::Echo)
    });
    let hello = client_hello(s.client.clone());
    let mut stalled = Client::connect_raw(s.addr());
    stalled.send_raw(&hello[..hello.len() / 2]);
    // A whole ClientHello, then nothing: the server's flight arrives and
    // the handshake stalls on our side.
    let mut silent = Client::connect_raw(s.addr());
    silent.send_raw(&hello);
    let mut bystander = s.client();
    bystander.assert_echo("meanwhile");
    assert!(read_to_end(&mut stalled).is_empty());
    let flight = read_to_end(&mut silent);
    assert_eq!(flight.first(), Some(&0x16), "the server's handshake flight");
    s.wait_failures("timeout", 2.0);
    // One that finished TLS but never sent its request gets the usual 408,
    // over TLS.
    let mut idle = Client::connect_tls_raw(s.addr(), s.client.clone());
    idle.tls_handshake().unwrap();
    assert_eq!(idle.read_http_response().status, 408);
    idle.expect_eof();
    bystander.assert_echo("still");
    bystander.close();
    assert_eq!(s.failures("timeout"), 2.0);
}

#[test]
fn a_client_that_leaves_mid_handshake_is_counted_as_eof() {
    let _w = watchdog();
    let s = TlsServer::echo();
    let hello = client_hello(s.client.clone());
    let mut c = Client::connect_raw(s.addr());
    c.send_raw(&hello[..10]);
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_to_end(&mut c).is_empty());
    s.wait_failures("eof", 1.0);
}

#[test]
fn idle_tls_connections_stay_small() {
    let _w = watchdog();
    let s = TlsServer::start(Config {
        ping_interval: None,
        ..config(Mode::Echo)
    });
    // Not a measurement (the process's RSS is noisy): a guard against an
    // idle TLS connection keeping a read buffer or a handshake's worth of
    // memory. The README's figure comes from a separate, larger run.
    let before = vm_rss_kib();
    let mut clients: Vec<Client> = (0..200).map(|_| s.client()).collect();
    for c in &mut clients {
        c.assert_echo("x");
    }
    let per_conn = (vm_rss_kib().saturating_sub(before)) * 1024 / 200;
    // Client and server sides both live in this process.
    assert!(
        per_conn < 64 << 10,
        "{per_conn} bytes per client+server pair"
    );
    for c in clients {
        c.close();
    }
}
