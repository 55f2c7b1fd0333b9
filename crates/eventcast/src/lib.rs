//! # eventcast
//!
//! A network EventEmitter: named events with arguments over UDP multicast (or
//! NATS), no broker, wire-compatible with the JavaScript `eventcast` 0.1.x.
//!
//! This crate is the driver and the public Rust API: tokio, sockets, NATS,
//! timers. Below it, `eventcast-engine` owns the bytes ([`wire`]) and the
//! sans-IO state machines ([`protocol`]), re-exported here; above it sit the
//! `eventcast` command (crate `eventcast-cli`) and the Node.js addon (crate
//! `eventcast-node`).
//!
//! [`Eventcast`] owns a transport — a multicast UDP socket (socket2:
//! SO_REUSEADDR + SO_REUSEPORT, so several nodes can share one host and
//! port) by default, or a NATS connection ([`Transport::Nats`], see `nats`;
//! the seam is `transport`) — a [`crate::protocol::Endpoint`], and the tasks
//! that drive it. [`Bridge`] relays a multicast group and a NATS subject.
//!
//! # Example
//!
//! ```no_run
//! use eventcast::{Eventcast, Notification, Options};
//! use bson::Bson;
//!
//! # async fn demo() -> Result<(), eventcast::Error> {
//! let node = Eventcast::new(Options::with_port(9000))?;
//! let mut events = node.subscribe();
//! node.start().await?;
//! node.emit("greeting", &[Bson::String("hello".into()), Bson::Int32(5)])?;
//! while let Some(n) = events.recv().await {
//!     if let Notification::Event(e) = n {
//!         println!("{} from {}: {:?}", e.name, e.sender.id, e.args);
//!     }
//! }
//! node.stop().await?;
//! # Ok(()) }
//! ```
//!
//! # IPv6 groups and the interface
//!
//! [`Options::multicast_membership`] is an IPv4 or an IPv6 group, and
//! [`Options::multicast_interface`] names the interface by name, index or
//! address ([`MulticastInterface`]). A link-local IPv6 group needs it
//! ([`needs_interface`]); one the host lacks fails `start()` with
//! [`Error::NoInterface`] (`ENOINTERFACE`), listing the host's interfaces.
//! eventcast 0.1.x nodes speak IPv4 only.
//!
//! ```no_run
//! use eventcast::{Eventcast, MulticastInterface, Options};
//!
//! # async fn demo() -> Result<(), eventcast::Error> {
//! let node = Eventcast::new(Options {
//!     multicast_membership: "ff12::ec:1".parse().unwrap(),
//!     multicast_interface: Some(MulticastInterface::Name("eth0".into())),
//!     ..Options::with_port(9000)
//! })?;
//! node.start().await?;
//! println!("joined on {}", node.interface().expect("started over multicast")); // eth0 (index 2, source fe80::…)
//! # Ok(()) }
//! ```
//!
//! # Parts
//!
//! One idea per file; start from the one named for what you change.
//!
//! * `handle` — the public handle [`Eventcast`] (construction, accessors,
//!   subscribe, stats, test hooks) and [`Status`].
//! * `events` — [`Notification`], [`Events`] subscriptions (and
//!   [`PatternEvents`], the events of matching names), the
//!   [`NotificationSink`], and the fan-out that delivers to them.
//! * `pattern` — [`Pattern`]: the wildcard rule on event names (NATS's `*`
//!   and `>` on `.`-separated tokens), the one definition JS uses too.
//! * `state` — what the handle and the tasks share: `Shared` (atomics,
//!   subscribers, the sink) around one lock on `Core` (endpoint, transport,
//!   send queue); `Core::pump` turns what the endpoint produced into sends
//!   and notifications.
//! * `lifecycle` — `start`/`start_polled`/`stop`: opening the transport,
//!   installing the endpoint, spawning the tasks, the orderly stop.
//! * `emit` — the emit path on the caller's thread.
//! * `request` — request/reply: [`Eventcast::handle`], [`Eventcast::request`],
//!   [`Eventcast::gather`] and the calls the Node binding uses; `exchange` —
//!   its tables (handlers, our pending requests, requests being answered).
//! * `receive` — the receive path: one burst at a time, from the receive
//!   task, or in polled mode from [`Eventcast::receive`] and the stall guard.
//! * `timers` — the timer task (endpoint timers, retries of queued sends).
//! * `send` — the bounded send queue and backpressure; `transport` — the
//!   seam a datagram leaves through (`socket` for multicast UDP, IPv4 or
//!   IPv6, `nats`); `group` — the group and interface options (IPv6
//!   scopes, names, indexes); `interface` — the host's interfaces
//!   (`getifaddrs`) and the option resolved against them at start;
//!   `supervise` — panics become `EINTERNAL` and a stop; `options`;
//!   `bridge` — the multicast ⇄ NATS relay.
//! * `presence` — the presence options, the advertised name, and the JSON
//!   shape of a peer; the table and beacons are the engine's.
//! * `slice` — asks Linux for a short scheduler slice on the threads that run
//!   the driver ([`request_short_slice`]), so a woken worker gets a CPU soon.
//! * Here: own-datagram detection on receipt (`OwnDatagrams`).
//!
//! # Design
//!
//! * All protocol state sits in one `std::sync::Mutex<Endpoint>` with short
//!   critical sections.
//! * [`Eventcast::emit`] runs on the calling thread: it locks, lets the
//!   endpoint build the datagrams and sends them right away with a
//!   non-blocking `sendto`. If the socket buffer is full the rest is queued
//!   and the driver retries it every millisecond. The queue is bounded
//!   ([`Options::send_queue_bytes`]): when full, `emit` fails with
//!   [`Error::Backpressure`] until [`Notification::Drain`]; new data goes
//!   ahead of queued repairs (see `send`). The send
//!   socket is deliberately not registered with the tokio reactor: a
//!   registered socket gets an epoll callback, and the reactor thread a
//!   wake-up, each time the kernel frees a sent datagram — a context switch
//!   per datagram, measured at an eighth of a busy sender's CPU.
//! * Datagrams leave through a send socket of their own (ephemeral port), so
//!   the kernel can drop the multicast loopback copies of our own datagrams
//!   at the receive socket (a socket filter on that source) before we ever
//!   read them; other nodes on this host still get them.
//! * A receive task waits for readability, then drains the socket in a burst
//!   into one reusable arena (no allocation per datagram), feeds the whole
//!   burst to the endpoint under a single lock, sends the resulting repairs
//!   and hands the notifications to the subscribers as a batch.
//! * Or, with [`Eventcast::start_polled`], no receive task: the caller's own
//!   event loop watches the socket and calls [`Eventcast::receive`] (the Node
//!   addon, from the JS thread), which hands the notifications back to it,
//!   with a stall guard thread that reads for a caller blocked for more than
//!   [`POLL_STALL`] (it looks every [`GUARD_TICK`]) and delivers to the sink.
//! * Every task is supervised (see `supervise`): a panic stops the node
//!   with an `EINTERNAL` notification instead of leaving it half alive.
//! * Notifications go to [`Events`] subscriptions and to an optional
//!   synchronous [`NotificationSink`].
//! * A timer task sleeps until [`Endpoint::poll_timeout`](crate::protocol::Endpoint::poll_timeout), runs
//!   `handle_timeout`, and is woken early (a `Notify`) when an emit or a
//!   datagram moves the deadline earlier or queues a send.
//! * Own events are not delivered to this node's subscribers (0.1.x drops
//!   datagrams carrying its own id; the JS layer emits locally itself).
#![warn(missing_docs)]
// Every unsafe operation sits in an `unsafe` block (also inside `unsafe fn`),
// and every `unsafe` block says why it is sound (`// SAFETY: ...`).
#![warn(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub use eventcast_engine::{error, protocol, wire};
pub use eventcast_engine::{Error, Stats, WireError};

