//! Fuzzing on the stable toolchain: the `cargo test` stand-in for the cargo-fuzz
//! targets in `fuzz/`.
//!
//! * `endpoint_survives_hostile_datagrams`: 100,000 datagrams (and 20,000 at a legacy-encrypting endpoint) — random bytes,
//!   mutated valid datagrams (bit flips, truncation, metaLength past the end,
//!   splices, interesting integers) and hand-built hostile ones (seq ≥ seqLen,
//!   seqLen in the millions, wrong field types, deeply nested or non-BSON meta,
//!   invalid UTF-8, huge declared sizes, conflicting chunk sizes from a pool of
//!   fake senders, hostile repair requests) — go through `decode_datagram` and
//!   through an `Endpoint` with small limits, interleaved with valid events from
//!   a clean sender. Asserts: no panic, reassembly and retention never above
//!   their byte limits, every datagram counted, every valid event delivered
//!   exactly once, and nothing is ever sent anywhere but the group.
//! * proptests over arbitrary meta documents (decode never panics; what decodes
//!   re-encodes to the same meta) and over arbitrary chunk headers.
//!
//! `FUZZ_CASES=N` scales the loop; `FUZZ_SEED=S` replays one run.

use bson::Bson;
use eventcast_engine::protocol::{Config, Destination, Encryption, Endpoint, Identity, Limits, Output};
use eventcast_engine::wire::{self, legacy::LegacyKey};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

// ---- a tiny raw BSON writer (so tests can write what no encoder would) -------

fn el(out: &mut Vec<u8>, ty: u8, key: &[u8], val: &[u8]) {
    out.push(ty);
    out.extend_from_slice(key);
    out.push(0);
    out.extend_from_slice(val);
}

fn doc(elems: &[u8]) -> Vec<u8> {
    let mut d = ((4 + elems.len() + 1) as i32).to_le_bytes().to_vec();
    d.extend_from_slice(elems);
    d.push(0);
    d
}

fn strv(bytes: &[u8]) -> Vec<u8> {
    let mut v = ((bytes.len() + 1) as i32).to_le_bytes().to_vec();
    v.extend_from_slice(bytes);
    v.push(0);
    v
}

fn framed(meta: &[u8], body: &[u8]) -> Vec<u8> {
    let mut d = (meta.len().min(0xffff) as u16).to_be_bytes().to_vec();
    d.extend_from_slice(meta);
    d.extend_from_slice(body);
    d
}

const T_DOUBLE: u8 = 0x01;
const T_STR: u8 = 0x02;
const T_DOC: u8 = 0x03;
const T_ARR: u8 = 0x04;
const T_BIN: u8 = 0x05;
const T_BOOL: u8 = 0x08;
const T_NULL: u8 = 0x0a;
const T_I32: u8 = 0x10;
const T_I64: u8 = 0x12;

/// A meta field value: either well-typed or deliberately hostile.
#[derive(Clone, Debug)]
enum V {
    I32(i32),
    I64(i64),
    F64(f64),
    Str(Vec<u8>),
    Bool(u8),
    Null,
    Bin(Vec<u8>),
    Doc(Vec<u8>),
    Arr(Vec<u8>),
    /// Raw: type byte and value bytes as given (may lie about sizes).
    Raw(u8, Vec<u8>),
}

fn put(out: &mut Vec<u8>, key: &str, v: &V) {
    let k = key.as_bytes();
    match v {
        V::I32(i) => el(out, T_I32, k, &i.to_le_bytes()),
        V::I64(i) => el(out, T_I64, k, &i.to_le_bytes()),
        V::F64(f) => el(out, T_DOUBLE, k, &f.to_le_bytes()),
        V::Str(s) => el(out, T_STR, k, &strv(s)),
        V::Bool(b) => el(out, T_BOOL, k, &[*b]),
        V::Null => el(out, T_NULL, k, &[]),
        V::Bin(b) => {
            let mut val = (b.len() as i32).to_le_bytes().to_vec();
            val.push(0);
            val.extend_from_slice(b);
            el(out, T_BIN, k, &val)
        }
        V::Doc(d) => el(out, T_DOC, k, d),
        V::Arr(d) => el(out, T_ARR, k, d),
        V::Raw(t, b) => el(out, *t, k, b),
    }
}

