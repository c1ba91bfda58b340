//! Credentials for servers that want a token at the upgrade: `--token T`,
//! the same on every connection, or `--jwt-key FILE --jwt-claims JSON`, a
//! JWT minted afresh for each connection, so the handshake's cost includes
//! the server's verification of a token it has not seen. Either goes in
//! `Authorization: Bearer T`, or with `--token-in-query` in `?token=T`, as a
//! browser must send it (it cannot set headers on a WebSocket).
//!
//! A key file is an HMAC secret (its bytes, one trailing newline removed:
//! HS256 unless `--jwt-alg` says HS384 or HS512) or a PEM private key in
//! PKCS#8 (RSA: RS256 unless `--jwt-alg` says another RSA algorithm; EC
//! P-256: ES256, P-384 with `--jwt-alg ES384`; Ed25519: EdDSA). Tokens are
//! signed by the `jsonwebtoken` crate, on ring like the rest of wsload.
//!
//! A token is never printed: [`Secret`] and [`Minter`] show as `<redacted>`.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

/// How long a minted token is valid when the claims give no `exp`.
pub const DEFAULT_LIFETIME_S: u64 = 3600;

/// A token given on the command line; its Debug form hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// The secret itself, to put on the wire (and nowhere else).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Parses `--token`: visible ASCII, as a header value and a query can carry.
pub fn parse_token(s: &str) -> Result<Secret, String> {
    if s.is_empty() {
        return Err("the token is empty".into());
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        // The token itself is not repeated: it may be a real one.
        return Err("the token holds a space, a control character or non-ASCII".into());
    }
    Ok(Secret(s.to_string()))
}

/// What kind of key a `--jwt-key` file holds, and so which algorithms it
/// signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// An HMAC secret: HS256, HS384, HS512.
    Hmac,
    /// RSA: RS256, RS384, RS512, PS256, PS384, PS512.
    Rsa,
    /// ECDSA: ES256 (P-256), ES384 (P-384).
    Ec,
    /// Ed25519: EdDSA.
    Ed,
}

impl Family {
    /// The algorithm used when `--jwt-alg` is not given.
    pub fn default_alg(self) -> Algorithm {
        match self {
            Family::Hmac => Algorithm::HS256,
            Family::Rsa => Algorithm::RS256,
            Family::Ec => Algorithm::ES256,
            Family::Ed => Algorithm::EdDSA,
        }
    }

    /// Whether a key of this kind signs with `alg`.
    pub fn signs(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Family::Hmac => matches!(alg, HS256 | HS384 | HS512),
            Family::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Family::Ec => matches!(alg, ES256 | ES384),
            Family::Ed => alg == EdDSA,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Hmac => "an HMAC secret",
            Family::Rsa => "an RSA key",
            Family::Ec => "an EC key",
            Family::Ed => "an Ed25519 key",
        }
    }
}

/// One of jsonwebtoken's readers of a PEM private key.
type FromPem = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;

/// A `--jwt-key` file, read and parsed.
#[derive(Clone)]
pub struct JwtKey {
    key: EncodingKey,
    family: Family,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtKey({:?}, <redacted>)", self.family)
    }
}

impl JwtKey {
    /// A key from a file's bytes: PEM if it starts with `-----BEGIN`, an
    /// HMAC secret otherwise (one trailing newline removed).
    pub fn from_bytes(bytes: &[u8]) -> Result<JwtKey, String> {
        if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            let tries: [(Family, FromPem); 3] = [
                (Family::Ed, EncodingKey::from_ed_pem),
                (Family::Ec, EncodingKey::from_ec_pem),
                (Family::Rsa, EncodingKey::from_rsa_pem),
            ];
            for (family, from_pem) in tries {
                if let Ok(key) = from_pem(bytes) {
                    return Ok(JwtKey { key, family });
                }
            }
            return Err(
                "a PEM file, but not a private key jsonwebtoken reads: give an RSA, EC (P-256, P-384) \
                 or Ed25519 private key in PKCS#8 (`openssl pkcs8 -topk8 -nocrypt -in KEY` converts one)"
                    .into(),
            );
        }
        let secret = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if secret.is_empty() {
            return Err("the HMAC secret is empty".into());
        }
        Ok(JwtKey {
            key: EncodingKey::from_secret(secret),
            family: Family::Hmac,
        })
    }
}

/// Parses `--jwt-key FILE`: reads and parses the file.
pub fn parse_jwt_key(s: &str) -> Result<JwtKey, String> {
    let path = Path::new(s);
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    JwtKey::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses `--jwt-alg`.
pub fn parse_jwt_alg(s: &str) -> Result<Algorithm, String> {
    s.parse().map_err(|_| {
        format!("'{s}' is not a JWT algorithm (HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)")
    })
}

/// Parses `--jwt-claims`: a JSON object.
pub fn parse_claims(s: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the claims must be a JSON object, like '{\"sub\": \"load\"}'".into()),
        Err(e) => Err(format!("the claims are not JSON: {e}")),
    }
}

