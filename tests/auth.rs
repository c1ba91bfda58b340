//! Access control over real sockets: tokens minted by an independent
//! implementation (RustCrypto, `src/auth/mint.rs`), each refusal with its
//! status and challenge, room patterns, write denied, expiry of an open
//! connection, anonymous read. Rate limits are in `auth_limits.rs`, key
//! rotation by SIGHUP in `auth_reload.rs`.

mod common;
#[allow(dead_code)]
#[path = "../src/auth/mint.rs"]
mod mint;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use mint::Signer;
use wsd::auth::{KeySlot, Policy};
use wsd::config::AuthConfig;
use wsd::{Config, Mode};

const SECRET: &[u8; 32] = b"an-hs256-secret-of-32-bytes-long";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server in `mode` that checks tokens with the HS256 `SECRET`. The
/// slot reads the key file when it opens, so the file's directory goes
/// once that is done.
fn guarded(mode: Mode, policy: Policy) -> TestServer {
    let files = Scratch::new();
    let path = files.write("secret", SECRET);
    TestServer::start(Config {
        auth: AuthConfig {
            keys: Some(KeySlot::open(&[path]).unwrap()),
            policy,
            ..AuthConfig::default()
        },
        ..config(mode)
    })
}

/// An HS256 token with `read` and `write` patterns (JSON arrays), valid
/// for a minute.
fn token(read: &str, write: &str) -> String {
    Signer::hs256(SECRET).token(&format!(
        r#"{{"exp":{},"wsd":{{"read":{read},"write":{write}}}}}"#,
        now() + 60
    ))
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn denied(addr: std::net::SocketAddr, reason: &str) -> f64 {
    metric(
        addr,
        &format!("wsd_auth_denied_total{{reason=\"{reason}\"}}"),
    )
}

/// The answer to an upgrade of `path` with `extra` header lines.
fn answer(server: &TestServer, path: &str, extra: &str) -> HttpResponse {
    Client::try_upgrade(server.addr(), path, extra).1
}

#[test]
fn each_refusal_answers_its_status_and_challenge_before_any_websocket_byte() {
    let _w = watchdog();
    let server = guarded(
        Mode::Echo,
        Policy {
            audience: Some("wsd".into()),
            issuer: Some("https://auth.example".into()),
            ..Policy::default()
        },
    );
    let signer = Signer::hs256(SECRET);
    let good_claims = |extra: &str| {
        format!(
            r#"{{"exp":{},"aud":"wsd","iss":"https://auth.example","wsd":{{"read":["/a"],"write":["/a"]}}{extra}}}"#,
            now() + 60
        )
    };
    let forged = Signer::hs256(&[b'f'; 32]).token(&good_claims(""));
    let none = format!(
        "{}.{}.",
        mint::b64(br#"{"alg":"none"}"#),
        mint::b64(good_claims("").as_bytes())
    );
    let expired = signer.token(&format!(
        r#"{{"exp":{},"aud":"wsd","iss":"https://auth.example","wsd":{{"read":["/a"]}}}}"#,
        now() - 60
    ));
    let no_exp =
        signer.token(r#"{"aud":"wsd","iss":"https://auth.example","wsd":{"read":["/a"]}}"#);
    let future = signer.token(&good_claims(&format!(r#","nbf":{}"#, now() + 600)));
    let other_aud = signer.token(&format!(
        r#"{{"exp":{},"aud":"other","iss":"https://auth.example","wsd":{{"read":["/a"]}}}}"#,
        now() + 60
    ));
    let other_iss = signer.token(&format!(
        r#"{{"exp":{},"aud":"wsd","iss":"https://evil.example","wsd":{{"read":["/a"]}}}}"#,
        now() + 60
    ));
    let good = signer.token(&good_claims(""));
    let invalid = "Bearer error=\"invalid_token\"";
    for (name, path, extra, status, challenge, reason) in [
        (
            "no token",
            "/a".to_string(),
            String::new(),
            401,
            "Bearer",
            "missing",
        ),
        (
            "garbage",
            "/a".into(),
            bearer("not-a-token"),
            401,
            invalid,
            "malformed",
        ),
        (
            "forged",
            "/a".into(),
            bearer(&forged),
            401,
            invalid,
            "bad_signature",
        ),
        (
            "alg none",
            "/a".into(),
            bearer(&none),
            401,
            invalid,
            "algorithm_not_allowed",
        ),
        (
            "expired",
            "/a".into(),
            bearer(&expired),
            401,
            invalid,
            "expired",
        ),
        (
            "no exp",
            "/a".into(),
            bearer(&no_exp),
            401,
            invalid,
            "no_expiry",
        ),
        (
            "nbf ahead",
            "/a".into(),
            bearer(&future),
            401,
            invalid,
            "not_yet_valid",
        ),
        (
            "audience",
            "/a".into(),
            bearer(&other_aud),
            401,
            invalid,
            "wrong_audience",
        ),
        (
            "issuer",
            "/a".into(),
            bearer(&other_iss),
            401,
            invalid,
            "wrong_issuer",
        ),
        (
            "both ways",
            format!("/a?token={good}"),
            bearer(&good),
            401,
            invalid,
            "malformed",
        ),
        (
            "other room",
            "/b".into(),
            bearer(&good),
            403,
            "Bearer error=\"insufficient_scope\"",
            "forbidden",
        ),
    ] {
        let before = denied(server.addr(), reason);
        let (mut c, resp) = Client::try_upgrade(server.addr(), &path, &extra);
        assert_eq!(resp.status, status, "{name}: {resp:?}");
        assert_eq!(resp.header("www-authenticate"), Some(challenge), "{name}");
        assert!(resp.header("sec-websocket-accept").is_none(), "{name}");
        // The answer is all: then the server closes.
        c.expect_eof();
        assert_eq!(denied(server.addr(), reason), before + 1.0, "{name}");
    }
    // The good token, by header and by query, is admitted.
    assert_eq!(answer(&server, "/a", &bearer(&good)).status, 101);
    let mut c = Client::connect_path(server.addr(), &format!("/a?token={good}&x=1"));
    c.assert_echo("hello");
    // Every reason and limit is printed, from 0.
    let body = String::from_utf8(http_get(server.addr(), "/metrics").body).unwrap();
    for label in ["reason=\"wrong_issuer\"", "limit=\"bytes\""] {
        assert!(body.contains(label), "{label} missing");
    }
    server.stop();
}

#[test]
fn room_patterns_admit_exact_rooms_prefixes_and_everything() {
    let _w = watchdog();
    let server = guarded(Mode::Broadcast, Policy::default());
    let t = token(r#"["/news","/chat/*"]"#, "[]");
    for (path, status) in [
        ("/news", 101),
        ("/news/", 403),
        ("/newsroom", 403),
        ("/chat/a", 101),
        ("/chat/a/b", 101),
        ("/chat/", 101),
        ("/chat", 403),
        ("/chatter", 403),
        ("/", 403),
    ] {
        assert_eq!(answer(&server, path, &bearer(&t)).status, status, "{path}");
    }
    let every = token(r#"["*"]"#, "[]");
    for path in ["/", "/x/y", "/news"] {
        assert_eq!(answer(&server, path, &bearer(&every)).status, 101, "{path}");
    }
    let nothing = Signer::hs256(SECRET).token(&format!(r#"{{"exp":{}}}"#, now() + 60));
    assert_eq!(answer(&server, "/news", &bearer(&nothing)).status, 403);
    let bad_pattern = token(r#"["/chat*"]"#, "[]");
    assert_eq!(answer(&server, "/chat", &bearer(&bad_pattern)).status, 401);
    server.stop();
}

#[test]
fn the_query_token_never_becomes_part_of_the_room() {
    let _w = watchdog();
    let server = guarded(Mode::Broadcast, Policy::default());
    let t = token(r#"["/r"]"#, r#"["/r"]"#);
    // One joins by query, one by header: the same room.
    let mut by_query = Client::connect_path(server.addr(), &format!("/r?token={t}"));
    let (mut by_header, resp) = Client::try_upgrade(server.addr(), "/r", &bearer(&t));
    assert_eq!(resp.status, 101);
    wait_connections_open(server.addr(), 3);
    by_header.send_text("one room");
    assert_eq!(by_query.recv_text(), "one room");
    assert_eq!(by_header.recv_text(), "one room");
    server.stop();
}

#[test]
fn a_data_message_without_write_is_closed_1008_in_both_modes() {
    let _w = watchdog();
    for mode in [Mode::Broadcast, Mode::Echo] {
        let server = guarded(mode, Policy::default());
        let reader = token(r#"["/r"]"#, r#"["/other"]"#);
        let (mut c, resp) = Client::try_upgrade(server.addr(), "/r", &bearer(&reader));
        assert_eq!(resp.status, 101);
        // Control frames need no right.
        c.send_frame(true, OP_PING, b"p");
        assert_eq!(c.recv(), Message::Pong(b"p".to_vec()), "{mode:?}");
        c.send_text("may I?");
        match c.recv() {
            Message::Close(code, reason) => {
                assert_eq!(code, Some(1008), "{mode:?}");
                assert_eq!(reason, b"not allowed to publish", "{mode:?}");
            }
            other => panic!("{mode:?}: expected Close 1008, got {other:?}"),
        }
        c.send_close(1000, b"");
        c.expect_eof();
        // A writer in the same room speaks.
        let writer = token(r#"["/r"]"#, r#"["/r"]"#);
        let (mut w, resp) = Client::try_upgrade(server.addr(), "/r", &bearer(&writer));
        assert_eq!(resp.status, 101);
        w.assert_echo("yes");
        server.stop();
    }
}

#[test]
fn an_open_connection_is_closed_1008_when_its_token_expires() {
    let _w = watchdog();
    let server = guarded(
        Mode::Echo,
        Policy {
            leeway: Duration::from_secs(1),
            ..Policy::default()
        },
    );
    // Expires within two seconds (exp plus the leeway).
    let t = Signer::hs256(SECRET).token(&format!(
        r#"{{"exp":{},"wsd":{{"read":["*"],"write":["*"]}}}}"#,
        now() + 1
    ));
    let (mut c, resp) = Client::try_upgrade(server.addr(), "/r", &bearer(&t));
    assert_eq!(resp.status, 101);
    c.assert_echo("still valid");
    match c.recv() {
        Message::Close(code, reason) => {
            assert_eq!(code, Some(1008));
            assert_eq!(reason, b"token expired");
        }
        other => panic!("expected Close 1008, got {other:?}"),
    }
    c.send_close(1008, b"");
    c.expect_eof();
    // And a new upgrade with it is refused.
    assert_eq!(answer(&server, "/r", &bearer(&t)).status, 401);
    server.stop();
}

#[test]
fn anonymous_read_admits_without_a_token_but_never_to_write() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        auth: AuthConfig {
            policy: Policy {
                anonymous_read: true,
                ..Policy::default()
            },
            ..AuthConfig::default()
        },
        ..config(Mode::Broadcast)
    });
    let mut reader = Client::connect_path(server.addr(), "/feed");
    reader.send_frame(true, OP_PING, b"");
    assert_eq!(reader.recv(), Message::Pong(Vec::new()));
    // Without a key, any token present is refused rather than ignored.
    assert_eq!(answer(&server, "/feed", &bearer("a.b.c")).status, 401);
    reader.send_text("spam");
    match reader.recv() {
        Message::Close(code, reason) => {
            assert_eq!(code, Some(1008));
            assert_eq!(reason, b"not allowed to publish");
        }
        other => panic!("expected Close 1008, got {other:?}"),
    }
    server.stop();
}

#[test]
fn without_keys_everything_is_as_before() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = Client::connect_path(server.addr(), "/r?token=anything");
    c.assert_echo("open");
    assert_eq!(
        metric(server.addr(), "wsd_auth_denied_total{reason=\"missing\"}"),
        0.0
    );
    server.stop();
}

#[test]
fn a_token_whose_write_covers_the_room_publishes_through_the_api() {
    let _w = watchdog();
    let server = guarded(Mode::Broadcast, Policy::default());
    let (mut member, resp) = Client::try_upgrade(
        server.addr(),
        "/chat",
        &bearer(&token(r#"["/chat"]"#, "[]")),
    );
    assert_eq!(resp.status, 101);
    let publish = |token: &str| -> u16 {
        let body = b"from the backend";
        let mut c = Client::connect_raw(server.addr());
        c.send_raw(
            format!(
                "POST /publish/chat HTTP/1.1\r\nHost: wsd\r\n{}Content-Type: text/plain\r\n\
                 Content-Length: {}\r\n\r\n",
                bearer(token),
                body.len()
            )
            .as_bytes(),
        );
        c.send_raw(body);
        c.read_http_response().status
    };
    assert_eq!(publish(&token("[]", r#"["/chat"]"#)), 200);
    assert_eq!(member.recv_text(), "from the backend");
    // Valid, but its write does not cover /chat: 403. Not a token, or an
    // expired one: 401. Nothing of these reaches the room.
    assert_eq!(publish(&token(r#"["*"]"#, r#"["/other/*"]"#)), 403);
    assert_eq!(publish("not-a-token"), 401);
    let expired = Signer::hs256(SECRET).token(&format!(
        r#"{{"exp":{},"wsd":{{"read":[],"write":["*"]}}}}"#,
        now() - 3600
    ));
    assert_eq!(publish(&expired), 401);
    member.assert_ping(b"only the allowed publish arrived");
    let stats = server.stop();
    assert_eq!(stats.api.published, 1);
}
