//! What `compare` keeps: the document `--json` writes and `wsload report`
//! reads back. The tables, the HTML page and the charts are all drawn from
//! this document alone, so the pictures and the numbers cannot disagree.
//!
//! A document holds scenarios; a scenario, one result per server; a
//! result, its rounds (each with the single run's full JSON) and a summary
//! over them: medians and min–max, ratios to the first server, and notes
//! when rounds disagree or wsload itself was the limit.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::machine::Machine;

/// What a document is, and the version of its layout.
pub const FORMAT: &str = "wsload-compare/1";

/// Rounds of one server that differ by more than this share of their
/// median are called noisy.
pub const NOISE: f64 = 0.20;

/// One comparison: every scenario against every server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Document {
    /// [`FORMAT`].
    pub format: String,
    /// The wsload version that ran it.
    pub wsload: String,
    /// When it started, UTC (RFC 3339).
    pub started: String,
    /// The command line.
    pub command: Vec<String>,
    /// The machine.
    pub machine: Machine,
    /// Rounds, pinning and servers.
    pub setup: Setup,
    /// The results, one per scenario, in the order run.
    pub scenarios: Vec<ScenarioResult>,
    /// Whether any round counted an error or could not run.
    pub failed: bool,
}

/// How the comparison was run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Setup {
    /// Rounds per scenario and server (a scenario may set its own).
    pub rounds: u32,
    /// The CPUs the servers ran on (`None`: not pinned).
    pub server_cpus: Option<String>,
    /// The CPUs wsload ran on (`None`: not pinned).
    pub load_cpus: Option<String>,
    /// The servers, in order; ratios are to the first.
    pub servers: Vec<ServerInfo>,
}

/// One server compared.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Its name in tables and charts.
    pub name: String,
    /// The command wsload started it with, `{port}` unreplaced.
    pub command: Option<String>,
    /// The URL of a server that was already running.
    pub url: Option<String>,
}

/// One scenario against every server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Its name (file names of its charts derive from it).
    pub name: String,
    /// What it does, in words.
    pub title: String,
    /// The mode: echo, rate, broadcast, conns or churn.
    pub mode: String,
    /// The run's parameters, as a single run reports them.
    pub params: Value,
    /// The CPUs wsload ran on for this scenario.
    pub load_cpus: Option<String>,
    /// One result per server, in the setup's order.
    pub servers: Vec<ServerResult>,
}

/// One server's rounds of one scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerResult {
    /// The server's name.
    pub name: String,
    /// Medians, spreads and ratios over the rounds.
    pub summary: Outcome,
    /// What a reader should know: noise, saturation, errors.
    pub notes: Vec<String>,
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// Why a round could not run (the server did not start), which ended
    /// the comparison; the row is marked failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<ServerFailure>,
}

/// A server that could not be started for a round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFailure {
    /// The round, 1-based.
    pub round: u32,
    /// What happened, in one line.
    pub what: String,
    /// How the process ended (`exit status: 127`), if it ran at all.
    pub status: Option<String>,
    /// The last lines it printed (stdout and stderr).
    pub output: Vec<String>,
}

/// One run of one scenario against one server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Round {
    /// 1-based.
    pub round: u32,
    /// Where the load went.
    pub url: String,
    /// The server process sampled, if any.
    pub pid: Option<u32>,
    /// The command a started server ran, `{port}` replaced.
    pub command: Option<String>,
    /// How a started server ended when it was stopped.
    pub ended: Option<String>,
    /// The last lines a started server printed, kept when it exited
    /// during the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    /// The figures compared.
    pub figures: RoundFigures,
    /// The latency spectrum: (percentile, µs) pairs, HdrHistogram style.
    pub spectrum: Vec<[f64; 2]>,
    /// The per-second series of warm-up and measured window.
    pub timeline: Vec<Tick>,
    /// The single run's full report (what `wsload MODE --json` writes).
    pub run: Value,
}

