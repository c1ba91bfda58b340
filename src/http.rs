//! Plain HTTP beside WebSocket on the same port: `GET /healthz`,
//! `GET /metrics` (Prometheus text format 0.0.4), and `GET /`, a small page
//! that talks to this server over WebSocket.
//!
//! Sans-IO like [`crate::proto`]: the reactor parses the request head, hands
//! the method and target here with a [`Snapshot`] of the server, and writes
//! the bytes [`respond`] appends. There is no keep-alive: every answer says
//! `Connection: close` and carries a `Content-Length`, so one request is one
//! connection.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::net::stats::DeflateStats;
use crate::{Mode, Stats};

/// The page served at `/`: self-contained, no external resources.
const PAGE: &str = include_str!("page.html");

/// The page's own headers. Its policy: its inline script and style, and
/// WebSocket connections; nothing else (no other origins, no form posting
/// anywhere, no framing).
const PAGE_HEADERS: &str = "Content-Security-Policy: default-src 'none'; \
    script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src ws: wss:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n";

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
/// The Prometheus text exposition format, version 0.0.4.
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the HTTP endpoints can see of the server.
pub struct Snapshot<'a> {
    /// The server's counters.
    pub stats: &'a Stats,
    /// Connections held, in any phase.
    pub open_connections: usize,
    /// Broadcast rooms with members (0 in echo mode).
    pub rooms: usize,
    /// Echo or broadcast.
    pub mode: Mode,
    /// Time since the server started.
    pub uptime: Duration,
    /// A graceful shutdown is in progress.
    pub draining: bool,
}

/// Answers a plain (non-upgrade) HTTP request for `path` (the request
/// target, may carry a query string) with a complete HTTP/1.1 response
/// (Content-Length, Connection: close) appended to `out`; returns the status
/// code.
///
/// Only `GET` and `HEAD` are served (`HEAD` gets the headers `GET` would,
/// without the body); any other method is a 405 naming them. Routing ignores
/// the query string: `/` is the page, `/healthz` is 200 `ok` (503
/// `draining` during a graceful shutdown), `/metrics` is the counters in
/// Prometheus text format, and anything else is 404.
pub fn respond(out: &mut Vec<u8>, method: &str, path: &str, snap: &Snapshot<'_>) -> u16 {
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let body = b"method not allowed\n";
            return write_response(out, 405, TEXT, "Allow: GET, HEAD\r\n", body, false);
        }
    };
    let metrics;
    let (status, content_type, extra_headers, body): (u16, &str, &str, &[u8]) = match route(path) {
        "/" => (200, HTML, PAGE_HEADERS, PAGE.as_bytes()),
        "/healthz" if snap.draining => (503, TEXT, "", b"draining\n"),
        "/healthz" => (200, TEXT, "", b"ok\n"),
        "/metrics" => {
            let mut text = String::with_capacity(4096);
            // Writing to a String cannot fail.
            let _ = write_metrics(&mut text, snap);
            metrics = text;
            (200, PROMETHEUS, "", metrics.as_bytes())
        }
        _ => (404, TEXT, "", b"not found\n"),
    };
    write_response(out, status, content_type, extra_headers, body, head_only)
}

/// The route of a request target: the path without its query string.
pub fn route(target: &str) -> &str {
    target
        .split_once('?')
        .map_or(target, |(route, _query)| route)
}

/// Answers 404 (for a route served elsewhere); returns the status.
pub fn not_found(out: &mut Vec<u8>, method: &str) -> u16 {
    write_response(out, 404, TEXT, "", b"not found\n", method == "HEAD")
}

/// Appends a whole answer (only the head for HEAD, with the length the body
/// would have); returns `status`. `extra_headers` is complete lines, each
/// ending in CRLF.
fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
    head_only: bool,
) -> u16 {
    use std::io::Write as _;
    // Writing to a Vec cannot fail. `no-store`: counters and health change
    // from one fetch to the next, and the page is tiny.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         {extra_headers}\r\n",
        reason(status),
        body.len(),
    );
    if !head_only {
        out.extend_from_slice(body);
    }
    status
}

