//! `wsload broadcast --publish-url`: publishers POST to a publish API,
//! subscribers listen over WebSocket. Against a fake API that shares no
//! code with wsload (tests/common/api.rs).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::api::FakeApi;
use common::{n, wsload, Run};

/// The key the fake API wants; it must never show in wsload's output.
const KEY: &str = "k3y-0f-the-publish-api-7Qz";

/// Writes `key` (with the trailing newline an editor leaves) to a file of
/// its own.
fn key_file(name: &str, key: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("wsload-{name}-{}.key", std::process::id()));
    std::fs::write(&path, format!("{key}\n")).expect("write the key file");
    path
}

/// Runs a publish-API broadcast of `extra` flags against `api`.
fn run(api: &FakeApi, key: &std::path::Path, extra: &[&str]) -> Run {
    let publish = format!("http://{}", api.addr);
    let url = format!("ws://{}/chat", api.addr);
    let key = key.to_str().expect("utf-8 path");
    let mut args = vec![
        "broadcast",
        "--warmup",
        "0s",
        "--publish-url",
        &publish,
        "--api-key",
        key,
        "--json",
        "-",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    wsload(&args)
}

fn assert_no_key(run: &Run) {
    assert!(!run.stdout.contains(KEY), "the key in stdout");
    assert!(!run.stderr.contains(KEY), "the key in stderr");
}

#[test]
fn posted_messages_reach_every_subscriber_in_order_over_one_connection_each() {
    let api = FakeApi::start("/chat", KEY);
    let key = key_file("good", KEY);
    let r = run(
        &api,
        &key,
        &[
            "-c",
            "5",
            "--publishers",
            "3",
            "-R",
            "400",
            "-d",
            "1s",
            "-t",
            "2",
        ],
    );
    let _ = std::fs::remove_file(&key);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let v = r.json();
    let b = &v["broadcast"];
    let published = n(b, &["published"]);
    assert!(published > 100, "{v}");
    assert_eq!(n(b, &["deliveries"]), published * 5);
    assert_eq!(n(b, &["lost"]), 0);
    assert_eq!(n(b, &["duplicated"]), 0);
    assert_eq!(n(b, &["out_of_order"]), 0);
    assert_eq!(n(&v, &["errors_total"]), 0, "{v}");
    assert_eq!(n(b, &["api", "statuses", "200"]), published);
    assert_eq!(n(b, &["api", "answers"]), published);
    assert!(n(b, &["api", "latency", "count"]) > 0, "{v}");
    // Fan-out latency is measured from the POST, through the stamp.
    assert!(n(&v, &["latency", "count"]) > 0, "{v}");
    assert_eq!(v["params"]["publish_url"], format!("http://{}", api.addr));
    assert_eq!(v["params"]["api_key"], true);
    // Keep-alive: one TCP connection per publisher, every request on it.
    assert_eq!(api.seen.api_conns.load(Ordering::Relaxed), 3);
    assert_eq!(api.seen.published.load(Ordering::Relaxed) as u64, published);
    assert_eq!(api.seen.wrong_paths.load(Ordering::Relaxed), 0);
    assert_eq!(api.seen.wrong_types.load(Ordering::Relaxed), 0);
    assert!(
        r.stderr.contains("publish API  POST http://"),
        "{}",
        r.stderr
    );
    assert_no_key(&r);
}

#[test]
fn text_bodies_go_as_text_frames_small_or_stamped() {
    let api = FakeApi::start("/chat", KEY);
    let key = key_file("text", KEY);
    for size in ["16", "100"] {
        let r = run(
            &api,
            &key,
            &["-c", "3", "-R", "300", "-d", "500ms", "--text", "-s", size],
        );
        assert_eq!(r.code, Some(0), "-s {size}, stderr:\n{}", r.stderr);
        let v = r.json();
        let published = n(&v["broadcast"], &["published"]);
        assert!(published > 0);
        assert_eq!(n(&v["broadcast"], &["deliveries"]), published * 3, "{v}");
        assert_eq!(n(&v, &["mismatches"]), 0, "{v}");
    }
    let _ = std::fs::remove_file(&key);
    assert_eq!(api.seen.wrong_types.load(Ordering::Relaxed), 0);
}

#[test]
fn a_wrong_key_is_counted_by_status_and_fails_the_run() {
    let api = FakeApi::start("/chat", KEY);
    let wrong = key_file("wrong", "not-the-key");
    let r = run(
        &api,
        &wrong,
        &[
            "-c",
            "2",
            "--publishers",
            "2",
            "-R",
            "200",
            "-d",
            "500ms",
            "--grace",
            "200ms",
        ],
    );
    let _ = std::fs::remove_file(&wrong);
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    let v = r.json();
    let published = n(&v["broadcast"], &["published"]);
    assert!(published > 0);
    let refused = n(&v["broadcast"], &["api", "statuses", "401"]);
    assert_eq!(refused, published, "{v}");
    assert_eq!(n(&v["broadcast"], &["api", "refused"]), refused);
    assert_eq!(
        n(&v, &["errors", "publish API status 401", "count"]),
        refused
    );
    assert_eq!(v["failed"], true);
    assert!(
        r.stderr
            .contains("publish API status 401: HTTP/1.1 401 Unauthorized"),
        "{}",
        r.stderr
    );
    // Still keep-alive: a refusal does not cost a connection.
    assert_eq!(api.seen.api_conns.load(Ordering::Relaxed), 2);
    assert!(!r.stdout.contains("not-the-key") && !r.stderr.contains("not-the-key"));
}

#[test]
fn the_key_file_is_checked_before_any_connection() {
    let bad = key_file("spaced", "two words");
    let api = FakeApi::start("/chat", KEY);
    let r = run(&api, &bad, &["-d", "100ms"]);
    let _ = std::fs::remove_file(&bad);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(!r.stderr.contains("two words"), "{}", r.stderr);
    assert_eq!(api.seen.api_conns.load(Ordering::Relaxed), 0);
}

#[test]
fn https_publishers_use_the_tls_settings_of_wss() {
    let api = FakeApi::start("/chat", KEY);
    let key = key_file("tls", KEY);
    let publish = format!("https://{}", api.tls_addr);
    let url = format!("ws://{}/chat", api.addr);
    let key_path = key.to_str().expect("utf-8 path");
    let base = [
        "broadcast",
        "-c",
        "2",
        "--publishers",
        "2",
        "-R",
        "200",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "--grace",
        "300ms",
        "--publish-url",
        &publish,
        "--api-key",
        key_path,
        "--json",
        "-",
    ];
    // The certificate is self-signed: refused unless --insecure.
    let refused = wsload(&[&base[..], &[url.as_str()]].concat());
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(n(&refused.json(), &["errors", "TLS failure", "count"]) > 0);
    let r = wsload(&[&base[..], &["--insecure", url.as_str()]].concat());
    let _ = std::fs::remove_file(&key);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let v = r.json();
    let published = n(&v["broadcast"], &["published"]);
    assert!(published > 0);
    assert_eq!(n(&v["broadcast"], &["deliveries"]), published * 2);
    assert_eq!(n(&v["broadcast"], &["api", "statuses", "200"]), published);
    assert_no_key(&r);
}

#[test]
fn publishers_waiting_for_slow_answers_are_reported_behind_the_rate() {
    // 5 ms an answer: one publisher manages about 200 of the 500 due.
    let api = FakeApi::start_with_delay("/chat", KEY, Duration::from_millis(5));
    let key = key_file("slow", KEY);
    let r = run(&api, &key, &["-c", "2", "-R", "1000", "-d", "500ms"]);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let v = r.json();
    let published = n(&v["broadcast"], &["published"]);
    assert_eq!(n(&v["broadcast"], &["due"]), 500);
    assert!(published < 300, "{v}");
    assert!(
        r.stderr.contains("the publishers fell behind -R")
            && r.stderr.contains("more --publishers"),
        "{}",
        r.stderr
    );
    // Enough publishers keep the rate, and the warning goes.
    let r = run(
        &api,
        &key,
        &["-c", "2", "--publishers", "16", "-R", "1000", "-d", "500ms"],
    );
    let _ = std::fs::remove_file(&key);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    assert!(
        n(&r.json()["broadcast"], &["published"]) >= 475,
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("fell behind"), "{}", r.stderr);
}
