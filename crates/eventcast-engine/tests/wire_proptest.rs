//! Property tests of the wire codec: round trips, and no panics on any input.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Document, Regex};
use eventcast_engine::wire::legacy::LegacyKey;
use eventcast_engine::wire::SecureKey;
use eventcast_engine::wire::{
    decode_body, decode_body_raw, decode_datagram, encode_args, encode_datagram, encode_document_body,
    try_encode_datagram, Meta, Payload, RawPayload, RepairRequest,
};
use eventcast_engine::WireError;
use proptest::prelude::*;

fn opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any::<String>())
}

fn arb_meta() -> impl Strategy<Value = Meta> {
    (
        (1i32..=i32::MAX).prop_flat_map(|len| (0..len, Just(len))),
        any::<String>(),
        any::<bool>(),
        any::<bool>(),
        (opt_string(), opt_string(), opt_string(), proptest::option::of(any::<i32>())),
        (opt_string(), opt_string(), opt_string(), proptest::option::of(any::<i64>())),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(
            |((seq, seq_len), seq_id, seq_end, enc, (nonce, name, host, port), (hostname, id, time, sn), sn_age)| {
                Meta {
                    v: 3,
                    seq,
                    seq_len,
                    seq_id,
                    seq_end,
                    enc,
                    nonce,
                    name,
                    host,
                    port,
                    hostname,
                    id,
                    time,
                    sn,
                    sn_age,
                }
            },
        )
}

/// Document keys: any string without NUL.
fn key() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,8}"
}

fn cstring() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn leaf() -> impl Strategy<Value = Bson> {
    prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        // NaN != NaN: round-trip equality needs non-NaN doubles.
        any::<f64>().prop_filter("nan", |f| !f.is_nan()).prop_map(Bson::Double),
        any::<String>().prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        any::<i64>().prop_map(|m| Bson::DateTime(DateTime::from_millis(m))),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|bytes| Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes })),
        // BSON regex options are sorted and unique (the bson crate normalizes them on read).
        (cstring(), proptest::sample::subsequence(vec!['i', 'm', 's', 'u', 'x'], 0..=5)).prop_map(|(p, o)| {
            Bson::RegularExpression(Regex {
                pattern: p.try_into().unwrap(),
                options: o.into_iter().collect::<String>().try_into().unwrap(),
            })
        }),
    ]
}

fn arb_bson() -> impl Strategy<Value = Bson> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Bson::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Bson::Document(kv.into_iter().collect::<Document>())),
        ]
    })
}

fn arb_args() -> impl Strategy<Value = Vec<Bson>> {
    proptest::collection::vec(arb_bson(), 0..8)
}

/// Everything a receiver might run on untrusted bytes; must never panic.
fn exercise(buf: &[u8]) {
    if let Ok(d) = decode_datagram(buf) {
        let _ = decode_body(d.body);
        if let Ok(p) = decode_body_raw(d.body) {
            let _ = p.to_payload();
        }
        if let Ok(Payload::Document(doc)) = decode_body(d.body) {
            let _ = RepairRequest::from_document(&doc);
        }
        let _ = LegacyKey::from_passphrase("k").decrypt(d.body);
    }
    let _ = secure_key().open(buf);
    let _ = decode_body(buf);
    if buf.len() > 2 {
        let _ = decode_body(&buf[2..]);
    }
}

fn valid_datagram(meta: &Meta, args: &[Bson]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_datagram(meta, &encode_args(args), &mut out);
    out
}

