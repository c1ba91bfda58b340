//! The opening handshake over real sockets: the 101 answer, every refusal
//! status, and that a refused client reads a whole answer and then EOF.

mod common;

use std::time::Duration;

use common::*;
use wsd::Mode;

/// Sends `request` on a fresh connection and returns the answer, after
/// checking that the server then closed its side cleanly.
fn refused(server: &TestServer, request: &[u8]) -> HttpResponse {
    let mut c = Client::connect_raw(server.addr());
    c.send_raw(request);
    let resp = c.read_http_response();
    c.expect_eof();
    resp
}

/// The status of a refused `request`, checking the answer is well formed.
fn refusal_status(server: &TestServer, request: &str) -> u16 {
    let resp = refused(server, request.as_bytes());
    assert_ne!(resp.status, 101, "{request:?} was accepted");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(!resp.body.is_empty(), "{resp:?}");
    resp.status
}

#[test]
fn the_tests_own_accept_key_gives_the_rfc_vector() {
    assert_eq!(independent_accept_key(RFC_KEY), RFC_ACCEPT);
}

#[test]
fn an_allowed_origin_given_with_a_trailing_slash_and_capitals_matches_a_browsers() {
    let _w = watchdog();
    let wsd = WsdProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--allow-origin",
        "HTTPS://Good.Example:443/",
    ]);
    let addr = wsd.addrs[0];
    for (origin, status) in [
        ("https://good.example", 101),
        ("https://good.example:8443", 403),
        ("https://evil.example", 403),
    ] {
        let mut c = Client::connect_raw(addr);
        let req = upgrade_request(RFC_KEY).replace(
            "Host: localhost\r\n",
            &format!("Host: localhost\r\nOrigin: {origin}\r\n"),
        );
        c.send_raw(req.as_bytes());
        assert_eq!(c.read_http_response().status, status, "{origin}");
    }
}

#[test]
fn valid_request_gets_101_with_the_rfc_accept_key() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = Client::connect_raw(server.addr());
    c.send_raw(upgrade_request(RFC_KEY).as_bytes());
    let resp = c.read_http_response();
    assert_eq!(resp.status, 101);
    assert_eq!(resp.header("sec-websocket-accept"), Some(RFC_ACCEPT));
    assert_eq!(resp.header("upgrade"), Some("websocket"));
    assert_eq!(resp.header("connection"), Some("Upgrade"));
    c.assert_echo("upgraded");
    c.close();
    let stats = server.stop();
    assert_eq!(stats.handshakes, 1);
    assert!(stats.handshake_failures.is_empty(), "{stats:?}");
}

#[test]
fn header_names_and_tokens_are_case_insensitive_and_listed() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = Client::connect_raw(server.addr());
    let key = c.fresh_key();
    let req = format!(
        "GET /any/path?q=1 HTTP/1.1\r\nhost: example\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: {key}\r\nsec-websocket-version: 13\r\nOrigin: http://example\r\n\r\n"
    );
    c.send_raw(req.as_bytes());
    c.expect_upgrade(&key);
    c.assert_echo("ok");
    c.close();
}

#[test]
fn request_arriving_in_many_small_pieces_is_accepted() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = Client::connect_raw(server.addr());
    let key = c.fresh_key();
    let req = upgrade_request(&key);
    for piece in req.as_bytes().chunks(3) {
        c.send_raw(piece);
    }
    c.expect_upgrade(&key);
    c.assert_echo("assembled");
    c.close();
}

#[test]
fn malformed_requests_are_answered_400() {
    let _w = watchdog();
    let server = TestServer::echo();
    let good = upgrade_request(RFC_KEY);
    let cases = [
        ("HTTP/1.0", good.replace("HTTP/1.1", "HTTP/1.0")),
        ("no Host", good.replace("Host: localhost\r\n", "")),
        ("no Upgrade", good.replace("Upgrade: websocket\r\n", "")),
        (
            "Upgrade: h2c",
            good.replace("Upgrade: websocket", "Upgrade: h2c"),
        ),
        ("no Connection", good.replace("Connection: Upgrade\r\n", "")),
        (
            "Connection: keep-alive",
            good.replace("Connection: Upgrade", "Connection: keep-alive"),
        ),
        (
            "no key",
            good.replace(&format!("Sec-WebSocket-Key: {RFC_KEY}\r\n"), ""),
        ),
        (
            "unpadded key",
            good.replace(RFC_KEY, "dGhlIHNhbXBsZSBub25jZQ"),
        ),
        (
            "key not base64",
            good.replace(RFC_KEY, "!!!!!!!!!!!!!!!!!!!!!!=="),
        ),
        (
            "17-byte key",
            good.replace(RFC_KEY, "dGhlIHNhbXBsZSBub25jZXg="),
        ),
        (
            "repeated key",
            good.replace(
                "\r\n\r\n",
                &format!("\r\nSec-WebSocket-Key: {RFC_KEY}\r\n\r\n"),
            ),
        ),
        (
            "no version",
            good.replace("Sec-WebSocket-Version: 13\r\n", ""),
        ),
        ("target not a path", good.replace("/chat", "*")),
        ("garbage", "\x00\x01\x02 nonsense\r\n\r\n".to_string()),
    ];
    for (what, req) in &cases {
        assert_eq!(refusal_status(&server, req), 400, "{what}");
    }
    let stats = server.stop();
    assert_eq!(
        stats.handshake_failures.get(&400),
        Some(&(cases.len() as u64))
    );
    assert_eq!(stats.handshakes, 0);
}

