//! Hostile clients over real sockets. Each test asserts the server's answer
//! to one kind of abuse *and* that a well-behaved client on the same server
//! keeps being served meanwhile ([`Bystander::check`], a round trip between
//! every hostile step).
//!
//! No test asserts a time: timeouts only bound waits. Memory is checked
//! loosely, as the test process's VmRSS (the server runs in-process), and
//! the tests that do so run one at a time (`MEMORY`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use common::*;
use wsd::{Config, Mode, SlowConsumerPolicy};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// How much the process's resident memory may grow while a test pushes
/// megabytes at the server: far less than what an unbounded queue or an
/// allocation of a declared length would take.
const RSS_SLACK_KIB: u64 = 64 << 10;

/// Serialises the tests that measure VmRSS, so one's traffic does not
/// count against another's bound.
static MEMORY: Mutex<()> = Mutex::new(());

fn memory_lock() -> MutexGuard<'static, ()> {
    MEMORY.lock().unwrap_or_else(|e| e.into_inner())
}

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
    let _m = memory_lock();
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
// 6. A ping flood from a client that does not read

/// Ping payloads: the ping's number, then filler, 125 bytes in all (the
/// largest control payload), so pongs pile up fast.
fn ping_payload(i: u64) -> Vec<u8> {
    let mut p = i.to_be_bytes().to_vec();
    p.extend(pattern(117, i as u8));
    p
}

/// Reads `count` frames from `stream`; each must be the pong to ping `i`,
/// in order. Parses in place (a flood is far too many frames to drain a
/// buffer frame by frame).
fn read_pongs(mut stream: std::net::TcpStream, count: u64) -> Result<(), String> {
    let mut buf: Vec<u8> = Vec::with_capacity(256 << 10);
    let mut chunk = vec![0u8; 128 << 10];
    let mut next = 0u64;
    while next < count {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("EOF after {next} of {count} pongs")),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read failed after {next} of {count} pongs: {e}")),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while buf.len() - at >= 2 {
            let (b0, b1) = (buf[at], buf[at + 1]);
            let len = usize::from(b1 & 0x7F);
            if b1 & 0x80 != 0 || len > 125 {
                return Err(format!("pong {next}: bad frame header {b0:#x} {b1:#x}"));
            }
            if buf.len() - at < 2 + len {
                break;
            }
            if b0 != 0x80 | OP_PONG {
                return Err(format!("frame {next} is not a pong: {b0:#x}"));
            }
            if buf[at + 2..at + 2 + len] != ping_payload(next)[..] {
                return Err(format!("pong {next} has the wrong payload"));
            }
            at += 2 + len;
            next += 1;
        }
        buf.drain(..at);
    }
    if buf.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the last pong", buf.len()))
    }
}

