//! Access control: who may join a room, who may speak in it, and how fast.
//!
//! Sans-IO, like [`crate::proto`]: nothing here opens a socket or reads a
//! clock. The reactor passes the request target, the `Authorization`
//! header and the current Unix time in, and gets rights or a refusal out.
//! Only [`KeySet::load`] touches the file system, and it is meant to run
//! off the reactor (at start, and on the signal thread at SIGHUP).
//!
//! # The parts
//!
//! - [`keys`]: the `--auth-key` files. An HS256 secret, or a PEM public key
//!   for RS256, ES256 or EdDSA. Each key allows exactly one algorithm, fixed
//!   when the file is read, so a token's `alg` never chooses the key type.
//! - [`source`]: where the token is: `Authorization: Bearer T`, or the
//!   `token` query parameter for browsers, which cannot set headers on a
//!   WebSocket. The room is the path without the query, as the hub names
//!   it, so a token never changes the room.
//! - [`verify`](mod@verify): a token's signature and claims, with a
//!   [`Policy`] (leeway, audience, issuer, anonymous read), to [`Rights`].
//! - [`rights`]: the room patterns of the `wsd` claim, compiled, and
//!   [`RoomRights`], the 24 bytes a connection carries: may it read, may it
//!   write, when does its token expire.
//! - [`slot`]: the keys every reactor shares, reread on SIGHUP (file I/O
//!   on the caller's thread, like [`crate::tls`]).
//! - [`rate`]: a token bucket per connection for messages and bytes per
//!   second, refilled lazily when a message arrives; and
//!   [`ConnectionsPerIp`], the upgrade-time count per client address.
//!
//! # One call at the door
//!
//! [`authorize`] does it all for an upgrade: the token from the request,
//! verified, and the rights for the request's room, or the [`Refusal`] to
//! answer with ([`Refusal::status`], [`Refusal::www_authenticate`]).
//! [`may_publish`] is the same decision for a publisher that holds no
//! connection (the HTTP publish API), on `write`.

pub mod keys;
pub mod rate;
pub mod rights;
pub mod slot;
pub mod source;
pub mod verify;

pub use keys::{Alg, Key, KeyError, KeyProblem, KeySet};
pub use rate::{Bucket, ConnectionsPerIp, Limited, Rate};
pub use rights::{Pattern, Patterns, Rights, RoomRights};
pub use slot::KeySlot;
pub use source::{authorization_header, bearer_token, room_of, token_of, MAX_TOKEN_LEN};
pub use verify::{admit, verify, Policy, DEFAULT_LEEWAY};

use std::fmt;

/// The close code for a connection that breaks the rules (RFC 6455 §7.4.1:
/// 1008, policy violation): writing without the right, an expired token, a
/// rate over its limit.
pub const CLOSE_POLICY: u16 = 1008;

/// The close reason for a data message from a connection without `write`
/// for its room.
pub const REASON_NOT_ALLOWED: &str = "not allowed to publish";

/// The close reason for a connection whose token expired while it was open.
pub const REASON_EXPIRED: &str = "token expired";

/// The close reason for a connection over `--max-message-rate` or
/// `--max-bytes-rate`.
pub const REASON_RATE_LIMIT: &str = "rate limit";

/// Why an upgrade is refused. Every variant but [`Refusal::Forbidden`] is a
/// `401`: the request did not prove who it is. `Forbidden` is a `403`: the
/// token is good, but its `read` patterns do not cover the room.
///
/// When a token has several faults, the first in this order is reported:
/// `Missing`, `Malformed` (shape, header, length), `AlgorithmNotAllowed`,
/// `BadSignature`, `Malformed` (claims: types, patterns), `NoExpiry`,
/// `Expired`, `NotYetValid`, `WrongIssuer`, `WrongAudience`, `Forbidden`.
/// Claims are only looked at once the signature verifies, so a forged
/// token is always `BadSignature` (or earlier), whatever it claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No token, and anonymous read is off.
    Missing,
    /// Not a token: wrong shape, too long, bad base64 or JSON, a `crit`
    /// header, two tokens in one request, a claim of the wrong type, or a
    /// bad room pattern.
    Malformed,
    /// The signature does not verify with any key of the token's algorithm.
    BadSignature,
    /// The token's `alg` is not one of the keys' (`none` never is).
    AlgorithmNotAllowed,
    /// `exp` (plus the leeway) has passed.
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    NotYetValid,
    /// An audience is configured and the token's `aud` does not name it.
    WrongAudience,
    /// An issuer is configured and the token's `iss` is not it.
    WrongIssuer,
    /// The token has no `exp`: every token must expire.
    NoExpiry,
    /// A good token whose `read` patterns do not cover the room.
    Forbidden,
}

