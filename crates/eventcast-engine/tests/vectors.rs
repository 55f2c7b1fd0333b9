//! Decodes the real eventcast 0.1.2 datagrams of `crates/eventcast-engine/tests/fixtures` and checks
//! that our encoder reproduces them byte for byte from the decoded values.

use bson::raw::RawDocument;
use bson::spec::BinarySubtype;
use bson::{doc, Binary, Bson, DateTime, Document, Regex};
use eventcast_engine::wire::legacy::LegacyKey;
use eventcast_engine::wire::{
    decode_body, decode_datagram, encode_args, encode_datagram, encode_document_body, Meta, Payload, RepairRequest,
    RETX_EVENT,
};
use eventcast_engine::WireError;
use std::collections::BTreeMap;

#[path = "support/vectors.rs"]
mod vectors;
use vectors::Case;

/// The vector cases.
fn cases() -> Vec<Case> {
    let cases = vectors::load();
    assert_eq!(cases.len(), 8, "the README lists 8 cases");
    cases
}

#[test]
fn fixtures_match_the_shared_originals() {
    // The fixtures are copies (crates/eventcast-engine/tests/fixtures/README.md); where the steering
    // repository's shared/ folder is beside the checkout, they must not drift.
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let pairs = [("vectors/eventcast-0.1.2.json", "eventcast-0.1.2.json"), ("PROTOCOL.md", "PROTOCOL.md")];
    for (original, copy) in pairs {
        let Ok(a) = std::fs::read(shared.join(original)) else {
            eprintln!("../shared/{original} is not beside this checkout: nothing to compare");
            continue;
        };
        let b =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(copy)).unwrap();
        assert!(a == b, "crates/eventcast-engine/tests/fixtures/{copy} differs from ../shared/{original}");
    }
}

fn case<'a>(cases: &'a [Case], name: &str) -> &'a Case {
    cases.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no case {name}"))
}

/// Re-encodes a decoded datagram; must give back the very same bytes.
fn assert_reencodes(buf: &[u8]) {
    let d = decode_datagram(buf).unwrap();
    let mut out = Vec::new();
    encode_datagram(&d.meta, d.body, &mut out);
    assert_eq!(hex(&out), hex(buf), "re-encoding {:?}", d.meta);
}

fn hex(b: &[u8]) -> String {
    eventcast_engine::wire::ids::hex(b)
}

/// A tiny reassembler (the real one is the protocol engine's): feeds
/// datagrams in the given order, ignores duplicates, and returns the message
/// bytes once every chunk of the group is in. Unchunked datagrams pass through.
fn reassemble<'a>(order: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut chunks: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
    let mut group: Option<(String, i32)> = None;
    for buf in order {
        let d = decode_datagram(buf).unwrap();
        if !d.meta.is_multipart() {
            return Some(buf.to_vec());
        }
        let g = (d.meta.seq_id.clone(), d.meta.seq_len);
        assert_eq!(*group.get_or_insert(g.clone()), g, "chunks of one group share seqId and seqLen");
        assert_eq!(d.meta.seq_end, d.meta.seq == d.meta.seq_len - 1);
        chunks.entry(d.meta.seq).or_insert_with(|| d.body.to_vec());
        if chunks.len() == g.1 as usize {
            return Some(chunks.into_values().flatten().collect());
        }
    }
    None
}

/// Full receive path for one message: reassemble, decrypt, decode.
fn receive(datagrams: &[&[u8]], pass: Option<&str>) -> Result<(String, Payload), WireError> {
    let msg = reassemble(datagrams.iter().copied()).expect("all chunks given");
    let d = decode_datagram(&msg)?;
    let (meta, body) = if d.meta.enc {
        let key = LegacyKey::from_passphrase(pass.expect("encrypted case has a passphrase"));
        let plain = key.decrypt(d.body)?;
        let inner = decode_datagram(&plain)?;
        assert!(!inner.meta.enc);
        assert!(inner.meta.nonce.as_ref().is_some_and(|n| n.len() == 40));
        (inner.meta, decode_body(inner.body)?)
    } else {
        (d.meta, decode_body(d.body)?)
    };
    assert_eq!(meta.id.as_deref(), Some("a1b2c3d4e5f60718"));
    assert_eq!(meta.host.as_deref(), Some("10.1.2.3"));
    assert_eq!(meta.port, Some(9000));
    Ok((meta.name.expect("the message carries its name"), body))
}

