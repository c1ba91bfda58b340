//! Broadcast mode over real sockets: every member gets every message once,
//! in each sender's order; slow consumers are cut off (or skipped) without
//! holding up anyone else.

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use wsd::{Config, Mode, SlowConsumerPolicy};

fn broadcast(to_sender: bool) -> Config {
    Config {
        broadcast_to_sender: to_sender,
        ..config(Mode::Broadcast)
    }
}

/// Reads `n` text messages of the form `"{sender}-{seq}"` and checks that
/// each sender's messages arrive in order; returns the count per sender.
fn receive_tagged(c: &mut Client, n: usize) -> BTreeMap<usize, usize> {
    let mut next: BTreeMap<usize, usize> = BTreeMap::new();
    for _ in 0..n {
        let text = c.recv_text();
        let (s, k) = text.split_once('-').expect("tagged message");
        let (s, k): (usize, usize) = (s.parse().unwrap(), k.parse().unwrap());
        let expected = next.entry(s).or_default();
        assert_eq!(
            k, *expected,
            "sender {s}'s messages out of order or repeated"
        );
        *expected += 1;
    }
    next
}

/// Every client sends `per` messages; checks that each receives every
/// message exactly once (its own only if `to_sender`), then that nothing
/// more arrives.
fn everyone_gets_everything(to_sender: bool) {
    let _w = watchdog();
    const N: usize = 20;
    const PER: usize = 5;
    let server = TestServer::start(broadcast(to_sender));
    let mut clients: Vec<Client> = (0..N).map(|_| server.client()).collect();
    for k in 0..PER {
        for (s, c) in clients.iter_mut().enumerate() {
            c.send_text(&format!("{s}-{k}"));
        }
    }
    let senders = if to_sender { N } else { N - 1 };
    for (i, c) in clients.iter_mut().enumerate() {
        let got = receive_tagged(c, senders * PER);
        assert_eq!(got.len(), senders, "client {i}: {got:?}");
        assert!(got.values().all(|&n| n == PER), "client {i}: {got:?}");
        assert_eq!(
            got.contains_key(&i),
            to_sender,
            "client {i} and its own messages"
        );
    }
    // Nothing extra is queued anywhere: the next message everyone sees is
    // a final marker (client 1's marker for client 0, client 0's for the rest).
    clients[0].send_text("end-0");
    clients[1].send_text("end-1");
    for (i, c) in clients.iter_mut().enumerate() {
        let mut want = vec!["end-0", "end-1"];
        if !to_sender {
            want.retain(|w| *w != format!("end-{i}"));
        }
        for w in want {
            assert_eq!(c.recv_text(), w, "client {i}");
        }
    }
    for c in clients {
        c.close();
    }
    let stats = server.stop();
    let msgs = (N * PER + 2) as u64;
    assert_eq!(stats.messages_in, msgs);
    let out = if to_sender { N as u64 } else { N as u64 - 1 };
    assert_eq!(stats.messages_out, msgs * out);
}

#[test]
fn broadcast_reaches_every_client_including_the_sender() {
    everyone_gets_everything(true);
}

#[test]
fn broadcast_excluding_the_sender_reaches_everyone_else() {
    everyone_gets_everything(false);
}

#[test]
fn large_and_fragmented_messages_are_broadcast_whole() {
    let _w = watchdog();
    let server = TestServer::start(broadcast(false));
    let mut sender = server.client();
    let mut receivers: Vec<Client> = (0..3).map(|_| server.client()).collect();
    let big = pattern(1 << 20, 9);
    sender.send_binary(&big);
    sender.send_frame(false, OP_TEXT, "frag".as_bytes());
    sender.send_frame(true, OP_PING, b"p");
    sender.send_frame(true, OP_CONT, "ment · é".as_bytes());
    // The sender gets only its pong.
    assert_eq!(sender.recv(), Message::Pong(b"p".to_vec()));
    for r in &mut receivers {
        assert_eq!(r.recv_binary(), big);
        let f = r.recv_frame();
        assert!(f.fin && f.op == OP_TEXT, "{f:?}");
        assert_eq!(f.payload, "fragment · é".as_bytes());
    }
    sender.close();
}

#[test]
fn members_joining_and_leaving_do_not_disturb_the_others() {
    let _w = watchdog();
    let server = TestServer::start(broadcast(true));
    let mut clients: Vec<Option<Client>> = (0..10).map(|_| Some(server.client())).collect();
    // Leave in awkward places: the first member (the last takes its slot),
    // the last, and a middle one; some cleanly, some abruptly.
    clients[0].take().unwrap().close();
    drop(clients[9].take());
    clients[4].take().unwrap().close();
    // And three join.
    clients.extend((0..3).map(|_| Some(server.client())));
    let mut live: Vec<(usize, Client)> = clients
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, c)))
        .collect();
    for (i, c) in live.iter_mut() {
        c.send_text(&format!("{i}-0"));
    }
    let ids: Vec<usize> = live.iter().map(|(i, _)| *i).collect();
    for (i, c) in live.iter_mut() {
        let got = receive_tagged(c, ids.len());
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), ids, "client {i}");
    }
    for (_, c) in live {
        c.close();
    }
}

