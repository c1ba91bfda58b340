//! What the upgrade negotiates beyond the RFC minimum: the `Origin` check
//! (`allowed_origins`) and the subprotocol choice (`protocols`), which
//! `require_protocol` (`--require-protocol`) makes a condition of the upgrade.

mod common;

use std::collections::BTreeMap;

use common::*;
use wsd::{Config, Mode};

fn with_origins(origins: &[&str]) -> Config {
    Config {
        allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
        ..config(Mode::Echo)
    }
}

fn with_protocols(protocols: &[&str]) -> Config {
    Config {
        protocols: protocols.iter().map(|s| s.to_string()).collect(),
        ..config(Mode::Echo)
    }
}

// ---------------------------------------------------------------------------
// Origin

#[test]
fn allowed_origin_in_any_ascii_case_is_upgraded() {
    let _w = watchdog();
    let server = TestServer::start(with_origins(&["https://ok.example"]));
    for origin in [
        "https://ok.example",
        "HTTPS://OK.EXAMPLE",
        "https://Ok.Example",
    ] {
        let (mut c, resp) =
            Client::try_upgrade(server.addr(), "/", &format!("Origin: {origin}\r\n"));
        assert_eq!(resp.status, 101, "{origin}: {resp:?}");
        c.assert_echo(origin);
        c.close();
    }
    let stats = server.stop();
    assert_eq!(stats.handshakes, 3);
    assert!(stats.handshake_failures.is_empty(), "{stats:?}");
}

#[test]
fn other_or_missing_origin_is_403_and_closed() {
    let _w = watchdog();
    let server = TestServer::start(with_origins(&["https://ok.example"]));
    let refusals = [
        "Origin: https://evil.example\r\n",
        "Origin: http://ok.example\r\n",
        "Origin: https://ok.example:8443\r\n",
        "Origin: https://ok.example.evil.example\r\n",
        "Origin: null\r\n",
        "",
    ];
    for extra in refusals {
        let (mut c, resp) = Client::try_upgrade(server.addr(), "/", extra);
        assert_eq!(resp.status, 403, "{extra:?}: {resp:?}");
        // The answer, and then EOF: nothing else.
        c.expect_eof();
    }
    let stats = server.stop();
    assert_eq!(stats.handshakes, 0);
    assert_eq!(
        stats.handshake_failures,
        BTreeMap::from([(403, refusals.len() as u64)])
    );
}

#[test]
fn empty_origin_list_allows_any_origin_or_none() {
    let _w = watchdog();
    let server = TestServer::start(with_origins(&[]));
    for extra in [
        "Origin: https://anything.example\r\n",
        "Origin: null\r\n",
        "",
    ] {
        let (mut c, resp) = Client::try_upgrade(server.addr(), "/", extra);
        assert_eq!(resp.status, 101, "{extra:?}: {resp:?}");
        c.assert_echo("hi");
        c.close();
    }
}

#[test]
fn several_allowed_origins_each_work() {
    let _w = watchdog();
    let server = TestServer::start(with_origins(&["https://a.example", "https://b.example"]));
    for (origin, status) in [
        ("https://a.example", 101),
        ("https://b.example", 101),
        ("https://c.example", 403),
    ] {
        let (_c, resp) = Client::try_upgrade(server.addr(), "/", &format!("Origin: {origin}\r\n"));
        assert_eq!(resp.status, status, "{origin}");
    }
}

// ---------------------------------------------------------------------------
// Subprotocols

fn chosen(resp: &HttpResponse) -> Vec<&str> {
    Client::all_headers(resp, "sec-websocket-protocol")
}

#[test]
fn clients_first_supported_offer_is_chosen() {
    let _w = watchdog();
    let server = TestServer::start(with_protocols(&["chat", "superchat"]));
    let (mut c, resp) = Client::try_upgrade(
        server.addr(),
        "/",
        "Sec-WebSocket-Protocol: foo, superchat, chat\r\n",
    );
    assert_eq!(resp.status, 101, "{resp:?}");
    assert_eq!(chosen(&resp), ["superchat"], "{resp:?}");
    c.assert_echo("spoken in superchat");
    c.close();

    let (_c, resp) = Client::try_upgrade(server.addr(), "/", "Sec-WebSocket-Protocol: chat\r\n");
    assert_eq!(chosen(&resp), ["chat"], "{resp:?}");
}

#[test]
fn offers_spread_over_two_header_lines_are_one_list() {
    let _w = watchdog();
    let server = TestServer::start(with_protocols(&["chat", "superchat"]));
    let (mut c, resp) = Client::try_upgrade(
        server.addr(),
        "/",
        "Sec-WebSocket-Protocol: foo\r\nSec-WebSocket-Protocol: superchat, chat\r\n",
    );
    assert_eq!(resp.status, 101, "{resp:?}");
    assert_eq!(chosen(&resp), ["superchat"], "{resp:?}");
    c.assert_echo("two lines");
    c.close();

    let (_c, resp) = Client::try_upgrade(
        server.addr(),
        "/",
        "Sec-WebSocket-Protocol: foo, bar\r\nSec-WebSocket-Protocol: chat\r\n",
    );
    assert_eq!(chosen(&resp), ["chat"], "{resp:?}");
}

