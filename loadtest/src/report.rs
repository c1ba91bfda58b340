//! Turning a [`Summary`] into figures, a text report and JSON (the .hgrm
//! table and the CSV are in [`crate::tables`]).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::run::Summary;
use crate::stats::{ErrorKind, Stats};

/// The percentiles every latency table shows; 100 is the maximum.
pub const PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0];

pub use crate::run::SATURATED;

/// Figures derived from a summary.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Messages received per second in the window.
    pub msgs_per_s: f64,
    /// Payload megabytes (10^6) received per second in the window.
    pub mb_per_s: f64,
    /// Server CPU microseconds per message received in the window
    /// (broadcast: per delivery).
    pub server_us_per_msg: Option<f64>,
    /// Messages (broadcast: deliveries) per server CPU-second.
    pub msgs_per_server_cpu_s: Option<f64>,
    /// Server CPU use in the window, in cores.
    pub server_cores: Option<f64>,
    /// Our CPU use per thread, 0..1.
    pub self_per_thread: f64,
    /// Whether we were saturated.
    pub saturated: bool,
    /// Handshakes completed per second of connecting.
    pub handshakes_per_s: f64,
    /// Broadcast: messages published.
    pub published: u64,
    /// Broadcast: deliveries expected (published × subscribers).
    pub expected_deliveries: u64,
    /// Broadcast: the subscribers' tallies summed, and lost messages.
    pub lost: u64,
    /// Broadcast: duplicated deliveries.
    pub duplicated: u64,
    /// Broadcast: deliveries out of order.
    pub out_of_order: u64,
    /// Broadcast: the worst subscriber's lost, duplicated and out-of-order.
    pub worst: (u64, u64, u64),
    /// Server RSS growth per connection (`conns`), bytes.
    pub rss_per_conn: Option<f64>,
    /// Broadcast over several nodes: each node's share, by target index.
    pub nodes: Vec<NodeFigures>,
}

/// Broadcast over several nodes: the subscribers of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeFigures {
    /// Subscribers connected to it.
    pub subscribers: u64,
    /// Deliveries they received, repeats included.
    pub deliveries: u64,
    /// Messages they never received.
    pub lost: u64,
    /// Repeated deliveries.
    pub duplicated: u64,
    /// Deliveries out of order.
    pub out_of_order: u64,
}

impl Figures {
    /// Derives the figures.
    pub fn of(s: &Summary) -> Figures {
        let st = &s.stats;
        let secs = s.window.as_secs_f64().max(1e-9);
        let mut f = Figures {
            msgs_per_s: st.window_received as f64 / secs,
            mb_per_s: st.window_bytes as f64 / secs / 1e6,
            ..Figures::default()
        };
        if let Some(sv) = &s.server {
            let cpu = sv.end.cpu.saturating_sub(sv.start.cpu).as_secs_f64();
            f.server_cores = Some(cpu / secs);
            if st.window_received > 0 {
                f.server_us_per_msg = Some(cpu * 1e6 / st.window_received as f64);
            }
            if cpu > 0.0 {
                f.msgs_per_server_cpu_s = Some(st.window_received as f64 / cpu);
            }
            // Churned connections come and go: growth per connection means nothing.
            if st.opened > 0 && s.mode != "churn" {
                let grown = sv.start.rss as f64 - sv.before.rss as f64;
                f.rss_per_conn = Some(grown / st.opened as f64);
            }
        }
        f.self_per_thread = s.self_cpu.as_secs_f64() / secs / s.threads as f64;
        f.saturated = f.self_per_thread >= SATURATED;
        if let Some((a, b)) = st.connect_span {
            let span = b.duration_since(a).as_secs_f64().max(1e-9);
            f.handshakes_per_s = st.opened as f64 / span;
        }
        if s.mode == "broadcast" {
            f.published = st.sent;
            f.expected_deliveries = st.sent * s.subscribers;
            if s.targets.len() > 1 {
                f.nodes = vec![NodeFigures::default(); s.targets.len()];
            }
            for t in &st.subscribers {
                let lost = st.sent.saturating_sub(t.unique);
                // More than was published: repeats the subscriber could not
                // tell from new messages (unstamped payloads, or a repeat
                // older than the 64-message window).
                let surplus = t.unique.saturating_sub(st.sent);
                f.lost += lost;
                f.duplicated += t.duplicated + surplus;
                f.out_of_order += t.out_of_order;
                f.worst.0 = f.worst.0.max(lost);
                f.worst.1 = f.worst.1.max(t.duplicated + surplus);
                if let Some(n) = f.nodes.get_mut(t.node as usize) {
                    n.subscribers += 1;
                    n.deliveries += t.unique + t.duplicated;
                    n.lost += lost;
                    n.duplicated += t.duplicated + surplus;
                    n.out_of_order += t.out_of_order;
                }
                f.worst.2 = f.worst.2.max(t.out_of_order);
            }
            // Subscribers that never opened lost everything.
            let missing = s.subscribers.saturating_sub(st.subscribers.len() as u64);
            f.lost += missing * st.sent;
            if missing > 0 {
                f.worst.0 = f.worst.0.max(st.sent);
            }
        }
        f
    }

