//! Message-level loss detection and duplicate suppression, per sender.
//!
//! Every message we send carries `sn`, a per-sender message number (1, 2, 3,
//! ...; a restarted sender has a new instance id, so numbers are never
//! reused). For each sender a receiver keeps a sliding window over `sn`:
//!
//! * `base`: every `sn <= base` is settled (delivered, given up, or before we
//!   joined);
//! * two bitmaps over `(base, base + SPAN]`: *settled* (delivered or given up)
//!   and *in progress* (some chunks arrived; chunk-level repair handles it);
//! * `highest`: the highest `sn` known to exist, from messages, chunks and
//!   heartbeats. Every `sn` in `(base, highest]` that is neither settled nor in
//!   progress is *missing* and gets requested by number (`missedSn`).
//!
//! The settled bitmap is also the duplicate filter (each message delivered at
//! most once) and, with authenticated encryption, the replay window.
//!
//! **Joining.** The first `sn` seen from a sender (`join`) decides where
//! loss detection starts: a late joiner gets events from its join onwards and
//! never asks for older ones. Messages a little older than `join` (up to
//! [`JOIN_SLACK`] numbers) that arrive within a grace period (the message TTL)
//! are still delivered, once: a burst is often reordered, and the first
//! datagram to arrive need not be the sender's oldest. Exception: when `join`
//! is at most [`BACKFILL`], the sender has only just started, so we ask for
//! the few earlier messages (a sender's first messages are as likely to be
//! lost as any other).
//!
//! **Jumps.** An `sn` more than [`SPAN`] beyond `highest` is not believed on
//! its own: one forged or corrupted datagram must neither give up a window
//! of real messages (reporting billions lost) nor make the sender's real,
//! lower numbers look like duplicates. Such a message is delivered once but
//! not tracked, and remembered; only a second, different `sn` near it (a
//! sender that really moved on, e.g. after a long partition) re-bases the
//! window there, giving up what was missing before.

use super::repair::Nack;
use std::time::Instant;

/// Width of the window over `sn`, in messages. A sender that gets further
/// ahead than this makes the oldest unsettled messages count as lost.
pub(crate) const SPAN: i64 = 16_384;
const WORDS: usize = (SPAN as usize) / 64;

/// A first contact at `sn <= BACKFILL` requests the earlier messages.
pub(crate) const BACKFILL: i64 = 32;
/// How far below the first `sn` seen late (reordered) messages are still delivered.
pub(crate) const JOIN_SLACK: i64 = 1024;

/// What to do with a complete message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New: deliver it.
    Deliver,
    /// Seen (or given up) already.
    Duplicate,
}

/// Window state of one sender.
pub(crate) struct Peer {
    base: i64,
    /// Lowest `sn` that loss detection covers.
    join: i64,
    /// Until when messages below `join` are still delivered.
    grace_until: Option<Instant>,
    highest: i64,
    settled: Box<[u64; WORDS]>,
    in_progress: Box<[u64; WORDS]>,
    /// Number of missing (requestable) messages, kept exact.
    missing: u64,
    /// Request timer for missing messages.
    pub nack: Nack,
    /// Last time a missing message arrived (or started arriving).
    pub last_progress: Instant,
    /// When this sender was last heard from (for eviction of idle senders).
    pub last_heard: Instant,
    /// Highest `sn` we have asked for (arrivals up to it count as repairs).
    pub asked_upto: i64,
    /// A far jump waiting for corroboration: its `sn`, and whether that
    /// message was delivered (a heartbeat delivers nothing).
    far: Option<(i64, bool)>,
}

/// How a far-ahead `sn` is handled.
enum Jump {
    /// Within reach of the window: track it normally.
    Near,
    /// The same far message again.
    Repeat,
    /// Uncorroborated: remembered, not tracked.
    Held,
    /// Corroborated: the window moved; this many messages were given up.
    Rebased(u64),
}

fn bit(sn: i64) -> (usize, u64) {
    let i = sn.rem_euclid(SPAN) as usize;
    (i / 64, 1u64 << (i % 64))
}

impl Peer {
    /// A sender first heard of at `sn` at `now`; messages below `sn` that
    /// arrive within `grace` are still delivered.
    pub fn new(now: Instant, sn: i64, grace: std::time::Duration) -> Self {
        let join = if sn <= BACKFILL { 1 } else { sn };
        let base = (join - 1 - JOIN_SLACK).max(0);
        Peer {
            base,
            join,
            grace_until: (base < join - 1).then_some(now + grace),
            highest: join - 1,
            settled: Box::new([0; WORDS]),
            in_progress: Box::new([0; WORDS]),
            missing: 0,
            nack: Nack { due: None, attempts: 0 },
            last_progress: now,
            last_heard: now,
            asked_upto: 0,
            far: None,
        }
    }