fn meta_doc(fields: &[(&str, V)]) -> Vec<u8> {
    let mut e = Vec::new();
    for (k, v) in fields {
        put(&mut e, k, v);
    }
    doc(&e)
}

fn hex(rng: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| b"0123456789abcdef"[rng.gen_range(0..16)]).collect()
}

/// A well-formed meta of a chunk (or single message when seq_len == 1).
fn chunk_fields(id: &[u8], seq_id: &[u8], seq: i32, seq_len: i32, seq_end: bool) -> Vec<(&'static str, V)> {
    vec![
        ("v", V::I32(3)),
        ("seq", V::I32(seq)),
        ("seqLen", V::I32(seq_len)),
        ("seqId", V::Str(seq_id.to_vec())),
        ("seqEnd", V::Bool(seq_end as u8)),
        ("enc", V::Bool(0)),
        ("name", V::Str(b"fuzz".to_vec())),
        ("host", V::Str(b"192.0.2.66".to_vec())),
        ("port", V::I32(9000)),
        ("hostname", V::Str(b"mallory".to_vec())),
        ("id", V::Str(id.to_vec())),
        ("time", V::Str(b"2024-01-01T00:00:00.000Z".to_vec())),
    ]
}

/// `{payload: [args]}` body with a string and an int.
fn payload_body(s: &[u8], n: i32) -> Vec<u8> {
    let mut arr = Vec::new();
    put(&mut arr, "0", &V::Str(s.to_vec()));
    put(&mut arr, "1", &V::I32(n));
    let mut e = Vec::new();
    put(&mut e, "payload", &V::Arr(doc(&arr)));
    doc(&e)
}

fn nested(depth: usize) -> Vec<u8> {
    let mut d = doc(&[]);
    for _ in 0..depth {
        let mut e = Vec::new();
        put(&mut e, "a", &V::Doc(d));
        d = doc(&e);
    }
    d
}

fn random_value(rng: &mut StdRng) -> V {
    match rng.gen_range(0..12) {
        0 => V::I32(rng.gen()),
        1 => V::I64(rng.gen()),
        2 => V::F64(f64::from_bits(rng.gen())),
        3 => {
            let n = rng.gen_range(0..50);
            V::Str(hex(rng, n))
        }
        4 => V::Str((0..rng.gen_range(0..20)).map(|_| rng.gen()).collect()), // invalid UTF-8 mostly
        5 => V::Bool(rng.gen()),
        6 => V::Null,
        7 => V::Bin((0..rng.gen_range(0..20)).map(|_| rng.gen()).collect()),
        8 => V::Doc(nested(rng.gen_range(0..8))),
        9 => V::Arr(doc(&[])),
        10 => V::Raw(rng.gen(), (0..rng.gen_range(0..12)).map(|_| rng.gen()).collect()),
        _ => V::I32([0, -1, 1, i32::MAX, i32::MIN, 1 << 24, 5_000_000][rng.gen_range(0..7)]),
    }
}

/// Fake senders and chunk groups, few enough that chunks collide (conflicting sizes and counts).
struct Pools {
    ids: Vec<Vec<u8>>,
    seq_ids: Vec<Vec<u8>>,
}

