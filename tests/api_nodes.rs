//! The publish API beyond one reactor: members on other reactors
//! (`--threads`), on other nodes (`--redis`, a real `redis-server` the
//! test starts), over TLS, and keys rotated by SIGHUP in a child process.
//! Also a raw Redis publish larger than `--max-message`, which is dropped
//! without costing the subscribe connection.

mod common;
#[path = "common/redis.rs"]
mod redis;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::tls::*;
use common::*;
use redis::{wait_metric, wsd_node, RedisServer};
use wsd::api::ApiKeySlot;
use wsd::net::process::Process;
use wsd::{Config, Mode};

const KEY: &str = "nodes-key-0123456789abcdef";

fn post(target: &str, key: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {target} HTTP/1.1\r\nHost: wsd\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// One request on a fresh connection: the status and JSON answer.
fn ask(addr: SocketAddr, req: &[u8]) -> (u16, serde_json::Value) {
    let mut c = Client::connect_raw(addr);
    c.send_raw(req);
    let resp = c.read_http_response();
    (resp.status, serde_json::from_slice(&resp.body).unwrap())
}

#[test]
fn a_publish_on_one_node_reaches_the_room_on_every_node() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let files = Scratch::new();
    let key = files.write("key", KEY);
    let key = key.to_str().unwrap();
    let a = wsd_node(&redis.url(), &["--api-key", key]);
    let b = wsd_node(&redis.url(), &["--api-key", key]);
    let mut on_a = Client::connect_path(a.addrs[0], "/chat");
    let mut on_b = Client::connect_path(b.addrs[0], "/chat");
    let mut on_b_feed = Client::connect_path(b.addrs[0], "/feed");
    wait_metric(a.addrs[0], "wsd_bus_subscriptions", |v| v == 1.0);
    wait_metric(b.addrs[0], "wsd_bus_subscriptions", |v| v == 2.0);
    let (status, json) = ask(
        a.addrs[0],
        &post("/publish/chat", KEY, "text/plain", b"from A"),
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["local_receivers"], 1);
    // Each publish is received everywhere before the next: across nodes,
    // only one publisher's order is kept.
    for (who, c) in [("A", &mut on_a), ("B", &mut on_b)] {
        assert_eq!(c.recv_text(), "from A", "{who}");
    }
    // A room with members only on the other node.
    let (status, json) = ask(
        a.addrs[0],
        &post(
            "/publish/feed",
            KEY,
            "application/octet-stream",
            b"\x00\x01",
        ),
    );
    assert_eq!((status, &json["local_receivers"]), (200, &0.into()));
    assert_eq!(on_b_feed.recv_binary(), b"\x00\x01");
    let batch =
        b"{\"room\":\"/chat\",\"text\":\"batch 1\"}\n{\"room\":\"/feed\",\"text\":\"batch 2\"}\n";
    let (status, json) = ask(
        b.addrs[0],
        &post("/publish", KEY, "application/x-ndjson", batch),
    );
    assert_eq!(status, 200, "{json}");
    for (who, c) in [("A", &mut on_a), ("B", &mut on_b)] {
        assert_eq!(c.recv_text(), "batch 1", "{who}");
    }
    assert_eq!(on_b_feed.recv_text(), "batch 2");
    on_a.assert_ping(b"once each");
    on_b.assert_ping(b"once each");
}

#[test]
fn a_raw_publish_over_the_message_limit_is_dropped_and_the_bus_stays_up() {
    let _w = watchdog();
    let redis = RedisServer::start();
    let a = wsd_node(&redis.url(), &["--max-message", "1KiB"]);
    let mut member = Client::connect_path(a.addrs[0], "/chat");
    wait_metric(a.addrs[0], "wsd_bus_subscriptions", |v| v == 1.0);
    assert_eq!(redis.publish(b"wsd:raw:/chat", b"before"), 1);
    // Over --max-message; then over what the decoder would ever buffer
    // (skipped as it arrives, the connection kept).
    assert_eq!(redis.publish(b"wsd:raw:/chat", &vec![b'x'; 2 << 10]), 1);
    assert_eq!(redis.publish(b"wsd:raw:/chat", &vec![b'y'; 256 << 10]), 1);
    assert_eq!(redis.publish(b"wsd:raw:/chat", b"after"), 1);
    assert_eq!(member.recv_text(), "before");
    let next = member.recv_text();
    assert!(next == "after", "{} bytes instead of \"after\"", next.len());
    wait_metric(
        a.addrs[0],
        "wsd_bus_dropped_total{reason=\"too_large\"}",
        |v| v == 2.0,
    );
    assert_eq!(metric(a.addrs[0], "wsd_bus_reconnects_total"), 0.0);
}

