//! The controller↔agent protocol: length-prefixed JSON over TCP.
//!
//! Each message is a 4-byte big-endian length, then that many bytes of a
//! JSON object whose `type` names it. A length above [`MAX_FRAME`] ends
//! the connection before a byte of the body is buffered, so a hostile
//! peer cannot make either side allocate without limit.
//!
//! ```text
//! agent                                  controller
//!   ── challenge {version, nonce_a} ──▶
//!   ◀── auth {mac(key, C, nonce_a), nonce_c}
//!   ── welcome {mac(key, A, nonce_c)} ─▶      (or refused {reason})
//!   ◀── plan {mode, args, urls}
//!   ── ready ──▶                              (or refused {reason})
//!   ◀── go {start_in_ms}
//!   ── tick {sent, received, errors, open, started} ─▶ every 250 ms
//!   ── result {...} ──▶
//! ```

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol's version, in the challenge.
pub const VERSION: u32 = 1;

/// The largest message either side reads: a result's histograms are a few
/// hundred KiB at most.
pub const MAX_FRAME: usize = 16 << 20;

/// Every message of the protocol.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Agent → controller, first: the agent's nonce (hex).
    Challenge {
        /// [`VERSION`].
        version: u32,
        /// 32 random bytes, hex.
        nonce: String,
    },
    /// Controller → agent: the controller's proof, and its own nonce.
    Auth {
        /// HMAC-SHA256 over the agent's nonce, hex.
        mac: String,
        /// 32 random bytes, hex.
        nonce: String,
    },
    /// Agent → controller: the agent's proof over the controller's nonce.
    Welcome {
        /// HMAC-SHA256 over the controller's nonce, hex.
        mac: String,
    },
    /// Either way: no (a wrong key, a busy agent, a refused plan).
    Refused {
        /// Why, in words (never the key).
        reason: String,
    },
    /// Controller → agent: what to run.
    Plan {
        /// The mode: echo, rate, broadcast, conns or churn.
        mode: String,
        /// The mode's flags, as on a command line.
        args: Vec<String>,
        /// The targets, resolved and checked by the agent.
        urls: Vec<String>,
    },
    /// Agent → controller: the plan is accepted.
    Ready,
    /// Controller → agent: start this long after reading this message.
    Go {
        /// Milliseconds to wait before starting.
        start_in_ms: u64,
    },
    /// Agent → controller, every second of the run: it is alive.
    Tick {
        /// Messages sent so far.
        sent: u64,
        /// Messages received so far.
        received: u64,
        /// Errors so far.
        errors: u64,
        /// Connections open now.
        open: u64,
        /// Whether every connection has been tried and the load begun.
        started: bool,
    },
    /// Agent → controller, last: what it measured.
    Result {
        /// The agent's figures ([`super::codec`]).
        result: Box<Value>,
    },
}

/// Why a message could not be read.
#[derive(Debug)]
pub enum WireError {
    /// The socket failed or closed.
    Io(io::Error),
    /// The length prefix is above [`MAX_FRAME`].
    TooLong(usize),
    /// The body is not a message of the protocol.
    Malformed(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("connection closed")
            }
            WireError::Io(e) => write!(f, "{e}"),
            WireError::TooLong(n) => write!(f, "a {n}-byte message, above the {MAX_FRAME} limit"),
            WireError::Malformed(e) => write!(f, "malformed message: {e}"),
        }
    }
}

/// Writes `msg` as one frame.
pub fn write_msg(w: &mut impl Write, msg: &Msg) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::other("message above the frame limit"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame; the length is checked before the body is buffered.
pub fn read_msg(r: &mut impl Read) -> Result<Msg, WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(WireError::Io)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLong(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(WireError::Io)?;
    serde_json::from_slice(&body).map_err(|e| WireError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut buf = Vec::new();
        write_msg(&mut buf, &Msg::Go { start_in_ms: 250 }).unwrap();
        write_msg(&mut buf, &Msg::Ready).unwrap();
        let mut r = &buf[..];
        assert!(matches!(read_msg(&mut r), Ok(Msg::Go { start_in_ms: 250 })));
        assert!(matches!(read_msg(&mut r), Ok(Msg::Ready)));
        assert!(matches!(read_msg(&mut r), Err(WireError::Io(_))));
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading_the_body() {
        let frame = ((MAX_FRAME + 1) as u32).to_be_bytes();
        // No body follows: refusing must not wait for it.
        let mut r = &frame[..];
        assert!(matches!(read_msg(&mut r), Err(WireError::TooLong(_))));
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error() {
        let mut buf = Vec::new();
        write_msg(&mut buf, &Msg::Go { start_in_ms: 7 }).unwrap();
        for cut in 0..buf.len() {
            let mut r = &buf[..cut];
            assert!(read_msg(&mut r).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn an_unknown_type_is_malformed() {
        let body = br#"{"type":"shell","cmd":"rm"}"#;
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        assert!(matches!(
            read_msg(&mut &frame[..]),
            Err(WireError::Malformed(_))
        ));
    }
}
