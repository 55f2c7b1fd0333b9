//! Message-level loss detection and duplicate suppression, per sender.
//!
//! Every message we send carries `sn`, a per-sender message number (1, 2, 3,
//! ...; a restarted sender has a new instance id, so numbers are never
//! reused). Numbers from the network are range-checked first ([`Sn`]: `1 ..=
//! 2^53 − 1`), so no arithmetic here can overflow. For each sender a
//! receiver keeps a sliding window over `sn`:
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
//! datagram to arrive need not be the sender's oldest. Exceptions, where
//! loss detection starts at 1 and the earlier messages are asked for (a
//! sender's first messages are as likely to be lost as any other):
//!
//! * `join` is at most [`BACKFILL`]: the sender has only just started;
//! * the sender's numbering started while we were listening
//!   (`from_start`): we did not join late, we lost its first datagrams (a
//!   burst's start dropped by the kernel). A receiver cannot tell that on
//!   its own, so senders write `snAge` (the age of their numbering, in ms on
//!   their own clock) into the meta while `sn <= SPAN`; the endpoint compares
//!   it with how long it has been listening (no margin: transit only adds
//!   to that; `Endpoint::started_while_listening`), and says so here. Only
//!   for `join <= SPAN`: the window cannot reach message 1 from further up,
//!   and a forged claim so costs at most what a forged number within a
//!   window always could (`SPAN − 1` requested numbers, within the request
//!   budget). Numbers the sender no longer retains end as a gap.
//!
//! **Far jumps.** An `sn` more than [`SPAN`] beyond `highest` is not believed
//! on the word of a few datagrams: a forged or corrupted one must neither
//! give up a window of real messages (reporting billions lost) nor make the
//! sender's real, lower numbers look like duplicates. It opens a second
//! window, the *challenger*, which delivers its messages once (its own
//! bitmap) but asks for nothing. The challenger replaces the current window
//! only once it has proved itself over time: it has been heard at least
//! [`MIN_CORROBORATIONS`] times, over at least `message_ttl / 24` (two tail
//! heartbeats of a sender that stopped are `message_ttl / 18` apart), and for a
//! whole `message_ttl` nothing arrived near the current window nor near
//! another challenger. Anything heard in another numbering restarts that
//! clock (a forger's far numbers heard while the real sender is itself still
//! a challenger, e.g. because the forger spoke first, never take over). When it takes over, what
//! the old window was missing and the numbers skipped in between are
//! reported as one gap (a sender that really moved on, e.g. past a receiver
//! whose kernel dropped a burst), and the old window stays as the
//! challenger: if the takeover was forged, the real sender's messages are
//! still delivered once, and the real numbering wins back the same way.
//! A challenger not heard for `3 × message_ttl` (the senders' retention: no
//! repair of its messages can come any more) is forgotten. Memory: at most
//! `1 + MAX_CHALLENGERS` windows of 4 KiB per sender (16 KiB; 16 MiB for the
//! 1,024 senders an endpoint tracks).

use super::repair::{Heard, Nack, RepairTiming};
pub(crate) use super::sn::Sn;
use std::time::{Duration, Instant};

/// Width of the window over `sn`, in messages. A sender that gets further
/// ahead than this makes the oldest unsettled messages count as lost.
pub(crate) const SPAN: i64 = 16_384;
const WORDS: usize = (SPAN as usize) / 64;

/// A first contact at `sn <= BACKFILL` requests the earlier messages.
pub(crate) const BACKFILL: i64 = 32;
/// How far below the first `sn` seen late (reordered) messages are still delivered.
pub(crate) const JOIN_SLACK: i64 = 1024;
/// Datagrams a challenger window must be heard through before it may take
/// over (at moments at least `message_ttl / 24` apart: two forged datagrams
/// sent back to back never qualify; two of a stopped sender's tail
/// heartbeats, the least a receiver that missed its burst may get, do).
pub(crate) const MIN_CORROBORATIONS: u32 = 2;
/// Most challenger windows per sender (the least recently heard is
/// replaced): a forger's far numbers and the real one fit side by side.
pub(crate) const MAX_CHALLENGERS: usize = 3;

/// What to do with a complete message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New: deliver it.
    Deliver,
    /// Seen (or given up) already.
    Duplicate,
}

fn bit(sn: i64) -> (usize, u64) {
    let i = sn.rem_euclid(SPAN) as usize;
    (i / 64, 1u64 << (i % 64))
}

