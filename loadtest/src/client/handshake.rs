//! The opening handshake's answer: the response head read and checked
//! against the request (accept key, subprotocol, extensions), and what a
//! refusal says.

use wsd::proto::handshake::{parse_response, ResponseError};
use wsd::proto::Parsing;

use super::{io_failure, Conn, Failure, Phase};
use crate::deflate::Deflate;
use crate::stats::ErrorKind;
use crate::upgrade::{ProtocolMismatch, Upgrade};

/// The largest handshake response head accepted.
const MAX_RESPONSE_HEAD: usize = 16 << 10;

impl Conn {
    /// Reads the handshake response, which must agree to what `up` asked
    /// for. `Ok(true)` once the connection is Open (frames that followed
    /// the head stay buffered for [`Conn::read_frames`]).
    pub fn read_handshake(&mut self, up: &Upgrade) -> Result<bool, Failure> {
        loop {
            match self.read_some(MAX_RESPONSE_HEAD) {
                Ok(Some((0, _))) => {
                    return Err((
                        ErrorKind::UnexpectedEof,
                        "server closed during the handshake".into(),
                    ))
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok(false),
                Err(e) => return Err(io_failure(&e)),
            }
            let head = &self.rbuf[..self.rlen];
            match parse_response(head, &self.key) {
                Ok(Parsing::Done { offset, .. }) => {
                    if let Err(m) = up.check_response(&head[..offset]) {
                        return Err(subprotocol_failure(m, up));
                    }
                    match up.check_extensions(&head[..offset]) {
                        Ok(agreed) => self.deflate = agreed.map(|a| Box::new(Deflate::new(a))),
                        Err(e) => return Err((ErrorKind::Extension, e.to_string())),
                    }
                    self.rbuf.copy_within(offset..self.rlen, 0);
                    self.rlen -= offset;
                    self.wire.frames_in += self.rlen as u64;
                    self.sealed_to = self.out.len();
                    self.phase = Phase::Open;
                    return Ok(true);
                }
                Ok(Parsing::NeedMore(_)) if self.rlen < MAX_RESPONSE_HEAD => {}
                Ok(Parsing::NeedMore(_)) => {
                    return Err((
                        ErrorKind::HandshakeMalformed,
                        "handshake response head too large".into(),
                    ))
                }
                Err(ResponseError::Status(code)) => {
                    return Err((ErrorKind::HandshakeStatus(code), status_line(head)))
                }
                Err(ResponseError::BadAccept) => {
                    return Err((ErrorKind::BadAccept, status_line(head)))
                }
                Err(ResponseError::Malformed) => {
                    return Err((ErrorKind::HandshakeMalformed, status_line(head)))
                }
            }
        }
    }
}

fn subprotocol_failure(m: ProtocolMismatch, up: &Upgrade) -> Failure {
    let offered = up.protocols().join(", ");
    let detail = match m {
        ProtocolMismatch::NoneChosen => {
            format!("the server chose no subprotocol of those offered ({offered})")
        }
        ProtocolMismatch::NotOffered(p) if offered.is_empty() => {
            format!("the server chose subprotocol '{p}', and none was offered")
        }
        ProtocolMismatch::NotOffered(p) => {
            format!("the server chose subprotocol '{p}', not one of those offered ({offered})")
        }
    };
    (ErrorKind::Subprotocol, detail)
}

/// The first line of a response head, for error messages.
fn status_line(head: &[u8]) -> String {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line.trim_ascii());
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_trimmed_and_bounded() {
        assert_eq!(
            status_line(b"HTTP/1.1 404 Not Found\r\nX: y\r\n\r\n"),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(status_line(&[b'x'; 1000]).len(), 200);
    }
}
