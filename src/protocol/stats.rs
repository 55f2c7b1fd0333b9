//! Counters of one endpoint.

/// Counters; every datagram rejected or state evicted shows up here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed out by `poll_transmit`.
    pub datagrams_sent: u64,
    /// Datagrams passed to `handle_datagram`.
    pub datagrams_received: u64,
    /// Events delivered through `poll_output`.
    pub events_delivered: u64,
    /// Events emitted locally (messages sent).
    pub events_sent: u64,
    /// Own datagrams ignored (same instance id).
    pub own_datagrams_ignored: u64,
    /// Duplicate chunks or messages ignored.
    pub duplicates_ignored: u64,
    /// Repair requests we sent.
    pub repairs_requested: u64,
    /// Chunks we re-sent in answer to requests.
    pub repairs_sent: u64,
    /// Chunks received that filled a gap we had asked for.
    pub repairs_received: u64,
    /// Messages given up on (partial messages expired without completing).
    pub gaps_unrecovered: u64,
    /// Repair requests of ours postponed because another node asked for the same data first.
    pub repair_requests_suppressed: u64,
    /// Resends skipped because the same datagram was resent very recently.
    pub repairs_suppressed: u64,
    /// Resends withheld because the requester exceeded its repair byte budget.
    pub repairs_rate_limited: u64,
    /// Repair requests ignored (unknown or expired message, or addressed to another node).
    pub repair_requests_ignored: u64,
    /// Sent messages dropped from retention before their time to stay within limits.
    pub retention_dropped: u64,
    /// Heartbeats sent (see the `protocol` module docs).
    pub heartbeats_sent: u64,
    /// Rejected: authenticated but replayed or stale (outside the replay or freshness window).
    pub rejected_replay: u64,
    /// Rejected: not a parsable datagram.
    pub rejected_malformed: u64,
    /// Rejected: protocol version other than 3.
    pub rejected_version: u64,
    /// Rejected: could not be decrypted/authenticated, or plaintext when encrypting.
    pub rejected_decrypt: u64,
    /// Rejected or evicted by a limit in [`super::Limits`].
    pub rejected_limits: u64,
    /// Partial messages evicted to stay within limits.
    pub partials_evicted: u64,
    /// Bytes currently held in reassembly.
    pub reassembly_bytes: u64,
    /// Bytes currently retained for repair.
    pub retained_bytes: u64,
    /// Node driver: notifications dropped because a subscriber's queue was full
    /// (always 0 for a bare [`super::Endpoint`]; filled in by [`crate::Eventcast::stats`]).
    pub notifications_dropped: u64,
    /// Node driver: datagrams that failed to send (socket errors other than "would block").
    pub send_errors: u64,
}
