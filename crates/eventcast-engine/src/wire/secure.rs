//! The authenticated scheme for `encrypt: {key}`: every datagram (events,
//! chunks, repair requests, repairs, heartbeats, beacons) sealed on its own
//! under keys derived from the shared passphrase and bound to the group.
//!
//! ## Versions
//!
//! The outer meta's `alg` says which version sealed a datagram:
//!
//! | `alg` | construction | sent | opened |
//! |---|---|---|---|
//! | `"xaes256gcm"` ([`aead`]) | XAES-256-GCM: one AEAD pass, 162 bytes of overhead | yes | yes |
//! | `"hs256"` ([`hs256`]) | AES-128-CBC, then HMAC-SHA256: two passes, up to 181 bytes | no (until 0.2.x) | for one release |
//!
//! [`SecureKey::seal`] writes the newest version; [`SecureKey::open`] opens
//! both, so nodes of the previous release can be upgraded one by one: their
//! datagrams still reach the upgraded ones. (The reverse does not hold: a
//! node of the previous release refuses the new version, counted in its
//! `rejectedDecrypt`.) Both carry the same outer meta (an `alg` extension on
//! the shape of a 0.1.x encrypted outer datagram, so a 0.1.x node sees an
//! ordinary encrypted message it cannot decrypt, and our nodes tell the
//! schemes apart without trying keys) and the same plaintext: a complete
//! inner datagram (name, sender fields, `sn`, `snAge`, `time`, body, or a
//! chunk of a larger message). Nothing but the fixed outer meta travels in
//! the clear. Replays and stale datagrams are refused by what the inner
//! datagram says (`sn`, `time`), once it is authentic, whichever version
//! carried it (the endpoint's receive path).
//!
//! ## Key derivation
//!
//! `master = PBKDF2-HMAC-SHA256(passphrase, salt = "eventcast/v3/secure",
//! 600 000 iterations, 32 bytes)`, then independent keys by HKDF-Expand
//! (RFC 5869, one block each) with distinct labels:
//! `xaes_key = HMAC(master, "eventcast/v3 xaes-256-gcm key" || 0x01)` (version 2),
//! `aes_key = HMAC(master, "eventcast/v3 aes-128-cbc key" || 0x01)[..16]`,
//! `mac_key = HMAC(master, "eventcast/v3 hmac-sha256 key" || 0x01)` (hs256).
//!
//! ## Group binding
//!
//! A node binds its keys to its group ([`SecureKey::for_group`]): every label
//! is followed by `0x00 || group IPv4 address (4 bytes) || port (u16 BE)`
//! before the HKDF counter byte, e.g. for 239.1.2.3:41234
//! `mac_key = HMAC(master, "eventcast/v3 hmac-sha256 key" || 00 ef010203 a112 || 0x01)`;
//! an IPv6 group by `0x06 || group IPv6 address (16 bytes) || port (u16 BE)`
//! (the leading byte keeps the two families' inputs apart; the scope of a
//! link-local group is the sender's interface, different on every host, so
//! it is not part of the binding).
//! Groups that share a passphrase (same LAN, other address or port) then have
//! unrelated keys: a datagram sealed for one group fails the tag check in
//! every other (`rejected_decrypt`), so it cannot be captured there and
//! replayed here. Binding costs three HMACs per key (the PBKDF2 master is kept
//! and expanded again), nothing per datagram. The unbound keys of
//! [`SecureKey::derive`] (labels alone) serve simulations and tests; the node
//! always binds (`Options::to_config`).
//!
//! Why a fixed protocol salt rather than a random one carried in packets:
//! every member must arrive at the same keys from the shared passphrase
//! alone, without a handshake (multicast, no broker, members come and go),
//! and the expensive derivation must run once per instance, not per packet.
//! A per-packet salt would force a 600 000-iteration derivation on every
//! receive; a per-sender salt would let anyone on the LAN make a node run one
//! derivation per forged salt (a cheap CPU-exhaustion attack) or require a
//! salt-exchange protocol. The cost of a fixed salt is that an attacker can
//! precompute guesses against *all* eventcast deployments at once; the
//! domain-specific salt still defeats generic precomputed tables, and the
//! 600 000 iterations (OWASP 2023 guidance for PBKDF2-HMAC-SHA256) keep
//! per-guess cost high. A strong passphrase remains the user's job. (The
//! random *session* of version 2 is another matter: it selects a subkey by
//! two AES blocks, not a passphrase derivation; see [`aead`].)

