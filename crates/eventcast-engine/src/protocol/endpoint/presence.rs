//! Presence on the endpoint: sending our beacons (hello every interval,
//! goodbye on stop), feeding received ones and delivered events to the peer
//! table ([`crate::protocol::presence`]), and its timers.

use super::{wall_from, Endpoint};
use crate::error::Error;
use crate::protocol::presence::{PeerChange, PeerInfo, PresenceTable};
use crate::protocol::reassembly::SenderRef;
use crate::protocol::Output;
use crate::protocol::PresenceConfig;
use crate::wire::beacon::{check_meta, check_name, Beacon, BeaconKind, PeerStats, PRESENCE_EVENT};
use bson::Document;
use rand::Rng;
use std::time::{Duration, Instant, SystemTime};

/// Least time between two hello beacons: `set_meta` in a loop sends at most
/// this often (the change waits for the next slot, it is not lost).
const MIN_BEACON_GAP: Duration = Duration::from_millis(50);

/// Presence state of an endpoint whose config enables it.
pub(super) struct Presence {
    config: PresenceConfig,
    table: PresenceTable,
    /// Between `start_presence` and `stop_presence`: beaconing.
    active: bool,
    beacon_due: Option<Instant>,
    last_beacon: Option<Instant>,
    /// When this node started, in ms since 1970 (the beacons' `since`).
    since_ms: i64,
    /// Scratch for what the table reports.
    changes: Vec<PeerChange>,
}

impl Presence {
    pub(super) fn new(config: PresenceConfig) -> Self {
        let table = PresenceTable::new(&config);
        Presence { config, table, active: false, beacon_due: None, last_beacon: None, since_ms: 0, changes: Vec::new() }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.beacon_due, self.table.next_deadline()].into_iter().flatten().min()
    }
}

impl Endpoint {
    /// Starts announcing this node (a hello beacon now, then one every
    /// `presence.interval`). Drivers call it when the node starts; without
    /// presence in the config it does nothing.
    pub fn start_presence(&mut self, now: Instant) {
        let since = self.wall_at(now).duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let Some(p) = &mut self.presence else { return };
        p.active = true;
        p.since_ms = i64::try_from(since).unwrap_or(i64::MAX);
        p.beacon_due = Some(now);
    }

    /// Says goodbye (three copies, so that a lost datagram rarely turns a stop
    /// into a timeout: at 10% loss, one stop in a thousand) and forgets every peer, quietly: a stopped node reports
    /// nothing. Drivers call it when the node stops, before the last sends.
    pub fn stop_presence(&mut self, now: Instant) {
        let Some(p) = &mut self.presence else { return };
        if !p.active {
            return;
        }
        p.active = false;
        p.beacon_due = None;
        p.table.clear();
        for _ in 0..3 {
            self.send_beacon(now, BeaconKind::Goodbye);
        }
    }

    /// Changes the application object this node advertises; the next beacon
    /// (within 50 ms when started) carries it and peers report a
    /// `PeerUpdate`. `EINVALIDOPTION` when it encodes to more than
    /// `wire::beacon::MAX_META_BYTES`, or presence is off.
    pub fn set_meta(&mut self, now: Instant, meta: Document) -> Result<(), Error> {
        Self::check_advertised_meta(&meta)?;
        let Some(p) = &mut self.presence else {
            return Err(Error::InvalidOption {
                option: "meta",
                reason: "presence is off (option presence: false)".into(),
            });
        };
        p.config.advertised.meta = meta;
        if p.active {
            let soonest = p.last_beacon.map_or(now, |t| (t + MIN_BEACON_GAP).max(now));
            p.beacon_due = Some(p.beacon_due.map_or(soonest, |d| d.min(soonest)));
        }
        Ok(())
    }

    /// Checks a name before it is advertised (`EINVALIDOPTION` when too long).
    pub fn check_advertised_name(name: &str) -> Result<(), Error> {
        check_name(name).map_err(|e| Error::InvalidOption { option: "name", reason: e.to_string() })
    }

    /// Checks an application object before it is advertised
    /// (`EINVALIDOPTION` when it encodes to more than `wire::beacon::MAX_META_BYTES`).
    pub fn check_advertised_meta(meta: &Document) -> Result<(), Error> {
        check_meta(meta).map(drop).map_err(|e| Error::InvalidOption { option: "meta", reason: e.to_string() })
    }

