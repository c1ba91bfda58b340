//! The curve a capacity search walked: a text table, the JSON, and an HTML
//! page with its chart (drawn from the same steps, so the picture and the
//! numbers cannot disagree).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::search::{most_steps, Bounds, Outcome, Verdict};
use super::Step;
use crate::cli::capacity::fmt_bound;
use crate::cli::Phases;
use crate::results::num;

/// A finished search and what it ran with.
#[derive(Clone, Debug)]
pub struct Curve {
    /// The URL searched.
    pub target: Option<String>,
    /// The p99 bound.
    pub bound: Duration,
    /// The search's bounds.
    pub bounds: Bounds,
    /// Connections the rate was shared over.
    pub connections: u32,
    /// Payload bytes.
    pub size: usize,
    /// Each step's phases.
    pub step_length: Phases,
    /// The steps, in the order run.
    pub steps: Vec<Step>,
    /// Where it ended.
    pub outcome: Outcome,
}

/// One step in a line: `rate 2000 msg/s: held (p50 41 µs, p99 120 µs)`.
pub fn step_line(s: &Step) -> String {
    format!(
        "rate {} msg/s: {} (received {}/s, p50 {} µs, p99 {} µs, {} errors)",
        num(s.rate),
        s.verdict.as_str(),
        num(s.received_per_s),
        num(s.p50_us),
        num(s.p99_us),
        s.errors
    )
}

impl Curve {
    /// The steps sorted by rate: the curve as a reader wants it.
    pub fn by_rate(&self) -> Vec<&Step> {
        let mut v: Vec<&Step> = self.steps.iter().collect();
        v.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        v
    }

    /// The headline in words.
    pub fn headline(&self) -> String {
        let o = &self.outcome;
        let bound = format!("p99 ≤ {}", fmt_bound(self.bound));
        match (o.max, o.first_bad) {
            (Some(g), Some((b, Verdict::ClientLimited))) => format!(
                "held {} msg/s at {bound}; at {} msg/s wsload itself was the limit, so the server's capacity is at least {} (give wsload more --threads)",
                num(g), num(b), num(g)
            ),
            (Some(g), Some((b, v))) => format!(
                "capacity {} msg/s at {bound} ({} at {} msg/s; resolution {:.1}%, {})",
                num(g),
                v.as_str(),
                num(b),
                o.resolution().unwrap_or(0.0) * 100.0,
                o.stop.as_str()
            ),
            (Some(g), None) => format!(
                "held every rate tried, up to {} msg/s at {bound}: the capacity is at least that",
                num(g)
            ),
            (None, Some((b, v))) => format!(
                "no rate held at {bound}: {} at {} msg/s, the lowest tried (lower --from)",
                v.as_str(),
                num(b)
            ),
            (None, None) => "no step ran".to_string(),
        }
    }

