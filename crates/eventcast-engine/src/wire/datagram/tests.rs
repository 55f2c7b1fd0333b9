use super::*;
use bson::doc;

fn meta() -> Meta {
    Meta {
        v: 3,
        seq: 0,
        seq_len: 1,
        seq_id: "ab".repeat(20),
        seq_end: true,
        enc: false,
        name: Some("ev".into()),
        ..Meta::default()
    }
}

fn frame(doc: &bson::Document, body: &[u8]) -> Vec<u8> {
    let m = doc.to_vec().unwrap();
    let mut out = (m.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&m);
    out.extend_from_slice(body);
    out
}

/// `emit('myevent', 'hello')` as eventcast 0.1.2 sent it (vector
/// `plain-one-string`): metaLength 0x00e0, the meta in 0.1.x order, then
/// `{payload: ['hello']}`.
const GOLDEN_PLAIN: &str = "00e0e000000010760003000000107365710000000000107365714c656e0001000000027365714964\
    0029000000616635303564303737313465666565353734663536666366366639646437663562313638613335350008\
    736571456e64000108656e630000026e616d6500080000006d796576656e740002686f7374000900000031302e31\
    2e322e330010706f7274002823000002686f73746e616d650003000000766d0002696400110000006131623263\
    3364346535663630373138000274696d650019000000323032362d31312d32365431363a30343a34342e3238325a\
    000020000000047061796c6f616400120000000230000600000068656c6c6f000000";

/// The same with our `sn` extension (2^40 + 5): element `12 'sn' 00` and
/// 8 little-endian bytes before the meta's terminator; lengths +12.
const GOLDEN_SN: &str = "00ecec00000010760003000000107365710000000000107365714c656e0001000000027365714964\
    0029000000616635303564303737313465666565353734663536666366366639646437663562313638613335350008\
    736571456e64000108656e630000026e616d6500080000006d796576656e740002686f7374000900000031302e31\
    2e322e330010706f7274002823000002686f73746e616d650003000000766d0002696400110000006131623263\
    3364346535663630373138000274696d650019000000323032362d31312d32365431363a30343a34342e3238325a\
    0012736e0005000000000100000020000000047061796c6f616400120000000230000600000068656c6c6f000000";

/// The same with `snAge` too (250 ms, as a young stream's datagrams
/// carry it): element `10 'snAge' 00` and 4 little-endian bytes after
/// `sn`; lengths +11 (0.1.x ignores the unknown field).
const GOLDEN_SN_AGE: &str = "00f7f700000010760003000000107365710000000000107365714c656e0001000000027365714964\
    0029000000616635303564303737313465666565353734663536666366366639646437663562313638613335350008\
    736571456e64000108656e630000026e616d6500080000006d796576656e740002686f7374000900000031302e312e\
    322e330010706f7274002823000002686f73746e616d650003000000766d0002696400110000006131623263336434\
    6535663630373138000274696d650019000000323032362d31312d32365431363a30343a34342e3238325a0012736e\
    00050000000001000010736e41676500fa0000000020000000047061796c6f61640012000000023000060000006865\
    6c6c6f000000";

fn golden_meta(sn: Option<i64>, sn_age: Option<i32>) -> Meta {
    Meta {
        v: 3,
        seq: 0,
        seq_len: 1,
        seq_id: "af505d07714efee574f56fcf6f9dd7f5b168a355".into(),
        seq_end: true,
        enc: false,
        nonce: None,
        name: Some("myevent".into()),
        host: Some("10.1.2.3".into()),
        port: Some(9000),
        hostname: Some("vm".into()),
        id: Some("a1b2c3d4e5f60718".into()),
        time: Some("2026-11-26T16:04:44.282Z".into()),
        sn,
        sn_age,
    }
}

#[test]
fn golden_bytes() {
    let sn = Some((1 << 40) + 5);
    for (golden, sn, age) in [(GOLDEN_PLAIN, None, None), (GOLDEN_SN, sn, None), (GOLDEN_SN_AGE, sn, Some(250))] {
        let body = crate::wire::encode_args(&["hello".into()]);
        let mut out = Vec::new();
        encode_datagram(&golden_meta(sn, age), &body, &mut out);
        assert_eq!(crate::wire::ids::hex(&out), golden);
        let d = decode_datagram(&out).unwrap();
        assert_eq!(d.meta, golden_meta(sn, age));
        assert_eq!(d.body, body);
    }
}