/// The reason phrase of each status this module answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Renders every counter of [`Stats`] and the server's gauges in the
/// Prometheus text exposition format (0.0.4): each family has a `# HELP`
/// and a `# TYPE` line, names start with `wsd_`, counters end in `_total`.
fn write_metrics(w: &mut String, snap: &Snapshot<'_>) -> fmt::Result {
    // Destructured without `..`, so a counter added to `Stats` does not
    // compile until it is exported here too.
    let Stats {
        accepted,
        refused_max_connections,
        accept_errors,
        handshakes,
        handshake_failures,
        http_responses,
        messages_in,
        messages_out,
        bytes_in,
        bytes_out,
        protocol_errors,
        closes,
        abnormal_closes,
        close_timeouts,
        idle_timeouts,
        ping_timeouts,
        pings_sent,
        slow_consumer_cutoffs,
        slow_consumer_drops,
        io_errors,
        deflate,
    } = snap.stats;

    let mode = match snap.mode {
        Mode::Echo => "echo",
        Mode::Broadcast => "broadcast",
    };
    family(w, "wsd_build_info", "gauge", "The wsd version; always 1.")?;
    w.write_str("wsd_build_info{version=\"")?;
    escape_label(w, env!("CARGO_PKG_VERSION"))?;
    w.write_str("\"} 1\n")?;
    family(
        w,
        "wsd_mode",
        "gauge",
        "The mode the server runs in; always 1.",
    )?;
    writeln!(w, "wsd_mode{{mode=\"{mode}\"}} 1")?;

    let gauges: [(&str, &str, f64); 4] = [
        (
            "wsd_uptime_seconds",
            "Seconds since the server started.",
            snap.uptime.as_secs_f64(),
        ),
        (
            "wsd_draining",
            "1 while a graceful shutdown is in progress, else 0.",
            f64::from(u8::from(snap.draining)),
        ),
        (
            "wsd_connections_open",
            "Connections held, in any phase.",
            snap.open_connections as f64,
        ),
        (
            "wsd_rooms",
            "Broadcast rooms with members (0 in echo mode).",
            snap.rooms as f64,
        ),
    ];
    for (name, help, value) in gauges {
        family(w, name, "gauge", help)?;
        writeln!(w, "{name} {value}")?;
    }

    let counters: [(&str, &str, u64); 17] = [
        (
            "wsd_connections_accepted_total",
            "Connections accepted (refusals not counted).",
            *accepted,
        ),
        (
            "wsd_connections_refused_total",
            "Connections answered 503 because the connection limit was reached.",
            *refused_max_connections,
        ),
        (
            "wsd_accept_errors_total",
            "Errors from accept (EMFILE and the like); accepting backs off.",
            *accept_errors,
        ),
        (
            "wsd_handshakes_total",
            "Upgrade requests answered 101.",
            *handshakes,
        ),
        (
            "wsd_messages_received_total",
            "WebSocket messages received.",
            *messages_in,
        ),
        (
            "wsd_messages_sent_total",
            "WebSocket messages sent (broadcast: one per receiver).",
            *messages_out,
        ),
        (
            "wsd_bytes_received_total",
            "Bytes read from sockets.",
            *bytes_in,
        ),
        (
            "wsd_bytes_sent_total",
            "Bytes written to sockets.",
            *bytes_out,
        ),
        (
            "wsd_protocol_errors_total",
            "Connections failed for a protocol error.",
            *protocol_errors,
        ),
        (
            "wsd_abnormal_closes_total",
            "Connections that ended without a closing handshake.",
            *abnormal_closes,
        ),
        (
            "wsd_close_timeouts_total",
            "Closing connections dropped because the close timeout passed.",
            *close_timeouts,
        ),
        (
            "wsd_idle_timeouts_total",
            "Connections closed (1001) for sending no message within the idle timeout.",
            *idle_timeouts,
        ),
        (
            "wsd_ping_timeouts_total",
            "Connections closed (1001) for not answering a keepalive ping.",
            *ping_timeouts,
        ),
        ("wsd_pings_sent_total", "Keepalive pings sent.", *pings_sent),
        (
            "wsd_slow_consumer_cutoffs_total",
            "Slow broadcast consumers cut off with close 1008.",
            *slow_consumer_cutoffs,
        ),
        (
            "wsd_slow_consumer_drops_total",
            "Broadcast messages skipped for slow consumers.",
            *slow_consumer_drops,
        ),
        (
            "wsd_io_errors_total",
            "Connections ended by a socket error.",
            *io_errors,
        ),
    ];
    for (name, help, value) in counters {
        family(w, name, "counter", help)?;
        writeln!(w, "{name} {value}")?;
    }

    write_deflate_metrics(w, deflate)?;

    let by_label: [(&str, &str, &str, &BTreeMap<u16, u64>); 3] = [
        (
            "wsd_handshake_failures_total",
            "Upgrade requests refused, by HTTP status.",
            "status",
            handshake_failures,
        ),
        (
            "wsd_http_responses_total",
            "Plain HTTP requests answered, by status.",
            "status",
            http_responses,
        ),
        (
            "wsd_closes_total",
            "Closing handshakes, by close code (sent or received).",
            "code",
            closes,
        ),
    ];
    for (name, help, label, by) in by_label {
        // With no samples yet, a family is only its HELP and TYPE.
        family(w, name, "counter", help)?;
        for (key, value) in by {
            writeln!(w, "{name}{{{label}=\"{key}\"}} {value}")?;
        }
    }
    Ok(())
}