fn args(p: Payload) -> Vec<Bson> {
    match p {
        Payload::Args(a) => a,
        Payload::Document(d) => panic!("expected args, got document {d}"),
    }
}

fn for_each_permutation(n: usize, f: &mut impl FnMut(&[usize])) {
    fn go(k: usize, p: &mut Vec<usize>, f: &mut impl FnMut(&[usize])) {
        if k == p.len() {
            return f(p);
        }
        for i in k..p.len() {
            p.swap(k, i);
            go(k + 1, p, f);
            p.swap(k, i);
        }
    }
    go(0, &mut (0..n).collect(), f)
}

#[test]
fn every_case_decodes_to_the_expected_event() {
    let cases = cases();
    for c in &cases {
        let grams: Vec<&[u8]> = c.datagrams.iter().map(Vec::as_slice).collect();
        let (event, payload) = receive(&grams, c.encrypt.as_deref()).unwrap();
        assert_eq!(event, c.event, "{}", c.name);
        let expect_args: Option<Vec<Bson>> = match c.name.as_str() {
            "plain-one-string" => Some(vec!["hello".into()]),
            "plain-no-args" => Some(vec![]),
            "plain-types" => Some(plain_types_args()),
            "plain-chunked-3000" => Some(vec!["b".repeat(3000).into()]),
            "plain-chunked-small-mps" => Some(vec!["123456789".into()]),
            "legacy-enc-one-string" => Some(vec!["howdy neighborino!".into()]),
            "legacy-enc-chunked" => Some(vec!["c".repeat(2500).into()]),
            "plain-retx-request" => None,
            other => panic!("unexpected case {other}"),
        };
        match expect_args {
            Some(a) => assert_eq!(args(payload), a, "{}", c.name),
            None => {
                let Payload::Document(d) = payload else { panic!("retx payload must be a document") };
                let r = RepairRequest::from_document(&d).unwrap();
                assert_eq!(r.id.len(), 16);
                assert_eq!(r.seq_id.len(), 40);
                assert_eq!(r.missed_seq, [1, 3]);
                assert_eq!((r.host.as_str(), r.port), ("10.1.2.4", 9000));
                // Same document, same bytes, from our side.
                assert_eq!(r.to_document(), d);
                assert_eq!(event, RETX_EVENT);
            }
        }
    }
}

/// `emit('types', {obj:2,nested:{deep:[1,{x:'y'}]}}, [1,2,3], null, 'yay ünïcödé ✓', 5, -7,
/// 3.25, true, false, new Date(1700000000123), /serialize me please/i, Buffer<00 01 02 fe ff>,
/// 2**40)` exactly as js-bson 0.2 typed it. Note the last one: js-bson 0.2 writes
/// whole numbers outside int32 range as BSON **double**, not int64 (the
/// vector's element 12 has type 0x01), although the vectors README says int64.
fn plain_types_args() -> Vec<Bson> {
    vec![
        Bson::Document(doc! { "obj": 2i32, "nested": { "deep": [1i32, { "x": "y" }] } }),
        Bson::Array(vec![Bson::Int32(1), Bson::Int32(2), Bson::Int32(3)]),
        Bson::Null,
        Bson::String("yay ünïcödé ✓".into()),
        Bson::Int32(5),
        Bson::Int32(-7),
        Bson::Double(3.25),
        Bson::Boolean(true),
        Bson::Boolean(false),
        Bson::DateTime(DateTime::from_millis(1_700_000_000_123)),
        Bson::RegularExpression(Regex {
            pattern: "serialize me please".try_into().unwrap(),
            options: "i".try_into().unwrap(),
        }),
        Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 0xfe, 0xff] }),
        Bson::Double(1099511627776.0),
    ]
}

