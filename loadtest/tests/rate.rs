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
    let sent = n(&v, &["window_sent"]);
    // Counts, not times: the schedule fixes how many messages fall in the
    // window, whatever the machine's load (within one tick's slack).
    assert!((1900..=2100).contains(&sent), "sent {sent} in the window");
    assert_eq!(n(&v, &["sent"]), n(&v, &["received"]));
    assert_eq!(n(&v, &["errors_total"]), 0);
    assert!(n(&v, &["latency", "count"]) > 0);
    assert!(n(&v, &["uncorrected_latency", "count"]) > 0);
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
    assert!(n(&v, &["latency", "count"]) > 0);
    assert!(n(&v, &["uncorrected_latency", "count"]) > 0);
}
