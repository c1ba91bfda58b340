//! Frames as the test client writes and reads them, on its own (not wsd's
//! codec), and permessage-deflate payloads made with flate2 directly.

/// A client frame with explicit FIN, RSV bits and opcode nibble, masked
/// with `key`, the length in its shortest form.
pub fn masked_frame(fin: bool, rsv: u8, op: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = frame_header(fin, rsv, op, payload.len() as u64, Some(key));
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A frame without a mask (what a client must not send).
pub fn unmasked_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(fin, 0, op, payload.len() as u64, None);
    out.extend_from_slice(payload);
    out
}

/// A frame header alone, declaring `len` payload bytes.
pub fn frame_header(fin: bool, rsv: u8, op: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (op & 0x0F)];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xFFFF {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A Close payload: code and reason bytes.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame received from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub op: u8,
    pub payload: Vec<u8>,
}

/// What [`Client::recv`] returns: a whole data message or one control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The close code (if the payload had one) and the reason bytes.
    Close(Option<u16>, Vec<u8>),
}

/// A short description of a message (payloads can be megabytes).
pub fn describe(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("Text({} bytes: {:?})", t.len(), &t[..t.len().min(40)]),
        Message::Binary(b) => format!("Binary({} bytes)", b.len()),
        other => format!("{other:?}"),
    }
}

/// Parses one unmasked frame from the start of `buf`: the frame and the
/// bytes it took, or `None` if incomplete.
pub fn parse_server_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "server frame is masked");
    let (len, at) = match b1 & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().unwrap())),
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()), 10),
        n => (u64::from(n), 2),
    };
    let end = at + usize::try_from(len).unwrap();
    let payload = buf.get(at..end)?.to_vec();
    Some((
        Frame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 7,
            op: b0 & 0x0F,
            payload,
        },
        end,
    ))
}

/// The tail a sync flush ends with (RFC 7692 §7.2.1).
pub const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compresses `msg` as one message's payload: raw DEFLATE, sync flush, the
/// tail removed. `z` keeps its context between calls (reset it for none).
pub fn deflate_message(z: &mut flate2::Compress, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 64);
    let mut input = msg;
    loop {
        out.reserve(input.len() / 2 + 1024);
        let before = z.total_in();
        z.compress_vec(input, &mut out, flate2::FlushCompress::Sync)
            .expect("deflate");
        input = &input[(z.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&DEFLATE_TAIL), "no sync flush tail");
    out.truncate(out.len() - 4);
    out
}

/// Inflates one message's payload (the tail appended). `z` keeps its
/// context between calls.
pub fn inflate_message(z: &mut flate2::Decompress, payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&DEFLATE_TAIL);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    let mut rest = &input[..];
    loop {
        out.reserve(64 << 10);
        let before = z.total_in();
        let status = z
            .decompress_vec(rest, &mut out, flate2::FlushDecompress::Sync)
            .expect("inflate");
        rest = &rest[(z.total_in() - before) as usize..];
        if status == flate2::Status::StreamEnd || (rest.is_empty() && out.len() < out.capacity()) {
            return out;
        }
    }
}

/// A raw-DEFLATE compressor and inflater pair with 15-bit windows.
pub fn deflate_pair() -> (flate2::Compress, flate2::Decompress) {
    (
        flate2::Compress::new(flate2::Compression::default(), false),
        flate2::Decompress::new(false),
    )
}
