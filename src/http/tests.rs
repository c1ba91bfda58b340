//! The HTTP answers' unit tests, and a strict reader of the metrics format.

use super::*;
use crate::stats::DeflateStats;

fn snapshot(stats: &Stats, draining: bool) -> Snapshot<'_> {
    Snapshot {
        stats,
        open_connections: 3,
        rooms: 2,
        mode: "broadcast",
        uptime: Duration::from_millis(12_500),
        draining,
        instance: "node \"7\"",
        tls_reloads: [132, 133],
        auth_reloads: [134, 135],
        reactors: &[2, 1],
        handoff_drops: 0,
        extra: "",
        bus_up: None,
    }
}

/// A parsed answer: status, headers, and what follows the head.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

fn ask_with(method: &str, path: &str, snap: &Snapshot<'_>) -> Answer {
    let mut out = b"earlier output".to_vec();
    let status = respond(&mut out, method, path, snap);
    let out = out.strip_prefix(b"earlier output").unwrap();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(out) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("{other:?}: {:?}", String::from_utf8_lossy(out)),
    };
    assert_eq!(resp.code, Some(status));
    assert_eq!(resp.version, Some(1));
    let answer = Answer {
        status,
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect(),
        body: out[n..].to_vec(),
    };
    assert_eq!(answer.header("Connection"), Some("close"));
    if method != "HEAD" {
        let len: usize = answer.header("Content-Length").unwrap().parse().unwrap();
        assert_eq!(len, answer.body.len());
    }
    answer
}

fn ask(method: &str, path: &str) -> Answer {
    ask_with(method, path, &snapshot(&Stats::default(), false))
}

#[test]
fn healthz_is_ok() {
    let a = ask("GET", "/healthz");
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), "ok\n");
    assert_eq!(a.header("Content-Type"), Some("text/plain; charset=utf-8"));
}

#[test]
fn healthz_is_503_while_draining() {
    let stats = Stats::default();
    let a = ask_with("GET", "/healthz", &snapshot(&stats, true));
    assert_eq!(a.status, 503);
    assert_eq!(a.text(), "draining\n");
}

#[test]
fn root_is_the_page() {
    let a = ask("GET", "/");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(a.header("Cache-Control"), Some("no-store"));
    assert!(a.header("Content-Security-Policy").is_some());
    assert_eq!(a.text(), PAGE);
}

#[test]
fn the_page_is_small_and_self_contained() {
    assert!(PAGE.len() < 8 * 1024, "{} bytes", PAGE.len());
    assert!(PAGE.starts_with("<!doctype html>"));
    for external in [
        "src=",
        "href=",
        "@import",
        "url(",
        "innerHTML",
        "http://",
        "https://",
    ] {
        assert!(!PAGE.contains(external), "page contains {external:?}");
    }
}

#[test]
fn unknown_paths_are_404() {
    for path in [
        "/nope",
        "/healthz/",
        "/metrics.txt",
        "//",
        "/index.html",
        "*",
    ] {
        let a = ask("GET", path);
        assert_eq!(a.status, 404, "{path}");
        assert_eq!(a.text(), "not found\n");
    }
}

#[test]
fn query_strings_are_ignored() {
    assert_eq!(ask("GET", "/?room=/r1&auto=A").status, 200);
    assert_eq!(ask("GET", "/healthz?probe=1").text(), "ok\n");
    assert_eq!(ask("GET", "/metrics?").status, 200);
    assert_eq!(ask("GET", "/nope?x=/healthz").status, 404);
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    for path in ["/", "/healthz", "/metrics", "/nope"] {
        let get = ask("GET", path);
        let head = ask("HEAD", path);
        assert_eq!(head.status, get.status, "{path}");
        assert!(head.body.is_empty(), "{path}");
        assert_eq!(head.header("Content-Length"), get.header("Content-Length"));
        assert_eq!(head.header("Content-Type"), get.header("Content-Type"));
    }
}

#[test]
fn other_methods_are_405_naming_get_and_head() {
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get", "BREW"] {
        for path in ["/", "/healthz", "/nope"] {
            let a = ask(method, path);
            assert_eq!(a.status, 405, "{method} {path}");
            assert_eq!(a.header("Allow"), Some("GET, HEAD"));
            assert_eq!(a.text(), "method not allowed\n");
        }
    }
}

