//! The charts, drawn with plotters' SVG backend from the document alone.
//!
//! - `summary`: every scenario's cost relative to the first server (log
//!   scale: lower is cheaper), median and min–max over rounds;
//! - per scenario, `NAME-cost`: each server's cost (CPU per message, or
//!   RSS per connection) with min–max whiskers; `NAME-latency`: the
//!   latency spectrum, HdrHistogram style (percentile on a log axis of
//!   1/(1 − p)), one line per round; `NAME-throughput`: the rate second by
//!   second, one line per round, warm-up before 0; `NAME-capacity`, for
//!   a capacity search (`rate --find-max`): each server's p99 against the
//!   rate offered (drawn in `render/capacity.rs`).
//!
//! Text is SVG `<text>` laid out with plotters' built-in metrics: no font
//! files, no C libraries.

use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordi32;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{log_keys, percentile_label, short, short_ratio};
use crate::results::{num, Document, ScenarioResult, Spread, Units};

/// One chart.
pub struct Chart {
    /// The file name without `.svg`.
    pub file: String,
    /// What it shows, in words (the HTML page's caption).
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

const SIZE: (u32, u32) = (760, 400);
pub(super) const FONT: &str = "sans-serif";

/// Servers' colours, in order (colour-blind-safe, Okabe–Ito).
const COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

pub(super) fn color(i: usize) -> RGBColor {
    COLORS.get(i % COLORS.len()).copied().unwrap_or(BLACK)
}

pub(super) type R<T> = Result<T, String>;

pub(super) fn err<E: std::fmt::Display>(e: E) -> String {
    format!("drawing a chart: {e}")
}

/// The height of the strip under a chart that holds its legend.
const STRIP: u32 = 30;

/// Draws into a fresh SVG of [`SIZE`]. With `legend`, a strip at the
/// bottom names each server in its colour (out of the data's way) and
/// carries `note` on its right.
pub(super) fn svg(
    legend: Option<(&[String], &str)>,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> R<()>,
) -> R<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        match legend {
            Some((names, note)) => {
                let (chart, strip) = root.split_vertically(SIZE.1 - STRIP);
                draw(&chart)?;
                key(&strip, names, note)?;
            }
            None => draw(&root)?,
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// The legend strip: a dot and a name per server, then the note.
fn key(strip: &DrawingArea<SVGBackend, Shift>, names: &[String], note: &str) -> R<()> {
    let y = STRIP as i32 / 2;
    let middle = |h| TextStyle::from((FONT, 15).into_font()).pos(Pos::new(h, VPos::Center));
    let mut x = 76;
    for (j, name) in names.iter().enumerate() {
        strip
            .draw(&Circle::new((x, y), 5, color(j).filled()))
            .map_err(err)?;
        strip
            .draw(&Text::new(name.clone(), (x + 10, y), middle(HPos::Left)))
            .map_err(err)?;
        // The naive font's width: about 0.55 em per character.
        x += 10 + 8 * name.chars().count() as i32 + 28;
    }
    let grey = RGBColor(90, 90, 90);
    strip
        .draw(&Text::new(
            note.to_string(),
            (SIZE.0 as i32 - 14, y),
            TextStyle::from((FONT, 13).into_font())
                .color(&grey)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)
}

/// Width of one category on a category axis.
const SLOT: i32 = 100;

/// A category axis of `n` slots, labelled at their centres.
fn categories(n: usize) -> WithKeyPoints<RangedCoordi32> {
    let n = n as i32;
    (0..n * SLOT).with_key_points((0..n).map(|i| centre(i as usize)).collect())
}

/// Where category `i`'s centre is.
fn centre(i: usize) -> i32 {
    i as i32 * SLOT + SLOT / 2
}

fn name_at(names: &[String], x: i32) -> String {
    usize::try_from(x.div_euclid(SLOT))
        .ok()
        .and_then(|i| names.get(i).cloned())
        .unwrap_or_default()
}

fn whisker(x: i32, s: &Spread, half: i32) -> [PathElement<(i32, f64)>; 3] {
    let style = BLACK.stroke_width(1);
    [
        PathElement::new(vec![(x, s.min), (x, s.max)], style),
        PathElement::new(vec![(x - half, s.min), (x + half, s.min)], style),
        PathElement::new(vec![(x - half, s.max), (x + half, s.max)], style),
    ]
}

/// A chart's frame: caption, margins, label areas, on `root`.
pub(super) fn builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, (FONT, 20))
        .margin(12)
        .margin_right(34)
        .x_label_area_size(44)
        .y_label_area_size(70);
    b
}

/// A chart's axes, drawn the same way on every chart: the fonts, the
/// labels `x` and `y` write, the y axis's description, and the x axis's
/// (`None` for servers side by side: no description and no vertical grid).
pub(super) fn axes<X, Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    x: &dyn Fn(&X::ValueType) -> String,
    y: &dyn Fn(&Y::ValueType) -> String,
    x_desc: Option<&str>,
    y_desc: &str,
) -> R<()>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let mut mesh = chart.configure_mesh();
    mesh.label_style((FONT, 15))
        .axis_desc_style((FONT, 15))
        .x_label_formatter(x)
        .y_label_formatter(y)
        .y_desc(y_desc);
    match x_desc {
        Some(d) => mesh.x_desc(d),
        None => mesh.disable_x_mesh(),
    };
    mesh.draw().map_err(err)
}

