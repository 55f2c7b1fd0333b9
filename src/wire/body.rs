//! Message bodies: `{payload: [...]}` for events, `{payload: {...}}` for `__ec_retx`.

use crate::error::WireError;
use bson::{Bson, Document};

/// A decoded body.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// Emit arguments (`{payload: [..]}`, or an empty body).
    Args(Vec<Bson>),
    /// A single document (`{payload: {..}}`), as in retransmission requests.
    Document(Document),
}

/// Encodes emit arguments as `{payload: [...]}`.
pub fn encode_args(args: &[Bson]) -> Vec<u8> {
    let _ = args;
    todo!("wire helper")
}

/// Encodes `{payload: doc}`.
pub fn encode_document_body(doc: &Document) -> Vec<u8> {
    let _ = doc;
    todo!("wire helper")
}

/// Decodes a body; an empty body is `Payload::Args(vec![])`.
pub fn decode_body(body: &[u8]) -> Result<Payload, WireError> {
    let _ = body;
    todo!("wire helper")
}
