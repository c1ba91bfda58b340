//! History in Redis Streams (`--history` with `--redis`), over real
//! loopback sockets with a test Redis: every node serves the same history
//! with the same offsets, a late joiner on a node that never had the room
//! rewinds it, history outlives a wsd restart and dies with a Redis that
//! restarted empty (a new epoch), a resume is exact while messages keep
//! flowing, a resume from before what the stream holds is too old, and a
//! Redis killed during a join sends the joiner live, told so.

mod common;
#[path = "common/offsets.rs"]
mod offsets;
#[path = "common/redis.rs"]
mod redis;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use offsets::{framed, offset_and_text, status};
use redis::{wait_metric, wsd_node, RedisServer};

/// A node with history on the bus at `url`, `keep` messages per room.
fn node(url: &str, keep: &str) -> WsdProcess {
    wsd_node(url, &["--history", keep])
}

fn up(n: &WsdProcess) -> SocketAddr {
    let addr = n.addrs[0];
    wait_metric(addr, "wsd_bus_up", |v| v == 1.0);
    addr
}

/// Sends `texts` and waits for each to come back: a member gets its own
/// messages only once the bus has recorded them.
fn say(sender: &mut Client, texts: &[&str]) {
    for t in texts {
        sender.send_text(t);
    }
    for t in texts {
        assert_eq!(&sender.recv_text(), t);
    }
}

/// Reads `n` framed messages: their offsets and texts.
fn framed_messages(c: &mut Client, n: usize) -> Vec<(String, String)> {
    (0..n).map(|_| offset_and_text(c)).collect()
}

#[test]
fn a_joiner_on_a_node_that_never_had_the_room_rewinds_it_with_the_same_offsets() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url(), "10"), node(&redis.url(), "10"));
    let (a_addr, b_addr) = (up(&a), up(&b));
    let mut publisher = Client::connect_path(a_addr, "/room");
    wait_metric(a_addr, "wsd_bus_subscriptions", |v| v == 1.0);
    // Its own messages reach the publisher back through Redis, recorded.
    say(&mut publisher, &["m0", "m1", "m2", "m3", "m4"]);
    // B has never had a member in the room: the history is Redis's.
    let mut late = Client::connect_path(b_addr, "/room?rewind=3");
    for want in ["m2", "m3", "m4"] {
        assert_eq!(late.recv_text(), want);
    }
    say(&mut publisher, &["now"]);
    assert_eq!(late.recv_text(), "now", "live after the replay");
    // Both nodes give every message the same offset.
    let mut on_b = framed(b_addr, "/room?rewind=10");
    let mut on_a = framed(a_addr, "/room?rewind=10");
    let (sb, sa) = (status(&mut on_b), status(&mut on_a));
    assert_eq!(sb["status"], "rewound");
    assert_eq!(sb["replayed"], 6);
    assert_eq!((&sb["epoch"], &sb["offset"]), (&sa["epoch"], &sa["offset"]));
    assert_ne!(sb["epoch"], 0);
    let (from_b, from_a) = (framed_messages(&mut on_b, 6), framed_messages(&mut on_a, 6));
    assert_eq!(from_b, from_a);
    let texts: Vec<&str> = from_b.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4", "now"]);
    assert_eq!(
        sb["offset"],
        from_b[5].0.as_str(),
        "the replay ends at the offset"
    );
    wait_metric(b_addr, "wsd_history_rewinds_total", |v| v == 2.0);
    wait_metric(a_addr, "wsd_bus_history_appended_total", |v| v == 6.0);
}

