//! Repair scheduling and repair budgets: when to ask for lost data again,
//! NACK suppression, and how much a node may send in reaction to input.
//!
//! A receiver that notices missing data waits a *repair delay* before asking,
//! so reordered datagrams can still arrive and so that, of several receivers
//! missing the same datagram, usually only one asks (the others hear its
//! request on the group and postpone theirs, as NORM and PGM do):
//!
//! * base delay `d = clamp(message_ttl / 8, 10 ms, 500 ms)` (375 ms for the
//!   default 3 s TTL), each wait drawn uniformly from `[d, 2d)`;
//! * suppression goes item by item ([`Heard`]): a receiver notes which of
//!   its missing items others asked for, waits only while those cover all it
//!   misses, and otherwise asks for the rest (what nobody asked for within `d`);
//! * after a request, the next one follows another jittered delay if no
//!   progress was made, at most `retransmit_attempts` more times; any progress
//!   resets that count (and never makes a due request later);
//! * repeated requests for the same data (no progress since the last one) are
//!   sent in `min(attempt, 4)` copies, spaced by a little more than the
//!   senders' resend window so that each copy that arrives gets its own
//!   answer — only for a [known](KnownSenders) sender (one that delivered a
//!   complete event here, or 8 chunks of one message);
//! * a sender resends one datagram at most once per `d / 4`, however many
//!   receivers ask, and always in one copy: how often it is asked never
//!   multiplies what it sends (redundancy against repeated loss is paid for
//!   by the requester, one request datagram per answer).
//!
//! # Budgets: traffic out is bounded by traffic in and by the node's own rate
//!
//! Every byte from the network is hostile, and a repair request is a tiny
//! datagram that asks for a lot. So what a node sends in reaction to input
//! draws from budgets ([`CreditBucket`]s) that only the node's own emits and
//! the bytes it received can fill:
//!
//! * **Repairs sent** draw from a node-wide bucket credited with every byte
//!   the node emits (each emitted byte can be resent about once), capped at
//!   [`Limits::max_repair_credit_bytes`], plus a floor of
//!   [`Limits::repair_floor_bytes_per_sec`] (itself holding at most one
//!   second's worth). On top, each *source address* (not the instance id a
//!   request claims) has its own bucket of
//!   [`Limits::max_repair_bytes_per_requester`] per second ([`RepairBudget`]).
//!   An answer to a `missedSn` request holds at most
//!   [`super::request::MAX_ITEMS_PER_REQUEST`] datagrams; a receiver that
//!   gets the first chunks of a message asks for the rest chunk by chunk.
//! * **Repair requests sent** draw from a node-wide bucket credited with
//!   [`REQUEST_CREDIT_PER_BYTE`] (½) token per byte received from others,
//!   capped at [`Limits::max_request_credit_bytes`], plus a floor of
//!   [`Limits::request_floor_bytes_per_sec`]. A round of requests for a
//!   partial message holds one request datagram per
//!   `MAX_ITEMS_PER_REQUEST` chunks that arrived (at least one): a one-chunk
//!   forgery announcing 2,048 chunks gets one 64-index request, not 32. A
//!   sender never heard from before (no complete event from it, never 8
//!   chunks of one message) gets no escalation: one copy per request, and at
//!   most as many rounds as chunks arrived. Message-level
//!   requests (`missedSn`) to such a sender: one round, one datagram.
//!
//! * **Requests to a sender not known yet** weigh at most 3× the bytes it
//!   sent: for a partial message, the bytes of the chunks that arrived for
//!   it, over all rounds; for messages asked for by number, the bytes of
//!   all its datagrams. Fewer items, or no request when not even one fits.
//!
//! # Requesters without a source address
//!
//! Over NATS the driver hands every datagram to the engine with the same
//! synthetic source (`0.0.0.0:0`), so a per-address bucket would be one
//! bucket for everybody: forged requests with rotating ids got 1,000× their
//! bytes resent. Without a source address the requester is the id its
//! request names, and the rule is anti-amplification rather than a rate:
//! every request credits its id with [`REPAIR_BYTES_PER_REQUEST_BYTE`] (3)
//! bytes per byte it weighs, and repairs answered to that id take from the
//! credit ([`RequesterCredit`]; capped at
//! [`Limits::max_repair_bytes_per_requester`], 1,024 ids, the idlest
//! forgotten). A made-up id can only spend what it paid for; the node-wide
//! budget stays as the second line.
//!
//! Our requesters pay ([`super::Config::pay_for_repairs`], set for NATS): a
//! request carries a `pad` field (zeros; 0.1.x ignores unknown fields, our
//! parser too) that makes it weigh a third of the answer it may bring back
//! (chunks asked for × a full datagram; messages by number × the sender's
//! average message size, at most 64 datagrams), and at least a third of one
//! full datagram, since a chunk is resent whole or not at all. With NATS
//! chunks of ~60 KiB, a padded request (one datagram, never chunked: a lost
//! chunk of a request would itself be asked for) carries two chunk indexes;
//! what the padding cannot cover is asked for again in the next round. The
//! padding is charged to the request budget like any request byte. With a
//! small NATS chunk size (1 KiB) a request pays for one chunk only, so
//! repair of a large message is slow: in the simulator a 1 MiB message at
//! 20% loss was not completed within the sender's retention (at 5% it is).
//!
//! The rule does not apply on UDP: 0.1.x requesters cannot pay, the source
//! address is the kernel's (rotating it means spoofing it), and the answer
//! goes to the group either way. A 0.1.x request bridged onto NATS is held
//! to the 3× rule like any other.
//!
//! Over any run, then, with `E` the bytes of the node's own messages, `H`
//! its heartbeats, `R` the bytes received from others and `T` the duration:
//!
//! ```text
//! sent ≤ E + H                       own traffic
//!      + E + floor_repair·(T + 1 s)  repairs
//!      + R/2 + floor_request·(T+1 s) requests
//!      ≤ 2·(E + H + R) + floors      k = 2
//! ```
//!
//! so a forged request can at most about double what a sender sends, and
//! forged chunks make a node send at most half their bytes in requests
//! (checked by the property test in `crates/eventcast-engine/tests/sim_budget.rs`).
//!
//! # Forged gaps
//!
//! A message given up is reported ([`super::Output::Gap`]) only when its
//! sender is known: it delivered a complete event here before, or at least
//! 8 chunks of one of its messages arrived. Otherwise the loss is counted in
//! [`super::Stats::gaps_unconfirmed`] and not reported: a one-chunk forgery
//! with a made-up id is indistinguishable from a new sender's message of
//! which almost nothing arrived, and reporting every such one would let
//! anyone raise `'gap'` storms for the price of one datagram each.
//!
//! [`Limits::max_repair_credit_bytes`]: super::Limits::max_repair_credit_bytes
//! [`Limits::repair_floor_bytes_per_sec`]: super::Limits::repair_floor_bytes_per_sec
//! [`Limits::max_repair_bytes_per_requester`]: super::Limits::max_repair_bytes_per_requester
//! [`Limits::max_request_credit_bytes`]: super::Limits::max_request_credit_bytes
//! [`Limits::request_floor_bytes_per_sec`]: super::Limits::request_floor_bytes_per_sec

