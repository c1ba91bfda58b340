//! The handshake's unit tests and properties.

use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(extra: &str) -> String {
    format!("GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n")
}

fn parse(s: &str) -> Result<Parsing<Head<'_>>, HandshakeError> {
    parse_request(s.as_bytes(), 8192)
}

fn upgrade(s: &str) -> Request<'_> {
    match parse(s) {
        Ok(Parsing::Done {
            value: Head::Upgrade(r),
            ..
        }) => r,
        other => panic!("expected an upgrade, got {other:?}"),
    }
}

#[test]
fn rfc_example_key_gives_the_rfc_accept() {
    // RFC 6455 §1.3.
    assert_eq!(&accept_key(KEY.as_bytes()), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn valid_request_is_accepted() {
    let req = request("Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n");
    match parse(&req) {
        Ok(Parsing::Done {
            value: Head::Upgrade(value),
            offset,
        }) => {
            assert_eq!(offset, req.len());
            assert_eq!(value.path, "/chat");
            assert_eq!(value.key, KEY.as_bytes());
            assert_eq!(value.origin, Some(&b"http://example.com"[..]));
            let offered: Vec<&[u8]> = value.offered_protocols().collect();
            assert_eq!(offered, [&b"chat"[..], b"superchat"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tokens_are_case_insensitive_and_in_lists() {
    let req = format!("GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: {KEY}\r\nsec-websocket-version: 13\r\n\r\n");
    assert!(matches!(parse(&req), Ok(Parsing::Done { .. })));
}

#[test]
fn every_prefix_of_a_request_needs_more() {
    let req = request("");
    for cut in 0..req.len() {
        assert_eq!(parse(&req[..cut]), Ok(Parsing::NeedMore(1)), "cut at {cut}");
    }
}

#[test]
fn bytes_after_the_head_are_not_consumed() {
    let mut req = request("").into_bytes();
    let head = req.len();
    req.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
    assert!(
        matches!(parse_request(&req, 8192), Ok(Parsing::Done { offset, .. }) if offset == head)
    );
}

#[test]
fn head_end_detection() {
    assert!(has_head_end(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(has_head_end(b"GET / HTTP/1.1\n\n"));
    assert!(!has_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    assert!(!has_head_end(b"\n\r"));
}

fn status_of(s: &str) -> u16 {
    match parse(s) {
        Err(e) => e.status(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn plain_http_1_1_needs_exactly_one_host() {
    assert_eq!(
        parse("GET /healthz HTTP/1.1\r\n\r\n"),
        Err(HandshakeError::BadRequest("missing Host"))
    );
    assert_eq!(
        parse("GET /healthz HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
        Err(HandshakeError::BadRequest("more than one Host header"))
    );
    assert!(matches!(
        parse("GET /healthz HTTP/1.0\r\n\r\n"),
        Ok(Parsing::Done {
            value: Head::Plain { .. },
            ..
        })
    ));
}

#[test]
fn requests_without_websocket_headers_are_plain_http() {
    for (req, method, path) in [
        (
            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET",
            "/metrics",
        ),
        ("HEAD /healthz?x=1 HTTP/1.0\r\n\r\n", "HEAD", "/healthz?x=1"),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n",
            "POST",
            "/",
        ),
    ] {
        assert_eq!(
            parse(req),
            Ok(Parsing::Done {
                value: Head::Plain { method, path },
                offset: req.len()
            })
        );
    }
}

#[test]
fn absolute_form_targets_are_accepted() {
    let req = request("").replace("GET /chat ", "GET ws://server.example.com/chat?x=1 ");
    assert_eq!(upgrade(&req).path, "/chat?x=1");
    let plain = "GET http://x:9001/healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(matches!(
        parse(plain),
        Ok(Parsing::Done {
            value: Head::Plain {
                path: "/healthz",
                ..
            },
            ..
        })
    ));
    let bare = "GET HTTP://x HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(matches!(
        parse(bare),
        Ok(Parsing::Done {
            value: Head::Plain { path: "/", .. },
            ..
        })
    ));
    // OPTIONS * is plain HTTP, for the HTTP side to refuse.
    let star = "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(matches!(
        parse(star),
        Ok(Parsing::Done {
            value: Head::Plain {
                method: "OPTIONS",
                path: "*"
            },
            ..
        })
    ));
    assert_eq!(
        status_of(&request("").replace("/chat", "ftp://x/chat")),
        400
    );
}

#[test]
fn protocol_headers_may_repeat_and_the_clients_order_wins() {
    let req = request("Sec-WebSocket-Protocol: a, chat\r\nSec-WebSocket-Protocol: superchat\r\n");
    let r = upgrade(&req);
    let supported = ["superchat".to_string(), "chat".to_string()];
    assert_eq!(r.select_protocol(&supported), Some("chat"));
    assert_eq!(
        r.select_protocol(&["superchat".to_string()]),
        Some("superchat")
    );
    assert_eq!(
        r.select_protocol(&["Chat".to_string()]),
        None,
        "names are case-sensitive"
    );
    assert_eq!(r.select_protocol(&[]), None);
    let five = request(&"Sec-WebSocket-Protocol: x\r\n".repeat(MAX_PROTOCOL_HEADERS + 1));
    assert_eq!(status_of(&five), 400);
}

#[test]
fn a_required_protocol_refuses_offers_without_an_accepted_name() {
    let supported = ["chat".to_string(), "superchat".to_string()];
    let offering = |offer: &str| {
        let req = request(&format!("Sec-WebSocket-Protocol: {offer}\r\n"));
        upgrade(&req).negotiate_protocol(&supported, true)
    };
    assert_eq!(offering("x, superchat"), Ok(Some("superchat")));
    assert_eq!(offering("x, Chat"), Err(HandshakeError::NoProtocol));
    assert_eq!(
        upgrade(&request("")).negotiate_protocol(&supported, true),
        Err(HandshakeError::NoProtocol)
    );
    assert_eq!(
        upgrade(&request("")).negotiate_protocol(&supported, false),
        Ok(None)
    );
    let mut out = Vec::new();
    write_refusal(&mut out, HandshakeError::NoProtocol, &supported);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.ends_with("; accepted: chat, superchat\n"), "{text}");
}

#[test]
fn tokens() {
    for good in ["chat", "chat.v2", "x-y_z~1", "!#$%&'*+-.^_`|~"] {
        assert!(is_token(good), "{good}");
    }
    for bad in ["", "a b", "a,b", "\"q\"", "a\r\n", "é"] {
        assert!(!is_token(bad), "{bad:?}");
    }
}

#[test]
fn extension_lines_are_kept_in_order() {
    let req = request(
        "Sec-WebSocket-Extensions: foo, permessage-deflate\r\nsec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n",
    );
    assert_eq!(
        upgrade(&req).extension_headers(),
        [
            &b"foo, permessage-deflate"[..],
            b"permessage-deflate; client_max_window_bits"
        ]
    );
    assert!(upgrade(&request("")).extension_headers().is_empty());
    let five = request(&"Sec-WebSocket-Extensions: x\r\n".repeat(MAX_EXTENSION_HEADERS + 1));
    assert_eq!(status_of(&five), 400);
    let mut out = Vec::new();
    write_accept_with(&mut out, KEY.as_bytes(), None, Some("permessage-deflate"));
    assert!(out.ends_with(b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"));
}

#[test]
fn origin_checks() {
    let allowed = ["https://example.com".to_string()];
    let with = request("Origin: HTTPS://Example.com\r\n");
    assert!(upgrade(&with).origin_allowed(&allowed));
    assert!(!upgrade(&request("Origin: https://evil.example\r\n")).origin_allowed(&allowed));
    assert!(
        !upgrade(&request("")).origin_allowed(&allowed),
        "no Origin is refused when a list is set"
    );
    assert!(
        upgrade(&request("")).origin_allowed(&[]),
        "no list allows all"
    );
}

#[test]
fn wrong_version_is_426() {
    assert_eq!(
        status_of(&request("").replace("Version: 13", "Version: 8")),
        426
    );
}

#[test]
fn not_get_is_405() {
    assert_eq!(status_of(&request("").replace("GET", "POST")), 405);
}

#[test]
fn malformed_requests_are_400() {
    let req = request("");
    for bad in [
        req.replace("HTTP/1.1", "HTTP/1.0"),
        req.replace("Host: server.example.com\r\n", ""),
        req.replace("Upgrade: websocket\r\n", ""),
        req.replace("Upgrade: websocket", "Upgrade: h2c"),
        req.replace("Connection: Upgrade", "Connection: keep-alive"),
        req.replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), ""),
        req.replace(KEY, "dGhlIHNhbXBsZSBub25jZQ"),
        req.replace(KEY, "dGhlIHNhbXBsZSBub25jZXg="),
        req.replace("Sec-WebSocket-Version: 13\r\n", ""),
        req.replace("/chat", "*"),
        request(&format!("Sec-WebSocket-Key: {KEY}\r\n")),
        "GET / HTTP/1.1\r\nHost\r\n\r\n".to_string(),
        "\x00\x01\x02\r\n\r\n".to_string(),
    ] {
        assert_eq!(status_of(&bad), 400, "{bad:?}");
    }
}

#[test]
fn oversized_head_is_431() {
    let big = request(&format!("X-Filler: {}\r\n", "a".repeat(9000)));
    assert_eq!(status_of(&big), 431);
    // Still incomplete at the limit: also 431, not a wait for more.
    assert_eq!(
        parse_request(&big.as_bytes()[..8192], 8192),
        Err(HandshakeError::TooLarge)
    );
    let many = request(&"X: y\r\n".repeat(MAX_HEADERS));
    assert_eq!(status_of(&many), 431);
}

#[test]
fn error_answers_are_complete_http() {
    for err in [
        HandshakeError::BadRequest("why"),
        HandshakeError::Forbidden,
        HandshakeError::MethodNotAllowed,
        HandshakeError::UnsupportedVersion,
        HandshakeError::TooLarge,
        HandshakeError::Unavailable,
        HandshakeError::NoProtocol,
    ] {
        let mut out = Vec::new();
        write_refusal(&mut out, err, &["a".to_string(), "b".to_string()]);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(&out) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("{other:?}"),
        };
        assert_eq!(resp.code, Some(err.status()));
        let len: usize = resp
            .headers
            .iter()
            .find(|h| h.name == "Content-Length")
            .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
            .unwrap();
        assert_eq!(out.len() - n, len);
        if err == HandshakeError::UnsupportedVersion {
            assert!(resp
                .headers
                .iter()
                .any(|h| h.name == "Sec-WebSocket-Version" && h.value == b"13"));
        }
    }
}

#[test]
fn client_request_and_server_answer_agree() {
    let key = client_key([7; 16]);
    let mut req = Vec::new();
    write_request(&mut req, "127.0.0.1:9001", "/", &key);
    let parsed = match parse_request(&req, 8192) {
        Ok(Parsing::Done {
            value: Head::Upgrade(value),
            ..
        }) => value,
        other => panic!("{other:?}"),
    };
    let mut resp = Vec::new();
    write_accept(&mut resp, parsed.key, None);
    assert_eq!(
        parse_response(&resp, &key),
        Ok(Parsing::Done {
            value: (),
            offset: resp.len()
        })
    );
    assert_eq!(
        parse_response(&resp, &client_key([8; 16])),
        Err(ResponseError::BadAccept)
    );
    assert_eq!(
        parse_response(&resp[..resp.len() - 1], &key),
        Ok(Parsing::NeedMore(1))
    );
    let mut refused = Vec::new();
    write_error(&mut refused, HandshakeError::UnsupportedVersion);
    assert_eq!(
        parse_response(&refused, &key),
        Err(ResponseError::Status(426))
    );
}

#[test]
fn bytes_that_cannot_begin_a_request_line_are_refused() {
    let not_http = Err(HandshakeError::BadRequest("not an HTTP request"));
    for bad in [
        &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
        b"hello\r\n",
        b"\x00",
        b" GET",
        b"GET\t/",
        b"GET  /",
        b"GET /a\x01",
        b"GET /a\x7f",
        b"GET / HTTP/1.1 ",
        b"GET / HTTP/11",
        b"GET / FTP/1.1",
        b"GET / http/1.1",
        b"GET / HTTP/1.1\r\r",
        b"\rGET",
        b"\r\r\n",
        b"{\"jsonrpc\": \"2.0\"}",
    ] {
        assert_eq!(
            check_request_line(bad),
            not_http,
            "{:?}",
            bad.escape_ascii()
        );
    }
    for tls in [&[0x16][..], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]] {
        assert!(
            matches!(check_request_line(tls), Err(HandshakeError::BadRequest(why)) if why.contains("TLS")),
            "{tls:?}"
        );
    }
}

#[test]
fn request_lines_so_far_are_not_refused() {
    for good in [
        &b""[..],
        b"\r",
        b"\r\n\n\r\nG",
        b"G",
        b"GET",
        b"GET ",
        b"M-SEARCH *",
        b"GET http://x/y?z={\"a\"} HTTP/",
        b"GET /\xc3\xa9 HTTP/1.1\r",
        // Other versions are the parser's to refuse, not this check's.
        b"GET / HTTP/2.0\n",
        // The line is whole: what follows is not looked at.
        b"GET / HTTP/1.1\r\n\x00\x01",
    ] {
        assert_eq!(
            check_request_line(good),
            Ok(()),
            "{:?}",
            good.escape_ascii()
        );
    }
    let req = request("");
    for cut in 0..=req.len() {
        assert_eq!(
            check_request_line(&req.as_bytes()[..cut]),
            Ok(()),
            "cut at {cut}"
        );
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    // RFC 9110 tchar as a regex class; `-` last so it is not a range.
    const TCHARS: &str = "!#$%&'*+.^_`|~0-9A-Za-z-";

    /// A valid request head, plain or upgrade, with what RFC 9112
    /// allows a client to vary in the request line.
    fn valid_request() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(prop_oneof![Just("\r\n"), Just("\n")], 0..3),
            prop_oneof![
                Just("GET".to_string()),
                proptest::string::string_regex(&format!("[{TCHARS}]{{1,12}}")).unwrap()
            ],
            proptest::string::string_regex("/[!-~]{0,40}|http://[a-z]{1,8}(/[!-~]{0,20})?").unwrap(),
            prop_oneof![Just("HTTP/1.1"), Just("HTTP/1.0")],
            prop_oneof![Just("\r\n"), Just("\n")],
            any::<bool>(),
        )
            .prop_map(|(empty, method, target, version, eol, upgrade)| {
                let mut req = empty.concat();
                req.push_str(&format!("{method} {target} {version}{eol}Host: x{eol}"));
                // Only GET over HTTP/1.1 may upgrade (§4.1).
                if upgrade && method == "GET" && version == "HTTP/1.1" {
                    req.push_str(&format!("Upgrade: websocket{eol}Connection: Upgrade{eol}Sec-WebSocket-Key: {KEY}{eol}Sec-WebSocket-Version: 13{eol}"));
                }
                req.push_str(eol);
                req.into_bytes()
            })
    }

    /// A valid request with a few bytes overwritten, inserted or cut,
    /// mostly in the request line.
    fn mutated_request() -> impl Strategy<Value = Vec<u8>> {
        (
            valid_request(),
            prop::collection::vec((0..48usize, any::<u8>(), 0..3u8), 1..4),
        )
            .prop_map(|(mut req, edits)| {
                for (at, byte, how) in edits {
                    let at = at.min(req.len());
                    match how {
                        0 if at < req.len() => req[at] = byte,
                        1 => req.insert(at, byte),
                        _ if at < req.len() => {
                            req.remove(at);
                        }
                        _ => req.push(byte),
                    }
                }
                req
            })
    }

    /// What httparse alone says of `buf`: whether it is already wrong.
    fn httparse_refuses(buf: &[u8]) -> bool {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        httparse::Request::new(&mut headers).parse(buf).is_err()
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_request(&bytes, 512);
            let _ = has_head_end(&bytes);
            let _ = check_request_line(&bytes);
        }

        #[test]
        fn a_valid_request_split_at_any_point_is_never_refused_early(req in valid_request()) {
            prop_assert!(
                matches!(parse_request(&req, 8192), Ok(Parsing::Done { .. })),
                "the generator made an invalid request: {:?}", req.escape_ascii().to_string()
            );
            for cut in 0..=req.len() {
                prop_assert_eq!(check_request_line(&req[..cut]), Ok(()), "cut at {}", cut);
            }
        }

        /// The check never refuses what the parser would take, and once
        /// it refuses, more bytes do not change its mind.
        #[test]
        fn an_early_refusal_is_one_the_parser_makes_too(req in mutated_request()) {
            let refused_at = (0..=req.len()).find(|&cut| check_request_line(&req[..cut]).is_err());
            if let Some(cut) = refused_at {
                prop_assert!(httparse_refuses(&req[..cut]), "httparse takes {:?}", req[..cut].escape_ascii().to_string());
                prop_assert!(parse_request(&req, 8192).is_err());
                for longer in cut..=req.len() {
                    prop_assert!(check_request_line(&req[..longer]).is_err());
                }
            } else if let Ok(Parsing::Done { offset, .. }) = parse_request(&req, 8192) {
                prop_assert!(offset <= req.len());
            }
        }

        #[test]
        fn arbitrary_bytes_refused_early_are_refused_by_httparse(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if check_request_line(&bytes).is_err() {
                prop_assert!(httparse_refuses(&bytes));
            }
        }
    }
}
