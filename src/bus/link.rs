//! One connection to Redis: a non-blocking socket in the reactor's `Poll`,
//! its two buffers, the replies it waits for, and its reconnect backoff.
//! It moves bytes and keeps state; what the bytes mean is `redis.rs`'s.
//!
//! ```text
//!          attempt due            TCP connected         last login reply OK
//!   Down ──────────────► Connecting ─────────► Greeting ───────────────────► Ready
//!    ▲                       │                     │                           │
//!    └──────── error, EOF, timeout, a reply out of step (after a backoff) ─────┘
//! ```
//!
//! Connecting and Greeting share one deadline (the connect timeout); Down's
//! deadline is the next attempt.

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// The size of one read.
const CHUNK: usize = 64 << 10;

/// Buffers of more than this are freed, not kept, once empty.
const KEEP: usize = 1 << 20;

/// Bytes one read round takes before it stops and lets the turn go on; the
/// input buffer grows past this only for a reply in progress that is
/// larger.
const READ_BUDGET: usize = 256 << 10;

/// Where a connection is; see the module's diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Down,
    Connecting,
    Greeting,
    Ready,
}

/// A reply a connection waits for, in the order the commands went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    /// `+OK` (AUTH, SELECT, CLIENT SETNAME).
    Ok,
    /// `:n` (PUBLISH: how many subscribers got it).
    Integer,
    /// A `subscribe` push, one per channel.
    Subscribe,
    /// An `unsubscribe` push, one per channel.
    Unsubscribe,
    /// A script's SHA-1 (`SCRIPT LOAD` at login, `--history`).
    Loaded,
    /// `:n` from the script that records and publishes a message.
    Script,
    /// A bulk string from the script that reads a room's history.
    Read,
}

/// The replies awaited, as runs of one kind: a burst of publishes is one
/// entry, not thousands.
#[derive(Debug, Default)]
pub(super) struct Expected {
    runs: VecDeque<(Expect, u64)>,
}

impl Expected {
    pub(super) fn push(&mut self, e: Expect, n: u64) {
        match self.runs.back_mut() {
            Some((last, count)) if *last == e => *count += n,
            _ if n > 0 => self.runs.push_back((e, n)),
            _ => {}
        }
    }

    pub(super) fn front(&self) -> Option<Expect> {
        self.runs.front().map(|(e, _)| *e)
    }

    /// Takes one reply of kind `e` off the front; false if the front is
    /// not `e` (the reply is out of step).
    pub(super) fn pop(&mut self, e: Expect) -> bool {
        match self.runs.front_mut() {
            Some((front, count)) if *front == e => {
                *count -= 1;
                if *count == 0 {
                    self.runs.pop_front();
                }
                true
            }
            _ => false,
        }
    }

    /// How many replies of kind `e` are awaited.
    pub(super) fn count(&self, e: Expect) -> u64 {
        self.runs
            .iter()
            .filter(|(k, _)| *k == e)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Input: `data[start..end]` is unread. Grows in chunks up to `cap`, which
/// the decoder's limit keeps above the largest reply it accepts, so a
/// reply in progress always leaves a chunk free.
#[derive(Debug)]
pub(super) struct InBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
    cap: usize,
}

impl InBuf {
    fn new(cap: usize) -> InBuf {
        InBuf {
            data: Vec::new(),
            start: 0,
            end: 0,
            cap: cap.max(CHUNK),
        }
    }

    /// The bytes not yet consumed.
    pub(super) fn filled(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }

    /// Marks the first `n` filled bytes as used.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.data.len() > KEEP {
                self.data = Vec::new();
            }
        }
    }

    /// Room for the next read: a chunk or more, unless at the cap.
    fn spare(&mut self) -> &mut [u8] {
        if self.data.len() - self.end < CHUNK && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.data.len() - self.end < CHUNK && self.data.len() < self.cap {
            // Grow by half again, not doubling: a 16 MiB reply would zero
            // 32 MiB.
            let len = (self.end + CHUNK)
                .max(self.data.len() + self.data.len() / 2)
                .min(self.cap);
            self.data.resize(len, 0);
        }
        self.data.get_mut(self.end..).unwrap_or_default()
    }

    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        if self.data.len() > KEEP {
            self.data = Vec::new();
        }
    }
}

/// What a read round ended with.
#[derive(Debug)]
pub(super) enum ReadEnd {
    /// The socket has nothing more for now.
    Drained,
    /// The read budget was spent, or the input buffer is at its cap:
    /// consume and read again.
    More,
    /// Redis closed the connection.
    Eof,
    Error(io::Error),
}