/// Every field of `Stats` set to a distinct value.
fn busy_stats() -> Stats {
    Stats {
        accepted: 101,
        refused_max_connections: 102,
        accept_errors: 103,
        handshakes: 104,
        handshake_failures: [(400, 105), (431, 106)].into(),
        http_responses: [(200, 119), (404, 120)].into(),
        messages_in: 107,
        messages_out: 108,
        bytes_in: 109,
        bytes_out: 110,
        protocol_errors: 111,
        closes: [(1000, 112), (1001, 113), (4000, 124)].into(),
        abnormal_closes: 114,
        close_timeouts: 115,
        idle_timeouts: 121,
        ping_timeouts: 122,
        pings_sent: 123,
        slow_consumer_cutoffs: 116,
        slow_consumer_drops: 117,
        io_errors: 118,
        deflate: DeflateStats {
            context_bytes: 132,
            negotiated: 133,
            takeover_refused: 134,
            messages_inflated: 135,
            messages_compressed: 136,
            messages_plain: 139,
            bytes_before: 137,
            bytes_after: 138,
        },
        tls_handshake_failures: [125, 126, 127, 128, 129, 130, 131],
        auth_denied: [140, 141, 142, 143, 144, 145, 146, 147, 148, 149],
        rate_limited: [150, 151, 152],
        api: {
            let mut api = crate::api::ApiStats::default();
            api.count_request(200);
            api.published = 140;
            api
        },
    }
}

/// One sample line of the text format: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// A strict reader of the text exposition format (0.0.4), enough to
/// hold the output to it: every sample line is `name{labels} value`,
/// every family has one HELP and one TYPE line before its samples.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    use std::collections::HashMap;
    assert!(text.ends_with('\n'), "no final newline");
    let mut help = HashMap::new();
    let mut kind = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap();
            assert!(!text.is_empty(), "{line}");
            assert!(
                help.insert(name.to_string(), text).is_none(),
                "second HELP: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&t), "{line}");
            assert!(help.contains_key(name), "TYPE before HELP: {line}");
            assert!(
                kind.insert(name.to_string(), t).is_none(),
                "second TYPE: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let sample = parse_sample(line);
        let name = &sample.0;
        assert!(name.starts_with("wsd_"), "{line}");
        match kind.get(name.as_str()) {
            Some(&"counter") => assert!(name.ends_with("_total"), "{line}"),
            Some(_) => assert!(!name.ends_with("_total"), "{line}"),
            None => panic!("sample before its TYPE: {line}"),
        }
        samples.push(sample);
    }
    samples
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap();
    let name = &line[..name_end];
    assert!(
        name.chars().enumerate().all(|(i, c)| c == '_'
            || c == ':'
            || c.is_ascii_alphabetic()
            || (i > 0 && c.is_ascii_digit())),
        "bad name: {line}"
    );
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.chars();
        loop {
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert!(
                !key.is_empty() && key.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()),
                "{line}"
            );
            assert_eq!(chars.next(), Some('"'), "{line}");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?}: {line}"),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => panic!("unterminated label value: {line}"),
                }
            }
            labels.push((key, value));
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                other => panic!("{other:?} after a label: {line}"),
            }
        }
        rest = chars.as_str();
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no value: {line}"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value: {line}"));
    (name.to_string(), labels, value)
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && l.iter()
                    .zip(labels)
                    .all(|((k, v), (k2, v2))| k == k2 && v == v2)
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}");
    found[0].2
}

