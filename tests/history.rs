//! Per-room history (`--history`) on a real loopback port: rewind on join
//! by count and by time, resume with `wsd.offsets` (no gap, no duplicate
//! while messages keep flowing), the reset signal when a resume cannot be
//! served, history lost with the process, the memory cap under a flood of
//! rooms, and the publish API's messages in history.

mod common;
#[path = "common/offsets.rs"]
mod offsets;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use offsets::{framed, offset_and_text, status};
use wsd::api::ApiKeySlot;
use wsd::history::HistoryConfig;
use wsd::{Config, Mode};

const KEY: &str = "history-test-key-0123456789abcdef";

/// A broadcast server keeping `keep` messages per room, in `memory` bytes.
fn keeping(keep: usize, memory: usize) -> Config {
    Config {
        history: Some(HistoryConfig {
            keep,
            ttl: Duration::from_secs(600),
            memory,
        }),
        protocols: vec!["wsd.offsets".into()],
        ..config(Mode::Broadcast)
    }
}

/// Sends `texts` from `sender` (a member that gets its own messages back,
/// which proves the server has handled them).
fn say(sender: &mut Client, texts: impl IntoIterator<Item = String>) {
    let texts: Vec<String> = texts.into_iter().collect();
    for t in &texts {
        sender.send_text(t);
    }
    for t in &texts {
        assert_eq!(&sender.recv_text(), t);
    }
}

fn numbered(range: std::ops::Range<u32>) -> impl Iterator<Item = String> {
    range.map(|i| format!("m{i}"))
}

#[test]
fn rewind_by_count_sends_the_last_messages_then_live_ones() {
    let _w = watchdog();
    let server = TestServer::start(keeping(5, 1 << 20));
    let mut sender = Client::connect_path(server.addr(), "/r");
    say(&mut sender, numbered(0..8));
    let mut late = Client::connect_path(server.addr(), "/r?rewind=3");
    // More than --history: what the room keeps.
    let mut later = Client::connect_path(server.addr(), "/r?rewind=50");
    let mut live = Client::connect_path(server.addr(), "/r");
    say(&mut sender, ["now".to_string()]);
    for want in numbered(5..8).chain(["now".to_string()]) {
        assert_eq!(late.recv_text(), want);
    }
    for want in numbered(3..8).chain(["now".to_string()]) {
        assert_eq!(later.recv_text(), want);
    }
    assert_eq!(live.recv_text(), "now");
    // Another room's history is its own.
    let mut other = Client::connect_path(server.addr(), "/other?rewind=10");
    let mut o = Client::connect_path(server.addr(), "/other");
    say(&mut o, ["first".to_string()]);
    assert_eq!(other.recv_text(), "first");
}

#[test]
fn rewind_by_time_sends_only_the_recent_messages() {
    let _w = watchdog();
    let server = TestServer::start(keeping(100, 1 << 20));
    let mut sender = Client::connect_path(server.addr(), "/t");
    say(&mut sender, numbered(0..3));
    std::thread::sleep(Duration::from_millis(2500));
    say(&mut sender, numbered(3..5));
    let mut late = Client::connect_path(server.addr(), "/t?rewind=2s");
    say(&mut sender, ["now".to_string()]);
    for want in numbered(3..5).chain(["now".to_string()]) {
        assert_eq!(late.recv_text(), want);
    }
}

#[test]
fn rewind_without_history_joins_live() {
    let _w = watchdog();
    let server = TestServer::start(config(Mode::Broadcast));
    let mut sender = Client::connect_path(server.addr(), "/r");
    say(&mut sender, numbered(0..3));
    let mut late = Client::connect_path(server.addr(), "/r?rewind=10");
    say(&mut sender, ["now".to_string()]);
    assert_eq!(late.recv_text(), "now");
}

#[test]
fn a_framed_client_learns_offsets_and_resumes_exactly_what_it_missed() {
    let _w = watchdog();
    let server = TestServer::start(keeping(100, 1 << 20));
    let mut sender = Client::connect_path(server.addr(), "/f");
    let mut a = framed(server.addr(), "/f");
    let st = status(&mut a);
    assert_eq!(st["status"], "live");
    let epoch = st["epoch"].as_u64().unwrap();
    say(&mut sender, numbered(0..4));
    let mut last = String::new();
    for want in numbered(0..4) {
        let (offset, text) = offset_and_text(&mut a);
        assert_eq!(text, want);
        last = offset;
    }
    drop(a);
    say(&mut sender, numbered(4..7));
    let mut b = framed(server.addr(), &format!("/f?since={last}&epoch={epoch}"));
    let st = status(&mut b);
    assert_eq!(st["status"], "resumed", "{st}");
    assert_eq!(st["replayed"], 3);
    say(&mut sender, ["now".to_string()]);
    let mut prev = last;
    for want in numbered(4..7).chain(["now".to_string()]) {
        let (offset, text) = offset_and_text(&mut b);
        assert_eq!(text, want);
        assert!(later(&offset, &prev), "{offset} after {prev}");
        prev = offset;
    }
    // Resuming from the last offset there is gives nothing but live.
    let mut c = framed(server.addr(), &format!("/f?since={prev}&epoch={epoch}"));
    let st = status(&mut c);
    assert_eq!(
        (&st["status"], &st["replayed"]),
        (&"resumed".into(), &0.into())
    );
    say(&mut sender, ["again".to_string()]);
    assert_eq!(offset_and_text(&mut c).1, "again");
}

