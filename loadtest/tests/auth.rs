//! Tokens at the upgrade: `--token` and `--jwt-key` put one in
//! `Authorization: Bearer` or, with `--token-in-query`, in `?token=`; a
//! minted JWT verifies with the key and carries the claims; no token is
//! ever printed. The server here records each request head and accepts.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;

use common::{accept_upgrade, fake_server, key_of, read_head, wsload};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use wsd::proto::frame::{decode_header, write_frame, OpCode, Parsing};

/// The request heads the recording server saw, by the path's first
/// segment (each test its own), in arrival order.
static HEADS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records the request head, accepts, and answers a Close with a Close.
fn recording(mut s: TcpStream) {
    let Some(head) = read_head(&mut s) else {
        return;
    };
    let Some(key) = key_of(&head) else { return };
    HEADS.lock().unwrap_or_else(|e| e.into_inner()).push(head);
    if !accept_upgrade(&mut s, &key, "") {
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        if let Ok(Parsing::Done { value, .. }) = decode_header(&buf) {
            if value.opcode == OpCode::Close {
                let mut out = Vec::new();
                write_frame(&mut out, OpCode::Close, &[0x03, 0xe8]);
                let _ = s.write_all(&out);
                return;
            }
        }
    }
}

/// The heads whose request line asks for `/NAME...`.
fn heads_for(name: &str) -> Vec<String> {
    let line = format!("GET /{name}");
    HEADS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|h| h.starts_with(&line))
        .cloned()
        .collect()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn a_fixed_token_goes_in_the_header_and_is_never_printed() {
    let url = format!("{}fixed", fake_server(recording));
    let token = "tok.en-123_secret";
    let run = wsload(&[
        "conns", "-c", "3", "-d", "100ms", "--token", token, "--json", "-", &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let heads = heads_for("fixed");
    assert_eq!(heads.len(), 3, "{heads:?}");
    for h in &heads {
        assert_eq!(
            header(h, "authorization"),
            Some("Bearer tok.en-123_secret"),
            "{h}"
        );
        assert!(h.starts_with("GET /fixed HTTP/1.1\r\n"), "{h}");
    }
    assert!(!run.stdout.contains("secret") && !run.stderr.contains("secret"));
    assert_eq!(
        run.json()["params"]["auth"],
        "a fixed token in Authorization: Bearer"
    );
}

#[test]
fn minted_tokens_verify_carry_the_claims_and_go_in_the_query_when_asked() {
    let dir = std::env::temp_dir().join(format!("wsload-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let key = dir.join("secret");
    std::fs::write(&key, "hush\n").expect("write the key");
    let url = format!("{}minted?room=a", fake_server(recording));
    let run = wsload(&[
        "conns",
        "-c",
        "4",
        "-d",
        "100ms",
        "--jwt-key",
        key.to_str().expect("path"),
        "--jwt-claims",
        r#"{"sub": "loadtest", "wsd": {"read": ["*"], "write": ["/a"]}}"#,
        "--token-in-query",
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let heads = heads_for("minted");
    assert_eq!(heads.len(), 4, "{heads:?}");
    let mut ids = Vec::new();
    for h in &heads {
        assert_eq!(header(h, "authorization"), None, "{h}");
        let target = h.split(' ').nth(1).expect("request target");
        let token = target
            .strip_prefix("/minted?room=a&token=")
            .unwrap_or_else(|| panic!("{target}"));
        assert!(!run.stdout.contains(token) && !run.stderr.contains(token));
        // The secret is the file less its trailing newline.
        let claims = decode::<Map<String, Value>>(
            token,
            &DecodingKey::from_secret(b"hush"),
            &Validation::new(Algorithm::HS256),
        )
        .expect("a token that verifies")
        .claims;
        assert_eq!(claims["sub"], "loadtest");
        assert_eq!(claims["wsd"]["write"][0], "/a");
        let (iat, exp) = (&claims["iat"], &claims["exp"]);
        assert_eq!(
            exp.as_u64().expect("exp") - iat.as_u64().expect("iat"),
            3600
        );
        ids.push(claims["jti"].as_str().expect("jti").to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "one token per connection: {ids:?}");
    assert_eq!(
        run.json()["params"]["auth"],
        "a HS256 JWT minted per connection, in ?token="
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_key_that_cannot_sign_the_algorithm_is_a_usage_error() {
    let dir = std::env::temp_dir().join(format!("wsload-auth-alg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let key = dir.join("secret");
    std::fs::write(&key, "hush").expect("write the key");
    let run = wsload(&[
        "conns",
        "--jwt-key",
        key.to_str().expect("path"),
        "--jwt-alg",
        "RS256",
        "ws://127.0.0.1:9/",
    ]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("does not sign RS256"), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