/// Reconnect delays: doubling from `min` to `max`, each jittered down by up
/// to half, so that nodes restarted together do not reconnect in step.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(self.max);
        // xorshift64*: plenty for jitter.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let half = d / 2;
        half + half.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// One connection.
#[derive(Debug)]
pub(super) struct Link {
    /// "subscribe" or "publish", for logs.
    pub(super) name: &'static str,
    pub(super) token: Token,
    pub(super) state: State,
    stream: Option<TcpStream>,
    pub(super) inbuf: InBuf,
    out: Vec<u8>,
    /// `out[..written]` has gone to the socket.
    written: usize,
    pub(super) expect: Expected,
    /// Down: the next attempt. Connecting, Greeting: give up.
    pub(super) deadline: Option<Instant>,
    backoff: Backoff,
    /// When the connection last became Ready, if it is.
    ready_since: Option<Instant>,
    /// Whether it was ever Ready (a later Ready is a reconnect).
    pub(super) ever_ready: bool,
    /// Connection attempts; picks the address.
    attempts: usize,
    /// The last read stopped before the socket was drained.
    pub(super) read_pending: bool,
    /// A fault found where the connection could not be reset (no
    /// registry at hand); the next flush resets it.
    pub(super) broken: Option<String>,
    /// Bytes still to discard of a reply too large to keep
    /// ([`super::resp::Frame::Oversized`]).
    pub(super) skip: usize,
}

impl Link {
    /// Drops the `offset` bytes of a reply decoded so far, and the `skip`
    /// bytes of it still to come as they arrive ([`Link::skipping`]).
    pub(super) fn skip_after(&mut self, offset: usize, skip: usize) {
        self.inbuf.consume(offset);
        self.skip = skip;
    }

    /// Discards what has arrived of a reply being skipped; true while more
    /// of it is still to come.
    pub(super) fn skipping(&mut self) -> bool {
        let n = self.skip.min(self.inbuf.filled().len());
        self.inbuf.consume(n);
        self.skip -= n;
        self.skip > 0
    }

    pub(super) fn new(
        name: &'static str,
        token: Token,
        in_cap: usize,
        backoff: (Duration, Duration),
        seed: u64,
    ) -> Link {
        Link {
            name,
            token,
            state: State::Down,
            stream: None,
            inbuf: InBuf::new(in_cap),
            out: Vec::new(),
            written: 0,
            expect: Expected::default(),
            deadline: None,
            backoff: Backoff {
                min: backoff.0,
                max: backoff.1,
                next: backoff.0,
                rng: seed | 1,
            },
            ready_since: None,
            ever_ready: false,
            attempts: 0,
            read_pending: false,
            skip: 0,
            broken: None,
        }
    }

    /// Lets the input buffer grow to `cap` bytes (a reply it must hold
    /// may be that large).
    pub(super) fn set_input_cap(&mut self, cap: usize) {
        self.inbuf.cap = cap.max(CHUNK);
    }

    /// Connected (Greeting or Ready): commands may be queued.
    pub(super) fn is_connected(&self) -> bool {
        matches!(self.state, State::Greeting | State::Ready)
    }

    /// Unsent output bytes.
    pub(super) fn pending_out(&self) -> usize {
        self.out.len() - self.written
    }

