//! What the charts' axes say: round keys for a log axis, and short labels
//! for ratios, values and percentiles.

use crate::results::num;

/// A ratio with two decimals near 1, fewer far from it: 0.58, 3.6, 694.
pub fn short_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

/// A round axis value without trailing zeros: 0.9, 1.25, 40.
pub fn short(v: f64) -> String {
    let s = num(v);
    let (digits, suffix) = s.split_at(s.trim_end_matches(['k', 'M']).len());
    if digits.contains('.') {
        format!(
            "{}{suffix}",
            digits.trim_end_matches('0').trim_end_matches('.')
        )
    } else {
        s
    }
}

/// Round values between `lo` and `hi` for a log axis: about five to ten.
/// An axis that is not a positive range gets the one key 1: `lo` of 0
/// would make the decades start at `i32::MIN`, a loop of billions.
pub fn log_keys(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
        return vec![1.0];
    }
    // At most twelve decades below the top.
    let lo = lo.max(hi * 1e-12);
    let decades = (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32);
    let within = |steps: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|k| steps.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    for steps in [
        &[1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0][..],
        &[1.0, 2.0, 5.0][..],
        &[1.0][..],
    ] {
        let keys = within(steps);
        if keys.len() <= 10 {
            return keys;
        }
    }
    vec![1.0]
}

/// A percentile as HdrHistogram's axis labels it: 90%, 99.9%.
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let decimals = (x.log10().round() as i32 - 2).max(0) as usize;
    format!("{p:.decimals$}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_values_drop_trailing_zeros() {
        let got: Vec<String> = [0.9, 1.0, 1.25, 0.001, 40.0, 15_000.0].map(short).to_vec();
        assert_eq!(got, ["0.9", "1", "1.25", "0.001", "40", "15k"]);
    }

    #[test]
    fn log_axes_get_round_keys() {
        let close = |got: Vec<f64>, want: &[f64]| {
            got.len() == want.len()
                && got
                    .iter()
                    .zip(want)
                    .all(|(g, w)| (g / w - 1.0).abs() < 1e-9)
        };
        assert!(close(
            log_keys(0.6, 1.6),
            &[0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5]
        ));
        assert!(close(log_keys(0.001, 3.0), &[0.001, 0.01, 0.1, 1.0]));
        assert!(close(
            log_keys(0.5, 30.0),
            &[0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
        ));
    }

    #[test]
    fn log_keys_of_an_axis_from_zero_or_worse_end_at_once() {
        for (lo, hi) in [
            (0.0, 2.5),
            (-1.0, 2.5),
            (f64::NAN, 2.5),
            (1.0, f64::INFINITY),
            (2.0, 1.0),
        ] {
            assert_eq!(log_keys(lo, hi), [1.0], "{lo}..{hi}");
        }
        let tiny = log_keys(1e-300, 10.0);
        assert!(
            tiny.len() <= 10 && tiny.iter().all(|k| *k >= 1e-11),
            "{tiny:?}"
        );
    }

    #[test]
    fn percentiles_are_labelled_as_hdrhistogram_does() {
        let labels: Vec<String> = [1.0, 10.0, 100.0, 1000.0, 1e4]
            .into_iter()
            .map(percentile_label)
            .collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }
}
