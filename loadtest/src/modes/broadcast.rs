//! `broadcast`: publishers send at a fixed total rate; every subscriber
//! should receive every message exactly once, in each publisher's order.
//!
//! Each subscriber tracks, per publisher, the highest sequence number seen
//! and a 64-message window below it, which tells a late message (out of
//! order) from one seen before (duplicated). What never arrives is lost:
//! counted at the end as published minus distinct messages received.
//!
//! A payload too small for a stamp names neither its publisher nor its
//! sequence number: a subscriber then checks each delivery's content and
//! counts them, and the report takes a surplus over the published count
//! as duplicates. There is no order check and no fan-out latency.
//!
//! With `--publish-url` the publishers are HTTP connections to the publish
//! API ([`crate::publish`]): each message is a `POST` whose body is the
//! payload, one in flight per publisher; the answers are counted by status
//! and timed, and any but 200 is an error.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use wsd::proto::MessageKind;

use super::count_mismatch;
use super::rate::Schedule;
use crate::client::{Conn, Phase};
use crate::payload::{Codec, Mismatch};
use crate::publish::answer::{describe, Answer};
use crate::publish::Api;
use crate::stamp::Stamp;
use crate::stats::{latency_histogram, ErrorKind, SubscriberTally};
use crate::worker::{Cx, Shared, Workload};

/// What one local connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Publishes, with this publisher id.
    Publisher(u32),
    /// Subscribes; its index among this thread's subscribers.
    Subscriber(usize),
}

/// One subscriber's view of one publisher's sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Track {
    /// One past the highest sequence number seen.
    high: u64,
    /// Bit i: sequence number `high - 1 - i` was seen.
    seen: u64,
}

/// How a delivery fits a publisher's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// New, and after everything before it.
    InOrder,
    /// New, but after a later message.
    OutOfOrder,
    /// Seen before.
    Duplicate,
}

impl Track {
    /// Records sequence number `seq`.
    pub fn arrive(&mut self, seq: u64) -> Arrival {
        if seq >= self.high {
            let shift = seq + 1 - self.high;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.high = seq + 1;
            return Arrival::InOrder;
        }
        let back = self.high - 1 - seq;
        if back >= 64 {
            // Older than the window: assume it is new, and late.
            return Arrival::OutOfOrder;
        }
        let bit = 1u64 << back;
        if self.seen & bit != 0 {
            Arrival::Duplicate
        } else {
            self.seen |= bit;
            Arrival::OutOfOrder
        }
    }
}

/// `--publish-url`: the request every publish sends, and each publisher's
/// request in flight.
#[derive(Debug)]
pub struct ApiPublishers {
    api: Api,
    /// By connection index: when its request in flight was written (ns).
    in_flight: Vec<Option<u64>>,
}

impl ApiPublishers {
    /// Publishers on `n` connections sending `api`'s requests.
    pub fn new(api: Api, n: usize) -> ApiPublishers {
        ApiPublishers {
            api,
            in_flight: vec![None; n],
        }
    }

    /// Takes publisher `idx` for a request written at `now`, if it has
    /// none in flight.
    fn claim(&mut self, idx: usize, now: u64) -> bool {
        match self.in_flight.get_mut(idx) {
            Some(slot @ None) => {
                *slot = Some(now);
                true
            }
            _ => false,
        }
    }
}

/// The broadcast workload for one thread.
#[derive(Debug)]
pub struct Broadcast {
    codec: Codec,
    shared: Arc<Shared>,
    roles: Vec<Role>,
    publishers: u32,
    /// Next sequence number of each local publisher, by local index.
    pub_seq: Vec<u64>,
    /// Local publisher connections, in rotation order.
    order: Vec<usize>,
    /// This thread's share of the rate.
    rate: f64,
    schedule: Option<Schedule>,
    /// Per subscriber, per publisher.
    tracks: Vec<Vec<Track>>,
    tallies: Vec<SubscriberTally>,
    /// Over several nodes: each subscriber's node, for per-node latency.
    sub_nodes: Option<Vec<u32>>,
    live_subs: Vec<bool>,
    /// Whether this thread has said its publishers are done.
    done: bool,
    due: Vec<(usize, u64)>,
    /// `--publish-url`: publishers are HTTP connections.
    api: Option<ApiPublishers>,
    /// The publishers run in another process (an agent's share): their
    /// stamps' times are on another clock, so no fan-out latency is
    /// recorded, and the published count is not known here, so the grace
    /// period is waited out.
    elsewhere: bool,
}