/// A close timeout past the watchdog, for tests that do not exercise it:
/// it cannot fire however slowly a test runs.
const NEVER: Duration = Duration::from_secs(600);

/// A broadcast server with a small high watermark, for slow-consumer tests.
fn slow_consumer_server(policy: SlowConsumerPolicy) -> TestServer {
    TestServer::start(Config {
        broadcast_to_sender: false,
        output_high_water: 64 << 10,
        output_low_water: 16 << 10,
        slow_consumer: policy,
        close_timeout: NEVER,
        ..config(Mode::Broadcast)
    })
}

/// Messages published after the slow reader's fate shows in /metrics.
const AFTER: u32 = 32;

/// Messages after which a slow reader that was never cut off or skipped
/// fails the test (32 MiB, far past the kernel's buffers).
const MOST: u32 = 1024;

fn numbered(i: u32) -> Vec<u8> {
    let mut m = pattern(32 << 10, i as u8);
    m[..4].copy_from_slice(&i.to_be_bytes());
    m
}

/// Publishes numbered 32 KiB binary messages from `publisher` in lockstep
/// with `good` (each reads every message before the next is sent, so the
/// well-behaved readers are never behind by more than one), until the
/// counter `metric_name` shows the slow reader's fate (checked every 16
/// messages) and then [`AFTER`] more. Returns how many were published:
/// however long the kernel's buffers take to fill, the flood is as long as
/// the behaviour needs.
fn flood(
    server: &TestServer,
    publisher: &mut Client,
    good: &mut [Client],
    metric_name: &str,
) -> u32 {
    let mut end = None;
    let mut i = 0;
    while Some(i) != end {
        assert!(i < MOST, "{MOST} messages published and {metric_name} is 0");
        let m = numbered(i);
        publisher.send_binary(&m);
        for g in good.iter_mut() {
            assert_eq!(g.recv_binary(), m, "good reader, message {i}");
        }
        i += 1;
        if end.is_none() && i % 16 == 0 && metric(server.addr(), metric_name) > 0.0 {
            end = Some(i + AFTER);
        }
    }
    i
}

fn number_of(m: &[u8]) -> u32 {
    assert_eq!(m.len(), 32 << 10);
    let i = u32::from_be_bytes(m[..4].try_into().unwrap());
    assert_eq!(m, numbered(i), "message {i} corrupted");
    i
}

#[test]
fn slow_reader_is_cut_off_with_1008_while_others_get_everything() {
    let _w = watchdog();
    let server = slow_consumer_server(SlowConsumerPolicy::Close);
    let mut publisher = server.client();
    let mut good: Vec<Client> = (0..2).map(|_| server.client()).collect();
    let mut slow = server.client();
    let published = flood(
        &server,
        &mut publisher,
        &mut good,
        "wsd_slow_consumer_cutoffs_total",
    );
    // The others are still served after the cut-off.
    publisher.send_text("after the flood");
    for g in &mut good {
        assert_eq!(g.recv_text(), "after the flood");
    }
    // The slow reader finally reads: a gapless prefix of the flood (queued
    // messages were discarded, none skipped in the middle), then Close 1008.
    let mut expected = 0;
    loop {
        match slow.recv() {
            Message::Binary(m) => {
                assert_eq!(number_of(&m), expected, "gap before the cut-off");
                expected += 1;
            }
            Message::Close(code, _) => {
                assert_eq!(code, Some(1008));
                break;
            }
            other => panic!("slow reader got {}", describe(&other)),
        }
    }
    assert!(expected < published, "slow reader was never cut off");
    // It completes the closing handshake; the server closes TCP.
    slow.send_close(1008, b"");
    slow.expect_eof();
    drop(slow);
    good[0].assert_ping(b"barrier");
    let stats = server.stop();
    assert_eq!(stats.slow_consumer_cutoffs, 1, "{stats:?}");
    assert_eq!(stats.slow_consumer_drops, 0);
    assert_eq!(stats.closes.get(&1008), Some(&1), "{stats:?}");
}

