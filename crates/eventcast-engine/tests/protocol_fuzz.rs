//! Property tests of the engine under hostile input: random bytes, mutated
//! real datagrams and crafted chunk metas never panic, never push reassembly
//! past its limits, and never keep a valid message from arriving.

use bson::Bson;
use eventcast_engine::protocol::{Config, Endpoint, Identity, Limits, Output};
use eventcast_engine::wire::{self, Meta};
use proptest::prelude::*;
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Debug)]
enum Op {
    Random(Vec<u8>),
    Mutated { which: usize, at: usize, xor: u8, cut: Option<usize> },
    Crafted { id: u8, group: u8, seq: i32, seq_len: i32, len: usize, sn: Option<i64>, enc: bool, sn_age: Option<i32> },
}

/// A forged `snAge`: the edges (negative, 0, `i32::MAX`) and anything.
fn sn_age() -> impl Strategy<Value = Option<i32>> {
    proptest::option::of(prop_oneof![Just(-1), Just(0), Just(i32::MAX), Just(i32::MIN), any::<i32>()])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Op::Random),
        (0usize..64, 0usize..2000, 1u8.., proptest::option::of(0usize..2000))
            .prop_map(|(which, at, xor, cut)| Op::Mutated { which, at, xor, cut }),
        (
            any::<u8>(),
            0u8..4,
            -2i32..40,
            -2i32..5_000_000,
            0usize..1500,
            prop_oneof![proptest::option::of(-5i64..100), proptest::option::of(16_000i64..17_000)],
            any::<bool>(),
            sn_age(),
        )
            .prop_map(|(id, group, seq, seq_len, len, sn, enc, sn_age)| Op::Crafted {
                id,
                group,
                seq,
                seq_len,
                len,
                sn,
                enc,
                sn_age
            }),
    ]
}

fn crafted(op: &Op) -> Vec<u8> {
    let Op::Crafted { id, group, seq, seq_len, len, sn, enc, sn_age } = *op else { unreachable!() };
    let meta = Meta {
        v: 3,
        seq,
        seq_len,
        seq_id: format!("{group:040x}"),
        seq_end: seq == seq_len - 1,
        enc,
        name: Some("fuzz".into()),
        id: Some(format!("{id:016x}")),
        time: Some("2024-01-01T00:00:00.000Z".into()),
        sn,
        sn_age,
        ..Meta::default()
    };
    let mut out = Vec::new();
    wire::encode_datagram(&meta, &vec![7u8; len], &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_input_is_bounded_and_harmless(ops in proptest::collection::vec(op(), 1..200)) {
        let t0 = Instant::now();
        let w0 = SystemTime::now();
        let limits = Limits { max_partial_messages: 8, max_reassembly_bytes: 64 * 1024, max_message_size: 1 << 20, ..Limits::default() };
        let ident = |id: &str| Identity { id: id.into(), host: "10.0.0.1".into(), port: 9000, hostname: "h".into() };
        // The receiver started a second before: a crafted `snAge` of 0 to
        // ~600 ms claims a numbering younger than it (the join rule's
        // backfill from message 1), a larger one a late join.
        let born = t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0);
        let mut rx = Endpoint::new(Config { limits: limits.clone(), ..Config::default() }, ident("00000000000000b2"), 2, born, w0 - (t0 - born)).unwrap();
        let mut tx = Endpoint::new(Config::default(), ident("00000000000000a1"), 1, Instant::now(), SystemTime::now()).unwrap();
        tx.emit(t0, w0, "real", &[Bson::String("r".repeat(20_000))]).unwrap();
        let real: Vec<Vec<u8>> = std::iter::from_fn(|| tx.poll_transmit()).map(|t| t.payload.to_vec()).collect();
        let src = "10.0.0.9:9000".parse().unwrap();
        for (k, op) in ops.into_iter().enumerate() {
            let now = t0 + Duration::from_millis(k as u64);
            let d = match op {
                Op::Random(b) => b,
                Op::Mutated { which, at, xor, cut } => {
                    let mut d = real[which % real.len()].clone();
                    let at = at % d.len();
                    d[at] ^= xor;
                    if let Some(c) = cut { d.truncate(c.min(d.len())); }
                    d
                }
                c @ Op::Crafted { .. } => crafted(&c),
            };
            rx.handle_datagram(now, src, &d);
            prop_assert!(rx.stats().reassembly_bytes <= limits.max_reassembly_bytes as u64);
            if rx.poll_timeout().is_some_and(|t| t <= now) {
                rx.handle_timeout(now);
            }
            while rx.poll_transmit().is_some() {}
        }
        // The real message still gets through, exactly once.
        let now = t0 + Duration::from_secs(1);
        for d in real.iter().chain(real.iter()) {
            rx.handle_datagram(now, src, d);
        }
        let mut real_events = 0;
        while let Some(o) = rx.poll_output() {
            if let Output::Event(e) = o {
                // Plaintext has no integrity: a mutated chunk body may be delivered as is.
                if e.name == "real" && e.sender.id == "00000000000000a1" {
                    real_events += 1;
                }
            }
        }
        prop_assert!(real_events <= 1);
        // Mutations may have completed the real group with a corrupted chunk;
        // otherwise it must have arrived.
        let s = rx.stats().clone();
        prop_assert!(real_events == 1 || s.rejected_malformed > 0 || s.partials_evicted > 0, "{:?}", s);
        // Everything expires: no state is held forever.
        let mut t = now;
        for _ in 0..1000 {
            match rx.poll_timeout() {
                Some(next) => { t = t.max(next); rx.handle_timeout(t); while rx.poll_transmit().is_some() {} }
                None => break,
            }
        }
        prop_assert_eq!(rx.stats().reassembly_bytes, 0);
        prop_assert!(rx.poll_timeout().is_none());
    }
}
