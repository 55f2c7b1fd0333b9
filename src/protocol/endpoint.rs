//! The endpoint state machine: glue between the wire codec and the sender
//! ([`super::retention`]), receiver ([`super::reassembly`]) and repair
//! ([`super::repair`]) parts.
//!
//! Repair requests and repairs always go to the group ([`Destination::Group`]),
//! never to an address written inside a request: several nodes may share one
//! host and port (only one of them would get a unicast datagram), and a forged
//! request must not turn a node into a reflector. 0.1.x senders are group
//! members too, so they hear our requests, and we answer 0.1.x requests on
//! the group as well.

use super::reassembly::{ChunkInfo, Insert, Key, Reassembly, Reject};
use super::repair::{Nack, RepairTiming};
use super::request::{RepairRequest, MAX_ITEMS_PER_REQUEST};
use super::retention::Retention;
use super::timefmt::format_iso;
use super::{Config, Destination, Encryption, Event, Identity, Output, Sender, Stats, Transmit};
use crate::error::{Error, WireError};
use crate::wire::{self, Meta, Payload, PROTOCOL_VERSION, RETX_EVENT};
use bson::{Bson, Document};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// How deep datagrams may nest (chunk group → encrypted datagram → inner datagram).
const MAX_DEPTH: u8 = 3;
/// Most messages retained for repair, whatever their size.
const MAX_RETAINED_MESSAGES: usize = 65_536;
/// Most request datagrams sent for one partial message at one time.
const MAX_REQUESTS_PER_ROUND: usize = 8;

/// How a datagram reached the current parsing step.
#[derive(Clone, Copy)]
struct Via {
    depth: u8,
    /// It was decrypted/authenticated with our key (or came out of a group
    /// whose chunks all were).
    protected: bool,
    /// It is the reassembly of a chunk group (may not be a chunk again).
    reassembled: bool,
}

/// All protocol state of one node. See the [module docs](super).
pub struct Endpoint {
    config: Config,
    identity: Identity,
    rng: StdRng,
    stats: Stats,
    timing: RepairTiming,
    transmits: VecDeque<Transmit>,
    outputs: VecDeque<Output>,
    retention: Retention,
    reassembly: Reassembly,
    next_sn: i64,
    wall_anchor: Option<(Instant, SystemTime)>,
}

impl Endpoint {
    /// A new endpoint; `seed` seeds its id/nonce generator (fixed in simulations).
    pub fn new(config: Config, identity: Identity, seed: u64) -> Self {
        let timing = RepairTiming::new(config.message_ttl);
        let retention = Retention::new(3 * config.message_ttl, config.limits.max_retained_bytes, MAX_RETAINED_MESSAGES);
        let reassembly = Reassembly::new(config.limits.clone());
        Endpoint {
            config,
            identity,
            rng: StdRng::seed_from_u64(seed),
            stats: Stats::default(),
            timing,
            transmits: VecDeque::new(),
            outputs: VecDeque::new(),
            retention,
            reassembly,
            next_sn: 1,
            wall_anchor: None,
        }
    }

    /// The identity written into our datagrams.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Tells the endpoint which wall-clock time corresponds to `now`. Used for
    /// the `time` field of datagrams the endpoint sends on its own (repair
    /// requests); every [`Endpoint::emit`] updates it too. Drivers call it at
    /// start and may call it again at any time.
    pub fn set_wall_clock(&mut self, now: Instant, wall: SystemTime) {
        self.wall_anchor = Some((now, wall));
    }

    fn wall_at(&self, now: Instant) -> SystemTime {
        match self.wall_anchor {
            Some((at, wall)) if now >= at => wall + (now - at),
            Some((at, wall)) => wall.checked_sub(at - now).unwrap_or(wall),
            None => SystemTime::UNIX_EPOCH,
        }
    }

    /// Queues the datagrams of one message. `wall` is the send time written into `time`.
    pub fn emit(&mut self, now: Instant, wall: SystemTime, name: &str, args: &[Bson]) -> Result<(), Error> {
        self.emit_encoded(now, wall, name, &wire::encode_args(args))
    }

