//! `churn`: connections that keep opening, echoing and closing. Each slot
//! connects, sends `messages` echo messages with `depth` in flight,
//! verifies every reply, then ends the connection and opens the next one:
//! cleanly (Close 1000, the server's Close, its end of stream) or, for a
//! seeded-random `abrupt` percent of connections, by dropping it at a
//! random point, sometimes with half a frame written, with a FIN or an RST.
//!
//! Messages in flight on a connection we drop ourselves are not lost; every
//! message on any other connection must be echoed.

use wsd::proto::MessageKind;

use super::{count_mismatch, Flights};
use crate::client::{Conn, Phase};
use crate::payload::Codec;
use crate::rng::SplitMix;
use crate::stamp::Stamp;
use crate::worker::{Cx, Ended, Request, Workload};

/// Consecutive failed connects after which a slot gives up.
const MAX_CONNECT_FAILURES: u32 = 3;

/// How the current connection of a slot is to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Close 1000 once every message is answered.
    Clean,
    /// Dropped once `after` replies are in.
    Abort {
        /// Replies to wait for first.
        after: u32,
        /// Write half a frame just before.
        mid_frame: bool,
        /// RST rather than FIN.
        reset: bool,
    },
}

/// One slot's current connection.
#[derive(Clone, Copy, Debug)]
struct Slot {
    sent: u32,
    received: u32,
    plan: Plan,
    /// An abort was requested: replies still in the read buffer are ignored.
    aborting: bool,
    /// Consecutive connects that failed.
    failures: u32,
}

/// The churn workload for one thread.
#[derive(Debug)]
pub struct Churn {
    codec: Codec,
    messages: u32,
    depth: u32,
    abrupt_pct: u32,
    rng: SplitMix,
    /// Each local slot's id, unique across threads.
    ids: Vec<u32>,
    flights: Flights,
    slots: Vec<Slot>,
}

impl Churn {
    /// Slots with ids `ids`: `messages` per connection with `depth` in
    /// flight, `abrupt_pct` percent of connections dropped, chosen by a
    /// PRNG seeded with `seed`.
    pub fn new(
        codec: Codec,
        messages: u32,
        depth: u32,
        abrupt_pct: u32,
        seed: u64,
        ids: Vec<u32>,
    ) -> Churn {
        let slot = Slot {
            sent: 0,
            received: 0,
            plan: Plan::Clean,
            aborting: false,
            failures: 0,
        };
        Churn {
            codec,
            messages,
            depth,
            abrupt_pct,
            rng: SplitMix(seed),
            flights: Flights::new(ids.len()),
            slots: vec![slot; ids.len()],
            ids,
        }
    }

    fn stamp(&self, idx: usize, seq: u64, now: u64) -> Stamp {
        Stamp {
            intended_ns: now,
            sent_ns: now,
            id: self.ids[idx],
            seq,
        }
    }

    fn send(&mut self, idx: usize, out: &mut Vec<u8>, cx: &mut Cx) {
        let seq = self.flights.send(idx, &self.codec, cx.now, cx.now);
        let stamp = self.stamp(idx, seq, cx.now);
        self.codec.write(out, &stamp);
        self.slots[idx].sent += 1;
        cx.sent();
    }

    /// A new connection in slot `idx`: draws how it ends and starts sending.
    fn begin(&mut self, idx: usize, out: &mut Vec<u8>, cx: &mut Cx) {
        let plan = if (self.rng.below(100) as u64) < u64::from(self.abrupt_pct) {
            let bits = self.rng.next();
            Plan::Abort {
                after: (bits % (u64::from(self.messages) + 1)) as u32,
                mid_frame: bits & (1 << 40) != 0,
                reset: bits & (1 << 41) != 0,
            }
        } else {
            Plan::Clean
        };
        let slot = &mut self.slots[idx];
        slot.sent = 0;
        slot.received = 0;
        slot.plan = plan;
        slot.aborting = false;
        if !cx.win.sending(cx.now) {
            cx.requests.push(Request::Close(idx));
            return;
        }
        for _ in 0..self.depth.min(self.messages) {
            self.send(idx, out, cx);
        }
        self.next_step(idx, out, cx);
    }

    /// After a send or a reply: drop the connection, close it, or go on.
    fn next_step(&mut self, idx: usize, out: &mut Vec<u8>, cx: &mut Cx) {
        let slot = self.slots[idx];
        match slot.plan {
            Plan::Abort {
                after,
                mid_frame,
                reset,
            } if slot.received >= after => {
                self.slots[idx].aborting = true;
                self.flights.forget(idx);
                cx.stats.churn.abandoned += u64::from(slot.sent - slot.received);
                if mid_frame {
                    // Half of a further message's frame, never completed.
                    let stamp = self.stamp(idx, u64::MAX, cx.now);
                    let start = out.len();
                    self.codec.write(out, &stamp);
                    let half = (out.len() - start) / 2;
                    out.truncate(start + half);
                }
                cx.requests.push(Request::Abort { idx, reset });
            }
            _ if slot.received == self.messages => cx.requests.push(Request::Close(idx)),
            _ => {}
        }
    }
}

impl Workload for Churn {
    fn on_start(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx) {
        for (idx, conn) in conns.iter_mut().enumerate() {
            let Some(conn) = conn.as_mut().filter(|c| c.phase() == Phase::Open) else {
                continue;
            };
            self.begin(idx, conn.out(), cx);
            cx.dirty.push(idx);
        }
    }

    fn on_open(&mut self, idx: usize, out: &mut Vec<u8>, cx: &mut Cx) {
        self.begin(idx, out, cx);
    }

    fn on_message(
        &mut self,
        idx: usize,
        kind: MessageKind,
        payload: &[u8],
        out: &mut Vec<u8>,
        cx: &mut Cx,
    ) {
        if self.slots[idx].aborting {
            return;
        }
        let (result, _) = self
            .flights
            .reply(idx, &self.codec, self.ids[idx], kind, payload);
        match result {
            Ok(stamp) => cx.received(payload.len(), Some(cx.now.saturating_sub(stamp.sent_ns))),
            Err(m) => count_mismatch(cx, idx, m, payload.len()),
        }
        let slot = &mut self.slots[idx];
        slot.received += 1;
        if slot.sent < self.messages && cx.win.sending(cx.now) {
            self.send(idx, out, cx);
        }
        if cx.win.sending(cx.now) || self.flights.outstanding(idx) == 0 {
            self.next_step(idx, out, cx);
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

    fn reopen(&mut self, idx: usize, how: Ended, cx: &mut Cx) -> bool {
        let slot = &mut self.slots[idx];
        let tally = &mut cx.stats.churn;
        match how {
            Ended::Closed => {
                tally.clean += 1;
                tally.clean_sent += u64::from(slot.sent);
                tally.clean_received += u64::from(slot.received);
            }
            Ended::Aborted => {
                tally.abrupt += 1;
                if let Plan::Abort {
                    mid_frame, reset, ..
                } = slot.plan
                {
                    tally.mid_frame += u64::from(mid_frame);
                    tally.reset += u64::from(reset);
                }
            }
            Ended::Lost => tally.unexpected += 1,
            Ended::Unopened => {}
        }
        slot.failures = match how {
            Ended::Unopened => slot.failures + 1,
            _ => 0,
        };
        slot.failures < MAX_CONNECT_FAILURES && cx.win.sending(cx.now)
    }
}
