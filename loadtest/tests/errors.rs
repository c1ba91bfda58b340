//! Failures are reported, counted, and make wsload exit non-zero.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};

use common::{corrupting_echo, fake_server, n, read_key, wsload};

/// A port with nothing listening: bound, then closed.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn a_refused_port_exits_non_zero_with_a_clear_message() {
    let url = format!("ws://127.0.0.1:{}/", dead_port());
    let run = wsload(&["echo", "-c", "2", "-d", "1s", &url]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    assert!(run.stderr.contains(&url), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(wsload(&["echo", "wss://127.0.0.1:9/"]).code, Some(2));
    assert_eq!(
        wsload(&["echo", "-s", "8", "ws://127.0.0.1:9/"]).code,
        Some(2)
    );
    assert_eq!(
        wsload(&["echo", "ws://127.0.0.1:9/", "ws://127.0.0.1:8/"]).code,
        Some(2)
    );
    assert_eq!(wsload(&["rate", "ws://127.0.0.1:9/"]).code, Some(2));
}

#[test]
fn a_corrupted_echo_is_counted_and_fails_the_run() {
    let url = fake_server(corrupting_echo);
    let run = wsload(&[
        "echo", "-c", "1", "-d", "500ms", "--warmup", "0s", "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let v = run.json();
    let mismatches = n(&v, &["mismatches"]);
    assert!(mismatches > 0);
    assert_eq!(mismatches, n(&v, &["received"]));
    assert_eq!(v["failed"], true);
    assert!(run.stderr.contains("payload mismatch"), "{}", run.stderr);
}

/// Answers every upgrade with a 404.
fn not_found(mut s: TcpStream) {
    if read_key(&mut s).is_some() {
        let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

#[test]
fn a_refused_handshake_prints_the_status_line() {
    let url = fake_server(not_found);
    let run = wsload(&["echo", "-c", "2", "-d", "500ms", "--json", "-", &url]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("HTTP/1.1 404 Not Found"),
        "{}",
        run.stderr
    );
    let v = run.json();
    assert_eq!(n(&v, &["errors", "handshake status 404", "count"]), 2);
}
