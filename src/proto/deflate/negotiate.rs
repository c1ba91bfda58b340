//! permessage-deflate negotiation (RFC 7692 §5, §7.1): the client's offers
//! in `Sec-WebSocket-Extensions`, the server's choice, and its answer.
//!
//! Every offer is considered in the client's order and the first acceptable
//! one is answered. An offer is declined (the next one is tried, and with
//! none left the connection simply goes without compression; never a 400)
//! when it has a parameter this extension does not define, a parameter
//! twice, or a bad value (§7.1: "a server MUST decline an extension
//! negotiation offer ... if the offer has any extension parameter not
//! defined for use in an offer, ... two or more of the same parameter, or
//! ... an invalid value").
//!
//! The header grammar (RFC 6455 §9.1) is a comma list of extensions, each a
//! token and `;`-separated parameters `name[=value]`, where a value is a
//! token or a quoted string whose unescaped text must be a token. Commas and
//! semicolons inside quotes do not split.

use std::fmt::Write as _;

/// The extension's name (§7).
pub const NAME: &str = "permessage-deflate";

/// The widest LZ77 window the protocol has: 2^15 bytes (§7.1.2).
pub const MAX_WINDOW_BITS: u8 = 15;

/// The narrowest window a peer may ask for: 2^8 bytes (§7.1.2).
pub const MIN_WINDOW_BITS: u8 = 8;

/// What the server is willing to agree to: its side of the choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Keep the server's compressor context between messages, unless the
    /// client asks otherwise. Off: every answer has
    /// `server_no_context_takeover`.
    pub server_takeover: bool,
    /// Let the client keep its compressor context between messages (the
    /// server then keeps an inflater per connection). Off: every answer has
    /// `client_no_context_takeover`.
    pub client_takeover: bool,
    /// The widest window the server compresses with, and the widest it lets
    /// a client that keeps context use: per-connection state grows with it.
    pub max_window_bits: u8,
}

impl Default for Policy {
    /// No context takeover either way, full window: no per-connection state.
    fn default() -> Policy {
        Policy {
            server_takeover: false,
            client_takeover: false,
            max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

/// The terms of an accepted offer: exactly what the answer names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The server starts every message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client starts every message with an empty window.
    pub client_no_context_takeover: bool,
    /// The widest window the server compresses with, if the answer says.
    pub server_max_window_bits: Option<u8>,
    /// The widest window the client compresses with, if the answer says.
    pub client_max_window_bits: Option<u8>,
}

impl Agreement {
    /// The window the client compresses with: what the answer allowed, or
    /// the protocol's widest.
    pub fn client_window_bits(&self) -> u8 {
        self.client_max_window_bits.unwrap_or(MAX_WINDOW_BITS)
    }

    /// The window the server compresses with: what the answer said, or the
    /// protocol's widest.
    pub fn server_window_bits(&self) -> u8 {
        self.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS)
    }

    /// Writes the answer's extension, e.g. `permessage-deflate;
    /// server_no_context_takeover; client_no_context_takeover`: the value
    /// of a `Sec-WebSocket-Extensions` header.
    pub fn write(&self, out: &mut String) {
        out.push_str(NAME);
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            let _ = write!(out, "; server_max_window_bits={bits}");
        }
        if let Some(bits) = self.client_max_window_bits {
            let _ = write!(out, "; client_max_window_bits={bits}");
        }
    }
}

/// One permessage-deflate offer's parameters (§7.1), all valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: offered without a value ("I can limit my window").
    client_max_window_bits: Option<Option<u8>>,
}

/// Answers the first acceptable permessage-deflate offer in `headers` (the
/// `Sec-WebSocket-Extensions` header lines, in order) under `policy`, or
/// `None` if there is none: the connection goes without compression.
pub fn negotiate<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    policy: &Policy,
) -> Option<Agreement> {
    headers
        .into_iter()
        .flat_map(|line| split_unquoted(line, b','))
        .find_map(|ext| parse_offer(ext).map(|offer| answer(&offer, policy)))
}

/// The server's answer to an acceptable offer.
fn answer(offer: &Offer, policy: &Policy) -> Agreement {
    let ours = policy
        .max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    // §7.1.2.1: the answer to server_max_window_bits=N has a value <= N;
    // without an offer the server may still name a smaller window it will
    // keep to, so the client can inflate with less.
    let server_max_window_bits = match offer.server_max_window_bits {
        Some(n) => Some(n.min(ours)),
        None => (ours < MAX_WINDOW_BITS).then_some(ours),
    };
    // §7.1.2.2: client_max_window_bits may be answered only if offered, with
    // a value no larger than the offered one.
    let client_limit = offer
        .client_max_window_bits
        .map(|v| v.unwrap_or(MAX_WINDOW_BITS).min(ours));
    // The client keeps context only if the policy allows it, the client
    // did not itself offer not to, and its window can be held to ours.
    let client_takeover = policy.client_takeover
        && !offer.client_no_context_takeover
        && (client_limit.is_some() || ours == MAX_WINDOW_BITS);
    Agreement {
        // §7.1.1.1: a server may answer server_no_context_takeover unasked.
        server_no_context_takeover: offer.server_no_context_takeover || !policy.server_takeover,
        // §7.1.1.2: and client_no_context_takeover too.
        client_no_context_takeover: !client_takeover,
        server_max_window_bits,
        // A window limit only matters for context the server keeps.
        client_max_window_bits: client_limit
            .filter(|&bits| client_takeover && bits < MAX_WINDOW_BITS),
    }
}