use super::fifo_set::FifoSet;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most requesters with a repair budget remembered; the idlest is forgotten.
const MAX_REQUESTERS: usize = 1024;

/// Tokens of the node-wide request bucket per byte received from others: a
/// node sends at most half as many request bytes as it received (plus the floor).
pub const REQUEST_CREDIT_PER_BYTE: f64 = 0.5;

/// Token buckets of repair bytes, one per requester *source address* (an
/// instance id in a request is whatever the sender wrote).
pub(crate) struct RepairBudget {
    rate: f64,
    buckets: HashMap<SocketAddr, (f64, Instant)>,
}

impl RepairBudget {
    pub fn new(bytes_per_sec: usize) -> Self {
        RepairBudget { rate: bytes_per_sec as f64, buckets: HashMap::new() }
    }

    fn refill(&mut self, now: Instant, source: SocketAddr) -> f64 {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_REQUESTERS {
            if let Some(idle) = self.buckets.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) {
                self.buckets.remove(&idle);
            }
        }
        let rate = self.rate;
        let (tokens, last) = self.buckets.entry(source).or_insert((rate, now));
        *tokens = (*tokens + rate * now.saturating_duration_since(*last).as_secs_f64()).min(rate);
        *last = now;
        *tokens
    }

    /// Takes `bytes` from `source`'s bucket if it holds enough.
    pub fn take(&mut self, now: Instant, source: SocketAddr, bytes: usize) -> bool {
        if self.refill(now, source) < bytes as f64 {
            return false;
        }
        if let Some((tokens, _)) = self.buckets.get_mut(&source) {
            *tokens -= bytes as f64;
        }
        true
    }
}

