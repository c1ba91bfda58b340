//! The `wsd` binary: it starts, says where it listens, echoes, and refuses
//! bad flags with exit code 2.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use common::*;

const WSD: &str = env!("CARGO_BIN_EXE_wsd");

/// A running `wsd`, killed (by its PID, through `Child`) when dropped.
struct Wsd {
    child: Child,
    addr: SocketAddr,
    banner: String,
}

impl Wsd {
    fn spawn(args: &[&str]) -> Wsd {
        let mut cmd = Command::new(WSD);
        cmd.args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(args)
            .stderr(Stdio::inherit());
        Wsd::spawn_command(cmd)
    }

    /// Starts `cmd`, which must run wsd with `--listen 127.0.0.1:0`.
    fn spawn_command(mut cmd: Command) -> Wsd {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn wsd");
        let stdout = child.stdout.take().unwrap();
        // Read the banner on a thread, so a silent binary fails the test
        // after a timeout instead of blocking it.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut wsd = Wsd {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            banner: String::new(),
        };
        wsd.banner = rx.recv_timeout(IO_TIMEOUT).expect("no banner from wsd");
        let url = wsd
            .banner
            .strip_prefix("wsd listening on ws://")
            .unwrap_or_else(|| panic!("unexpected banner {:?}", wsd.banner));
        let addr = url.split_whitespace().next().unwrap();
        wsd.addr = addr.parse().expect("address in the banner");
        wsd
    }
}

impl Drop for Wsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `wsd` with `args` to completion (for flags that make it exit).
fn run(args: &[&str]) -> Output {
    let child = Command::new(WSD)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsd");
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(IO_TIMEOUT) {
        Ok(out) => out.expect("wait for wsd"),
        Err(_) => {
            // Still running: stop that one process by its PID.
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("wsd {args:?} did not exit");
        }
    }
}

#[test]
fn binary_starts_announces_its_address_and_echoes() {
    let _w = watchdog();
    let wsd = Wsd::spawn(&[]);
    assert!(
        wsd.banner.trim_end().ends_with("(echo mode)"),
        "{:?}",
        wsd.banner
    );
    assert!(wsd.addr.ip().is_loopback() && wsd.addr.port() != 0);
    let mut c = Client::connect(wsd.addr);
    c.assert_echo("hello from the binary");
    c.send_binary(&pattern(70_000, 1));
    assert_eq!(c.recv_binary(), pattern(70_000, 1));
    c.close();
}

#[test]
fn binary_flags_reach_the_server() {
    let _w = watchdog();
    let wsd = Wsd::spawn(&[
        "--mode",
        "broadcast",
        "--exclude-sender",
        "--max-message",
        "1KiB",
    ]);
    assert!(
        wsd.banner.trim_end().ends_with("(broadcast mode)"),
        "{:?}",
        wsd.banner
    );
    let mut a = Client::connect(wsd.addr);
    let mut b = Client::connect(wsd.addr);
    a.send_text("to b only");
    assert_eq!(b.recv_text(), "to b only");
    // a's next frame is the pong, not its own message.
    a.assert_ping(b"excluded");
    b.send_binary(&[0; 1025]);
    b.expect_close(1009);
    a.close();
}

#[test]
fn help_exits_zero_and_lists_the_flags() {
    let _w = watchdog();
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--listen", "--mode", "--max-message", "--slow-consumer"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_flags_exit_with_status_2() {
    let _w = watchdog();
    for args in [
        &["--no-such-flag"][..],
        &["--listen", "not-an-address"],
        &["--mode", "chaos"],
        &["--max-message", "lots"],
        &["--max-message", "0"],
        &["--output-high-water", "1KiB", "--output-low-water", "2KiB"],
        &["--handshake-timeout", "soon"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "wsd {args:?}");
        assert!(!out.stderr.is_empty(), "wsd {args:?} said nothing");
    }
}

#[test]
fn address_in_use_exits_with_failure() {
    let _w = watchdog();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["--listen", &addr]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}

#[test]
fn out_of_file_descriptors_delays_clients_but_loses_none() {
    let _w = watchdog();
    // 32 descriptors, of which wsd needs about 6 for itself: most of the
    // 60 clients wait in the backlog while accept fails with EMFILE, and
    // are accepted as the first ones finish and free theirs.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -n 32 && exec {WSD} --listen 127.0.0.1:0 --log-level warn"
        ))
        .stderr(Stdio::piped());
    let mut wsd = Wsd::spawn_command(cmd);
    let stderr = wsd.child.stderr.take().unwrap();
    const CLIENTS: usize = 60;
    let (tx, rx) = mpsc::channel();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut c = Client::connect_raw(wsd.addr);
        let key = c.fresh_key();
        c.send_raw(upgrade_request(&key).as_bytes());
        clients.push((i, c, key));
    }
    for (i, mut c, key) in clients {
        let tx = tx.clone();
        std::thread::spawn(move || {
            // Waiting in the backlog may take a while; the watchdog bounds it.
            c.stream
                .set_read_timeout(Some(common::TEST_DEADLINE))
                .unwrap();
            c.expect_upgrade(&key);
            c.assert_echo(&format!("client {i}"));
            c.close();
            let _ = tx.send(i);
        });
    }
    drop(tx);
    let mut done = 0;
    while done < CLIENTS {
        rx.recv()
            .unwrap_or_else(|_| panic!("a client thread failed after {done} finished"));
        done += 1;
    }
    drop(wsd);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut { stderr }, &mut log).unwrap();
    assert!(
        log.contains("accept failed"),
        "EMFILE never happened: {log}"
    );
}
