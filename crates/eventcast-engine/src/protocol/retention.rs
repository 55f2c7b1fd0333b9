//! Sender-side retention: the datagrams of recently sent messages, kept for
//! `3 * message_ttl` so lost chunks (by `seqId`) and lost whole messages (by
//! `sn`) can be resent unchanged. Bounded by bytes and count; the oldest
//! message is dropped first.

use super::SharedBytes;
use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-datagram bookkeeping overhead charged against the byte limit.
const OVERHEAD: usize = 64;

/// Largest buffer kept for reuse ([`Retention::take_buffer`]).
const MAX_SPARE_CAPACITY: usize = 64 * 1024;

/// The datagrams of one message: most messages are one datagram, held
/// without a `Vec` (an allocation and a free per sent message).
pub(crate) enum Datagrams {
    /// A message that fits one datagram.
    One(SharedBytes),
    /// The chunks of a message, in `seq` order.
    Chunks(Vec<SharedBytes>),
}

impl Deref for Datagrams {
    type Target = [SharedBytes];
    fn deref(&self) -> &[SharedBytes] {
        match self {
            Datagrams::One(d) => std::slice::from_ref(d),
            Datagrams::Chunks(v) => v,
        }
    }
}

impl From<Vec<SharedBytes>> for Datagrams {
    fn from(v: Vec<SharedBytes>) -> Self {
        Datagrams::Chunks(v)
    }
}

/// The datagrams of one sent message.
pub(crate) struct Retained {
    /// Chunk group id, if the message was chunked.
    pub group: Option<String>,
    /// The datagrams exactly as sent (chunks in `seq` order, or the single datagram).
    pub datagrams: Datagrams,
    /// Per datagram: when it was last resent. Empty until the first repair:
    /// most messages never need one, and this saves an allocation per sent message.
    repaired: Vec<Option<Instant>>,
    expires: Instant,
    bytes: usize,
}

/// Bounded store of [`Retained`] messages, oldest first.
pub(crate) struct Retention {
    /// Oldest first. Each message has a serial number (its insertion count):
    /// the one at index `i` has serial `front_serial + i`.
    entries: VecDeque<Retained>,
    /// Serial of `entries[0]` (of the next message inserted, when empty).
    front_serial: u64,
    by_group: HashMap<String, u64>,
    /// `(sn, serial)` of the retained messages that carry an `sn`, in
    /// increasing `sn` (and serial) order. The engine numbers its messages
    /// 1, 2, 3, ..., so this is a deque appended at the back and trimmed at
    /// the front, and `sn` is usually found at index `sn - first sn`: no
    /// hashing or map node per sent message (see [`Retention::serial_of_sn`]).
    by_sn: VecDeque<(i64, u64)>,
    bytes: usize,
    max_bytes: usize,
    max_count: usize,
    keep: Duration,
    /// Messages dropped early to stay within the limits.
    pub dropped: u64,
    /// The buffer of the last one-datagram message let go of, if nothing
    /// else held it: a sender that emits steadily writes each message into
    /// the buffer of the one that left the retention (no allocation, no free).
    spare: Option<Arc<Vec<u8>>>,
}

