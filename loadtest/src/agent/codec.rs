//! An agent's counts on the wire: every counter as a number, every
//! histogram in HdrHistogram's V2 binary form (base64), so the controller
//! merges the very histograms the agent recorded and its percentiles are
//! those of one histogram holding every sample.
//!
//! Decoding trusts nothing: each histogram's header must match the bounds
//! wsload records with before the counts are read, and every list is
//! bounded by what the controller planned.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::{Counter, Histogram};
use serde::{Deserialize, Serialize};
use wsd::proto::ProtocolError;

use crate::stats::{
    latency_histogram, second_histogram, ApiTally, ChurnTally, ErrorKind, Errors, Second, Stats,
    SubscriberTally, Timeline, Wire,
};

/// The V2 header: cookie, payload length, then the bounds.
const HEADER: usize = 40;
/// Error kinds an agent may report (each HTTP status is one).
const MAX_ERROR_KINDS: usize = 1024;
/// An error's detail is cut to this many bytes.
const MAX_DETAIL: usize = 512;

/// What an agent measured, as sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct Doc {
    latency: String,
    uncorrected: String,
    connect: String,
    counts: [u64; 8],
    /// Nanoseconds from the agent's start.
    connect_span_ns: Option<(u64, u64)>,
    errors: Vec<(String, u16, u64, String)>,
    timeline: Vec<([u64; 7], String)>,
    publisher_received: u64,
    subscribers: Vec<[u64; 4]>,
    node_latency: Vec<String>,
    churn: [u64; 8],
    api_statuses: Vec<(u16, u64)>,
    api_latency: String,
    wire: [u64; 4],
}

fn put<T: Counter>(h: &Histogram<T>) -> String {
    let mut buf = Vec::new();
    // Serialising into a Vec cannot fail for wsload's bounds.
    let _ = V2Serializer::new().serialize(h, &mut buf);
    B64.encode(buf)
}

/// A histogram back, if its header carries `like`'s bounds exactly.
fn take<T: Counter>(s: &str, like: &Histogram<T>) -> Result<Histogram<T>, String> {
    let blob = B64.decode(s).map_err(|_| "a histogram is not base64")?;
    let mut want = Vec::new();
    let _ = V2Serializer::new().serialize(like, &mut want);
    let (Some(head), Some(want_head)) = (blob.get(..HEADER), want.get(..HEADER)) else {
        return Err("a histogram is truncated".into());
    };
    // Cookie and bounds (bytes 0..4 and 8..40) as ours; the payload
    // length (4..8) is what follows.
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if head[..4] != want_head[..4] || head[8..] != want_head[8..] || len != blob.len() - HEADER {
        return Err("a histogram has other bounds than wsload's".into());
    }
    Deserializer::new()
        .deserialize(&mut &blob[..])
        .map_err(|e| format!("a histogram does not decode: {e:?}"))
}

fn kind_name(k: &ErrorKind) -> (&'static str, u16, Option<&'static str>) {
    match *k {
        ErrorKind::Refused => ("refused", 0, None),
        ErrorKind::Reset => ("reset", 0, None),
        ErrorKind::Timeout => ("timeout", 0, None),
        ErrorKind::HandshakeStatus(c) => ("handshake_status", c, None),
        ErrorKind::HandshakeMalformed => ("handshake_malformed", 0, None),
        ErrorKind::BadAccept => ("bad_accept", 0, None),
        ErrorKind::Subprotocol => ("subprotocol", 0, None),
        ErrorKind::Protocol(e) => ("protocol", 0, Some(e)),
        ErrorKind::UnexpectedClose(c) => ("unexpected_close", c, None),
        ErrorKind::UnexpectedEof => ("unexpected_eof", 0, None),
        ErrorKind::Mismatch => ("mismatch", 0, None),
        ErrorKind::Unanswered => ("unanswered", 0, None),
        ErrorKind::CloseTimeout => ("close_timeout", 0, None),
        ErrorKind::Io => ("io", 0, None),
        ErrorKind::Tls => ("tls", 0, None),
        ErrorKind::Extension => ("extension", 0, None),
        ErrorKind::DeflateDeclined => ("deflate_declined", 0, None),
        ErrorKind::ApiStatus(c) => ("api_status", c, None),
        ErrorKind::ApiAnswer => ("api_answer", 0, None),
    }
}

