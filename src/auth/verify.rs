//! A token, verified: signature, then claims, to [`Rights`].
//!
//! The claims wsd reads (RFC 7519 §4.1), each a JSON number of Unix
//! seconds where it is a time:
//!
//! - `exp`, required: refused from `exp + leeway` on. The connection's
//!   rights expire at that same second.
//! - `nbf`, optional: refused while `now + leeway < nbf`.
//! - `iat`, optional: refused while `now + leeway < iat` (issued in the
//!   future: a clock far off, or a forgery).
//! - `iss`: with an issuer configured, it must be that string.
//! - `aud`: with an audience configured, it must be that string or an
//!   array containing it. Without one, `aud` is not looked at.
//! - `wsd`: `{"read": [patterns], "write": [patterns]}` (see
//!   [`super::rights`]), both optional; any other member is malformed, so a
//!   misspelt `"wirte"` fails loudly instead of silently granting nothing.
//!   A token without `wsd` grants no room.
//!
//! Other claims (`sub`, `jti`, ...) are ignored. A duplicate member is
//! malformed, so two parsers can never disagree on what a token says.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Number;

use super::keys::{Alg, KeySet};
use super::rights::{Patterns, Rights};
use super::source::MAX_TOKEN_LEN;
use super::Refusal;

/// The default clock skew allowed on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// How tokens are judged, besides the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Clock skew allowed on `exp`, `nbf` and `iat` (whole seconds count).
    pub leeway: Duration,
    /// The `aud` a token must name, if any (`--auth-audience`).
    pub audience: Option<String>,
    /// The `iss` a token must have, if any (`--auth-issuer`).
    pub issuer: Option<String>,
    /// `--auth-anonymous read`: no token means read every room, write none.
    /// A token that is present is still verified, and refused if bad.
    pub anonymous_read: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            leeway: DEFAULT_LEEWAY,
            audience: None,
            issuer: None,
            anonymous_read: false,
        }
    }
}

/// The rights of a request with `token` (or without one): anonymous rights
/// if there is none and the policy allows it, [`Refusal::Missing`] if it
/// does not, else [`verify`].
pub fn admit(
    token: Option<&str>,
    keys: &KeySet,
    policy: &Policy,
    now: u64,
) -> Result<Rights, Refusal> {
    match token {
        Some(token) => verify(token, keys, policy, now),
        None if policy.anonymous_read => Ok(Rights::anonymous()),
        None => Err(Refusal::Missing),
    }
}

/// Verifies a compact JWS token against `keys` at `now` (Unix seconds) and
/// returns its rights. Never panics; the length is bounded by
/// [`MAX_TOKEN_LEN`] before anything is decoded, and what is allocated is
/// in proportion to it.
///
/// The token's `alg` picks which keys are tried (every key of that
/// algorithm, in order, until one verifies); no key of it is
/// [`Refusal::AlgorithmNotAllowed`], none verifying is
/// [`Refusal::BadSignature`]. Claims are read only after the signature
/// verifies (see the module doc for each).
pub fn verify(token: &str, keys: &KeySet, policy: &Policy, now: u64) -> Result<Rights, Refusal> {
    if token.len() > MAX_TOKEN_LEN || !compact_shape(token) {
        return Err(Refusal::Malformed);
    }
    let alg = header_alg(token)?;
    let (input, signature) = token.rsplit_once('.').ok_or(Refusal::Malformed)?;
    let mut tried = false;
    let mut verified = false;
    for key in keys.for_alg(alg) {
        tried = true;
        // The algorithm is the key's own, never the token's: the token's
        // `alg` only picked which keys to try.
        match jsonwebtoken::crypto::verify(
            signature,
            input.as_bytes(),
            key.decoding_key(),
            key.alg().jwt(),
        ) {
            Ok(true) => {
                verified = true;
                break;
            }
            // This key did not verify it: try the next.
            Ok(false) => continue,
            Err(e) => match e.kind() {
                ErrorKind::Base64(_) => return Err(Refusal::Malformed),
                _ => continue,
            },
        }
    }
    if !tried {
        return Err(Refusal::AlgorithmNotAllowed);
    }
    if !verified {
        return Err(Refusal::BadSignature);
    }
    // Only now, signed, are the claims read.
    let payload = input.split('.').nth(1).unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Refusal::Malformed)?;
    let Object(claims) = serde_json::from_slice(&json).map_err(|_| Refusal::Malformed)?;
    check(claims, policy, now)
}

