//! `wsload conns` against wsd: N connections open, idle, and close.

mod common;

use common::{n, wsload, TestServer};
use wsd::Mode;

#[test]
fn opens_every_connection() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let run = wsload(&[
        "conns",
        "-c",
        "300",
        "-d",
        "500ms",
        "--source-addrs",
        "3",
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
    for t in v["targets"].as_array().expect("targets") {
        assert!(t["median"]["handshakes_per_s"]
            .as_f64()
            .is_some_and(|r| r > 0.0));
        assert!(t["median"].get("msgs_per_s").is_none(), "{t}");
    }
    assert!(run.stderr.contains("x hs/s"), "{}", run.stderr);
}
