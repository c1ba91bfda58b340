//! Limits over real sockets: message, frame and fragment caps (1009,
//! decided at the frame header), the connection cap (503), and echo
//! backpressure that stalls only the client that does not read.

mod common;

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use common::*;
use wsd::proto::Limits;
use wsd::{Config, Mode};

const KEY: [u8; 4] = [9, 8, 7, 6];

fn limited(max_message: usize, max_frame: usize, max_fragments: u32) -> TestServer {
    TestServer::start(Config {
        limits: Limits {
            max_message,
            max_frame,
            max_fragments,
        },
        ..config(Mode::Echo)
    })
}

/// Sends `bytes` on `c` and expects Close 1009, then EOF.
fn too_big(mut c: Client, bytes: &[u8]) {
    c.send_raw(bytes);
    c.expect_close(1009);
}

#[test]
fn message_at_the_limit_is_echoed_and_one_byte_more_is_1009() {
    let _w = watchdog();
    let server = limited(1024, 16 << 20, 128);
    let mut c = server.client();
    c.send_binary(&pattern(1024, 1));
    assert_eq!(c.recv_binary(), pattern(1024, 1));
    too_big(c, &masked_frame(true, 0, OP_BINARY, &pattern(1025, 1), KEY));
    let stats = server.stop();
    assert_eq!(stats.protocol_errors, 1);
}

#[test]
fn oversized_frame_is_refused_at_its_header_before_the_payload() {
    let _w = watchdog();
    let server = limited(1024, 16 << 20, 128);
    // Only the header of a 1025-byte text frame: no payload is ever sent,
    // so the answer can only come from the declared length.
    too_big(
        server.client(),
        &frame_header(true, 0, OP_TEXT, 1025, Some(KEY)),
    );
}

#[test]
fn message_over_the_limit_across_fragments_is_1009() {
    let _w = watchdog();
    let server = limited(1024, 16 << 20, 128);
    let mut c = server.client();
    // 512 + 512 fits exactly.
    c.send_frame(false, OP_TEXT, &[b'a'; 512]);
    c.send_frame(true, OP_CONT, &[b'b'; 512]);
    assert_eq!(c.recv_text().len(), 1024);
    // 600 + a header declaring 600 more: refused at the second header.
    let mut bytes = masked_frame(false, 0, OP_BINARY, &pattern(600, 0), KEY);
    bytes.extend(frame_header(true, 0, OP_CONT, 600, Some(KEY)));
    too_big(c, &bytes);
}

#[test]
fn frame_over_max_frame_is_1009_even_when_the_message_would_fit() {
    let _w = watchdog();
    let server = limited(4096, 512, 128);
    let mut c = server.client();
    let data = pattern(2048, 5);
    for (i, part) in data.chunks(512).enumerate() {
        let op = if i == 0 { OP_BINARY } else { OP_CONT };
        c.send_frame(i == 3, op, part);
    }
    assert_eq!(c.recv_binary(), data);
    too_big(c, &masked_frame(true, 0, OP_BINARY, &pattern(513, 0), KEY));
}

#[test]
fn frame_declaring_2_pow_62_bytes_is_1009_without_allocating() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut bystander = server.client();
    // Default limits (16 MiB). Were the server to allocate or wait for the
    // payload, this would abort or hang instead of answering at once.
    for op in [OP_BINARY, OP_TEXT] {
        too_big(
            server.client(),
            &frame_header(true, 0, op, 1 << 62, Some(KEY)),
        );
        bystander.assert_echo("unaffected");
    }
    // A continuation declaring 2^62 after a small first fragment.
    let mut bytes = masked_frame(false, 0, OP_BINARY, b"abc", KEY);
    bytes.extend(frame_header(false, 0, OP_CONT, 1 << 62, Some(KEY)));
    too_big(server.client(), &bytes);
    bystander.assert_echo("still unaffected");
    bystander.close();
}

