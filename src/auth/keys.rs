//! The `--auth-key` files: the keys tokens are verified with.
//!
//! A file is one of:
//!
//! - a PEM public key (it starts with `-----BEGIN`): `PUBLIC KEY` (SPKI) for
//!   RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA), or `RSA PUBLIC KEY`
//!   (PKCS#1) for RS256. The type is read from the key itself, never from a
//!   token. A private key or a certificate is refused with a hint to export
//!   the public key (`openssl pkey -pubout`): a verifier has no use for the
//!   private half, and it should not sit in the server's memory.
//! - anything else: an HS256 secret, the file's bytes with one trailing
//!   newline (`\n` or `\r\n`) removed. An empty secret is refused, and so is
//!   one shorter than 32 bytes: RFC 7518 §3.2 requires a key at least as
//!   long as the hash (256 bits), and a short one can be guessed offline
//!   from any token it signed. `openssl rand -hex 32 > secret` makes a
//!   good one.
//!
//! Each key allows exactly one algorithm, fixed here from the key's type;
//! a signature is checked with that algorithm
//! (`jsonwebtoken::crypto::verify`), never with the one the token names,
//! which only picks the keys to try. A token is tried against every
//! key of its algorithm in the order given, stopping at the first that
//! verifies, so a new key can be added beside the old one and the old one
//! removed later (rotation); `kid` is not consulted. With an RSA public key
//! only, an HS256 token is refused for its algorithm before any key is
//! tried, so the public key's bytes can never serve as an HMAC secret
//! (algorithm confusion).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey};

/// The largest key file read, in bytes: an 8192-bit RSA public key in PEM
/// is under 2 KiB.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2).
pub const MIN_SECRET_LEN: usize = 32;

/// The DER encoding of the OID of the P-256 curve (1.2.840.10045.3.1.7),
/// the only curve an ES256 key may be on (RFC 7518 §3.4).
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The signature algorithms wsd verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// HMAC with SHA-256, a shared secret.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// The algorithm a token's `alg` header names (case-sensitive, RFC 7515
    /// §4.1.1), or `None` for any other, `none` included.
    pub fn from_header(alg: &str) -> Option<Alg> {
        match alg {
            "HS256" => Some(Alg::Hs256),
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }

    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub(super) fn jwt(self) -> Algorithm {
        match self {
            Alg::Hs256 => Algorithm::HS256,
            Alg::Rs256 => Algorithm::RS256,
            Alg::Es256 => Algorithm::ES256,
            Alg::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// Why a key file was refused. It never quotes the file's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyProblem {
    /// The file could not be read.
    Unreadable(io::ErrorKind),
    /// Larger than [`MAX_KEY_FILE`]: not a key.
    TooLarge,
    /// An empty HS256 secret.
    EmptySecret,
    /// An HS256 secret shorter than [`MIN_SECRET_LEN`]; the length.
    ShortSecret(usize),
    /// A PEM that does not parse, or whose key does not.
    BadPem,
    /// A PEM private key.
    PrivateKey,
    /// A PEM certificate.
    Certificate,
    /// A PEM of another kind, or a public key of a type wsd does not verify.
    UnsupportedKey,
    /// An EC public key on a curve other than P-256.
    UnsupportedCurve,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Unreadable(kind) => write!(f, "cannot read it: {kind}"),
            KeyProblem::TooLarge => write!(f, "larger than {MAX_KEY_FILE} bytes: not a key"),
            KeyProblem::EmptySecret => write!(f, "an empty HS256 secret"),
            KeyProblem::ShortSecret(len) => write!(
                f,
                "an HS256 secret of {len} bytes: at least {MIN_SECRET_LEN} are needed \
                 (RFC 7518 §3.2; `openssl rand -hex 32` makes one)"
            ),
            KeyProblem::BadPem => write!(f, "a PEM block that does not parse as a public key"),
            KeyProblem::PrivateKey => write!(
                f,
                "a private key: give the public key (`openssl pkey -pubout`)"
            ),
            KeyProblem::Certificate => write!(
                f,
                "a certificate: give its public key (`openssl x509 -pubkey -noout`)"
            ),
            KeyProblem::UnsupportedKey => write!(
                f,
                "not an RSA, EC P-256 or Ed25519 public key (nor an HS256 secret)"
            ),
            KeyProblem::UnsupportedCurve => {
                write!(f, "an EC key on a curve other than P-256 (ES256)")
            }
        }
    }
}

