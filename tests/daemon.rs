//! The wsd binary as a daemon sees it: `--listen` with host names (resolved
//! once at start, every address listened on once), usage errors that are
//! one line and exit status 2, and log lines: an RFC 3339 UTC timestamp
//! first, or under the journal (`JOURNAL_STREAM` naming stderr) a syslog
//! priority prefix and no timestamp.

mod common;

use std::net::SocketAddr;

use common::*;

/// Whether this machine can listen on IPv6 loopback.
fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// The addresses `localhost` has here, with `port`.
fn localhost(port: u16) -> Vec<SocketAddr> {
    use std::net::ToSocketAddrs;
    let mut addrs: Vec<SocketAddr> = ("localhost", port).to_socket_addrs().unwrap().collect();
    addrs.dedup();
    addrs
}

#[test]
fn listen_takes_a_host_name_and_serves_on_each_of_its_addresses() {
    let _w = watchdog();
    let wsd = WsdProcess::start(&["--listen", "localhost:0"]);
    let expected = localhost(0);
    assert_eq!(wsd.addrs.len(), expected.len(), "{}", wsd.banner);
    for (got, want) in wsd.addrs.iter().zip(&expected) {
        assert_eq!(got.ip(), want.ip(), "{}", wsd.banner);
        assert!(got.ip().is_loopback());
        let mut c = Client::connect(*got);
        c.assert_echo(&format!("via {got}"));
        c.close();
    }
}

#[test]
fn an_address_named_twice_is_listened_on_once() {
    let _w = watchdog();
    // A port that was free a moment ago: naming it twice must not fail
    // with "address in use" against ourselves.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let by_name = format!("localhost:{port}");
    let by_ip = format!("127.0.0.1:{port}");
    let wsd = WsdProcess::start(&["--listen", &by_name, "--listen", &by_ip]);
    assert_eq!(wsd.addrs, localhost(port), "{}", wsd.banner);
    let mut c = Client::connect(format!("127.0.0.1:{port}").parse().unwrap());
    c.assert_echo("once");
    c.close();
}

#[test]
fn ip_literals_still_work_v4_and_v6() {
    let _w = watchdog();
    let mut args = vec!["--listen", "127.0.0.1:0"];
    if ipv6_loopback() {
        args.extend(["--listen", "[::1]:0"]);
    } else {
        eprintln!("no IPv6 loopback here: checking IPv4 only");
    }
    let wsd = WsdProcess::start(&args);
    assert_eq!(wsd.addrs.len(), args.len() / 2, "{}", wsd.banner);
    for &a in &wsd.addrs {
        let mut c = Client::connect(a);
        c.assert_echo(&a.to_string());
        c.close();
    }
}

#[test]
fn a_listen_value_that_gives_no_address_is_one_error_line_and_exit_2() {
    let _w = watchdog();
    for bad in ["localhost", "localhost:99999", "127.0.0.1", "[::1]", ":"] {
        let run = run_wsd_to_exit(&["--listen", bad], &[], IO_TIMEOUT);
        assert_eq!(run.status.code(), Some(2), "{bad}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{bad}: no banner");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{bad}: one line: {lines:?}");
        assert!(
            lines[0].starts_with("wsd: ")
                && lines[0].contains(bad)
                && lines[0].contains("HOST:PORT"),
            "{bad}: {lines:?}"
        );
    }
}

