//! `compare`: one scenario against several targets in turn (A B A B ...),
//! so drift on the machine hits every target alike; medians per target and
//! ratios to the first.

use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::{Plan, Scenario};
use crate::output;
use crate::report::{self, Figures};
use crate::run;

/// The pause between runs, so one server's tail does not overlap the next run.
const PAUSE: Duration = Duration::from_millis(300);

/// The figures compared. For `conns` the rate is handshakes per second, the
/// latencies are of connect plus handshake, and the server figure is its
/// RSS growth per connection; for `broadcast`, deliveries per second,
/// fan-out latency and server CPU microseconds per delivery; otherwise
/// messages per second, message latency, and server CPU microseconds per
/// message.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    server: Option<f64>,
    errors: u64,
}

/// What the columns are called, and the JSON keys, for one mode.
struct Columns {
    rate: &'static str,
    server: &'static str,
    rate_key: &'static str,
    server_key: &'static str,
}

impl Columns {
    fn of(s: &Scenario) -> Columns {
        match s {
            Scenario::Conns(_) => Columns {
                rate: "hs/s",
                server: "srv B/conn",
                rate_key: "handshakes_per_s",
                server_key: "server_rss_bytes_per_conn",
            },
            Scenario::Broadcast(_) => Columns {
                rate: "dlv/s",
                server: "srv µs/dlv",
                rate_key: "deliveries_per_s",
                server_key: "server_cpu_us_per_delivery",
            },
            _ => Columns {
                rate: "msg/s",
                server: "srv µs/msg",
                rate_key: "msgs_per_s",
                server_key: "server_cpu_us_per_msg",
            },
        }
    }
}

/// The median of `v` (mean of the middle two for an even count); 0 if empty.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn medians(rows: &[Row]) -> Row {
    let pick = |f: fn(&Row) -> f64| median(rows.iter().map(f).collect());
    let server: Vec<f64> = rows.iter().filter_map(|r| r.server).collect();
    Row {
        rate: pick(|r| r.rate),
        p50_us: pick(|r| r.p50_us),
        p99_us: pick(|r| r.p99_us),
        p999_us: pick(|r| r.p999_us),
        server: (!server.is_empty()).then(|| median(server)),
        errors: rows.iter().map(|r| r.errors).sum(),
    }
}

fn ratio(a: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}x", a / base)
    } else {
        "-".into()
    }
}

/// Runs the comparison; returns whether every run was clean.
pub fn run(plan: &Plan, rounds: u32) -> bool {
    let (s, c) = (&plan.scenario, &plan.out);
    let cols = Columns::of(s);
    let conns = matches!(s, Scenario::Conns(_));
    let n = c.targets.len();
    let mut rows: Vec<Vec<Row>> = vec![Vec::new(); n];
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); n];
    let mut clean = true;
    for round in 1..=rounds {
        for (i, target) in c.targets.iter().enumerate() {
            eprintln!("wsload compare: round {round}/{rounds}, {target}");
            let pid: Vec<u32> = c.server_pids.get(i).copied().into_iter().collect();
            let summary = run::run(s, std::slice::from_ref(target), &pid, true);
            let f = Figures::of(&summary);
            let (h, rate, server) = if conns {
                (&summary.stats.connect, f.handshakes_per_s, f.rss_per_conn)
            } else {
                (&summary.stats.latency, f.msgs_per_s, f.server_us_per_msg)
            };
            rows[i].push(Row {
                rate,
                p50_us: h.value_at_percentile(50.0) as f64 / 1000.0,
                p99_us: h.value_at_percentile(99.0) as f64 / 1000.0,
                p999_us: h.value_at_percentile(99.9) as f64 / 1000.0,
                server,
                errors: summary.stats.errors.total(),
            });
            clean &= !f.failed(&summary);
            if f.saturated {
                eprintln!(
                    "wsload compare: wsload was saturated in this run; its figures are a floor"
                );
            }
            runs[i].push(report::json(&summary));
            thread::sleep(PAUSE);
        }
    }
    let med: Vec<Row> = rows.iter().map(|r| medians(r)).collect();
    let base = med[0];
    let mut table = format!(
        "wsload compare {}: medians of {rounds} round{}\n{:<32} {:>11} {:>9} {:>9} {:>9} {:>11} {:>7} {:>8} {:>8} {:>9}\n",
        s.name(),
        if rounds == 1 { "" } else { "s" },
        "target",
        cols.rate,
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        cols.server,
        "errors",
        format!("x {}", cols.rate),
        "x p99",
        format!("x {}", cols.server.trim_start_matches("srv "))
    );
    for (t, m) in c.targets.iter().zip(&med) {
        let srv = m.server.map_or("-".into(), |v| {
            if conns {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            }
        });
        let srv_ratio = match (m.server, base.server) {
            (Some(a), Some(b)) => ratio(a, b),
            _ => "-".into(),
        };
        table.push_str(&format!(
            "{:<32} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>7} {:>8} {:>8} {:>9}\n",
            t.url,
            m.rate,
            m.p50_us,
            m.p99_us,
            m.p999_us,
            srv,
            m.errors,
            ratio(m.rate, base.rate),
            ratio(m.p99_us, base.p99_us),
            srv_ratio
        ));
    }
    let json_to_stdout = output::is_stdout(c.json.as_deref());
    output::print_text(&table, json_to_stdout);
    if let Some(path) = &c.json {
        let targets: Vec<Value> = c
            .targets
            .iter()
            .zip(&med)
            .zip(runs)
            .map(|((t, m), runs)| {
                let mut median = json!({
                    "p50_us": m.p50_us,
                    "p99_us": m.p99_us,
                    "p99_9_us": m.p999_us,
                    "errors": m.errors,
                });
                median[cols.rate_key] = json!(m.rate);
                median[cols.server_key] = json!(m.server);
                median[format!("{}_ratio", cols.rate_key)] = if base.rate > 0.0 {
                    json!(m.rate / base.rate)
                } else {
                    Value::Null
                };
                json!({ "target": t.url, "median": median, "runs": runs })
            })
            .collect();
        let v = json!({ "mode": s.name(), "rounds": rounds, "targets": targets, "failed": !clean });
        clean &= output::write_json(path, &v);
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
