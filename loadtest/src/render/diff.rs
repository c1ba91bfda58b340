//! `wsload report A.json B.json`: each figure of B against A's, flagged
//! as a change only when the two min–max ranges do not overlap, i.e. when
//! the difference is larger than the rounds' own spread.

use super::text::{spread, Table};
use crate::results::{Document, Outcome, Spread, Units};

/// One figure of one server in one scenario, before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The scenario.
    pub scenario: String,
    /// The server.
    pub server: String,
    /// The figure's name (its unit).
    pub figure: String,
    /// A's rounds.
    pub a: Spread,
    /// B's rounds.
    pub b: Spread,
    /// Whether B's range lies wholly outside A's.
    pub changed: bool,
    /// Whether higher is better (a rate) rather than lower (a cost, a latency).
    pub higher_is_better: bool,
}

impl Change {
    /// The median's relative change, B against A.
    pub fn relative(&self) -> Option<f64> {
        (self.a.median > 0.0).then(|| self.b.median / self.a.median - 1.0)
    }

    /// What the change means in words.
    pub fn verdict(&self) -> &'static str {
        if !self.changed {
            return "within spread";
        }
        let up = self.b.median > self.a.median;
        if up == self.higher_is_better {
            "better: CHANGED"
        } else {
            "worse: CHANGED"
        }
    }
}

fn figures(o: &Outcome, u: Units) -> Vec<(String, Spread, bool)> {
    let mut v = Vec::new();
    if let Some(c) = o.cost {
        v.push((u.cost.to_string(), c, false));
    }
    v.push((u.rate.to_string(), o.rate, true));
    v.push(("p99 µs".to_string(), o.p99_us, false));
    v
}

/// Every figure both documents have, by scenario and server name.
pub fn changes(a: &Document, b: &Document) -> Vec<Change> {
    let mut out = Vec::new();
    for sb in &b.scenarios {
        let Some(sa) = a
            .scenarios
            .iter()
            .find(|s| s.name == sb.name && s.mode == sb.mode)
        else {
            continue;
        };
        let u = Units::of(&sb.mode);
        for rb in &sb.servers {
            let Some(ra) = sa.servers.iter().find(|r| r.name == rb.name) else {
                continue;
            };
            let fa = figures(&ra.summary, u);
            for (name, b_spread, higher) in figures(&rb.summary, u) {
                let Some((_, a_spread, _)) = fa.iter().find(|(n, _, _)| *n == name) else {
                    continue;
                };
                out.push(Change {
                    scenario: sb.name.clone(),
                    server: rb.name.clone(),
                    figure: name,
                    a: *a_spread,
                    b: b_spread,
                    changed: !a_spread.overlaps(&b_spread),
                    higher_is_better: higher,
                });
            }
        }
    }
    out
}

/// The changes as a table.
pub fn table(changes: &[Change]) -> Table {
    let header = ["scenario", "server", "figure", "A", "B", "B ÷ A", "verdict"]
        .map(String::from)
        .to_vec();
    let rows = changes
        .iter()
        .map(|c| {
            vec![
                c.scenario.clone(),
                c.server.clone(),
                c.figure.clone(),
                spread(&c.a),
                spread(&c.b),
                c.relative()
                    .map_or_else(|| "-".into(), |r| format!("{:+.0}%", r * 100.0)),
                c.verdict().to_string(),
            ]
        })
        .collect();
    Table {
        header,
        rows,
        names: 3,
    }
}

/// What a reader should know before trusting the comparison.
pub fn caveats(a: &Document, b: &Document) -> Vec<String> {
    let mut v = Vec::new();
    if a.machine.cpu_model != b.machine.cpu_model || a.machine.cpus != b.machine.cpus {
        v.push(format!(
            "the machines differ: A ran on {}, B on {}",
            a.machine.line(),
            b.machine.line()
        ));
    }
    if a.setup.server_cpus != b.setup.server_cpus || a.setup.load_cpus != b.setup.load_cpus {
        v.push("the pinning differs between A and B".into());
    }
    let missing: Vec<&str> = a
        .scenarios
        .iter()
        .filter(|s| !b.scenarios.iter().any(|t| t.name == s.name))
        .map(|s| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        v.push(format!("only in A: {}", missing.join(", ")));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(a: [f64; 3], b: [f64; 3], higher: bool) -> Change {
        let s = |v: [f64; 3]| Spread {
            median: v[0],
            min: v[1],
            max: v[2],
        };
        let (a, b) = (s(a), s(b));
        Change {
            scenario: "s".into(),
            server: "x".into(),
            figure: "f".into(),
            changed: !a.overlaps(&b),
            a,
            b,
            higher_is_better: higher,
        }
    }

    #[test]
    fn only_changes_beyond_the_spread_are_flagged() {
        let within = change([5.0, 4.5, 5.6], [5.4, 5.2, 6.0], false);
        assert_eq!(within.verdict(), "within spread");
        let cheaper = change([5.0, 4.8, 5.2], [4.0, 3.9, 4.1], false);
        assert_eq!(cheaper.verdict(), "better: CHANGED");
        let slower = change([100.0, 95.0, 105.0], [80.0, 79.0, 81.0], true);
        assert_eq!(slower.verdict(), "worse: CHANGED");
        assert!((cheaper.relative().unwrap_or(0.0) + 0.2).abs() < 1e-9);
    }
}
