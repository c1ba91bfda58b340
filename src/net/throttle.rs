//! Log lines about clients, held to a few a second.

use std::time::{Duration, Instant};

/// At most `per_second` log lines of one kind a second. A line that gets
/// through after others were held back says how many.
#[derive(Debug)]
pub struct Throttle {
    per_second: u32,
    window: Option<Instant>,
    used: u32,
    held: u64,
}

impl Throttle {
    /// A throttle passing `per_second` lines a second.
    pub fn new(per_second: u32) -> Throttle {
        Throttle {
            per_second,
            window: None,
            used: 0,
            held: 0,
        }
    }

    /// Whether a line may be logged at `now`: `Some(lines held back since
    /// the last one that passed)`, or `None` (the line is counted as held).
    pub fn pass(&mut self, now: Instant) -> Option<u64> {
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used < self.per_second {
            self.used += 1;
            Some(std::mem::take(&mut self.held))
        } else {
            self.held += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_passes_a_few_lines_a_second_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut t = Throttle::new(2);
        assert_eq!(t.pass(t0), Some(0));
        assert_eq!(t.pass(t0), Some(0));
        assert_eq!(t.pass(t0), None);
        assert_eq!(t.pass(t0 + Duration::from_millis(500)), None);
        assert_eq!(t.pass(t0 + Duration::from_secs(1)), Some(2));
    }
}