#[test]
fn non_get_is_answered_405_with_allow() {
    let _w = watchdog();
    let server = TestServer::echo();
    for method in ["POST", "PUT", "HEAD"] {
        let req = upgrade_request(RFC_KEY).replacen("GET", method, 1);
        let resp = refused(&server, req.as_bytes());
        assert_eq!(resp.status, 405, "{method}");
        assert_eq!(resp.header("allow"), Some("GET"));
    }
    assert_eq!(server.stop().handshake_failures.get(&405), Some(&3));
}

#[test]
fn other_websocket_version_is_answered_426_naming_13() {
    let _w = watchdog();
    let server = TestServer::echo();
    for v in ["8", "12", "14", "banana"] {
        let req = upgrade_request(RFC_KEY).replace("Version: 13", &format!("Version: {v}"));
        let resp = refused(&server, req.as_bytes());
        assert_eq!(resp.status, 426, "version {v}");
        assert_eq!(resp.header("sec-websocket-version"), Some("13"));
    }
}

#[test]
fn head_larger_than_max_header_bytes_is_431() {
    let _w = watchdog();
    let server = TestServer::echo();
    // A complete request whose head is over the default 8 KiB.
    let req = upgrade_request(RFC_KEY).replace(
        "\r\n\r\n",
        &format!("\r\nX-Filler: {}\r\n\r\n", "a".repeat(9000)),
    );
    assert_eq!(refusal_status(&server, &req), 431);
    // A head that never ends: refused once it passes the limit, without
    // waiting for the end or a timeout.
    let mut endless = upgrade_request(RFC_KEY).replace("\r\n\r\n", "\r\n");
    while endless.len() < 12 << 10 {
        endless.push_str("X-More: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert_eq!(refusal_status(&server, &endless), 431);
    assert_eq!(server.stop().handshake_failures.get(&431), Some(&2));
}

#[test]
fn max_header_bytes_is_configurable() {
    let _w = watchdog();
    let server = TestServer::start(wsd::Config {
        max_header_bytes: 512,
        ..config(Mode::Echo)
    });
    let req = upgrade_request(RFC_KEY).replace(
        "\r\n\r\n",
        &format!("\r\nX-Filler: {}\r\n\r\n", "a".repeat(600)),
    );
    assert_eq!(refusal_status(&server, &req), 431);
    // A normal request is well under 512 bytes.
    server.client().close();
}

#[test]
fn more_than_64_header_lines_is_431() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut extra = String::new();
    for i in 0..64 {
        extra.push_str(&format!("X-{i}: y\r\n"));
    }
    let req = upgrade_request(RFC_KEY).replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    assert!(req.len() < 8 << 10, "small head, many lines");
    assert_eq!(refusal_status(&server, &req), 431);
}

#[test]
fn incomplete_request_gets_408_after_the_handshake_timeout() {
    let _w = watchdog();
    let server = TestServer::start(wsd::Config {
        handshake_timeout: Duration::from_millis(300),
        ..config(Mode::Echo)
    });
    // Half a request, then silence.
    let mut slow = Client::connect_raw(server.addr());
    slow.send_raw(b"GET /chat HTTP/1.1\r\nHost: loc");
    // And a connection that sends nothing at all.
    let mut silent = Client::connect_raw(server.addr());
    for c in [&mut slow, &mut silent] {
        let resp = c.read_http_response();
        assert_eq!(resp.status, 408);
        c.expect_eof();
    }
    assert_eq!(server.stop().handshake_failures.get(&408), Some(&2));
}

#[test]
fn stalled_handshake_does_not_block_other_clients() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut stalled = Client::connect_raw(server.addr());
    stalled.send_raw(b"GET /chat HTTP/1.1\r\nHo");
    let mut good = server.client();
    good.assert_echo("not blocked");
    // The stalled one can still finish, later, in pieces.
    stalled.send_raw(b"st: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    stalled.send_raw(
        format!("Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").as_bytes(),
    );
    stalled.expect_upgrade(RFC_KEY);
    stalled.assert_echo("late but fine");
    good.close();
    stalled.close();
}

