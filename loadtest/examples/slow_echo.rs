//! A deliberately slow WebSocket echo server: before echoing a message it
//! burns a fixed amount of its own CPU time. `wsload compare`'s tests use
//! it as the server that must come out costlier per message than wsd.
//!
//! Usage: `slow_echo PORT [MICROS]` — listens on 127.0.0.1:PORT, burns
//! MICROS µs of thread CPU time per message (default 200). One thread per
//! connection; binary and text frames echoed unfragmented, pings answered,
//! a Close answered and the connection ended. Runs until killed.
//!
//! The burn is measured in thread CPU time (CLOCK_THREAD_CPUTIME_ID), not
//! wall-clock time, so on a busy machine it costs the same CPU per message.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use wsd::proto::frame::{decode_header, write_frame, OpCode, Parsing};
use wsd::proto::handshake::accept_key;
use wsd::proto::mask::apply_mask;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next().and_then(|p| p.parse().ok()) {
        Some(p) => p,
        None => {
            eprintln!("usage: slow_echo PORT [MICROS]");
            std::process::exit(2);
        }
    };
    let micros: u64 = args.next().and_then(|m| m.parse().ok()).unwrap_or(200);
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("slow_echo: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!("slow_echo listening on ws://127.0.0.1:{port}/ ({micros} µs CPU per message)");
    let burn = Duration::from_micros(micros);
    for stream in listener.incoming().flatten() {
        thread::spawn(move || serve(stream, burn));
    }
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer; the clock id is always supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Spins until this thread has used `d` more CPU time.
fn burn(d: Duration) {
    let start = thread_cpu();
    while thread_cpu() - start < d {
        std::hint::spin_loop();
    }
}

/// The upgrade request's Sec-WebSocket-Key, header names in any case.
fn key_of(head: &str) -> Option<&str> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim())
    })
}

fn serve(mut s: TcpStream, cost: Duration) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    // The upgrade: read up to the blank line, answer 101.
    let head_end = loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 << 10 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let Some(key) = key_of(&head) else { return };
    let accept = accept_key(key.as_bytes());
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        String::from_utf8_lossy(&accept)
    );
    if s.write_all(reply.as_bytes()).is_err() {
        return;
    }
    buf.drain(..head_end);
    let mut out = Vec::new();
    loop {
        while let Ok(Parsing::Done { value, offset }) = decode_header(&buf) {
            let end = offset + value.len as usize;
            if buf.len() < end {
                break;
            }
            let mut payload = buf[offset..end].to_vec();
            if let Some(k) = value.mask {
                apply_mask(&mut payload, k, 0);
            }
            buf.drain(..end);
            match value.opcode {
                OpCode::Close => {
                    write_frame(&mut out, OpCode::Close, &payload);
                    let _ = s.write_all(&out);
                    return;
                }
                OpCode::Ping => write_frame(&mut out, OpCode::Pong, &payload),
                OpCode::Pong => {}
                op => {
                    burn(cost);
                    write_frame(&mut out, op, &payload);
                }
            }
        }
        if !out.is_empty() {
            if s.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
