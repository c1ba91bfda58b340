//! `wsload rate --find-max` against a server slowed on purpose: an echo
//! that sleeps a fixed time per message on each connection, so its
//! capacity is known (one connection: at most 1/sleep messages per
//! second), and the search must bracket it. And `compare`'s capacity
//! scenario, which ranks started servers by the rate they hold.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::{accept_upgrade, fake_server, n, read_key, target_dir, wsload};
use serde_json::Value;
use wsd::proto::frame::{decode_header, write_frame, OpCode, Parsing};
use wsd::proto::mask::apply_mask;

/// What the slow echo sleeps per message.
const SERVICE: Duration = Duration::from_millis(4);

/// Completes the handshake, then echoes each frame after sleeping
/// [`SERVICE`]: one connection can do no more than 1/SERVICE a second.
fn slow_echo(mut s: TcpStream) {
    let Some(key) = read_key(&mut s) else { return };
    if !accept_upgrade(&mut s, &key, "") {
        return;
    }
    // Each echo goes out at once, not held back for an ACK (Nagle).
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        while let Ok(Parsing::Done { value, offset }) = decode_header(&buf) {
            let end = offset + value.len as usize;
            if buf.len() < end {
                break;
            }
            let mut payload = buf[offset..end].to_vec();
            if let Some(key) = value.mask {
                apply_mask(&mut payload, key, 0);
            }
            buf.drain(..end);
            let mut out = Vec::new();
            write_frame(&mut out, value.opcode, &payload);
            if value.opcode == OpCode::Close {
                let _ = s.write_all(&out);
                return;
            }
            thread::sleep(SERVICE);
            if s.write_all(&out).is_err() {
                return;
            }
        }
    }
}

fn f(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn find_max_brackets_the_capacity_of_a_slowed_server() {
    let url = fake_server(slow_echo);
    let dir = std::env::temp_dir().join(format!("wsload-capacity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let html = dir.join("curve.html");
    let html_arg = html.to_string_lossy().into_owned();
    let run = wsload(&[
        "rate",
        "--find-max",
        "--p99",
        "100ms",
        "--from",
        "50",
        "--to",
        "2000",
        "--resolution",
        "10",
        "-c",
        "1",
        "-d",
        "1s",
        "--warmup",
        "300ms",
        "--grace",
        "300ms",
        "--html",
        &html_arg,
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let nominal = 1.0 / SERVICE.as_secs_f64();
    let max = f(&v, &["capacity", "max_rate"]);
    let bad = f(&v, &["capacity", "first_failing_rate"]);
    // Above its capacity the slow echo's queue grows by (rate − capacity)
    // a second, and 1.3 s of it is 100 ms of wait within 8% of the
    // capacity: no rate much above 1/SERVICE can hold. (A busy machine
    // slows the server further, so no lower bound: the test asserts no
    // speed.)
    assert!(max <= nominal * 1.1, "held {max} msg/s, above {nominal}");
    // The knee within one step: the bracket closed to the resolution.
    assert_eq!(v["capacity"]["stopped"], "bracketed", "{v}");
    assert!(bad > max && bad <= max * 1.1, "bracket {max}..{bad}");
    // The curve: every step, from --from, each held rate below each failed
    // one (the ramp climbs only while steps hold; bisection stays inside).
    let steps = v["steps"].as_array().expect("steps");
    assert_eq!(steps.len() as u64, n(&v, &["capacity", "steps"]));
    let rates: Vec<f64> = steps.iter().map(|s| f(s, &["rate"])).collect();
    assert_eq!(rates[0], 50.0, "{rates:?}");
    for s in steps {
        let held = s["held"].as_bool().expect("held");
        assert_eq!(held, f(s, &["rate"]) <= max, "{s}");
        if held {
            assert!(f(s, &["p99_us"]) <= 100_000.0, "{s}");
        }
    }
    // The text table went to stderr, the page to its file with its chart.
    assert!(run.stderr.contains("capacity "), "{}", run.stderr);
    let page = std::fs::read_to_string(&html).expect("the HTML page");
    assert!(page.contains("<svg") && page.contains("p99 over bound"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_that_is_not_there_holds_no_rate() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    drop(listener);
    let run = wsload(&[
        "rate",
        "--find-max",
        "--p99",
        "5ms",
        "-d",
        "200ms",
        "--warmup",
        "0s",
        "--grace",
        "0s",
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(v["capacity"]["max_rate"], Value::Null);
    assert_eq!(v["capacity"]["stopped"], "failed at --from");
    assert_eq!(v["steps"][0]["verdict"], "errors");
}

/// Builds with cargo into this test's target directory and profile (a
/// no-op when up to date) and returns the binary's path.
fn build(args: &[&str], relative: &str) -> PathBuf {
    let (target, profile) = target_dir();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet"])
        .args(args)
        .arg("--target-dir")
        .arg(&target);
    if profile != "debug" {
        cmd.args(["--profile", &profile]);
    }
    assert!(
        cmd.status().expect("run cargo").success(),
        "cargo build {args:?}"
    );
    target.join(&profile).join(relative)
}

/// The slow echo example's CPU burn per message, µs: one connection of it
/// holds at most 1/BURN messages a second.
const BURN_US: f64 = 4000.0;

#[test]
fn compare_ranks_started_servers_by_the_rate_they_hold() {
    let wsd = build(&["-p", "wsd", "--bin", "wsd"], "wsd");
    let slow = build(
        &["-p", "wsload", "--example", "slow_echo"],
        "examples/slow_echo",
    );
    let a = format!(
        "wsd={} --listen 127.0.0.1:{{port}} --log-level warn",
        wsd.display()
    );
    let b = format!("slow={} {{port}} {BURN_US}", slow.display());
    let dir = std::env::temp_dir().join(format!("wsload-capacity-cmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let html = dir.join("report.html");
    let html_arg = html.to_string_lossy().into_owned();
    let run = wsload(&[
        "compare",
        "--server",
        &a,
        "--server",
        &b,
        "--rounds",
        "1",
        "--json",
        "-",
        "--html",
        &html_arg,
        "rate",
        "--find-max",
        "--p99",
        "100ms",
        "--from",
        "50",
        "--to",
        "800",
        "--resolution",
        "25",
        "-c",
        "1",
        "-d",
        "700ms",
        "--warmup",
        "200ms",
        "--grace",
        "300ms",
    ]);
    let doc = run.json();
    let s = &doc["scenarios"][0];
    assert_eq!(s["name"], "capacity", "{}", run.stderr);
    let held = |i: usize| {
        let r = &s["servers"][i]["rounds"][0];
        let steps = r["run"]["find_max"]["steps"]
            .as_array()
            .expect("steps")
            .len();
        assert!(steps >= 1, "{r}");
        (
            f(r, &["figures", "rate"]),
            r["run"]["find_max"]["capacity"].clone(),
        )
    };
    let ((w, wc), (sl, sc)) = (held(0), held(1));
    // One connection of the slow echo cannot answer more than 1/BURN a
    // second, and 0.9 s above that by 11% is 100 ms of queue: no rate
    // much above it holds for the slow echo; wsd holds more.
    let nominal = 1e6 / BURN_US;
    assert!(sl <= nominal * 1.15, "slow held {sl}: {sc}");
    assert!(w > sl, "wsd held {w} ({wc}), slow {sl} ({sc})");
    assert_eq!(sc["max_rate"].as_f64(), Some(sl));
    let page = std::fs::read_to_string(&html).expect("the HTML report");
    assert!(
        page.contains("capacity: p99 against offered rate"),
        "no capacity chart"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
