//! Layer 2 — the sans-IO protocol engine.
//!
//! [`Endpoint`] holds all protocol state of one node: the chunker and retention
//! buffer of the sender side, reassembly and repair requests of the receiver
//! side, and the limits that bound them. It never touches a socket or a clock:
//!
//! * inputs: [`Endpoint::emit`], [`Endpoint::handle_datagram`], [`Endpoint::handle_timeout`],
//!   each with `now: Instant` passed in;
//! * outputs: [`Endpoint::poll_transmit`] (datagrams to send),
//!   [`Endpoint::poll_output`] (events and errors to deliver) and
//!   [`Endpoint::poll_timeout`] (when to call `handle_timeout` next).
//!
//! This mirrors quinn-proto and smoltcp, and is what makes loss and timing
//! tests deterministic (see [`sim`]). The engine never reads a clock, not even
//! the wall clock: it gets one at construction ([`Endpoint::new`]: drivers
//! pass `SystemTime::now()`, simulations a fixed time; before 1970 is an
//! `ECLOCK` error) and may be re-anchored ([`Endpoint::set_wall_clock`]). It
//! needs wall time for the `time` field of the datagrams it sends on its own
//! (repair requests, heartbeats) and for the freshness check of the
//! authenticated scheme.
//!
//! # Parts
//!
//! * `retention` — the sender keeps the datagrams of each message it sent
//!   for `3 * message_ttl`, bounded by [`Limits::max_retained_bytes`] and
//!   65,536 messages (oldest dropped first, counted in
//!   [`Stats::retention_dropped`]), indexed by chunk group (`seqId`) and by
//!   message number (`sn`).
//! * `reassembly` — chunk groups keyed by (sender id, seqId); memory follows
//!   what arrived, bounded by [`Limits::max_partial_messages`] and
//!   [`Limits::max_reassembly_bytes`] (least recently progressed evicted first);
//!   completed keys are remembered ([`Limits::max_completed_ids`]) so a
//!   message is delivered once even when late repairs arrive.
//! * `tracker` — per-sender window over `sn`: duplicate suppression, lost
//!   single-datagram messages and tail loss (via heartbeats), replay window;
//!   far jumps are believed only after a `message_ttl` uncontested.
//! * `sn` — the range check every received `sn` passes (`1 ..= 2^53 − 1`).
//! * `repair` — when to ask (NACK timers with jitter and suppression) and
//!   how much to send in reaction to the network (resend window, node-wide
//!   budgets credited by own emits and by bytes received, per-source-address
//!   budgets).
//! * `request` — the `__ec_retx` document.
//!
//! # Extensions to the 0.1.x protocol (all ignored by 0.1.x nodes)
//!
//! * meta field `sn` (int64) on every datagram of an event: the sender's
//!   message number, 1, 2, 3, ... per instance id (at most [`MAX_SN`]; a
//!   datagram with any other `sn` is refused as malformed);
//! * meta field `snAge` (int32, ms, `0 ..= i32::MAX`, saturating) on the
//!   datagrams of events and heartbeats while `sn <= 16,384`: how long before
//!   the datagram was built the sender sent its message 1, on its monotonic
//!   clock (relative, so no clock skew between hosts); the join rule of
//!   `tracker` reads it (a negative one is refused as malformed);
//! * `__ec_hb` heartbeat messages, payload `{id, sn}` with the sender's latest
//!   `sn`, sent every `clamp(message_ttl / 6, 20 ms, 1 s)` while the node
//!   emits, then eight more times, three times as often, after its last emit;
//! * `__ec_retx` documents may carry `missedSn: [int64..]` (whole messages)
//!   and `to` (the instance id of the sender asked).
//!
//! # Repair
//!
//! A receiver waits a jittered delay in `[d, 2d)` with
//! `d = clamp(message_ttl / 8, 10 ms, 500 ms)` (375 ms by default) after
//! noticing missing data, then multicasts a request to the group; hearing
//! someone else's request for the same data first postpones its own. It asks
//! again up to `retransmit_attempts` more times while no progress is made
//! (escalating to 2, 3 and 4 spaced copies of the request); any progress
//! resets that count. Data with no progress for `message_ttl` is given up and reported as
//! [`Output::Gap`] (and [`Stats::gaps_unrecovered`]): loss is never silent.
//! Senders resend requested datagrams unchanged, to the group only (never to
//! an address written in a request: several nodes may share a host and port,
//! and a forged request must not make us a reflector), at most once per
//! `d / 4` per datagram, in one copy, within
//! [`Limits::max_repair_bytes_per_requester`] per source address and within a
//! node-wide budget credited by what the node itself emitted; the requests a
//! node sends are budgeted by what it received. See `repair` for the budgets
//! (traffic out ≤ 2 × (own emits + traffic in) + small floors).
//!
//! # Delivery guarantees
//!
//! Each event is delivered at most once. Events of a sender that numbers its
//! messages (this crate) are delivered unless reported in a gap: loss is
//! repaired while the sender still retains the message (`3 * message_ttl`).
//! No ordering is guaranteed (events are delivered as they complete). A late
//! joiner gets a sender's events from the first one it sees onwards (plus
//! reordered slightly older ones that arrive within `message_ttl`); when that
//! first one is among the sender's first 32, or its `snAge` says the sender's
//! numbering started while this endpoint was listening (and it is among the
//! first 16,384), it asks for the earlier ones.
//! Events of 0.1.x senders (no `sn`): chunk loss is repaired, whole-datagram
//! loss cannot be detected.
//!
//! # Authenticated encryption
//!
//! With [`Encryption::Secure`] every datagram, chunks, requests and
//! heartbeats included, is sealed on its own; anything that does not open is
//! dropped and counted ([`Stats::rejected_decrypt`]). Authenticated datagrams
//! whose `time` is more than `3 * message_ttl + 5 s` old or 5 s in the future
//! are dropped as replays ([`Stats::rejected_replay`]); within that window the
//! per-sender `sn` window drops repeats. Events must carry `sn`.