/// One numbering of a sender: the window described in the module docs.
/// All its numbers lie in `[0, MAX_SN + 1]`.
struct Window {
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
    /// Messages given up while this window was the challenger: reported
    /// when (if) it takes over.
    pending_lost: u64,
}

impl Window {
    /// A window whose loss detection starts at `join` (`1 ..= MAX_SN + 1`),
    /// or at 1 when `join <= BACKFILL` or `from_start` (the sender's stream
    /// started while we listened; callers set it only for `join <= SPAN + 1`,
    /// so the window covers message 1).
    fn new(now: Instant, join: i64, grace: Duration, from_start: bool) -> Self {
        let join = if join <= BACKFILL || from_start { 1 } else { join };
        let base = (join - 1 - JOIN_SLACK).max(0);
        Window {
            base,
            join,
            grace_until: (base < join - 1).then_some(now + grace),
            highest: join - 1,
            settled: Box::new([0; WORDS]),
            in_progress: Box::new([0; WORDS]),
            missing: 0,
            pending_lost: 0,
        }
    }

    /// Whether `sn` belongs to this numbering: at most [`SPAN`] beyond what
    /// it knows, at most [`SPAN`] below what it settled.
    fn near(&self, sn: i64) -> bool {
        sn > self.base - SPAN && sn <= self.highest + SPAN
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

    fn first_tracked(&self) -> i64 {
        (self.base + 1).max(self.join)
    }

    fn is_missing(&self, sn: i64) -> bool {
        sn >= self.first_tracked()
            && sn <= self.highest
            && !Self::get(&self.settled, sn)
            && !Self::get(&self.in_progress, sn)
    }

    fn is_settled(&self, sn: i64) -> bool {
        sn <= self.base || (sn <= self.highest && Self::get(&self.settled, sn))
    }

    fn missing(&self, limit: usize) -> Vec<i64> {
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

    /// Learns that `sn` (at most `highest + SPAN`) exists; returns how many
    /// messages were given up to keep the window within [`SPAN`].
    fn extend_to(&mut self, sn: i64) -> u64 {
        debug_assert!(sn <= self.highest + SPAN);
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

    /// A complete message (`sn` near this window): verdict, messages given up,
    /// and whether it was one we missed.
    fn message(&mut self, sn: i64) -> (Verdict, u64, bool) {
        if self.is_settled(sn) {
            return (Verdict::Duplicate, 0, false);
        }
        let lost = self.extend_to(sn);
        let was_missing = self.is_missing(sn);
        if was_missing {
            self.missing -= 1;
        }
        Self::set(&mut self.in_progress, sn, false);
        Self::set(&mut self.settled, sn, true);
        self.advance();
        (Verdict::Deliver, lost, was_missing)
    }

    /// A chunk of message `sn` (near this window): messages given up, and
    /// whether it started one we missed.
    fn chunk(&mut self, sn: i64) -> (u64, bool) {
        if self.is_settled(sn) {
            return (0, false);
        }
        let lost = self.extend_to(sn);
        let was_missing = self.is_missing(sn);
        if was_missing {
            self.missing -= 1;
            Self::set(&mut self.in_progress, sn, true);
        }
        (lost, was_missing)
    }

    /// The sender's latest is `sn` (near this window): messages given up.
    fn latest(&mut self, sn: i64) -> u64 {
        if sn > self.highest {
            self.extend_to(sn)
        } else {
            0
        }
    }

    fn give_up(&mut self, sn: i64) -> bool {
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

    fn give_up_missing(&mut self) -> u64 {
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

/// A challenger's current run of corroboration.
#[derive(Clone, Copy)]
struct Run {
    start: Instant,
    last: Instant,
    heard: u32,
}

/// The second numbering of a sender, and how long it has been corroborated.
struct Challenger {
    win: Window,
    run: Option<Run>,
    /// When it was last heard.
    heard_at: Instant,
}

/// Which window a number belongs to.
enum Side {
    Current,
    Challenger(usize),
    /// Near none: a new challenger.
    Far,
}

/// Window state of one sender.
pub(crate) struct Peer {
    cur: Window,
    /// Up to [`MAX_CHALLENGERS`], least recently heard first.
    others: Vec<Challenger>,
    /// How long a challenger must go uncontested before it takes over.
    ttl: Duration,
    /// Request timer for missing messages.
    pub nack: Nack,
    /// Last time a missing message arrived (or started arriving).
    pub last_progress: Instant,
    /// When this sender was last heard from (for eviction of idle senders).
    pub last_heard: Instant,
    /// Highest `sn` we have asked for (arrivals up to it count as repairs).
    pub asked_upto: i64,
    /// Missing messages other receivers asked for recently (see [`Heard`]).
    pub heard: Heard,
    /// Whether this sender delivered an event here: its window then guards
    /// at-most-once delivery and loss reports, so it is forgotten only after
    /// every sender that never delivered, and into a compact record
    /// (`Endpoint::ensure_peer`).
    pub delivered: bool,
    /// Running average of this sender's message size in bytes (0 before its
    /// first): what a request for its messages by number is expected to
    /// bring back, which a requester that pays for its answers pays for.
    pub msg_bytes: u32,
    /// Bytes of this sender's datagrams received (messages, chunks,
    /// heartbeats) and bytes of the requests we sent it: while it is not
    /// known, what we ask it for stays within 3× what it sent.
    pub received: u64,
    /// See [`Peer::received`].
    pub requested: u64,
}

impl Peer {
    /// A sender first heard of at `now`, loss detection starting at `join`
    /// (its first message's `sn`, or one past a heartbeat's). Messages below
    /// `join` that arrive within `ttl` are still delivered; `ttl` is also how
    /// long a far jump must go uncontested before it is believed.
    /// `from_start`: the datagram says the sender's numbering started while
    /// we were listening (see "Joining" in the module docs); then, if `join
    /// <= SPAN`, loss detection starts at message 1.
    pub fn new(now: Instant, join: Sn, ttl: Duration, from_start: bool) -> Self {
        let join = join.get();
        Self::starting_at(now, join, ttl, from_start && join <= SPAN)
    }

    /// [`Peer::new`] for a first contact through a heartbeat: the sender's
    /// latest message is `latest`, nothing is missing yet (unless
    /// `from_start` and `latest <= SPAN`: then 1 ..= `latest` are missing).
    pub fn after_latest(now: Instant, latest: Sn, ttl: Duration, from_start: bool) -> Self {
        let latest = latest.get();
        Self::starting_at(now, latest + 1, ttl, from_start && latest <= SPAN)
    }

    fn starting_at(now: Instant, join: i64, ttl: Duration, from_start: bool) -> Self {
        Self::with_window(now, Window::new(now, join, ttl, from_start), ttl)
    }

    fn with_window(now: Instant, cur: Window, ttl: Duration) -> Self {
        Peer {
            cur,
            others: Vec::new(),
            ttl,
            nack: Nack { due: None, attempts: 0 },
            last_progress: now,
            last_heard: now,
            asked_upto: 0,
            heard: Heard::default(),
            delivered: false,
            msg_bytes: 0,
            received: 0,
            requested: 0,
        }
    }

    /// A sender forgotten earlier whose messages up to `settled` (a value of
    /// [`Peer::settled_upto`]) were all delivered or reported lost: those
    /// are duplicates, every later one is tracked (asked for when missing),
    /// with no join slack and no backfill.
    pub fn resumed(now: Instant, settled: i64, ttl: Duration) -> Self {
        // `settled` came from a window, so it lies in `[0, MAX_SN]`.
        let cur = Window {
            base: settled,
            join: settled + 1,
            grace_until: None,
            highest: settled,
            settled: Box::new([0; WORDS]),
            in_progress: Box::new([0; WORDS]),
            missing: 0,
            pending_lost: 0,
        };
        let mut p = Self::with_window(now, cur, ttl);
        p.delivered = true;
        p
    }

    /// What a compact record of this sender keeps ([`Peer::resumed`]): the
    /// highest `sn` of its current numbering, and how many of the numbers up
    /// to it are neither delivered nor reported yet (missing, or with a
    /// partial still in reassembly: once forgotten, a message completing
    /// later is a duplicate, so it must be reported lost now).
    pub fn settled_upto(&self) -> (i64, u64) {
        let in_progress: u64 = self.cur.in_progress.iter().map(|w| u64::from(w.count_ones())).sum();
        (self.cur.highest, self.cur.missing.saturating_add(in_progress))
    }

    fn side(&self, sn: i64) -> Side {
        if self.cur.near(sn) {
            return Side::Current;
        }
        if let Some(i) = self.others.iter().position(|o| o.win.near(sn)) {
            return Side::Challenger(i);
        }
        // Below everything the current window ever delivered (its join, less
        // the slack, less a span): another numbering, e.g. the real one when
        // a forger spoke first. In between: an old duplicate.
        if sn > self.cur.highest + SPAN || sn <= self.cur.join - 1 - JOIN_SLACK - SPAN {
            Side::Far
        } else {
            Side::Current
        }
    }

    /// Something near the current window arrived: its numbering is alive, so
    /// a challenger's clock starts again.
    fn heard_current(&mut self, sn: i64) {
        if self.cur.near(sn) {
            for o in &mut self.others {
                o.run = None;
            }
        }
    }

    /// Challenger `i` was heard: it becomes the most recently heard, and
    /// every other challenger's clock starts again (a run proves a numbering
    /// only while nothing else is heard: two live challengers are a real
    /// sender and a forger, and neither may take over on a timer alone).
    fn heard_challenger(&mut self, i: usize, now: Instant) -> &mut Window {
        for (j, o) in self.others.iter_mut().enumerate() {
            if j != i {
                o.run = None;
            }
        }
        let mut o = self.others.remove(i);
        o.heard_at = now;
        o.run = Some(match o.run {
            Some(r) => Run { last: now, heard: r.heard.saturating_add(1), ..r },
            None => Run { start: now, last: now, heard: 1 },
        });
        self.others.push(o);
        &mut self.others.last_mut().expect("just pushed").win
    }

    /// Something numbered `sn` arrived from this sender at `now`: notes it,
    /// lets a challenger that proved itself take over (messages that gives
    /// up), and says which window `sn` belongs to.
    fn arrive(&mut self, now: Instant, sn: Sn) -> (u64, i64, Side) {
        self.last_heard = now;
        let lost = self.poll(now).unwrap_or(0);
        let sn = sn.get();
        (lost, sn, self.side(sn))
    }

    /// The current window, heard at `now` through `sn`.
    fn current(&mut self, now: Instant, sn: i64) -> &mut Window {
        self.heard_current(sn);
        self.cur.check_grace(now);
        &mut self.cur
    }

    /// Challenger `i`'s window, heard at `now`.
    fn challenger(&mut self, i: usize, now: Instant) -> &mut Window {
        let win = self.heard_challenger(i, now);
        win.check_grace(now);
        win
    }

    /// A far number: a new challenger (replacing the least recently heard
    /// one if there are [`MAX_CHALLENGERS`]), heard once.
    fn challenge(&mut self, now: Instant, join: i64) -> &mut Window {
        if self.others.len() >= MAX_CHALLENGERS {
            self.others.remove(0);
        }
        self.others.push(Challenger { win: Window::new(now, join, self.ttl, false), run: None, heard_at: now });
        self.heard_challenger(self.others.len() - 1, now)
    }

    /// When a challenger may take over, if one is being corroborated.
    pub fn challenge_deadline(&self) -> Option<Instant> {
        self.others.iter().filter_map(|o| o.run).map(|r| r.start + self.ttl).min()
    }

    /// Lets a challenger that proved itself take over (see the module docs).
    /// Returns how many messages that gives up, if it took over.
    pub fn poll(&mut self, now: Instant) -> Option<u64> {
        let ttl = self.ttl;
        self.others.retain(|o| now < o.heard_at + 3 * ttl);
        let mut winner = None;
        for (i, o) in self.others.iter_mut().enumerate() {
            let Some(run) = o.run.filter(|r| now >= r.start + ttl) else { continue };
            o.run = None;
            // A few datagrams at one moment are not a numbering that lives on.
            if run.heard >= MIN_CORROBORATIONS && run.last >= run.start + ttl / 24 {
                winner = Some(i);
            }
        }
        let o = &mut self.others[winner?];
        std::mem::swap(&mut self.cur, &mut o.win);
        let old = &mut o.win;
        let mut lost = old.give_up_missing().saturating_add(std::mem::take(&mut self.cur.pending_lost));
        let skipped_to = self.cur.first_tracked() - 1;
        if skipped_to > old.highest {
            lost = lost.saturating_add((skipped_to - old.highest) as u64);
        }
        // The new window's missing messages are asked for after one base
        // repair delay, whatever the caller compares before and after.
        self.nack = match self.cur.missing {
            0 => Nack { due: None, attempts: 0 },
            _ => Nack::armed(now, RepairTiming::new(ttl).base),
        };
        self.asked_upto = 0;
        self.last_progress = now;
        Some(lost)
    }

    /// Folds a message of `bytes` into [`Peer::msg_bytes`] (weight 1/8) and
    /// [`Peer::received`].
    pub fn saw_message_bytes(&mut self, bytes: usize) {
        self.received = self.received.saturating_add(bytes as u64);
        let b = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.msg_bytes = match self.msg_bytes {
            0 => b,
            m => ((u64::from(m) * 7 + u64::from(b)) / 8) as u32,
        };
    }

    /// Number of missing messages.
    pub fn missing_count(&self) -> u64 {
        self.cur.missing
    }

    /// Up to `limit` missing message numbers, lowest first.
    pub fn missing(&self, limit: usize) -> Vec<i64> {
        self.cur.missing(limit)
    }

    /// Whether `sn` (any number) is missing here.
    pub fn is_missing(&self, sn: i64) -> bool {
        self.cur.is_missing(sn)
    }

    /// Whether message `sn` was settled (delivered or given up) inside the
    /// current window: a copy of it is a duplicate, whatever its body. Read
    /// only; numbers outside the window's tracked range say `false` (the
    /// full judgement of [`Peer::on_message`] decides those).
    pub fn settled_in_window(&self, sn: Sn) -> bool {
        let sn = sn.get();
        sn > self.cur.base && sn <= self.cur.highest && Window::get(&self.cur.settled, sn)
    }

    /// A complete message `sn` arrived. Returns the verdict and how many
    /// messages were given up to keep the window bounded.
    pub fn on_message(&mut self, now: Instant, sn: Sn) -> (Verdict, u64) {
        let (lost, sn, side) = self.arrive(now, sn);
        match side {
            Side::Current => {
                let (verdict, l, was_missing) = self.current(now, sn).message(sn);
                if was_missing {
                    self.last_progress = now;
                }
                (verdict, lost.saturating_add(l))
            }
            Side::Challenger(i) => {
                let win = self.challenger(i, now);
                let (verdict, l, _) = win.message(sn);
                win.pending_lost = win.pending_lost.saturating_add(l);
                (verdict, lost)
            }
            Side::Far => {
                let (verdict, l, _) = self.challenge(now, sn).message(sn);
                debug_assert_eq!((&verdict, l), (&Verdict::Deliver, 0));
                (verdict, lost)
            }
        }
    }

    /// A chunk of message `sn` arrived (chunk-level repair takes over).
    /// Returns how many messages were given up to keep the window bounded.
    pub fn on_chunk(&mut self, now: Instant, sn: Sn) -> u64 {
        let (lost, sn, side) = self.arrive(now, sn);
        match side {
            Side::Current => {
                let (l, was_missing) = self.current(now, sn).chunk(sn);
                if was_missing {
                    self.last_progress = now;
                }
                lost.saturating_add(l)
            }
            Side::Challenger(i) => {
                let win = self.challenger(i, now);
                let (l, _) = win.chunk(sn);
                win.pending_lost = win.pending_lost.saturating_add(l);
                lost
            }
            // Judged when the message completes (`on_message`).
            Side::Far => lost,
        }
    }

    /// The sender says its latest message is `sn` (heartbeat). Returns how
    /// many messages were given up to keep the window bounded.
    pub fn on_latest(&mut self, now: Instant, sn: Sn) -> u64 {
        let (lost, sn, side) = self.arrive(now, sn);
        match side {
            Side::Current => lost.saturating_add(self.current(now, sn).latest(sn)),
            Side::Challenger(i) => {
                let win = self.challenger(i, now);
                let l = win.latest(sn);
                win.pending_lost = win.pending_lost.saturating_add(l);
                lost
            }
            Side::Far => {
                self.challenge(now, sn + 1);
                lost
            }
        }
    }

    /// Message `sn` will not arrive (its partial expired or was evicted);
    /// returns whether that is news for the current window (a challenger's
    /// losses are reported if it takes over).
    pub fn give_up(&mut self, sn: Sn) -> bool {
        let sn = sn.get();
        match self.side(sn) {
            Side::Current => self.cur.give_up(sn),
            Side::Challenger(i) => {
                let win = &mut self.others[i].win;
                if win.give_up(sn) {
                    win.pending_lost = win.pending_lost.saturating_add(1);
                }
                false
            }
            Side::Far => false,
        }
    }

    /// Gives up every missing message; returns how many.
    pub fn give_up_missing(&mut self) -> u64 {
        self.cur.give_up_missing()
    }
}

#[cfg(test)]
mod tests;
