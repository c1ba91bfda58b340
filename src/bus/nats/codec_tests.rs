//! The NATS codec: every operation, every truncation point, every refusal.

use super::*;

const LIMITS: Limits = Limits { max_payload: 16 };

fn done(buf: &[u8]) -> (Op<'_>, usize) {
    match decode(buf, &LIMITS) {
        Ok(Parsing::Done { value, offset }) => (value, offset),
        other => panic!("{}: {other:?}", buf.escape_ascii()),
    }
}

fn head<'a>(subject: &'a [u8], sid: u64, reply: Option<&'a [u8]>) -> MsgHead<'a> {
    MsgHead {
        subject,
        sid,
        reply,
    }
}

#[test]
fn each_server_operation_decodes() {
    assert_eq!(done(b"PING\r\n"), (Op::Ping, 6));
    assert_eq!(done(b"pong\r\nPING\r\n"), (Op::Pong, 6));
    assert_eq!(done(b"+OK\r\n"), (Op::Ok, 5));
    assert_eq!(
        done(b"INFO {\"max_payload\":1024}\r\n"),
        (Op::Info(b"{\"max_payload\":1024}"), 27)
    );
    assert_eq!(
        done(b"-ERR 'Authorization Violation'\r\n"),
        (Op::Err(b"Authorization Violation"), 32)
    );
    assert_eq!(
        done(b"MSG wsd./chat 2 5\r\nhello\r\nPING\r\n"),
        (Op::Msg(head(b"wsd./chat", 2, None), b"hello"), 26)
    );
    assert_eq!(
        done(b"MSG\twsd./a  13 _INBOX.x 0\r\n\r\n"),
        (Op::Msg(head(b"wsd./a", 13, Some(b"_INBOX.x")), b""), 29)
    );
}

#[test]
fn a_payload_may_hold_any_byte() {
    let (op, _) = done(b"MSG s 1 4\r\n\r\n\0\n\r\n");
    assert_eq!(op, Op::Msg(head(b"s", 1, None), b"\r\n\0\n"));
}

#[test]
fn every_truncation_needs_more_and_consumes_nothing() {
    let whole: &[u8] = b"MSG wsd./chat 2 5\r\nhello\r\n";
    for cut in 0..whole.len() {
        match decode(&whole[..cut], &LIMITS) {
            Ok(Parsing::NeedMore(n)) => assert!(n >= 1 && cut + n <= whole.len(), "cut {cut}: {n}"),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    // Once the line is in, the count is exact.
    assert_eq!(decode(&whole[..19], &LIMITS), Ok(Parsing::NeedMore(7)));
}

#[test]
fn an_oversized_payload_is_announced_at_its_line() {
    let (op, offset) = done(b"MSG s 1 17\r\n");
    assert_eq!(op, Op::Oversized(head(b"s", 1, None), 19));
    assert_eq!(offset, 12);
    let (op, _) = done(b"MSG s 1 16\r\n0123456789abcdef\r\n");
    assert!(matches!(op, Op::Msg(_, p) if p.len() == 16));
}

#[test]
fn malformed_input_is_refused_as_soon_as_it_shows() {
    for (bad, want) in [
        (&b"HMSG s 1 0 0\r\n\r\n"[..], NatsError::UnknownOp),
        (b"NOPE\r\n", NatsError::UnknownOp),
        (b"PING\n", NatsError::BadLineEnd),
        (b"PI\rNG\r\n", NatsError::BadLineEnd),
        (b"PI\rNG", NatsError::BadLineEnd),
        (b"PING extra\r\n", NatsError::BadArgs),
        (b"MSG s 1\r\n", NatsError::BadArgs),
        (b"MSG s 1 r 2 3\r\n", NatsError::BadArgs),
        (b"MSG s x 2\r\n", NatsError::BadArgs),
        (b"MSG s 1 -2\r\n", NatsError::BadArgs),
        (b"MSG s 1 99999999999999999999\r\n", NatsError::BadArgs),
        (b"MSG s 1 2\r\nabX", NatsError::BadLineEnd),
        (b"MSG s 1 2\r\nab\rX", NatsError::BadLineEnd),
    ] {
        assert_eq!(decode(bad, &LIMITS), Err(want), "{}", bad.escape_ascii());
    }
}

#[test]
fn a_line_without_end_is_refused_at_the_limit() {
    let mut long = b"INFO ".to_vec();
    long.resize(MAX_LINE + 1, b'x');
    assert_eq!(decode(&long, &LIMITS), Ok(Parsing::NeedMore(1)));
    long.push(b'x');
    assert_eq!(decode(&long, &LIMITS), Err(NatsError::LineTooLong));
    let mut fits = b"INFO ".to_vec();
    fits.resize(MAX_LINE, b'x');
    fits.extend_from_slice(b"\r\n");
    assert!(matches!(done(&fits).0, Op::Info(_)));
}

#[test]
fn commands_are_written_as_the_protocol_spells_them() {
    let mut out = Vec::new();
    write_pub_header(&mut out, b"wsd./chat", 5);
    out.extend_from_slice(b"hello");
    write_crlf(&mut out);
    assert_eq!(out.len(), pub_overhead(9, 5) + 5);
    write_sub(&mut out, b"wsd./chat", 2);
    write_unsub(&mut out, 3);
    write_ping(&mut out);
    write_pong(&mut out);
    assert_eq!(
        out,
        b"PUB wsd./chat 5\r\nhello\r\nSUB wsd./chat 2\r\nUNSUB 3\r\nPING\r\nPONG\r\n"
    );
    for len in [0, 9, 10, 99, 100, 123_456] {
        let mut o = Vec::new();
        write_pub_header(&mut o, b"s", len);
        assert_eq!(o.len() + 2, pub_overhead(1, len), "{len}");
    }
}

#[test]
fn connect_carries_credentials_only_when_given() {
    let mut c = Connect {
        verbose: false,
        pedantic: false,
        tls_required: false,
        name: "wsd-a",
        lang: "rust",
        version: "1",
        protocol: 1,
        echo: false,
        headers: false,
        user: None,
        pass: None,
        auth_token: None,
    };
    let mut out = Vec::new();
    write_connect(&mut out, &c);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("CONNECT {") && text.ends_with("}\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\"echo\":false") && !text.contains("pass"),
        "{text}"
    );
    c.user = Some("u\"x");
    c.pass = Some("p");
    let mut out = Vec::new();
    write_connect(&mut out, &c);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""user":"u\"x","pass":"p""#), "{text}");
}
