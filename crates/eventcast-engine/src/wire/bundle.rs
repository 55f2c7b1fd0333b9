//! Bundles: several datagrams in one NATS message.
//!
//! Over NATS, each message costs the publisher a command on the client's
//! queue, the server a routing decision and every subscriber a parse and a
//! hand-over to its receive task, whatever its size. A burst of small events
//! therefore travels as bundles: one NATS message holding many datagrams,
//! each unchanged. A lone datagram still travels bare, as the message itself
//! (what plain subscribers, bridges and older builds expect).
//!
//! ```text
//! bundle = 00 00 'E' 'C' 01  frame+
//! frame  = u32 big-endian length | datagram (length bytes)
//! ```
//!
//! The first two bytes are a datagram's `metaLength`; 0 is never a valid
//! one (a BSON document has at least 5 bytes), so a bundle cannot be taken
//! for a datagram nor a datagram for a bundle. Multicast never carries
//! bundles: a bridge unpacks them before relaying to the LAN.
//!
//! Receiving is hostile input like any datagram, and a bundle multiplies
//! whatever a receiver does per datagram by its frame count. So a bundle is
//! judged whole, once, before any of its datagrams is used ([`open`]): the
//! header, at least one frame, every frame inside the bundle, and every frame
//! plausibly a datagram ([`plausible_datagram`]: at least
//! [`MIN_DATAGRAM_LEN`] bytes, its meta framed as a BSON document of at least
//! [`MIN_META_LEN`] bytes). The first bad frame rejects the whole bundle: one
//! pass over the frame headers, a few bytes read per frame, no allocation, and
//! no datagram of it reaches the engine or a bridge's multicast. A sender of
//! ours never writes a bundle that fails this, so what is refused is forged.
//! Frames of at least [`MIN_DATAGRAM_LEN`] bytes also bound the frame count:
//! a bundle of `n` bytes holds at most `n / (4 + 96)` of them.

use crate::error::{Malformed, WireError};
use bytes::{BufMut, Bytes, BytesMut};

/// What a bundle starts with.
pub const BUNDLE_HEADER: [u8; 5] = [0, 0, b'E', b'C', 1];

/// Bytes a frame adds to its datagram (its length).
pub const FRAME_OVERHEAD: usize = 4;

/// Whether `payload` is a bundle (else it is one bare datagram).
pub fn is_bundle(payload: &[u8]) -> bool {
    payload.starts_with(&BUNDLE_HEADER)
}

/// Starts a bundle in `out` (which should be empty).
pub fn start(out: &mut impl BufMut) {
    out.put_slice(&BUNDLE_HEADER);
}

/// A bundle being filled, datagram by datagram, up to a size limit of the
/// caller's (the NATS transport's message size).
#[derive(Debug)]
pub struct BundleWriter {
    buf: BytesMut,
    frames: usize,
}

impl BundleWriter {
    /// A bundle holding `first`.
    pub fn new(first: &[u8]) -> Self {
        let mut buf = BytesMut::with_capacity(BUNDLE_HEADER.len() + 2 * (FRAME_OVERHEAD + first.len()));
        start(&mut buf);
        let mut b = BundleWriter { buf, frames: 0 };
        b.push(first);
        b
    }

    /// Whether `datagram` fits in without the bundle growing past `limit` bytes.
    pub fn fits(&self, datagram: &[u8], limit: usize) -> bool {
        self.buf.len() + FRAME_OVERHEAD + datagram.len() <= limit
    }

    /// Appends `datagram`. One longer than `u32::MAX` bytes cannot be framed
    /// and is not appended (no transport carries one).
    pub fn push(&mut self, datagram: &[u8]) {
        if push(&mut self.buf, datagram).is_ok() {
            self.frames += 1;
        }
    }

    /// The bundle's size so far, in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the bundle is empty (never: it holds at least its header).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// How many datagrams the bundle holds.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// The message to send: the bundle, or the bare datagram when it holds
    /// only one (receivers take both; 0.1.x-era peers only the bare one).
    pub fn finish(self) -> Bytes {
        let bytes = self.buf.freeze();
        match self.frames {
            1 => bytes.slice(BUNDLE_HEADER.len() + FRAME_OVERHEAD..),
            _ => bytes,
        }
    }
}

/// Appends one datagram to the bundle in `out`. Datagrams longer than
/// `u32::MAX` bytes do not exist (NATS and UDP carry far less); `Limit` if asked.
pub fn push(out: &mut impl BufMut, datagram: &[u8]) -> Result<(), WireError> {
    let len = u32::try_from(datagram.len()).map_err(|_| WireError::Limit("datagram too long to bundle".into()))?;
    out.put_u32(len);
    out.put_slice(datagram);
    Ok(())
}

