//! The RESP decoder against a naive twin, at every split point.

use proptest::prelude::*;

use super::*;

const LIMITS: Limits = Limits { max_frame: 1 << 20 };

fn done(buf: &[u8]) -> (Frame<'_>, usize) {
    match decode(buf, &LIMITS) {
        Ok(Parsing::Done { value, offset }) => (value, offset),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn items<'a>(f: &Frame<'a>) -> Vec<Value<'a>> {
    match f {
        Frame::Array(items) => items.as_slice().to_vec(),
        other => panic!("not an array: {other:?}"),
    }
}

/// The naive twin: reads left to right one byte at a time and recurses into
/// arrays, checking a number's canonical form by printing it back. `None`
/// is "incomplete".
fn reference(buf: &[u8], max_frame: usize) -> Result<Option<(Frame<'_>, usize)>, RespError> {
    fn line(buf: &[u8], mut i: usize) -> Result<Option<(&[u8], usize)>, RespError> {
        let start = i;
        loop {
            if i - start > MAX_LINE {
                return Err(RespError::LineTooLong);
            }
            match buf.get(i) {
                None => return Ok(None),
                Some(b'\n') => return Err(RespError::BadLineEnd),
                Some(b'\r') => {
                    return match buf.get(i + 1) {
                        None => Ok(None),
                        Some(b'\n') => Ok(Some((&buf[start..i], i + 2))),
                        Some(_) => Err(RespError::BadLineEnd),
                    }
                }
                Some(_) => i += 1,
            }
        }
    }
    fn number(text: &[u8]) -> Result<i64, RespError> {
        let s = std::str::from_utf8(text).map_err(|_| RespError::BadNumber)?;
        let n: i64 = s.parse().map_err(|_| RespError::BadNumber)?;
        if n.to_string() != s {
            return Err(RespError::BadNumber);
        }
        Ok(n)
    }
    fn value(
        buf: &[u8],
        i: usize,
        max_frame: usize,
        nested: bool,
    ) -> Result<Option<(Frame<'_>, usize)>, RespError> {
        let Some(&kind) = buf.get(i) else {
            return Ok(None);
        };
        if kind == b'*' && nested {
            return Err(RespError::Nested);
        }
        if !b"+-:$*".contains(&kind) {
            return Err(RespError::BadType(kind));
        }
        let Some((text, next)) = line(buf, i + 1)? else {
            return Ok(None);
        };
        let v = match kind {
            b'+' => Value::Simple(text),
            b'-' => Value::Error(text),
            b':' => Value::Integer(number(text)?),
            b'$' => {
                let n = number(text)?;
                if n == -1 {
                    Value::Nil
                } else if n < -1 {
                    return Err(RespError::BadLength);
                } else if next as u128 + n as u128 + 2 > max_frame as u128 {
                    let big = Oversized {
                        before: None,
                        len: n as usize,
                    };
                    return Ok(Some((Frame::Oversized(big), next)));
                } else {
                    let end = next + n as usize;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(RespError::BadLineEnd);
                    }
                    return Ok(Some((Frame::Value(Value::Bulk(&buf[next..end])), end + 2)));
                }
            }
            _ => {
                let n = number(text)?;
                if n == -1 {
                    return Ok(Some((Frame::NilArray, next)));
                }
                if n < -1 {
                    return Err(RespError::BadLength);
                }
                if n > MAX_ITEMS as i64 {
                    return Err(RespError::TooManyItems);
                }
                let mut got = Vec::new();
                let mut at = next;
                for i in 0..n {
                    let Some((f, after)) = value(buf, at, max_frame, true)? else {
                        return Ok(None);
                    };
                    let v = match f {
                        Frame::Value(v) => v,
                        Frame::Oversized(big) if i + 1 == n => {
                            let mut before = Items {
                                len: got.len(),
                                items: [Value::Nil; MAX_ITEMS],
                            };
                            before.items[..got.len()].copy_from_slice(&got);
                            let big = Oversized {
                                before: Some(before),
                                len: big.len,
                            };
                            return Ok(Some((Frame::Oversized(big), after)));
                        }
                        Frame::Oversized(_) => return Err(RespError::TooLarge),
                        _ => unreachable!(),
                    };
                    got.push(v);
                    at = after;
                }
                let mut items = Items {
                    len: got.len(),
                    items: [Value::Nil; MAX_ITEMS],
                };
                items.items[..got.len()].copy_from_slice(&got);
                return Ok(Some((Frame::Array(items), at)));
            }
        };
        Ok(Some((Frame::Value(v), next)))
    }
    value(buf, 0, max_frame, false)
}

