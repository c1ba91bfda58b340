//! What a worker thread counts, and how the threads' counts are merged.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds, from 1 ns to an hour, to 3
/// significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy new_with_bounds' preconditions.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// The per-second histograms: 2 significant digits is plenty for one p99.
pub fn second_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid histogram bounds")
}

/// Why something failed, one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The connection was refused (nothing listening).
    Refused,
    /// The peer reset the connection.
    Reset,
    /// Connecting and the handshake took longer than --connect-timeout.
    Timeout,
    /// The server answered the upgrade with this status.
    HandshakeStatus(u16),
    /// The server's answer was not HTTP.
    HandshakeMalformed,
    /// 101, but a wrong Sec-WebSocket-Accept.
    BadAccept,
    /// 101, but no subprotocol of those offered, or one not offered.
    Subprotocol,
    /// The server broke RFC 6455; the session's error text.
    Protocol(&'static str),
    /// The server closed before we did, with this close code.
    UnexpectedClose(u16),
    /// The TCP connection ended without a closing handshake.
    UnexpectedEof,
    /// A reply differed from what was sent.
    Mismatch,
    /// A message never answered before the grace period ended.
    Unanswered,
    /// The server did not answer our Close, or not end the stream after
    /// it, in time.
    CloseTimeout,
    /// Some other socket error.
    Io,
    /// TLS failed: the handshake (an untrusted certificate, say) or a
    /// record.
    Tls,
    /// `--deflate`: the server's extension answer broke RFC 7692 or agreed
    /// to something not offered; the connection failed.
    Extension,
    /// `--deflate`: the server declined permessage-deflate; the connection
    /// went on uncompressed.
    DeflateDeclined,
    /// `--publish-url`: the publish API answered with this status, not 200.
    ApiStatus(u16),
    /// `--publish-url`: an answer that could not be read, or came unasked.
    ApiAnswer,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Refused => f.write_str("connection refused"),
            ErrorKind::Reset => f.write_str("connection reset"),
            ErrorKind::Timeout => f.write_str("connect/handshake timeout"),
            ErrorKind::HandshakeStatus(s) => write!(f, "handshake status {s}"),
            ErrorKind::HandshakeMalformed => f.write_str("malformed handshake response"),
            ErrorKind::BadAccept => f.write_str("wrong Sec-WebSocket-Accept"),
            ErrorKind::Subprotocol => f.write_str("subprotocol not agreed"),
            ErrorKind::Protocol(e) => write!(f, "protocol error: {e}"),
            ErrorKind::UnexpectedClose(c) => write!(f, "unexpected close {c}"),
            ErrorKind::UnexpectedEof => f.write_str("unexpected end of stream"),
            ErrorKind::Mismatch => f.write_str("payload mismatch"),
            ErrorKind::Unanswered => f.write_str("unanswered message"),
            ErrorKind::CloseTimeout => f.write_str("closing handshake timeout"),
            ErrorKind::Io => f.write_str("socket error"),
            ErrorKind::Tls => f.write_str("TLS failure"),
            ErrorKind::Extension => f.write_str("extension answer rejected"),
            ErrorKind::DeflateDeclined => f.write_str("deflate not negotiated"),
            ErrorKind::ApiStatus(s) => write!(f, "publish API status {s}"),
            ErrorKind::ApiAnswer => f.write_str("bad publish API answer"),
        }
    }
}

/// Error counts by kind, with the first detail seen for each.
#[derive(Clone, Debug, Default)]
pub struct Errors {
    counts: BTreeMap<ErrorKind, (u64, String)>,
}

impl Errors {
    /// Counts `n` errors of `kind`; `detail` is kept for the first one.
    pub fn add(&mut self, kind: ErrorKind, n: u64, detail: impl FnOnce() -> String) {
        self.counts
            .entry(kind)
            .and_modify(|e| e.0 += n)
            .or_insert_with(|| (n, detail()));
    }

    /// All errors counted.
    pub fn total(&self) -> u64 {
        self.counts.values().map(|e| e.0).sum()
    }

    /// Count of one kind.
    pub fn count(&self, kind: ErrorKind) -> u64 {
        self.counts.get(&kind).map_or(0, |e| e.0)
    }