pub mod aead;
pub mod hs256;
mod outer;

use crate::error::WireError;
use aead::Aead;
use bson::raw::RawBsonRef;
use hmac::Mac;
use hs256::{hmac_with_key, Hs256};
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use std::net::SocketAddr;

/// Value of the outer meta's `alg` for version 1, `"hs256"` ([`hs256`]).
pub use super::meta::SECURE_ALG;
/// The fixed protocol salt of the key derivation (see the module docs).
pub const SECURE_SALT: &[u8] = b"eventcast/v3/secure";
/// PBKDF2-HMAC-SHA256 iterations of [`SecureKey::derive`].
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// Size of a datagram [`SecureKey::seal`] makes of an inner datagram of
/// `inner_len` bytes (the current version, [`aead::sealed_len`]).
pub use aead::sealed_len;
/// Largest overhead [`SecureKey::seal`] adds to an inner datagram (162 bytes).
pub const SEAL_OVERHEAD_MAX: usize = aead::SEAL_OVERHEAD;

/// Keys of the authenticated scheme, derived once per instance. Cheap to
/// clone (shared); clones share the sender session of version 2, and with it
/// its nonce counter (see [`aead`]).
#[derive(Clone)]
pub struct SecureKey(std::sync::Arc<Keys>);

struct Keys {
    /// The PBKDF2 output, kept so [`SecureKey::for_group`] can expand group
    /// keys without the slow derivation.
    master: [u8; 32],
    /// The raw keys, kept for the derivation and golden tests only.
    #[cfg(test)]
    raw: RawKeys,
    /// Version 2, what this key seals with.
    aead: Aead,
    /// Version 1, still opened.
    hs256: Hs256,
}

#[cfg(test)]
struct RawKeys {
    aes: [u8; 16],
    xaes: [u8; 32],
}

impl std::fmt::Debug for SecureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("SecureKey(..)")
    }
}

/// HKDF-Expand (RFC 5869) of a single block: `HMAC(prk, info || 0x01)`.
fn expand(prk: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let mut m = hmac_with_key(prk);
    m.update(info);
    m.update(&[1]);
    m.finalize().into_bytes().into()
}

impl SecureKey {
    /// Derives the keys from `passphrase` with [`PBKDF2_ITERATIONS`]
    /// iterations. Deliberately slow (hundreds of milliseconds in release
    /// builds): call it once per instance, off the JS thread.
    pub fn derive(passphrase: &str) -> Self {
        Self::derive_with_iterations(passphrase, PBKDF2_ITERATIONS)
    }