fn hostile(rng: &mut StdRng, pools: &Pools) -> Vec<u8> {
    let id = pools.ids[rng.gen_range(0..pools.ids.len())].clone();
    let seq_id = pools.seq_ids[rng.gen_range(0..pools.seq_ids.len())].clone();
    let body_len = rng.gen_range(0..1100);
    let body: Vec<u8> = (0..body_len).map(|_| rng.gen()).collect();
    match rng.gen_range(0..15) {
        // seq ≥ seqLen
        0 => {
            let n = rng.gen_range(1..50);
            framed(&meta_doc(&chunk_fields(&id, &seq_id, n + rng.gen_range(0..5), n, rng.gen())), &body)
        }
        // seqLen in the millions (or i32::MAX)
        1 => {
            let n = if rng.gen() { rng.gen_range(1_000_000..50_000_000) } else { i32::MAX };
            framed(&meta_doc(&chunk_fields(&id, &seq_id, rng.gen_range(0..n), n, false)), &body)
        }
        // zero / negative seqLen or seq
        2 => {
            framed(&meta_doc(&chunk_fields(&id, &seq_id, rng.gen_range(-3..3), rng.gen_range(-3..1), rng.gen())), &body)
        }
        // a field of the wrong type
        3 => {
            let mut f = chunk_fields(&id, &seq_id, rng.gen_range(0..4), 4, false);
            let k = rng.gen_range(0..f.len());
            f[k].1 = random_value(rng);
            framed(&meta_doc(&f), &body)
        }
        // deeply nested meta field (or an unknown field)
        4 => {
            let mut f = chunk_fields(&id, &seq_id, 0, 1, true);
            let d = nested(rng.gen_range(50..600));
            if rng.gen() {
                f[6].1 = V::Doc(d);
            } else {
                f.push(("deep", V::Doc(d)));
            }
            framed(&meta_doc(&f), &payload_body(b"x", 1))
        }
        // invalid UTF-8 in a string field
        5 => {
            let mut f = chunk_fields(&id, &seq_id, 0, rng.gen_range(1..3), rng.gen());
            let k = [3, 6, 7, 9, 10, 11][rng.gen_range(0..6)];
            f[k].1 = V::Str(vec![0xff, 0xfe, b'a', 0xc3, 0x28, 0xed, 0xa0, 0x80]);
            framed(&meta_doc(&f), &payload_body(&[0xc3, 0x28], 2))
        }
        // huge declared sizes: the meta's own length, a string's, a binary's
        6 => {
            let mut m = meta_doc(&chunk_fields(&id, &seq_id, 0, 1, true));
            match rng.gen_range(0..3) {
                0 => m[..4].copy_from_slice(&i32::MAX.to_le_bytes()),
                1 => {
                    let mut f = chunk_fields(&id, &seq_id, 0, 1, true);
                    let mut v = i32::MAX.to_le_bytes().to_vec();
                    v.extend_from_slice(b"abc\0");
                    f[6].1 = V::Raw(T_STR, v);
                    m = meta_doc(&f);
                }
                _ => {
                    let mut f = chunk_fields(&id, &seq_id, 0, 1, true);
                    let mut v = 0x7fff_fff0i32.to_le_bytes().to_vec();
                    v.push(0);
                    f.push(("blob", V::Raw(T_BIN, v)));
                    m = meta_doc(&f);
                }
            }
            framed(&m, &body)
        }
        // conflicting chunks: random seq/seqLen/seqEnd and body sizes in a few groups
        7 | 8 => {
            let n = rng.gen_range(1..40);
            let seq = rng.gen_range(0..n);
            framed(&meta_doc(&chunk_fields(&id, &seq_id, seq, n, rng.gen_bool(0.2) || seq == n - 1)), &body)
        }
        // a single message whose body is not BSON / declares a huge payload
        9 => {
            let mut b = payload_body(b"y", 3);
            if rng.gen() {
                b[..4].copy_from_slice(&(rng.gen_range(1_000_000..i32::MAX)).to_le_bytes());
            } else {
                b = body;
            }
            framed(&meta_doc(&chunk_fields(&id, &seq_id, 0, 1, true)), &b)
        }
        // another version, or v of the wrong type
        10 => {
            let mut f = chunk_fields(&id, &seq_id, 0, 1, true);
            f[0].1 = if rng.gen() { V::I32(rng.gen_range(0..10)) } else { random_value(rng) };
            framed(&meta_doc(&f), &payload_body(b"v", 4))
        }
        // metaLength past the end (or short)
        11 => {
            let mut d = framed(&meta_doc(&chunk_fields(&id, &seq_id, 0, 1, true)), &payload_body(b"m", 5));
            let bogus = if rng.gen() { d.len() as u16 + rng.gen_range(0..100) } else { rng.gen() };
            d[..2].copy_from_slice(&bogus.to_be_bytes());
            d
        }
        // "encrypted" with a random body (no key / wrong key)
        12 => {
            let mut f = chunk_fields(&id, &seq_id, 0, 1, true);
            f[5].1 = V::Bool(1);
            let n = rng.gen_range(0..8) * 16;
            framed(&meta_doc(&f), &body[..n.min(body.len())])
        }
        // hostile repair requests
        13 => {
            let mut f = chunk_fields(&id, &seq_id, 0, 1, true);
            f[6].1 = V::Str(b"__ec_retx".to_vec());
            let mut missed = Vec::new();
            for k in 0..rng.gen_range(0..2000) {
                put(
                    &mut missed,
                    &k.to_string(),
                    &if rng.gen_bool(0.9) { V::I32(rng.gen()) } else { random_value(rng) },
                );
            }
            let mut req = Vec::new();
            put(&mut req, "id", &V::Str(id.clone()));
            put(&mut req, "seqId", &if rng.gen_bool(0.8) { V::Str(seq_id.clone()) } else { random_value(rng) });
            put(&mut req, "missedSeq", &V::Arr(doc(&missed)));
            put(&mut req, "host", &V::Str(b"198.51.100.7".to_vec()));
            put(&mut req, "port", &V::I32(rng.gen()));
            let mut e = Vec::new();
            put(&mut e, "payload", &if rng.gen_bool(0.8) { V::Doc(doc(&req)) } else { random_value(rng) });
            framed(&meta_doc(&f), &doc(&e))
        }
        // random meta fields altogether
        _ => {
            let keys = [
                "v", "seq", "seqLen", "seqId", "seqEnd", "enc", "nonce", "name", "host", "port", "hostname", "id",
                "time", "sn", "x",
            ];
            let mut e = Vec::new();
            for _ in 0..rng.gen_range(0..16) {
                put(&mut e, keys[rng.gen_range(0..keys.len())], &random_value(rng));
            }
            framed(&doc(&e), &body)
        }
    }
}