    /// Each kind with its count and first detail.
    pub fn iter(&self) -> impl Iterator<Item = (&ErrorKind, u64, &str)> {
        self.counts.iter().map(|(k, (n, d))| (k, *n, d.as_str()))
    }

    /// Adds another thread's errors.
    pub fn merge(&mut self, other: &Errors) {
        for (k, n, d) in other.iter() {
            self.add(*k, n, || d.to_string());
        }
    }
}

/// Bytes on the wire against the messages' own bytes, after the
/// handshake: how much `--deflate` saves, and the same figures without it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wire {
    /// WebSocket frame bytes written (headers included; payloads as sent,
    /// so compressed under `--deflate`), before any TLS.
    pub frames_out: u64,
    /// WebSocket frame bytes read.
    pub frames_in: u64,
    /// Payload bytes of the messages queued for sending, uncompressed.
    pub msg_out: u64,
    /// Payload bytes of the messages received, inflated.
    pub msg_in: u64,
}

impl Wire {
    /// Adds `o`.
    pub fn add(&mut self, o: &Wire) {
        self.frames_out += o.frames_out;
        self.frames_in += o.frames_in;
        self.msg_out += o.msg_out;
        self.msg_in += o.msg_in;
    }
}

/// One second of the run.
#[derive(Clone, Debug)]
pub struct Second {
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
    /// Errors counted.
    pub errors: u64,
    /// Frame bytes written and read in this second.
    pub wire: Wire,
    /// Latencies of messages received in this second.
    pub latency: Histogram<u32>,
}

/// A per-second time series, from the start of the load (warm-up
/// included); rows are laid out by [`crate::window::Window::row`].
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// One entry per second, as far as the run got.
    pub seconds: Vec<Second>,
}

impl Timeline {
    /// Row `sec`; `None` past `limit` rows, so a run that overstays cannot
    /// grow it without bound.
    fn at(&mut self, sec: usize, limit: usize) -> Option<&mut Second> {
        if sec >= limit {
            return None;
        }
        while self.seconds.len() <= sec {
            self.seconds.push(Second {
                sent: 0,
                received: 0,
                errors: 0,
                wire: Wire::default(),
                latency: second_histogram(),
            });
        }
        self.seconds.get_mut(sec)
    }

    fn merge(&mut self, other: &Timeline) {
        for (i, s) in other.seconds.iter().enumerate() {
            if let Some(mine) = self.at(i, usize::MAX) {
                mine.sent += s.sent;
                mine.received += s.received;
                mine.errors += s.errors;
                mine.wire.add(&s.wire);
                // Same bounds on both sides, so adding cannot fail.
                let _ = mine.latency.add(&s.latency);
            }
        }
    }
}

/// A broadcast subscriber's tally.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriberTally {
    /// Which of the run's targets it is connected to.
    pub node: u32,
    /// Distinct messages received.
    pub unique: u64,
    /// Messages received again.
    pub duplicated: u64,
    /// Messages that arrived after a later one from the same publisher.
    pub out_of_order: u64,
}

/// `--publish-url`: the publish API's answers.
#[derive(Clone, Debug)]
pub struct ApiTally {
    /// Answers by status, whole run.
    pub statuses: BTreeMap<u16, u64>,
    /// From writing a request to reading its answer, in the window.
    pub latency: Histogram<u64>,
}

impl ApiTally {
    /// All answers counted.
    pub fn answers(&self) -> u64 {
        self.statuses.values().sum()
    }

    fn merge(&mut self, o: &ApiTally) {
        for (&k, &n) in &o.statuses {
            *self.statuses.entry(k).or_default() += n;
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&o.latency);
    }
}

/// `churn`: how the connections ended, and the messages of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChurnTally {
    /// Connections that ended with the closing handshake and the server's
    /// end of stream.
    pub clean: u64,
    /// Connections we dropped without a Close.
    pub abrupt: u64,
    /// Of those, dropped with half a frame written.
    pub mid_frame: u64,
    /// Of those, dropped with an RST rather than a FIN.
    pub reset: u64,
    /// Connections the server ended, or that failed, before we did.
    pub unexpected: u64,
    /// Messages sent on connections that ended cleanly.
    pub clean_sent: u64,
    /// Replies received on connections that ended cleanly.
    pub clean_received: u64,
    /// Messages in flight when we dropped their connection: not lost.
    pub abandoned: u64,
}

