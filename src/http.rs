//! Plain HTTP beside WebSocket on the same port: `GET /healthz`,
//! `GET /metrics` (Prometheus text format 0.0.4), and `GET /`, a small page
//! that talks to this server over WebSocket.
//!
//! Sans-IO like [`crate::proto`]: the reactor parses the request head, hands
//! the method and target here with a [`Snapshot`] of the server, and writes
//! the bytes [`respond`] appends.
//!
//! # One request per connection
//!
//! There is no keep-alive on the WebSocket port: every answer says
//! `Connection: close` and carries a `Content-Length`. Health checkers and
//! Prometheus open a connection per probe or scrape anyway, and a request
//! loop would give a plain HTTP client a longer hold on a connection slot
//! than a WebSocket handshake gets. RFC 9112 §9.6 sets the rest: having
//! sent `close`, the server "MUST NOT process any further requests", and
//! closes in stages so the answer is not lost to a reset. So a request
//! pipelined behind the first is read and dropped, never answered: the
//! reactor sends the answer, shuts its side (FIN), and reads and discards
//! until the client closes or the close timeout passes. The client sees
//! the whole first answer, then a clean end of stream.

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::stats::prometheus::{escape_label, family, labelled, single};
use crate::stats::{HandshakeFailure, Kind, Stats, COUNTERS};

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
    /// The mode's name: `echo` or `broadcast`.
    pub mode: &'a str,
    /// Time since the server started.
    pub uptime: Duration,
    /// A graceful shutdown is in progress.
    pub draining: bool,
    /// This process's name in the metrics ([`crate::Config::instance`]).
    pub instance: &'a str,
    /// Certificate reloads so far: those that took, and those refused.
    pub tls_reloads: [u64; 2],
    /// `--auth-key` file reloads so far: those that took, and those refused.
    pub auth_reloads: [u64; 2],
    /// Connections held by each reactor (`--threads`), in order.
    pub reactors: &'a [usize],
    /// Broadcast batches that did not fit another reactor's mailbox.
    pub handoff_drops: u64,
    /// Further metric families, already in the text format (the bus's).
    pub extra: &'a str,
    /// Whether the bus to other nodes is up; `None` without one.
    pub bus_up: Option<bool>,
}

/// The close codes `wsd_closes_total` always reports, at 0 until they
/// happen: the codes wsd sends (1000 echoing, 1001 going away, 1002
/// protocol error, 1007 invalid UTF-8, 1008 policy, 1009 too big) and the
/// ones clients commonly send (1003, 1005 = a Close without a code, 1011).
/// 1006 is never in a Close frame: connections that end without one are
/// `wsd_abnormal_closes_total`.
const COMMON_CLOSE_CODES: [u16; 9] = [1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1011];

/// The statuses a request can be refused with before it is upgraded or
/// routed, always reported in `wsd_handshake_failures_total`: access
/// control's 401 and 403 and the per-IP limit's 429 among them, so an alert
/// on their rate has a series from the first scrape.
const COMMON_REFUSALS: [u16; 9] = [400, 401, 403, 405, 408, 426, 429, 431, 503];

/// The statuses [`respond`] answers with, always reported in
/// `wsd_http_responses_total`.
const COMMON_HTTP_STATUSES: [u16; 4] = [200, 404, 405, 503];

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
        // The node serves its own clients whatever the bus does: still 200,
        // but saying so, for a person or a check that reads the body.
        "/healthz" if snap.bus_up == Some(false) => (200, TEXT, "", b"ok; bus down\n"),
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
/// The scalar counters come from [`COUNTERS`], the one list of them.
fn write_metrics(w: &mut String, snap: &Snapshot<'_>) -> fmt::Result {
    let stats = snap.stats;
    family(
        w,
        "wsd_build_info",
        Kind::Gauge,
        "The wsd version and this process's instance name; always 1.",
    )?;
    w.write_str("wsd_build_info{version=\"")?;
    escape_label(w, env!("CARGO_PKG_VERSION"))?;
    w.write_str("\",instance=\"")?;
    escape_label(w, snap.instance)?;
    w.write_str("\"} 1\n")?;
    family(
        w,
        "wsd_mode",
        Kind::Gauge,
        "The mode the server runs in; always 1.",
    )?;
    w.write_str("wsd_mode{mode=\"")?;
    escape_label(w, snap.mode)?;
    w.write_str("\"} 1\n")?;

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
        single(w, name, Kind::Gauge, help, value)?;
    }
    family(
        w,
        "wsd_reactor_connections",
        Kind::Gauge,
        "Connections held by each reactor (--threads), as last published.",
    )?;
    for (i, n) in snap.reactors.iter().enumerate() {
        writeln!(w, "wsd_reactor_connections{{reactor=\"{i}\"}} {n}")?;
    }
    single(
        w,
        "wsd_handoff_drops_total",
        Kind::Counter,
        "Broadcast batches for another reactor dropped because its mailbox was full.",
        snap.handoff_drops,
    )?;
    for c in &COUNTERS {
        single(w, c.metric, c.kind, c.help, (c.get)(stats))?;
    }
    labelled(
        w,
        "wsd_handshake_failures_total",
        "Requests refused before they were upgraded or routed \
         (refused upgrades, malformed or non-HTTP input, timeouts), by HTTP status.",
        "status",
        &stats.handshake_failures,
        &COMMON_REFUSALS,
    )?;
    labelled(
        w,
        "wsd_http_responses_total",
        "Plain HTTP requests answered, by status.",
        "status",
        &stats.http_responses,
        &COMMON_HTTP_STATUSES,
    )?;
    labelled(
        w,
        "wsd_closes_total",
        "Closing handshakes, by close code (sent or received).",
        "code",
        &stats.closes,
        &COMMON_CLOSE_CODES,
    )?;
    family(
        w,
        "wsd_tls_handshake_failures_total",
        Kind::Counter,
        "TLS handshakes that failed, by reason: plain_http (an HTTP request \
         on the TLS port), not_tls, protocol (a malformed handshake), \
         incompatible (no common version, cipher or ALPN), alert (sent by \
         the peer), eof (closed mid-handshake), timeout.",
    )?;
    for (reason, n) in HandshakeFailure::ALL
        .iter()
        .zip(stats.tls_handshake_failures)
    {
        writeln!(
            w,
            "wsd_tls_handshake_failures_total{{reason=\"{}\"}} {n}",
            reason.name()
        )?;
    }
    let reloads = [
        (
            "wsd_tls_reloads_total",
            "Certificate reloads (SIGHUP): ok, or error (bad files; the old pair stays).",
            snap.tls_reloads,
        ),
        (
            "wsd_auth_reloads_total",
            "Auth key file reloads (SIGHUP): ok, or error (a bad file; the old keys stay).",
            snap.auth_reloads,
        ),
    ];
    for (name, help, [ok, error]) in reloads {
        family(w, name, Kind::Counter, help)?;
        writeln!(w, "{name}{{result=\"ok\"}} {ok}")?;
        writeln!(w, "{name}{{result=\"error\"}} {error}")?;
    }
    stats.write_auth_metrics(w)?;
    stats.api.write_metrics(w)?;
    w.write_str(snap.extra)
}

#[cfg(test)]
mod tests;