/// Shortest meta document a receiver can accept: its length and terminator
/// (5 bytes) plus the fields every datagram must carry, each as small as its
/// type allows: `v`, `seq`, `seqLen` (int32), `seqId` (40 hex chars),
/// `seqEnd` (boolean). Anything shorter fails the decoder
/// ([`super::decode_received`]) whatever its contents.
pub const MIN_META_LEN: usize = 5 + (1 + 2 + 4) + (1 + 4 + 4) + (1 + 7 + 4) + (1 + 6 + 4 + 41) + (1 + 7 + 1);

/// Shortest datagram a receiver can accept: the 2-byte `metaLength` and a
/// meta of [`MIN_META_LEN`] bytes (the body may be empty).
pub const MIN_DATAGRAM_LEN: usize = 2 + MIN_META_LEN;

/// Whether `datagram` is framed like one a receiver could accept: at least
/// [`MIN_DATAGRAM_LEN`] bytes, a `metaLength` of at least [`MIN_META_LEN`]
/// that fits, and a meta whose BSON length is the `metaLength` and whose last
/// byte is the document's terminator. Constant work (a few bytes read), so
/// that a bundle can be judged frame by frame at the cost of its frame
/// headers. A claim about the framing only: the decoder judges the fields.
pub fn plausible_datagram(datagram: &[u8]) -> bool {
    let Some((header, rest)) = datagram.split_first_chunk::<2>() else { return false };
    let meta_len = usize::from(u16::from_be_bytes(*header));
    let Some(meta) = rest.get(..meta_len) else { return false };
    let Some(declared) = meta.first_chunk::<4>().map(|d| i32::from_le_bytes(*d)) else { return false };
    datagram.len() >= MIN_DATAGRAM_LEN
        && meta_len >= MIN_META_LEN
        && usize::try_from(declared).is_ok_and(|d| d == meta_len)
        && meta[meta_len - 1] == 0
}

// Why `open` refused a bundle (each a `WireError::Malformed`).
const NO_FRAME: &str = "bundle without a frame";
const TRUNCATED: &str = "bundle frame header truncated";
const TOO_LONG: &str = "bundle frame longer than the bundle";
const NOT_A_DATAGRAM: &str = "bundle frame is not framed as a datagram";

/// The datagrams a NATS message carries, in order, once the message is
/// judged: a bundle whose every frame is well framed and
/// [plausibly a datagram](plausible_datagram), or a message that is not a
/// bundle, which is then one bare datagram ([`Datagrams::is_bundle`]; the
/// decoder judges it). A bundle that fails anywhere is refused whole,
/// `WireError::Malformed`, before any of its datagrams is handed out; the
/// check reads the 4-byte frame headers and a few bytes of each frame.
pub fn open(payload: &[u8]) -> Result<Datagrams<'_>, WireError> {
    let Some(frames) = payload.strip_prefix(&BUNDLE_HEADER) else {
        return Ok(Datagrams { rest: payload, bundle: false, done: false });
    };
    let err = |what| Err(WireError::Malformed(Malformed::new(what)));
    if frames.is_empty() {
        return err(NO_FRAME);
    }
    let mut rest = frames;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<FRAME_OVERHEAD>() else { return err(TRUNCATED) };
        let Some((datagram, tail)) = tail.split_at_checked(u32::from_be_bytes(*len) as usize) else {
            return err(TOO_LONG);
        };
        if !plausible_datagram(datagram) {
            return err(NOT_A_DATAGRAM);
        }
        rest = tail;
    }
    Ok(Datagrams { rest: frames, bundle: true, done: false })
}

/// Iterator over the datagrams of a message [`open`] accepted: a bundle's
/// frames, or the bare datagram, once.
#[derive(Clone)]
pub struct Datagrams<'a> {
    rest: &'a [u8],
    bundle: bool,
    done: bool,
}

