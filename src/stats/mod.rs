//! What the server counts: [`Stats`], with each scalar counter's metric
//! name and help listed once, in [`COUNTERS`], for the process totals and
//! the `/metrics` page alike; and the one-line summary of the log.
//!
//! Below every user: the reactors count, [`crate::http`] renders, and
//! neither needs the other's module to name a counter.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::auth::{Limited, Refusal};

pub mod prometheus;

/// Counters of everything the server did and refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted (refusals not counted).
    pub accepted: u64,
    /// Connections answered 503 because `max_connections` were open.
    pub refused_max_connections: u64,
    /// Errors from accept (EMFILE and the like); accepting backs off.
    pub accept_errors: u64,
    /// Handshakes answered 101.
    pub handshakes: u64,
    /// Requests refused before they were upgraded or routed, by HTTP status
    /// (400, 401, 403, 405, 408, 426, 429, 431, 503).
    pub handshake_failures: BTreeMap<u16, u64>,
    /// Plain HTTP requests answered, by status.
    pub http_responses: BTreeMap<u16, u64>,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent (broadcast: one per receiver).
    pub messages_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Connections failed for a protocol error.
    pub protocol_errors: u64,
    /// Closing handshakes by close code (sent or received).
    pub closes: BTreeMap<u16, u64>,
    /// Connections that ended without a closing handshake.
    pub abnormal_closes: u64,
    /// Closing connections dropped because the close timeout passed.
    pub close_timeouts: u64,
    /// Connections closed (1001) for sending no message within the idle timeout.
    pub idle_timeouts: u64,
    /// Connections closed (1001) for not answering a keepalive ping.
    pub ping_timeouts: u64,
    /// Keepalive pings sent.
    pub pings_sent: u64,
    /// Slow broadcast consumers cut off (policy `close`).
    pub slow_consumer_cutoffs: u64,
    /// Broadcast messages skipped for slow consumers (policy `drop`).
    pub slow_consumer_drops: u64,
    /// Connections ended by a socket error.
    pub io_errors: u64,
    /// TLS handshakes that failed, by [`HandshakeFailure::index`].
    pub tls_handshake_failures: [u64; HandshakeFailure::ALL.len()],
    /// permessage-deflate.
    pub deflate: DeflateStats,
    /// Upgrades refused by access control, by [`Refusal`] in the order of
    /// [`Refusal::ALL`].
    pub auth_denied: [u64; Refusal::ALL.len()],
    /// Clients stopped by a rate limit, by [`Limited`] in the order of
    /// [`Limited::ALL`].
    pub rate_limited: [u64; Limited::ALL.len()],
    /// The publish API (`wsd_api_*`).
    pub api: crate::api::ApiStats,
}

/// What permessage-deflate did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeflateStats {
    /// Connections that agreed on permessage-deflate.
    pub negotiated: u64,
    /// Connections given the no-context-takeover terms because kept
    /// context had reached `--deflate-memory`.
    pub takeover_refused: u64,
    /// Bytes of compression context that connections keep between
    /// messages, now (a gauge; 0 without context takeover).
    pub context_bytes: u64,
    /// Compressed messages received and inflated.
    pub messages_inflated: u64,
    /// Messages compressed (a broadcast counts once, however many get it).
    pub messages_compressed: u64,
    /// Messages for deflate clients sent plain because compressing them
    /// did not make them shorter (a broadcast counts once).
    pub messages_plain: u64,
    /// Payload bytes of the messages compressed, before compression.
    pub bytes_before: u64,
    /// Their payload bytes after compression.
    pub bytes_after: u64,
}

/// Whether a number only grows or goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only grows: a `_total`.
    Counter,
    /// Now's value (summed over reactors all the same).
    Gauge,
}

/// One scalar of [`Stats`]: how to reach it and what `/metrics` calls it.
pub struct Scalar {
    /// The metric's name.
    pub metric: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Reads it.
    pub get: fn(&Stats) -> u64,
    /// Borrows it to change it.
    pub get_mut: fn(&mut Stats) -> &mut u64,
}

/// A row of [`COUNTERS`].
macro_rules! scalar {
    ($kind:ident, $metric:literal, $help:literal, $($field:ident).+) => {
        Scalar {
            metric: $metric,
            kind: Kind::$kind,
            help: $help,
            get: |s| s.$($field).+,
            get_mut: |s| &mut s.$($field).+,
        }
    };
}

