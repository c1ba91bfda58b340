//! `rate --find-max`: the highest open-loop rate a server holds while p99
//! stays under a bound, as k6's ramping arrival rate or a wrk2 rate sweep
//! would find it by hand. Each step is one `rate` run (its own
//! connections, warm-up, measured window and grace) at one rate; the
//! [`search`] picks the rates; [`report`] shows the curve it walked.

pub mod report;
pub mod search;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::{Plan, RateArgs, Scenario};
use crate::report::Figures;
use crate::run::{self, Summary};
use crate::target::Target;

use self::search::{Bounds, Search, Verdict};

/// `rate`'s capacity-search flags.
#[derive(Args, Debug, Clone)]
pub struct CapacityArgs {
    /// Search for the highest rate at which p99 stays under --p99 with no
    /// error, instead of running one rate. The rate doubles from --from
    /// until a step fails, then bisects between the last rate that held and
    /// the first that did not, down to --resolution.
    ///
    /// Each step is a run of its own: new connections, --warmup, the -d
    /// window, at most --grace. A step fails on p99 (from the intended send
    /// time) over the bound, on any error, or on no reply; a step where
    /// wsload itself was saturated is reported as such and ends the search,
    /// since it measures wsload, not the server. At most --max-steps steps,
    /// so the search takes at most --max-steps × (--connect-timeout +
    /// --warmup + -d + --grace).
    #[arg(long, requires = "p99", help_heading = "Capacity search")]
    pub find_max: bool,

    /// The p99 latency bound of --find-max.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_positive_duration,
          requires = "find_max", help_heading = "Capacity search")]
    pub p99: Option<Duration>,

    /// The first rate --find-max tries, in messages per second.
    #[arg(long, value_name = "MSGS_PER_S", default_value = "1000", value_parser = crate::cli::parse_rate,
          help_heading = "Capacity search")]
    pub from: f64,

    /// The highest rate --find-max tries.
    #[arg(long, value_name = "MSGS_PER_S", default_value = "1000000", value_parser = crate::cli::parse_rate,
          help_heading = "Capacity search")]
    pub to: f64,

    /// The most steps --find-max runs.
    #[arg(long, value_name = "N", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=64), help_heading = "Capacity search")]
    pub max_steps: u32,

    /// --find-max stops bisecting once the first failing rate is within
    /// this many percent of the last rate that held.
    #[arg(long, value_name = "PCT", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=100), help_heading = "Capacity search")]
    pub resolution: u32,

    /// The HTML page to write, from [`CurveOut`] (a single run's flag:
    /// `compare` has its own --html).
    #[arg(skip)]
    pub html: Option<PathBuf>,
}

/// A single `rate` run's capacity output (not `compare`'s, whose --html is
/// its own report).
#[derive(Args, Debug, Clone)]
pub struct CurveOut {
    /// Write the --find-max curve as a self-contained HTML page with its
    /// chart (latency against rate, the bound drawn across).
    #[arg(
        long,
        value_name = "FILE",
        requires = "find_max",
        help_heading = "Capacity search"
    )]
    pub html: Option<PathBuf>,
}

impl CapacityArgs {
    /// The search's bounds.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            from: self.from,
            to: self.to,
            max_steps: self.max_steps,
            resolution: f64::from(self.resolution) / 100.0,
        }
    }

    /// Checks what clap cannot; returns a usage error's message.
    pub fn validate(&self) -> Result<(), String> {
        if self.find_max && self.from > self.to {
            return Err(format!(
                "--from {} is above --to {}: the search climbs from one to the other",
                self.from, self.to
            ));
        }
        Ok(())
    }
}

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
        let over = !h.is_empty() && u128::from(p99) > bound.as_nanos();
        let verdict = if f.saturated {
            Verdict::ClientLimited
        } else if over {
            Verdict::OverBound
        } else if errors > 0 || s.stats.opened == 0 {
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
        let summary = run::run(&Scenario::Rate(args), targets, pids, false);
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

/// The scenario in words: `capacity at p99 ≤ 5 ms, from 1000 msg/s`.
pub fn describe(cap: &CapacityArgs) -> String {
    format!(
        "capacity at p99 ≤ {}, from {} msg/s",
        report::fmt_bound(cap.p99.unwrap_or_default()),
        crate::results::num(cap.from)
    )
}

/// Runs the search the plan asks for; prints the curve and writes the
/// files. Clean when some rate held.
pub fn run(plan: &Plan, rate: &RateArgs) -> bool {
    let cap = &rate.capacity;
    let curve = search(rate, &plan.out.targets, &plan.out.server_pids, "wsload: ").curve;
    let outcome = curve.outcome;
    let json_to_stdout = crate::output::is_stdout(plan.out.json.as_deref());
    crate::output::print_text(&curve.text(), json_to_stdout);
    let mut ok = outcome.max.is_some();
    if let Some(path) = &plan.out.json {
        ok &= crate::output::write_json(path, &curve.json());
    }
    if let Some(path) = &cap.html {
        ok &= match curve.html() {
            Ok(page) => crate::output::write_to(path, |w| w.write_all(page.as_bytes())),
            Err(e) => {
                eprintln!("wsload: {e}");
                false
            }
        };
    }
    ok
}