#[test]
fn round_trip_minimal() {
    let mut out = Vec::new();
    encode_datagram(&meta(), b"xyz", &mut out);
    let d = decode_datagram(&out).unwrap();
    assert_eq!(d.meta, meta());
    assert_eq!(d.body, b"xyz");
}

#[test]
fn short_and_overlong() {
    assert!(matches!(decode_datagram(&[]), Err(WireError::Malformed(_))));
    assert!(matches!(decode_datagram(&[0]), Err(WireError::Malformed(_))));
    assert!(matches!(decode_datagram(&[0, 0]), Err(WireError::Malformed(_))));
    assert!(matches!(decode_datagram(&[0, 9, 9, 0, 0, 0]), Err(WireError::Malformed(_))));
    let mut out = Vec::new();
    encode_datagram(&meta(), b"", &mut out);
    out[1] += 1; // metaLength one more than the document
    assert!(matches!(decode_datagram(&out), Err(WireError::Malformed(_))));
}

#[test]
fn version_first() {
    // v=4 with every other field wrong or missing is still a version error.
    let d = frame(&doc! { "seq": "x", "v": 4 }, b"");
    assert_eq!(decode_datagram(&d), Err(WireError::Version(4)));
    let d = frame(&doc! { "v": 2i64, "seq": 0, "seqLen": 1, "seqId": "a", "seqEnd": true }, b"");
    assert_eq!(decode_datagram(&d), Err(WireError::Version(2)));
    let d = frame(&doc! { "v": "3", "seq": 0, "seqLen": 1, "seqId": "a", "seqEnd": true }, b"");
    assert!(matches!(decode_datagram(&d), Err(WireError::Malformed(_))));
}

#[test]
fn missing_and_ranges() {
    let base = doc! { "v": 3, "seq": 0, "seqLen": 1, "seqId": "a", "seqEnd": true };
    assert!(decode_datagram(&frame(&base, b"")).is_ok());
    for k in ["v", "seq", "seqLen", "seqId", "seqEnd"] {
        let mut d = base.clone();
        d.remove(k);
        assert!(matches!(decode_datagram(&frame(&d, b"")), Err(WireError::Malformed(_))), "{k}");
    }
    for (seq, len) in [(-1, 1), (0, 0), (1, 1), (5, 3)] {
        let mut d = base.clone();
        d.insert("seq", seq);
        d.insert("seqLen", len);
        assert!(matches!(decode_datagram(&frame(&d, b"")), Err(WireError::Malformed(_))));
    }
    // Lenient numerics as js-bson would read them, enc absent = false, unknown ignored.
    let d = doc! { "v": 3.0, "seq": 1i64, "seqLen": 2.0, "seqId": "a", "seqEnd": true,
    "port": 9000i64, "sn": 7, "zzz": [1], "host": Bson::Null };
    let buf = frame(&d, b"b");
    let g = decode_datagram(&buf).unwrap();
    assert_eq!((g.meta.v, g.meta.seq, g.meta.seq_len, g.meta.enc), (3, 1, 2, false));
    assert_eq!((g.meta.port, g.meta.sn, g.meta.host), (Some(9000), Some(7), None));
    let d = doc! { "v": 3, "seq": 0.5, "seqLen": 1, "seqId": "a", "seqEnd": true };
    assert!(matches!(decode_datagram(&frame(&d, b"")), Err(WireError::Malformed(_))));
    let d = doc! { "v": 3, "seq": 0, "seqLen": 1, "seqId": "a", "seqEnd": true, "name": 5 };
    assert!(matches!(decode_datagram(&frame(&d, b"")), Err(WireError::Malformed(_))));
}

/// `snAge` follows `sn`'s rule: the lenient integers in the int32 range
/// are read, null is absent, any other type or value refuses the datagram.
#[test]
fn sn_age_types() {
    let base = doc! { "v": 3, "seq": 0, "seqLen": 1, "seqId": "a", "seqEnd": true, "sn": 7 };
    let age = |v: Bson| {
        let mut d = base.clone();
        d.insert("snAge", v);
        decode_datagram(&frame(&d, b"")).map(|g| g.meta.sn_age)
    };
    assert_eq!(decode_datagram(&frame(&base, b"")).unwrap().meta.sn_age, None);
    for (v, want) in [
        (Bson::Int32(250), Some(250)),
        (Bson::Int32(-1), Some(-1)),
        (Bson::Int64(i64::from(i32::MAX)), Some(i32::MAX)),
        (Bson::Double(3.0), Some(3)),
        (Bson::Null, None),
    ] {
        assert_eq!(age(v.clone()), Ok(want), "{v:?}");
    }
    for v in [Bson::Int64(1 << 31), Bson::Double(0.5), Bson::String("1".into()), Bson::Boolean(true)] {
        assert!(matches!(age(v.clone()), Err(WireError::Malformed(_))), "{v:?}");
    }
}