    /// Like [`Endpoint::emit`], with the body already encoded as `{payload: [..]}`
    /// (see [`wire::encode_args`]).
    pub fn emit_encoded(&mut self, now: Instant, wall: SystemTime, name: &str, body: &[u8]) -> Result<(), Error> {
        self.set_wall_clock(now, wall);
        let sn = self.next_sn;
        let (group, datagrams) = self.build(wall, name, body, Some(sn))?;
        self.next_sn += 1;
        self.stats.events_sent += 1;
        self.queue(&datagrams);
        self.retention.insert(now, Some(sn), group, datagrams);
        self.sync_stats();
        Ok(())
    }

    fn queue(&mut self, datagrams: &[Vec<u8>]) {
        self.transmits
            .extend(datagrams.iter().map(|d| Transmit { destination: Destination::Group, payload: d.clone() }));
    }

    fn nonce(&mut self) -> Option<String> {
        match self.config.encryption {
            Encryption::None => None,
            _ => Some(wire::ids::seq_id(&mut self.rng)),
        }
    }

    fn sender_meta(&mut self, seq: i32, seq_len: i32, seq_id: &str, name: &str, time: &str, sn: Option<i64>) -> Meta {
        Meta {
            v: PROTOCOL_VERSION,
            seq,
            seq_len,
            seq_id: seq_id.to_owned(),
            seq_end: seq == seq_len - 1,
            enc: false,
            nonce: self.nonce(),
            name: Some(name.to_owned()),
            host: Some(self.identity.host.clone()),
            port: Some(i32::from(self.identity.port)),
            hostname: Some(self.identity.hostname.clone()),
            id: Some(self.identity.id.clone()),
            time: Some(time.to_owned()),
            sn,
        }
    }

    /// Encodes (encrypts, chunks) one message; returns the chunk group id if chunked.
    fn build(&mut self, wall: SystemTime, name: &str, body: &[u8], sn: Option<i64>) -> Result<(Option<String>, Vec<Vec<u8>>), Error> {
        let max = self.config.limits.max_message_size;
        if body.len() > max {
            return Err(Error::Payload(format!("message of {} bytes exceeds the limit of {max} bytes", body.len())));
        }
        let time = format_iso(wall);
        let seq_id = wire::ids::seq_id(&mut self.rng);
        let meta = self.sender_meta(0, 1, &seq_id, name, &time, sn);
        let mut inner = Vec::with_capacity(body.len() + 256);
        wire::encode_datagram(&meta, body, &mut inner);
        let whole = match &self.config.encryption {
            Encryption::None => inner,
            Encryption::Legacy(key) => {
                let outer = Meta {
                    v: PROTOCOL_VERSION,
                    seq: 0,
                    seq_len: 1,
                    seq_id: seq_id.clone(),
                    seq_end: true,
                    enc: true,
                    ..Meta::default()
                };
                let ct = key.encrypt(&inner);
                let mut out = Vec::with_capacity(ct.len() + 128);
                wire::encode_datagram(&outer, &ct, &mut out);
                out
            }
        };
        if whole.len() > max {
            return Err(Error::Payload(format!("message of {} bytes exceeds the limit of {max} bytes", whole.len())));
        }
        let mps = self.config.max_payload_size.max(1);
        if whole.len() <= mps {
            return Ok((None, vec![whole]));
        }
        let n = whole.len().div_ceil(mps);
        let seq_len = i32::try_from(n).map_err(|_| Error::Payload("too many chunks".into()))?;
        let group = wire::ids::seq_id(&mut self.rng);
        let mut out = Vec::with_capacity(n);
        for (i, slice) in whole.chunks(mps).enumerate() {
            let meta = self.sender_meta(i as i32, seq_len, &group, name, &time, sn);
            let mut d = Vec::with_capacity(slice.len() + 300);
            wire::encode_datagram(&meta, slice, &mut d);
            out.push(d);
        }
        Ok((Some(group), out))
    }