#[test]
fn bytes_after_a_refused_request_do_not_reset_the_answer() {
    let _w = watchdog();
    let server = TestServer::echo();
    // A refused request followed by frame-looking bytes: the server must
    // answer, shut its side, and drain, so the answer is not lost to a reset.
    let mut req = upgrade_request(RFC_KEY)
        .replace("Version: 13", "Version: 7")
        .into_bytes();
    req.extend(masked_frame(
        true,
        0,
        OP_TEXT,
        &pattern(4000, 0),
        [1, 2, 3, 4],
    ));
    let resp = refused(&server, &req);
    assert_eq!(resp.status, 426);
}

/// A server whose handshake timeout outlasts the test: an answer to a
/// request that never completes can only come from the early check.
fn patient_server() -> TestServer {
    TestServer::start(wsd::Config {
        handshake_timeout: Duration::from_secs(3600),
        ..config(Mode::Echo)
    })
}

/// The first bytes of a TLS 1.3 ClientHello, as a browser sends to a
/// `wss://` URL: a handshake record (0x16), version 3.1, then a length.
const CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x5b, 0x8a, 0x2d, 0x11, 0x00,
    0x20, 0xe3, 0x1f,
];

#[test]
fn tls_client_hello_is_answered_400_at_once_not_after_the_timeout() {
    let _w = watchdog();
    let server = patient_server();
    let mut c = Client::connect_raw(server.addr());
    c.send_raw(CLIENT_HELLO);
    let resp = c.read_http_response();
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    let body = String::from_utf8_lossy(&resp.body);
    assert!(
        body.contains("TLS"),
        "the body says what went wrong: {body:?}"
    );
    c.expect_eof();
    let stats = server.stop();
    assert_eq!(stats.handshake_failures.get(&400), Some(&1), "{stats:?}");
    assert_eq!(stats.handshake_failures.get(&408), None, "{stats:?}");
}

#[test]
fn first_bytes_that_cannot_start_a_request_line_are_answered_400_at_once() {
    let _w = watchdog();
    let server = patient_server();
    let cases: [(&str, &[u8]); 9] = [
        ("SSH banner", b"SSH-2.0-OpenSSH_9.6\r\n"),
        ("a word typed in telnet", b"hello\r\n"),
        ("NUL", b"\x00"),
        ("leading space", b" GET / HTTP/1.1\r\n"),
        ("tab after the method", b"GET\t/"),
        ("two spaces after the method", b"GET  /"),
        ("control byte in the target", b"GET /a\x01"),
        ("not HTTP after the target", b"GET / FTP/1.1\r\n"),
        ("lone CR before the request", b"\rGET / HTTP/1.1\r\n"),
    ];
    for (what, bytes) in cases {
        let mut c = Client::connect_raw(server.addr());
        c.send_raw(bytes);
        let resp = c.read_http_response();
        assert_eq!(resp.status, 400, "{what}: {resp:?}");
        c.expect_eof();
    }
    let stats = server.stop();
    assert_eq!(
        stats.handshake_failures.get(&400),
        Some(&(cases.len() as u64)),
        "{stats:?}"
    );
}

#[test]
fn a_request_line_going_wrong_in_a_later_read_is_refused_then() {
    let _w = watchdog();
    let server = patient_server();
    let mut c = Client::connect_raw(server.addr());
    c.send_raw(b"GET /ch");
    // Give the first piece a chance to be read on its own.
    c.expect_silence(Duration::from_millis(50));
    c.send_raw(b"at HTTP/1\x00");
    let resp = c.read_http_response();
    assert_eq!(resp.status, 400, "{resp:?}");
    c.expect_eof();
}

#[test]
fn a_valid_request_sent_a_byte_at_a_time_after_an_empty_line_is_accepted() {
    let _w = watchdog();
    let server = patient_server();
    let mut c = Client::connect_raw(server.addr());
    let key = c.fresh_key();
    // RFC 9112 §2.2: a server should ignore empty lines before a request.
    let req = format!("\r\n\n{}", upgrade_request(&key));
    for b in req.as_bytes() {
        c.send_raw(std::slice::from_ref(b));
    }
    c.expect_upgrade(&key);
    c.assert_echo("one byte at a time");
    c.close();
}
