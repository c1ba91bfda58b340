//! The wsd binary as a daemon sees it: `--listen` with host names (resolved
//! once at start, every address listened on once), and usage errors that
//! are one line and exit status 2.

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
