//! `echo`: a closed loop. Each connection keeps `depth` messages in flight
//! and sends the next as soon as a reply comes back.

use wsd::proto::MessageKind;

use super::{count_mismatch, InFlight};
use crate::client::{Conn, Phase};
use crate::payload::{Codec, Stamp};
use crate::stats::ErrorKind;
use crate::worker::{Cx, Workload};

/// The echo workload for one thread.
#[derive(Debug)]
pub struct Echo {
    codec: Codec,
    depth: u32,
    /// Each local connection's id, unique across threads.
    ids: Vec<u32>,
    flights: Vec<InFlight>,
    outstanding: u64,
}

impl Echo {
    /// Connections with ids `ids`, `depth` messages in flight each.
    pub fn new(codec: Codec, depth: u32, ids: Vec<u32>) -> Echo {
        let flights = vec![InFlight::default(); ids.len()];
        Echo {
            codec,
            depth,
            ids,
            flights,
            outstanding: 0,
        }
    }

    fn send(&mut self, idx: usize, out: &mut Vec<u8>, cx: &mut Cx) {
        let f = &mut self.flights[idx];
        let stamp = Stamp {
            intended_ns: cx.now,
            sent_ns: cx.now,
            id: self.ids[idx],
            seq: f.next_seq,
        };
        f.next_seq += 1;
        self.outstanding += 1;
        self.codec.write(out, &stamp);
        cx.sent();
    }
}

impl Workload for Echo {
    fn on_start(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx) {
        for (idx, conn) in conns.iter_mut().enumerate() {
            let Some(conn) = conn.as_mut().filter(|c| c.phase() == Phase::Open) else {
                continue;
            };
            for _ in 0..self.depth {
                self.send(idx, conn.out(), cx);
            }
            cx.dirty.push(idx);
        }
    }

    fn on_message(
        &mut self,
        idx: usize,
        kind: MessageKind,
        payload: &[u8],
        out: &mut Vec<u8>,
        cx: &mut Cx,
    ) {
        let had = self.flights[idx].outstanding();
        let result = self.flights[idx].reply(&self.codec, self.ids[idx], kind, payload);
        self.outstanding -= had - self.flights[idx].outstanding();
        match result {
            Ok(stamp) => cx.received(payload.len(), Some(cx.now.saturating_sub(stamp.sent_ns))),
            Err(m) => count_mismatch(cx, idx, m, payload.len()),
        }
        if had > 0 && cx.win.sending(cx.now) {
            self.send(idx, out, cx);
        }
    }

    fn on_tick(&mut self, _: &mut [Option<Conn>], _: &mut Cx) -> Option<u64> {
        None
    }

    fn on_lost(&mut self, idx: usize, cx: &mut Cx) {
        let n = self.flights[idx].abandon();
        self.outstanding -= n;
        if n > 0 {
            cx.error(ErrorKind::Unanswered, n, || {
                format!("connection {idx} ended with {n} messages unanswered")
            });
        }
    }

    fn drained(&self) -> bool {
        self.outstanding == 0
    }

    fn finish(&mut self, cx: &mut Cx) {
        for idx in 0..self.flights.len() {
            self.on_lost(idx, cx);
        }
    }
}