#[test]
fn metrics_are_prometheus_text() {
    let stats = busy_stats();
    let a = ask_with("GET", "/metrics", &snapshot(&stats, false));
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let samples = parse_prometheus(a.text());
    let expect = [
        ("wsd_connections_accepted_total", &[][..], 101.0),
        ("wsd_connections_refused_total", &[], 102.0),
        ("wsd_accept_errors_total", &[], 103.0),
        ("wsd_handshakes_total", &[], 104.0),
        ("wsd_handshake_failures_total", &[("status", "400")], 105.0),
        ("wsd_handshake_failures_total", &[("status", "431")], 106.0),
        ("wsd_messages_received_total", &[], 107.0),
        ("wsd_messages_sent_total", &[], 108.0),
        ("wsd_bytes_received_total", &[], 109.0),
        ("wsd_bytes_sent_total", &[], 110.0),
        ("wsd_protocol_errors_total", &[], 111.0),
        ("wsd_closes_total", &[("code", "1000")], 112.0),
        ("wsd_closes_total", &[("code", "1001")], 113.0),
        ("wsd_abnormal_closes_total", &[], 114.0),
        ("wsd_close_timeouts_total", &[], 115.0),
        ("wsd_idle_timeouts_total", &[], 121.0),
        ("wsd_ping_timeouts_total", &[], 122.0),
        ("wsd_pings_sent_total", &[], 123.0),
        ("wsd_http_responses_total", &[("status", "200")], 119.0),
        ("wsd_http_responses_total", &[("status", "404")], 120.0),
        ("wsd_slow_consumer_cutoffs_total", &[], 116.0),
        ("wsd_slow_consumer_drops_total", &[], 117.0),
        ("wsd_io_errors_total", &[], 118.0),
        ("wsd_deflate_context_bytes", &[], 132.0),
        ("wsd_deflate_negotiated_total", &[], 133.0),
        ("wsd_deflate_takeover_refused_total", &[], 134.0),
        ("wsd_deflate_messages_inflated_total", &[], 135.0),
        ("wsd_deflate_messages_compressed_total", &[], 136.0),
        ("wsd_deflate_messages_plain_total", &[], 139.0),
        ("wsd_deflate_bytes_before_total", &[], 137.0),
        ("wsd_deflate_bytes_after_total", &[], 138.0),
        ("wsd_connections_open", &[], 3.0),
        ("wsd_rooms", &[], 2.0),
        ("wsd_uptime_seconds", &[], 12.5),
        ("wsd_draining", &[], 0.0),
        ("wsd_mode", &[("mode", "broadcast")], 1.0),
        ("wsd_closes_total", &[("code", "4000")], 124.0),
        ("wsd_reactor_connections", &[("reactor", "0")], 2.0),
        ("wsd_reactor_connections", &[("reactor", "1")], 1.0),
        ("wsd_handoff_drops_total", &[], 0.0),
        (
            "wsd_tls_handshake_failures_total",
            &[("reason", "plain_http")],
            125.0,
        ),
        (
            "wsd_tls_handshake_failures_total",
            &[("reason", "not_tls")],
            126.0,
        ),
        (
            "wsd_tls_handshake_failures_total",
            &[("reason", "protocol")],
            127.0,
        ),
        (
            "wsd_tls_handshake_failures_total",
            &[("reason", "incompatible")],
            128.0,
        ),
        (
            "wsd_tls_handshake_failures_total",
            &[("reason", "alert")],
            129.0,
        ),
        (
            "wsd_tls_handshake_failures_total",
            &[("reason", "eof")],
            130.0,
        ),
        (
            "wsd_tls_handshake_failures_total",
            &[("reason", "timeout")],
            131.0,
        ),
        ("wsd_auth_denied_total", &[("reason", "missing")], 140.0),
        ("wsd_auth_denied_total", &[("reason", "malformed")], 141.0),
        (
            "wsd_auth_denied_total",
            &[("reason", "bad_signature")],
            142.0,
        ),
        (
            "wsd_auth_denied_total",
            &[("reason", "algorithm_not_allowed")],
            143.0,
        ),
        ("wsd_auth_denied_total", &[("reason", "expired")], 144.0),
        (
            "wsd_auth_denied_total",
            &[("reason", "not_yet_valid")],
            145.0,
        ),
        (
            "wsd_auth_denied_total",
            &[("reason", "wrong_audience")],
            146.0,
        ),
        (
            "wsd_auth_denied_total",
            &[("reason", "wrong_issuer")],
            147.0,
        ),
        ("wsd_auth_denied_total", &[("reason", "no_expiry")], 148.0),
        ("wsd_auth_denied_total", &[("reason", "forbidden")], 149.0),
        ("wsd_rate_limited_total", &[("limit", "messages")], 150.0),
        ("wsd_rate_limited_total", &[("limit", "bytes")], 151.0),
        (
            "wsd_rate_limited_total",
            &[("limit", "connections_per_ip")],
            152.0,
        ),
        ("wsd_tls_reloads_total", &[("result", "ok")], 132.0),
        ("wsd_tls_reloads_total", &[("result", "error")], 133.0),
        ("wsd_auth_reloads_total", &[("result", "ok")], 134.0),
        ("wsd_auth_reloads_total", &[("result", "error")], 135.0),
        (
            "wsd_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("instance", "node \"7\""),
            ],
            1.0,
        ),
    ];
    for (name, labels, value) in expect {
        assert_eq!(value_of(&samples, name, labels), value, "{name} {labels:?}");
    }
    // The common keys that did not happen are there at 0.
    let mut zeros = 0;
    for (name, label, common) in labelled_families() {
        for key in common {
            let key = key.to_string();
            let counted = expect
                .iter()
                .any(|(n, l, _)| *n == name && l.first() == Some(&(label, key.as_str())));
            if !counted {
                assert_eq!(value_of(&samples, name, &[(label, &key)]), 0.0);
                zeros += 1;
            }
        }
    }
    // The API's family: every code (and "other") from 0.
    let api = samples
        .iter()
        .filter(|(n, _, _)| n.starts_with("wsd_api_"))
        .count();
    assert_eq!(api, crate::api::stats::CODES.len() + 2);
    assert_eq!(
        value_of(&samples, "wsd_api_requests_total", &[("code", "200")]),
        1.0
    );
    assert_eq!(
        value_of(&samples, "wsd_api_requests_total", &[("code", "401")]),
        0.0
    );
    assert_eq!(value_of(&samples, "wsd_api_published_total", &[]), 140.0);
    assert_eq!(
        samples.len(),
        expect.len() + zeros + api,
        "unexpected samples: {samples:?}"
    );
}

