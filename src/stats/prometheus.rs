//! The Prometheus text exposition format (0.0.4), written into a
//! `String`: each family gets its `# HELP` and `# TYPE` lines, then its
//! samples. `/metrics` ([`crate::http`]) and the bus's families
//! ([`crate::bus::BusStats`]) both write through these.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::Kind;

/// The `# HELP` and `# TYPE` lines of a family.
pub fn family(w: &mut String, name: &str, kind: Kind, help: &str) -> fmt::Result {
    w.write_str("# HELP ")?;
    w.write_str(name)?;
    w.write_char(' ')?;
    // HELP text escapes only backslash and newline.
    for c in help.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            c => w.write_char(c)?,
        }
    }
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    writeln!(w, "\n# TYPE {name} {kind}")
}

/// A family with one unlabelled sample.
pub fn single(
    w: &mut String,
    name: &str,
    kind: Kind,
    help: &str,
    value: impl fmt::Display,
) -> fmt::Result {
    family(w, name, kind, help)?;
    writeln!(w, "{name} {value}")
}

/// A counter family with one label: a sample for every key of `counts`
/// and of `common` (sorted, at 0 where nothing was counted), in key order.
/// The common keys are there from the start so that alerts and rates see
/// a zero rather than no data; other keys appear once they occur.
pub fn labelled(
    w: &mut String,
    name: &str,
    help: &str,
    label: &str,
    counts: &BTreeMap<u16, u64>,
    common: &[u16],
) -> fmt::Result {
    family(w, name, Kind::Counter, help)?;
    let mut common = common.iter().copied().peekable();
    let mut counted = counts.iter().map(|(&k, &v)| (k, v)).peekable();
    loop {
        // Both are sorted: merge them, taking the count where there is one.
        let (key, value) = match (common.peek().copied(), counted.peek().copied()) {
            (Some(c), Some((k, v))) if k <= c => {
                if k == c {
                    common.next();
                }
                counted.next();
                (k, v)
            }
            (Some(c), _) => {
                common.next();
                (c, 0)
            }
            (None, Some(kv)) => {
                counted.next();
                kv
            }
            (None, None) => return Ok(()),
        };
        writeln!(w, "{name}{{{label}=\"{key}\"}} {value}")?;
    }
}

/// Writes `value` as the inside of a quoted label value: backslash, double
/// quote and newline escaped, as the format requires.
pub fn escape_label(w: &mut String, value: &str) -> fmt::Result {
    for c in value.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '"' => w.write_str("\\\"")?,
            '\n' => w.write_str("\\n")?,
            c => w.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_escaped_and_labels_merge_common_keys_with_counted_ones() {
        let mut w = String::new();
        family(&mut w, "x_total", Kind::Counter, "a\\b\nc").unwrap();
        assert_eq!(w, "# HELP x_total a\\\\b\\nc\n# TYPE x_total counter\n");
        let mut w = String::new();
        let counts = BTreeMap::from([(2, 5), (4, 1)]);
        labelled(&mut w, "y", "h", "k", &counts, &[1, 2, 3]).unwrap();
        let samples: Vec<&str> = w.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "y{k=\"1\"} 0",
                "y{k=\"2\"} 5",
                "y{k=\"3\"} 0",
                "y{k=\"4\"} 1"
            ]
        );
        let mut w = String::new();
        escape_label(&mut w, "a\"b\\c\nd").unwrap();
        assert_eq!(w, "a\\\"b\\\\c\\nd");
    }
}
