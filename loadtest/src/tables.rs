//! The files behind --hgrm and --csv: a latency distribution in
//! HdrHistogram's percentile text format, and the per-second series.

use std::io::{self, Write};

use hdrhistogram::Histogram;

use crate::report::us;
use crate::run::Summary;
use crate::window::Window;

/// Writes `h` (ns) as HdrHistogram's percentile distribution text, in ms.
///
/// Each row is a value, the fraction of samples at or below it, and
/// `TotalCount`: how many samples are at or below it (cumulative, as
/// HdrHistogram's own `outputPercentileDistribution` writes it and as the
/// tools that plot .hgrm files read it).
pub fn hgrm(h: &Histogram<u64>, w: &mut dyn Write) -> io::Result<()> {
    const SCALE: f64 = 1e6;
    writeln!(
        w,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(1) {
            total += v.count_since_last_iteration();
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
                total,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of an .hgrm text: (value in ms, percentile, total count).
    fn rows(text: &str) -> Vec<(f64, f64, u64)> {
        text.lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (
                    f[0].parse().expect("value"),
                    f[1].parse().expect("percentile"),
                    f[2].parse().expect("total count"),
                )
            })
            .collect()
    }

    #[test]
    fn hgrm_rows_are_cumulative_as_the_histogram_reads_them() {
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        // A skewed spread, as latencies are: many fast, a long tail.
        for i in 1..=10_000u64 {
            h.record(20_000 + i * 37 + (i % 97).pow(3) * 11)
                .expect("in range");
        }
        let path = std::env::temp_dir().join(format!("wsload-hgrm-{}.hgrm", std::process::id()));
        let mut file = std::fs::File::create(&path).expect("create");
        hgrm(&h, &mut file).expect("written");
        drop(file);
        let text = std::fs::read_to_string(&path).expect("read back");
        let _ = std::fs::remove_file(&path);
        let rows = rows(&text);
        assert!(rows.len() > 10, "{text}");
        let mut last = 0;
        for &(ms, q, total) in &rows {
            // The value at that percentile, as the crate reads it.
            let at = h.value_at_quantile(q);
            assert_eq!(format!("{ms:.3}"), format!("{:.3}", at as f64 / 1e6), "{q}");
            // Every sample at or below the value, as the crate counts them.
            assert_eq!(total, h.count_between(0, at), "{q}");
            assert!(total >= last, "not cumulative at {q}");
            last = total;
        }
        assert_eq!(last, h.len(), "the last row holds every sample");
        assert!(text.contains(&format!("Total count    = {:>12}", h.len())));
    }
}