const INTERESTING_I32: [i32; 9] = [0, 1, -1, 2, i32::MAX, i32::MIN, 0x7fff, 1 << 24, 5_000_000];

fn mutate(rng: &mut StdRng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut d = corpus[rng.gen_range(0..corpus.len())].clone();
    for _ in 0..rng.gen_range(1..4) {
        if d.is_empty() {
            d.push(rng.gen());
        }
        let len = d.len();
        match rng.gen_range(0..9) {
            0 => {
                for _ in 0..rng.gen_range(1..8) {
                    let i = rng.gen_range(0..len);
                    d[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            1 => {
                let i = rng.gen_range(0..len);
                d[i] = [0, 0xff, 0x7f, 0x80, 1][rng.gen_range(0..5)];
            }
            2 => d.truncate(rng.gen_range(0..len)),
            3 => d.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>())),
            4 if len >= 2 => {
                let v: u16 = match rng.gen_range(0..4) {
                    0 => rng.gen(),
                    1 => (len as u16).saturating_sub(1),
                    2 => len as u16,
                    _ => 0xffff,
                };
                d[..2].copy_from_slice(&v.to_be_bytes());
            }
            5 => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                let cut = rng.gen_range(0..=len);
                let from = rng.gen_range(0..=other.len());
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
            6 if len >= 4 => {
                let i = rng.gen_range(0..len - 3);
                d[i..i + 4].copy_from_slice(&INTERESTING_I32[rng.gen_range(0..INTERESTING_I32.len())].to_le_bytes());
            }
            7 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len.min(a + 64));
                let piece = d[a..b].to_vec();
                let at = rng.gen_range(0..=d.len());
                d.splice(at..at, piece);
            }
            _ => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len);
                d.drain(a..b);
            }
        }
    }
    d
}

// ---- endpoints ---------------------------------------------------------------