/// A node-wide token bucket filled by *events* — bytes emitted, bytes
/// received — rather than by time alone: credits accumulate up to `cap`; on
/// top, a floor refills it at `floor` tokens per second, but only up to one
/// second's worth, so an idle node does not save up a burst.
pub(crate) struct CreditBucket {
    tokens: f64,
    cap: f64,
    floor: f64,
    last: Instant,
}

impl CreditBucket {
    /// A bucket starting with one second of floor.
    pub fn new(now: Instant, cap: usize, floor_per_sec: usize) -> Self {
        CreditBucket { tokens: floor_per_sec as f64, cap: cap as f64, floor: floor_per_sec as f64, last: now }
    }

    /// Adds `tokens` (up to the cap).
    pub fn credit(&mut self, tokens: f64) {
        if self.tokens < self.cap {
            self.tokens = (self.tokens + tokens).min(self.cap);
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        if self.tokens < self.floor {
            self.tokens = (self.tokens + self.floor * dt).min(self.floor);
        }
    }

    /// Whether `bytes` can be taken now.
    pub fn can_take(&mut self, now: Instant, bytes: usize) -> bool {
        self.refill(now);
        self.tokens >= bytes as f64
    }

    /// Takes `bytes` if the bucket holds enough.
    pub fn take(&mut self, now: Instant, bytes: usize) -> bool {
        if !self.can_take(now, bytes) {
            return false;
        }
        self.tokens -= bytes as f64;
        true
    }
}

/// Repair bytes a requester identity may get per byte of the repair
/// requests it sent, where the transport gives no source address (NATS):
/// see "Requesters without a source address" in the module docs.
pub const REPAIR_BYTES_PER_REQUEST_BYTE: usize = 3;

/// Whom a repair answers, for its budget: the source address where the
/// transport has one, else the instance id the request names.
#[derive(Clone, Copy)]
pub(crate) enum Requester<'a> {
    /// UDP: the kernel's source address ([`RepairBudget`]).
    Addr(SocketAddr),
    /// No source address (NATS): the request's `id` ([`RequesterCredit`]).
    Id(&'a str),
}

/// Anti-amplification credit per requester id, for transports without
/// source addresses: every request credits its id with
/// [`REPAIR_BYTES_PER_REQUEST_BYTE`] × its bytes; repairs answered to it
/// take from that. Capped per id, bounded in ids (the least recently used
/// is forgotten, losing only its unspent credit).
pub(crate) struct RequesterCredit {
    cap: f64,
    ids: HashMap<String, (f64, Instant)>,
}

impl RequesterCredit {
    pub fn new(cap: usize) -> Self {
        RequesterCredit { cap: cap as f64, ids: HashMap::new() }
    }

