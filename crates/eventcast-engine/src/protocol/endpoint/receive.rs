//! The receive path: authentication and decryption, nesting, chunk
//! reassembly, freshness and duplicate checks, and delivery of events; repair
//! requests go on to [`answer`](super::answer), heartbeats to
//! [`heartbeat`](super::heartbeat).

use super::heartbeat::{heartbeat_fields, HEARTBEAT_EVENT};
use super::Endpoint;
use crate::error::WireError;
use crate::protocol::names;
use crate::protocol::reassembly::{ChunkInfo, Insert, Key, Reject, SenderRef};
use crate::protocol::repair::Nack;
use crate::protocol::request::RepairRequest;
use crate::protocol::timefmt::parse_iso;
use crate::protocol::tracker::{Peer, Sn, Verdict};
use crate::protocol::{Encryption, Event, Output};
use crate::wire::beacon::PRESENCE_EVENT;
use crate::wire::{self, MetaRef, Payload, RETX_EVENT};
use bson::Bson;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How deep datagrams may nest (chunk group → encrypted datagram → inner datagram).
const MAX_DEPTH: u8 = 3;

/// Clock difference between members tolerated by the freshness check.
const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// How a datagram reached the current parsing step.
#[derive(Clone, Copy)]
pub(super) struct Via {
    pub(super) depth: u8,
    /// It was decrypted/authenticated with our key (or came out of a group
    /// whose chunks all were).
    pub(super) protected: bool,
    /// It is the reassembly of a chunk group (may not be a chunk again).
    pub(super) reassembled: bool,
}

impl Endpoint {
    pub(super) fn process(&mut self, now: Instant, source: SocketAddr, bytes: &[u8], via: Via) {
        if via.depth > MAX_DEPTH {
            self.stats.rejected_malformed += 1;
            return;
        }
        if let Encryption::Secure(key) = &self.config.encryption {
            if !via.protected {
                // Everything must be authenticated: plaintext, legacy-encrypted,
                // forged or corrupted datagrams all end here.
                match key.open(bytes) {
                    Ok(inner) => {
                        let next = Via { depth: via.depth + 1, protected: true, reassembled: false };
                        self.process(now, source, &inner, next);
                    }
                    Err(_) => self.stats.rejected_decrypt += 1,
                }
                return;
            }
        }
        let dg = match wire::decode_received(bytes) {
            Ok(d) => d,
            Err(WireError::Version(version)) => {
                self.stats.rejected_version += 1;
                self.outputs.push_back(Output::VersionMismatch { version, source });
                return;
            }
            Err(_) => {
                self.stats.rejected_malformed += 1;
                return;
            }
        };
        let (meta, body) = (dg.meta, dg.body);
        if meta.id == Some(self.identity.id.as_str()) {
            self.stats.own_datagrams_ignored += 1;
            return;
        }
        if matches!(self.config.encryption, Encryption::Secure(_)) && !self.is_fresh(now, &meta) {
            self.stats.rejected_replay += 1;
            return;
        }
        let next = Via { depth: via.depth + 1, ..via };
        if meta.enc {
            match &self.config.encryption {
                Encryption::Legacy(key) if !via.protected => match key.decrypt(body) {
                    Ok(plain) => self.process(now, source, &plain, Via { protected: true, reassembled: false, ..next }),
                    Err(_) => self.stats.rejected_decrypt += 1,
                },
                _ => self.stats.rejected_decrypt += 1,
            }
            return;
        }
        if meta.is_multipart() {
            if via.reassembled {
                self.stats.rejected_malformed += 1;
            } else {
                self.handle_chunk(now, source, meta, body, next, bytes.len());
            }
            return;
        }
        if !matches!(self.config.encryption, Encryption::None) && !via.protected {
            // Plaintext where encryption is configured.
            self.stats.rejected_decrypt += 1;
            return;
        }
        self.handle_message(now, source, meta, body, bytes.len());
    }

    /// Freshness window of the authenticated scheme: `time` may lie at most
    /// `3 * message_ttl + CLOCK_SKEW` in the past (the retention time, so
    /// repairs still pass), `CLOCK_SKEW` in the future, and at most
    /// `CLOCK_SKEW` before this endpoint started: a fresh node has no `sn`
    /// history yet, so without this a datagram captured before it started
    /// could be replayed to it within the window.
    fn is_fresh(&self, now: Instant, meta: &MetaRef<'_>) -> bool {
        let Some(time) = meta.time else { return false };
        let Some(sent) = parse_iso(time) else { return false };
        if sent + CLOCK_SKEW < self.started {
            return false;
        }
        let wall = self.wall_at(now);
        match wall.duration_since(sent) {
            Ok(age) => age <= 3 * self.config.message_ttl + CLOCK_SKEW,
            Err(ahead) => ahead.duration() <= CLOCK_SKEW,
        }
    }