fn identity(id: &str, last: u8) -> Identity {
    Identity { id: id.into(), host: format!("192.0.2.{last}"), port: 9000, hostname: format!("h{last}") }
}

fn small_limits() -> Limits {
    Limits {
        max_message_size: 64 * 1024,
        max_partial_messages: 16,
        max_reassembly_bytes: 48 * 1024,
        max_retained_bytes: 48 * 1024,
        max_completed_ids: 512,
        ..Limits::default()
    }
}

fn config(encryption: Encryption) -> Config {
    Config {
        max_payload_size: 1024,
        message_ttl: Duration::from_millis(300),
        retransmit_attempts: 3,
        encryption,
        limits: small_limits(),
        ..Config::default()
    }
}

fn drain(ep: &mut Endpoint) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        out.push(t.payload.to_vec());
    }
    out
}

/// Valid datagrams of every kind a real sender produces, to mutate.
fn corpus(encryption: &Encryption) -> Vec<Vec<u8>> {
    let mut s = Endpoint::new(
        config(encryption.clone()),
        identity("00000000000000c0", 200),
        7,
        Instant::now(),
        SystemTime::now(),
    )
    .unwrap();
    let now = Instant::now();
    let wall = SystemTime::now();
    let big: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let args: [&[Bson]; 5] = [
        &[],
        &[Bson::String("hello".into()), Bson::Int32(5)],
        &[Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: big })],
        &[Bson::Document(bson::doc! {"a": [1, 2.5, "x", null, true], "d": bson::DateTime::from_millis(0)})],
        &[Bson::String("é".repeat(400))],
    ];
    for a in args {
        s.emit(now, wall, "seed", a).unwrap();
    }
    let mut c = drain(&mut s);
    // A 0.1.x-style repair request for a group, too.
    let req = wire::RepairRequest {
        id: "00000000000000c1".into(),
        seq_id: "ab".repeat(20),
        missed_seq: vec![0, 1, 7],
        host: "192.0.2.9".into(),
        port: 9000,
        ..Default::default()
    };
    c.push({
        let mut m = chunk_fields(b"00000000000000c1", &b"cd".repeat(20), 0, 1, true);
        m[6].1 = V::Str(b"__ec_retx".to_vec());
        let mut body = Vec::new();
        let mut e = Vec::new();
        req.to_document().to_writer(&mut body).unwrap();
        put(&mut e, "payload", &V::Doc(body));
        framed(&meta_doc(&m), &doc(&e))
    });
    c
}

struct Clean {
    ep: Endpoint,
    next: i32,
}

impl Clean {
    fn send(&mut self, now: Instant, big: bool) -> (i32, Vec<Vec<u8>>) {
        let n = self.next;
        self.next += 1;
        let args = if big { vec![Bson::Int32(n), Bson::String("z".repeat(2000))] } else { vec![Bson::Int32(n)] };
        self.ep.emit(now, SystemTime::now(), "clean", &args).unwrap();
        (n, drain(&mut self.ep))
    }
}

/// What a datagram the receiver sent is: the event name, and for repair
/// requests whether they ask for chunks (`missedSeq`) or messages (`missedSn`).
fn transmit_kind(d: &[u8]) -> String {
    let Ok(dg) = wire::decode_datagram(d) else { return "undecodable".into() };
    let name = dg.meta.name.clone().unwrap_or_else(|| if dg.meta.enc { "encrypted".into() } else { "?".into() });
    if dg.meta.is_multipart() {
        return format!("{name}/chunk");
    }
    match wire::decode_body(dg.body) {
        Ok(wire::Payload::Document(doc)) if name == wire::RETX_EVENT => {
            let n = |k: &str| doc.get_array(k).map(|a| a.len()).unwrap_or(0);
            if n("missedSn") > 0 {
                format!("{name}/sn")
            } else if n("missedSeq") > 0 {
                format!("{name}/seq")
            } else {
                format!("{name}/empty")
            }
        }
        _ => name,
    }
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::thread_rng().gen())
}