    /// Whether the run failed: any error, a missing delivery, or no connection.
    pub fn failed(&self, s: &Summary) -> bool {
        s.stats.errors.total() > 0
            || s.stats.opened == 0
            || self.lost + self.duplicated + self.out_of_order > 0
    }
}

/// Nanoseconds in microseconds.
pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The latency at each of [`PERCENTILES`], in µs.
fn percentiles(h: &Histogram<u64>) -> [f64; 6] {
    PERCENTILES.map(|p| {
        if p >= 100.0 {
            us(h.max())
        } else {
            us(h.value_at_percentile(p))
        }
    })
}

fn latency_json(h: &Histogram<u64>) -> Value {
    let p = percentiles(h);
    json!({
        "count": h.len(),
        "mean_us": h.mean() / 1000.0,
        "p50_us": p[0], "p90_us": p[1], "p99_us": p[2],
        "p99_9_us": p[3], "p99_99_us": p[4], "max_us": p[5],
    })
}

fn bytes(n: f64) -> String {
    if n.abs() >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", n / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", n / 1024.0)
    }
}

fn fmt_us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}ms", v / 1000.0)
    } else {
        format!("{v:.1}")
    }
}

/// The latency table's rows: a name and a histogram each.
fn latency_rows(s: &Summary) -> Vec<(&'static str, &Histogram<u64>)> {
    let st = &s.stats;
    let mut rows = Vec::new();
    match s.mode {
        "echo" | "churn" => rows.push(("round trip", &st.latency)),
        "rate" => {
            rows.push(("corrected", &st.latency));
            rows.push(("uncorrected", &st.uncorrected));
        }
        "broadcast" => {
            rows.push(("fan-out", &st.latency));
            rows.push(("uncorrected", &st.uncorrected));
            rows.push(("API answer", &st.api.latency));
        }
        _ => {}
    }
    rows.push(("handshake", &st.connect));
    rows
}