/// Whether offset `a` (`ms-seq`) comes after `b`.
fn later(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        let (ms, seq) = s.split_once('-').unwrap();
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    };
    parse(a) > parse(b)
}

#[test]
fn resumes_while_messages_keep_flowing_have_no_gap_and_no_duplicate() {
    let _w = watchdog();
    let server = TestServer::start(keeping(10_000, 16 << 20));
    let addr = server.addr();
    const N: u32 = 3000;
    // The member joins before the first message is sent: it joins live,
    // so a message sent before it joined would never reach it.
    let mut c = framed(addr, "/flow");
    let mut epoch = status(&mut c)["epoch"].as_u64().unwrap();
    let publisher = std::thread::spawn(move || {
        let mut p = Client::connect_path(addr, "/flow");
        for i in 0..N {
            p.send_text(&format!("m{i}"));
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Its own copies back: everything was handled.
        for i in 0..N {
            assert_eq!(p.recv_text(), format!("m{i}"));
        }
    });
    let mut got = Vec::new();
    let mut last = String::new();
    let mut drops = 0;
    while got.len() < N as usize {
        let (offset, text) = offset_and_text(&mut c);
        got.push(text);
        last = offset;
        // Drop every so often, mid-stream, and come back from the last offset.
        if got.len() % 400 == 0 {
            drops += 1;
            drop(c);
            c = framed(addr, &format!("/flow?since={last}&epoch={epoch}"));
            let st = status(&mut c);
            assert_eq!(st["status"], "resumed", "{st}");
            epoch = st["epoch"].as_u64().unwrap();
        }
    }
    publisher.join().unwrap();
    assert!(drops >= 5);
    let want: Vec<String> = numbered(0..N).collect();
    assert_eq!(got, want, "a gap or a duplicate across {drops} resumes");
    let _ = last;
}

#[test]
fn a_resume_the_history_cannot_serve_is_a_reset() {
    let _w = watchdog();
    let server = TestServer::start(keeping(3, 1 << 20));
    let mut sender = Client::connect_path(server.addr(), "/x");
    let mut a = framed(server.addr(), "/x");
    let epoch = status(&mut a)["epoch"].as_u64().unwrap();
    say(&mut sender, numbered(0..2));
    let (first, _) = offset_and_text(&mut a);
    let _ = offset_and_text(&mut a);
    // Four more: the room keeps 3, so the one after `first` is gone.
    say(&mut sender, numbered(2..6));
    let mut old = framed(server.addr(), &format!("/x?since={first}&epoch={epoch}"));
    let st = status(&mut old);
    assert_eq!(
        (&st["status"], &st["reason"]),
        (&"reset".into(), &"too-old".into()),
        "{st}"
    );
    let mut other = framed(
        server.addr(),
        &format!("/x?since={first}&epoch={}", epoch + 1),
    );
    let st = status(&mut other);
    assert_eq!(
        (&st["status"], &st["reason"]),
        (&"reset".into(), &"epoch".into()),
        "{st}"
    );
    // Then the live stream, with offsets.
    say(&mut sender, ["now".to_string()]);
    assert_eq!(offset_and_text(&mut old).1, "now");
    assert_eq!(offset_and_text(&mut other).1, "now");
    // since without the subprotocol has nowhere to say so: refused.
    let (_, resp) = Client::try_upgrade(
        server.addr(),
        &format!("/x?since={first}&epoch={epoch}"),
        "",
    );
    assert_eq!(resp.status, 400);
    let (_, resp) = Client::try_upgrade(server.addr(), "/x?rewind=soon", "");
    assert_eq!(resp.status, 400);
}

#[test]
fn history_goes_with_the_process_and_the_epoch_says_so() {
    let _w = watchdog();
    let server = TestServer::start(keeping(10, 1 << 20));
    let mut sender = Client::connect_path(server.addr(), "/p");
    let mut a = framed(server.addr(), "/p");
    let epoch = status(&mut a)["epoch"].as_u64().unwrap();
    say(&mut sender, numbered(0..2));
    let (last, _) = offset_and_text(&mut a);
    drop((a, sender));
    server.stop();
    let server = TestServer::start(keeping(10, 1 << 20));
    let mut b = framed(server.addr(), &format!("/p?since={last}&epoch={epoch}"));
    let st = status(&mut b);
    assert_eq!(
        (&st["status"], &st["reason"]),
        (&"reset".into(), &"epoch".into()),
        "{st}"
    );
    assert_ne!(st["epoch"].as_u64().unwrap(), epoch);
}

/// A key file for the publish API, in `files` (removed with it).
fn key_file(files: &Scratch) -> PathBuf {
    files.write("key", format!("{KEY}\n"))
}

/// The value of metric `name` in `/metrics`.
fn metric(addr: std::net::SocketAddr, name: &str) -> u64 {
    let body = String::from_utf8(http_get(addr, "/metrics").body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} in /metrics"))
        .parse()
        .unwrap()
}

#[test]
fn the_memory_cap_holds_under_a_flood_of_rooms_and_drops_the_oldest() {
    let _w = watchdog();
    let files = Scratch::new();
    let cap = 256 << 10;
    let cfg = Config {
        api_keys: Some(ApiKeySlot::open(&[key_file(&files)]).unwrap()),
        ..keeping(100, cap)
    };
    let server = TestServer::start(cfg);
    // The series are there from the start.
    assert_eq!(metric(server.addr(), "wsd_history_messages"), 0);
    assert_eq!(metric(server.addr(), "wsd_history_evicted_total"), 0);
    // 2,000 rooms nobody is in, 3 messages of 200 bytes each, through
    // the publish API (NDJSON), in batches.
    let text = "x".repeat(200);
    for batch in 0..20 {
        let mut body = String::new();
        for r in batch * 100..(batch + 1) * 100 {
            for _ in 0..3 {
                body.push_str(&format!(
                    "{{\"room\":\"/flood/{r}\",\"text\":\"{text}\"}}\n"
                ));
            }
        }
        let mut c = Client::connect_raw(server.addr());
        c.send_raw(
            format!(
                "POST /publish HTTP/1.1\r\nHost: wsd\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(c.read_http_response().status, 200);
    }
    let bytes = metric(server.addr(), "wsd_history_bytes");
    assert!(bytes <= cap as u64, "{bytes} > {cap}");
    assert!(metric(server.addr(), "wsd_history_evicted_total") > 3000);
    assert!(metric(server.addr(), "wsd_history_messages") > 100);
    // The newest rooms kept theirs; the oldest lost them.
    let mut new = Client::connect_path(server.addr(), "/flood/1999?rewind=3");
    let mut old = Client::connect_path(server.addr(), "/flood/0?rewind=3");
    for _ in 0..3 {
        assert_eq!(new.recv_text(), text);
    }
    let mut sender = Client::connect_path(server.addr(), "/flood/0");
    say(&mut sender, ["now".to_string()]);
    assert_eq!(old.recv_text(), "now");
    assert!(metric(server.addr(), "wsd_history_rewinds_total") >= 2);
}

#[test]
fn a_framed_rewind_says_rewound_and_binary_keeps_its_opcode() {
    let _w = watchdog();
    let server = TestServer::start(keeping(10, 1 << 20));
    let mut sender = Client::connect_path(server.addr(), "/b");
    sender.send_binary(b"\x00\xffbin");
    assert_eq!(sender.recv_binary(), b"\x00\xffbin");
    say(&mut sender, ["text".to_string()]);
    let mut c = framed(server.addr(), "/b?rewind=2");
    let st = status(&mut c);
    assert_eq!(
        (&st["status"], &st["replayed"]),
        (&"rewound".into(), &2.into()),
        "{st}"
    );
    let bin = c.recv_binary();
    let at = bin.iter().position(|&b| b == b':').unwrap();
    assert_eq!(&bin[at + 1..], b"\x00\xffbin");
    let first = String::from_utf8(bin[..at].to_vec()).unwrap();
    let (second, text) = offset_and_text(&mut c);
    assert_eq!(text, "text");
    assert!(later(&second, &first));
    // The status's offset is the last replayed one: live ones follow it.
    assert_eq!(st["offset"], second.as_str());
    // A plain member of the room got the same messages without offsets.
    let mut plain = Client::connect_path(server.addr(), "/b?rewind=2");
    assert_eq!(plain.recv_binary(), b"\x00\xffbin");
    assert_eq!(plain.recv_text(), "text");
}
