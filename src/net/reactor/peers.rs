//! The reactor's link to the other reactors of its process (`--threads`):
//! batches handed to them and woken once per turn, and this reactor's
//! counters published for their `/metrics` and summary lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bus::BusStats;
use crate::net::cluster::{Cluster, Handoff, Published};
use crate::stats::Stats;

/// How often a reactor of several publishes its counters, at most.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// What this reactor shares with the others, and its number among them.
pub(super) struct Peers {
    /// What the process's reactors share; this one is number `me`.
    pub(super) cluster: Arc<Cluster>,
    pub(super) me: usize,
    /// Reactors handed a batch this turn, to wake once each.
    handed: u64,
    /// The earliest this reactor publishes its counters again.
    next_publish: Instant,
    /// When it will: set only once something changed since the last.
    publish_due: Option<Instant>,
    /// What it published last.
    published: Published,
}

impl Peers {
    /// Reactor `me` of `cluster`.
    pub(super) fn new(cluster: Arc<Cluster>, me: usize, now: Instant) -> Peers {
        Peers {
            cluster,
            me,
            handed: 0,
            next_publish: now,
            publish_due: None,
            published: Published::default(),
        }
    }

    /// Whether there are other reactors.
    pub(super) fn several(&self) -> bool {
        self.cluster.reactors() > 1
    }

    /// The other reactors in the bit set `set`.
    pub(super) fn each(&self, set: u64) -> impl Iterator<Item = usize> {
        (0..self.cluster.reactors()).filter(move |r| set & (1 << r) != 0)
    }

    /// Hands `handoff` to reactor `to`, to be woken at the end of the turn.
    pub(super) fn hand_off(&mut self, to: usize, handoff: Handoff) {
        self.cluster.hand_off(to, handoff);
        self.handed |= 1 << to;
    }

    /// Wakes every reactor handed a batch this turn, once each.
    pub(super) fn wake_handed(&mut self) {
        let handed = std::mem::take(&mut self.handed);
        for to in self.each(handed) {
            self.cluster.wake(to);
        }
    }

    /// When this reactor must publish its counters, if it must.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.publish_due
    }

    /// At the end of a turn, with several reactors: publishes `now` what
    /// `current` says, at most every [`PUBLISH_EVERY`] and only after a
    /// change, whose publish is then a deadline of the poll (so an idle
    /// reactor's last burst is not held back until something else wakes
    /// it, and an idle reactor sleeps).
    pub(super) fn publish_if_due(&mut self, now: Instant, current: Current<'_>) {
        if !self.several() {
            return;
        }
        if self.publish_due.is_none() && !current.same_as(&self.published) {
            self.publish_due = Some(self.next_publish.max(now));
        }
        if self.publish_due.is_some_and(|t| t <= now) {
            self.publish(now, current);
        }
    }

    /// Publishes what `current` says now.
    pub(super) fn publish(&mut self, now: Instant, current: Current<'_>) {
        self.published = Published {
            stats: current.stats.clone(),
            connections: current.connections,
            bus: current.bus.cloned(),
        };
        self.cluster.publish(self.me, self.published.clone());
        self.next_publish = now + PUBLISH_EVERY;
        self.publish_due = None;
    }

    /// The process's counters and connections held: this reactor's
    /// (`mine`, `held`), plus the others' as last published (at most
    /// [`PUBLISH_EVERY`] old).
    pub(super) fn process_stats(&self, mine: &Stats, held: usize) -> (Stats, usize) {
        let mut stats = mine.clone();
        let held = held + self.cluster.add_others(self.me, &mut stats);
        (stats, held)
    }
}

/// What a reactor has to publish, borrowed from its parts.
pub(super) struct Current<'a> {
    pub(super) stats: &'a Stats,
    pub(super) connections: usize,
    pub(super) bus: Option<&'a BusStats>,
}

impl Current<'_> {
    fn same_as(&self, p: &Published) -> bool {
        p.connections == self.connections && p.stats == *self.stats && p.bus.as_ref() == self.bus
    }
}
