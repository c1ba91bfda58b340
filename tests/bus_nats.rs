//! Rooms across processes over NATS: `wsd --nats` nodes and real
//! `nats-server`s, each started by the test on free loopback ports and
//! stopped by PID. Delivery across nodes is checked exactly (once, in
//! order) while the bus is up; `max_payload` is honoured; rooms cross a
//! route between two servers; a killed server is failed over from, and a
//! restarted one is subscribed again.

mod common;
#[path = "common/nats.rs"]
mod nats;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use nats::{cluster_of_two, wsd_node, NatsServer, Setup};

/// How long a condition may take to come true: a watchdog, not a speed
/// check.
const PATIENCE: Duration = Duration::from_secs(30);

/// The value of `series` (with its labels, as printed) in `/metrics`.
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

/// Waits until the node is on the bus with `rooms` rooms subscribed (a
/// PONG confirmed them: the server has the subscriptions).
fn wait_subscribed(addr: SocketAddr, rooms: usize) {
    wait_for(addr, "wsd_bus_up", |v| v == 1.0);
    wait_for(addr, "wsd_bus_subscriptions", |v| v == rooms as f64);
}

/// Reads `n` texts `"{tag}{i}"` for i in `from..from + n`, in order.
fn expect_sequence(c: &mut Client, tag: &str, from: usize, n: usize, who: &str) {
    for i in from..from + n {
        assert_eq!(c.recv_text(), format!("{tag}{i}"), "{who}");
    }
}

