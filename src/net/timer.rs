//! Deadlines without a timer thread and without scanning connections.
//!
//! Each kind of timeout has one fixed duration, so deadlines are pushed in
//! the order they expire: a FIFO queue per kind is a sorted queue. Arming is
//! a push, the nearest deadline is the front, and expiry pops from the
//! front. Entries are not removed when a connection moves on; they carry the
//! connection's generation and are checked when they fire, so a stale entry
//! (connection gone, slab key reused, or already past that phase) is skipped.
//! Timers whose duration varies use [`Deadlines`], bucketed by time.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A connection identity that survives slab key reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnId {
    /// The slab key.
    pub key: usize,
    /// The generation given at accept time.
    pub gen: u32,
}

/// Deadlines of one fixed duration, in expiry order.
#[derive(Debug)]
pub struct TimerQueue {
    after: Duration,
    queue: VecDeque<(Instant, ConnId)>,
}

impl TimerQueue {
    /// A queue whose entries expire `after` their arming.
    pub fn new(after: Duration) -> TimerQueue {
        TimerQueue {
            after,
            queue: VecDeque::new(),
        }
    }

    /// Arms a deadline for `id`, `after` from `now`.
    pub fn arm(&mut self, now: Instant, id: ConnId) {
        self.queue.push_back((now + self.after, id));
    }

    /// The nearest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.queue.front().map(|(t, _)| *t)
    }

    /// Pops an entry whose deadline is at or before `now`.
    pub fn expired(&mut self, now: Instant) -> Option<ConnId> {
        match self.queue.front() {
            Some((t, _)) if *t <= now => self.queue.pop_front().map(|(_, id)| id),
            _ => None,
        }
    }

    /// Whether no entries are queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Deadlines of any length, in buckets of `granularity` milliseconds.
///
/// For timers whose duration varies per connection (keepalive and idle
/// checks re-arm at "last activity + interval"): arming is one push into
/// the bucket of its deadline (a B-tree of at most span/granularity
/// buckets), firing pops whole buckets. A deadline fires up to one
/// granularity late, never early. Times are milliseconds since the
/// reactor started.
#[derive(Debug)]
pub struct Deadlines {
    granularity: u64,
    buckets: BTreeMap<u64, Vec<ConnId>>,
    /// Spare bucket vectors, so steady re-arming does not allocate.
    spare: Vec<Vec<ConnId>>,
}

impl Deadlines {
    /// Deadlines rounded up to multiples of `granularity_ms` (at least 1).
    pub fn new(granularity_ms: u64) -> Deadlines {
        Deadlines {
            granularity: granularity_ms.max(1),
            buckets: BTreeMap::new(),
            spare: Vec::new(),
        }
    }

    /// Arms a deadline for `id` at `at_ms`.
    pub fn arm(&mut self, at_ms: u64, id: ConnId) {
        let bucket = at_ms.div_ceil(self.granularity);
        let spare = &mut self.spare;
        self.buckets
            .entry(bucket)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push(id);
    }

    /// The nearest deadline, in milliseconds.
    pub fn next(&self) -> Option<u64> {
        self.buckets.keys().next().map(|b| b * self.granularity)
    }

    /// Moves every entry due at or before `now_ms` into `out`.
    pub fn expire(&mut self, now_ms: u64, out: &mut Vec<ConnId>) {
        while let Some(entry) = self.buckets.first_entry() {
            if entry.key() * self.granularity > now_ms {
                break;
            }
            let mut ids = entry.remove();
            out.append(&mut ids);
            if self.spare.len() < 64 {
                self.spare.push(ids);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_fire_in_order_never_early() {
        let mut d = Deadlines::new(100);
        let id = |k| ConnId { key: k, gen: 0 };
        d.arm(250, id(1));
        d.arm(120, id(2));
        d.arm(300, id(3));
        assert_eq!(d.next(), Some(200));
        let mut out = Vec::new();
        d.expire(199, &mut out);
        assert!(out.is_empty(), "a deadline rounds up, never fires early");
        d.expire(200, &mut out);
        assert_eq!(out, [id(2)]);
        out.clear();
        d.expire(1_000, &mut out);
        assert_eq!(out, [id(1), id(3)]);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn entries_expire_in_arming_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new(Duration::from_secs(10));
        let a = ConnId { key: 1, gen: 1 };
        let b = ConnId { key: 2, gen: 2 };
        q.arm(t0, a);
        q.arm(t0 + Duration::from_secs(1), b);
        assert_eq!(q.next(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(q.expired(t0 + Duration::from_secs(9)), None);
        assert_eq!(q.expired(t0 + Duration::from_secs(10)), Some(a));
        assert_eq!(q.expired(t0 + Duration::from_secs(10)), None);
        assert_eq!(q.expired(t0 + Duration::from_secs(11)), Some(b));
        assert!(q.is_empty());
    }
}
