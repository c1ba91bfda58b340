//! `wsload churn` against wsd: connections keep opening, echoing and
//! closing, cleanly and abruptly, and every echo is checked.

mod common;

use common::{corrupting_echo, fake_server, n, wsload, TestServer};
use wsd::Mode;

#[test]
fn churns_cleanly_and_abruptly_without_errors() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let run = wsload(&[
        "churn",
        "-c",
        "16",
        "-t",
        "2",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--messages",
        "6",
        "--depth",
        "3",
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let c = &v["churn"];
    assert!(n(c, &["opened"]) > 16, "{c}");
    assert!(n(c, &["closed_clean"]) > 0, "{c}");
    assert!(n(c, &["closed_abrupt"]) > 0, "{c}");
    assert!(n(c, &["abrupt_mid_frame"]) > 0, "{c}");
    assert_eq!(n(&v, &["errors_total"]), 0, "{v}");
    assert_eq!(n(&v, &["connections", "failed"]), 0, "{v}");
    for k in [
        "lost",
        "mismatches",
        "unexpected_closes",
        "ended_unexpectedly",
    ] {
        assert_eq!(n(c, &[k]), 0, "{k}: {c}");
    }
    // Every clean connection got back all it sent: its six messages, but
    // for at most one connection per slot closed when the run ended
    // before it had sent them all.
    assert_eq!(n(c, &["clean_sent"]), n(c, &["clean_received"]), "{c}");
    let clean = n(c, &["closed_clean"]);
    assert!(n(c, &["clean_sent"]) <= 6 * clean, "{c}");
    assert!(n(c, &["clean_sent"]) >= 6 * clean.saturating_sub(16), "{c}");
    // Whatever was neither echoed nor dropped with its connection was
    // still in flight at the end of the run, and drained.
    assert!(n(&v, &["sent"]) >= n(&v, &["received"]) + n(c, &["abandoned"]));
    assert!(v["churn"]["handshakes_per_s"]
        .as_f64()
        .is_some_and(|r| r > 0.0));
}

#[test]
fn no_abrupt_ends_with_abrupt_zero() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let run = wsload(&[
        "churn", "-c", "4", "-d", "300ms", "--warmup", "0s", "--abrupt", "0", "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let c = &v["churn"];
    // How many connections a 300 ms window gets through depends on how
    // much CPU wsload got: only counts that do not are asserted. Each
    // connection that ended did so cleanly, with all its ten echoes.
    assert!(n(c, &["opened"]) >= 4, "{c}");
    for k in [
        "closed_abrupt",
        "abrupt_mid_frame",
        "abrupt_reset",
        "abandoned",
        "ended_unexpectedly",
    ] {
        assert_eq!(n(c, &[k]), 0, "{k}: {c}");
    }
    assert_eq!(n(c, &["clean_sent"]), 10 * n(c, &["closed_clean"]), "{c}");
    assert_eq!(n(c, &["clean_sent"]), n(c, &["clean_received"]), "{c}");
}

#[test]
fn a_corrupted_echo_fails_the_churn() {
    let url = fake_server(corrupting_echo);
    let run = wsload(&[
        "churn", "-c", "2", "-d", "300ms", "--warmup", "0s", "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert!(n(&v, &["churn", "mismatches"]) > 0);
    assert_eq!(v["failed"], true);
    assert!(run.stderr.contains("payload mismatch"), "{}", run.stderr);
}

#[test]
fn churns_tiny_payloads_without_errors() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let run = wsload(&[
        "churn", "-c", "6", "-d", "500ms", "--warmup", "0s", "--depth", "2", "-s", "3", "--json",
        "-", &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let c = &v["churn"];
    assert!(n(c, &["closed_clean"]) > 0, "{c}");
    assert!(n(c, &["closed_abrupt"]) > 0, "{c}");
    assert_eq!(n(&v, &["errors_total"]), 0, "{v}");
    assert_eq!(n(c, &["clean_sent"]), n(c, &["clean_received"]), "{c}");
}