#[test]
fn history_outlives_a_wsd_restart_and_a_resume_crosses_nodes() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = node(&redis.url(), "10");
    let a_addr = up(&a);
    let mut publisher = Client::connect_path(a_addr, "/r");
    wait_metric(a_addr, "wsd_bus_subscriptions", |v| v == 1.0);
    // Before the room's first message: an epoch already, and no offset.
    let mut early = framed(a_addr, "/r");
    let s = status(&mut early);
    assert_eq!(
        (s["status"].as_str(), s["offset"].as_str()),
        (Some("live"), Some("0-0"))
    );
    let first_epoch = s["epoch"].as_u64().unwrap();
    assert_ne!(first_epoch, 0);
    say(&mut publisher, &["m0", "m1", "m2"]);
    let mut reader = framed(a_addr, "/r?rewind=3");
    let s = status(&mut reader);
    let epoch = s["epoch"].as_u64().unwrap();
    assert_eq!(epoch, first_epoch, "the first message keeps the epoch");
    let got = framed_messages(&mut reader, 3);
    drop((reader, publisher, early));
    drop(a);
    // A new node, the old one gone: the history is still there.
    let c = node(&redis.url(), "10");
    let c_addr = up(&c);
    let mut back = framed(c_addr, &format!("/r?since={}&epoch={epoch}", got[0].0));
    let s = status(&mut back);
    assert_eq!(
        (s["status"].as_str(), s["replayed"].as_u64()),
        (Some("resumed"), Some(2))
    );
    assert_eq!(framed_messages(&mut back, 2), got[1..]);
    // From before the first message: all of it, nothing was trimmed.
    let mut from_start = framed(c_addr, &format!("/r?since=0-0&epoch={epoch}"));
    assert_eq!(status(&mut from_start)["replayed"], 3);
    assert_eq!(framed_messages(&mut from_start, 3), got);
    // Up to date: nothing owed.
    let mut current = framed(c_addr, &format!("/r?since={}&epoch={epoch}", got[2].0));
    assert_eq!(status(&mut current)["replayed"], 0);
    // Another epoch's offsets are not this history's.
    let mut stale = framed(
        c_addr,
        &format!("/r?since={}&epoch={}", got[0].0, epoch + 1),
    );
    let s = status(&mut stale);
    assert_eq!(
        (s["status"].as_str(), s["reason"].as_str()),
        (Some("reset"), Some("epoch"))
    );
    wait_metric(c_addr, "wsd_history_resumes_total", |v| v == 3.0);
    wait_metric(c_addr, "wsd_history_resume_resets_total", |v| v == 1.0);
}

#[test]
fn a_resume_on_another_node_while_messages_flow_has_no_gap_and_no_duplicate() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url(), "1000"), node(&redis.url(), "1000"));
    let (a_addr, b_addr) = (up(&a), up(&b));
    let mut publisher = Client::connect_path(a_addr, "/flow");
    wait_metric(a_addr, "wsd_bus_subscriptions", |v| v == 1.0);
    // The room has a history (an epoch) before the reader joins.
    say(&mut publisher, &["m0"]);
    let mut reader = framed(b_addr, "/flow");
    let s = status(&mut reader);
    let epoch = s["epoch"].as_u64().unwrap();
    assert_eq!(s["status"], "live");
    const N: u32 = 300;
    let sender = std::thread::spawn(move || {
        for i in 1..N {
            publisher.send_text(&format!("m{i}"));
            std::thread::sleep(Duration::from_millis(1));
        }
        publisher
    });
    let mut texts = Vec::new();
    let mut last = String::new();
    while texts.len() < 60 {
        let (offset, text) = offset_and_text(&mut reader);
        assert!(
            offset > last || offset.len() > last.len(),
            "offsets increase"
        );
        last = offset;
        texts.push(text);
    }
    drop(reader);
    // Back, on the other node, from the last offset it had.
    let mut back = framed(a_addr, &format!("/flow?since={last}&epoch={epoch}"));
    assert_eq!(status(&mut back)["status"], "resumed");
    while texts.last().map(String::as_str) != Some(&format!("m{}", N - 1)) {
        texts.push(offset_and_text(&mut back).1);
    }
    let want: Vec<String> = (1..N).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, want, "every message once, in order");
    drop(sender.join().unwrap());
}

