//! # eventcast-engine
//!
//! The engine of [eventcast](https://github.com/diversario/eventcast), a
//! network EventEmitter wire-compatible with the JavaScript `eventcast` 0.1.x:
//! everything that can be decided without a socket, a runtime or a clock.
//!
//! 1. [`wire`] — the only owner of the byte format: the datagram codec, the
//!    BSON argument bodies (read and written value by value), bundle framing,
//!    and the encryption schemes.
//! 2. [`protocol`] — sans-IO state machines: chunking, reassembly, repair,
//!    expiry, limits. Time and input come in as arguments (`handle_*(now, ..)`);
//!    datagrams to send and notifications come out (`poll_*`).
//!
//! The crate has no tokio, socket or Node-API dependency: the compiler keeps
//! I/O out of it. The driver (crate `eventcast`) feeds it datagrams and timers.
//! The deterministic network simulator, `protocol::sim`, is behind the
//! `testing` feature.
#![warn(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
pub mod protocol;
pub mod wire;

pub use error::{Error, WireError};
pub use protocol::Stats;
