//! Deadlines without a timer thread and without scanning connections.
//!
//! Each kind of timeout has one fixed duration, so deadlines are pushed in
//! the order they expire: a FIFO queue per kind is a sorted queue. Arming is
//! a push, the nearest deadline is the front, and expiry pops from the
//! front. Entries are not removed when a connection moves on; they carry the
//! connection's generation and are checked when they fire, so a stale entry
//! (connection gone, slab key reused, or already past that phase) is skipped.

use std::collections::VecDeque;
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

    /// Entries still queued (live or stale).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no entries are queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