    /// Credits `id` for a request of `bytes`.
    pub fn credit(&mut self, now: Instant, id: &str, bytes: usize) {
        let add = (bytes * REPAIR_BYTES_PER_REQUEST_BYTE) as f64;
        if let Some((tokens, last)) = self.ids.get_mut(id) {
            *tokens = (*tokens + add).min(self.cap);
            *last = now;
            return;
        }
        if self.ids.len() >= MAX_REQUESTERS {
            if let Some(idle) = self.ids.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone()) {
                self.ids.remove(&idle);
            }
        }
        self.ids.insert(id.to_owned(), (add.min(self.cap), now));
    }

    /// Takes `bytes` from `id`'s credit if it holds enough.
    pub fn take(&mut self, id: &str, bytes: usize) -> bool {
        match self.ids.get_mut(id) {
            Some((tokens, _)) if *tokens >= bytes as f64 => {
                *tokens -= bytes as f64;
                true
            }
            _ => false,
        }
    }
}

/// Most senders remembered as known.
const MAX_KNOWN_SENDERS: usize = 4096;

/// Senders "heard from": they delivered a complete event here, or at least
/// 8 chunks of one of their messages arrived. Only they get escalating
/// requests and `'gap'` reports. Bounded, oldest first out.
pub(crate) struct KnownSenders(FifoSet<String>);

impl Default for KnownSenders {
    fn default() -> Self {
        KnownSenders(FifoSet::new(MAX_KNOWN_SENDERS))
    }
}

impl KnownSenders {
    /// Remembers `id` (a no-op when known).
    pub fn insert(&mut self, id: &str) {
        // Looked up first: a known id, the common case, allocates nothing.
        if !self.0.contains(id) {
            self.0.insert(id.to_owned());
        }
    }

    /// Whether `id` delivered a complete event here.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }
}

/// Most copies of one request sent at once.
pub(crate) const MAX_REQUEST_COPIES: u32 = 4;

/// Most items remembered in one [`Heard`]; beyond it, stale ones are
/// forgotten, and if none is stale a new one is not noted (we then ask for
/// it ourselves: suppression is an economy, never needed for delivery).
/// Requests are input like any other: there is one `Heard` per sender and
/// per partial message, so this keeps each within a few KiB (the size of a
/// sender's `sn` window bitmaps) whatever forged requests name.
const MAX_HEARD: usize = 128;

/// Message numbers of one sender that *another* receiver asked for recently,
/// and when: NACK suppression item by item.
///
/// One request timer covers all that is missing from a sender. Postponing it
/// whenever someone asked for *any* of that starved receivers in a large
/// group: with 50 receivers at 5% loss each one misses ~100 of 2,000 events,
/// every other receiver's request names a few of them, so the timer was
/// pushed back again and again, the receiver got only what others happened
/// to ask for, and 16 of 50 gave up on ~20 events each when the sender's
/// retention ran out (`crates/eventcast-engine/tests/sim_scale.rs`). So the
/// timer is postponed only when requests heard cover *everything* missing;
/// otherwise, when it fires, it asks for what nobody asked for within the
/// last base delay `d` (a repair asked for by another arrives within a round
/// trip; one still missing after `d` was lost on the way here, and is asked
/// for again).
#[derive(Default)]
pub(crate) struct Heard(HashMap<i64, Instant>);

impl Heard {
    /// Someone asked for `sn` at `now`.
    pub fn note(&mut self, now: Instant, sn: i64, window: Duration) {
        if self.0.len() >= MAX_HEARD {
            self.forget_stale(now, window);
        }
        if self.0.len() < MAX_HEARD || self.0.contains_key(&sn) {
            self.0.insert(sn, now);
        }
    }

    /// Whether someone asked for `sn` less than `window` before `now`.
    pub fn covers(&self, now: Instant, sn: i64, window: Duration) -> bool {
        self.0.get(&sn).is_some_and(|&t| now.saturating_duration_since(t) < window)
    }

    /// The numbers someone asked for less than `window` before `now`.
    pub fn recent(&self, now: Instant, window: Duration) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().filter(move |(_, &t)| now.saturating_duration_since(t) < window).map(|(&sn, _)| sn)
    }

    /// Forgets what was heard `window` or more before `now`.
    pub fn forget_stale(&mut self, now: Instant, window: Duration) {
        self.0.retain(|_, t| now.saturating_duration_since(*t) < window);
    }

    /// Items remembered (stale ones included until forgotten).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Repair timing derived from the message TTL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RepairTiming {
    /// Base repair delay `d`.
    pub base: Duration,
}