/// Parses one extension of the list: `None` unless it is a permessage-deflate
/// offer with only valid, distinct parameters.
fn parse_offer(ext: &[u8]) -> Option<Offer> {
    let mut parts = split_unquoted(ext, b';');
    let name = parts.next()?.trim_ascii();
    if !name.eq_ignore_ascii_case(NAME.as_bytes()) {
        return None;
    }
    let mut offer = Offer::default();
    let mut seen = [false; 4];
    for param in parts {
        let (name, value) = match split_unquoted(param, b'=').collect::<ParamParts>() {
            ParamParts::Name(n) => (n, None),
            ParamParts::Value(n, v) => (n, Some(unquote(v)?)),
            ParamParts::Bad => return None,
        };
        let which = PARAMS
            .iter()
            .position(|p| p.as_bytes().eq_ignore_ascii_case(name))?;
        // Duplicates decline the offer (§7.1).
        if std::mem::replace(seen.get_mut(which)?, true) {
            return None;
        }
        match (which, value) {
            // The two no_context_takeover parameters take no value.
            (0, None) => offer.server_no_context_takeover = true,
            (1, None) => offer.client_no_context_takeover = true,
            // server_max_window_bits needs a value (§7.1.2.1).
            (2, Some(v)) => offer.server_max_window_bits = Some(window_bits(&v)?),
            // client_max_window_bits may come without one (§7.1.2.2).
            (3, None) => offer.client_max_window_bits = Some(None),
            (3, Some(v)) => offer.client_max_window_bits = Some(Some(window_bits(&v)?)),
            _ => return None,
        }
    }
    Some(offer)
}

/// The parameters of an offer, in the order `seen` tracks them.
const PARAMS: [&str; 4] = [
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
];

/// `name` or `name=value` of one parameter, trimmed.
enum ParamParts<'a> {
    Name(&'a [u8]),
    Value(&'a [u8], &'a [u8]),
    Bad,
}

impl<'a> FromIterator<&'a [u8]> for ParamParts<'a> {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut it = iter.into_iter().map(<[u8]>::trim_ascii);
        match (it.next(), it.next(), it.next()) {
            (Some(n), None, None) if is_token(n) => ParamParts::Name(n),
            (Some(n), Some(v), None) if is_token(n) => ParamParts::Value(n, v),
            _ => ParamParts::Bad,
        }
    }
}

/// A window size value (§7.1.2): a decimal integer from 8 to 15 "without
/// leading zeroes".
fn window_bits(v: &Value) -> Option<u8> {
    match v.as_slice() {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// A parameter value after unquoting: at most a few bytes, since every
/// valid value is one or two digits. Longer values are kept as too long.
struct Value {
    bytes: [u8; 3],
    len: usize,
}

impl Value {
    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// A token, or a quoted string unescaped (RFC 7230 §3.2.6) whose text is a
/// token (RFC 6455 §9.1). `None` for anything else. Values longer than
/// three bytes come back as three bytes and a length that no check accepts.
fn unquote(v: &[u8]) -> Option<Value> {
    let mut out = Value {
        bytes: [0; 3],
        len: 0,
    };
    let mut push = |b: u8| {
        if let Some(slot) = out.bytes.get_mut(out.len) {
            *slot = b;
        }
        out.len += 1;
    };
    match v {
        [b'"', inner @ .., b'"'] => {
            let mut escaped = false;
            for &b in inner {
                match (escaped, b) {
                    (false, b'\\') => escaped = true,
                    (false, b'"') => return None,
                    _ => {
                        escaped = false;
                        push(b);
                    }
                }
            }
            if escaped {
                return None;
            }
        }
        _ => v.iter().for_each(|&b| push(b)),
    }
    let text = out.bytes.get(..out.len.min(3)).unwrap_or_default();
    is_token(text).then_some(out)
}

/// RFC 7230 §3.2.6 token: one or more visible ASCII characters other than
/// the delimiters.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b))
}

/// Splits `s` at every `sep` outside a quoted string.
fn split_unquoted(s: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, &b) in s.iter().enumerate() {
            match (quoted, escaped, b) {
                (true, true, _) => escaped = false,
                (true, false, b'\\') => escaped = true,
                (_, _, b'"') => quoted = !quoted,
                (false, _, b) if b == sep => {
                    rest = s.get(i + 1..);
                    return s.get(..i);
                }
                _ => {}
            }
        }
        rest = None;
        Some(s)
    })
}

#[cfg(test)]
mod tests;
