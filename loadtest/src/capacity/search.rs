//! The search itself, with no I/O: which rate to try next, given the
//! verdicts so far. A geometric ramp (×2 from `--from`, capped at `--to`)
//! until a step fails, then bisection between the last rate that held and
//! the first that did not, until the two are within the resolution asked
//! for or the steps run out.
//!
//! ```text
//!   Ramp ──held, below --to──▶ Ramp (rate × 2)
//!   Ramp ──held at --to─────▶ done: HeldCeiling
//!   Ramp ──failed, none held─▶ done: NeverHeld
//!   Ramp ──failed───────────▶ Bisect(good, bad)
//!   Bisect ──within resolution▶ done: Bracketed
//!   any ──wsload the limit───▶ done: ClientLimited (the bracket's top is ours, not the server's)
//!   any ──steps used up──────▶ done: OutOfSteps
//! ```

use serde_json::{json, Value};

pub use crate::cli::capacity::Bounds;

/// How one step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// p99 under the bound, no error, wsload not saturated.
    Held,
    /// p99 over the bound.
    OverBound,
    /// Errors were counted (refused, closed, unanswered, mismatched...).
    Errors,
    /// No reply came in the measured window: nothing to take a p99 of.
    NoReplies,
    /// wsload itself was the limit (a thread's CPU at or near 100%): the
    /// step says nothing about the server.
    ClientLimited,
}

impl Verdict {
    /// The verdict in a word or two, for tables and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Held => "held",
            Verdict::OverBound => "p99 over bound",
            Verdict::Errors => "errors",
            Verdict::NoReplies => "no replies",
            Verdict::ClientLimited => "wsload was the limit",
        }
    }
}

/// Why the search stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Last-good and first-bad are within the resolution.
    Bracketed,
    /// Every step held, up to `--to`: the capacity is at least that.
    HeldCeiling,
    /// The first step (`--from`) failed: the capacity is below it.
    NeverHeld,
    /// A step was limited by wsload: the server held at least the last
    /// good rate, and wsload cannot say more (give it more --threads).
    ClientLimited,
    /// `--max-steps` ran out before the bracket closed.
    OutOfSteps,
}

impl Stop {
    /// The reason in words.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Bracketed => "bracketed",
            Stop::HeldCeiling => "held --to",
            Stop::NeverHeld => "failed at --from",
            Stop::ClientLimited => "wsload was the limit",
            Stop::OutOfSteps => "out of steps",
        }
    }
}

/// The search's state: the bracket so far and what to try next.
#[derive(Clone, Debug)]
pub struct Search {
    bounds: Bounds,
    /// The highest rate that held.
    good: Option<f64>,
    /// The lowest rate that failed, and how.
    bad: Option<(f64, Verdict)>,
    steps: u32,
    /// The next rate, or why there is none.
    next: Result<f64, Stop>,
}

/// Where the search ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// The highest rate that held, if any did.
    pub max: Option<f64>,
    /// The lowest rate that failed, and how.
    pub first_bad: Option<(f64, Verdict)>,
    /// Why the search stopped.
    pub stop: Stop,
    /// Steps run.
    pub steps: u32,
}

impl Outcome {
    /// (first-bad − last-good) / last-good, when both exist.
    pub fn resolution(&self) -> Option<f64> {
        match (self.max, self.first_bad) {
            (Some(g), Some((b, _))) if g > 0.0 => Some((b - g) / g),
            _ => None,
        }
    }

    /// The outcome for the JSON report.
    pub fn json(&self) -> Value {
        json!({
            "max_rate": self.max,
            "first_failing_rate": self.first_bad.map(|b| b.0),
            "first_failing_verdict": self.first_bad.map(|b| b.1.as_str()),
            "resolution_pct": self.resolution().map(|r| r * 100.0),
            "stopped": self.stop.as_str(),
            "steps": self.steps,
        })
    }
}

impl Search {
    /// A search within `bounds` (`from` ≤ `to`, checked by the flags).
    pub fn new(bounds: Bounds) -> Search {
        let next = if bounds.max_steps == 0 {
            Err(Stop::OutOfSteps)
        } else {
            Ok(bounds.from.min(bounds.to))
        };
        Search {
            bounds,
            good: None,
            bad: None,
            steps: 0,
            next,
        }
    }

    /// The rate to try next, or `None` when the search is over.
    pub fn next(&self) -> Option<f64> {
        self.next.ok()
    }

    /// Records how the step at `rate` (the one [`Search::next`] gave) went.
    pub fn record(&mut self, rate: f64, verdict: Verdict) {
        self.steps += 1;
        if verdict == Verdict::Held {
            self.good = Some(self.good.map_or(rate, |g| g.max(rate)));
        } else if self.bad.is_none_or(|(b, _)| rate <= b) {
            self.bad = Some((rate, verdict));
        }
        self.next = self.choose(rate);
    }

