//! The closing handshake and connection failure over real sockets: the
//! server echoes a valid Close, fails bad frames with 1002/1007, and always
//! closes TCP first with a FIN (never a reset that would eat its Close).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use wsd::Mode;

/// Sends `bytes` on a fresh connection and expects Close `code`, then EOF.
fn fails_with(server: &TestServer, bytes: &[u8], code: u16, what: &str) {
    let mut c = server.client();
    c.send_raw(bytes);
    match c.recv() {
        Message::Close(got, _) => assert_eq!(got, Some(code), "{what}"),
        other => panic!("{what}: expected Close {code}, got {}", describe(&other)),
    }
    c.expect_eof();
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn close_is_echoed_with_the_same_code_and_server_closes_tcp() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut bystander = server.client();
    let mut c = server.client();
    c.assert_echo("before");
    c.send_close(1000, b"bye");
    // Close 1000 back, then EOF while our side is still open: the server
    // closes TCP first.
    c.expect_close(1000);
    drop(c);
    // A later round trip on another connection: the server has seen our EOF.
    bystander.assert_ping(b"barrier");
    let stats = server.stop();
    assert_eq!(stats.closes.get(&1000), Some(&1), "{stats:?}");
    assert_eq!(stats.protocol_errors, 0);
    assert_eq!(stats.abnormal_closes, 0);
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    c.send_frame(true, OP_CLOSE, b"");
    assert_eq!(c.recv(), Message::Close(None, Vec::new()));
    c.expect_eof();
}

#[test]
fn every_valid_close_code_is_echoed() {
    let _w = watchdog();
    let server = TestServer::echo();
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000,
        4999,
    ] {
        let mut c = server.client();
        c.send_close(code, "a valid reason · ✓".as_bytes());
        c.expect_close(code);
    }
}

#[test]
fn invalid_close_codes_fail_with_1002() {
    let _w = watchdog();
    let server = TestServer::echo();
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let bytes = masked_frame(true, 0, OP_CLOSE, &close_payload(code, b""), KEY);
        fails_with(&server, &bytes, 1002, &format!("close code {code}"));
    }
}

#[test]
fn one_byte_close_payload_fails_with_1002() {
    let _w = watchdog();
    let server = TestServer::echo();
    fails_with(
        &server,
        &masked_frame(true, 0, OP_CLOSE, &[0x03], KEY),
        1002,
        "1 byte",
    );
}

#[test]
fn close_with_invalid_utf8_reason_is_1007() {
    let _w = watchdog();
    let server = TestServer::echo();
    // Valid prefix, then a UTF-16 surrogate (ED A0 80) that UTF-8 forbids.
    let reason = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80";
    let bytes = masked_frame(true, 0, OP_CLOSE, &close_payload(1000, reason), KEY);
    fails_with(&server, &bytes, 1007, "invalid reason");
}

#[test]
fn framing_violations_fail_with_1002_then_eof() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        (
            "unmasked frame".into(),
            unmasked_frame(true, OP_TEXT, b"hi"),
        ),
        (
            "continuation without a message".into(),
            masked_frame(true, 0, OP_CONT, b"orphan", KEY),
        ),
        (
            "control frame of 126 bytes".into(),
            masked_frame(true, 0, OP_PING, &[0; 126], KEY),
        ),
        (
            "fragmented ping".into(),
            masked_frame(false, 0, OP_PING, b"frag", KEY),
        ),
        (
            "fragmented close".into(),
            masked_frame(false, 0, OP_CLOSE, &close_payload(1000, b""), KEY),
        ),
        ("new message inside a fragmented one".into(), {
            let mut b = masked_frame(false, 0, OP_TEXT, b"one", KEY);
            b.extend(masked_frame(true, 0, OP_BINARY, b"two", KEY));
            b
        }),
        ("64-bit length with the top bit set".into(), {
            let mut b = frame_header(true, 0, OP_BINARY, 1 << 63, Some(KEY));
            b.extend_from_slice(b"xx");
            b
        }),
    ];
    for rsv in [0b100, 0b010, 0b001] {
        cases.push((
            format!("RSV bits {rsv:03b}"),
            masked_frame(true, rsv, OP_TEXT, b"hi", KEY),
        ));
    }
    for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        cases.push((
            format!("reserved opcode {op:#x}"),
            masked_frame(true, 0, op, b"", KEY),
        ));
    }
    for (what, bytes) in &cases {
        fails_with(&server, bytes, 1002, what);
    }
    let stats = server.stop();
    assert_eq!(stats.protocol_errors, cases.len() as u64);
}

