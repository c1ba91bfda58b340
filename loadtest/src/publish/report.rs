//! `--publish-url` in the reports: the publish API's answers by status
//! and how long they took, and whether the publishers kept to `-R` (an
//! API publisher waits for each answer, so too few of them cannot).

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::run::Summary;

/// Whether the run published through the API.
fn used(s: &Summary) -> bool {
    s.params["publish_url"].is_string()
}

/// The text report's `publish API` line, if the run used it.
pub fn text(s: &Summary) -> String {
    if !used(s) {
        return String::new();
    }
    let api = &s.stats.api;
    let url = s.params["publish_url"].as_str().unwrap_or_default();
    let key = if s.params["api_key"].as_bool() == Some(true) {
        "with a key"
    } else {
        "no key"
    };
    let mut o = format!(
        "  publish API  POST {url}, keep-alive, {key}: {} answers",
        api.answers()
    );
    let statuses: Vec<String> = api
        .statuses
        .iter()
        .map(|(code, n)| format!("{code} × {n}"))
        .collect();
    if !statuses.is_empty() {
        let _ = write!(o, " ({})", statuses.join(", "));
    }
    o.push('\n');
    o
}

/// The JSON report's `api` object, if the run used the API.
pub fn json(s: &Summary) -> Option<Value> {
    if !used(s) {
        return None;
    }
    let api = &s.stats.api;
    let statuses: serde_json::Map<String, Value> = api
        .statuses
        .iter()
        .map(|(code, n)| (code.to_string(), json!(n)))
        .collect();
    let ok = api.statuses.get(&200).copied().unwrap_or(0);
    Some(json!({
        "url": s.params["publish_url"],
        "answers": api.answers(),
        "ok": ok,
        "refused": api.answers() - ok,
        "statuses": statuses,
    }))
}

/// Messages a broadcast's publishers should have sent at `-R` over the
/// warm-up and the window.
pub fn due(s: &Summary) -> Option<u64> {
    let p = &s.params;
    let secs = p["warmup_s"].as_f64()? + p["duration_s"].as_f64()?;
    Some((p["rate"].as_f64()? * secs) as u64)
}

/// The warning line when the publishers sent under 95% of what was due.
pub fn behind(s: &Summary) -> String {
    let Some(due) = due(s).filter(|_| s.mode == "broadcast") else {
        return String::new();
    };
    let sent = s.stats.sent;
    if sent as f64 >= due as f64 * 0.95 {
        return String::new();
    }
    let hint = if used(s) {
        "each API publisher waits for its answer: try more --publishers"
    } else {
        "the server did not read them fast enough"
    };
    format!("  WARNING      the publishers fell behind -R: {sent} of {due} messages due were published ({hint}); the fan-out latency counts the wait\n")
}
