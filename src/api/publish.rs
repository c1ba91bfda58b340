//! What a whole request asks for, and whether it may: pure functions from
//! a [`Request`] (and the keys) to a [`Decision`] the reactor carries out.
//!
//! - `POST /publish/ROOM`: the body is one message to room `/ROOM`. A room
//!   is named exactly as a WebSocket client names it by its request path:
//!   the path as sent (percent-escapes are not decoded), without the query
//!   string; `/publish/chat/eu?x` is room `/chat/eu`.
//! - `POST /publish` with `Content-Type: application/x-ndjson`: many
//!   messages, one JSON object a line (see [`super::ndjson`]).
//!
//! The checks run in an order that tells a stranger nothing: route, method,
//! whether publishing is on at all, the key, and only then the body.

use std::borrow::Cow;

use super::conn::Request;
use super::keys::ApiKeys;
use super::message::shorten;
pub use super::message::{Message, Refusal};
use super::ndjson;
use crate::proto::MessageKind;

/// The most messages an NDJSON request may carry.
pub const MAX_BATCH: usize = 10_000;

/// What access control (tokens) says about a Bearer token and a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The token is valid and its `write` covers the room.
    Write,
    /// The token is valid but may not write to the room: 403.
    NoWrite,
    /// Not a valid token (expired, bad signature, garbage): 401.
    Invalid,
}

/// Access control's verdict on a Bearer token (not an API key) and a room.
pub type TokenCheck<'a> = &'a dyn Fn(&[u8], &str) -> Grant;

/// Who may publish.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    /// The `--api-key` keys: each may publish anywhere.
    pub keys: &'a ApiKeys,
    /// Access control, when it is on: what a Bearer token that is not a
    /// key grants on a room. Called once per room of the request.
    pub tokens: Option<TokenCheck<'a>>,
}

/// The route of a request target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/publish/ROOM`: the room, `/ROOM` (possibly just `/`, which is
    /// refused: a room is named).
    Room(&'a str),
    /// `/publish`: an NDJSON batch.
    Batch,
    /// Anything else: not the API's.
    Other,
}

