//! The send path: datagrams leave with a non-blocking `sendto` from whichever
//! thread produced them; what meets a full socket buffer waits in a
//! [`SendQueue`], bounded in bytes, which the timer task flushes.
//!
//! Two lanes, so a slow link cannot starve what matters most:
//!
//! * **urgent** — our new events, repair requests and heartbeats. An emit is
//!   refused ([`crate::Error::Backpressure`], `EBACKPRESSURE`) while the queue
//!   holds [`Options::send_queue_bytes`](super::Options::send_queue_bytes) or
//!   more; an accepted emit is queued whole (it may overshoot the bound by one
//!   message: a message larger than the bound can still be sent).
//! * **repairs** — resends answering peers' requests. Flushed only when the
//!   urgent lane is empty; a repair that does not fit the bound is dropped and
//!   counted ([`Stats::send_queue_repairs_dropped`](crate::protocol::Stats)), and
//!   queued repairs are dropped (newest first, counted) to make room for urgent
//!   datagrams. Dropped repairs stay in retention: peers ask again.
//!
//! After an emit was refused, [`Notification::Drain`] is delivered once the
//! queue is down to half the bound.

use super::Notification;
use crate::error::Error;
use crate::protocol::SharedBytes;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// Default bound of the send queue: the send socket's own buffer size, so at
/// most twice that waits for a slow link.
pub const DEFAULT_SEND_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Which lane a datagram belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// New events, repair requests, heartbeats (from `emit` and the timers).
    Urgent,
    /// Resends answering a peer's request (from received datagrams).
    Repair,
}

/// Counters the queue keeps (read by `Eventcast::stats`).
#[derive(Default)]
pub(crate) struct SendCounters {
    /// Emits refused because the queue was full.
    pub full: u64,
    /// Repair resends dropped (not queued, or evicted for urgent datagrams).
    pub repairs_dropped: u64,
}

/// Queued datagrams that met a full socket buffer; see the module docs.
pub(crate) struct SendQueue {
    urgent: VecDeque<(SocketAddr, SharedBytes)>,
    repairs: VecDeque<(SocketAddr, SharedBytes)>,
    bytes: usize,
    limit: usize,
    /// An emit was refused since the last `Drain`.
    refused: bool,
    pub counters: SendCounters,
    /// Test hook: a simulated slow link (see `Eventcast::throttle_sends`).
    throttle: Option<Throttle>,
}

impl SendQueue {
    pub fn new(limit: usize) -> Self {
        SendQueue {
            urgent: VecDeque::new(),
            repairs: VecDeque::new(),
            bytes: 0,
            limit,
            refused: false,
            counters: SendCounters::default(),
            throttle: None,
        }
    }

    /// Bytes queued now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.repairs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.urgent.len() + self.repairs.len()
    }

    /// Forgets everything queued (a new start).
    pub fn clear(&mut self) {
        self.urgent.clear();
        self.repairs.clear();
        self.bytes = 0;
        self.refused = false;
    }

    /// Whether a new emit may be accepted; counts and remembers a refusal.
    pub fn admit(&mut self) -> Result<(), Error> {
        if self.bytes < self.limit {
            return Ok(());
        }
        self.counters.full += 1;
        self.refused = true;
        Err(Error::Backpressure { queued: self.bytes, limit: self.limit })
    }

    #[cfg(any(test, feature = "testing"))]
    pub fn set_throttle(&mut self, bytes_per_sec: Option<u64>) {
        self.throttle = bytes_per_sec.map(Throttle::new);
    }

    /// Sends `payload` now, or queues it (see the module docs). Returns true
    /// when something was queued (the timer task must flush).
    pub fn send_or_queue(
        &mut self,
        socket: &mut impl FnMut(&[u8], SocketAddr) -> io::Result<()>,
        dest: SocketAddr,
        payload: SharedBytes,
        lane: Lane,
        errors: &mut Vec<(SocketAddr, io::Error)>,
    ) -> bool {
        let ahead_empty = match lane {
            Lane::Urgent => self.urgent.is_empty(),
            Lane::Repair => self.is_empty(),
        };
        if ahead_empty {
            match self.try_send(socket, dest, &payload) {
                Ok(()) => return false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    errors.push((dest, e));
                    return false;
                }
            }
        }
        let len = payload.len();
        match lane {
            Lane::Urgent => {
                self.urgent.push_back((dest, payload));
                self.bytes += len;
                // New data goes first, in memory too: evict queued repairs beyond the bound.
                while self.bytes > self.limit {
                    let Some((_, r)) = self.repairs.pop_back() else { break };
                    self.bytes -= r.len();
                    self.counters.repairs_dropped += 1;
                }
            }
            Lane::Repair => {
                if self.bytes + len > self.limit {
                    self.counters.repairs_dropped += 1;
                    return false;
                }
                self.repairs.push_back((dest, payload));
                self.bytes += len;
            }
        }
        true
    }

    /// Sends what is queued, urgent lane first, until the socket would block.
    /// Returns true when a `Drain` is due (an emit was refused and the queue is
    /// down to half the bound).
    pub fn flush(
        &mut self,
        socket: &mut impl FnMut(&[u8], SocketAddr) -> io::Result<()>,
        errors: &mut Vec<(SocketAddr, io::Error)>,
    ) -> bool {
        'lanes: for lane in [Lane::Urgent, Lane::Repair] {
            loop {
                let queue = match lane {
                    Lane::Urgent => &self.urgent,
                    Lane::Repair => &self.repairs,
                };
                let Some((dest, payload)) = queue.front() else { break };
                let (dest, payload) = (*dest, payload.clone());
                let result = self.try_send(socket, dest, &payload);
                match result {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'lanes,
                    Err(e) => errors.push((dest, e)),
                    Ok(()) => {}
                }
                match lane {
                    Lane::Urgent => self.urgent.pop_front(),
                    Lane::Repair => self.repairs.pop_front(),
                };
                self.bytes -= payload.len();
            }
        }
        if self.refused && self.bytes <= self.limit / 2 {
            self.refused = false;
            return true;
        }
        false
    }

    fn try_send(
        &mut self,
        socket: &mut impl FnMut(&[u8], SocketAddr) -> io::Result<()>,
        dest: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        if let Some(t) = &mut self.throttle {
            if !t.take(payload.len()) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        socket(payload, dest)
    }
}

