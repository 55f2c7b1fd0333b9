//! The endpoint state machine.

use super::{Config, Identity, Output, Stats, Transmit};
use crate::error::Error;
use bson::Bson;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// All protocol state of one node. See the [module docs](super).
pub struct Endpoint {
    _config: Config,
    _identity: Identity,
    stats: Stats,
}

impl Endpoint {
    /// A new endpoint; `seed` seeds its id/nonce generator (fixed in simulations).
    pub fn new(config: Config, identity: Identity, seed: u64) -> Self {
        let _ = seed;
        Endpoint { _config: config, _identity: identity, stats: Stats::default() }
    }
    /// Queues the datagrams of one message. `wall` is the send time written into `time`.
    pub fn emit(&mut self, now: Instant, wall: SystemTime, name: &str, args: &[Bson]) -> Result<(), Error> {
        let _ = (now, wall, name, args);
        todo!("protocol helper")
    }
    /// Feeds one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        let _ = (now, source, datagram);
        todo!("protocol helper")
    }
    /// Runs timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!("protocol helper")
    }
    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        todo!("protocol helper")
    }
    /// Next event or error to deliver.
    pub fn poll_output(&mut self) -> Option<Output> {
        todo!("protocol helper")
    }
    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!("protocol helper")
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
