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

use super::names;
use super::reassembly::{ChunkInfo, Insert, Key, Reassembly, Reject, SenderRef};
use super::repair::{CreditBucket, KnownSenders, Nack, RepairBudget, RepairTiming, REQUEST_CREDIT_PER_BYTE};
use super::request::{RepairRequest, MAX_ITEMS_PER_REQUEST};
use super::retention::Retention;
use super::timefmt::{format_iso, parse_iso};
use super::tracker::{Peer, Sn, Verdict};
use super::{Config, Destination, Encryption, Event, Identity, Output, Sender, SharedBytes, Stats, Transmit};
use crate::error::{Error, WireError};
use crate::wire::{self, Meta, MetaRef, Payload, PROTOCOL_VERSION, RETX_EVENT};
use bson::{Bson, Document};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// How deep datagrams may nest (chunk group → encrypted datagram → inner datagram).
const MAX_DEPTH: u8 = 3;
/// Most messages retained for repair, whatever their size.
const MAX_RETAINED_MESSAGES: usize = 65_536;
/// Most request datagrams sent for one partial message (or sender) at one time.
const MAX_REQUESTS_PER_ROUND: usize = 32;
/// Chunks of one partial message that make its sender count as heard from
/// ([`KnownSenders`]) even before it delivered a complete event here: a
/// forger pays for escalation and `'gap'` reports with datagrams.
const ESCALATION_EVIDENCE: usize = 8;
/// Most senders tracked for message-level loss detection; the one heard from
/// least recently is forgotten first (its missing messages reported as a gap).
const MAX_SENDERS: usize = 1024;
/// Clock difference between members tolerated by the freshness check.
const CLOCK_SKEW: Duration = Duration::from_secs(5);
/// Heartbeats sent after the last message. A receiver misses a lost last
/// message only if it loses every one of them too: at 30% loss that is
/// 0.3^9 ≈ 2·10⁻⁵ (with 3 it was 0.3^4 ≈ 0.8%, measured 0.73% in simulation,
/// and the network lab's 30% scenario occasionally failed on it).
const HEARTBEATS_AFTER_LAST: u32 = 8;
/// Largest argument buffer [`Endpoint::emit`] keeps for the next call (a
/// 100 MiB message should not pin 100 MiB).
const MAX_REUSED_ARGS_BUF: usize = 64 * 1024;

/// Copies of each chunk resent in answer to a repair request of 0.1.x's
/// shape. A 0.1.x receiver asks once and drops the message `messageTtl`
/// later: with one copy, a message missing `m` chunks survives `p` loss with
/// probability `(1 − p)^m` (35% of 100 KiB messages at 10% loss in
/// `tests/sim_legacy_receiver.rs`); with three, `(1 − p³)^m`.
const LEGACY_REPAIR_COPIES: u32 = 3;
/// Time between those copies: loss comes in bursts (a full socket buffer, a
/// busy receiver), so copies sent back to back tend to share a fate.
const LEGACY_COPY_SPACING: Duration = Duration::from_millis(5);
/// Most 0.1.x requests remembered as already forwarded to the group.
const MAX_RELAYED_REMEMBERED: usize = 1024;

/// Event name of the heartbeat: payload document `{id, sn}` with the sender's
/// latest message number, so receivers notice lost trailing messages.
pub const HEARTBEAT_EVENT: &str = "__ec_hb";