#[test]
fn a_port_in_use_names_that_address_and_hints_at_reuse_port() {
    let _w = watchdog();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let run = run_wsd_to_exit(
        &["--listen", "127.0.0.1:0", "--listen", &busy],
        &[],
        IO_TIMEOUT,
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    let line = lines[0];
    assert!(
        line.starts_with(&format!("wsd: cannot listen on {busy}: ")),
        "{line}"
    );
    assert!(line.contains("--reuse-port"), "{line}");
    assert!(
        !line.contains("127.0.0.1:0"),
        "names only the address that failed: {line}"
    );
}

#[test]
fn flags_that_cannot_apply_or_zero_durations_are_one_line_and_exit_2() {
    let _w = watchdog();
    for (args, says) in [
        (&["--handshake-timeout", "0s"][..], "above zero"),
        (&["--close-timeout", "0ms"][..], "above zero"),
        (&["--drain-timeout", "0"][..], "above zero"),
        (
            &["--exclude-sender"][..],
            "--exclude-sender needs --mode broadcast",
        ),
        (
            &["--deflate-window-bits", "9"][..],
            "--deflate-window-bits needs --deflate",
        ),
        (&["--allow-origin", "foo"][..], "--allow-origin"),
    ] {
        let mut argv = vec!["--listen", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let run = run_wsd_to_exit(&argv, &[], IO_TIMEOUT);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}: no banner");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

// ---------------------------------------------------------------------------
// Log lines

/// The instant an RFC 3339 UTC timestamp with milliseconds
/// (`2024-05-01T12:34:56.789Z`) names, in seconds since the epoch; `None`
/// if `stamp` is not exactly that form.
fn parse_timestamp(stamp: &str) -> Option<u64> {
    let b = stamp.as_bytes();
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    if b.len() != shape.len()
        || !shape.bytes().zip(b).all(|(s, &c)| {
            if s == b'd' {
                c.is_ascii_digit()
            } else {
                s == c
            }
        })
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stamp[r].parse::<u64>().unwrap();
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // Days from the civil date, the other way round from the server's
    // conversion: count whole years and months.
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut days: u64 = (1970..y).map(|y| if leap(y) { 366 } else { 365 }).sum();
    let month_days = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += month_days[..(m - 1) as usize].iter().sum::<u64>() + d - 1;
    Some(days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn log_lines_on_a_pipe_start_with_a_utc_timestamp() {
    let _w = watchdog();
    let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0"]);
    let before = now_secs();
    wsd.signal("HUP");
    let line = wsd.stderr_line_containing("SIGHUP: nothing to reload", IO_TIMEOUT);
    let after = now_secs();
    let (stamp, rest) = line.split_once(' ').unwrap();
    let at = parse_timestamp(stamp).unwrap_or_else(|| panic!("no timestamp: {line:?}"));
    assert!(rest.starts_with("INFO  SIGHUP"), "{line:?}");
    // The clock is UTC and the date is today: within a second of the
    // instants around the signal (whole seconds, so one either side).
    assert!(
        before.saturating_sub(1) <= at && at <= after + 1,
        "{stamp} is not now ({before}..{after})"
    );
}

/// Starts wsd with stderr written to a fresh file and `JOURNAL_STREAM` set
/// by `journal_stream(the file's device, inode)`; sends SIGHUP and returns
/// the log line it wrote. The process is killed at the end.
fn log_line_with_journal_stream(name: &str, journal_stream: impl Fn(u64, u64) -> String) -> String {
    use std::io::BufRead;
    use std::os::unix::fs::MetadataExt;
    let path = std::env::temp_dir().join(format!("wsd-{}-{name}.log", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wsd"))
        .args(["--listen", "127.0.0.1:0"])
        .env("JOURNAL_STREAM", journal_stream(meta.dev(), meta.ino()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(file)
        .spawn()
        .unwrap();
    // The banner says the signal handler is installed.
    let mut banner = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.starts_with("wsd listening on"), "{banner:?}");
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let until = std::time::Instant::now() + IO_TIMEOUT;
    let line = loop {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Some(line) = text.lines().find(|l| l.contains("SIGHUP")) {
            break line.to_string();
        }
        if std::time::Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no SIGHUP line in {text:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // Child::kill is SIGKILL to this child's PID only.
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    line
}

#[test]
fn under_the_journal_log_lines_carry_a_priority_and_no_timestamp() {
    let _w = watchdog();
    let line = log_line_with_journal_stream("journal", |dev, ino| format!("{dev}:{ino}"));
    assert_eq!(line, "<6>INFO  SIGHUP: nothing to reload");
}

#[test]
fn a_journal_stream_naming_another_file_is_not_believed() {
    let _w = watchdog();
    // Inherited from a parent whose stderr was the journal: not ours.
    let line = log_line_with_journal_stream("elsewhere", |dev, ino| format!("{dev}:{}", ino + 1));
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(parse_timestamp(stamp).is_some(), "{line:?}");
    assert_eq!(rest, "INFO  SIGHUP: nothing to reload");
}

#[test]
fn the_test_timestamp_reader_knows_the_calendar() {
    assert_eq!(parse_timestamp("1970-01-01T00:00:00.000Z"), Some(0));
    assert_eq!(
        parse_timestamp("2024-02-29T23:59:59.999Z"),
        Some(1_709_251_199)
    );
    assert_eq!(parse_timestamp("2024-02-29 23:59:59.999Z"), None);
    assert_eq!(parse_timestamp("2024-02-29T23:59:59Z"), None);
}
