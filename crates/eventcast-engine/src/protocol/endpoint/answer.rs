//! Answering repair requests: resending retained datagrams (to the group
//! only, within the budgets), relaying 0.1.x requests once, and NACK
//! suppression when someone else asked for data we miss too.

use super::Endpoint;
use crate::protocol::fifo_set::FifoSet;
use crate::protocol::reassembly::Key;
use crate::protocol::repair::Requester;
use crate::protocol::request::{RepairRequest, MAX_ITEMS_PER_REQUEST};
use crate::protocol::{Destination, SharedBytes, Transmit, NO_SOURCE_ADDRESS};
use crate::wire::RETX_EVENT;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Copies of each chunk resent in answer to a repair request of 0.1.x's
/// shape. A 0.1.x receiver asks once and drops the message `messageTtl`
/// later: with one copy, a message missing `m` chunks survives `p` loss with
/// probability `(1 − p)^m` (35% of 100 KiB messages at 10% loss in
/// `crates/eventcast-engine/tests/sim_legacy_receiver.rs`); with three, `(1 − p³)^m`.
const LEGACY_REPAIR_COPIES: u32 = 3;

/// Time between those copies: loss comes in bursts (a full socket buffer, a
/// busy receiver), so copies sent back to back tend to share a fate. A real
/// 0.1.2 receiver spends ~0.17 ms per chunk (it decodes BSON in JavaScript),
/// so the answers to two receivers' requests (~20 chunks each at 10% loss)
/// take it several milliseconds to read: at 5 ms apart the copies piled up
/// in its socket buffer, which overflowed (the kernel's `RcvbufErrors`), and
/// all three copies of a chunk were lost together. 25 ms lets it drain
/// between copies; the last copy still leaves 50 ms after the first, far
/// within the `messageTtl` (3 s) it waits before dropping the message.
const LEGACY_COPY_SPACING: Duration = Duration::from_millis(25);

/// Most 0.1.x requests remembered as already forwarded to the group.
pub(crate) const MAX_RELAYED_REMEMBERED: usize = 1024;

/// Most (source, chunk group) pairs remembered as answered for 0.1.x. Only
/// requests for groups we hold are entered, so this is about the retained
/// chunked messages times the 0.1.x receivers asking for each; beyond it the
/// oldest is forgotten (a later stray request for it gets answered again).
pub(crate) const MAX_LEGACY_ANSWERED: usize = 4096;

/// The 0.1.x requests already answered, as hashes of (source address, chunk
/// group); bounded, oldest forgotten first.
///
/// A 0.1.2 receiver asks once per partial message and forgets a group once it
/// is complete or dropped. Any chunk of that group arriving afterwards — a
/// further copy of a repair, or a repair another receiver asked for, which we
/// send to the group — starts a new partial there, which asks `messageTtl`
/// later for every other chunk, and delivers the message a second time if they
/// come. So a second request from the same source for the same group is not
/// answered: answering it (in [`LEGACY_REPAIR_COPIES`] copies of nearly the
/// whole message) spent the node-wide repair budget that first requests of
/// later messages needed, made more stray partials, and delivered duplicates
/// (measured with real 0.1.2 receivers: `tests/lab/`, `mixed-012-10`).
pub(crate) struct Answered(FifoSet<u64>);

impl Default for Answered {
    fn default() -> Self {
        Answered(FifoSet::new(MAX_LEGACY_ANSWERED))
    }
}

impl Answered {
    fn key(source: SocketAddr, group: &str) -> u64 {
        let mut h = DefaultHasher::new();
        (source, group).hash(&mut h);
        h.finish()
    }

    fn contains(&self, source: SocketAddr, group: &str) -> bool {
        self.0.contains(&Self::key(source, group))
    }

    fn insert(&mut self, source: SocketAddr, group: &str) {
        self.0.insert(Self::key(source, group));
    }
}

