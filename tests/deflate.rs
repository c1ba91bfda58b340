//! permessage-deflate (RFC 7692) over a real socket: negotiation, echo and
//! broadcast of compressed messages, context takeover and its memory limit,
//! and hostile input (a deflate bomb, RSV1 where it may not be, bad data).

mod common;

use std::time::Duration;

use common::*;
use wsd::{Config, DeflateConfig, Mode};

fn deflate_config(mode: Mode, d: DeflateConfig) -> Config {
    Config {
        deflate: Some(d),
        ping_interval: None,
        ..config(mode)
    }
}

fn deflate_server() -> TestServer {
    TestServer::start(deflate_config(Mode::Echo, DeflateConfig::default()))
}

fn takeover() -> DeflateConfig {
    DeflateConfig {
        context_takeover: true,
        ..DeflateConfig::default()
    }
}

const NO_TAKEOVER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// JSON-like text of `n` bytes: compressible, like real traffic.
fn json_like(n: usize, seed: u32) -> String {
    let mut s = String::with_capacity(n + 64);
    let mut i = seed;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"symbol\":\"S{}\",\"price\":{}.{:02},\"qty\":{}}},",
            i % 97,
            i % 1000,
            i % 100,
            i % 13
        ));
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    s.truncate(n);
    s
}

// ---------------------------------------------------------------------------
// Negotiation

#[test]
fn an_offer_is_answered_with_no_context_takeover_by_default() {
    let _w = watchdog();
    let server = deflate_server();
    let (c, answer) =
        Client::connect_offering(server.addr(), "permessage-deflate; client_max_window_bits");
    assert_eq!(answer.as_deref(), Some(NO_TAKEOVER));
    c.close();
}

#[test]
fn without_the_flag_offers_are_ignored() {
    let _w = watchdog();
    let server = TestServer::echo();
    let (mut c, answer) = Client::connect_offering(server.addr(), "permessage-deflate");
    assert_eq!(answer, None);
    // RSV1 is then a protocol error.
    let key = c.next_mask();
    c.send_raw(&masked_frame(true, 0b100, OP_TEXT, &[0x00], key));
    c.expect_close(1002);
}

#[test]
fn a_bad_offer_is_declined_not_refused() {
    let _w = watchdog();
    let server = deflate_server();
    for offer in [
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "x-webkit-deflate-frame",
    ] {
        let (mut c, answer) = Client::connect_offering(server.addr(), offer);
        assert_eq!(answer, None, "{offer}");
        c.assert_echo("still a WebSocket");
        c.close();
    }
}

#[test]
fn the_first_acceptable_of_several_offers_wins() {
    let _w = watchdog();
    let server = deflate_server();
    let (c, answer) = Client::connect_offering(
        server.addr(),
        "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=10, permessage-deflate",
    );
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10")
    );
    c.close();
}

// ---------------------------------------------------------------------------
// Echo

#[test]
fn echo_compresses_replies_of_at_least_the_minimum_size() {
    let _w = watchdog();
    let server = deflate_server();
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let (mut tx, mut rx) = deflate_pair();
    for (len, op) in [
        (0, OP_TEXT),
        (127, OP_TEXT),
        (128, OP_BINARY),
        (5000, OP_TEXT),
        (1 << 20, OP_BINARY),
    ] {
        let msg = json_like(len, len as u32).into_bytes();
        tx.reset();
        c.send_compressed(op, &mut tx, &msg);
        let (got_op, back, compressed) = c.recv_maybe_compressed(&mut rx);
        assert_eq!((got_op, back.len()), (op, msg.len()));
        assert!(back == msg, "len {len}");
        assert_eq!(compressed, len >= 128, "len {len}");
        rx.reset(false);
    }
    // Uncompressed input is echoed compressed too.
    c.send_text(&json_like(1000, 3));
    let (_, back, compressed) = c.recv_maybe_compressed(&mut rx);
    assert!(compressed);
    assert_eq!(back, json_like(1000, 3).as_bytes());
    c.close();
    let stats = server.stop();
    assert_eq!(stats.deflate.negotiated, 1);
    assert_eq!(stats.deflate.messages_inflated, 5);
    assert_eq!(stats.deflate.messages_compressed, 4);
    assert!(
        stats.deflate.bytes_after * 2 < stats.deflate.bytes_before,
        "{:?}",
        stats.deflate
    );
}