    /// [`derive`](Self::derive) with another iteration count. For tests and
    /// simulations only: members with different counts cannot talk, and
    /// fewer iterations make passphrase guessing cheaper.
    pub fn derive_with_iterations(passphrase: &str, iterations: u32) -> Self {
        let mut master = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), SECURE_SALT, iterations.max(1), &mut master);
        Self::expand_keys(master, &[])
    }

    /// The keys of this passphrase bound to the multicast group `group`
    /// (address and port, IPv4 or IPv6; see the module docs): datagrams
    /// sealed for another group fail [`open`](Self::open). Cheap (three
    /// HMACs and key schedules): the slow derivation is not repeated. The
    /// result has a sender session of its own.
    pub fn for_group(&self, group: SocketAddr) -> SecureKey {
        let mut info = Vec::with_capacity(19);
        match group {
            SocketAddr::V4(g) => {
                info.push(0x00);
                info.extend_from_slice(&g.ip().octets());
            }
            SocketAddr::V6(g) => {
                info.push(0x06);
                info.extend_from_slice(&g.ip().octets());
            }
        }
        info.extend_from_slice(&group.port().to_be_bytes());
        Self::expand_keys(self.0.master, &info)
    }

    /// HKDF-Expand of every key, with `group` (empty, or `family || ip || port`)
    /// after each label; a fresh sender session from the OS's generator.
    fn expand_keys(master: [u8; 32], group: &[u8]) -> Self {
        let info = |label: &[u8]| [label, group].concat();
        let xaes = expand(&master, &info(b"eventcast/v3 xaes-256-gcm key"));
        let aes_full = expand(&master, &info(b"eventcast/v3 aes-128-cbc key"));
        let mac_key = expand(&master, &info(b"eventcast/v3 hmac-sha256 key"));
        let mut aes = [0u8; 16];
        aes.copy_from_slice(&aes_full[..16]);
        // The session comes from the OS (through the thread's reseeding
        // CSPRNG), not from the endpoint's seeded generator: its uniqueness
        // is what keeps nonces from repeating (see `aead`).
        let mut session = [0u8; crate::wire::xaes::SALT_LEN];
        rand::thread_rng().fill_bytes(&mut session);
        SecureKey(std::sync::Arc::new(Keys {
            master,
            #[cfg(test)]
            raw: RawKeys { aes, xaes },
            aead: Aead::new(&xaes, session),
            hs256: Hs256::new(&aes, &mac_key),
        }))
    }

    /// Encrypts and authenticates a complete inner datagram with the current
    /// version (`alg: "xaes256gcm"`); returns the complete outer datagram,
    /// ready to send (see [`aead`] for the layout). `rng` supplies the outer
    /// `seqId`; the nonce is the key's session and counter.
    pub fn seal<R: RngCore + CryptoRng + ?Sized>(&self, inner: &[u8], rng: &mut R) -> Vec<u8> {
        self.0.aead.seal(inner, rng)
    }

    /// [`seal`](Self::seal) in place: `buf` holds the inner datagram and
    /// becomes the sealed one (no allocation when it has
    /// [`SEAL_OVERHEAD_MAX`] bytes of spare capacity), so a sender can seal
    /// into the buffers it reuses.
    pub fn seal_in_place<R: RngCore + CryptoRng + ?Sized>(&self, buf: &mut Vec<u8>, rng: &mut R) {
        self.0.aead.seal_in_place(buf, rng)
    }

    /// Seals with version 1 (`alg: "hs256"`, [`hs256`]), as a node of the
    /// previous release does. Nodes no longer send it; it stays for as long
    /// as [`open`](Self::open) accepts it, so tests can play such a node.
    /// `rng` supplies the IV and the outer `seqId`.
    pub fn seal_hs256<R: RngCore + CryptoRng + ?Sized>(&self, inner: &[u8], rng: &mut R) -> Vec<u8> {
        self.0.hs256.seal(inner, rng)
    }

    /// Authenticates and decrypts a sealed datagram of either version;
    /// returns the inner datagram's bytes. The tag is checked (in constant
    /// time) before any decryption or any use of the meta, and nothing is
    /// allocated for a datagram that fails. Errors: `Malformed` for broken
    /// framing or a body of impossible length; `Decrypt` for a datagram not
    /// sealed with this scheme (plaintext, legacy, an unknown `alg`) or
    /// whose tag does not verify (wrong key, any modification); `Version`
    /// only for an *authentic* datagram with a version other than 3, so
    /// unauthenticated input can never make a node report a version error.
    pub fn open(&self, datagram: &[u8]) -> Result<Vec<u8>, WireError> {
        let (meta, body) = super::framing::split_datagram(datagram)?;
        if !matches!(meta.get("enc"), Ok(Some(RawBsonRef::Boolean(true)))) {
            return Err(WireError::Decrypt("plaintext datagram where authenticated encryption is required"));
        }
        match meta.get("alg") {
            Ok(Some(RawBsonRef::String(aead::AEAD_ALG))) => self.0.aead.open(datagram, meta, body),
            Ok(Some(RawBsonRef::String(SECURE_ALG))) => self.0.hs256.open(datagram, meta, body),
            _ => Err(WireError::Decrypt("datagram is not sealed with the authenticated scheme")),
        }
    }
}

