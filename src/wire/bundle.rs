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
//! Receiving is hostile input like any datagram: [`datagrams`] walks the frames
//! without allocating, each length is checked against what remains, and
//! the walk stops at the first frame that does not fit (the datagrams before
//! it were well framed and are handed on; each is then judged as a datagram).

use crate::error::{Malformed, WireError};
use bytes::BufMut;

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

/// Appends one datagram to the bundle in `out`. Datagrams longer than
/// `u32::MAX` bytes do not exist (NATS and UDP carry far less); `Limit` if asked.
pub fn push(out: &mut impl BufMut, datagram: &[u8]) -> Result<(), WireError> {
    let len = u32::try_from(datagram.len()).map_err(|_| WireError::Limit("datagram too long to bundle".into()))?;
    out.put_u32(len);
    out.put_slice(datagram);
    Ok(())
}

/// The datagrams a NATS message carries, in order: a bundle's frames, or
/// the message itself when it is one bare datagram ([`Datagrams::is_bundle`]).
pub fn datagrams(payload: &[u8]) -> Datagrams<'_> {
    match is_bundle(payload) {
        true => Datagrams { rest: &payload[BUNDLE_HEADER.len()..], bundle: true, done: false },
        false => Datagrams { rest: payload, bundle: false, done: false },
    }
}

/// Iterator over a message's datagrams. For a bundle: each well-framed
/// datagram, then at most one error (a truncated frame) and the end; a
/// bundle with no frame yields nothing. For a bare datagram: itself, once.
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
    type Item = Result<&'a [u8], WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if !self.bundle {
            self.done = true;
            return Some(Ok(self.rest));
        }
        if self.rest.is_empty() {
            return None;
        }
        let err = |what| Some(Err(WireError::Malformed(Malformed::new(what))));
        let Some((len, rest)) = self.rest.split_first_chunk::<FRAME_OVERHEAD>() else {
            self.done = true;
            return err("bundle frame header truncated");
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > rest.len() {
            self.done = true;
            return err("bundle frame longer than the bundle");
        }
        let (datagram, rest) = rest.split_at(len);
        self.rest = rest;
        Some(Ok(datagram))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact bytes of a bundle of two datagrams (format pinned: a change
    /// here breaks every NATS node of an earlier build).
    #[test]
    fn golden_bytes() {
        let mut out = Vec::new();
        start(&mut out);
        push(&mut out, b"\x00\x05abc").unwrap();
        push(&mut out, b"").unwrap();
        assert_eq!(out, b"\x00\x00EC\x01\x00\x00\x00\x05\x00\x05abc\x00\x00\x00\x00");
        let walk = datagrams(&out);
        assert!(walk.is_bundle());
        let got: Vec<_> = walk.collect::<Result<_, _>>().unwrap();
        assert_eq!(got, vec![&b"\x00\x05abc"[..], &b""[..]]);
    }

    #[test]
    fn a_datagram_is_never_a_bundle_nor_a_bundle_a_datagram() {
        let meta = crate::wire::Meta { v: 3, seq_len: 1, seq_end: true, seq_id: "ab".repeat(20), ..Default::default() };
        let mut datagram = Vec::new();
        crate::wire::encode_datagram(&meta, b"", &mut datagram);
        assert!(!is_bundle(&datagram) && !datagrams(&datagram).is_bundle());
        let bare: Vec<_> = datagrams(&datagram).collect::<Result<_, _>>().unwrap();
        assert_eq!(bare, vec![&datagram[..]], "a bare datagram is its own only datagram");
        let mut bundle = Vec::new();
        start(&mut bundle);
        push(&mut bundle, &datagram).unwrap();
        assert!(crate::wire::decode_datagram_ref(&bundle).is_err(), "metaLength 0 is no datagram");
    }

    #[test]
    fn hostile_framing_ends_with_one_error_after_the_good_frames() {
        let mut out = Vec::new();
        start(&mut out);
        push(&mut out, b"one").unwrap();
        let good = out.len();
        for tail in [&b"\x00\x00"[..], b"\x00\x00\x00\x09abc", b"\xff\xff\xff\xff", b"\x00\x00\x00\x01"] {
            out.truncate(good);
            out.extend_from_slice(tail);
            let items: Vec<_> = datagrams(&out).collect();
            assert_eq!(items.len(), 2, "{tail:?}");
            assert_eq!(items[0].as_ref().unwrap(), b"one");
            assert!(matches!(items[1], Err(WireError::Malformed(_))), "{tail:?}");
        }
        // A header alone holds no datagram and is no error.
        assert!(datagrams(&BUNDLE_HEADER).is_bundle());
        assert_eq!(datagrams(&BUNDLE_HEADER).count(), 0);
    }
}
