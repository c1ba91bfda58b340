//! Per-connection buffers: lazy, bounded, and given back when empty.
//!
//! An idle connection owns no buffer at all. Reads land in the reactor's one
//! shared buffer ([`SHARED_READ`] bytes); only bytes that must outlive the
//! read (an incomplete frame or message) are kept in the connection's
//! [`ReadBuf`], which comes from and goes back to a [`BufPool`]. Once a
//! frame's header is in, the kept buffer is sized for the whole frame, so
//! the rest of it lands in one read, in place, and is never copied again.
//! Output is written straight from where it lies (the shared scratch, or the
//! read buffer for an echoed payload, see [`write_through`]) when the socket
//! takes it all; only what the socket refuses is queued in the connection's
//! [`OutQueue`].

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use crate::proto::frame::MAX_HEADER_LEN;

/// The size of pooled read buffers, and of a read into a kept buffer when
/// the protocol does not know how much it needs (between frames).
pub const READ_CHUNK: usize = 64 << 10;

/// The payload the reactor's shared read buffer holds with a frame header
/// in front of it (the buffer is [`MAX_HEADER_LEN`] bytes longer). Twice
/// [`READ_CHUNK`], from measurement (10 connections echoing 64 KiB on
/// loopback): a buffer that a 64 KiB frame exactly fills makes one `recv`
/// for the frame and a second that only says WouldBlock, because a read
/// that fills its buffer cannot tell that the socket is drained; with
/// room to spare the frame takes one `recv`. A larger first read would
/// only grow what is copied into a kept buffer when a frame does not fit.
pub const SHARED_READ: usize = 2 * READ_CHUNK;

/// The length of the reactor's shared read buffer.
pub const SHARED_READ_LEN: usize = SHARED_READ + MAX_HEADER_LEN;

/// Kept input up to this size is moved back into the shared read buffer
/// for the next read when the rest of its frame fits there too: a frame
/// whose header was split across reads then still arrives in one more read.
const CARRY_MAX: usize = 1 << 10;

/// Buffers larger than this are freed, not pooled or kept, once empty.
const KEEP_LIMIT: usize = READ_CHUNK;

/// A connection's kept input: `data[..filled]`. Storage is initialized
/// memory, so reads go straight into `data[filled..]`.
#[derive(Debug, Default)]
pub struct ReadBuf {
    data: Box<[u8]>,
    filled: usize,
}

impl ReadBuf {
    /// Whether no bytes are kept.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The kept bytes.
    pub fn filled_mut(&mut self) -> &mut [u8] {
        self.data.get_mut(..self.filled).unwrap_or_default()
    }

    /// Room for the next read after the kept bytes: at least `want` bytes
    /// (what the protocol still needs of the frame being received, which it
    /// checked against the limits) and [`MIN_READ`], the whole storage at
    /// least [`READ_CHUNK`]. Grows the storage if needed, so that the rest
    /// of a frame is read in place.
    pub fn spare(&mut self, want: usize, pool: &mut BufPool) -> &mut [u8] {
        self.reserve(storage_for(self.filled, want), pool);
        self.data.get_mut(self.filled..).unwrap_or_default()
    }

    /// Copies the kept bytes to the front of `shared` if they are few and
    /// the `want` bytes still needed for their frame fit after them, so the
    /// next read goes into `shared`; returns how many were copied (0: read
    /// into [`ReadBuf::spare`]). The kept bytes stay until
    /// [`ReadBuf::settle`], so that a read that fails loses nothing.
    pub fn carry(&mut self, shared: &mut [u8], want: usize) -> usize {
        let n = self.filled;
        if n > CARRY_MAX || n + want > SHARED_READ {
            return 0;
        }
        match (shared.get_mut(..n), self.data.get(..n)) {
            (Some(dst), Some(src)) => {
                dst.copy_from_slice(src);
                n
            }
            _ => 0,
        }
    }