use bson::Bson;

#[test]
fn received_identifiers_must_be_lower_case_hex_of_their_length() {
    let good = Meta { id: Some("a1b2c3d4e5f60718".into()), ..meta() };
    let enc = |m: &Meta| {
        let mut out = Vec::new();
        encode_datagram(m, b"x", &mut out);
        out
    };
    assert!(decode_received(&enc(&good)).is_ok());
    assert!(decode_received(&enc(&Meta { id: None, ..good.clone() })).is_ok());
    let bad_seq = ["", "a", &"ab".repeat(19), &"AB".repeat(20), &"zz".repeat(20), &"a".repeat(60_000)];
    for seq_id in bad_seq {
        let d = enc(&Meta { seq_id: seq_id.to_owned(), ..good.clone() });
        assert!(decode_datagram_ref(&d).is_ok(), "the codec itself takes any string");
        assert!(matches!(decode_received(&d), Err(WireError::Malformed(_))), "{seq_id:.50}");
    }
    for id in ["", "a1b2", "A1B2C3D4E5F60718", "a1b2c3d4e5f60718a", "a1b2c3d4e5f6071x"] {
        let d = enc(&Meta { id: Some(id.to_owned()), ..good.clone() });
        assert!(matches!(decode_received(&d), Err(WireError::Malformed(_))), "{id}");
    }
    // A version mismatch is still reported as one.
    assert_eq!(decode_received(&enc(&Meta { v: 4, seq_id: "a".into(), ..good })), Err(WireError::Version(4)));
}

#[test]
fn oversized_meta_is_a_limit_error_and_leaves_out_unchanged() {
    let mut m = meta();
    m.name = Some("n".repeat(70_000));
    let mut out = vec![1, 2, 3];
    assert!(matches!(try_encode_datagram(&m, b"x", &mut out), Err(WireError::Limit(_))));
    assert_eq!(out, [1, 2, 3]);
}

#[test]
fn encoded_layout_matches_bson_crate() {
    let m = Meta {
        nonce: Some("n".into()),
        host: Some("10.1.2.3".into()),
        port: Some(9000),
        hostname: Some("vm".into()),
        id: Some("a1b2c3d4e5f60718".into()),
        time: Some("2026-11-26T16:04:44.282Z".into()),
        sn: Some(1 << 40),
        sn_age: Some(i32::MAX),
        ..meta()
    };
    let expect = doc! {
        "v": 3, "seq": 0, "seqLen": 1, "seqId": "ab".repeat(20), "seqEnd": true, "enc": false,
        "nonce": "n", "name": "ev", "host": "10.1.2.3", "port": 9000, "hostname": "vm",
        "id": "a1b2c3d4e5f60718", "time": "2026-11-26T16:04:44.282Z", "sn": 1i64 << 40, "snAge": i32::MAX,
    };
    let mut out = Vec::new();
    encode_datagram(&m, b"BODY", &mut out);
    assert_eq!(out, frame(&expect, b"BODY"));
}

mod differential {
    //! The fast meta decoder against the bson-based one (the oracle).
    use super::super::*;
    use proptest::prelude::*;