#[test]
fn ping_flood_without_reading_is_paused_by_backpressure_and_gets_every_pong_in_order() {
    let _w = watchdog();
    let _m = memory_lock();
    let server = TestServer::start(Config {
        output_high_water: 64 << 10,
        output_low_water: 16 << 10,
        ..config(Mode::Echo)
    });
    let mut good = Bystander::connect(server.addr(), "/");
    let mut flooder = server.client();
    // A small, fixed receive buffer: the flooder's window fills soon, so the
    // server's pongs back up on its side.
    socket2::SockRef::from(&flooder.stream)
        .set_recv_buffer_size(32 << 10)
        .unwrap();
    let before = vm_rss_kib();
    flooder.stream.set_nonblocking(true).unwrap();
    let (mut pings, mut stalled_rounds, mut round) = (0u64, 0, 0);
    let mut out: Vec<u8> = Vec::new();
    let mut at = 0;
    // Write pings as fast as the socket takes them, never reading. Stop once
    // three rounds in a row (a bystander round trip apart) could not write
    // a byte: the server stopped reading the flooder.
    while stalled_rounds < 3 {
        round += 1;
        let mut wrote = 0;
        loop {
            if at == out.len() {
                out.clear();
                at = 0;
                for _ in 0..256 {
                    out.extend(masked_frame(true, 0, OP_PING, &ping_payload(pings), KEY));
                    pings += 1;
                }
            }
            match flooder.stream.write(&out[at..]) {
                Ok(n) => {
                    wrote += n;
                    at += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("flooder write failed after {pings} pings: {e}"),
            }
            assert!(
                pings < 2_000_000,
                "2M pings (250 MiB) taken: the server never pushed back"
            );
        }
        stalled_rounds = if wrote == 0 { stalled_rounds + 1 } else { 0 };
        good.check();
        if round % 16 == 0 {
            assert_rss_bounded(before, "during the ping flood");
        }
    }
    assert_rss_bounded(before, "with the ping flood stalled");
    // The flooder reads now: every pong, in order, and nothing else. The
    // rest of the last batch of pings goes out meanwhile.
    flooder.stream.set_nonblocking(false).unwrap();
    let reader = {
        let stream = flooder.stream.try_clone().unwrap();
        std::thread::spawn(move || read_pongs(stream, pings))
    };
    // This write waits for the server to work through every ping queued
    // ahead of it, as fast as the reader takes the pongs: a bulk of work,
    // not one step, so the test's watchdog bounds it, not IO_TIMEOUT.
    flooder.stream.set_write_timeout(None).unwrap();
    flooder.send_raw(&out[at..]);
    flooder.stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    reader
        .join()
        .expect("pong reader panicked")
        .unwrap_or_else(|e| panic!("after {pings} pings: {e}"));
    flooder.assert_echo("flood over");
    good.check();
    assert_rss_bounded(before, "after the ping flood");
    flooder.close();
    good.close();
    eprintln!("ping flood: {pings} pings, stalled after {round} rounds");
    let stats = server.stop();
    assert_eq!(stats.protocol_errors, 0, "{stats:?}");
    assert!(stats.bytes_in > pings * 131, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 7. A broadcast receiver that never reads

/// Reads a receiver that was cut off as a slow consumer to its end: whole
/// messages in order (what the server had written before the cut), then
/// Close 1008. Returns how many messages it got.
fn read_to_cut_off(sluggard: &mut Client, size: usize) -> u32 {
    let mut got = 0u32;
    loop {
        match sluggard.recv() {
            Message::Binary(m) => {
                assert_eq!(m.len(), size);
                assert_eq!(m[..4], got.to_be_bytes(), "the cut-off reader's order");
                got += 1;
            }
            Message::Close(code, _) => {
                assert_eq!(code, Some(1008));
                return got;
            }
            other => panic!("unexpected {}", describe(&other)),
        }
    }
}

#[test]
fn broadcast_receiver_that_never_reads_is_cut_off_1008_while_others_get_everything() {
    let _w = watchdog();
    let _m = memory_lock();
    const HIGH_WATER: usize = 256 << 10;
    let server = TestServer::start(Config {
        output_high_water: HIGH_WATER,
        output_low_water: 64 << 10,
        slow_consumer: SlowConsumerPolicy::Close,
        // The cut-off reader reads once its cut-off shows in the metrics;
        // this only bounds that wait (valgrind is slow).
        close_timeout: Duration::from_secs(40),
        broadcast_to_sender: false,
        ..config(Mode::Broadcast)
    });
    // The bystander is in another room, checked with pings.
    let mut good = Bystander::connect(server.addr(), "/elsewhere");
    let mut publisher = Client::connect_path(server.addr(), "/room");
    let mut reader = Client::connect_path(server.addr(), "/room");
    let sluggard = Client::connect_path(server.addr(), "/room");
    socket2::SockRef::from(&sluggard.stream)
        .set_recv_buffer_size(16 << 10)
        .unwrap();
    let mut sluggard = Some(sluggard);
    const MESSAGES: u32 = 1024;
    // 64 MiB in all.
    const SIZE: usize = 64 << 10;
    // The publisher stays at most WINDOW messages ahead of what the good
    // receiver has checked, so the server never queues more than that for
    // it, however late its thread is scheduled: a slow reader, never a
    // slow consumer. The sluggard, which never reads, still is one.
    const WINDOW: u32 = 2;
    let body = pattern(SIZE, 7);
    let template = masked_frame(true, 0, OP_BINARY, &body, KEY);
    assert!(WINDOW as usize * template.len() < HIGH_WATER);
    let payload_at = template.len() - SIZE;
    let before = vm_rss_kib();
    // The well-behaved receiver reads on its own thread and checks every
    // message: all of them, in order, intact. It acknowledges each one.
    // It waits for the publisher, which may be busy elsewhere (a
    // bystander round trip, a metrics scrape): the watchdog bounds that.
    let (ack, acked) = mpsc::channel();
    reader.stream.set_read_timeout(None).unwrap();
    let receiving = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            let m = reader.recv_binary();
            assert_eq!(m.len(), SIZE, "message {i}");
            assert_eq!(m[..4], i.to_be_bytes(), "message {i} out of order");
            assert!(m[4..] == body[4..], "message {i} corrupted");
            // Fails only if the publisher failed, which reports itself.
            let _ = ack.send(i);
        }
        reader
    });
    let (mut checked, mut cut_off) = (0, None);
    'publish: for i in 0..MESSAGES {
        while i >= checked + WINDOW {
            if acked.recv().is_err() {
                // The receiver failed: its join below says how.
                break 'publish;
            }
            checked += 1;
        }
        let mut frame = template.clone();
        for (j, b) in i.to_be_bytes().into_iter().enumerate() {
            frame[payload_at + j] = b ^ KEY[j];
        }
        publisher.send_raw(&frame);
        if i % 64 == 0 {
            good.check_ping();
            assert_rss_bounded(before, "while publishing");
        }
        // Once the sluggard has been cut off it reads, on its own thread,
        // while publishing goes on: its Close 1008 waits behind the frame
        // that was cut short, within the close timeout.
        if cut_off.is_none()
            && (i % 16 == 0 || i == MESSAGES - 1)
            && metric(server.addr(), "wsd_slow_consumer_cutoffs_total") > 0.0
        {
            let mut sluggard = sluggard.take().unwrap();
            cut_off = Some(std::thread::spawn(move || {
                let got = read_to_cut_off(&mut sluggard, SIZE);
                sluggard.send_close(1008, b"");
                sluggard.expect_eof();
                got
            }));
        }
    }
    let reader = receiving.join().expect("the good receiver failed");
    assert_rss_bounded(before, "after 64 MiB published");
    good.check_ping();
    let got = cut_off
        .expect("the sluggard was never cut off")
        .join()
        .expect("the cut-off reader failed");
    assert!(got < MESSAGES, "the sluggard got everything");
    reader.close();
    publisher.close();
    good.close();
    let stats = server.stop();
    assert_eq!(stats.slow_consumer_cutoffs, 1, "{stats:?}");
    assert_eq!(stats.messages_in, u64::from(MESSAGES), "{stats:?}");
}