/// The human-readable report.
pub fn text(s: &Summary) -> String {
    let f = Figures::of(s);
    let st = &s.stats;
    let mut o = String::new();
    let p = &s.params;
    let targets: Vec<&str> = s.targets.iter().map(|t| t.url.as_str()).collect();
    let _ = write!(
        o,
        "wsload {} {}: {} connections",
        s.mode,
        targets.join(" "),
        s.connections
    );
    let _ = write!(
        o,
        ", {} thread{}",
        s.threads,
        if s.threads == 1 { "" } else { "s" }
    );
    if let (Some(size), Some(enc)) = (p["size"].as_u64(), p["encoding"].as_str()) {
        let _ = write!(o, ", {size} B {enc}");
    }
    if let Some(d) = p["depth"].as_u64() {
        let _ = write!(o, ", depth {d}");
    }
    if let Some(r) = p["rate"].as_f64() {
        let _ = write!(o, ", {r} msg/s");
    }
    if let Some(pb) = p["publishers"].as_u64() {
        let _ = write!(o, ", {pb} publisher{}", if pb == 1 { "" } else { "s" });
    }
    match p["warmup_s"].as_f64() {
        Some(w) => {
            let _ = writeln!(
                o,
                ", {w:.1}s warm-up + {:.2}s measured",
                s.window.as_secs_f64()
            );
        }
        None => {
            let _ = writeln!(o, ", held {:.2}s", s.window.as_secs_f64());
        }
    }
    if let Some(line) = checks(s) {
        let _ = writeln!(o, "  checks       {line}");
    }

    // Over wss:// a handshake is TCP, TLS and the upgrade.
    let kind = if s.targets.iter().any(|t| t.tls.is_some()) {
        "TLS+upgrade handshakes/s"
    } else {
        "handshakes/s"
    };
    let _ = writeln!(
        o,
        "  connections  {} opened, {} failed, {:.0} {kind}",
        st.opened, st.failed, f.handshakes_per_s
    );
    if s.mode == "broadcast" {
        let _ = writeln!(
            o,
            "  messages     {} published, {} of {} deliveries ({:.0}/s in window, {:.2} MB/s); publishers got {}",
            f.published, st.received, f.expected_deliveries, f.msgs_per_s, f.mb_per_s, st.publisher_received
        );
        let _ = writeln!(
            o,
            "  delivery     lost {}, duplicated {}, out of order {} (worst subscriber: {} / {} / {})",
            f.lost, f.duplicated, f.out_of_order, f.worst.0, f.worst.1, f.worst.2
        );
        o.push_str(&crate::publish::report::text(s));
        for (i, (n, t)) in f.nodes.iter().zip(&s.targets).enumerate() {
            let _ = write!(
                o,
                "  {:<12} {}{}: {} subscribers, {} deliveries, lost {}, duplicated {}, out of order {}",
                if i == 0 { "by node" } else { "" },
                t.url,
                if i == 0 && !via_api(s) { " (publishers)" } else { "" },
                n.subscribers,
                n.deliveries,
                n.lost,
                n.duplicated,
                n.out_of_order
            );
            match st.node_latency.get(i).filter(|h| !h.is_empty()) {
                Some(h) => {
                    let p = percentiles(h);
                    let _ = writeln!(
                        o,
                        "; fan-out p50 {} µs, p99 {} µs",
                        fmt_us(p[0]),
                        fmt_us(p[2])
                    );
                }
                None => {
                    let _ = writeln!(o);
                }
            }
        }
    } else if s.mode != "conns" {
        let _ = writeln!(
            o,
            "  messages     {} sent, {} received; window {:.0} msg/s, {:.2} MB/s",
            st.sent, st.received, f.msgs_per_s, f.mb_per_s
        );
    }
    if s.mode == "churn" {
        let c = &st.churn;
        let _ = writeln!(
            o,
            "  churn        {} closed clean ({} sent, {} echoed), {} abrupt ({} mid-frame, {} reset; {} messages dropped with them), {} ended by the server or an error",
            c.clean, c.clean_sent, c.clean_received, c.abrupt, c.mid_frame, c.reset, c.abandoned, c.unexpected
        );
        let _ = writeln!(
            o,
            "               lost {}, mismatched {}, unexpected closes {}",
            st.errors.count(ErrorKind::Unanswered),
            st.errors.count(ErrorKind::Mismatch),
            unexpected_closes(st)
        );
    }
    o.push_str(&crate::wire::text(s));
    let rows: Vec<_> = latency_rows(s)
        .into_iter()
        .filter(|(_, h)| !h.is_empty())
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(
            o,
            "  latency µs   {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
    }
    for (name, h) in rows {
        let _ = write!(o, "               {name:>12}");
        for v in percentiles(h) {
            let _ = write!(o, " {:>9}", fmt_us(v));
        }
        let _ = writeln!(o);
    }
    if let Some(sv) = &s.server {
        let cpu = sv.end.cpu.saturating_sub(sv.start.cpu);
        let pids: Vec<String> = sv.pids.iter().map(u32::to_string).collect();
        let _ = write!(
            o,
            "  server       pid{} {}: {:.3}s CPU in window ({:.0}% of a core)",
            if pids.len() == 1 { "" } else { "s" },
            pids.join(", "),
            cpu.as_secs_f64(),
            f.server_cores.unwrap_or(0.0) * 100.0
        );
        // A broadcast message costs the server once per subscriber.
        let unit = if s.mode == "broadcast" {
            "delivery"
        } else {
            "msg"
        };
        if let (Some(per), Some(rate)) = (f.server_us_per_msg, f.msgs_per_server_cpu_s) {
            let plural = if s.mode == "broadcast" {
                "deliveries"
            } else {
                "msg"
            };
            let _ = write!(o, ", {per:.3} µs/{unit}, {rate:.0} {plural} per CPU-second");
        }
        let _ = writeln!(
            o,
            "\n               RSS {} before connecting, {} at window start, {} at end",
            bytes(sv.before.rss as f64),
            bytes(sv.start.rss as f64),
            bytes(sv.end.rss as f64)
        );
        if let Some(per) = f.rss_per_conn {
            let _ = writeln!(o, "               RSS per connection {:.0} bytes", per);
        }
    } else if let Some(e) = &s.server_error {
        let _ = writeln!(o, "  server       not sampled: {e}");
    }
    let _ = writeln!(
        o,
        "  wsload       {:.0}% CPU per thread",
        f.self_per_thread * 100.0
    );
    o.push_str(&crate::publish::report::behind(s));
    if f.saturated {
        let _ = writeln!(
            o,
            "  WARNING      wsload was saturated: the figures are a floor for the server, not its ceiling (try -t)"
        );
    }
    if st.errors.total() == 0 {
        let _ = writeln!(o, "  errors       none");
    } else {
        let _ = writeln!(o, "  errors       {}", st.errors.total());
        for (kind, n, detail) in st.errors.iter() {
            let _ = writeln!(o, "               {n:>9} {kind}: {detail}");
        }
    }
    o
}