fn cases(default: usize) -> usize {
    std::env::var("FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn run_endpoint_fuzz(encryption: Encryption, n: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let limits = small_limits();
    let pools = Pools {
        ids: (0..64).map(|_| hex(&mut rng, 16)).collect(),
        seq_ids: (0..48).map(|_| hex(&mut rng, 40)).collect(),
    };
    let corpus = corpus(&encryption);
    let mut rx = Endpoint::new(
        config(encryption.clone()),
        identity("00000000000000aa", 2),
        seed,
        Instant::now(),
        SystemTime::now(),
    )
    .unwrap();
    let mut clean = Clean {
        ep: Endpoint::new(
            config(encryption),
            identity("00000000000000bb", 3),
            seed ^ 1,
            Instant::now(),
            SystemTime::now(),
        )
        .unwrap(),
        next: 0,
    };
    let src: SocketAddr = "192.0.2.66:9000".parse().unwrap();
    let clean_src: SocketAddr = "192.0.2.3:9000".parse().unwrap();
    let mut now = Instant::now();
    let mut fed = 0u64;
    let mut sent = 0u64;
    let mut sent_bytes = 0u64;
    let mut fed_bytes = 0u64;
    let mut expected: Vec<i32> = Vec::new();
    let mut delivered: Vec<i32> = Vec::new();
    let mut decoded_ok = 0u64;
    let mut sent_kinds = std::collections::BTreeMap::new();
    let only: Option<u32> = std::env::var("FUZZ_ONLY").ok().and_then(|s| s.parse().ok());
    let check_outputs = |rx: &mut Endpoint, delivered: &mut Vec<i32>| {
        while let Some(o) = rx.poll_output() {
            if let Output::Event(e) = o {
                if e.name == "clean" {
                    assert_eq!(e.sender.id, "00000000000000bb", "a clean event from a forged sender");
                    match e.args.first() {
                        Some(Bson::Int32(k)) => delivered.push(*k),
                        other => panic!("clean event with args {other:?}"),
                    }
                }
            }
        }
    };
    for i in 0..n {
        let dg = match only.unwrap_or_else(|| rng.gen_range(0..10)) {
            0..=3 => mutate(&mut rng, &corpus),
            4..=7 => hostile(&mut rng, &pools),
            8 => (0..rng.gen_range(0..1400)).map(|_| rng.gen()).collect(),
            _ => corpus[rng.gen_range(0..corpus.len())].clone(), // replays of valid datagrams
        };
        if wire::decode_datagram(&dg).is_ok() {
            decoded_ok += 1;
        }
        rx.handle_datagram(now, src, &dg);
        fed += 1;
        fed_bytes += dg.len() as u64;
        if i % 97 == 0 {
            // A valid event (sometimes chunked) from a sender the attacker does not impersonate.
            let (k, dgs) = clean.send(now, i % 970 == 0);
            expected.push(k);
            for d in dgs {
                rx.handle_datagram(now, clean_src, &d);
                fed += 1;
            }
        }
        if i % 50 == 0 {
            now += Duration::from_millis(rng.gen_range(0..80));
            rx.handle_timeout(now);
            clean.ep.handle_timeout(now);
            // Requests of the receiver reach the clean sender (whose answers come back).
            for t in std::iter::from_fn(|| rx.poll_transmit()) {
                assert_eq!(t.destination, Destination::Group, "a datagram sent somewhere other than the group");
                sent += 1;
                sent_bytes += t.payload.len() as u64;
                *sent_kinds.entry(transmit_kind(&t.payload)).or_insert(0u64) += 1;
                clean.ep.handle_datagram(now, "192.0.2.2:9000".parse().unwrap(), &t.payload);
            }
            for d in drain(&mut clean.ep) {
                rx.handle_datagram(now, clean_src, &d);
                fed += 1;
            }
        }
        check_outputs(&mut rx, &mut delivered);
        let st = rx.stats();
        assert!(
            st.reassembly_bytes <= limits.max_reassembly_bytes as u64,
            "reassembly {} > limit (case {i}, seed {seed})",
            st.reassembly_bytes
        );
        assert!(
            st.retained_bytes <= limits.max_retained_bytes as u64,
            "retained {} > limit (case {i}, seed {seed})",
            st.retained_bytes
        );
    }
    let st = rx.stats().clone();
    eprintln!(
        "fuzz endpoint (seed {seed}): {fed} datagrams ({decoded_ok} decodable), {} clean events ok, {sent} sent ({sent_bytes} of {fed_bytes} bytes) {sent_kinds:?}; \
         malformed {} version {} decrypt {} limits {} evicted {} gaps {} dupes {}",
        expected.len(),
        st.rejected_malformed,
        st.rejected_version,
        st.rejected_decrypt,
        st.rejected_limits,
        st.partials_evicted,
        st.gaps_unrecovered,
        st.duplicates_ignored
    );
    assert_eq!(st.datagrams_received, fed, "every datagram is counted");
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    let before = sorted.len();
    sorted.dedup();
    assert_eq!(before, sorted.len(), "a valid event was delivered twice (seed {seed})");
    assert_eq!(sorted, expected, "valid events lost among hostile datagrams (seed {seed}); stats {st:?}");
    if only.is_none() {
        assert!(st.rejected_malformed > (n as u64) / 10, "rejections are counted: {st:?}");
    }
    // Garbage creates partial messages that expire or get evicted; the repair
    // requests they cause must not amplify the attack: fewer bytes go out to
    // the group than the attacker sent in.
    assert!(
        sent_bytes < fed_bytes,
        "{sent_bytes} bytes in {sent} datagrams sent for {fed_bytes} bytes in {fed} received (seed {seed})"
    );
    // Forged `sn` jumps are held until corroborated, so they cannot report
    // absurd loss (see `forged_sn_jump_does_not_silence_a_sender`).
}

#[test]
fn endpoint_survives_hostile_datagrams() {
    run_endpoint_fuzz(Encryption::None, cases(100_000), seed());
}

#[test]
fn legacy_encrypted_endpoint_survives_hostile_datagrams() {
    run_endpoint_fuzz(Encryption::Legacy(LegacyKey::from_passphrase("fuzz")), cases(100_000) / 5, seed());
}

// ---- proptests ---------------------------------------------------------------

fn arb_value() -> impl Strategy<Value = V> {
    prop_oneof![
        any::<i32>().prop_map(V::I32),
        any::<i64>().prop_map(V::I64),
        any::<f64>().prop_map(V::F64),
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(V::Str),
        "[0-9a-f]{16,40}".prop_map(|s| V::Str(s.into_bytes())),
        (0u8..3).prop_map(V::Bool),
        Just(V::Null),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(V::Bin),
        (0usize..40).prop_map(|d| V::Doc(nested(d))),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(t, b)| V::Raw(t, b)),
    ]
}

