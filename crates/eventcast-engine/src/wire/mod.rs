//! Layer 1 — the datagram codec of protocol v3 (`../shared/PROTOCOL.md`).
//!
//! A datagram is `u16 big-endian metaLength | BSON meta | body`. This module
//! parses and emits that framing, the `{payload: [...]}` bodies, retransmission
//! requests, and the encryption schemes. Other layers that need a cheap look
//! at a datagram (whose is it, is it encrypted) ask [`meta::sender_id`] and
//! [`meta::encryption`]: no byte of the format is read outside this module. It knows nothing of chunk groups,
//! timers or sockets: that is [`crate::protocol`].
//!
//! Every input here is untrusted network data: decoders return
//! [`WireError`](crate::error::WireError), never panic, and never allocate more
//! than the datagram's own length implies.

pub mod args_writer;
pub mod beacon;
pub mod body;
pub(crate) mod bson_writer;
pub mod bundle;
pub mod datagram;
pub mod depth;
pub mod exchange;
pub mod framing;
pub mod ids;
pub mod integers;
pub mod legacy;
pub mod meta;
pub mod retx;
pub mod secure;
pub(crate) mod xaes;

pub use args_writer::ArgsWriter;
pub use body::{
    bson_options_to_js_flags, decode_body, decode_body_raw, encode_args, encode_document_body,
    js_flags_to_bson_options, try_encode_args, try_encode_args_into, try_encode_document_body, ArgsBody, Payload,
    RawPayload,
};
pub use datagram::{
    decode_datagram, decode_datagram_ref, decode_received, encode_datagram, split_datagram, try_encode_datagram,
    try_encode_datagram_ref, Datagram, DatagramRef, MetaRef,
};
pub use depth::{check_nesting, check_shape, MAX_ARGS, MAX_NESTING, MAX_VALUES};
pub use meta::Meta;
pub use retx::RepairRequest;
pub use secure::SecureKey;

/// The only protocol version this crate speaks (0.1.x `Eventcast.protocolVersion`).
pub const PROTOCOL_VERSION: i32 = 3;

/// Event name of a retransmission request (PROTOCOL.md, "Retransmission requests").
pub const RETX_EVENT: &str = "__ec_retx";
