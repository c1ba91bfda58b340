//! Hostile clients over real sockets. Each test asserts the server's answer
//! to one kind of abuse *and* that a well-behaved client on the same server
//! keeps being served meanwhile ([`Bystander::check`], a round trip between
//! every hostile step).
//!
//! Clients that do not read (ping floods, broadcast members that never
//! read) are in tests/hostile_readers.rs.
//!
//! No test asserts a time: timeouts only bound waits. Memory is checked
//! loosely, as the test process's VmRSS (the server runs in-process).

mod common;

use std::net::Shutdown;
use std::time::Duration;

use common::*;
use wsd::{Config, Mode};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// How much the process's resident memory may grow while a test pushes
/// megabytes at the server: far less than what an unbounded queue or an
/// allocation of a declared length would take.
const RSS_SLACK_KIB: u64 = 64 << 10;

fn assert_rss_bounded(before_kib: u64, what: &str) {
    let now = vm_rss_kib();
    assert!(
        now < before_kib + RSS_SLACK_KIB,
        "{what}: VmRSS grew from {before_kib} KiB to {now} KiB"
    );
}

/// A full upgrade request padded with harmless headers to about `len`
/// bytes (under the default 8 KiB head limit).
fn padded_request(len: usize) -> Vec<u8> {
    let mut extra = String::new();
    let mut i = 0;
    while extra.len() + 200 < len {
        extra.push_str(&format!("X-Pad-{i}: {}\r\n", "p".repeat(40)));
        i += 1;
    }
    upgrade_request_with("/chat", RFC_KEY, &extra).into_bytes()
}

// ---------------------------------------------------------------------------
// 1. Slowloris

#[test]
fn slow_handshake_one_byte_at_a_time_is_cut_with_408_at_the_handshake_timeout() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        handshake_timeout: Duration::from_millis(400),
        ..config(Mode::Echo)
    });
    let mut good = Bystander::connect(server.addr(), "/");
    let mut slow = Client::connect_raw(server.addr());
    // About 6 KiB at one byte per 50 ms would take five minutes: the server
    // must cut it long before it ends, whatever this machine's speed.
    let request = padded_request(6000);
    let mut sent = 0;
    loop {
        assert!(
            sent < request.len(),
            "the whole request went out one byte at a time without a 408"
        );
        // A write can only fail once the server has dropped us, which it
        // must not do before its 408 is read: it drains until our FIN.
        slow.send_raw(&request[sent..sent + 1]);
        sent += 1;
        // The 50 ms pause is the wait for an answer.
        if slow.poll_bytes(Duration::from_millis(50)).is_some() {
            break;
        }
        good.check();
    }
    let resp = slow.read_http_response();
    assert_eq!(resp.status, 408, "{resp:?}");
    slow.expect_eof();
    good.check();
    drop(slow);
    good.close();
    let stats = server.stop();
    assert_eq!(stats.handshake_failures.get(&408), Some(&1), "{stats:?}");
    assert_eq!(
        stats.handshakes, 1,
        "only the bystander upgraded: {stats:?}"
    );
}

// ---------------------------------------------------------------------------
// 2. Many sockets that never finish the handshake

