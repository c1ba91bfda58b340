//! permessage-deflate costs: compressing and inflating one message of 32 B
//! to 64 KiB of JSON-like text, as wsd does it (a shared compressor and
//! inflater reset per message: no context takeover), with the compressed
//! size printed once per size so speed and ratio can be read together; and
//! zlib-rs's level 6 beside wsd's level as the reference for that choice.
//!
//! `cargo bench --bench deflate [-- FILTER]`; add `--quick` for a fast pass.
//! Groups: `deflate/compress`, `deflate/inflate`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flate2::{Compress, Compression, FlushCompress};
use wsd::proto::deflate::{Deflater, Inflater, LEVEL};
use wsd::proto::ProtocolError;

const SIZES: [usize; 6] = [32, 128, 512, 1024, 8 << 10, 64 << 10];

/// JSON-like text: the kind of message a broadcast server carries.
fn json_like(n: usize) -> Vec<u8> {
    let mut s = String::with_capacity(n + 80);
    let mut i = 7u32;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"symbol\":\"S{}\",\"price\":{}.{:02},\"qty\":{},\"side\":\"{}\"}},",
            i % 97,
            i % 1000,
            i % 100,
            i % 13,
            if i.is_multiple_of(2) { "buy" } else { "sell" }
        ));
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12345) % 100_000;
    }
    s.truncate(n);
    s.into_bytes()
}

/// zlib-rs at `level`, raw, reset per message, the tail kept: the reference.
fn compress_at(z: &mut Compress, msg: &[u8], out: &mut Vec<u8>) {
    z.reset();
    out.clear();
    out.reserve(msg.len() + 64);
    let _ = z.compress_vec(msg, out, FlushCompress::Sync);
}

fn compress(c: &mut Criterion) {
    let mut g = c.benchmark_group("deflate/compress");
    let mut z = Deflater::new(15);
    let mut reference = Compress::new_with_window_bits(Compression::new(6), false, 15);
    for size in SIZES {
        let msg = json_like(size);
        let mut out = Vec::with_capacity(size + 64);
        z.compress(&msg, &mut out, true);
        let ours = out.len();
        compress_at(&mut reference, &msg, &mut out);
        eprintln!(
            "deflate: {size} B of JSON-like text -> level {LEVEL}: {ours} B ({:.0}%), level 6: {} B ({:.0}%)",
            100.0 * ours as f64 / size as f64,
            out.len() - 4,
            100.0 * (out.len() - 4) as f64 / size as f64
        );
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(
            BenchmarkId::new(format!("level{LEVEL}"), size),
            &msg,
            |b, msg| {
                b.iter(|| {
                    out.clear();
                    z.compress(black_box(msg), &mut out, true);
                    out.len()
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("level6", size), &msg, |b, msg| {
            b.iter(|| {
                compress_at(&mut reference, black_box(msg), &mut out);
                out.len()
            })
        });
    }
    g.finish();
}

fn inflate(c: &mut Criterion) {
    let mut g = c.benchmark_group("deflate/inflate");
    let mut z = Inflater::new(15);
    let mut out = Vec::new();
    let mut ok = |_: &[u8]| -> Result<(), ProtocolError> { Ok(()) };
    for size in SIZES {
        let msg = json_like(size);
        let mut compressed = Vec::new();
        Deflater::new(15).compress(&msg, &mut compressed, true);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("reset", size), &compressed, |b, c| {
            b.iter(|| {
                z.inflate(black_box(c), &mut out, 16 << 20, true, &mut ok)
                    .map(|()| out.len())
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = compress, inflate
}
criterion_main!(benches);
