//! The outer framing of every datagram: `u16 BE metaLength | BSON meta |
//! body`, split without reading the meta's fields (the encryption schemes
//! read extension fields themselves, `datagram` the standard ones).

use crate::error::{Malformed, WireError};
use bson::raw::RawDocument;

/// Largest meta document the 16-bit `metaLength` can frame.
pub const MAX_META_LEN: usize = u16::MAX as usize;

fn malformed(what: &'static str) -> WireError {
    WireError::Malformed(Malformed::new(what))
}

/// Splits a datagram into its raw meta document and body without interpreting
/// the meta fields. Useful for schemes that must read extension fields.
pub fn split_datagram(buf: &[u8]) -> Result<(&RawDocument, &[u8]), WireError> {
    if buf.len() < 2 {
        return Err(malformed("datagram shorter than its 2-byte header"));
    }
    let meta_len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
    let end = 2 + meta_len;
    if end > buf.len() {
        return Err(Malformed::new("runs past the end of the datagram").field("metaLength").value(meta_len).into());
    }
    let meta = raw_document(&buf[2..end]).ok_or_else(|| malformed("meta is not a BSON document"))?;
    Ok((meta, &buf[end..]))
}

/// `bytes` as a BSON document when its framing holds (declared length equal
/// to the slice's, at least 5, last byte NUL). Checked here first so that a
/// hostile frame is refused without the `bson` crate building an error
/// message for it (allocation-free rejection); the elements are read later.
pub(crate) fn raw_document(bytes: &[u8]) -> Option<&RawDocument> {
    let declared = usize::try_from(i32::from_le_bytes(*bytes.first_chunk::<4>()?)).ok()?;
    if declared != bytes.len() || declared < 5 || bytes[declared - 1] != 0 {
        return None;
    }
    RawDocument::from_bytes(bytes).ok()
}
