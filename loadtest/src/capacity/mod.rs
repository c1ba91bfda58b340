//! `rate --find-max`: the highest open-loop rate a server holds while p99
//! stays under a bound, as k6's ramping arrival rate or a wrk2 rate sweep
//! would find it by hand. Each step is one `rate` run (its own
//! connections, warm-up, measured window and grace) at one rate; the
//! [`search`] picks the rates; [`report`] shows the curve it walked.

pub mod report;
pub mod search;

use std::time::Duration;

use crate::cli::{RateArgs, Scenario};
use crate::report::Figures;
use crate::run::Summary;
use crate::target::Target;

use self::search::{Search, Verdict};

/// One step of the search: its rate, verdict and figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The rate offered, messages per second.
    pub rate: f64,
    /// How it went.
    pub verdict: Verdict,
    /// Replies per second in the measured window.
    pub received_per_s: f64,
    /// Corrected latency percentiles, µs (0 with no replies).
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// Errors counted.
    pub errors: u64,
    /// Server CPU in cores, with --server-pid.
    pub server_cores: Option<f64>,
    /// wsload's CPU per thread, 0..1.
    pub self_per_thread: f64,
}

impl Step {
    /// The step at `rate` judged against `bound`.
    pub fn of(rate: f64, s: &Summary, bound: Duration) -> Step {
        let f = Figures::of(s);
        let h = &s.stats.latency;
        let (p50, p99) = if h.is_empty() {
            (0, 0)
        } else {
            (h.value_at_percentile(50.0), h.value_at_percentile(99.0))
        };
        let errors = s.stats.errors.total();
        // Saturation first: when wsload was the limit, its latencies and
        // unanswered messages say nothing about the server. Then p99: an
        // overloaded server also leaves replies unanswered when the grace
        // period ends, counted as errors, but its latency is the cause.
        // No connection opened: the step measured nothing but the failure,
        // whatever its other figures say.
        let over = !h.is_empty() && u128::from(p99) > bound.as_nanos();
        let verdict = if s.stats.opened == 0 {
            Verdict::Errors
        } else if f.saturated {
            Verdict::ClientLimited
        } else if over {
            Verdict::OverBound
        } else if errors > 0 {
            Verdict::Errors
        } else if h.is_empty() {
            Verdict::NoReplies
        } else {
            Verdict::Held
        };
        Step {
            rate,
            verdict,
            received_per_s: f.msgs_per_s,
            p50_us: p50 as f64 / 1000.0,
            p99_us: p99 as f64 / 1000.0,
            errors,
            server_cores: f.server_cores,
            self_per_thread: f.self_per_thread,
        }
    }
}

/// A finished search: the curve, and the run of the highest rate that held
/// (or, if none did, of the last step).
pub struct Searched {
    /// The curve.
    pub curve: report::Curve,
    /// The run behind the headline figure.
    pub best: Option<Summary>,
}

/// Searches `targets` (sampling `pids`) as `rate`'s --find-max flags ask;
/// each step's line goes to stderr after `label`.
pub fn search(rate: &RateArgs, targets: &[Target], pids: &[u32], label: &str) -> Searched {
    let cap = &rate.capacity;
    let bound = cap.p99.unwrap_or(Duration::from_millis(5));
    let mut search = Search::new(cap.bounds());
    let mut steps = Vec::new();
    let (mut best, mut last): (Option<(f64, Summary)>, Option<Summary>) = (None, None);
    while let Some(r) = search.next() {
        let mut args = rate.clone();
        args.rate = r;
        let summary = crate::agent::run(&Scenario::Rate(args), targets, pids, false);
        let step = Step::of(r, &summary, bound);
        eprintln!("{label}find-max {}", report::step_line(&step));
        search.record(r, step.verdict);
        if step.verdict == Verdict::Held && best.as_ref().is_none_or(|(b, _)| r > *b) {
            best = Some((r, summary));
        } else {
            last = Some(summary);
        }
        steps.push(step);
    }
    let curve = report::Curve {
        target: targets.first().map(|t| t.url.clone()),
        bound,
        bounds: cap.bounds(),
        connections: rate.connections,
        size: rate.payload.size,
        step_length: rate.phases,
        steps,
        outcome: search.outcome(),
    };
    Searched {
        curve,
        best: best.map(|(_, s)| s).or(last),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Job, Scenario};

    fn plan(args: &[&str]) -> Result<Result<(), String>, clap::Error> {
        let mut argv = vec!["wsload", "rate"];
        argv.extend_from_slice(args);
        argv.push("ws://127.0.0.1:9/");
        Cli::try_parse_from(argv).map(|c| match c.command.into_job() {
            Job::Single(p) => p.validate(),
            other => panic!("not a single run: {other:?}"),
        })
    }

    #[test]
    fn find_max_takes_the_place_of_the_rate_and_needs_a_bound() {
        assert!(plan(&["--find-max", "--p99", "5ms"]).is_ok_and(|v| v.is_ok()));
        assert!(plan(&["--find-max", "--p99", "5ms", "-R", "10"]).is_err());
        let mut argv = vec!["wsload", "rate", "--find-max", "--p99", "2ms"];
        argv.extend(["--from", "50", "--to", "800", "ws://127.0.0.1:9/"]);
        let Ok(Job::Single(p)) = Cli::try_parse_from(argv).map(|c| c.command.into_job()) else {
            panic!("parses");
        };
        let Scenario::Rate(r) = &p.scenario else {
            panic!("rate")
        };
        let b = r.capacity.bounds();
        assert_eq!(
            (b.from, b.to, b.max_steps, b.resolution),
            (50.0, 800.0, 12, 0.05)
        );
    }

    #[test]
    fn the_bounds_and_the_outputs_are_checked() {
        let err = |args: &[&str]| plan(args).expect("parses").expect_err("refused");
        let base = ["--find-max", "--p99", "5ms"];
        let with = |more: &[&'static str]| [&base[..], more].concat();
        assert!(err(&with(&["--from", "10", "--to", "5"])).contains("above --to"));
        assert!(err(&with(&["--csv", "x.csv"])).contains("not --hgrm or --csv"));
        assert!(err(&with(&["--hgrm", "x.hgrm"])).contains("not --hgrm or --csv"));
        assert!(err(&["--find-max"]).contains("needs --p99"));
        for alone in [
            &["--p99", "5ms"][..],
            &["--from", "5"],
            &["--html", "x.html"],
        ] {
            let args = [alone, &["-R", "10"]].concat();
            assert!(err(&args).contains("belong to --find-max"), "{alone:?}");
        }
    }
}
