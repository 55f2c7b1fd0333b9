//! Per-sender loss tracking by message number (`sn`): the tracked senders
//! (bounded), their request timers, and `'gap'` reports.
//!
//! # Who is forgotten when the table is full
//!
//! Sender ids are claims: anyone can write a datagram from a made-up id, and
//! each new id asks for a place in the table. Forgetting a sender that
//! delivered events here would be what a flood of made-up ids buys: its next
//! message would open a fresh window, which either starts at message 1
//! again (a young stream: everything the sender still retains delivered a
//! second time) or joins late (an older stream: what was lost in between
//! neither asked for nor reported). So the table has two classes:
//!
//! * senders that never delivered an event here (a forger's partials,
//!   control messages, ...): forgotten first, least recently heard first;
//! * senders that delivered: forgotten only when the whole table is theirs,
//!   and then into a compact record ([`SenderRecords`]: id → the highest
//!   `sn` settled), their missing and in-progress messages reported as a
//!   gap. A sender that comes back resumes from its record
//!   ([`Peer::resumed`]): what it sent up to the record is a duplicate,
//!   anything after it is tracked and asked for.
//!
//! Records are bounded too ([`MAX_SENDER_RECORDS`], oldest dropped first,
//! counted in `senderRecordsDropped`): a forger must deliver events from
//! that many distinct ids (plaintext only: with authenticated encryption
//! only key holders deliver) to make a quiet sender's record go.

use super::{items_per_request, Endpoint, MAX_REQUESTS_PER_ROUND};
use crate::protocol::repair::{KnownSenders, Nack};
use crate::protocol::request::{RepairRequest, MAX_ITEMS_PER_REQUEST};
use crate::protocol::tracker::{Peer, Sn};
use crate::protocol::Output;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Most senders tracked for message-level loss detection (see the module
/// docs for which one is forgotten first).
const MAX_SENDERS: usize = 1024;

/// Most compact records of forgotten senders that had delivered here
/// (about 100 bytes each).
pub(crate) const MAX_SENDER_RECORDS: usize = 16_384;

/// Compact records of senders that delivered here and were forgotten for
/// room: id → highest `sn` settled. Bounded, oldest dropped first.
#[derive(Default)]
pub(crate) struct SenderRecords {
    /// id → (highest settled `sn`, insertion number).
    map: HashMap<String, (i64, u64)>,
    /// Insertion order; entries whose number no longer matches the map's
    /// were taken back and are skipped.
    order: VecDeque<(String, u64)>,
    next: u64,
}

impl SenderRecords {
    /// Records `id`; returns whether an older record had to be dropped.
    fn insert(&mut self, id: &str, settled: i64) -> bool {
        let mut dropped = false;
        while self.map.len() >= MAX_SENDER_RECORDS {
            let Some((old, n)) = self.order.pop_front() else { break };
            if self.map.get(&old).is_some_and(|(_, m)| *m == n) {
                self.map.remove(&old);
                dropped = true;
            }
        }
        self.next += 1;
        self.map.insert(id.to_owned(), (settled, self.next));
        self.order.push_back((id.to_owned(), self.next));
        // Stale entries (taken back) are skipped above; keep the queue from
        // growing without bound under take/insert churn.
        if self.order.len() > 2 * MAX_SENDER_RECORDS {
            let map = &self.map;
            self.order.retain(|(id, n)| map.get(id).is_some_and(|(_, m)| m == n));
        }
        dropped
    }

    /// Takes `id`'s record back.
    fn take(&mut self, id: &str) -> Option<i64> {
        self.map.remove(id).map(|(settled, _)| settled)
    }

    /// Whether `id` has a record.
    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }
}

/// [`Endpoint::is_known`] on the fields it reads (for callers holding
/// another field mutably).
pub(super) fn known_in(known: &KnownSenders, peers: &HashMap<String, Peer>, records: &SenderRecords, id: &str) -> bool {
    known.contains(id) || peers.get(id).is_some_and(|p| p.delivered) || records.contains(id)
}

impl Endpoint {
    /// Creates the loss-tracking state of `id` unless it exists: resumed
    /// from its compact record if it has one, else with `new`. Makes room
    /// first (see the module docs).
    pub(super) fn ensure_peer(&mut self, now: Instant, id: &str, new: impl FnOnce() -> Peer) {
        if self.peers.contains_key(id) {
            return;
        }
        if self.peers.len() >= MAX_SENDERS {
            let lru = |it: &mut dyn Iterator<Item = (&String, &Peer)>| {
                it.min_by_key(|(_, p)| p.last_heard).map(|(k, _)| k.clone())
            };
            let victim =
                lru(&mut self.peers.iter().filter(|(_, p)| !p.delivered)).or_else(|| lru(&mut self.peers.iter()));
            if let Some(old) = victim {
                self.forget_peer(&old);
            }
        }
        let peer = match self.records.take(id) {
            Some(settled) => Peer::resumed(now, settled, self.config.message_ttl),
            None => new(),
        };
        self.peers.insert(id.to_owned(), peer);
    }

