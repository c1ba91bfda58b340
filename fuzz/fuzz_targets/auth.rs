//! Access control at the door (`wsd::auth`): the token's place in an
//! upgrade request, and its verification, on arbitrary requests and
//! tokens, with one HS256 key.
//!
//! Input layout:
//! - byte 0, flags: bit 0 anonymous read; bit 1 an audience (`wsd`) is
//!   required; bit 2 an issuer (`me`); bits 3-4 how the token is made (0:
//!   the raw field as it is, 1: header and claims signed with the key, 2:
//!   signed with another key, 3: signed with the key, then one byte of the
//!   signing input flipped); bits 5-6 where it goes (0: `?token=`, 1:
//!   `Authorization: Bearer`, 2: both, 3: nowhere);
//! - byte 1: the leeway in seconds;
//! - bytes 2-5: the clock, as a signed offset (little-endian i32) from
//!   1,700,000,000;
//! - the rest, cut at 0xff bytes: the path, the JOSE header, the claims,
//!   the raw token, and extra header lines for the request head.
//!
//! Properties, for every input:
//! - nothing panics: `authorize`, `verify`, `token_of`, and the head parsed
//!   by the handshake parser and `authorization_header`;
//! - an admission's room is the target's path without its query, and it
//!   may read;
//! - an admission with a token only if that token's HMAC, recomputed here
//!   with RustCrypto (not the verifier's ring), matches, its header says
//!   HS256, and it has not expired;
//! - an admission without a token only with anonymous read, and then
//!   without write;
//! - a refusal answers 401 or 403;
//! - the `Authorization` value the handshake parser captures (what the
//!   reactor checks) is the one `authorization_header` finds.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use wsd::auth::{authorization_header, authorize, room_of, token_of, verify, Key, KeySet, Policy};
use wsd::proto::handshake::{parse_request, Head};
use wsd::proto::Parsing;

/// The fuzz target's key. Not a secret of any deployment.
const KEY: &[u8; 32] = b"wsd-fuzz-key-0123456789abcdefghi";
const OTHER: &[u8; 32] = b"wsd-fuzz-other-key-0123456789abc";
const BASE: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&leeway, rest)) = rest.split_first() else {
        return;
    };
    let Some((clock, rest)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let now = u64::try_from(BASE + i64::from(i32::from_le_bytes(*clock))).unwrap_or(0);
    let mut fields = rest.split(|&b| b == 0xff);
    let mut field = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (path, header, claims, raw, extra) = (field(), field(), field(), field(), field());

    let keys = KeySet::new(vec![Key::parse("fuzz", KEY).unwrap()]);
    let policy = Policy {
        leeway: std::time::Duration::from_secs(leeway.into()),
        audience: (flags & 2 != 0).then(|| "wsd".to_string()),
        issuer: (flags & 4 != 0).then(|| "me".to_string()),
        anonymous_read: flags & 1 != 0,
    };
    let token = match (flags >> 3) & 3 {
        0 => raw.clone(),
        1 => sign(KEY, &header, &claims, false),
        2 => sign(OTHER, &header, &claims, false),
        _ => sign(KEY, &header, &claims, true),
    };
    let place = (flags >> 5) & 3;
    let target = if place == 0 || place == 2 {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}token={token}")
    } else {
        path
    };
    let bearer = format!("Bearer {token}");
    let authorization = (place == 1 || place == 2).then_some(bearer.as_bytes());

    check(&target, authorization, &keys, &policy, now);
    let _ = verify(&raw, &keys, &policy, now);

    // The same request as bytes, through the handshake parser.
    let mut head = format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if authorization.is_some() {
        head.push_str(&format!("Authorization: {bearer}\r\n"));
    }
    head.push_str(&extra);
    head.push_str("\r\n\r\n");
    if let Ok(Parsing::Done {
        value: Head::Upgrade(req),
        offset,
    }) = parse_request(head.as_bytes(), 64 * 1024)
    {
        // The reactor takes the value the handshake parser captured; it is
        // the one header a second parse finds (a repeated one is a 400).
        let auth = authorization_header(&head.as_bytes()[..offset]);
        assert_eq!(auth, Ok(req.authorization), "{head:?}");
        check(req.path, req.authorization, &keys, &policy, now);
    }
    let _ = authorization_header(extra.as_bytes());
});

/// A compact JWS of `header` and `claims`, HMAC-SHA256 signed with `key`;
/// with `flip`, one byte of the signing input is changed after signing.
fn sign(key: &[u8], header: &str, claims: &str, flip: bool) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let mut input = input.into_bytes();
    if flip {
        if let Some(b) = input.iter_mut().find(|b| b.is_ascii_alphanumeric()) {
            *b = if *b == b'A' { b'B' } else { b'A' };
        }
    }
    format!("{}.{sig}", String::from_utf8(input).unwrap())
}

/// Whether `token` is a compact JWS whose HS256 signature `KEY` made.
fn signed_by_key(token: &str) -> bool {
    let Some((input, sig)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(input.as_bytes());
    if mac.verify_slice(&sig).is_err() {
        return false;
    }
    let header = input.split('.').next().unwrap_or_default();
    let header = URL_SAFE_NO_PAD.decode(header).unwrap_or_default();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap_or_default();
    header["alg"] == "HS256"
}

fn check(target: &str, authorization: Option<&[u8]>, keys: &KeySet, policy: &Policy, now: u64) {
    let token = token_of(target, authorization);
    match authorize(target, authorization, keys, policy, now) {
        Ok(admitted) => {
            assert_eq!(admitted.room, room_of(target));
            assert!(!admitted.room.contains('?'));
            assert!(admitted.rights.read);
            match token.expect("admitted, so the token was found") {
                Some(token) => {
                    assert!(
                        signed_by_key(&token),
                        "admitted a token the key did not sign"
                    );
                    assert!(admitted.rights.expires_at.is_some_and(|at| at > now));
                }
                None => {
                    assert!(policy.anonymous_read, "admitted without a token");
                    assert!(!admitted.rights.write);
                }
            }
        }
        Err(refusal) => assert!(matches!(refusal.status(), 401 | 403)),
    }
}
