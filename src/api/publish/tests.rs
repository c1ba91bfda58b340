//! [`decide`]: routes, refusals in order, text and binary, keys and tokens.

use super::*;

const KEY: &[u8] = b"0123456789abcdef";

fn keys() -> ApiKeys {
    let mut k = ApiKeys::default();
    k.add(KEY).unwrap();
    k
}

fn req<'a>(
    method: &'a str,
    target: &'a str,
    ct: Option<&'a [u8]>,
    auth: Option<&'a [u8]>,
    body: &'a [u8],
) -> Request<'a> {
    Request {
        method,
        target,
        version: 1,
        content_type: ct,
        authorization: auth,
        content_length: Some(body.len() as u64),
        chunked: false,
        keep_alive: true,
        body,
    }
}

const BEARER: Option<&[u8]> = Some(b"Bearer 0123456789abcdef");

fn status(d: &Decision<'_>) -> u16 {
    match d {
        Decision::Refuse(r) => r.status,
        Decision::NotPublish => 0,
        _ => 200,
    }
}

#[test]
fn targets_route_as_websocket_paths_name_rooms() {
    assert_eq!(route("/publish/chat/eu"), Route::Room("/chat/eu"));
    assert_eq!(route("/publish/chat/eu?x=1"), Route::Room("/chat/eu"));
    assert_eq!(
        route("/publish/caf%C3%A9"),
        Route::Room("/caf%C3%A9"),
        "not decoded"
    );
    assert_eq!(route("http://example.com/publish/a"), Route::Room("/a"));
    assert_eq!(route("http://example.com?/publish/a"), Route::Other);
    assert_eq!(route("/publish/"), Route::Room("/"));
    assert_eq!(route("/publish"), Route::Batch);
    assert_eq!(route("/publish?x"), Route::Batch);
    for other in ["/", "/publishx", "/metrics", "*", "/pub/lish"] {
        assert_eq!(route(other), Route::Other, "{other}");
    }
}

#[test]
fn a_publish_is_text_or_binary_by_its_content_type() {
    let k = keys();
    let access = Access {
        keys: &k,
        tokens: None,
    };
    for (ct, kind) in [
        (Some(&b"text/plain; charset=utf-8"[..]), MessageKind::Text),
        (Some(b"TEXT/csv"), MessageKind::Text),
        (Some(b"application/json"), MessageKind::Text),
        (Some(b"application/octet-stream"), MessageKind::Binary),
        (Some(b"application/jsonx"), MessageKind::Binary),
        (Some(b"text/"), MessageKind::Binary),
        (None, MessageKind::Binary),
    ] {
        let r = req("POST", "/publish/chat/eu", ct, BEARER, b"hi");
        assert_eq!(
            decide(&r, &access),
            Decision::One(Message {
                room: Cow::Borrowed("/chat/eu"),
                kind,
                payload: Cow::Borrowed(b"hi"),
            }),
            "{ct:?}"
        );
    }
    let r = req("POST", "/publish/a", Some(b"text/plain"), BEARER, b"\xff");
    assert_eq!(status(&decide(&r, &access)), 400);
    let r = req("POST", "/publish/a", None, BEARER, b"\xff");
    assert_eq!(status(&decide(&r, &access)), 200, "binary is any bytes");
    let r = req("POST", "/publish/", None, BEARER, b"x");
    assert_eq!(status(&decide(&r, &access)), 400, "a room is named");
}

