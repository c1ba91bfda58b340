//! The cost of access control at the door and on the read path: verifying a
//! token per algorithm (HS256, ES256, EdDSA, RS256), the whole upgrade
//! decision ([`authorize`], with the token in the query), a token that
//! fails (bad signature, expired), and a rate-limit bucket's `take`.
//!
//! `cargo bench --bench auth [-- FILTER]`; add `--quick` for a fast pass.
//! Groups: `auth/verify`, `auth/authorize`, `auth/refuse`, `auth/rate`.
//! Tokens are minted with RustCrypto (`src/auth/mint.rs`, the tests'
//! minter) and carry a typical claim set: `exp`, `iat`, `sub`, and two
//! read and one write pattern.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wsd::auth::{authorize, verify, Bucket, Key, KeySet, Policy, Rate};

#[path = "../src/auth/mint.rs"]
#[allow(dead_code)]
mod mint;

use mint::Signer;

const NOW: u64 = 1_700_000_000;
const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn claims() -> String {
    format!(
        r#"{{"sub":"user-42","iat":{NOW},"exp":{},"wsd":{{"read":["/news","/chat/*"],"write":["/chat/*"]}}}}"#,
        NOW + 3600
    )
}

/// Signers with their key sets, one per algorithm.
fn signers() -> Vec<(Signer, KeySet)> {
    let (es, es_pem) = Signer::es256();
    let (ed, ed_pem) = Signer::eddsa();
    let (rs, rs_pem) = Signer::rs256(true);
    let set = |bytes: &[u8]| KeySet::new(vec![Key::parse("k", bytes).unwrap()]);
    vec![
        (Signer::hs256(SECRET), set(SECRET)),
        (es, set(es_pem.as_bytes())),
        (ed, set(ed_pem.as_bytes())),
        (rs, set(rs_pem.as_bytes())),
    ]
}

fn verify_tokens(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth/verify");
    g.throughput(Throughput::Elements(1));
    let policy = Policy::default();
    for (signer, keys) in signers() {
        let token = signer.token(&claims());
        assert!(verify(&token, &keys, &policy, NOW).is_ok());
        g.bench_function(signer.alg(), |b| {
            b.iter(|| verify(black_box(&token), &keys, &policy, NOW))
        });
    }
    g.finish();
}

fn authorize_upgrade(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth/authorize");
    g.throughput(Throughput::Elements(1));
    let policy = Policy::default();
    for (signer, keys) in signers().into_iter().take(2) {
        let target = format!("/chat/lobby?token={}", signer.token(&claims()));
        assert!(authorize(&target, None, &keys, &policy, NOW).is_ok());
        g.bench_function(format!("{}/query", signer.alg()), |b| {
            b.iter(|| authorize(black_box(&target), None, &keys, &policy, NOW))
        });
    }
    // Access control off: the cost wsd pays without --auth-key.
    let off = KeySet::default();
    g.bench_function("off", |b| {
        b.iter(|| authorize(black_box("/chat/lobby"), None, &off, &policy, NOW))
    });
    g.finish();
}

fn refuse(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth/refuse");
    g.throughput(Throughput::Elements(1));
    let policy = Policy::default();
    let keys = KeySet::new(vec![Key::parse("k", SECRET).unwrap()]);
    let forged = Signer::hs256(&[7; 32]).token(&claims());
    g.bench_function("HS256/bad_signature", |b| {
        b.iter(|| verify(black_box(&forged), &keys, &policy, NOW))
    });
    let expired = Signer::hs256(SECRET).token(&format!(r#"{{"exp":{}}}"#, NOW - 60));
    g.bench_function("HS256/expired", |b| {
        b.iter(|| verify(black_box(&expired), &keys, &policy, NOW))
    });
    let junk = "x".repeat(wsd::auth::MAX_TOKEN_LEN + 1);
    g.bench_function("oversized", |b| {
        b.iter(|| verify(black_box(&junk), &keys, &policy, NOW))
    });
    g.finish();
}

fn rate(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth/rate");
    g.throughput(Throughput::Elements(1));
    let limit = Rate::per_second(1_000_000).unwrap();
    let mut bucket = Bucket::full(limit, 0);
    let mut now = 0u64;
    g.bench_function("take", |b| {
        b.iter(|| {
            now += 1;
            bucket.take(limit, black_box(now), black_box(32))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = verify_tokens, authorize_upgrade, refuse, rate
}
criterion_main!(benches);
