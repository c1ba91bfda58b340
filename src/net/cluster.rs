//! What the reactors of one process share (`--threads N`): which reactors
//! have members of each room, a bounded mailbox per reactor for broadcast
//! batches from the others, the process-wide connection count, and each
//! reactor's last published counters.
//!
//! Each reactor owns its connections outright; nothing here is touched per
//! delivery. Per message, a publishing reactor reads one atomic (which
//! other reactors have members of the room). Per turn, it pushes one
//! [`Handoff`] per (room, receiving reactor) into that reactor's lock-free
//! queue and wakes it once. The room directory's lock is taken only when a
//! reactor gains its first member of a room or loses its last.
//!
//! ```text
//!   reactor i: clients ──▶ room batch (encoded once, Arc) ──▶ own members
//!                                     │ per turn, one Handoff per reactor
//!                                     ▼ with members (RoomShare bit set)
//!   reactor j: mailbox (ArrayQueue + Waker) ──▶ own members of the room
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::{Arc, OnceLock, PoisonError};

use mio::Waker;

// Under `--cfg loom` (scripts/loom.sh) the synchronization is loom's, so
// its model checker explores every interleaving of the tests in
// `loom_tests`; shared data stays in std's `Arc`.
#[cfg(not(loom))]
use crossbeam_queue::ArrayQueue;
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
#[cfg(loom)]
use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::{Mutex, MutexGuard};

use crate::auth::ConnectionsPerIp;
use crate::bus::BusStats;
#[cfg(loom)]
use crate::id::bit;
pub use crate::id::RoomShare;
use crate::proto::MessageKind;
use crate::stats::Stats;

/// The most reactors one process runs: a room's reactors are one `u64`.
pub const MAX_REACTORS: usize = 64;

/// Batches a reactor's mailbox holds. A batch is one turn's messages for a
/// room from one other reactor, so this is thousands of turns of backlog:
/// a reactor that far behind is overloaded, and what does not fit is
/// handled like a slow consumer.
const MAILBOX_BATCHES: usize = 4096;

/// A turn's broadcast frames for one room, from another reactor.
#[derive(Debug)]
pub struct Handoff {
    /// The room's name.
    pub room: Arc<str>,
    /// The encoded frames, back to back, shared by every reactor they go to.
    pub bytes: Arc<Vec<u8>>,
    /// How many messages `bytes` holds.
    pub messages: u32,
    /// Messages among the frames that the receiver (the first reactor,
    /// which owns the bus) publishes to other nodes: each one's kind and
    /// where its payload is in `bytes`.
    pub publish: Vec<(MessageKind, Range<usize>)>,
}

/// A change of the rooms the process has members of, for the bus (which
/// the first reactor owns) to subscribe or unsubscribe.
#[derive(Debug)]
pub enum RoomChange {
    /// The process's first member of this room joined.
    Opened(Arc<RoomShare>),
    /// The process's last member of this room left.
    Closed(Arc<str>),
}

/// One reactor's inbox.
#[derive(Debug)]
struct Mailbox {
    queue: ArrayQueue<Handoff>,
    waker: OnceLock<Arc<Waker>>,
    /// Rooms whose batches did not fit: their members here missed messages.
    lost: Mutex<Vec<Arc<str>>>,
    has_lost: AtomicBool,
    /// The reactor's counters as of its last publish.
    stats: Mutex<Published>,
}

/// A reactor's counters and gauges as last published.
#[derive(Clone, Debug, Default)]
pub struct Published {
    /// Its counters.
    pub stats: Stats,
    /// Connections it holds.
    pub connections: usize,
    /// The bus's counters, from the reactor that owns it.
    pub bus: Option<BusStats>,
}