#[test]
fn invalid_utf8_text_fails_with_1007() {
    let _w = watchdog();
    let server = TestServer::echo();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "single frame",
            masked_frame(true, 0, OP_TEXT, b"caf\xc3\x28", KEY),
        ),
        (
            "overlong encoding",
            masked_frame(true, 0, OP_TEXT, b"\xc0\xaf", KEY),
        ),
        (
            "surrogate",
            masked_frame(true, 0, OP_TEXT, b"\xed\xa0\x80", KEY),
        ),
        (
            "ends inside a sequence",
            masked_frame(true, 0, OP_TEXT, b"ok\xe2\x82", KEY),
        ),
        ("across fragments", {
            let mut b = masked_frame(false, 0, OP_TEXT, b"ok\xf0\x9f", KEY);
            b.extend(masked_frame(true, 0, OP_CONT, b"\x28\x28", KEY));
            b
        }),
        // Fail fast: the first fragment is already hopeless, and the server
        // says so without waiting for the rest of the message.
        (
            "first fragment of an unfinished message",
            masked_frame(false, 0, OP_TEXT, b"\xff more to come", KEY),
        ),
    ];
    for (what, bytes) in &cases {
        fails_with(&server, bytes, 1007, what);
    }
}

#[test]
fn data_after_close_is_discarded_without_a_reset() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    // Close, then a lot more in the same write: the server must not echo it,
    // and must drain it so that its FIN is not turned into a reset.
    let mut bytes = masked_frame(true, 0, OP_CLOSE, &close_payload(1001, b""), KEY);
    for _ in 0..20 {
        bytes.extend(masked_frame(true, 0, OP_BINARY, &pattern(10_000, 1), KEY));
    }
    c.send_raw(&bytes);
    c.expect_close(1001);
    // The server drains what we send while it waits for our EOF.
    c.send_raw(&pattern(100_000, 2));
    c.shutdown_write();
}

#[test]
fn protocol_error_after_queued_echoes_still_delivers_them_first() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    let mut bytes = Vec::new();
    for i in 0..5 {
        bytes.extend(masked_frame(
            true,
            0,
            OP_TEXT,
            format!("m{i}").as_bytes(),
            KEY,
        ));
    }
    bytes.extend(unmasked_frame(true, OP_TEXT, b"bad"));
    c.send_raw(&bytes);
    for i in 0..5 {
        assert_eq!(c.recv_text(), format!("m{i}"));
    }
    c.expect_close(1002);
}

#[test]
fn half_closed_client_gets_its_replies_then_eof() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    c.send_text("one");
    c.send_text("two");
    c.shutdown_write();
    assert_eq!(c.recv_text(), "one");
    assert_eq!(c.recv_text(), "two");
    c.expect_eof();
    let stats = server.stop();
    assert_eq!(stats.abnormal_closes, 1, "{stats:?}");
}

#[test]
fn client_that_never_closes_its_end_is_dropped_after_the_close_timeout() {
    let _w = watchdog();
    let server = TestServer::start(wsd::Config {
        close_timeout: Duration::from_millis(200),
        max_connections: 1,
        ..config(Mode::Echo)
    });
    let mut c = server.client();
    c.send_raw(&unmasked_frame(true, OP_TEXT, b"bad"));
    c.expect_close(1002);
    // A failed connection no longer holds the only slot.
    let mut next = server.client();
    next.assert_echo("slot free while the other closes");
    // We keep our side open and keep writing: the server drains and
    // discards until the close timeout drops the socket, and then our
    // writes meet a reset. Bounded: the watchdog and this deadline.
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        if c.stream.write(b"x").is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "never dropped");
        std::thread::sleep(Duration::from_millis(20));
    }
    next.close();
    let stats = server.stop();
    assert_eq!(stats.close_timeouts, 1, "{stats:?}");
    assert_eq!(stats.refused_max_connections, 0, "{stats:?}");
}

#[test]
fn well_behaved_client_is_served_while_others_fail() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut good = server.client();
    for i in 0..20 {
        let mut bad = server.client();
        let bytes = match i % 4 {
            0 => unmasked_frame(true, OP_TEXT, b"x"),
            1 => masked_frame(true, 0, OP_TEXT, b"\xff", KEY),
            2 => masked_frame(true, 0b100, OP_BINARY, b"x", KEY),
            _ => masked_frame(true, 0, OP_CONT, b"x", KEY),
        };
        bad.send_raw(&bytes);
        // Half the hostile clients vanish without reading the Close.
        if i % 2 == 0 {
            assert!(matches!(bad.recv(), Message::Close(Some(1002 | 1007), _)));
        }
        good.assert_echo(&format!("still served {i}"));
    }
    good.close();
}
