//! The driver's own counters, beside the engine's [`Stats`](crate::Stats):
//! counted by the tasks and transports, read by `Eventcast::stats`.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Instant;

/// Counters of the driver and its transports.
#[derive(Default)]
pub(crate) struct Counters {
    /// Datagrams a transport refused (counted, and reported where it can be).
    pub send_errors: AtomicU64,
    /// Own datagrams (multicast loopback) skipped before reaching the endpoint.
    pub own_skipped: AtomicU64,
    /// The NATS transport's (all 0 on multicast).
    pub nats: NatsCounters,
}

/// Transport counters, read by `Eventcast::stats`.
#[derive(Default)]
pub(crate) struct NatsCounters {
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    pub slow_consumer: AtomicU64,
    pub server_errors: AtomicU64,
    pub oversize_dropped: AtomicU64,
    pub bundles_sent: AtomicU64,
    pub bundles_received: AtomicU64,
    pub bundles_malformed: AtomicU64,
    /// When the last slow-consumer notice was reported (see `nats::SLOW_CONSUMER_NOTICE_EVERY`).
    pub slow_noticed: Mutex<Option<Instant>>,
}
