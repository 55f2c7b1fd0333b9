//! What `eventcast top` measures: rates from cumulative counters, the
//! busiest event names, and each peer's rates, independent of the terminal.
//!
//! Every table here is keyed by what the network sends (event names, peer
//! ids) and bounded; what does not fit is counted, never silently dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Event names tracked at once; events of further names are counted
/// together as "other names" until idle names are evicted.
pub const MAX_NAMES: usize = 256;

/// Bytes of an event name kept as its key: a longer name is cut (at a
/// character boundary), so a hostile sender cannot make one entry large.
pub const MAX_NAME_BYTES: usize = 128;

/// Samples a [`RateMeter`] keeps: its memory does not grow with the window.
const METER_SAMPLES: usize = 32;

/// The rate of a cumulative counter, averaged over a sliding window.
///
/// Rates are differences of samples (time, value) taken at refreshes. The
/// window should span several presence intervals: a peer's own counters
/// arrive once per beacon, so they rise in steps, and a window of a whole
/// number of intervals contains as many steps as it is long.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    /// A meter averaging over `window` (at least a millisecond).
    pub fn new(window: Duration) -> Self {
        RateMeter { window: window.max(Duration::from_millis(1)), samples: VecDeque::new() }
    }

    /// Records `value` at `now` and returns the rate per second over the
    /// window (0 until two samples are a moment apart). A counter that went
    /// down (a restarted peer reusing an id) starts the meter over.
    pub fn update(&mut self, now: Instant, value: u64) -> f64 {
        if self.samples.back().is_some_and(|&(_, v)| v > value) {
            self.samples.clear();
        }
        // Keep samples spaced by a fraction of the window, so their number is bounded.
        let spacing = self.window / METER_SAMPLES as u32;
        match self.samples.back() {
            Some(&(t, _)) if now.saturating_duration_since(t) < spacing && self.samples.len() > 1 => {}
            _ => self.samples.push_back((now, value)),
        }
        // The baseline: the newest sample at or before the window's start, else the oldest.
        let start = now.checked_sub(self.window);
        while self.samples.len() > 1 && start.is_some_and(|s| self.samples[1].0 <= s) {
            self.samples.pop_front();
        }
        while self.samples.len() > METER_SAMPLES {
            self.samples.pop_front();
        }
        let Some(&(t0, v0)) = self.samples.front() else { return 0.0 };
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        if dt < 1e-3 {
            return 0.0;
        }
        value.saturating_sub(v0) as f64 / dt
    }
}

/// One event name's figures since `top` started.
#[derive(Debug, Clone)]
struct NameStat {
    count: u64,
    bytes_total: u64,
    bytes_max: u64,
    meter: RateMeter,
    rate: f64,
}

/// A row of the event table.
#[derive(Debug, Clone, PartialEq)]
pub struct NameRow {
    /// The name as received (cut to [`MAX_NAME_BYTES`]), not yet cleaned for the terminal.
    pub name: String,
    /// Events per second over the window.
    pub rate: f64,
    /// Events received since `top` started.
    pub count: u64,
    /// Mean size of the arguments in bytes (their BSON body).
    pub mean_bytes: u64,
    /// Largest size of the arguments seen, in bytes.
    pub max_bytes: u64,
}

/// The busiest event names: counts, sizes and rates of the events received.
#[derive(Debug)]
pub struct EventNames {
    window: Duration,
    names: HashMap<String, NameStat>,
    /// Events whose name did not fit in the table.
    other: NameStat,
    /// Names dropped from the table after a window without events.
    evicted: u64,
    /// When [`EventNames::tick`] last ran: a new name had no events then.
    last_tick: Option<Instant>,
}

