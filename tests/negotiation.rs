//! What the upgrade negotiates beyond the RFC minimum: the `Origin` check
//! (`allowed_origins`) and the subprotocol choice (`protocols`).

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