/// Signs a fresh token for each connection. Each has its own `jti` (unless
/// the claims give one), so no two are the same string and a server that
/// caches what it verified still verifies each.
pub struct Minter {
    key: EncodingKey,
    alg: Algorithm,
    claims: Map<String, Value>,
    /// Tokens minted so far: the next `jti`.
    minted: AtomicU64,
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Minter({:?}, <redacted>)", self.alg)
    }
}

impl Minter {
    /// A minter with `key`, signing with `alg` (the key's default if
    /// `None`), the claims `claims`. Fails if the key cannot sign with
    /// `alg` (an EC P-384 key asked for ES256, say): one token is signed
    /// here to find out.
    pub fn new(
        key: &JwtKey,
        alg: Option<Algorithm>,
        claims: Map<String, Value>,
    ) -> Result<Minter, String> {
        let alg = alg.unwrap_or(key.family.default_alg());
        if !key.family.signs(alg) {
            return Err(format!(
                "--jwt-key holds {}, which does not sign {alg:?}",
                key.family.name()
            ));
        }
        let m = Minter {
            key: key.key.clone(),
            alg,
            claims,
            minted: AtomicU64::new(0),
        };
        m.mint_at(now_s())
            .map_err(|e| format!("--jwt-key cannot sign {alg:?}: {e}"))?;
        Ok(m)
    }

    /// The algorithm tokens are signed with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// A token signed now.
    pub fn mint(&self) -> Result<String, String> {
        self.mint_at(now_s())
    }

    /// A token whose `iat` is `now` (seconds since the Unix epoch), whose
    /// `exp` is an hour later and whose `jti` is `wsload-N`, N counting the
    /// tokens minted, unless the claims give them.
    fn mint_at(&self, now: u64) -> Result<String, String> {
        let mut claims = self.claims.clone();
        let n = self.minted.fetch_add(1, Ordering::Relaxed);
        claims
            .entry("jti")
            .or_insert_with(|| Value::from(format!("wsload-{n}")));
        claims.entry("iat").or_insert(Value::from(now));
        claims
            .entry("exp")
            .or_insert(Value::from(now + DEFAULT_LIFETIME_S));
        jsonwebtoken::encode(&Header::new(self.alg), &claims, &self.key).map_err(|e| e.to_string())
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where a token comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `--token`: the same on every connection.
    Fixed(Secret),
    /// `--jwt-key`: minted for each connection.
    Mint(Arc<Minter>),
}

/// The credentials every upgrade request carries.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The token.
    pub source: Source,
    /// In `?token=` rather than `Authorization: Bearer`.
    pub in_query: bool,
}