mod config;
mod endpoint;
mod fifo_set;
pub mod names;
mod presence;
mod reassembly;
mod repair;
mod request;
mod retention;
#[cfg(any(test, feature = "testing"))]
pub mod sim;
mod sn;
mod stats;
pub mod timefmt;
mod tracker;

pub use crate::wire::beacon::{PeerStats, PeerTransport};
pub use crate::wire::exchange::{RemoteFailure, RequestId};
pub use config::{Advertised, Config, Encryption, Identity, Limits, PresenceConfig};
pub use endpoint::{Endpoint, HEARTBEAT_EVENT};
pub use presence::{PeerChange, PeerDownReason, PeerInfo};
pub use request::RepairRequest;
pub use sn::MAX_SN;
pub use stats::Stats;

/// The source a driver passes to [`Endpoint::handle_datagram`] when its
/// transport has no source address (NATS): `0.0.0.0:0`. Budgets then go by
/// the requester id a repair request names (see the `repair` module docs).
/// Exactly this address, port 0 included: a UDP datagram may show source
/// IP `0.0.0.0` (a host without an address yet, or loopback multicast in
/// some namespaces), never port 0.
pub const NO_SOURCE_ADDRESS: std::net::SocketAddr =
    std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));

use bson::Bson;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The multicast group and port the node is joined to.
    Group,
    /// One address. The engine itself never produces it: requests and repairs
    /// go to the group (see the module docs).
    Unicast(SocketAddr),
}

/// A datagram the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: Destination,
    /// The complete datagram (derefs to `&[u8]`).
    pub payload: SharedBytes,
}

/// An immutable byte slice sharing its buffer: the datagrams of one sent
/// message are encoded into one buffer that the retention (kept for repair)
/// and the [`Transmit`]s (and repeated repairs) share without copying.
/// Derefs to `&[u8]`; compares by content.
#[derive(Clone)]
pub struct SharedBytes {
    buf: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl SharedBytes {
    /// Splits `buf` at `ends` (increasing offsets, the last one `buf.len()`)
    /// into slices sharing one allocation.
    pub fn split(buf: Vec<u8>, ends: &[usize]) -> Vec<SharedBytes> {
        let buf = Arc::new(buf);
        let mut start = 0;
        ends.iter()
            .map(|&end| {
                let s = SharedBytes { buf: Arc::clone(&buf), start, end };
                start = end;
                s
            })
            .collect()
    }
}

impl SharedBytes {
    /// The whole of `buf`, shared from here on.
    pub(crate) fn whole(buf: Arc<Vec<u8>>) -> Self {
        let end = buf.len();
        SharedBytes { buf, start: 0, end }
    }