impl Retention {
    pub fn new(keep: Duration, max_bytes: usize, max_count: usize) -> Self {
        Retention {
            entries: VecDeque::new(),
            front_serial: 0,
            by_group: HashMap::new(),
            by_sn: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_count: max_count.max(1),
            keep,
            dropped: 0,
            spare: None,
        }
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of messages held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Retains a sent message; drops the oldest ones while over a limit.
    /// A message larger than the whole byte budget is not retained at all.
    pub fn insert(&mut self, now: Instant, sn: Option<i64>, group: Option<String>, datagrams: impl Into<Datagrams>) {
        let datagrams = datagrams.into();
        let bytes: usize = datagrams.iter().map(|d| d.len() + OVERHEAD).sum();
        if bytes > self.max_bytes {
            self.dropped += 1;
            return;
        }
        while !self.entries.is_empty() && (self.bytes + bytes > self.max_bytes || self.entries.len() >= self.max_count)
        {
            self.pop_front();
            self.dropped += 1;
        }
        let serial = self.front_serial + self.entries.len() as u64;
        if let Some(g) = &group {
            self.by_group.insert(g.clone(), serial);
        }
        if let Some(sn) = sn {
            // The engine's numbering only grows, so this loop never runs; if
            // it ever did not, a repeated or lower `sn` would find the newest
            // message that carries it, and the index would stay sorted.
            while self.by_sn.back().is_some_and(|&(s, _)| s >= sn) {
                self.by_sn.pop_back();
            }
            self.by_sn.push_back((sn, serial));
        }
        self.bytes += bytes;
        self.entries.push_back(Retained { group, datagrams, repaired: Vec::new(), expires: now + self.keep, bytes });
    }

    fn pop_front(&mut self) {
        if let Some(r) = self.entries.pop_front() {
            let serial = self.front_serial;
            self.front_serial += 1;
            self.bytes -= r.bytes;
            if let Some(g) = &r.group {
                self.by_group.remove(g);
            }
            // Serials in `by_sn` grow and every older message is gone: if this
            // one is indexed, it is the first entry.
            if self.by_sn.front().is_some_and(|&(_, s)| s == serial) {
                self.by_sn.pop_front();
            }
            if let Datagrams::One(d) = r.datagrams {
                if let Some(buf) = d.reclaim().filter(|b| b.capacity() <= MAX_SPARE_CAPACITY) {
                    self.spare = Some(buf);
                }
            }
        }
    }

    /// An empty buffer, unshared, for a message of about `needed` bytes: the
    /// spare one when there is one no larger than twice that (the retention
    /// counts the bytes of a datagram, so the memory behind it must stay
    /// near that), else a new one.
    pub fn take_buffer(&mut self, needed: usize) -> Arc<Vec<u8>> {
        match self.spare.take() {
            Some(mut buf) if buf.capacity() <= 2 * needed => {
                // Unshared (checked when it was reclaimed): no copy is made.
                Arc::make_mut(&mut buf).clear();
                buf
            }
            _ => Arc::new(Vec::with_capacity(needed)),
        }
    }

    /// Gives back a buffer from [`Retention::take_buffer`] that the message
    /// did not keep (it was encrypted or chunked into other buffers).
    pub fn give_back(&mut self, buf: Arc<Vec<u8>>) {
        if buf.capacity() <= MAX_SPARE_CAPACITY && Arc::strong_count(&buf) == 1 {
            self.spare = Some(buf);
        }
    }

    /// The serial of retained message `sn` (any `i64`: requests are forged
    /// at will). Index arithmetic when the retained numbers are consecutive,
    /// else (a message too large to retain left a hole) a binary search.
    fn serial_of_sn(&self, sn: i64) -> Option<u64> {
        let &(first, _) = self.by_sn.front()?;
        let guess = sn.checked_sub(first).and_then(|d| usize::try_from(d).ok()).and_then(|i| self.by_sn.get(i));
        if let Some(&(s, serial)) = guess {
            if s == sn {
                return Some(serial);
            }
        }
        let i = self.by_sn.partition_point(|&(s, _)| s < sn);
        self.by_sn.get(i).filter(|&&(s, _)| s == sn).map(|&(_, serial)| serial)
    }

    /// Drops messages whose retention time has passed.
    pub fn expire(&mut self, now: Instant) {
        while self.entries.front().is_some_and(|r| r.expires <= now) {
            self.pop_front();
        }
    }

    /// When the oldest message expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries.front().map(|r| r.expires)
    }

    fn get_mut(&mut self, serial: u64) -> Option<&mut Retained> {
        let idx = usize::try_from(serial.checked_sub(self.front_serial)?).ok()?;
        self.entries.get_mut(idx)
    }

