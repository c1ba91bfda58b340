//! Helpers shared by the session fuzz targets: an event recorder, a buffer
//! owner that follows [`Session::feed`]'s contract as the reactor does, and
//! the check that a frame the session sends is a well-formed server frame.

use wsd::proto::close::{is_valid_code, parse_close};
use wsd::proto::frame::{decode_header, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use wsd::proto::{Events, Limits, MessageKind, OpCode, Parsing, ProtocolError, Role, Session, State};

/// The small limits the session targets run with, so that limit errors are
/// reachable from fuzz-sized inputs.
pub const LIMITS: Limits = Limits {
    max_message: 4096,
    max_frame: 4096,
    max_fragments: 64,
};

/// The most bytes a caller may ever have to keep: a message under the limit
/// plus an incomplete control frame (header and up to 125 bytes).
pub const MAX_KEEP: usize = LIMITS.max_message + MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD;

/// The Close a [`Feeder::closing`] session sends first.
pub const CLOSING_CODE: u16 = 1001;
pub const CLOSING_REASON: &str = "bye";

/// One thing a session reported, in the order it reported them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Message(MessageKind, Vec<u8>),
    Send(Vec<u8>),
}

/// Everything a session reported.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Recorder {
    pub events: Vec<Ev>,
}

impl Events for Recorder {
    fn message(&mut self, kind: MessageKind, payload: &[u8]) {
        self.events.push(Ev::Message(kind, payload.to_vec()));
    }
    fn send(&mut self, frame: &[u8]) {
        self.events.push(Ev::Send(frame.to_vec()));
    }
}

/// A buffer owner that follows the feed contract: keep `buf[..keep]`, append
/// the next piece, feed the whole.
pub struct Feeder {
    pub session: Session,
    pub buf: Vec<u8>,
    pub rec: Recorder,
}

/// What a run ends with, compared across different cuttings of one stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Ev>,
    pub state: State,
    pub error: Option<ProtocolError>,
    pub close_code: Option<u16>,
    pub in_message: bool,
    pub kept: Vec<u8>,
}

impl Feeder {
    pub fn new() -> Feeder {
        Feeder {
            session: Session::new(Role::Server),
            buf: Vec::new(),
            rec: Recorder::default(),
        }
    }

    /// A session that started the closing handshake (`close(1001, "bye")`)
    /// before any byte arrived: it waits in CloseSent for the peer's Close.
    pub fn closing() -> Feeder {
        let mut f = Feeder::new();
        f.session.close(CLOSING_CODE, CLOSING_REASON, &mut f.rec);
        assert_eq!(f.session.state(), State::CloseSent);
        f
    }

    /// Feeds one piece and checks the bound on what is kept.
    pub fn push(&mut self, piece: &[u8]) {
        self.buf.extend_from_slice(piece);
        let keep = self.session.feed(&mut self.buf, &LIMITS, &mut self.rec);
        assert!(keep <= self.buf.len(), "keep {keep} > fed {}", self.buf.len());
        assert!(keep <= MAX_KEEP, "keep {keep} over the bound {MAX_KEEP}");
        if self.session.state() == State::Closed {
            assert_eq!(keep, 0, "a closed session keeps bytes");
        }
        self.buf.truncate(keep);
    }

    pub fn finish(self) -> Outcome {
        Outcome {
            events: self.rec.events,
            state: self.session.state(),
            error: self.session.error(),
            close_code: self.session.close_code(),
            in_message: self.session.in_message(),
            kept: self.buf,
        }
    }
}

impl Default for Feeder {
    fn default() -> Self {
        Feeder::new()
    }
}

/// Checks a frame a server session sent: one whole, unmasked, final control
/// frame with RSV clear and at most 125 bytes; a Close carries nothing or a
/// valid code and a UTF-8 reason. Returns its opcode and payload.
pub fn check_server_frame(frame: &[u8]) -> (OpCode, &[u8]) {
    let (h, offset) = match decode_header(frame) {
        Ok(Parsing::Done { value, offset }) => (value, offset),
        other => panic!("sent frame {frame:02x?} does not decode: {other:?}"),
    };
    assert!(h.fin && h.rsv == 0 && h.mask.is_none(), "sent header {h:?}");
    assert!(h.opcode.is_control(), "sent a data frame {h:?}");
    assert!(h.len <= MAX_CONTROL_PAYLOAD as u64, "sent {h:?}");
    assert_eq!(offset as u64 + h.len, frame.len() as u64, "sent frame {frame:02x?}");
    // The shortest length form: a control payload always fits 7 bits.
    assert_eq!(offset, 2, "sent frame {frame:02x?}");
    let payload = &frame[offset..];
    if h.opcode == OpCode::Close {
        match parse_close(payload) {
            Ok(c) => assert!(c.code.is_none_or(is_valid_code), "{c:?}"),
            Err(e) => panic!("sent an invalid Close {frame:02x?}: {e:?}"),
        }
    }
    (h.opcode, payload)
}

/// The status code of a Close payload (the frame already checked).
pub fn close_code_of(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}
