//! `wsload rate` against wsd: an open loop close to the asked rate.

mod common;

use common::{n, wsload, TestServer};
use wsd::Mode;

#[test]
fn sends_roughly_the_rate_and_reports_both_latencies() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let run = wsload(&[
        "rate", "-c", "4", "-R", "2000", "-d", "1s", "--warmup", "0s", "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    // The schedule fixes how many messages are due in the window (2000)
    // and an open loop never sends one early: never more (within one
    // tick's slack). It may send fewer: messages still due when the window
    // closes on a descheduled sender are not sent at all. How the schedule
    // paces is checked in simulated time by the unit tests of `Schedule`.
    let sent = n(&v, &["window_sent"]);
    assert!((1..=2100).contains(&sent), "sent {sent} in the window");
    assert_eq!(n(&v, &["sent"]), n(&v, &["received"]));
    assert_eq!(n(&v, &["errors_total"]), 0);
    // Both latencies of every reply that came in the window: from when a
    // message was due, and from when it was sent, which is never earlier.
    // (How many came depends on the CPU the server and wsload got.)
    let received = n(&v, &["window_received"]);
    assert_eq!(n(&v, &["latency", "count"]), received);
    assert_eq!(n(&v, &["uncorrected_latency", "count"]), received);
    for p in ["p50_us", "max_us"] {
        let (corrected, actual) = (
            v["latency"][p].as_f64().unwrap(),
            v["uncorrected_latency"][p].as_f64().unwrap(),
        );
        assert!(corrected >= actual, "{p}: {corrected} < {actual}");
    }
}

#[test]
fn tiny_payloads_keep_both_latencies() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let run = wsload(&[
        "rate", "-c", "3", "-R", "1000", "-d", "500ms", "--warmup", "0s", "-s", "8", "--json", "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(v["params"]["checks"], "content");
    assert_eq!(n(&v, &["sent"]), n(&v, &["received"]));
    assert_eq!(n(&v, &["errors_total"]), 0);
    // Every reply in the window has both latencies, stamp or not.
    let received = n(&v, &["window_received"]);
    assert_eq!(n(&v, &["latency", "count"]), received);
    assert_eq!(n(&v, &["uncorrected_latency", "count"]), received);
}