#[test]
fn a_resume_from_before_the_stream_is_too_old_and_an_emptied_redis_is_a_new_epoch() {
    let _w = watchdog();
    // Small stream nodes, so that `MAXLEN ~` trims close to --history.
    let mut redis = RedisServer::start_on(redis::free_port(), &["--stream-node-max-entries", "2"]);
    let a = node(&redis.url(), "4");
    let a_addr = up(&a);
    let mut publisher = Client::connect_path(a_addr, "/t");
    let mut reader = framed(a_addr, "/t");
    wait_metric(a_addr, "wsd_bus_subscriptions", |v| v == 1.0);
    status(&mut reader);
    let texts: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    say(&mut publisher, &refs);
    let got = framed_messages(&mut reader, 20);
    let mut rewound = framed(a_addr, "/t?rewind=20");
    let s = status(&mut rewound);
    let epoch = s["epoch"].as_u64().unwrap();
    let kept = s["replayed"].as_u64().unwrap();
    assert!((4..10).contains(&kept), "about --history kept: {kept}");
    let mut old = framed(a_addr, &format!("/t?since={}&epoch={epoch}", got[0].0));
    let s = status(&mut old);
    assert_eq!(
        (s["status"].as_str(), s["reason"].as_str()),
        (Some("reset"), Some("too-old"))
    );
    // Redis restarted empty: its history, and the epoch, are gone.
    redis.kill();
    redis.restart();
    wait_metric(a_addr, "wsd_bus_reconnects_total", |v| v >= 2.0);
    up(&a);
    let mut after = framed(a_addr, &format!("/t?since={}&epoch={epoch}", got[19].0));
    let s = status(&mut after);
    assert_eq!(
        (s["status"].as_str(), s["reason"].as_str()),
        (Some("reset"), Some("epoch"))
    );
}

#[test]
fn redis_killed_during_a_join_sends_the_joiner_live_and_says_so() {
    let _w = watchdog();
    let mut redis = RedisServer::start();
    let a = node(&redis.url(), "10");
    let a_addr = up(&a);
    let mut publisher = Client::connect_path(a_addr, "/k");
    wait_metric(a_addr, "wsd_bus_subscriptions", |v| v == 1.0);
    say(&mut publisher, &["m0"]);
    // Redis stops answering: the join's read waits...
    redis.pause();
    let mut joiner = framed(a_addr, "/k?rewind=5");
    let mut bystander = Client::connect_path(a_addr, "/other");
    bystander.assert_ping(b"nothing blocks");
    // ...until Redis dies: the join goes live, told its history is gone.
    redis.kill();
    let s = status(&mut joiner);
    assert_eq!(
        (s["status"].as_str(), s["reason"].as_str()),
        (Some("reset"), Some("unavailable"))
    );
    wait_metric(a_addr, "wsd_bus_up", |v| v == 0.0);
    // Messages still flow here, unrecorded: no offset.
    say(&mut publisher, &["local"]);
    assert_eq!(
        offset_and_text(&mut joiner),
        (String::new(), "local".to_string())
    );
    // A join while Redis is down goes live at once.
    let mut plain = Client::connect_path(a_addr, "/k?rewind=5");
    let mut framed_down = framed(a_addr, "/k");
    assert_eq!(status(&mut framed_down)["reason"], "unavailable");
    say(&mut publisher, &["again"]);
    assert_eq!(plain.recv_text(), "again");
    // The framed rewind, the plain one and the framed one while down.
    wait_metric(a_addr, "wsd_history_unavailable_total", |v| v == 3.0);
}

#[test]
fn with_exclude_sender_a_member_does_not_get_its_own_recorded_message_back() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = wsd_node(&redis.url(), &["--history", "10", "--exclude-sender"]);
    let a_addr = up(&a);
    let mut sender = Client::connect_path(a_addr, "/x");
    let mut other = Client::connect_path(a_addr, "/x");
    wait_metric(a_addr, "wsd_bus_subscriptions", |v| v == 1.0);
    sender.send_text("mine");
    assert_eq!(other.recv_text(), "mine");
    other.send_text("yours");
    assert_eq!(sender.recv_text(), "yours", "not its own first");
    // Both were recorded all the same.
    let mut late = Client::connect_path(a_addr, "/x?rewind=2");
    assert_eq!(
        (late.recv_text(), late.recv_text()),
        ("mine".into(), "yours".into())
    );
}

