//! Room history in Redis Streams (`--history N` with `--redis`): the two
//! scripts, the commands that run them, and the parser of what a read
//! brings back. Sans-IO.
//!
//! Each room has a stream, `PREFIX` `history:` ROOM, and beside it its
//! epoch, `PREFIX` `epoch:` ROOM: the ID of the stream's first entry ever.
//! Rooms start with `/`, so neither key is ever a channel's name.
//!
//! **Publishing** a message runs [`PUBLISH_SCRIPT`] on the publish
//! connection, once, by the node that received it: `XADD MAXLEN ~ N` (the
//! stream keeps about the last N messages; `~` lets Redis trim whole nodes
//! of its tree, never below N), a new epoch if the stream was just made,
//! `PEXPIRE` of both keys to `--history-ttl`, and the `PUBLISH` of a
//! version 3 envelope that carries the entry's ID. Script and publish are
//! one atomic step, so the channel delivers every room's messages in the
//! stream's order, to every node, the publishing one included: every node
//! sends them to its members in that order, with the same offsets.
//!
//! **Joining** with `?rewind=` or `?since=`, or with `wsd.offsets`, runs
//! [`READ_SCRIPT`]: the epoch, the oldest and newest IDs, whether anything
//! was ever trimmed (`entries-added` against `length`, Redis 7), and the
//! entries asked for, oldest first, as one bulk string ([`parse_answer`]).
//!
//! Both scripts are loaded with `SCRIPT LOAD` at login and run with
//! `EVALSHA`; their SHA-1s are computed here, so a login checks that Redis
//! has the same script.

use std::fmt::Write as _;
use std::time::Duration;

use sha1::{Digest, Sha1};

use super::envelope::{self, Instance};
use super::resp::{self, BULK_OVERHEAD};
use crate::history::remote::{Answer, Stored};
use crate::history::{offset::digits, Ask, Offset};
use crate::proto::MessageKind;

/// Between the prefix and the room in a stream's key.
const STREAM: &[u8] = b"history:";
/// Between the prefix and the room in an epoch's key.
const EPOCH: &[u8] = b"epoch:";

/// Appends a message to its room's stream and publishes it with its ID.
/// KEYS: stream, epoch. ARGV: keep, ttl ms, channel, kind, payload, the
/// envelope's header up to its sender.
pub const PUBLISH_SCRIPT: &str = r"local fresh = redis.call('EXISTS', KEYS[1]) == 0
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'k', ARGV[4], 'd', ARGV[5])
if fresh or redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], id)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return redis.call('PUBLISH', ARGV[3], ARGV[6] .. string.char(#id) .. id .. ARGV[5])
";

/// Reads a room's history for a join. KEYS: stream, epoch. ARGV: the mode
/// (`live`; `last` N; `from` MS, at most ARGV[3]; `after` ID), its
/// argument, the most entries, the TTL in ms. A room without a stream
/// gets an empty one (with a consumer group, the way to make one) and an
/// epoch from Redis's clock, so that a client joining before the first
/// message has an epoch to resume in. Returns one bulk string: see
/// [`parse_answer`].
pub const READ_SCRIPT: &str = r"redis.replicate_commands()
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], 'wsd', '$', 'MKSTREAM')
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], string.format('%d-0', t[1] * 1000 + math.floor(t[2] / 1000)))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local epoch = redis.call('GET', KEYS[2])
local head = {epoch or '', '', '0-0', '1'}
local entries = {}
do
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  local len, added = 0, -1
  for i = 1, #info, 2 do
    local k, v = info[i], info[i + 1]
    if k == 'length' then len = v
    elseif k == 'last-generated-id' then head[3] = v
    elseif k == 'entries-added' then added = v
    elseif k == 'first-entry' and type(v) == 'table' then head[2] = v[1] end
  end
  if added == len then head[4] = '0' end
  local mode, arg = ARGV[1], ARGV[2]
  if mode == 'last' then
    entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', arg)
  elseif mode == 'from' then
    entries = redis.call('XREVRANGE', KEYS[1], '+', arg, 'COUNT', ARGV[3])
  elseif mode == 'after' then
    local fwd = redis.call('XRANGE', KEYS[1], '(' .. arg, '+')
    for i = #fwd, 1, -1 do entries[#entries + 1] = fwd[i] end
  end