#[test]
fn too_many_fragments_is_1009() {
    let _w = watchdog();
    let server = limited(1 << 20, 1 << 20, 4);
    let mut c = server.client();
    // Four fragments are allowed.
    c.send_frame(false, OP_TEXT, b"a");
    for (i, p) in [b"b", b"c", b"d"].iter().enumerate() {
        c.send_frame(i == 2, OP_CONT, &p[..]);
    }
    assert_eq!(c.recv_text(), "abcd");
    // Five are not, even empty ones.
    let mut bytes = masked_frame(false, 0, OP_BINARY, b"", KEY);
    for _ in 0..3 {
        bytes.extend(masked_frame(false, 0, OP_CONT, b"", KEY));
    }
    bytes.extend(masked_frame(true, 0, OP_CONT, b"", KEY));
    too_big(c, &bytes);
}

/// Connects and reads the answer to an upgrade request; returns the status
/// and the client (upgraded if 101).
fn try_connect(server: &TestServer) -> (u16, Client) {
    let mut c = Client::connect_raw(server.addr());
    let key = c.fresh_key();
    c.send_raw(upgrade_request(&key).as_bytes());
    let resp = c.read_http_response();
    (resp.status, c)
}

#[test]
fn connection_over_max_connections_gets_503_until_one_closes() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        max_connections: 3,
        ..config(Mode::Echo)
    });
    let mut clients: Vec<Client> = (0..3).map(|_| server.client()).collect();
    // The 4th, before it sends anything: 503 with Retry-After, then EOF.
    let mut fourth = Client::connect_raw(server.addr());
    let resp = fourth.read_http_response();
    assert_eq!(resp.status, 503, "{resp:?}");
    assert!(resp.header("retry-after").is_some(), "{resp:?}");
    fourth.expect_eof();
    // The open ones are unaffected.
    for c in &mut clients {
        c.assert_echo("still open");
    }
    // One closes; a new connection is accepted once the server has seen
    // the close (bounded retry: the EOF and the new connect race).
    clients.pop().unwrap().close();
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut refused = 1;
    let mut replacement = loop {
        match try_connect(&server) {
            (101, c) => break c,
            (503, _) => refused += 1,
            (s, _) => panic!("status {s}"),
        }
        assert!(Instant::now() < deadline, "no slot after a close");
        std::thread::sleep(Duration::from_millis(10));
    };
    replacement.assert_echo("replacement");
    let stats = server.stop();
    assert_eq!(stats.refused_max_connections, refused);
    assert_eq!(stats.accepted, 4);
}

#[test]
fn refused_503_client_that_already_sent_its_request_reads_answer_then_eof() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        max_connections: 1,
        ..config(Mode::Echo)
    });
    let first = server.client();
    // A real client sends its request at once, before the server accepts.
    let (status, mut second) = try_connect(&server);
    assert_eq!(status, 503);
    second.expect_eof();
    first.close();
}

#[test]
fn client_that_sends_but_never_reads_does_not_stall_others() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        output_high_water: 64 << 10,
        output_low_water: 16 << 10,
        ..config(Mode::Echo)
    });
    let mut hog = server.client();
    let mut good = server.client();
    let payload = pattern(16 << 10, 3);
    let frame = masked_frame(true, 0, OP_BINARY, &payload, KEY);
    hog.stream.set_nonblocking(true).unwrap();
    let (mut frames, mut partial, mut stalled_rounds, mut round) = (0usize, 0usize, 0, 0);
    // Write as fast as the socket takes it; between bursts the other client
    // must get its echo. Stop once the hog cannot write at all three rounds
    // in a row: the server stopped reading it and TCP pushed back.
    while stalled_rounds < 3 {
        round += 1;
        let mut wrote = 0;
        loop {
            match hog.stream.write(&frame[partial..]) {
                Ok(n) => {
                    wrote += n;
                    partial += n;
                    if partial == frame.len() {
                        partial = 0;
                        frames += 1;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("hog write failed: {e}"),
            }
            assert!(
                frames < 16 << 10,
                "256 MiB written: the server never pushed back"
            );
        }
        stalled_rounds = if wrote == 0 { stalled_rounds + 1 } else { 0 };
        good.assert_echo(&format!("round {round}"));
    }
    assert!(frames > 4, "the hog was stopped after {frames} frames");
    // Once the hog reads, its echoes come back, in order and intact.
    hog.stream.set_nonblocking(false).unwrap();
    for _ in 0..10 {
        assert_eq!(hog.recv_binary(), payload);
    }
    good.close();
}
