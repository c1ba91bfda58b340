//! Per-connection buffers: lazy, bounded, and given back when empty.
//!
//! An idle connection owns no buffer at all. Reads land in the reactor's one
//! scratch buffer; only bytes that must outlive the read (an incomplete frame
//! or message) are kept in the connection's [`ReadBuf`], which comes from and
//! goes back to a [`BufPool`]. Output is written straight from the reactor's
//! scratch when the socket takes it all; only what the socket refuses is
//! queued in the connection's [`OutQueue`].

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

/// The size of one read, and of pooled read buffers.
pub const READ_CHUNK: usize = 64 << 10;

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

    /// Room for the next read: at least [`READ_CHUNK`] bytes after the kept
    /// ones, growing the storage if needed. Growth is bounded by the caller:
    /// the protocol never keeps more than one message under the limit.
    pub fn spare(&mut self, pool: &mut BufPool) -> &mut [u8] {
        let want = self.filled + READ_CHUNK;
        if self.data.len() < want {
            let mut bigger = if want <= READ_CHUNK {
                pool.take()
            } else {
                // Grow by half again (not doubling: a 16 MiB message would
                // zero 32 MiB), in whole chunks.
                let len = want
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
        self.data.get_mut(self.filled..).unwrap_or_default()
    }

    /// Marks `n` more bytes (just read into [`ReadBuf::spare`]) as filled.
    pub fn advance(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.data.len());
    }

    /// Keeps only the first `keep` bytes; gives the storage back if none.
    pub fn keep(&mut self, keep: usize, pool: &mut BufPool) {
        self.filled = keep.min(self.filled);
        if self.filled == 0 {
            self.release(pool);
        }
    }

    /// Replaces the contents with `bytes`.
    pub fn store(&mut self, bytes: &[u8], pool: &mut BufPool) {
        self.filled = 0;
        // `spare` leaves at least READ_CHUNK bytes, and one read is no more.
        let spare = self.spare(pool);
        let n = bytes.len().min(spare.len());
        if let (Some(dst), Some(src)) = (spare.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.filled = n;
    }

    /// Gives the storage back to the pool (or frees it).
    pub fn release(&mut self, pool: &mut BufPool) {
        self.filled = 0;
        pool.give(std::mem::take(&mut self.data));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `step` bytes per call, then blocks after
    /// `budget` bytes.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.step).min(self.budget);
            self.got.extend_from_slice(&buf[..n]);
            self.budget -= n;
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut total = 0;
            for b in bufs {
                match self.write(b) {
                    Ok(n) => {
                        total += n;
                        if n < b.len() {
                            break;
                        }
                    }
                    Err(e) if total == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            Ok(total)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn shared(bytes: &[u8]) -> SharedBytes {
        SharedBytes::new(Frames::Local(Rc::new(bytes.to_vec())), 0..bytes.len())
    }

    fn queue() -> (OutQueue, Vec<u8>) {
        let mut q = OutQueue::default();
        let frames = Frames::Crossing(Arc::new(b"xxSHARED-FRAMEyy".to_vec()));
        let shared = SharedBytes::new(frames, 2..14);
        q.push_own(b"own1,");
        q.push_own(b"own2,");
        q.push_shared(shared.clone());
        q.push_own(b",own3");
        q.push_shared(shared);
        (q, b"own1,own2,SHARED-FRAME,own3SHARED-FRAME".to_vec())
    }

    #[test]
    fn writes_everything_in_order_whatever_the_write_sizes() {
        for step in 1..12 {
            let (mut q, expected) = queue();
            assert_eq!(q.pending(), expected.len());
            let mut w = Trickle {
                got: Vec::new(),
                step,
                budget: usize::MAX,
            };
            q.write_to(&mut w).unwrap();
            assert_eq!(w.got, expected, "step {step}");
            assert!(q.is_empty());
        }
    }

    #[test]
    fn resumes_after_would_block() {
        let total = queue().1.len();
        for stop in 0..total {
            let (mut q, expected) = queue();
            let mut w = Trickle {
                got: Vec::new(),
                step: 3,
                budget: stop,
            };
            let err = q.write_to(&mut w).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            assert_eq!(q.pending(), expected.len() - stop);
            w.budget = usize::MAX;
            q.write_to(&mut w).unwrap();
            assert_eq!(w.got, expected, "stopped at {stop}");
        }
    }

    #[test]
    fn discard_keeps_a_started_shared_frame_whole() {
        let mut q = OutQueue::default();
        q.push_shared(shared(b"0123456789"));
        q.push_shared(shared(b"abc"));
        q.push_own(b"xyz");
        let mut w = Trickle {
            got: Vec::new(),
            step: 4,
            budget: 4,
        };
        let _ = q.write_to(&mut w);
        assert_eq!(q.discard_unstarted(), 6);
        assert_eq!(q.pending(), 6);
        w.budget = usize::MAX;
        q.write_to(&mut w).unwrap();
        assert_eq!(w.got, b"0123456789");
    }

    #[test]
    fn discard_drops_everything_when_nothing_started() {
        let (mut q, expected) = queue();
        assert_eq!(q.discard_unstarted(), expected.len());
        assert!(q.is_empty());
        q.push_own(b"close");
        let mut w = Trickle {
            got: Vec::new(),
            step: 100,
            budget: usize::MAX,
        };
        q.write_to(&mut w).unwrap();
        assert_eq!(w.got, b"close");
    }

    #[test]
    fn read_buffer_grows_keeps_and_releases() {
        let mut pool = BufPool::new(4);
        let mut rb = ReadBuf::default();
        assert!(rb.is_empty());
        rb.store(b"partial", &mut pool);
        let spare = rb.spare(&mut pool);
        assert!(spare.len() >= READ_CHUNK);
        spare[..3].copy_from_slice(b"abc");
        rb.advance(3);
        assert_eq!(rb.filled_mut(), b"partialabc");
        // Growing past one chunk keeps the bytes.
        rb.advance(READ_CHUNK - 10);
        let before = rb.filled_mut().len();
        assert!(rb.spare(&mut pool).len() >= READ_CHUNK);
        assert_eq!(&rb.filled_mut()[..10], b"partialabc");
        assert_eq!(rb.filled_mut().len(), before);
        rb.keep(0, &mut pool);
        assert!(rb.is_empty());
        assert_eq!(rb.data.len(), 0, "storage given back");
        assert_eq!(pool.free.len(), 1, "the chunk-sized buffer was pooled");
    }
}
