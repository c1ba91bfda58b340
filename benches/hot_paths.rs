//! Micro-benchmarks of wsd's per-byte and per-frame hot paths, with their
//! throughput: frame header decode and encode, in-place unmasking (against a
//! byte-at-a-time baseline), UTF-8 validation of text, `Session::feed` over a
//! read buffer of many small client frames and over one fragmented message,
//! and the upgrade handshake.
//!
//! `cargo bench --bench hot_paths [-- FILTER]`; add `--quick` for a fast pass.
//! Groups: `frame/decode_header`, `frame/encode`, `unmask`, `utf8`,
//! `session/feed`, `handshake`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use wsd::net::cluster::{Cluster, Handoff};
use wsd::proto::frame::{
    decode_header, encode_header, write_frame, write_masked_frame, OpCode, Parsing,
};
use wsd::proto::handshake::{accept_key, parse_request, write_accept, Head};
use wsd::proto::mask::apply_mask;
use wsd::proto::utf8::Utf8Validator;
use wsd::proto::{Events, Limits, MessageKind, Role, Session};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The byte-at-a-time definition of masking (RFC 6455 §5.3), the baseline
/// that `apply_mask` is measured against.
fn mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

fn frame_header(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/decode_header");
    g.throughput(Throughput::Elements(1));
    for (name, len) in [("len7", 100u64), ("len16", 4096), ("len64", 1 << 20)] {
        let header = encode_header(true, 0, OpCode::Binary, len, Some(KEY));
        let bytes = header.as_slice().to_vec();
        g.bench_with_input(BenchmarkId::new("masked", name), &bytes, |b, bytes| {
            b.iter(|| match decode_header(black_box(bytes)) {
                Ok(Parsing::Done { value, offset }) => (value.len, offset),
                other => panic!("header did not decode: {other:?}"),
            })
        });
    }
    g.finish();
}

fn frame_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/encode");
    g.throughput(Throughput::Elements(1));
    for (name, len) in [("len7", 100u64), ("len16", 4096), ("len64", 1 << 20)] {
        g.bench_with_input(BenchmarkId::new("encode_header", name), &len, |b, &len| {
            b.iter(|| encode_header(true, 0, OpCode::Binary, black_box(len), None))
        });
    }
    for size in [16usize, 64 << 10] {
        let payload = vec![0x5a; size];
        let mut out = Vec::with_capacity(size + 14);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("write_frame", size), &payload, |b, p| {
            b.iter(|| {
                out.clear();
                write_frame(&mut out, OpCode::Binary, black_box(p));
                out.len()
            })
        });
    }
    g.finish();
}

fn unmask(c: &mut Criterion) {
    const SIZES: [usize; 7] = [16, 64, 256, 1 << 10, 4 << 10, 64 << 10, 1 << 20];
    // Room to place each slice at a 64-byte boundary, or 3 bytes past one.
    let mut backing = vec![0xa5u8; SIZES[SIZES.len() - 1] + 128];
    let aligned = backing.as_ptr().align_offset(64);
    let mut g = c.benchmark_group("unmask");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        for (name, start) in [("aligned", aligned), ("unaligned", aligned + 3)] {
            let buf = &mut backing[start..start + size];
            g.bench_function(BenchmarkId::new(format!("apply_mask/{name}"), size), |b| {
                b.iter(|| apply_mask(black_box(&mut *buf), KEY, 1))
            });
        }
        let buf = &mut backing[aligned..aligned + size];
        g.bench_function(BenchmarkId::new("bytewise/aligned", size), |b| {
            b.iter(|| mask_bytewise(black_box(&mut *buf), KEY, 1))
        });
    }
    g.finish();
}

/// Text of about `size` bytes made of `unit` repeated, cut at a character
/// boundary.
fn text(unit: &str, size: usize) -> Vec<u8> {
    let mut s = unit.repeat(size / unit.len() + 1);
    let mut end = size;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.into_bytes()
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    for size in [64usize, 64 << 10] {
        for (name, unit) in [
            ("ascii", "The quick brown fox jumps over the lazy dog. "),
            ("multibyte", "Grüße, Καλημέρα, こんにちは, 🦀 "),
        ] {
            let msg = text(unit, size);
            g.throughput(Throughput::Bytes(msg.len() as u64));
            g.bench_with_input(BenchmarkId::new(name, size), &msg, |b, msg| {
                b.iter(|| {
                    let mut v = Utf8Validator::default();
                    v.advance(black_box(msg))
                        .and_then(|()| v.finish(msg.len()))
                        .expect("valid UTF-8")
                })
            });
        }
    }
    g.finish();
}

/// Counts what a session reports; otherwise does nothing with it.
#[derive(Default)]
struct Sink {
    messages: usize,
    bytes: usize,
    sent: usize,
}

impl Events for Sink {
    fn message(&mut self, _kind: MessageKind, payload: &[u8]) {
        self.messages += 1;
        self.bytes += payload.len();
    }

    fn send(&mut self, frame: &[u8]) {
        self.sent += frame.len();
    }
}

