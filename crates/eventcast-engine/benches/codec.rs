//! Criterion micro-benchmarks of the hot paths under `npm run bench`'s figures:
//! datagram framing, `{payload: [...]}` bodies, legacy encryption, and a full
//! sans-IO round trip (sender `Endpoint::emit` → receiver `handle_datagram`).
//!
//! Run: `cargo bench --bench codec` (add `-- <filter>` to pick some).

use bson::spec::BinarySubtype;
use bson::{Binary, Bson};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eventcast_engine::protocol::{Config, Encryption, Endpoint, Identity};
use eventcast_engine::wire::{self, legacy::LegacyKey, secure::SecureKey, Meta};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// The bench suite's small event: `e("x" * 64, trial, seq, sendTime)`.
fn small_args() -> Vec<Bson> {
    vec![Bson::String("x".repeat(64)), Bson::Int32(1), Bson::Int32(12345), Bson::Double(1.7e12)]
}

fn meta(seq: i32, seq_len: i32) -> Meta {
    Meta {
        v: 3,
        seq,
        seq_len,
        seq_id: "0123456789abcdef0123456789abcdef01234567".into(),
        seq_end: seq == seq_len - 1,
        enc: false,
        nonce: None,
        name: Some("e".into()),
        host: Some("192.168.1.20".into()),
        port: Some(41234),
        hostname: Some("bench-host".into()),
        id: Some("0123456789abcdef".into()),
        time: Some("2025-01-01T00:00:00.000Z".into()),
        sn: Some(42),
        // As a stream past its first 16,384 messages (the steady state) writes
        // it; a young one adds `snAge`, 11 bytes.
        sn_age: None,
    }
}

fn identity(id: &str) -> Identity {
    Identity { id: id.into(), host: "127.0.0.1".into(), port: 41234, hostname: "bench-host".into() }
}

fn codec(c: &mut Criterion) {
    let body = wire::encode_args(&small_args());
    let small_meta = meta(0, 1);
    let mut small = Vec::new();
    wire::encode_datagram(&small_meta, &body, &mut small);
    let chunk_meta = meta(3, 100);
    let chunk_body = vec![0xabu8; 1024];
    let mut chunk = Vec::new();
    wire::encode_datagram(&chunk_meta, &chunk_body, &mut chunk);

    let mut g = c.benchmark_group("datagram");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_small", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            wire::encode_datagram(black_box(&small_meta), black_box(&body), &mut out);
        })
    });
    g.bench_function("decode_small", |b| b.iter(|| wire::decode_datagram(black_box(&small)).map(|d| d.body.len())));
    g.bench_function("encode_chunk_1024", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            wire::encode_datagram(black_box(&chunk_meta), black_box(&chunk_body), &mut out);
        })
    });
    g.bench_function("decode_chunk_1024", |b| {
        b.iter(|| wire::decode_datagram(black_box(&chunk)).map(|d| d.body.len()))
    });
    g.finish();

    let mut g = c.benchmark_group("body");
    g.throughput(Throughput::Elements(1));
    let args = small_args();
    g.bench_function("encode_args_small", |b| b.iter(|| wire::encode_args(black_box(&args))));
    g.bench_function("decode_body_small", |b| b.iter(|| wire::decode_body(black_box(&body))));
    g.bench_function("decode_body_raw_small", |b| {
        b.iter(|| match wire::decode_body_raw(black_box(&body)) {
            Ok(wire::RawPayload::Args(Some(a))) => a.into_iter().count(),
            _ => 0,
        })
    });
    let nested = vec![Bson::Document(bson::doc! {
        "user": {"id": 1234, "name": "alice", "tags": ["a", "b", "c"]},
        "at": bson::DateTime::from_millis(1_700_000_000_000),
        "values": [1.5, 2.5, 3.5, 4.5],
    })];
    let nested_body = wire::encode_args(&nested);
    g.bench_function("encode_args_nested", |b| b.iter(|| wire::encode_args(black_box(&nested))));
    g.bench_function("decode_body_nested", |b| b.iter(|| wire::decode_body(black_box(&nested_body))));
    let big = vec![Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![7u8; 100 * 1024] })];
    let big_body = wire::encode_args(&big);
    g.throughput(Throughput::Bytes(100 * 1024));
    g.bench_function("encode_args_100KiB_binary", |b| b.iter(|| wire::encode_args(black_box(&big))));
    g.bench_function("decode_body_100KiB_binary", |b| b.iter(|| wire::decode_body(black_box(&big_body))));
    g.finish();

    let key = LegacyKey::from_passphrase("bench passphrase");
    let ct = key.encrypt(&small);
    let mut g = c.benchmark_group("legacy_encryption");
    g.throughput(Throughput::Elements(1));
    g.bench_function("key_derivation", |b| b.iter(|| LegacyKey::from_passphrase(black_box("bench passphrase"))));
    g.bench_function("encrypt_small", |b| b.iter(|| key.encrypt(black_box(&small))));
    g.bench_function("decrypt_small", |b| b.iter(|| key.decrypt(black_box(&ct))));
    g.finish();

    // The authenticated default (`encrypt: {key}`). Per-datagram cost does not depend
    // on the PBKDF2 iteration count, so the bench derives with few iterations.
    let key = SecureKey::derive_with_iterations("bench passphrase", 1000);
    let mut rng = rand::thread_rng();
    let sealed = key.seal(&small, &mut rng);
    let sealed_hs256 = key.seal_hs256(&small, &mut rng);
    // Another sender of the group: its datagrams need the subkey of its session.
    let other = SecureKey::derive_with_iterations("bench passphrase", 1000).seal(&small, &mut rng);
    let mut g = c.benchmark_group("secure_encryption");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal_small", |b| b.iter(|| key.seal(black_box(&small), &mut rng)));
    g.bench_function("open_small", |b| b.iter(|| key.open(black_box(&sealed))));
    g.bench_function("open_small_other_sender", |b| b.iter(|| key.open(black_box(&other))));
    // Version 1, still opened: the cost the new version replaces.
    g.bench_function("seal_small_hs256", |b| b.iter(|| key.seal_hs256(black_box(&small), &mut rng)));
    g.bench_function("open_small_hs256", |b| b.iter(|| key.open(black_box(&sealed_hs256))));
    // Per byte: 4 KiB runs at GB/s with AES-NI and PCLMULQDQ (µs), at tens of MB/s without (tens of µs).
    let big = vec![7u8; 4096];
    g.bench_function("seal_4KiB", |b| b.iter(|| key.seal(black_box(&big), &mut rng)));
    g.bench_function("seal_4KiB_hs256", |b| b.iter(|| key.seal_hs256(black_box(&big), &mut rng)));
    g.finish();
}