impl RepairTiming {
    pub fn new(message_ttl: Duration) -> Self {
        RepairTiming { base: (message_ttl / 8).clamp(Duration::from_millis(10), Duration::from_millis(500)) }
    }

    /// A delay drawn uniformly from `[d, 2d)`.
    pub fn jittered<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let nanos = self.base.as_nanos().min(u64::MAX as u128) as u64;
        self.base + Duration::from_nanos(rng.gen_range(0..nanos.max(1)))
    }

    /// Minimum time between two resends of one datagram.
    pub fn resend_window(&self) -> Duration {
        self.base / 4
    }
}

/// The request timer of one piece of missing data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Nack {
    /// When to send the next request, if one is still allowed.
    pub due: Option<Instant>,
    /// Requests sent since the last progress.
    pub attempts: u32,
}

impl Nack {
    /// A timer armed `delay` after `now`.
    pub fn armed(now: Instant, delay: Duration) -> Self {
        Nack { due: Some(now + delay), attempts: 0 }
    }

    /// Progress was made: start over, but never later than the request
    /// already due. In a large group progress comes all the time from repairs
    /// others asked for; pushing the timer back at each one left a receiver
    /// waiting for others to happen to ask for what it missed (see [`Heard`]).
    pub fn progress(&mut self, now: Instant, delay: Duration) {
        self.attempts = 0;
        self.due = Some(self.due.map_or(now + delay, |due| due.min(now + delay)));
    }

    /// Waits another `delay` before the next request, without counting an
    /// attempt (nothing was asked: what is missing others asked for already).
    pub fn wait(&mut self, now: Instant, delay: Duration) {
        self.due = Some(now + delay);
    }

    /// Someone else asked for the same data: wait another delay before we do.
    pub fn postpone(&mut self, now: Instant, delay: Duration) {
        if let Some(due) = self.due {
            self.due = Some(due.max(now + delay));
        }
    }

