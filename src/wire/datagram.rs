//! Datagram framing: `u16 BE metaLength | BSON meta | body`.

use super::meta::Meta;
use crate::error::WireError;

/// One parsed datagram; `body` borrows from the received buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The meta document.
    pub meta: Meta,
    /// Everything after the meta document.
    pub body: &'a [u8],
}

/// Parses a datagram. Reports `WireError::Version` when `v` is present and not 3.
pub fn decode_datagram(buf: &[u8]) -> Result<Datagram<'_>, WireError> {
    let _ = buf;
    todo!("wire helper")
}

/// Appends the encoded datagram to `out`.
pub fn encode_datagram(meta: &Meta, body: &[u8], out: &mut Vec<u8>) {
    let _ = (meta, body, out);
    todo!("wire helper")
}
