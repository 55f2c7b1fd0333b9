//! Presence: who is out there. The table of peers a node knows from their
//! beacons (`wire::beacon`) and, for 0.1.x senders, from their traffic; and
//! when each one goes down (goodbye, timeout, or evicted for room).
//!
//! This module is the table alone (sans-IO, no sending); the endpoint feeds
//! it (`endpoint/presence.rs`) and sends our own beacons.
//!
//! # Bounds
//!
//! Entries are keyed by a sender id anyone can forge (where encryption is
//! off), so the table holds at most `max_peers`; a new peer arriving when it
//! is full evicts the one heard from least recently (`'peerDown'` with reason
//! `evicted`, counted in `Stats::peers_evicted`). New peers are admitted at
//! most `max_peers` per `timeout` (a token bucket): past that, a new id is
//! refused (counted in `Stats::peers_refused`, reported to nobody) and tried
//! again at its next beacon or event. So a flood of new ids (forged beacons,
//! or forged 0.1.x-style events, each a "new sender") costs the node a table
//! lookup each, and the application at most `2 × max_peers` up/down reports
//! per `timeout`, however fast it comes. Beacons trigger no sends. Entries
//! are of bounded size (name, version and meta are bounded by the beacon
//! decoder). A peer goes down at most `timeout` after the last
//! beacon or event heard from it (plus the timer task's wake-up latency).

use super::config::PresenceConfig;
use super::reassembly::SenderRef;
use crate::wire::beacon::{Beacon, PeerStats, PeerTransport};
use bson::Document;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

/// Why a peer left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerDownReason {
    /// It said goodbye (it stopped).
    Goodbye,
    /// Nothing heard from it for `timeout`.
    Timeout,
    /// Forgotten for room: the table was full when another peer appeared.
    Evicted,
}

impl PeerDownReason {
    /// The name in JS and the CLI (`"goodbye"`, `"timeout"`, `"evicted"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PeerDownReason::Goodbye => "goodbye",
            PeerDownReason::Timeout => "timeout",
            PeerDownReason::Evicted => "evicted",
        }
    }
}

/// One peer, as this node knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// Instance id (16 hex chars).
    pub id: String,
    /// Advertised address (the `host` of its datagrams).
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// OS hostname.
    pub hostname: String,
    /// The label it advertises.
    pub name: Option<String>,
    /// Its process id (`None` for 0.1.x).
    pub pid: Option<u32>,
    /// Its eventcast version (`None` for 0.1.x).
    pub version: Option<String>,
    /// Its application object.
    pub meta: Document,
    /// When it started (its beacon's word), or, for 0.1.x, when first heard.
    pub since: SystemTime,
    /// When its last beacon or event arrived here.
    pub last_seen: SystemTime,
    /// How the peer itself is connected (0.1.x: UDP).
    pub transport: PeerTransport,
    /// Heard through a LAN⇄NATS bridge (its transport is not ours).
    pub bridged: bool,
    /// A 0.1.x sender, known from its traffic only (no beacons).
    pub legacy: bool,
    /// Its own counters, from its latest beacon (zeros for 0.1.x).
    pub stats: PeerStats,
    /// Events of this peer delivered here.
    pub delivered: u64,
    /// Messages of this peer lost here beyond repair.
    pub gaps: u64,
}

/// What the table tells the endpoint (which makes outputs of it).
#[derive(Clone, Debug, PartialEq)]
pub enum PeerChange {
    /// A peer appeared.
    Up(PeerInfo),
    /// A peer left.
    Down(PeerInfo, PeerDownReason),
    /// A known peer's name or meta changed (or it was a 0.1.x sender and now beacons).
    Update(PeerInfo),
}

struct Entry {
    info: PeerInfo,
    /// Last beacon or event, on the monotonic clock (`info.last_seen` is
    /// written from it when the entry is read).
    heard: Instant,
}

/// The peer table. See the module docs.
pub(crate) struct PresenceTable {
    entries: HashMap<String, Entry>,
    /// `(deadline, id)`; a deadline may be stale (the peer was heard since):
    /// checked when it falls due, so an event costs no reordering here.
    deadlines: BTreeSet<(Instant, String)>,
    timeout: Duration,
    max: usize,
    own_transport: PeerTransport,
    pub(crate) evicted: u64,
    pub(crate) refused: u64,
    /// Admissions left (at most `max`), refilled at `max` per `timeout`.
    admissions: f64,
    admissions_at: Option<Instant>,
}

impl PresenceTable {
    pub(crate) fn new(config: &PresenceConfig) -> Self {
        PresenceTable {
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
            timeout: config.timeout,
            max: config.max_peers.max(1),
            own_transport: config.advertised.transport,
            evicted: 0,
            refused: 0,
            admissions: config.max_peers.max(1) as f64,
            admissions_at: None,
        }
    }

    /// A hello beacon from `from`.
    pub(crate) fn hello(
        &mut self,
        now: Instant,
        wall: SystemTime,
        from: SenderRef<'_>,
        beacon: Beacon,
        out: &mut Vec<PeerChange>,
    ) {
        let own = self.own_transport;
        if let Some(e) = self.entries.get_mut(from.id) {
            let changed = e.info.legacy || e.info.name != beacon.name || e.info.meta != beacon.meta;
            apply_beacon(&mut e.info, from, beacon, own);
            e.heard = now;
            if changed {
                out.push(PeerChange::Update(with_seen(&e.info, wall)));
            }
            return;
        }
        if self.admit(now) {
            let mut info = first_heard(from, wall, own);
            apply_beacon(&mut info, from, beacon, own);
            self.insert(now, wall, info, out);
        }
    }

