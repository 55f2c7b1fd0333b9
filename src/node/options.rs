//! Node options, named and defaulted like the JS API (`eventcast` 0.1.x).

use crate::protocol::Limits;
use std::net::Ipv4Addr;
use std::time::Duration;

/// `encrypt: {key, legacy}`.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptOptions {
    /// Shared passphrase.
    pub key: String,
    /// Speak the unauthenticated 0.1.x scheme (for mixed fleets only).
    pub legacy: bool,
}

impl std::fmt::Debug for EncryptOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptOptions").field("key", &"<redacted>").field("legacy", &self.legacy).finish()
    }
}

/// Options of a node. `Options::default()` matches 0.1.x's defaults except
/// `port`, which must be set (the JS layer picks a random one when unset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Address to bind (default 0.0.0.0).
    pub address: Ipv4Addr,
    /// UDP port shared by the group (0 = the JS layer's random choice must be made before).
    pub port: u16,
    /// Multicast group (default 224.0.0.1).
    pub multicast_membership: Ipv4Addr,
    /// Interface address for joining and sending (default: any).
    pub multicast_interface: Option<Ipv4Addr>,
    /// Receive our own datagrams on this host (default true; needed for several nodes per host).
    pub multicast_loopback: bool,
    /// Multicast TTL (default 1).
    pub multicast_ttl: u32,
    /// Largest datagram body before chunking (default 1024).
    pub max_payload_size: usize,
    /// Reassembly timeout and retention base (default 3000 ms).
    pub message_ttl: Duration,
    /// Repair requests per stalled message (default 3).
    pub message_retransmit_attempts: u32,
    /// Encryption, if any.
    pub encrypt: Option<EncryptOptions>,
    /// Memory bounds of the protocol engine.
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            address: Ipv4Addr::UNSPECIFIED,
            port: 0,
            multicast_membership: Ipv4Addr::new(224, 0, 0, 1),
            multicast_interface: None,
            multicast_loopback: true,
            multicast_ttl: 1,
            max_payload_size: 1024,
            message_ttl: Duration::from_millis(3000),
            message_retransmit_attempts: 3,
            encrypt: None,
            limits: Limits::default(),
        }
    }
}