/// `n` bytes no compressor can shorten (xorshift).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_reply_compression_cannot_shorten_goes_plain_unless_context_is_kept() {
    let _w = watchdog();
    let msg = noise(1000, 7);
    // Echo, each message on its own: the plain frame, counted.
    let server = deflate_server();
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let (_, mut rx) = deflate_pair();
    c.send_binary(&msg);
    let (op, back, compressed) = c.recv_maybe_compressed(&mut rx);
    assert_eq!((op, compressed), (OP_BINARY, false));
    assert!(back == msg);
    c.close();
    let stats = server.stop();
    assert_eq!(
        (
            stats.deflate.messages_plain,
            stats.deflate.messages_compressed
        ),
        (1, 0),
        "{:?}",
        stats.deflate
    );
    // Broadcast: the room's compressed twin carries it plain as well.
    let server = TestServer::start(deflate_config(Mode::Broadcast, DeflateConfig::default()));
    let (mut zipped, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let mut sender = Client::connect_path(server.addr(), "/");
    wait_connections_open(server.addr(), 3);
    sender.send_binary(&msg);
    let (_, back, compressed) = zipped.recv_maybe_compressed(&mut rx);
    assert!(!compressed && back == msg);
    assert!(sender.recv_binary() == msg);
    zipped.close();
    sender.close();
    assert_eq!(server.stop().deflate.messages_plain, 1);
    // With context takeover the client's window must see every message.
    let server = TestServer::start(deflate_config(Mode::Echo, takeover()));
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    c.send_binary(&msg);
    let (_, back, compressed) = c.recv_maybe_compressed(&mut rx);
    assert!(compressed && back == msg);
    c.close();
    assert_eq!(server.stop().deflate.messages_plain, 0);
}

#[test]
fn a_compressed_message_split_across_fragments_is_echoed_whole() {
    let _w = watchdog();
    let server = deflate_server();
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let (mut tx, mut rx) = deflate_pair();
    let msg = json_like(30_000, 5);
    let payload = deflate_message(&mut tx, msg.as_bytes());
    let parts: Vec<&[u8]> = payload.chunks(payload.len() / 4 + 1).collect();
    for (i, part) in parts.iter().enumerate() {
        let (rsv, op) = if i == 0 {
            (0b100, OP_TEXT)
        } else {
            (0, OP_CONT)
        };
        let key = c.next_mask();
        c.send_raw(&masked_frame(i == parts.len() - 1, rsv, op, part, key));
        if i == 1 {
            c.assert_ping(b"between");
        }
    }
    let (op, back, _) = c.recv_maybe_compressed(&mut rx);
    assert_eq!(op, OP_TEXT);
    assert!(back == msg.as_bytes());
    c.close();
}

#[test]
fn with_context_takeover_replies_refer_to_earlier_ones() {
    let _w = watchdog();
    let server = TestServer::start(deflate_config(Mode::Echo, takeover()));
    let (mut c, answer) = Client::connect_offering(server.addr(), "permessage-deflate");
    assert_eq!(answer.as_deref(), Some("permessage-deflate"));
    let (mut tx, mut rx) = deflate_pair();
    let msg = json_like(600, 11);
    let mut sizes = Vec::new();
    for _ in 0..3 {
        // Neither side resets: each message may refer to the ones before.
        c.send_compressed(OP_TEXT, &mut tx, msg.as_bytes());
        let before = rx.total_in();
        let (_, back, compressed) = c.recv_maybe_compressed(&mut rx);
        assert!(compressed);
        assert_eq!(back, msg.as_bytes());
        sizes.push(rx.total_in() - before);
    }
    assert!(
        sizes[1] * 4 < sizes[0],
        "repeats are not cheaper: {sizes:?}"
    );
    assert!(metric(server.addr(), "wsd_deflate_context_bytes") > 0.0);
    c.close();
    // Closing gives the context's memory back.
    wait_connections_open(server.addr(), 1);
    assert_eq!(metric(server.addr(), "wsd_deflate_context_bytes"), 0.0);
}

#[test]
fn past_the_memory_limit_new_connections_get_no_takeover_terms() {
    let _w = watchdog();
    let d = DeflateConfig {
        memory_limit: 600 << 10,
        ..takeover()
    };
    let server = TestServer::start(deflate_config(Mode::Echo, d));
    let (mut first, a1) = Client::connect_offering(server.addr(), "permessage-deflate");
    assert_eq!(a1.as_deref(), Some("permessage-deflate"));
    let (mut second, a2) = Client::connect_offering(server.addr(), "permessage-deflate");
    assert_eq!(a2.as_deref(), Some(NO_TAKEOVER));
    assert_eq!(
        metric(server.addr(), "wsd_deflate_takeover_refused_total"),
        1.0
    );
    let held = metric(server.addr(), "wsd_deflate_context_bytes");
    assert!(held > 0.0 && held <= (600 << 10) as f64, "{held}");
    first.assert_echo("a");
    second.assert_echo("b");
    first.close();
    second.close();
}

