//! What a history read in Redis brings back (`wsd::bus::streams::
//! parse_answer`), on arbitrary bytes: Redis is trusted to run our
//! script, but a parser never panics or allocates by what it is told.
//!
//! Properties, for every input:
//! - `parse_answer` never panics;
//! - what it accepts holds no more payload bytes than the input, and its
//!   text payloads are UTF-8;
//! - every strict prefix of an accepted input is refused (an answer is
//!   read whole or not at all).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::bus::streams::parse_answer;
use wsd::proto::MessageKind;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = parse_answer(data) else {
        return;
    };
    let held: usize = answer.entries.iter().map(|e| e.payload.len()).sum();
    assert!(held <= data.len());
    for e in &answer.entries {
        if e.kind == MessageKind::Text {
            assert!(std::str::from_utf8(&e.payload).is_ok());
        }
    }
    for cut in [0, data.len() / 2, data.len().saturating_sub(1)] {
        if cut < data.len() {
            assert!(parse_answer(&data[..cut]).is_err(), "a prefix of {cut} bytes");
        }
    }
});