    /// One BSON element: type tag, key bytes, value bytes.
    type Element = (u8, Vec<u8>, Vec<u8>);

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => prop::sample::select(vec![
                "v", "seq", "seqLen", "seqId", "seqEnd", "enc", "port", "sn", "snAge", "nonce", "name", "host",
                "hostname", "id", "time",
            ])
            .prop_map(|k| k.as_bytes().to_vec()),
            1 => prop::sample::select(vec!["zz", "", "V", "seqI", "idx", "t\u{e9}"]).prop_map(|k| k.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..4),
        ]
    }

    fn string_value(content: Vec<u8>) -> Vec<u8> {
        let mut v = ((content.len() + 1) as i32).to_le_bytes().to_vec();
        v.extend_from_slice(&content);
        v.push(0);
        v
    }

    fn value() -> impl Strategy<Value = (u8, Vec<u8>)> {
        prop_oneof![
            3 => prop_oneof![Just(3i32), Just(0), Just(1), Just(2), Just(-1), Just(4), any::<i32>()]
                .prop_map(|i| (0x10u8, i.to_le_bytes().to_vec())),
            1 => prop_oneof![Just(3i64), Just(1), any::<i64>()].prop_map(|i| (0x12u8, i.to_le_bytes().to_vec())),
            1 => prop_oneof![Just(3.0f64), Just(0.5), Just(1e10), any::<f64>()]
                .prop_map(|f| (0x01u8, f.to_le_bytes().to_vec())),
            3 => "[a-z0-9\u{e9}\u{0}]{0,12}".prop_map(|s| (0x02u8, string_value(s.into_bytes()))),
            1 => prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| (0x02u8, string_value(b))),
            // A string whose declared length is off.
            1 => (prop::collection::vec(any::<u8>(), 0..6), -2i32..3).prop_map(|(b, d)| {
                let mut v = string_value(b);
                let len = i32::from_le_bytes([v[0], v[1], v[2], v[3]]) + d;
                v[..4].copy_from_slice(&len.to_le_bytes());
                (0x02u8, v)
            }),
            2 => (0u8..3).prop_map(|b| (0x08u8, vec![b])),
            1 => Just((0x0Au8, Vec::new())),
            1 => Just((0x06u8, Vec::new())),
            1 => (any::<u8>(), prop::collection::vec(any::<u8>(), 0..10)),
        ]
    }

    /// A value of the type the meta field `key` has (or may have), mostly valid.
    fn typed(key: &[u8]) -> BoxedStrategy<(u8, Vec<u8>)> {
        let int32 = prop_oneof![Just(0i32), Just(1), Just(3), Just(-1), any::<i32>()]
            .prop_map(|i| (0x10u8, i.to_le_bytes().to_vec()));
        let null = prop_oneof![Just((0x0Au8, Vec::new())), Just((0x06u8, Vec::new()))];
        let string = "[a-z0-9\u{e9}\u{0}]{0,12}".prop_map(|s| (0x02u8, string_value(s.into_bytes())));
        let boolean = prop_oneof![4 => 0u8..2, 1 => 2u8..=255].prop_map(|b| (0x08u8, vec![b]));
        match key {
            b"v" | b"seq" | b"seqLen" => int32.boxed(),
            b"port" => prop_oneof![3 => int32, 1 => null].boxed(),
            b"sn" => prop_oneof![
                2 => any::<i64>().prop_map(|i| (0x12u8, i.to_le_bytes().to_vec())),
                1 => int32,
                1 => null
            ]
            .boxed(),
            b"snAge" => prop_oneof![
                3 => int32,
                1 => any::<i64>().prop_map(|i| (0x12u8, i.to_le_bytes().to_vec())),
                1 => prop_oneof![Just(250.0f64), Just(-1.0), Just(0.5), any::<f64>()]
                    .prop_map(|f| (0x01u8, f.to_le_bytes().to_vec())),
                1 => null
            ]
            .boxed(),
            b"seqEnd" => boolean.boxed(),
            b"enc" => prop_oneof![3 => boolean, 1 => null].boxed(),
            b"seqId" => string.boxed(),
            _ => prop_oneof![3 => string, 1 => null].boxed(),
        }
    }

    fn element() -> impl Strategy<Value = Element> {
        key().prop_flat_map(|k| {
            let v = prop_oneof![3 => typed(&k), 1 => value()];
            (v, Just(k)).prop_map(|((t, v), k)| (t, k, v))
        })
    }

    fn required(seq: i32, seq_len: i32) -> Vec<Element> {
        let i = |k: &str, x: i32| (0x10u8, k.as_bytes().to_vec(), x.to_le_bytes().to_vec());
        vec![
            i("v", 3),
            i("seq", seq),
            i("seqLen", seq_len),
            (0x02, b"seqId".to_vec(), string_value(b"0123456789abcdef".to_vec())),
            (0x08, b"seqEnd".to_vec(), vec![u8::from(seq == seq_len - 1)]),
        ]
    }

    fn document(elements: &[Element]) -> Vec<u8> {
        let mut d = vec![0; 4];
        for (t, k, v) in elements {
            d.push(*t);
            d.extend_from_slice(k);
            d.push(0);
            d.extend_from_slice(v);
        }
        d.push(0);
        let n = d.len() as i32;
        d[..4].copy_from_slice(&n.to_le_bytes());
        d
    }

    #[derive(Clone, Debug)]
    enum Mutation {
        None,
        Flip(usize, u8),
        Truncate(usize),
        MetaLen(i32),
        DocLen(i32),
    }

    fn datagram() -> impl Strategy<Value = Vec<u8>> {
        let base = prop_oneof![Just(None), (0i32..3, 1i32..4).prop_map(Some)];
        let mutation = prop_oneof![
            4 => Just(Mutation::None),
            2 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
            1 => any::<usize>().prop_map(Mutation::Truncate),
            1 => (-3i32..3).prop_map(Mutation::MetaLen),
            1 => (-3i32..3).prop_map(Mutation::DocLen),
        ];
        (
            base,
            prop::collection::vec(element(), 0..6),
            any::<bool>(),
            mutation,
            prop::collection::vec(any::<u8>(), 0..4),
        )
            .prop_map(|(base, extra, extra_first, mutation, body)| {
                let mut els = base.map_or_else(Vec::new, |(seq, len)| required(seq, len));
                if extra_first {
                    els.splice(0..0, extra);
                } else {
                    els.extend(extra);
                }
                let mut doc = document(&els);
                if let Mutation::DocLen(d) = mutation {
                    let n = doc.len() as i32 + d;
                    doc[..4].copy_from_slice(&n.to_le_bytes());
                }
                let mut meta_len = doc.len() as i32;
                if let Mutation::MetaLen(d) = mutation {
                    meta_len = (meta_len + d).clamp(0, u16::MAX as i32);
                }
                let mut out = (meta_len as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&doc);
                out.extend_from_slice(&body);
                match mutation {
                    Mutation::Flip(i, x) => {
                        let i = i % out.len();
                        out[i] ^= x;
                    }
                    Mutation::Truncate(i) => out.truncate(i % (out.len() + 1)),
                    _ => {}
                }
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Same result (value or error) as the bson-based decoder, for
        /// structured, mutated and random datagrams.
        #[test]
        fn fast_decoder_agrees_with_bson(buf in prop_oneof![4 => datagram(), 1 => prop::collection::vec(any::<u8>(), 0..64)]) {
            let oracle = decode_datagram_ref_bson(&buf);
            if let Some(fast) = decode_fast(&buf) {
                prop_assert_eq!(Ok(fast), oracle.clone());
            }
            prop_assert_eq!(decode_datagram_ref(&buf), oracle);
        }

        /// Everything our encoder writes takes the fast path.
        #[test]
        fn encoder_output_takes_the_fast_path(
            seq_len in 1i32..2000, seq in any::<prop::sample::Index>(), enc: bool,
            strs in prop::collection::vec(prop::option::of(".{0,20}"), 7),
            port in prop::option::of(any::<i32>()), sn in prop::option::of(any::<i64>()),
            sn_age in prop::option::of(any::<i32>()),
        ) {
            let seq = seq.index(seq_len as usize) as i32;
            let s = |i: usize| strs[i].as_deref();
            let m = MetaRef {
                v: 3, seq, seq_len, seq_id: s(0).unwrap_or(""), seq_end: seq == seq_len - 1, enc,
                nonce: s(1), name: s(2), host: s(3), port, hostname: s(4), id: s(5), time: s(6), sn,
                sn_age,
            };
            let mut out = Vec::new();
            try_encode_datagram_ref(&m, b"body", &mut out).unwrap();
            prop_assert_eq!(decode_fast(&out), Some(DatagramRef { meta: m, body: b"body" }));
        }
    }

    #[test]
    fn golden_datagrams_take_the_fast_path() {
        for golden in [super::GOLDEN_PLAIN, super::GOLDEN_SN, super::GOLDEN_SN_AGE] {
            let bytes: Vec<u8> =
                (0..golden.len()).step_by(2).map(|i| u8::from_str_radix(&golden[i..i + 2], 16).unwrap()).collect();
            assert!(decode_fast(&bytes).is_some());
            assert_eq!(decode_datagram_ref(&bytes), decode_datagram_ref_bson(&bytes));
        }
    }
}