/// Checks `decode` against the reference on `buf` and on every prefix.
fn check_all_prefixes(buf: &[u8], max_frame: usize) {
    let limits = Limits { max_frame };
    let whole = decode(buf, &limits);
    for cut in 0..=buf.len() {
        let part = &buf[..cut];
        let got = decode(part, &limits);
        let want = reference(part, max_frame);
        match (&got, &want) {
            (Ok(Parsing::Done { value, offset }), Ok(Some((v, o)))) => {
                assert_eq!((value, offset), (v, o), "{part:?}");
                // A complete reply is the same in any longer input.
                assert_eq!(got, whole, "{part:?}");
                let mut again = Vec::new();
                value.encode(&mut again);
                assert_eq!(again, &part[..*offset], "re-encoding");
            }
            (Ok(Parsing::NeedMore(n)), Ok(None)) => {
                assert!(*n >= 1, "{part:?}");
                match &whole {
                    // At least n more: never more than the reply lacks.
                    Ok(Parsing::Done { offset, .. }) => assert!(cut + n <= *offset, "{part:?}"),
                    Ok(Parsing::NeedMore(m)) => assert!(cut + n <= buf.len() + m, "{part:?}"),
                    Err(_) => {}
                }
            }
            (Err(e), Err(r)) => {
                assert_eq!(e, r, "{part:?}");
                assert_eq!(&whole, &got, "an error in a prefix is the whole's");
            }
            _ => panic!("{part:?}: decode {got:?}, reference {want:?}"),
        }
    }
}

#[test]
fn replies_a_pubsub_client_meets() {
    assert_eq!(done(b"+OK\r\n"), (Frame::Value(Value::Simple(b"OK")), 5));
    assert_eq!(
        done(b"-ERR wrong\r\nmore"),
        (Frame::Value(Value::Error(b"ERR wrong")), 12)
    );
    assert_eq!(done(b":-42\r\n"), (Frame::Value(Value::Integer(-42)), 6));
    assert_eq!(done(b"$-1\r\n"), (Frame::Value(Value::Nil), 5));
    assert_eq!(done(b"$0\r\n\r\n"), (Frame::Value(Value::Bulk(b"")), 6));
    assert_eq!(done(b"*-1\r\n"), (Frame::NilArray, 5));
    let push = b"*3\r\n$7\r\nmessage\r\n$9\r\nwsd:/chat\r\n$5\r\nhe\r\no\r\n";
    let (f, n) = done(push);
    assert_eq!(n, push.len());
    assert_eq!(
        items(&f),
        [
            Value::Bulk(b"message"),
            Value::Bulk(b"wsd:/chat"),
            Value::Bulk(b"he\r\no")
        ]
    );
    let (f, _) = done(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(items(&f)[2], Value::Integer(1));
    assert_eq!(items(&done(b"*0\r\n").0), []);
}

#[test]
fn numbers_are_canonical_and_in_range() {
    assert_eq!(
        done(b":9223372036854775807\r\n").0,
        Frame::Value(Value::Integer(i64::MAX))
    );
    assert_eq!(
        done(b":-9223372036854775808\r\n").0,
        Frame::Value(Value::Integer(i64::MIN))
    );
    for bad in [
        &b":9223372036854775808\r\n"[..],
        b":-9223372036854775809\r\n",
        b":\r\n",
        b":-\r\n",
        b":-0\r\n",
        b":01\r\n",
        b":+1\r\n",
        b": 1\r\n",
        b"$01\r\nx\r\n",
        b"*1x\r\n",
    ] {
        assert_eq!(decode(bad, &LIMITS), Err(RespError::BadNumber), "{bad:?}");
    }
}

#[test]
fn a_bulk_string_over_the_limit_is_known_at_its_header() {
    let limits = Limits { max_frame: 64 };
    // Nothing of the announced gigabyte is awaited: the caller skips it.
    let big = |before, len| Frame::Oversized(Oversized { before, len });
    assert_eq!(
        decode(b"$1073741824\r\n", &limits),
        Ok(Parsing::Done {
            value: big(None, 1 << 30),
            offset: 13
        })
    );
    let push = b"*3\r\n$7\r\nmessage\r\n$5\r\n/chat\r\n$99999999999999999\r\n";
    let Ok(Parsing::Done { value, offset }) = decode(push, &limits) else {
        panic!("{:?}", decode(push, &limits));
    };
    assert_eq!(offset, push.len());
    let Frame::Oversized(o) = value else {
        panic!("{value:?}")
    };
    assert_eq!(
        o.before.unwrap().as_slice(),
        [Value::Bulk(b"message"), Value::Bulk(b"/chat")]
    );
    assert_eq!(o.skip(), 99999999999999999 + 2);
    // Not the last element: what follows could not be found.
    assert_eq!(decode(b"*2\r\n$100\r\n", &limits), Err(RespError::TooLarge));
    // The limit is on the whole reply: 4 + 8 + 5 + 51 bytes of framing
    // and data.
    let ok = [&b"*2\r\n$2\r\nab\r\n$45\r\n"[..], &[b'x'; 45], b"\r\n"].concat();
    assert_eq!(ok.len(), 64);
    assert!(matches!(
        decode(&ok, &limits),
        Ok(Parsing::Done { offset: 64, .. })
    ));
    assert!(matches!(
        decode(b"*2\r\n$2\r\nab\r\n$46\r\n", &limits),
        Ok(Parsing::Done {
            value: Frame::Oversized(Oversized { len: 46, .. }),
            offset: 17
        })
    ));
}

#[test]
fn structural_errors() {
    let cases: [(&[u8], RespError); 10] = [
        (b"x", RespError::BadType(b'x')),
        (b"*1\r\n%", RespError::BadType(b'%')),
        (b"*1\r\n*0\r\n", RespError::Nested),
        (b"*9\r\n", RespError::TooManyItems),
        (b"*-2\r\n", RespError::BadLength),
        (b"$-2\r\n", RespError::BadLength),
        (b"+OK\n", RespError::BadLineEnd),
        (b"+O\rK\r\n", RespError::BadLineEnd),
        (b"$2\r\nabc\r\n", RespError::BadLineEnd),
        (b"-\n", RespError::BadLineEnd),
    ];
    for (input, err) in cases {
        assert_eq!(decode(input, &LIMITS), Err(err), "{input:?}");
    }
    let long = [&b"+"[..], &[b'a'; MAX_LINE + 1]].concat();
    assert_eq!(decode(&long, &LIMITS), Err(RespError::LineTooLong));
    let fits = [&b"+"[..], &[b'a'; MAX_LINE]].concat();
    assert_eq!(decode(&fits, &LIMITS), Ok(Parsing::NeedMore(1)));
}

#[test]
fn every_prefix_of_known_replies_matches_the_reference() {
    let mut stream = Vec::new();
    for input in [
        &b"+OK\r\n"[..],
        b"-ERR x y\r\n",
        b":1234567\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*3\r\n$7\r\nmessage\r\n$4\r\nwsd:\r\n$3\r\n\x01\x02\x03\r\n",
        b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
        b"*2\r\n$2\r\nab\r\n",
        b"$5\r\nab\r\ncXY",
        b"*1\r\n*1\r\n",
    ] {
        check_all_prefixes(input, 1 << 20);
        stream.extend_from_slice(input);
    }
    // And replies back to back: each decoded from where the last ended.
    let mut at = 0;
    let mut count = 0;
    while let Ok(Parsing::Done { offset, .. }) = decode(&stream[at..], &LIMITS) {
        at += offset;
        count += 1;
    }
    assert_eq!(count, 7);
    assert_eq!(decode(&stream[at..], &LIMITS), Err(RespError::BadLineEnd));
}

/// Bytes drawn mostly from RESP's alphabet, so that random input gets deep.
fn resp_ish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(&b"+-:$*\r\n0123456789"[..]),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..64)
}