    /// Forgets sender `id` for room: its losses are reported; one that
    /// delivered here leaves a compact record.
    fn forget_peer(&mut self, id: &str) {
        let Some(p) = self.peers.remove(id) else { return };
        self.set_peer_deadline(id, None);
        if p.delivered {
            let (settled, lost) = p.settled_upto();
            self.stats.senders_compacted += 1;
            // Logged at counts 1, 2, 4, 8, ...: a flood must not become a log flood.
            if self.stats.senders_compacted.is_power_of_two() {
                tracing::info!(
                    "eventcast: sender table full of senders that delivered here; {id} kept as a compact record \
                     (sendersCompacted {})",
                    self.stats.senders_compacted
                );
            }
            if self.records.insert(id, settled) {
                self.stats.sender_records_dropped += 1;
                if self.stats.sender_records_dropped.is_power_of_two() {
                    tracing::warn!(
                        "eventcast: {MAX_SENDER_RECORDS} records of forgotten senders are full, the oldest dropped: \
                         such a sender that comes back joins anew (senderRecordsDropped {})",
                        self.stats.sender_records_dropped
                    );
                }
            }
            self.report_gap(id, lost);
        } else {
            self.report_gap(id, p.missing_count());
        }
    }

    /// Whether `id` counts as heard from (see [`KnownSenders`]): only such
    /// senders get escalating requests and `'gap'` reports. Tracked senders
    /// that delivered, and records of them, count whatever happened to the
    /// bounded known set.
    pub(super) fn is_known(&self, id: &str) -> bool {
        known_in(&self.known, &self.peers, &self.records, id)
    }

    /// Whether a sender first heard of at `now`, whose numbering's age the
    /// datagram gives as `sn_age` (`snAge`), started numbering while we were
    /// listening (since this endpoint's creation, or the last
    /// `listening_since`). Then we missed its first messages rather than
    /// joined late, and ask for them (see `tracker`, "Joining").
    ///
    /// No margin: the age was taken when the datagram left, so the time it
    /// spent in transit only adds to what we listened; a stream that began
    /// after we started listening always satisfies `age <= listened`. The
    /// rule errs only the harmless way: a stream begun just before we
    /// really listened (in transit, or while the driver set its socket up
    /// after creating the endpoint) has its first messages asked for, and
    /// the sender still retains them (`3 × message_ttl`): delivered, not
    /// lost. A margin the other way (even the base repair delay, 375 ms by
    /// default) left every sender started within it of a receiver exposed
    /// to silent loss of its first messages: a receiver and a sender started
    /// together, the common case, exactly. A resent datagram carries the age
    /// of its first sending, so it can make a stream look younger by at most
    /// the retention time; the requests that may cause stay within the
    /// repair budgets, and what the sender no longer has is reported as a gap.
    pub(super) fn started_while_listening(&self, now: Instant, sn_age: Option<Duration>) -> bool {
        let Some(age) = sn_age else { return false };
        age <= now.saturating_duration_since(self.listening_from)
    }

    /// Reports `count` messages of `sender` lost for good, if it is known
    /// (delivered a complete event here); otherwise only counts them: a
    /// forged partial from a made-up id must not raise `'gap'` events.
    pub(super) fn report_gap(&mut self, sender: &str, count: u64) {
        if count == 0 {
            return;
        }
        // Saturating: a count comes from numbers a sender claimed.
        if self.is_known(sender) {
            self.stats.gaps_unrecovered = self.stats.gaps_unrecovered.saturating_add(count);
            self.outputs.push_back(Output::Gap { sender: sender.to_owned(), count });
            self.presence_gap(sender, count);
        } else {
            self.stats.gaps_unconfirmed = self.stats.gaps_unconfirmed.saturating_add(count);
        }
    }

    /// Message `sn` of `sender` is lost for good (its partial expired or was evicted).
    pub(super) fn peer_give_up(&mut self, now: Instant, sender: &str, sn: Sn) {
        let Some(p) = self.peers.get_mut(sender) else { return };
        let before = p.missing_count();
        let news = p.give_up(sn);
        self.peer_changed(now, sender, before, u64::from(news));
    }

    /// Re-arms the request timer of `id` after its window changed and reports `lost` messages.
    pub(super) fn peer_changed(&mut self, now: Instant, id: &str, before: u64, lost: u64) {
        self.report_gap(id, lost);
        let delay = self.timing.jittered(&mut self.rng);
        let Some(p) = self.peers.get_mut(id) else { return };
        let after = p.missing_count();
        if after == 0 {
            p.nack = Nack { due: None, attempts: 0 };
        } else if after < before {
            p.nack.progress(now, delay);
            p.last_progress = now;
        } else if after > before && p.nack.due.is_none() {
            p.nack = Nack::armed(now, delay);
            p.last_progress = now;
        }
        // What reschedule_peer does, without looking the peer up again.
        let deadline = Self::peer_deadline(p, self.config.message_ttl);
        self.set_peer_deadline(id, deadline);
    }

