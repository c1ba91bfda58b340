//! Rooms across processes: two `wsd --redis` nodes and one real
//! `redis-server`, each started by the test on free loopback ports and
//! stopped by PID. Delivery across nodes is checked exactly (once, in
//! order) while the bus is up, and the faults (Redis killed, absent,
//! frozen) are checked for what the README promises: local delivery goes
//! on, remote copies are dropped and counted, the bus comes back.

mod common;
#[path = "common/redis.rs"]
mod redis;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use redis::{free_port, RedisServer};

/// How long a condition may take to come true: a watchdog, not a speed
/// check.
const PATIENCE: Duration = Duration::from_secs(30);

/// A broadcast node on the bus at `url`. Keepalive pings are off: a test
/// on a busy machine can run past the default interval, and a Ping would
/// then arrive where it expects data.
fn node(url: &str, extra: &[&str]) -> WsdProcess {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--mode",
        "broadcast",
        "--ping-interval",
        "off",
        "--redis",
        url,
    ];
    args.extend_from_slice(extra);
    WsdProcess::start(&args)
}

/// The value of metric `name` (with its labels, as printed) in `/metrics`.
fn sample(addr: SocketAddr, series: &str) -> f64 {
    let body = String::from_utf8(http_get(addr, "/metrics").body).unwrap();
    body.lines()
        .find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n == series).then(|| v.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{body}"))
}

