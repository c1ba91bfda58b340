//! A comparison's tables, as text: the cells are shared with the HTML page.

use std::fmt::Write as _;

use crate::results::{num, Document, Outcome, ScenarioResult, Spread, Units};

/// A table: the header's cells and the rows' cells.
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<String>>,
    /// How many leading columns are names (left-aligned); the rest are figures.
    pub names: usize,
}

/// `median (min–max)`.
pub fn spread(s: &Spread) -> String {
    if s.min == s.max {
        num(s.median)
    } else {
        format!("{} ({}–{})", num(s.median), num(s.min), num(s.max))
    }
}

fn opt_spread(s: Option<Spread>) -> String {
    s.as_ref().map_or_else(|| "-".into(), spread)
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}×"))
}

/// What a failed server's name cell ends with (the HTML page marks it).
pub const FAILED: &str = "FAILED";

/// The scenario's table: a row per server, the ratios to the first server
/// (the headline) first, then medians and min–max over rounds. Idle
/// connections (`conns`) send no messages: their cost is the memory per
/// connection, and they have no per-CPU-second or separate RSS column. A
/// server that could not run a round is named `NAME FAILED`; one that ran
/// no round shows `-` for every figure.
pub fn table(s: &ScenarioResult) -> Table {
    let u = Units::of(&s.mode);
    let first = s.servers.first().map_or("", |r| r.name.as_str());
    let messages = s.mode != "conns";
    type Cell = fn(&Outcome) -> String;
    let mut columns: Vec<(String, Cell)> = vec![
        (format!("{} ÷ {first}", u.cost), |o| ratio(o.ratio.cost)),
        (format!("{} ÷ {first}", u.rate), |o| ratio(o.ratio.rate)),
        (u.rate.to_string(), |o| spread(&o.rate)),
        (u.cost.to_string(), |o| opt_spread(o.cost)),
    ];
    if messages {
        columns.push((u.per_cpu.to_string(), |o| {
            o.per_cpu_s.map_or_else(|| "-".into(), |p| num(p.median))
        }));
        columns.push(("RSS B/conn".to_string(), |o| {
            o.rss_per_conn.map_or_else(|| "-".into(), |p| num(p.median))
        }));
    }
    columns.extend([
        ("p50 µs".to_string(), (|o| num(o.p50_us.median)) as Cell),
        ("p99 µs".to_string(), |o| num(o.p99_us.median)),
        ("p99.9 µs".to_string(), |o| num(o.p999_us.median)),
        ("errors".to_string(), |o| o.errors.to_string()),
    ]);
    let header = std::iter::once("server".to_string())
        .chain(columns.iter().map(|(h, _)| h.clone()))
        .collect();
    let rows = s
        .servers
        .iter()
        .map(|r| {
            let name = match &r.failure {
                Some(_) => format!("{} {FAILED}", r.name),
                None => r.name.clone(),
            };
            let ran = !r.rounds.is_empty();
            std::iter::once(name)
                .chain(columns.iter().map(
                    |(_, cell)| {
                        if ran {
                            cell(&r.summary)
                        } else {
                            "-".into()
                        }
                    },
                ))
                .collect()
        })
        .collect();
    Table {
        header,
        rows,
        names: 1,
    }
}

/// Why servers failed: for each, its round and what happened (how it
/// ended is part of that), and the last lines of its output.
pub fn failures(s: &ScenarioResult) -> Vec<(String, Vec<String>)> {
    s.servers
        .iter()
        .filter_map(|r| {
            let f = r.failure.as_ref()?;
            let head = format!("{} failed in round {}: {}", r.name, f.round, f.what);
            Some((head, f.output.clone()))
        })
        .collect()
}

/// Lays a table out in columns: names left-aligned, figures right.
pub fn columns(t: &Table, indent: &str) -> String {
    let n = t.header.len();
    let width = |i: usize| {
        std::iter::once(&t.header)
            .chain(&t.rows)
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..n).map(width).collect();
    let mut o = String::new();
    for row in std::iter::once(&t.header).chain(&t.rows) {
        o.push_str(indent);
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            let gap = if i == 0 { "" } else { "  " };
            if i < t.names {
                let _ = write!(o, "{gap}{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(o, "{gap}{}{cell}", " ".repeat(pad));
            }
        }
        o.push('\n');
    }
    o
}

/// One line on how the scenario ran.
pub fn scenario_line(s: &ScenarioResult) -> String {
    let rounds = s.servers.first().map_or(0, |r| r.rounds.len());
    format!(
        "{}: {}; {rounds} round{}, medians (min–max)",
        s.name,
        s.title,
        if rounds == 1 { "" } else { "s" }
    )
}

/// The setup: when, where, which servers, pinned how.
pub fn setup_lines(d: &Document) -> Vec<String> {
    let mut v = vec![
        format!("wsload {} compare, started {}", d.wsload, d.started),
        format!("machine: {}", d.machine.line()),
    ];
    if let Some(l) = &d.machine.loadavg {
        v.push(format!("load average at start: {l}"));
    }
    let pin = |l: &Option<String>| l.clone().unwrap_or_else(|| "any".into());
    v.push(format!(
        "CPUs: servers {}, wsload {}",
        pin(&d.setup.server_cpus),
        pin(&d.setup.load_cpus)
    ));
    for s in &d.setup.servers {
        match (&s.command, &s.url) {
            (Some(c), _) => v.push(format!("server {}: started for each run: {c}", s.name)),
            (None, Some(u)) => v.push(format!("server {}: running at {u}", s.name)),
            (None, None) => v.push(format!("server {}", s.name)),
        }
    }
    v
}

/// The whole comparison as text.
pub fn document(d: &Document) -> String {
    let mut o = String::new();
    for l in setup_lines(d) {
        let _ = writeln!(o, "{l}");
    }
    for s in &d.scenarios {
        let _ = writeln!(o, "\n{}", scenario_line(s));
        o.push_str(&columns(&table(s), "  "));
        for (head, output) in failures(s) {
            let _ = writeln!(o, "  {FAILED}: {head}");
            if !output.is_empty() {
                let _ = writeln!(o, "    its output ends:");
            }
            for line in output {
                let _ = writeln!(o, "    | {line}");
            }
        }
        for r in &s.servers {
            for n in &r.notes {
                let _ = writeln!(o, "  note: {}: {n}", r.name);
            }
        }
    }
    if d.failed {
        let _ = writeln!(o, "\nsome rounds failed: see the notes");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_right_after_the_first() {
        let t = Table {
            header: vec!["server".into(), "msg/s".into()],
            rows: vec![
                vec!["a".into(), "152k".into()],
                vec!["long-name".into(), "9".into()],
            ],
            names: 1,
        };
        assert_eq!(
            columns(&t, ""),
            "server     msg/s\na           152k\nlong-name      9\n"
        );
    }

    #[test]
    fn spreads_show_the_range_only_when_there_is_one() {
        let one = Spread {
            median: 5.5,
            min: 5.5,
            max: 5.5,
        };
        assert_eq!(spread(&one), "5.50");
        let three = Spread {
            median: 5.5,
            min: 5.41,
            max: 5.72,
        };
        assert_eq!(spread(&three), "5.50 (5.41–5.72)");
    }
}
