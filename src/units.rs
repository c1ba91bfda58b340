//! Parsing of the sizes and durations flags take: `16MiB`, `64k`, `10s`,
//! `250ms`. Shared by `wsd` and `wsload`.

use std::time::Duration;

/// Parses a byte size: a number with an optional unit, `k`/`KiB`,
/// `m`/`MiB`, `g`/`GiB` (all powers of 1024; `KB`, `MB`, `GB` too, since
/// nobody means 1000 for buffer sizes), case-insensitive. A decimal
/// fraction is taken when it comes to whole bytes (`1.5MiB`).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let not_a_size = || format!("'{s}' is not a size (like 4096, 64KiB, 1.5MiB)");
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() || frac.contains('.') || (num.contains('.') && frac.is_empty()) {
        return Err(not_a_size());
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "'{s}': unknown size unit '{unit}' (use k, MiB, GiB)"
            ))
        }
    };
    let too_large = || format!("'{s}' is too large");
    let whole: usize = whole.parse().map_err(|_| too_large())?;
    let bytes = whole.checked_mul(1 << shift).ok_or_else(too_large)?;
    // A fraction must come to whole bytes (1.5KiB is 1536; 1.3KiB is not a
    // whole number of bytes): exact integer arithmetic, no float rounding.
    if frac.len() > 9 {
        return Err(format!("'{s}': at most 9 decimal places"));
    }
    let digits: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| not_a_size())?
    };
    let scale = 10u64.pow(frac.len() as u32);
    let scaled = u128::from(digits) << shift;
    if scaled % u128::from(scale) != 0 {
        return Err(format!("'{s}' is not a whole number of bytes"));
    }
    let part = usize::try_from(scaled / u128::from(scale)).map_err(|_| too_large())?;
    bytes.checked_add(part).ok_or_else(too_large)
}

/// Parses a duration: a number with `ms`, `s`, `m` or `h`; a bare number is
/// seconds. Fractions are allowed (`1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (like 10s, 250ms, 2m)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "'{s}': unknown duration unit '{unit}' (use ms, s, m, h)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{s}' is out of range"))
}

/// [`parse_duration`] for settings where zero makes no sense (a timeout
/// that expires at once, an interval that never waits): zero is an error
/// that says so.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("'{s}': must be above zero")),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn sizes_with_a_fraction_of_whole_bytes() {
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_size("0.5k"), Ok(512));
        assert_eq!(parse_size("2.0"), Ok(2));
        assert_eq!(parse_size("1.25 GiB"), Ok(5 << 28));
        let err = parse_size("1.3KiB").unwrap_err();
        assert!(err.contains("whole number of bytes"), "{err}");
        for bad in ["1.", ".5k", "1.2.3k", "1.5B", "0.0000000001G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_positive_duration("0s")
            .unwrap_err()
            .contains("above zero"));
        assert!(parse_positive_duration("0.0ms").is_err());
        assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
    }
}