/// Every protocol error's text, so an agent's `protocol` error maps back
/// to the same `&'static str`.
const PROTOCOL_ERRORS: [ProtocolError; 18] = [
    ProtocolError::ReservedBits,
    ProtocolError::ReservedOpcode,
    ProtocolError::UnmaskedFrame,
    ProtocolError::MaskedFrame,
    ProtocolError::LengthTopBit,
    ProtocolError::FragmentedControl,
    ProtocolError::ControlTooLong,
    ProtocolError::UnexpectedContinuation,
    ProtocolError::ExpectedContinuation,
    ProtocolError::CloseTooShort,
    ProtocolError::InvalidCloseCode,
    ProtocolError::InvalidUtf8,
    ProtocolError::MessageTooBig,
    ProtocolError::FrameTooBig,
    ProtocolError::TooManyFragments,
    ProtocolError::CompressedControl,
    ProtocolError::CompressedContinuation,
    ProtocolError::InvalidCompressed,
];

fn kind_of(name: &str, code: u16, detail: &str) -> Result<ErrorKind, String> {
    Ok(match name {
        "refused" => ErrorKind::Refused,
        "reset" => ErrorKind::Reset,
        "timeout" => ErrorKind::Timeout,
        "handshake_status" => ErrorKind::HandshakeStatus(code),
        "handshake_malformed" => ErrorKind::HandshakeMalformed,
        "bad_accept" => ErrorKind::BadAccept,
        "subprotocol" => ErrorKind::Subprotocol,
        "protocol" => ErrorKind::Protocol(
            PROTOCOL_ERRORS
                .iter()
                .map(|e| e.as_str())
                .find(|s| detail.ends_with(s))
                .unwrap_or("reported by an agent"),
        ),
        "unexpected_close" => ErrorKind::UnexpectedClose(code),
        "unexpected_eof" => ErrorKind::UnexpectedEof,
        "mismatch" => ErrorKind::Mismatch,
        "unanswered" => ErrorKind::Unanswered,
        "close_timeout" => ErrorKind::CloseTimeout,
        "io" => ErrorKind::Io,
        "tls" => ErrorKind::Tls,
        "extension" => ErrorKind::Extension,
        "deflate_declined" => ErrorKind::DeflateDeclined,
        "api_status" => ErrorKind::ApiStatus(code),
        "api_answer" => ErrorKind::ApiAnswer,
        _ => return Err(format!("an unknown error kind '{name}'")),
    })
}

fn wire(w: &Wire) -> [u64; 4] {
    [w.frames_out, w.frames_in, w.msg_out, w.msg_in]
}

fn unwire(a: [u64; 4]) -> Wire {
    Wire {
        frames_out: a[0],
        frames_in: a[1],
        msg_out: a[2],
        msg_in: a[3],
    }
}

fn since(epoch: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(epoch).as_nanos() as u64
}

/// `s` as sent; times are counted from `epoch`, the agent's start.
pub fn encode(s: &Stats, epoch: Instant) -> Doc {
    let c = &s.churn;
    Doc {
        latency: put(&s.latency),
        uncorrected: put(&s.uncorrected),
        connect: put(&s.connect),
        counts: [
            s.sent,
            s.received,
            s.window_sent,
            s.window_received,
            s.window_bytes,
            s.opened,
            s.failed,
            0,
        ],
        connect_span_ns: s
            .connect_span
            .map(|(a, b)| (since(epoch, a), since(epoch, b))),
        errors: s
            .errors
            .iter()
            .map(|(k, n, d)| {
                let (name, code, _) = kind_name(k);
                (name.to_string(), code, n, d.to_string())
            })
            .collect(),
        timeline: s
            .timeline
            .seconds
            .iter()
            .map(|r| {
                let w = wire(&r.wire);
                let counts = [r.sent, r.received, r.errors, w[0], w[1], w[2], w[3]];
                (counts, put(&r.latency))
            })
            .collect(),
        publisher_received: s.publisher_received,
        subscribers: s
            .subscribers
            .iter()
            .map(|t| [u64::from(t.node), t.unique, t.duplicated, t.out_of_order])
            .collect(),
        node_latency: s.node_latency.iter().map(put).collect(),
        churn: [
            c.clean,
            c.abrupt,
            c.mid_frame,
            c.reset,
            c.unexpected,
            c.clean_sent,
            c.clean_received,
            c.abandoned,
        ],
        api_statuses: s.api.statuses.iter().map(|(&k, &n)| (k, n)).collect(),
        api_latency: put(&s.api.latency),
        wire: wire(&s.wire),
    }
}