    /// The output buffer, to append commands to.
    pub(super) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Starts a non-blocking connect to one of `addrs` (in turn).
    pub(super) fn connect(
        &mut self,
        registry: &Registry,
        addrs: &[SocketAddr],
        timeout: Duration,
        now: Instant,
    ) -> io::Result<()> {
        let addr = addrs
            .get(self.attempts % addrs.len().max(1))
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        self.attempts = self.attempts.wrapping_add(1);
        self.deadline = Some(now + timeout);
        let mut stream = TcpStream::connect(addr)?;
        registry.register(
            &mut stream,
            self.token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.stream = Some(stream);
        self.state = State::Connecting;
        Ok(())
    }

    /// After a readiness event while Connecting: `Ok(true)` once the
    /// connect completed, `Ok(false)` if it is still in progress (a
    /// spurious wakeup), or the error it failed with.
    pub(super) fn finish_connect(&mut self) -> io::Result<bool> {
        let Some(stream) = self.stream.as_ref() else {
            return Ok(false);
        };
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(e),
        }
        // Publishes are small and latency matters more than packet count;
        // a turn's publishes already go out in one write.
        stream.set_nodelay(true)?;
        // A Redis host that vanishes without a FIN (power, network) would
        // leave the subscribe connection silent forever: probe it, so the
        // kernel ends the connection within about half a minute.
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(15))
            .with_interval(Duration::from_secs(5))
            .with_retries(3);
        socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
        self.state = State::Greeting;
        Ok(true)
    }

    /// The login replies all came: Ready.
    pub(super) fn set_ready(&mut self, now: Instant) {
        self.state = State::Ready;
        self.deadline = None;
        self.ready_since = Some(now);
    }

    /// Reads until the socket would block, the read budget is spent, or
    /// the input buffer is full.
    pub(super) fn read(&mut self) -> ReadEnd {
        self.read_pending = false;
        let Some(stream) = self.stream.as_mut() else {
            return ReadEnd::Drained;
        };
        let mut budget = READ_BUDGET;
        loop {
            let spare = self.inbuf.spare();
            if spare.is_empty() || budget == 0 {
                self.read_pending = true;
                return ReadEnd::More;
            }
            let len = spare.len().min(budget);
            match stream.read(spare.get_mut(..len).unwrap_or_default()) {
                Ok(0) => return ReadEnd::Eof,
                Ok(n) => {
                    self.inbuf.end += n;
                    budget -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return ReadEnd::Error(e),
            }
        }
    }

    /// Writes queued output until it is all sent or the socket would block
    /// (then a writable event calls again): a turn's commands in one write.
    pub(super) fn write(&mut self) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        while let Some(rest) = self.out.get(self.written..).filter(|r| !r.is_empty()) {
            match stream.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
            if self.out.capacity() > KEEP {
                self.out = Vec::new();
            }
        } else if self.written >= CHUNK && self.written > self.out.len() / 2 {
            // Keep the unsent tail at the front so the buffer does not creep.
            self.out.drain(..self.written);
            self.written = 0;
        }
        Ok(())
    }

    /// Closes the connection and schedules the next attempt. What was
    /// queued or awaited is forgotten (the caller counted it first).
    pub(super) fn reset(&mut self, registry: &Registry, now: Instant) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
        // A connection that stayed up a while was healthy: start the
        // backoff over. One that fails soon after login keeps backing off,
        // so a server that greets and then misbehaves is not hammered.
        if self
            .ready_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.backoff.max)
        {
            self.backoff.next = self.backoff.min;
        }
        self.state = State::Down;
        self.deadline = Some(now + self.backoff.delay());
        self.ready_since = None;
        self.inbuf.clear();
        self.out.clear();
        self.written = 0;
        self.expect = Expected::default();
        self.read_pending = false;
        self.skip = 0;
        self.broken = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_are_runs_taken_in_order() {
        let mut e = Expected::default();
        e.push(Expect::Ok, 2);
        e.push(Expect::Integer, 1);
        e.push(Expect::Integer, 3);
        e.push(Expect::Subscribe, 0);
        assert_eq!(e.runs.len(), 2);
        assert_eq!(e.count(Expect::Integer), 4);
        assert!(!e.pop(Expect::Integer), "the logins come first");
        assert!(e.pop(Expect::Ok) && e.pop(Expect::Ok));
        assert_eq!(e.front(), Some(Expect::Integer));
        for _ in 0..4 {
            assert!(e.pop(Expect::Integer));
        }
        assert_eq!(e.front(), None);
        assert!(!e.pop(Expect::Ok));
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let mut b = Backoff {
            min,
            max,
            next: min,
            rng: 12345,
        };
        let mut bounds = Vec::new();
        for _ in 0..8 {
            let nominal = b.next;
            let d = b.delay();
            assert!(d >= nominal / 2 && d <= nominal, "{d:?} for {nominal:?}");
            bounds.push(nominal);
        }
        assert_eq!(
            bounds[..5],
            [100, 200, 400, 800, 1000].map(Duration::from_millis)
        );
        assert_eq!(*bounds.last().unwrap(), max);
    }

    #[test]
    fn input_grows_to_its_cap_and_compacts() {
        let mut b = InBuf::new(3 * CHUNK);
        let n = b.spare().len();
        assert!(n >= CHUNK);
        b.end += n;
        b.consume(10);
        let n = b.spare().len();
        assert!(n >= CHUNK, "grew: {n}");
        b.end += n;
        // At the cap with 10 bytes consumed: compacting frees them.
        b.consume(b.filled().len() - 5);
        assert_eq!(b.filled().len(), 5);
        assert!(b.spare().len() >= CHUNK);
        // Filling it up: it grows to the cap and no further.
        for _ in 0..4 {
            let n = b.spare().len();
            b.end += n;
        }
        assert_eq!(b.data.len(), 3 * CHUNK);
        assert!(b.spare().is_empty(), "full at the cap");
        b.consume(usize::MAX);
        assert!(b.filled().is_empty());
    }
}