/// Feeds `input` to a new server session in one call; returns what it reported.
fn feed_all(input: &mut [u8], limits: &Limits) -> Sink {
    let mut session = Session::new(Role::Server);
    let mut sink = Sink::default();
    let keep = session.feed(input, limits, &mut sink);
    assert_eq!(keep, 0, "a whole frame was left unprocessed");
    sink
}

fn session_feed(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("session/feed");

    // A read buffer's worth of small masked text frames (16 to 79 bytes, as
    // chat traffic), each with its own key, as a client sends them.
    const FRAMES: usize = 1000;
    let mut small = Vec::new();
    let mut payload_bytes = 0;
    for i in 0..FRAMES {
        let len = 16 + (i * 37) % 64;
        let payload = text("hello, wsd! ", len);
        payload_bytes += payload.len();
        let key = (i as u32).wrapping_mul(0x9E37_79B9).to_ne_bytes();
        write_masked_frame(&mut small, OpCode::Text, &payload, key);
    }
    let check = feed_all(&mut small.clone(), &limits);
    assert_eq!((check.messages, check.bytes), (FRAMES, payload_bytes));
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function(BenchmarkId::new("small_text_frames", FRAMES), |b| {
        b.iter_batched_ref(
            || small.clone(),
            |buf| feed_all(buf, &limits).messages,
            BatchSize::LargeInput,
        )
    });

    // One 64 KiB binary message in 64 masked fragments of 1 KiB.
    const FRAGMENT: usize = 1 << 10;
    const FRAGMENTS: usize = 64;
    let mut fragmented = Vec::new();
    for i in 0..FRAGMENTS {
        let op = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        let header = encode_header(i == FRAGMENTS - 1, 0, op, FRAGMENT as u64, Some(KEY));
        fragmented.extend_from_slice(header.as_slice());
        let start = fragmented.len();
        fragmented.resize(start + FRAGMENT, i as u8);
        apply_mask(&mut fragmented[start..], KEY, 0);
    }
    let check = feed_all(&mut fragmented.clone(), &limits);
    assert_eq!((check.messages, check.bytes), (1, FRAGMENT * FRAGMENTS));
    g.throughput(Throughput::Bytes((FRAGMENT * FRAGMENTS) as u64));
    g.bench_function(
        BenchmarkId::new("fragmented_message", format!("{FRAGMENTS}x{FRAGMENT}")),
        |b| {
            b.iter_batched_ref(
                || fragmented.clone(),
                |buf| feed_all(buf, &limits).bytes,
                BatchSize::LargeInput,
            )
        },
    );
    g.finish();
}

fn handshake(c: &mut Criterion) {
    let request: &[u8] = b"GET /chat HTTP/1.1\r\n\
        Host: 127.0.0.1:9001\r\n\
        User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
        Accept: */*\r\n\
        Accept-Language: en-US,en;q=0.5\r\n\
        Accept-Encoding: gzip, deflate, br\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Origin: http://127.0.0.1:8080\r\n\
        Sec-WebSocket-Extensions: permessage-deflate\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Connection: keep-alive, Upgrade\r\n\
        Pragma: no-cache\r\n\
        Cache-Control: no-cache\r\n\
        Upgrade: websocket\r\n\r\n";
    let key = match parse_request(request, 8 << 10) {
        Ok(Parsing::Done {
            value: Head::Upgrade(req),
            ..
        }) => req.key,
        other => panic!("request did not parse: {other:?}"),
    };
    assert_eq!(&accept_key(key), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_request", |b| {
        b.iter(|| parse_request(black_box(request), 8 << 10).is_ok())
    });
    g.bench_function("accept_key", |b| b.iter(|| accept_key(black_box(key))));
    let mut out = Vec::with_capacity(256);
    g.bench_function("parse_and_accept", |b| {
        b.iter(|| {
            out.clear();
            if let Ok(Parsing::Done {
                value: Head::Upgrade(req),
                ..
            }) = parse_request(black_box(request), 8 << 10)
            {
                write_accept(&mut out, req.key, None);
            }
            out.len()
        })
    });
    g.finish();
}

/// The cross-reactor hand-off (`--threads`): what a publishing reactor
/// pays per batch and receiving reactor (the push), what the receiver pays
/// (the pop), and the wake that tells it (an eventfd write; once per turn
/// per receiving reactor, not per message).
fn handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("handoff");
    let cluster = Cluster::new(2);
    let bytes = Arc::new(vec![0u8; 34]);
    let room: Arc<str> = "/room".into();
    g.bench_function("push_pop", |b| {
        b.iter(|| {
            cluster.hand_off(
                1,
                Handoff {
                    room: room.clone(),
                    bytes: bytes.clone(),
                    messages: 1,
                    publish: Vec::new(),
                },
            );
            black_box(cluster.next_handoff(1))
        })
    });
    let poll = mio::Poll::new().unwrap();
    cluster.set_waker(
        1,
        Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap()),
    );
    g.bench_function("wake", |b| b.iter(|| cluster.wake(1)));
    g.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the machine has 2 cores shared with builds and tests.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = frame_header, frame_encode, unmask, utf8, session_feed, handshake, handoff
}
criterion_main!(benches);
