//! What a node tells its application: [`Notification`]s, handed out through
//! [`Events`] subscriptions (or [`PatternEvents`], the events of matching
//! names only) and an optional [`NotificationSink`], and the fan-out that
//! delivers them (bounded queues; drops counted and logged).

use crate::exchange::{Reply, Request};
use crate::pattern::Pattern;
use crate::protocol::{Event, PeerDownReason, PeerInfo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

/// Capacity of each subscriber's queue. When a subscriber falls this far
/// behind, further notifications for it are dropped, counted in
/// [`Stats::notifications_dropped`](crate::protocol::Stats::notifications_dropped) and logged with `tracing::warn!`.
pub const SUBSCRIBER_CAPACITY: usize = 65_536;

/// What subscribers receive.
#[derive(Clone, Debug)]
pub enum Notification {
    /// An event from another node.
    Event(Event),
    /// A problem worth telling the application about: a datagram with another
    /// protocol version (`EPRVERSION`), a send or receive failure (`ESOCKET`, ...).
    Error {
        /// Stable error code (see [`Error::code`](crate::Error::code)).
        code: &'static str,
        /// Human-readable description.
        message: String,
    },
    /// Messages of `sender` that were lost beyond repair.
    Gap {
        /// Sender instance id.
        sender: String,
        /// How many messages were lost.
        count: u64,
    },
    /// The send queue, full when an emit was refused ([`Error::Backpressure`](crate::Error::Backpressure)),
    /// is down to half its bound: emitting works again.
    Drain,
    /// A peer appeared: its first beacon arrived (or, for a 0.1.x sender, its
    /// first event). See [`Eventcast::peers`](crate::Eventcast::peers).
    PeerUp(PeerInfo),
    /// A peer left: it said goodbye, was not heard from for `presence.timeout`,
    /// or was evicted for room in the peer table.
    PeerDown {
        /// The peer as last known.
        peer: PeerInfo,
        /// Why it is gone.
        reason: PeerDownReason,
    },
    /// A known peer changed its `name` or `meta` (or a 0.1.x-looking sender
    /// turned out to beacon): its new entry.
    PeerUpdate(PeerInfo),
    /// A request for a handler registered with
    /// [`Eventcast::handle_with_notifications`](crate::Eventcast::handle_with_notifications):
    /// answer it with [`Eventcast::reply`](crate::Eventcast::reply) within its timeout.
    Request(Box<Request>),
    /// A reply to a request sent with
    /// [`Eventcast::send_request`](crate::Eventcast::send_request).
    Reply(Box<Reply>),
}

/// A subscription: every subscriber gets every notification, in order.
///
/// Bounded ([`SUBSCRIBER_CAPACITY`]); a subscriber that does not keep up loses
/// notifications, which is counted and logged, never silent. The stream ends
/// (`recv` returns `None`) when the node is dropped; `stop()` does not end it,
/// so a subscription survives a stop/start cycle.
pub struct Events {
    rx: mpsc::Receiver<Notification>,
}

impl Events {
    /// Next notification; `None` once the node is gone.
    pub async fn recv(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }

    /// Waits for at least one notification, then moves up to `limit` into
    /// `buf`. Returns how many were added (0 only when the node is gone or `limit` is 0).
    pub async fn recv_many(&mut self, buf: &mut Vec<Notification>, limit: usize) -> usize {
        self.rx.recv_many(buf, limit).await
    }

    /// A notification if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<Notification> {
        self.rx.try_recv().ok()
    }

    /// Blocking receive for threads outside any async runtime (panics if
    /// called from inside one, like tokio's `blocking_recv`).
    pub fn blocking_recv(&mut self) -> Option<Notification> {
        self.rx.blocking_recv()
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("queued", &self.rx.len()).finish()
    }
}

/// A subscription to the events whose names match a [`Pattern`]
/// ([`Eventcast::subscribe_pattern`](crate::Eventcast::subscribe_pattern)):
/// it yields those events only, in order, without the other notifications
/// (errors, gaps, drain, presence). Filtered where notifications are fanned
/// out, so the rest never takes room in its queue; otherwise as [`Events`]:
/// bounded by [`SUBSCRIBER_CAPACITY`], losses counted and logged, ended when
/// the node is dropped, alive across stop/start.
pub struct PatternEvents {
    rx: mpsc::Receiver<Notification>,
    pattern: Arc<Pattern>,
}

impl PatternEvents {
    /// Next matching event; `None` once the node is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            if let Notification::Event(e) = self.rx.recv().await? {
                return Some(e);
            }
        }
    }

    /// A matching event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        while let Ok(n) = self.rx.try_recv() {
            if let Notification::Event(e) = n {
                return Some(e);
            }
        }
        None
    }

    /// Blocking receive for threads outside any async runtime (panics if
    /// called from inside one, like tokio's `blocking_recv`).
    pub fn blocking_recv(&mut self) -> Option<Event> {
        loop {
            if let Notification::Event(e) = self.rx.blocking_recv()? {
                return Some(e);
            }
        }
    }

    /// The pattern this subscription takes.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }
}

impl std::fmt::Debug for PatternEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternEvents")
            .field("pattern", &self.pattern.as_str())
            .field("queued", &self.rx.len())
            .finish()
    }
}

/// One subscription's end of the fan-out: its queue, and for a pattern
/// subscription the names it takes.
struct Subscriber {
    tx: mpsc::Sender<Notification>,
    only: Option<Arc<Pattern>>,
}

