//! Version 1 of the authenticated scheme (`alg: "hs256"`): AES-128-CBC with
//! a fresh random IV per datagram, then HMAC-SHA256 over everything the
//! receiver relies on (encrypt-then-MAC, full 32-byte tag). Nodes no longer
//! send it; they still open it for one release, so a group can be upgraded
//! node by node (see [`super`]).
//!
//! ```text
//! u16 BE metaLength
//! meta  {v: 3, seq: 0, seqLen: 1, seqId: <40 random hex>, seqEnd: true, enc: true, alg: "hs256"}
//! body  IV (16) || AES-128-CBC/PKCS#7(inner datagram) || HMAC-SHA256 tag (32)
//! tag = HMAC(mac_key, header || meta || IV || ciphertext)   (every byte before the tag)
//! ```
//!
//! The receiver verifies the tag in constant time *before* decrypting.

use super::outer::{check_version, write_outer_meta};
use crate::error::{Malformed, WireError};
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use bson::raw::RawDocument;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type Enc = cbc::Encryptor<aes::Aes128>;
type Dec = cbc::Decryptor<aes::Aes128>;
pub(super) type HmacSha256 = Hmac<Sha256>;

/// Value of the outer meta's `alg` for this version (a meta field value, so
/// `meta` owns it: it classifies datagrams by it).
pub use crate::wire::meta::SECURE_ALG as HS256_ALG;
/// IV length.
pub const IV_LEN: usize = 16;
/// Authentication tag length (full HMAC-SHA256).
pub const TAG_LEN: usize = 32;
/// Encoded size of the outer header and meta: 2 + 115 bytes.
pub const OUTER_META_LEN: usize = 2 + 115;

/// Size of an hs256 datagram for an inner datagram of `inner_len` bytes:
/// header, meta, IV, ciphertext (padded to the next whole block), tag.
pub const fn sealed_len(inner_len: usize) -> usize {
    OUTER_META_LEN + IV_LEN + (inner_len / 16 + 1) * 16 + TAG_LEN
}

/// HMAC-SHA256 keyed with `key` (HMAC accepts keys of every length).
pub(super) fn hmac_with_key(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// The keys of this version, expanded once.
pub(super) struct Hs256 {
    /// The AES key with its round keys expanded once (not per datagram).
    cipher: aes::Aes128,
    /// HMAC state already keyed with the MAC key (cloned per datagram).
    pub(super) mac: HmacSha256,
}

impl Hs256 {
    pub(super) fn new(aes_key: &[u8; 16], mac_key: &[u8; 32]) -> Self {
        Hs256 { cipher: aes::Aes128::new(aes_key.into()), mac: hmac_with_key(mac_key) }
    }

    /// The whole hs256 datagram of `inner`; `rng` supplies the IV and `seqId`.
    pub(super) fn seal<R: RngCore + ?Sized>(&self, inner: &[u8], rng: &mut R) -> Vec<u8> {
        let mut out = Vec::with_capacity(sealed_len(inner.len()));
        write_outer_meta(&mut out, rng, HS256_ALG);
        debug_assert_eq!(out.len(), OUTER_META_LEN);
        let mut iv = [0u8; IV_LEN];
        rng.fill_bytes(&mut iv);
        out.extend_from_slice(&iv);
        let ct_start = out.len();
        out.resize(ct_start + (inner.len() / 16 + 1) * 16, 0);
        let ct_len = Enc::inner_iv_init(self.cipher.clone(), &iv.into())
            .encrypt_padded_b2b_mut::<Pkcs7>(inner, &mut out[ct_start..])
            .map(|ct| ct.len())
            .unwrap_or_else(|_| unreachable!("buffer sized for PKCS#7 padding"));
        debug_assert_eq!(ct_start + ct_len, out.len());
        let mut mac = self.mac.clone();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Opens an hs256 datagram whose framing the caller split into `meta`
    /// and `body`: tag first (constant time), then `v`, then decryption.
    pub(super) fn open(&self, datagram: &[u8], meta: &RawDocument, body: &[u8]) -> Result<Vec<u8>, WireError> {
        if body.len() < IV_LEN + 16 + TAG_LEN || !(body.len() - IV_LEN - TAG_LEN).is_multiple_of(16) {
            return Err(Malformed::new("cannot hold IV, whole blocks and tag")
                .field("sealed body")
                .value(body.len())
                .into());
        }
        let (authenticated, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(authenticated);
        mac.verify_slice(tag)
            .map_err(|_| WireError::Decrypt("authentication tag mismatch (wrong key or modified datagram)"))?;
        check_version(meta)?;
        let iv: [u8; IV_LEN] =
            body[..IV_LEN].try_into().map_err(|_| Malformed::new("too short").field("sealed body"))?;
        let ct = &body[IV_LEN..body.len() - TAG_LEN];
        Dec::inner_iv_init(self.cipher.clone(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(|_| WireError::Decrypt("bad padding in an authenticated datagram"))
    }
}
