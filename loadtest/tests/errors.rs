//! Failures are reported, counted, and make wsload exit non-zero.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::{n, wsload};
use wsd::proto::frame::{decode_header, write_frame, OpCode, Parsing};
use wsd::proto::handshake::accept_key;
use wsd::proto::mask::apply_mask;

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

/// Reads an HTTP request head from `s`; returns its Sec-WebSocket-Key.
fn read_key(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .map(str::to_string)
}

/// A fake server on a loopback port: `serve` handles each connection.
fn fake_server(serve: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    thread::spawn(move || {
        for s in listener.incoming().take(4).flatten() {
            // The watchdog: a stuck peer cannot hold the thread for long.
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            thread::spawn(move || serve(s));
        }
    });
    url
}

/// Completes the handshake, then echoes every frame with its last payload
/// byte changed.
fn corrupting_echo(mut s: TcpStream) {
    let Some(key) = read_key(&mut s) else { return };
    let accept = accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        String::from_utf8_lossy(&accept)
    );
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        while let Ok(Parsing::Done { value, offset }) = decode_header(&buf) {
            let end = offset + value.len as usize;
            if buf.len() < end {
                break;
            }
            let mut payload = buf[offset..end].to_vec();
            if let Some(key) = value.mask {
                apply_mask(&mut payload, key, 0);
            }
            buf.drain(..end);
            let mut out = Vec::new();
            match value.opcode {
                OpCode::Close => {
                    write_frame(&mut out, OpCode::Close, &payload);
                    let _ = s.write_all(&out);
                    return;
                }
                op => {
                    if let Some(last) = payload.last_mut() {
                        *last ^= 0x01;
                    }
                    write_frame(&mut out, op, &payload);
                }
            }
            if s.write_all(&out).is_err() {
                return;
            }
        }
    }
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
