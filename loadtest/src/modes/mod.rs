//! The workloads, one per mode, and what echo and rate share: a
//! connection's sequence of messages in flight.

pub mod broadcast;
pub mod churn;
pub mod conns;
pub mod echo;
pub mod rate;

use std::collections::VecDeque;

use wsd::proto::MessageKind;

use crate::payload::{Codec, Mismatch};
use crate::stamp::Stamp;
use crate::stats::ErrorKind;
use crate::worker::Cx;

/// One echo connection's messages in flight: replies come back in order
/// (one TCP stream, one server), so the next reply must carry `expect`.
///
/// A payload too small for a stamp cannot say when it was sent, so its
/// send times wait here, oldest first, and the next reply takes the
/// oldest: that is its latency, since echoes keep their order.
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    /// The sequence number of the next message to send.
    pub next_seq: u64,
    /// The sequence number the next reply must carry.
    pub expect: u64,
    /// Unstamped payloads: (intended, sent) times of the messages in
    /// flight. It grows to the most ever in flight, then stays.
    times: VecDeque<(u64, u64)>,
}

impl InFlight {
    /// Messages sent and not answered.
    pub fn outstanding(&self) -> u64 {
        self.next_seq - self.expect
    }

    /// Takes the next sequence number for a message due at `intended` and
    /// sent at `sent`; unstamped, keeps the two times.
    pub fn send(&mut self, codec: &Codec, intended: u64, sent: u64) -> u64 {
        if !codec.carries_stamp() {
            self.times.push_back((intended, sent));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Checks a reply against the next expected message of sender `id`,
    /// and moves on. A mismatch still answers one message, so a corrupting
    /// server does not stall the pipeline. Unstamped, the stamp returned is
    /// rebuilt from the kept times.
    pub fn reply(
        &mut self,
        codec: &Codec,
        id: u32,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<Stamp, Mismatch> {
        if self.outstanding() == 0 {
            return Err(Mismatch::Order);
        }
        let expect = self.expect;
        self.expect += 1;
        if !codec.carries_stamp() {
            let (intended_ns, sent_ns) = self.times.pop_front().unwrap_or_default();
            codec.verify_content(kind, payload, Some(expect))?;
            return Ok(Stamp {
                intended_ns,
                sent_ns,
                id,
                seq: expect,
            });
        }
        let stamp = codec.verify(kind, payload)?;
        if stamp.id != id || stamp.seq != expect {
            return Err(Mismatch::Order);
        }
        Ok(stamp)
    }

    /// Gives up on what is outstanding and returns how many that was.
    pub fn abandon(&mut self) -> u64 {
        let n = self.outstanding();
        self.expect = self.next_seq;
        self.times.clear();
        n
    }
}

/// Every connection's messages in flight, and how many in all (the run is
/// drained when none are left).
#[derive(Clone, Debug)]
pub struct Flights {
    each: Vec<InFlight>,
    outstanding: u64,
}

impl Flights {
    /// `n` connections, nothing in flight.
    pub fn new(n: usize) -> Flights {
        Flights {
            each: vec![InFlight::default(); n],
            outstanding: 0,
        }
    }

    /// Takes the next sequence number of connection `idx` for a message
    /// due at `intended` and sent at `sent` (see [`InFlight::send`]).
    pub fn send(&mut self, idx: usize, codec: &Codec, intended: u64, sent: u64) -> u64 {
        self.outstanding += 1;
        self.each[idx].send(codec, intended, sent)
    }

    /// Checks a reply on connection `idx` (see [`InFlight::reply`]); also
    /// returns how many were in flight on it before.
    pub fn reply(
        &mut self,
        idx: usize,
        codec: &Codec,
        id: u32,
        kind: MessageKind,
        payload: &[u8],
    ) -> (Result<Stamp, Mismatch>, u64) {
        let f = &mut self.each[idx];
        let had = f.outstanding();
        let result = f.reply(codec, id, kind, payload);
        self.outstanding -= had - f.outstanding();
        (result, had)
    }

    /// Connection `idx` is gone: what it had in flight is counted unanswered.
    pub fn lose(&mut self, idx: usize, cx: &mut Cx) {
        let n = self.each[idx].abandon();
        self.outstanding -= n;
        if n > 0 {
            cx.error(ErrorKind::Unanswered, n, || {
                format!("connection {idx} ended with {n} messages unanswered")
            });
        }
    }

    /// Connection `idx` was dropped on purpose: what it had in flight is
    /// forgotten, not counted; returns how many that was.
    pub fn forget(&mut self, idx: usize) -> u64 {
        let n = self.each[idx].abandon();
        self.outstanding -= n;
        n
    }

    /// Messages sent on connection `idx` and not answered yet.
    pub fn outstanding(&self, idx: usize) -> u64 {
        self.each[idx].outstanding()
    }

    /// Whether every message was answered.
    pub fn drained(&self) -> bool {
        self.outstanding == 0
    }

    /// The run is over: whatever is in flight is unanswered.
    pub fn finish(&mut self, cx: &mut Cx) {
        for idx in 0..self.each.len() {
            self.lose(idx, cx);
        }
    }
}

/// Counts a mismatched reply.
pub fn count_mismatch(cx: &mut Cx, idx: usize, m: Mismatch, bytes: usize) {
    cx.received(bytes, None);
    cx.error(ErrorKind::Mismatch, 1, || {
        format!("connection {idx}: {} ({bytes}-byte reply)", m.as_str())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::Encoding;
    use wsd::proto::frame::{decode_header, Parsing};
    use wsd::proto::mask::apply_mask;

    fn reply(codec: &Codec, s: &Stamp) -> Vec<u8> {
        let mut out = Vec::new();
        codec.write(&mut out, s);
        let Ok(Parsing::Done { value, offset }) = decode_header(&out) else {
            panic!("header");
        };
        let mut p = out[offset..].to_vec();
        apply_mask(&mut p, value.mask.expect("masked"), 0);
        p
    }

    #[test]
    fn replies_must_come_in_order() {
        let codec = Codec::new(Encoding::Binary, 64, [1, 2, 3, 4]);
        let mut f = InFlight::default();
        let stamp = |seq| Stamp {
            intended_ns: 5,
            sent_ns: 5,
            id: 3,
            seq,
        };
        f.next_seq = 2;
        let kind = MessageKind::Binary;
        assert_eq!(
            f.reply(&codec, 3, kind, &reply(&codec, &stamp(1))),
            Err(Mismatch::Order)
        );
        assert_eq!(
            f.reply(&codec, 3, kind, &reply(&codec, &stamp(1))),
            Ok(stamp(1))
        );
        assert_eq!(
            f.reply(&codec, 3, kind, &reply(&codec, &stamp(2))),
            Err(Mismatch::Order)
        );
        f.next_seq = 3;
        assert_eq!(
            f.reply(&codec, 4, kind, &reply(&codec, &stamp(2))),
            Err(Mismatch::Order)
        );
        assert_eq!(f.outstanding(), 0);
        f.next_seq = 10;
        assert_eq!(f.abandon(), 7);
    }

    #[test]
    fn unstamped_replies_take_the_oldest_send_time_and_must_come_in_order() {
        let codec = Codec::new(Encoding::Text, 4, [1, 2, 3, 4]);
        let mut f = InFlight::default();
        let mut frames = Vec::new();
        for (i, t) in [(100, 110), (200, 210), (300, 310)].into_iter().enumerate() {
            let seq = f.send(&codec, t.0, t.1);
            assert_eq!(seq, i as u64);
            let stamp = Stamp {
                intended_ns: 0,
                sent_ns: 0,
                id: 0,
                seq,
            };
            frames.push(reply(&codec, &stamp));
        }
        let kind = MessageKind::Text;
        let got = f.reply(&codec, 7, kind, &frames[0]).expect("first");
        assert_eq!(
            (got.intended_ns, got.sent_ns, got.id, got.seq),
            (100, 110, 7, 0)
        );
        // The third message's echo where the second's was due: its time is
        // used up with it, so the last reply still gets the last time.
        assert_eq!(f.reply(&codec, 7, kind, &frames[2]), Err(Mismatch::Order));
        let got = f.reply(&codec, 7, kind, &frames[2]).expect("third");
        assert_eq!((got.sent_ns, got.seq), (310, 2));
        assert_eq!(f.outstanding(), 0);
        f.send(&codec, 400, 410);
        assert_eq!(f.abandon(), 1);
        f.send(&codec, 500, 510);
        let got = f.reply(
            &codec,
            7,
            kind,
            &reply(
                &codec,
                &Stamp {
                    intended_ns: 0,
                    sent_ns: 0,
                    id: 0,
                    seq: 4,
                },
            ),
        );
        assert_eq!(got.map(|s| s.sent_ns), Ok(510));
    }
}