    /// The text report: the headline and the table of steps by rate.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Capacity search: {} connections, {} B, each step {}s warm-up + {}s measured; {} steps (at most {})",
            self.connections,
            self.size,
            self.step_length.warmup.as_secs_f64(),
            self.step_length.duration.as_secs_f64(),
            self.outcome.steps,
            most_steps(&self.bounds),
        );
        let _ = writeln!(o, "  {}", self.headline());
        let _ = writeln!(o);
        let header = [
            "rate msg/s",
            "received/s",
            "p50 µs",
            "p99 µs",
            "server cores",
            "wsload CPU",
            "verdict",
        ];
        let rows: Vec<[String; 7]> = self
            .by_rate()
            .into_iter()
            .map(|s| {
                [
                    num(s.rate),
                    num(s.received_per_s),
                    num(s.p50_us),
                    num(s.p99_us),
                    s.server_cores.map_or("-".into(), |c| format!("{c:.2}")),
                    format!("{:.0}%", s.self_per_thread * 100.0),
                    s.verdict.as_str().to_string(),
                ]
            })
            .collect();
        let mut width = header.map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut l = String::from(" ");
            for (i, (c, w)) in cells.iter().zip(width).enumerate() {
                let pad = " ".repeat(w - c.chars().count());
                // The verdict, last, reads left-aligned.
                if i + 1 == cells.len() {
                    let _ = write!(l, "  {c}");
                } else {
                    let _ = write!(l, "  {pad}{c}");
                }
            }
            l
        };
        let _ = writeln!(o, "{}", line(&header.map(String::from)));
        for r in &rows {
            let _ = writeln!(o, "{}", line(r));
        }
        o
    }

    /// The JSON report: the search's parameters, outcome and curve.
    pub fn json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                json!({
                    "rate": s.rate,
                    "verdict": s.verdict.as_str(),
                    "held": s.verdict == Verdict::Held,
                    "received_per_s": s.received_per_s,
                    "p50_us": s.p50_us,
                    "p99_us": s.p99_us,
                    "errors": s.errors,
                    "server_cores": s.server_cores,
                    "wsload_cpu_per_thread": s.self_per_thread,
                })
            })
            .collect();
        let b = &self.bounds;
        json!({
            "mode": "rate",
            "find_max": {
                "url": self.target,
                "p99_bound_us": self.bound.as_secs_f64() * 1e6,
                "from": b.from,
                "to": b.to,
                "max_steps": b.max_steps,
                "resolution_pct": b.resolution * 100.0,
                "connections": self.connections,
                "size": self.size,
                "warmup_s": self.step_length.warmup.as_secs_f64(),
                "duration_s": self.step_length.duration.as_secs_f64(),
                "grace_s": self.step_length.grace.as_secs_f64(),
            },
            "capacity": self.outcome.json(),
            "steps": steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::search::Stop;
    use super::*;

    fn step(rate: f64, p99_us: f64, verdict: Verdict) -> Step {
        Step {
            rate,
            verdict,
            received_per_s: rate,
            p50_us: p99_us / 2.0,
            p99_us,
            errors: 0,
            server_cores: Some(0.5),
            self_per_thread: 0.1,
        }
    }

    fn curve() -> Curve {
        Curve {
            target: Some("ws://127.0.0.1:9/<room>".into()),
            bound: Duration::from_millis(5),
            bounds: Bounds {
                from: 1000.0,
                to: 1e6,
                max_steps: 12,
                resolution: 0.05,
            },
            connections: 10,
            size: 64,
            step_length: Phases {
                duration: Duration::from_secs(1),
                warmup: Duration::from_millis(500),
                grace: Duration::from_secs(1),
            },
            steps: vec![
                step(1000.0, 100.0, Verdict::Held),
                step(2000.0, 9000.0, Verdict::OverBound),
                step(1500.0, 200.0, Verdict::Held),
            ],
            outcome: Outcome {
                max: Some(1500.0),
                first_bad: Some((2000.0, Verdict::OverBound)),
                stop: Stop::OutOfSteps,
                steps: 3,
            },
        }
    }

    #[test]
    fn the_table_is_sorted_by_rate_and_says_the_capacity() {
        let t = curve().text();
        assert!(t.contains("capacity 1500 msg/s at p99 ≤ 5.00 ms"), "{t}");
        let rows: Vec<&str> = t.lines().skip(4).collect();
        assert!(rows[0].trim_start().starts_with("1000"), "{t}");
        assert!(rows[1].trim_start().starts_with("1500"), "{t}");
        assert!(rows[2].ends_with("p99 over bound"), "{t}");
    }

    #[test]
    fn the_json_carries_the_curve_and_the_page_escapes_the_url() {
        let c = curve();
        let v = c.json();
        assert_eq!(v["capacity"]["max_rate"], 1500.0);
        assert_eq!(v["capacity"]["first_failing_rate"], 2000.0);
        assert_eq!(v["steps"].as_array().map(Vec::len), Some(3));
        assert_eq!(v["steps"][1]["held"], false);
        let page = crate::render::capacity::page(&c).expect("page");
        assert!(page.contains("&lt;room&gt;") && page.contains("<svg"));
    }
}