    /// Classifies `sn` against the window, re-basing when a far jump is
    /// corroborated. `delivers` says whether `sn` is a complete message.
    fn check_jump(&mut self, now: Instant, sn: i64, delivers: bool) -> Jump {
        if sn <= self.highest.saturating_add(SPAN) {
            return Jump::Near;
        }
        match self.far {
            Some((f, delivered)) if f == sn => {
                if delivers && !delivered {
                    self.far = Some((f, true));
                    return Jump::Held;
                }
                Jump::Repeat
            }
            Some((f, delivered)) if f.abs_diff(sn) <= SPAN as u64 => {
                let start = f.min(sn);
                // What was missing, and what the sender sent that we never heard of.
                let mut lost = self.give_up_missing() + (start - self.highest - 1).max(0) as u64;
                let (nack, asked_upto) = (self.nack, self.asked_upto);
                *self = Peer::new(now, start, std::time::Duration::ZERO);
                self.nack = nack;
                self.asked_upto = asked_upto;
                self.grace_until = None;
                self.base = start - 1;
                self.join = start;
                self.highest = start - 1;
                lost += self.extend_to(f.max(sn));
                if delivered {
                    // Settle the held message so it is not delivered again.
                    self.missing -= 1;
                    Self::set(&mut self.settled, f, true);
                    self.advance();
                }
                Jump::Rebased(lost)
            }
            _ => {
                self.far = Some((sn, delivers));
                Jump::Held
            }
        }
    }

    fn get(map: &[u64; WORDS], sn: i64) -> bool {
        let (w, m) = bit(sn);
        map[w] & m != 0
    }

    fn set(map: &mut [u64; WORDS], sn: i64, on: bool) {
        let (w, m) = bit(sn);
        if on {
            map[w] |= m;
        } else {
            map[w] &= !m;
        }
    }

    /// Number of missing messages.
    pub fn missing_count(&self) -> u64 {
        self.missing
    }

    /// Ends the join grace period once it is over: older messages become duplicates.
    fn check_grace(&mut self, now: Instant) {
        if self.grace_until.is_some_and(|t| now >= t) {
            self.grace_until = None;
            while self.base < self.join - 1 {
                self.base += 1;
                Self::set(&mut self.settled, self.base, false);
                Self::set(&mut self.in_progress, self.base, false);
            }
            self.advance();
        }
    }

    /// Up to `limit` missing message numbers, lowest first.
    pub fn missing(&self, limit: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut sn = self.first_tracked();
        while sn <= self.highest && out.len() < limit && (out.len() as u64) < self.missing {
            if !Self::get(&self.settled, sn) && !Self::get(&self.in_progress, sn) {
                out.push(sn);
            }
            sn += 1;
        }
        out
    }

    fn first_tracked(&self) -> i64 {
        (self.base + 1).max(self.join)
    }

    /// Whether `sn` is missing here.
    pub fn is_missing(&self, sn: i64) -> bool {
        sn >= self.first_tracked()
            && sn <= self.highest
            && !Self::get(&self.settled, sn)
            && !Self::get(&self.in_progress, sn)
    }

    /// Learns that `sn` exists; returns how many messages were given up to keep
    /// the window within [`SPAN`].
    fn extend_to(&mut self, sn: i64) -> u64 {
        let mut lost = 0;
        if sn > self.base + SPAN {
            let new_base = sn - SPAN;
            let mut s = self.base + 1;
            while s <= new_base.min(self.highest) {
                if s >= self.join && !Self::get(&self.settled, s) {
                    lost += 1;
                    if !Self::get(&self.in_progress, s) {
                        self.missing -= 1;
                    }
                }
                Self::set(&mut self.settled, s, false);
                Self::set(&mut self.in_progress, s, false);
                s += 1;
            }
            if new_base > self.highest {
                lost += (new_base - self.highest) as u64;
                self.highest = new_base;
            }
            self.base = new_base;
            if self.join <= new_base {
                self.grace_until = None;
            }
        }
        if sn > self.highest {
            self.missing += (sn - self.highest) as u64;
            self.highest = sn;
        }
        self.advance();
        lost
    }

    fn advance(&mut self) {
        while self.base < self.highest && self.base + 1 >= self.join && Self::get(&self.settled, self.base + 1) {
            self.base += 1;
            Self::set(&mut self.settled, self.base, false);
            Self::set(&mut self.in_progress, self.base, false);
        }
    }