/// Runs one message from `tx` to `rx`; returns the events delivered.
fn round_trip(tx: &mut Endpoint, rx: &mut Endpoint, name: &str, args: &[Bson]) -> usize {
    let src: SocketAddr = "127.0.0.1:41234".parse().expect("addr");
    let now = Instant::now();
    tx.emit(now, SystemTime::now(), name, args).expect("emit");
    while let Some(t) = tx.poll_transmit() {
        rx.handle_datagram(now, src, &t.payload);
    }
    let mut n = 0;
    while let Some(o) = rx.poll_output() {
        black_box(&o);
        n += 1;
    }
    n
}

fn endpoint(c: &mut Criterion) {
    let mut g = c.benchmark_group("endpoint_round_trip");
    let secure = SecureKey::derive_with_iterations("bench passphrase", 1000);
    for (label, enc) in [("plain", 0), ("legacy_encrypted", 1), ("secure_encrypted", 2)] {
        let config = || Config {
            encryption: match enc {
                1 => Encryption::Legacy(LegacyKey::from_passphrase("bench passphrase")),
                2 => Encryption::Secure(secure.clone()),
                _ => Encryption::None,
            },
            ..Config::default()
        };
        let mut tx =
            Endpoint::new(config(), identity("00000000000000aa"), 1, Instant::now(), SystemTime::now()).unwrap();
        let mut rx =
            Endpoint::new(config(), identity("00000000000000bb"), 2, Instant::now(), SystemTime::now()).unwrap();
        let args = small_args();
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("small_{label}"), |b| b.iter(|| round_trip(&mut tx, &mut rx, "e", &args)));
        if enc == 0 {
            let big = vec![Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![7u8; 100 * 1024] })];
            g.throughput(Throughput::Bytes(100 * 1024));
            g.bench_function("100KiB_plain", |b| b.iter(|| round_trip(&mut tx, &mut rx, "e", &big)));
        }
    }
    // Emit alone (what a sender pays per call before the socket), outputs drained.
    let mut tx =
        Endpoint::new(Config::default(), identity("00000000000000aa"), 1, Instant::now(), SystemTime::now()).unwrap();
    let args = small_args();
    g.throughput(Throughput::Elements(1));
    g.bench_function("emit_only_small", |b| {
        b.iter_batched(
            || (),
            |_| {
                tx.emit(Instant::now(), SystemTime::now(), "e", &args).expect("emit");
                while let Some(t) = tx.poll_transmit() {
                    black_box(t);
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, codec, endpoint);
criterion_main!(benches);