    /// Datagrams to resend for chunks `indexes` of group `group`; empty when unknown.
    /// A datagram resent less than `window` ago is skipped (many requesters, one
    /// repair). Each is resent in one copy, however often it was asked for:
    /// requests (forgeable) never multiply what a sender sends.
    pub fn repair_chunks(&mut self, now: Instant, group: &str, indexes: &[i32], window: Duration) -> Vec<SharedBytes> {
        let Some(&serial) = self.by_group.get(group) else { return Vec::new() };
        let Some(r) = self.get_mut(serial) else { return Vec::new() };
        let mut out = Vec::new();
        for &i in indexes {
            if let Ok(i) = usize::try_from(i) {
                r.resend(now, i, window, &mut out);
            }
        }
        out
    }

    /// Datagrams to resend for whole messages `sns`, at most `max` in all
    /// (the first ones of each message, in request order): a receiver that
    /// gets some chunks of a message asks for the rest chunk by chunk, and a
    /// small request naming big messages cannot make us resend megabytes.
    pub fn repair_messages(&mut self, now: Instant, sns: &[i64], window: Duration, max: usize) -> Vec<SharedBytes> {
        let mut out = Vec::new();
        for sn in sns {
            let Some(serial) = self.serial_of_sn(*sn) else { continue };
            if let Some(r) = self.get_mut(serial) {
                for i in 0..r.datagrams.len() {
                    if out.len() >= max {
                        return out;
                    }
                    r.resend(now, i, window, &mut out);
                }
            }
        }
        out
    }

    /// True when chunk group `group` is still retained.
    pub fn has_group(&self, group: &str) -> bool {
        self.by_group.contains_key(group)
    }

    /// True when message `sn` is still retained.
    pub fn has_sn(&self, sn: i64) -> bool {
        self.serial_of_sn(sn).is_some()
    }
}

