//! `compare` with servers it starts: real `wsd` processes and a
//! deliberately slow echo server (`examples/slow_echo.rs`, which burns a
//! fixed CPU time per message). What is checked: the slow one comes out
//! costlier per message; every process wsload started is gone afterwards,
//! also after Ctrl-C; servers and wsload run on the CPUs asked for; the
//! JSON document renders again through `wsload report`.
//!
//! Each server command runs under `env WSLOAD_TEST_MARK=...`, so a process
//! left behind is found by its environment, whatever its PID.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{die_with_this_thread, target_dir, wsload, Progress, DEADLINE, RUN_LIMIT};
use serde_json::Value;

/// Builds with cargo into this test's target directory and profile (a
/// no-op when up to date, so never stale) and returns the binary's path.
fn build(args: &[&str], relative: &str) -> PathBuf {
    let (target, profile) = target_dir();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet"])
        .args(args)
        .arg("--target-dir")
        .arg(&target);
    // The dev profile builds into `debug`; any other into its own name.
    if profile != "debug" {
        cmd.args(["--profile", &profile]);
    }
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "cargo build {args:?} failed");
    let path = target.join(&profile).join(relative);
    assert!(path.exists(), "{} not built", path.display());
    path
}

fn wsd() -> &'static Path {
    static WSD: OnceLock<PathBuf> = OnceLock::new();
    WSD.get_or_init(|| build(&["-p", "wsd", "--bin", "wsd"], "wsd"))
}

fn slow_echo() -> &'static Path {
    static SLOW: OnceLock<PathBuf> = OnceLock::new();
    SLOW.get_or_init(|| {
        build(
            &["-p", "wsload", "--example", "slow_echo"],
            "examples/slow_echo",
        )
    })
}

