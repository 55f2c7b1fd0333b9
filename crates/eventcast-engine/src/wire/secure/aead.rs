//! Version 2 of the authenticated scheme (`alg: "xaes256gcm"`), what nodes
//! send: one AEAD pass, XAES-256-GCM (`wire/xaes.rs`), instead of
//! CBC then HMAC.
//!
//! ```text
//! u16 BE metaLength
//! meta  {v: 3, seq: 0, seqLen: 1, seqId: <40 random hex>, seqEnd: true, enc: true, alg: "xaes256gcm"}
//! body  nonce (24) || ciphertext (as long as the inner datagram) || GCM tag (16)
//! nonce = session (12, random per sender key) || 0x00000000 || counter (u64 BE)
//! ciphertext, tag = XAES-256-GCM(xaes_key, nonce, inner datagram, AAD = header || meta)
//! ```
//!
//! The header and the outer meta are the associated data and the nonce
//! selects the key and the GCM nonce, so every byte of the datagram is
//! covered by the tag; AES-GCM checks the tag before it decrypts.
//!
//! ## Why a nonce never repeats
//!
//! Every member of a group shares one key, and AES-GCM under one key must
//! never see one nonce twice (a repeat leaks the XOR of two plaintexts and
//! lets anyone forge tags). Members cannot coordinate, so:
//!
//! * each sender key (one per node and group: [`super::SecureKey::for_group`]
//!   builds it, at start) draws a random 96-bit **session** from the
//!   operating system's generator once, and seals every datagram under the
//!   subkey that session selects (XAES: `Kx = KDF(key, session)`);
//! * under that subkey the GCM nonce is a **counter** (an atomic, shared by
//!   every clone of the key), so one session never repeats a nonce: 2^64
//!   datagrams would take 58,000 years at ten million a second;
//! * two senders share a subkey only if their sessions are equal: with `n`
//!   sessions ever drawn under one passphrase and group the chance is about
//!   `n² / 2^97` — 10^-17 for a million node restarts — and even then their
//!   nonces repeat only where their counters meet.
//!
//! A single random 96-bit nonce would instead reach NIST's 2^-32 collision
//! bound after 2^32 datagrams over the whole group, which a busy group sends
//! in days. The sender's subkey is derived once, so sealing costs one
//! AES-GCM pass; a receiver derives the sender's subkey (two AES blocks and
//! a key schedule) for each datagram.

use super::outer::{check_version, write_outer_meta};
use crate::error::{Malformed, WireError};
use crate::wire::xaes::{Xaes, SALT_LEN};
use aes_gcm::aead::{AeadInPlace, Nonce, Tag};
use aes_gcm::Aes256Gcm;
use bson::raw::RawDocument;
use rand::RngCore;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Value of the outer meta's `alg` for this version (a meta field value, so
/// `meta` owns it: it classifies datagrams by it).
pub use crate::wire::meta::AEAD_ALG;
/// Length of the nonce at the start of the body.
pub const NONCE_LEN: usize = crate::wire::xaes::NONCE_LEN;
/// Authentication tag length (GCM's full 128 bits).
pub const TAG_LEN: usize = 16;
/// Encoded size of the outer header and meta: 2 + 120 bytes.
pub const OUTER_META_LEN: usize = 2 + 120;
/// What sealing adds to an inner datagram: header, meta, nonce, tag (162 bytes).
pub const SEAL_OVERHEAD: usize = OUTER_META_LEN + NONCE_LEN + TAG_LEN;

/// Size of a sealed datagram for an inner datagram of `inner_len` bytes
/// (no padding: GCM is a stream mode).
pub const fn sealed_len(inner_len: usize) -> usize {
    inner_len + SEAL_OVERHEAD
}

