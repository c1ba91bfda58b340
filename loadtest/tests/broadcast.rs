//! `wsload broadcast` against wsd: every subscriber gets every message once.

mod common;

use common::{n, wsload, TestServer};
use wsd::Mode;

fn check_deliveries(to_sender: bool) {
    let server = TestServer::start(Mode::Broadcast, to_sender);
    let url = server.url();
    let run = wsload(&[
        "broadcast",
        "-c",
        "6",
        "--publishers",
        "2",
        "-R",
        "500",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "-t",
        "2",
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let b = &v["broadcast"];
    let published = n(b, &["published"]);
    assert!(published > 0);
    assert_eq!(n(b, &["deliveries"]), published * 6);
    assert_eq!(n(b, &["expected_deliveries"]), published * 6);
    assert_eq!(n(b, &["lost"]), 0);
    assert_eq!(n(b, &["duplicated"]), 0);
    assert_eq!(n(b, &["out_of_order"]), 0);
    assert_eq!(n(&v, &["errors_total"]), 0);
    // Each publisher gets the other's messages, and its own unless excluded.
    let own = if to_sender { published } else { 0 };
    assert_eq!(n(b, &["publisher_received"]), published + own);
}

#[test]
fn every_subscriber_gets_every_message_once() {
    check_deliveries(true);
}

#[test]
fn publishers_excluded_from_their_own_messages_are_handled() {
    check_deliveries(false);
}

#[test]
fn the_server_cost_of_a_broadcast_is_per_delivery() {
    let server = TestServer::start(Mode::Broadcast, true);
    let url = server.url();
    // The in-process server shares our pid.
    let pid = std::process::id().to_string();
    let run = wsload(&[
        "broadcast",
        "-c",
        "4",
        "-R",
        "500",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "--server-pid",
        &pid,
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert!(v["server"]["cpu_us_per_delivery"].as_f64().is_some(), "{v}");
    assert!(v["server"].get("cpu_us_per_msg").is_none(), "{v}");
    assert!(!run.stderr.contains("µs/msg"), "{}", run.stderr);
    // The CPU time is counted in clock ticks (10 ms): on a busy machine
    // the server can get less than one in the window, and with no CPU
    // reading there is no cost per delivery to print.
    let cpu = v["server"]["cpu_s"].as_f64().expect("cpu_s");
    for part in [" µs/delivery, ", " deliveries per CPU-second"] {
        assert_eq!(
            run.stderr.contains(part),
            cpu > 0.0,
            "{part:?}, cpu_s {cpu}: {}",
            run.stderr
        );
    }
}

#[test]
fn payloads_too_small_for_a_stamp_are_checked_and_counted() {
    let server = TestServer::start(Mode::Broadcast, false);
    let url = server.url();
    for size in ["0", "1", "16"] {
        let run = wsload(&[
            "broadcast",
            "-c",
            "5",
            "--publishers",
            "2",
            "-R",
            "400",
            "-d",
            "500ms",
            "--warmup",
            "0s",
            "-s",
            size,
            "-t",
            "2",
            "--json",
            "-",
            &url,
        ]);
        assert_eq!(run.code, Some(0), "-s {size}: stderr:\n{}", run.stderr);
        let v = run.json();
        assert_eq!(v["params"]["checks"], "content");
        let b = &v["broadcast"];
        let published = n(b, &["published"]);
        assert!(published > 0);
        assert_eq!(n(b, &["deliveries"]), published * 5, "-s {size}");
        assert_eq!(n(b, &["lost"]), 0);
        assert_eq!(n(b, &["duplicated"]), 0);
        assert_eq!(n(b, &["publisher_received"]), published);
        assert_eq!(n(&v, &["errors_total"]), 0);
        assert!(
            run.stderr.contains("no order check, no latency"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn subscribers_spread_over_nodes_and_loss_is_measured_across_them() {
    // Two servers with no bus between them: the subscribers on the second
    // never see what is published on the first.
    let a = TestServer::start(Mode::Broadcast, true);
    let b = TestServer::start(Mode::Broadcast, true);
    let (ua, ub) = (a.url(), b.url());
    let run = wsload(&[
        "broadcast",
        "-c",
        "5",
        "-R",
        "400",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "-t",
        "2",
        "--json",
        "-",
        &ua,
        &ub,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let v = run.json();
    let bc = &v["broadcast"];
    let published = n(bc, &["published"]);
    assert!(published > 0);
    let nodes = bc["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 2);
    // Subscribers 0, 2, 4 on the first node, 1, 3 on the second.
    assert_eq!(nodes[0]["target"], ua.as_str());
    assert_eq!(n(&nodes[0], &["subscribers"]), 3);
    assert_eq!(n(&nodes[0], &["deliveries"]), 3 * published);
    assert_eq!(n(&nodes[0], &["lost"]), 0);
    assert!(n(&nodes[0], &["latency", "count"]) > 0);
    assert_eq!(n(&nodes[1], &["subscribers"]), 2);
    assert_eq!(n(&nodes[1], &["deliveries"]), 0);
    assert_eq!(n(&nodes[1], &["lost"]), 2 * published);
    assert_eq!(n(bc, &["lost"]), 2 * published);
    assert!(
        run.stderr.contains("(publishers): 3 subscribers"),
        "{}",
        run.stderr
    );
}

#[test]
fn nodes_that_share_a_room_lose_nothing() {
    let server = TestServer::start(Mode::Broadcast, true);
    let url = server.url();
    // Both nodes are this process: one --server-pid per URL, summed.
    let pid = std::process::id();
    let p = pid.to_string();
    let run = wsload(&[
        "broadcast",
        "-c",
        "4",
        "--publishers",
        "2",
        "-R",
        "400",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "--server-pid",
        &p,
        "--server-pid",
        &p,
        "--json",
        "-",
        &url,
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let bc = &v["broadcast"];
    let published = n(bc, &["published"]);
    assert_eq!(n(bc, &["deliveries"]), 4 * published);
    for node in bc["nodes"].as_array().expect("nodes") {
        assert_eq!(n(node, &["subscribers"]), 2);
        assert_eq!(n(node, &["deliveries"]), 2 * published);
        assert!(n(node, &["latency", "count"]) > 0);
    }
    assert_eq!(v["server"]["pids"], serde_json::json!([pid, pid]));
    assert!(
        run.stderr.contains(&format!("pids {pid}, {pid}:")),
        "{}",
        run.stderr
    );
}

#[test]
fn compare_counts_broadcast_deliveries_not_messages() {
    let a = TestServer::start(Mode::Broadcast, true);
    let b = TestServer::start(Mode::Broadcast, true);
    let (ua, ub) = (a.url(), b.url());
    let run = wsload(&[
        "compare",
        "broadcast",
        "--rounds",
        "1",
        "-c",
        "3",
        "-R",
        "300",
        "-d",
        "300ms",
        "--warmup",
        "0s",
        "--json",
        "-",
        &ua,
        &ub,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let s = &v["scenarios"][0];
    assert_eq!(s["mode"], "broadcast");
    for server in s["servers"].as_array().expect("servers") {
        for r in server["rounds"].as_array().expect("rounds") {
            let rate = r["figures"]["rate"].as_f64().expect("rate");
            assert!(rate > 0.0, "{r}");
            assert_eq!(
                Some(rate),
                r["run"]["broadcast"]["deliveries_per_s"].as_f64()
            );
        }
    }
    assert!(run.stderr.contains("dlv/s"), "{}", run.stderr);
    assert!(run.stderr.contains("CPU µs/dlv"), "{}", run.stderr);
}