    /// Grows the storage to at least `need` bytes, keeping the filled ones.
    fn reserve(&mut self, need: usize, pool: &mut BufPool) {
        if self.data.len() >= need {
            return;
        }
        let mut bigger = if need <= READ_CHUNK {
            pool.take()
        } else {
            // Exactly what a frame needs, or half again for a message
            // assembled from many frames (not doubling: a 16 MiB message
            // would zero 32 MiB), in whole chunks.
            let len = need
                .max(self.data.len() + self.data.len() / 2)
                .next_multiple_of(READ_CHUNK);
            vec![0u8; len].into_boxed_slice()
        };
        if let (Some(dst), Some(src)) =
            (bigger.get_mut(..self.filled), self.data.get(..self.filled))
        {
            dst.copy_from_slice(src);
        }
        let old = std::mem::replace(&mut self.data, bigger);
        pool.give(old);
    }

    /// Marks `n` more bytes (just read into [`ReadBuf::spare`]) as filled.
    pub fn advance(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.data.len());
    }

    /// After input was fed to the protocol, which asked to keep its first
    /// `keep` bytes and still wants `want` bytes of the current frame:
    /// `fed_own` says whether that input was this buffer's (else it was the
    /// shared read buffer's, `shared`, and the kept bytes are copied here,
    /// with room for the rest of the frame). Gives the storage back if
    /// nothing is kept.
    #[inline]
    pub fn settle(
        &mut self,
        fed_own: bool,
        shared: &[u8],
        keep: usize,
        want: usize,
        pool: &mut BufPool,
    ) {
        if fed_own {
            self.filled = keep.min(self.filled);
            if self.filled == 0 {
                self.release(pool);
            }
        } else if keep > 0 {
            self.store(shared.get(..keep).unwrap_or_default(), want, pool);
        } else if self.filled > 0 {
            // Carried into the shared buffer, and all consumed there.
            self.release(pool);
        }
    }

    /// Replaces the contents with `bytes`, with room for `want` more.
    fn store(&mut self, bytes: &[u8], want: usize, pool: &mut BufPool) {
        self.filled = 0;
        self.reserve(storage_for(bytes.len(), want), pool);
        if let Some(dst) = self.data.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
            self.filled = bytes.len();
        }
    }

    /// Gives the storage back to the pool (or frees it).
    pub fn release(&mut self, pool: &mut BufPool) {
        self.filled = 0;
        pool.give(std::mem::take(&mut self.data));
    }
}

/// The least room a read into a kept buffer is given.
const MIN_READ: usize = 4 << 10;

/// The most a kept buffer is sized ahead of the bytes that arrived in
/// memory that is touched at once. A frame's header is 2 to 14 bytes; the
/// rest of the frame is read in place into a buffer sized for it, and
/// heap memory is zeroed when it is handed out, so every such header
/// could make the server write up to `--max-message` of zeros.
const AHEAD_MAX: usize = 1 << 20;

/// Buffers from this size on get pages of their own from the kernel (the
/// `wsd` binary fixes glibc's mmap threshold here, see `main.rs`): they
/// come zeroed without being written, and pages no byte has landed on
/// cost no memory. Freed, they go back to the kernel.
const OWN_PAGES: usize = 4 << 20;

/// The storage for `kept` bytes and the next read, which `want` more
/// complete the frame being received: room for all of it, so the rest of
/// the frame lands in place, but from [`OWN_PAGES`] up once that is more
/// than [`AHEAD_MAX`] ahead, so a header alone makes nothing resident.
fn storage_for(kept: usize, want: usize) -> usize {
    let need = (kept + want.max(MIN_READ)).max(READ_CHUNK);
    if want > AHEAD_MAX {
        need.max(OWN_PAGES)
    } else {
        need
    }
}

/// Read buffers of [`READ_CHUNK`] bytes, kept for reuse so that a connection
/// whose frames straddle reads does not allocate (or zero memory) each time.
#[derive(Debug)]
pub struct BufPool {
    free: Vec<Box<[u8]>>,
    max: usize,
}

impl BufPool {
    /// A pool that keeps at most `max` free buffers.
    pub fn new(max: usize) -> BufPool {
        BufPool {
            free: Vec::new(),
            max,
        }
    }