impl ChurnTally {
    fn merge(&mut self, o: &ChurnTally) {
        self.clean += o.clean;
        self.abrupt += o.abrupt;
        self.mid_frame += o.mid_frame;
        self.reset += o.reset;
        self.unexpected += o.unexpected;
        self.clean_sent += o.clean_sent;
        self.clean_received += o.clean_received;
        self.abandoned += o.abandoned;
    }
}

/// Everything one worker thread counted.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Round-trip (echo) or fan-out (broadcast) latency in the window; for
    /// `rate`, from the intended send time (coordinated-omission corrected).
    pub latency: Histogram<u64>,
    /// `rate` only: latency from the actual send time.
    pub uncorrected: Histogram<u64>,
    /// Connect plus handshake.
    pub connect: Histogram<u64>,
    /// Messages sent, whole run.
    pub sent: u64,
    /// Messages received (verified or not), whole run.
    pub received: u64,
    /// Messages sent within the window.
    pub window_sent: u64,
    /// Messages received within the window.
    pub window_received: u64,
    /// Payload bytes received within the window.
    pub window_bytes: u64,
    /// Connections whose handshake completed.
    pub opened: u64,
    /// Connections that failed to open.
    pub failed: u64,
    /// When the first connect began and the last handshake completed.
    pub connect_span: Option<(Instant, Instant)>,
    /// Errors by kind.
    pub errors: Errors,
    /// The per-second series.
    pub timeline: Timeline,
    /// Broadcast: messages publishers received (their own or others').
    pub publisher_received: u64,
    /// Broadcast: each subscriber's tally.
    pub subscribers: Vec<SubscriberTally>,
    /// Broadcast over several nodes: each node's fan-out latency in the
    /// window, by target index (empty with one node).
    pub node_latency: Vec<Histogram<u64>>,
    /// Churn: how connections ended.
    pub churn: ChurnTally,
    /// Broadcast with `--publish-url`: the API's answers.
    pub api: ApiTally,
    /// Frame and message bytes, whole run.
    pub wire: Wire,
    /// Rows the timeline may hold.
    timeline_limit: usize,
}

impl Stats {
    /// Empty counts for a run whose timeline has at most `rows` rows.
    pub fn new(rows: usize) -> Stats {
        Stats {
            latency: latency_histogram(),
            uncorrected: latency_histogram(),
            connect: latency_histogram(),
            sent: 0,
            received: 0,
            window_sent: 0,
            window_received: 0,
            window_bytes: 0,
            opened: 0,
            failed: 0,
            connect_span: None,
            errors: Errors::default(),
            timeline: Timeline::default(),
            publisher_received: 0,
            subscribers: Vec::new(),
            node_latency: Vec::new(),
            churn: ChurnTally::default(),
            api: ApiTally {
                statuses: BTreeMap::new(),
                latency: latency_histogram(),
            },
            wire: Wire::default(),
            timeline_limit: rows,
        }
    }

    /// Counts a sent message; `sec` is its timeline row (None before the load).
    pub fn on_sent(&mut self, sec: Option<usize>, in_window: bool) {
        self.sent += 1;
        self.window_sent += u64::from(in_window);
        if let Some(s) = sec.and_then(|s| self.timeline.at(s, self.timeline_limit)) {
            s.sent += 1;
        }
    }

    /// Counts a received message and, if it has one, its latency in ns.
    pub fn on_received(
        &mut self,
        sec: Option<usize>,
        in_window: bool,
        bytes: usize,
        lat: Option<u64>,
    ) {
        self.received += 1;
        if in_window {
            self.window_received += 1;
            self.window_bytes += bytes as u64;
            if let Some(ns) = lat {
                self.latency.saturating_record(ns.max(1));
            }
        }
        if let Some(s) = sec.and_then(|s| self.timeline.at(s, self.timeline_limit)) {
            s.received += 1;
            if let Some(ns) = lat {
                s.latency.saturating_record(ns.max(1));
            }
        }
    }

