//! Layer 3 — the tokio driver and the public Rust API.
//!
//! [`Eventcast`] owns a multicast UDP socket (socket2: SO_REUSEADDR +
//! SO_REUSEPORT, so several nodes can share one host and port), a
//! [`crate::protocol::Endpoint`], and the timers that drive it.

mod options;

pub use options::{EncryptOptions, Options};