    /// Records a request sent at `now`; returns how many copies to send. The
    /// timer is rearmed only while `attempts` stays within `1 + retries`.
    pub fn fire(&mut self, now: Instant, delay: Duration, retries: u32) -> u32 {
        self.attempts += 1;
        self.due = if self.attempts <= retries { Some(now + delay) } else { None };
        self.attempts.min(MAX_REQUEST_COPIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn heard_items_cover_for_a_window_and_stay_bounded() {
        let t0 = Instant::now();
        let w = Duration::from_millis(375);
        let mut h = Heard::default();
        h.note(t0, 7, w);
        assert!(h.covers(t0 + w / 2, 7, w));
        assert!(!h.covers(t0 + w / 2, 8, w));
        assert!(!h.covers(t0 + w, 7, w), "a repair still missing after the window is asked for again");
        assert_eq!(h.recent(t0 + w / 2, w).collect::<Vec<_>>(), vec![7]);
        // Full: stale entries make room; fresh ones are never pushed out by new ones.
        for sn in 0..2 * MAX_HEARD as i64 {
            h.note(t0 + w, sn, w);
        }
        assert_eq!(h.len(), MAX_HEARD);
        assert!(h.covers(t0 + w, 0, w) && !h.covers(t0 + w, MAX_HEARD as i64, w));
        h.note(t0 + 2 * w, -1, w);
        assert_eq!(h.len(), 1);
        let mut n = Nack::armed(t0, w);
        n.progress(t0 + w / 2, w);
        assert_eq!(n.due, Some(t0 + w), "progress never pushes a due request later");
        n.wait(t0 + w, w);
        assert_eq!((n.due, n.attempts), (Some(t0 + 2 * w), 0));
    }

    #[test]
    fn delay_is_clamped_and_jitter_in_range() {
        assert_eq!(RepairTiming::new(Duration::from_millis(3000)).base, Duration::from_millis(375));
        assert_eq!(RepairTiming::new(Duration::from_millis(10)).base, Duration::from_millis(10));
        assert_eq!(RepairTiming::new(Duration::from_secs(60)).base, Duration::from_millis(500));
        let t = RepairTiming::new(Duration::from_millis(800));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let j = t.jittered(&mut rng);
            assert!(j >= t.base && j < 2 * t.base);
        }
    }

    #[test]
    fn repair_budget_per_source_address() {
        let t0 = Instant::now();
        let (a, b2): (SocketAddr, SocketAddr) = ("10.0.0.1:9000".parse().unwrap(), "10.0.0.2:9000".parse().unwrap());
        let mut b = RepairBudget::new(1000);
        assert!(b.take(t0, a, 600));
        assert!(!b.take(t0, a, 600));
        assert!(b.take(t0, b2, 600));
        assert!(b.take(t0 + Duration::from_millis(200), a, 600));
        assert!(!b.take(t0 + Duration::from_millis(200), a, 100));
        for i in 0..2 * MAX_REQUESTERS as u32 {
            b.take(t0, SocketAddr::from((i.to_be_bytes(), 1)), 1);
        }
        assert!(b.buckets.len() <= MAX_REQUESTERS);
    }

    #[test]
    fn requester_credit_is_three_times_the_request_bytes_and_bounded() {
        let t0 = Instant::now();
        let mut c = RequesterCredit::new(10_000);
        assert!(!c.take("a", 1));
        c.credit(t0, "a", 100);
        assert!(c.take("a", 250) && c.take("a", 50) && !c.take("a", 1));
        c.credit(t0, "a", 1_000_000);
        assert!(c.take("a", 10_000) && !c.take("a", 1));
        for i in 0..2 * MAX_REQUESTERS {
            c.credit(t0 + Duration::from_millis(i as u64), &i.to_string(), 1);
        }
        assert!(c.ids.len() <= MAX_REQUESTERS);
    }

    #[test]
    fn credit_bucket_is_filled_by_credits_and_a_bounded_floor() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut b = CreditBucket::new(t0, 10_000, 100);
        assert!(b.take(t0, 100) && !b.take(t0, 1));
        // An idle hour saves up one second of floor, no more.
        assert!(b.take(t0 + 3600 * s, 100) && !b.take(t0 + 3600 * s, 1));
        b.credit(5_000.0);
        assert!(b.take(t0 + 3600 * s, 5_000) && !b.take(t0 + 3600 * s, 1));
        b.credit(1e9);
        assert!(!b.can_take(t0 + 3600 * s, 10_001));
        assert!(b.take(t0 + 3600 * s, 10_000));
        // Time going backwards (a caller bug) refills nothing.
        assert!(!b.take(t0, 1));
    }

    #[test]
    fn known_senders_are_bounded() {
        let mut k = KnownSenders::default();
        k.insert("a");
        k.insert("a");
        assert!(k.contains("a") && !k.contains("b"));
        for i in 0..MAX_KNOWN_SENDERS {
            k.insert(&i.to_string());
        }
        assert!(!k.contains("a") && k.contains("0"));
        assert_eq!(k.0.len(), MAX_KNOWN_SENDERS);
    }

    #[test]
    fn nack_retries_then_stops_and_progress_resets() {
        let t0 = Instant::now();
        let d = Duration::from_millis(10);
        let mut n = Nack::armed(t0, d);
        assert_eq!(n.fire(t0, d, 2), 1);
        assert_eq!(n.fire(t0, d, 2), 2);
        assert_eq!(n.fire(t0, d, 2), 3);
        assert_eq!(n.due, None);
        n.progress(t0, d);
        assert_eq!((n.attempts, n.due), (0, Some(t0 + d)));
        n.postpone(t0, 3 * d);
        assert_eq!(n.due, Some(t0 + 3 * d));
    }
}