// ---------------------------------------------------------------------------
// 8. Resets in the middle of things

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
// 9. Half-closed sockets

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
// 10. Out of file descriptors

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
// 10. Paused connections still notice their peer leaving

/// Polls `/metrics` until `name` is `value`, for at most `limit` (a
/// watchdog against a hang, not a speed check).
fn wait_metric(addr: std::net::SocketAddr, name: &str, value: f64, limit: Duration) {
    let until = std::time::Instant::now() + limit;
    loop {
        let now = metric(addr, name);
        if now == value {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{name} stayed at {now}, expected {value}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A broadcast receiver that reads nothing is paused (its output is over
/// the high watermark) and, with `--slow-consumer drop`, kept. When it then
/// half-closes, or half-closes and resets, wsd must still notice, close it
/// within the close timeout and free it, instead of holding a CLOSE-WAIT
/// socket with megabytes queued until it exits.
#[test]
fn paused_slow_consumer_that_half_closes_or_resets_is_closed_and_freed() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        output_high_water: 256 << 10,
        output_low_water: 64 << 10,
        slow_consumer: SlowConsumerPolicy::Drop,
        close_timeout: Duration::from_secs(1),
        broadcast_to_sender: false,
        ..config(Mode::Broadcast)
    });
    let addr = server.addr();
    let mut good = Bystander::connect(addr, "/elsewhere");
    let mut publisher = Client::connect_path(addr, "/room");
    let half_closer = Client::connect_path(addr, "/room");
    let resetter = Client::connect_path(addr, "/room");
    for c in [&half_closer, &resetter] {
        socket2::SockRef::from(&c.stream)
            .set_recv_buffer_size(16 << 10)
            .unwrap();
    }
    const MESSAGES: u32 = 150;
    let body = pattern(64 << 10, 5);
    for _ in 0..MESSAGES {
        publisher.send_binary(&body);
    }
    // Every message was taken in, and both receivers are far over the
    // high watermark: paused, with later messages dropped for them.
    wait_metric(
        addr,
        "wsd_messages_received_total",
        f64::from(MESSAGES),
        Duration::from_secs(30),
    );
    assert!(metric(addr, "wsd_slow_consumer_drops_total") > 0.0);
    good.check_ping();
    // Held: the bystander, the publisher, both receivers, and /metrics.
    wait_connections_open(addr, 5);

    half_closer.shutdown_write();
    wait_metric(addr, "wsd_connections_open", 4.0, Duration::from_secs(30));

    resetter.shutdown_write();
    resetter.set_linger_zero();
    drop(resetter);
    wait_metric(addr, "wsd_connections_open", 3.0, Duration::from_secs(30));

    good.check_ping();
    drop(half_closer);
    good.close();
    publisher.close();
    let stats = server.stop();
    assert_eq!(stats.abnormal_closes, 2, "{stats:?}");
}
