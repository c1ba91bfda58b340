//! The history's request-target reader (`wsd::history::query::parse`) and
//! offset parser, on arbitrary text.
//!
//! Properties, for every input:
//! - nothing panics;
//! - an offset that parses prints back to a string that parses to it;
//! - an accepted `since` came from the query (the target has a `?`), and
//!   a target without a query asks for nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::history::{query, Ask, Offset};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(o) = Offset::parse(text) {
        assert_eq!(Offset::parse(&o.to_string()), Some(o));
    }
    match query::parse(text) {
        Ok(Ask::Since { offset, .. }) => {
            assert!(text.contains('?'));
            assert!(text.contains("since=") && offset >= Offset::ZERO);
        }
        Ok(ask) if !text.contains('?') => assert_eq!(ask, Ask::Live),
        _ => {}
    }
});