/// Three base64url segments (RFC 7515 §7.1), nothing else: no padding, no
/// whitespace, no JWE's five parts. The header and payload are never
/// empty; the signature may be (an `alg: none` token), so that such a token
/// is refused for its algorithm.
fn compact_shape(token: &str) -> bool {
    let mut parts = 0;
    for part in token.split('.') {
        parts += 1;
        let base64url = part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !base64url || (part.is_empty() && parts < 3) {
            return false;
        }
    }
    parts == 3
}

/// A struct read from a JSON object only. Serde's derive also accepts an
/// array of the fields in order (`["HS256"]` for a header, `[["*"],["*"]]`
/// for `wsd`), which a JOSE header or a claims set never is (RFC 7519
/// §7.2): such a token must be malformed, not read.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OnlyMaps<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OnlyMaps<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(OnlyMaps(PhantomData)).map(Object)
    }
}

/// What wsd reads of the JOSE header before choosing keys.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    /// Extensions that must be understood (RFC 7515 §4.1.11): wsd
    /// understands none, so any is refused.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// The token's algorithm, if wsd verifies it.
fn header_alg(token: &str) -> Result<Alg, Refusal> {
    let encoded = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| Refusal::Malformed)?;
    let Object(header): Object<Header<'_>> =
        serde_json::from_slice(&json).map_err(|_| Refusal::Malformed)?;
    if header.crit.is_some() {
        return Err(Refusal::Malformed);
    }
    Alg::from_header(&header.alg).ok_or(Refusal::AlgorithmNotAllowed)
}

/// The claims wsd reads; see the module doc.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    exp: Option<Number>,
    #[serde(default)]
    nbf: Option<Number>,
    #[serde(default)]
    iat: Option<Number>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    wsd: Option<Object<WsdClaim>>,
}

/// `aud`: one string or an array of them (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self, want: &str) -> bool {
        match self {
            Audience::One(aud) => aud == want,
            Audience::Many(auds) => auds.iter().any(|a| a == want),
        }
    }
}

/// The `wsd` claim.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WsdClaim {
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
}

/// A NumericDate (RFC 7519 §2) as whole Unix seconds: fractions are cut,
/// times before 1970 are 0, and times past `u64::MAX` are `u64::MAX`.
fn seconds(n: &Number) -> u64 {
    if let Some(s) = n.as_u64() {
        return s;
    }
    if n.as_i64().is_some() {
        // A negative integer: before 1970.
        return 0;
    }
    // A float; `as` saturates (negative to 0, huge to u64::MAX).
    n.as_f64().map_or(0, |f| f.floor() as u64)
}

/// The claims of a verified token, judged at `now`.
fn check(claims: Claims, policy: &Policy, now: u64) -> Result<Rights, Refusal> {
    let wsd = claims.wsd.map(|Object(wsd)| wsd).unwrap_or_default();
    let read = Patterns::parse(&wsd.read).ok_or(Refusal::Malformed)?;
    let write = Patterns::parse(&wsd.write).ok_or(Refusal::Malformed)?;
    let exp = claims.exp.as_ref().map(seconds).ok_or(Refusal::NoExpiry)?;
    let leeway = policy.leeway.as_secs();
    let expires_at = exp.saturating_add(leeway);
    if now >= expires_at {
        return Err(Refusal::Expired);
    }
    let skewed = now.saturating_add(leeway);
    let future = |t: &Option<Number>| t.as_ref().is_some_and(|t| skewed < seconds(t));
    if future(&claims.nbf) || future(&claims.iat) {
        return Err(Refusal::NotYetValid);
    }
    if let Some(want) = &policy.issuer {
        if claims.iss.as_deref() != Some(want.as_str()) {
            return Err(Refusal::WrongIssuer);
        }
    }
    if let Some(want) = &policy.audience {
        if !claims.aud.as_ref().is_some_and(|aud| aud.names(want)) {
            return Err(Refusal::WrongAudience);
        }
    }
    Ok(Rights::new(read, write, Some(expires_at)))
}

#[cfg(test)]
mod tests;
