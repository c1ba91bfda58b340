//! What `compare` keeps of one run: the figures it compares, the latency
//! spectrum and the per-second series the charts draw, and the single
//! run's full report.

use hdrhistogram::Histogram;

use crate::capacity::search::Stop;
use crate::capacity::Searched;
use crate::report::{self, us, Figures};
use crate::results::{Round, RoundFigures, Tick};
use crate::run::Summary;
use crate::window::{RowPhase, Window};

/// The record of one run of `compare`.
pub fn round(s: &Summary, round: u32, command: Option<String>, ended: Option<String>) -> Round {
    let f = Figures::of(s);
    let conns = s.mode == "conns";
    let h = if conns {
        &s.stats.connect
    } else {
        &s.stats.latency
    };
    let pct = |p: f64| us(h.value_at_percentile(p));
    let figures = RoundFigures {
        rate: if conns {
            f.handshakes_per_s
        } else {
            f.msgs_per_s
        },
        mb_per_s: f.mb_per_s,
        p50_us: pct(50.0),
        p99_us: pct(99.0),
        p999_us: pct(99.9),
        max_us: us(h.max()),
        cost: if conns {
            f.rss_per_conn
        } else {
            f.server_us_per_msg
        },
        cpu_us: f.server_us_per_msg,
        per_cpu_s: f.msgs_per_server_cpu_s,
        server_cores: f.server_cores,
        rss_per_conn: f.rss_per_conn,
        errors: s.stats.errors.total(),
        failed: f.failed(s),
        saturated: f.saturated,
        self_cpu_per_thread: f.self_per_thread,
    };
    Round {
        round,
        url: s.targets.first().map(|t| t.url.clone()).unwrap_or_default(),
        pid: s.server.as_ref().and_then(|sv| sv.pids.first().copied()),
        command,
        ended,
        output: Vec::new(),
        figures,
        spectrum: spectrum(h),
        timeline: timeline(s),
        run: report::json(s),
    }
}

/// The record of a capacity search (`rate --find-max`): the figures,
/// spectrum and series of the highest rate that held, except that the
/// rate is the rate offered there (the capacity, by which servers are
/// ranked), and the curve joins the run's report as `find_max`. No rate
/// held: the last step's figures, at rate 0, failed.
pub fn capacity_round(
    found: &Searched,
    n: u32,
    command: Option<String>,
    ended: Option<String>,
) -> Round {
    let mut r = match &found.best {
        Some(s) => round(s, n, command, ended),
        None => Round {
            round: n,
            url: found.curve.target.clone().unwrap_or_default(),
            pid: None,
            command,
            ended,
            output: Vec::new(),
            figures: RoundFigures::default(),
            spectrum: Vec::new(),
            timeline: Vec::new(),
            run: serde_json::Value::Null,
        },
    };
    let o = &found.curve.outcome;
    // No rate held: the figures of the last step stand, at rate 0, failed.
    r.figures.rate = o.max.unwrap_or(0.0);
    r.figures.failed |= o.max.is_none();
    // The search stopped on wsload's own limit: the capacity is a floor.
    r.figures.saturated |= o.stop == Stop::ClientLimited;
    if !r.run.is_object() {
        r.run = serde_json::json!({});
    }
    r.run["find_max"] = found.curve.json();
    r
}

/// Latency at percentiles spaced evenly on HdrHistogram's axis,
/// 1/(1 − p): ten points per decade, up to where the count still resolves them.
fn spectrum(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    let n = h.len() as f64;
    (0..=70)
        .map(|k| 10f64.powf(f64::from(k) / 10.0))
        .take_while(|&x| x <= n)
        .map(|x| {
            let q = 1.0 - 1.0 / x;
            [q * 100.0, us(h.value_at_quantile(q))]
        })
        .collect()
}

/// The warm-up and measured rows of the per-second series.
fn timeline(s: &Summary) -> Vec<Tick> {
    let layout = Window::new(0, &s.timing);
    let rows = &s.stats.timeline.seconds;
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let (phase, t) = layout.row_start(i);
        // A row ends where the next begins: the last measured one with the window.
        let (_, end) = layout.row_start(i + 1);
        if phase == RowPhase::Drain || end <= t {
            break;
        }
        out.push(Tick {
            t,
            len: end - t,
            phase: phase.name().to_string(),
            sent: row.sent,
            received: row.received,
            errors: row.errors,
        });
    }
    out
}
