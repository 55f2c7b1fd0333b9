//! Version 2's layout, golden bytes and nonces.

use super::*;
use crate::wire::ids::hex;
use rand::SeedableRng;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// `xaes_key` of passphrase "k", 1,000 iterations, bound to 239.1.2.3:41234
/// (the Python reference in `secure`'s derivation tests).
const GROUP_KEY: &str = "f8cd4efe94dc584edc4ed0524dd65110497055d192594a68f2ed11c1dcc08543";

fn group_aead(session: [u8; SALT_LEN]) -> Aead {
    Aead::new(&unhex(GROUP_KEY).try_into().unwrap(), session)
}

/// Two datagrams of one session (counters 0 and 1), `seqId` from a seeded
/// generator. Checked independently: Python `cryptography`, XAES-256-GCM from
/// AES-256-ECB and `AESGCM` as the C2SP spec says (see `wire::xaes`), with
/// key `GROUP_KEY`, the body's nonce, and every byte before it as the AAD.
#[test]
fn golden_datagrams_of_one_session() {
    let a = group_aead(std::array::from_fn(|i| 0x10 + i as u8));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let first = a.seal(b"inner datagram bytes", &mut rng);
    let second = a.seal(b"inner datagram bytes", &mut rng);
    assert_eq!(hex(&first), GOLDEN_FIRST);
    assert_eq!(hex(&second), GOLDEN_SECOND);
    // Another sender (another session) of the group opens both.
    let other = group_aead([0xee; SALT_LEN]);
    for d in [GOLDEN_FIRST, GOLDEN_SECOND] {
        let d = unhex(d);
        let (meta, body) = crate::wire::split_datagram(&d).unwrap();
        assert_eq!(other.open(&d, meta, body).unwrap(), b"inner datagram bytes");
        assert_eq!(a.open(&d, meta, body).unwrap(), b"inner datagram bytes");
    }
}

const GOLDEN_FIRST: &str = concat!(
    "0078", // metaLength 120
    "7800000010760003000000107365710000000000107365714c656e000100000002736571496400290000006265666261383661653965306332303738",
    "36356637653234653833343964346563646263386230660008736571456e64000108656e63000102616c67000b0000007861657332353667636d0000", // meta, alg "xaes256gcm"
    "101112131415161718191a1b", // session
    "000000000000000000000000", // 0x00000000 || counter
    "22b40b445c3235014be0d59d837c8725d4470171", // ciphertext
    "3d3e9cf2141389cd1d605b8d68ad444b", // tag
);
const GOLDEN_SECOND: &str = concat!(
    "0078", // metaLength 120
    "7800000010760003000000107365710000000000107365714c656e000100000002736571496400290000003436333238343234393961306466613630",
    "35363865323861623632313632396561643631633234350008736571456e64000108656e63000102616c67000b0000007861657332353667636d0000", // meta, alg "xaes256gcm"
    "101112131415161718191a1b", // session
    "000000000000000000000001", // 0x00000000 || counter
    "01d1f1a4dea99eb34dc3c3210634aa1768b77df2", // ciphertext
    "d9ccce5ff863df676079ae0d4746eb5e", // tag
);

/// In place, in a buffer with room for the overhead: the same datagram as
/// `seal` would make, and no reallocation.
#[test]
fn seal_in_place_reuses_the_buffer() {
    let a = group_aead(std::array::from_fn(|i| 0x10 + i as u8));
    let b = group_aead(std::array::from_fn(|i| 0x10 + i as u8));
    let mut buf = Vec::with_capacity(20 + SEAL_OVERHEAD);
    buf.extend_from_slice(b"inner datagram bytes");
    let at = buf.as_ptr();
    a.seal_in_place(&mut buf, &mut rand::rngs::StdRng::seed_from_u64(7));
    assert_eq!(buf.as_ptr(), at, "reallocated");
    assert_eq!(buf, b.seal(b"inner datagram bytes", &mut rand::rngs::StdRng::seed_from_u64(7)));
    assert_eq!(hex(&buf), GOLDEN_FIRST);
}