#[test]
fn slow_reader_under_drop_policy_skips_messages_and_stays_connected() {
    let _w = watchdog();
    let server = slow_consumer_server(SlowConsumerPolicy::Drop);
    let mut publisher = server.client();
    let mut good: Vec<Client> = (0..2).map(|_| server.client()).collect();
    let mut slow = server.client();
    let published = flood(
        &server,
        &mut publisher,
        &mut good,
        "wsd_slow_consumer_drops_total",
    );
    // The slow reader now reads, on its own thread, until it sees a text
    // marker; markers are published until one gets through to it (the first
    // ones may be skipped while its backlog is over the watermark). It
    // reads megabytes of backlog first: the watchdog bounds that, not a
    // deadline of its own.
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut numbers = Vec::new();
        loop {
            match slow.recv() {
                Message::Binary(m) => numbers.push(number_of(&m)),
                Message::Text(t) => {
                    tx.send(()).unwrap();
                    return (slow, numbers, t);
                }
                other => panic!("slow reader got {}", describe(&other)),
            }
        }
    });
    let mut markers = 0u32;
    loop {
        publisher.send_text(&format!("marker {markers}"));
        for g in &mut good {
            assert_eq!(g.recv_text(), format!("marker {markers}"));
        }
        markers += 1;
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(()) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The reader failed: its join says how.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let (mut slow, numbers, first_marker) = reader.join().expect("the slow reader failed");
    let first_marker: u32 = first_marker["marker ".len()..].parse().unwrap();
    // In order, with gaps: messages were skipped, not reordered or repeated.
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let received = numbers.len() as u32;
    assert!(received < published, "nothing was skipped");
    // Still connected: it closes normally, after the markers still queued.
    slow.send_close(1000, b"");
    loop {
        match slow.recv() {
            Message::Text(t) => assert!(t.starts_with("marker "), "{t:?}"),
            Message::Close(code, _) => {
                assert_eq!(code, Some(1000));
                break;
            }
            other => panic!("slow reader got {}", describe(&other)),
        }
    }
    slow.expect_eof();
    let stats = server.stop();
    assert_eq!(stats.slow_consumer_cutoffs, 0, "{stats:?}");
    // Every skipped message was skipped for the slow reader alone: the
    // flood messages it missed and the markers before the one it got (and
    // perhaps a marker sent after that one, while its backlog was still at
    // the watermark).
    let skipped = u64::from(published - received + first_marker);
    let later_markers = u64::from(markers - first_marker - 1);
    assert!(
        (skipped..=skipped + later_markers).contains(&stats.slow_consumer_drops),
        "{skipped} skipped, {later_markers} later markers: {stats:?}"
    );
}

#[test]
fn burst_larger_than_the_high_watermark_does_not_cut_off_readers_that_keep_up() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        broadcast_to_sender: false,
        output_high_water: 16 << 10,
        output_low_water: 4 << 10,
        ..config(Mode::Broadcast)
    });
    let mut publisher = server.client();
    let mut reader = server.client();
    // Seven 8 KiB messages in one write: one read on the server. The
    // reader's socket is empty and can take all 56 KiB at once.
    let mut burst = Vec::new();
    for i in 0..7u8 {
        let key = publisher.next_mask();
        burst.extend(masked_frame(true, 0, OP_BINARY, &pattern(8 << 10, i), key));
    }
    publisher.send_raw(&burst);
    for i in 0..7u8 {
        match reader.recv() {
            Message::Binary(m) => assert_eq!(m, pattern(8 << 10, i)),
            other => panic!("message {i}: got {}", describe(&other)),
        }
    }
    reader.close();
    assert_eq!(server.stop().slow_consumer_cutoffs, 0);
}

#[test]
fn well_behaved_clients_keep_being_served_while_a_member_misbehaves() {
    let _w = watchdog();
    let server = TestServer::start(broadcast(true));
    let mut a = server.client();
    let mut b = server.client();
    let mut hostile = server.client();
    for i in 0..5 {
        hostile.send_raw(&unmasked_frame(true, OP_TEXT, b"spoof"));
        assert!(matches!(hostile.recv(), Message::Close(Some(1002), _)));
        hostile.expect_eof();
        // The failed member's message went nowhere; the others still talk.
        a.send_text(&format!("0-{i}"));
        assert_eq!(b.recv_text(), format!("0-{i}"));
        assert_eq!(a.recv_text(), format!("0-{i}"));
        hostile = server.client();
    }
    a.close();
    b.close();
}

#[test]
fn a_fragmented_message_in_progress_does_not_hold_up_other_senders() {
    let _w = watchdog();
    let server = TestServer::start(broadcast(false));
    let mut slow_sender = server.client();
    let mut quick_sender = server.client();
    let mut receiver = server.client();
    slow_sender.send_frame(false, OP_TEXT, b"0-");
    quick_sender.send_text("1-0");
    // The quick message goes out whole while the other is half received.
    assert_eq!(receiver.recv_text(), "1-0");
    assert_eq!(slow_sender.recv_text(), "1-0");
    slow_sender.send_frame(true, OP_CONT, b"0");
    assert_eq!(receiver.recv_text(), "0-0");
    assert_eq!(quick_sender.recv_text(), "0-0");
    receiver.close();
}