    /// The buffer back when this is the only handle on it (no transmit,
    /// queue or other slice holds it any more), for the next message to be
    /// written into without an allocation; `None` while it is shared.
    pub(crate) fn reclaim(mut self) -> Option<Arc<Vec<u8>>> {
        Arc::get_mut(&mut self.buf)?;
        Some(self.buf)
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(v: Vec<u8>) -> Self {
        let end = v.len();
        SharedBytes { buf: Arc::new(v), start: 0, end }
    }
}

impl From<SharedBytes> for Vec<u8> {
    /// Copies the bytes out (no copy when they are the whole of an unshared buffer).
    fn from(b: SharedBytes) -> Self {
        if b.start == 0 && b.end == b.buf.len() {
            match Arc::try_unwrap(b.buf) {
                Ok(v) => v,
                Err(buf) => buf.to_vec(),
            }
        } else {
            b.to_vec()
        }
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SharedBytes {}

impl PartialEq<[u8]> for SharedBytes {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<Vec<u8>> for SharedBytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == **other
    }
}

/// Who sent an event, from the datagram's meta.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sender {
    /// Sender instance id (16 hex chars).
    pub id: String,
    /// Sender's advertised IPv4 address.
    pub host: String,
    /// Sender's advertised port.
    pub port: u16,
    /// Sender's hostname.
    pub hostname: String,
}

/// An event received from the network, ready to emit.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Event name.
    pub name: String,
    /// Emit arguments.
    pub args: Vec<Bson>,
    /// Who sent it: shared by the events of one sender (one allocation per
    /// sender, not three per event).
    pub sender: Arc<Sender>,
}

/// A request from another node (see [`crate::wire::exchange`]).
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingRequest {
    /// The requester's id for it: a reply names it.
    pub rid: RequestId,
    /// The request's name.
    pub name: String,
    /// How long the requester waits: a reply after that is never looked at.
    pub timeout: std::time::Duration,
    /// The request's arguments.
    pub args: Vec<Bson>,
    /// The requester.
    pub sender: Arc<Sender>,
}

/// A reply to one of our requests.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingReply {
    /// The request it answers.
    pub rid: RequestId,
    /// The value the responder's handler returned, or what it threw.
    pub outcome: Result<Bson, RemoteFailure>,
    /// The responder.
    pub sender: Arc<Sender>,
}

/// What [`Endpoint::poll_output`] yields.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A complete event to deliver to listeners.
    Event(Event),
    /// A datagram with an unsupported protocol version arrived (`EPRVERSION`).
    /// Other rejections are only counted in [`Stats`].
    VersionMismatch {
        /// The version it carried.
        version: i32,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A peer appeared, left or changed (presence).
    Peer(Box<PeerChange>),
    /// A request for this node's handlers (request/reply).
    Request(Box<IncomingRequest>),
    /// A reply to one of our requests (addressed to us; matching it to the
    /// request, by id, is the caller's).
    Reply(Box<IncomingReply>),
    /// Messages of `sender` that can no longer be recovered (loss beyond repair).
    Gap {
        /// Sender instance id.
        sender: String,
        /// How many messages were lost.
        count: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::SharedBytes;

    #[test]
    fn shared_bytes_slices_one_buffer() {
        let parts = SharedBytes::split(b"abcdef".to_vec(), &[2, 2, 5, 6]);
        let as_vecs: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        assert_eq!(as_vecs, [b"ab".to_vec(), vec![], b"cde".to_vec(), b"f".to_vec()]);
        assert_eq!(parts[2], b"cde".to_vec());
        assert_eq!(parts[2], *b"cde".as_slice());
        assert_eq!(parts[0], SharedBytes::from(b"ab".to_vec()));
        assert_eq!(format!("{:?}", parts[3]), "[102]");
        assert_eq!(Vec::from(parts[2].clone()), b"cde");
        let whole = SharedBytes::from(vec![1, 2, 3]);
        let ptr = whole.as_ptr();
        let v = Vec::from(whole);
        assert_eq!((v.as_slice(), v.as_ptr()), ([1u8, 2, 3].as_slice(), ptr)); // unshared: moved, not copied
    }

    #[test]
    fn reclaim_only_an_unshared_buffer() {
        let whole = SharedBytes::whole(std::sync::Arc::new(vec![1, 2, 3]));
        let copy = whole.clone();
        assert!(whole.reclaim().is_none()); // a transmit still holds it
        let buf = copy.reclaim().expect("last handle");
        assert_eq!(*buf, [1, 2, 3]);
        let parts = SharedBytes::split(vec![1, 2, 3], &[1, 3]);
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap();
        assert!(first.reclaim().is_none()); // the other chunk shares the buffer
    }
}