#[test]
fn plain_types_element_by_element() {
    let cases = cases();
    let c = case(&cases, "plain-types");
    let d = decode_datagram(&c.datagrams[0]).unwrap();
    let got = args(decode_body(d.body).unwrap());
    let want = plain_types_args();
    assert_eq!(got.len(), 13);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.element_type(), w.element_type(), "arg {i} type");
        assert_eq!(g, w, "arg {i}");
    }
    match &got[9] {
        Bson::DateTime(t) => assert_eq!(t.timestamp_millis(), 1_700_000_000_123),
        other => panic!("{other:?}"),
    }
    match &got[10] {
        Bson::RegularExpression(r) => {
            assert_eq!(r.pattern.as_str(), "serialize me please");
            assert_eq!(r.options.as_str(), "i");
            assert_eq!(eventcast_engine::wire::bson_options_to_js_flags(r.options.as_str()), "i");
        }
        other => panic!("{other:?}"),
    }
    match &got[11] {
        Bson::Binary(b) => {
            assert_eq!(b.subtype, BinarySubtype::Generic);
            assert_eq!(b.bytes, [0, 1, 2, 0xfe, 0xff]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn chunks_reassemble_in_every_order_with_duplicates() {
    let cases = cases();
    for c in cases.iter().filter(|c| c.datagrams.len() > 1) {
        let n = c.datagrams.len();
        assert!(n <= 5, "keep permutations small");
        let expect = receive(&c.datagrams.iter().map(Vec::as_slice).collect::<Vec<_>>(), c.encrypt.as_deref()).unwrap();
        let mut runs = 0;
        for_each_permutation(n, &mut |p| {
            // Every order; then every order with each chunk duplicated right away.
            let once: Vec<&[u8]> = p.iter().map(|&i| c.datagrams[i].as_slice()).collect();
            assert_eq!(receive(&once, c.encrypt.as_deref()).unwrap(), expect, "{} order {p:?}", c.name);
            let twice: Vec<&[u8]> = p.iter().flat_map(|&i| [&c.datagrams[i][..], &c.datagrams[i][..]]).collect();
            assert_eq!(receive(&twice, c.encrypt.as_deref()).unwrap(), expect, "{} order {p:?}", c.name);
            runs += 1;
        });
        assert_eq!(runs, (1..=n).product::<usize>());
        // Nothing is complete until the last missing chunk arrives.
        for missing in 0..n {
            let partial = (0..n).filter(|&i| i != missing).map(|i| c.datagrams[i].as_slice());
            assert!(reassemble(partial).is_none());
        }
        // Chunk sizes follow maxPayloadSize: all but the last are full.
        let bodies: Vec<usize> = c.datagrams.iter().map(|g| decode_datagram(g).unwrap().body.len()).collect();
        assert!(bodies[..n - 1].iter().all(|&b| b == c.max_payload_size), "{}: {bodies:?}", c.name);
        assert!(bodies[n - 1] <= c.max_payload_size);
    }
}

#[test]
fn legacy_cases_need_the_right_passphrase() {
    let cases = cases();
    for c in cases.iter().filter(|c| c.encrypt.is_some()) {
        let grams: Vec<&[u8]> = c.datagrams.iter().map(Vec::as_slice).collect();
        for wrong in ["", "nsa-key", "WIKILEAKS!", "NSA-KEY ", "hunter2"] {
            match receive(&grams, Some(wrong)) {
                Err(WireError::Decrypt(_)) | Err(WireError::Malformed(_)) => {}
                other => panic!("{} opened with {wrong:?}: {other:?}", c.name),
            }
        }
        // The outer datagram of a legacy message: enc true, no sender fields.
        let outer = reassemble(grams.iter().copied()).unwrap();
        let d = decode_datagram(&outer).unwrap();
        assert!(d.meta.enc && d.meta.name.is_none() && d.meta.id.is_none());
        // Our encryptor produces the same ciphertext (the legacy IV is fixed).
        let key = LegacyKey::from_passphrase(c.encrypt.as_deref().unwrap());
        let inner = key.decrypt(d.body).unwrap();
        assert_eq!(key.encrypt(&inner), d.body);
        assert_reencodes(&inner);
        assert_reencodes(&outer);
    }
}

#[test]
fn our_encoder_reproduces_every_vector_datagram() {
    let cases = cases();
    for c in &cases {
        for g in &c.datagrams {
            assert_reencodes(g);
        }
        // And the body of the whole (plain) message from the decoded values.
        let msg = reassemble(c.datagrams.iter().map(Vec::as_slice)).unwrap();
        let d = decode_datagram(&msg).unwrap();
        if !d.meta.enc {
            assert_reencodes(&msg);
            let ours = match decode_body(d.body).unwrap() {
                Payload::Args(a) => encode_args(&a),
                Payload::Document(doc) => encode_document_body(&doc),
            };
            assert_eq!(hex(&ours), hex(d.body), "{} body", c.name);
        }
    }
}

/// Key order and element types of the vector metas against what we encode
/// for an equivalent `Meta` (independent of the byte comparison above: this
/// one says *what* differs if anything does).
#[test]
fn meta_field_order_and_types_match_0_1_x() {
    let cases = cases();
    let layout = |buf: &[u8]| -> Vec<(String, bson::spec::ElementType)> {
        let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
        RawDocument::from_bytes(&buf[2..2 + len])
            .unwrap()
            .iter()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.as_str().to_owned(), v.element_type())
            })
            .collect()
    };
    let mut seen_sender_meta = false;
    for c in &cases {
        for g in &c.datagrams {
            let d = decode_datagram(g).unwrap();
            let m = Meta { ..d.meta.clone() };
            let mut ours = Vec::new();
            encode_datagram(&m, b"", &mut ours);
            assert_eq!(layout(&ours), layout(g), "{}", c.name);
            if d.meta.name.is_some() {
                seen_sender_meta = true;
                let keys: Vec<String> = layout(g).into_iter().map(|(k, _)| k).collect();
                let want = ["v", "seq", "seqLen", "seqId", "seqEnd", "enc"];
                assert_eq!(keys[..6], want);
            }
        }
    }
    assert!(seen_sender_meta);
}