impl Endpoint {
    /// Answers (on the group only) and learns from a repair request of
    /// `wire_len` bytes that came from `source` (the address budgets are
    /// keyed on; ids are claims). [`NO_SOURCE_ADDRESS`] means the transport
    /// has no source address (NATS): then the request's id is the requester,
    /// and it is answered within
    /// [`REPAIR_BYTES_PER_REQUEST_BYTE`](crate::protocol::repair::REPAIR_BYTES_PER_REQUEST_BYTE) × the bytes
    /// of its requests (see the `repair` module docs).
    pub(super) fn handle_request(&mut self, now: Instant, source: SocketAddr, req: &RepairRequest, wire_len: usize) {
        let who = if source == NO_SOURCE_ADDRESS {
            self.requester_credit.credit(now, &req.id, wire_len);
            Requester::Id(&req.id)
        } else {
            Requester::Addr(source)
        };
        let mut answered = false;
        // 0.1.x's shape: no `to`, no `missedSn` (ours always carry `to`).
        let legacy = req.to.is_none() && req.missed_sn.is_empty() && !req.seq_id.is_empty();
        if legacy && self.legacy_answered.contains(source, &req.seq_id) {
            // A stray partial there (see `Answered`): neither answered nor forwarded.
            self.stats.legacy_repeat_requests_ignored += 1;
            answered = true;
        } else if !req.seq_id.is_empty() && req.to.as_ref().is_none_or(|to| *to == self.identity.id) {
            let window = self.timing.resend_window();
            let datagrams = self.retention.repair_chunks(now, &req.seq_id, &req.missed_seq, window);
            if !datagrams.is_empty() {
                answered = true;
                // 0.1.x's shape (no `to`, no `missedSn`): its sender asks once
                // and gives up a `messageTtl` later, so one lost repair loses
                // the message. Each chunk goes out in LEGACY_REPAIR_COPIES
                // copies, spaced in time (loss comes in bursts), within the
                // same budgets as any repair.
                let copies = if legacy { LEGACY_REPAIR_COPIES } else { 1 };
                self.send_repairs(now, who, datagrams, copies);
            } else if self.retention.has_group(&req.seq_id) {
                answered = true;
                self.stats.repairs_suppressed += 1;
            }
            if answered && legacy {
                self.legacy_answered.insert(source, &req.seq_id);
            }
        }
        if !req.missed_sn.is_empty() && req.to.as_deref() == Some(self.identity.id.as_str()) {
            let window = self.timing.resend_window();
            let datagrams = self.retention.repair_messages(now, &req.missed_sn, window, MAX_ITEMS_PER_REQUEST);
            if !datagrams.is_empty() {
                answered = true;
                self.send_repairs(now, who, datagrams, 1);
            } else if req.missed_sn.iter().any(|&sn| self.retention.has_sn(sn)) {
                answered = true;
                self.stats.repairs_suppressed += 1;
            }
        }
        if !answered {
            // (A repeated 0.1.x request counts in `legacy_repeat_requests_ignored` instead.)
            self.stats.repair_requests_ignored += 1;
            if req.to.is_none() && req.missed_sn.is_empty() && !req.relayed && !req.seq_id.is_empty() {
                self.relay_legacy_request(now, req);
            }
        }
        if let (Some(to), false) = (&req.to, req.missed_sn.is_empty()) {
            let delay = self.timing.jittered(&mut self.rng);
            let window = self.timing.base;
            // Item by item (see `Heard`): note what we miss too; wait only
            // when what others asked for covers all we miss.
            let postponed = match self.peers.get_mut(to) {
                Some(p) if p.nack.due.is_some() && req.missed_sn.iter().any(|&sn| p.is_missing(sn)) => {
                    for &sn in &req.missed_sn {
                        if p.is_missing(sn) {
                            p.heard.note(now, sn, window);
                        }
                    }
                    let covered = p.heard.recent(now, window).filter(|&sn| p.is_missing(sn)).count() as u64;
                    if covered >= p.missing_count() {
                        p.nack.postpone(now, delay);
                    }
                    covered >= p.missing_count()
                }
                _ => false,
            };
            if postponed {
                self.stats.repair_requests_suppressed += 1;
                let to = to.clone();
                self.reschedule_peer(&to);
            }
        }
        // NACK suppression: someone else asked for data we miss too; its repair
        // will reach us through the group, so wait before asking ourselves.
        if !req.seq_id.is_empty() {
            let key = match &req.to {
                Some(to) => Key::parse(to, &req.seq_id),
                None => self.reassembly.find_group(&req.seq_id),
            };
            if let Some(key) = key {
                let delay = self.timing.jittered(&mut self.rng);
                let ttl = self.config.message_ttl;
                let window = self.timing.base;
                if let Some(p) = self.reassembly.get_mut(&key) {
                    if p.nack.due.is_some() && p.misses_any(&req.missed_seq) {
                        // Item by item, as for messages above.
                        for &i in &req.missed_seq {
                            if p.misses(i) {
                                p.heard.note(now, i64::from(i), window);
                            }
                        }
                        let covered = p.heard.recent(now, window).filter(|&i| p.misses(i as i32)).count();
                        if covered >= p.missing_count() {
                            p.nack.postpone(now, delay);
                            let deadline = p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl));
                            self.stats.repair_requests_suppressed += 1;
                            self.reassembly.reschedule(&key, deadline);
                        }
                    }
                }
            }
        }
    }

    /// Forwards a 0.1.x request for data we do not hold to the group, once.
    ///
    /// A 0.1.x receiver sends its request unicast to the sender's advertised
    /// `host:port`. Where several nodes share that host and port, the kernel
    /// hands a unicast datagram to one socket only, which may not be the
    /// sender's. Our own requests always carry `to`, so one without it (and
    /// not marked `relayed`) came from a 0.1.x node; the copy we multicast is
    /// marked `relayed` and never forwarded again. The real sender answers it
    /// (ours on the group; a 0.1.x one unicast to the requester named inside).
    /// Each (requester, chunk group) is forwarded at most once, from the
    /// node-wide request budget.
    fn relay_legacy_request(&mut self, now: Instant, req: &RepairRequest) {
        let mut h = DefaultHasher::new();
        (&req.id, &req.seq_id).hash(&mut h);
        let key = h.finish();
        if !self.relayed.insert(key) {
            return;
        }
        let doc = RepairRequest { relayed: true, ..req.clone() }.to_document();
        if self.send_control(now, RETX_EVENT, &doc, 1, true, None) > 0 {
            self.stats.repair_requests_relayed += 1;
        }
    }

    /// Resends `datagrams` to the group, each in `copies` copies
    /// [`LEGACY_COPY_SPACING`] apart, within the node-wide repair budget and
    /// the requester's budget (every copy pays): its source address's byte
    /// rate, or without a source address its id's credit.
    fn send_repairs(&mut self, now: Instant, who: Requester<'_>, datagrams: Vec<SharedBytes>, copies: u32) {
        for d in datagrams {
            for copy in 0..copies.max(1) {
                if !self.repair_credit.can_take(now, d.len()) {
                    self.stats.repairs_budget_limited += 1;
                    break;
                }
                let allowed = match who {
                    Requester::Addr(source) => self.repair_budget.take(now, source, d.len()),
                    Requester::Id(id) => self.requester_credit.take(id, d.len()),
                };
                if !allowed {
                    match who {
                        Requester::Addr(_) => self.stats.repairs_rate_limited += 1,
                        Requester::Id(id) => {
                            self.stats.repairs_credit_limited += 1;
                            if self.stats.repairs_credit_limited.is_power_of_two() {
                                tracing::debug!(
                                    "eventcast: repairs for {id} withheld beyond 3x its request bytes \
                                     (repairsCreditLimited {})",
                                    self.stats.repairs_credit_limited
                                );
                            }
                        }
                    }
                    break;
                }
                self.repair_credit.take(now, d.len());
                self.stats.repairs_sent += 1;
                if copy == 0 {
                    self.transmits.push_back(Transmit { destination: Destination::Group, payload: d.clone() });
                } else {
                    self.delay(now + LEGACY_COPY_SPACING * copy, std::slice::from_ref(&d));
                }
            }
        }
    }
}