/// Publishes into `/warm` on `from` until node `to` has received one bus
/// message: interest crosses a route between servers a moment after the
/// subscription, and nothing tells a client when.
fn warm_up(from: &mut Client, to: SocketAddr) {
    let until = Instant::now() + PATIENCE;
    let before = sample(to, "wsd_bus_received_total");
    while sample(to, "wsd_bus_received_total") == before {
        assert!(Instant::now() < until, "interest never crossed the route");
        from.send_text("warm");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_publisher_on_one_node_reaches_every_subscriber_on_both_once_in_order() {
    let _w = watchdog();
    let server = NatsServer::start();
    let a = wsd_node(&server.url(), &["--node-id", "A"]);
    let b = wsd_node(&server.url(), &["--node-id", "B"]);
    let mut on_a: Vec<Client> = (0..5)
        .map(|_| Client::connect_path(a.addrs[0], "/room"))
        .collect();
    let mut on_b: Vec<Client> = (0..5)
        .map(|_| Client::connect_path(b.addrs[0], "/room.with*dots>"))
        .collect();
    let mut publisher_b = Client::connect_path(b.addrs[0], "/room");
    wait_subscribed(a.addrs[0], 1);
    wait_subscribed(b.addrs[0], 2);
    let mut publisher = Client::connect_path(a.addrs[0], "/room.with*dots>");
    wait_subscribed(a.addrs[0], 2);
    const N: usize = 300;
    for i in 0..N {
        publisher.send_text(&format!("m{i}"));
        publisher_b.send_text(&format!("b{i}"));
    }
    for (i, c) in on_b.iter_mut().enumerate() {
        expect_sequence(c, "m", 0, N, &format!("node B subscriber {i}"));
    }
    for (i, c) in on_a.iter_mut().enumerate() {
        expect_sequence(c, "b", 0, N, &format!("node A subscriber {i}"));
    }
    // Each publisher gets its own once, locally: no echo from the server.
    expect_sequence(&mut publisher, "m", 0, N, "publisher on A");
    expect_sequence(&mut publisher_b, "b", 0, N, "publisher on B");
    for c in on_a
        .iter_mut()
        .chain(on_b.iter_mut())
        .chain([&mut publisher, &mut publisher_b])
    {
        c.assert_ping(b"nothing more");
    }
    for node in [&a, &b] {
        wait_for(node.addrs[0], "wsd_bus_received_total", |v| v == N as f64);
        wait_for(node.addrs[0], "wsd_bus_published_total", |v| v == N as f64);
        assert_eq!(sample(node.addrs[0], "wsd_bus_info{engine=\"nats\"}"), 1.0);
        assert_eq!(sample(node.addrs[0], "wsd_bus_clash_total"), 0.0);
    }
}

#[test]
fn rooms_stay_apart_across_nodes_and_exclude_sender_holds() {
    let _w = watchdog();
    let server = NatsServer::start();
    let a = wsd_node(&server.url(), &["--exclude-sender"]);
    let b = wsd_node(&server.url(), &["--exclude-sender"]);
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
    for c in [&mut a_red, &mut b_red, &mut b_blue, &mut a_blue] {
        c.assert_ping(b"nothing more");
    }
}

#[test]
fn a_message_at_max_payload_crosses_and_one_over_it_is_dropped_and_counted() {
    let _w = watchdog();
    const MAX: usize = 1024;
    let server = NatsServer::start_with(Setup {
        max_payload: Some(MAX),
        ..Setup::default()
    });
    // A one-byte node id: the envelope adds 12 bytes.
    let a = wsd_node(&server.url(), &["--node-id", "A"]);
    let b = wsd_node(&server.url(), &["--node-id", "B"]);
    let mut far = Client::connect_path(b.addrs[0], "/big");
    wait_subscribed(b.addrs[0], 1);
    let mut publisher = Client::connect_path(a.addrs[0], "/big");
    wait_subscribed(a.addrs[0], 1);
    let fits = pattern(MAX - 12, 1);
    let over = pattern(MAX - 11, 2);
    publisher.send_binary(&over);
    publisher.send_binary(&fits);
    publisher.send_text("after");
    // The one over the limit never went out; the connection stayed.
    assert_eq!(far.recv_binary(), fits);
    assert_eq!(far.recv_text(), "after");
    // Locally, both were delivered.
    assert_eq!(publisher.recv_binary(), over);
    assert_eq!(publisher.recv_binary(), fits);
    assert_eq!(publisher.recv_text(), "after");
    wait_for(a.addrs[0], "wsd_bus_published_total", |v| v == 2.0);
    assert_eq!(
        sample(a.addrs[0], "wsd_bus_dropped_total{reason=\"too_large\"}"),
        1.0
    );
    assert_eq!(sample(a.addrs[0], "wsd_bus_reconnects_total"), 0.0);
    assert_eq!(sample(a.addrs[0], "wsd_bus_up"), 1.0);
}

#[test]
fn a_backend_publishes_raw_bytes_to_the_raw_subject() {
    let _w = watchdog();
    let server = NatsServer::start();
    let a = wsd_node(&server.url(), &[]);
    let b = wsd_node(&server.url(), &[]);
    let mut on_a = Client::connect_path(a.addrs[0], "/news.feed");
    let mut on_b = Client::connect_path(b.addrs[0], "/news.feed");
    wait_subscribed(a.addrs[0], 1);
    wait_subscribed(b.addrs[0], 1);
    server.publish("wsd.raw./news%2Efeed", b"hello from a backend");
    server.publish("wsd.raw./news%2Efeed", &[0xff, 0x00]);
    for c in [&mut on_a, &mut on_b] {
        assert_eq!(c.recv_text(), "hello from a backend");
        assert_eq!(c.recv_binary(), [0xff, 0x00]);
    }
    wait_for(a.addrs[0], "wsd_bus_raw_total", |v| v == 2.0);
    // Plain bytes on the envelope subject are not a wsd's: dropped.
    server.publish("wsd./news%2Efeed", b"not an envelope");
    wait_for(
        b.addrs[0],
        "wsd_bus_dropped_total{reason=\"bad_envelope\"}",
        |v| v == 1.0,
    );
    on_a.assert_ping(b"nothing more");
}

#[test]
fn rooms_cross_a_route_between_two_servers() {
    let _w = watchdog();
    let (one, two) = cluster_of_two();
    let a = wsd_node(&one.url(), &[]);
    let b = wsd_node(&two.url(), &[]);
    let mut far = Client::connect_path(b.addrs[0], "/routed");
    let _far_warm = Client::connect_path(b.addrs[0], "/warm");
    wait_subscribed(b.addrs[0], 2);
    let mut publisher = Client::connect_path(a.addrs[0], "/routed");
    let mut warm = Client::connect_path(a.addrs[0], "/warm");
    wait_subscribed(a.addrs[0], 2);
    warm_up(&mut warm, b.addrs[0]);
    for i in 0..200 {
        publisher.send_text(&format!("r{i}"));
    }
    expect_sequence(&mut far, "r", 0, 200, "across the route");
    far.assert_ping(b"nothing more");
}

#[test]
fn a_killed_server_is_failed_over_from_and_a_restarted_one_resubscribed() {
    let _w = watchdog();
    let (mut one, mut two) = cluster_of_two();
    let list = format!("{},127.0.0.1:{}", one.url(), two.port());
    let a = wsd_node(&list, &[]);
    let b = wsd_node(&list, &[]);
    let mut near = Client::connect_path(a.addrs[0], "/live");
    let mut far = Client::connect_path(b.addrs[0], "/live");
    let mut publisher = Client::connect_path(a.addrs[0], "/live");
    wait_subscribed(a.addrs[0], 1);
    wait_subscribed(b.addrs[0], 1);
    let mut round = |tag: &str, far: &mut Client| {
        for i in 0..20 {
            publisher.send_text(&format!("{tag}{i}"));
        }
        expect_sequence(&mut near, tag, 0, 20, "near");
        expect_sequence(&mut publisher, tag, 0, 20, "publisher");
        expect_sequence(far, tag, 0, 20, "far");
    };
    round("first", &mut far);

    // Both nodes are on the first server of the list: kill it.
    one.kill();
    for node in [&a, &b] {
        wait_for(node.addrs[0], "wsd_bus_reconnects_total", |v| v >= 1.0);
        wait_subscribed(node.addrs[0], 1);
    }
    round("second", &mut far);

    // The first comes back and the second goes: back to the first, the
    // room subscribed there anew.
    one.restart();
    two.kill();
    for node in [&a, &b] {
        wait_for(node.addrs[0], "wsd_bus_reconnects_total", |v| v >= 2.0);
        wait_subscribed(node.addrs[0], 1);
    }
    round("third", &mut far);
    far.assert_ping(b"nothing more");
}

#[test]
fn while_the_server_is_down_local_delivery_goes_on() {
    let _w = watchdog();
    let mut server = NatsServer::start();
    let a = wsd_node(&server.url(), &[]);
    let mut near = Client::connect_path(a.addrs[0], "/live");
    let mut publisher = Client::connect_path(a.addrs[0], "/live");
    wait_subscribed(a.addrs[0], 1);
    server.kill();
    wait_for(a.addrs[0], "wsd_bus_up", |v| v == 0.0);
    for i in 0..20 {
        publisher.send_text(&format!("down{i}"));
    }
    expect_sequence(&mut near, "down", 0, 20, "near, bus down");
    expect_sequence(&mut publisher, "down", 0, 20, "publisher, bus down");
    wait_for(a.addrs[0], "wsd_bus_dropped_total{reason=\"down\"}", |v| {
        v >= 20.0
    });
}

#[test]
fn redis_and_nats_together_are_one_error_line_and_exit_2() {
    let out = run_wsd_to_exit(
        &[
            "--mode",
            "broadcast",
            "--redis",
            "redis://127.0.0.1:1",
            "--nats",
            "nats://127.0.0.1:1",
        ],
        &[],
        PATIENCE,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("--redis and --nats"), "{}", out.stderr);
}

#[test]
fn the_publish_api_and_several_reactors_ride_the_nats_bus() {
    let _w = watchdog();
    const KEY: &str = "nats-key-0123456789abcdef";
    let server = NatsServer::start();
    let files = Scratch::new();
    let key = files.write("key", KEY);
    let key = key.to_str().unwrap();
    let a = wsd_node(&server.url(), &["--api-key", key]);
    let b = wsd_node(&server.url(), &["--threads", "2"]);
    // Enough members that both of B's reactors most likely hold some; each
    // gets the message whichever reactor it is on.
    let mut on_b: Vec<Client> = (0..6)
        .map(|_| Client::connect_path(b.addrs[0], "/chat"))
        .collect();
    wait_subscribed(b.addrs[0], 1);
    wait_subscribed(a.addrs[0], 0);
    let body = b"from the API";
    let mut req = format!(
        "POST /publish/chat HTTP/1.1\r\nHost: wsd\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let mut c = Client::connect_raw(a.addrs[0]);
    c.send_raw(&req);
    assert_eq!(c.read_http_response().status, 200);
    for (i, member) in on_b.iter_mut().enumerate() {
        assert_eq!(member.recv_text(), "from the API", "member {i} on B");
    }
    wait_for(a.addrs[0], "wsd_bus_published_total", |v| v == 1.0);
}

/// In this process (so that `scripts/memcheck.sh` runs the engine under
/// valgrind): two servers on one nats-server, a room across them, and the
/// server killed under them.
#[test]
fn in_process_nodes_share_a_room_and_survive_the_server() {
    let _w = watchdog();
    let mut server = NatsServer::start();
    let node = || {
        let mut cfg = config(wsd::Mode::Broadcast);
        cfg.nats = Some(wsd::bus::NatsConfig::from_url(&server.url()).unwrap());
        TestServer::start(cfg)
    };
    let (a, b) = (node(), node());
    let mut far = Client::connect_path(b.addr(), "/room");
    wait_subscribed(b.addr(), 1);
    let mut publisher = Client::connect_path(a.addr(), "/room");
    wait_subscribed(a.addr(), 1);
    for i in 0..100 {
        publisher.send_text(&format!("m{i}"));
    }
    expect_sequence(&mut far, "m", 0, 100, "far");
    expect_sequence(&mut publisher, "m", 0, 100, "publisher");
    server.kill();
    wait_for(a.addr(), "wsd_bus_up", |v| v == 0.0);
    publisher.send_text("alone");
    assert_eq!(publisher.recv_text(), "alone");
    let stats = a.stop();
    assert!(stats.messages_in >= 101, "{stats:?}");
}

#[test]
fn credentials_from_the_url_log_in_and_wrong_ones_keep_the_bus_down_unlogged() {
    let _w = watchdog();
    let server = NatsServer::start_with(Setup {
        auth: Some(("app", "s3cr3t-pw")),
        ..Setup::default()
    });
    let port = server.port();
    let a = wsd_node(&format!("nats://app:s3cr3t-pw@127.0.0.1:{port}"), &[]);
    let b = wsd_node(&format!("nats://app:s3cr3t-pw@127.0.0.1:{port}"), &[]);
    let mut wrong = wsd_node(
        &format!("nats://app:not-the-pw@127.0.0.1:{port}"),
        &["--log-level", "debug"],
    );
    let mut far = Client::connect_path(b.addrs[0], "/auth");
    let _bystander = Client::connect_path(wrong.addrs[0], "/auth");
    wait_subscribed(b.addrs[0], 1);
    let mut publisher = Client::connect_path(a.addrs[0], "/auth");
    wait_subscribed(a.addrs[0], 1);
    publisher.send_text("logged in");
    assert_eq!(far.recv_text(), "logged in");
    let line = wrong.stderr_line_containing("Authorization Violation", PATIENCE);
    assert!(!line.contains("not-the-pw"), "{line}");
    assert_eq!(sample(wrong.addrs[0], "wsd_bus_up"), 0.0);
    for l in wrong.stderr_so_far() {
        assert!(!l.contains("not-the-pw"), "{l}");
    }
}
