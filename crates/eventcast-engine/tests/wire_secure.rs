//! The authenticated scheme: wrong keys, tampering, foreign datagrams.

#[path = "support/vectors.rs"]
mod vectors;

use eventcast_engine::wire::legacy::LegacyKey;
use eventcast_engine::wire::secure::{aead, hs256, is_secure_datagram, sealed_len, SecureKey};
use eventcast_engine::wire::{decode_body, decode_datagram, encode_args, encode_datagram, Meta, Payload};
use eventcast_engine::WireError;
use std::sync::OnceLock;

/// Keys are derived once per test file; a low iteration count keeps the
/// debug-build tests fast (the real 600 000-iteration derivation is checked
/// against a reference value in the module's unit tests).
fn key() -> &'static SecureKey {
    static K: OnceLock<SecureKey> = OnceLock::new();
    K.get_or_init(|| SecureKey::derive_with_iterations("NSA-KEY", 1000))
}

fn other_key() -> &'static SecureKey {
    static K: OnceLock<SecureKey> = OnceLock::new();
    K.get_or_init(|| SecureKey::derive_with_iterations("NSA-KEY!", 1000))
}

fn inner() -> Vec<u8> {
    let meta = Meta {
        v: 3,
        seq: 0,
        seq_len: 1,
        seq_id: "ab".repeat(20),
        seq_end: true,
        enc: false,
        nonce: Some("cd".repeat(20)),
        name: Some("secret-event".into()),
        host: Some("10.1.2.3".into()),
        port: Some(9000),
        hostname: Some("vm".into()),
        id: Some("a1b2c3d4e5f60718".into()),
        time: Some("2026-01-01T00:00:00.000Z".into()),
        sn: Some(17),
        sn_age: Some(40),
    };
    let mut out = Vec::new();
    encode_datagram(&meta, &encode_args(&["top secret".into(), 5.into()]), &mut out);
    out
}

#[test]
fn seal_open_round_trip_hides_everything() {
    let inner = inner();
    let mut rng = rand::thread_rng();
    let sealed = key().seal(&inner, &mut rng);
    assert_eq!(sealed.len(), sealed_len(inner.len()));
    // Nothing of the inner datagram is visible.
    for needle in [&b"secret-event"[..], b"top secret", b"a1b2c3d4e5f60718", b"10.1.2.3", b"vm\0"] {
        assert!(!sealed.windows(needle.len()).any(|w| w == needle), "{needle:?} leaked");
    }
    let opened = key().open(&sealed).unwrap();
    assert_eq!(opened, inner);
    let d = decode_datagram(&opened).unwrap();
    assert_eq!(d.meta.name.as_deref(), Some("secret-event"));
    assert_eq!(decode_body(d.body).unwrap(), Payload::Args(vec!["top secret".into(), 5.into()]));
    // A fresh nonce and seqId each time: the same plaintext never seals the same.
    let again = key().seal(&inner, &mut rng);
    assert_ne!(again, sealed);
    let nonce = aead::OUTER_META_LEN..aead::OUTER_META_LEN + aead::NONCE_LEN;
    assert_ne!(again[nonce.clone()], sealed[nonce], "nonce reused");
    assert_eq!(key().open(&again).unwrap(), inner);
}

/// What a node of the previous release sends (version 1, `hs256`) still
/// opens, and hides as much.
#[test]
fn hs256_datagrams_of_an_older_node_still_open() {
    let inner = inner();
    let mut rng = rand::thread_rng();
    let old = key().seal_hs256(&inner, &mut rng);
    assert_eq!(old.len(), hs256::sealed_len(inner.len()));
    assert!(is_secure_datagram(&old));
    for needle in [&b"secret-event"[..], b"top secret", b"a1b2c3d4e5f60718"] {
        assert!(!old.windows(needle.len()).any(|w| w == needle), "{needle:?} leaked");
    }
    assert_eq!(key().open(&old).unwrap(), inner);
    assert!(matches!(other_key().open(&old), Err(WireError::Decrypt(_))));
}

/// Both versions, sealed under `key()`: what every tampering test runs over.
fn both_versions(inner: &[u8]) -> [(Vec<u8>, usize); 2] {
    let mut rng = rand::thread_rng();
    [(key().seal(inner, &mut rng), aead::TAG_LEN), (key().seal_hs256(inner, &mut rng), hs256::TAG_LEN)]
}

#[test]
fn an_unknown_alg_is_refused() {
    let sealed = key().seal(&inner(), &mut rand::thread_rng());
    let at = sealed.windows(10).position(|w| w == aead::AEAD_ALG.as_bytes()).unwrap();
    for other in [&b"xaes256gcn"[..], b"hs256\0gcmx"] {
        let mut t = sealed.clone();
        t[at..at + 10].copy_from_slice(other);
        assert!(matches!(key().open(&t), Err(WireError::Decrypt(_))), "{other:?}");
    }
}

