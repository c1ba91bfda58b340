//! `--deflate` against a real wsd: compressed both ways, every echo and
//! delivery still checked byte for byte; a server that declines is counted;
//! a bad extension answer fails the connection.

mod common;

use std::net::TcpStream;

use common::{accept_upgrade, fake_server, n, read_key, wsload, TestServer};
use serde_json::Value;
use wsd::{Config, DeflateConfig, Mode};

fn wsd(mode: Mode, deflate: Option<DeflateConfig>) -> TestServer {
    TestServer::start_with(Config {
        mode,
        deflate,
        ..Config::default()
    })
}

fn ratio(v: &Value, key: &str) -> f64 {
    v["wire"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no wire.{key} in {v}"))
}

/// A short echo run's JSON, checked to have run clean.
fn echo(url: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "echo", "-c", "2", "-d", "500ms", "--warmup", "0s", "-s", "1024", "--json", "-",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let run = wsload(&args);
    let v = run.json();
    assert!(n(&v, &["received"]) > 0, "{}", run.stderr);
    v
}

#[test]
fn json_payloads_cross_the_wire_compressed_both_ways() {
    for context_takeover in [false, true] {
        let server = wsd(
            Mode::Echo,
            Some(DeflateConfig {
                context_takeover,
                ..DeflateConfig::default()
            }),
        );
        for text in [false, true] {
            let mut extra = vec!["--deflate", "--payload", "json"];
            if text {
                extra.push("--text");
            }
            let v = echo(&server.url(), &extra);
            assert_eq!(v["errors_total"], 0, "{v}");
            assert_eq!(v["wire"]["deflate"], true);
            assert_eq!(n(&v, &["wire", "deflate_not_negotiated"]), 0);
            // Each way, well under the message bytes.
            assert!(ratio(&v, "ratio_sent") < 0.7, "{v}");
            assert!(ratio(&v, "ratio_received") < 0.7, "{v}");
            assert!(ratio(&v, "ratio") < 1.0, "{v}");
            assert!(n(&v, &["wire", "message_bytes_received"]) >= 1024 * n(&v, &["received"]));
        }
    }
}

#[test]
fn random_payloads_do_not_shrink_and_plain_runs_report_wire_bytes_too() {
    let server = wsd(Mode::Echo, Some(DeflateConfig::default()));
    let v = echo(&server.url(), &["--deflate", "--payload", "random"]);
    assert_eq!(v["errors_total"], 0, "{v}");
    assert!(ratio(&v, "ratio") > 0.99, "{v}");
    let v = echo(&server.url(), &["--payload", "json"]);
    assert_eq!(v["errors_total"], 0, "{v}");
    assert_eq!(v["wire"]["deflate"], false);
    // Plain: the payload plus frame headers.
    assert!(ratio(&v, "ratio") > 1.0, "{v}");
    assert!(ratio(&v, "ratio") < 1.02, "{v}");
}

#[test]
fn a_server_without_deflate_is_counted_as_not_negotiated() {
    let server = wsd(Mode::Echo, None);
    let run = wsload(&[
        "echo",
        "-c",
        "3",
        "-d",
        "300ms",
        "--warmup",
        "0s",
        "--deflate",
        "--json",
        "-",
        &server.url(),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["wire", "deflate_not_negotiated"]), 3, "{v}");
    assert_eq!(v["failed"], true);
    // The connections went on, uncompressed, and their echoes checked.
    assert!(n(&v, &["received"]) > 0);
    assert_eq!(n(&v, &["mismatches"]), 0);
    assert!(
        run.stderr
            .contains("deflate not negotiated on 3 connections"),
        "{}",
        run.stderr
    );
}

#[test]
fn broadcast_deliveries_arrive_compressed_and_checked() {
    let server = wsd(Mode::Broadcast, Some(DeflateConfig::default()));
    let run = wsload(&[
        "broadcast",
        "-c",
        "20",
        "-R",
        "200",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "-s",
        "1024",
        "--payload",
        "json",
        "--deflate",
        "--json",
        "-",
        &server.url(),
    ]);
    let v = run.json();
    assert_eq!(v["errors_total"], 0, "{v}\n{}", run.stderr);
    assert!(n(&v, &["broadcast", "deliveries"]) > 0);
    assert_eq!(n(&v, &["broadcast", "lost"]), 0);
    assert!(ratio(&v, "ratio_received") < 0.7, "{v}");
}

/// Agrees to permessage-deflate with a window no peer may ask for.
fn bad_window(mut s: TcpStream) {
    if let Some(key) = read_key(&mut s) {
        accept_upgrade(
            &mut s,
            &key,
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n",
        );
        let _ = std::io::Read::read(&mut s, &mut [0u8; 64]);
    }
}

/// Agrees to permessage-deflate whether or not it was offered.
fn unasked(mut s: TcpStream) {
    if let Some(key) = read_key(&mut s) {
        accept_upgrade(
            &mut s,
            &key,
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        );
        let _ = std::io::Read::read(&mut s, &mut [0u8; 64]);
    }
}

#[test]
fn a_bad_or_unasked_extension_answer_fails_the_connection() {
    for (serve, deflate) in [(bad_window as fn(TcpStream), true), (unasked, false)] {
        let url = fake_server(serve);
        let mut args = vec![
            "echo", "-c", "2", "-d", "300ms", "--warmup", "0s", "--json", "-",
        ];
        if deflate {
            args.push("--deflate");
        }
        args.push(&url);
        let run = wsload(&args);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        let v = run.json();
        assert_eq!(n(&v, &["connections", "failed"]), 2, "{v}");
        assert_eq!(
            n(&v, &["errors", "extension answer rejected", "count"]),
            2,
            "{v}"
        );
    }
}