#[test]
fn members_on_every_reactor_get_a_publish_once() {
    let _w = watchdog();
    let files = Scratch::new();
    let cfg = Config {
        api_keys: Some(ApiKeySlot::open(&[files.write("key", KEY)]).unwrap()),
        ..config(Mode::Broadcast)
    };
    let process = Process::start(cfg, 2).expect("start reactors");
    let addr = process.local_addrs()[0];
    let handle = process.shutdown_handle();
    let mut members: Vec<Client> = (0..16)
        .map(|_| Client::connect_path(addr, "/all"))
        .collect();
    // The kernel spreads connections by their address pair: with 16,
    // both reactors hold some.
    let until = Instant::now() + IO_TIMEOUT;
    loop {
        let body = String::from_utf8(http_get(addr, "/metrics").body).unwrap();
        let per: Vec<f64> = body
            .lines()
            .filter(|l| l.starts_with("wsd_reactor_connections{"))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
            .collect();
        if per.len() == 2 && per.iter().all(|&n| n > 1.0) {
            break;
        }
        assert!(Instant::now() < until, "a reactor holds nothing: {per:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // One member of its room, on one reactor; the publishes come on fresh
    // connections, on either reactor.
    let mut solo = Client::connect_path(addr, "/solo");
    for i in 0..8 {
        let (status, json) = ask(
            addr,
            &post(
                "/publish/all",
                KEY,
                "text/plain",
                format!("all {i}").as_bytes(),
            ),
        );
        assert_eq!(status, 200);
        // Members on both reactors are counted.
        assert_eq!(json["local_receivers"], 16);
        let (status, json) = ask(
            addr,
            &post(
                "/publish/solo",
                KEY,
                "text/plain",
                format!("solo {i}").as_bytes(),
            ),
        );
        assert_eq!(status, 200);
        assert_eq!(json["local_receivers"], 1);
    }
    for m in &mut members {
        for i in 0..8 {
            assert_eq!(m.recv_text(), format!("all {i}"));
        }
    }
    for i in 0..8 {
        assert_eq!(solo.recv_text(), format!("solo {i}"));
    }
    members[0].assert_ping(b"nothing twice");
    solo.assert_ping(b"nothing twice");
    handle.shutdown();
    let stats = process.wait().expect("reactors");
    assert_eq!(stats.api.published, 16);
    assert_eq!(stats.api.requests(200), 16);
}

#[test]
fn a_publish_over_tls() {
    let _w = watchdog();
    let ca = TestCa::new("wsd api CA");
    let files = Scratch::new();
    let (cert, key) = files.write_pair(&ca.server_cert("wsd api server"));
    let cfg = Config {
        tls: Some(slot(&cert, &key)),
        api_keys: Some(ApiKeySlot::open(&[files.write("api-key", KEY)]).unwrap()),
        ..config(Mode::Broadcast)
    };
    let server = TestServer::start(cfg);
    let mut member = Client::connect_tls(server.addr(), ca.client_config());
    let mut c = Client::connect_tls_raw(server.addr(), ca.client_config());
    // The member is in /chat (the test client's path).
    let body = b"{\"room\":\"/chat\",\"text\":\"over tls\"}\n";
    c.send_raw(&post("/publish", KEY, "application/x-ndjson", body));
    let resp = c.read_http_response();
    assert_eq!(resp.status, 200);
    assert_eq!(member.recv_text(), "over tls");
    // Keep-alive over TLS too.
    c.send_raw(&post("/publish", KEY, "application/x-ndjson", body));
    assert_eq!(c.read_http_response().status, 200);
    assert_eq!(member.recv_text(), "over tls");
}

#[test]
fn sighup_rotates_the_keys() {
    let _w = watchdog();
    let files = Scratch::new();
    let path = files.write("key", "old-key-0123456789abcdef\n");
    let mut wsd = WsdProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--mode",
        "broadcast",
        "--ping-interval",
        "off",
        "--api-key",
        path.to_str().unwrap(),
    ]);
    let addr = wsd.addrs[0];
    let publish = |key: &str| ask(addr, &post("/publish/r", key, "text/plain", b"x")).0;
    assert_eq!(publish("old-key-0123456789abcdef"), 200);
    assert_eq!(publish("new-key-0123456789abcdef"), 401);
    files.write("key", "new-key-0123456789abcdef\n");
    wsd.signal("HUP");
    wsd.stderr_line_containing("API keys reloaded", Duration::from_secs(30));
    assert_eq!(publish("new-key-0123456789abcdef"), 200);
    assert_eq!(publish("old-key-0123456789abcdef"), 401);
    // A file that no longer loads keeps the keys it had.
    files.write("key", "short\n");
    wsd.signal("HUP");
    let line = wsd.stderr_line_containing("API key reload failed", Duration::from_secs(30));
    assert!(!line.contains("short"), "{line}");
    assert_eq!(publish("new-key-0123456789abcdef"), 200);
}