impl Broadcast {
    /// A thread's share: its connections' roles, with several nodes each
    /// subscriber's node, `publishers` in total, and `rate` messages per
    /// second for the local publishers.
    pub fn new(
        codec: Codec,
        shared: Arc<Shared>,
        roles: Vec<Role>,
        sub_nodes: Option<Vec<u32>>,
        publishers: u32,
        rate: f64,
    ) -> Broadcast {
        let subs = roles
            .iter()
            .filter(|r| matches!(r, Role::Subscriber(_)))
            .count();
        let node = |s: usize| sub_nodes.as_ref().and_then(|n| n.get(s).copied());
        let tallies = (0..subs)
            .map(|s| SubscriberTally {
                node: node(s).unwrap_or(0),
                ..SubscriberTally::default()
            })
            .collect();
        Broadcast {
            codec,
            shared,
            pub_seq: vec![0; roles.len()],
            roles,
            publishers,
            order: Vec::new(),
            rate,
            schedule: None,
            tracks: vec![vec![Track::default(); publishers as usize]; subs],
            tallies,
            sub_nodes,
            live_subs: vec![true; subs],
            done: false,
            due: Vec::new(),
            api: None,
            elsewhere: false,
        }
    }

    /// Publishes through the HTTP API instead of WebSocket messages.
    pub fn with_api(mut self, api: Option<ApiPublishers>) -> Broadcast {
        self.api = api;
        self
    }

    /// Whether the publishers run in another process.
    pub fn publishers_elsewhere(mut self, elsewhere: bool) -> Broadcast {
        self.elsewhere = elsewhere;
        self
    }

