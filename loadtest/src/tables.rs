//! The files behind --hgrm and --csv: a latency distribution in
//! HdrHistogram's percentile text format, and the per-second series.

use std::io::{self, Write};

use hdrhistogram::Histogram;

use crate::report::us;
use crate::run::Summary;
use crate::window::Window;

/// Writes `h` (ns) as HdrHistogram's percentile distribution text, in ms.
pub fn hgrm(h: &Histogram<u64>, w: &mut dyn Write) -> io::Result<()> {
    const SCALE: f64 = 1e6;
    writeln!(
        w,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    if !h.is_empty() {
        for v in h.iter_quantiles(1) {
            let q = v.quantile_iterated_to();
            let inv = if q < 1.0 {
                format!("{:>14.2}", 1.0 / (1.0 - q))
            } else {
                String::new()
            };
            writeln!(
                w,
                "{:>12.3} {:>14.12} {:>10} {}",
                v.value_iterated_to() as f64 / SCALE,
                q,
                v.count_since_last_iteration(),
                inv
            )?;
        }
    }
    writeln!(
        w,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / SCALE,
        h.stdev() / SCALE
    )?;
    writeln!(
        w,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / SCALE,
        h.len()
    )?;
    writeln!(
        w,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        (2 * 10u64.pow(h.sigfig().into())).next_power_of_two()
    )
}

/// Writes the per-second series: where each row starts (seconds from the
/// measured window's start), its phase, sent, received, errors, p99 (µs),
/// and the WebSocket frame bytes written and read.
pub fn csv(s: &Summary, w: &mut dyn Write) -> io::Result<()> {
    let layout = Window::new(0, &s.timing);
    writeln!(
        w,
        "second,phase,sent,received,errors,p99_us,wire_sent_bytes,wire_received_bytes"
    )?;
    for (i, row) in s.stats.timeline.seconds.iter().enumerate() {
        let (phase, start) = layout.row_start(i);
        let p99 = if row.latency.is_empty() {
            String::new()
        } else {
            format!("{:.1}", us(row.latency.value_at_percentile(99.0)))
        };
        writeln!(
            w,
            "{start},{},{},{},{},{p99},{},{}",
            phase.name(),
            row.sent,
            row.received,
            row.errors,
            row.wire.frames_out,
            row.wire.frames_in
        )?;
    }
    Ok(())
}