fn arb_key() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "v", "seq", "seqLen", "seqId", "seqEnd", "enc", "nonce", "name", "host", "port", "hostname", "id", "time",
        "sn", "zz",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(20_000) as u32 / 4, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any meta document: decoding never panics, and what decodes re-encodes to
    /// a datagram that decodes to the same meta and body.
    #[test]
    fn arbitrary_meta_documents(fields in proptest::collection::vec((arb_key(), arb_value()), 0..16),
                                body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut e = Vec::new();
        for (k, v) in &fields {
            put(&mut e, k, v);
        }
        let d = framed(&doc(&e), &body);
        if let Ok(dg) = wire::decode_datagram(&d) {
            prop_assert_eq!(dg.body, &body[..]);
            let mut again = Vec::new();
            if wire::try_encode_datagram(&dg.meta, dg.body, &mut again).is_ok() {
                let back = wire::decode_datagram(&again).expect("a re-encoded datagram decodes");
                prop_assert_eq!(back.meta, dg.meta);
                prop_assert_eq!(back.body, dg.body);
            }
        }
    }

    /// Any sequence of chunk headers (arbitrary seq, seqLen, seqEnd, body sizes)
    /// from a few senders and groups: no panic, state within the byte limits,
    /// and the partial messages it leaves behind all expire.
    #[test]
    fn arbitrary_chunk_headers(chunks in proptest::collection::vec(
        (0usize..4, 0usize..4, any::<i32>(), prop_oneof![1i32..8, any::<i32>()], any::<bool>(), 0usize..1500), 1..60)) {
        let limits = small_limits();
        let mut rx = Endpoint::new(config(Encryption::None), identity("00000000000000aa", 2), 1, Instant::now(), SystemTime::now()).unwrap();
        let mut now = Instant::now();
        let src: SocketAddr = "192.0.2.66:9000".parse().unwrap();
        for (k, (who, group, seq, seq_len, end, len)) in chunks.iter().enumerate() {
            let id = format!("{who:016x}");
            let gid = format!("{group:040x}");
            let seq = if *seq_len > 0 && k % 2 == 0 { seq.rem_euclid(*seq_len) } else { *seq };
            let body = vec![(k & 0xff) as u8; *len];
            rx.handle_datagram(now, src, &framed(&meta_doc(&chunk_fields(id.as_bytes(), gid.as_bytes(), seq, *seq_len, *end)), &body));
            prop_assert!(rx.stats().reassembly_bytes <= limits.max_reassembly_bytes as u64);
            now += Duration::from_millis(5);
        }
        for _ in 0..200 {
            now += Duration::from_millis(50);
            rx.handle_timeout(now);
            while rx.poll_transmit().is_some() {}
            while rx.poll_output().is_some() {}
        }
        prop_assert_eq!(rx.stats().reassembly_bytes, 0, "partials outlive their ttl");
    }
}