/// Every scalar of [`Stats`], in the order `/metrics` shows them: the one
/// list of them (a unit test checks that none is missing).
pub const COUNTERS: [Scalar; 25] = [
    scalar!(
        Counter,
        "wsd_connections_accepted_total",
        "Connections accepted (refusals not counted).",
        accepted
    ),
    scalar!(
        Counter,
        "wsd_connections_refused_total",
        "Connections answered 503 because the connection limit was reached.",
        refused_max_connections
    ),
    scalar!(
        Counter,
        "wsd_accept_errors_total",
        "Errors from accept (EMFILE and the like); accepting backs off.",
        accept_errors
    ),
    scalar!(
        Counter,
        "wsd_handshakes_total",
        "Upgrade requests answered 101.",
        handshakes
    ),
    scalar!(
        Counter,
        "wsd_messages_received_total",
        "WebSocket messages received.",
        messages_in
    ),
    scalar!(
        Counter,
        "wsd_messages_sent_total",
        "WebSocket messages sent (broadcast: one per receiver).",
        messages_out
    ),
    scalar!(
        Counter,
        "wsd_bytes_received_total",
        "Bytes read from sockets.",
        bytes_in
    ),
    scalar!(
        Counter,
        "wsd_bytes_sent_total",
        "Bytes written to sockets.",
        bytes_out
    ),
    scalar!(
        Counter,
        "wsd_protocol_errors_total",
        "Connections failed for a protocol error.",
        protocol_errors
    ),
    scalar!(
        Counter,
        "wsd_abnormal_closes_total",
        "Connections that ended without a closing handshake.",
        abnormal_closes
    ),
    scalar!(
        Counter,
        "wsd_close_timeouts_total",
        "Closing connections dropped because the close timeout passed.",
        close_timeouts
    ),
    scalar!(
        Counter,
        "wsd_idle_timeouts_total",
        "Connections closed (1001) for sending no message within the idle timeout.",
        idle_timeouts
    ),
    scalar!(
        Counter,
        "wsd_ping_timeouts_total",
        "Connections closed (1001) for not answering a keepalive ping.",
        ping_timeouts
    ),
    scalar!(
        Counter,
        "wsd_pings_sent_total",
        "Keepalive pings sent.",
        pings_sent
    ),
    scalar!(
        Counter,
        "wsd_slow_consumer_cutoffs_total",
        "Slow broadcast consumers cut off with close 1008.",
        slow_consumer_cutoffs
    ),
    scalar!(
        Counter,
        "wsd_slow_consumer_drops_total",
        "Broadcast messages skipped for slow consumers.",
        slow_consumer_drops
    ),
    scalar!(
        Counter,
        "wsd_io_errors_total",
        "Connections ended by a socket error.",
        io_errors
    ),
    scalar!(
        Gauge,
        "wsd_deflate_context_bytes",
        "Bytes of compression context connections keep between messages (context takeover).",
        deflate.context_bytes
    ),
    scalar!(
        Counter,
        "wsd_deflate_negotiated_total",
        "Connections that agreed on permessage-deflate.",
        deflate.negotiated
    ),
    scalar!(
        Counter,
        "wsd_deflate_takeover_refused_total",
        "Connections given no-context-takeover terms because kept context reached its limit.",
        deflate.takeover_refused
    ),
    scalar!(
        Counter,
        "wsd_deflate_messages_inflated_total",
        "Compressed messages received.",
        deflate.messages_inflated
    ),
    scalar!(
        Counter,
        "wsd_deflate_messages_compressed_total",
        "Messages compressed (a broadcast counts once).",
        deflate.messages_compressed
    ),
    scalar!(
        Counter,
        "wsd_deflate_messages_plain_total",
        "Messages for deflate clients sent plain: compressing did not shorten them.",
        deflate.messages_plain
    ),
    scalar!(
        Counter,
        "wsd_deflate_bytes_before_total",
        "Payload bytes of compressed messages, before compression.",
        deflate.bytes_before
    ),
    scalar!(
        Counter,
        "wsd_deflate_bytes_after_total",
        "Payload bytes of compressed messages, after compression.",
        deflate.bytes_after
    ),
];

impl Stats {
    /// Adds `other`'s counts to these (another reactor's, for process
    /// totals).
    pub fn add(&mut self, other: &Stats) {
        for c in &COUNTERS {
            *(c.get_mut)(self) += (c.get)(other);
        }
        self.api.add(&other.api);
        for (mine, theirs) in self
            .tls_handshake_failures
            .iter_mut()
            .zip(other.tls_handshake_failures)
            .chain(self.auth_denied.iter_mut().zip(other.auth_denied))
            .chain(self.rate_limited.iter_mut().zip(other.rate_limited))
        {
            *mine += theirs;
        }
        for (mine, theirs) in [
            (&mut self.handshake_failures, &other.handshake_failures),
            (&mut self.http_responses, &other.http_responses),
            (&mut self.closes, &other.closes),
        ] {
            for (k, v) in theirs {
                *mine.entry(*k).or_default() += v;
            }
        }
    }