impl PartialEq for Credentials {
    /// The same token the same way; minters are equal only to themselves.
    fn eq(&self, other: &Credentials) -> bool {
        self.in_query == other.in_query
            && match (&self.source, &other.source) {
                (Source::Fixed(a), Source::Fixed(b)) => a == b,
                (Source::Mint(a), Source::Mint(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for Credentials {}

impl Credentials {
    /// The token for one connection.
    pub fn token(&self) -> Result<String, String> {
        match &self.source {
            Source::Fixed(s) => Ok(s.0.clone()),
            Source::Mint(m) => m.mint().map_err(|e| format!("cannot mint a token: {e}")),
        }
    }

    /// How the token travels, for the report (never the token).
    pub fn describe(&self) -> String {
        let how = if self.in_query {
            "?token="
        } else {
            "Authorization: Bearer"
        };
        match &self.source {
            Source::Fixed(_) => format!("a fixed token in {how}"),
            Source::Mint(m) => format!("a {:?} JWT minted per connection, in {how}", m.alg()),
        }
    }
}

/// `path` with `token=T` added to its query, `T` percent-encoded (RFC
/// 3986: all but unreserved characters).
pub fn with_query_token(path: &str, token: &str) -> String {
    let mut out = String::with_capacity(path.len() + token.len() + 8);
    out.push_str(path);
    out.push(if path.contains('?') { '&' } else { '?' });
    out.push_str("token=");
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};
    use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519};

    fn claims(json: &str) -> Map<String, Value> {
        parse_claims(json).expect("claims")
    }

    /// Decodes `token` with `key`, checking the signature and `alg`.
    fn verify(token: &str, key: &DecodingKey, alg: Algorithm) -> Map<String, Value> {
        let mut v = Validation::new(alg);
        // The hour's lifetime is checked by hand, from a fixed `iat`.
        v.validate_exp = false;
        decode::<Map<String, Value>>(token, key, &v)
            .expect("a valid token")
            .claims
    }

    #[test]
    fn an_hmac_token_carries_the_claims_and_an_exp_an_hour_on() {
        let key = JwtKey::from_bytes(b"s3cret\n").expect("key");
        assert_eq!(key.family, Family::Hmac);
        let m = Minter::new(
            &key,
            None,
            claims(r#"{"sub": "load", "wsd": {"read": ["*"]}}"#),
        )
        .expect("minter");
        assert_eq!(m.alg(), Algorithm::HS256);
        let t = m.mint_at(1_000_000).expect("token");
        // One trailing newline is not part of the secret.
        let got = verify(&t, &DecodingKey::from_secret(b"s3cret"), Algorithm::HS256);
        assert_eq!(got["sub"], "load");
        assert_eq!(got["wsd"]["read"][0], "*");
        assert_eq!(got["iat"], 1_000_000);
        assert_eq!(got["exp"], 1_000_000 + DEFAULT_LIFETIME_S);
        // Each token is its own, even within one second.
        let again = m.mint_at(1_000_000).expect("token");
        assert_ne!(again, t);
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        assert!(
            decode::<Map<String, Value>>(&t, &DecodingKey::from_secret(b"s3cret\n"), &v).is_err()
        );
    }

    #[test]
    fn an_exp_in_the_claims_is_kept() {
        let key = JwtKey::from_bytes(b"k").expect("key");
        let m = Minter::new(
            &key,
            Some(Algorithm::HS512),
            claims(r#"{"exp": 4000000000}"#),
        )
        .expect("minter");
        let t = m.mint().expect("token");
        let got = verify(&t, &DecodingKey::from_secret(b"k"), Algorithm::HS512);
        assert_eq!(got["exp"], 4_000_000_000u64);
    }

    #[test]
    fn pem_keys_sign_with_their_algorithm_and_verify_with_the_public_key() {
        for (alg, kind, family) in [
            (&PKCS_ECDSA_P256_SHA256, None, Family::Ec),
            (&PKCS_ECDSA_P384_SHA384, Some(Algorithm::ES384), Family::Ec),
            (&PKCS_ED25519, None, Family::Ed),
        ] {
            let pair = KeyPair::generate_for(alg).expect("key pair");
            let key = JwtKey::from_bytes(pair.serialize_pem().as_bytes()).expect("PEM key");
            assert_eq!(key.family, family);
            let m = Minter::new(&key, kind, claims(r#"{"sub": "pem"}"#)).expect("minter");
            let t = m.mint().expect("token");
            let public = pair.public_key_pem();
            let dk = match family {
                Family::Ec => DecodingKey::from_ec_pem(public.as_bytes()),
                _ => DecodingKey::from_ed_pem(public.as_bytes()),
            }
            .expect("public key");
            assert_eq!(verify(&t, &dk, m.alg())["sub"], "pem");
            // Another key pair's public key does not verify it.
            let other = KeyPair::generate_for(alg).expect("key pair");
            let wrong = match family {
                Family::Ec => DecodingKey::from_ec_pem(other.public_key_pem().as_bytes()),
                _ => DecodingKey::from_ed_pem(other.public_key_pem().as_bytes()),
            }
            .expect("public key");
            let v = Validation::new(m.alg());
            assert!(decode::<Map<String, Value>>(&t, &wrong, &v).is_err());
        }
    }

    #[test]
    fn an_algorithm_the_key_cannot_sign_is_refused_up_front() {
        let hmac = JwtKey::from_bytes(b"k").expect("key");
        let e = Minter::new(&hmac, Some(Algorithm::ES256), Map::new()).expect_err("refused");
        assert!(
            e.contains("an HMAC secret, which does not sign ES256"),
            "{e}"
        );
        // The right family, the wrong curve: found by signing once.
        let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("key pair");
        let key = JwtKey::from_bytes(p384.serialize_pem().as_bytes()).expect("PEM key");
        assert!(Minter::new(&key, None, Map::new()).is_err());
    }

    #[test]
    fn bad_inputs_say_what_is_wrong_without_the_token() {
        assert!(JwtKey::from_bytes(b"\n").is_err());
        let e =
            JwtKey::from_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .expect_err("not a key");
        assert!(e.contains("PKCS#8"), "{e}");
        assert!(parse_claims("[1]").is_err());
        assert!(parse_claims("{").is_err());
        assert!(parse_jwt_alg("none").is_err());
        assert!(parse_token("a b").is_err());
        let secret = parse_token("abc.def").expect("token");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        let c = Credentials {
            source: Source::Fixed(secret),
            in_query: false,
        };
        assert!(!format!("{c:?}").contains("abc"));
        assert!(!c.describe().contains("abc"));
    }

    #[test]
    fn query_tokens_are_percent_encoded_and_joined() {
        assert_eq!(with_query_token("/", "a.b_c-d~"), "/?token=a.b_c-d~");
        assert_eq!(
            with_query_token("/room?x=1", "a+b/="),
            "/room?x=1&token=a%2Bb%2F%3D"
        );
    }
}
