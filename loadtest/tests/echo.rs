//! `wsload echo` against wsd: every message sent comes back verified.

mod common;

use common::{n, wsload, TestServer};
use wsd::Mode;

#[test]
fn echo_counts_add_up_with_no_errors() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let run = wsload(&[
        "echo", "-c", "8", "-d", "1s", "--warmup", "200ms", "--depth", "4", "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert!(n(&v, &["sent"]) > 0);
    assert_eq!(n(&v, &["sent"]), n(&v, &["received"]));
    assert_eq!(n(&v, &["errors_total"]), 0);
    assert_eq!(n(&v, &["mismatches"]), 0);
    assert_eq!(n(&v, &["connections", "opened"]), 8);
    assert_eq!(v["failed"], false);
    assert!(n(&v, &["latency", "count"]) > 0);
    // The human report went to stderr, out of the JSON's way.
    assert!(run.stderr.contains("round trip"), "{}", run.stderr);
}

#[test]
fn text_echo_over_two_threads_with_large_payloads() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let run = wsload(&[
        "echo", "-c", "4", "-t", "2", "-d", "1s", "--warmup", "0s", "--text", "-s", "100KiB",
        "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert!(n(&v, &["received"]) > 0);
    assert_eq!(n(&v, &["sent"]), n(&v, &["received"]));
    assert_eq!(n(&v, &["errors_total"]), 0);
    assert_eq!(n(&v, &["params", "threads"]), 2);
}

#[test]
fn server_pid_gives_cpu_per_message() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    // The in-process server shares our pid: its CPU is the test process's.
    let pid = std::process::id().to_string();
    let run = wsload(&[
        "echo",
        "-c",
        "4",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--server-pid",
        &pid,
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["server", "pid"]), u64::from(std::process::id()));
    assert!(v["server"]["rss_end"].as_u64().is_some_and(|r| r > 0));
    assert!(v["server"]["cpu_us_per_msg"].as_f64().is_some(), "{v}");
    assert!(run.stderr.contains(" CPU in window"), "{}", run.stderr);
    // The CPU time is counted in clock ticks (10 ms): on a busy machine
    // the server can get less than one in the window, and with no CPU
    // reading there is no cost per message to print.
    let cpu = v["server"]["cpu_s"].as_f64().expect("cpu_s");
    assert_eq!(
        run.stderr.contains("µs/msg"),
        cpu > 0.0,
        "cpu_s {cpu}: {}",
        run.stderr
    );
}

#[test]
fn hgrm_and_csv_files_are_written() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let dir = std::env::temp_dir().join(format!("wsload-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let hgrm = dir.join("echo.hgrm");
    let csv = dir.join("echo.csv");
    let run = wsload(&[
        "echo",
        "-c",
        "2",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--hgrm",
        hgrm.to_str().expect("utf-8 path"),
        "--csv",
        csv.to_str().expect("utf-8 path"),
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let h = std::fs::read_to_string(&hgrm).expect("hgrm written");
    assert!(
        h.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"),
        "{h}"
    );
    assert!(h.contains("#[Max"));
    let c = std::fs::read_to_string(&csv).expect("csv written");
    let mut lines = c.lines();
    assert_eq!(
        lines.next(),
        Some("second,phase,sent,received,errors,p99_us,wire_sent_bytes,wire_received_bytes")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(!rows.is_empty());
    let received: u64 = rows
        .iter()
        .map(|r| r[3].parse::<u64>().expect("count"))
        .sum();
    assert!(received > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_csv_marks_warm_up_and_its_measured_rows_add_up_to_the_window() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    let dir = std::env::temp_dir().join(format!("wsload-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let csv = dir.join("echo.csv");
    let run = wsload(&[
        "echo",
        "-c",
        "2",
        "-d",
        "1500ms",
        "--warmup",
        "1200ms",
        "--csv",
        csv.to_str().expect("utf-8 path"),
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let text = std::fs::read_to_string(&csv).expect("csv written");
    let _ = std::fs::remove_dir_all(&dir);
    let rows: Vec<(f64, String, u64, u64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let count = |i: usize| f[i].parse::<u64>().expect("count");
            (
                f[0].parse().expect("second"),
                f[1].to_string(),
                count(2),
                count(3),
            )
        })
        .collect();
    // 1.2 s of warm-up: a 0.2 s row, then a whole second, then the window
    // in whole seconds from 0, the last cut at 1.5 s.
    let phases: Vec<(f64, &str)> = rows.iter().map(|r| (r.0, r.1.as_str())).collect();
    assert_eq!(
        phases[..4],
        [
            (-1.2, "warmup"),
            (-1.0, "warmup"),
            (0.0, "measured"),
            (1.0, "measured")
        ],
        "{text}"
    );
    assert!(phases[4..].iter().all(|p| p.1 == "drain"), "{text}");
    let measured = rows.iter().filter(|r| r.1 == "measured");
    let (sent, received) = measured.fold((0, 0), |a, r| (a.0 + r.2, a.1 + r.3));
    assert_eq!(sent, n(&v, &["window_sent"]), "{text}");
    assert_eq!(received, n(&v, &["window_received"]), "{text}");
    let warm: u64 = rows.iter().filter(|r| r.1 == "warmup").map(|r| r.3).sum();
    assert!(warm > 0, "{text}");
}

#[test]
fn payloads_too_small_for_a_stamp_are_echoed_checked_and_timed() {
    let server = TestServer::start(Mode::Echo, true);
    let url = server.url();
    for (size, enc) in [
        ("0", "--binary"),
        ("1", "--binary"),
        ("31", "--binary"),
        ("5", "--text"),
    ] {
        let run = wsload(&[
            "echo", "-c", "2", "-d", "300ms", "--warmup", "0s", "--depth", "4", "-s", size, enc,
            "--json", "-", &url,
        ]);
        assert_eq!(run.code, Some(0), "-s {size}: stderr:\n{}", run.stderr);
        let v = run.json();
        assert_eq!(v["params"]["checks"], "content", "-s {size}");
        assert_eq!(
            n(&v, &["params", "size"]),
            size.parse::<u64>().expect("size")
        );
        assert!(n(&v, &["received"]) > 0, "-s {size}");
        assert_eq!(n(&v, &["sent"]), n(&v, &["received"]), "-s {size}");
        assert_eq!(n(&v, &["errors_total"]), 0, "-s {size}");
        // Every reply in the window is timed. (How many came in 300 ms
        // depends on the CPU the server and wsload got: on a busy machine,
        // none at all.)
        assert_eq!(
            n(&v, &["latency", "count"]),
            n(&v, &["window_received"]),
            "-s {size}: replies in the window without a latency"
        );
        assert!(
            run.stderr.contains("too small for a stamp") && run.stderr.contains("order by content"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn compare_runs_each_target_per_round() {
    let a = TestServer::start(Mode::Echo, true);
    let b = TestServer::start(Mode::Echo, true);
    let (ua, ub) = (a.url(), b.url());
    let run = wsload(&[
        "compare", "echo", "-c", "2", "-d", "300ms", "--warmup", "0s", "--rounds", "2", "--json",
        "-", &ua, &ub,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let servers = v["scenarios"][0]["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 2);
    for (s, url) in servers.iter().zip([&ua, &ub]) {
        let rounds = s["rounds"].as_array().expect("rounds");
        assert_eq!(rounds.len(), 2);
        assert!(rounds.iter().all(|r| r["url"] == url.as_str()), "{s}");
        assert!(s["summary"]["rate"]["median"]
            .as_f64()
            .is_some_and(|r| r > 0.0));
    }
    assert!(run.stderr.contains("msg/s ÷"), "{}", run.stderr);
}
