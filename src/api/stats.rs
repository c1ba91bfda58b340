//! The API's counters: `wsd_api_requests_total{code}` and
//! `wsd_api_published_total`.

use std::fmt::{self, Write as _};

/// The statuses the API answers with, each always reported (from 0).
pub const CODES: [u16; 12] = [200, 400, 401, 403, 404, 405, 408, 413, 415, 431, 501, 503];

/// What the API counts. Plain numbers: each reactor keeps its own and the
/// process adds them up ([`ApiStats::add`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiStats {
    /// Answers by status, in the order of [`CODES`]; the last is any
    /// other status.
    requests: [u64; CODES.len() + 1],
    /// Messages delivered through the API (each NDJSON line counts one).
    pub published: u64,
}

impl ApiStats {
    /// Counts an answer with `status`.
    pub fn count_request(&mut self, status: u16) {
        let i = CODES
            .iter()
            .position(|&c| c == status)
            .unwrap_or(CODES.len());
        if let Some(n) = self.requests.get_mut(i) {
            *n += 1;
        }
    }

    /// Answers counted with `status`.
    pub fn requests(&self, status: u16) -> u64 {
        let i = CODES
            .iter()
            .position(|&c| c == status)
            .unwrap_or(CODES.len());
        self.requests.get(i).copied().unwrap_or(0)
    }

    /// Adds another reactor's counters.
    pub fn add(&mut self, other: &ApiStats) {
        for (n, o) in self.requests.iter_mut().zip(other.requests.iter()) {
            *n += o;
        }
        self.published += other.published;
    }

    /// Appends the two families to a Prometheus text exposition (0.0.4).
    pub fn write_metrics(&self, w: &mut String) -> fmt::Result {
        let name = "wsd_api_requests_total";
        writeln!(
            w,
            "# HELP {name} Publish API answers, by status code.\n# TYPE {name} counter"
        )?;
        let labels = CODES.iter().map(|c| c.to_string()).chain(["other".into()]);
        for (code, n) in labels.zip(self.requests.iter()) {
            writeln!(w, "{name}{{code=\"{code}\"}} {n}")?;
        }
        let name = "wsd_api_published_total";
        writeln!(
            w,
            "# HELP {name} Messages published through the API.\n# TYPE {name} counter\n{name} {}",
            self.published
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_reported_from_zero_and_counts_add_up() {
        let mut a = ApiStats::default();
        a.count_request(200);
        a.count_request(200);
        a.count_request(418);
        a.published = 5;
        let mut b = ApiStats::default();
        b.count_request(401);
        b.add(&a);
        assert_eq!(
            (
                b.requests(200),
                b.requests(401),
                b.requests(999),
                b.published
            ),
            (2, 1, 1, 5)
        );
        let mut w = String::new();
        b.write_metrics(&mut w).unwrap();
        for code in CODES {
            assert!(
                w.contains(&format!("wsd_api_requests_total{{code=\"{code}\"}} ")),
                "{w}"
            );
        }
        assert!(
            w.contains("wsd_api_requests_total{code=\"200\"} 2\n"),
            "{w}"
        );
        assert!(
            w.contains("wsd_api_requests_total{code=\"other\"} 1\n"),
            "{w}"
        );
        assert!(w.contains("\nwsd_api_published_total 5\n"), "{w}");
        for line in w.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(w.contains(&format!("# TYPE {name} counter")), "{line}");
        }
    }
}
