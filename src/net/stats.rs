//! What the server counts, and how it reports without flooding the log.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::transport::HandshakeFailure;

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
    /// (400, 403, 405, 408, 426, 431, 503).
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

impl Stats {
    /// Adds `other`'s counts to these (another reactor's, for process
    /// totals).
    pub fn add(&mut self, other: &Stats) {
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
            tls_handshake_failures,
        } = other;
        for (mine, theirs) in [
            (&mut self.accepted, accepted),
            (&mut self.refused_max_connections, refused_max_connections),
            (&mut self.accept_errors, accept_errors),
            (&mut self.handshakes, handshakes),
            (&mut self.messages_in, messages_in),
            (&mut self.messages_out, messages_out),
            (&mut self.bytes_in, bytes_in),
            (&mut self.bytes_out, bytes_out),
            (&mut self.protocol_errors, protocol_errors),
            (&mut self.abnormal_closes, abnormal_closes),
            (&mut self.close_timeouts, close_timeouts),
            (&mut self.idle_timeouts, idle_timeouts),
            (&mut self.ping_timeouts, ping_timeouts),
            (&mut self.pings_sent, pings_sent),
            (&mut self.slow_consumer_cutoffs, slow_consumer_cutoffs),
            (&mut self.slow_consumer_drops, slow_consumer_drops),
            (&mut self.io_errors, io_errors),
            (&mut self.deflate.negotiated, &deflate.negotiated),
            (
                &mut self.deflate.takeover_refused,
                &deflate.takeover_refused,
            ),
            (&mut self.deflate.context_bytes, &deflate.context_bytes),
            (
                &mut self.deflate.messages_inflated,
                &deflate.messages_inflated,
            ),
            (
                &mut self.deflate.messages_compressed,
                &deflate.messages_compressed,
            ),
            (&mut self.deflate.messages_plain, &deflate.messages_plain),
            (&mut self.deflate.bytes_before, &deflate.bytes_before),
            (&mut self.deflate.bytes_after, &deflate.bytes_after),
        ] {
            *mine += theirs;
        }
        for (mine, theirs) in self
            .tls_handshake_failures
            .iter_mut()
            .zip(tls_handshake_failures)
        {
            *mine += theirs;
        }
        for (mine, theirs) in [
            (&mut self.handshake_failures, handshake_failures),
            (&mut self.http_responses, http_responses),
            (&mut self.closes, closes),
        ] {
            for (k, v) in theirs {
                *mine.entry(*k).or_default() += v;
            }
        }
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

/// At most `per_second` log lines of one kind a second. A line that gets
/// through after others were held back says how many.
#[derive(Debug)]
pub struct Throttle {
    per_second: u32,
    window: Option<Instant>,
    used: u32,
    held: u64,
}

impl Throttle {
    /// A throttle passing `per_second` lines a second.
    pub fn new(per_second: u32) -> Throttle {
        Throttle {
            per_second,
            window: None,
            used: 0,
            held: 0,
        }
    }

    /// Whether a line may be logged at `now`: `Some(lines held back since
    /// the last one that passed)`, or `None` (the line is counted as held).
    pub fn pass(&mut self, now: Instant) -> Option<u64> {
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used < self.per_second {
            self.used += 1;
            Some(std::mem::take(&mut self.held))
        } else {
            self.held += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_passes_a_few_lines_a_second_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut t = Throttle::new(2);
        assert_eq!(t.pass(t0), Some(0));
        assert_eq!(t.pass(t0), Some(0));
        assert_eq!(t.pass(t0), None);
        assert_eq!(t.pass(t0 + Duration::from_millis(500)), None);
        assert_eq!(t.pass(t0 + Duration::from_secs(1)), Some(2));
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