    /// A goodbye beacon from `id`.
    pub(crate) fn goodbye(&mut self, wall: SystemTime, id: &str, out: &mut Vec<PeerChange>) {
        if let Some(e) = self.entries.remove(id) {
            out.push(PeerChange::Down(with_seen(&e.info, wall), PeerDownReason::Goodbye));
        }
    }

    /// An event from `from` was delivered here. A 0.1.x sender (`legacy`:
    /// its datagrams carry no message numbers) not in the table yet joins it.
    pub(crate) fn delivered(
        &mut self,
        now: Instant,
        wall: SystemTime,
        from: SenderRef<'_>,
        legacy: bool,
        out: &mut Vec<PeerChange>,
    ) {
        if let Some(e) = self.entries.get_mut(from.id) {
            e.info.delivered += 1;
            e.heard = now;
            return;
        }
        if !legacy {
            // A node of ours appears with its first beacon (sent when it
            // starts): one that turned presence off stays out.
            return;
        }
        // Admission first: a flood of new ids is refused before anything is built.
        if self.admit(now) {
            let info = PeerInfo { delivered: 1, ..first_heard(from, wall, self.own_transport) };
            self.insert(now, wall, info, out);
        }
    }

    /// `count` messages of `id` were given up on here.
    pub(crate) fn gap(&mut self, id: &str, count: u64) {
        if let Some(e) = self.entries.get_mut(id) {
            e.info.gaps = e.info.gaps.saturating_add(count);
        }
    }

    /// Takes one admission from the bucket; false when a flood of new ids used them up.
    fn admit(&mut self, now: Instant) -> bool {
        let cap = self.max as f64;
        if let Some(at) = self.admissions_at {
            let per_sec = cap / self.timeout.as_secs_f64().max(1e-3);
            self.admissions = (self.admissions + now.saturating_duration_since(at).as_secs_f64() * per_sec).min(cap);
        }
        self.admissions_at = Some(now);
        if self.admissions < 1.0 {
            self.refused += 1;
            return false;
        }
        self.admissions -= 1.0;
        true
    }

    /// Puts an admitted peer in the table, evicting for room.
    fn insert(&mut self, now: Instant, wall: SystemTime, info: PeerInfo, out: &mut Vec<PeerChange>) {
        if self.entries.len() >= self.max {
            // The least recently heard goes: a linear scan, at most `max` per
            // `timeout` (admissions are bounded above).
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.heard).map(|(id, _)| id.clone());
            if let Some(e) = oldest.and_then(|id| self.entries.remove(&id)) {
                self.evicted += 1;
                out.push(PeerChange::Down(with_seen(&e.info, wall), PeerDownReason::Evicted));
            }
        }
        self.deadlines.insert((now + self.timeout, info.id.clone()));
        out.push(PeerChange::Up(info.clone()));
        self.entries.insert(info.id.clone(), Entry { info, heard: now });
    }

    /// Takes down the peers not heard from for `timeout` by `now`.
    pub(crate) fn expire(&mut self, now: Instant, wall_at: impl Fn(Instant) -> SystemTime, out: &mut Vec<PeerChange>) {
        while let Some((due, id)) = self.deadlines.first().cloned() {
            if due > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(e) = self.entries.get(&id) else { continue };
            let expires = e.heard + self.timeout;
            if expires > now {
                // Heard since this deadline was set: wait for the new one.
                self.deadlines.insert((expires, id));
            } else if let Some(e) = self.entries.remove(&id) {
                out.push(PeerChange::Down(with_seen(&e.info, wall_at(e.heard)), PeerDownReason::Timeout));
            }
        }
        // Deadlines of peers gone (goodbye, eviction) are dropped as they come
        // due; bound their number by the table's when they pile up.
        if self.deadlines.len() > 2 * self.max + 16 {
            let entries = &self.entries;
            self.deadlines.retain(|(_, id)| entries.contains_key(id));
        }
    }

    /// When [`PresenceTable::expire`] must next run.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Forgets every peer without reporting (the node stopped).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.deadlines.clear();
    }

    /// Every peer, by id.
    pub(crate) fn peers(&self, wall_at: impl Fn(Instant) -> SystemTime) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = self.entries.values().map(|e| with_seen(&e.info, wall_at(e.heard))).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A peer first heard at `wall` from what its datagram says, as a 0.1.x
/// sender looks (no beacon yet): [`apply_beacon`] fills in the rest.
fn first_heard(from: SenderRef<'_>, wall: SystemTime, own: PeerTransport) -> PeerInfo {
    PeerInfo {
        id: from.id.to_owned(),
        host: from.host.to_owned(),
        port: from.port,
        hostname: from.hostname.to_owned(),
        name: None,
        pid: None,
        version: None,
        meta: Document::new(),
        since: wall,
        last_seen: wall,
        transport: PeerTransport::Udp,
        bridged: own != PeerTransport::Udp,
        legacy: true,
        stats: PeerStats::default(),
        delivered: 0,
        gaps: 0,
    }
}

/// What a beacon says about its sender, into its entry (`own`: our transport).
fn apply_beacon(i: &mut PeerInfo, from: SenderRef<'_>, beacon: Beacon, own: PeerTransport) {
    i.host = from.host.to_owned();
    i.port = from.port;
    i.hostname = from.hostname.to_owned();
    i.name = beacon.name;
    i.pid = beacon.pid;
    i.version = Some(beacon.version);
    i.meta = beacon.meta;
    i.since = SystemTime::UNIX_EPOCH + Duration::from_millis(beacon.since_ms.unsigned_abs());
    i.transport = beacon.transport;
    i.bridged = beacon.transport != own;
    i.legacy = false;
    i.stats = beacon.stats;
}

fn with_seen(info: &PeerInfo, last_seen: SystemTime) -> PeerInfo {
    PeerInfo { last_seen, ..info.clone() }
}
