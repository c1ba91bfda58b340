//! Echo mode over real sockets: every message comes back whole, in order,
//! however it was framed or split into TCP segments.

mod common;

use common::*;

const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

#[test]
fn text_messages_of_every_length_form_are_echoed() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    for n in SIZES {
        // ASCII, so any length is valid UTF-8.
        let text: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        c.send_text(&text);
        assert_eq!(c.recv_text(), text, "{n} bytes");
    }
    c.close();
    let stats = server.stop();
    assert_eq!(stats.messages_in, SIZES.len() as u64);
    assert_eq!(stats.messages_out, SIZES.len() as u64);
    assert_eq!(stats.protocol_errors, 0);
}

#[test]
fn binary_messages_of_every_length_form_are_echoed() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    for n in SIZES {
        let data = pattern(n, n as u8);
        c.send_binary(&data);
        assert_eq!(c.recv_binary(), data, "{n} bytes");
    }
    c.close();
}

#[test]
fn multibyte_text_is_echoed_unchanged() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    c.assert_echo("κόσμε · 日本語 · 🦀 · \u{10FFFF}");
    c.close();
}

#[test]
fn fragmented_message_is_echoed_as_one_unfragmented_message() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    c.send_frame(false, OP_TEXT, b"Hel");
    c.send_frame(false, OP_CONT, b"");
    c.send_frame(false, OP_CONT, b"lo, ");
    c.send_frame(true, OP_CONT, b"world");
    let f = c.recv_frame();
    assert_eq!(
        f,
        Frame {
            fin: true,
            rsv: 0,
            op: OP_TEXT,
            payload: b"Hello, world".to_vec()
        }
    );
    // Binary too, with larger fragments.
    let data = pattern(200_000, 7);
    let parts: Vec<&[u8]> = data.chunks(30_000).collect();
    for (i, part) in parts.iter().enumerate() {
        let op = if i == 0 { OP_BINARY } else { OP_CONT };
        c.send_frame(i + 1 == parts.len(), op, part);
    }
    let f = c.recv_frame();
    assert!(f.fin && f.op == OP_BINARY && f.payload == data);
    c.close();
}

#[test]
fn utf8_sequence_split_across_fragments_is_valid() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    let text = "a🦀é";
    let bytes = text.as_bytes();
    // Cut inside the 4-byte crab and inside the 2-byte é.
    c.send_frame(false, OP_TEXT, &bytes[..3]);
    c.send_frame(false, OP_CONT, &bytes[3..6]);
    c.send_frame(true, OP_CONT, &bytes[6..]);
    assert_eq!(c.recv_text(), text);
    c.close();
}

#[test]
fn ping_gets_pong_with_the_same_payload() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    c.assert_ping(b"");
    c.assert_ping(b"hello");
    c.assert_ping(&pattern(125, 1));
    // The connection still echoes afterwards.
    c.assert_echo("after pings");
    c.close();
}

#[test]
fn ping_between_fragments_is_answered_at_once() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    c.send_frame(false, OP_TEXT, b"first half, ");
    c.send_frame(true, OP_PING, b"mid-message");
    // The pong comes before the message is complete.
    assert_eq!(c.recv(), Message::Pong(b"mid-message".to_vec()));
    c.send_frame(true, OP_CONT, b"second half");
    assert_eq!(c.recv_text(), "first half, second half");
    c.close();
}

#[test]
fn unsolicited_pong_is_ignored() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    c.send_frame(true, OP_PONG, b"nobody asked");
    // The next thing back is the echo, not an answer to the pong.
    c.assert_echo("still here");
    c.close();
}

#[test]
fn hundred_pipelined_messages_are_echoed_in_order() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    let mut batch = Vec::new();
    for i in 0..100u32 {
        let key = c.next_mask();
        if i % 2 == 0 {
            batch.extend(masked_frame(
                true,
                0,
                OP_TEXT,
                format!("msg {i}").as_bytes(),
                key,
            ));
        } else {
            let data = pattern(i as usize * 37, i as u8);
            batch.extend(masked_frame(true, 0, OP_BINARY, &data, key));
        }
    }
    c.send_raw(&batch);
    for i in 0..100u32 {
        if i % 2 == 0 {
            assert_eq!(c.recv_text(), format!("msg {i}"));
        } else {
            assert_eq!(
                c.recv_binary(),
                pattern(i as usize * 37, i as u8),
                "msg {i}"
            );
        }
    }
    c.close();
    assert_eq!(server.stop().messages_in, 100);
}

#[test]
fn frame_arriving_one_byte_at_a_time_is_echoed() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = server.client();
    // A 16-bit length form, so the header itself straddles many reads.
    let data = pattern(300, 3);
    let key = c.next_mask();
    let mut bytes = masked_frame(true, 0, OP_BINARY, &data, key);
    // And a ping and a fragmented text message behind it.
    bytes.extend(masked_frame(true, 0, OP_PING, b"p", key));
    bytes.extend(masked_frame(false, 0, OP_TEXT, "dé".as_bytes(), key));
    bytes.extend(masked_frame(true, 0, OP_CONT, b"j\xc3\xa0", key));
    for b in &bytes {
        c.send_raw(std::slice::from_ref(b));
    }
    assert_eq!(c.recv_binary(), data);
    assert_eq!(c.recv(), Message::Pong(b"p".to_vec()));
    assert_eq!(c.recv_text(), "déjà");
    c.close();
}

#[test]
fn frames_in_the_same_packet_as_the_upgrade_are_processed() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = Client::connect_raw(server.addr());
    let key = c.fresh_key();
    let mut bytes = upgrade_request(&key).into_bytes();
    let k = c.next_mask();
    bytes.extend(masked_frame(true, 0, OP_TEXT, b"early bird", k));
    bytes.extend(masked_frame(true, 0, OP_PING, b"early ping", k));
    bytes.extend(masked_frame(false, 0, OP_BINARY, b"par", k));
    c.send_raw(&bytes);
    c.expect_upgrade(&key);
    assert_eq!(c.recv_text(), "early bird");
    assert_eq!(c.recv(), Message::Pong(b"early ping".to_vec()));
    // The fragment that came with the request is continued afterwards.
    c.send_frame(true, OP_CONT, b"tial");
    assert_eq!(c.recv_binary(), b"partial");
    c.close();
}

#[test]
fn many_clients_are_echoed_independently() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut clients: Vec<Client> = (0..10).map(|_| server.client()).collect();
    // Everyone writes before anyone reads: no reply goes to the wrong client.
    for (i, c) in clients.iter_mut().enumerate() {
        c.send_text(&format!("client {i}"));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.recv_text(), format!("client {i}"));
    }
    for c in clients {
        c.close();
    }
}