/// Routes a request target (origin form `/publish/chat?x`, or absolute
/// form `http://host/publish/chat`), ignoring its query.
pub fn route(target: &str) -> Route<'_> {
    let path = match target.split_once("://") {
        Some((_, rest)) if !target.starts_with('/') => {
            // The authority ends at the first '/', '?' or the end.
            let at = rest.find(['/', '?']).and_then(|i| rest.get(i..));
            at.filter(|p| p.starts_with('/')).unwrap_or("/")
        }
        _ => target,
    };
    let path = path.split_once('?').map_or(path, |(path, _query)| path);
    match path.strip_prefix("/publish") {
        Some("") => Route::Batch,
        Some(room) if room.starts_with('/') => Route::Room(room),
        _ => Route::Other,
    }
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Deliver one message, then answer [`super::write_published`].
    One(Message<'a>),
    /// Deliver every message, in order, then answer
    /// [`super::write_accepted`].
    Many(Vec<Message<'a>>),
    /// Deliver nothing; answer [`super::write_refusal`].
    Refuse(Refusal),
    /// Not a publish route: the caller answers (404, or its own plain
    /// endpoints).
    NotPublish,
}

/// Decides what `req` asks for and whether `access` lets it. Messages
/// borrow the request's body where they can.
pub fn decide<'a>(req: &Request<'a>, access: &Access<'_>) -> Decision<'a> {
    match decide_inner(req, access) {
        Ok(decision) => decision,
        Err(refusal) => Decision::Refuse(refusal),
    }
}

/// Checks what a request's head alone tells (route, method, credentials,
/// and a token's right to a named room), before its body is read, so that
/// a client that may not publish cannot make the server buffer a body.
/// `head` is [`super::ApiConn::head`]'s (its body empty). [`decide`] checks
/// all of it again on the whole request.
pub fn admit(head: &Request<'_>, access: &Access<'_>) -> Result<(), Refusal> {
    let route = route(head.target);
    if route == Route::Other {
        return Err(Refusal::new(404, "no such endpoint"));
    }
    if head.method != "POST" {
        return Err(Refusal::new(405, "use POST to publish"));
    }
    let by_key = authenticate(head.authorization, access)?;
    if let (false, Some(tokens), Some(token), Route::Room(room)) =
        (by_key, access.tokens, bearer(head.authorization), route)
    {
        return match tokens(token, room) {
            Grant::Write => Ok(()),
            Grant::NoWrite => Err(Refusal::new(
                403,
                format!("the token may not publish to {}", shorten(room)),
            )),
            Grant::Invalid => Err(Refusal::new(401, "invalid token")),
        };
    }
    Ok(())
}

fn decide_inner<'a>(req: &Request<'a>, access: &Access<'_>) -> Result<Decision<'a>, Refusal> {
    let route = route(req.target);
    if route == Route::Other {
        return Ok(Decision::NotPublish);
    }
    if req.method != "POST" {
        return Err(Refusal::new(405, "use POST to publish"));
    }
    let by_key = authenticate(req.authorization, access)?;
    let messages = match route {
        Route::Room("/") => {
            return Err(Refusal::new(
                400,
                "name a room: POST /publish/ROOM (or NDJSON with \"room\" for /)",
            ))
        }
        Route::Room(room) => {
            let kind = body_kind(req.content_type);
            if kind == MessageKind::Text && std::str::from_utf8(req.body).is_err() {
                return Err(Refusal::new(
                    400,
                    "the body is not UTF-8, but its Content-Type says text: send it as application/octet-stream",
                ));
            }
            Decision::One(Message {
                room: Cow::Borrowed(room),
                kind,
                payload: Cow::Borrowed(req.body),
            })
        }
        Route::Batch => {
            if !media_type_is(req.content_type, b"application/x-ndjson") {
                return Err(Refusal::new(
                    415,
                    "POST /publish takes Content-Type: application/x-ndjson; one message goes to POST /publish/ROOM",
                ));
            }
            Decision::Many(ndjson::parse(req.body, MAX_BATCH)?)
        }
        Route::Other => return Ok(Decision::NotPublish),
    };
    if let (false, Some(tokens), Some(token)) = (by_key, access.tokens, bearer(req.authorization)) {
        let rooms: &mut dyn Iterator<Item = &str> = match &messages {
            Decision::One(m) => &mut std::iter::once(&*m.room),
            Decision::Many(ms) => &mut ms.iter().map(|m| &*m.room),
            _ => &mut std::iter::empty(),
        };
        for room in rooms {
            match tokens(token, room) {
                Grant::Write => {}
                Grant::NoWrite => {
                    return Err(Refusal::new(
                        403,
                        format!("the token may not publish to {}", shorten(room)),
                    ))
                }
                Grant::Invalid => return Err(Refusal::new(401, "invalid token")),
            }
        }
    }
    Ok(messages)
}

/// Checks the credentials: `Ok(true)` for an API key (anywhere), `Ok(false)`
/// for a token whose rooms are checked once they are known.
fn authenticate(authorization: Option<&[u8]>, access: &Access<'_>) -> Result<bool, Refusal> {
    if access.keys.is_empty() && access.tokens.is_none() {
        return Err(Refusal::new(
            403,
            "publishing is off: start wsd with --api-key FILE to enable it",
        ));
    }
    let Some(token) = bearer(authorization) else {
        return Err(Refusal::new(401, "send Authorization: Bearer KEY"));
    };
    if access.keys.matches(token) {
        return Ok(true);
    }
    if access.tokens.is_some() {
        return Ok(false);
    }
    Err(Refusal::new(401, "wrong API key"))
}

/// The credentials of `Authorization: Bearer X` (the scheme is
/// case-insensitive, RFC 9110 §11.1).
fn bearer(authorization: Option<&[u8]>) -> Option<&[u8]> {
    let value = authorization?;
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.starts_with(b" ") {
        return None;
    }
    Some(rest.trim_ascii()).filter(|t| !t.is_empty())
}

/// Text for `text/*` and `application/json`, binary for anything else (or
/// no Content-Type).
fn body_kind(content_type: Option<&[u8]>) -> MessageKind {
    let media = media_type(content_type);
    let text = media.len() > 5
        && media
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"text/"))
        || media.eq_ignore_ascii_case(b"application/json");
    if text {
        MessageKind::Text
    } else {
        MessageKind::Binary
    }
}

fn media_type_is(content_type: Option<&[u8]>, want: &[u8]) -> bool {
    media_type(content_type).eq_ignore_ascii_case(want)
}

/// The media type of a Content-Type, without parameters.
fn media_type(content_type: Option<&[u8]>) -> &[u8] {
    let value = content_type.unwrap_or_default();
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    value.get(..end).unwrap_or_default().trim_ascii()
}

#[cfg(test)]
mod tests;