end
local out = {head[1], head[2], head[3], head[4], tostring(#entries), ''}
local parts = {table.concat(out, '\n')}
for i = #entries, 1, -1 do
  local e = entries[i]
  local kind, data = '1', ''
  for j = 1, #e[2], 2 do
    if e[2][j] == 'k' then kind = e[2][j + 1] elseif e[2][j] == 'd' then data = e[2][j + 1] end
  end
  parts[#parts + 1] = e[1] .. '\n' .. kind .. '\n' .. #data .. '\n' .. data
end
return table.concat(parts)
";

/// The SHA-1 of a script, in hex, as `SCRIPT LOAD` answers and `EVALSHA`
/// names it.
pub fn sha1_hex(script: &str) -> String {
    let digest = Sha1::digest(script.as_bytes());
    let mut hex = String::with_capacity(40);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Who publishes a recorded message: what its envelope's header says.
#[derive(Clone, Copy, Debug)]
pub(super) struct Origin<'a> {
    /// This node's id.
    pub(super) node: &'a [u8],
    /// This process's instance token.
    pub(super) instance: &'a Instance,
    /// The sending connection here.
    pub(super) sender: u64,
}

impl Origin<'_> {
    /// The header's length: the envelope's, and the sender.
    pub(super) fn header_len(&self) -> usize {
        envelope::header_len(self.node.len()) + envelope::SENDER_LEN
    }
}

/// What the streams are kept to, and the scripts' names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Streams {
    /// `MAXLEN ~` this, in ASCII.
    keep: String,
    /// The most entries a read returns, in ASCII: `keep`.
    keep_n: usize,
    /// `PEXPIRE` this, in ASCII milliseconds.
    ttl_ms: String,
    /// The scripts' SHA-1s.
    pub(super) publish_sha: String,
    pub(super) read_sha: String,
}

impl Streams {
    /// Streams kept to about `keep` messages, gone after `ttl` without one.
    pub(super) fn new(keep: usize, ttl: Duration) -> Streams {
        let keep = keep.max(1);
        Streams {
            keep: keep.to_string(),
            keep_n: keep,
            ttl_ms: ttl.as_millis().max(1).to_string(),
            publish_sha: sha1_hex(PUBLISH_SCRIPT),
            read_sha: sha1_hex(READ_SCRIPT),
        }
    }

    /// Writes the two `SCRIPT LOAD`s of a login; each is answered with its
    /// script's SHA-1.
    pub(super) fn write_load(&self, out: &mut Vec<u8>) {
        for script in [PUBLISH_SCRIPT, READ_SCRIPT] {
            resp::write_command(out, &[b"SCRIPT", b"LOAD", script.as_bytes()]);
        }
    }

    /// Whether `sha`, an answer to [`Streams::write_load`], names one of the
    /// scripts.
    pub(super) fn is_loaded(&self, sha: &[u8]) -> bool {
        sha == self.publish_sha.as_bytes() || sha == self.read_sha.as_bytes()
    }

    /// The most bytes [`Streams::write_publish`] writes.
    pub(super) fn publish_size(
        &self,
        prefix: &[u8],
        room: &str,
        header: usize,
        payload: usize,
    ) -> usize {
        let words = b"EVALSHA".len() + 40 + 1 + self.keep.len() + self.ttl_ms.len() + 1;
        13 * BULK_OVERHEAD + words + 3 * prefix.len() + 3 * room.len() + 16 + header + payload
    }

    /// Writes the `EVALSHA` that records and publishes a message of `room`
    /// from `from` to the room's channel. One reply follows: the `PUBLISH`
    /// count.
    pub(super) fn write_publish(
        &self,
        out: &mut Vec<u8>,
        prefix: &[u8],
        room: &str,
        from: &Origin<'_>,
        kind: MessageKind,
        payload: &[u8],
    ) {
        let code: &[u8] = match kind {
            MessageKind::Text => b"1",
            MessageKind::Binary => b"2",
        };
        write_evalsha(out, &self.publish_sha, 6, prefix, room);
        resp::write_bulk(out, self.keep.as_bytes());
        resp::write_bulk(out, self.ttl_ms.as_bytes());
        write_key(out, prefix, b"", room);
        resp::write_bulk(out, code);
        resp::write_bulk(out, payload);
        resp::write_bulk_header(out, from.header_len());
        envelope::write_recorded_header(out, from.node, from.instance, kind, from.sender);
        resp::write_crlf(out);
    }

    /// Writes the `EVALSHA` that reads what `ask` wants of `room`'s
    /// history at `now_ms`. One reply follows: a bulk string for
    /// [`parse_answer`].
    pub(super) fn write_read(
        &self,
        out: &mut Vec<u8>,
        prefix: &[u8],
        room: &str,
        ask: Ask,
        now_ms: u64,
    ) {
        let (mode, arg) = match ask {
            Ask::Live => ("live", String::new()),
            Ask::Last(n) => ("last", n.min(self.keep_n).to_string()),
            Ask::Within(d) => {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                ("from", now_ms.saturating_sub(ms).to_string())
            }
            Ask::Since { offset, .. } => ("after", offset.to_string()),
        };
        write_evalsha(out, &self.read_sha, 4, prefix, room);
        resp::write_bulk(out, mode.as_bytes());
        resp::write_bulk(out, arg.as_bytes());
        resp::write_bulk(out, self.keep.as_bytes());
        resp::write_bulk(out, self.ttl_ms.as_bytes());
    }
}

/// Writes the start of an `EVALSHA` of script `sha` on `room`'s two keys
/// (its stream and its epoch); `args` arguments must follow.
fn write_evalsha(out: &mut Vec<u8>, sha: &str, args: usize, prefix: &[u8], room: &str) {
    resp::write_array_header(out, 5 + args);
    resp::write_bulk(out, b"EVALSHA");
    resp::write_bulk(out, sha.as_bytes());
    resp::write_bulk(out, b"2");
    write_key(out, prefix, STREAM, room);
    write_key(out, prefix, EPOCH, room);
}

/// Writes `prefix`, `infix` and `room` as one bulk string.
fn write_key(out: &mut Vec<u8>, prefix: &[u8], infix: &[u8], room: &str) {
    resp::write_bulk_header(out, prefix.len() + infix.len() + room.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(infix);
    out.extend_from_slice(room.as_bytes());
    resp::write_crlf(out);
}

/// Parses what [`READ_SCRIPT`] returns, as bytes:
///
/// ```text
/// EPOCH \n FIRST \n LAST \n REMOVED \n COUNT \n
/// then COUNT times: ID \n KIND \n LEN \n LEN bytes of payload
/// ```
///
/// EPOCH and FIRST may be empty (no history, an empty stream); REMOVED is
/// `1` or `0`; KIND `1` (text) or `2` (binary). Entries are oldest first.
/// Anything else is an error: Redis is not running our script.
pub fn parse_answer(bytes: &[u8]) -> Result<Answer, &'static str> {
    let mut c = Cursor { bytes, at: 0 };
    let epoch = c.optional_id()?;
    let first = c.optional_id()?;
    let last = c.id()?;
    let removed = match c.line()? {
        b"1" => true,
        b"0" => false,
        _ => return Err("removed is not 0 or 1"),
    };
    let count = c.number()?;
    // Each entry takes at least 7 bytes: a claimed count past that is a
    // lie, refused before anything is allocated by it.
    if count > bytes.len() / 7 {
        return Err("more entries claimed than bytes");
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let offset = c.id()?;
        let kind = match c.line()? {
            b"1" => MessageKind::Text,
            b"2" => MessageKind::Binary,
            _ => return Err("a kind is not 1 or 2"),
        };
        let len = c.number()?;
        let payload = c.take(len)?;
        if kind == MessageKind::Text && std::str::from_utf8(payload).is_err() {
            return Err("a text payload is not UTF-8");
        }
        entries.push(Stored {
            offset,
            kind,
            payload: payload.to_vec(),
        });
    }
    if c.at != bytes.len() {
        return Err("bytes after the last entry");
    }
    Ok(Answer {
        epoch,
        first,
        last,
        removed,
        entries,
    })
}

/// Reads [`parse_answer`]'s input from the front.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// The bytes up to the next `\n`, which is passed.
    fn line(&mut self) -> Result<&'a [u8], &'static str> {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a line is cut short")?;
        self.at += end + 1;
        Ok(rest.get(..end).unwrap_or_default())
    }

    /// The next `len` bytes.
    fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        let end = self.at.checked_add(len).ok_or("a length overflows")?;
        let bytes = self
            .bytes
            .get(self.at..end)
            .ok_or("a payload is cut short")?;
        self.at = end;
        Ok(bytes)
    }

    fn id(&mut self) -> Result<Offset, &'static str> {
        std::str::from_utf8(self.line()?)
            .ok()
            .and_then(Offset::parse)
            .ok_or("an ID is not ms-seq")
    }

    /// An ID, or nothing (an empty line).
    fn optional_id(&mut self) -> Result<Option<Offset>, &'static str> {
        let text = self.line()?;
        if text.is_empty() {
            return Ok(None);
        }
        std::str::from_utf8(text)
            .ok()
            .and_then(Offset::parse)
            .map(Some)
            .ok_or("an ID is not ms-seq")
    }

    fn number(&mut self) -> Result<usize, &'static str> {
        std::str::from_utf8(self.line()?)
            .ok()
            .and_then(digits)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("a count is not a number")
    }
}

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;
