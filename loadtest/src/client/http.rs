//! A [`Conn`] that speaks HTTP/1.1 to a publish API: requests queued in
//! the output buffer, answers read whole from the read buffer and handed
//! to the caller. Keep-alive: one TCP connection carries every request.

use std::io;
use std::net::{IpAddr, SocketAddr};

use wsd::proto::Parsing;

use super::{io_failure, Conn, Failure, ReadEnd};
use crate::publish::answer::{parse_answer, Answer, MAX_BODY, MAX_HEAD};
use crate::stats::ErrorKind;
use crate::tls::TlsConfig;

impl Conn {
    /// Starts a non-blocking connect to a publish API at `addr` (see
    /// [`Conn::connect`]).
    pub fn connect_api(
        addr: SocketAddr,
        source: Option<IpAddr>,
        tls: Option<(&TlsConfig, &str)>,
    ) -> io::Result<Conn> {
        let mut c = Conn::connect(addr, source, 1, tls)?;
        c.api = true;
        Ok(c)
    }

    /// Whether this is a publish API connection.
    pub fn is_api(&self) -> bool {
        self.api
    }

    /// Queues a request: `head`, then the body `body` appends, whose
    /// bytes count as a message's.
    pub fn send_request(&mut self, head: &[u8], body: impl FnOnce(&mut Vec<u8>)) {
        self.out.extend_from_slice(head);
        let at = self.out.len();
        body(&mut self.out);
        self.wire.msg_out += (self.out.len() - at) as u64;
    }

    /// Reads answers until the socket would block or the stream ends;
    /// each whole one goes to `on_answer` with its bytes. An answer that
    /// cannot be read fails the connection: what follows it cannot be
    /// framed.
    pub fn read_answers<F>(&mut self, on_answer: &mut F) -> Result<ReadEnd, Failure>
    where
        F: FnMut(&Answer, &[u8]),
    {
        let mut short_read = false;
        loop {
            let mut at = 0;
            while at < self.rlen {
                let buf = &self.rbuf[at..self.rlen];
                match parse_answer(buf) {
                    Ok(Parsing::Done { value, offset }) => {
                        on_answer(&value, &buf[..offset]);
                        at += offset;
                    }
                    Ok(Parsing::NeedMore(_)) => break,
                    Err(e) => return Err((ErrorKind::ApiAnswer, e.to_string())),
                }
            }
            self.rbuf.copy_within(at..self.rlen, 0);
            self.rlen -= at;
            if short_read {
                return Ok(ReadEnd::Blocked);
            }
            match self.read_some(MAX_HEAD + MAX_BODY) {
                Ok(Some((0, _))) => return Ok(ReadEnd::Eof),
                Ok(Some((_, filled))) => short_read = !filled,
                Ok(None) => return Ok(ReadEnd::Blocked),
                Err(e) => return Err(io_failure(&e)),
            }
        }
    }
}
