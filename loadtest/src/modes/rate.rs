//! `rate`: an open loop at a fixed rate, as wrk2 does it. Message k of this
//! thread is due at `start + k / rate`, whatever happened to earlier ones,
//! and its latency is measured from that intended time (coordinated-omission
//! correction) as well as from when it was actually sent.

use wsd::proto::MessageKind;

use super::{count_mismatch, Flights};
use crate::client::{Conn, Phase};
use crate::payload::Codec;
use crate::stamp::Stamp;
use crate::worker::{Cx, Workload};

/// Unsent output above which a connection is passed over for the next
/// message: the server is not reading it.
const MAX_BACKLOG: usize = 1 << 20;

/// The most messages sent in one tick, so a late loop stays responsive.
const MAX_BURST: u64 = 4096;

/// Round-robin scheduling of due messages over a set of connections.
#[derive(Debug)]
pub struct Schedule {
    /// Nanoseconds between messages of this thread.
    interval: f64,
    /// When message 0 is due.
    base: u64,
    /// Messages sent so far.
    k: u64,
    /// Next connection in the rotation.
    rr: usize,
}

impl Schedule {
    /// `rate` messages per second from `base`.
    pub fn new(rate: f64, base: u64) -> Schedule {
        Schedule {
            interval: 1e9 / rate,
            base,
            k: 0,
            rr: 0,
        }
    }

    /// When message `k` is due.
    pub fn due(&self, k: u64) -> u64 {
        self.base + (k as f64 * self.interval) as u64
    }

    /// Calls `send(idx, intended)` for each message due by `now`, rotating
    /// over `order` and skipping connections that `ready` refuses; a
    /// connection `ready` accepts is sent to at once. Returns when the
    /// next message is due.
    pub fn run(
        &mut self,
        now: u64,
        order: &[usize],
        mut ready: impl FnMut(usize) -> bool,
        mut send: impl FnMut(usize, u64),
    ) -> u64 {
        let mut burst = 0;
        'due: while self.due(self.k) <= now && burst < MAX_BURST {
            for _ in 0..order.len() {
                let idx = order[self.rr % order.len()];
                self.rr = self.rr.wrapping_add(1);
                if ready(idx) {
                    send(idx, self.due(self.k));
                    self.k += 1;
                    burst += 1;
                    continue 'due;
                }
            }
            // Every connection is backed up: try again shortly.
            return now + 1_000_000;
        }
        self.due(self.k).max(now)
    }
}

/// The rate workload for one thread.
#[derive(Debug)]
pub struct Rate {
    codec: Codec,
    ids: Vec<u32>,
    flights: Flights,
    /// This thread's share of the total rate.
    rate: f64,
    schedule: Option<Schedule>,
    order: Vec<usize>,
    /// The messages due in a tick, reused so ticks do not allocate.
    due: Vec<(usize, u64)>,
}

impl Rate {
    /// Connections with ids `ids` sharing `rate` messages per second.
    pub fn new(codec: Codec, rate: f64, ids: Vec<u32>) -> Rate {
        Rate {
            codec,
            flights: Flights::new(ids.len()),
            ids,
            rate,
            schedule: None,
            order: Vec::new(),
            due: Vec::new(),
        }
    }
}

impl Workload for Rate {
    fn on_start(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx) {
        self.order = (0..conns.len())
            .filter(|&i| conns[i].as_ref().is_some_and(|c| c.phase() == Phase::Open))
            .collect();
        self.schedule = Some(Schedule::new(self.rate, cx.win.start));
    }

    fn on_message(
        &mut self,
        idx: usize,
        kind: MessageKind,
        payload: &[u8],
        _: &mut Vec<u8>,
        cx: &mut Cx,
    ) {
        let (result, _) = self
            .flights
            .reply(idx, &self.codec, self.ids[idx], kind, payload);
        match result {
            Ok(stamp) => {
                let corrected = cx.now.saturating_sub(stamp.intended_ns);
                if cx.win.measuring(cx.now) {
                    let actual = cx.now.saturating_sub(stamp.sent_ns);
                    cx.stats.uncorrected.saturating_record(actual.max(1));
                }
                cx.received(payload.len(), Some(corrected));
            }
            Err(m) => count_mismatch(cx, idx, m, payload.len()),
        }
    }

    fn on_tick(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx) -> Option<u64> {
        if !cx.win.sending(cx.now) || self.order.is_empty() {
            return None;
        }
        let schedule = self.schedule.as_mut()?;
        let Rate {
            codec,
            ids,
            flights,
            order,
            due,
            ..
        } = self;
        let now = cx.now;
        let ready = |idx: usize| {
            conns[idx]
                .as_ref()
                .is_some_and(|c| c.phase() == Phase::Open && c.pending() < MAX_BACKLOG)
        };
        // `ready` borrows conns immutably; the sends are collected and
        // written after, one output buffer at a time.
        due.clear();
        let next = schedule.run(now, order, ready, |idx, intended| due.push((idx, intended)));
        for &(idx, intended) in due.iter() {
            let Some(conn) = conns[idx].as_mut() else {
                continue;
            };
            let stamp = Stamp {
                intended_ns: intended,
                sent_ns: now,
                id: ids[idx],
                seq: flights.send(idx, codec, intended, now),
            };
            codec.write(conn.out(), &stamp);
            cx.sent();
            cx.dirty.push(idx);
        }
        Some(next)
    }

    fn on_lost(&mut self, idx: usize, cx: &mut Cx) {
        self.flights.lose(idx, cx);
        self.order.retain(|&i| i != idx);
    }

    fn drained(&self) -> bool {
        self.flights.drained()
    }

    fn finish(&mut self, cx: &mut Cx) {
        self.flights.finish(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_messages_rotate_over_connections() {
        let mut s = Schedule::new(1000.0, 0);
        let mut sent = Vec::new();
        let next = s.run(2_500_000, &[4, 7], |_| true, |i, t| sent.push((i, t)));
        assert_eq!(sent, [(4, 0), (7, 1_000_000), (4, 2_000_000)]);
        assert_eq!(next, 3_000_000);
    }

    #[test]
    fn backed_up_connections_are_skipped_and_time_keeps_its_schedule() {
        let mut s = Schedule::new(1000.0, 0);
        let mut sent = Vec::new();
        s.run(1_500_000, &[1, 2], |i| i == 2, |i, t| sent.push((i, t)));
        assert_eq!(sent, [(2, 0), (2, 1_000_000)]);
        let mut none = Vec::new();
        let retry = s.run(5_000_000, &[1, 2], |_| false, |i, t| none.push((i, t)));
        assert!(none.is_empty());
        assert_eq!(retry, 6_000_000);
        // Catching up later keeps the intended times.
        s.run(5_000_000, &[1], |_| true, |i, t| none.push((i, t)));
        assert_eq!(none.first(), Some(&(1, 2_000_000)));
    }

    #[test]
    fn a_burst_is_bounded() {
        let mut s = Schedule::new(1e9, 0);
        let mut n = 0;
        s.run(u64::MAX / 2, &[0], |_| true, |_, _| n += 1);
        assert_eq!(n, MAX_BURST);
    }
}