impl Subscriber {
    /// Whether this subscriber takes `note`: everything, or a matching event.
    fn wants(&self, note: &Notification) -> bool {
        match (&self.only, note) {
            (None, _) => true,
            (Some(p), Notification::Event(e)) => p.matches(&e.name),
            (Some(_), _) => false,
        }
    }
}

/// A synchronous consumer of notifications, for code that runs its own event
/// loop (the Node binding hands them straight to the JS thread). Unlike an
/// [`Events`] subscription there is no queue and no task in between: `deliver`
/// runs on whichever thread produced the notifications — the receive task as a
/// burst of datagrams is processed, the timer task, or a thread inside
/// [`Eventcast::emit`](super::Eventcast::emit) / [`Eventcast::stop`](super::Eventcast::stop) — so it must be quick and must
/// not call back into the node. (What [`Eventcast::receive`](super::Eventcast::receive)
/// reads goes back to its caller, not to the sink.)
pub trait NotificationSink: Send + Sync {
    /// Takes the notifications out of `batch` (in order; `batch` may be left
    /// non-empty, it is cleared afterwards). Returns how many it had to drop
    /// (its own queue full); they are added to [`Stats::notifications_dropped`](crate::protocol::Stats::notifications_dropped)
    /// and logged like a lagging subscription's.
    fn deliver(&self, batch: &mut Vec<Notification>) -> u64;
}

/// Delivery of notifications to the subscriptions and the sink: bounded,
/// with what finds no room counted and logged. Two locks, each held only
/// while handing over one batch: the subscriber list (`subscribe` adds to it
/// from any thread) and the sink (replaced by `set_sink`).
pub(crate) struct Fanout {
    subscribers: Mutex<Vec<Subscriber>>,
    sink: Mutex<Option<Arc<dyn NotificationSink>>>,
    dropped: AtomicU64,
    /// Time base of `last_warning_ms`.
    epoch: Instant,
    /// When the last "notifications dropped" warning was logged (0 = never).
    last_warning_ms: AtomicU64,
}

impl Fanout {
    pub(crate) fn new() -> Self {
        Fanout {
            subscribers: Mutex::new(Vec::new()),
            sink: Mutex::new(None),
            dropped: AtomicU64::new(0),
            epoch: Instant::now(),
            last_warning_ms: AtomicU64::new(0),
        }
    }

    /// A new subscription, receiving every notification from now on.
    pub(crate) fn subscribe(&self) -> Events {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_CAPACITY);
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(Subscriber { tx, only: None });
        Events { rx }
    }

    /// A new subscription, receiving the events matching `pattern` from now on.
    pub(crate) fn subscribe_pattern(&self, pattern: Pattern) -> PatternEvents {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_CAPACITY);
        let pattern = Arc::new(pattern);
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(Subscriber { tx, only: Some(pattern.clone()) });
        PatternEvents { rx, pattern }
    }

    /// Installs (or with `None` removes) the sink; returns the previous one.
    pub(crate) fn set_sink(&self, sink: Option<Arc<dyn NotificationSink>>) -> Option<Arc<dyn NotificationSink>> {
        std::mem::replace(&mut *self.sink.lock().unwrap_or_else(|p| p.into_inner()), sink)
    }

    /// Notifications nobody had room for, so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Hands notifications to every subscriber and to the sink (the sink, or
    /// else the last subscriber, gets the originals; the others get clones).
    pub(crate) fn deliver(&self, notes: &mut Vec<Notification>) {
        if notes.is_empty() {
            return;
        }
        let sink = self.sink.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut dropped = self.to_subscribers(notes, sink.is_some());
        if let Some(sink) = sink {
            if !notes.is_empty() {
                dropped += sink.deliver(notes);
            }
        }
        notes.clear();
        self.count_dropped(dropped);
    }

    /// Hands copies of `notes` to every subscriber, leaving `notes` to the
    /// caller (polled receive: the caller gets them instead of the sink).
    pub(crate) fn deliver_copies(&self, notes: &mut Vec<Notification>) {
        if !notes.is_empty() {
            let dropped = self.to_subscribers(notes, true);
            self.count_dropped(dropped);
        }
    }

    /// Sends `notes` to every subscriber: clones to all of them when `keep`,
    /// else clones to all but the last, which gets the originals (`notes` is
    /// then left empty). Returns how many found a subscriber's queue full.
    fn to_subscribers(&self, notes: &mut Vec<Notification>, keep: bool) -> u64 {
        let mut dropped = 0u64;
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| !s.tx.is_closed());
        let (cloned, last) = match subs.split_last() {
            Some((last, others)) if !keep => (others, Some(last)),
            _ => (&subs[..], None),
        };
        for note in notes.iter() {
            for s in cloned {
                if !s.wants(note) {
                    continue;
                }
                if let Err(mpsc::error::TrySendError::Full(_)) = s.tx.try_send(note.clone()) {
                    dropped += 1;
                }
            }
        }
        if let Some(last) = last {
            for note in notes.drain(..) {
                if !last.wants(&note) {
                    continue;
                }
                if let Err(mpsc::error::TrySendError::Full(_)) = last.tx.try_send(note) {
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// Counts notifications nobody had room for and warns, at most once a
    /// second (a stuck subscriber would otherwise log every burst).
    pub(crate) fn count_dropped(&self, dropped: u64) {
        if dropped == 0 {
            return;
        }
        let total = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if last == 0 || now_ms >= last + 1000 {
            self.last_warning_ms.store(now_ms.max(1), Ordering::Relaxed);
            tracing::warn!(
                "eventcast: notifications dropped for want of room (a subscriber {SUBSCRIBER_CAPACITY} behind, a full sink or receive() caller); so far: {total}"
            );
        }
    }
}