fn above(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom))
}

/// Costs relative to the first server: one group per scenario.
pub(super) fn summary(d: &Document) -> R<Option<Chart>> {
    let base_name = match d.scenarios.first().and_then(|s| s.servers.first()) {
        Some(r) => r.name.clone(),
        None => return Ok(None),
    };
    // (scenario, [(server index, ratio spread)]).
    let mut groups: Vec<(String, Vec<(usize, Spread)>)> = Vec::new();
    for s in &d.scenarios {
        let base = s
            .servers
            .first()
            .and_then(|r| r.summary.cost)
            .map(|c| c.median);
        let Some(base) = base.filter(|b| *b > 0.0) else {
            continue;
        };
        let points = s
            .servers
            .iter()
            .enumerate()
            .filter_map(|(j, r)| {
                let c = r.summary.cost?;
                Some((
                    j,
                    Spread {
                        median: c.median / base,
                        min: c.min / base,
                        max: c.max / base,
                    },
                ))
            })
            .collect();
        groups.push((s.name.clone(), points));
    }
    let names: Vec<String> = d.setup.servers.iter().map(|s| s.name.clone()).collect();
    if groups.is_empty() || names.len() < 2 {
        return Ok(None);
    }
    // A log axis has no place for 0 (a server that used no measurable
    // CPU in a short window on a busy machine): the axis spans the
    // positive values, and lower ones are drawn at its floor.
    let all = groups
        .iter()
        .flat_map(|(_, p)| p.iter().flat_map(|(_, s)| [s.min, s.max]))
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = all.fold((1.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Room above for the labels and the legend.
    let (lo, hi) = (lo / 1.6, hi * 2.5);
    for (_, points) in &mut groups {
        for (_, s) in points.iter_mut() {
            let floor = |v: f64| if v.is_finite() { v.clamp(lo, hi) } else { hi };
            *s = Spread {
                median: floor(s.median),
                min: floor(s.min),
                max: floor(s.max),
            };
        }
    }
    let labels: Vec<String> = groups.iter().map(|(n, _)| n.clone()).collect();
    let n = groups.len();
    let m = names.len();
    let title = format!("Server cost relative to {base_name}: lower is cheaper");
    let svg = svg(
        Some((
            &names,
            "CPU per message; idle: memory per connection. Median, min–max",
        )),
        |root| {
            let mut chart = builder(root, &title)
                .build_cartesian_2d(
                    categories(n),
                    (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
                )
                .map_err(err)?;
            axes(
                &mut chart,
                &|x| name_at(&labels, *x),
                &|y| format!("{}×", short(*y)),
                None,
                &format!("cost ÷ {base_name}'s"),
            )?;
            chart
                .draw_series([PathElement::new(
                    vec![(0, 1.0), (n as i32 * SLOT, 1.0)],
                    BLACK.mix(0.5).stroke_width(1),
                )])
                .map_err(err)?;
            // The servers share 70% of a slot, side by side.
            let step = SLOT * 7 / 10 / m as i32;
            for j in 0..m {
                let c = color(j);
                let at = |i: usize| centre(i) + (2 * j as i32 - (m as i32 - 1)) * step / 2;
                let points: Vec<(usize, Spread)> = groups
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (_, p))| p.iter().find(|(k, _)| *k == j).map(|(_, s)| (i, *s)))
                    .collect();
                for (i, s) in &points {
                    chart.draw_series(whisker(at(*i), s, 2)).map_err(err)?;
                    // The first server is 1× by definition: only the others are labelled.
                    if j > 0 {
                        chart
                            .draw_series([Text::new(
                                format!("{}×", short_ratio(s.median)),
                                (at(*i), s.max * 1.08),
                                above(15),
                            )])
                            .map_err(err)?;
                    }
                }
                chart
                    .draw_series(
                        points
                            .iter()
                            .map(|(i, s)| Circle::new((at(*i), s.median), 5, c.filled())),
                    )
                    .map_err(err)?;
            }
            Ok(())
        },
    )?;
    Ok(Some(Chart {
        file: "summary".into(),
        title,
        svg,
    }))
}

/// One scenario's cost per server, bars with min–max whiskers.
pub(super) fn cost(s: &ScenarioResult) -> R<Option<Chart>> {
    let u = Units::of(&s.mode);
    let bars: Vec<(usize, Spread)> = s
        .servers
        .iter()
        .enumerate()
        .filter_map(|(j, r)| Some((j, r.summary.cost?)))
        .collect();
    let top = bars.iter().map(|(_, b)| b.max).fold(0.0, f64::max);
    if bars.is_empty() || top <= 0.0 {
        return Ok(None);
    }
    let names: Vec<String> = s.servers.iter().map(|r| r.name.clone()).collect();
    let title = format!("{}: {} (median of rounds, min–max)", s.name, u.cost_words);
    let svg = svg(None, |root| {
        let mut chart = builder(root, &title)
            .build_cartesian_2d(categories(names.len()), 0.0..top * 1.2)
            .map_err(err)?;
        axes(
            &mut chart,
            &|x| name_at(&names, *x),
            &|y| num(*y),
            None,
            u.cost,
        )?;
        for (j, b) in &bars {
            let x = centre(*j);
            chart
                .draw_series([Rectangle::new(
                    [(x - SLOT * 3 / 10, 0.0), (x + SLOT * 3 / 10, b.median)],
                    color(*j).mix(0.85).filled(),
                )])
                .map_err(err)?;
            chart.draw_series(whisker(x, b, SLOT / 12)).map_err(err)?;
            chart
                .draw_series([Text::new(num(b.median), (x, b.max + top * 0.03), above(15))])
                .map_err(err)?;
        }
        Ok(())
    })?;
    Ok(Some(Chart {
        file: format!("{}-cost", s.name),
        title,
        svg,
    }))
}

/// One scenario's latency spectrum: a line per round, a colour per server.
pub(super) fn latency(s: &ScenarioResult) -> R<Option<Chart>> {
    let u = Units::of(&s.mode);
    let x_of = |p: f64| 1.0 / (1.0 - p / 100.0);
    let points = s
        .servers
        .iter()
        .flat_map(|r| r.rounds.iter().flat_map(|k| &k.spectrum));
    let (mut xmax, mut ylo, mut yhi) = (10.0f64, f64::MAX, 0.0f64);
    for [p, v] in points {
        xmax = xmax.max(x_of(*p));
        if *v > 0.0 {
            ylo = ylo.min(*v);
            yhi = yhi.max(*v);
        }
    }
    if yhi <= 0.0 {
        return Ok(None);
    }
    // Room past the last point, labelled at whole decades: 90%, 99%, ...
    let xmax = xmax * 1.5;
    let keys: Vec<f64> = (0..=xmax.log10().floor() as i32)
        .map(|k| 10f64.powi(k))
        .collect();
    let (ylo, yhi) = (ylo / 1.5, yhi * 1.5);
    let title = format!("{}: {} latency by percentile", s.name, u.latency);
    let names: Vec<String> = s.servers.iter().map(|r| r.name.clone()).collect();
    let svg = svg(Some((&names, "one line per round")), |root| {
        let mut chart = builder(root, &title)
            .build_cartesian_2d(
                (1.0..xmax).log_scale().with_key_points(keys.clone()),
                (ylo..yhi).log_scale().with_key_points(log_keys(ylo, yhi)),
            )
            .map_err(err)?;
        axes(
            &mut chart,
            &|x| percentile_label(*x),
            &|y| short(*y),
            Some("percentile"),
            "µs",
        )?;
        for (j, r) in s.servers.iter().enumerate() {
            let c = color(j);
            for round in &r.rounds {
                let line = round
                    .spectrum
                    .iter()
                    .filter(|[_, v]| *v > 0.0)
                    .map(|[p, v]| (x_of(*p), *v));
                chart
                    .draw_series(LineSeries::new(line, c.stroke_width(2)))
                    .map_err(err)?;
            }
        }
        Ok(())
    })?;
    Ok(Some(Chart {
        file: format!("{}-latency", s.name),
        title,
        svg,
    }))
}

/// One scenario's rate second by second: a line per round.
pub(super) fn throughput(s: &ScenarioResult) -> R<Option<Chart>> {
    let u = Units::of(&s.mode);
    let ticks = s
        .servers
        .iter()
        .flat_map(|r| r.rounds.iter().flat_map(|k| &k.timeline));
    let (mut t0, mut t1, mut top) = (0.0f64, 0.0f64, 0.0f64);
    for t in ticks {
        t0 = t0.min(t.t);
        t1 = t1.max(t.t + t.len);
        if t.len > 0.0 {
            top = top.max(t.received as f64 / t.len);
        }
    }
    if top <= 0.0 || t1 <= t0 {
        return Ok(None);
    }
    let title = format!("{}: {} second by second", s.name, u.rate);
    let names: Vec<String> = s.servers.iter().map(|r| r.name.clone()).collect();
    let digits = if t1 - t0 < 5.0 { 1 } else { 0 };
    let svg = svg(
        Some((&names, "one line per round; warm-up before 0")),
        |root| {
            let mut chart = builder(root, &title)
                .build_cartesian_2d(t0..t1, 0.0..top * 1.15)
                .map_err(err)?;
            axes(
                &mut chart,
                &|x| format!("{x:.digits$}s"),
                &|y| num(*y),
                Some("seconds from the measured window's start"),
                u.rate,
            )?;
            chart
                .draw_series([PathElement::new(
                    vec![(0.0, 0.0), (0.0, top * 1.15)],
                    BLACK.mix(0.4).stroke_width(1),
                )])
                .map_err(err)?;
            for (j, r) in s.servers.iter().enumerate() {
                let c = color(j);
                for round in &r.rounds {
                    let line = round
                        .timeline
                        .iter()
                        .filter(|t| t.len > 0.0)
                        .map(|t| (t.t + t.len / 2.0, t.received as f64 / t.len));
                    chart
                        .draw_series(LineSeries::new(line, c.stroke_width(2)))
                        .map_err(err)?;
                }
            }
            Ok(())
        },
    )?;
    Ok(Some(Chart {
        file: format!("{}-throughput", s.name),
        title,
        svg,
    }))
}