    /// The peers this node knows, by id (empty when presence is off or the
    /// node is stopped).
    pub fn peers(&self) -> Vec<PeerInfo> {
        match &self.presence {
            Some(p) => p.table.peers(|t| self.wall_at(t)),
            None => Vec::new(),
        }
    }

    fn send_beacon(&mut self, now: Instant, kind: BeaconKind) {
        let Some(p) = &self.presence else { return };
        let s = &self.stats;
        let a = &p.config.advertised;
        let beacon = Beacon {
            kind,
            version: a.version.clone(),
            since_ms: p.since_ms,
            transport: a.transport,
            name: a.name.clone(),
            pid: a.pid,
            meta: a.meta.clone(),
            stats: PeerStats {
                events_sent: s.events_sent,
                events_delivered: s.events_delivered,
                datagrams_sent: s.datagrams_sent,
                repairs_sent: s.repairs_sent,
                repairs_requested: s.repairs_requested,
                gaps_unrecovered: s.gaps_unrecovered,
            },
        };
        self.stats.beacons_sent += 1;
        self.send_control(now, PRESENCE_EVENT, &beacon.to_document(), 1, false, None);
    }

    /// Beacon timer and peer timeouts.
    pub(super) fn presence_timeout(&mut self, now: Instant) {
        let Some(p) = &mut self.presence else { return };
        if p.active && p.beacon_due.is_some_and(|t| t <= now) {
            // ±10% so that nodes started together do not beacon in step.
            let interval = p.config.interval.mul_f64(self.rng.gen_range(0.9..=1.1));
            p.beacon_due = Some(now + interval);
            p.last_beacon = Some(now);
            self.send_beacon(now, BeaconKind::Hello);
        }
        let Some(p) = &mut self.presence else { return };
        let mut changes = std::mem::take(&mut p.changes);
        let anchor = self.wall_anchor;
        p.table.expire(now, |t| wall_from(anchor, t), &mut changes);
        self.report_peer_changes(&mut changes);
    }

    pub(super) fn presence_deadline(&self) -> Option<Instant> {
        self.presence.as_ref().and_then(Presence::next_deadline)
    }

    /// A received `__ec_presence` document from `from`.
    pub(super) fn handle_beacon(&mut self, now: Instant, from: SenderRef<'_>, doc: &Document) {
        let beacon = match Beacon::from_document(doc) {
            Ok(b) => b,
            Err(_) => {
                self.stats.rejected_malformed += 1;
                return;
            }
        };
        self.stats.beacons_received += 1;
        let wall = self.wall_at(now);
        let Some(p) = &mut self.presence else { return };
        if !p.active {
            return;
        }
        let mut changes = std::mem::take(&mut p.changes);
        match beacon.kind {
            BeaconKind::Hello => p.table.hello(now, wall, from, beacon, &mut changes),
            BeaconKind::Goodbye => p.table.goodbye(wall, from.id, &mut changes),
        }
        self.report_peer_changes(&mut changes);
    }

    /// An event of `from` was delivered here (`legacy`: its datagrams carry
    /// no message numbers, a 0.1.x sender).
    pub(super) fn presence_delivered(&mut self, now: Instant, from: SenderRef<'_>, legacy: bool) {
        let wall = self.wall_at(now);
        let Some(p) = &mut self.presence else { return };
        if !p.active {
            return;
        }
        let mut changes = std::mem::take(&mut p.changes);
        p.table.delivered(now, wall, from, legacy, &mut changes);
        self.report_peer_changes(&mut changes);
    }

    /// `count` messages of `sender` were lost beyond repair.
    pub(super) fn presence_gap(&mut self, sender: &str, count: u64) {
        if let Some(p) = &mut self.presence {
            p.table.gap(sender, count);
        }
    }

    fn report_peer_changes(&mut self, changes: &mut Vec<PeerChange>) {
        for c in changes.drain(..) {
            self.outputs.push_back(Output::Peer(Box::new(c)));
        }
        if let Some(p) = &mut self.presence {
            self.stats.peers_evicted = p.table.evicted;
            self.stats.peers_refused = p.table.refused;
            self.stats.peers_known = p.table.len() as u64;
            // Hand the scratch back (its capacity is reused).
            p.changes = std::mem::take(changes);
        }
    }
}