/// The permessage-deflate families.
fn write_deflate_metrics(w: &mut String, d: &DeflateStats) -> fmt::Result {
    let DeflateStats {
        negotiated,
        takeover_refused,
        context_bytes,
        messages_inflated,
        messages_compressed,
        bytes_before,
        bytes_after,
    } = d;
    family(
        w,
        "wsd_deflate_context_bytes",
        "gauge",
        "Bytes of compression context connections keep between messages (context takeover).",
    )?;
    writeln!(w, "wsd_deflate_context_bytes {context_bytes}")?;
    let counters: [(&str, &str, u64); 6] = [
        (
            "wsd_deflate_negotiated_total",
            "Connections that agreed on permessage-deflate.",
            *negotiated,
        ),
        (
            "wsd_deflate_takeover_refused_total",
            "Connections given no-context-takeover terms because kept context reached its limit.",
            *takeover_refused,
        ),
        (
            "wsd_deflate_messages_inflated_total",
            "Compressed messages received.",
            *messages_inflated,
        ),
        (
            "wsd_deflate_messages_compressed_total",
            "Messages compressed (a broadcast counts once).",
            *messages_compressed,
        ),
        (
            "wsd_deflate_bytes_before_total",
            "Payload bytes of compressed messages, before compression.",
            *bytes_before,
        ),
        (
            "wsd_deflate_bytes_after_total",
            "Payload bytes of compressed messages, after compression.",
            *bytes_after,
        ),
    ];
    for (name, help, value) in counters {
        family(w, name, "counter", help)?;
        writeln!(w, "{name} {value}")?;
    }
    Ok(())
}

/// The `# HELP` and `# TYPE` lines of a family.
fn family(w: &mut String, name: &str, kind: &str, help: &str) -> fmt::Result {
    w.write_str("# HELP ")?;
    w.write_str(name)?;
    w.write_char(' ')?;
    // HELP text escapes only backslash and newline.
    for c in help.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            c => w.write_char(c)?,
        }
    }
    writeln!(w, "\n# TYPE {name} {kind}")
}

/// Writes `value` as the inside of a quoted label value: backslash, double
/// quote and newline escaped, as the format requires.
fn escape_label(w: &mut String, value: &str) -> fmt::Result {
    for c in value.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '"' => w.write_str("\\\"")?,
            '\n' => w.write_str("\\n")?,
            c => w.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(stats: &Stats, draining: bool) -> Snapshot<'_> {
        Snapshot {
            stats,
            open_connections: 3,
            rooms: 2,
            mode: Mode::Broadcast,
            uptime: Duration::from_millis(12_500),
            draining,
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
            closes: [(1000, 112), (1001, 113)].into(),
            abnormal_closes: 114,
            close_timeouts: 115,
            idle_timeouts: 121,
            ping_timeouts: 122,
            pings_sent: 123,
            slow_consumer_cutoffs: 116,
            slow_consumer_drops: 117,
            io_errors: 118,
            deflate: DeflateStats {
                context_bytes: 124,
                negotiated: 125,
                takeover_refused: 126,
                messages_inflated: 127,
                messages_compressed: 128,
                bytes_before: 129,
                bytes_after: 130,
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
            ("wsd_deflate_context_bytes", &[], 124.0),
            ("wsd_deflate_negotiated_total", &[], 125.0),
            ("wsd_deflate_takeover_refused_total", &[], 126.0),
            ("wsd_deflate_messages_inflated_total", &[], 127.0),
            ("wsd_deflate_messages_compressed_total", &[], 128.0),
            ("wsd_deflate_bytes_before_total", &[], 129.0),
            ("wsd_deflate_bytes_after_total", &[], 130.0),
            ("wsd_connections_open", &[], 3.0),
            ("wsd_rooms", &[], 2.0),
            ("wsd_uptime_seconds", &[], 12.5),
            ("wsd_draining", &[], 0.0),
            ("wsd_mode", &[("mode", "broadcast")], 1.0),
            (
                "wsd_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))],
                1.0,
            ),
        ];
        for (name, labels, value) in expect {
            assert_eq!(value_of(&samples, name, labels), value, "{name} {labels:?}");
        }
        assert_eq!(
            samples.len(),
            expect.len(),
            "unexpected samples: {samples:?}"
        );
    }

    #[test]
    fn metrics_of_a_fresh_server_still_name_every_family() {
        let a = ask("GET", "/metrics");
        let samples = parse_prometheus(a.text());
        // The labelled families have HELP and TYPE but no samples yet.
        for family in [
            "wsd_handshake_failures_total",
            "wsd_http_responses_total",
            "wsd_closes_total",
        ] {
            assert!(a.text().contains(&format!("# TYPE {family} counter\n")));
            assert!(samples.iter().all(|(n, _, _)| n != family));
        }
        assert_eq!(
            value_of(&samples, "wsd_connections_accepted_total", &[]),
            0.0
        );
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
        family(&mut w, "wsd_x", "gauge", "one\\two\nthree").unwrap();
        assert_eq!(w, "# HELP wsd_x one\\\\two\\nthree\n# TYPE wsd_x gauge\n");
    }
}