/// Heartbeat period: `clamp(message_ttl / 6, 20 ms, 1 s)`.
fn heartbeat_interval(message_ttl: Duration) -> Duration {
    (message_ttl / 6).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

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
    /// Datagrams due later, in time order: extra copies of our repair
    /// requests (each a little more than the resend window after the previous
    /// one) and of repairs answering 0.1.x requests ([`LEGACY_COPY_SPACING`]).
    delayed: VecDeque<(Instant, SharedBytes)>,
    /// 0.1.x requests forwarded to the group (hashes of requester and chunk
    /// group), so each is forwarded once; bounded, oldest forgotten first.
    relayed_set: HashSet<u64>,
    relayed_order: VecDeque<u64>,
    /// Reused buffer for the encoded arguments of [`Endpoint::emit`].
    args_buf: Vec<u8>,
    outputs: VecDeque<Output>,
    retention: Retention,
    reassembly: Reassembly,
    next_sn: i64,
    /// The wall-clock time that corresponds to an `Instant` (given at
    /// construction, moved by [`Endpoint::set_wall_clock`] and every emit).
    wall_anchor: (Instant, SystemTime),
    /// Wall-clock time at construction (the node's start), lowered if the
    /// clock is set back: the authenticated scheme refuses datagrams sent
    /// more than `CLOCK_SKEW` before it.
    started: SystemTime,
    peers: HashMap<String, Peer>,
    peer_timers: BTreeSet<(Instant, String)>,
    peer_deadlines: HashMap<String, Instant>,
    heartbeat_due: Option<Instant>,
    heartbeats_left: u32,
    repair_budget: RepairBudget,
    /// Node-wide budget of repairs sent, credited by our own emitted bytes.
    repair_credit: CreditBucket,
    /// Node-wide budget of repair requests sent, credited by bytes received.
    request_credit: CreditBucket,
    /// Senders that delivered a complete event here.
    known: KnownSenders,
}

impl Endpoint {
    /// A new endpoint; `seed` seeds its id/nonce/IV generator (fixed in
    /// simulations; drivers pass a random seed). `now` and `wall` are the same
    /// moment on the caller's monotonic and wall clocks (drivers pass
    /// `Instant::now()` and `SystemTime::now()`, simulations a fixed pair):
    /// the engine reads no clock, and needs wall time from the start for the
    /// `time` of the datagrams it sends on its own (repair requests,
    /// heartbeats) and for the freshness check of the authenticated scheme.
    /// [`Error::Clock`] (`ECLOCK`) when `wall` is before 1970, which the
    /// `time` field cannot carry.
    pub fn new(config: Config, identity: Identity, seed: u64, now: Instant, wall: SystemTime) -> Result<Self, Error> {
        check_wall(wall)?;
        let timing = RepairTiming::new(config.message_ttl);
        let retention = Retention::new(3 * config.message_ttl, config.limits.max_retained_bytes, MAX_RETAINED_MESSAGES);
        let reassembly = Reassembly::new(config.limits.clone());
        let repair_budget = RepairBudget::new(config.limits.max_repair_bytes_per_requester);
        let l = &config.limits;
        let repair_credit = CreditBucket::new(now, l.max_repair_credit_bytes, l.repair_floor_bytes_per_sec);
        let request_credit = CreditBucket::new(now, l.max_request_credit_bytes, l.request_floor_bytes_per_sec);
        Ok(Endpoint {
            config,
            identity,
            rng: StdRng::seed_from_u64(seed),
            stats: Stats::default(),
            timing,
            transmits: VecDeque::new(),
            delayed: VecDeque::new(),
            relayed_set: HashSet::new(),
            relayed_order: VecDeque::new(),
            args_buf: Vec::new(),
            outputs: VecDeque::new(),
            retention,
            reassembly,
            next_sn: 1,
            wall_anchor: (now, wall),
            started: wall,
            peers: HashMap::new(),
            peer_timers: BTreeSet::new(),
            peer_deadlines: HashMap::new(),
            heartbeat_due: None,
            heartbeats_left: 0,
            repair_budget,
            repair_credit,
            request_credit,
            known: KnownSenders::default(),
        })
    }

    /// The identity written into our datagrams.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Moves the wall clock: `wall` corresponds to `now` from here on (drivers
    /// re-anchor now and then so a long-lived node follows clock adjustments;
    /// every [`Endpoint::emit`] does too). A `wall` before 1970 is refused
    /// with [`Error::Clock`] and the previous anchor kept.
    pub fn set_wall_clock(&mut self, now: Instant, wall: SystemTime) -> Result<(), Error> {
        check_wall(wall)?;
        self.wall_anchor = (now, wall);
        self.started = self.started.min(wall);
        Ok(())
    }

