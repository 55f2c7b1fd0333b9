//! Engine configuration.

use crate::wire::beacon::PeerTransport;
use crate::wire::legacy::LegacyKey;
use crate::wire::secure::SecureKey;
use bson::Document;
use std::time::Duration;

/// Who this endpoint is; written into the meta of every datagram it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Instance id, 16 lower-case hex chars.
    pub id: String,
    /// Advertised IPv4 address (first non-internal interface, else 127.0.0.1).
    pub host: String,
    /// Advertised UDP port (the shared multicast port).
    pub port: u16,
    /// OS hostname.
    pub hostname: String,
}

/// How bodies are protected.
#[derive(Clone, Default)]
pub enum Encryption {
    /// Plaintext, as 0.1.x without `encrypt`.
    #[default]
    None,
    /// The unauthenticated 0.1.x scheme, for mixed fleets only.
    Legacy(LegacyKey),
    /// The default authenticated scheme for `encrypt: {key}` (see
    /// [`crate::wire::secure`]; sends `alg: "xaes256gcm"`, opens it and the
    /// previous release's `"hs256"`): every datagram sent is sealed with
    /// [`SecureKey::seal`], every datagram received must pass
    /// [`SecureKey::open`]. Derive the key once ([`SecureKey::derive`] is slow).
    Secure(SecureKey),
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str(match self {
            Encryption::None => "None",
            Encryption::Legacy(_) => "Legacy(..)",
            Encryption::Secure(_) => "Secure(..)",
        })
    }
}

/// Hard bounds that keep a flood of bogus datagrams from exhausting memory.
/// What a limit turns away is counted in [`super::Stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (encoded, before chunking) we send or reassemble.
    pub max_message_size: usize,
    /// Most chunk groups being reassembled at once; the oldest is evicted.
    pub max_partial_messages: usize,
    /// Most bytes held by partial messages; the oldest are evicted.
    pub max_reassembly_bytes: usize,
    /// Most bytes of sent chunks retained for repair; the oldest are dropped.
    pub max_retained_bytes: usize,
    /// Most completed message ids remembered to suppress late duplicates.
    pub max_completed_ids: usize,
    /// Most repair bytes sent per second in answer to one requester (by
    /// source address, not by the instance id a request claims), so forged
    /// or runaway requests cannot make a node flood the group. Bursts of up
    /// to one second's worth are allowed.
    pub max_repair_bytes_per_requester: usize,
    /// Cap of the node-wide repair budget. Every byte the node emits credits
    /// it with one byte, so repairs (to all requesters together) stay about
    /// as large as what the node sent; see the `repair` module docs.
    pub max_repair_credit_bytes: usize,
    /// Repair bytes per second allowed beyond that credit (at most one
    /// second's worth saved up), so repeated loss of the same data can still
    /// be repaired after the credit is spent.
    pub repair_floor_bytes_per_sec: usize,
    /// Cap of the node-wide budget for the repair requests the node sends;
    /// every byte received from others credits it with half a byte.
    pub max_request_credit_bytes: usize,
    /// Repair request bytes per second allowed beyond that credit (at most
    /// one second's worth saved up).
    pub request_floor_bytes_per_sec: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 16 * 1024 * 1024,
            max_partial_messages: 1024,
            max_reassembly_bytes: 64 * 1024 * 1024,
            max_retained_bytes: 128 * 1024 * 1024,
            max_completed_ids: 16 * 1024,
            max_repair_bytes_per_requester: 16 * 1024 * 1024,
            max_repair_credit_bytes: 128 * 1024 * 1024,
            repair_floor_bytes_per_sec: 64 * 1024,
            max_request_credit_bytes: 1024 * 1024,
            request_floor_bytes_per_sec: 8 * 1024,
        }
    }
}

/// Engine configuration; defaults are 0.1.x's.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest datagram body before a message is chunked (default 1024).
    pub max_payload_size: usize,
    /// Time a partial message may go without progress (default 3000 ms);
    /// sent chunks are retained for `3 * message_ttl`.
    pub message_ttl: Duration,
    /// Repair requests per stalled message before giving up (default 3).
    pub retransmit_attempts: u32,
    /// Encryption scheme.
    pub encryption: Encryption,
    /// Memory bounds.
    pub limits: Limits,
    /// Pad our repair requests so each pays for the answer it asks for:
    /// where the transport gives no source address (NATS), a sender answers
    /// a requester id with at most 3 bytes per byte of its requests (see the
    /// `repair` module docs). The driver sets it for the NATS transport.
    pub pay_for_repairs: bool,
    /// The transport delivers every datagram or tells (NATS over TCP): a
    /// one-datagram request or reply is then sent once, not twice (see
    /// `endpoint/exchange.rs`). The driver sets it for the NATS transport.
    pub lossless_transport: bool,
    /// Beacons and the peer table (`None`: presence off, the default here;
    /// the driver turns it on unless `presence: false`).
    pub presence: Option<PresenceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_payload_size: 1024,
            message_ttl: Duration::from_millis(3000),
            retransmit_attempts: 3,
            encryption: Encryption::None,
            limits: Limits::default(),
            pay_for_repairs: false,
            lossless_transport: false,
            presence: None,
        }
    }
}

/// How often a node announces itself and how long its peers wait for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Beacon period (each one jittered by ±10%).
    pub interval: Duration,
    /// A peer not heard from for this long is down (`'peerDown'`, reason `timeout`).
    pub timeout: Duration,
    /// Most peers in the table.
    pub max_peers: usize,
    /// What this node advertises about itself.
    pub advertised: Advertised,
}

/// Defaults of [`PresenceConfig`]: a beacon a second, down after 5 s of silence
/// (five beacons lost in a row: at 10% loss, once in 10⁵ intervals).
impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_peers: 1024,
            advertised: Advertised::default(),
        }
    }
}

/// What a node says about itself in its beacons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advertised {
    /// A label (`name` option); at most `wire::beacon::MAX_NAME_BYTES`.
    pub name: Option<String>,
    /// The process id.
    pub pid: Option<u32>,
    /// The eventcast version.
    pub version: String,
    /// How this node is connected.
    pub transport: PeerTransport,
    /// The application object (`meta` option); at most `MAX_META_BYTES` encoded.
    pub meta: Document,
}