/// Waits until `done` holds, failing with `what` once nothing made
/// progress for [`DEADLINE`] (see [`Progress`]): on a busy machine
/// starting and stopping servers is slow, not stuck.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let mut progress = Progress::start();
    let began = Instant::now();
    let (mut quiet_since, mut looked) = (began, began);
    while !done() {
        if looked.elapsed() >= Duration::from_secs(1) {
            looked = Instant::now();
            if progress.made() {
                quiet_since = looked;
            }
            assert!(
                quiet_since.elapsed() < DEADLINE,
                "{what}: no progress for {DEADLINE:?}"
            );
            assert!(began.elapsed() < RUN_LIMIT, "{what} after {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A mark no other test's processes carry.
fn unique_mark(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{what}-{}-{nanos}", std::process::id())
}

/// `--server` values: wsd, and the slow echo burning `micros` per message.
fn servers(mark: &str, micros: u32) -> [String; 2] {
    [
        format!(
            "wsd=env WSLOAD_TEST_MARK={mark} {} --listen 127.0.0.1:{{port}} --log-level warn",
            wsd().display()
        ),
        format!(
            "slow=env WSLOAD_TEST_MARK={mark} {} {{port}} {micros}",
            slow_echo().display()
        ),
    ]
}

/// PIDs of the processes whose environment carries `mark`.
fn marked(mark: &str) -> Vec<u32> {
    let needle = format!("WSLOAD_TEST_MARK={mark}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
        })
        .collect()
}

/// A scratch directory under the system's temporary one.
fn scratch(mark: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(mark);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON document");
    serde_json::from_str(&text).expect("JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The slow server's CPU per message, µs: far above what the tick
/// resolution of a one-second round can blur (see the test).
const BURN_US: f64 = 5000.0;
/// Fewer messages than this in a round fail the cost test.
const MIN_MESSAGES: f64 = 20.0;

#[test]
fn the_slowed_server_costs_more_cpu_per_message_and_nothing_is_left_behind() {
    let mark = unique_mark("cost");
    let dir = scratch(&mark);
    let json = dir.join("run.json");
    let json_s = json.to_str().expect("path");
    let [a, b] = servers(&mark, BURN_US as u32);
    let run = wsload(&[
        "compare", "--server", &a, "--server", &b, "--rounds", "2", "--json", json_s, "echo", "-c",
        "2", "-d", "1s", "--warmup", "100ms", "--grace", "500ms",
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(marked(&mark), Vec::<u32>::new(), "processes left behind");
    let doc = read_json(&json);
    let results = doc["scenarios"][0]["servers"].as_array().expect("servers");
    let [wsd, slow] = &results[..] else {
        panic!("two servers: {doc}")
    };
    assert_eq!(
        (&wsd["name"], &slow["name"]),
        (&"wsd".into(), &"slow".into())
    );
    // The slow server burns BURN_US of CPU per message (its thread's CPU
    // time, whatever the scheduling). A server's CPU is read in clock
    // ticks (10 ms) at both ends of a round's window, so a round's cost
    // per message is known to within 20 ms over its messages. With at
    // least MIN_MESSAGES a round (even a busy machine echoes that many in
    // a second; fewer fails the test), that is within 1 ms a message: the
    // slow server measures at least (18 × 5 ms − 20 ms) / 20 = 3.5 ms
    // where wsd measures at most 1 ms plus its own few µs, so the
    // comparison below always runs and can fail.
    let rounds = |r: &Value| -> Vec<(f64, f64)> {
        r["rounds"]
            .as_array()
            .expect("rounds")
            .iter()
            .map(|r| {
                (
                    f(&r["run"]["window_received"]),
                    f(&r["run"]["server"]["cpu_s"]),
                )
            })
            .collect()
    };
    for (n, cpu_s) in rounds(wsd).into_iter().chain(rounds(slow)) {
        assert!(
            n >= MIN_MESSAGES,
            "{n} messages in a round ({cpu_s} s of server CPU): too few to measure a cost"
        );
    }
    for (n, cpu_s) in rounds(slow) {
        assert!(
            cpu_s * 1e6 + 20_000.0 >= BURN_US * (n - 2.0),
            "slow: {cpu_s} s of CPU for {n} messages of {BURN_US} µs"
        );
    }
    let (w, s) = (&wsd["summary"]["cost"], &slow["summary"]["cost"]);
    assert!(f(&s["min"]) > BURN_US / 2.0, "slow: {s}");
    assert!(f(&s["min"]) > f(&w["max"]), "wsd {w}, slow {s}");
    assert!(f(&slow["summary"]["ratio"]["cost"]) > 2.0, "{slow}");
    for r in results
        .iter()
        .flat_map(|r| r["rounds"].as_array().expect("rounds"))
    {
        assert_eq!(r["ended"], "stopped by SIGTERM", "{r}");
        let pid = r["pid"].as_u64().expect("pid");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} remains"
        );
    }
    assert!(run.stdout.contains("CPU µs/msg ÷ wsd"), "{}", run.stdout);

    // The document renders again: the same tables, and no change against itself.
    let again = wsload(&["report", json_s]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.stdout, run.stdout);
    let same = wsload(&["report", json_s, json_s]);
    assert_eq!(same.code, Some(0), "{}", same.stderr);
    assert!(
        same.stdout
            .contains("0 of 6 figures changed beyond the spread"),
        "{}",
        same.stdout
    );
    let html = dir.join("report.html");
    let svg = dir.join("svg");
    let page = wsload(&[
        "report",
        json_s,
        "--html",
        html.to_str().expect("path"),
        "--svg",
        svg.to_str().expect("path"),
    ]);
    assert_eq!(page.code, Some(0), "{}", page.stderr);
    let text = std::fs::read_to_string(&html).expect("html");
    assert_eq!(
        text.matches("<figure").count(),
        4,
        "summary, cost, latency, throughput"
    );
    for chart in ["summary", "echo-cost", "echo-latency", "echo-throughput"] {
        let svg = std::fs::read_to_string(svg.join(format!("{chart}.svg"))).expect(chart);
        assert!(svg.starts_with("<svg") && svg.contains("<text"), "{chart}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CPUs a process may run on, as /proc writes them (e.g. `0-1`).
fn cpus_allowed(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// The first two CPUs this test may use, or the only one twice.
fn two_cpus() -> (String, String) {
    let list = cpus_allowed(std::process::id());
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().expect("cpu"), b.parse().expect("cpu"));
        cpus.extend(a..=b);
    }
    let first = cpus.first().expect("a CPU").to_string();
    let second = cpus.get(1).map_or(first.clone(), u32::to_string);
    (first, second)
}

/// A wsload run in the background, its stderr read line by line.
struct Background {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    fn spawn(args: &[&str]) -> Background {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsload"));
        let mut child = die_with_this_thread(&mut cmd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wsload");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Background {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The PID of the first server wsload says it started.
    fn first_server(&mut self) -> u32 {
        let mut pid = None;
        let (lines, seen) = (&self.lines, &mut self.seen);
        wait_until("no server started", || {
            while let Ok(line) = lines.try_recv() {
                pid = line
                    .split_once("started pid ")
                    .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<u32>().ok());
                seen.push(line);
                if pid.is_some() {
                    return true;
                }
            }
            false
        });
        pid.unwrap_or_else(|| panic!("no server started; stderr:\n{}", self.stderr()))
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory preconditions; the pid is our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// Waits for the exit, failing the test once nothing made progress
    /// for [`DEADLINE`].
    fn wait(&mut self) -> std::process::ExitStatus {
        let mut status = None;
        let child = &mut self.child;
        wait_until("wsload still running", || {
            status = child.try_wait().expect("wait");
            status.is_some()
        });
        self.seen.extend(self.lines.try_iter());
        status.expect("exited")
    }

    fn stderr(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ctrl_c_stops_every_server_wsload_started_and_pins_them() {
    let mark = unique_mark("sigint");
    let [a, b] = servers(&mark, 50);
    let (server_cpu, load_cpu) = two_cpus();
    let mut run = Background::spawn(&[
        "compare",
        "--server",
        &a,
        "--server",
        &b,
        "--rounds",
        "3",
        "--server-cpus",
        &server_cpu,
        "--load-cpus",
        &load_cpu,
        "echo",
        "-c",
        "2",
        "-d",
        "20s",
    ]);
    let server_pid = run.first_server();
    // Pinned: the server to its CPU, wsload (and the threads it starts) to its own.
    assert_eq!(cpus_allowed(server_pid), server_cpu);
    assert_eq!(cpus_allowed(run.child.id()), load_cpu);
    thread::sleep(Duration::from_millis(500));
    run.signal(libc::SIGINT);
    let status = run.wait();
    assert_eq!(status.code(), Some(130), "stderr:\n{}", run.stderr());
    assert!(
        run.seen
            .iter()
            .any(|l| l.contains("interrupted; stopped 1 server")),
        "{}",
        run.stderr()
    );
    assert!(!Path::new(&format!("/proc/{server_pid}")).exists());
    assert_eq!(marked(&mark), Vec::<u32>::new(), "processes left behind");
}

#[test]
fn a_killed_wsload_takes_its_server_with_it() {
    let mark = unique_mark("sigkill");
    let [a, _] = servers(&mark, 50);
    let mut run = Background::spawn(&["compare", "--server", &a, "echo", "-c", "2", "-d", "20s"]);
    run.first_server();
    // No handler runs on SIGKILL: the kernel ends the server (PR_SET_PDEATHSIG).
    run.signal(libc::SIGKILL);
    run.wait();
    wait_until("the server outlived wsload", || marked(&mark).is_empty());
}

#[test]
fn a_server_that_cannot_start_is_reported_with_its_output() {
    let mark = unique_mark("broken");
    let broken =
        format!("broken=env WSLOAD_TEST_MARK={mark} sh -c 'echo cannot bind >&2; exit 3' {{port}}");
    let run = wsload(&["compare", "--server", &broken, "echo", "-d", "200ms"]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr
            .contains("exited before accepting a connection (exit status: 3)")
            && run.stderr.contains("cannot bind"),
        "{}",
        run.stderr
    );
    assert_eq!(marked(&mark), Vec::<u32>::new());
}

#[test]
fn a_server_missing_from_the_path_is_a_failed_row_with_its_status_and_output() {
    let mark = unique_mark("missing");
    let dir = scratch(&mark);
    let (json, html) = (dir.join("run.json"), dir.join("report.html"));
    let [good, _] = servers(&mark, 0);
    // The shell cannot find it: exit status 127, "not found" on stderr.
    let missing = format!("missing=no-such-server-{mark} --listen 127.0.0.1:{{port}}");
    let run = wsload(&[
        "compare",
        "--server",
        &good,
        "--server",
        &missing,
        "--rounds",
        "1",
        "--json",
        json.to_str().expect("path"),
        "--html",
        html.to_str().expect("path"),
        "echo",
        "-c",
        "1",
        "-d",
        "200ms",
        "--warmup",
        "0s",
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert_eq!(marked(&mark), Vec::<u32>::new(), "processes left behind");
    // The text: the row is marked, and why is said, not a 0 rate.
    let row = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("missing"))
        .unwrap_or_else(|| panic!("no row: {}", run.stdout));
    assert!(row.contains("missing FAILED"), "{row}");
    assert!(
        !row.contains('0'),
        "figures for a server that never ran: {row}"
    );
    assert!(
        run.stdout
            .contains("FAILED: missing failed in round 1: `no-such-server")
            && run.stdout.contains("(exit status: 127)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("| ") && run.stdout.contains("not found"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("no server process was sampled"),
        "{}",
        run.stdout
    );
    // The JSON.
    let doc = read_json(&json);
    assert_eq!(doc["failed"], true);
    let failed = &doc["scenarios"][0]["servers"][1];
    assert_eq!(failed["failure"]["status"], "exit status: 127", "{failed}");
    assert_eq!(failed["failure"]["round"], 1, "{failed}");
    let output = failed["failure"]["output"].as_array().expect("output");
    assert!(
        output
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("not found"))),
        "{failed}"
    );
    assert_eq!(failed["summary"]["failed_rounds"], 1, "{failed}");
    // The HTML.
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(
        page.contains("<td class=\"name failed\">missing FAILED</td>"),
        "{page}"
    );
    assert!(page.contains("(exit status: 127)"), "{page}");
    assert!(
        page.contains("<pre>") && page.contains("not found"),
        "{page}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scenario_file_runs_every_scenario_against_every_server() {
    let mark = unique_mark("file");
    let dir = scratch(&mark);
    let wsd = wsd().display().to_string();
    let file = dir.join("compare.toml");
    let toml = format!(
        r#"
rounds = 1

[[server]]
name = "one"
command = "env WSLOAD_TEST_MARK={mark} {wsd} --listen 127.0.0.1:{{port}} --log-level warn"
commands.broadcast = "env WSLOAD_TEST_MARK={mark} {wsd} --listen 127.0.0.1:{{port}} --mode broadcast --log-level warn"

[[server]]
name = "two"
command = "env WSLOAD_TEST_MARK={mark} {wsd} --listen 127.0.0.1:{{port}} --log-level warn"
commands.broadcast = "env WSLOAD_TEST_MARK={mark} {wsd} --listen 127.0.0.1:{{port}} --mode broadcast --log-level warn"

[[scenario]]
name = "echo-d4"
mode = "echo"
flags = "-c 2 --depth 4 -d 300ms --warmup 0s --grace 300ms"

[[scenario]]
name = "fanout"
mode = "broadcast"
flags = "-c 3 -R 200 -d 300ms --warmup 0s --grace 300ms"

[[scenario]]
name = "idle"
mode = "conns"
flags = "-c 20 -d 200ms"
"#
    );
    std::fs::write(&file, toml).expect("write the scenario file");
    let html = dir.join("report.html");
    let run = wsload(&[
        "compare",
        "--scenarios",
        file.to_str().expect("path"),
        "--json",
        "-",
        "--html",
        html.to_str().expect("path"),
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(marked(&mark), Vec::<u32>::new(), "processes left behind");
    let doc = run.json();
    let scenarios = doc["scenarios"].as_array().expect("scenarios");
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["echo-d4", "fanout", "idle"]);
    for s in scenarios {
        let servers = s["servers"].as_array().expect("servers");
        assert_eq!(servers.len(), 2, "{s}");
        for r in servers
            .iter()
            .flat_map(|r| r["rounds"].as_array().expect("rounds"))
        {
            let cmd = r["command"].as_str().expect("command");
            assert_eq!(
                cmd.contains("--mode broadcast"),
                s["mode"] == "broadcast",
                "{cmd}"
            );
            assert!(!cmd.contains("{port}"), "{cmd}");
        }
        assert!(
            servers[0]["summary"]["cost"]["median"].as_f64().is_some(),
            "{s}"
        );
    }
    // Idle connections cost memory, not CPU per message.
    assert!(run.stderr.contains("RSS B/conn ÷ one"), "{}", run.stderr);
    let page = std::fs::read_to_string(&html).expect("html");
    for id in ["scenario-echo-d4", "scenario-fanout", "scenario-idle"] {
        assert!(page.contains(id), "{id}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
