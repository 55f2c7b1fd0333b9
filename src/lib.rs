//! # eventcast
//!
//! A network EventEmitter: named events with arguments over UDP multicast, no
//! broker, wire-compatible with the JavaScript `eventcast` 0.1.x.
//!
//! Layers, each usable and testable on its own:
//!
//! 1. [`wire`] — the datagram codec and encryption schemes.
//! 2. [`protocol`] — sans-IO state machines: chunking, reassembly, repair,
//!    expiry, limits. Time is an argument; outputs are datagrams and events.
//! 3. [`node`] — the tokio driver and the public Rust API, [`Eventcast`].
//! 4. `binding` (cargo feature `napi`) — the Node.js addon.
#![warn(missing_docs)]
// Every unsafe operation sits in an `unsafe` block (also inside `unsafe fn`),
// and every `unsafe` block says why it is sound (`// SAFETY: ...`). The
// binding's Node-API calls are argued once, in `src/binding/raw.rs`.
#![warn(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
pub mod node;
pub mod protocol;
pub mod wire;

#[cfg(feature = "napi")]
mod binding;

#[cfg(test)]
mod skip_report;

pub use error::{Error, WireError};
pub use node::{
    Bridge, BridgeOptions, BridgeStats, EncryptOptions, Eventcast, Events, NatsOptions, NatsTls, Notification,
    NotificationSink, Options, Status, Transport, NATS_BUNDLE_BYTES, NATS_CHUNK_SIZE, NATS_MAX_DATAGRAM,
    NATS_OUTBOX_BYTES, NATS_SOURCE, NATS_START_TIMEOUT, NATS_SUBSCRIPTION_CAPACITY,
};
pub use protocol::Stats;