/// A well-formed reply.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    let text = "[a-zA-Z0-9 ]{0,12}";
    let value = prop_oneof![
        text.prop_map(|s| format!("+{s}\r\n").into_bytes()),
        text.prop_map(|s| format!("-{s}\r\n").into_bytes()),
        any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
        Just(b"$-1\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| {
            let mut out = Vec::new();
            write_bulk(&mut out, &b);
            out
        }),
    ];
    prop_oneof![
        value.clone(),
        prop::collection::vec(value, 0..=MAX_ITEMS).prop_map(|vs| {
            let mut out = Vec::new();
            write_array_header(&mut out, vs.len());
            vs.iter().for_each(|v| out.extend_from_slice(v));
            out
        }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_match_the_reference_at_every_prefix(bytes in resp_ish(), max_frame in 0usize..80) {
        check_all_prefixes(&bytes, max_frame);
    }

    #[test]
    fn well_formed_replies_decode_whole_and_re_encode_exactly(frames in prop::collection::vec(frame_bytes(), 1..4)) {
        let stream = frames.concat();
        check_all_prefixes(&stream, 1 << 20);
        let mut at = 0;
        for f in &frames {
            let (value, offset) = done(&stream[at..]);
            prop_assert_eq!(offset, f.len());
            let mut again = Vec::new();
            value.encode(&mut again);
            prop_assert_eq!(&again, f);
            at += offset;
        }
    }
}

#[test]
fn commands_are_arrays_of_bulk_strings() {
    let mut out = Vec::new();
    write_command(&mut out, &[b"SUBSCRIBE", b"wsd:/a", b""]);
    assert_eq!(out, b"*3\r\n$9\r\nSUBSCRIBE\r\n$6\r\nwsd:/a\r\n$0\r\n\r\n");
    let (f, n) = done(&out);
    assert_eq!(n, out.len());
    assert_eq!(
        items(&f),
        [
            Value::Bulk(b"SUBSCRIBE"),
            Value::Bulk(b"wsd:/a"),
            Value::Bulk(b"")
        ]
    );
}