/// What every reply (or delivery) is checked for, for modes that send.
fn checks(s: &Summary) -> Option<String> {
    let p = &s.params;
    let size = p["size"].as_u64()?;
    let stamped = p["checks"].as_str() == Some("stamp");
    let broadcast = s.mode == "broadcast";
    let line = match (stamped, broadcast) {
        (true, false) => {
            "every reply's type, length, stamp (sender, sequence number, checksum) and padding; latency from the stamp".to_string()
        }
        (true, true) => {
            "every delivery's type, length, stamp and padding: loss, duplicates and order per publisher; latency from the stamp".to_string()
        }
        (false, false) => format!(
            "{size} B is too small for a stamp: every reply's type, length and content, and order by content (modulo 26); latency from each connection's send times"
        ),
        (false, true) => format!(
            "{size} B is too small for a stamp: every delivery's type, length and content, and counts (lost: fewer than published, duplicated: more); no order check, no latency"
        ),
    };
    Some(line)
}

/// Whether the publishers went through the publish API, not a node.
fn via_api(s: &Summary) -> bool {
    s.params["publish_url"].is_string()
}

/// Errors that mean the server ended a connection on its own: a Close, an
/// end of stream or a reset we did not ask for, an unanswered Close.
fn unexpected_closes(st: &Stats) -> u64 {
    st.errors
        .iter()
        .filter(|(k, _, _)| {
            matches!(
                k,
                ErrorKind::UnexpectedClose(_)
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::Reset
                    | ErrorKind::CloseTimeout
            )
        })
        .map(|(_, n, _)| n)
        .sum()
}

