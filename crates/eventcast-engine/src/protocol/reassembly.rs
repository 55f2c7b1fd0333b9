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

use super::repair::{Heard, Nack};
use super::{Limits, Sender};
use crate::wire::ids::{hex, parse_hex};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bookkeeping bytes charged per stored chunk.
const CHUNK_OVERHEAD: usize = 64;
/// Bookkeeping bytes charged per partial message.
const PARTIAL_OVERHEAD: usize = 256;

/// (sender id, seqId), as the bytes their hex stands for: every key has the
/// same small size whatever a sender writes (identifiers are validated at
/// decode, [`crate::wire::decode_received`]), so the partial map and the
/// done set cost a fixed amount per entry and are bounded by their counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    sender: [u8; 8],
    group: [u8; 20],
}

impl Key {
    /// The key of chunk group `seq_id` of `sender`, if both are well formed
    /// (16 and 40 lower-case hex chars).
    pub fn parse(sender: &str, seq_id: &str) -> Option<Key> {
        Some(Key { sender: parse_hex(sender)?, group: parse_hex(seq_id)? })
    }

    /// The group's `seqId`, as written on the wire.
    pub fn seq_id(&self) -> String {
        hex(&self.group)
    }
}

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
    /// Chunks `0..prefix_count`, concatenated: in-order arrival (the common
    /// case) appends here, so a complete message needs no final copy and a
    /// chunk no allocation of its own.
    prefix: Vec<u8>,
    prefix_count: u32,
    /// Chunks after a gap (`seq > prefix_count`), moved into `prefix` once the gap fills.
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
    /// Missing chunks other receivers asked for recently (see [`Heard`]).
    pub heard: Heard,
    /// Chunk indexes we have asked for.
    asked: HashSet<u32>,
    /// The timer entry currently registered for this partial.
    deadline: Instant,
    /// Bytes of the datagrams that brought its chunks (new chunks only).
    pub received: usize,
    /// Bytes of the repair requests we sent for it.
    pub requested: usize,
    /// Its sender counted as heard from at some chunk ([`ChunkInfo::protected`]).
    protected: bool,
    /// Its key is in the done set too (a single-datagram message with the
    /// same key was delivered): further chunks are late.
    late: bool,
}

impl Partial {
    fn has(&self, i: u32) -> bool {
        i < self.prefix_count || self.chunks.contains_key(&i)
    }

    fn count(&self) -> usize {
        self.prefix_count as usize + self.chunks.len()
    }

    fn store(&mut self, seq: u32, body: &[u8]) {
        if seq == self.prefix_count {
            self.prefix.extend_from_slice(body);
            self.prefix_count += 1;
            while let Some(c) = self.chunks.first_entry().filter(|e| *e.key() == self.prefix_count) {
                self.prefix.extend_from_slice(&c.remove());
                self.prefix_count += 1;
            }
        } else {
            self.chunks.insert(seq, body.to_vec());
        }
    }

    /// Number of distinct chunks that arrived (sizes repair requests).
    pub fn arrived(&self) -> usize {
        self.count()
    }

    /// Up to `limit` missing chunk indexes, lowest first (includes the tail
    /// after the highest chunk seen, since `seqLen` is known).
    pub fn missing(&self, limit: usize) -> Vec<i32> {
        let mut out = Vec::new();
        let mut i = self.prefix_count;
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
        indexes.iter().any(|&i| self.misses(i))
    }

    /// Whether chunk `i` is still missing here.
    pub fn misses(&self, i: i32) -> bool {
        u32::try_from(i).is_ok_and(|i| i < self.seq_len && !self.has(i))
    }

    /// How many chunks are still missing.
    pub fn missing_count(&self) -> usize {
        (self.seq_len as usize).saturating_sub(self.count())
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
    /// Number of partials with `late` set.
    late: usize,
    limits: Limits,
}

/// The chunk fields of a datagram's meta.
pub(crate) struct ChunkInfo<'a> {
    pub seq: i32,
    pub seq_len: i32,
    pub seq_end: bool,
    pub sn: Option<i64>,
    pub sender: SenderRef<'a>,
    /// Bytes of the datagram that carried the chunk (what the sender paid).
    pub wire_len: usize,
    /// The sender counts as heard from (it delivered here): its partials are
    /// evicted only after every other sender's, so a flood of forged
    /// partials cannot push a real message out while it waits for repair.
    pub protected: bool,
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
    /// Whether `s` holds these fields.
    fn is(&self, s: &Sender) -> bool {
        s.id == self.id && s.port == self.port && s.host == self.host && s.hostname == self.hostname
    }

    /// An owned copy, for a delivered event.
    pub(crate) fn to_sender(self) -> Sender {
        Sender {
            id: self.id.to_owned(),
            host: self.host.to_owned(),
            port: self.port,
            hostname: self.hostname.to_owned(),
        }
    }
}

/// The senders of the last few delivered events, so that consecutive events
/// of one sender share one [`Sender`] instead of copying its three strings
/// each time. A handful of entries, compared field by field: bounded, no
/// hashing, and a forged sender only ever costs the copy it would have cost.
#[derive(Debug, Default)]
pub(crate) struct RecentSenders {
    slots: Vec<Arc<Sender>>,
    next: usize,
}

