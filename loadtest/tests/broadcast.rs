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
