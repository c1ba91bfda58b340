//! A run's phases in time, and the per-second rows of its timeline.
//!
//! ```text
//!  start        measure_start              measure_end        drain_end
//!    │── warm-up ──│────── measured window ──────│──── grace ────│
//!    │ -2 │ -1     │  0  │  1  │  2  │ ... │ d-1 │ d │ d+1 │ ...
//! ```
//!
//! Timeline rows are whole seconds counted from the measured window's
//! start, so no row straddles a phase boundary: warm-up rows run backwards
//! from it (the first one may be short), window rows forwards (the last one
//! is cut at the window's end), and drain rows forwards from the window's
//! end. The measured rows therefore add up to the window's figures.

use std::time::Duration;

/// How long the closing handshake may take at the end of a run.
pub const CLOSE_WAIT: Duration = Duration::from_millis(500);

const SECOND: u64 = 1_000_000_000;

/// The phases' lengths.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Load before the window.
    pub warmup: Duration,
    /// The window.
    pub duration: Duration,
    /// Time after the window for outstanding replies.
    pub grace: Duration,
    /// Connect plus handshake, per connection.
    pub connect_timeout: Duration,
}

impl Timing {
    /// The most timeline rows a run can have, closing included.
    pub fn rows(&self) -> usize {
        let secs = |d: Duration| d.as_nanos().div_ceil(u128::from(SECOND)) as usize;
        secs(self.warmup) + secs(self.duration) + secs(self.grace + CLOSE_WAIT) + 1
    }
}

/// Which phase a timeline row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowPhase {
    /// Before the measured window: not in any rate or latency.
    Warmup,
    /// In the measured window.
    Measured,
    /// After the window: late replies, nothing new sent.
    Drain,
}

impl RowPhase {
    /// The name in the CSV.
    pub const fn name(self) -> &'static str {
        match self {
            RowPhase::Warmup => "warmup",
            RowPhase::Measured => "measured",
            RowPhase::Drain => "drain",
        }
    }
}

/// The run's schedule in nanoseconds since the epoch.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Load begins (warm-up).
    pub start: u64,
    /// The measured window begins.
    pub measure_start: u64,
    /// The measured window ends; nothing new is sent after it.
    pub measure_end: u64,
    /// Outstanding replies are given up on.
    pub drain_end: u64,
}

impl Window {
    /// The schedule of a run whose load starts at `start`.
    pub fn new(start: u64, t: &Timing) -> Window {
        let ns = |d: Duration| d.as_nanos() as u64;
        let measure_start = start + ns(t.warmup);
        let measure_end = measure_start + ns(t.duration);
        Window {
            start,
            measure_start,
            measure_end,
            drain_end: measure_end + ns(t.grace),
        }
    }

    /// Whether `now` is in the measured window.
    pub fn measuring(&self, now: u64) -> bool {
        now >= self.measure_start && now < self.measure_end
    }

    /// Whether new messages may be sent at `now`.
    pub fn sending(&self, now: u64) -> bool {
        now < self.measure_end
    }

    fn warmup_rows(&self) -> u64 {
        (self.measure_start - self.start).div_ceil(SECOND)
    }

    fn measured_rows(&self) -> u64 {
        (self.measure_end - self.measure_start).div_ceil(SECOND)
    }

    /// The timeline row `now` falls in; `None` before the load starts.
    pub fn row(&self, now: u64) -> Option<usize> {
        let w = self.warmup_rows();
        let row = if now < self.start {
            return None;
        } else if now < self.measure_start {
            w - 1 - (self.measure_start - 1 - now) / SECOND
        } else if now < self.measure_end {
            w + (now - self.measure_start) / SECOND
        } else {
            w + self.measured_rows() + (now - self.measure_end) / SECOND
        };
        Some(row as usize)
    }

    /// Row `i`'s phase and where it starts, in seconds from the measured
    /// window's start (negative in the warm-up).
    pub fn row_start(&self, i: usize) -> (RowPhase, f64) {
        let (i, w, m) = (i as u64, self.warmup_rows(), self.measured_rows());
        let secs = |ns: u64| ns as f64 / SECOND as f64;
        if i < w {
            let back = (w - i) * SECOND;
            let from = back.min(self.measure_start - self.start);
            (RowPhase::Warmup, -secs(from))
        } else if i < w + m {
            (RowPhase::Measured, secs((i - w) * SECOND))
        } else {
            let after = (i - w - m) * SECOND;
            let window = self.measure_end - self.measure_start;
            (RowPhase::Drain, secs(window + after))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(warmup_ms: u64, duration_ms: u64) -> Window {
        Window::new(
            1000 * SECOND,
            &Timing {
                warmup: Duration::from_millis(warmup_ms),
                duration: Duration::from_millis(duration_ms),
                grace: Duration::from_secs(2),
                connect_timeout: Duration::from_secs(1),
            },
        )
    }

    #[test]
    fn rows_meet_the_window_edges() {
        let w = window(1500, 2500);
        let ms = |m: u64| w.start + m * 1_000_000;
        assert_eq!(w.row(w.start - 1), None);
        // Warm-up: a short first row, then whole seconds up to the window.
        assert_eq!(w.row(ms(0)), Some(0));
        assert_eq!(w.row(ms(499)), Some(0));
        assert_eq!(w.row(ms(500)), Some(1));
        assert_eq!(w.row(ms(1499)), Some(1));
        // The window: whole seconds, the last cut at its end.
        assert_eq!(w.row(ms(1500)), Some(2));
        assert_eq!(w.row(ms(3499)), Some(3));
        assert_eq!(w.row(ms(3500)), Some(4));
        assert_eq!(w.row(ms(3999)), Some(4));
        // The drain starts a row of its own.
        assert_eq!(w.row(ms(4000)), Some(5));
        assert_eq!(w.row(ms(5000)), Some(6));
        let starts: Vec<_> = (0..7).map(|i| w.row_start(i)).collect();
        assert_eq!(
            starts,
            [
                (RowPhase::Warmup, -1.5),
                (RowPhase::Warmup, -1.0),
                (RowPhase::Measured, 0.0),
                (RowPhase::Measured, 1.0),
                (RowPhase::Measured, 2.0),
                (RowPhase::Drain, 2.5),
                (RowPhase::Drain, 3.5),
            ]
        );
    }

    #[test]
    fn no_warmup_means_no_warmup_rows() {
        let w = window(0, 1000);
        assert_eq!(w.row(w.start), Some(0));
        assert_eq!(w.row_start(0), (RowPhase::Measured, 0.0));
        assert_eq!(w.row_start(1), (RowPhase::Drain, 1.0));
    }

    #[test]
    fn every_row_fits_the_timeline_bound() {
        let t = Timing {
            warmup: Duration::from_millis(1500),
            duration: Duration::from_millis(2500),
            grace: Duration::from_millis(300),
            connect_timeout: Duration::from_secs(1),
        };
        let w = Window::new(0, &t);
        let last = w.drain_end + CLOSE_WAIT.as_nanos() as u64;
        assert!(w.row(last).is_some_and(|r| r < t.rows()));
    }
}