/// What the controller accepts from one agent.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Timeline rows of the run.
    pub rows: usize,
    /// Connections planned for the agent (subscriber tallies).
    pub connections: usize,
    /// Targets of the run (per-node latencies).
    pub nodes: usize,
}

/// The counts back; times are placed after `epoch`, the agent's start as
/// the controller saw it.
pub fn decode(d: &Doc, epoch: Instant, b: Bounds) -> Result<Stats, String> {
    if d.timeline.len() > b.rows
        || d.subscribers.len() > b.connections
        || d.node_latency.len() > b.nodes
        || d.errors.len() > MAX_ERROR_KINDS
        || d.api_statuses.len() > MAX_ERROR_KINDS
    {
        return Err("more rows, tallies or kinds than the run can have".into());
    }
    let lat = latency_histogram();
    let mut s = Stats::new(b.rows);
    s.latency = take(&d.latency, &lat)?;
    s.uncorrected = take(&d.uncorrected, &lat)?;
    s.connect = take(&d.connect, &lat)?;
    let [sent, received, ws, wr, wb, opened, failed, _] = d.counts;
    (s.sent, s.received, s.window_sent, s.window_received) = (sent, received, ws, wr);
    (s.window_bytes, s.opened, s.failed) = (wb, opened, failed);
    let at = |ns: u64| epoch + Duration::from_nanos(ns);
    s.connect_span = d.connect_span_ns.map(|(a, b)| (at(a), at(b)));
    let mut errors = Errors::default();
    for (name, code, n, detail) in &d.errors {
        let cut = detail
            .char_indices()
            .nth(MAX_DETAIL)
            .map_or(detail.len(), |(i, _)| i);
        let detail = detail.get(..cut).unwrap_or_default();
        errors.add(kind_of(name, *code, detail)?, *n, || detail.to_string());
    }
    s.errors = errors;
    let sec = second_histogram();
    let mut seconds = Vec::with_capacity(d.timeline.len());
    for (c, h) in &d.timeline {
        seconds.push(Second {
            sent: c[0],
            received: c[1],
            errors: c[2],
            wire: unwire([c[3], c[4], c[5], c[6]]),
            latency: take(h, &sec)?,
        });
    }
    s.timeline = Timeline { seconds };
    s.publisher_received = d.publisher_received;
    s.subscribers = d
        .subscribers
        .iter()
        .map(|t| SubscriberTally {
            node: u32::try_from(t[0]).unwrap_or(u32::MAX),
            unique: t[1],
            duplicated: t[2],
            out_of_order: t[3],
        })
        .collect();
    s.node_latency = d
        .node_latency
        .iter()
        .map(|h| take(h, &lat))
        .collect::<Result<_, _>>()?;
    let c = d.churn;
    s.churn = ChurnTally {
        clean: c[0],
        abrupt: c[1],
        mid_frame: c[2],
        reset: c[3],
        unexpected: c[4],
        clean_sent: c[5],
        clean_received: c[6],
        abandoned: c[7],
    };
    s.api = ApiTally {
        statuses: d.api_statuses.iter().copied().collect::<BTreeMap<_, _>>(),
        latency: take(&d.api_latency, &lat)?,
    };
    s.wire = unwire(d.wire);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        rows: 8,
        connections: 4,
        nodes: 2,
    };

    fn sample() -> Stats {
        let mut s = Stats::new(8);
        for (i, ns) in [1_000u64, 25_000, 3_000_000, 7].into_iter().enumerate() {
            s.on_sent(Some(i), true);
            s.on_received(Some(i), true, 64, Some(ns));
        }
        s.connect.saturating_record(123_456);
        s.on_error(Some(2), ErrorKind::HandshakeStatus(503), 3, || "503".into());
        s.on_error(Some(2), ErrorKind::Protocol("bad"), 1, || {
            format!(
                "server broke RFC 6455: {}",
                ProtocolError::MaskedFrame.as_str()
            )
        });
        s.subscribers.push(SubscriberTally {
            node: 1,
            unique: 5,
            duplicated: 1,
            out_of_order: 2,
        });
        s.api.statuses.insert(200, 9);
        s
    }

    #[test]
    fn counts_and_histograms_survive_the_wire() {
        let epoch = Instant::now();
        let s = sample();
        let json = serde_json::to_string(&encode(&s, epoch)).unwrap();
        let back = decode(&serde_json::from_str(&json).unwrap(), epoch, B).unwrap();
        assert_eq!(back.latency, s.latency);
        assert_eq!(back.connect, s.connect);
        assert_eq!((back.sent, back.received), (4, 4));
        assert_eq!(back.timeline.seconds.len(), 4);
        assert_eq!(
            back.timeline.seconds[2].latency,
            s.timeline.seconds[2].latency
        );
        assert_eq!(back.errors.count(ErrorKind::HandshakeStatus(503)), 3);
        let protocol = ErrorKind::Protocol(ProtocolError::MaskedFrame.as_str());
        assert_eq!(back.errors.count(protocol), 1);
        assert_eq!(back.subscribers, s.subscribers);
        assert_eq!(back.api.statuses, s.api.statuses);
    }

    #[test]
    fn merged_percentiles_are_those_of_one_histogram_of_all_samples() {
        let epoch = Instant::now();
        let mut all = latency_histogram();
        let mut merged = Stats::new(8);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for agent in 0..3u32 {
            let mut s = Stats::new(8);
            for _ in 0..5000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let ns = 1_000 + x % (50_000_000 >> agent);
                s.latency.saturating_record(ns);
                all.saturating_record(ns);
            }
            let json = serde_json::to_string(&encode(&s, epoch)).unwrap();
            merged.merge(&decode(&serde_json::from_str(&json).unwrap(), epoch, B).unwrap());
        }
        for q in [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(
                merged.latency.value_at_quantile(q),
                all.value_at_quantile(q),
                "{q}"
            );
        }
        assert_eq!(merged.latency, all);
    }

    #[test]
    fn histograms_with_other_bounds_are_refused() {
        let epoch = Instant::now();
        let mut d = encode(&sample(), epoch);
        let other: Histogram<u64> = Histogram::new_with_bounds(1, 1 << 60, 5).unwrap();
        d.latency = put(&other);
        assert!(decode(&d, epoch, B).is_err());
        let mut d = encode(&sample(), epoch);
        d.connect = B64.encode([0u8; 12]);
        assert!(decode(&d, epoch, B).is_err());
    }

    #[test]
    fn corrupted_histograms_fail_without_panicking() {
        let mut h = latency_histogram();
        for ns in [1u64, 999, 12_345, 7_000_000, 3_000_000_000] {
            h.saturating_record(ns);
        }
        let mut blob = Vec::new();
        V2Serializer::new().serialize(&h, &mut blob).unwrap();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..2000 {
            let mut bad = blob.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = HEADER + (x as usize) % (bad.len() - HEADER);
                bad[i] ^= (x >> 32) as u8 | 1;
            }
            // Decoding may fail or give another histogram; it must not panic.
            let _ = take(&B64.encode(&bad), &h);
        }
        let cut = B64.encode(&blob[..blob.len() - 1]);
        assert!(take(&cut, &h).is_err());
    }

    #[test]
    fn more_rows_than_planned_are_refused() {
        let epoch = Instant::now();
        let d = encode(&sample(), epoch);
        let b = Bounds { rows: 3, ..B };
        assert!(decode(&d, epoch, b).is_err());
        let b = Bounds {
            connections: 0,
            ..B
        };
        assert!(decode(&d, epoch, b).is_err());
    }
}
