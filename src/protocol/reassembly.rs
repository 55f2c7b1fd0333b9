//! Receiver-side reassembly of chunk groups, keyed by (sender id, seqId).
//!
//! Memory is proportional to what actually arrived (chunks live in a map, not
//! a `seqLen`-sized vector), charged with a per-chunk overhead, and bounded by
//! [`Limits::max_partial_messages`] and [`Limits::max_reassembly_bytes`]: the
//! partial message that went longest without a new chunk is evicted first, so
//! a flood of one-chunk bogus messages evicts its own kind before a message
//! that is actively arriving. Keys of completed (or given up)
//! messages are remembered, up to [`Limits::max_completed_ids`], so late
//! repairs and duplicates never deliver a message twice.

use super::repair::Nack;
use super::{Limits, Sender};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

/// Bookkeeping bytes charged per stored chunk.
const CHUNK_OVERHEAD: usize = 64;
/// Bookkeeping bytes charged per partial message.
const PARTIAL_OVERHEAD: usize = 256;

/// (sender id, seqId)
pub(crate) type Key = (String, String);

/// One chunk group being reassembled.
pub(crate) struct Partial {
    serial: u64,
    touched: u64,
    /// Number of chunks.
    pub seq_len: u32,
    /// Body length of every chunk but the last, once known.
    chunk_len: Option<usize>,
    /// Body length of the last chunk, once known.
    last_len: Option<usize>,
    chunks: BTreeMap<u32, Vec<u8>>,
    highest: u32,
    bytes: usize,
    /// Per-sender message number from the chunk meta, if any.
    pub sn: Option<i64>,
    /// Who sends it.
    pub sender: Sender,
    /// Last time a new chunk arrived.
    pub last_progress: Instant,
    /// Repair request timer.
    pub nack: Nack,
    /// Chunk indexes we have asked for.
    asked: HashSet<u32>,
    /// The timer entry currently registered for this partial.
    deadline: Instant,
}

impl Partial {
    /// Up to `limit` missing chunk indexes, lowest first (includes the tail
    /// after the highest chunk seen, since `seqLen` is known).
    pub fn missing(&self, limit: usize) -> Vec<i32> {
        let mut out = Vec::new();
        let mut i = 0u32;
        while i < self.seq_len && out.len() < limit {
            if !self.chunks.contains_key(&i) {
                out.push(i as i32);
            }
            i += 1;
        }
        out
    }

    /// Records that we asked for `indexes`.
    pub fn asked(&mut self, indexes: &[i32]) {
        self.asked.extend(indexes.iter().map(|&i| i as u32));
    }

    /// Whether any of `indexes` is still missing here.
    pub fn misses_any(&self, indexes: &[i32]) -> bool {
        indexes
            .iter()
            .any(|&i| u32::try_from(i).is_ok_and(|i| i < self.seq_len && !self.chunks.contains_key(&i)))
    }

}

/// Why a chunk was turned away.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Inconsistent with itself or with earlier chunks of the group.
    Malformed,
    /// Declares a message larger than `max_message_size`.
    Limit,
}

/// Outcome of [`Reassembly::insert`].
#[derive(Debug)]
pub(crate) enum Insert {
    /// Turned away.
    Rejected(Reject),
    /// Already have it.
    Duplicate,
    /// The message was already completed or given up.
    Late,
    /// A new chunk was stored (`repaired`: one we had asked for).
    Progress {
        /// Whether we had requested this chunk.
        repaired: bool,
        /// Whether this chunk started a new partial message.
        new: bool,
    },
    /// The last missing chunk arrived: the concatenated message.
    Complete {
        /// Chunk bodies concatenated in `seq` order.
        data: Vec<u8>,
        /// Whether this last chunk was one we had asked for.
        repaired: bool,
    },
}

/// A partial message evicted to stay within limits.
#[allow(dead_code)] // read by message-level loss tracking
pub(crate) struct Evicted {
    /// Its sender.
    pub sender: String,
    /// Its message number, if it had one.
    pub sn: Option<i64>,
}

/// All partial messages of one endpoint.
pub(crate) struct Reassembly {
    partials: HashMap<Key, Partial>,
    /// serial → key, for timers.
    order: HashMap<u64, Key>,
    /// last-touched counter → serial, least recently progressed first.
    lru: BTreeMap<u64, u64>,
    timers: BTreeSet<(Instant, u64)>,
    next_serial: u64,
    bytes: usize,
    done: HashSet<Key>,
    done_order: VecDeque<Key>,
    limits: Limits,
}