#[test]
fn retx_vector_body_is_a_document() {
    let cases = cases();
    let c = case(&cases, "plain-retx-request");
    let d = decode_datagram(&c.datagrams[0]).unwrap();
    assert_eq!(d.meta.name.as_deref(), Some(RETX_EVENT));
    let Payload::Document(doc) = decode_body(d.body).unwrap() else { panic!() };
    let keys: Vec<&str> = doc.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["id", "seqId", "missedSeq", "host", "port"]);
    assert!(matches!(doc.get("missedSeq"), Some(Bson::Array(a)) if a.iter().all(|x| matches!(x, Bson::Int32(_)))));
    assert!(matches!(doc.get("port"), Some(Bson::Int32(9000))));
    let _: Document = doc;
}

/// `d` with `extra` (raw BSON elements) appended to its meta, lengths fixed:
/// what a datagram of ours adds to 0.1.x's meta.
fn with_meta_elements(d: &[u8], extra: &[u8]) -> Vec<u8> {
    let meta_len = usize::from(u16::from_be_bytes([d[0], d[1]]));
    let term = 2 + meta_len - 1;
    assert_eq!(d[term], 0);
    let mut out = d[..term].to_vec();
    out.extend_from_slice(extra);
    out.extend_from_slice(&d[term..]);
    let n = meta_len + extra.len();
    out[..2].copy_from_slice(&(n as u16).to_be_bytes());
    out[2..6].copy_from_slice(&(n as i32).to_le_bytes());
    out
}

/// The `snAge` extension (int32 after `sn`) changes nothing else a 0.1.2
/// datagram decodes to: same meta fields, same body, same event; and with
/// the field absent (0.1.x, or our stream past its first 16,384 messages)
/// the meta reads `sn_age: None`, as before.
#[test]
fn sn_age_extension_leaves_the_vectors_unchanged() {
    let mut sn_age = vec![0x12];
    sn_age.extend_from_slice(b"sn\0");
    sn_age.extend_from_slice(&7i64.to_le_bytes());
    sn_age.push(0x10);
    sn_age.extend_from_slice(b"snAge\0");
    sn_age.extend_from_slice(&1234i32.to_le_bytes());
    for c in &cases() {
        let extended: Vec<Vec<u8>> = c.datagrams.iter().map(|d| with_meta_elements(d, &sn_age)).collect();
        for (d, e) in c.datagrams.iter().zip(&extended) {
            let (plain, ext) = (decode_datagram(d).unwrap(), decode_datagram(e).unwrap());
            assert_eq!(plain.meta.sn_age, None, "{}", c.name);
            assert_eq!(ext.meta, Meta { sn: Some(7), sn_age: Some(1234), ..plain.meta.clone() }, "{}", c.name);
            assert_eq!(ext.body, plain.body, "{}", c.name);
        }
        let grams: Vec<&[u8]> = extended.iter().map(Vec::as_slice).collect();
        let orig: Vec<&[u8]> = c.datagrams.iter().map(Vec::as_slice).collect();
        let (a, b) = (receive(&grams, c.encrypt.as_deref()).unwrap(), receive(&orig, c.encrypt.as_deref()).unwrap());
        assert_eq!(a.0, b.0, "{}", c.name);
        assert_eq!(format!("{:?}", a.1), format!("{:?}", b.1), "{}", c.name);
    }
}
