//! The shared key, and the HMAC challenge-response that proves each side
//! holds it without sending it.
//!
//! Each side sends 32 random bytes; the other answers with
//! HMAC-SHA256(key, label ‖ nonce). The labels differ by direction, so an
//! answer cannot be reflected back as the other side's proof. Answers are
//! checked in constant time (`ring::hmac::verify`). The key is never
//! printed, logged, or sent.

use std::fmt;
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};

/// What the controller's answer covers, before the agent's nonce.
pub const CONTROLLER: &[u8] = b"wsload-agent controller v1\0";
/// What the agent's answer covers, before the controller's nonce.
pub const AGENT: &[u8] = b"wsload-agent agent v1\0";

/// The shortest key accepted.
const MIN_KEY: usize = 16;
/// The longest key file read.
const MAX_KEY: usize = 4096;
/// Nonce length in bytes.
pub const NONCE: usize = 32;

/// The shared key (its `Debug` hides it).
#[derive(Clone)]
pub struct Key(hmac::Key);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from its bytes (one trailing newline removed).
    pub fn from_bytes(raw: &[u8]) -> Result<Key, String> {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() < MIN_KEY {
            return Err(format!(
                "the key is {} bytes; use at least {MIN_KEY} (say, `head -c 32 /dev/urandom | base64`)",
                raw.len()
            ));
        }
        Ok(Key(hmac::Key::new(hmac::HMAC_SHA256, raw)))
    }

    /// HMAC-SHA256 over `label ‖ nonce`.
    pub fn sign(&self, label: &[u8], nonce: &[u8]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(label);
        ctx.update(nonce);
        ctx.sign().as_ref().to_vec()
    }

    /// Whether `mac` is [`Key::sign`]'s answer, compared in constant time.
    pub fn verify(&self, label: &[u8], nonce: &[u8], mac: &[u8]) -> bool {
        let mut msg = Vec::with_capacity(label.len() + nonce.len());
        msg.extend_from_slice(label);
        msg.extend_from_slice(nonce);
        hmac::verify(&self.0, &msg, mac).is_ok()
    }
}

/// `--key FILE`: the file's bytes as a key.
pub fn parse_key_file(path: &str) -> Result<Key, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
    let mut raw = Vec::new();
    file.take(MAX_KEY as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("{path}: {e}"))?;
    if raw.len() > MAX_KEY {
        return Err(format!("{path}: a key file is at most {MAX_KEY} bytes"));
    }
    Key::from_bytes(&raw).map_err(|e| format!("{path}: {e}"))
}

/// 32 fresh random bytes.
pub fn nonce() -> Result<[u8; NONCE], String> {
    let mut n = [0u8; NONCE];
    SystemRandom::new()
        .fill(&mut n)
        .map_err(|_| "no randomness for a nonce".to_string())?;
    Ok(n)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex back to bytes, at most `max` of them.
pub fn unhex(s: &str, max: usize) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() / 2 > max {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::from_bytes(s.as_bytes()).unwrap()
    }

    #[test]
    fn the_right_key_verifies_and_a_wrong_one_does_not() {
        let n = nonce().unwrap();
        let mac = key("sixteen bytes ok").sign(CONTROLLER, &n);
        assert!(key("sixteen bytes ok\n").verify(CONTROLLER, &n, &mac));
        assert!(!key("sixteen bytes no").verify(CONTROLLER, &n, &mac));
        // Reflected: the agent's label does not accept the controller's answer.
        assert!(!key("sixteen bytes ok").verify(AGENT, &n, &mac));
        let other = nonce().unwrap();
        assert!(!key("sixteen bytes ok").verify(CONTROLLER, &other, &mac));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Key::from_bytes(b"short\n").is_err());
    }

    #[test]
    fn hex_round_trips_and_is_bounded() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&b), 4), Some(b.to_vec()));
        assert_eq!(unhex(&hex(&b), 3), None);
        assert_eq!(unhex("abc", 4), None);
        assert_eq!(unhex("zz", 4), None);
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        assert_eq!(format!("{:?}", key("a secret of sixteen")), "Key(..)");
    }
}
