//! The reactor's clock, and the arithmetic on deadlines done every turn.

use std::time::{Duration, Instant};

/// The reactor's clock: read once per turn, when the poll returns. Work
/// done in a turn is short (read budgets bound it), and every deadline is
/// checked against this reading, so one is enough.
pub(super) struct Clock {
    pub(super) started: Instant,
    pub(super) now: Instant,
    /// `now` in milliseconds since `started`, worked out at the tick
    /// rather than per message.
    ms: u64,
}

impl Clock {
    /// A clock started at `now` (the reactor's other parts start at the
    /// same reading).
    pub(super) fn new(now: Instant) -> Clock {
        Clock {
            started: now,
            now,
            ms: 0,
        }
    }

    pub(super) fn tick(&mut self) {
        self.now = Instant::now();
        self.ms = millis(self.now.duration_since(self.started));
    }

    /// `now` in milliseconds since the reactor started: the keepalive
    /// clock.
    pub(super) fn now_ms(&self) -> u64 {
        self.ms
    }

    /// The reactor clock as connections store it: milliseconds, wrapping
    /// every 49 days (intervals compared are far shorter).
    pub(super) fn now_ms32(&self) -> u32 {
        self.now_ms() as u32
    }
}

/// `d` in whole milliseconds, saturating: what `as_millis` gives, without
/// its 128-bit arithmetic (this runs every turn).
pub(super) fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// The earlier of two optional deadlines: the poll's nearest deadline is
/// folded with this every turn, cheaper than an iterator of options.
pub(super) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_is_as_millis_saturated() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999_999),
            Duration::from_micros(1_500),
            Duration::new(7, 999_999_999),
            Duration::from_secs(u64::MAX / 1000),
            Duration::MAX,
        ] {
            let naive = d.as_millis().try_into().unwrap_or(u64::MAX);
            assert_eq!(millis(d), naive, "{d:?}");
        }
    }

    #[test]
    fn earliest_is_the_min_of_those_present() {
        let now = Instant::now();
        let later = now + Duration::from_millis(5);
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(later), None), Some(later));
        assert_eq!(earliest(None, Some(now)), Some(now));
        assert_eq!(earliest(Some(later), Some(now)), Some(now));
        assert_eq!(earliest(Some(now), Some(later)), Some(now));
    }
}
