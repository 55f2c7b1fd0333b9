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
//! tests deterministic (see [`sim`]).

mod config;
mod endpoint;
mod reassembly;
mod repair;
mod request;
mod retention;
pub mod sim;
mod stats;
pub mod timefmt;
mod tracker;

pub use config::{Config, Encryption, Identity, Limits};
pub use endpoint::{Endpoint, HEARTBEAT_EVENT};
pub use request::RepairRequest;
pub use stats::Stats;

use bson::Bson;
use std::net::SocketAddr;

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The multicast group and port the node is joined to.
    Group,
    /// One address (used only to answer 0.1.x peers, see the module docs of `endpoint`).
    Unicast(SocketAddr),
}

/// A datagram the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: Destination,
    /// The complete datagram.
    pub payload: Vec<u8>,
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
    /// Who sent it.
    pub sender: Sender,
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
    /// Messages of `sender` that can no longer be recovered (loss beyond repair).
    Gap {
        /// Sender instance id.
        sender: String,
        /// How many messages were lost.
        count: u64,
    },
}
