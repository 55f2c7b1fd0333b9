//! Allocation-free rejection: turning a hostile datagram down allocates
//! nothing in the codec (a node refuses such datagrams at line rate and only
//! counts them; the reason is composed only if someone displays it).
//! A counting allocator, per thread, checks it. (One corner is left to the
//! `bson` crate, whose error allocates: a well-framed meta string that is not
//! UTF-8.)

use eventcast_engine::error::Malformed;
use eventcast_engine::wire::{self, legacy::LegacyKey, SecureKey};
use eventcast_engine::WireError;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a plain
// thread-local cell with no destructor, so it never allocates itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (r, ALLOCATIONS.with(Cell::get) - before)
}

fn datagram(meta: &bson::Document, body: &[u8]) -> Vec<u8> {
    let meta = meta.to_vec().unwrap();
    let mut d = (meta.len() as u16).to_be_bytes().to_vec();
    d.extend_from_slice(&meta);
    d.extend_from_slice(body);
    d
}

fn good() -> bson::Document {
    bson::doc! { "v": 3, "seq": 0, "seqLen": 1, "seqId": "ab".repeat(20), "seqEnd": true, "id": "0123456789abcdef" }
}

fn with(k: &str, v: impl Into<bson::Bson>) -> Vec<u8> {
    let mut d = good();
    d.insert(k, v);
    datagram(&d, b"")
}

#[test]
fn malformed_datagrams_are_rejected_without_allocating() {
    let mut truncated = datagram(&good(), b"");
    truncated.truncate(20);
    let mut bad_doc_len = datagram(&good(), b"");
    bad_doc_len[2] ^= 0x40;
    // A well-framed meta whose string element's length runs past its end.
    let mut element = datagram(&good(), b"");
    let at = element.windows(6).position(|w| w == b"seqId\0").unwrap() + 6;
    element[at] = 0x70;
    let mut missing = good();
    missing.remove("seqEnd");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("one byte", vec![0]),
        ("metaLength past the end", vec![0xff, 0xff, 5, 0, 0, 0, 0]),
        ("truncated", truncated),
        ("document length", bad_doc_len),
        ("seq of the wrong type", with("seq", "0")),
        ("fractional seq", with("seq", 0.5)),
        ("name of the wrong type", with("name", 5)),
        ("missing seqEnd", datagram(&missing, b"")),
        ("element past the end", element),
        ("chunk index out of range", with("seq", 3)),
        ("seqId not 40 hex", with("seqId", "x".repeat(60))),
        ("id not 16 hex", with("id", "ABC")),
    ];
    for (what, d) in &cases {
        let (r, n) = allocations(|| wire::decode_received(d));
        assert!(matches!(r, Err(WireError::Malformed(_))), "{what}: {r:?}");
        assert_eq!(n, 0, "{what}: {n} allocations to reject");
    }
    // Bodies: not a document, no payload, a payload of the wrong type, nested too deep.
    let mut deep = bson::Bson::Int32(1);
    for _ in 0..150 {
        deep = bson::Bson::Array(vec![deep]);
    }
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not a document", vec![9, 0, 0, 0, 1]),
        ("no payload", bson::doc! { "x": 1 }.to_vec().unwrap()),
        ("payload is a number", bson::doc! { "payload": 1 }.to_vec().unwrap()),
        ("too deep", bson::doc! { "payload": [deep] }.to_vec().unwrap()),
    ];
    for (what, b) in &bodies {
        let (r, n) = allocations(|| wire::decode_body_raw(b).map(|_| ()));
        assert!(matches!(r, Err(WireError::Malformed(_))), "{what}: {r:?}");
        assert_eq!(n, 0, "{what}: {n} allocations to reject");
    }
    // More arguments or values than an event may carry: refused by the same walk.
    let many_args = bson::doc! { "payload": vec![bson::Bson::Null; wire::MAX_ARGS + 1] }.to_vec().unwrap();
    let many_values = bson::doc! { "payload": [vec![bson::Bson::Null; wire::MAX_VALUES]] }.to_vec().unwrap();
    for (what, b) in [("too many arguments", &many_args), ("too many values", &many_values)] {
        let (r, n) = allocations(|| wire::decode_body_raw(b).map(|_| ()));
        assert!(matches!(r, Err(WireError::TooManyValues { .. })), "{what}: {r:?}");
        assert_eq!(n, 0, "{what}: {n} allocations to reject");
    }
}