    /// A complete message `sn` arrived. Returns the verdict and how many
    /// messages were given up to keep the window bounded.
    pub fn on_message(&mut self, now: Instant, sn: i64) -> (Verdict, u64) {
        self.last_heard = now;
        self.check_grace(now);
        if sn <= self.base || (sn <= self.highest && Self::get(&self.settled, sn)) {
            return (Verdict::Duplicate, 0);
        }
        let lost = match self.check_jump(now, sn, true) {
            Jump::Near => self.extend_to(sn),
            Jump::Repeat => return (Verdict::Duplicate, 0),
            Jump::Held => return (Verdict::Deliver, 0),
            Jump::Rebased(lost) => lost,
        };
        if self.is_missing(sn) {
            self.missing -= 1;
            self.last_progress = now;
        }
        Self::set(&mut self.in_progress, sn, false);
        Self::set(&mut self.settled, sn, true);
        self.advance();
        (Verdict::Deliver, lost)
    }

    /// A chunk of message `sn` arrived (chunk-level repair takes over).
    /// Returns how many messages were given up to keep the window bounded.
    pub fn on_chunk(&mut self, now: Instant, sn: i64) -> u64 {
        self.last_heard = now;
        self.check_grace(now);
        if sn <= self.base || (sn <= self.highest && Self::get(&self.settled, sn)) {
            return 0;
        }
        if sn > self.highest.saturating_add(SPAN) {
            // Judged when the message completes (`on_message`).
            return 0;
        }
        let lost = self.extend_to(sn);
        if self.is_missing(sn) {
            self.missing -= 1;
            self.last_progress = now;
            Self::set(&mut self.in_progress, sn, true);
        }
        lost
    }

    /// The sender says its latest message is `sn` (heartbeat). Returns how
    /// many messages were given up to keep the window bounded.
    pub fn on_latest(&mut self, now: Instant, sn: i64) -> u64 {
        self.last_heard = now;
        self.check_grace(now);
        if sn <= self.highest {
            return 0;
        }
        match self.check_jump(now, sn, false) {
            Jump::Near => self.extend_to(sn),
            Jump::Repeat | Jump::Held => 0,
            Jump::Rebased(lost) => lost,
        }
    }

    /// Message `sn` will not arrive (its partial expired or was evicted);
    /// returns whether that is news (it was not settled yet).
    pub fn give_up(&mut self, sn: i64) -> bool {
        if sn < self.first_tracked() || sn > self.highest || Self::get(&self.settled, sn) {
            return false;
        }
        if !Self::get(&self.in_progress, sn) {
            self.missing -= 1;
        }
        Self::set(&mut self.in_progress, sn, false);
        Self::set(&mut self.settled, sn, true);
        self.advance();
        true
    }