    /// Wall-clock time at `now`, from the anchor (never before 1970: a time
    /// before the anchor that would be is clamped to the anchor).
    fn wall_at(&self, now: Instant) -> SystemTime {
        let (at, wall) = self.wall_anchor;
        if now >= at {
            wall + (now - at)
        } else {
            wall.checked_sub(at - now).filter(|w| *w >= SystemTime::UNIX_EPOCH).unwrap_or(wall)
        }
    }

    /// Queues the datagrams of one message. `wall` is the send time written into `time`.
    pub fn emit(&mut self, now: Instant, wall: SystemTime, name: &str, args: &[Bson]) -> Result<(), Error> {
        let mut body = std::mem::take(&mut self.args_buf);
        let r = wire::try_encode_args_into(args, &mut body).and_then(|()| self.emit_encoded(now, wall, name, &body));
        if body.capacity() <= MAX_REUSED_ARGS_BUF {
            self.args_buf = body;
        }
        r
    }

    /// Like [`Endpoint::emit`], with the body already encoded as `{payload: [..]}`
    /// (see [`wire::encode_args`]).
    pub fn emit_encoded(&mut self, now: Instant, wall: SystemTime, name: &str, body: &[u8]) -> Result<(), Error> {
        if !names::is_deliverable(name) {
            return Err(Error::Payload(format!(
                "event name {name:?} is reserved (an instance's own lifecycle event or a protocol message): it never travels"
            )));
        }
        self.set_wall_clock(now, wall)?;
        let sn = self.next_sn;
        let (group, datagrams) = self.build(wall, name, body, Some(sn))?;
        self.next_sn += 1;
        self.stats.events_sent += 1;
        self.queue(&datagrams);
        self.credit_repairs(&datagrams);
        self.retention.insert(now, Some(sn), group, datagrams);
        self.heartbeats_left = HEARTBEATS_AFTER_LAST;
        if self.heartbeat_due.is_none() {
            self.heartbeat_due = Some(now + heartbeat_interval(self.config.message_ttl));
        }
        self.sync_stats();
        Ok(())
    }

    /// Each byte we retain for repair may be resent about once (see the `repair` module docs).
    fn credit_repairs(&mut self, datagrams: &[SharedBytes]) {
        self.repair_credit.credit(datagrams.iter().map(|d| d.len() as f64).sum());
    }

    fn queue(&mut self, datagrams: &[SharedBytes]) {
        self.transmits
            .extend(datagrams.iter().map(|d| Transmit { destination: Destination::Group, payload: d.clone() }));
    }

    fn nonce(&mut self) -> Option<String> {
        // 0.1.x writes a nonce when encryption is on; the authenticated scheme
        // has a random IV per datagram instead.
        match self.config.encryption {
            Encryption::Legacy(_) => Some(wire::ids::seq_id(&mut self.rng)),
            Encryption::None | Encryption::Secure(_) => None,
        }
    }

