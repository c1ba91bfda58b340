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
    #[arg(long, help_heading = "Capacity search")]
    pub find_max: bool,

    /// The p99 latency bound of --find-max.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_positive_duration,
          help_heading = "Capacity search")]
    pub p99: Option<Duration>,

    /// The first rate --find-max tries, in messages per second [default:
    /// 1000].
    #[arg(long, value_name = "MSGS_PER_S", value_parser = crate::cli::parse_rate,
          help_heading = "Capacity search")]
    pub from: Option<f64>,

    /// The highest rate --find-max tries [default: 1000000].
    #[arg(long, value_name = "MSGS_PER_S", value_parser = crate::cli::parse_rate,
          help_heading = "Capacity search")]
    pub to: Option<f64>,

    /// The most steps --find-max runs [default: 12].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=64), help_heading = "Capacity search")]
    pub max_steps: Option<u32>,

    /// --find-max stops bisecting once the first failing rate is within
    /// this many percent of the last rate that held [default: 5].
    #[arg(long, value_name = "PCT",
          value_parser = clap::value_parser!(u32).range(1..=100), help_heading = "Capacity search")]
    pub resolution: Option<u32>,

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
    #[arg(long, value_name = "FILE", help_heading = "Capacity search")]
    pub html: Option<PathBuf>,
}

impl CapacityArgs {
    /// The search's bounds.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            from: self.from.unwrap_or(1000.0),
            to: self.to.unwrap_or(1e6),
            max_steps: self.max_steps.unwrap_or(12),
            resolution: f64::from(self.resolution.unwrap_or(5)) / 100.0,
        }
    }

    /// Checks what clap cannot (`per_run`: a single run's --hgrm or --csv
    /// was asked for, which a search of many runs does not write);
    /// returns a usage error's message.
    pub fn validate(&self, per_run: bool) -> Result<(), String> {
        let search_flags = self.p99.is_some()
            || self.from.is_some()
            || self.to.is_some()
            || self.max_steps.is_some()
            || self.resolution.is_some()
            || self.html.is_some();
        if !self.find_max && search_flags {
            return Err(
                "--p99, --from, --to, --max-steps, --resolution and --html belong to --find-max"
                    .into(),
            );
        }
        if self.find_max && self.p99.is_none() {
            return Err("--find-max needs --p99, the latency bound a rate must hold".into());
        }
        if self.find_max && per_run {
            return Err(
                "--find-max runs many rates: it writes --json and --html, not --hgrm or --csv"
                    .into(),
            );
        }
        let b = self.bounds();
        if self.find_max && b.from > b.to {
            return Err(format!(
                "--from {} is above --to {}: the search climbs from one to the other",
                b.from, b.to
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
        // No connection opened: the step measured nothing but the failure
        // (wsload's threads may look busy then: they retry, they do not load).
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
        crate::results::num(cap.bounds().from)
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