    /// Counts an upgrade refused by access control.
    pub fn count_auth_denied(&mut self, refusal: Refusal) {
        if let Some(n) = Refusal::ALL
            .iter()
            .position(|r| *r == refusal)
            .and_then(|i| self.auth_denied.get_mut(i))
        {
            *n += 1;
        }
    }

    /// Counts a client stopped by a rate limit.
    pub fn count_rate_limited(&mut self, limit: Limited) {
        if let Some(n) = Limited::ALL
            .iter()
            .position(|l| *l == limit)
            .and_then(|i| self.rate_limited.get_mut(i))
        {
            *n += 1;
        }
    }

    /// Writes `wsd_auth_denied_total{reason}` and
    /// `wsd_rate_limited_total{limit}`, every label from 0.
    pub fn write_auth_metrics(&self, w: &mut String) -> std::fmt::Result {
        prometheus::family(
            w,
            "wsd_auth_denied_total",
            Kind::Counter,
            "Upgrades refused by access control, by reason (401, or 403 for forbidden).",
        )?;
        for (r, n) in Refusal::ALL.iter().zip(self.auth_denied) {
            writeln!(w, "wsd_auth_denied_total{{reason=\"{}\"}} {n}", r.label())?;
        }
        prometheus::family(
            w,
            "wsd_rate_limited_total",
            Kind::Counter,
            "Clients stopped by a limit: messages and bytes (closed 1008), \
             connections_per_ip (answered 429).",
        )?;
        for (l, n) in Limited::ALL.iter().zip(self.rate_limited) {
            writeln!(w, "wsd_rate_limited_total{{limit=\"{}\"}} {n}", l.label())?;
        }
        Ok(())
    }

    /// Counts a failed TLS handshake.
    pub fn count_tls_failure(&mut self, reason: HandshakeFailure) {
        if let Some(n) = self.tls_handshake_failures.get_mut(reason.index()) {
            *n += 1;
        }
    }

    /// The one-line summary of what happened since `prev`, over `elapsed`,
    /// with `open` connections held now.
    pub fn summary_since(&self, prev: &Stats, elapsed: Duration, open: usize) -> String {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
        let mut line = format!(
            "{open} conns (+{} accepted), in {:.0} msg/s {:.2} MB/s, out {:.0} msg/s {:.2} MB/s",
            self.accepted.saturating_sub(prev.accepted),
            rate(self.messages_in, prev.messages_in),
            rate(self.bytes_in, prev.bytes_in) / 1e6,
            rate(self.messages_out, prev.messages_out),
            rate(self.bytes_out, prev.bytes_out) / 1e6,
        );
        let closes = deltas(&self.closes, &prev.closes);
        if !closes.is_empty() {
            let _ = write!(line, ", closes {closes}");
        }
        let refused = deltas(&self.handshake_failures, &prev.handshake_failures);
        if !refused.is_empty() {
            let _ = write!(line, ", refused {refused}");
        }
        let dropped = self.abnormal_closes.saturating_sub(prev.abnormal_closes);
        if dropped > 0 {
            let _ = write!(line, ", {dropped} without close");
        }
        line
    }
}

/// Why a TLS handshake failed: the `reason` label of
/// `wsd_tls_handshake_failures_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// A plain HTTP request came to the TLS port. It is answered with a
    /// `400` in the clear that says to use https:// or wss://.
    PlainHttp,
    /// The first bytes were not a TLS handshake record at all.
    NotTls,
    /// A malformed or out-of-place handshake message.
    Protocol,
    /// Nothing in common: TLS version (1.2 and 1.3 are spoken), cipher
    /// suites, key exchange groups, or ALPN protocol (`http/1.1`).
    Incompatible,
    /// The peer sent an alert, such as a client that does not trust the
    /// certificate.
    Alert,
    /// The peer closed the connection during the handshake.
    Eof,
    /// The handshake did not finish within `--handshake-timeout`.
    Timeout,
}