/// What the bson crate's own conversion makes of a raw body: `to_payload`
/// converts in one pass of its own and must agree with it exactly.
fn crate_conversion(p: &RawPayload<'_>) -> Option<Payload> {
    match p {
        RawPayload::Args(None) => Some(Payload::Args(Vec::new())),
        RawPayload::Args(Some(a)) => Vec::<Bson>::try_from(*a).ok().map(Payload::Args),
        RawPayload::Document(d) => Document::try_from(*d).ok().map(Payload::Document),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn to_payload_agrees_with_the_bson_crate_on_valid_and_corrupted_bodies(
        args in arb_args(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut body = encode_args(&args);
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] = byte;
        }
        if let Ok(p) = decode_body_raw(&body) {
            prop_assert_eq!(p.to_payload().ok(), crate_conversion(&p));
        }
    }

    #[test]
    fn meta_and_args_round_trip(meta in arb_meta(), args in arb_args()) {
        let mut out = Vec::new();
        let body = encode_args(&args);
        match try_encode_datagram(&meta, &body, &mut out) {
            Ok(()) => {
                let d = decode_datagram(&out).unwrap();
                prop_assert_eq!(&d.meta, &meta);
                prop_assert_eq!(d.body, &body[..]);
                prop_assert_eq!(decode_body(d.body).unwrap(), Payload::Args(args.clone()));
            }
            Err(e) => prop_assert!(matches!(e, WireError::Limit(_))),
        }
        // Encoding is deterministic and agrees with the bson crate.
        let reference = bson::doc! { "payload": args.clone() }.to_vec().unwrap();
        prop_assert_eq!(body, reference);
    }

    #[test]
    fn document_bodies_round_trip(kv in proptest::collection::vec((key(), arb_bson()), 0..8)) {
        let doc: Document = kv.into_iter().collect();
        let b = encode_document_body(&doc);
        prop_assert_eq!(decode_body(&b).unwrap(), Payload::Document(doc));
    }

    #[test]
    fn retx_round_trip(id in "[0-9a-f]{16}", seq_id in "([0-9a-f]{40})?",
                       missed in proptest::collection::vec(any::<i32>(), 0..50),
                       host in any::<String>(), port in any::<i32>(),
                       missed_sn in proptest::collection::vec(1i64..=eventcast_engine::protocol::MAX_SN, 0..50),
                       to in proptest::option::of("[0-9a-f]{16}"), relayed: bool) {
        let r = RepairRequest { id, seq_id, missed_seq: missed, host, port, missed_sn, to, relayed };
        let b = encode_document_body(&r.to_document());
        let Payload::Document(d) = decode_body(&b).unwrap() else { panic!() };
        prop_assert_eq!(RepairRequest::from_document(&d).unwrap(), r);
    }

    #[test]
    fn legacy_round_trip(pass in any::<String>(), plain in proptest::collection::vec(any::<u8>(), 0..300)) {
        let k = LegacyKey::from_passphrase(&pass);
        prop_assert_eq!(k.decrypt(&k.encrypt(&plain)).unwrap(), plain);
    }

    /// Both versions of the authenticated scheme: what is sealed opens, and
    /// any change to any bytes (a cut or added tail, or XORs anywhere) is refused.
    #[test]
    fn sealed_datagrams_open_and_every_change_is_refused(
        plain in proptest::collection::vec(any::<u8>(), 0..300),
        hs256: bool,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 0..4),
        cut in 0usize..3,
        tail in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let k = secure_key();
        let mut rng = rand::thread_rng();
        let sealed = if hs256 { k.seal_hs256(&plain, &mut rng) } else { k.seal(&plain, &mut rng) };
        prop_assert_eq!(k.open(&sealed).unwrap(), plain);
        let mut t = sealed.clone();
        for (at, x) in flips {
            let i = at.index(t.len());
            t[i] ^= x;
        }
        t.truncate(t.len() - cut);
        t.extend_from_slice(&tail);
        if t != sealed {
            prop_assert!(k.open(&t).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// Arbitrary bodies behind the real outer meta of either version: refused, never a panic.
    #[test]
    fn arbitrary_bodies_behind_a_sealed_meta_are_refused(hs256: bool, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        use eventcast_engine::wire::secure::{aead, hs256 as v1};
        let k = secure_key();
        let (sealed, meta_len) = if hs256 {
            (k.seal_hs256(b"", &mut rand::thread_rng()), v1::OUTER_META_LEN)
        } else {
            (k.seal(b"", &mut rand::thread_rng()), aead::OUTER_META_LEN)
        };
        let mut d = sealed[..meta_len].to_vec();
        d.extend_from_slice(&body);
        prop_assert!(k.open(&d).is_err());
    }
}

/// One key for the proptests (few iterations: the derivation is tested elsewhere).
fn secure_key() -> &'static SecureKey {
    static K: std::sync::OnceLock<SecureKey> = std::sync::OnceLock::new();
    K.get_or_init(|| SecureKey::derive_with_iterations("k", 10))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(&buf);
    }

    #[test]
    fn arbitrary_bytes_behind_a_plausible_header_never_panic(buf in proptest::collection::vec(any::<u8>(), 6..300)) {
        // Make the framing and BSON length line up so the parser gets deeper.
        let mut b = buf;
        let meta_len = (b.len() - 2) as u16;
        b[..2].copy_from_slice(&meta_len.to_be_bytes());
        let doc_len = (b.len() - 2) as i32;
        b[2..6].copy_from_slice(&doc_len.to_le_bytes());
        exercise(&b);
    }

    #[test]
    fn mutated_datagrams_never_panic(seed in any::<prop::sample::Index>(),
                                     edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6)) {
        let seeds = seeds();
        let mut b = seeds[seed.index(seeds.len())].clone();
        for (at, byte, op) in edits {
            if b.is_empty() { break; }
            let i = at.index(b.len());
            match op {
                0 => b[i] = byte,
                1 => b[i] ^= 1 << (byte % 8),
                2 => b.insert(i, byte),
                _ => b.truncate(i),
            }
        }
        exercise(&b);
    }
}

