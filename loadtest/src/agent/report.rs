//! The per-agent part of a report: a line per agent in the text, a record
//! per agent in the JSON, each with its own counts, CPU and saturation.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::AgentRun;

fn us(h: &hdrhistogram::Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

fn rate(n: u64, a: &AgentRun) -> f64 {
    n as f64 / a.window.as_secs_f64().max(1e-9)
}

/// One line per agent; empty without agents.
pub fn text(agents: &[AgentRun]) -> String {
    let mut out = String::new();
    if agents.is_empty() {
        return out;
    }
    let _ = writeln!(out, "  agents       {}", agents.len());
    for a in agents {
        let s = &a.stats;
        let lat = match (us(&s.latency, 0.5), us(&s.latency, 0.99)) {
            (Some(p50), Some(p99)) => format!("  p50 {p50:.0} us  p99 {p99:.0} us"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "    {}  {} conns ({} opened)  sent {:.0}/s  received {:.0}/s{lat}  errors {}  cpu {:.0}% of {} thread{}{}",
            a.name,
            a.connections,
            s.opened,
            rate(s.window_sent, a),
            rate(s.window_received, a),
            s.errors.total(),
            a.busy() * 100.0,
            a.threads,
            if a.threads == 1 { "" } else { "s" },
            if a.saturated() { "  SATURATED" } else { "" },
        );
    }
    if agents.iter().any(AgentRun::saturated) {
        let _ = writeln!(
            out,
            "  WARNING      an agent was saturated: the figures are a floor for the server (add agents or -t)"
        );
    }
    out
}

/// A record per agent, for the JSON report's `agents`.
pub fn json(agents: &[AgentRun]) -> Value {
    let records: Vec<Value> = agents
        .iter()
        .map(|a| {
            let s = &a.stats;
            json!({
                "agent": a.name,
                "connections": a.connections,
                "threads": a.threads,
                "window_s": a.window.as_secs_f64(),
                "opened": s.opened,
                "failed": s.failed,
                "sent": s.sent,
                "received": s.received,
                "window_sent": s.window_sent,
                "window_received": s.window_received,
                "errors": s.errors.total(),
                "latency_samples": s.latency.len(),
                "latency_p50_us": us(&s.latency, 0.5),
                "latency_p99_us": us(&s.latency, 0.99),
                "cpu_s": a.cpu.as_secs_f64(),
                "cpu_per_thread": a.busy(),
                "saturated": a.saturated(),
            })
        })
        .collect();
    Value::Array(records)
}
