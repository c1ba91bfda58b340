//! A large frame split across reads at every kind of point (inside the
//! header, inside the mask, inside the payload): driven through the
//! session and the buffers the way the reactor's read path drives them.

use super::*;
use crate::proto::frame::{write_masked_frame, OpCode};
use crate::proto::{Events, Limits, MessageKind, Role, Session};
use proptest::prelude::*;

/// A socket whose first `arrived` bytes the kernel holds.
struct Socket {
    bytes: Vec<u8>,
    at: usize,
    arrived: usize,
}

impl Socket {
    /// A read: what fits, or `None` for WouldBlock.
    fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        let n = buf.len().min(self.arrived - self.at);
        if n == 0 {
            return None;
        }
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Some(n)
    }
}

#[derive(Default)]
struct Got(Vec<Vec<u8>>);

impl Events for Got {
    fn message(&mut self, _: MessageKind, payload: &[u8]) {
        self.0.push(payload.to_vec());
    }
    fn send(&mut self, _: &[u8]) {}
}

fn frame(size: usize) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let mut frame = Vec::new();
    write_masked_frame(
        &mut frame,
        OpCode::Binary,
        &payload,
        [0x37, 0xfa, 0x21, 0x3d],
    );
    (payload, frame)
}

/// Delivers `frame`, of which the kernel has the first `split` bytes at
/// first and the rest once those are read: the message and the reads it
/// took (WouldBlock not counted).
fn deliver(frame: &[u8], split: usize) -> (Vec<Vec<u8>>, usize) {
    let mut sock = Socket {
        bytes: frame.to_vec(),
        at: 0,
        arrived: split,
    };
    let mut shared = vec![0u8; SHARED_READ_LEN];
    let mut pool = BufPool::new(4);
    let mut rbuf = ReadBuf::default();
    let mut session = Session::new(Role::Server);
    let limits = Limits::default();
    let mut got = Got::default();
    let mut reads = 0;
    while got.0.is_empty() {
        let want = session.wants();
        let carried = rbuf.carry(&mut shared, want);
        let into_own = carried == 0 && !rbuf.is_empty();
        let spare = if into_own {
            rbuf.spare(want, &mut pool)
        } else {
            &mut shared[carried..]
        };
        let Some(n) = sock.read(spare) else {
            assert!(sock.arrived < frame.len(), "stalled with all bytes read");
            sock.arrived = frame.len();
            continue;
        };
        reads += 1;
        let data = if into_own {
            rbuf.advance(n);
            rbuf.filled_mut()
        } else {
            &mut shared[..carried + n]
        };
        let keep = session.feed(data, &limits, &mut got);
        rbuf.settle(into_own, &shared, keep, session.wants(), &mut pool);
    }
    assert!(rbuf.is_empty(), "nothing kept after the message");
    (got.0, reads)
}

fn check(size: usize, split: usize) {
    let (payload, frame) = frame(size);
    let (got, reads) = deliver(&frame, split.min(frame.len()));
    assert_eq!(got.len(), 1, "size {size} split {split}");
    assert!(got[0] == payload, "size {size} split {split}: bytes differ");
    let bound = size.div_ceil(SHARED_READ).max(1) + 1;
    assert!(
        reads <= bound,
        "size {size} split {split}: {reads} reads, bound {bound}"
    );
}

#[test]
fn every_split_inside_the_header_and_mask() {
    // Around each header-length step and the shared buffer's size.
    let sizes = [
        0,
        1,
        125,
        126,
        65535,
        65536,
        SHARED_READ - 1,
        SHARED_READ,
        SHARED_READ + 1,
        3 * SHARED_READ + 5,
    ];
    for size in sizes {
        for split in 0..=MAX_HEADER_LEN + 2 {
            check(size, split);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_split_delivers_the_same_bytes_in_bounded_reads(
        size in 0usize..=(3 * SHARED_READ + 100),
        at in any::<prop::sample::Index>(),
    ) {
        check(size, at.index(size + MAX_HEADER_LEN + 1));
    }
}
