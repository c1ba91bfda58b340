//! The frame header codec, `decode_header` / `encode_header`, against a
//! reference decoder written the obvious way, one byte at a time.
//!
//! Properties, for every input:
//! - `decode_header(data)` equals the reference's result exactly: the same
//!   header and offset, the same `NeedMore(n)` amount, the same error;
//! - so does `decode_header` of every prefix of the first 15 bytes (each
//!   truncation point of every header form);
//! - `NeedMore(n)`: `n >= 1`, and exactly `n` more bytes complete the header;
//! - a decoded header re-encodes (`encode_header`, shortest length form) to
//!   bytes that decode to the same fields, at most as long as the original.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::proto::frame::{decode_header, encode_header, Header, MAX_HEADER_LEN};
use wsd::proto::{OpCode, Parsing, ProtocolError};

fuzz_target!(|data: &[u8]| {
    check(data);
    for cut in 0..data.len().min(MAX_HEADER_LEN + 1) {
        check(&data[..cut]);
    }
});

fn check(data: &[u8]) {
    let got = decode_header(data);
    assert_eq!(got, reference(data), "input {data:02x?}");
    match got {
        Ok(Parsing::Done { value, offset }) => {
            let enc = encode_header(value.fin, value.rsv, value.opcode, value.len, value.mask);
            let bytes = enc.as_slice();
            assert!(bytes.len() <= offset, "re-encoding grew: {bytes:02x?}");
            assert_eq!(
                decode_header(bytes),
                Ok(Parsing::Done { value, offset: bytes.len() }),
                "re-encoding of {value:?}: {bytes:02x?}"
            );
            // Only a non-minimal length form may shrink.
            if bytes.len() < offset {
                assert!(data[1] & 0x7F >= 126, "shrank a minimal header {data:02x?}");
            }
        }
        Ok(Parsing::NeedMore(n)) => {
            assert!(n >= 1 && data.len() + n <= MAX_HEADER_LEN, "NeedMore({n}) for {data:02x?}");
            // Exactly n more bytes complete the header: zeros parse, unless
            // the bytes already there are a reserved opcode (checked once
            // both first bytes are in) or set the 64-bit length's top bit.
            let mut more = data.to_vec();
            more.resize(data.len() + n, 0);
            match decode_header(&more) {
                Ok(Parsing::Done { offset, .. }) => assert_eq!(offset, more.len()),
                Err(ProtocolError::ReservedOpcode) => assert!(data.len() < 2),
                Err(ProtocolError::LengthTopBit) => assert!(data.len() > 2 && data[2] >= 0x80),
                other => panic!("{data:02x?} + {n} zeros: {other:?}"),
            }
        }
        Err(_) => {}
    }
}

/// The reference: read the fields in wire order, asking for what is missing.
fn reference(data: &[u8]) -> Result<Parsing<Header>, ProtocolError> {
    // Byte 0: FIN, RSV1-3, opcode. Byte 1: MASK, 7-bit length.
    if data.len() < 2 {
        return Ok(Parsing::NeedMore(2 - data.len()));
    }
    let (b0, b1) = (data[0], data[1]);
    let fin = b0 >= 0x80;
    let rsv = (b0 / 16) % 8;
    let opcode = match b0 % 16 {
        0 => OpCode::Continuation,
        1 => OpCode::Text,
        2 => OpCode::Binary,
        8 => OpCode::Close,
        9 => OpCode::Ping,
        10 => OpCode::Pong,
        _ => return Err(ProtocolError::ReservedOpcode),
    };
    let masked = b1 >= 0x80;
    let len7 = b1 % 128;
    let ext = if len7 == 126 {
        2
    } else if len7 == 127 {
        8
    } else {
        0
    };
    let total = 2 + ext + if masked { 4 } else { 0 };
    if data.len() < total {
        return Ok(Parsing::NeedMore(total - data.len()));
    }
    let mut len: u64 = u64::from(len7);
    if ext > 0 {
        len = 0;
        for i in 0..ext {
            len = len * 256 + u64::from(data[2 + i]);
        }
        if ext == 8 && data[2] >= 0x80 {
            return Err(ProtocolError::LengthTopBit);
        }
    }
    let mask = masked.then(|| {
        let k = 2 + ext;
        [data[k], data[k + 1], data[k + 2], data[k + 3]]
    });
    Ok(Parsing::Done {
        value: Header {
            fin,
            rsv,
            opcode,
            mask,
            len,
        },
        offset: total,
    })
}