/// The state the reactors of one process share.
#[derive(Debug)]
pub struct Cluster {
    rooms: Mutex<HashMap<Arc<str>, Arc<RoomShare>>>,
    mailboxes: Box<[Mailbox]>,
    /// Connections held and not closing, process-wide: what
    /// `--max-connections` limits.
    active: AtomicUsize,
    /// Run, drain or stop, for every reactor.
    control: AtomicU8,
    /// Batches that did not fit a mailbox.
    handoff_drops: AtomicU64,
    /// Rooms opened and closed process-wide, in order, for the bus; only
    /// kept when there is a bus.
    room_changes: Mutex<Vec<RoomChange>>,
    has_room_changes: AtomicBool,
    /// The graceful drain, process-wide: whether a reactor has begun it,
    /// how many reactors have ended it, and the connections they left.
    drain_begun: AtomicBool,
    drain_ended: AtomicUsize,
    drain_left: AtomicUsize,
    /// Open connections per client address (`--max-connections-per-ip`),
    /// process-wide; locked only at upgrade and when a counted connection
    /// leaves. Made at the first count.
    per_ip: Mutex<Option<ConnectionsPerIp>>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked
/// (every critical section here is a single insert, remove or copy).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// State for `reactors` reactors (1 to [`MAX_REACTORS`]).
    pub fn new(reactors: usize) -> Arc<Cluster> {
        let n = reactors.clamp(1, MAX_REACTORS);
        let mailboxes = (0..n)
            .map(|_| Mailbox {
                // A queue per reactor even with one: it is never pushed to.
                queue: ArrayQueue::new(if n == 1 { 1 } else { MAILBOX_BATCHES }),
                waker: OnceLock::new(),
                lost: Mutex::new(Vec::new()),
                has_lost: AtomicBool::new(false),
                stats: Mutex::new(Published::default()),
            })
            .collect();
        Arc::new(Cluster {
            rooms: Mutex::new(HashMap::new()),
            mailboxes,
            active: AtomicUsize::new(0),
            control: AtomicU8::new(0),
            handoff_drops: AtomicU64::new(0),
            room_changes: Mutex::new(Vec::new()),
            has_room_changes: AtomicBool::new(false),
            drain_begun: AtomicBool::new(false),
            drain_ended: AtomicUsize::new(0),
            drain_left: AtomicUsize::new(0),
            per_ip: Mutex::new(None),
        })
    }

    /// How many reactors there are.
    pub fn reactors(&self) -> usize {
        self.mailboxes.len()
    }

    /// The run/drain/stop word every reactor reads.
    pub fn control(&self) -> &AtomicU8 {
        &self.control
    }

    /// A reactor begins the graceful drain: true for the first of them,
    /// which speaks for the process (one log line, not one per reactor).
    pub fn begin_drain(&self) -> bool {
        !self.drain_begun.swap(true, Ordering::AcqRel)
    }

    /// A reactor ended its drain, leaving `left` connections (0 if every
    /// one closed). For the last reactor to end it: the connections every
    /// reactor left, to say once for the process.
    pub fn end_drain(&self, left: usize) -> Option<usize> {
        let total = self.drain_left.fetch_add(left, Ordering::AcqRel) + left;
        let ended = self.drain_ended.fetch_add(1, Ordering::AcqRel) + 1;
        (ended == self.reactors()).then_some(total)
    }

    /// Records reactor `me`'s waker, for handoffs and shutdown.
    pub fn set_waker(&self, me: usize, waker: Arc<Waker>) {
        if let Some(m) = self.mailboxes.get(me) {
            let _ = m.waker.set(waker);
        }
    }

    /// Wakes every reactor (after a change of `control`).
    pub fn wake_all(&self) {
        for m in self.mailboxes.iter() {
            if let Some(w) = m.waker.get() {
                // A failed wake leaves the reactor to notice at its next wakeup.
                let _ = w.wake();
            }
        }
    }

    /// Reactor `me` got its first member of room `name`. With `bus`, a
    /// room new to the process is noted for the bus ([`Cluster::take_room_changes`]).
    pub fn join_room(&self, name: &str, me: usize, bus: bool) -> Arc<RoomShare> {
        let mut rooms = lock(&self.rooms);
        let share = match rooms.get(name) {
            Some(share) => share.clone(),
            None => {
                let name: Arc<str> = name.into();
                let share = Arc::new(RoomShare::new(name.clone()));
                rooms.insert(name, share.clone());
                if bus {
                    // Under the directory's lock, so changes are noted in
                    // the order they happened.
                    self.note(RoomChange::Opened(share.clone()));
                }
                share
            }
        };
        share.enter(me);
        share
    }

    /// Reactor `me` lost its last member of the room. With `bus`, a room
    /// the process no longer has is noted for the bus.
    pub fn leave_room(&self, share: &RoomShare, me: usize, bus: bool) {
        let mut rooms = lock(&self.rooms);
        if share.exit(me) == 0 {
            rooms.remove(share.name());
            if bus {
                self.note(RoomChange::Closed(share.name().clone()));
            }
        }
    }

    fn note(&self, change: RoomChange) {
        lock(&self.room_changes).push(change);
        self.has_room_changes.store(true, Ordering::Release);
        self.wake(0);
    }

    /// The rooms opened and closed since the last call, in order (an
    /// atomic load when there are none).
    pub fn take_room_changes(&self) -> Vec<RoomChange> {
        if self.has_room_changes.swap(false, Ordering::AcqRel) {
            std::mem::take(&mut *lock(&self.room_changes))
        } else {
            Vec::new()
        }
    }

    /// The share of room `name`, if any reactor has members of it.
    pub fn room(&self, name: &str) -> Option<Arc<RoomShare>> {
        lock(&self.rooms).get(name).cloned()
    }

    /// Rooms with members on any reactor.
    pub fn rooms(&self) -> usize {
        lock(&self.rooms).len()
    }