impl Refusal {
    /// Every refusal, in declaration order: for printing every
    /// `wsd_auth_denied_total{reason=...}` series from 0.
    pub const ALL: [Refusal; 10] = [
        Refusal::Missing,
        Refusal::Malformed,
        Refusal::BadSignature,
        Refusal::AlgorithmNotAllowed,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::WrongAudience,
        Refusal::WrongIssuer,
        Refusal::NoExpiry,
        Refusal::Forbidden,
    ];

    /// The stable `reason` label of `wsd_auth_denied_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::BadSignature => "bad_signature",
            Refusal::AlgorithmNotAllowed => "algorithm_not_allowed",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::WrongAudience => "wrong_audience",
            Refusal::WrongIssuer => "wrong_issuer",
            Refusal::NoExpiry => "no_expiry",
            Refusal::Forbidden => "forbidden",
        }
    }

    /// The HTTP status to answer with: 403 for [`Refusal::Forbidden`], 401
    /// for the rest.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Forbidden => 403,
            _ => 401,
        }
    }

    /// The value of the `WWW-Authenticate` header to send with the answer
    /// (RFC 6750 §3). A request without any token gets the bare challenge
    /// `Bearer` (§3.1: no error code when no credentials were sent); a bad
    /// token gets `error="invalid_token"`; a 403 gets
    /// `error="insufficient_scope"`.
    pub fn www_authenticate(self) -> &'static str {
        match self {
            Refusal::Missing => "Bearer",
            Refusal::Forbidden => "Bearer error=\"insufficient_scope\"",
            _ => "Bearer error=\"invalid_token\"",
        }
    }

    /// A short sentence for the answer's body and the log. It never
    /// contains the token.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "a token is required",
            Refusal::Malformed => "the token is malformed",
            Refusal::BadSignature => "the token's signature does not verify",
            Refusal::AlgorithmNotAllowed => "the token's algorithm is not allowed",
            Refusal::Expired => "the token has expired",
            Refusal::NotYetValid => "the token is not valid yet",
            Refusal::WrongAudience => "the token is for another audience",
            Refusal::WrongIssuer => "the token is from another issuer",
            Refusal::NoExpiry => "the token has no expiry (exp)",
            Refusal::Forbidden => "the token does not allow reading this room",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Refusal {}

/// An admitted upgrade: the room it joins and what it may do there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission<'a> {
    /// The room: the request path without its query (see [`room_of`]).
    pub room: &'a str,
    /// The connection's rights in that room; `read` is always true.
    pub rights: RoomRights,
}

/// Whether access control is on: with at least one key, or with anonymous
/// read (a read-only public server, fed over the bus, needs no key). Off,
/// [`authorize`] admits everyone with every right, which is wsd without
/// `--auth-key`.
pub fn enabled(keys: &KeySet, policy: &Policy) -> bool {
    !keys.is_empty() || policy.anonymous_read
}

/// Decides an upgrade: the token from the request target's `token`
/// parameter or the `Authorization` header value (see [`token_of`]),
/// verified against `keys` and `policy` at `now` (Unix seconds), and the
/// rights for the room the target names. A token whose `read` does not
/// cover the room is [`Refusal::Forbidden`].
///
/// `target` is the request target as the handshake parser gives it
/// (`proto::handshake::Request::path`). When access control is off
/// ([`enabled`]), every upgrade is admitted with
/// [`RoomRights::UNRESTRICTED`] and no token is looked for.
pub fn authorize<'a>(
    target: &'a str,
    authorization: Option<&[u8]>,
    keys: &KeySet,
    policy: &Policy,
    now: u64,
) -> Result<Admission<'a>, Refusal> {
    let room = room_of(target);
    if !enabled(keys, policy) {
        return Ok(Admission {
            room,
            rights: RoomRights::UNRESTRICTED,
        });
    }
    let token = token_of(target, authorization)?;
    let rights = admit(token.as_deref(), keys, policy, now)?.for_room(room);
    if !rights.read {
        return Err(Refusal::Forbidden);
    }
    Ok(Admission { room, rights })
}

/// Whether `token` (a compact JWT, as it follows `Bearer ` in an
/// `Authorization` header: see [`bearer_token`]) may publish into `room`:
/// verified against `keys` and `policy` at `now` (Unix seconds), its
/// `write` patterns must cover the room. For publishers other than a
/// WebSocket client (the HTTP publish API), which hold no connection: the
/// same keys, the same claims, the same answers ([`Refusal::status`]), with
/// `write` in the place of `read`. An empty token is [`Refusal::Missing`];
/// anonymous access never publishes.
pub fn may_publish(
    token: &[u8],
    room: &str,
    keys: &KeySet,
    policy: &Policy,
    now: u64,
) -> Result<(), Refusal> {
    if token.is_empty() {
        return Err(Refusal::Missing);
    }
    let token = std::str::from_utf8(token).map_err(|_| Refusal::Malformed)?;
    let rights = verify(token, keys, policy, now)?;
    if !rights.may_write(room) {
        return Err(Refusal::Forbidden);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod mint;
#[cfg(test)]
pub(crate) mod scratch;
#[cfg(test)]
mod tests;
