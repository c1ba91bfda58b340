//! The run's parameters as the JSON report gives them: what was asked for,
//! never a credential.

use serde_json::{json, Value};

use crate::cli::Scenario;

/// The run's parameters for the JSON report.
pub fn params(s: &Scenario, threads: usize) -> Value {
    let phases = s.phases();
    let mut p = json!({
        "mode": s.name(),
        "connections": s.connections(),
        "threads": threads,
        "duration_s": phases.duration.as_secs_f64(),
    });
    if !matches!(s, Scenario::Conns(_)) {
        p["warmup_s"] = json!(phases.warmup.as_secs_f64());
        p["grace_s"] = json!(phases.grace.as_secs_f64());
    }
    if let Some(pl) = s.payload() {
        let enc = pl.encoding();
        p["size"] = json!(pl.size);
        p["encoding"] = json!(enc.name());
        p["payload"] = json!(pl.fill.name());
        p["seed"] = json!(pl.seed);
        // What a reply is checked against: a stamp, or only its content.
        p["checks"] = json!(if pl.size >= enc.stamp_len() {
            "stamp"
        } else {
            "content"
        });
    }
    let c = s.client();
    p["deflate"] = json!(c.deflate);
    if let Some(cr) = &c.credentials {
        // How the token travels, never the token.
        p["auth"] = json!(cr.describe());
    }
    if let Some(o) = &c.origin {
        p["origin"] = json!(o);
    }
    if !c.protocols.is_empty() {
        p["protocols"] = json!(c.protocols);
    }
    if !c.headers.is_empty() {
        // Names only: values may be credentials.
        let names: Vec<&str> = c.headers.iter().map(|h| h.name.as_str()).collect();
        p["headers"] = json!(names);
    }
    match s {
        Scenario::Echo(a) => p["depth"] = json!(a.depth),
        Scenario::Rate(a) => p["rate"] = json!(a.rate),
        Scenario::Broadcast(a) => {
            p["rate"] = json!(a.rate);
            p["publishers"] = json!(a.publishers);
            if let Some(t) = &a.publish_url {
                p["publish_url"] = json!(t.url);
                // Whether a key was sent, never the key.
                p["api_key"] = json!(a.api_key.is_some());
            }
        }
        Scenario::Conns(_) => {}
        Scenario::Churn(a) => {
            p["messages"] = json!(a.messages);
            p["depth"] = json!(a.depth);
            p["abrupt_pct"] = json!(a.abrupt);
        }
    }
    p
}