    /// Hands a batch to reactor `to`. A full mailbox drops it, counts it,
    /// and notes the room as lost there; false then.
    pub fn hand_off(&self, to: usize, handoff: Handoff) -> bool {
        let Some(m) = self.mailboxes.get(to) else {
            return false;
        };
        match m.queue.push(handoff) {
            Ok(()) => true,
            Err(rejected) => {
                self.handoff_drops.fetch_add(1, Ordering::Relaxed);
                let mut lost = lock(&m.lost);
                if !lost.contains(&rejected.room) {
                    lost.push(rejected.room);
                }
                m.has_lost.store(true, Ordering::Release);
                false
            }
        }
    }

    /// Wakes reactor `to` (once per turn that handed it something).
    pub fn wake(&self, to: usize) {
        if let Some(w) = self.mailboxes.get(to).and_then(|m| m.waker.get()) {
            let _ = w.wake();
        }
    }

    /// The next batch for reactor `me`, in the order handed off.
    pub fn next_handoff(&self, me: usize) -> Option<Handoff> {
        self.mailboxes.get(me)?.queue.pop()
    }

    /// Rooms whose batches for reactor `me` were dropped since the last call.
    pub fn take_lost(&self, me: usize) -> Vec<Arc<str>> {
        match self.mailboxes.get(me) {
            Some(m) if m.has_lost.swap(false, Ordering::AcqRel) => {
                std::mem::take(&mut *lock(&m.lost))
            }
            _ => Vec::new(),
        }
    }

    /// Batches dropped because a mailbox was full, process-wide.
    pub fn handoff_drops(&self) -> u64 {
        self.handoff_drops.load(Ordering::Relaxed)
    }

    /// Counts a connection as active; returns how many were active before.
    pub fn activate(&self) -> usize {
        self.active.fetch_add(1, Ordering::AcqRel)
    }

    /// A connection stopped being active (it is closing or gone).
    pub fn deactivate(&self) {
        // Never below zero, whatever the order of events.
        let _ = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Active connections, process-wide.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Counts one more connection from `ip` if its client has fewer than
    /// `max` open, process-wide: `false` at the limit (answer 429). A
    /// `true` must be matched by one [`Cluster::release_ip`].
    pub fn acquire_ip(&self, max: u32, ip: IpAddr) -> bool {
        let mut per_ip = lock(&self.per_ip);
        if per_ip.is_none() {
            *per_ip = ConnectionsPerIp::new(max);
        }
        per_ip.as_mut().is_none_or(|p| p.try_acquire(ip))
    }

    /// A connection counted by [`Cluster::acquire_ip`] is gone.
    pub fn release_ip(&self, ip: IpAddr) {
        if let Some(per_ip) = lock(&self.per_ip).as_mut() {
            per_ip.release(ip);
        }
    }

    /// Publishes reactor `me`'s counters, for the others' `/metrics`.
    pub fn publish(&self, me: usize, published: Published) {
        if let Some(m) = self.mailboxes.get(me) {
            *lock(&m.stats) = published;
        }
    }

    /// Connections held by each reactor: `mine` for `me`, the last
    /// published count for the others.
    pub fn connections_by_reactor(&self, me: usize, mine: usize) -> Vec<usize> {
        self.mailboxes
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i == me {
                    mine
                } else {
                    lock(&m.stats).connections
                }
            })
            .collect()
    }

    /// The bus's counters as its reactor last published them, if there is
    /// a bus.
    pub fn bus_stats(&self) -> Option<BusStats> {
        self.mailboxes
            .iter()
            .find_map(|m| lock(&m.stats).bus.clone())
    }

    /// Every reactor's last published counters but `me`'s, summed into
    /// `into`; returns the connections they hold.
    pub fn add_others(&self, me: usize, into: &mut Stats) -> usize {
        let mut connections = 0;
        for (i, m) in self.mailboxes.iter().enumerate() {
            if i != me {
                let p = lock(&m.stats);
                into.add(&p.stats);
                connections += p.connections;
            }
        }
        connections
    }
}

/// A bounded FIFO with `ArrayQueue`'s interface, on loom's mutex: loom
/// cannot see inside crossbeam's queue (which has its own tests), but it
/// can check everything around it.
#[cfg(loom)]
#[derive(Debug)]
struct ArrayQueue<T> {
    items: Mutex<std::collections::VecDeque<T>>,
    cap: usize,
}

#[cfg(loom)]
impl<T> ArrayQueue<T> {
    fn new(cap: usize) -> Self {
        ArrayQueue {
            items: Mutex::new(std::collections::VecDeque::new()),
            cap,
        }
    }

    fn push(&self, item: T) -> Result<(), T> {
        let mut items = lock(&self.items);
        if items.len() >= self.cap {
            return Err(item);
        }
        items.push_back(item);
        Ok(())
    }

    fn pop(&self) -> Option<T> {
        lock(&self.items).pop_front()
    }
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests;