#[test]
fn a_bad_stream_after_a_good_one_under_context_takeover_is_1007() {
    let _w = watchdog();
    let server = TestServer::start(deflate_config(Mode::Echo, takeover()));
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let (mut tx, mut rx) = deflate_pair();
    let msg = json_like(2000, 1);
    c.send_compressed(OP_TEXT, &mut tx, msg.as_bytes());
    assert_eq!(c.recv_maybe_compressed(&mut rx).1, msg.as_bytes());
    // A reserved block type (BTYPE 11).
    let key = c.next_mask();
    c.send_raw(&masked_frame(
        true,
        0b100,
        OP_TEXT,
        &[0xff, 0xff, 0x00],
        key,
    ));
    c.expect_close(1007);
}

// ---------------------------------------------------------------------------
// Hostile input

/// About `mib` MiB of compressed zeros that inflate to `mib` GiB: DEFLATE
/// reaches at most ~1032:1, so a GiB needs a MiB.
fn bomb(mib: usize) -> Vec<u8> {
    let mut z = flate2::Compress::new(flate2::Compression::best(), false);
    // One unit of 1 MiB of zeros, sync-flushed (byte-aligned, not final),
    // so copies of it make one valid stream.
    let unit = deflate_message(&mut z, &vec![0u8; 1 << 20]);
    let mut unit = unit;
    unit.extend_from_slice(&DEFLATE_TAIL);
    let mut out = Vec::with_capacity(unit.len() * 1024 * mib);
    for _ in 0..1024 * mib {
        out.extend_from_slice(&unit);
    }
    out
}

#[test]
fn a_deflate_bomb_is_1009_with_memory_bounded() {
    let _w = watchdog();
    let wsd = WsdProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--deflate",
        "--ping-interval",
        "off",
    ]);
    let addr = wsd.addrs[0];
    let (mut c, _) = Client::connect_offering(addr, "permessage-deflate");
    let before = process_rss_kib(wsd.pid());
    let payload = bomb(1);
    assert!(payload.len() < 2 << 20, "{} bytes", payload.len());
    let key = c.next_mask();
    c.send_raw(&masked_frame(true, 0b100, OP_BINARY, &payload, key));
    c.expect_close(1009);
    let after = process_rss_kib(wsd.pid());
    // 1 GiB if it were inflated; the 16 MiB message limit bounds it, plus
    // the compressed frame itself.
    assert!(
        after < before + 48 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert_eq!(metric(addr, "wsd_protocol_errors_total"), 1.0);
}

#[test]
fn a_kibibyte_that_inflates_past_the_limit_is_1009() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        limits: wsd::proto::Limits {
            max_message: 64 << 10,
            ..Default::default()
        },
        ..deflate_config(Mode::Echo, DeflateConfig::default())
    });
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let mut tx = flate2::Compress::new(flate2::Compression::best(), false);
    let payload = deflate_message(&mut tx, &vec![b'a'; 1 << 20]);
    assert!(payload.len() <= 1100, "{} bytes", payload.len());
    let key = c.next_mask();
    c.send_raw(&masked_frame(true, 0b100, OP_TEXT, &payload, key));
    c.expect_close(1009);
}

#[test]
fn rsv1_on_a_later_fragment_is_1002() {
    let _w = watchdog();
    let server = deflate_server();
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let (mut tx, _) = deflate_pair();
    let payload = deflate_message(&mut tx, json_like(500, 2).as_bytes());
    let (a, b) = payload.split_at(payload.len() / 2);
    let key = c.next_mask();
    c.send_raw(&masked_frame(false, 0b100, OP_TEXT, a, key));
    let key = c.next_mask();
    c.send_raw(&masked_frame(true, 0b100, OP_CONT, b, key));
    c.expect_close(1002);
}

#[test]
fn rsv1_on_a_control_frame_is_1002() {
    let _w = watchdog();
    let server = deflate_server();
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let key = c.next_mask();
    c.send_raw(&masked_frame(true, 0b100, OP_PING, b"", key));
    c.expect_close(1002);
}

#[test]
fn invalid_compressed_data_and_compressed_bad_utf8_are_1007() {
    let _w = watchdog();
    let server = deflate_server();
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let key = c.next_mask();
    c.send_raw(&masked_frame(
        true,
        0b100,
        OP_BINARY,
        &[0xff, 0xff, 0xff],
        key,
    ));
    c.expect_close(1007);
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let (mut tx, _) = deflate_pair();
    let mut text = json_like(5000, 9).into_bytes();
    text.extend_from_slice(b"\xed\xa0\x80");
    c.send_compressed(OP_TEXT, &mut tx, &text);
    c.expect_close(1007);
}