    /// Who sent a datagram, as its meta says (`None` without an id); a port
    /// out of range reads as 0.
    fn sender_ref<'a>(meta: &MetaRef<'a>) -> Option<SenderRef<'a>> {
        Some(SenderRef {
            id: meta.id?,
            host: meta.host.unwrap_or_default(),
            port: meta.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            hostname: meta.hostname.unwrap_or_default(),
        })
    }

    fn handle_chunk(
        &mut self,
        now: Instant,
        source: SocketAddr,
        meta: MetaRef<'_>,
        body: &[u8],
        via: Via,
        wire_len: usize,
    ) {
        let Some(sender) = Self::sender_ref(&meta) else {
            self.stats.rejected_malformed += 1;
            return;
        };
        let sender_id = sender.id;
        let Some(sn) = checked_sn(meta.sn) else {
            // A number out of range (0, negative, absurd): no sender of ours wrote it.
            self.stats.rejected_malformed += 1;
            return;
        };
        let Some(sn_age) = checked_age(meta.sn_age) else {
            self.stats.rejected_malformed += 1;
            return;
        };
        let Some(key) = Key::parse(sender_id, meta.seq_id) else {
            // Not reached: identifiers are checked at decode.
            self.stats.rejected_malformed += 1;
            return;
        };
        let nack = Nack::armed(now, self.timing.jittered(&mut self.rng));
        let protected = self.is_known(sender_id);
        let info = ChunkInfo {
            seq: meta.seq,
            seq_len: meta.seq_len,
            seq_end: meta.seq_end,
            sn: meta.sn,
            sender,
            wire_len,
            protected,
        };
        let mut evicted = Vec::new();
        let result = self.reassembly.insert(now, key, info, body, nack, &mut evicted);
        self.stats.partials_evicted += evicted.len() as u64;
        for e in evicted {
            if let Some(sn) = e.sn.and_then(Sn::new) {
                self.peer_give_up(now, &e.sender, sn);
            }
        }
        if let (Some(sn), Insert::Progress { .. }) = (sn, &result) {
            let on_chunk = |p: &mut Peer| {
                p.received = p.received.saturating_add(wire_len as u64);
                (p.missing_count(), p.on_chunk(now, sn))
            };
            let ttl = self.config.message_ttl;
            // A known sender (the common case) is looked up once.
            let mut changed = self.peers.get_mut(sender_id).map(on_chunk);
            if changed.is_none() {
                let from_start = self.started_while_listening(now, sn_age);
                self.ensure_peer(now, sender_id, || Peer::new(now, sn, ttl, from_start));
                changed = self.peers.get_mut(sender_id).map(on_chunk);
            }
            if let Some((before, lost)) = changed {
                self.peer_changed(now, sender_id, before, lost);
            }
        }
        match result {
            Insert::Rejected(Reject::Malformed) => self.stats.rejected_malformed += 1,
            Insert::Rejected(Reject::Limit) => self.stats.rejected_limits += 1,
            Insert::Duplicate | Insert::Late => self.stats.duplicates_ignored += 1,
            Insert::Progress { repaired, new } => {
                if repaired {
                    self.stats.repairs_received += 1;
                }
                let delay = self.timing.jittered(&mut self.rng);
                let ttl = self.config.message_ttl;
                self.reassembly.progressed(key, now, (!new).then_some(delay), ttl);
            }
            Insert::Complete { data, repaired } => {
                if repaired {
                    self.stats.repairs_received += 1;
                }
                self.process(now, source, &data, Via { reassembled: true, ..via });
            }
        }
    }

    fn handle_message(&mut self, now: Instant, source: SocketAddr, meta: MetaRef<'_>, body: &[u8], wire_len: usize) {
        let Some(name) = meta.name else {
            self.stats.rejected_malformed += 1;
            return;
        };
        // Only the id is needed until the event is known to be delivered.
        let Some(sender_id) = meta.id else {
            self.stats.rejected_malformed += 1;
            return;
        };
        let Some(sn) = checked_sn(meta.sn) else {
            // A number out of range (0, negative, absurd): no sender of ours wrote it.
            self.stats.rejected_malformed += 1;
            return;
        };
        let Some(sn_age) = checked_age(meta.sn_age) else {
            // A negative age: no sender of ours wrote it.
            self.stats.rejected_malformed += 1;
            return;
        };
        if let Some(sn) = sn {
            // A copy of a message already delivered (a request's or reply's
            // second copy, a repair that crossed the original) costs a lookup,
            // not a decode. Control messages carry their own numbers.
            let control = name == HEARTBEAT_EVENT || name == PRESENCE_EVENT || name == RETX_EVENT;
            if !control && self.peers.get(sender_id).is_some_and(|p| p.settled_in_window(sn)) {
                self.stats.duplicates_ignored += 1;
                return;
            }
        }
        let payload = match wire::decode_body(body) {
            Ok(p) => p,
            Err(e @ WireError::TooManyValues { .. }) => {
                self.stats.rejected_too_many_values += 1;
                let n = self.stats.rejected_too_many_values;
                // The 1st, 2nd, 4th, 8th, ...: a flood cannot flood the log.
                if n.is_power_of_two() {
                    tracing::warn!("eventcast: refused an event from {sender_id}: {e} (refusals so far: {n})");
                }
                return;
            }
            Err(_) => {
                self.stats.rejected_malformed += 1;
                return;
            }
        };
        if name == PRESENCE_EVENT {
            // Unnumbered like heartbeats: a replayed beacon within the
            // freshness window only says again that a node is there.
            match (payload, Self::sender_ref(&meta)) {
                (Payload::Document(doc), Some(from)) => self.handle_beacon(now, from, &doc),
                _ => self.stats.rejected_malformed += 1,
            }
            return;
        }
        if name == HEARTBEAT_EVENT {
            match payload {
                Payload::Document(doc) => match heartbeat_fields(&doc, sender_id) {
                    Some(sn) => self.handle_heartbeat(now, sender_id, sn, sn_age, wire_len),
                    None => self.stats.rejected_malformed += 1,
                },
                Payload::Args(_) => self.stats.rejected_malformed += 1,
            }
            return;
        }
        // Once per message: the window below records senders that delivered.
        let deliverable = names::is_deliverable(name);
        if name != RETX_EVENT {
            // Deliver each message once: by `sn` when the sender numbers its
            // messages, else (0.1.x senders) by seqId.
            if meta.sn.is_none() && matches!(self.config.encryption, Encryption::Secure(_)) {
                // Not replay-checkable.
                self.stats.rejected_replay += 1;
                return;
            }
            let fresh = match sn {
                Some(sn) => {
                    let on_message = |p: &mut Peer| {
                        let before = p.missing_count();
                        let repaired = p.is_missing(sn.get()) && sn.get() <= p.asked_upto;
                        let (verdict, lost) = p.on_message(now, sn);
                        // Delivered below: the sender's window now guards what it delivered.
                        p.delivered |= deliverable && verdict == Verdict::Deliver;
                        p.saw_message_bytes(wire_len);
                        (before, repaired, verdict, lost)
                    };
                    // A known sender (the common case) is looked up once.
                    let mut seen = self.peers.get_mut(sender_id).map(on_message);
                    if seen.is_none() {
                        let ttl = self.config.message_ttl;
                        let from_start = self.started_while_listening(now, sn_age);
                        self.ensure_peer(now, sender_id, || Peer::new(now, sn, ttl, from_start));
                        seen = self.peers.get_mut(sender_id).map(on_message);
                    }
                    match seen {
                        Some((before, repaired, verdict, lost)) => {
                            if repaired {
                                self.stats.repairs_received += 1;
                            }
                            self.peer_changed(now, sender_id, before, lost);
                            verdict == Verdict::Deliver
                        }
                        None => true,
                    }
                }
                // The decoder checked both identifiers, so the key parses.
                None => Key::parse(sender_id, meta.seq_id).is_some_and(|k| self.reassembly.mark_single_done(k)),
            };
            if !fresh {
                self.stats.duplicates_ignored += 1;
                return;
            }
        }
        if name == RETX_EVENT {
            match payload {
                Payload::Document(doc) => match RepairRequest::from_document(&doc) {
                    Some(req) => self.handle_request(now, source, &req, wire_len),
                    None => self.stats.rejected_malformed += 1,
                },
                Payload::Args(_) => self.stats.rejected_malformed += 1,
            }
            return;
        }
        let mut args = match payload {
            Payload::Args(args) => args,
            Payload::Document(doc) => vec![Bson::Document(doc)],
        };
        if !deliverable {
            if let Some(from) = Self::sender_ref(&meta) {
                if self.handle_exchange(name, &mut args, from) {
                    return;
                }
            }
            // A forged lifecycle event (`stop`, `gap`, ...) or a protocol message
            // this version does not handle: never handed to listeners. It was
            // tracked above, so it is not asked for again either.
            self.stats.rejected_reserved += 1;
            return;
        }
        let Some(from) = Self::sender_ref(&meta) else { return };
        let sender = self.recent_senders.get(from);
        self.known.insert(&sender.id);
        self.outputs.push_back(Output::Event(Event { name: name.to_owned(), args, sender }));
        self.presence_delivered(now, from, meta.sn.is_none());
    }
}

/// The meta's `sn`, range-checked: `None` when it is present but not a valid
/// message number, `Some(None)` when absent (0.1.x senders).
fn checked_sn(sn: Option<i64>) -> Option<Option<Sn>> {
    match sn {
        None => Some(None),
        Some(v) => Sn::new(v).map(Some),
    }
}

/// The meta's `snAge` as a duration: `None` when it is negative (no sender
/// of ours writes that: refused like an out-of-range `sn`), `Some(None)`
/// when absent (0.1.x senders, and ours once past the young stream).
fn checked_age(ms: Option<i32>) -> Option<Option<Duration>> {
    match ms {
        None => Some(None),
        Some(ms) => u64::try_from(ms).ok().map(|ms| Some(Duration::from_millis(ms))),
    }
}