    fn take(&mut self) -> Box<[u8]> {
        self.free
            .pop()
            .unwrap_or_else(|| vec![0u8; READ_CHUNK].into_boxed_slice())
    }

    fn give(&mut self, buf: Box<[u8]>) {
        if buf.len() == READ_CHUNK && self.free.len() < self.max {
            self.free.push(buf);
        }
    }
}

/// A turn's broadcast frames for a room, encoded once and shared by every
/// receiver: counted by the reactor alone (`Rc`, no atomic operation per
/// receiver), or across reactors when other threads have members too.
#[derive(Clone, Debug)]
pub enum Frames {
    /// Shared within one reactor.
    Local(Rc<Vec<u8>>),
    /// Shared with other reactors (`--threads`).
    Crossing(Arc<Vec<u8>>),
}

impl Frames {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Frames::Local(b) => b,
            Frames::Crossing(b) => b,
        }
    }
}

/// A range of [`Frames`] in one output queue. Cloning it clones a
/// reference, not the bytes.
#[derive(Clone, Debug)]
pub struct SharedBytes {
    buf: Frames,
    start: usize,
    end: usize,
}

impl SharedBytes {
    /// `buf[range]`, the range clamped to the buffer.
    pub fn new(buf: Frames, range: Range<usize>) -> SharedBytes {
        let end = range.end.min(buf.bytes().len());
        SharedBytes {
            start: range.start.min(end),
            end,
            buf,
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.buf
            .bytes()
            .get(self.start..self.end)
            .unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// One piece of queued output.
#[derive(Debug)]
enum Seg {
    /// The next `n` bytes of the queue's own byte buffer.
    Own(usize),
    /// Frames shared with other connections (broadcast).
    Shared(SharedBytes),
}

/// Output waiting for the socket, in order: bytes of the connection's own
/// (echo replies, pongs, closes) and frames shared with other connections.
#[derive(Debug, Default)]
pub struct OutQueue {
    own: Vec<u8>,
    /// `own[..own_read]` is already written.
    own_read: usize,
    segs: VecDeque<Seg>,
    /// Bytes of the front segment already written, if it is `Shared`.
    shared_read: usize,
    /// Whether the front segment is partly written.
    front_started: bool,
    pending: usize,
}

/// The most slices one `writev` call is given.
const MAX_IOV: usize = 64;

impl OutQueue {
    /// Unsent bytes.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Whether everything was sent.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Queues a copy of `bytes`.
    pub fn push_own(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.own.extend_from_slice(bytes);
        match self.segs.back_mut() {
            Some(Seg::Own(n)) => *n += bytes.len(),
            _ => self.segs.push_back(Seg::Own(bytes.len())),
        }
        self.pending += bytes.len();
    }

    /// Queues shared bytes without copying them.
    pub fn push_shared(&mut self, bytes: SharedBytes) {
        if bytes.len() == 0 {
            return;
        }
        self.pending += bytes.len();
        self.segs.push_back(Seg::Shared(bytes));
    }

    /// Says that the front segment continues bytes already written: it was
    /// queued as what a direct write to the socket left over, so it may
    /// begin mid-frame. [`OutQueue::discard_unstarted`] then keeps it whole,
    /// as it keeps a segment this queue wrote part of. No-op when empty.
    pub fn mark_front_started(&mut self) {
        if !self.segs.is_empty() {
            self.front_started = true;
        }
    }

    /// Drops everything not yet started, keeping a partly written segment so
    /// the peer never sees half a frame. Returns the bytes dropped.
    pub fn discard_unstarted(&mut self) -> usize {
        let before = self.pending;
        if !self.front_started {
            self.clear();
            return before;
        }
        while self.segs.len() > 1 {
            match self.segs.pop_back() {
                Some(Seg::Own(n)) => {
                    // Later own bytes sit at the end of `own`, in order.
                    self.own.truncate(self.own.len() - n);
                    self.pending -= n;
                }
                Some(Seg::Shared(f)) => self.pending -= f.len(),
                None => break,
            }
        }
        before - self.pending
    }

    /// Writes as much as the socket takes, a `writev` of up to 64 pieces at a
    /// time, until the queue is empty or the socket would block.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<()> {
        while self.pending > 0 {
            let n = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let mut count = 0;
                let mut cursor = self.own_read;
                for (slot, (i, seg)) in iov.iter_mut().zip(self.segs.iter().enumerate()) {
                    let bytes: &[u8] = match seg {
                        Seg::Own(n) => {
                            let s = self.own.get(cursor..cursor + n).unwrap_or_default();
                            cursor += n;
                            s
                        }
                        Seg::Shared(f) if i == 0 => {
                            f.as_slice().get(self.shared_read..).unwrap_or_default()
                        }
                        Seg::Shared(f) => f.as_slice(),
                    };
                    *slot = IoSlice::new(bytes);
                    count += 1;
                }
                match w.write_vectored(iov.get(..count).unwrap_or_default()) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.consume(n);
        }
        Ok(())
    }

    /// Marks `n` bytes as written.
    fn consume(&mut self, mut n: usize) {
        self.pending -= n;
        while n > 0 {
            let Some(front) = self.segs.front_mut() else {
                break;
            };
            match front {
                Seg::Own(len) => {
                    let take = n.min(*len);
                    *len -= take;
                    self.own_read += take;
                    n -= take;
                    if *len == 0 {
                        self.segs.pop_front();
                        self.front_started = false;
                    } else {
                        self.front_started = true;
                    }
                }
                Seg::Shared(f) => {
                    let take = n.min(f.len() - self.shared_read);
                    self.shared_read += take;
                    n -= take;
                    if self.shared_read == f.len() {
                        self.segs.pop_front();
                        self.shared_read = 0;
                        self.front_started = false;
                    } else {
                        self.front_started = true;
                    }
                }
            }
        }
        if self.segs.is_empty() {
            self.clear();
        } else if self.own_read > KEEP_LIMIT && self.own_read * 2 > self.own.len() {
            self.own.drain(..self.own_read);
            self.own_read = 0;
        }
    }

    fn clear(&mut self) {
        self.segs.clear();
        self.own.clear();
        self.own_read = 0;
        self.shared_read = 0;
        self.front_started = false;
        self.pending = 0;
        // Give back memory after large messages.
        if self.own.capacity() > KEEP_LIMIT {
            self.own = Vec::new();
        }
    }
}

/// Writes `parts` in order: with nothing queued, straight from where they
/// lie with `writev` until all is written or `w` would block, and only what
/// `w` does not take is copied into `queue` (allocated then). With output
/// queued, the parts are queued after it for the caller's next write of
/// the queue. Returns the bytes written.
///
/// On an error other than WouldBlock the unwritten rest is queued too and
/// the error returned, so the caller may leave it to the next write on the
/// same socket, which meets it again.
pub fn write_through<W: Write>(
    w: &mut W,
    queue: &mut Option<Box<OutQueue>>,
    parts: &[&[u8]],
) -> io::Result<usize> {
    let mut written = 0;
    let mut failed = None;
    if queue.as_ref().is_none_or(|q| q.is_empty()) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        while written < total {
            let mut iov = [IoSlice::new(&[]); 4];
            let mut count = 0;
            let mut skip = written;
            for part in parts {
                let rest = part.get(skip..).unwrap_or_default();
                skip = skip.saturating_sub(part.len());
                // Parts beyond four slices go in the next call.
                if let (false, Some(slot)) = (rest.is_empty(), iov.get_mut(count)) {
                    *slot = IoSlice::new(rest);
                    count += 1;
                }
            }
            match w.write_vectored(iov.get(..count).unwrap_or_default()) {
                Ok(0) => {
                    failed = Some(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if written == total {
            return Ok(written);
        }
    }
    let q = queue.get_or_insert_with(Default::default);
    let mut skip = written;
    for part in parts {
        q.push_own(part.get(skip..).unwrap_or_default());
        skip = skip.saturating_sub(part.len());
    }
    failed.map_or(Ok(written), Err)
}

#[cfg(test)]
mod tests;