/// A round's figures. The rate is messages per second (broadcast:
/// deliveries; conns: handshakes); the cost is server CPU µs per message
/// (broadcast: per delivery; conns: server RSS bytes per connection).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoundFigures {
    /// See the type's doc.
    pub rate: f64,
    /// Payload megabytes (10^6) per second.
    pub mb_per_s: f64,
    /// Latency percentiles, µs (conns: of the handshake).
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// The largest.
    pub max_us: f64,
    /// See the type's doc; `None` without a server process to sample.
    pub cost: Option<f64>,
    /// Server CPU µs per message or delivery.
    pub cpu_us: Option<f64>,
    /// Messages (deliveries) per server CPU-second.
    pub per_cpu_s: Option<f64>,
    /// Server CPU use in the window, in cores.
    pub server_cores: Option<f64>,
    /// Server RSS growth per connection opened, bytes.
    pub rss_per_conn: Option<f64>,
    /// Errors counted.
    pub errors: u64,
    /// Whether the run failed (errors, loss, nothing connected).
    pub failed: bool,
    /// Whether wsload itself was the limit.
    pub saturated: bool,
    /// wsload's CPU use per thread, 0..1.
    pub self_cpu_per_thread: f64,
}

/// One row of the per-second series.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tick {
    /// Where the row starts, seconds from the measured window's start.
    pub t: f64,
    /// Its length in seconds (the first and last may be short).
    pub len: f64,
    /// warmup or measured.
    pub phase: String,
    /// Messages sent in it.
    pub sent: u64,
    /// Messages (deliveries) received in it.
    pub received: u64,
    /// Errors in it.
    pub errors: u64,
}

/// A figure over rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest round.
    pub min: f64,
    /// The largest round.
    pub max: f64,
}

impl Spread {
    /// The spread of `v`; `None` if empty.
    pub fn of(v: &[f64]) -> Option<Spread> {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let (&min, &max) = (v.first()?, v.last()?);
        let n = v.len();
        let median = if n % 2 == 1 {
            *v.get(n / 2)?
        } else {
            (v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0
        };
        Some(Spread { median, min, max })
    }

    /// (max − min) / median: how far the rounds disagree.
    pub fn disagreement(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }

    /// Whether the two ranges overlap: a change between them is within
    /// the rounds' own spread.
    pub fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// A server's summary over its rounds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// See [`RoundFigures::rate`].
    pub rate: Spread,
    /// See [`RoundFigures::cost`].
    pub cost: Option<Spread>,
    /// Messages (deliveries) per server CPU-second.
    pub per_cpu_s: Option<Spread>,
    /// Server RSS growth per connection, bytes.
    pub rss_per_conn: Option<Spread>,
    /// Latency percentiles, µs.
    pub p50_us: Spread,
    /// 99th percentile.
    pub p99_us: Spread,
    /// 99.9th percentile.
    pub p999_us: Spread,
    /// Errors over all rounds.
    pub errors: u64,
    /// Rounds that failed.
    pub failed_rounds: u32,
    /// Rounds in which wsload was the limit.
    pub saturated_rounds: u32,
    /// Medians relative to the first server's.
    pub ratio: Ratios,
}

/// Medians relative to the first server's; `None` where either is missing or zero.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Ratios {
    /// Rate.
    pub rate: Option<f64>,
    /// Cost.
    pub cost: Option<f64>,
    /// 99th percentile latency.
    pub p99: Option<f64>,
}

/// What a mode's figures are called.
#[derive(Clone, Copy, Debug)]
pub struct Units {
    /// The rate's unit.
    pub rate: &'static str,
    /// The cost's unit, short.
    pub cost: &'static str,
    /// The cost in words, for chart titles.
    pub cost_words: &'static str,
    /// The per-CPU-second rate's unit.
    pub per_cpu: &'static str,
    /// What the latency measures.
    pub latency: &'static str,
}

