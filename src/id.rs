//! Identities the hub, the timers and the reactors share: a connection's
//! id that survives slab key reuse, and a room's share of the process's
//! reactors. They sit below every user so that no import runs back up.

use std::sync::Arc;

// Under `--cfg loom` (scripts/loom.sh) the atomics are loom's, so its model
// checker sees every access the cluster's tests make.
#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A connection identity that survives slab key reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnId {
    /// The slab key.
    pub key: usize,
    /// The generation given at accept time.
    pub gen: u32,
}

/// Which reactors have members of one room (`--threads`), as a bit set
/// read with one atomic load per turn. Each reactor with members holds a
/// reference; the process's room directory drops the room when the last
/// bit clears.
#[derive(Debug)]
pub struct RoomShare {
    name: Arc<str>,
    reactors: AtomicU64,
    /// Members on every reactor, for the publish API's answer: counted as
    /// they join and leave, read without a lock (a moment's view).
    members: AtomicUsize,
}

impl RoomShare {
    /// A share of room `name` with no reactor in it yet.
    pub fn new(name: Arc<str>) -> RoomShare {
        RoomShare {
            name,
            reactors: AtomicU64::new(0),
            members: AtomicUsize::new(0),
        }
    }

    /// The room's name, shared with the handoffs that carry it.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The reactors other than `me` that have members, as a bit set.
    pub fn others(&self, me: usize) -> u64 {
        self.reactors.load(Ordering::Acquire) & !bit(me)
    }

    /// Reactor `me` has members now.
    pub fn enter(&self, me: usize) {
        self.reactors.fetch_or(bit(me), Ordering::AcqRel);
    }

    /// `n` members joined on some reactor.
    pub fn joined(&self, n: usize) {
        self.members.fetch_add(n, Ordering::Relaxed);
    }

    /// A member left on some reactor. Each reactor counts a member's
    /// leaving after its joining, and updates of one atomic keep each
    /// thread's order, so the count never goes below zero.
    pub fn left(&self) {
        self.members.fetch_sub(1, Ordering::Relaxed);
    }

    /// Members of the room on every reactor, as last counted.
    pub fn members(&self) -> usize {
        self.members.load(Ordering::Relaxed)
    }

    /// Reactor `me` has no members any more; returns the reactors left.
    pub fn exit(&self, me: usize) -> u64 {
        self.reactors.fetch_and(!bit(me), Ordering::AcqRel) & !bit(me)
    }
}

/// Reactor `reactor`'s bit in a set of reactors (none past 63).
pub fn bit(reactor: usize) -> u64 {
    1u64.checked_shl(reactor as u32).unwrap_or(0)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_share_tracks_the_reactors_with_members() {
        let s = RoomShare::new("/r".into());
        s.enter(0);
        s.enter(2);
        assert_eq!(s.others(0), 0b100);
        assert_eq!(s.others(1), 0b101);
        assert_eq!(s.exit(0), 0b100);
        assert_eq!(s.exit(2), 0);
        assert_eq!(bit(64), 0);
        s.joined(3);
        s.left();
        assert_eq!(s.members(), 2);
    }
}