#[test]
fn wrong_key_is_a_decrypt_error() {
    let sealed = key().seal(&inner(), &mut rand::thread_rng());
    assert!(matches!(other_key().open(&sealed), Err(WireError::Decrypt(_))));
    let sealed = other_key().seal(&inner(), &mut rand::thread_rng());
    assert!(matches!(key().open(&sealed), Err(WireError::Decrypt(_))));
}

#[test]
fn every_single_bit_flip_is_rejected() {
    for (sealed, inner) in
        [inner(), Vec::new(), vec![1; 16]].into_iter().flat_map(|i| both_versions(&i).map(|(s, _)| (s, i.clone())))
    {
        assert_eq!(key().open(&sealed).unwrap(), inner);
        let mut flips = 0;
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut t = sealed.clone();
                t[i] ^= 1 << bit;
                match key().open(&t) {
                    Err(WireError::Decrypt(_)) | Err(WireError::Malformed(_)) => {}
                    other => panic!("flip of bit {bit} at byte {i} gave {other:?}"),
                }
                flips += 1;
            }
        }
        assert_eq!(flips, sealed.len() * 8);
    }
}

#[test]
fn truncation_extension_and_tag_swaps_are_rejected() {
    for ((sealed, tag_len), (other, _)) in both_versions(&inner()).into_iter().zip(both_versions(&inner())) {
        for n in 0..sealed.len() {
            assert!(key().open(&sealed[..n]).is_err(), "truncated to {n}");
        }
        for extra in [&[0u8][..], &[0; 16], &[0; 32]] {
            let mut t = sealed.clone();
            t.extend_from_slice(extra);
            assert!(key().open(&t).is_err());
        }
        // A valid tag from another datagram does not transfer.
        let mut t = sealed.clone();
        let n = t.len();
        t[n - tag_len..].copy_from_slice(&other[other.len() - tag_len..]);
        assert!(matches!(key().open(&t), Err(WireError::Decrypt(_))));
    }
}

#[test]
fn plaintext_and_legacy_datagrams_do_not_open() {
    let plain = inner();
    assert!(!is_secure_datagram(&plain));
    assert!(matches!(key().open(&plain), Err(WireError::Decrypt(_))));
    // A legacy-encrypted datagram (enc: true, no alg) is not ours either.
    let legacy = LegacyKey::from_passphrase("NSA-KEY");
    let meta = Meta { v: 3, seq: 0, seq_len: 1, seq_id: "ef".repeat(20), seq_end: true, enc: true, ..Meta::default() };
    let mut outer = Vec::new();
    encode_datagram(&meta, &legacy.encrypt(&plain), &mut outer);
    assert!(!is_secure_datagram(&outer));
    assert!(matches!(key().open(&outer), Err(WireError::Decrypt(_))));
    // And a sealed datagram is not a legacy one: the legacy key cannot read it.
    let sealed = key().seal(&plain, &mut rand::thread_rng());
    let d = decode_datagram(&sealed).unwrap();
    assert!(d.meta.enc);
    match legacy.decrypt(d.body) {
        Err(WireError::Decrypt(_)) => {}
        Ok(p) => assert!(decode_datagram(&p).is_err() || p != plain),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn legacy_vectors_do_not_open_with_the_secure_scheme() {
    let cases = vectors::load();
    let mut checked = 0;
    for case in &cases {
        let pass = case.encrypt.as_deref().unwrap_or("NSA-KEY");
        let k = SecureKey::derive_with_iterations(pass, 1000);
        for buf in &case.datagrams {
            assert!(!is_secure_datagram(buf));
            assert!(matches!(k.open(buf), Err(WireError::Decrypt(_))), "{}", case.name);
            checked += 1;
        }
    }
    assert!(checked >= 8);
}

#[test]
fn keys_are_deterministic_and_debug_redacts_them() {
    let a = SecureKey::derive_with_iterations("NSA-KEY", 1000);
    let sealed = a.seal(b"x", &mut rand::thread_rng());
    assert_eq!(key().open(&sealed).unwrap(), b"x");
    assert_eq!(format!("{a:?}"), "SecureKey(..)");
    let enc = eventcast_engine::protocol::Encryption::Secure(a);
    assert_eq!(format!("{enc:?}"), "Secure(..)");
}

#[test]
fn tampered_version_is_a_decrypt_error_not_a_version_error() {
    // Without the key, changing v can never make a node report EPRVERSION.
    for (mut sealed, _) in both_versions(b"inner") {
        assert_eq!(&sealed[7..9], b"v\0"); // header(2) len(4) type(1), then key "v"
        sealed[9] = 4;
        assert!(matches!(key().open(&sealed), Err(WireError::Decrypt(_))));
    }
}