    /// Gives up every missing message; returns how many.
    pub fn give_up_missing(&mut self) -> u64 {
        let lost = self.missing;
        let mut sn = self.first_tracked();
        while sn <= self.highest && self.missing > 0 {
            if !Self::get(&self.settled, sn) && !Self::get(&self.in_progress, sn) {
                Self::set(&mut self.settled, sn, true);
                self.missing -= 1;
            }
            sn += 1;
        }
        self.advance();
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    const G: Duration = Duration::from_secs(3);

    #[test]
    fn delivers_once_and_finds_holes() {
        let t = Instant::now();
        let mut p = Peer::new(t, 1, G);
        assert_eq!(p.on_message(t, 1), (Verdict::Deliver, 0));
        assert_eq!(p.on_message(t, 1), (Verdict::Duplicate, 0));
        assert_eq!(p.on_message(t, 4), (Verdict::Deliver, 0));
        assert_eq!(p.missing(10), vec![2, 3]);
        assert_eq!(p.on_chunk(t, 3), 0);
        assert_eq!(p.missing(10), vec![2]);
        assert_eq!(p.on_latest(t, 6), 0);
        assert_eq!(p.missing(10), vec![2, 5, 6]);
        assert_eq!(p.missing_count(), 3);
        assert_eq!(p.on_message(t, 2), (Verdict::Deliver, 0));
        assert_eq!(p.on_message(t, 2), (Verdict::Duplicate, 0));
        assert!(p.give_up(3));
        assert!(!p.give_up(3));
        assert_eq!(p.on_message(t, 3), (Verdict::Duplicate, 0));
        assert_eq!(p.give_up_missing(), 2);
        assert_eq!(p.missing_count(), 0);
        assert_eq!(p.on_message(t, 5), (Verdict::Duplicate, 0));
        assert_eq!(p.on_message(t, 7), (Verdict::Deliver, 0));
        assert_eq!(p.base, 7);
    }

    #[test]
    fn a_lone_far_jump_neither_silences_the_sender_nor_reports_billions_lost() {
        let t = Instant::now();
        let mut p = Peer::new(t, 1, G);
        assert_eq!(p.on_message(t, 1), (Verdict::Deliver, 0));
        // One forged/corrupted datagram far ahead: delivered once, not tracked.
        assert_eq!(p.on_message(t, 1 << 62), (Verdict::Deliver, 0));
        assert_eq!(p.on_message(t, 1 << 62), (Verdict::Duplicate, 0));
        assert_eq!(p.on_latest(t, 1 << 62), 0);
        assert_eq!(p.on_chunk(t, (1 << 62) + 5), 0);
        assert_eq!(p.missing_count(), 0);
        // The real sender goes on.
        for sn in 2..=5 {
            assert_eq!(p.on_message(t, sn), (Verdict::Deliver, 0));
        }
        assert_eq!(p.on_message(t, 3), (Verdict::Duplicate, 0));
        assert_eq!(p.missing_count(), 0);
    }

    #[test]
    fn a_corroborated_far_jump_rebases_and_counts_what_was_skipped() {
        let t = Instant::now();
        let mut p = Peer::new(t, 1, G);
        assert_eq!(p.on_message(t, 1).0, Verdict::Deliver);
        assert_eq!(p.on_message(t, 3).0, Verdict::Deliver); // 2 missing
        let far = 3 + SPAN + 100;
        assert_eq!(p.on_message(t, far), (Verdict::Deliver, 0));
        // A second message near it: the sender really moved on (e.g. after a partition).
        let (v, lost) = p.on_message(t, far + 2);
        assert_eq!(v, Verdict::Deliver);
        // 2, and 4 ..= far-1 were never heard of.
        assert_eq!(lost, 1 + (far - 1 - 4 + 1) as u64);
        assert_eq!(p.on_message(t, far), (Verdict::Duplicate, 0), "the held message is settled");
        assert_eq!(p.missing(10), vec![far + 1]);
        assert_eq!(p.on_message(t, 2), (Verdict::Duplicate, 0));
        // A heartbeat can corroborate too, and a held heartbeat delivers nothing.
        let mut q = Peer::new(t, 1, G);
        assert_eq!(q.on_message(t, 1).0, Verdict::Deliver);
        assert_eq!(q.on_latest(t, far), 0);
        let (v, lost) = q.on_message(t, far + 1);
        assert_eq!(v, Verdict::Deliver);
        assert_eq!(lost, (far - 2) as u64);
        assert_eq!(q.missing(10), vec![far]);
    }

    #[test]
    fn late_joiner_starts_at_first_message_unless_sender_is_young() {
        let t = Instant::now();
        let mut p = Peer::new(t, 5000, G);
        assert_eq!(p.on_message(t, 5000).0, Verdict::Deliver);
        assert_eq!(p.on_message(t, 5002).0, Verdict::Deliver);
        assert_eq!(p.missing(10), vec![5001]);
        // Reordered older messages within the grace period: delivered once, never requested.
        assert_eq!(p.on_message(t, 4990).0, Verdict::Deliver);
        assert_eq!(p.on_message(t, 4990).0, Verdict::Duplicate);
        assert_eq!(p.on_message(t, 5000 - JOIN_SLACK - 1).0, Verdict::Duplicate);
        assert_eq!(p.missing_count(), 1);
        let later = t + G;
        assert_eq!(p.on_message(later, 4999).0, Verdict::Duplicate);
        assert_eq!(p.on_message(later, 5001).0, Verdict::Deliver);
        assert_eq!(p.base, 5002);
        let mut q = Peer::new(t, 4, G);
        q.on_message(t, 4);
        assert_eq!(q.missing(10), vec![1, 2, 3]);
    }

    #[test]
    fn window_slides_and_counts_what_falls_out() {
        let t = Instant::now();
        let mut p = Peer::new(t, 1, G);
        p.on_message(t, 1);
        p.on_message(t, 3); // 2 missing
        let (v, lost) = p.on_message(t, 3 + SPAN);
        assert_eq!(v, Verdict::Deliver);
        // 2 and the numbers 4..=3 (none) fall out; 3 was settled.
        assert_eq!(lost, 1);
        assert_eq!(p.missing_count(), SPAN as u64 - 1);
        // A jump beyond the window counts only once corroborated (see the jump tests).
        assert_eq!(p.on_latest(t, 1_000_000_000_000), 0);
        let (v, lost) = p.on_message(t, 1_000_000_000_001);
        assert_eq!(v, Verdict::Deliver);
        assert!(lost >= 1_000_000_000_000 - 2 * SPAN as u64, "{lost}");
        // Only the heartbeat's message is left to ask for.
        assert_eq!(p.missing(3), vec![1_000_000_000_000]);
    }
}
