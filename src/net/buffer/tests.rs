//! The buffers' unit and property tests.
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
        let mut w = trickle(step, usize::MAX);
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
        let mut w = trickle(3, stop);
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
    let mut w = trickle(4, 4);
    let _ = q.write_to(&mut w);
    assert_eq!(q.discard_unstarted(), 6);
    assert_eq!(q.pending(), 6);
    w.budget = usize::MAX;
    q.write_to(&mut w).unwrap();
    assert_eq!(w.got, b"0123456789");
}

#[test]
fn discard_keeps_the_rest_of_a_direct_write_whole() {
    // "0123" went straight to the socket; the rest of the frame is queued.
    for own in [false, true] {
        let mut q = OutQueue::default();
        if own {
            q.push_own(b"456789");
        } else {
            q.push_shared(SharedBytes::new(
                Frames::Local(Rc::new(b"0123456789".to_vec())),
                4..10,
            ));
        }
        q.mark_front_started();
        q.push_shared(shared(b"later"));
        assert_eq!(q.discard_unstarted(), 5, "own: {own}");
        q.push_own(b"close");
        let mut w = trickle(3, usize::MAX);
        q.write_to(&mut w).unwrap();
        assert_eq!(w.got, b"456789close", "own: {own}");
        // Once written, the next front starts unstarted again.
        q.push_own(b"next");
        assert_eq!(q.discard_unstarted(), 4);
    }
}

#[test]
fn discard_drops_everything_when_nothing_started() {
    let (mut q, expected) = queue();
    assert_eq!(q.discard_unstarted(), expected.len());
    assert!(q.is_empty());
    q.push_own(b"close");
    let mut w = trickle(100, usize::MAX);
    q.write_to(&mut w).unwrap();
    assert_eq!(w.got, b"close");
}

#[test]
fn read_buffer_grows_keeps_and_releases() {
    let mut pool = BufPool::new(4);
    let mut rb = ReadBuf::default();
    assert!(rb.is_empty());
    rb.settle(false, b"partial", 7, 0, &mut pool);
    let spare = rb.spare(0, &mut pool);
    assert!(spare.len() >= READ_CHUNK - 7);
    spare[..3].copy_from_slice(b"abc");
    rb.advance(3);
    assert_eq!(rb.filled_mut(), b"partialabc");
    // Growing past one chunk keeps the bytes.
    rb.advance(READ_CHUNK - 10);
    let before = rb.filled_mut().len();
    assert!(rb.spare(0, &mut pool).len() >= MIN_READ);
    assert_eq!(&rb.filled_mut()[..10], b"partialabc");
    assert_eq!(rb.filled_mut().len(), before);
    rb.settle(true, &[], 0, 0, &mut pool);
    assert!(rb.is_empty());
    assert_eq!(rb.data.len(), 0, "storage given back");
    assert_eq!(pool.free.len(), 1, "the chunk-sized buffer was pooled");
}

#[test]
fn a_kept_frame_gets_room_for_all_it_still_wants() {
    let mut pool = BufPool::new(4);
    let mut rb = ReadBuf::default();
    let want = 900 << 10;
    rb.settle(false, &[7u8; 100], 100, want, &mut pool);
    let spare = rb.spare(want, &mut pool).len();
    assert!(spare >= want && spare < want + READ_CHUNK, "{spare}");
    // The frame's rest fits: no growth, no copy, on the next read.
    let at = rb.data.as_ptr();
    rb.spare(want, &mut pool);
    assert_eq!(rb.data.as_ptr(), at);
    assert_eq!(rb.filled_mut(), &[7u8; 100][..]);
    // Once the message is delivered, the large storage is freed, not pooled.
    rb.settle(true, &[], 0, 0, &mut pool);
    assert_eq!(rb.data.len(), 0);
    assert!(pool.free.is_empty());
}

#[test]
fn a_header_claiming_more_than_a_mib_gets_pages_of_its_own() {
    // Up to AHEAD_MAX the room is heap memory, zeroed at once; past it,
    // at least OWN_PAGES, which the binary takes from the kernel untouched.
    assert_eq!(storage_for(14, AHEAD_MAX), 14 + AHEAD_MAX);
    assert_eq!(storage_for(14, AHEAD_MAX + 1), OWN_PAGES);
    assert_eq!(storage_for(14, 16 << 20), 14 + (16 << 20));
    assert_eq!(storage_for(0, 10), READ_CHUNK);
}

#[test]
fn few_kept_bytes_are_carried_into_the_shared_buffer() {
    let mut pool = BufPool::new(4);
    let mut rb = ReadBuf::default();
    let mut shared = vec![0u8; SHARED_READ_LEN];
    rb.settle(false, b"\x82\xfe", 2, 0, &mut pool);
    assert_eq!(rb.carry(&mut shared, 0), 2);
    assert_eq!(&shared[..2], b"\x82\xfe");
    // Still kept until settled, so a failed read loses nothing.
    assert_eq!(rb.filled_mut(), b"\x82\xfe");
    rb.settle(false, &shared, 0, 0, &mut pool);
    assert!(rb.is_empty());
    // Not when the rest of the frame would not fit after them.
    rb.settle(false, b"abc", 3, 0, &mut pool);
    assert_eq!(rb.carry(&mut shared, SHARED_READ), 0);
}

fn trickle(step: usize, budget: usize) -> Trickle {
    Trickle {
        got: Vec::new(),
        step,
        budget,
    }
}

#[test]
fn write_through_queues_only_what_the_socket_refuses() {
    let parts: [&[u8]; 3] = [b"scratch,", b"HDR", b"payload-bytes"];
    let all = parts.concat();
    for stop in 0..=all.len() {
        let mut w = trickle(5, stop);
        let mut q = None;
        let n = write_through(&mut w, &mut q, &parts).unwrap();
        assert_eq!(n, stop);
        let pending = q.as_deref().map_or(0, OutQueue::pending);
        assert_eq!(pending, all.len() - stop, "stopped at {stop}");
        w.budget = usize::MAX;
        if let Some(q) = q.as_mut() {
            q.write_to(&mut w).unwrap();
        }
        assert_eq!(w.got, all, "stopped at {stop}");
    }
}

#[test]
fn write_through_goes_behind_queued_output() {
    let mut q = Some(Box::new(OutQueue::default()));
    if let Some(q) = q.as_mut() {
        q.push_own(b"first,");
    }
    let mut w = trickle(100, usize::MAX);
    assert_eq!(
        write_through(&mut w, &mut q, &[b"then", b"this"]).unwrap(),
        0
    );
    assert!(w.got.is_empty());
    q.as_mut().unwrap().write_to(&mut w).unwrap();
    assert_eq!(w.got, b"first,thenthis");
}

#[test]
fn write_through_keeps_the_rest_on_an_error() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut q = None;
    let err = write_through(&mut Broken, &mut q, &[b"abc"]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(q.map_or(0, |q| q.pending()), 3);
}

mod split_reads;