    fn publishers_done(&mut self) {
        if !self.done {
            self.done = true;
            self.shared.publishers_done.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn deliver(&mut self, sub: usize, kind: MessageKind, payload: &[u8], cx: &mut Cx) {
        if !self.codec.carries_stamp() {
            return match self.codec.verify_content(kind, payload, None) {
                Ok(()) => {
                    self.tallies[sub].unique += 1;
                    cx.received(payload.len(), None);
                }
                Err(m) => count_mismatch(cx, sub, m, payload.len()),
            };
        }
        let stamp = match self.codec.verify(kind, payload) {
            Ok(s) if s.id < self.publishers => s,
            Ok(_) => return count_mismatch(cx, sub, Mismatch::Order, payload.len()),
            Err(m) => return count_mismatch(cx, sub, m, payload.len()),
        };
        let tally = &mut self.tallies[sub];
        match self.tracks[sub][stamp.id as usize].arrive(stamp.seq) {
            Arrival::InOrder => tally.unique += 1,
            Arrival::OutOfOrder => {
                tally.unique += 1;
                tally.out_of_order += 1;
            }
            Arrival::Duplicate => tally.duplicated += 1,
        }
        if self.elsewhere {
            return cx.received(payload.len(), None);
        }
        let fanout = cx.now.saturating_sub(stamp.intended_ns);
        cx.received(payload.len(), Some(fanout));
        if cx.win.measuring(cx.now) {
            let actual = cx.now.saturating_sub(stamp.sent_ns);
            cx.stats.uncorrected.saturating_record(actual.max(1));
            let node = self.sub_nodes.as_ref().and_then(|n| n.get(sub));
            if let Some(h) = node.and_then(|&n| cx.stats.node_latency.get_mut(n as usize)) {
                h.saturating_record(fanout.max(1));
            }
        }
    }
}

impl Workload for Broadcast {
    fn on_start(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx) {
        self.order = (0..conns.len())
            .filter(|&i| matches!(self.roles[i], Role::Publisher(_)))
            .filter(|&i| conns[i].as_ref().is_some_and(|c| c.phase() == Phase::Open))
            .collect();
        for (i, role) in self.roles.iter().enumerate() {
            if let Role::Subscriber(s) = *role {
                self.live_subs[s] = conns[i].as_ref().is_some_and(|c| c.phase() == Phase::Open);
            }
        }
        self.schedule = Some(Schedule::new(self.rate, cx.win.start));
        if let Some(nodes) = &self.sub_nodes {
            let n = nodes.iter().max().map_or(0, |&m| m as usize + 1);
            cx.stats.node_latency = (0..n).map(|_| latency_histogram()).collect();
        }
        if self.order.is_empty() {
            self.publishers_done();
        }
    }

    fn on_message(
        &mut self,
        idx: usize,
        kind: MessageKind,
        payload: &[u8],
        _: &mut Vec<u8>,
        cx: &mut Cx,
    ) {
        match self.roles[idx] {
            Role::Subscriber(sub) => self.deliver(sub, kind, payload, cx),
            Role::Publisher(_) => {
                cx.stats.publisher_received += 1;
                let checked = if self.codec.carries_stamp() {
                    self.codec.verify(kind, payload).map(|_| ())
                } else {
                    self.codec.verify_content(kind, payload, None)
                };
                if let Err(m) = checked {
                    count_mismatch(cx, idx, m, payload.len());
                }
            }
        }
    }

    fn on_tick(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx) -> Option<u64> {
        if !cx.win.sending(cx.now) || self.order.is_empty() {
            self.publishers_done();
            return None;
        }
        let schedule = self.schedule.as_mut()?;
        let now = cx.now;
        let mut api = self.api.as_mut();
        // One request in flight per API publisher: no pipelining. A ready
        // publisher is sent to at once (Schedule::run), so it is claimed
        // here, before a later message of the same tick could pick it too.
        let ready = |idx: usize| {
            let open = conns[idx]
                .as_ref()
                .is_some_and(|c| c.phase() == Phase::Open && c.pending() < 1 << 20);
            match api.as_deref_mut() {
                Some(a) if open => a.claim(idx, now),
                _ => open,
            }
        };
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        let next = schedule.run(now, &self.order, ready, |idx, t| due.push((idx, t)));
        for &(idx, intended) in &due {
            let (Some(conn), Role::Publisher(id)) = (conns[idx].as_mut(), self.roles[idx]) else {
                continue;
            };
            let stamp = Stamp {
                intended_ns: intended,
                sent_ns: now,
                id,
                seq: self.pub_seq[idx],
            };
            self.pub_seq[idx] += 1;
            match self.api.as_ref() {
                // Claimed (in flight) when the schedule picked it.
                Some(a) => {
                    conn.send_request(a.api.head(), |out| self.codec.write_plain(out, &stamp))
                }
                None => self.codec.write(conn.out(), &stamp),
            }
            cx.sent();
            cx.dirty.push(idx);
        }
        self.shared
            .published
            .fetch_add(due.len() as u64, Ordering::AcqRel);
        self.due = due;
        Some(next)
    }

    fn on_answer(&mut self, idx: usize, a: &Answer, raw: &[u8], cx: &mut Cx) {
        // 1xx is interim: the answer is still to come.
        if a.status < 200 {
            return;
        }
        let sent = self
            .api
            .as_mut()
            .and_then(|p| p.in_flight.get_mut(idx))
            .and_then(Option::take);
        let Some(sent) = sent else {
            return cx.error(ErrorKind::ApiAnswer, 1, || {
                format!("an answer to no request: {}", describe(raw, a))
            });
        };
        *cx.stats.api.statuses.entry(a.status).or_default() += 1;
        if cx.win.measuring(cx.now) {
            let took = cx.now.saturating_sub(sent);
            cx.stats.api.latency.saturating_record(took.max(1));
        }
        if a.status != 200 {
            cx.error(ErrorKind::ApiStatus(a.status), 1, || describe(raw, a));
        }
    }

    fn on_lost(&mut self, idx: usize, _: &mut Cx) {
        match self.roles[idx] {
            Role::Subscriber(s) => self.live_subs[s] = false,
            Role::Publisher(_) => {
                self.order.retain(|&i| i != idx);
                // Its failure is counted; its answer will not come.
                if let Some(slot) = self.api.as_mut().and_then(|a| a.in_flight.get_mut(idx)) {
                    *slot = None;
                }
            }
        }
    }

    fn drained(&self) -> bool {
        if self.elsewhere
            || self.shared.publishers_done.load(Ordering::Acquire) < self.shared.threads()
        {
            return false;
        }
        if let Some(a) = &self.api {
            if a.in_flight.iter().any(Option::is_some) {
                return false;
            }
        }
        let published = self.shared.published.load(Ordering::Acquire);
        let live = self.live_subs.iter().filter(|&&l| l).count() as u64;
        let live_unique: u64 = self
            .tallies
            .iter()
            .zip(&self.live_subs)
            .filter(|(_, &l)| l)
            .map(|(t, _)| t.unique)
            .sum();
        live_unique >= published * live
    }

    fn finish(&mut self, cx: &mut Cx) {
        self.publishers_done();
        if let Some(a) = self.api.as_mut() {
            let n = a.in_flight.iter_mut().filter_map(Option::take).count() as u64;
            if n > 0 {
                cx.error(ErrorKind::Unanswered, n, || {
                    format!("{n} publish requests never answered")
                });
            }
        }
        cx.stats.subscribers = self.tallies.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_tell_late_from_repeated() {
        let mut t = Track::default();
        assert_eq!(t.arrive(0), Arrival::InOrder);
        assert_eq!(t.arrive(1), Arrival::InOrder);
        assert_eq!(t.arrive(3), Arrival::InOrder);
        assert_eq!(t.arrive(2), Arrival::OutOfOrder);
        assert_eq!(t.arrive(2), Arrival::Duplicate);
        assert_eq!(t.arrive(3), Arrival::Duplicate);
        assert_eq!(t.arrive(0), Arrival::Duplicate);
        assert_eq!(t.arrive(200), Arrival::InOrder);
        assert_eq!(t.arrive(150), Arrival::OutOfOrder);
        assert_eq!(t.arrive(150), Arrival::Duplicate);
        assert_eq!(t.arrive(5), Arrival::OutOfOrder);
    }
}