#[test]
fn many_half_finished_handshakes_are_all_cut_and_freed_while_others_are_served() {
    let _w = watchdog();
    // Two descriptors per connection in this process (client and server
    // end); leave half the limit to the tests running alongside.
    let n = open_files_soft_limit()
        .map_or(1000, |l| (l.saturating_sub(200) / 4) as usize)
        .min(1000);
    assert!(n >= 50, "open-file limit too low for this test: {n}");
    let server = TestServer::start(Config {
        handshake_timeout: Duration::from_millis(1000),
        ..config(Mode::Echo)
    });
    let mut good = Bystander::connect(server.addr(), "/");
    let mut hostile = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = Client::connect_raw(server.addr());
        c.send_raw(b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: webs");
        hostile.push(c);
        if i % 50 == 0 {
            good.check();
        }
    }
    // Every one of them is answered 408 (they can all take it: each sent a
    // few bytes and reads) and then closed by the server.
    for (i, c) in hostile.iter_mut().enumerate() {
        let resp = c.read_http_response();
        assert_eq!(resp.status, 408, "client {i}: {resp:?}");
        c.expect_eof();
        if i % 50 == 0 {
            good.check();
        }
    }
    drop(hostile);
    // Gone from the server: the bystander and the /metrics request remain.
    wait_connections_open(server.addr(), 2);
    good.check();
    good.close();
    let stats = server.stop();
    assert_eq!(
        stats.handshake_failures.get(&408),
        Some(&(n as u64)),
        "{stats:?}"
    );
    assert_eq!(stats.handshakes, 1, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 3. Header blocks over the limit

/// Streams `chunk` over and over (as header bytes) until the server answers,
/// checking the bystander between chunks; returns the answer.
fn stream_until_answered(c: &mut Client, chunk: &[u8], good: &mut Bystander) -> HttpResponse {
    let mut sent = 0;
    loop {
        assert!(
            sent < 4 << 20,
            "4 MiB of header sent and no answer: unbounded head buffering"
        );
        c.send_raw(chunk);
        sent += chunk.len();
        good.check();
        if c.poll_bytes(Duration::from_millis(1)).is_some() {
            return c.read_http_response();
        }
    }
}

#[test]
fn header_block_over_the_limit_is_431_for_a_huge_header_and_for_endless_headers() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut good = Bystander::connect(server.addr(), "/");

    // A complete request with one 64 KiB header.
    let mut huge = Client::connect_raw(server.addr());
    let req = upgrade_request_with(
        "/chat",
        RFC_KEY,
        &format!("X-Huge: {}\r\n", "h".repeat(64 << 10)),
    );
    huge.send_raw(req.as_bytes());
    let resp = huge.read_http_response();
    assert_eq!(resp.status, 431, "{resp:?}");
    huge.expect_eof();
    good.check();

    // One header whose value never ends.
    let mut endless_value = Client::connect_raw(server.addr());
    endless_value.send_raw(b"GET /chat HTTP/1.1\r\nHost: localhost\r\nX-Long: ");
    let resp = stream_until_answered(&mut endless_value, &[b'v'; 1024], &mut good);
    assert_eq!(resp.status, 431, "{resp:?}");
    endless_value.expect_eof();

    // Header lines that never end.
    let mut endless = Client::connect_raw(server.addr());
    endless.send_raw(b"GET /chat HTTP/1.1\r\nHost: localhost\r\n");
    let lines = "X-More: yes\r\n".repeat(16);
    let resp = stream_until_answered(&mut endless, lines.as_bytes(), &mut good);
    assert_eq!(resp.status, 431, "{resp:?}");
    endless.expect_eof();

    good.check();
    good.close();
    let stats = server.stop();
    assert_eq!(stats.handshake_failures.get(&431), Some(&3), "{stats:?}");
}

// ---------------------------------------------------------------------------
// 4. A frame declaring 2^62 bytes

#[test]
fn frame_declaring_2_pow_62_bytes_is_1009_at_once_without_allocating() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut good = Bystander::connect(server.addr(), "/");
    let before = vm_rss_kib();
    let huge = 1u64 << 62;
    let mut cases: Vec<Vec<u8>> = [OP_BINARY, OP_TEXT]
        .into_iter()
        .map(|op| frame_header(true, 0, op, huge, Some(KEY)))
        .collect();
    // The same after a first fragment, and after a complete message.
    let mut cont = masked_frame(false, 0, OP_TEXT, b"first", KEY);
    cont.extend(frame_header(true, 0, OP_CONT, huge, Some(KEY)));
    cases.push(cont);
    let mut after = masked_frame(true, 0, OP_TEXT, b"whole", KEY);
    after.extend(frame_header(false, 0, OP_BINARY, huge, Some(KEY)));
    cases.push(after);
    let count = cases.len() as u64;
    for (i, bytes) in cases.into_iter().enumerate() {
        let mut c = server.client();
        c.send_raw(&bytes);
        if i == 3 {
            assert_eq!(c.recv_text(), "whole");
        }
        // The answer comes from the header alone: no payload follows.
        c.expect_close(1009);
        good.check();
    }
    assert_rss_bounded(before, "after frames declaring 2^62 bytes");
    good.close();
    let stats = server.stop();
    assert_eq!(stats.closes.get(&1009), Some(&count), "{stats:?}");
    assert_eq!(stats.protocol_errors, count, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 5. Unmasked client frames

#[test]
fn unmasked_client_frames_are_1002_and_the_bystander_is_served() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut good = Bystander::connect(server.addr(), "/");
    let mut cases = vec![
        unmasked_frame(true, OP_TEXT, b"hello"),
        unmasked_frame(true, OP_BINARY, &pattern(300, 1)),
        unmasked_frame(true, OP_PING, b"p"),
        unmasked_frame(true, OP_CLOSE, &close_payload(1000, b"")),
        unmasked_frame(true, OP_TEXT, b""),
    ];
    // An unmasked continuation of a masked first fragment.
    let mut cont = masked_frame(false, 0, OP_TEXT, b"a", KEY);
    cont.extend(unmasked_frame(true, OP_CONT, b"b"));
    cases.push(cont);
    let count = cases.len() as u64;
    for bytes in cases {
        let mut c = server.client();
        c.send_raw(&bytes);
        c.expect_close(1002);
        good.check();
    }
    let rounds = good.rounds as u64;
    good.close();
    let stats = server.stop();
    assert_eq!(stats.protocol_errors, count, "{stats:?}");
    assert_eq!(stats.closes.get(&1002), Some(&count), "{stats:?}");
    // No unmasked payload was taken for a message: only the bystander's.
    assert_eq!(stats.messages_in, rounds, "{stats:?}");
}

/// Sends an upgrade request with `frames` right behind it, in one write, and
/// expects the 101, then Close `code`, then the server's FIN.
fn frames_behind_the_request(server: &TestServer, frames: &[u8], code: u16) {
    let mut c = Client::connect_raw(server.addr());
    let mut bytes = upgrade_request(RFC_KEY).into_bytes();
    bytes.extend_from_slice(frames);
    c.send_raw(&bytes);
    c.expect_upgrade(RFC_KEY);
    c.expect_close(code);
}

#[test]
fn unmasked_frame_in_the_same_write_as_the_upgrade_request_is_1002_then_eof() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut good = Bystander::connect(server.addr(), "/");
    frames_behind_the_request(
        &server,
        &unmasked_frame(true, OP_TEXT, b"right behind"),
        1002,
    );
    good.check();
    // The connection is gone, not held open with a closed session.
    wait_connections_open(server.addr(), 2);
    good.close();
    let stats = server.stop();
    assert_eq!(stats.protocol_errors, 1, "{stats:?}");
    assert_eq!(stats.closes.get(&1002), Some(&1), "{stats:?}");
}