#[test]
fn nonces_are_the_session_and_a_counter_shared_by_clones() {
    let key = crate::wire::SecureKey::derive_with_iterations("k", 1);
    let clone = key.clone();
    let mut rng = rand::thread_rng();
    let nonce = |d: &[u8]| d[OUTER_META_LEN..OUTER_META_LEN + NONCE_LEN].to_vec();
    let mut seen = std::collections::HashSet::new();
    for i in 0..100u64 {
        let k = if i % 2 == 0 { &key } else { &clone };
        let n = nonce(&k.seal(b"x", &mut rng));
        assert_eq!(n[..SALT_LEN], key.0.aead.session);
        assert_eq!(n[SALT_LEN..], [&[0u8; 4][..], &i.to_be_bytes()].concat());
        assert!(seen.insert(n));
    }
    // Each key made by the derivation or a binding draws a session of its own.
    let sessions: std::collections::HashSet<_> = [
        key.0.aead.session,
        key.for_group("239.1.2.3:41234".parse().unwrap()).0.aead.session,
        key.for_group("239.1.2.3:41234".parse().unwrap()).0.aead.session,
        crate::wire::SecureKey::derive_with_iterations("k", 1).0.aead.session,
    ]
    .into();
    assert_eq!(sessions.len(), 4);
}

/// Reseals `d` after `edit` changed its outer meta, as a member with the key
/// could: the tag then verifies.
fn reseal(a: &Aead, d: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let (_, body) = crate::wire::split_datagram(d).unwrap();
    let inner = {
        let (meta, body) = crate::wire::split_datagram(d).unwrap();
        a.open(d, meta, body).unwrap()
    };
    let mut out = d[..d.len() - body.len()].to_vec();
    edit(&mut out);
    let aad_len = out.len();
    out.extend_from_slice(&body[..NONCE_LEN]);
    out.extend_from_slice(&inner);
    let (head, ct) = out.split_at_mut(aad_len + NONCE_LEN);
    let nonce = Nonce::<Aes256Gcm>::from_slice(&head[aad_len + SALT_LEN..]);
    let tag = a.own.encrypt_in_place_detached(nonce, &head[..aad_len], ct).unwrap();
    out.extend_from_slice(&tag);
    out
}

#[test]
fn authentic_other_version_is_reported_after_the_tag_verifies() {
    let a = group_aead([1; SALT_LEN]);
    let d = a.seal(b"inner", &mut rand::thread_rng());
    assert_eq!(&d[7..9], b"v\0");
    let mut forged = d.clone();
    forged[9] = 4;
    let (meta, body) = crate::wire::split_datagram(&forged).unwrap();
    assert!(matches!(a.open(&forged, meta, body), Err(WireError::Decrypt(_))), "unauthenticated: no version error");
    let authentic = reseal(&a, &d, |m| m[9] = 4);
    let (meta, body) = crate::wire::split_datagram(&authentic).unwrap();
    assert_eq!(a.open(&authentic, meta, body), Err(WireError::Version(4)));
}

#[test]
fn short_bodies_are_malformed() {
    let a = group_aead([1; SALT_LEN]);
    let d = a.seal(b"", &mut rand::thread_rng());
    assert_eq!(d.len(), OUTER_META_LEN + NONCE_LEN + TAG_LEN);
    let (meta, body) = crate::wire::split_datagram(&d).unwrap();
    assert_eq!(a.open(&d, meta, body).unwrap(), b"");
    for n in 0..NONCE_LEN + TAG_LEN {
        let cut = &d[..OUTER_META_LEN + n];
        let (meta, body) = crate::wire::split_datagram(cut).unwrap();
        assert!(matches!(a.open(cut, meta, body), Err(WireError::Malformed(_))), "{n}");
    }
}
