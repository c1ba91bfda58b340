//! `wsload conns` against wsd: N connections open, idle, and close.

mod common;

use common::{n, wsload, TestServer};
use wsd::Mode;

#[test]
fn opens_every_connection() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let hgrm = std::env::temp_dir().join(format!("wsload-conns-{}.hgrm", std::process::id()));
    let run = wsload(&[
        "conns",
        "-c",
        "300",
        "-d",
        "500ms",
        "--source-addrs",
        "3",
        "--hgrm",
        hgrm.to_str().expect("utf-8 path"),
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["connections", "opened"]), 300);
    assert_eq!(n(&v, &["connections", "failed"]), 0);
    assert_eq!(n(&v, &["handshake_latency", "count"]), 300);
    assert!(v["connections"]["handshakes_per_s"]
        .as_f64()
        .is_some_and(|r| r > 0.0));
    // Idle connections have no warm-up: the report does not speak of one.
    assert!(
        run.stderr.contains("300 connections, 1 thread, held"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("warm-up"), "{}", run.stderr);
    // Their latency table is the handshakes'.
    let table = std::fs::read_to_string(&hgrm).expect("hgrm written");
    let _ = std::fs::remove_file(&hgrm);
    assert!(table.contains("Total count    =          300]"), "{table}");
    assert!(v["params"].get("warmup_s").is_none(), "{v}");
}

#[test]
fn compare_of_idle_connections_reports_handshakes_not_messages() {
    let a = TestServer::start(Mode::Echo, true);
    let b = TestServer::start(Mode::Echo, true);
    let (ua, ub) = (a.url(), b.url());
    let run = wsload(&[
        "compare", "conns", "-c", "20", "-d", "200ms", "--rounds", "1", "--json", "-", &ua, &ub,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    for server in v["scenarios"][0]["servers"].as_array().expect("servers") {
        for r in server["rounds"].as_array().expect("rounds") {
            let rate = r["figures"]["rate"].as_f64().expect("rate");
            assert!(rate > 0.0, "{r}");
            assert_eq!(
                Some(rate),
                r["run"]["connections"]["handshakes_per_s"].as_f64()
            );
        }
    }
    assert!(run.stderr.contains("hs/s"), "{}", run.stderr);
}