#[cfg(test)]
mod skip_report;

mod bridge;
mod burst;
mod counters;
mod emit;
mod events;
mod exchange;
mod group;
mod handle;
mod interface;
mod lifecycle;
mod nats;
mod option_table;
mod options;
mod pattern;
mod presence;
mod receive;
mod request;
pub use request::check_request_timeout;
mod send;
mod slice;
mod socket;
mod state;
mod status;
mod supervise;
#[cfg(all(test, target_os = "linux"))]
mod test_netns;
mod timers;
mod transport;

pub use bridge::{Bridge, BridgeOptions, BridgeStats, BRIDGE_SEEN_CAPACITY, BRIDGE_WINDOW};
pub use events::{Events, Notification, NotificationSink, PatternEvents, SUBSCRIBER_CAPACITY};
pub use exchange::{Reply, Request, MAX_PENDING, MAX_REPLIES, MAX_SERVING};
pub use group::{needs_interface, parse_group, MulticastInterface, MAX_INTERFACE_NAME};
pub use handle::Eventcast;
pub use interface::{host_interfaces, HostInterface, InterfaceInUse};
pub use nats::{
    NATS_BUNDLE_BYTES, NATS_MAX_DATAGRAM, NATS_OUTBOX_BYTES, NATS_SOURCE, NATS_START_TIMEOUT,
    NATS_SUBSCRIPTION_CAPACITY,
};
pub use option_table::{
    option_spec, OptionSpec, OPTION_TABLE, REPL_IDLE_TIMEOUT_BOUND, REPL_MAX_CLIENTS_BOUND, REQUEST_TIMEOUT_BOUND,
};
pub use options::{
    EncryptOptions, NatsOptions, NatsTls, OptionBound, Options, Transport, MAX_PAYLOAD_SIZE_LIMIT, NATS_CHUNK_SIZE,
    OPTION_BOUNDS, PRESENCE_INTERVAL_MS_BOUND, PRESENCE_MAX_PEERS_BOUND, PRESENCE_TIMEOUT_MS_BOUND,
    SEND_QUEUE_BYTES_RANGE,
};
pub use pattern::{Pattern, MAX_PATTERN_BYTES};
pub use presence::{default_name, meta_from_json, peer_json, PresenceOptions};
pub use protocol::{PeerDownReason, PeerInfo, PeerStats, PeerTransport};
pub use protocol::{RemoteFailure, RequestId};
pub use receive::{GUARD_TICK, POLL_STALL};
pub use send::DEFAULT_SEND_QUEUE_BYTES;
pub use slice::{current_slice, driver_runtime_builder, request_short_slice, DRIVER_SLICE_NS, DRIVER_THREAD_NAME};
pub use socket::{advertised_host, hostname, SOCKET_BUFFER_BYTES};
pub use status::Status;
/// The driver tasks a test can make fail ([`Eventcast::inject_fault`]).
#[cfg(feature = "testing")]
pub use supervise::DriverTask;

use state::Shared;

use std::net::SocketAddr;
use std::sync::Arc;

/// How our own datagrams (multicast loopback) are kept out of the endpoint.
#[derive(Clone)]
enum OwnDatagrams {
    /// By the kernel: a socket filter on our send socket's source address.
    Filtered,
    /// On receipt: by that source address, else by the id in the meta.
    Check { source: SocketAddr, id: Arc<str> },
}

impl OwnDatagrams {
    fn is_own(&self, source: SocketAddr, datagram: &[u8]) -> bool {
        match self {
            OwnDatagrams::Filtered => false,
            // By the meta's id: ours coming back through loopback that neither
            // the kernel filter nor the source check caught (no filter on this
            // OS, or the host's address changed since start). Skipping it here
            // saves the decode and the endpoint lock; anything the walk cannot
            // read goes to the endpoint, which decides.
            // By address and port only: an IPv6 source carries the receiving
            // interface as its scope, ours the sending one.
            OwnDatagrams::Check { source: ours, id } => {
                (source.ip() == ours.ip() && source.port() == ours.port())
                    || crate::wire::meta::sender_id(datagram) == Some(id.as_bytes())
            }
        }
    }
}
