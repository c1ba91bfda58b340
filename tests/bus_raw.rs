//! A backend's plain `PUBLISH` into a room: `--redis-prefix` + `raw:` +
//! the room, no envelope. Two (and a third, differently prefixed) wsd
//! nodes and one real `redis-server`, started by the test on free loopback
//! ports and stopped by PID; the test publishes with its own RESP client,
//! as a backend would.

mod common;
#[path = "common/redis.rs"]
mod redis;

use common::*;
use redis::{wait_metric, wsd_node, RedisServer};

#[test]
fn a_raw_publish_reaches_the_room_on_every_node_as_text_or_binary() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = wsd_node(&redis.url(), &[]);
    let b = wsd_node(&redis.url(), &[]);
    let other_prefix = wsd_node(&redis.url(), &["--redis-prefix", "app:"]);
    let mut on_a = Client::connect_path(a.addrs[0], "/chat");
    let mut on_b = Client::connect_path(b.addrs[0], "/chat");
    let mut elsewhere = Client::connect_path(a.addrs[0], "/other");
    let mut on_app = Client::connect_path(other_prefix.addrs[0], "/chat");
    wait_metric(a.addrs[0], "wsd_bus_subscriptions", |v| v == 2.0);
    wait_metric(b.addrs[0], "wsd_bus_subscriptions", |v| v == 1.0);
    wait_metric(other_prefix.addrs[0], "wsd_bus_subscriptions", |v| v == 1.0);

    // One raw channel subscription a node with members in the room.
    assert_eq!(redis.publish(b"wsd:raw:/chat", b"hello"), 2);
    assert_eq!(redis.publish(b"wsd:raw:/chat", b"\xff\x00bin"), 2);
    assert_eq!(redis.publish(b"app:raw:/chat", "γειά".as_bytes()), 1);
    for (who, c) in [("node A", &mut on_a), ("node B", &mut on_b)] {
        assert_eq!(c.recv_text(), "hello", "{who}");
        assert_eq!(c.recv_binary(), b"\xff\x00bin", "{who}");
    }
    assert_eq!(on_app.recv_text(), "γειά");

    // Raw bytes on the envelope channel are still not an envelope.
    assert_eq!(redis.publish(b"wsd:/chat", b"hello"), 2);
    let bad = "wsd_bus_dropped_total{reason=\"bad_envelope\"}";
    wait_metric(a.addrs[0], bad, |v| v == 1.0);
    wait_metric(b.addrs[0], bad, |v| v == 1.0);
    for c in [&mut on_a, &mut on_b, &mut elsewhere, &mut on_app] {
        c.assert_ping(b"nothing more");
    }
    for (node, raw) in [(&a, 2.0), (&b, 2.0), (&other_prefix, 1.0)] {
        wait_metric(node.addrs[0], "wsd_bus_raw_total", |v| v == raw);
        assert_eq!(metric(node.addrs[0], "wsd_bus_received_total"), raw);
    }
}

#[test]
fn the_raw_channel_is_left_with_the_rooms_last_member() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = wsd_node(&redis.url(), &[]);
    let mut member = Client::connect_path(a.addrs[0], "/chat");
    wait_metric(a.addrs[0], "wsd_bus_subscriptions", |v| v == 1.0);
    assert_eq!(redis.publish(b"wsd:raw:/chat", b"x"), 1);
    assert_eq!(member.recv_text(), "x");
    member.close();
    wait_metric(a.addrs[0], "wsd_bus_subscriptions", |v| v == 0.0);
    // Both channels are gone from Redis, not only from the gauge.
    assert_eq!(redis.publish(b"wsd:raw:/chat", b"x"), 0);
    assert_eq!(redis.publish(b"wsd:/chat", b"x"), 0);
}
