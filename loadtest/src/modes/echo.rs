//! `echo`: a closed loop. Each connection keeps `depth` messages in flight
//! and sends the next as soon as a reply comes back.

use wsd::proto::MessageKind;

use super::{count_mismatch, Flights};
use crate::client::{Conn, Phase};
use crate::payload::Codec;
use crate::stamp::Stamp;
use crate::worker::{Cx, Workload};

/// The echo workload for one thread.
#[derive(Debug)]
pub struct Echo {
    codec: Codec,
    depth: u32,
    /// Each local connection's id, unique across threads.
    ids: Vec<u32>,
    flights: Flights,
}

impl Echo {
    /// Connections with ids `ids`, `depth` messages in flight each.
    pub fn new(codec: Codec, depth: u32, ids: Vec<u32>) -> Echo {
        Echo {
            codec,
            depth,
            flights: Flights::new(ids.len()),
            ids,
        }
    }

    fn send(&mut self, idx: usize, out: &mut Vec<u8>, cx: &mut Cx) {
        let stamp = Stamp {
            intended_ns: cx.now,
            sent_ns: cx.now,
            id: self.ids[idx],
            seq: self.flights.send(idx, &self.codec, cx.now, cx.now),
        };
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
        let (result, had) = self
            .flights
            .reply(idx, &self.codec, self.ids[idx], kind, payload);
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
        self.flights.lose(idx, cx);
    }

    fn drained(&self) -> bool {
        self.flights.drained()
    }

    fn finish(&mut self, cx: &mut Cx) {
        self.flights.finish(cx);
    }
}