impl HandshakeFailure {
    /// Every reason, in the order of [`HandshakeFailure::index`].
    pub const ALL: [HandshakeFailure; 7] = [
        HandshakeFailure::PlainHttp,
        HandshakeFailure::NotTls,
        HandshakeFailure::Protocol,
        HandshakeFailure::Incompatible,
        HandshakeFailure::Alert,
        HandshakeFailure::Eof,
        HandshakeFailure::Timeout,
    ];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeFailure::PlainHttp => "plain_http",
            HandshakeFailure::NotTls => "not_tls",
            HandshakeFailure::Protocol => "protocol",
            HandshakeFailure::Incompatible => "incompatible",
            HandshakeFailure::Alert => "alert",
            HandshakeFailure::Eof => "eof",
            HandshakeFailure::Timeout => "timeout",
        }
    }

    /// Its position in [`HandshakeFailure::ALL`] (and in the counters).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// `code:count` pairs of what grew between two maps.
fn deltas(now: &BTreeMap<u16, u64>, then: &BTreeMap<u16, u64>) -> String {
    let mut out = String::new();
    for (code, n) in now {
        let d = n.saturating_sub(then.get(code).copied().unwrap_or(0));
        if d > 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{code}:{d}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`COUNTERS`] is the one list of the scalars: setting each entry
    /// once reaches every scalar field (the destructuring below has no
    /// `..`, so a new field does not compile until it is listed), and no
    /// two entries share a field or a name.
    #[test]
    fn counters_list_every_scalar_once() {
        let mut s = Stats::default();
        for c in &COUNTERS {
            *(c.get_mut)(&mut s) += 1;
        }
        let Stats {
            accepted,
            refused_max_connections,
            accept_errors,
            handshakes,
            handshake_failures: _,
            http_responses: _,
            messages_in,
            messages_out,
            bytes_in,
            bytes_out,
            protocol_errors,
            closes: _,
            abnormal_closes,
            close_timeouts,
            idle_timeouts,
            ping_timeouts,
            pings_sent,
            slow_consumer_cutoffs,
            slow_consumer_drops,
            io_errors,
            tls_handshake_failures: _,
            auth_denied: _,
            rate_limited: _,
            // A family of its own, added up by `ApiStats::add`.
            api: _,
            deflate:
                DeflateStats {
                    negotiated,
                    takeover_refused,
                    context_bytes,
                    messages_inflated,
                    messages_compressed,
                    messages_plain,
                    bytes_before,
                    bytes_after,
                },
        } = s;
        let all = [
            accepted,
            refused_max_connections,
            accept_errors,
            handshakes,
            messages_in,
            messages_out,
            bytes_in,
            bytes_out,
            protocol_errors,
            abnormal_closes,
            close_timeouts,
            idle_timeouts,
            ping_timeouts,
            pings_sent,
            slow_consumer_cutoffs,
            slow_consumer_drops,
            io_errors,
            negotiated,
            takeover_refused,
            context_bytes,
            messages_inflated,
            messages_compressed,
            messages_plain,
            bytes_before,
            bytes_after,
        ];
        assert_eq!(all, [1; COUNTERS.len()]);
        let mut names: Vec<&str> = COUNTERS.iter().map(|c| c.metric).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COUNTERS.len());
    }

    #[test]
    fn adding_sums_every_counter_and_every_map() {
        let mut one = Stats::default();
        for (i, c) in COUNTERS.iter().enumerate() {
            *(c.get_mut)(&mut one) = i as u64 + 1;
        }
        one.tls_handshake_failures[2] = 7;
        *one.closes.entry(1000).or_default() += 3;
        let mut sum = one.clone();
        sum.add(&one);
        for (i, c) in COUNTERS.iter().enumerate() {
            assert_eq!((c.get)(&sum), 2 * (i as u64 + 1), "{}", c.metric);
        }
        assert_eq!(sum.tls_handshake_failures[2], 14);
        assert_eq!(sum.closes.get(&1000), Some(&6));
    }

    #[test]
    fn summary_reports_rates_and_what_grew() {
        let prev = Stats {
            messages_in: 100,
            closes: BTreeMap::from([(1000, 5)]),
            ..Stats::default()
        };
        let now = Stats {
            accepted: 3,
            messages_in: 300,
            messages_out: 200,
            closes: BTreeMap::from([(1000, 7), (1009, 1)]),
            handshake_failures: BTreeMap::from([(400, 2)]),
            ..Stats::default()
        };
        let line = now.summary_since(&prev, Duration::from_secs(2), 42);
        assert!(
            line.starts_with("42 conns (+3 accepted), in 100 msg/s"),
            "{line}"
        );
        assert!(line.contains("out 100 msg/s"), "{line}");
        assert!(line.contains("closes 1000:2 1009:1"), "{line}");
        assert!(line.contains("refused 400:2"), "{line}");
    }
}
