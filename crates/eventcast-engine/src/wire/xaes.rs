//! XAES-256-GCM (C2SP, <https://c2sp.org/XAES-256-GCM>): AES-256-GCM with
//! a 192-bit nonce, built from the standard parts of RustCrypto (`aes`,
//! `aes-gcm`) and nothing new. The first 96 bits of the nonce select a
//! subkey by NIST SP 800-108r1 KDF in counter mode with AES-256-CMAC as the
//! PRF (two AES blocks); the last 96 bits are the AES-256-GCM nonce under
//! that subkey.
//!
//! Why this rather than AES-GCM with a 96-bit nonce: every member of a group
//! shares one key and no member can coordinate nonces with the others, so
//! AES-GCM's own nonce would have to be random, and random 96-bit nonces
//! collide after about 2^32 datagrams per key over the whole group (NIST's
//! limit), a number a busy group reaches. The subkey half of the nonce lets
//! each sender pick a random 96-bit *session* once and count in the other
//! half (see [`super::secure`] for the argument).
//!
//! Why not AES-GCM-SIV: it only softens a nonce reuse (to leaking equal
//! plaintexts) and costs a second pass over the data (POLYVAL, then CTR);
//! here a reuse cannot happen in the first place, and one pass is the point.
//!
//! The spec's own vectors are in the tests, with a reference computed
//! independently (Python `cryptography`, AES-ECB + AES-GCM).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes256;
use aes_gcm::Aes256Gcm;

/// Length of a whole XAES-256-GCM nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the half of the nonce that selects the subkey.
pub(crate) const SALT_LEN: usize = 12;

/// An XAES-256-GCM key: AES-256 with its round keys expanded, and the CMAC
/// subkey `K1` of the derivation, both computed once.
pub(crate) struct Xaes {
    aes: Aes256,
    k1: [u8; 16],
}

impl Xaes {
    /// Expands `key` (AES key schedule, `L = AES(0)`, `K1 = dbl(L)`).
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let aes = Aes256::new(key.into());
        let mut l = aes::Block::default();
        aes.encrypt_block(&mut l);
        // K1 = L << 1, reduced by the GF(2^128) polynomial when a bit falls out (CMAC's dbl).
        let mut k1 = [0u8; 16];
        for i in 0..16 {
            let carry = if i < 15 { l[i + 1] >> 7 } else { 0 };
            k1[i] = (l[i] << 1) | carry;
        }
        k1[15] ^= 0x87 * (l[0] >> 7);
        Xaes { aes, k1 }
    }

    /// The AES-256-GCM cipher of the subkey that the first half of a nonce
    /// selects: `Kx = AES(M1 ^ K1) || AES(M2 ^ K1)`, `Mi = 0x00 || i || 'X' || 0x00 || salt`.
    /// Costs two AES blocks and one AES-256-GCM key setup.
    pub(crate) fn subkey(&self, salt: &[u8; SALT_LEN]) -> Aes256Gcm {
        let mut m = [aes::Block::default(), aes::Block::default()];
        for (i, block) in m.iter_mut().enumerate() {
            block[..4].copy_from_slice(&[0x00, i as u8 + 1, b'X', 0x00]);
            block[4..].copy_from_slice(salt);
            for (b, k) in block.iter_mut().zip(self.k1) {
                *b ^= k;
            }
        }
        self.aes.encrypt_blocks(&mut m);
        let mut kx = [0u8; 32];
        kx[..16].copy_from_slice(&m[0]);
        kx[16..].copy_from_slice(&m[1]);
        Aes256Gcm::new(&kx.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::{AeadInPlace, Nonce};

    fn seal(key: [u8; 32], nonce: &[u8; 24], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let x = Xaes::new(&key);
        let salt: [u8; 12] = nonce[..12].try_into().unwrap();
        let mut buf = plaintext.to_vec();
        let tag = x
            .subkey(&salt)
            .encrypt_in_place_detached(Nonce::<Aes256Gcm>::from_slice(&nonce[12..]), aad, &mut buf)
            .unwrap();
        buf.extend_from_slice(&tag);
        buf
    }

    fn hex(b: &[u8]) -> String {
        crate::wire::ids::hex(b)
    }

    /// The two vectors of the C2SP specification.
    #[test]
    fn c2sp_vectors() {
        let n = b"ABCDEFGHIJKLMNOPQRSTUVWX";
        assert_eq!(
            hex(&seal([1; 32], n, b"XAES-256-GCM", b"")),
            "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"
        );
        assert_eq!(
            hex(&seal([3; 32], n, b"XAES-256-GCM", b"c2sp.org/XAES-256-GCM")),
            "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"
        );
    }

    /// A longer message whose `L` has its top bit set (so `K1` takes the
    /// reduction), checked against an independent implementation: Python
    /// `cryptography`, `Kx` from AES-256-ECB as the spec says, then `AESGCM(Kx)`.
    #[test]
    fn reference_with_the_reduction_in_k1() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let x = Xaes::new(&key);
        let mut l = aes::Block::default();
        x.aes.encrypt_block(&mut l);
        assert_eq!(l[0] >> 7, 1, "this key's L must have its top bit set");
        let nonce: [u8; 24] = std::array::from_fn(|i| 0xa0 + i as u8);
        let pt: Vec<u8> = (0..100u8).collect();
        assert_eq!(hex(&seal(key, &nonce, &pt, b"eventcast")), REFERENCE);
    }

    const REFERENCE: &str = concat!(
        "ccad58f7abd2e81dee0f8a093c3dc00e842cd32882245f4942be349dca6ab40eb914b284763d016d6f2da2be93208bfd8459e7fe1a93c144",
        "bb77939ef6b6a4b4dc6e56142a438ec58eaa08e020c6cacf823fce490eed0be99cc62dec638c56cf292de246bf7f462a0ba71221192518689c508021",
    );
}