/// Every figure and the run's parameters as one JSON object.
pub fn json(s: &Summary) -> Value {
    let f = Figures::of(s);
    let st = &s.stats;
    let errors: serde_json::Map<String, Value> = st
        .errors
        .iter()
        .map(|(k, n, d)| (k.to_string(), json!({ "count": n, "first": d })))
        .collect();
    let mut v = json!({
        "params": s.params,
        "target": s.targets.first().map(|t| t.url.as_str()),
        "window_s": s.window.as_secs_f64(),
        "connections": {
            "planned": s.connections,
            "opened": st.opened,
            "failed": st.failed,
            "handshakes_per_s": f.handshakes_per_s,
        },
        "sent": st.sent,
        "received": st.received,
        "window_sent": st.window_sent,
        "window_received": st.window_received,
        "msgs_per_s": f.msgs_per_s,
        "mb_per_s": f.mb_per_s,
        "latency": latency_json(&st.latency),
        "handshake_latency": latency_json(&st.connect),
        "errors_total": st.errors.total(),
        "mismatches": st.errors.count(ErrorKind::Mismatch),
        "errors": errors,
        "self": {
            "cpu_s": s.self_cpu.as_secs_f64(),
            "cpu_per_thread": f.self_per_thread,
            "saturated": f.saturated,
            "nofile_limit": s.nofile,
        },
        "failed": f.failed(s),
        "wire": crate::wire::json(s),
    });
    if matches!(s.mode, "rate" | "broadcast") {
        v["uncorrected_latency"] = latency_json(&st.uncorrected);
    }
    if s.mode == "churn" {
        let c = &st.churn;
        v["churn"] = json!({
            "opened": st.opened,
            "closed_clean": c.clean,
            "closed_abrupt": c.abrupt,
            "abrupt_mid_frame": c.mid_frame,
            "abrupt_reset": c.reset,
            "ended_unexpectedly": c.unexpected,
            "clean_sent": c.clean_sent,
            "clean_received": c.clean_received,
            "abandoned": c.abandoned,
            "lost": st.errors.count(ErrorKind::Unanswered),
            "mismatches": st.errors.count(ErrorKind::Mismatch),
            "unexpected_closes": unexpected_closes(st),
            "handshakes_per_s": f.handshakes_per_s,
        });
    }
    if s.mode == "broadcast" {
        v["broadcast"] = json!({
            "subscribers": s.subscribers,
            "published": f.published,
            "deliveries": st.received,
            "expected_deliveries": f.expected_deliveries,
            "deliveries_per_s": f.msgs_per_s,
            "publisher_received": st.publisher_received,
            "lost": f.lost,
            "duplicated": f.duplicated,
            "out_of_order": f.out_of_order,
            "worst_subscriber": { "lost": f.worst.0, "duplicated": f.worst.1, "out_of_order": f.worst.2 },
            "due": crate::publish::report::due(s),
        });
        if let Some(mut api) = crate::publish::report::json(s) {
            api["latency"] = latency_json(&st.api.latency);
            v["broadcast"]["api"] = api;
        }
        if !f.nodes.is_empty() {
            let empty = crate::stats::latency_histogram();
            let nodes: Vec<Value> = f
                .nodes
                .iter()
                .zip(&s.targets)
                .enumerate()
                .map(|(i, (n, t))| {
                    json!({
                        "target": t.url,
                        "publishers": i == 0 && !via_api(s),
                        "subscribers": n.subscribers,
                        "deliveries": n.deliveries,
                        "lost": n.lost,
                        "duplicated": n.duplicated,
                        "out_of_order": n.out_of_order,
                        "latency": latency_json(st.node_latency.get(i).unwrap_or(&empty)),
                    })
                })
                .collect();
            v["broadcast"]["nodes"] = json!(nodes);
        }
    }
    if s.targets.len() > 1 {
        let urls: Vec<&str> = s.targets.iter().map(|t| t.url.as_str()).collect();
        v["targets"] = json!(urls);
    }
    if let Some(sv) = &s.server {
        v["server"] = json!({
            "pid": sv.pids.first(),
            "pids": sv.pids,
            "cpu_s": sv.end.cpu.saturating_sub(sv.start.cpu).as_secs_f64(),
            "cores": f.server_cores,
            "rss_before": sv.before.rss,
            "rss_start": sv.start.rss,
            "rss_end": sv.end.rss,
            "rss_per_conn": f.rss_per_conn,
        });
        // Broadcast's server cost is per delivery: one message costs the
        // server once per subscriber.
        let (per, rate) = if s.mode == "broadcast" {
            ("cpu_us_per_delivery", "deliveries_per_cpu_s")
        } else {
            ("cpu_us_per_msg", "msgs_per_cpu_s")
        };
        v["server"][per] = json!(f.server_us_per_msg);
        v["server"][rate] = json!(f.msgs_per_server_cpu_s);
    } else if let Some(e) = &s.server_error {
        v["server"] = json!({ "error": e });
    }
    v
}