impl Retained {
    fn resend(&mut self, now: Instant, i: usize, window: Duration, out: &mut Vec<SharedBytes>) {
        let Some(d) = self.datagrams.get(i) else { return };
        if self.repaired.is_empty() {
            self.repaired = vec![None; self.datagrams.len()];
        }
        let last = &mut self.repaired[i];
        if last.is_some_and(|t| now.saturating_duration_since(t) < window) {
            return;
        }
        *last = Some(now);
        out.push(d.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_bytes_count_and_time() {
        let t0 = Instant::now();
        let mut r = Retention::new(Duration::from_secs(9), 3 * (100 + OVERHEAD), 10);
        for sn in 0..5 {
            r.insert(t0, Some(sn), Some(format!("g{sn}")), vec![vec![0; 100].into()]);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.dropped, 2);
        assert!(!r.has_sn(1) && r.has_sn(2) && r.has_sn(4));
        assert!(r.repair_chunks(t0, "g0", &[0], Duration::ZERO).is_empty());
        assert_eq!(r.repair_chunks(t0, "g3", &[0, 1, -1], Duration::ZERO).len(), 1);
        let mut c = Retention::new(Duration::from_secs(9), usize::MAX, 2);
        for sn in 0..3 {
            c.insert(t0, Some(sn), None, vec![vec![1].into()]);
        }
        assert_eq!(c.len(), 2);
        r.expire(t0 + Duration::from_secs(9));
        assert_eq!((r.len(), r.bytes()), (0, 0));
        r.insert(t0, None, None, vec![vec![0; 10_000].into()]);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn repair_window_one_copy_and_message_cap() {
        let t0 = Instant::now();
        let w = Duration::from_millis(50);
        let mut r = Retention::new(Duration::from_secs(9), usize::MAX, 10);
        r.insert(t0, Some(7), Some("g".into()), SharedBytes::split(vec![1, 2, 3], &[1, 2, 3]));
        assert_eq!(r.repair_chunks(t0, "g", &[1], w), [vec![2]]);
        assert!(r.repair_chunks(t0 + w / 2, "g", &[1], w).is_empty());
        // Asked again and again: still one copy each time (no escalation by requests).
        for k in 1..6 {
            assert_eq!(r.repair_chunks(t0 + 2 * k * w, "g", &[1, 1, 1], w), [vec![2]]);
        }
        assert_eq!(r.repair_messages(t0, &[7, 8], w, 64).len(), 2); // chunk 1 is inside the window
        r.insert(t0, Some(8), None, SharedBytes::split(vec![9; 100], &(1..=100).collect::<Vec<_>>()));
        assert_eq!(r.repair_messages(t0 + 20 * w, &[8, 7, 8], w, 64).len(), 64);
        assert_eq!(r.repair_messages(t0 + 40 * w, &[7, 8], w, 5).len(), 5);
    }

    /// A datagram that says which message it belongs to (and pads to `len`).
    fn datagram(sn: i64, len: usize) -> SharedBytes {
        let mut d = sn.to_le_bytes().to_vec();
        d.resize(len.max(8), 0);
        d.into()
    }

    /// The message a repair for `sn` resends, read back from its datagram.
    fn resent_sn(r: &mut Retention, t: Instant, sn: i64) -> Option<i64> {
        let out = r.repair_messages(t, &[sn], Duration::ZERO, 1);
        out.first().map(|d| i64::from_le_bytes(d[..8].try_into().unwrap()))
    }

    #[test]
    fn sn_lookup_follows_eviction_through_many_wraparounds() {
        let t0 = Instant::now();
        let mut r = Retention::new(Duration::from_secs(9), usize::MAX, 5);
        // 1,000 messages through a 5-message store: the deques wrap around many times.
        for sn in 1..=1000 {
            r.insert(t0, Some(sn), None, vec![datagram(sn, 8)]);
            let oldest = (sn - 4).max(1);
            for q in oldest..=sn {
                assert_eq!(resent_sn(&mut r, t0, q), Some(q), "sn {q} after inserting {sn}");
            }
            assert!(!r.has_sn(oldest - 1) && !r.has_sn(sn + 1), "after {sn}");
        }
        assert_eq!((r.len(), r.by_sn.len()), (5, 5));
        r.expire(t0 + Duration::from_secs(9));
        assert!(r.by_sn.is_empty() && !r.has_sn(1000));
        // Numbering goes on after the store emptied.
        r.insert(t0, Some(1001), None, vec![datagram(1001, 8)]);
        assert_eq!(resent_sn(&mut r, t0, 1001), Some(1001));
    }

    #[test]
    fn forged_sn_far_outside_the_retained_range_finds_nothing() {
        let t0 = Instant::now();
        let mut r = Retention::new(Duration::from_secs(9), usize::MAX, 100);
        assert!(!r.has_sn(1) && r.repair_messages(t0, &[1, i64::MIN], Duration::ZERO, 64).is_empty());
        for sn in 50..60 {
            r.insert(t0, Some(sn), None, vec![datagram(sn, 8)]);
        }
        for forged in [i64::MIN, i64::MIN + 1, -1, 0, 49, 60, 61, 1 << 40, i64::MAX - 1, i64::MAX] {
            assert!(!r.has_sn(forged), "{forged}");
            assert_eq!(resent_sn(&mut r, t0, forged), None, "{forged}");
        }
        assert_eq!(resent_sn(&mut r, t0, 59), Some(59));
    }

    #[test]
    fn sn_lookup_across_holes_and_unnumbered_messages() {
        let t0 = Instant::now();
        // Room for 4 small messages by bytes; a 1,000-byte one is never retained.
        let mut r = Retention::new(Duration::from_secs(9), 4 * (16 + OVERHEAD), 100);
        let mut retained = VecDeque::new();
        for sn in 1..=40i64 {
            if sn % 7 == 0 {
                // Too large: not retained, a hole in the numbers.
                r.insert(t0, Some(sn), None, vec![datagram(sn, 1000)]);
            } else {
                r.insert(t0, Some(sn), None, vec![datagram(sn, 16)]);
                retained.push_back(sn);
            }
            if sn % 5 == 0 {
                // A chunked control message: a group, no sn.
                r.insert(t0, None, Some(format!("g{sn}")), vec![datagram(-sn, 8), datagram(-sn, 8)]);
                retained.push_back(-sn);
            }
            while retained.len() > r.len() {
                retained.pop_front();
            }
            for q in 1..=sn + 1 {
                let expect = retained.contains(&q).then_some(q);
                assert_eq!(resent_sn(&mut r, t0, q), expect, "sn {q} after inserting {sn}");
                assert_eq!(r.has_sn(q), expect.is_some());
            }
            for g in (5..=sn).step_by(5) {
                assert_eq!(r.has_group(&format!("g{g}")), retained.contains(&-g), "group g{g} after {sn}");
            }
        }
        assert!(r.dropped > 0);
    }

    #[test]
    fn a_repeated_sn_finds_the_newest_message() {
        // Not produced by the engine (its numbering only grows); the index stays sorted anyway.
        let t0 = Instant::now();
        let mut r = Retention::new(Duration::from_secs(9), usize::MAX, 100);
        for sn in [1, 2, 3] {
            r.insert(t0, Some(sn), None, vec![datagram(sn, 8)]);
        }
        r.insert(t0, Some(2), None, vec![datagram(20, 8)]);
        assert_eq!(resent_sn(&mut r, t0, 2), Some(20));
        assert!(r.has_sn(1) && !r.has_sn(3));
        for _ in 0..4 {
            r.pop_front();
        }
        assert!(r.by_sn.is_empty());
    }

    #[test]
    fn reuses_the_buffer_of_an_evicted_message_only_when_unshared_and_near_the_size() {
        let t0 = Instant::now();
        let mut r = Retention::new(Duration::from_secs(9), usize::MAX, 2);
        let msg = |r: &mut Retention, sn: i64| {
            let mut buf = r.take_buffer(300);
            let ptr = buf.as_ptr();
            Arc::make_mut(&mut buf).extend_from_slice(&sn.to_le_bytes());
            let d = SharedBytes::whole(buf);
            (ptr, d)
        };
        let (p1, d1) = msg(&mut r, 1);
        r.insert(t0, Some(1), None, Datagrams::One(d1));
        let (_, d2) = msg(&mut r, 2);
        r.insert(t0, Some(2), None, Datagrams::One(d2));
        let (_, d3) = msg(&mut r, 3);
        // A transmit not yet sent holds message 3.
        let held = d3.clone();
        // Inserting message 3 evicts message 1, whose buffer comes back for message 4, empty.
        r.insert(t0, Some(3), None, Datagrams::One(d3));
        let (p4, d4) = msg(&mut r, 4);
        assert_eq!((p4, d4.len()), (p1, 8));
        assert_eq!(resent_sn(&mut r, t0, 2), Some(2)); // retained ones untouched
        r.insert(t0, Some(4), None, Datagrams::One(d4)); // evicts 2
        r.insert(t0, Some(5), None, vec![datagram(5, 8)]); // evicts 3, still held: not reused
        assert!(r.spare.is_none() || r.spare.as_ref().is_some_and(|b| b.as_ptr() != held.as_ptr()));
        assert_eq!(&held[..], &3i64.to_le_bytes());
        // A big spare is not handed to a small message (its memory would hide behind a small datagram).
        r.give_back(Arc::new(Vec::with_capacity(10_000)));
        assert!(r.take_buffer(300).capacity() < 10_000);
        r.give_back(Arc::new(Vec::with_capacity(MAX_SPARE_CAPACITY + 1)));
        assert!(r.spare.is_none());
    }
}
