//! Tokens minted by an implementation independent of the verifier: JWS
//! (RFC 7515) built by hand here, signed with RustCrypto (`hmac`, `p256`,
//! `ed25519-dalek`, `rsa`), where the verifier uses jsonwebtoken and ring.
//! Keys are generated fresh by each test run; none is committed.
//!
//! Shared by the unit tests and `benches/auth.rs` (which includes this file
//! by path).

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// base64url without padding, as JWS uses it.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key and the algorithm it signs with.
pub enum Signer {
    Hs256(Vec<u8>),
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

impl Signer {
    /// An HS256 signer with this secret.
    pub fn hs256(secret: &[u8]) -> Signer {
        Signer::Hs256(secret.to_vec())
    }

    /// A fresh P-256 key, and its public key in PEM (SPKI).
    pub fn es256() -> (Signer, String) {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (Signer::Es256(key), pem)
    }

    /// A fresh Ed25519 key, and its public key in PEM (SPKI).
    pub fn eddsa() -> (Signer, String) {
        use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePublicKey};
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (Signer::EdDsa(key), pem)
    }

    /// A 2048-bit RSA key, made once per process (generating one takes a
    /// while), and its public key in PEM: SPKI if `spki`, else PKCS#1.
    pub fn rs256(spki: bool) -> (Signer, String) {
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
        let private = KEY
            .get_or_init(|| rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap())
            .clone();
        let public = private.to_public_key();
        let pem = if spki {
            public.to_public_key_pem(LineEnding::LF).unwrap()
        } else {
            public.to_pkcs1_pem(LineEnding::LF).unwrap()
        };
        let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(private);
        (Signer::Rs256(Box::new(key)), pem)
    }

    /// The `alg` header value.
    pub fn alg(&self) -> &'static str {
        match self {
            Signer::Hs256(_) => "HS256",
            Signer::Es256(_) => "ES256",
            Signer::EdDsa(_) => "EdDSA",
            Signer::Rs256(_) => "RS256",
        }
    }

    /// The signature of `input` (the JWS signing input).
    pub fn signature(&self, input: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::{SignatureEncoding, Signer as _};
        match self {
            Signer::Hs256(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
                mac.update(input);
                mac.finalize().into_bytes().to_vec()
            }
            Signer::Es256(key) => {
                // JWS wants the fixed-size r || s (RFC 7518 §3.4), not DER.
                let sig: p256::ecdsa::Signature = key.sign(input);
                sig.to_bytes().to_vec()
            }
            Signer::EdDsa(key) => key.sign(input).to_bytes().to_vec(),
            Signer::Rs256(key) => key.sign(input).to_vec(),
        }
    }

    /// A compact JWS of `header` and `claims` (JSON texts), signed.
    pub fn sign(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let sig = self.signature(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// A token with the usual header (`{"alg":...,"typ":"JWT"}`).
    pub fn token(&self, claims: &str) -> String {
        self.sign(
            &format!(r#"{{"alg":"{}","typ":"JWT"}}"#, self.alg()),
            claims,
        )
    }
}
