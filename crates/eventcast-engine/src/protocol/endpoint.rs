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
//!
//! # Parts
//!
//! This file holds the state ([`Endpoint`]), its construction and clocks, and
//! the entry points of the sans-IO interface (`handle_datagram`,
//! `handle_timeout`, the `poll_*` outputs). The rest is in further
//! `impl Endpoint` blocks, one file each, as quinn-proto splits a connection:
//!
//! * `endpoint/send.rs` — the send path: `emit`, encoding (encryption,
//!   chunking), control messages, queueing now or later, retention;
//! * `endpoint/receive.rs` — the receive path: decryption, nesting,
//!   reassembly, freshness and duplicate checks, delivery;
//! * `endpoint/answer.rs` — answering repair requests (resends, relaying
//!   0.1.x requests, NACK suppression);
//! * `endpoint/heartbeat.rs` — sending and handling heartbeats;
//! * `endpoint/peers.rs` — per-sender loss tracking by `sn`: tracked
//!   senders, their request timers, `'gap'` reports;
//! * `endpoint/presence.rs` — our beacons, and feeding the peer table
//!   ([`super::presence`]);
//! * `endpoint/exchange.rs` — requests and replies (request/reply): sending
//!   them, and handing received ones to the driver.
//!
//! The fields stay private to this module; the parts, being its children,
//! see them.

mod answer;
mod exchange;
mod heartbeat;
mod peers;
mod presence;
mod receive;
mod send;

pub use heartbeat::HEARTBEAT_EVENT;

use super::fifo_set::FifoSet;
use super::reassembly::{Reassembly, RecentSenders};
use super::repair::{
    self, CreditBucket, KnownSenders, RepairBudget, RepairTiming, RequesterCredit, REQUEST_CREDIT_PER_BYTE,
};
use super::request::{RepairRequest, MAX_ITEMS_PER_REQUEST};
use super::retention::Retention;
use super::timefmt::IsoCache;
use super::tracker::{Peer, Sn};
use super::{Config, Destination, Identity, Output, SharedBytes, Stats, Transmit};
use crate::error::Error;
use rand::rngs::StdRng;
use rand::SeedableRng;
use receive::Via;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// Most messages retained for repair, whatever their size.
const MAX_RETAINED_MESSAGES: usize = 65_536;
/// Most request datagrams sent for one partial message (or sender) at one time.
const MAX_REQUESTS_PER_ROUND: usize = 32;
/// Chunks of one partial message that make its sender count as heard from
/// ([`KnownSenders`]) even before it delivered a complete event here: a
/// forger pays for escalation and `'gap'` reports with datagrams.
const ESCALATION_EVIDENCE: usize = 8;