    fn choose(&self, last: f64) -> Result<f64, Stop> {
        let b = self.bounds;
        match (self.good, self.bad) {
            (_, Some((_, Verdict::ClientLimited))) => Err(Stop::ClientLimited),
            (None, Some(_)) => Err(Stop::NeverHeld),
            (_, None) if last >= b.to => Err(Stop::HeldCeiling),
            (Some(g), Some((bad, _))) if (bad - g) <= b.resolution * g => Err(Stop::Bracketed),
            _ if self.steps >= b.max_steps => Err(Stop::OutOfSteps),
            (_, None) => Ok((last * 2.0).min(b.to)),
            (Some(g), Some((bad, _))) => Ok((g + bad) / 2.0),
        }
    }

    /// Where the search ended (or stands).
    pub fn outcome(&self) -> Outcome {
        Outcome {
            max: self.good,
            first_bad: self.bad,
            stop: self.next.err().unwrap_or(Stop::OutOfSteps),
            steps: self.steps,
        }
    }
}

/// The most steps a search within `bounds` can take: the ramp's doublings
/// from `from` to `to`, then the halvings of the last doubling down to the
/// resolution, capped by `max_steps`. It bounds the search's time.
pub fn most_steps(bounds: &Bounds) -> u32 {
    let ramp = (bounds.to / bounds.from).log2().ceil().max(0.0) as u32 + 1;
    // A doubling leaves a bracket of 100%; each halving halves it.
    let halvings = (1.0 / bounds.resolution.max(1e-6)).log2().ceil().max(0.0) as u32;
    (ramp + halvings).min(bounds.max_steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            from: 100.0,
            to: 100_000.0,
            max_steps: 30,
            resolution: 0.05,
        }
    }

    /// Runs a search against a server that holds up to `cap` (exclusive of
    /// anything above); returns the rates tried and the outcome.
    fn against(bounds: Bounds, verdict: impl Fn(f64) -> Verdict) -> (Vec<f64>, Outcome) {
        let mut s = Search::new(bounds);
        let mut tried = Vec::new();
        while let Some(r) = s.next() {
            tried.push(r);
            s.record(r, verdict(r));
            assert!(tried.len() <= 100, "the search does not end: {tried:?}");
        }
        (tried, s.outcome())
    }

    fn knee(cap: f64) -> impl Fn(f64) -> Verdict {
        move |r| {
            if r <= cap {
                Verdict::Held
            } else {
                Verdict::OverBound
            }
        }
    }

    #[test]
    fn ramps_doubling_then_bisects_to_the_resolution() {
        let (tried, o) = against(bounds(), knee(1000.0));
        assert_eq!(&tried[..5], &[100.0, 200.0, 400.0, 800.0, 1600.0]);
        assert_eq!(tried[5], 1200.0);
        assert_eq!(o.stop, Stop::Bracketed);
        let (g, (b, v)) = (o.max.unwrap(), o.first_bad.unwrap());
        assert!(g <= 1000.0 && b > 1000.0, "{g} {b}");
        assert!(o.resolution().unwrap() <= 0.05);
        assert_eq!(v, Verdict::OverBound);
        assert!(o.steps <= most_steps(&bounds()), "{tried:?}");
    }

    #[test]
    fn every_knee_is_found_within_the_resolution_and_the_step_bound() {
        for cap in [100.0, 150.0, 333.0, 999.0, 12_345.0, 99_999.0] {
            let (tried, o) = against(bounds(), knee(cap));
            let (g, (b, _)) = (o.max.unwrap(), o.first_bad.unwrap());
            assert!(g <= cap && cap < b, "cap {cap}: {g}..{b}");
            assert!((b - g) / g <= 0.05, "cap {cap}: {tried:?}");
            assert!(o.steps <= most_steps(&bounds()), "cap {cap}: {tried:?}");
        }
    }

    #[test]
    fn a_server_that_holds_everything_stops_at_the_ceiling() {
        let (tried, o) = against(bounds(), |_| Verdict::Held);
        assert_eq!(tried.last(), Some(&100_000.0));
        assert_eq!(o.stop, Stop::HeldCeiling);
        assert_eq!(o.max, Some(100_000.0));
        assert_eq!(o.first_bad, None);
    }

    #[test]
    fn failing_at_from_stops_at_once() {
        let (tried, o) = against(bounds(), |_| Verdict::Errors);
        assert_eq!(tried, [100.0]);
        assert_eq!(o.stop, Stop::NeverHeld);
        assert_eq!(o.max, None);
    }

    #[test]
    fn a_client_limited_step_is_not_the_servers_capacity() {
        let (tried, o) = against(bounds(), |r| {
            if r < 500.0 {
                Verdict::Held
            } else {
                Verdict::ClientLimited
            }
        });
        assert_eq!(tried, [100.0, 200.0, 400.0, 800.0]);
        assert_eq!(o.stop, Stop::ClientLimited);
        assert_eq!(o.max, Some(400.0));
        assert_eq!(o.first_bad, Some((800.0, Verdict::ClientLimited)));
    }

    #[test]
    fn the_steps_are_bounded() {
        let b = Bounds {
            max_steps: 3,
            ..bounds()
        };
        let (tried, o) = against(b, knee(5000.0));
        assert_eq!(tried.len(), 3);
        assert_eq!(o.stop, Stop::OutOfSteps);
        assert_eq!(most_steps(&b), 3);
    }
}
