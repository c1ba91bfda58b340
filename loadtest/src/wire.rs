//! The wire-bytes figures: WebSocket frame bytes against message bytes,
//! each way, with `--deflate` or without (so runs can be compared).

use serde_json::{json, Value};

use crate::run::Summary;
use crate::stats::ErrorKind;

/// `a / b`, or `None` when nothing was counted.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.3}"))
}

/// Whether `--deflate` was asked for.
fn asked(s: &Summary) -> bool {
    s.params["deflate"].as_bool() == Some(true)
}

/// The report's `wire` lines (none for `conns`, which sends nothing).
pub fn text(s: &Summary) -> String {
    let st = &s.stats;
    let w = &st.wire;
    if s.mode == "conns" {
        return String::new();
    }
    let per = |bytes: u64, msgs: u64| {
        ratio(bytes, msgs).map_or_else(|| "-".into(), |v| format!("{v:.0}"))
    };
    let mut o = format!(
        "  wire         frame bytes / message bytes: sent {} / {} (ratio {}), received {} / {} (ratio {}), overall {}\n               {} B on the wire per message sent, {} B per message received\n",
        w.frames_out,
        w.msg_out,
        fmt_ratio(ratio(w.frames_out, w.msg_out)),
        w.frames_in,
        w.msg_in,
        fmt_ratio(ratio(w.frames_in, w.msg_in)),
        fmt_ratio(ratio(w.frames_out + w.frames_in, w.msg_out + w.msg_in)),
        per(w.frames_out, st.sent),
        per(w.frames_in, st.received),
    );
    if asked(s) {
        let declined = st.errors.count(ErrorKind::DeflateDeclined);
        let line = if declined == 0 {
            format!("permessage-deflate on all {} connections", st.opened)
        } else {
            format!("deflate not negotiated on {declined} connections (of {} opened): those ran uncompressed", st.opened)
        };
        o.push_str(&format!("  deflate      {line}\n"));
    }
    o
}

/// The JSON report's `wire` object.
pub fn json(s: &Summary) -> Value {
    let st = &s.stats;
    let w = &st.wire;
    let mut v = json!({
        "frame_bytes_sent": w.frames_out,
        "frame_bytes_received": w.frames_in,
        "message_bytes_sent": w.msg_out,
        "message_bytes_received": w.msg_in,
        "ratio_sent": ratio(w.frames_out, w.msg_out),
        "ratio_received": ratio(w.frames_in, w.msg_in),
        "ratio": ratio(w.frames_out + w.frames_in, w.msg_out + w.msg_in),
        "frame_bytes_per_msg_sent": ratio(w.frames_out, st.sent),
        "frame_bytes_per_msg_received": ratio(w.frames_in, st.received),
        "deflate": asked(s),
    });
    if asked(s) {
        v["deflate_not_negotiated"] = json!(st.errors.count(ErrorKind::DeflateDeclined));
    }
    v
}
