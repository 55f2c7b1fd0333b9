//! Sender-side retention: the datagrams of recently sent messages, kept for
//! `3 * message_ttl` so lost chunks (by `seqId`) and lost whole messages (by
//! `sn`) can be resent unchanged. Bounded by bytes and count; the oldest
//! message is dropped first.

use super::SharedBytes;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Per-datagram bookkeeping overhead charged against the byte limit.
const OVERHEAD: usize = 64;

/// Hasher for `by_sn`: the keys are our own sequence numbers (no attacker
/// chooses them), so a multiplicative hash replaces SipHash on the emit path.
#[derive(Default)]
pub(crate) struct SnHasher(u64);

impl std::hash::Hasher for SnHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_i64(&mut self, v: i64) {
        // Fibonacci hashing, folded so both the low bits (bucket) and the top
        // bits (hashbrown's tag) vary with consecutive keys.
        let h = (v as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

type BuildSnHasher = std::hash::BuildHasherDefault<SnHasher>;

/// The datagrams of one sent message.
pub(crate) struct Retained {
    /// Per-sender message number, if the message carries one.
    pub sn: Option<i64>,
    /// Chunk group id, if the message was chunked.
    pub group: Option<String>,
    /// The datagrams exactly as sent (chunks in `seq` order, or the single datagram).
    pub datagrams: Vec<SharedBytes>,
    /// Per datagram: when it was last resent. Empty until the first repair:
    /// most messages never need one, and this saves an allocation per sent message.
    repaired: Vec<Option<Instant>>,
    expires: Instant,
    bytes: usize,
}

/// Bounded store of [`Retained`] messages, oldest first.
pub(crate) struct Retention {
    entries: VecDeque<(u64, Retained)>,
    next_serial: u64,
    by_group: HashMap<String, u64>,
    by_sn: HashMap<i64, u64, BuildSnHasher>,
    bytes: usize,
    max_bytes: usize,
    max_count: usize,
    keep: Duration,
    /// Messages dropped early to stay within the limits.
    pub dropped: u64,
}

impl Retention {
    pub fn new(keep: Duration, max_bytes: usize, max_count: usize) -> Self {
        Retention {
            entries: VecDeque::new(),
            next_serial: 0,
            by_group: HashMap::new(),
            by_sn: HashMap::default(),
            bytes: 0,
            max_bytes,
            max_count: max_count.max(1),
            keep,
            dropped: 0,
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
    pub fn insert(&mut self, now: Instant, sn: Option<i64>, group: Option<String>, datagrams: Vec<SharedBytes>) {
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
        let serial = self.next_serial;
        self.next_serial += 1;
        if let Some(g) = &group {
            self.by_group.insert(g.clone(), serial);
        }
        if let Some(sn) = sn {
            self.by_sn.insert(sn, serial);
        }
        self.bytes += bytes;
        self.entries.push_back((
            serial,
            Retained { sn, group, datagrams, repaired: Vec::new(), expires: now + self.keep, bytes },
        ));
    }

    fn pop_front(&mut self) {
        if let Some((_, r)) = self.entries.pop_front() {
            self.bytes -= r.bytes;
            if let Some(g) = &r.group {
                self.by_group.remove(g);
            }
            if let Some(sn) = r.sn {
                self.by_sn.remove(&sn);
            }
        }
    }

    /// Drops messages whose retention time has passed.
    pub fn expire(&mut self, now: Instant) {
        while self.entries.front().is_some_and(|(_, r)| r.expires <= now) {
            self.pop_front();
        }
    }

    /// When the oldest message expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries.front().map(|(_, r)| r.expires)
    }

    fn get_mut(&mut self, serial: u64) -> Option<&mut Retained> {
        let front = self.entries.front()?.0;
        let idx = usize::try_from(serial.checked_sub(front)?).ok()?;
        self.entries.get_mut(idx).map(|(_, r)| r)
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
            let Some(&serial) = self.by_sn.get(sn) else { continue };
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
        self.by_sn.contains_key(&sn)
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
}
