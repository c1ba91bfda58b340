//! Two wsd processes given one `--node-id` on one Redis (issue 22): each
//! used to take the other's messages for its own echo and drop them,
//! silently. The instance token in every envelope tells them apart: the
//! messages cross both ways, and each node counts and logs the clash.

mod common;
#[path = "common/redis.rs"]
mod redis;

use std::time::Duration;

use common::*;
use redis::{wait_metric, wsd_node, RedisServer};

#[test]
fn two_nodes_with_one_id_still_exchange_messages_and_say_so() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let mut a = wsd_node(&redis.url(), &["--node-id", "web"]);
    let mut b = wsd_node(&redis.url(), &["--node-id", "web"]);
    let mut on_a = Client::connect_path(a.addrs[0], "/c");
    let mut on_b = Client::connect_path(b.addrs[0], "/c");
    for node in [&a, &b] {
        wait_metric(node.addrs[0], "wsd_bus_up", |v| v == 1.0);
        wait_metric(node.addrs[0], "wsd_bus_subscriptions", |v| v == 1.0);
    }

    // Each sender gets its own message once, locally: its echo from Redis
    // is still recognised and skipped.
    on_a.send_text("from a");
    assert_eq!(on_a.recv_text(), "from a");
    assert_eq!(on_b.recv_text(), "from a");
    on_b.send_text("from b");
    assert_eq!(on_b.recv_text(), "from b");
    assert_eq!(on_a.recv_text(), "from b");
    on_a.assert_ping(b"nothing more");
    on_b.assert_ping(b"nothing more");

    for node in [&mut a, &mut b] {
        wait_metric(node.addrs[0], "wsd_bus_clash_total", |v| v == 1.0);
        assert_eq!(metric(node.addrs[0], "wsd_bus_received_total"), 1.0);
        let line = node.stderr_line_containing("node ids must be unique", Duration::from_secs(20));
        assert!(line.contains("'web'"), "{line}");
    }
}

#[test]
fn distinct_ids_are_no_clash() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = wsd_node(&redis.url(), &["--node-id", "web-1"]);
    let b = wsd_node(&redis.url(), &["--node-id", "web-2"]);
    let mut on_a = Client::connect_path(a.addrs[0], "/c");
    let mut on_b = Client::connect_path(b.addrs[0], "/c");
    for node in [&a, &b] {
        wait_metric(node.addrs[0], "wsd_bus_subscriptions", |v| v == 1.0);
    }
    on_a.send_text("hi");
    assert_eq!(on_b.recv_text(), "hi");
    wait_metric(b.addrs[0], "wsd_bus_received_total", |v| v == 1.0);
    for node in [&a, &b] {
        assert_eq!(metric(node.addrs[0], "wsd_bus_clash_total"), 0.0);
    }
}