#[test]
fn undecryptable_datagrams_are_rejected_without_allocating() {
    let key = SecureKey::derive_with_iterations("k", 1);
    let plain = datagram(&good(), b"");
    let mut forged = key.seal(&plain, &mut rand::thread_rng());
    let n = forged.len();
    forged[n - 1] ^= 1;
    let mut forged_hs256 = key.seal_hs256(&plain, &mut rand::thread_rng());
    let n = forged_hs256.len();
    forged_hs256[n - 1] ^= 1;
    // The thread's decryption buffer grows once, on its first datagram, not per refusal.
    let _ = key.open(&forged);
    for (what, d) in [("plaintext", &plain), ("forged tag", &forged), ("forged hs256 tag", &forged_hs256)] {
        let (r, n) = allocations(|| key.open(d).map(|_| ()));
        assert!(matches!(r, Err(WireError::Decrypt(_))), "{what}: {r:?}");
        assert_eq!(n, 0, "{what}: {n} allocations to reject");
    }
    let (r, n) = allocations(|| LegacyKey::from_passphrase("k").decrypt(&[1, 2, 3]).map(|_| ()));
    assert!(matches!(r, Err(WireError::Decrypt(_))));
    assert_eq!(n, 0, "legacy: {n} allocations to reject");
}

#[test]
fn reasons_are_composed_when_displayed() {
    let e = wire::decode_received(&with("seq", 3)).unwrap_err();
    assert_eq!(e, WireError::Malformed(Malformed::new("chunk index out of range").field("seq").value(3)));
    assert_eq!(e.to_string(), "malformed datagram: seq: chunk index out of range (3)");
    let e = wire::decode_received(&with("name", 5)).unwrap_err();
    assert_eq!(e.to_string(), "malformed datagram: name: expected a string");
    assert_eq!(e.code(), "EMALFORMED");
}

/// The engine's whole rejection path, not only the codec: each hostile
/// datagram is counted as it was before, and nothing is allocated for it.
#[test]
fn the_engine_counts_rejections_without_allocating() {
    use eventcast_engine::protocol::{Config, Encryption, Endpoint, Identity};
    use std::time::{Instant, SystemTime};
    let ident = |id: &str| Identity { id: id.into(), host: "10.0.0.1".into(), port: 9000, hostname: "h".into() };
    let source = "10.0.0.2:9000".parse().unwrap();
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut plain = Endpoint::new(Config::default(), ident("00000000000000a1"), 1, now, wall).unwrap();
    let hostile = [with("seq", "0"), with("seq", 3), with("seqId", "x"), with("id", "ABC"), vec![0xff, 0xff, 1]];
    for d in &hostile {
        plain.handle_datagram(now, source, d); // warm up (first-use allocations of the endpoint)
    }
    let before = plain.stats().rejected_malformed;
    let ((), n) = allocations(|| {
        for d in &hostile {
            plain.handle_datagram(now, source, d);
        }
    });
    assert_eq!(plain.stats().rejected_malformed - before, hostile.len() as u64);
    assert_eq!(n, 0, "{n} allocations to reject {} datagrams", hostile.len());

    let key = SecureKey::derive_with_iterations("k", 1);
    let secure_config = Config { encryption: Encryption::Secure(key.clone()), ..Config::default() };
    let mut secure = Endpoint::new(secure_config, ident("00000000000000b2"), 2, now, wall).unwrap();
    let mut forged = key.seal(&datagram(&good(), b""), &mut rand::thread_rng());
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let hostile = [forged, datagram(&good(), b""), with("enc", true)];
    for d in &hostile {
        secure.handle_datagram(now, source, d);
    }
    let before = secure.stats().rejected_decrypt;
    let ((), n) = allocations(|| {
        for d in &hostile {
            secure.handle_datagram(now, source, d);
        }
    });
    assert_eq!(secure.stats().rejected_decrypt - before, hostile.len() as u64);
    assert_eq!(n, 0, "{n} allocations to reject {} datagrams", hostile.len());
}