impl Units {
    /// The units of `mode`.
    pub fn of(mode: &str) -> Units {
        match mode {
            "conns" => Units {
                rate: "hs/s",
                cost: "RSS B/conn",
                cost_words: "server memory (RSS) per connection, bytes",
                per_cpu: "msg/CPU-s",
                latency: "handshake",
            },
            "broadcast" => Units {
                rate: "dlv/s",
                cost: "CPU µs/dlv",
                cost_words: "server CPU µs per delivery",
                per_cpu: "dlv/CPU-s",
                latency: "fan-out",
            },
            _ => Units {
                rate: "msg/s",
                cost: "CPU µs/msg",
                cost_words: "server CPU µs per message",
                per_cpu: "msg/CPU-s",
                latency: "round trip",
            },
        }
    }
}

impl ScenarioResult {
    /// Fills in each server's summary, ratios and notes from its rounds.
    pub fn summarise(&mut self) {
        let units = Units::of(&self.mode);
        for r in &mut self.servers {
            r.summary = outcome(&r.rounds);
            r.summary.failed_rounds += u32::from(r.failure.is_some());
        }
        let base = self.servers.first().map(|r| r.summary.clone());
        for r in &mut self.servers {
            if let Some(b) = &base {
                r.summary.ratio = Ratios {
                    rate: ratio(r.summary.rate.median, b.rate.median),
                    cost: match (r.summary.cost, b.cost) {
                        (Some(a), Some(b)) => ratio(a.median, b.median),
                        _ => None,
                    },
                    p99: ratio(r.summary.p99_us.median, b.p99_us.median),
                };
            }
            // A round that could not start counts among the rounds.
            let n = r.rounds.len() + usize::from(r.failure.is_some());
            r.notes = notes(&r.summary, n, &r.rounds, units);
        }
    }
}

fn ratio(a: f64, base: f64) -> Option<f64> {
    (base > 0.0 && a.is_finite()).then(|| a / base)
}

fn outcome(rounds: &[Round]) -> Outcome {
    let all = |f: fn(&RoundFigures) -> f64| {
        let v: Vec<f64> = rounds.iter().map(|r| f(&r.figures)).collect();
        Spread::of(&v).unwrap_or_default()
    };
    let some = |f: fn(&RoundFigures) -> Option<f64>| {
        let v: Vec<f64> = rounds.iter().filter_map(|r| f(&r.figures)).collect();
        Spread::of(&v)
    };
    let count =
        |f: fn(&RoundFigures) -> bool| rounds.iter().filter(|r| f(&r.figures)).count() as u32;
    Outcome {
        rate: all(|f| f.rate),
        cost: some(|f| f.cost),
        per_cpu_s: some(|f| f.per_cpu_s),
        rss_per_conn: some(|f| f.rss_per_conn),
        p50_us: all(|f| f.p50_us),
        p99_us: all(|f| f.p99_us),
        p999_us: all(|f| f.p999_us),
        errors: rounds.iter().map(|r| r.figures.errors).sum(),
        failed_rounds: count(|f| f.failed),
        saturated_rounds: count(|f| f.saturated),
        ratio: Ratios::default(),
    }
}

fn notes(o: &Outcome, n: usize, rounds: &[Round], u: Units) -> Vec<String> {
    let mut notes = Vec::new();
    let figures = [(u.cost, o.cost), (u.rate, Some(o.rate))];
    for (name, spread) in figures {
        let Some(s) = spread else { continue };
        let d = s.disagreement();
        if n > 1 && d > NOISE {
            notes.push(format!(
                "noisy: rounds disagree by {:.0}% in {name} ({}–{}); more rounds or a quieter machine would settle it",
                d * 100.0,
                num(s.min),
                num(s.max)
            ));
        }
    }
    if o.saturated_rounds > 0 {
        notes.push(format!(
            "wsload was the limit in {} of {n} rounds (its own CPU at 90% or more per thread): {} is a floor for this server, not its ceiling; try more -t or --load-cpus",
            o.saturated_rounds, u.rate
        ));
    }
    if o.cost.is_none() && !rounds.is_empty() {
        notes.push(
            "no server process was sampled: start it with --server, or name its PID as URL@PID"
                .into(),
        );
    }
    if o.errors > 0 || o.failed_rounds > 0 {
        let first = rounds
            .iter()
            .filter_map(|r| r.run["errors"].as_object())
            .flat_map(|m| m.iter())
            .next()
            .map(|(k, v)| format!(" (first: {k}: {})", v["first"].as_str().unwrap_or("")))
            .unwrap_or_default();
        notes.push(format!(
            "{} errors; {} of {n} rounds failed{first}",
            o.errors, o.failed_rounds
        ));
    }
    for r in rounds {
        if let Some(e) = r.ended.as_deref().filter(|e| e.contains("during the run")) {
            let last = r
                .output
                .last()
                .map(|l| format!("; its output ends: {l}"))
                .unwrap_or_default();
            notes.push(format!("round {}: the server {e}{last}", r.round));
        }
    }
    notes
}