impl Datagrams<'_> {
    /// Whether the message is a bundle (else one bare datagram).
    pub fn is_bundle(&self) -> bool {
        self.bundle
    }
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if !self.bundle {
            self.done = true;
            return Some(self.rest);
        }
        // `open` checked every frame header: these splits cannot fail, and
        // stop quietly if they ever did.
        let (len, rest) = self.rest.split_first_chunk::<FRAME_OVERHEAD>()?;
        let (datagram, rest) = rest.split_at_checked(u32::from_be_bytes(*len) as usize)?;
        self.rest = rest;
        Some(datagram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram as a sender writes it (meta with the required fields and an id).
    fn datagram(seq_id: char, body: &[u8]) -> Vec<u8> {
        let meta = crate::wire::Meta {
            v: 3,
            seq_len: 1,
            seq_end: true,
            seq_id: seq_id.to_string().repeat(40),
            id: Some("0123456789abcdef".into()),
            ..Default::default()
        };
        let mut out = Vec::new();
        crate::wire::encode_datagram(&meta, body, &mut out);
        out
    }

    fn bundle_of(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        start(&mut out);
        for f in frames {
            push(&mut out, f).unwrap();
        }
        out
    }

    /// The exact bytes of a bundle of two datagrams (format pinned: a change
    /// here breaks every NATS node of an earlier build).
    #[test]
    fn golden_bytes() {
        let mut out = Vec::new();
        start(&mut out);
        push(&mut out, b"\x00\x05abc").unwrap();
        push(&mut out, b"").unwrap();
        assert_eq!(out, b"\x00\x00EC\x01\x00\x00\x00\x05\x00\x05abc\x00\x00\x00\x00");
        let (one, two) = (datagram('a', b""), datagram('b', b"\x05\x00\x00\x00\x00"));
        let walk = open(&bundle_of(&[&one, &two])).map(|w| (w.is_bundle(), w.map(<[u8]>::to_vec).collect::<Vec<_>>()));
        assert_eq!(walk.unwrap(), (true, vec![one, two]));
    }

    #[test]
    fn a_datagram_is_never_a_bundle_nor_a_bundle_a_datagram() {
        let datagram = datagram('a', b"");
        assert!(!is_bundle(&datagram) && !open(&datagram).unwrap().is_bundle());
        let bare: Vec<_> = open(&datagram).unwrap().collect();
        assert_eq!(bare, vec![&datagram[..]], "a bare datagram is its own only datagram");
        let bundle = bundle_of(&[&datagram]);
        assert!(crate::wire::decode_datagram_ref(&bundle).is_err(), "metaLength 0 is no datagram");
        assert!(!plausible_datagram(&bundle), "nor plausibly one");
    }

    /// The smallest meta the decoder accepts is exactly `MIN_META_LEN` bytes:
    /// the bound refuses nothing a receiver would take.
    #[test]
    fn the_minimum_lengths_are_those_of_the_smallest_acceptable_datagram() {
        let mut meta = bson::Document::new();
        meta.insert("v", 3);
        meta.insert("seq", 0);
        meta.insert("seqLen", 1);
        meta.insert("seqId", "a".repeat(40));
        meta.insert("seqEnd", true);
        let mut bytes = Vec::new();
        meta.to_writer(&mut bytes).unwrap();
        let meta = bytes;
        assert_eq!(meta.len(), MIN_META_LEN);
        let mut smallest = (meta.len() as u16).to_be_bytes().to_vec();
        smallest.extend_from_slice(&meta);
        assert_eq!(smallest.len(), MIN_DATAGRAM_LEN);
        assert!(crate::wire::decode_received(&smallest).is_ok());
        assert!(plausible_datagram(&smallest));
        // One byte less anywhere is not a datagram.
        assert!(!plausible_datagram(&smallest[..MIN_DATAGRAM_LEN - 1]));
        let mut short_meta = smallest.clone();
        short_meta[1] -= 1;
        assert!(!plausible_datagram(&short_meta));
    }

    #[test]
    fn a_bundle_with_one_bad_frame_is_refused_whole() {
        let good = datagram('a', b"");
        let mut unterminated = datagram('b', b"");
        let meta_end = 2 + usize::from(u16::from_be_bytes([unterminated[0], unterminated[1]]));
        unterminated[meta_end - 1] = 1;
        let mut wrong_length = datagram('c', b"");
        wrong_length[2] ^= 1;
        let bad_frames: [&[u8]; 6] = [b"", b"abc", &good[..good.len() - 1], &unterminated, &wrong_length, &[0; 200]];
        for bad in bad_frames {
            for frames in [[&good[..], bad], [bad, &good[..]]] {
                assert!(matches!(open(&bundle_of(&frames)), Err(WireError::Malformed(_))), "{bad:?}");
            }
        }
        let good_bundle = bundle_of(&[&good]);
        for tail in [&b"\x00\x00"[..], b"\x00\x00\x00\x09abc", b"\xff\xff\xff\xff", b"\x00\x00\x00\x01"] {
            let mut b = good_bundle.clone();
            b.extend_from_slice(tail);
            assert!(matches!(open(&b), Err(WireError::Malformed(_))), "{tail:?}");
        }
        // A header alone holds no datagram: no sender writes it.
        assert!(open(&BUNDLE_HEADER).is_err());
        // A bundle in a bundle is no datagram (no recursion, no second look).
        assert!(open(&bundle_of(&[&good_bundle])).is_err());
        assert_eq!(open(&good_bundle).unwrap().count(), 1);
    }
}
