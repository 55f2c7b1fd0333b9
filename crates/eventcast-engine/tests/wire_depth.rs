//! Hostile nesting: bodies nested up to a million levels deep
//! (documents and arrays mixed) through `decode_body` and the whole engine
//! (`Endpoint::handle_datagram`, chunked and reassembled). Before the
//! iterative depth check, 6,000 levels overflowed the stack (SIGSEGV) in the
//! recursive BSON conversion; now anything deeper than `MAX_NESTING` (100)
//! levels is refused and counted as `rejected_malformed`, and anything up to
//! 100 levels arrives with its exact values.
//!
//! The generator builds the raw bytes iteratively: it must not recurse either.

use bson::{doc, Bson};
use eventcast_engine::protocol::{Config, Endpoint, Identity, Output};
use eventcast_engine::wire::{self, Payload, MAX_NESTING};
use proptest::prelude::*;
use std::time::{Duration, Instant, SystemTime};

#[path = "support/forge.rs"]
mod forge;

/// `{payload: [arg]}` where `arg` is nested `kinds.len()` levels deep
/// (`true` = document with key "k", `false` = array), holding int32 `leaf`
/// innermost. Level 1 is the argument itself, as `emit` counts.
fn nested_body(kinds: &[bool], leaf: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(kinds.len() * 8 + 32);
    let mut lens = Vec::with_capacity(kinds.len() + 2);
    lens.push(b.len());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(b"\x04payload\0");
    lens.push(b.len());
    b.extend_from_slice(&[0; 4]);
    let mut parent_is_doc = false;
    for &doc in kinds {
        b.push(if doc { 0x03 } else { 0x04 });
        b.extend_from_slice(if parent_is_doc { b"k\0" } else { b"0\0" });
        lens.push(b.len());
        b.extend_from_slice(&[0; 4]);
        parent_is_doc = doc;
    }
    b.push(0x10);
    b.extend_from_slice(if parent_is_doc { b"k\0" } else { b"0\0" });
    b.extend_from_slice(&leaf.to_le_bytes());
    while let Some(at) = lens.pop() {
        b.push(0);
        let n = (b.len() - at) as i32;
        b[at..at + 4].copy_from_slice(&n.to_le_bytes());
    }
    b
}

/// The argument [`nested_body`] encodes, built inside out (only for depths a
/// receiver accepts, ≤ 100, so the recursive `Bson` type is fine here).
fn expected_arg(kinds: &[bool], leaf: i32) -> Bson {
    kinds
        .iter()
        .rev()
        .fold(Bson::Int32(leaf), |v, &doc| if doc { Bson::Document(doc! {"k": v}) } else { Bson::Array(vec![v]) })
}

fn kinds(levels: usize, seed: u64) -> Vec<bool> {
    // A cheap deterministic mix of documents and arrays.
    let mut x = seed | 1;
    (0..levels)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x & 1 == 1
        })
        .collect()
}

fn ident(id: &str) -> Identity {
    Identity { id: id.into(), host: "10.0.0.1".into(), port: 9000, hostname: "h".into() }
}

/// Sends `body` from an attacker endpoint (which writes it unchecked) to a
/// fresh receiver, then a real event; returns the receiver's events and its
/// `rejected_malformed` count.
fn through_engine(body: &[u8], max_payload_size: usize) -> (Vec<(String, Vec<Bson>)>, u64) {
    let t0 = Instant::now();
    let w0 = SystemTime::now();
    let config = Config { max_payload_size, ..Config::default() };
    let mut tx = Endpoint::new(config.clone(), ident("00000000000000a1"), 1, t0, w0).unwrap();
    let mut rx = Endpoint::new(config, ident("00000000000000b2"), 2, t0, w0).unwrap();
    tx.emit(t0, w0, "before", &[Bson::Int32(1)]).unwrap();
    tx.emit_encoded(t0, w0, "deep", body).unwrap();
    tx.emit(t0, w0, "after", &[Bson::Int32(2)]).unwrap();
    let src = "10.0.0.9:9000".parse().unwrap();
    let mut k = 0u64;
    while let Some(t) = tx.poll_transmit() {
        k += 1;
        rx.handle_datagram(t0 + Duration::from_micros(k), src, &t.payload);
    }
    let mut events = Vec::new();
    while let Some(o) = rx.poll_output() {
        if let Output::Event(e) = o {
            events.push((e.name, e.args));
        }
    }
    (events, rx.stats().rejected_malformed)
}

fn check_engine(levels: usize, seed: u64, max_payload_size: usize) {
    let k = kinds(levels, seed);
    let body = nested_body(&k, 42);
    let (events, malformed) = through_engine(&body, max_payload_size);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    if levels <= MAX_NESTING {
        assert_eq!(names, ["before", "deep", "after"], "levels {levels}");
        assert_eq!(events[1].1, vec![expected_arg(&k, 42)], "levels {levels}");
        assert_eq!(malformed, 0);
    } else {
        assert_eq!(names, ["before", "after"], "levels {levels}");
        assert_eq!(malformed, 1, "levels {levels}");
    }
    assert_eq!(events[0].1, vec![Bson::Int32(1)]);
    assert_eq!(events.last().unwrap().1, vec![Bson::Int32(2)]);
}