/// A figure with three significant digits, thousands as k and millions as M.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "-".into()
    } else if v == 0.0 {
        "0".into()
    } else if a >= 10e6 {
        format!("{:.0}M", v / 1e6)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 100e3 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 10e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_of_odd_and_even_counts() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).expect("spread");
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(
            Spread::of(&[4.0, 1.0, 3.0, 2.0]).map(|s| s.median),
            Some(2.5)
        );
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn disagreement_is_the_range_over_the_median() {
        let s = Spread::of(&[9.0, 10.0, 12.0]).expect("spread");
        assert!((s.disagreement() - 0.3).abs() < 1e-9);
        let a = Spread::of(&[1.0, 2.0]).expect("a");
        assert!(a.overlaps(&Spread::of(&[2.0, 3.0]).expect("b")));
        assert!(!a.overlaps(&Spread::of(&[2.5, 3.0]).expect("c")));
    }

    fn round(rate: f64, cost: f64, saturated: bool) -> Round {
        Round {
            round: 1,
            url: String::new(),
            pid: Some(1),
            command: None,
            ended: None,
            output: Vec::new(),
            figures: RoundFigures {
                rate,
                cost: Some(cost),
                saturated,
                ..RoundFigures::default()
            },
            spectrum: Vec::new(),
            timeline: Vec::new(),
            run: Value::Null,
        }
    }

    fn result(name: &str, rounds: Vec<Round>) -> ServerResult {
        ServerResult {
            name: name.into(),
            summary: Outcome::default(),
            notes: Vec::new(),
            rounds,
            failure: None,
        }
    }

    #[test]
    fn summaries_give_ratios_to_the_first_and_notes() {
        let mut s = ScenarioResult {
            name: "echo".into(),
            title: String::new(),
            mode: "echo".into(),
            params: Value::Null,
            load_cpus: None,
            servers: vec![
                result(
                    "a",
                    vec![round(100.0, 2.0, false), round(100.0, 2.0, false)],
                ),
                result("b", vec![round(50.0, 3.0, true), round(50.0, 5.0, false)]),
            ],
        };
        s.summarise();
        let [a, b] = &s.servers[..] else {
            panic!("two results")
        };
        assert_eq!(a.summary.ratio.cost, Some(1.0));
        assert_eq!(b.summary.ratio.cost, Some(2.0));
        assert_eq!(b.summary.ratio.rate, Some(0.5));
        assert!(a.notes.is_empty(), "{:?}", a.notes);
        assert!(
            b.notes
                .iter()
                .any(|n| n.starts_with("noisy: rounds disagree by 50% in CPU µs/msg")),
            "{:?}",
            b.notes
        );
        assert!(
            b.notes
                .iter()
                .any(|n| n.contains("wsload was the limit in 1 of 2 rounds")),
            "{:?}",
            b.notes
        );
    }

    #[test]
    fn numbers_keep_three_digits() {
        let cases = [
            (151_532.0, "152k"),
            (15_153.0, "15.2k"),
            (1234.0, "1234"),
            (5.503, "5.50"),
            (0.4012, "0.401"),
            (82.3, "82.3"),
            (2_500_000.0, "2.50M"),
        ];
        for (v, s) in cases {
            assert_eq!(num(v), s, "{v}");
        }
    }
}