    /// Counts bytes a connection wrote and read; `sec` is the row.
    pub fn on_wire(&mut self, sec: Option<usize>, w: &Wire) {
        self.wire.add(w);
        if let Some(s) = sec.and_then(|s| self.timeline.at(s, self.timeline_limit)) {
            s.wire.add(w);
        }
    }

    /// Counts an error.
    pub fn on_error(
        &mut self,
        sec: Option<usize>,
        kind: ErrorKind,
        n: u64,
        detail: impl FnOnce() -> String,
    ) {
        self.errors.add(kind, n, detail);
        if let Some(s) = sec.and_then(|s| self.timeline.at(s, self.timeline_limit)) {
            s.errors += n;
        }
    }

    /// Adds another thread's counts.
    pub fn merge(&mut self, o: &Stats) {
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.latency.add(&o.latency);
        let _ = self.uncorrected.add(&o.uncorrected);
        let _ = self.connect.add(&o.connect);
        self.sent += o.sent;
        self.received += o.received;
        self.window_sent += o.window_sent;
        self.window_received += o.window_received;
        self.window_bytes += o.window_bytes;
        self.opened += o.opened;
        self.failed += o.failed;
        self.connect_span = match (self.connect_span, o.connect_span) {
            (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
            (a, b) => a.or(b),
        };
        self.errors.merge(&o.errors);
        self.timeline.merge(&o.timeline);
        self.publisher_received += o.publisher_received;
        self.subscribers.extend_from_slice(&o.subscribers);
        for (i, h) in o.node_latency.iter().enumerate() {
            match self.node_latency.get_mut(i) {
                Some(mine) => {
                    let _ = mine.add(h);
                }
                None => self.node_latency.push(h.clone()),
            }
        }
        self.churn.merge(&o.churn);
        self.api.merge(&o.api);
        self.wire.add(&o.wire);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_stats_add_up() {
        let mut a = Stats::new(7);
        let mut b = Stats::new(7);
        a.on_sent(Some(0), true);
        a.on_received(Some(0), true, 64, Some(1000));
        b.on_sent(Some(3), false);
        b.on_received(Some(3), true, 64, Some(3000));
        b.on_error(Some(3), ErrorKind::Mismatch, 2, || "first".into());
        let w = Wire {
            frames_out: 10,
            frames_in: 20,
            msg_out: 30,
            msg_in: 40,
        };
        a.on_wire(Some(0), &w);
        b.on_wire(Some(3), &w);
        a.merge(&b);
        assert_eq!(a.wire.frames_in, 40);
        assert_eq!(a.wire.msg_out, 60);
        assert_eq!(a.timeline.seconds[3].wire, w);
        assert_eq!((a.sent, a.received, a.window_sent), (2, 2, 1));
        assert_eq!(a.window_bytes, 128);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.errors.count(ErrorKind::Mismatch), 2);
        assert_eq!(a.timeline.seconds.len(), 4);
        assert_eq!(a.timeline.seconds[3].errors, 2);
        b.api.statuses.insert(401, 3);
        a.api.statuses.insert(200, 5);
        a.merge(&b);
        assert_eq!(a.api.answers(), 8);
        assert_eq!(a.api.statuses.get(&401), Some(&3));
    }

    #[test]
    fn the_timeline_is_bounded() {
        let mut s = Stats::new(3);
        s.on_sent(Some(1_000_000), true);
        assert!(s.timeline.seconds.is_empty());
        assert_eq!(s.sent, 1);
    }

    #[test]
    fn errors_keep_the_first_detail() {
        let mut e = Errors::default();
        e.add(ErrorKind::HandshakeStatus(404), 1, || {
            "HTTP/1.1 404 Not Found".into()
        });
        e.add(ErrorKind::HandshakeStatus(404), 1, || "later".into());
        let all: Vec<_> = e.iter().collect();
        assert_eq!(
            all,
            [(
                &ErrorKind::HandshakeStatus(404),
                2,
                "HTTP/1.1 404 Not Found"
            )]
        );
    }
}
