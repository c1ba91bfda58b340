//! Deadlines without a timer thread and without scanning connections.
//!
//! Each kind of timeout has one fixed duration, so deadlines are pushed in
//! the order they expire: a FIFO queue per kind is a sorted queue. Arming is
//! a push, the nearest deadline is the front, and expiry pops from the
//! front. Entries are not removed when a connection moves on; they carry the
//! connection's generation and are checked when they fire, so a stale entry
//! (connection gone, slab key reused, or already past that phase) is skipped.
//! Timers whose duration varies use [`Deadlines`], bucketed by time.
//!
//! Left alone, stale entries would make memory follow the connection *rate*
//! times the timeout (10 s of handshake deadlines at 11k connections a
//! second is 110k entries) and the capacity would stay after the burst. So
//! both kinds are compacted: once a queue holds more than twice what its
//! last compaction kept (plus [`COMPACT_SLACK`]), the owner's `keep`
//! predicate drops the stale entries and spare capacity is released. Each
//! compaction is paid for by the arms since the last one, so it is O(1)
//! per arm, and memory follows the live connections instead.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::id::ConnId;

/// Entries a queue may gain beyond twice its last compacted size before it
/// is compacted again.
pub const COMPACT_SLACK: usize = 1024;

/// Bucket vectors above this capacity are freed rather than kept as spares.
const SPARE_MAX_CAPACITY: usize = 1024;

/// Deadlines of one fixed duration, in expiry order.
#[derive(Debug)]
pub struct TimerQueue {
    after: Duration,
    queue: VecDeque<(Instant, ConnId)>,
    /// Entries kept by the last compaction.
    compacted: usize,
}

impl TimerQueue {
    /// A queue whose entries expire `after` their arming.
    pub fn new(after: Duration) -> TimerQueue {
        TimerQueue {
            after,
            queue: VecDeque::new(),
            compacted: 0,
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

    /// Entries queued, stale ones included.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Drops the entries `keep` rejects, once the queue has grown past
    /// twice its last compacted size plus [`COMPACT_SLACK`]; a no-op
    /// otherwise. Order is kept, so the queue stays sorted.
    pub fn compact(&mut self, mut keep: impl FnMut(ConnId) -> bool) {
        if self.queue.len() <= grown_past(self.compacted) {
            return;
        }
        self.queue.retain(|(_, id)| keep(*id));
        self.compacted = self.queue.len();
        if self.queue.capacity() > grown_past(self.compacted) {
            self.queue.shrink_to(grown_past(self.compacted));
        }
    }
}

/// The size at which a queue that kept `compacted` entries is compacted.
fn grown_past(compacted: usize) -> usize {
    compacted.saturating_mul(2).saturating_add(COMPACT_SLACK)
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
    /// Entries armed and not yet expired, stale ones included.
    len: usize,
    /// Entries kept by the last compaction.
    compacted: usize,
}

impl Deadlines {
    /// Deadlines rounded up to multiples of `granularity_ms` (at least 1).
    pub fn new(granularity_ms: u64) -> Deadlines {
        Deadlines {
            granularity: granularity_ms.max(1),
            buckets: BTreeMap::new(),
            spare: Vec::new(),
            len: 0,
            compacted: 0,
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
        self.len += 1;
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
            self.len -= ids.len();
            out.append(&mut ids);
            self.recycle(ids);
        }
    }

    /// Entries armed and not yet expired, stale ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no deadline is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops the entries `keep` rejects (and buckets left empty), once the
    /// entries have grown past twice the last compacted count plus
    /// [`COMPACT_SLACK`]; a no-op otherwise.
    pub fn compact(&mut self, mut keep: impl FnMut(ConnId) -> bool) {
        if self.len <= grown_past(self.compacted) {
            return;
        }
        let mut emptied = Vec::new();
        for (bucket, ids) in self.buckets.iter_mut() {
            ids.retain(|id| keep(*id));
            if ids.is_empty() {
                emptied.push(*bucket);
            } else if ids.capacity() > 2 * ids.len() {
                ids.shrink_to_fit();
            }
        }
        for bucket in emptied {
            if let Some(ids) = self.buckets.remove(&bucket) {
                self.recycle(ids);
            }
        }
        self.len = self.buckets.values().map(Vec::len).sum();
        self.compacted = self.len;
    }

    /// Keeps an emptied bucket vector for reuse, unless it is large: a
    /// burst must not leave its high-water mark behind as spares.
    fn recycle(&mut self, ids: Vec<ConnId>) {
        if self.spare.len() < 64 && ids.capacity() <= SPARE_MAX_CAPACITY {
            self.spare.push(ids);
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

    #[test]
    fn stale_entries_are_compacted_away_and_capacity_released() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new(Duration::from_secs(10));
        let id = |k| ConnId { key: k, gen: 0 };
        for k in 0..COMPACT_SLACK {
            q.arm(t0, id(k));
        }
        q.compact(|_| false);
        assert_eq!(q.len(), COMPACT_SLACK, "below the slack nothing is dropped");
        // A burst: 100k connections came and went; 10 are still live.
        for k in COMPACT_SLACK..100_000 {
            q.arm(t0 + Duration::from_millis(k as u64), id(k));
        }
        q.compact(|i| i.key % 10_000 == 1);
        assert_eq!(q.len(), 10);
        assert!(q.queue.capacity() <= grown_past(10), "capacity released");
        let mut fired = Vec::new();
        while let Some(i) = q.expired(t0 + Duration::from_secs(1_000)) {
            fired.push(i.key);
        }
        let want: Vec<usize> = (0..10).map(|n| n * 10_000 + 1).collect();
        assert_eq!(fired, want, "order kept");
    }

    #[test]
    fn deadlines_compact_and_keep_no_large_spares() {
        let mut d = Deadlines::new(10);
        let id = |k| ConnId { key: k, gen: 0 };
        for k in 0..50_000 {
            d.arm((k / 5_000) as u64 * 10, id(k));
        }
        assert_eq!(d.len(), 50_000);
        d.compact(|i| i.key % 1_000 == 0);
        assert_eq!(d.len(), 50);
        assert!(d.buckets.values().all(|v| v.capacity() <= 10));
        let mut out = Vec::new();
        d.expire(u64::MAX / 20, &mut out);
        assert_eq!(out.len(), 50);
        assert!(d.is_empty());
        // A large bucket that expires is not kept as a spare.
        for k in 0..5_000 {
            d.arm(1_000, id(k));
        }
        out.clear();
        d.expire(1_000, &mut out);
        assert!(d.spare.iter().all(|v| v.capacity() <= SPARE_MAX_CAPACITY));
        assert_eq!(d.len(), 0);
    }
}