/// The chunk fields of a datagram's meta.
pub(crate) struct ChunkInfo<'a> {
    pub seq: i32,
    pub seq_len: i32,
    pub seq_end: bool,
    pub sn: Option<i64>,
    pub sender: SenderRef<'a>,
}

/// The sender fields of a chunk's meta, borrowed: copied into an owned
/// [`Sender`] only when the chunk starts a new partial (not once per chunk).
#[derive(Clone, Copy)]
pub(crate) struct SenderRef<'a> {
    pub id: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub hostname: &'a str,
}

impl SenderRef<'_> {
    fn to_sender(self) -> Sender {
        Sender { id: self.id.to_owned(), host: self.host.to_owned(), port: self.port, hostname: self.hostname.to_owned() }
    }
}

impl Reassembly {
    pub fn new(limits: Limits) -> Self {
        Reassembly {
            partials: HashMap::new(),
            order: HashMap::new(),
            lru: BTreeMap::new(),
            timers: BTreeSet::new(),
            next_serial: 0,
            bytes: 0,
            done: HashSet::new(),
            done_order: VecDeque::new(),
            limits,
        }
    }

    /// Bytes held (chunk bodies plus bookkeeping).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of partial messages.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.partials.len()
    }

    /// Whether `key` was completed or given up recently.
    #[cfg(test)]
    pub fn is_done(&self, key: &Key) -> bool {
        self.done.contains(key)
    }

    /// Stores one chunk. `nack` is the timer a new partial starts with.
    /// Evicted partials (oldest first, never the one just inserted into) are appended to `evicted`.
    pub fn insert(
        &mut self,
        now: Instant,
        key: Key,
        info: ChunkInfo<'_>,
        body: &[u8],
        nack: Nack,
        evicted: &mut Vec<Evicted>,
    ) -> Insert {
        let max = self.limits.max_message_size;
        if info.seq < 0 || info.seq_len < 1 || info.seq >= info.seq_len || info.seq_end != (info.seq == info.seq_len - 1) {
            return Insert::Rejected(Reject::Malformed);
        }
        let (seq, seq_len) = (info.seq as u32, info.seq_len as u32);
        let last = seq == seq_len - 1;
        if seq_len as usize > max || body.len() > max || (!last && body.is_empty()) {
            return Insert::Rejected(Reject::Limit);
        }
        if self.done.contains(&key) {
            return Insert::Late;
        }
        if let Some(p) = self.partials.get(&key) {
            if p.seq_len != seq_len || p.sn != info.sn {
                return Insert::Rejected(Reject::Malformed);
            }
            if p.chunks.contains_key(&seq) {
                return Insert::Duplicate;
            }
        }
        // Size consistency: all chunks but the last share one length, the last is not longer,
        // and the declared total stays within max_message_size.
        let (chunk_len, last_len) = match self.partials.get(&key) {
            Some(p) => (p.chunk_len, p.last_len),
            None => (None, None),
        };
        let (chunk_len, last_len) = if last { (chunk_len, Some(body.len())) } else { (Some(body.len()), last_len) };
        if let Some(c) = chunk_len {
            if self.partials.get(&key).and_then(|p| p.chunk_len).is_some_and(|old| old != c) {
                return Insert::Rejected(Reject::Malformed);
            }
            if last_len.is_some_and(|l| l > c) {
                return Insert::Rejected(Reject::Malformed);
            }
            let total = (seq_len as u64 - 1).saturating_mul(c as u64) + last_len.unwrap_or(1) as u64;
            if total > max as u64 {
                return Insert::Rejected(Reject::Limit);
            }
        } else if (seq_len as u64 - 1) + body.len() as u64 > max as u64 {
            return Insert::Rejected(Reject::Limit);
        }
        let cost = body.len() + CHUNK_OVERHEAD;
        let new = !self.partials.contains_key(&key);
        if new {
            if PARTIAL_OVERHEAD + cost > self.limits.max_reassembly_bytes || self.limits.max_partial_messages == 0 {
                return Insert::Rejected(Reject::Limit);
            }
            let serial = self.next_serial;
            self.next_serial += 1;
            self.order.insert(serial, key.clone());
            self.lru.insert(serial, serial);
            self.bytes += PARTIAL_OVERHEAD;
            let deadline = nack.due.unwrap_or(now);
            self.timers.insert((deadline, serial));
            self.partials.insert(
                key.clone(),
                Partial {
                    serial,
                    touched: serial,
                    seq_len,
                    chunk_len: None,
                    last_len: None,
                    chunks: BTreeMap::new(),
                    highest: 0,
                    bytes: PARTIAL_OVERHEAD,
                    sn: info.sn,
                    sender: info.sender.to_sender(),
                    last_progress: now,
                    nack,
                    asked: HashSet::new(),
                    deadline,
                },
            );
        }
        let p = self.partials.get_mut(&key).expect("present");
        p.chunk_len = chunk_len;
        p.last_len = last_len;
        p.chunks.insert(seq, body.to_vec());
        p.highest = p.highest.max(seq);
        p.bytes += cost;
        p.last_progress = now;
        let repaired = p.asked.remove(&seq);
        self.bytes += cost;
        self.lru.remove(&p.touched);
        p.touched = self.next_serial;
        self.next_serial += 1;
        self.lru.insert(p.touched, p.serial);
        if p.chunks.len() == seq_len as usize {
            let p = self.remove(&key).expect("present");
            let mut data = Vec::with_capacity(p.chunks.values().map(Vec::len).sum());
            for c in p.chunks.values() {
                data.extend_from_slice(c);
            }
            self.mark_done(key);
            return Insert::Complete { data, repaired };
        }
        // Enforce limits by evicting the oldest other partials.
        let keep = self.partials[&key].serial;
        while self.partials.len() > self.limits.max_partial_messages || self.bytes > self.limits.max_reassembly_bytes {
            let victim = self.lru.values().find(|s| **s != keep).and_then(|s| self.order.get(s)).cloned();
            let Some(vkey) = victim else { break };
            if let Some(v) = self.remove(&vkey) {
                evicted.push(Evicted { sender: v.sender.id, sn: v.sn });
            }
            self.mark_done(vkey);
        }
        if self.bytes > self.limits.max_reassembly_bytes {
            // Only this partial is left and it alone is too big.
            if let Some(v) = self.remove(&key) {
                evicted.push(Evicted { sender: v.sender.id, sn: v.sn });
            }
            self.mark_done(key);
            return Insert::Rejected(Reject::Limit);
        }
        Insert::Progress { repaired, new }
    }

    fn remove(&mut self, key: &Key) -> Option<Partial> {
        let p = self.partials.remove(key)?;
        self.order.remove(&p.serial);
        self.lru.remove(&p.touched);
        self.timers.remove(&(p.deadline, p.serial));
        self.bytes -= p.bytes;
        Some(p)
    }

    /// Forgets a partial (completed elsewhere, expired); remembers its key as done.
    pub fn finish(&mut self, key: &Key) -> Option<Partial> {
        let p = self.remove(key)?;
        self.mark_done(key.clone());
        Some(p)
    }

    /// Records a single-datagram message as delivered; false if it already was.
    pub fn mark_single_done(&mut self, key: Key) -> bool {
        if self.done.contains(&key) {
            return false;
        }
        self.mark_done(key);
        true
    }

    fn mark_done(&mut self, key: Key) {
        if self.limits.max_completed_ids == 0 || !self.done.insert(key.clone()) {
            return;
        }
        self.done_order.push_back(key);
        while self.done_order.len() > self.limits.max_completed_ids {
            if let Some(old) = self.done_order.pop_front() {
                self.done.remove(&old);
            }
        }
    }

    /// Mutable access to a partial. Call [`Reassembly::reschedule`] after changing its timer.
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Partial> {
        self.partials.get_mut(key)
    }

    /// The key of a partial with chunk group `seq_id`, whoever sends it
    /// (0.1.x requests do not name the sender).
    pub fn find_group(&self, seq_id: &str) -> Option<Key> {
        self.partials.keys().find(|k| k.1 == seq_id).cloned()
    }

    /// Re-registers the timer of `key` at `deadline`.
    pub fn reschedule(&mut self, key: &Key, deadline: Instant) {
        if let Some(p) = self.partials.get_mut(key) {
            self.timers.remove(&(p.deadline, p.serial));
            p.deadline = deadline;
            self.timers.insert((deadline, p.serial));
        }
    }

    /// The earliest registered deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Keys whose deadline is at or before `now`.
    pub fn due(&self, now: Instant) -> Vec<Key> {
        self.timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .filter_map(|(_, s)| self.order.get(s).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn info(seq: i32, seq_len: i32, s: &Sender) -> ChunkInfo<'_> {
        let sender = SenderRef { id: &s.id, host: &s.host, port: s.port, hostname: &s.hostname };
        ChunkInfo { seq, seq_len, seq_end: seq == seq_len - 1, sn: None, sender }
    }

    fn key(id: &str) -> Key {
        (id.to_owned(), "g".to_owned())
    }

    #[test]
    fn reassembles_in_any_order_once() {
        let t = Instant::now();
        let s = Sender::default();
        let nack = Nack::armed(t, Duration::from_millis(5));
        let mut r = Reassembly::new(Limits::default());
        let mut ev = Vec::new();
        assert!(matches!(r.insert(t, key("a"), info(2, 3, &s), b"c", nack, &mut ev), Insert::Progress { new: true, .. }));
        assert!(matches!(r.insert(t, key("a"), info(2, 3, &s), b"c", nack, &mut ev), Insert::Duplicate));
        assert_eq!(r.get_mut(&key("a")).unwrap().missing(10), vec![0, 1]);
        assert!(matches!(r.insert(t, key("a"), info(0, 3, &s), b"aa", nack, &mut ev), Insert::Progress { new: false, .. }));
        match r.insert(t, key("a"), info(1, 3, &s), b"bb", nack, &mut ev) {
            Insert::Complete { data, .. } => assert_eq!(data, b"aabbc"),
            other => panic!("{other:?}"),
        }
        assert_eq!((r.len(), r.bytes()), (0, 0));
        assert!(matches!(r.insert(t, key("a"), info(1, 3, &s), b"bb", nack, &mut ev), Insert::Late));
        assert!(r.next_deadline().is_none());
    }

    #[test]
    fn rejects_inconsistent_and_oversized_chunks() {
        let t = Instant::now();
        let s = Sender::default();
        let nack = Nack::armed(t, Duration::from_millis(5));
        let limits = Limits { max_message_size: 100, ..Limits::default() };
        let mut r = Reassembly::new(limits);
        let mut ev = Vec::new();
        let mut ins = |r: &mut Reassembly, i: ChunkInfo<'_>, b: &[u8]| r.insert(t, key("a"), i, b, nack, &mut ev);
        assert!(matches!(ins(&mut r, info(3, 3, &s), b"x"), Insert::Rejected(Reject::Malformed)));
        assert!(matches!(ins(&mut r, info(-1, 3, &s), b"x"), Insert::Rejected(Reject::Malformed)));
        assert!(matches!(ins(&mut r, ChunkInfo { seq_end: true, ..info(0, 3, &s) }, b"x"), Insert::Rejected(Reject::Malformed)));
        assert!(matches!(ins(&mut r, info(0, 1_000_000, &s), b"x"), Insert::Rejected(Reject::Limit)));
        assert!(matches!(ins(&mut r, info(0, 3, &s), &[0; 60]), Insert::Rejected(Reject::Limit)));
        assert!(matches!(ins(&mut r, info(0, 3, &s), &[0; 30]), Insert::Progress { .. }));
        assert!(matches!(ins(&mut r, info(1, 3, &s), &[0; 31]), Insert::Rejected(Reject::Malformed)));
        assert!(matches!(ins(&mut r, info(1, 4, &s), &[0; 30]), Insert::Rejected(Reject::Malformed)));
        assert!(matches!(ins(&mut r, info(2, 3, &s), &[0; 31]), Insert::Rejected(Reject::Malformed)));
        assert!(matches!(ins(&mut r, info(2, 3, &s), &[0; 3]), Insert::Progress { .. }));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn evicts_oldest_within_limits() {
        let t = Instant::now();
        let s = Sender::default();
        let nack = Nack::armed(t, Duration::from_millis(5));
        let limits = Limits { max_partial_messages: 3, max_reassembly_bytes: 10_000, ..Limits::default() };
        let mut r = Reassembly::new(limits);
        let mut ev = Vec::new();
        for i in 0..10 {
            r.insert(t, key(&i.to_string()), info(0, 5, &s), &[0; 1000], nack, &mut ev);
            assert!(r.len() <= 3 && r.bytes() <= 10_000);
        }
        assert_eq!(ev.len(), 7);
        assert!(r.is_done(&key("0")));
        let mut ev = Vec::new();
        let mut r = Reassembly::new(Limits { max_reassembly_bytes: 3000, ..Limits::default() });
        for i in 0..10 {
            r.insert(t, key(&i.to_string()), info(0, 5, &s), &[0; 1000], nack, &mut ev);
            assert!(r.bytes() <= 3000, "{}", r.bytes());
        }
        assert_eq!(ev.len(), 8);
    }
}