/// A key file that was refused, and why.
#[derive(Debug)]
pub struct KeyError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: KeyProblem,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--auth-key {}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for KeyError {}

/// One verification key, with the one algorithm it allows.
pub struct Key {
    name: Box<str>,
    alg: Alg,
    key: DecodingKey,
}

impl Key {
    /// A key from a file's contents (see the module doc); `name` is how
    /// logs and [`fmt::Debug`] refer to it (the file name), never the bytes.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Key, KeyProblem> {
        let (alg, key) = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            public_key(bytes)?
        } else {
            let secret = strip_newline(bytes);
            if secret.is_empty() {
                return Err(KeyProblem::EmptySecret);
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(KeyProblem::ShortSecret(secret.len()));
            }
            (Alg::Hs256, DecodingKey::from_secret(secret))
        };
        Ok(Key {
            name: name.into(),
            alg,
            key,
        })
    }

    /// The file name it was read from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The one algorithm it verifies.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material.
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The file's bytes without one trailing `\n` or `\r\n`.
fn strip_newline(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// A PEM public key and its algorithm, from the key's own type.
fn public_key(bytes: &[u8]) -> Result<(Alg, DecodingKey), KeyProblem> {
    let block = pem::parse(bytes).map_err(|_| KeyProblem::BadPem)?;
    let tag = block.tag();
    if tag.contains("PRIVATE KEY") {
        return Err(KeyProblem::PrivateKey);
    }
    if tag.contains("CERTIFICATE") {
        return Err(KeyProblem::Certificate);
    }
    match tag {
        "RSA PUBLIC KEY" => DecodingKey::from_rsa_pem(bytes)
            .map(|k| (Alg::Rs256, k))
            .map_err(|_| KeyProblem::BadPem),
        "PUBLIC KEY" => {
            // jsonwebtoken classifies the key by its algorithm OID; each
            // constructor accepts only its own type.
            if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
                let der = block.contents();
                if !der.windows(P256_OID.len()).any(|w| w == P256_OID) {
                    return Err(KeyProblem::UnsupportedCurve);
                }
                return Ok((Alg::Es256, key));
            }
            if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
                return Ok((Alg::EdDsa, key));
            }
            if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
                return Ok((Alg::Rs256, key));
            }
            Err(KeyProblem::UnsupportedKey)
        }
        _ => Err(KeyProblem::UnsupportedKey),
    }
}

/// The keys tokens are verified with, in `--auth-key` order. Immutable: a
/// reload builds a new set and swaps it in whole.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// A set of keys, tried in this order.
    pub fn new(keys: Vec<Key>) -> KeySet {
        KeySet { keys }
    }

    /// Reads and parses every file. Blocking file I/O: call it off the
    /// reactor (at start, or on the signal thread at SIGHUP, keeping the
    /// old set if it fails). The first bad file is the error, by name.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<KeySet, KeyError> {
        let keys = paths
            .iter()
            .map(|path| {
                let path = path.as_ref();
                let fail = |problem| KeyError {
                    path: path.to_path_buf(),
                    problem,
                };
                let bytes = read_bounded(path).map_err(fail)?;
                let name = path
                    .file_name()
                    .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy());
                Key::parse(&name, &bytes).map_err(fail)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeySet { keys })
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys, in order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The keys that verify `alg`, in order.
    pub fn for_alg(&self, alg: Alg) -> impl Iterator<Item = &Key> + '_ {
        self.keys.iter().filter(move |k| k.alg == alg)
    }
}

/// A file's contents, refusing one over [`MAX_KEY_FILE`] without reading
/// it all.
fn read_bounded(path: &Path) -> Result<Vec<u8>, KeyProblem> {
    let file = File::open(path).map_err(|e| KeyProblem::Unreadable(e.kind()))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| KeyProblem::Unreadable(e.kind()))?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > MAX_KEY_FILE) {
        return Err(KeyProblem::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
