//! What wsload puts in the upgrade request (`--origin`, `--protocol`,
//! `-H`), and what it makes of a server that refuses or disagrees.

mod common;

use std::io::Read;
use std::net::TcpStream;

use common::{accept_upgrade, fake_server, key_of, n, read_head, wsload, TestServer};
use wsd::{Config, Mode};

fn origin_checking_server() -> TestServer {
    TestServer::start_with(Config {
        mode: Mode::Echo,
        allowed_origins: vec!["https://app.example".into()],
        ..Config::default()
    })
}

#[test]
fn an_allowed_origin_gets_through_a_server_that_checks_it() {
    let server = origin_checking_server();
    let url = server.url();
    let run = wsload(&[
        "echo",
        "-c",
        "3",
        "-d",
        "300ms",
        "--warmup",
        "0s",
        "--origin",
        "https://app.example",
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["connections", "opened"]), 3);
    assert_eq!(n(&v, &["errors_total"]), 0);
    assert!(n(&v, &["received"]) > 0);
    assert_eq!(v["params"]["origin"], "https://app.example");
}

#[test]
fn a_refused_upgrade_is_a_clear_error_naming_the_status() {
    let server = origin_checking_server();
    let url = server.url();
    for origin in [None, Some("https://evil.example")] {
        let mut args = vec!["conns", "-c", "2", "-d", "5s", "--json", "-"];
        if let Some(o) = origin {
            args.extend(["--origin", o]);
        }
        args.push(&url);
        let run = wsload(&args);
        assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
        assert!(
            run.stderr
                .contains("the server refused the upgrade: HTTP/1.1 403 Forbidden"),
            "{origin:?}: {}",
            run.stderr
        );
        let v = run.json();
        assert_eq!(n(&v, &["errors", "handshake status 403", "count"]), 2);
    }
}

#[test]
fn a_subprotocol_the_server_speaks_is_agreed() {
    let server = TestServer::start_with(Config {
        mode: Mode::Echo,
        protocols: vec!["chat.v2".into()],
        ..Config::default()
    });
    let url = server.url();
    let run = wsload(&[
        "echo",
        "-c",
        "2",
        "-d",
        "300ms",
        "--warmup",
        "0s",
        "--protocol",
        "chat.v3",
        "--protocol",
        "chat.v2",
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["connections", "opened"]), 2);
    assert_eq!(
        v["params"]["protocols"],
        serde_json::json!(["chat.v3", "chat.v2"])
    );
}

#[test]
fn a_server_that_chooses_no_offered_subprotocol_fails_the_handshake() {
    let server = TestServer::start_with(Config {
        mode: Mode::Echo,
        protocols: vec!["chat.v2".into()],
        ..Config::default()
    });
    let url = server.url();
    let run = wsload(&[
        "conns",
        "-c",
        "2",
        "-d",
        "5s",
        "--protocol",
        "mqtt",
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["connections", "opened"]), 0);
    assert_eq!(n(&v, &["errors", "subprotocol not agreed", "count"]), 2);
    assert!(
        run.stderr
            .contains("the server chose no subprotocol of those offered (mqtt)"),
        "{}",
        run.stderr
    );
}

/// Completes the handshake only for a request that carries every header
/// the test below sends (400 otherwise), then holds the connection.
fn require_headers(mut s: TcpStream) {
    let Some(head) = read_head(&mut s) else {
        return;
    };
    let Some(key) = key_of(&head) else { return };
    let wanted = [
        "\r\nOrigin: https://app.example\r\n",
        "\r\nSec-WebSocket-Protocol: a, b\r\n",
        "\r\nAuthorization: Bearer secret\r\n",
        "\r\nX-Trace: 7\r\n",
    ];
    if !wanted.iter().all(|w| head.contains(w)) {
        let _ = std::io::Write::write_all(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n");
        return;
    }
    if accept_upgrade(&mut s, &key, "Sec-WebSocket-Protocol: b\r\n") {
        // Hold it until wsload hangs up (the fake server's read timeout
        // is the watchdog).
        let _ = s.read_to_end(&mut Vec::new());
    }
}

#[test]
fn headers_reach_the_server_and_their_values_stay_out_of_the_report() {
    let url = fake_server(require_headers);
    let run = wsload(&[
        "conns",
        "-c",
        "2",
        "-d",
        "200ms",
        "--origin",
        "https://app.example",
        "--protocol",
        "a",
        "--protocol",
        "b",
        "-H",
        "Authorization: Bearer secret",
        "--header",
        "X-Trace:7",
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["connections", "opened"]), 2);
    assert_eq!(
        v["params"]["headers"],
        serde_json::json!(["Authorization", "X-Trace"])
    );
    assert!(!run.stdout.contains("secret"), "{}", run.stdout);
}
