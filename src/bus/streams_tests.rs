use proptest::prelude::*;

use super::*;

/// `answer` as the read script writes it.
fn encode(answer: &Answer) -> Vec<u8> {
    let opt = |o: Option<Offset>| o.map(|o| o.to_string()).unwrap_or_default();
    let mut out = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        opt(answer.epoch),
        opt(answer.first),
        answer.last,
        u8::from(answer.removed),
        answer.entries.len()
    )
    .into_bytes();
    for e in &answer.entries {
        let kind = match e.kind {
            MessageKind::Text => 1,
            MessageKind::Binary => 2,
        };
        out.extend_from_slice(format!("{}\n{kind}\n{}\n", e.offset, e.payload.len()).as_bytes());
        out.extend_from_slice(&e.payload);
    }
    out
}

fn o(ms: u64, seq: u64) -> Offset {
    Offset { ms, seq }
}

#[test]
fn an_answer_parses_with_binary_payloads_holding_newlines() {
    let answer = Answer {
        epoch: Some(o(10, 0)),
        first: Some(o(11, 2)),
        last: o(12, 0),
        removed: true,
        entries: vec![
            Stored {
                offset: o(11, 2),
                kind: MessageKind::Binary,
                payload: b"a\nb\n\n3\n".to_vec(),
            },
            Stored {
                offset: o(12, 0),
                kind: MessageKind::Text,
                payload: Vec::new(),
            },
        ],
    };
    assert_eq!(parse_answer(&encode(&answer)), Ok(answer));
    // No history at all.
    assert_eq!(
        parse_answer(b"\n\n0-0\n1\n0\n"),
        Ok(Answer {
            removed: true,
            ..Answer::default()
        })
    );
}

#[test]
fn what_is_not_the_scripts_answer_is_refused() {
    for (bytes, why) in [
        (&b""[..], "a line is cut short"),
        (b"x\n\n0-0\n0\n0\n", "an ID is not ms-seq"),
        (b"\n\n\n0\n0\n", "an ID is not ms-seq"),
        (b"\n\n0-0\n2\n0\n", "removed is not 0 or 1"),
        (b"\n\n0-0\n0\n-1\n", "a count is not a number"),
        (b"\n\n0-0\n0\n9999999\n", "more entries claimed than bytes"),
        (b"\n\n0-0\n0\n1\n1-0\n3\n1\nx", "a kind is not 1 or 2"),
        (b"\n\n0-0\n0\n1\n1-0\n1\n5\nxy", "a payload is cut short"),
        (
            b"\n\n0-0\n0\n1\n1-0\n1\n2\n\xff\xfe",
            "a text payload is not UTF-8",
        ),
        (b"\n\n0-0\n0\n0\nextra", "bytes after the last entry"),
        (
            b"\n\n0-0\n0\n1\n1-0\n1\n18446744073709551615\nx",
            "a length overflows",
        ),
    ] {
        assert_eq!(
            parse_answer(bytes),
            Err(why),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn the_scripts_are_named_by_their_sha1() {
    let s = Streams::new(100, Duration::from_secs(600));
    assert_eq!(s.publish_sha.len(), 40);
    assert_ne!(s.publish_sha, s.read_sha);
    assert!(s.is_loaded(s.read_sha.as_bytes()) && s.is_loaded(s.publish_sha.as_bytes()));
    assert!(!s.is_loaded(b"0000000000000000000000000000000000000000"));
    // The SHA-1 of the empty string, as Redis would name an empty script.
    assert_eq!(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

#[test]
fn a_publish_runs_the_script_on_both_keys_and_the_channel() {
    let s = Streams::new(100, Duration::from_secs(600));
    let mut out = Vec::new();
    let instance = *b"instance";
    let from = Origin {
        node: b"n1",
        instance: &instance,
        sender: 5,
    };
    s.write_publish(&mut out, b"wsd:", "/a", &from, MessageKind::Text, b"hi");
    let mut header = Vec::new();
    envelope::write_recorded_header(&mut header, b"n1", &instance, MessageKind::Text, 5);
    assert_eq!(header.len(), from.header_len());
    let mut want = Vec::new();
    resp::write_command(
        &mut want,
        &[
            b"EVALSHA",
            s.publish_sha.as_bytes(),
            b"2",
            b"wsd:history:/a",
            b"wsd:epoch:/a",
            b"100",
            b"600000",
            b"wsd:/a",
            b"1",
            b"hi",
            &header,
        ],
    );
    assert_eq!(out, want);
    assert!(out.len() <= s.publish_size(b"wsd:", "/a", header.len(), 2));
}

#[test]
fn reads_say_what_the_join_asked() {
    let s = Streams::new(50, Duration::from_secs(60));
    let read = |ask| {
        let mut out = Vec::new();
        s.write_read(&mut out, b"p:", "/r", ask, 10_000);
        out
    };
    let want = |mode: &[u8], arg: &[u8]| {
        let mut out = Vec::new();
        resp::write_command(
            &mut out,
            &[
                b"EVALSHA",
                s.read_sha.as_bytes(),
                b"2",
                b"p:history:/r",
                b"p:epoch:/r",
                mode,
                arg,
                b"50",
                b"60000",
            ],
        );
        out
    };
    assert_eq!(read(Ask::Live), want(b"live", b""));
    // At most --history.
    assert_eq!(read(Ask::Last(80)), want(b"last", b"50"));
    assert_eq!(read(Ask::Last(3)), want(b"last", b"3"));
    assert_eq!(
        read(Ask::Within(Duration::from_secs(4))),
        want(b"from", b"6000")
    );
    let since = Ask::Since {
        offset: o(7, 1),
        epoch: 3,
    };
    assert_eq!(read(since), want(b"after", b"7-1"));
}

proptest! {
    #[test]
    fn answers_round_trip(
        epoch in proptest::option::of((0u64..u64::MAX, 0u64..1000)),
        removed: bool,
        entries in prop::collection::vec((1u64..1 << 45, any::<bool>(), prop::collection::vec(any::<u8>(), 0..40)), 0..8),
    ) {
        let entries: Vec<Stored> = entries
            .into_iter()
            .map(|(ms, binary, payload)| {
                if binary {
                    Stored { offset: o(ms, 0), kind: MessageKind::Binary, payload }
                } else {
                    let text = String::from_utf8_lossy(&payload).into_owned();
                    Stored { offset: o(ms, 1), kind: MessageKind::Text, payload: text.into_bytes() }
                }
            })
            .collect();
        let answer = Answer {
            epoch: epoch.map(|(ms, seq)| o(ms, seq)),
            first: entries.first().map(|e| e.offset),
            last: entries.last().map_or(Offset::ZERO, |e| e.offset),
            removed,
            entries,
        };
        let bytes = encode(&answer);
        prop_assert_eq!(parse_answer(&bytes), Ok(answer));
        // Every strict prefix is refused, never a panic or a short answer.
        for cut in 0..bytes.len() {
            prop_assert!(parse_answer(&bytes[..cut]).is_err());
        }
    }
}