thread_local! {
    /// Where a datagram is decrypted before its tag is known to be good:
    /// refusing a forgery then allocates nothing (it grows once per thread
    /// to the largest datagram seen, never per datagram).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The XAES key of this version and this sender's session (see the module
/// docs).
pub(super) struct Aead {
    xaes: Xaes,
    session: [u8; SALT_LEN],
    /// The subkey of `session`, derived once.
    own: Aes256Gcm,
    /// The next counter of `session`.
    next: AtomicU64,
}

impl Aead {
    /// The key `key` with the sender session `session` (random; see the module docs).
    pub(super) fn new(key: &[u8; 32], session: [u8; SALT_LEN]) -> Self {
        let xaes = Xaes::new(key);
        let own = xaes.subkey(&session);
        Aead { xaes, session, own, next: AtomicU64::new(0) }
    }

    /// The whole datagram of `inner` under the session's next nonce; `rng`
    /// supplies the outer `seqId` only.
    pub(super) fn seal<R: RngCore + ?Sized>(&self, inner: &[u8], rng: &mut R) -> Vec<u8> {
        let mut out = Vec::with_capacity(sealed_len(inner.len()));
        out.extend_from_slice(inner);
        self.seal_in_place(&mut out, rng);
        out
    }

    /// [`seal`](Self::seal) where `buf` holds the inner datagram: it becomes
    /// the sealed datagram, so a sender can reuse its buffers (no allocation
    /// when `buf` has [`SEAL_OVERHEAD`] bytes to spare).
    pub(super) fn seal_in_place<R: RngCore + ?Sized>(&self, buf: &mut Vec<u8>, rng: &mut R) {
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        let inner_len = buf.len();
        buf.reserve(SEAL_OVERHEAD);
        // Header, meta and nonce go after the inner datagram, then rotate to the front.
        write_outer_meta(buf, rng, AEAD_ALG);
        debug_assert_eq!(buf.len() - inner_len, OUTER_META_LEN);
        buf.extend_from_slice(&self.session);
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&counter.to_be_bytes());
        buf.rotate_left(inner_len);
        let (head, ct) = buf.split_at_mut(OUTER_META_LEN + NONCE_LEN);
        let nonce = Nonce::<Aes256Gcm>::from_slice(&head[OUTER_META_LEN + SALT_LEN..]);
        let tag = self
            .own
            .encrypt_in_place_detached(nonce, &head[..OUTER_META_LEN], ct)
            .unwrap_or_else(|_| unreachable!("GCM refuses only plaintexts over 64 GiB"));
        buf.extend_from_slice(&tag);
    }

    /// Opens a datagram of this version whose framing the caller split into
    /// `meta` and `body`: the tag first (in AES-GCM, before any decryption),
    /// then `v`. Allocates only for an authentic datagram.
    pub(super) fn open(&self, datagram: &[u8], meta: &RawDocument, body: &[u8]) -> Result<Vec<u8>, WireError> {
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(Malformed::new("cannot hold nonce and tag").field("sealed body").value(body.len()).into());
        }
        let aad = &datagram[..datagram.len() - body.len()];
        let (nonce, rest) = body.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut session = [0u8; SALT_LEN];
        session.copy_from_slice(&nonce[..SALT_LEN]);
        let derived;
        let gcm = if session == self.session {
            &self.own
        } else {
            derived = self.xaes.subkey(&session);
            &derived
        };
        let (nonce, tag) = (Nonce::<Aes256Gcm>::from_slice(&nonce[SALT_LEN..]), Tag::<Aes256Gcm>::from_slice(tag));
        let decrypt = |buf: &mut Vec<u8>| -> Result<Vec<u8>, WireError> {
            buf.clear();
            buf.extend_from_slice(ct);
            gcm.decrypt_in_place_detached(nonce, aad, buf.as_mut_slice(), tag)
                .map_err(|_| WireError::Decrypt("authentication tag mismatch (wrong key or modified datagram)"))?;
            check_version(meta)?;
            Ok(buf.clone())
        };
        // Not reentrant (nothing here opens another datagram); a thread
        // whose locals are gone pays one allocation instead.
        SCRATCH
            .try_with(|s| s.try_borrow_mut().ok().map(|mut s| decrypt(&mut s)))
            .ok()
            .flatten()
            .unwrap_or_else(|| decrypt(&mut Vec::new()))
    }
}

#[cfg(test)]
mod tests;