/// Pushes the `Drain` notification when `flush` said one is due.
pub(crate) fn drain_note(due: bool, notes: &mut Vec<Notification>) {
    if due {
        notes.push(Notification::Drain);
    }
}

/// A token bucket standing in for a slow link (test hook): bytes per second,
/// with a burst of 64 KiB (one maximal datagram always fits eventually).
struct Throttle {
    rate: u64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    const BURST: f64 = 64.0 * 1024.0;

    #[cfg(any(test, feature = "testing"))]
    fn new(rate: u64) -> Self {
        Throttle { rate: rate.max(1), tokens: 0.0, last: Instant::now() }
    }

    fn take(&mut self, len: usize) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(Self::BURST.max(len as f64));
        if self.tokens >= len as f64 {
            self.tokens -= len as f64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> SharedBytes {
        SharedBytes::split(vec![n as u8; n], &[n]).pop().unwrap()
    }

    /// A link that accepts datagrams only while `open`; records what left.
    struct Link {
        open: bool,
        sent: Vec<usize>,
    }

    impl Link {
        fn send(&mut self) -> impl FnMut(&[u8], SocketAddr) -> io::Result<()> + '_ {
            |p, _| {
                if self.open {
                    self.sent.push(p.len());
                    Ok(())
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                }
            }
        }
    }

    const DEST: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9));

    #[test]
    fn emits_are_refused_at_the_bound_and_drain_is_due_at_half() {
        let mut q = SendQueue::new(10_000);
        let mut link = Link { open: false, sent: Vec::new() };
        let mut errors = Vec::new();
        assert!(q.admit().is_ok());
        for _ in 0..10 {
            assert!(q.send_or_queue(&mut link.send(), DEST, bytes(1000), Lane::Urgent, &mut errors));
        }
        assert_eq!(q.bytes(), 10_000);
        assert_eq!(q.admit().unwrap_err().code(), "EBACKPRESSURE");
        assert_eq!(q.counters.full, 1);
        assert!(!q.flush(&mut link.send(), &mut errors), "link still blocked: no drain");
        link.open = true;
        assert!(q.flush(&mut link.send(), &mut errors), "drain once flushed");
        assert_eq!(link.sent.len(), 10);
        assert!(!q.flush(&mut link.send(), &mut errors), "drain only once per refusal");
        assert_eq!(q.bytes(), 0);
        assert!(q.admit().is_ok());
        assert!(errors.is_empty());
    }

    #[test]
    fn repairs_yield_to_urgent_datagrams_and_are_counted_when_dropped() {
        let mut q = SendQueue::new(5_000);
        let mut link = Link { open: false, sent: Vec::new() };
        let mut errors = Vec::new();
        for _ in 0..5 {
            assert!(q.send_or_queue(&mut link.send(), DEST, bytes(1000), Lane::Repair, &mut errors));
        }
        // Full: a further repair is dropped, counted.
        assert!(!q.send_or_queue(&mut link.send(), DEST, bytes(1000), Lane::Repair, &mut errors));
        assert_eq!(q.counters.repairs_dropped, 1);
        // Urgent data evicts queued repairs (newest first) to stay within the bound.
        assert!(q.send_or_queue(&mut link.send(), DEST, bytes(2500), Lane::Urgent, &mut errors));
        assert_eq!(q.bytes(), 4500);
        assert_eq!(q.counters.repairs_dropped, 4);
        // And it leaves first, before the repairs queued earlier.
        link.open = true;
        q.flush(&mut link.send(), &mut errors);
        assert_eq!(link.sent, vec![2500, 1000, 1000]);
        // With nothing queued ahead of it, a new urgent datagram leaves at once.
        assert!(!q.send_or_queue(&mut link.send(), DEST, bytes(7), Lane::Urgent, &mut errors));
        assert_eq!(link.sent.last(), Some(&7));
    }

    #[test]
    fn urgent_datagrams_pass_queued_repairs_on_a_free_socket() {
        let mut q = SendQueue::new(5_000);
        let mut link = Link { open: false, sent: Vec::new() };
        let mut errors = Vec::new();
        assert!(q.send_or_queue(&mut link.send(), DEST, bytes(100), Lane::Repair, &mut errors));
        link.open = true;
        // The socket has room again before the timer flushed: the new event does not wait.
        assert!(!q.send_or_queue(&mut link.send(), DEST, bytes(30), Lane::Urgent, &mut errors));
        assert_eq!(link.sent, vec![30]);
        // A new repair waits behind the queued one.
        assert!(q.send_or_queue(&mut link.send(), DEST, bytes(40), Lane::Repair, &mut errors));
        q.flush(&mut link.send(), &mut errors);
        assert_eq!(link.sent, vec![30, 100, 40]);
    }

    #[test]
    fn the_throttle_hook_lets_a_rate_through() {
        let mut t = Throttle::new(1_000_000);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(t.take(10_000), "20 ms at 1 MB/s is 20 kB");
        assert!(!t.take(60_000), "not 70 kB");
    }
}