/// The labelled families: name, label, and the keys always reported.
fn labelled_families() -> [(&'static str, &'static str, &'static [u16]); 3] {
    [
        ("wsd_handshake_failures_total", "status", &COMMON_REFUSALS),
        ("wsd_http_responses_total", "status", &COMMON_HTTP_STATUSES),
        ("wsd_closes_total", "code", &COMMON_CLOSE_CODES),
    ]
}

#[test]
fn metrics_of_a_fresh_server_report_the_common_keys_at_zero() {
    let a = ask("GET", "/metrics");
    let samples = parse_prometheus(a.text());
    for (name, label, common) in labelled_families() {
        let keys: Vec<u16> = samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, v)| {
                assert_eq!(*v, 0.0, "{name} {l:?}");
                assert_eq!(l[0].0, label);
                l[0].1.parse().unwrap()
            })
            .collect();
        assert_eq!(keys, common, "{name}: the common keys, in order");
    }
    // Access control's refusals have their series before the first one.
    for status in ["401", "403", "429"] {
        let labels = [("status", status)];
        assert_eq!(
            value_of(&samples, "wsd_handshake_failures_total", &labels),
            0.0
        );
    }
    assert_eq!(
        value_of(&samples, "wsd_connections_accepted_total", &[]),
        0.0
    );
}

#[test]
fn labelled_samples_merge_counts_with_the_common_keys_in_order() {
    let stats = Stats {
        closes: [(999, 1), (1001, 2), (1004, 3), (4999, 4)].into(),
        ..Stats::default()
    };
    let a = ask_with("GET", "/metrics", &snapshot(&stats, false));
    let closes: Vec<(u16, f64)> = parse_prometheus(a.text())
        .into_iter()
        .filter(|(n, _, _)| n == "wsd_closes_total")
        .map(|(_, l, v)| (l[0].1.parse().unwrap(), v))
        .collect();
    let expect: Vec<(u16, f64)> = vec![
        (999, 1.0),
        (1000, 0.0),
        (1001, 2.0),
        (1002, 0.0),
        (1003, 0.0),
        (1004, 3.0),
        (1005, 0.0),
        (1007, 0.0),
        (1008, 0.0),
        (1009, 0.0),
        (1011, 0.0),
        (4999, 4.0),
    ];
    assert_eq!(closes, expect);
}

#[test]
fn draining_shows_in_metrics() {
    let stats = Stats::default();
    let a = ask_with("GET", "/metrics", &snapshot(&stats, true));
    assert_eq!(
        value_of(&parse_prometheus(a.text()), "wsd_draining", &[]),
        1.0
    );
}

#[test]
fn label_values_are_escaped() {
    let mut w = String::new();
    escape_label(&mut w, "a\\b\"c\nd").unwrap();
    assert_eq!(w, r#"a\\b\"c\nd"#);
    let line = format!("wsd_x{{v=\"{w}\"}} 1");
    assert_eq!(
        parse_sample(&line).1,
        [("v".to_string(), "a\\b\"c\nd".to_string())]
    );
}

#[test]
fn help_text_is_escaped() {
    let mut w = String::new();
    family(&mut w, "wsd_x", Kind::Gauge, "one\\two\nthree").unwrap();
    assert_eq!(w, "# HELP wsd_x one\\\\two\\nthree\n# TYPE wsd_x gauge\n");
}