    /// The meta of one datagram this endpoint sends, borrowing its strings.
    #[allow(clippy::too_many_arguments)]
    fn sender_meta<'a>(
        identity: &'a Identity,
        nonce: Option<&'a str>,
        seq: i32,
        seq_len: i32,
        seq_id: &'a str,
        name: &'a str,
        time: &'a str,
        sn: Option<i64>,
    ) -> MetaRef<'a> {
        MetaRef {
            v: PROTOCOL_VERSION,
            seq,
            seq_len,
            seq_id,
            seq_end: seq == seq_len - 1,
            enc: false,
            nonce,
            name: Some(name),
            host: Some(&identity.host),
            port: Some(i32::from(identity.port)),
            hostname: Some(&identity.hostname),
            id: Some(&identity.id),
            time: Some(time),
            sn,
        }
    }

    /// Encodes (encrypts, chunks) one message; returns the chunk group id if chunked.
    fn build(
        &mut self,
        wall: SystemTime,
        name: &str,
        body: &[u8],
        sn: Option<i64>,
    ) -> Result<(Option<String>, Vec<SharedBytes>), Error> {
        let max = self.config.limits.max_message_size;
        if body.len() > max {
            return Err(Error::Payload(format!("message of {} bytes exceeds the limit of {max} bytes", body.len())));
        }
        let time = format_iso(wall);
        let seq_id = wire::ids::seq_id(&mut self.rng);
        let nonce = self.nonce();
        let meta = Self::sender_meta(&self.identity, nonce.as_deref(), 0, 1, &seq_id, name, &time, sn);
        let mut inner = Vec::with_capacity(body.len() + 256);
        wire::try_encode_datagram_ref(&meta, body, &mut inner).map_err(|e| Error::Payload(e.to_string()))?;
        if let Encryption::Secure(key) = &self.config.encryption {
            // Authenticated scheme: every datagram, chunks included, is sealed
            // on its own, so each one is authenticated and replay-checked.
            let key = key.clone();
            if inner.len() > max {
                return Err(Error::Payload(format!(
                    "message of {} bytes exceeds the limit of {max} bytes",
                    inner.len()
                )));
            }
            let mps = self.config.max_payload_size.max(1);
            if inner.len() <= mps {
                return Ok((None, vec![key.seal(&inner, &mut self.rng).into()]));
            }
            let n = inner.len().div_ceil(mps);
            let seq_len = i32::try_from(n).map_err(|_| Error::Payload("too many chunks".into()))?;
            let group = wire::ids::seq_id(&mut self.rng);
            let mut out = Vec::with_capacity(n);
            for (i, slice) in inner.chunks(mps).enumerate() {
                let nonce = self.nonce();
                let meta =
                    Self::sender_meta(&self.identity, nonce.as_deref(), i as i32, seq_len, &group, name, &time, sn);
                let mut d = Vec::with_capacity(slice.len() + 300);
                wire::try_encode_datagram_ref(&meta, slice, &mut d).map_err(|e| Error::Payload(e.to_string()))?;
                out.push(key.seal(&d, &mut self.rng).into());
            }
            return Ok((Some(group), out));
        }
        let whole = match &self.config.encryption {
            Encryption::None | Encryption::Secure(_) => inner,
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
            return Ok((None, vec![whole.into()]));
        }
        let n = whole.len().div_ceil(mps);
        let seq_len = i32::try_from(n).map_err(|_| Error::Payload("too many chunks".into()))?;
        let group = wire::ids::seq_id(&mut self.rng);
        // All chunks go into one buffer, shared by the transmits and the retention.
        let mut buf = Vec::with_capacity(whole.len() + n * 300);
        let mut ends = Vec::with_capacity(n);
        for (i, slice) in whole.chunks(mps).enumerate() {
            let nonce = self.nonce();
            let meta = Self::sender_meta(&self.identity, nonce.as_deref(), i as i32, seq_len, &group, name, &time, sn);
            wire::try_encode_datagram_ref(&meta, slice, &mut buf).map_err(|e| Error::Payload(e.to_string()))?;
            ends.push(buf.len());
        }
        Ok((Some(group), SharedBytes::split(buf, &ends)))
    }

    /// Sends an internal message (repair request, heartbeat) to the group, in
    /// up to `copies` copies. Repair requests (`budgeted`) draw every copy
    /// from the node-wide request budget; returns how many copies went out.
    fn send_control(&mut self, now: Instant, name: &str, doc: &Document, copies: u32, budgeted: bool) -> u32 {
        let wall = self.wall_at(now);
        let built = wire::try_encode_document_body(doc).and_then(|body| self.build(wall, name, &body, None));
        match built {
            Ok((group, datagrams)) => {
                let bytes: usize = datagrams.iter().map(|d| d.len()).sum();
                // Copies are spaced by more than the senders' resend window,
                // so each one that arrives gets its own answer: a sender
                // answers every request datagram at most once and never
                // multiplies its repairs, so redundancy against repeated loss
                // is the requester's to pay for.
                let spacing = self.timing.resend_window() + Duration::from_millis(1);
                let mut sent = 0;
                for copy in 0..copies.max(1) {
                    if budgeted && !self.request_credit.take(now, bytes) {
                        self.stats.repair_requests_rate_limited += 1;
                        break;
                    }
                    if copy == 0 {
                        self.queue(&datagrams);
                    } else {
                        self.delay(now + spacing * copy, &datagrams);
                    }
                    sent += 1;
                }
                if group.is_some() && sent > 0 {
                    self.credit_repairs(&datagrams);
                    self.retention.insert(now, None, group, datagrams);
                }
                sent
            }
            Err(e) => {
                tracing::warn!("cannot send {name}: {e}");
                0
            }
        }
    }

    /// Sends one repair request within the request budget, counting it if it went out.
    fn send_request(&mut self, now: Instant, req: &RepairRequest, copies: u32) {
        if self.send_control(now, RETX_EVENT, &req.to_document(), copies, true) > 0 {
            self.stats.repairs_requested += 1;
        }
    }

    /// Feeds one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_received += 1;
        let own_before = self.stats.own_datagrams_ignored;
        self.process(now, source, datagram, Via { depth: 0, protected: false, reassembled: false });
        if self.stats.own_datagrams_ignored == own_before {
            // What others send us pays for the requests we send (our own
            // datagrams looped back by the group do not).
            self.request_credit.credit(datagram.len() as f64 * REQUEST_CREDIT_PER_BYTE);
        }
        self.sync_stats();
    }

    fn process(&mut self, now: Instant, source: SocketAddr, bytes: &[u8], via: Via) {
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
                self.handle_chunk(now, source, meta, body, next);
            }
            return;
        }
        if !matches!(self.config.encryption, Encryption::None) && !via.protected {
            // Plaintext where encryption is configured.
            self.stats.rejected_decrypt += 1;
            return;
        }
        self.handle_message(now, source, meta, body);
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

    fn sender_of(meta: &MetaRef<'_>) -> Option<Sender> {
        Some(Sender {
            id: meta.id?.to_owned(),
            host: meta.host.unwrap_or_default().to_owned(),
            port: meta.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            hostname: meta.hostname.unwrap_or_default().to_owned(),
        })
    }

    fn handle_chunk(&mut self, now: Instant, source: SocketAddr, meta: MetaRef<'_>, body: &[u8], via: Via) {
        let Some(sender_id) = meta.id else {
            self.stats.rejected_malformed += 1;
            return;
        };
        let Some(sn) = checked_sn(meta.sn) else {
            // A number out of range (0, negative, absurd): no sender of ours wrote it.
            self.stats.rejected_malformed += 1;
            return;
        };
        let sender = SenderRef {
            id: sender_id,
            host: meta.host.unwrap_or_default(),
            port: meta.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            hostname: meta.hostname.unwrap_or_default(),
        };
        let Some(key) = Key::parse(sender_id, meta.seq_id) else {
            // Not reached: identifiers are checked at decode.
            self.stats.rejected_malformed += 1;
            return;
        };
        let nack = Nack::armed(now, self.timing.jittered(&mut self.rng));
        let info = ChunkInfo { seq: meta.seq, seq_len: meta.seq_len, seq_end: meta.seq_end, sn: meta.sn, sender };
        let mut evicted = Vec::new();
        let result = self.reassembly.insert(now, key, info, body, nack, &mut evicted);
        self.stats.partials_evicted += evicted.len() as u64;
        for e in evicted {
            if let Some(sn) = e.sn.and_then(Sn::new) {
                self.peer_give_up(now, &e.sender, sn);
            }
        }
        if let (Some(sn), Insert::Progress { .. }) = (sn, &result) {
            let on_chunk = |p: &mut Peer| (p.missing_count(), p.on_chunk(now, sn));
            let ttl = self.config.message_ttl;
            // A known sender (the common case) is looked up once.
            let mut changed = self.peers.get_mut(sender_id).map(on_chunk);
            if changed.is_none() {
                self.ensure_peer(sender_id, || Peer::new(now, sn, ttl));
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

    fn handle_message(&mut self, now: Instant, source: SocketAddr, meta: MetaRef<'_>, body: &[u8]) {
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
        let payload = match wire::decode_body(body) {
            Ok(p) => p,
            Err(_) => {
                self.stats.rejected_malformed += 1;
                return;
            }
        };
        if name == HEARTBEAT_EVENT {
            match payload {
                Payload::Document(doc) => match heartbeat_fields(&doc, sender_id) {
                    Some(sn) => self.handle_heartbeat(now, sender_id, sn),
                    None => self.stats.rejected_malformed += 1,
                },
                Payload::Args(_) => self.stats.rejected_malformed += 1,
            }
            return;
        }
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
                        (before, repaired, verdict, lost)
                    };
                    // A known sender (the common case) is looked up once.
                    let mut seen = self.peers.get_mut(sender_id).map(on_message);
                    if seen.is_none() {
                        let ttl = self.config.message_ttl;
                        self.ensure_peer(sender_id, || Peer::new(now, sn, ttl));
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
                    Some(req) => self.handle_request(now, source, &req),
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
        if !names::is_deliverable(name) {
            // A forged lifecycle event (`stop`, `gap`, ...) or a protocol message
            // this version does not handle: never handed to listeners. It was
            // tracked above, so it is not asked for again either.
            self.stats.rejected_reserved += 1;
            return;
        }
        let Some(sender) = Self::sender_of(&meta) else { return };
        self.known.insert(&sender.id);
        self.outputs.push_back(Output::Event(Event { name: name.to_owned(), args, sender }));
    }

    /// Answers (on the group only) and learns from a repair request that came
    /// from `source` (the address budgets are keyed on; ids are claims).
    fn handle_request(&mut self, now: Instant, source: SocketAddr, req: &RepairRequest) {
        let mut answered = false;
        if !req.seq_id.is_empty() && req.to.as_ref().is_none_or(|to| *to == self.identity.id) {
            let window = self.timing.resend_window();
            let datagrams = self.retention.repair_chunks(now, &req.seq_id, &req.missed_seq, window);
            if !datagrams.is_empty() {
                answered = true;
                // 0.1.x's shape (no `to`, no `missedSn`): its sender asks once
                // and gives up a `messageTtl` later, so one lost repair loses
                // the message. Each chunk goes out in LEGACY_REPAIR_COPIES
                // copies, spaced in time (loss comes in bursts), within the
                // same budgets as any repair.
                let copies = if req.to.is_none() && req.missed_sn.is_empty() { LEGACY_REPAIR_COPIES } else { 1 };
                self.send_repairs(now, source, datagrams, copies);
            } else if self.retention.has_group(&req.seq_id) {
                answered = true;
                self.stats.repairs_suppressed += 1;
            }
        }
        if !req.missed_sn.is_empty() && req.to.as_deref() == Some(self.identity.id.as_str()) {
            let window = self.timing.resend_window();
            let datagrams = self.retention.repair_messages(now, &req.missed_sn, window, MAX_ITEMS_PER_REQUEST);
            if !datagrams.is_empty() {
                answered = true;
                self.send_repairs(now, source, datagrams, 1);
            } else if req.missed_sn.iter().any(|&sn| self.retention.has_sn(sn)) {
                answered = true;
                self.stats.repairs_suppressed += 1;
            }
        }
        if !answered {
            self.stats.repair_requests_ignored += 1;
            if req.to.is_none() && req.missed_sn.is_empty() && !req.relayed && !req.seq_id.is_empty() {
                self.relay_legacy_request(now, req);
            }
        }
        if let (Some(to), false) = (&req.to, req.missed_sn.is_empty()) {
            let delay = self.timing.jittered(&mut self.rng);
            let postponed = match self.peers.get_mut(to) {
                Some(p) if p.nack.due.is_some() && req.missed_sn.iter().any(|&sn| p.is_missing(sn)) => {
                    p.nack.postpone(now, delay);
                    true
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
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&req.id, &req.seq_id).hash(&mut h);
        let key = h.finish();
        if !self.relayed_set.insert(key) {
            return;
        }
        self.relayed_order.push_back(key);
        if self.relayed_order.len() > MAX_RELAYED_REMEMBERED {
            if let Some(old) = self.relayed_order.pop_front() {
                self.relayed_set.remove(&old);
            }
        }
        let doc = RepairRequest { relayed: true, ..req.clone() }.to_document();
        if self.send_control(now, RETX_EVENT, &doc, 1, true) > 0 {
            self.stats.repair_requests_relayed += 1;
        }
    }

    /// Resends `datagrams` to the group, each in `copies` copies
    /// [`LEGACY_COPY_SPACING`] apart, within the node-wide repair budget and
    /// `source`'s byte budget (every copy pays).
    fn send_repairs(&mut self, now: Instant, source: SocketAddr, datagrams: Vec<SharedBytes>, copies: u32) {
        for d in datagrams {
            for copy in 0..copies.max(1) {
                if !self.repair_credit.can_take(now, d.len()) {
                    self.stats.repairs_budget_limited += 1;
                    break;
                } else if !self.repair_budget.take(now, source, d.len()) {
                    self.stats.repairs_rate_limited += 1;
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

    /// Queues `datagrams` to go to the group at `at` (kept in time order).
    fn delay(&mut self, at: Instant, datagrams: &[SharedBytes]) {
        let i = self.delayed.partition_point(|(t, _)| *t <= at);
        for (k, d) in datagrams.iter().enumerate() {
            self.delayed.insert(i + k, (at, d.clone()));
        }
    }

    /// Runs timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.retention.expire(now);
        while self.delayed.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, d)) = self.delayed.pop_front() {
                self.transmits.push_back(Transmit { destination: Destination::Group, payload: d });
            }
        }
        let ttl = self.config.message_ttl;
        for key in self.reassembly.due(now) {
            let Some(p) = self.reassembly.get_mut(&key) else { continue };
            if p.arrived() >= ESCALATION_EVIDENCE {
                // Enough real data to count as heard from (see `KnownSenders`).
                self.known.insert(&p.sender.id);
            }
            if now >= p.last_progress + ttl {
                if let Some(p) = self.reassembly.finish(&key) {
                    match p.sn.and_then(Sn::new) {
                        Some(sn) if self.peers.contains_key(&p.sender.id) => self.peer_give_up(now, &p.sender.id, sn),
                        _ => self.report_gap(&p.sender.id, 1),
                    }
                }
                continue;
            }
            if p.nack.due.is_some_and(|d| d <= now) {
                // Sized to what arrived: one request datagram per
                // `per_request` chunks received (at least one). A sender never
                // heard from gets one copy per request and at most as many
                // rounds as chunks arrived (see the `repair` module docs).
                let per_request = items_per_request(self.config.max_payload_size, 10);
                let arrived = p.arrived();
                let requests = arrived.div_ceil(per_request).clamp(1, MAX_REQUESTS_PER_ROUND);
                let missing = p.missing(per_request * requests);
                let delay = self.timing.jittered(&mut self.rng);
                let known = self.known.contains(&p.sender.id);
                let retries = if known {
                    self.config.retransmit_attempts
                } else {
                    self.config.retransmit_attempts.min(u32::try_from(arrived.saturating_sub(1)).unwrap_or(u32::MAX))
                };
                let copies = p.nack.fire(now, delay, retries);
                let copies = if known { copies } else { 1 };
                p.asked(&missing);
                let deadline = p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl));
                let to = p.sender.id.clone();
                self.reassembly.reschedule(&key, deadline);
                for batch in missing.chunks(per_request) {
                    let req = RepairRequest {
                        id: self.identity.id.clone(),
                        seq_id: key.seq_id(),
                        missed_seq: batch.to_vec(),
                        host: self.identity.host.clone(),
                        port: i32::from(self.identity.port),
                        missed_sn: Vec::new(),
                        to: Some(to.clone()),
                        relayed: false,
                    };
                    self.send_request(now, &req, copies);
                }
            } else {
                let deadline = p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl));
                self.reassembly.reschedule(&key, deadline);
            }
        }
        let due: Vec<String> =
            self.peer_timers.iter().take_while(|(t, _)| *t <= now).map(|(_, id)| id.clone()).collect();
        for id in due {
            self.peer_timeout(now, &id);
        }
        if self.heartbeat_due.is_some_and(|t| t <= now) {
            self.send_heartbeat(now);
        }
        self.sync_stats();
    }

    fn send_heartbeat(&mut self, now: Instant) {
        self.heartbeat_due = None;
        if self.heartbeats_left == 0 || self.next_sn <= 1 {
            return;
        }
        // Reset by an emit since the previous heartbeat: still emitting.
        let emitting = self.heartbeats_left == HEARTBEATS_AFTER_LAST;
        self.heartbeats_left -= 1;
        let mut doc = Document::new();
        doc.insert("id", self.identity.id.clone());
        doc.insert("sn", Bson::Int64(self.next_sn - 1));
        self.stats.heartbeats_sent += 1;
        self.send_control(now, HEARTBEAT_EVENT, &doc, 1, false);
        if self.heartbeats_left > 0 {
            // The tail comes three times as often, so that it ends within about
            // 2 s (default TTL), well inside the retention, while senders linger.
            let period = heartbeat_interval(self.config.message_ttl);
            self.heartbeat_due = Some(now + if emitting { period } else { period / 3 });
        }
    }

    fn handle_heartbeat(&mut self, now: Instant, sender: &str, sn: Sn) {
        // First contact through a heartbeat: nothing is missing yet (a late
        // joiner starts after the sender's latest message).
        let ttl = self.config.message_ttl;
        self.ensure_peer(sender, || Peer::after_latest(now, sn, ttl));
        if let Some(p) = self.peers.get_mut(sender) {
            let before = p.missing_count();
            let lost = p.on_latest(now, sn);
            self.peer_changed(now, sender, before, lost);
        }
    }

    /// Creates the loss-tracking state of `id` with `new` unless it exists.
    fn ensure_peer(&mut self, id: &str, new: impl FnOnce() -> Peer) {
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

    /// Reports `count` messages of `sender` lost for good, if it is known
    /// (delivered a complete event here); otherwise only counts them: a
    /// forged partial from a made-up id must not raise `'gap'` events.
    fn report_gap(&mut self, sender: &str, count: u64) {
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
    fn peer_give_up(&mut self, now: Instant, sender: &str, sn: Sn) {
        let Some(p) = self.peers.get_mut(sender) else { return };
        let before = p.missing_count();
        let news = p.give_up(sn);
        self.peer_changed(now, sender, before, u64::from(news));
    }

    /// Re-arms the request timer of `id` after its window changed and reports `lost` messages.
    fn peer_changed(&mut self, now: Instant, id: &str, before: u64, lost: u64) {
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

    fn reschedule_peer(&mut self, id: &str) {
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

    fn peer_timeout(&mut self, now: Instant, id: &str) {
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
        [
            self.retention.next_expiry(),
            self.reassembly.next_deadline(),
            self.peer_timers.first().map(|(t, _)| *t),
            self.heartbeat_due,
            self.delayed.front().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn sync_stats(&mut self) {
        self.stats.reassembly_bytes = self.reassembly.bytes() as u64;
        self.stats.reassembly_keys = self.reassembly.keys() as u64;
        self.stats.retained_bytes = self.retention.bytes() as u64;
        self.stats.retention_dropped = self.retention.dropped;
    }
}

/// How many chunk indexes or message numbers fit in one request so that it
/// stays a single datagram: about 300 bytes of meta and document fields, and
/// `item_bytes` per BSON array element (type, decimal key, value).
fn items_per_request(max_payload_size: usize, item_bytes: usize) -> usize {
    (max_payload_size.saturating_sub(300) / item_bytes).clamp(8, MAX_ITEMS_PER_REQUEST)
}

/// The meta's `sn`, range-checked: `None` when it is present but not a valid
/// message number, `Some(None)` when absent (0.1.x senders).
fn checked_sn(sn: Option<i64>) -> Option<Option<Sn>> {
    match sn {
        None => Some(None),
        Some(v) => Sn::new(v).map(Some),
    }
}

/// The `sn` of a heartbeat document `{id, sn}` sent by `sender`: the id must
/// be the datagram's own sender id and `sn` a valid message number.
fn heartbeat_fields(doc: &Document, sender: &str) -> Option<Sn> {
    if doc.get_str("id").ok()? != sender {
        return None;
    }
    doc.get("sn").and_then(wire::num::int64).and_then(Sn::new)
}

/// The wall clock the engine accepts: not before 1970 (the `time` field
/// cannot carry it, and a silent 1970 would make secure peers drop
/// everything as a replay).
fn check_wall(wall: SystemTime) -> Result<(), Error> {
    match wall.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Clock(format!("the system clock reads {:?} before 1970-01-01", e.duration()))),
    }
}