/// True when `datagram`'s meta marks it as sealed with this scheme (`enc:
/// true` and the `alg` of either version). Cheap; says nothing about
/// authenticity.
pub fn is_secure_datagram(datagram: &[u8]) -> bool {
    super::meta::encryption(datagram) == Some(super::meta::Encryption::Secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ids::hex;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Python: `hashlib.pbkdf2_hmac('sha256', pass, b'eventcast/v3/secure', n, 32)`
    /// then `hmac.new(master, label + b'\x01', sha256)` for each of the three labels.
    #[test]
    fn derivation_matches_reference_with_the_real_600k_iterations() {
        let k = SecureKey::derive("correct horse battery staple");
        assert_eq!(hex(&k.0.raw.aes), "256ad85f787cfcc2e1aee1e9c8df830a");
        assert_eq!(hex(&k.0.raw.xaes), "0ed25a08632ba7411dbd59bbc42b0af115598367997adc3785efee2fd2117725");
        let mut m = k.0.hs256.mac.clone();
        let mut r = hmac_with_key(&unhex("dfb2fb0be57b1c46643925b40796d366f2e350394284bae598636acb8e2debc0"));
        m.update(b"x");
        r.update(b"x");
        assert_eq!(m.finalize().into_bytes(), r.finalize().into_bytes());
    }

    #[test]
    fn derivation_with_iterations_matches_reference() {
        let k = SecureKey::derive_with_iterations("k", 1000);
        assert_eq!(hex(&k.0.raw.aes), "92c031158f49815eafb28c08fb88da39");
        assert_eq!(hex(&k.0.raw.xaes), "9ace4404501b21f91e20aa5db91c0547e5ce3c2aa285fbb72379391d916a53d8");
        let mut m = k.0.hs256.mac.clone();
        let mut r = hmac_with_key(&unhex("025aeaee3236534e9cf2fbe42108987cd0500b2fa672aa10243ddb9855fe6fa7"));
        m.update(b"y");
        r.update(b"y");
        assert_eq!(m.finalize().into_bytes(), r.finalize().into_bytes());
    }

    /// Python: as above, then
    /// `hmac.new(master, label + b'\x00' + bytes([239, 1, 2, 3]) + (41234).to_bytes(2, 'big') + b'\x01', sha256)`.
    #[test]
    fn group_binding_matches_reference_and_separates_groups() {
        let k = SecureKey::derive_with_iterations("k", 1000);
        let g = k.for_group("239.1.2.3:41234".parse().unwrap());
        assert_eq!(hex(&g.0.raw.aes), "e41c347b4028f5beea3d8a7ce1523ea5");
        assert_eq!(hex(&g.0.raw.xaes), "f8cd4efe94dc584edc4ed0524dd65110497055d192594a68f2ed11c1dcc08543");
        let mut m = g.0.hs256.mac.clone();
        let mut r = hmac_with_key(&unhex("a12eff696e8913a1fd5cf7b37a68712e91cedad1461e9b0b983f2e45a4c9b263"));
        m.update(b"z");
        r.update(b"z");
        assert_eq!(m.finalize().into_bytes(), r.finalize().into_bytes());
        // Binding again from the bound key gives the same keys (the master is kept).
        assert_eq!(hex(&g.for_group("239.1.2.3:41234".parse().unwrap()).0.raw.aes), hex(&g.0.raw.aes));
        let mut rng = rand::thread_rng();
        let sealed = g.seal(b"inner", &mut rng);
        assert_eq!(g.open(&sealed).unwrap(), b"inner");
        for other in ["239.1.2.3:41235", "239.1.2.4:41234", "224.0.0.1:41234"] {
            let o = k.for_group(other.parse().unwrap());
            assert!(matches!(o.open(&sealed), Err(WireError::Decrypt(_))), "{other}");
            assert!(matches!(g.open(&o.seal(b"x", &mut rng)), Err(WireError::Decrypt(_))), "{other}");
        }
        assert!(matches!(k.open(&sealed), Err(WireError::Decrypt(_))));
    }

    /// Python: `info = b'\x06' + ipaddress.IPv6Address('ff15::ec:1').packed + (41234).to_bytes(2, 'big')`,
    /// then `hmac.new(master, label + info + b'\x01', sha256)` for both labels.
    #[test]
    fn ipv6_group_binding_matches_reference_ignores_the_scope_and_separates_families() {
        let k = SecureKey::derive_with_iterations("k", 1000);
        let g = k.for_group("[ff15::ec:1]:41234".parse().unwrap());
        assert_eq!(hex(&g.0.raw.aes), "ea186ae85efa7f8fd32ce9551a61f155");
        assert_eq!(hex(&g.0.raw.xaes), "ff265734111319c77175e5eb3be0f06ecd6a8cc258303e35a2f878b5ede87b67");
        let mut m = g.0.hs256.mac.clone();
        let mut r = hmac_with_key(&unhex("bdb0d10eaa603caf5328f8d100986ca9897b443602b152e53c43c509a170b221"));
        m.update(b"z");
        r.update(b"z");
        assert_eq!(m.finalize().into_bytes(), r.finalize().into_bytes());
        // The scope id (the sender's interface index) differs from host to host: not bound.
        let scoped = k.for_group("[ff12::ec:1%3]:41234".parse().unwrap());
        assert_eq!(hex(&scoped.0.raw.aes), hex(&k.for_group("[ff12::ec:1%7]:41234".parse().unwrap()).0.raw.aes));
        let mut rng = rand::thread_rng();
        let sealed = g.seal(b"inner", &mut rng);
        // Other groups, another port, and the IPv4-mapped form of an IPv4 group's bytes all differ.
        for other in ["[ff15::ec:2]:41234", "[ff15::ec:1]:41235", "[ff12::ec:1]:41234", "[::ffff:239.1.2.3]:41234"] {
            let o = k.for_group(other.parse().unwrap());
            assert!(matches!(o.open(&sealed), Err(WireError::Decrypt(_))), "{other}");
        }
        let v4 = k.for_group("239.1.2.3:41234".parse().unwrap());
        let mapped = k.for_group("[::ffff:239.1.2.3]:41234".parse().unwrap());
        assert_ne!(hex(&v4.0.raw.aes), hex(&mapped.0.raw.aes));
    }

    /// A whole hs256 datagram (version 1) under a group-bound key, with the IV and
    /// `seqId` from a seeded generator. The ciphertext and tag were checked
    /// independently: `openssl enc -aes-128-cbc -K e41c347b4028f5beea3d8a7ce1523ea5 -iv <IV>`
    /// of the inner bytes, then `openssl dgst -sha256 -mac HMAC -macopt
    /// hexkey:a12eff69…b263` over every byte before the tag.
    #[test]
    fn golden_hs256_datagram_for_a_group() {
        use rand::SeedableRng;
        let k = SecureKey::derive_with_iterations("k", 1000).for_group("239.1.2.3:41234".parse().unwrap());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let sealed = k.seal_hs256(b"inner datagram bytes", &mut rng);
        assert_eq!(hex(&sealed), GOLDEN_SEALED);
        assert_eq!(k.open(&unhex(GOLDEN_SEALED)).unwrap(), b"inner datagram bytes");
    }

    const GOLDEN_SEALED: &str = concat!(
        "0073", // metaLength 115
        "7300000010760003000000107365710000000000107365714c656e00010000000273657149640029000000626566626138366165396530633230",
        "373836356637653234653833343964346563646263386230660008736571456e64000108656e63000102616c67000600000068733235360000", // meta
        "4632842499a0dfa60568e28ab621629e", // IV
        "5bacc517e5d80f871b29f98a55ea6f2fd2210a892b5957132c77808dc1784869", // ciphertext
        "3714b89c7fa95265ed4cd7f14de210c59d1cc2b7985364de9790aaec38327f95", // tag
    );

    #[test]
    fn sealed_layout_of_both_versions() {
        let k = SecureKey::derive_with_iterations("k", 1);
        let mut rng = rand::thread_rng();
        for n in [0usize, 1, 15, 16, 17, 300] {
            let inner = vec![7u8; n];
            let new = k.seal(&inner, &mut rng);
            let old = k.seal_hs256(&inner, &mut rng);
            assert_eq!(new.len(), sealed_len(n));
            assert_eq!(new.len() - n, SEAL_OVERHEAD_MAX);
            assert_eq!(old.len(), hs256::sealed_len(n));
            for (s, alg) in [(&new, aead::AEAD_ALG), (&old, SECURE_ALG)] {
                assert!(is_secure_datagram(s));
                let d = crate::wire::decode_datagram(s).unwrap();
                assert!(d.meta.enc && d.meta.seq == 0 && d.meta.seq_len == 1 && d.meta.seq_end);
                assert!(d.meta.name.is_none() && d.meta.id.is_none());
                assert_eq!(d.meta.seq_id.len(), 40);
                let (meta, _) = crate::wire::split_datagram(s).unwrap();
                assert_eq!(meta.get_str("alg").unwrap(), alg);
                assert_eq!(k.open(s).unwrap(), inner);
            }
        }
    }

    #[test]
    fn authentic_other_version_in_hs256_is_reported_after_the_tag_verifies() {
        let k = SecureKey::derive_with_iterations("k", 1);
        let mut s = k.seal_hs256(b"inner", &mut rand::thread_rng());
        assert_eq!(&s[7..9], b"v\0");
        s[9] = 4;
        let n = s.len() - hs256::TAG_LEN;
        let mut m = k.0.hs256.mac.clone();
        m.update(&s[..n]);
        let tag = m.finalize().into_bytes();
        s[n..].copy_from_slice(&tag);
        assert_eq!(k.open(&s), Err(WireError::Version(4)));
    }
}