    /// Sends an internal message (repair request) to the group.
    fn send_control(&mut self, now: Instant, name: &str, doc: &Document, copies: u32) {
        let body = wire::encode_document_body(doc);
        let wall = self.wall_at(now);
        match self.build(wall, name, &body, None) {
            Ok((group, datagrams)) => {
                for _ in 0..copies.max(1) {
                    self.queue(&datagrams);
                }
                if group.is_some() {
                    self.retention.insert(now, None, group, datagrams);
                }
            }
            Err(e) => tracing::warn!("cannot send {name}: {e}"),
        }
    }

    /// Feeds one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_received += 1;
        self.process(now, source, datagram, Via { depth: 0, protected: false, reassembled: false });
        self.sync_stats();
    }

    fn process(&mut self, now: Instant, source: SocketAddr, bytes: &[u8], via: Via) {
        if via.depth > MAX_DEPTH {
            self.stats.rejected_malformed += 1;
            return;
        }
        let dg = match wire::decode_datagram(bytes) {
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
        if meta.id.as_deref() == Some(self.identity.id.as_str()) {
            self.stats.own_datagrams_ignored += 1;
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
                self.handle_chunk(now, source, meta, body, next);
            }
            return;
        }
        if !matches!(self.config.encryption, Encryption::None) && !via.protected {
            // Plaintext where encryption is configured.
            self.stats.rejected_decrypt += 1;
            return;
        }
        self.handle_message(now, meta, body);
    }

    fn sender_of(meta: &Meta) -> Option<Sender> {
        Some(Sender {
            id: meta.id.clone()?,
            host: meta.host.clone().unwrap_or_default(),
            port: meta.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            hostname: meta.hostname.clone().unwrap_or_default(),
        })
    }

    fn handle_chunk(&mut self, now: Instant, source: SocketAddr, meta: Meta, body: &[u8], via: Via) {
        let Some(sender) = Self::sender_of(&meta) else {
            self.stats.rejected_malformed += 1;
            return;
        };
        let key: Key = (sender.id.clone(), meta.seq_id.clone());
        let nack = Nack::armed(now, self.timing.jittered(&mut self.rng));
        let info = ChunkInfo { seq: meta.seq, seq_len: meta.seq_len, seq_end: meta.seq_end, sn: meta.sn, sender: &sender };
        let mut evicted = Vec::new();
        let result = self.reassembly.insert(now, key.clone(), info, body, nack, &mut evicted);
        self.stats.partials_evicted += evicted.len() as u64;
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
                if let Some(p) = self.reassembly.get_mut(&key) {
                    if !new {
                        p.nack.progress(now, delay);
                    }
                    let deadline = p.nack.due.map_or(now + ttl, |d| d.min(now + ttl));
                    self.reassembly.reschedule(&key, deadline);
                }
            }
            Insert::Complete { data, repaired } => {
                if repaired {
                    self.stats.repairs_received += 1;
                }
                self.process(now, source, &data, Via { reassembled: true, ..via });
            }
        }
    }

    fn handle_message(&mut self, now: Instant, meta: Meta, body: &[u8]) {
        let (Some(name), Some(sender)) = (meta.name.clone(), Self::sender_of(&meta)) else {
            self.stats.rejected_malformed += 1;
            return;
        };
        let payload = match wire::decode_body(body) {
            Ok(p) => p,
            Err(_) => {
                self.stats.rejected_malformed += 1;
                return;
            }
        };
        if name == RETX_EVENT {
            match payload {
                Payload::Document(doc) => match RepairRequest::from_document(&doc) {
                    Some(req) => self.handle_request(now, &req),
                    None => self.stats.rejected_malformed += 1,
                },
                Payload::Args(_) => self.stats.rejected_malformed += 1,
            }
            return;
        }
        let args = match payload {
            Payload::Args(args) => args,
            Payload::Document(doc) => vec![Bson::Document(doc)],
        };
        self.outputs.push_back(Output::Event(Event { name, args, sender }));
    }

    fn handle_request(&mut self, now: Instant, req: &RepairRequest) {
        let mut answered = false;
        if !req.seq_id.is_empty() && req.to.as_ref().map_or(true, |to| *to == self.identity.id) {
            let window = self.timing.resend_window();
            let datagrams = self.retention.repair_chunks(now, &req.seq_id, &req.missed_seq, window);
            if !datagrams.is_empty() {
                answered = true;
                self.stats.repairs_sent += datagrams.len() as u64;
                self.queue(&datagrams);
            } else if self.retention.has_group(&req.seq_id) {
                answered = true;
                self.stats.repairs_suppressed += 1;
            }
        }
        if !answered {
            self.stats.repair_requests_ignored += 1;
        }
        // NACK suppression: someone else asked for data we miss too; its repair
        // will reach us through the group, so wait before asking ourselves.
        if !req.seq_id.is_empty() {
            let key = match &req.to {
                Some(to) => Some((to.clone(), req.seq_id.clone())),
                None => self.reassembly.find_group(&req.seq_id),
            };
            if let Some(key) = key {
                let delay = self.timing.jittered(&mut self.rng);
                let ttl = self.config.message_ttl;
                if let Some(p) = self.reassembly.get_mut(&key) {
                    if p.nack.due.is_some() && p.misses_any(&req.missed_seq) {
                        p.nack.postpone(now, delay);
                        let deadline = p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl));
                        self.stats.repair_requests_suppressed += 1;
                        self.reassembly.reschedule(&key, deadline);
                    }
                }
            }
        }
    }

    /// Runs timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.retention.expire(now);
        let ttl = self.config.message_ttl;
        for key in self.reassembly.due(now) {
            let Some(p) = self.reassembly.get_mut(&key) else { continue };
            if now >= p.last_progress + ttl {
                if let Some(p) = self.reassembly.finish(&key) {
                    self.stats.gaps_unrecovered += 1;
                    self.outputs.push_back(Output::Gap { sender: p.sender.id, count: 1 });
                }
                continue;
            }
            if p.nack.due.is_some_and(|d| d <= now) {
                let missing = p.missing(MAX_ITEMS_PER_REQUEST * MAX_REQUESTS_PER_ROUND);
                let delay = self.timing.jittered(&mut self.rng);
                let copies = p.nack.fire(now, delay, self.config.retransmit_attempts);
                p.asked(&missing);
                let deadline = p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl));
                let to = p.sender.id.clone();
                self.reassembly.reschedule(&key, deadline);
                for batch in missing.chunks(MAX_ITEMS_PER_REQUEST) {
                    let req = RepairRequest {
                        id: self.identity.id.clone(),
                        seq_id: key.1.clone(),
                        missed_seq: batch.to_vec(),
                        host: self.identity.host.clone(),
                        port: i32::from(self.identity.port),
                        missed_sn: Vec::new(),
                        to: Some(to.clone()),
                    };
                    self.stats.repairs_requested += 1;
                    self.send_control(now, RETX_EVENT, &req.to_document(), copies);
                }
            } else {
                let deadline = p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl));
                self.reassembly.reschedule(&key, deadline);
            }
        }
        self.sync_stats();
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
        self.stats.datagrams_sent += 1;
        Some(t)
    }

    /// Next event or error to deliver.
    pub fn poll_output(&mut self) -> Option<Output> {
        let o = self.outputs.pop_front()?;
        if matches!(o, Output::Event(_)) {
            self.stats.events_delivered += 1;
        }
        Some(o)
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retention.next_expiry(), self.reassembly.next_deadline()].into_iter().flatten().min()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn sync_stats(&mut self) {
        self.stats.reassembly_bytes = self.reassembly.bytes() as u64;
        self.stats.retained_bytes = self.retention.bytes() as u64;
        self.stats.retention_dropped = self.retention.dropped;
    }
}