#[test]
fn close_in_the_same_write_as_the_upgrade_request_is_answered_then_eof() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut good = Bystander::connect(server.addr(), "/");
    // A pipelining client that only wanted to say goodbye.
    frames_behind_the_request(
        &server,
        &masked_frame(true, 0, OP_CLOSE, &close_payload(1000, b""), KEY),
        1000,
    );
    good.check();
    wait_connections_open(server.addr(), 2);
    good.close();
}

// ---------------------------------------------------------------------------
// 6. Resets in the middle of things

#[test]
fn connection_reset_mid_frame_is_counted_and_freed() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut good = Bystander::connect(server.addr(), "/");

    // (phase, bytes before the reset)
    let mut in_handshake = Client::connect_raw(server.addr());
    in_handshake.send_raw(b"GET /chat HTTP/1.1\r\nHost: loc");
    let mut cases = vec![(false, in_handshake)];
    for bytes in [
        frame_header(true, 0, OP_BINARY, 1000, Some(KEY))[..1].to_vec(),
        frame_header(true, 0, OP_BINARY, 1000, Some(KEY)),
        masked_frame(true, 0, OP_BINARY, &pattern(1000, 3), KEY)[..200].to_vec(),
        {
            let mut b = masked_frame(false, 0, OP_TEXT, b"first half", KEY);
            b.extend(&masked_frame(true, 0, OP_CONT, &[b'x'; 300], KEY)[..100]);
            b
        },
    ] {
        let mut c = server.client();
        c.send_raw(&bytes);
        cases.push((true, c));
    }
    let resets = cases.len() as u64;
    let open_resets = cases.iter().filter(|(open, _)| *open).count() as u64;
    for (_, c) in cases {
        // Make sure the server has read what was sent (the bystander's
        // round trip comes after it on the same reactor), then reset.
        good.check();
        c.set_linger_zero();
        drop(c);
        good.check();
    }
    // Without SO_LINGER: closing with unread input (our own echo) resets
    // the connection too.
    let mut unread = server.client();
    unread.send_text("never read");
    let mut peek = [0u8; 1];
    assert_eq!(unread.stream.peek(&mut peek).unwrap(), 1, "echo arrived");
    drop(unread);
    good.check();

    wait_connections_open(server.addr(), 2);
    good.check();
    good.close();
    let stats = server.stop();
    assert_eq!(stats.io_errors, resets + 1, "{stats:?}");
    assert_eq!(stats.abnormal_closes, open_resets + 1, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 7. Half-closed sockets

#[test]
fn half_closed_client_gets_its_echo_then_eof_also_when_cut_mid_frame() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut good = Bystander::connect(server.addr(), "/");

    // A message, then our FIN: the echo still comes, then the server's FIN.
    let mut c = server.client();
    c.send_text("before the half-close");
    c.stream.shutdown(Shutdown::Write).unwrap();
    good.check();
    assert_eq!(c.recv_text(), "before the half-close");
    c.expect_eof();
    good.check();

    // A whole message and half of the next frame, then our FIN: the whole
    // one is echoed, the half is dropped, then EOF.
    let mut c = server.client();
    let mut bytes = masked_frame(true, 0, OP_BINARY, &pattern(5000, 2), KEY);
    bytes.extend(&masked_frame(true, 0, OP_BINARY, &pattern(5000, 3), KEY)[..2500]);
    c.send_raw(&bytes);
    c.stream.shutdown(Shutdown::Write).unwrap();
    good.check();
    assert_eq!(c.recv_binary(), pattern(5000, 2));
    c.expect_eof();
    good.check();

    // Half-closed in the middle of a frame header.
    let mut c = server.client();
    c.send_raw(&frame_header(true, 0, OP_TEXT, 70_000, Some(KEY))[..3]);
    c.stream.shutdown(Shutdown::Write).unwrap();
    good.check();
    c.expect_eof();

    good.check();
    good.close();
    let stats = server.stop();
    assert_eq!(stats.abnormal_closes, 3, "{stats:?}");
    assert_eq!(stats.io_errors, 0, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 8. Out of file descriptors

#[test]
fn out_of_file_descriptors_keeps_serving_open_clients_and_accepts_again_once_some_close() {
    let _w = watchdog();
    let mut wsd = WsdProcess::start_in_shell(
        "ulimit -n 40",
        &["--listen", "127.0.0.1:0", "--log-level", "warn"],
    );
    let addr = wsd.addrs[0];
    // More clients than descriptors, each with its request sent at once.
    const CLIENTS: usize = 60;
    let mut pending: Vec<(Client, String)> = (0..CLIENTS)
        .map(|_| {
            let mut c = Client::connect_raw(addr);
            let key = c.fresh_key();
            c.send_raw(upgrade_request(&key).as_bytes());
            (c, key)
        })
        .collect();
    let line = wsd.stderr_line_containing("accept failed", IO_TIMEOUT);
    assert!(line.contains("Too many open files"), "{line}");
    // The backlog is first in, first out: the clients accepted are the
    // first ones. The first that gets no answer for a while waits in the
    // backlog, and so does everyone after it.
    let mut served = Vec::new();
    pending.reverse();
    while let Some((mut c, key)) = pending.pop() {
        if c.poll_bytes(Duration::from_secs(2)).is_none() {
            pending.push((c, key));
            break;
        }
        c.expect_upgrade(&key);
        served.push(c);
    }
    let accepted = served.len();
    assert!(
        (10..CLIENTS).contains(&accepted),
        "{accepted} of {CLIENTS} accepted under `ulimit -n 40`"
    );
    // Those open are served while accepts keep failing.
    for (i, c) in served.iter_mut().enumerate() {
        c.assert_echo(&format!("served {i} while out of descriptors"));
    }
    let (mut next, next_key) = pending.pop().unwrap();
    next.expect_silence(Duration::from_millis(200));
    // Five close: the next five in the backlog are accepted and served.
    for c in served.drain(..5) {
        c.close();
    }
    next.expect_upgrade(&next_key);
    next.assert_echo("accepted after a close");
    served.push(next);
    for _ in 0..4 {
        let (mut c, key) = pending.pop().unwrap();
        c.expect_upgrade(&key);
        c.assert_echo("accepted after a close");
        served.push(c);
    }
    for c in served.iter_mut() {
        c.assert_echo("still served");
    }
    // Everyone else gives up; everyone served leaves cleanly. Then a new
    // client is accepted and served.
    drop(pending);
    for c in served {
        c.close();
    }
    let mut fresh = Client::connect(addr);
    fresh.assert_echo("a new client, accepted again");
    fresh.close();
    // A clean exit on SIGTERM.
    wsd.signal("TERM");
    let status = wsd.wait_exit(IO_TIMEOUT);
    assert!(status.success(), "wsd exited with {status}");
    let log = wsd.stderr_so_far();
    assert!(
        log.iter().all(|l| !l.contains("panicked")),
        "wsd log: {log:?}"
    );
}

// ---------------------------------------------------------------------------