/// Waits until `series` satisfies `ok`.
fn wait_for(addr: SocketAddr, series: &str, ok: impl Fn(f64) -> bool) {
    let until = Instant::now() + PATIENCE;
    loop {
        let v = sample(addr, series);
        if ok(v) {
            return;
        }
        assert!(Instant::now() < until, "{series} stayed at {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the node is on the bus with `subs` channels subscribed.
fn wait_subscribed(addr: SocketAddr, subs: usize) {
    wait_for(addr, "wsd_bus_up", |v| v == 1.0);
    wait_for(addr, "wsd_bus_subscriptions", |v| v == subs as f64);
}

/// Reads `n` texts `"{tag}{i}"` for i in `from..from + n`, in order.
fn expect_sequence(c: &mut Client, tag: &str, from: usize, n: usize, who: &str) {
    for i in from..from + n {
        assert_eq!(c.recv_text(), format!("{tag}{i}"), "{who}");
    }
}

#[test]
fn a_publisher_on_one_node_reaches_every_subscriber_on_both_once_in_order() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let mut on_a: Vec<Client> = (0..10)
        .map(|_| Client::connect_path(a.addrs[0], "/room"))
        .collect();
    let mut on_b: Vec<Client> = (0..10)
        .map(|_| Client::connect_path(b.addrs[0], "/room"))
        .collect();
    wait_subscribed(a.addrs[0], 1);
    wait_subscribed(b.addrs[0], 1);
    let mut publisher = Client::connect_path(a.addrs[0], "/room");
    const N: usize = 300;
    for i in 0..N {
        publisher.send_text(&format!("m{i}"));
    }
    for (i, c) in on_a.iter_mut().enumerate() {
        expect_sequence(c, "m", 0, N, &format!("node A subscriber {i}"));
    }
    for (i, c) in on_b.iter_mut().enumerate() {
        expect_sequence(c, "m", 0, N, &format!("node B subscriber {i}"));
    }
    // The publisher gets its own messages once (locally), not twice: node A
    // skips them when they come back from Redis.
    expect_sequence(&mut publisher, "m", 0, N, "the publisher");
    for c in on_a
        .iter_mut()
        .chain(on_b.iter_mut())
        .chain([&mut publisher])
    {
        c.assert_ping(b"nothing more");
    }
    wait_for(b.addrs[0], "wsd_bus_received_total", |v| v == N as f64);
    wait_for(a.addrs[0], "wsd_bus_published_total", |v| v == N as f64);
    assert_eq!(sample(a.addrs[0], "wsd_bus_received_total"), 0.0);
}

#[test]
fn rooms_stay_apart_across_nodes_and_exclude_sender_holds() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = node(&redis.url(), &["--exclude-sender"]);
    let b = node(&redis.url(), &["--exclude-sender"]);
    let mut a_red = Client::connect_path(a.addrs[0], "/red");
    let mut b_red = Client::connect_path(b.addrs[0], "/red");
    let mut b_blue = Client::connect_path(b.addrs[0], "/blue");
    let mut a_blue = Client::connect_path(a.addrs[0], "/blue");
    wait_subscribed(a.addrs[0], 2);
    wait_subscribed(b.addrs[0], 2);
    for i in 0..50 {
        a_red.send_text(&format!("red{i}"));
        b_blue.send_text(&format!("blue{i}"));
    }
    expect_sequence(&mut b_red, "red", 0, 50, "red on B");
    expect_sequence(&mut a_blue, "blue", 0, 50, "blue on A");
    // Senders get nothing of their own, and nothing of the other room.
    for c in [&mut a_red, &mut b_red, &mut b_blue, &mut a_blue] {
        c.assert_ping(b"nothing more");
    }
}

#[test]
fn the_largest_message_allowed_crosses_the_bus() {
    let _w = watchdog();
    let redis = RedisServer::start();
    // The default limits: a 16 MiB message, past every buffer on the way
    // (64 KiB reads, 1 MiB kept), through Redis's default 32 MiB client
    // output limit for pub/sub.
    let a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let mut far = Client::connect_path(b.addrs[0], "/big");
    wait_subscribed(b.addrs[0], 1);
    let mut publisher = Client::connect_path(a.addrs[0], "/big");
    let body = pattern(16 << 20, 3);
    publisher.send_binary(&body);
    // The first byte comes only once node A has read the whole message,
    // Redis has passed it on and node B has read it all: a bulk of work,
    // not one step, so the CPU-aware watchdog bounds these waits, not
    // IO_TIMEOUT.
    far.stream.set_read_timeout(None).unwrap();
    publisher.stream.set_read_timeout(None).unwrap();
    let got = far.recv_binary();
    assert!(got == body, "the 16 MiB message changed on its way");
    assert_eq!(publisher.recv_binary().len(), body.len());
}

#[test]
fn redis_killed_and_restarted_local_delivery_goes_on_and_the_bus_comes_back() {
    let _w = watchdog();
    let mut redis = RedisServer::start();
    let a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let mut near = Client::connect_path(a.addrs[0], "/live");
    let mut far = Client::connect_path(b.addrs[0], "/live");
    wait_subscribed(a.addrs[0], 1);
    wait_subscribed(b.addrs[0], 1);
    let mut publisher = Client::connect_path(a.addrs[0], "/live");
    publisher.send_text("before0");
    expect_sequence(&mut far, "before", 0, 1, "far, before");

    redis.kill();
    wait_for(a.addrs[0], "wsd_bus_up", |v| v == 0.0);
    // /healthz stays 200 but says so.
    let health = http_get(a.addrs[0], "/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(String::from_utf8_lossy(&health.body).trim(), "ok; bus down");
    for i in 0..20 {
        publisher.send_text(&format!("during{i}"));
    }
    // Local delivery never waited for the bus.
    expect_sequence(&mut near, "before", 0, 1, "near");
    expect_sequence(&mut near, "during", 0, 20, "near, bus down");
    expect_sequence(&mut publisher, "before", 0, 1, "publisher");
    expect_sequence(&mut publisher, "during", 0, 20, "publisher, bus down");
    wait_for(a.addrs[0], "wsd_bus_dropped_total{reason=\"down\"}", |v| {
        v >= 20.0
    });

    redis.restart();
    // Both connections come back and the room is subscribed again.
    wait_subscribed(a.addrs[0], 1);
    wait_subscribed(b.addrs[0], 1);
    assert!(sample(b.addrs[0], "wsd_bus_reconnects_total") >= 2.0);
    for i in 0..20 {
        publisher.send_text(&format!("after{i}"));
    }
    // What was published while Redis was down is gone (at most once);
    // what follows arrives, in order.
    expect_sequence(&mut far, "after", 0, 20, "far, after the restart");
    expect_sequence(&mut near, "after", 0, 20, "near, after");
    assert_eq!(
        String::from_utf8_lossy(&http_get(a.addrs[0], "/healthz").body).trim(),
        "ok"
    );
}

#[test]
fn redis_absent_at_start_wsd_serves_local_rooms_and_joins_once_it_appears() {
    let _w = watchdog();
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut a = node(&url, &[]);
    let mut local = Client::connect_path(a.addrs[0], "/r");
    let mut publisher = Client::connect_path(a.addrs[0], "/r");
    publisher.send_text("local0");
    expect_sequence(&mut local, "local", 0, 1, "local, no Redis");
    assert_eq!(sample(a.addrs[0], "wsd_bus_up"), 0.0);
    // One line, not one per attempt.
    let line = a.stderr_line_containing("redis", IO_TIMEOUT);
    assert!(line.contains("WARN"), "{line}");

    let _redis = RedisServer::start_on(port, &[]);
    wait_subscribed(a.addrs[0], 1);
    let b = node(&url, &[]);
    let mut far = Client::connect_path(b.addrs[0], "/r");
    wait_subscribed(b.addrs[0], 1);
    publisher.send_text("joined0");
    expect_sequence(&mut far, "joined", 0, 1, "far, once Redis is up");
    let retries: Vec<String> = a
        .stderr_so_far()
        .into_iter()
        .filter(|l| l.contains("WARN") && l.contains("redis"))
        .collect();
    assert!(
        retries.is_empty(),
        "more warnings while retrying: {retries:?}"
    );
}

#[test]
fn a_frozen_redis_bounds_the_queue_and_drops_are_counted_while_local_delivery_goes_on() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = node(
        &redis.url(),
        &["--redis-queue", "256KiB", "--exclude-sender"],
    );
    let mut near = Client::connect_path(a.addrs[0], "/q");
    wait_subscribed(a.addrs[0], 1);
    let mut publisher = Client::connect_path(a.addrs[0], "/q");
    redis.pause();
    let body = pattern(64 << 10, 1);
    let frame = masked_frame(true, 0, OP_BINARY, &body, [1, 2, 3, 4]);
    // Published until the queue overflows (checked every 16 messages):
    // once Redis's socket buffers and the 256 KiB queue are full.
    const MOST: usize = 1024;
    let queue_full = "wsd_bus_dropped_total{reason=\"queue_full\"}";
    let mut n = 0;
    loop {
        assert!(
            n < MOST,
            "64 MiB published to a frozen Redis, nothing dropped"
        );
        publisher.send_raw(&frame);
        assert_eq!(near.recv_binary(), body);
        n += 1;
        if n % 16 == 0 && sample(a.addrs[0], queue_full) > 0.0 {
            break;
        }
    }
    let queued = sample(a.addrs[0], "wsd_bus_queued_bytes");
    assert!(
        queued <= (256 << 10) as f64 + body.len() as f64 + 1024.0,
        "{queued} bytes queued for a frozen Redis"
    );
    redis.resume();
    wait_for(a.addrs[0], "wsd_bus_queued_bytes", |v| v == 0.0);
    // Everything published is accounted for: acknowledged or dropped (the
    // last acknowledgements may still be on their way once the queue is
    // written out).
    let dropped = sample(a.addrs[0], queue_full);
    wait_for(a.addrs[0], "wsd_bus_published_total", |published| {
        published + dropped == n as f64
    });
}

#[test]
fn nodes_of_several_reactors_keep_one_bus_each_and_deliver_everything_once_in_order() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = node(&redis.url(), &["--threads", "4"]);
    let b = node(&redis.url(), &["--threads", "3"]);
    // Enough clients that every reactor of both nodes has some.
    let mut subs: Vec<Client> = (0..96)
        .map(|i| Client::connect_path(if i % 2 == 0 { a.addrs[0] } else { b.addrs[0] }, "/wide"))
        .collect();
    wait_subscribed(a.addrs[0], 1);
    wait_subscribed(b.addrs[0], 1);
    // One bus connection pair per process, whatever the reactors: one
    // subscription however many reactors have members. (Waited for, not
    // sampled once: a reactor other than the bus's answers /metrics with
    // the bus state last published to it, which lags while the bus's
    // reactor sleeps.)
    wait_for(a.addrs[0], "wsd_bus_subscriptions", |v| v == 1.0);
    let mut pub_a = Client::connect_path(a.addrs[0], "/wide");
    let mut pub_b = Client::connect_path(b.addrs[0], "/wide");
    const N: usize = 100;
    for i in 0..N {
        pub_a.send_text(&format!("a{i}"));
        pub_b.send_text(&format!("b{i}"));
    }
    for (n, c) in subs.iter_mut().chain([&mut pub_a, &mut pub_b]).enumerate() {
        let (mut next_a, mut next_b) = (0, 0);
        for _ in 0..2 * N {
            let text = c.recv_text();
            let (tag, i) = text.split_at(1);
            let i: usize = i.parse().unwrap();
            let next = if tag == "a" { &mut next_a } else { &mut next_b };
            assert_eq!(i, *next, "client {n}: {tag} out of order or repeated");
            *next += 1;
        }
        c.assert_ping(b"nothing more");
    }
    wait_for(a.addrs[0], "wsd_bus_published_total", |v| v == N as f64);
    wait_for(b.addrs[0], "wsd_bus_published_total", |v| v == N as f64);
    wait_for(a.addrs[0], "wsd_bus_received_total", |v| v == N as f64);
    // The last member leaving any reactor of a node unsubscribes it.
    for c in subs.into_iter().chain([pub_a, pub_b]) {
        c.close();
    }
    wait_for(a.addrs[0], "wsd_bus_subscriptions", |v| v == 0.0);
    wait_for(b.addrs[0], "wsd_bus_subscriptions", |v| v == 0.0);
}