#[test]
fn refusals_come_in_an_order_that_tells_a_stranger_nothing() {
    let k = keys();
    let on = Access {
        keys: &k,
        tokens: None,
    };
    let none = ApiKeys::default();
    let off = Access {
        keys: &none,
        tokens: None,
    };
    let bad_body = b"\xff";
    let text = Some(&b"text/plain"[..]);
    for (r, access, want, says) in [
        (req("GET", "/metrics", None, None, b""), &on, 0, ""),
        (req("GET", "/publish/a", None, None, b""), &on, 405, "POST"),
        (req("PUT", "/publish", None, BEARER, b""), &on, 405, "POST"),
        (
            req("POST", "/publish/a", text, None, bad_body),
            &off,
            403,
            "--api-key FILE",
        ),
        (
            req("POST", "/publish/a", text, None, bad_body),
            &on,
            401,
            "Bearer",
        ),
        (
            req("POST", "/publish/a", text, Some(b"Basic eDp5"), bad_body),
            &on,
            401,
            "Bearer",
        ),
        (
            req("POST", "/publish/a", text, Some(b"Bearer"), bad_body),
            &on,
            401,
            "Bearer",
        ),
        (
            req(
                "POST",
                "/publish/a",
                text,
                Some(b"Bearer 0123456789abcdeX"),
                bad_body,
            ),
            &on,
            401,
            "wrong",
        ),
        (
            req("POST", "/publish/a", text, BEARER, bad_body),
            &on,
            400,
            "UTF-8",
        ),
        (
            req("POST", "/publish", text, BEARER, b""),
            &on,
            415,
            "x-ndjson",
        ),
        (
            req(
                "POST",
                "/publish",
                Some(b"application/x-ndjson"),
                BEARER,
                b"{}",
            ),
            &on,
            400,
            "line 1",
        ),
    ] {
        let d = decide(&r, access);
        assert_eq!(status(&d), want, "{r:?}: {d:?}");
        if let Decision::Refuse(refusal) = d {
            assert!(refusal.message.contains(says), "{}", refusal.message);
        }
    }
    // The scheme is case-insensitive.
    let r = req(
        "POST",
        "/publish/a",
        None,
        Some(b"bEaReR   0123456789abcdef "),
        b"",
    );
    assert_eq!(status(&decide(&r, &on)), 200);
}

#[test]
fn an_ndjson_batch_is_all_or_nothing() {
    let k = keys();
    let access = Access {
        keys: &k,
        tokens: None,
    };
    let nd = Some(&b"application/x-ndjson; charset=utf-8"[..]);
    let body = b"{\"room\":\"/a\",\"text\":\"1\"}\n{\"room\":\"/b\",\"base64\":\"/w==\"}\n";
    let Decision::Many(ms) = decide(&req("POST", "/publish", nd, BEARER, body), &access) else {
        panic!("not a batch")
    };
    assert_eq!(ms.len(), 2);
    assert_eq!(
        (&*ms[1].room, ms[1].kind, &*ms[1].payload),
        ("/b", MessageKind::Binary, &[255][..])
    );
    let bad = b"{\"room\":\"/a\",\"text\":\"1\"}\nnot json\n";
    let d = decide(&req("POST", "/publish", nd, BEARER, bad), &access);
    assert!(
        matches!(d, Decision::Refuse(ref r) if r.status == 400 && r.message.starts_with("line 2: ")),
        "{d:?}"
    );
}

#[test]
fn tokens_are_asked_about_every_room_keys_are_not() {
    let k = keys();
    let grant = |token: &[u8], room: &str| match (token, room) {
        (b"tok", r) if r.starts_with("/open") => Grant::Write,
        (b"tok", _) => Grant::NoWrite,
        _ => Grant::Invalid,
    };
    let access = Access {
        keys: &k,
        tokens: Some(&grant),
    };
    let tok = Some(&b"Bearer tok"[..]);
    let nd = Some(&b"application/x-ndjson"[..]);
    assert_eq!(
        status(&decide(
            &req("POST", "/publish/open/1", None, tok, b""),
            &access
        )),
        200
    );
    assert_eq!(
        status(&decide(
            &req("POST", "/publish/shut", None, tok, b""),
            &access
        )),
        403
    );
    let junk = Some(&b"Bearer junk"[..]);
    assert_eq!(
        status(&decide(
            &req("POST", "/publish/open", None, junk, b""),
            &access
        )),
        401
    );
    let body = b"{\"room\":\"/open\",\"text\":\"1\"}\n{\"room\":\"/shut\",\"text\":\"2\"}";
    let d = decide(&req("POST", "/publish", nd, tok, body), &access);
    assert!(
        matches!(d, Decision::Refuse(ref r) if r.status == 403 && r.message.contains("/shut")),
        "{d:?}"
    );
    // A key may publish anywhere, whatever tokens would say.
    assert_eq!(
        status(&decide(&req("POST", "/publish", nd, BEARER, body), &access)),
        200
    );
    // Tokens alone turn publishing on.
    let none = ApiKeys::default();
    let tokens_only = Access {
        keys: &none,
        tokens: Some(&grant),
    };
    assert_eq!(
        status(&decide(
            &req("POST", "/publish/open", None, tok, b""),
            &tokens_only
        )),
        200
    );
}
