//! Per-sender loss tracking by message number (`sn`): the tracked senders
//! (bounded, least recently heard forgotten first), their request timers,
//! and `'gap'` reports.

use super::{items_per_request, Endpoint, MAX_REQUESTS_PER_ROUND};
use crate::protocol::repair::Nack;
use crate::protocol::request::RepairRequest;
use crate::protocol::tracker::{Peer, Sn};
use crate::protocol::Output;
use std::time::{Duration, Instant};

/// Most senders tracked for message-level loss detection; the one heard from
/// least recently is forgotten first (its missing messages reported as a gap).
const MAX_SENDERS: usize = 1024;

impl Endpoint {
    /// Creates the loss-tracking state of `id` with `new` unless it exists.
    pub(super) fn ensure_peer(&mut self, id: &str, new: impl FnOnce() -> Peer) {
        if self.peers.contains_key(id) {
            return;
        }
        if self.peers.len() >= MAX_SENDERS {
            let oldest = self.peers.iter().min_by_key(|(_, p)| p.last_heard).map(|(k, _)| k.clone());
            if let Some(old) = oldest {
                let lost = self.peers.get(&old).map_or(0, Peer::missing_count);
                self.peers.remove(&old);
                self.set_peer_deadline(&old, None);
                self.report_gap(&old, lost);
            }
        }
        self.peers.insert(id.to_owned(), new());
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
        if self.known.contains(sender) {
            self.stats.gaps_unrecovered = self.stats.gaps_unrecovered.saturating_add(count);
            self.outputs.push_back(Output::Gap { sender: sender.to_owned(), count });
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
        let known = self.known.contains(id);
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
            let missing = p.missing(per_request * if known { MAX_REQUESTS_PER_ROUND } else { 1 });
            p.asked_upto = p.asked_upto.max(missing.last().copied().unwrap_or(0));
            let copies = p.nack.fire(now, delay, retries);
            let copies = if known { copies } else { 1 };
            for batch in missing.chunks(per_request) {
                let req = RepairRequest {
                    id: self.identity.id.clone(),
                    seq_id: String::new(),
                    missed_seq: Vec::new(),
                    host: self.identity.host.clone(),
                    port: i32::from(self.identity.port),
                    missed_sn: batch.to_vec(),
                    to: Some(id.to_owned()),
                    relayed: false,
                };
                self.send_request(now, &req, copies);
            }
        }
        self.reschedule_peer(id);
    }
}