/// How many senders [`RecentSenders`] remembers.
const RECENT_SENDERS: usize = 8;

impl RecentSenders {
    /// The shared [`Sender`] with `r`'s fields: a remembered one, else a new one remembered.
    pub(crate) fn get(&mut self, r: SenderRef<'_>) -> Arc<Sender> {
        if let Some(s) = self.slots.iter().find(|s| r.is(s)) {
            return s.clone();
        }
        let s = Arc::new(r.to_sender());
        if self.slots.len() < RECENT_SENDERS {
            self.slots.push(s.clone());
        } else {
            self.slots[self.next] = s.clone();
            self.next = (self.next + 1) % RECENT_SENDERS;
        }
        s
    }
}

/// Size consistency of a chunk of `body_len` bytes with what the group's
/// earlier chunks declared: all chunks but the last share one length, the
/// last is not longer, and the declared total stays within `max`. Returns
/// the group's (chunk length, last length) including this chunk.
fn check_sizes(
    max: usize,
    seq_len: u32,
    last: bool,
    body_len: usize,
    known: (Option<usize>, Option<usize>),
) -> Result<(Option<usize>, Option<usize>), Reject> {
    let (chunk_len, last_len) = if last { (known.0, Some(body_len)) } else { (Some(body_len), known.1) };
    if let Some(c) = chunk_len {
        if known.0.is_some_and(|old| old != c) {
            return Err(Reject::Malformed);
        }
        if last_len.is_some_and(|l| l > c) {
            return Err(Reject::Malformed);
        }
        let total = (seq_len as u64 - 1).saturating_mul(c as u64) + last_len.unwrap_or(1) as u64;
        if total > max as u64 {
            return Err(Reject::Limit);
        }
    } else if (seq_len as u64 - 1) + body_len as u64 > max as u64 {
        return Err(Reject::Limit);
    }
    Ok((chunk_len, last_len))
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
            late: 0,
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
    pub fn is_done(&self, key: Key) -> bool {
        self.done.contains(&key)
    }

    /// Keys stored: partial messages plus remembered completed ones.
    pub fn keys(&self) -> usize {
        self.partials.len() + self.done.len()
    }

    /// Stores one chunk. `nack` is the timer a new partial starts with.
    /// Evicted partials (oldest first, never the one just inserted into) are appended to `evicted`.
    ///
    /// A chunk of a known partial costs one hash lookup and no allocation
    /// (unless it arrives out of order); the done set is consulted only for
    /// a key with no partial.
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
        if info.seq < 0
            || info.seq_len < 1
            || info.seq >= info.seq_len
            || info.seq_end != (info.seq == info.seq_len - 1)
        {
            return Insert::Rejected(Reject::Malformed);
        }
        let (seq, seq_len) = (info.seq as u32, info.seq_len as u32);
        let last = seq == seq_len - 1;
        if seq_len as usize > max || body.len() > max || (!last && body.is_empty()) {
            return Insert::Rejected(Reject::Limit);
        }
        let cost = body.len() + CHUNK_OVERHEAD;
        let (p, new) = match self.partials.get_mut(&key) {
            Some(p) => {
                if p.late {
                    return Insert::Late;
                }
                if p.seq_len != seq_len || p.sn != info.sn {
                    return Insert::Rejected(Reject::Malformed);
                }
                if p.has(seq) {
                    return Insert::Duplicate;
                }
                match check_sizes(max, seq_len, last, body.len(), (p.chunk_len, p.last_len)) {
                    Ok((c, l)) => (p.chunk_len, p.last_len) = (c, l),
                    Err(r) => return Insert::Rejected(r),
                }
                (p, false)
            }
            None => {
                if self.done.contains(&key) {
                    return Insert::Late;
                }
                let (chunk_len, last_len) = match check_sizes(max, seq_len, last, body.len(), (None, None)) {
                    Ok(sizes) => sizes,
                    Err(r) => return Insert::Rejected(r),
                };
                // The sender's strings are stored with the partial: charged too.
                let overhead = PARTIAL_OVERHEAD + info.sender.host.len() + info.sender.hostname.len();
                if overhead + cost > self.limits.max_reassembly_bytes || self.limits.max_partial_messages == 0 {
                    return Insert::Rejected(Reject::Limit);
                }
                let serial = self.next_serial;
                self.next_serial += 1;
                self.order.insert(serial, key);
                self.bytes += overhead;
                let deadline = nack.due.unwrap_or(now);
                self.timers.insert((deadline, serial));
                let p = self.partials.entry(key).insert_entry(Partial {
                    serial,
                    touched: serial,
                    seq_len,
                    chunk_len,
                    last_len,
                    prefix: Vec::new(),
                    prefix_count: 0,
                    chunks: BTreeMap::new(),
                    highest: 0,
                    bytes: overhead,
                    sn: info.sn,
                    sender: info.sender.to_sender(),
                    last_progress: now,
                    nack,
                    heard: Heard::default(),
                    asked: HashSet::new(),
                    deadline,
                    late: false,
                    received: 0,
                    requested: 0,
                    protected: false,
                });
                (p.into_mut(), true)
            }
        };
        p.store(seq, body);
        p.received = p.received.saturating_add(info.wire_len);
        p.protected |= info.protected;
        p.highest = p.highest.max(seq);
        p.bytes += cost;
        p.last_progress = now;
        let repaired = !p.asked.is_empty() && p.asked.remove(&seq);
        self.bytes += cost;
        if !new {
            self.lru.remove(&p.touched);
        }
        p.touched = self.next_serial;
        self.next_serial += 1;
        self.lru.insert(p.touched, p.serial);
        let keep = p.serial;
        if p.count() == seq_len as usize {
            let p = self.remove(&key).expect("present");
            let mut data = p.prefix;
            for c in p.chunks.values() {
                data.extend_from_slice(c);
            }
            self.mark_done(key);
            return Insert::Complete { data, repaired };
        }
        // Enforce limits by evicting the oldest other partials.
        while self.partials.len() > self.limits.max_partial_messages || self.bytes > self.limits.max_reassembly_bytes {
            // Least recently touched first, unprotected senders' before all.
            let partials = &self.partials;
            let unprotected = |k: &&Key| partials.get(*k).is_some_and(|p| !p.protected);
            let others = || self.lru.values().filter(|s| **s != keep).filter_map(|s| self.order.get(s));
            let victim = others().find(unprotected).or_else(|| others().next()).copied();
            let Some(vkey) = victim else { break };
            if let Some(v) = self.remove(&vkey) {
                evicted.push(Evicted { sender: v.sender.id, sn: v.sn });
                self.mark_done(vkey);
            }
        }
        if self.bytes > self.limits.max_reassembly_bytes {
            // Only this partial is left and it alone is too big.
            if let Some(v) = self.remove(&key) {
                evicted.push(Evicted { sender: v.sender.id, sn: v.sn });
                self.mark_done(key);
            }
            return Insert::Rejected(Reject::Limit);
        }
        Insert::Progress { repaired, new }
    }

    /// After [`Insert::Progress`]: restarts the request timer of `key`
    /// (`delay`: progress on a partial that existed before; `None` for a new
    /// one, whose timer is fresh) and registers its next deadline, at most
    /// `ttl` from `now`.
    pub fn progressed(&mut self, key: Key, now: Instant, delay: Option<Duration>, ttl: Duration) {
        if let Some(p) = self.partials.get_mut(&key) {
            if let Some(delay) = delay {
                p.nack.progress(now, delay);
            }
            let deadline = p.nack.due.map_or(now + ttl, |d| d.min(now + ttl));
            self.timers.remove(&(p.deadline, p.serial));
            p.deadline = deadline;
            self.timers.insert((deadline, p.serial));
        }
    }

    /// Removes a partial.
    fn remove(&mut self, key: &Key) -> Option<Partial> {
        let p = self.partials.remove(key)?;
        self.order.remove(&p.serial).expect("every partial has an order entry");
        self.lru.remove(&p.touched);
        self.timers.remove(&(p.deadline, p.serial));
        self.bytes -= p.bytes;
        if p.late {
            self.late -= 1;
        }
        Some(p)
    }

    /// Forgets a partial (completed elsewhere, expired); remembers its key as done.
    pub fn finish(&mut self, key: &Key) -> Option<Partial> {
        let p = self.remove(key)?;
        self.mark_done(*key);
        Some(p)
    }

    /// Records a single-datagram message as delivered; false if it already was.
    pub fn mark_single_done(&mut self, key: Key) -> bool {
        if self.done.contains(&key) {
            return false;
        }
        if self.mark_done(key) {
            if let Some(p) = self.partials.get_mut(&key) {
                // A chunk group with the same key is in progress: its chunks are late from now on.
                p.late = true;
                self.late += 1;
            }
        }
        true
    }

    /// Remembers `key` as done; false if it is not remembered (already was, or nothing is).
    fn mark_done(&mut self, key: Key) -> bool {
        if self.limits.max_completed_ids == 0 || self.done.contains(&key) {
            return false;
        }
        self.done.insert(key);
        self.done_order.push_back(key);
        while self.done_order.len() > self.limits.max_completed_ids {
            if let Some(old) = self.done_order.pop_front() {
                self.done.remove(&old);
                if self.late > 0 {
                    if let Some(p) = self.partials.get_mut(&old).filter(|p| p.late) {
                        p.late = false;
                        self.late -= 1;
                    }
                }
            }
        }
        true
    }

    /// Mutable access to a partial. Call [`Reassembly::reschedule`] after changing its timer.
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Partial> {
        self.partials.get_mut(key)
    }

    /// The key of a partial with chunk group `seq_id`, whoever sends it
    /// (0.1.x requests do not name the sender).
    pub fn find_group(&self, seq_id: &str) -> Option<Key> {
        let group = parse_hex(seq_id)?;
        self.partials.keys().find(|k| k.group == group).copied()
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
        self.timers.iter().take_while(|(t, _)| *t <= now).filter_map(|(_, s)| self.order.get(s).copied()).collect()
    }
}

#[cfg(test)]
mod tests;
