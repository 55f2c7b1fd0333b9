//! The outer meta both versions of the authenticated scheme put in the clear,
//! and the version check they make once a datagram is authentic.

use crate::error::{Malformed, WireError};
use crate::wire::bson_writer::{begin_doc, end_doc, put_bool, put_i32, put_str};
use bson::raw::{RawBsonRef, RawDocument};
use rand::RngCore;

/// Writes `u16 BE metaLength || {v: 3, seq: 0, seqLen: 1, seqId: <40 random
/// hex>, seqEnd: true, enc: true, alg}` at the end of `out`: the shape of a
/// 0.1.x encrypted outer datagram (which 0.1.x nodes see as a message they
/// cannot decrypt), plus the `alg` that names the version.
pub(super) fn write_outer_meta<R: RngCore + ?Sized>(out: &mut Vec<u8>, rng: &mut R, alg: &str) {
    let header = out.len();
    out.extend_from_slice(&[0, 0]);
    let start = begin_doc(out);
    put_i32(out, "v", crate::wire::PROTOCOL_VERSION);
    put_i32(out, "seq", 0);
    put_i32(out, "seqLen", 1);
    let mut id = [0u8; 20];
    rng.fill_bytes(&mut id);
    // Fixed-size fields and a short constant `alg`: these writes cannot fail.
    let _ = put_str(out, "seqId", &crate::wire::ids::hex(&id));
    put_bool(out, "seqEnd", true);
    put_bool(out, "enc", true);
    let _ = put_str(out, "alg", alg);
    let _ = end_doc(out, start);
    let meta_len = (out.len() - start) as u16;
    out[header..header + 2].copy_from_slice(&meta_len.to_be_bytes());
}

/// The check of `v` once the datagram is authentic: a version mismatch from
/// a real member is reported (`Version`), so unauthenticated input can never
/// make a node report one.
pub(super) fn check_version(meta: &RawDocument) -> Result<(), WireError> {
    match meta.get("v") {
        Ok(Some(RawBsonRef::Int32(v))) if v == crate::wire::PROTOCOL_VERSION => Ok(()),
        Ok(Some(RawBsonRef::Int32(v))) => Err(WireError::Version(v)),
        _ => Err(Malformed::new("bad or missing").field("v").into()),
    }
}