// ---- targeted cases found by the fuzzer ---------------------------------------

/// A single plaintext datagram that claims another sender's id with an absurd
/// `sn` (a forgery, or a corrupted real datagram) must not silence that sender
/// nor report billions of lost messages.
#[test]
fn forged_sn_jump_does_not_silence_a_sender() {
    let now = Instant::now();
    let mut tx =
        Endpoint::new(config(Encryption::None), identity("00000000000000bb", 3), 5, Instant::now(), SystemTime::now())
            .unwrap();
    let mut rx =
        Endpoint::new(config(Encryption::None), identity("00000000000000aa", 2), 6, Instant::now(), SystemTime::now())
            .unwrap();
    let src: SocketAddr = "192.0.2.3:9000".parse().unwrap();
    let mut got = Vec::new();
    let send = |tx: &mut Endpoint, rx: &mut Endpoint, k: i32| {
        tx.emit(now, SystemTime::now(), "e", &[Bson::Int32(k)]).unwrap();
        for d in drain(tx) {
            rx.handle_datagram(now, src, &d);
        }
    };
    send(&mut tx, &mut rx, 0);
    // The forgery: the sender's next datagram with sn = 2^62.
    tx.emit(now, SystemTime::now(), "forged", &[]).unwrap();
    let real = drain(&mut tx).remove(0);
    let dg = wire::decode_datagram(&real).unwrap();
    let mut meta = dg.meta.clone();
    meta.sn = Some(1 << 62);
    let mut forged = Vec::new();
    wire::encode_datagram(&meta, dg.body, &mut forged);
    rx.handle_datagram(now, "198.51.100.7:9000".parse().unwrap(), &forged);
    for k in 1..=5 {
        send(&mut tx, &mut rx, k);
    }
    let mut t = now;
    for _ in 0..100 {
        t += Duration::from_millis(100);
        rx.handle_timeout(t);
        while rx.poll_transmit().is_some() {}
    }
    while let Some(o) = rx.poll_output() {
        if let Output::Event(e) = o {
            if e.name == "e" {
                got.push(e.args[0].clone());
            }
        }
    }
    let st = rx.stats();
    assert!(st.gaps_unrecovered < 1000, "one forged datagram reported {} lost messages", st.gaps_unrecovered);
    assert_eq!(got.len(), 6, "the real sender's events after the forgery were dropped: got {got:?}; {st:?}");
}