#[test]
fn generator_matches_the_bson_crate() {
    for levels in [0, 1, 2, 7] {
        let k = kinds(levels, 3);
        assert_eq!(nested_body(&k, 5), doc! {"payload": [expected_arg(&k, 5)]}.to_vec().unwrap());
    }
}

#[test]
fn the_limit_is_exactly_what_emit_accepts() {
    for seed in 1..4 {
        for levels in [99, 100] {
            let k = kinds(levels, seed);
            let body = nested_body(&k, 7);
            assert_eq!(wire::decode_body(&body).unwrap(), Payload::Args(vec![expected_arg(&k, 7)]));
            // What the encoder writes for that value is the same bytes.
            assert_eq!(wire::encode_args(&[expected_arg(&k, 7)]), body);
        }
        // The encoder (Rust `emit`) refuses what receivers would refuse.
        let too_deep = expected_arg(&kinds(101, seed), 7);
        assert!(matches!(wire::try_encode_args(&[too_deep]), Err(eventcast_engine::Error::Payload(_))));
        for levels in [101, 102, 6_000] {
            let body = nested_body(&kinds(levels, seed), 7);
            assert!(matches!(wire::decode_body(&body), Err(eventcast_engine::error::WireError::Malformed(_))));
            assert!(wire::decode_body_raw(&body).is_err());
        }
    }
    // `{payload: {...}}` bodies (retransmission requests, heartbeats, 0.1.x
    // document payloads): the payload document is itself level 1.
    let inner = expected_arg(&kinds(99, 9), 1);
    let body = wire::encode_document_body(&doc! {"k": inner.clone()});
    assert_eq!(wire::decode_body(&body).unwrap(), Payload::Document(doc! {"k": inner}));
    let body = wire::encode_document_body(&doc! {"k": expected_arg(&kinds(100, 9), 1)});
    assert!(wire::decode_body(&body).is_err());
}

#[test]
fn a_million_levels_chunked_through_the_engine() {
    // ≈ 8 MB in ≈ 8,000 chunks of 1024 bytes, reassembled, then refused.
    let t = Instant::now();
    check_engine(1_000_000, 11, 1024);
    eprintln!("1,000,000 levels, chunked at 1024: {:?}", t.elapsed());
    check_engine(6_000, 12, 1024);
    check_engine(100, 13, 1024);
    check_engine(101, 13, 1024);
}

#[test]
fn deep_control_documents_are_refused() {
    // A heartbeat and a retransmission request whose documents nest 6,000 levels.
    for name in [wire::RETX_EVENT, "__ec_hb"] {
        let mut body = nested_body(&kinds(6_000, 5), 1);
        body[4] = 0x03; // `payload` becomes a document (its key "0" is as good as any)
        let (events, malformed) = {
            let t0 = Instant::now();
            let w0 = SystemTime::now();
            let mut tx = Endpoint::new(Config::default(), ident("00000000000000a1"), 1, t0, w0).unwrap();
            let mut rx = Endpoint::new(Config::default(), ident("00000000000000b2"), 2, t0, w0).unwrap();
            // Applications cannot emit protocol names: forge the control message.
            let meta = forge::meta(Some("00000000000000a1"), &"ab".repeat(20), name, 0, 1, None);
            let src = "10.0.0.9:9000".parse().unwrap();
            rx.handle_datagram(t0, src, &forge::datagram(&meta, &body));
            tx.emit(t0, w0, "after", &[]).unwrap();
            while let Some(t) = tx.poll_transmit() {
                rx.handle_datagram(t0, src, &t.payload);
            }
            let events: Vec<String> = std::iter::from_fn(|| rx.poll_output())
                .filter_map(|o| if let Output::Event(e) = o { Some(e.name) } else { None })
                .collect();
            (events, rx.stats().rejected_malformed)
        };
        assert_eq!(events, ["after"], "{name}");
        assert_eq!(malformed, 1, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn decode_body_at_any_depth(
        levels in prop_oneof![0usize..=120, 95usize..=105, 100usize..=1_000_000],
        seed in any::<u64>(),
    ) {
        let k = kinds(levels, seed);
        let body = nested_body(&k, -3);
        match wire::decode_body(&body) {
            Ok(p) => {
                prop_assert!(levels <= MAX_NESTING, "accepted {} levels", levels);
                prop_assert_eq!(p, Payload::Args(vec![expected_arg(&k, -3)]));
            }
            Err(_) => prop_assert!(levels > MAX_NESTING, "refused {} levels", levels),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn engine_at_any_depth(
        levels in prop_oneof![0usize..=120, 100usize..=1_000_000],
        seed in any::<u64>(),
        mps in prop_oneof![Just(1024usize), Just(16_384usize), Just(60_000usize)],
    ) {
        check_engine(levels, seed, mps);
    }
}
