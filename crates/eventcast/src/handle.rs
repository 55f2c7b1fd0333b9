//! The public handle: [`Eventcast`] (construction, accessors, subscriptions,
//! counters, test hooks) and its lifecycle [`Status`]. Starting and stopping
//! live in `lifecycle`, emitting in `emit`, receiving in `receive`.

use super::events::Fanout;
use super::send::SendQueue;
use super::socket;
use super::state::{Core, Shared};
use super::status::{Status, StopAfterFault};
#[cfg(feature = "testing")]
use super::supervise::DriverTask;
use super::{Events, InterfaceInUse, Notification, NotificationSink, Options, Pattern, PatternEvents};
use crate::error::Error;
use crate::protocol::Endpoint;
use crate::protocol::{Config, Stats};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A network EventEmitter node. Cheap to clone (an `Arc` inside); `Send + Sync`.
/// Dropping the last clone stops the driver tasks and closes the socket.
#[derive(Clone)]
pub struct Eventcast {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Eventcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eventcast")
            .field("id", &self.inner.id)
            .field("status", &self.status())
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

pub(super) struct Inner {
    pub(super) id: String,
    pub(super) options: Options,
    /// Engine configuration, built by the first `start()` (key derivation is
    /// slow); [`Eventcast::set_meta`] updates its advertised `meta`.
    pub(super) config: Mutex<Option<Config>>,
    /// The `meta` set by [`Eventcast::set_meta`] before the first start.
    pub(super) meta: Mutex<Option<bson::Document>>,
    pub(super) shared: Arc<Shared>,
    pub(super) control: tokio::sync::Mutex<Control>,
}

#[derive(Default)]
pub(super) struct Control {
    pub(super) tasks: Vec<JoinHandle<()>>,
}

impl StopAfterFault for Inner {
    fn stop_after_fault(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let node = Eventcast { inner: self };
        Box::pin(async move {
            if let Err(e) = node.stop().await {
                tracing::warn!("eventcast: stopping after a fault: {e}");
            }
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.guard_stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        for task in self.control.get_mut().tasks.drain(..) {
            task.abort();
        }
    }
}

impl Eventcast {
    /// A stopped node. Validates `options` ([`Error::InvalidOption`]) and makes
    /// a random 16-hex-char instance id. Does not touch the network, and is
    /// fast: the encryption key is derived by the first [`start`](Self::start).
    pub fn new(options: Options) -> Result<Self, Error> {
        options.validate()?;
        let id = crate::wire::ids::instance_id(&mut rand::thread_rng());
        let send = SendQueue::new(options.send_queue_bytes);
        Ok(Eventcast {
            inner: Arc::new_cyclic(|owner| Inner {
                id,
                options,
                config: Mutex::new(None),
                meta: Mutex::new(None),
                shared: Arc::new(Shared {
                    core: Mutex::new(Core {
                        endpoint: None,
                        endpoint_port: 0,
                        io: None,
                        send,
                        deadline: None,
                        notes: Vec::new(),
                        exchange: Default::default(),
                    }),
                    fanout: Arc::new(Fanout::new()),
                    polled: Mutex::new(None),
                    last_receive_us: AtomicU64::new(0),
                    status: Arc::default(),
                    owner: owner.clone() as Weak<dyn StopAfterFault>,
                    faulted: Default::default(),
                    runtime: Mutex::new(None),
                    guard_stop: Mutex::new(None),
                    inject_fault: AtomicU8::new(0),
                    wake: Notify::new(),
                    counters: Arc::default(),
                    epoch: Instant::now(),
                }),
                control: tokio::sync::Mutex::new(Control::default()),
            }),
        })
    }

    /// This node's instance id (16 lower-case hex chars), written into every datagram.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The options the node was built with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Lifecycle state.
    pub fn status(&self) -> Status {
        self.inner.shared.status.get()
    }

    pub(super) fn set_status(&self, s: Status) {
        self.inner.shared.status.set(s);
    }

    /// A new subscription; it receives every notification from now on.
    pub fn subscribe(&self) -> Events {
        self.inner.shared.fanout.subscribe()
    }

    /// A new subscription to the events whose names match `pattern` (NATS
    /// wildcards on `.`-separated names: `*` one token, `>` one or more
    /// trailing tokens; see [`Pattern`](crate::Pattern)), from now on. It
    /// yields those events only: errors, gaps and presence stay on
    /// [`subscribe`](Self::subscribe)'s stream. Like every subscription it
    /// never sees this node's own emits. An invalid pattern is
    /// [`Error::Pattern`] (`EPATTERN`).
    ///
    /// ```no_run
    /// # async fn demo(node: eventcast::Eventcast) -> Result<(), eventcast::Error> {
    /// let mut orders = node.subscribe_pattern("orders.*.created")?;
    /// while let Some(e) = orders.recv().await {
    ///     println!("{} {:?}", e.name, e.args); // orders.eu.created, orders.us.created, ...
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe_pattern(&self, pattern: &str) -> Result<PatternEvents, Error> {
        Ok(self.inner.shared.fanout.subscribe_pattern(Pattern::parse(pattern)?))
    }

    /// Installs (or, with `None`, removes) the node's [`NotificationSink`],
    /// which from now on receives every notification synchronously, besides
    /// the [`Events`] subscriptions. Returns the previous sink. Removing it
    /// drops the node's reference once no delivery is using it.
    pub fn set_sink(&self, sink: Option<Arc<dyn NotificationSink>>) -> Option<Arc<dyn NotificationSink>> {
        self.inner.shared.fanout.set_sink(sink)
    }

    /// The peers this node knows (presence): every node that sent a beacon
    /// within `presence.timeout`, and 0.1.x senders heard from as long (by
    /// their events; marked `legacy`). Sorted by id. Empty while stopped or
    /// with presence off. Changes come as [`Notification::PeerUp`],
    /// [`Notification::PeerDown`] and [`Notification::PeerUpdate`].
    pub fn peers(&self) -> Vec<crate::protocol::PeerInfo> {
        self.inner.shared.core().endpoint.as_ref().map(Endpoint::peers).unwrap_or_default()
    }

    /// Changes the application object this node advertises (`meta`): peers
    /// get a [`Notification::PeerUpdate`] within one interval (at once when
    /// started). [`Error::InvalidOption`] (`EINVALIDOPTION`) when it encodes
    /// to more than 1 KiB or presence is off.
    pub fn set_meta(&self, meta: bson::Document) -> Result<(), Error> {
        Endpoint::check_advertised_meta(&meta)?;
        if self.inner.options.presence.is_none() {
            return Err(Error::InvalidOption { option: "meta", reason: "presence is off (presence: false)".into() });
        }
        *self.inner.meta.lock().unwrap_or_else(|p| p.into_inner()) = Some(meta.clone());
        if let Some(config) = self.inner.config.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            if let Some(p) = config.presence.as_mut() {
                p.advertised.meta = meta.clone();
            }
        }
        let shared = &self.inner.shared;
        let mut core = shared.core();
        if let Some(ep) = core.endpoint.as_mut() {
            ep.set_meta(Instant::now(), meta)?;
            if core.pump(shared, crate::send::Lane::Urgent) {
                shared.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Protocol counters plus the node's own (`notifications_dropped`,
    /// `send_errors`, the send queue's).
    pub fn stats(&self) -> Stats {
        let shared = &self.inner.shared;
        let mut stats = {
            let core = shared.core();
            let mut stats = core.endpoint.as_ref().map(|e| e.stats().clone()).unwrap_or_default();
            stats.send_queue_bytes = core.send.bytes() as u64;
            stats.send_queue_full = core.send.counters.full;
            stats.send_queue_repairs_dropped = core.send.counters.repairs_dropped;
            let x = core.exchange.counters;
            stats.requests_unhandled = x.requests_unhandled;
            stats.requests_refused = x.requests_refused;
            stats.replies_unmatched = x.replies_unmatched;
            stats.replies_late = x.replies_late;
            stats
        };
        let own = shared.counters.own_skipped.load(Ordering::Relaxed);
        stats.datagrams_received += own;
        stats.own_datagrams_ignored += own;
        stats.notifications_dropped = shared.fanout.dropped();
        stats.send_errors = shared.counters.send_errors.load(Ordering::Relaxed);
        let nats = &shared.counters.nats;
        stats.nats_connects = nats.connects.load(Ordering::Relaxed);
        stats.nats_disconnects = nats.disconnects.load(Ordering::Relaxed);
        stats.nats_slow_consumer = nats.slow_consumer.load(Ordering::Relaxed);
        stats.nats_server_errors = nats.server_errors.load(Ordering::Relaxed);
        stats.nats_oversize_dropped = nats.oversize_dropped.load(Ordering::Relaxed);
        stats.nats_bundles_sent = nats.bundles_sent.load(Ordering::Relaxed);
        stats.nats_bundles_received = nats.bundles_received.load(Ordering::Relaxed);
        stats.nats_bundles_malformed = nats.bundles_malformed.load(Ordering::Relaxed);
        stats
    }

    /// Reports a failure outside the driver tasks (a panic caught on the
    /// caller's thread): `EINTERNAL` to subscribers and the sink, then the
    /// node stops itself, as for a driver task's panic.
    // The Node addon's receive on the JS thread (`eventcast-node`, `watch.rs`) needs it.
    #[doc(hidden)]
    pub fn report_fault(&self, what: &str) {
        self.inner.shared.fault(what);
    }

    /// Test hook: simulates a slow link. With `Some(rate)`, datagrams leave at
    /// most at `rate` bytes per second (the rest "would block" and queue, as on
    /// a congested interface); `None` lifts it. Cargo feature `testing` only.
    #[cfg(feature = "testing")]
    pub fn throttle_sends(&self, bytes_per_sec: Option<u64>) {
        self.inner.shared.core().send.set_throttle(bytes_per_sec);
        self.inner.shared.wake.notify_one();
    }

    /// Test hook: makes `task` panic the next time it runs (the receive task
    /// at its next datagram, the timer task at once, the stall guard at its
    /// next tick, the send flush at its next retry, holding the state lock).
    /// The node must then report `EINTERNAL` and stop. Cargo feature `testing` only.
    #[cfg(feature = "testing")]
    pub fn inject_fault(&self, task: DriverTask) {
        self.inner.shared.inject_fault.store(task as u8, Ordering::Relaxed);
        self.inner.shared.wake.notify_one();
    }

    /// The receive socket's file descriptor while started, for an event loop
    /// to watch (see [`start_polled`](Self::start_polled)). Valid until `stop()`.
    #[cfg(unix)]
    pub fn receive_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.inner.shared.core().io.as_ref().and_then(|io| io.udp.as_ref()).map(|udp| udp.socket.as_raw_fd())
    }

    /// The bound socket address while started (multicast; `None` over NATS).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.shared.core().io.as_ref().and_then(|io| io.udp.as_ref()).map(|udp| udp.local)
    }

    /// The `host:port` our datagrams carry in their meta (where 0.1.x peers
    /// send repair requests); JS `getAddress()` returns it. IPv6 for an IPv6
    /// group. See `socket::advertised_addr`.
    pub fn advertised_addr(&self) -> SocketAddr {
        let core = self.inner.shared.core();
        socket::advertised_addr(&self.inner.options, core.endpoint.as_ref().map(Endpoint::identity))
    }

    /// The interface the group was joined on and datagrams leave through,
    /// as resolved at start (name, index, source address) while started
    /// over multicast; `None` when stopped or over NATS. The CLI prints it.
    pub fn interface(&self) -> Option<InterfaceInUse> {
        self.inner.shared.core().io.as_ref().and_then(|io| io.udp.as_ref()).map(|udp| udp.interface.clone())
    }
}

impl Eventcast {
    /// With [`start_polled`](Self::start_polled): reads the datagrams waiting
    /// in the socket (one burst of at most 512, without blocking) on the calling
    /// thread, processes them, and appends the resulting notifications, in
    /// order, to `out`: they are the caller's to hand on (the
    /// [`NotificationSink`](super::NotificationSink) does not see them; the
    /// [`Events`](super::Events) subscriptions get copies). Returns how many
    /// datagrams were read; call again while the socket stays readable. Does
    /// nothing (returns 0) when stopped or started with [`start`](Self::start).
    ///
    /// Order with the stall guard: it delivers to the sink only bursts read
    /// after this one, and leaves the socket alone for [`POLL_STALL`](crate::POLL_STALL) after
    /// `receive` returns; a caller that queues `out` within that time keeps
    /// every notification in order. A caller with no room for some of them
    /// reports them with [`report_dropped`](Self::report_dropped).
    pub fn receive(&self, out: &mut Vec<Notification>) -> usize {
        let shared = &*self.inner.shared;
        shared.mark_receive();
        let read = shared.receive_burst(|notes| {
            shared.deliver_copies(notes);
            out.append(notes);
        });
        // The burst may have taken a while: the guard's wait starts now.
        shared.mark_receive();
        read
    }

    /// Counts `count` notifications that the caller of
    /// [`receive`](Self::receive) had no room for, in
    /// [`Stats::notifications_dropped`](crate::protocol::Stats::notifications_dropped),
    /// and logs them like a lagging subscription's: nothing is dropped silently.
    pub fn report_dropped(&self, count: u64) {
        self.inner.shared.count_dropped(count);
    }
}
