//! The workloads, one per mode, and what echo and rate share: a
//! connection's sequence of messages in flight.

pub mod broadcast;
pub mod churn;
pub mod conns;
pub mod echo;
pub mod rate;

use wsd::proto::MessageKind;

use crate::payload::{Codec, Mismatch, Stamp};
use crate::stats::ErrorKind;
use crate::worker::Cx;

/// One echo connection's messages in flight: replies come back in order
/// (one TCP stream, one server), so the next reply must carry `expect`.
#[derive(Clone, Copy, Debug, Default)]
pub struct InFlight {
    /// The sequence number of the next message to send.
    pub next_seq: u64,
    /// The sequence number the next reply must carry.
    pub expect: u64,
}

impl InFlight {
    /// Messages sent and not answered.
    pub fn outstanding(&self) -> u64 {
        self.next_seq - self.expect
    }

    /// Checks a reply against the next expected message of sender `id`,
    /// and moves on. A mismatch still answers one message, so a corrupting
    /// server does not stall the pipeline.
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

    /// Takes the next sequence number of connection `idx`: one more in flight.
    pub fn send(&mut self, idx: usize) -> u64 {
        let f = &mut self.each[idx];
        let seq = f.next_seq;
        f.next_seq += 1;
        self.outstanding += 1;
        seq
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
    use crate::payload::Encoding;
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
}
