//! Counters of one endpoint.
//!
//! The field list below is the one source of truth for every place that
//! shows counters: the Rust struct, [`Stats::fields`] (the JS binding's
//! `stats()` object and the CLI's `--stats` JSON are built from it), and
//! `index.d.ts` (checked against it by `__test__/events.test.js`). Adding a
//! counter is one line here plus its type line in `index.d.ts`.

macro_rules! stats {
    ($( $(#[doc = $doc:literal])* $name:ident => $js:literal, )*) => {
        /// Counters; every datagram rejected or state evicted shows up here.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Stats {
            $( $(#[doc = $doc])* pub $name: u64, )*
        }

        impl Stats {
            /// Number of counters.
            pub const COUNT: usize = [$($js),*].len();

            /// Every counter as `(snake_case name, camelCase name, value)`, in declaration order.
            pub fn fields(&self) -> [(&'static str, &'static str, u64); Self::COUNT] {
                [$( (stringify!($name), $js, self.$name) ),*]
            }
        }
    };
}

stats! {
    /// Datagrams handed out by `poll_transmit`.
    datagrams_sent => "datagramsSent",
    /// Datagrams passed to `handle_datagram`.
    datagrams_received => "datagramsReceived",
    /// Events delivered through `poll_output`.
    events_delivered => "eventsDelivered",
    /// Events emitted locally (messages sent).
    events_sent => "eventsSent",
    /// Own datagrams ignored (same instance id).
    own_datagrams_ignored => "ownDatagramsIgnored",
    /// Duplicate chunks or messages ignored.
    duplicates_ignored => "duplicatesIgnored",
    /// Repair requests we sent.
    repairs_requested => "repairsRequested",
    /// Chunks we re-sent in answer to requests.
    repairs_sent => "repairsSent",
    /// Chunks received that filled a gap we had asked for.
    repairs_received => "repairsReceived",
    /// Messages given up on (partial messages expired without completing).
    gaps_unrecovered => "gapsUnrecovered",
    /// Senders that had delivered here, forgotten for room in the sender table (1,024) into a compact record of their delivered numbers.
    senders_compacted => "sendersCompacted",
    /// Compact records of forgotten senders dropped, oldest first, to stay within 16,384.
    sender_records_dropped => "senderRecordsDropped",
    /// Repair requests to a sender not known yet trimmed (fewer indexes) or withheld, to stay within 3× the bytes its chunks brought.
    repair_requests_trimmed => "repairRequestsTrimmed",
    /// Resends withheld because a requester without a source address (NATS: by its id) had used up its credit of 3x the bytes of its requests.
    repairs_credit_limited => "repairsCreditLimited",
    /// Repair requests of ours postponed because another node asked for the same data first.
    repair_requests_suppressed => "repairRequestsSuppressed",
    /// Resends skipped because the same datagram was resent very recently.
    repairs_suppressed => "repairsSuppressed",
    /// Resends withheld because the requester (by source address) exceeded its repair byte budget.
    repairs_rate_limited => "repairsRateLimited",
    /// Repair requests ignored (unknown or expired message, or addressed to another node).
    repair_requests_ignored => "repairRequestsIgnored",
    /// Sent messages dropped from retention before their time to stay within limits.
    retention_dropped => "retentionDropped",
    /// Heartbeats sent (see the `protocol` module docs).
    heartbeats_sent => "heartbeatsSent",
    /// Rejected: authenticated but replayed or stale (outside the replay or freshness window).
    rejected_replay => "rejectedReplay",
    /// Rejected: not a parsable datagram.
    rejected_malformed => "rejectedMalformed",
    /// Rejected: protocol version other than 3.
    rejected_version => "rejectedVersion",
    /// Rejected: could not be decrypted/authenticated, or plaintext when encrypting.
    rejected_decrypt => "rejectedDecrypt",
    /// Rejected or evicted by a limit in [`super::Limits`].
    rejected_limits => "rejectedLimits",
    /// Partial messages evicted to stay within limits.
    partials_evicted => "partialsEvicted",
    /// Bytes currently held in reassembly.
    reassembly_bytes => "reassemblyBytes",
    /// Bytes currently retained for repair.
    retained_bytes => "retainedBytes",
    /// Node driver: notifications dropped because a subscriber's queue was full
    /// (always 0 for a bare [`super::Endpoint`]; filled in by the driver's `Eventcast::stats`).
    notifications_dropped => "notificationsDropped",
    /// Node driver: datagrams that failed to send (socket errors other than "would block").
    send_errors => "sendErrors",
    // Reserved event names (crates/eventcast-engine/src/protocol/names.rs).
    /// Received events dropped because their name is reserved (an instance's own
    /// lifecycle event such as `stop`) or a protocol message this node does not handle.
    rejected_reserved => "rejectedReserved",
    // --- node driver: send backpressure ---
    /// Node driver: bytes waiting in the send queue now (a slow link; bounded by
    /// `Options::send_queue_bytes`).
    send_queue_bytes => "sendQueueBytes",
    /// Node driver: emits refused with `EBACKPRESSURE` because the send queue was full.
    send_queue_full => "sendQueueFull",
    /// Node driver: repair resends dropped because the send queue was full (peers ask again).
    send_queue_repairs_dropped => "sendQueueRepairsDropped",
    // (hostile identifiers).
    /// Chunk-group keys currently stored by reassembly: partial messages plus
    /// remembered completed ids (fixed size each; bounded by
    /// `max_partial_messages + max_completed_ids`).
    reassembly_keys => "reassemblyKeys",
    // -- traffic out bounded by traffic in (see the `repair` module docs).
    /// Resends withheld because the node-wide repair budget (credited by our own emitted bytes) was spent.
    repairs_budget_limited => "repairsBudgetLimited",
    /// Repair requests not sent because the node-wide request budget (credited by bytes received) was spent.
    repair_requests_rate_limited => "repairRequestsRateLimited",
    /// Messages given up on whose sender was never heard from (no complete event,
    /// never 8 chunks of one message): counted, not reported as a gap (they may be forged).
    gaps_unconfirmed => "gapsUnconfirmed",
    // Mixed fleets with 0.1.x.
    /// 0.1.x repair requests for data this node does not hold, forwarded once
    /// to the group (they reached this node by unicast on a shared host).
    repair_requests_relayed => "repairRequestsRelayed",
    /// 0.1.x repair requests not answered (nor forwarded) because the same
    /// source already had its answer for that chunk group: 0.1.x asks once
    /// per partial message, so a second request comes from a partial that
    /// late copies started after the message completed there (answering it
    /// delivers the message twice) or was dropped.
    legacy_repeat_requests_ignored => "legacyRepeatRequestsIgnored",
    // --- node driver: NATS transport ---
    /// NATS: connections established (the first, then every reconnect).
    nats_connects => "natsConnects",
    /// NATS: times the connection to the server was lost (the client reconnects by itself).
    nats_disconnects => "natsDisconnects",
    /// NATS: slow-consumer notices (the server or client dropped messages for us; repaired or reported as gaps).
    nats_slow_consumer => "natsSlowConsumer",
    /// NATS: errors the server reported (`-ERR`, e.g. a permissions violation).
    nats_server_errors => "natsServerErrors",
    /// NATS: messages on the subject larger than any datagram (128 KiB), dropped before decoding.
    nats_oversize_dropped => "natsOversizeDropped",
    /// NATS: bundles published (one NATS message carrying several datagrams of a burst).
    nats_bundles_sent => "natsBundlesSent",
    /// NATS: bundles received (their datagrams count in `datagramsReceived` one by one).
    nats_bundles_received => "natsBundlesReceived",
    /// NATS: bundles refused whole (a frame not framed as a datagram, or running past the bundle): none of their datagrams was used.
    nats_bundles_malformed => "natsBundlesMalformed",
    /// Rejected: an event with more arguments or values than any node sends
    /// (`wire::MAX_ARGS`, `wire::MAX_VALUES`), refused before conversion.
    rejected_too_many_values => "rejectedTooManyValues",
    // --- presence ---
    /// Presence beacons sent (hello and goodbye).
    beacons_sent => "beaconsSent",
    /// Presence beacons received and accepted (malformed ones count in `rejectedMalformed`).
    beacons_received => "beaconsReceived",
    /// Peers in the presence table now (bounded by `presence.maxPeers`).
    peers_known => "peersKnown",
    /// Peers forgotten for room: the presence table was full when another appeared (`'peerDown'`, reason `evicted`).
    peers_evicted => "peersEvicted",
    /// New peers not admitted to the presence table: more than `presence.maxPeers` appeared within one `presence.timeout` (a flood of new ids); each tries again at its next beacon or event.
    peers_refused => "peersRefused",
    // --- request/reply ---
    /// Requests sent (`request`, `gather`).
    requests_sent => "requestsSent",
    /// Requests received from other nodes (whether or not a handler took them).
    requests_received => "requestsReceived",
    /// Requests received for a name this node has no handler for (ignored: another node may answer).
    requests_unhandled => "requestsUnhandled",
    /// Requests refused because this node already had as many in progress as it answers at once (no reply sent).
    requests_refused => "requestsRefused",
    /// Replies sent (values and errors).
    replies_sent => "repliesSent",
    /// Replies received that were addressed to this node.
    replies_received => "repliesReceived",
    /// Replies addressed to other nodes (on the group: dropped unread).
    replies_not_ours => "repliesNotOurs",
    /// Replies addressed to this node matching no request in progress (late, a second reply to `request`, or forged): dropped.
    replies_unmatched => "repliesUnmatched",
    /// Replies a handler produced after its requester's timeout had passed: not sent.
    replies_late => "repliesLate",
}