/// Valid datagrams covering every meta field, every body shape and many BSON
/// types, generated once; the mutation test corrupts copies of them.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let full = Meta {
            v: 3,
            seq: 1,
            seq_len: 3,
            seq_id: "ab".repeat(20),
            seq_end: false,
            enc: false,
            nonce: Some("cd".repeat(20)),
            name: Some("ev".into()),
            host: Some("10.0.0.1".into()),
            port: Some(9000),
            hostname: Some("h".into()),
            id: Some("a1b2c3d4e5f60718".into()),
            time: Some("2026-01-01T00:00:00.000Z".into()),
            sn: Some(42),
            sn_age: Some(1500),
        };
        let small = Meta { v: 3, seq: 0, seq_len: 1, seq_id: "x".into(), seq_end: true, ..Meta::default() };
        let args = vec![
            Bson::Document(bson::doc! { "a": [1, { "b": "c" }], "d": 1.5, "e": Bson::Null }),
            Bson::Int64(1 << 40),
            Bson::DateTime(DateTime::from_millis(7)),
            Bson::Boolean(true),
            Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2] }),
            Bson::RegularExpression(Regex { pattern: "a+".try_into().unwrap(), options: "i".try_into().unwrap() }),
            Bson::String("ünï".into()),
        ];
        let retx = RepairRequest {
            id: "a1b2c3d4e5f60718".into(),
            seq_id: "ab".repeat(20),
            missed_seq: vec![1, 3],
            host: "h".into(),
            port: 1,
            ..RepairRequest::default()
        };
        let mut out =
            vec![valid_datagram(&full, &args), valid_datagram(&small, &[]), valid_datagram(&small, &args[..1])];
        let mut d = Vec::new();
        encode_datagram(&full, &encode_document_body(&retx.to_document()), &mut d);
        out.push(d);
        let mut e = Vec::new();
        encode_datagram(
            &Meta { enc: true, ..small.clone() },
            &LegacyKey::from_passphrase("k").encrypt(&out[0]),
            &mut e,
        );
        out.push(e);
        out
    })
}
