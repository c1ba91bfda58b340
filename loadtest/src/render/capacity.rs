//! The capacity search's chart: latency (p50 and p99) against the offered
//! rate, both on log axes, the bound drawn across, and each step that
//! failed marked with a cross.

use plotters::prelude::*;

use super::axis::{log_keys, short};
use super::charts::{axes, builder, color, err, svg, Chart, R};
use crate::capacity::report::{fmt_bound, Curve};
use crate::capacity::search::Verdict;

/// The chart of `c`'s steps.
pub fn chart(c: &Curve) -> R<Chart> {
    let steps = c.by_rate();
    let bound_us = c.bound.as_secs_f64() * 1e6;
    let (mut xlo, mut xhi) = (f64::MAX, 0.0f64);
    let (mut ylo, mut yhi) = (bound_us, bound_us);
    for s in &steps {
        xlo = xlo.min(s.rate);
        xhi = xhi.max(s.rate);
        for v in [s.p50_us, s.p99_us] {
            if v > 0.0 {
                ylo = ylo.min(v);
                yhi = yhi.max(v);
            }
        }
    }
    if xhi <= 0.0 {
        (xlo, xhi) = (1.0, 10.0);
    }
    let (xlo, xhi) = (xlo / 1.3, xhi * 1.3);
    let (ylo, yhi) = (ylo / 1.5, yhi * 1.5);
    let title = format!(
        "latency against offered rate; the line across is the bound, p99 ≤ {}",
        fmt_bound(c.bound)
    );
    let names = ["p50".to_string(), "p99".to_string()];
    let svg = svg(Some((&names, "× a step that failed")), |root| {
        let mut chart = builder(root, "capacity search")
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
        chart
            .draw_series(LineSeries::new(
                [(xlo, bound_us), (xhi, bound_us)],
                RGBColor(160, 0, 0).stroke_width(1),
            ))
            .map_err(err)?;
        for (j, pick) in [
            |s: &crate::capacity::Step| s.p50_us,
            |s: &crate::capacity::Step| s.p99_us,
        ]
        .into_iter()
        .enumerate()
        {
            let c = color(j);
            let points: Vec<(f64, f64, bool)> = steps
                .iter()
                .filter(|s| pick(s) > 0.0)
                .map(|s| (s.rate, pick(s), s.verdict == Verdict::Held))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (p.0, p.1)),
                    c.stroke_width(2),
                ))
                .map_err(err)?;
            chart
                .draw_series(points.iter().map(|&(x, y, held)| {
                    if held {
                        Circle::new((x, y), 4, c.filled()).into_dyn()
                    } else {
                        Cross::new((x, y), 6, c.stroke_width(2)).into_dyn()
                    }
                }))
                .map_err(err)?;
        }
        Ok(())
    })?;
    Ok(Chart {
        file: "capacity".into(),
        title,
        svg,
    })
}
