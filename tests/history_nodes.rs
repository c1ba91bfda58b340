//! History (`--history`) with rooms spanning nodes over Redis (`--redis`):
//! each node records the messages it fans out, those that came over the
//! bus from another node too, so a late joiner on any node with members
//! can rewind them. (History kept in Redis itself is not built yet.)

mod common;
#[path = "common/redis.rs"]
mod redis;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use redis::RedisServer;

const PATIENCE: Duration = Duration::from_secs(30);

/// A broadcast node with history on the bus at `url`.
fn node(url: &str) -> WsdProcess {
    WsdProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--mode",
        "broadcast",
        "--ping-interval",
        "off",
        "--redis",
        url,
        "--history",
        "10",
    ])
}

/// Waits until metric `series` reads `want` in `/metrics`.
fn wait_for(addr: SocketAddr, series: &str, want: &str) {
    let until = Instant::now() + PATIENCE;
    loop {
        let body = String::from_utf8(http_get(addr, "/metrics").body).unwrap();
        let now = body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_string);
        if now.as_deref() == Some(want) {
            return;
        }
        assert!(Instant::now() < until, "{series} stayed at {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_late_joiner_on_another_node_rewinds_what_came_over_the_bus() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = node(&redis.url());
    let b = node(&redis.url());
    // A member on B keeps B subscribed to the room.
    let mut member = Client::connect_path(b.addrs[0], "/room");
    let mut publisher = Client::connect_path(a.addrs[0], "/room");
    for n in [&a, &b] {
        wait_for(n.addrs[0], "wsd_bus_up", "1");
        wait_for(n.addrs[0], "wsd_bus_subscriptions", "1");
    }
    for i in 0..5 {
        publisher.send_text(&format!("m{i}"));
    }
    for i in 0..5 {
        assert_eq!(member.recv_text(), format!("m{i}"));
        assert_eq!(publisher.recv_text(), format!("m{i}"));
    }
    wait_for(b.addrs[0], "wsd_history_messages", "5");
    let mut late_b = Client::connect_path(b.addrs[0], "/room?rewind=3");
    let mut late_a = Client::connect_path(a.addrs[0], "/room?rewind=10");
    publisher.send_text("now");
    for want in ["m2", "m3", "m4", "now"] {
        assert_eq!(late_b.recv_text(), want, "the joiner on B");
    }
    for want in ["m0", "m1", "m2", "m3", "m4", "now"] {
        assert_eq!(late_a.recv_text(), want, "the joiner on A");
    }
    assert_eq!(member.recv_text(), "now");
    wait_for(b.addrs[0], "wsd_history_rewinds_total", "1");
}
