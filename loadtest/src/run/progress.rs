//! What a run shows while it goes: the live counts, the progress line on
//! stderr, and the observer that may end the load early.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::worker::Shared;

/// The live counts of a run, as the progress line shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Messages sent so far.
    pub sent: u64,
    /// Messages received so far.
    pub received: u64,
    /// Errors so far.
    pub errors: u64,
    /// Connections open now.
    pub open: u64,
    /// Whether every connection has been tried and the load has begun.
    pub started: bool,
}

impl Live {
    pub(super) fn of(shared: &Shared) -> Live {
        Live {
            sent: shared.sent.load(Ordering::Relaxed),
            received: shared.received.load(Ordering::Relaxed),
            errors: shared.errors.load(Ordering::Relaxed),
            open: shared.open.load(Ordering::Relaxed),
            started: shared.start().is_some(),
        }
    }
}

/// The live line on stderr, and the observer of the live counts.
pub(super) struct Progress<'a> {
    on: bool,
    began: Instant,
    last: Instant,
    last_counts: (u64, u64),
    observe: &'a mut dyn FnMut(Live) -> bool,
    observed: Instant,
}

impl<'a> Progress<'a> {
    pub(super) fn new(on: bool, observe: &'a mut dyn FnMut(Live) -> bool) -> Progress<'a> {
        let now = Instant::now();
        Progress {
            on,
            began: now,
            last: now,
            last_counts: (0, 0),
            observe,
            observed: now,
        }
    }

    /// Prints the line if a second has passed.
    pub(super) fn tick(&mut self, shared: &Shared) {
        if self.observed.elapsed() >= Duration::from_millis(100) {
            self.observed = Instant::now();
            if !(self.observe)(Live::of(shared)) {
                shared.stop.store(true, Ordering::Relaxed);
            }
        }
        if !self.on || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        let secs = self.last.elapsed().as_secs_f64();
        self.last = Instant::now();
        let sent = shared.sent.load(Ordering::Relaxed);
        let recv = shared.received.load(Ordering::Relaxed);
        let (s0, r0) = self.last_counts;
        self.last_counts = (sent, recv);
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{:>5.0}s  sent {:>9.0}/s  received {:>9.0}/s  errors {}  open {}",
            self.began.elapsed().as_secs_f64(),
            (sent - s0) as f64 / secs,
            (recv - r0) as f64 / secs,
            shared.errors.load(Ordering::Relaxed),
            shared.open.load(Ordering::Relaxed),
        );
    }

    /// Sleeps until `deadline` or until every thread has finished.
    pub(super) fn wait_until(
        &mut self,
        deadline: Instant,
        shared: &Shared,
        finished: &dyn Fn() -> bool,
    ) {
        loop {
            let now = Instant::now();
            if now >= deadline || finished() {
                return;
            }
            self.tick(shared);
            thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
    }

    pub(super) fn clear(&self) {
        if self.on {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