// ---------------------------------------------------------------------------
// Broadcast

#[test]
fn a_broadcast_is_compressed_once_for_every_deflate_receiver() {
    let _w = watchdog();
    let server = TestServer::start(deflate_config(Mode::Broadcast, DeflateConfig::default()));
    let mut zipped: Vec<Client> = (0..3)
        .map(|_| Client::connect_offering(server.addr(), "permessage-deflate").0)
        .collect();
    let mut plain = Client::connect_path(server.addr(), "/");
    wait_connections_open(server.addr(), 5);
    let msgs: Vec<String> = (0..4).map(|i| json_like(1024, i)).collect();
    for m in &msgs {
        plain.send_text(m);
    }
    for c in &mut zipped {
        let mut rx = flate2::Decompress::new(false);
        for m in &msgs {
            let (op, back, compressed) = c.recv_maybe_compressed(&mut rx);
            assert!(compressed && op == OP_TEXT);
            assert_eq!(back, m.as_bytes());
            // No context is kept: each stands alone.
            rx.reset(false);
        }
    }
    for m in &msgs {
        assert_eq!(plain.recv_text(), *m);
    }
    for c in zipped {
        c.close();
    }
    plain.close();
    let stats = server.stop();
    assert_eq!(stats.deflate.messages_compressed, 4, "{:?}", stats.deflate);
    assert_eq!(stats.messages_out, 16);
}

#[test]
fn broadcast_with_context_takeover_keeps_only_the_clients_side() {
    let _w = watchdog();
    let server = TestServer::start(deflate_config(Mode::Broadcast, takeover()));
    let (mut a, answer) = Client::connect_offering(server.addr(), "permessage-deflate");
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    let (mut b, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    wait_connections_open(server.addr(), 3);
    let (mut tx, _) = deflate_pair();
    let msg = json_like(800, 4);
    for _ in 0..2 {
        // The client keeps its context: the second refers to the first.
        a.send_compressed(OP_TEXT, &mut tx, msg.as_bytes());
    }
    for c in [&mut a, &mut b] {
        let mut rx = flate2::Decompress::new(false);
        for _ in 0..2 {
            assert_eq!(c.recv_maybe_compressed(&mut rx).1, msg.as_bytes());
            rx.reset(false);
        }
    }
    a.close();
    b.close();
}

#[test]
fn an_idle_deflate_connection_holds_nothing_without_takeover() {
    let _w = watchdog();
    let server = deflate_server();
    let (mut c, _) = Client::connect_offering(server.addr(), "permessage-deflate");
    let (mut tx, mut rx) = deflate_pair();
    c.send_compressed(OP_TEXT, &mut tx, json_like(3000, 8).as_bytes());
    c.recv_maybe_compressed(&mut rx);
    assert_eq!(metric(server.addr(), "wsd_deflate_context_bytes"), 0.0);
    c.set_read_timeout(Duration::from_secs(5));
    c.close();
}

#[test]
fn a_broadcast_across_reactors_is_compressed_once_per_reactor() {
    let _w = watchdog();
    let reactors = 2;
    let process = wsd::net::process::Process::start(
        deflate_config(Mode::Broadcast, DeflateConfig::default()),
        reactors,
    )
    .expect("start reactors");
    let addr = process.local_addrs()[0];
    // Joined once upgraded: the kernel spreads them over the reactors.
    let mut zipped: Vec<Client> = (0..8)
        .map(|_| Client::connect_offering(addr, "permessage-deflate").0)
        .collect();
    let mut plain = Client::connect_path(addr, "/");
    let msgs: Vec<String> = (0..3).map(|i| json_like(2048, i + 20)).collect();
    for m in &msgs {
        plain.send_text(m);
    }
    for c in &mut zipped {
        let mut rx = flate2::Decompress::new(false);
        for m in &msgs {
            let (_, back, compressed) = c.recv_maybe_compressed(&mut rx);
            assert!(compressed);
            assert_eq!(back, m.as_bytes());
            rx.reset(false);
        }
    }
    for m in &msgs {
        assert_eq!(plain.recv_text(), *m);
    }
    process.shutdown_handle().shutdown();
    let stats = process.wait().expect("reactors");
    let compressed = stats.deflate.messages_compressed;
    assert!(
        (3..=3 * reactors as u64).contains(&compressed),
        "{compressed} compressions for 3 messages on {reactors} reactors"
    );
}
