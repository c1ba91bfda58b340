//! Failures are reported, counted, and make wsload exit non-zero.

mod common;

use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{corrupting_echo, die_with_this_thread, fake_server, n, read_key, wsload, DEADLINE};

/// A port with nothing listening: bound, then closed.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn a_refused_port_exits_non_zero_with_a_clear_message() {
    let url = format!("ws://127.0.0.1:{}/", dead_port());
    let run = wsload(&["echo", "-c", "2", "-d", "1s", &url]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    assert!(run.stderr.contains(&url), "{}", run.stderr);
}

#[test]
fn a_run_with_no_connection_measures_no_window_and_no_busy_wsload() {
    // Every connect refused: the threads end before the window opens.
    // Timed anyway, that window was a few microseconds, and the CPU of the
    // threads ending over it read as wsload saturated (28-97% per thread).
    let url = format!("ws://127.0.0.1:{}/", dead_port());
    let run = wsload(&[
        "echo", "-c", "4", "-t", "2", "-d", "1s", "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["connections", "opened"]), 0);
    assert_eq!(v["window_s"].as_f64(), Some(0.0), "{v}");
    assert_eq!(v["self"]["cpu_s"].as_f64(), Some(0.0), "{v}");
    assert_eq!(v["self"]["saturated"], false, "{v}");
}

/// Runs wsload with `args` to its end and returns its own CPU time (from
/// `wait4`, so no other child of this process counts) and its wall time.
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child, which std's wait would not let us measure"
)]
fn cpu_and_wall(args: &[&str]) -> (Duration, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsload"));
    let child = die_with_this_thread(&mut cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wsload");
    let pid = child.id() as libc::pid_t;
    let began = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain old data that wait4 only writes.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: our own child's pid, valid pointers to a status and a rusage.
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        assert!(rc >= 0, "wait4: {}", std::io::Error::last_os_error());
        if rc == pid {
            let tv = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
            };
            return (tv(ru.ru_utime) + tv(ru.ru_stime), began.elapsed());
        }
        if began.elapsed() > DEADLINE {
            // SAFETY: a plain signal to our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above; reaps it after the kill.
            unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            panic!("wsload {args:?} still running after {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn threads_waiting_on_connections_that_never_open_sleep() {
    // TCP connects (the backlog takes it) but no 101 ever comes: every
    // connection waits out its connect timeout in poll, not in a loop.
    let (l, url) = silent_listener();
    let (cpu, wall) = cpu_and_wall(&[
        "echo",
        "-c",
        "8",
        "-t",
        "2",
        "-d",
        "1s",
        "--connect-timeout",
        "1500ms",
        &url,
    ]);
    drop(l);
    assert!(wall >= Duration::from_millis(1500), "{wall:?}");
    // Generous: a busy loop would use a core per thread, near 200%.
    let ratio = cpu.as_secs_f64() / wall.as_secs_f64();
    assert!(ratio < 0.3, "wsload used {cpu:?} of CPU in {wall:?}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(wsload(&["echo", "https://127.0.0.1:9/"]).code, Some(2));
    assert_eq!(
        wsload(&["echo", "-s", "65MiB", "ws://127.0.0.1:9/"]).code,
        Some(2)
    );
    assert_eq!(
        wsload(&["echo", "ws://127.0.0.1:9/", "ws://127.0.0.1:8/"]).code,
        Some(2)
    );
    assert_eq!(wsload(&["rate", "ws://127.0.0.1:9/"]).code, Some(2));
}

#[test]
fn zero_windows_and_timeouts_are_usage_errors() {
    // Port 9 has no server: a run that started would fail with 1, not 2.
    for args in [
        &["echo", "-d", "0s"][..],
        &["rate", "-R", "100", "--duration", "0ms"],
        &["broadcast", "-d", "0"],
        &["churn", "-d", "0s"],
        &["echo", "--connect-timeout", "0s"],
    ] {
        let mut argv = args.to_vec();
        argv.push("ws://127.0.0.1:9/");
        let run = wsload(&argv);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{args:?}: {}", run.stderr);
        assert!(errors[0].contains("must be above zero"), "{}", run.stderr);
    }
}

#[test]
fn a_corrupted_echo_is_counted_and_fails_the_run() {
    let url = fake_server(corrupting_echo);
    let run = wsload(&[
        "echo", "-c", "1", "-d", "500ms", "--warmup", "0s", "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let v = run.json();
    let mismatches = n(&v, &["mismatches"]);
    assert!(mismatches > 0);
    assert_eq!(mismatches, n(&v, &["received"]));
    assert_eq!(v["failed"], true);
    assert!(run.stderr.contains("payload mismatch"), "{}", run.stderr);
}

/// Answers every upgrade with a 404.
fn not_found(mut s: TcpStream) {
    if read_key(&mut s).is_some() {
        let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

#[test]
fn a_refused_handshake_prints_the_status_line() {
    let url = fake_server(not_found);
    let run = wsload(&["echo", "-c", "2", "-d", "500ms", "--json", "-", &url]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("HTTP/1.1 404 Not Found"),
        "{}",
        run.stderr
    );
    let v = run.json();
    assert_eq!(n(&v, &["errors", "handshake status 404", "count"]), 2);
}

/// A listener nobody accepts on: connections wait in its backlog, so one
/// can tell afterwards whether anything connected.
fn silent_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let url = format!("ws://{}/", l.local_addr().expect("addr"));
    (l, url)
}

fn nothing_connected(l: &TcpListener) -> bool {
    matches!(l.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[test]
fn a_usage_error_shows_the_usage_of_the_mode_that_was_run() {
    let (a, ua) = silent_listener();
    let (b, ub) = silent_listener();
    let run = wsload(&[
        "compare",
        "echo",
        "--rounds",
        "1",
        "-d",
        "100ms",
        "--connect-timeout",
        "200ms",
        "--server-pid",
        "1",
        &ua,
        &ub,
    ]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("2 URLs but 1 --server-pid"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Usage: wsload compare echo [OPTIONS] [URL]..."),
        "{}",
        run.stderr
    );
    assert!(nothing_connected(&a) && nothing_connected(&b));
    let run = wsload(&["broadcast", "--server-pid", "1", "--server-pid", "2", &ua]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr
            .contains("Usage: wsload broadcast [OPTIONS] <URL>..."),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unreadable_server_pid_stops_compare_before_any_load() {
    let (a, ua) = silent_listener();
    let (b, ub) = silent_listener();
    // Above any pid_max Linux allows (2^22), so never a process.
    let run = wsload(&[
        "compare",
        "conns",
        "--rounds",
        "1",
        "-d",
        "100ms",
        "--connect-timeout",
        "200ms",
        "--server-pid",
        "1",
        "--server-pid",
        "999999999",
        &ua,
        &ub,
    ]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("PID 999999999 of ws://127.0.0.1:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Usage: wsload compare conns"),
        "{}",
        run.stderr
    );
    assert!(nothing_connected(&a) && nothing_connected(&b));
}

#[test]
fn help_lists_only_the_flags_a_mode_uses() {
    let help = |args: &[&str]| {
        let run = wsload(args);
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        run.stdout
    };
    let h = help(&["compare", "echo", "--help"]);
    assert!(!h.contains("--csv") && !h.contains("--hgrm"), "{h}");
    assert!(h.contains("--rounds") && h.contains("--server-pid"), "{h}");
    let h = help(&["conns", "--help"]);
    for flag in [
        "--warmup",
        "--grace",
        "--csv",
        "--size",
        "compare",
        "broadcast",
    ] {
        assert!(!h.contains(flag), "conns --help lists {flag}:\n{h}");
    }
    let h = help(&["echo", "--help"]);
    for word in ["compare", "broadcast", "subscriber"] {
        assert!(!h.contains(word), "echo --help mentions {word}:\n{h}");
    }
}

#[test]
fn a_corrupted_tiny_echo_is_caught_by_its_content() {
    let url = fake_server(corrupting_echo);
    let run = wsload(&[
        "echo", "-c", "1", "-d", "300ms", "--warmup", "0s", "-s", "4", "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert!(n(&v, &["received"]) > 0);
    assert_eq!(n(&v, &["mismatches"]), n(&v, &["received"]));
    assert!(run.stderr.contains("corrupted content"), "{}", run.stderr);
}