#[test]
fn no_supported_offer_is_101_without_a_protocol() {
    let _w = watchdog();
    let server = TestServer::start(with_protocols(&["chat", "superchat"]));
    // Names are compared exactly: "Chat" is not "chat".
    for offer in ["foo", "foo, bar", "Chat", "chat2"] {
        let (mut c, resp) = Client::try_upgrade(
            server.addr(),
            "/",
            &format!("Sec-WebSocket-Protocol: {offer}\r\n"),
        );
        assert_eq!(resp.status, 101, "{offer}: {resp:?}");
        assert!(chosen(&resp).is_empty(), "{offer}: {resp:?}");
        c.assert_echo(offer);
        c.close();
    }
    // No offer at all: no header either.
    let (_c, resp) = Client::try_upgrade(server.addr(), "/", "");
    assert!(chosen(&resp).is_empty(), "{resp:?}");
}

#[test]
fn without_configured_protocols_the_header_is_never_sent() {
    let _w = watchdog();
    let server = TestServer::echo();
    for extra in [
        "Sec-WebSocket-Protocol: chat\r\n",
        "Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Protocol: x\r\n",
        "",
    ] {
        let (mut c, resp) = Client::try_upgrade(server.addr(), "/", extra);
        assert_eq!(resp.status, 101, "{extra:?}: {resp:?}");
        assert!(chosen(&resp).is_empty(), "{extra:?}: {resp:?}");
        c.assert_echo("plain");
        c.close();
    }
}

#[test]
fn origin_and_protocol_are_checked_together() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        allowed_origins: vec!["https://ok.example".into()],
        protocols: vec!["chat".into()],
        ..config(Mode::Echo)
    });
    let (_c, resp) = Client::try_upgrade(
        server.addr(),
        "/",
        "Origin: https://ok.example\r\nSec-WebSocket-Protocol: chat\r\n",
    );
    assert_eq!(resp.status, 101, "{resp:?}");
    assert_eq!(chosen(&resp), ["chat"]);
    let (_c, resp) = Client::try_upgrade(
        server.addr(),
        "/",
        "Origin: https://evil.example\r\nSec-WebSocket-Protocol: chat\r\n",
    );
    assert_eq!(
        resp.status, 403,
        "a good protocol does not excuse the origin"
    );
    assert!(chosen(&resp).is_empty(), "{resp:?}");
}

fn requiring(protocols: &[&str]) -> Config {
    Config {
        require_protocol: true,
        ..with_protocols(protocols)
    }
}

/// The upgrade with `extra` header lines must be refused 400 with a body
/// that names every accepted protocol, then closed.
fn expect_protocol_refusal(addr: std::net::SocketAddr, extra: &str, accepted: &str) {
    let (mut c, resp) = Client::try_upgrade(addr, "/", extra);
    assert_eq!(resp.status, 400, "{extra:?}: {resp:?}");
    assert!(chosen(&resp).is_empty(), "{resp:?}");
    let body = String::from_utf8_lossy(&resp.body);
    assert!(
        body.contains(accepted),
        "{extra:?}: the body lists {accepted}: {body:?}"
    );
    c.expect_eof();
}

#[test]
fn required_protocol_refuses_upgrades_offering_none_accepted_with_400_naming_them() {
    let _w = watchdog();
    let server = TestServer::start(requiring(&["chat", "superchat"]));
    let offers = [
        "Sec-WebSocket-Protocol: foo\r\n",
        "Sec-WebSocket-Protocol: foo, bar\r\nSec-WebSocket-Protocol: baz\r\n",
        "Sec-WebSocket-Protocol: Chat\r\n",
        "Sec-WebSocket-Protocol: ,\r\n",
        "",
    ];
    for extra in offers {
        expect_protocol_refusal(server.addr(), extra, "chat, superchat");
    }
    // One accepted name anywhere in the offer is enough.
    let (mut c, resp) = Client::try_upgrade(
        server.addr(),
        "/",
        "Sec-WebSocket-Protocol: foo\r\nSec-WebSocket-Protocol: bar, superchat\r\n",
    );
    assert_eq!(resp.status, 101, "{resp:?}");
    assert_eq!(chosen(&resp), ["superchat"], "{resp:?}");
    c.assert_echo("required and offered");
    c.close();
    let stats = server.stop();
    assert_eq!(
        stats.handshake_failures,
        BTreeMap::from([(400, offers.len() as u64)])
    );
    assert_eq!(stats.handshakes, 1);
}

#[test]
fn require_protocol_flag_refuses_other_offers_and_needs_a_protocol() {
    let _w = watchdog();
    let wsd = WsdProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--require-protocol",
        "--protocol",
        "chat.v2",
    ]);
    expect_protocol_refusal(wsd.addrs[0], "Sec-WebSocket-Protocol: chat\r\n", "chat.v2");
    let (mut c, resp) =
        Client::try_upgrade(wsd.addrs[0], "/", "Sec-WebSocket-Protocol: chat.v2\r\n");
    assert_eq!(chosen(&resp), ["chat.v2"], "{resp:?}");
    c.assert_echo("v2");
    c.close();

    let run = run_wsd_to_exit(
        &["--listen", "127.0.0.1:0", "--require-protocol"],
        &[],
        IO_TIMEOUT,
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("--require-protocol") && lines[0].contains("--protocol"),
        "{lines:?}"
    );
}

#[test]
fn protocol_names_must_be_tokens() {
    let _w = watchdog();
    for bad in ["", "a b", "chat,superchat", "x\"y"] {
        let run = run_wsd_to_exit(
            &["--listen", "127.0.0.1:0", "--protocol", bad],
            &[],
            IO_TIMEOUT,
        );
        assert_eq!(run.status.code(), Some(2), "{bad:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{bad:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{bad:?}: {}", run.stderr);
    }
}