    /// When `p`'s timer must fire: its next request or its give-up time, if
    /// anything is missing, or when a far jump may take over.
    fn peer_deadline(p: &Peer, ttl: Duration) -> Option<Instant> {
        let repair =
            (p.missing_count() > 0).then(|| p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl)));
        repair.into_iter().chain(p.challenge_deadline()).min()
    }

    pub(super) fn reschedule_peer(&mut self, id: &str) {
        let ttl = self.config.message_ttl;
        let deadline = self.peers.get(id).and_then(|p| Self::peer_deadline(p, ttl));
        self.set_peer_deadline(id, deadline);
    }

    fn set_peer_deadline(&mut self, id: &str, deadline: Option<Instant>) {
        if let Some(old) = self.peer_deadlines.remove(id) {
            self.peer_timers.remove(&(old, id.to_owned()));
        }
        if let Some(d) = deadline {
            self.peer_deadlines.insert(id.to_owned(), d);
            self.peer_timers.insert((d, id.to_owned()));
        }
    }

    pub(super) fn peer_timeout(&mut self, now: Instant, id: &str) {
        // A far jump that proved itself takes over (see `tracker`).
        if let Some(p) = self.peers.get_mut(id) {
            let before = p.missing_count();
            if let Some(lost) = p.poll(now) {
                self.peer_changed(now, id, before, lost);
            }
        }
        let ttl = self.config.message_ttl;
        let delay = self.timing.jittered(&mut self.rng);
        // A sender never heard from (no complete event) gets one round, one copy.
        let known = self.is_known(id);
        let retries = if known { self.config.retransmit_attempts } else { 0 };
        let Some(p) = self.peers.get_mut(id) else {
            self.set_peer_deadline(id, None);
            return;
        };
        if now >= p.last_progress + ttl {
            let lost = p.give_up_missing();
            p.nack = Nack { due: None, attempts: 0 };
            self.report_gap(id, lost);
        } else if p.nack.due.is_some_and(|d| d <= now) {
            let per_request = items_per_request(self.config.max_payload_size, 15);
            let limit = per_request * if known { MAX_REQUESTS_PER_ROUND } else { 1 };
            // Not what another receiver asked for within `d`: its repair is
            // on its way (see `Heard`).
            let window = self.timing.base;
            p.heard.forget_stale(now, window);
            let mut missing = p.missing(limit + p.heard.len());
            let all = missing.len();
            missing.retain(|&sn| !p.heard.covers(now, sn, window));
            missing.truncate(limit);
            if missing.is_empty() && all > 0 {
                p.nack.wait(now, delay);
                self.stats.repair_requests_suppressed += 1;
                self.reschedule_peer(id);
                return;
            }
            p.asked_upto = p.asked_upto.max(missing.last().copied().unwrap_or(0));
            let copies = p.nack.fire(now, delay, retries);
            let copies = if known { copies } else { 1 };
            let msg_bytes = p.msg_bytes as usize;
            // A sender not known yet pays for our requests with its own
            // bytes, as for partials (see the `repair` module docs).
            let mut allowance = usize::try_from(
                p.received.saturating_mul(super::UNKNOWN_REQUEST_FACTOR as u64).saturating_sub(p.requested),
            )
            .unwrap_or(usize::MAX);
            let start = allowance;
            for batch in missing.chunks(per_request) {
                let mut req = RepairRequest {
                    id: self.identity.id.clone(),
                    seq_id: String::new(),
                    missed_seq: Vec::new(),
                    host: self.identity.host.clone(),
                    port: i32::from(self.identity.port),
                    missed_sn: batch.to_vec(),
                    to: Some(id.to_owned()),
                    relayed: false,
                };
                // Each message is answered with all its datagrams, at most
                // MAX_ITEMS_PER_REQUEST of them.
                if known {
                    let answer = (batch.len().saturating_mul(msg_bytes.max(1)))
                        .min(MAX_ITEMS_PER_REQUEST * self.answer_datagram_bytes());
                    self.send_request(now, &req, copies, answer);
                } else if !self.send_request_within(now, &mut req, &mut allowance) {
                    break;
                }
            }
            if !known {
                if let Some(p) = self.peers.get_mut(id) {
                    p.requested = p.requested.saturating_add((start - allowance) as u64);
                }
            }
        }
        self.reschedule_peer(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_records_are_bounded_and_taken_back_once() {
        let mut r = SenderRecords::default();
        assert!(!r.insert("a", 7));
        assert_eq!(r.take("a"), Some(7));
        assert_eq!(r.take("a"), None);
        // Churn of taking back and recording again does not grow the queue.
        for i in 0..4 * MAX_SENDER_RECORDS as i64 {
            r.insert("b", i);
            r.take("b");
        }
        assert!(r.order.len() <= 2 * MAX_SENDER_RECORDS);
        r.insert("a", 9);
        let dropped = (0..MAX_SENDER_RECORDS).filter(|i| r.insert(&i.to_string(), 1)).count();
        assert_eq!(dropped, 1);
        assert!(!r.contains("a") && r.contains("0"));
        assert_eq!(r.map.len(), MAX_SENDER_RECORDS);
    }
}