/// Request bytes we send for a partial message of a sender not known yet
/// ([`KnownSenders`]), per byte of its datagrams received: a forged chunk
/// buys at most this much traffic from us.
const UNKNOWN_REQUEST_FACTOR: usize = 3;

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
    /// one) and of repairs answering 0.1.x requests (`LEGACY_COPY_SPACING` in [`answer`]).
    delayed: VecDeque<(Instant, SharedBytes)>,
    /// 0.1.x requests forwarded to the group (hashes of requester and chunk
    /// group), so each is forwarded once; bounded, oldest forgotten first.
    relayed: FifoSet<u64>,
    /// 0.1.x requests answered, by source and chunk group (see [`answer`]).
    legacy_answered: answer::Answered,
    /// Reused buffer for the encoded arguments of [`Endpoint::emit`].
    args_buf: Vec<u8>,
    /// The `time` string of the datagrams we send, formatted once per millisecond.
    time_text: IsoCache,
    outputs: VecDeque<Output>,
    retention: Retention,
    reassembly: Reassembly,
    next_sn: i64,
    /// When our message 1 was emitted: the origin of the `snAge` we write.
    numbered_since: Option<Instant>,
    /// Since when we have been receiving (construction, or the last
    /// [`Endpoint::listening_since`]): a sender whose numbering is younger,
    /// by more than the repair delay, started while we listened (see
    /// `Endpoint::started_while_listening`).
    listening_from: Instant,
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
    /// Repair credit per requester id, where there is no source address.
    requester_credit: RequesterCredit,
    /// Node-wide budget of repairs sent, credited by our own emitted bytes.
    repair_credit: CreditBucket,
    /// Node-wide budget of repair requests sent, credited by bytes received.
    request_credit: CreditBucket,
    /// Senders that delivered a complete event here.
    known: KnownSenders,
    /// Compact records of senders forgotten for room after delivering here.
    records: peers::SenderRecords,
    /// The last few senders' shared [`Sender`]s, for delivered events.
    recent_senders: RecentSenders,
    /// Beacons and the peer table, when the config enables presence.
    presence: Option<presence::Presence>,
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
        let requester_credit = RequesterCredit::new(config.limits.max_repair_bytes_per_requester);
        let l = &config.limits;
        let repair_credit = CreditBucket::new(now, l.max_repair_credit_bytes, l.repair_floor_bytes_per_sec);
        let request_credit = CreditBucket::new(now, l.max_request_credit_bytes, l.request_floor_bytes_per_sec);
        let presence = config.presence.clone().map(presence::Presence::new);
        Ok(Endpoint {
            config,
            identity,
            rng: StdRng::seed_from_u64(seed),
            stats: Stats::default(),
            timing,
            transmits: VecDeque::new(),
            delayed: VecDeque::new(),
            relayed: FifoSet::new(answer::MAX_RELAYED_REMEMBERED),
            legacy_answered: answer::Answered::default(),
            args_buf: Vec::new(),
            time_text: IsoCache::default(),
            outputs: VecDeque::new(),
            retention,
            reassembly,
            next_sn: 1,
            numbered_since: None,
            listening_from: now,
            wall_anchor: (now, wall),
            started: wall,
            peers: HashMap::new(),
            peer_timers: BTreeSet::new(),
            peer_deadlines: HashMap::new(),
            heartbeat_due: None,
            heartbeats_left: 0,
            repair_budget,
            requester_credit,
            repair_credit,
            request_credit,
            known: KnownSenders::default(),
            records: peers::SenderRecords::default(),
            recent_senders: RecentSenders::default(),
            presence,
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

    /// Tells the engine it (re)started receiving at `now`, after a time in
    /// which it did not (a driver that keeps its endpoint across stop and
    /// start calls this on every start but the first: [`Endpoint::new`]'s
    /// `now` counts as the first). Senders whose numbering began before
    /// `now` are late joins from here on: their earlier messages were sent
    /// while we were not listening, and are not asked for (see `tracker`,
    /// "Joining"). Senders already tracked keep their windows.
    pub fn listening_since(&mut self, now: Instant) {
        self.listening_from = now;
    }

    /// Wall-clock time at `now`, from the anchor (never before 1970: a time
    /// before the anchor that would be is clamped to the anchor).
    fn wall_at(&self, now: Instant) -> SystemTime {
        wall_from(self.wall_anchor, now)
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
                        // Its sender was forgotten into a record while this
                        // partial was in progress: counted in that gap already.
                        Some(_) if self.records.contains(&p.sender.id) => {}
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
                let per_request = paying_items(&self.config, items_per_request(self.config.max_payload_size, 10));
                let arrived = p.arrived();
                let requests = arrived.div_ceil(per_request).clamp(1, MAX_REQUESTS_PER_ROUND);
                let delay = self.timing.jittered(&mut self.rng);
                // Not what another receiver asked for within `d` (see `repair::Heard`).
                let window = self.timing.base;
                p.heard.forget_stale(now, window);
                let mut missing = p.missing(per_request * requests + p.heard.len());
                let all = missing.len();
                missing.retain(|&i| !p.heard.covers(now, i64::from(i), window));
                missing.truncate(per_request * requests);
                if missing.is_empty() && all > 0 {
                    p.nack.wait(now, delay);
                    let deadline = p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl));
                    self.stats.repair_requests_suppressed += 1;
                    self.reassembly.reschedule(&key, deadline);
                    continue;
                }
                let known = peers::known_in(&self.known, &self.peers, &self.records, &p.sender.id);
                let retries = if known {
                    self.config.retransmit_attempts
                } else {
                    self.config.retransmit_attempts.min(u32::try_from(arrived.saturating_sub(1)).unwrap_or(u32::MAX))
                };
                let copies = p.nack.fire(now, delay, retries);
                let copies = if known { copies } else { 1 };
                // A sender not known yet pays for our requests with its own
                // bytes (see the `repair` module docs).
                let mut allowance = if known {
                    usize::MAX
                } else {
                    p.received.saturating_mul(UNKNOWN_REQUEST_FACTOR).saturating_sub(p.requested)
                };
                let deadline = p.nack.due.map_or(p.last_progress + ttl, |d| d.min(p.last_progress + ttl));
                let to = p.sender.id.clone();
                self.reassembly.reschedule(&key, deadline);
                let mut asked = Vec::with_capacity(missing.len());
                for batch in missing.chunks(per_request) {
                    let mut req = RepairRequest {
                        id: self.identity.id.clone(),
                        seq_id: key.seq_id(),
                        missed_seq: batch.to_vec(),
                        host: self.identity.host.clone(),
                        port: i32::from(self.identity.port),
                        missed_sn: Vec::new(),
                        to: Some(to.clone()),
                        relayed: false,
                    };
                    if known {
                        let answer = req.missed_seq.len() * self.answer_datagram_bytes();
                        self.send_request(now, &req, copies, answer);
                    } else if !self.send_request_within(now, &mut req, &mut allowance) {
                        break;
                    }
                    asked.extend_from_slice(&req.missed_seq);
                }
                if let Some(p) = self.reassembly.get_mut(&key) {
                    p.asked(&asked);
                    if !known {
                        p.requested = p.received.saturating_mul(UNKNOWN_REQUEST_FACTOR).saturating_sub(allowance);
                    }
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
        self.presence_timeout(now);
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
        [
            self.retention.next_expiry(),
            self.reassembly.next_deadline(),
            self.peer_timers.first().map(|(t, _)| *t),
            self.heartbeat_due,
            self.delayed.front().map(|(t, _)| *t),
            self.presence_deadline(),
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

/// `per_request` chunk indexes per request, fewer when requests pay for
/// their answers (`Config::pay_for_repairs`): a padded request stays one
/// datagram, so it asks for at most as many chunks as 3 × its room pays for
/// (NATS chunks are up to ~60 KiB: two per request), at least one.
fn paying_items(config: &Config, per_request: usize) -> usize {
    if !config.pay_for_repairs {
        return per_request;
    }
    let answer_datagram = config.max_payload_size + send::ANSWER_DATAGRAM_OVERHEAD;
    let room = config.max_payload_size.saturating_sub(send::REQUEST_META_ROOM);
    let fit = room * repair::REPAIR_BYTES_PER_REQUEST_BYTE / answer_datagram;
    per_request.min(fit.max(1))
}

/// How many chunk indexes or message numbers fit in one request so that it
/// stays a single datagram: about 300 bytes of meta and document fields, and
/// `item_bytes` per BSON array element (type, decimal key, value).
fn items_per_request(max_payload_size: usize, item_bytes: usize) -> usize {
    (max_payload_size.saturating_sub(300) / item_bytes).clamp(8, MAX_ITEMS_PER_REQUEST)
}

/// The wall-clock time at `now`, given that `anchor.1` was the time at
/// `anchor.0` (never before 1970: a time before the anchor that would be is
/// clamped to the anchor).
fn wall_from((at, wall): (Instant, SystemTime), now: Instant) -> SystemTime {
    if now >= at {
        wall + (now - at)
    } else {
        wall.checked_sub(at - now).filter(|w| *w >= SystemTime::UNIX_EPOCH).unwrap_or(wall)
    }
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