#[test]
fn a_backends_publish_to_a_room_nobody_is_in_is_in_every_nodes_history() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let files = Scratch::new();
    let key = files.write("key", "history-nodes-api-key-0123456789");
    let key = key.to_str().unwrap();
    let a = wsd_node(&redis.url(), &["--history", "10", "--api-key", key]);
    let b = node(&redis.url(), "10");
    let (a_addr, b_addr) = (up(&a), up(&b));
    let body = b"from a backend";
    let mut req = format!(
        "POST /publish/empty HTTP/1.1\r\nHost: wsd\r\nAuthorization: Bearer history-nodes-api-key-0123456789\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let mut api = Client::connect_raw(a_addr);
    api.send_raw(&req);
    assert_eq!(api.read_http_response().status, 200);
    wait_metric(a_addr, "wsd_bus_history_appended_total", |v| v == 1.0);
    let mut late = framed(b_addr, "/empty?rewind=5");
    assert_eq!(status(&mut late)["replayed"], 1);
    assert_eq!(offset_and_text(&mut late).1, "from a backend");
}

#[test]
fn many_joiners_at_once_each_get_the_rewind_then_live_messages() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = node(&redis.url(), "10");
    let a_addr = up(&a);
    let mut publisher = Client::connect_path(a_addr, "/crowd");
    wait_metric(a_addr, "wsd_bus_subscriptions", |v| v == 1.0);
    say(&mut publisher, &["m0", "m1", "m2", "m3"]);
    // Upgrades sent back to back: joins of one turn share one read.
    let mut plain: Vec<Client> = (0..30)
        .map(|_| Client::connect_path(a_addr, "/crowd?rewind=3"))
        .collect();
    let mut offsets: Vec<Client> = (0..10).map(|_| framed(a_addr, "/crowd?rewind=3")).collect();
    say(&mut publisher, &["live"]);
    for c in &mut plain {
        for want in ["m1", "m2", "m3", "live"] {
            assert_eq!(c.recv_text(), want);
        }
    }
    let mut seen = None;
    for c in &mut offsets {
        assert_eq!(status(c)["replayed"], 3);
        let got = framed_messages(c, 4);
        assert_eq!(got[3].1, "live");
        assert_eq!(
            *seen.get_or_insert_with(|| got.clone()),
            got,
            "the same offsets"
        );
    }
    wait_metric(a_addr, "wsd_history_rewinds_total", |v| v == 40.0);
}

#[test]
fn a_read_in_flight_for_a_room_that_emptied_never_reaches_the_next_room() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = node(&redis.url(), "10");
    let a_addr = up(&a);
    let mut publisher = Client::connect_path(a_addr, "/secret");
    wait_metric(a_addr, "wsd_bus_subscriptions", |v| v == 1.0);
    say(&mut publisher, &["s0", "s1"]);
    drop(publisher);
    wait_metric(a_addr, "wsd_rooms", |v| v == 0.0);
    // A read for /secret goes out and is not answered yet...
    redis.pause();
    let gone = Client::connect_path(a_addr, "/secret?rewind=5");
    wait_metric(a_addr, "wsd_rooms", |v| v == 1.0);
    // ...its joiner leaves, and /open takes the room's place.
    drop(gone);
    wait_metric(a_addr, "wsd_rooms", |v| v == 0.0);
    let mut next = Client::connect_path(a_addr, "/open?rewind=5");
    wait_metric(a_addr, "wsd_rooms", |v| v == 1.0);
    redis.resume();
    let mut writer = Client::connect_path(a_addr, "/open");
    writer.send_text("o0");
    assert_eq!(next.recv_text(), "o0", "nothing of /secret");
}