/// `name` cut to at most [`MAX_NAME_BYTES`] bytes at a character boundary.
fn name_key(name: &str) -> &str {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl NameStat {
    fn new(window: Duration) -> Self {
        NameStat { count: 0, bytes_total: 0, bytes_max: 0, meter: RateMeter::new(window), rate: 0.0 }
    }

    fn add(&mut self, bytes: u64) {
        self.count = self.count.saturating_add(1);
        self.bytes_total = self.bytes_total.saturating_add(bytes);
        self.bytes_max = self.bytes_max.max(bytes);
    }

    fn row(&self, name: String) -> NameRow {
        NameRow {
            name,
            rate: self.rate,
            count: self.count,
            mean_bytes: self.bytes_total.checked_div(self.count).unwrap_or(0),
            max_bytes: self.bytes_max,
        }
    }
}

impl EventNames {
    /// An empty table whose rates average over `window`.
    pub fn new(window: Duration) -> Self {
        EventNames { window, names: HashMap::new(), other: NameStat::new(window), evicted: 0, last_tick: None }
    }

    /// Counts one received event of `name` whose arguments took `bytes`.
    pub fn record(&mut self, name: &str, bytes: u64) {
        let key = name_key(name);
        if let Some(stat) = self.names.get_mut(key) {
            stat.add(bytes);
        } else if self.names.len() < MAX_NAMES {
            let mut stat = NameStat::new(self.window);
            if let Some(t) = self.last_tick {
                stat.meter.update(t, 0);
            }
            stat.add(bytes);
            self.names.insert(key.to_owned(), stat);
        } else {
            self.other.add(bytes);
        }
    }

    /// Takes this refresh's samples (rates as of `now`); when the table is
    /// three quarters full, evicts the names without an event in the window.
    pub fn tick(&mut self, now: Instant) {
        self.last_tick = Some(now);
        for stat in self.names.values_mut() {
            stat.rate = stat.meter.update(now, stat.count);
        }
        self.other.rate = self.other.meter.update(now, self.other.count);
        if self.names.len() >= MAX_NAMES * 3 / 4 {
            let before = self.names.len();
            self.names.retain(|_, s| s.rate > 0.0);
            self.evicted += (before - self.names.len()) as u64;
        }
    }

    /// The `n` busiest names: highest rate first, then most events, then by name.
    pub fn busiest(&self, n: usize) -> Vec<NameRow> {
        let mut rows: Vec<NameRow> = self.names.iter().map(|(k, s)| s.row(k.clone())).collect();
        rows.sort_by(|a, b| b.rate.total_cmp(&a.rate).then(b.count.cmp(&a.count)).then(a.name.cmp(&b.name)));
        rows.truncate(n);
        rows
    }

    /// The events of names that did not fit, as one row (`None` when there were none).
    pub fn other(&self) -> Option<NameRow> {
        (self.other.count > 0).then(|| self.other.row(String::new()))
    }

    /// Names tracked now.
    pub fn tracked(&self) -> usize {
        self.names.len()
    }

    /// Names evicted so far (idle for a window while the table was filling).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// How a peer is connected, as `top` and `peers` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerKind {
    /// `udp` or `nats`: the peer's own transport.
    pub transport: &'static str,
    /// Heard through a LAN⇄NATS bridge.
    pub bridged: bool,
    /// A 0.1.x sender, known from its traffic only.
    pub legacy: bool,
}

/// What `top` needs to know of a peer at one refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSample {
    /// Instance id.
    pub id: String,
    /// Advertised host and port.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Advertised label, if any.
    pub name: Option<String>,
    /// Host name.
    pub hostname: String,
    /// How it is connected.
    pub kind: PeerKind,
    /// Its events delivered here so far.
    pub delivered: u64,
    /// Events it says it sent (from its latest beacon).
    pub events_sent: u64,
    /// Repairs it says it sent.
    pub repairs_sent: u64,
    /// Its messages lost here beyond repair.
    pub gaps: u64,
    /// How long ago it was last heard.
    pub last_seen_ago: Duration,
}

/// A row of the peer table: a sample with its rates.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    /// The sample.
    pub peer: PeerSample,
    /// Its events delivered here per second.
    pub rate_in: f64,
    /// Events it sent per second (from its beacons).
    pub rate_out: f64,
}

/// The rates of every peer, from one refresh to the next.
#[derive(Debug)]
pub struct PeerRates {
    window: Duration,
    meters: HashMap<String, (RateMeter, RateMeter)>,
}

impl PeerRates {
    /// No peers yet; rates average over `window`.
    pub fn new(window: Duration) -> Self {
        PeerRates { window, meters: HashMap::new() }
    }

    /// The rows for this refresh's peers, busiest first (then by name and id).
    /// Meters of peers no longer listed are dropped, so this table is never
    /// larger than the node's own (bounded) peer table.
    pub fn update(&mut self, now: Instant, peers: Vec<PeerSample>) -> Vec<PeerRow> {
        let listed: HashSet<&str> = peers.iter().map(|p| p.id.as_str()).collect();
        self.meters.retain(|id, _| listed.contains(id.as_str()));
        let mut rows: Vec<PeerRow> = peers
            .into_iter()
            .map(|peer| {
                let window = self.window;
                let (m_in, m_out) = self
                    .meters
                    .entry(peer.id.clone())
                    .or_insert_with(|| (RateMeter::new(window), RateMeter::new(window)));
                let rate_in = m_in.update(now, peer.delivered);
                let rate_out = m_out.update(now, peer.events_sent);
                PeerRow { peer, rate_in, rate_out }
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.rate_in + b.rate_out)
                .total_cmp(&(a.rate_in + a.rate_out))
                .then_with(|| a.peer.name.cmp(&b.peer.name))
                .then_with(|| a.peer.id.cmp(&b.peer.id))
        });
        rows
    }
}

#[cfg(test)]
mod tests;
