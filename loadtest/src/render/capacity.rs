//! The capacity search's charts: latency against the offered rate, both
//! on log axes, the bound drawn across, and each step that failed marked
//! with a cross. A single search draws its p50 and p99; `compare` draws
//! each server's p99, one line per round, from the document alone.

use std::fmt::Write as _;

use plotters::prelude::*;
use serde_json::Value;

use super::axis::{log_keys, short};
use super::charts::{axes, builder, color, err, svg, Chart, R};
use super::html::escape;
use crate::capacity::report::Curve;
use crate::capacity::search::Verdict;
use crate::cli::capacity::fmt_bound;
use crate::results::num;
use crate::results::ScenarioResult;

/// One line: (rate, latency µs, held) points, in rate order.
type Line = Vec<(f64, f64, bool)>;

/// The chart of one search: its p50 and p99 against the rate.
pub fn chart(c: &Curve) -> R<Chart> {
    let steps = c.by_rate();
    let line = |pick: fn(&crate::capacity::Step) -> f64| -> Line {
        steps
            .iter()
            .map(|s| (s.rate, pick(s), s.verdict == Verdict::Held))
            .collect()
    };
    let series = vec![(0, line(|s| s.p50_us)), (1, line(|s| s.p99_us))];
    let names = ["p50".to_string(), "p99".to_string()];
    let bound_us = c.bound.as_secs_f64() * 1e6;
    let title = format!(
        "latency against offered rate; the line across is the bound, p99 ≤ {}",
        fmt_bound(c.bound)
    );
    Ok(Chart {
        file: "capacity".into(),
        svg: draw(&series, &names, bound_us, "capacity search")?,
        title,
    })
}

/// `compare`'s chart of a capacity scenario: each server's p99 against
/// the rate, one line per round; `None` when no round searched.
pub fn compared(s: &ScenarioResult) -> R<Option<Chart>> {
    let mut series = Vec::new();
    let mut bound_us = 0.0f64;
    for (j, server) in s.servers.iter().enumerate() {
        for round in &server.rounds {
            let found = &round.run["find_max"];
            let Some(steps) = found["steps"].as_array() else {
                continue;
            };
            bound_us = bound_us.max(found["find_max"]["p99_bound_us"].as_f64().unwrap_or(0.0));
            let mut line: Line = steps.iter().filter_map(point).collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            series.push((j, line));
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = s.servers.iter().map(|r| r.name.clone()).collect();
    let caption = format!("{}: p99 against offered rate", s.name);
    let title = format!("{caption}, one line per round; the line across is the bound");
    Ok(Some(Chart {
        file: format!("{}-capacity", s.name),
        svg: draw(&series, &names, bound_us, &caption)?,
        title,
    }))
}

/// A step of the JSON curve as a point of a p99 line.
fn point(step: &Value) -> Option<(f64, f64, bool)> {
    Some((
        step["rate"].as_f64()?,
        step["p99_us"].as_f64()?,
        step["held"].as_bool()?,
    ))
}

/// Draws `series` (colour index, line) with the bound across.
fn draw(series: &[(usize, Line)], names: &[String], bound_us: f64, title: &str) -> R<String> {
    let (mut xlo, mut xhi) = (f64::MAX, 0.0f64);
    let (mut ylo, mut yhi) = (f64::MAX, 0.0f64);
    if bound_us > 0.0 {
        (ylo, yhi) = (bound_us, bound_us);
    }
    for (x, y, _) in series.iter().flat_map(|(_, l)| l) {
        xlo = xlo.min(*x);
        xhi = xhi.max(*x);
        if *y > 0.0 {
            ylo = ylo.min(*y);
            yhi = yhi.max(*y);
        }
    }
    if xhi <= 0.0 {
        (xlo, xhi) = (1.0, 10.0);
    }
    if yhi <= 0.0 {
        (ylo, yhi) = (1.0, 10.0);
    }
    let (xlo, xhi) = (xlo / 1.3, xhi * 1.3);
    let (ylo, yhi) = (ylo / 1.5, yhi * 1.5);
    svg(Some((names, "× a step that failed")), |root| {
        let mut chart = builder(root, title)
            .build_cartesian_2d(
                (xlo..xhi).log_scale().with_key_points(log_keys(xlo, xhi)),
                (ylo..yhi).log_scale().with_key_points(log_keys(ylo, yhi)),
            )
            .map_err(err)?;
        axes(
            &mut chart,
            &|x| short(*x),
            &|y| short(*y),
            Some("offered rate, msg/s"),
            "µs",
        )?;
        if bound_us > 0.0 {
            chart
                .draw_series(LineSeries::new(
                    [(xlo, bound_us), (xhi, bound_us)],
                    RGBColor(160, 0, 0).stroke_width(1),
                ))
                .map_err(err)?;
        }
        for (j, line) in series {
            let c = color(*j);
            let shown: Vec<&(f64, f64, bool)> = line.iter().filter(|p| p.1 > 0.0).collect();
            chart
                .draw_series(LineSeries::new(
                    shown.iter().map(|p| (p.0, p.1)),
                    c.stroke_width(2),
                ))
                .map_err(err)?;
            chart
                .draw_series(shown.iter().map(|&&(x, y, held)| {
                    if held {
                        Circle::new((x, y), 4, c.filled()).into_dyn()
                    } else {
                        Cross::new((x, y), 6, c.stroke_width(2)).into_dyn()
                    }
                }))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// The --find-max HTML page: the headline, the chart and the table.
pub fn page(curve: &Curve) -> Result<String, String> {
    let chart = chart(curve)?;
    let mut o = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>wsload capacity search</title><style>\
         body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:900px;padding:0 1em;color:#222}\
         table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
         th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:right}\
         th{background:#f4f4f4}td.v{text-align:left}.bad{color:#a00}\
         figure svg{max-width:100%;height:auto;border:1px solid #eee}\
         </style></head><body>\n<h1>Capacity search</h1>\n",
    );
    if let Some(t) = &curve.target {
        let _ = writeln!(o, "<p><code>{}</code></p>", escape(t));
    }
    let _ = writeln!(o, "<p><b>{}</b></p>", escape(&curve.headline()));
    let _ = writeln!(
        o,
        "<figure>{}<figcaption>{}</figcaption></figure>",
        chart.svg,
        escape(&chart.title)
    );
    o.push_str("<table><thead><tr><th>rate msg/s</th><th>received/s</th><th>p50 µs</th><th>p99 µs</th><th>server cores</th><th>wsload CPU</th><th>verdict</th></tr></thead><tbody>\n");
    for s in curve.by_rate() {
        let class = if s.verdict == Verdict::Held {
            "v"
        } else {
            "v bad"
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}%</td><td class=\"{class}\">{}</td></tr>",
            num(s.rate),
            num(s.received_per_s),
            num(s.p50_us),
            num(s.p99_us),
            s.server_cores.map_or("-".into(), |c| format!("{c:.2}")),
            s.self_per_thread * 100.0,
            escape(s.verdict.as_str())
        );
    }
    o.push_str("</tbody></table>\n<p>Each step is a run of its own at one offered rate: new connections, a warm-up, then the measured window. Latency is measured from when each message was due (coordinated-omission corrected). A step holds when p99 is under the bound with no error and wsload was not itself saturated.</p>\n</body></html>\n");
    Ok(o)
}
