//! Layer 3 — the tokio driver and the public Rust API.
//!
//! [`Eventcast`] owns a transport — a multicast UDP socket (socket2:
//! SO_REUSEADDR + SO_REUSEPORT, so several nodes can share one host and
//! port) by default, or a NATS connection ([`Transport::Nats`], see `nats`;
//! the seam is `transport`) — a [`crate::protocol::Endpoint`], and the tasks
//! that drive it. [`Bridge`] relays a multicast group and a NATS subject.
//!
//! # Example
//!
//! ```no_run
//! use eventcast::{Eventcast, Notification, Options};
//! use bson::Bson;
//!
//! # async fn demo() -> Result<(), eventcast::Error> {
//! let node = Eventcast::new(Options::with_port(9000))?;
//! let mut events = node.subscribe();
//! node.start().await?;
//! node.emit("greeting", &[Bson::String("hello".into()), Bson::Int32(5)])?;
//! while let Some(n) = events.recv().await {
//!     if let Notification::Event(e) = n {
//!         println!("{} from {}: {:?}", e.name, e.sender.id, e.args);
//!     }
//! }
//! node.stop().await?;
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! * All protocol state sits in one `std::sync::Mutex<Endpoint>` with short
//!   critical sections.
//! * [`Eventcast::emit`] runs on the calling thread: it locks, lets the
//!   endpoint build the datagrams and sends them right away with a
//!   non-blocking `sendto`. If the socket buffer is full the rest is queued
//!   and the driver retries it every millisecond. The queue is bounded
//!   ([`Options::send_queue_bytes`]): when full, `emit` fails with
//!   [`Error::Backpressure`] until [`Notification::Drain`]; new data goes
//!   ahead of queued repairs (see `send`). The send
//!   socket is deliberately not registered with the tokio reactor: a
//!   registered socket gets an epoll callback, and the reactor thread a
//!   wake-up, each time the kernel frees a sent datagram — a context switch
//!   per datagram, measured at an eighth of a busy sender's CPU.
//! * Datagrams leave through a send socket of their own (ephemeral port), so
//!   the kernel can drop the multicast loopback copies of our own datagrams
//!   at the receive socket (a socket filter on that source) before we ever
//!   read them; other nodes on this host still get them.
//! * A receive task waits for readability, then drains the socket in a burst
//!   into one reusable arena (no allocation per datagram), feeds the whole
//!   burst to the endpoint under a single lock, sends the resulting repairs
//!   and hands the notifications to the subscribers as a batch.
//! * Or, with [`Eventcast::start_polled`], no receive task: the caller's own
//!   event loop watches the socket and calls [`Eventcast::receive`] (the Node
//!   addon, from the JS thread), with a stall guard thread that reads for a
//!   caller blocked for more than [`POLL_STALL`] (it looks every [`GUARD_TICK`]).
//! * Every task is supervised (see `supervise`): a panic stops the node
//!   with an `EINTERNAL` notification instead of leaving it half alive.
//! * Notifications go to [`Events`] subscriptions and to an optional
//!   synchronous [`NotificationSink`].
//! * A timer task sleeps until [`Endpoint::poll_timeout`], runs
//!   `handle_timeout`, and is woken early (a `Notify`) when an emit or a
//!   datagram moves the deadline earlier or queues a send.
//! * Own events are not delivered to this node's subscribers (0.1.x drops
//!   datagrams carrying its own id; the JS layer emits locally itself).

mod bridge;
mod nats;
mod options;
mod send;
mod socket;
mod supervise;
mod transport;

pub use bridge::{Bridge, BridgeOptions, BridgeStats, BRIDGE_SEEN_CAPACITY, BRIDGE_WINDOW};
pub use nats::{NATS_MAX_DATAGRAM, NATS_SOURCE, NATS_START_TIMEOUT};
pub use options::{
    EncryptOptions, NatsOptions, NatsTls, OptionBound, Options, Transport, MAX_PAYLOAD_SIZE_LIMIT, NATS_CHUNK_SIZE,
    OPTION_BOUNDS, SEND_QUEUE_BYTES_RANGE,
};
pub use send::DEFAULT_SEND_QUEUE_BYTES;
pub use socket::{advertised_host, hostname, SOCKET_BUFFER_BYTES};
#[doc(hidden)]
pub use supervise::DriverTask;

use send::{Lane, SendQueue};
use transport::Link;

use crate::error::Error;
use crate::protocol::{Config, Destination, Endpoint, Event, Identity, Output, Stats};
use bson::Bson;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// Capacity of each subscriber's queue. When a subscriber falls this far
/// behind, further notifications for it are dropped, counted in
/// [`Stats::notifications_dropped`] and logged with `tracing::warn!`.
pub const SUBSCRIBER_CAPACITY: usize = 65_536;

/// Most datagrams the receive task takes from the socket per burst.
const RECV_BATCH: usize = 512;
/// Receive arena: a burst stops when less than one maximal datagram fits.
const RECV_ARENA: usize = 512 * 1024;
/// Largest UDP datagram we may receive (64 KiB covers IPv4's 65,507).
const MAX_DATAGRAM: usize = 64 * 1024;
/// How long queued datagrams wait before the next attempt when the socket
/// buffer was full (the send socket is not in the reactor; see the module docs).
const SEND_RETRY: Duration = Duration::from_millis(1);
/// How long `stop()` keeps trying to send datagrams still queued.
const STOP_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Lifecycle state of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not bound (initial state, and after `stop()`).
    Stopped,
    /// `start()` is binding and joining.
    Starting,
    /// Bound, joined, receiving.
    Started,
    /// `stop()` is flushing and closing.
    Stopping,
}

impl Status {
    fn from_u8(v: u8) -> Status {
        match v {
            1 => Status::Starting,
            2 => Status::Started,
            3 => Status::Stopping,
            _ => Status::Stopped,
        }
    }
}

/// What subscribers receive.
#[derive(Clone, Debug)]
pub enum Notification {
    /// An event from another node.
    Event(Event),
    /// A problem worth telling the application about: a datagram with another
    /// protocol version (`EPRVERSION`), a send or receive failure (`ESOCKET`, ...).
    Error {
        /// Stable error code (see [`Error::code`]).
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
    /// The send queue, full when an emit was refused ([`Error::Backpressure`]),
    /// is down to half its bound: emitting works again.
    Drain,
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

/// A network EventEmitter node. Cheap to clone (an `Arc` inside); `Send + Sync`.
/// Dropping the last clone stops the driver tasks and closes the socket.
#[derive(Clone)]
pub struct Eventcast {
    inner: Arc<Inner>,
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

struct Inner {
    id: String,
    options: Options,
    /// Engine configuration, built by the first `start()` (key derivation is slow).
    config: Mutex<Option<Config>>,
    status: AtomicU8,
    shared: Arc<Shared>,
    control: tokio::sync::Mutex<Control>,
}

#[derive(Default)]
struct Control {
    tasks: Vec<JoinHandle<()>>,
}

impl Inner {
    fn set_status(&self, s: Status) {
        self.status.store(s as u8, Ordering::Release);
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

/// A synchronous consumer of notifications, for code that runs its own event
/// loop (the Node binding hands them straight to the JS thread). Unlike an
/// [`Events`] subscription there is no queue and no task in between: `deliver`
/// runs on whichever thread produced the notifications — the receive task as a
/// burst of datagrams is processed, the timer task, or a thread inside
/// [`Eventcast::emit`] / [`Eventcast::stop`] — so it must be quick and must
/// not call back into the node.
pub trait NotificationSink: Send + Sync {
    /// Takes the notifications out of `batch` (in order; `batch` may be left
    /// non-empty, it is cleared afterwards). Returns how many it had to drop
    /// (its own queue full); they are added to [`Stats::notifications_dropped`]
    /// and logged like a lagging subscription's.
    fn deliver(&self, batch: &mut Vec<Notification>) -> u64;
}

/// State shared by the handle, the calling threads of `emit` and the driver tasks.
struct Shared {
    core: Mutex<Core>,
    subscribers: Mutex<Vec<mpsc::Sender<Notification>>>,
    sink: Mutex<Option<Arc<dyn NotificationSink>>>,
    /// Buffers of [`Eventcast::receive`] (polled mode), allocated on first use.
    polled: Mutex<Option<Box<Burst>>>,
    /// Polled mode: when `receive()` last ran (µs since `epoch`).
    last_receive_us: AtomicU64,
    /// The node this state belongs to (for a driver task that fails and must stop it).
    owner: Weak<Inner>,
    /// Set by the first driver fault of a started period (see [`supervise`]).
    faulted: std::sync::atomic::AtomicBool,
    /// The runtime the driver tasks run on (a fault noticed on another thread stops the node there).
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    /// Closing it (dropping the sender) ends the stall guard's thread.
    guard_stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    /// Test hook: the driver task that must panic next ([`DriverTask`] as u8; 0 = none).
    inject_fault: AtomicU8,
    /// Wakes the timer task: deadline moved earlier, or sends were queued.
    wake: Notify,
    notifications_dropped: AtomicU64,
    send_errors: AtomicU64,
    /// Own datagrams (multicast loopback) skipped before reaching the endpoint.
    own_skipped: AtomicU64,
    /// The NATS transport's counters (all 0 on multicast).
    nats: nats::NatsCounters,
    /// Time base of `last_drop_warning_ms`.
    epoch: Instant,
    /// When the last "subscriber behind" warning was logged (0 = never).
    last_drop_warning_ms: AtomicU64,
}

struct Core {
    endpoint: Option<Endpoint>,
    /// The port `endpoint`'s identity advertises.
    endpoint_port: u16,
    io: Option<Io>,
    /// Datagrams that met a full socket buffer, bounded; sent by the timer task.
    send: SendQueue,
    /// Last `poll_timeout` seen, to wake the timer task only when it moves earlier.
    deadline: Option<Instant>,
    /// Notifications produced under the lock, delivered after unlocking.
    notes: Vec<Notification>,
}

struct Io {
    /// Where datagrams leave: the send socket (ephemeral port; see
    /// [`socket::Sender`]; std, non-blocking, not in the reactor) or NATS.
    link: Link,
    group: SocketAddr,
    /// Multicast only: the receive side (over NATS the receive task owns the subscription).
    udp: Option<UdpReceive>,
}

/// The multicast receive side.
struct UdpReceive {
    /// Receive socket: bound to the group port, joined, own datagrams filtered
    /// out; non-blocking. The receive task registers a duplicate of it with tokio.
    socket: Arc<std::net::UdpSocket>,
    /// Who recognises our own datagrams on receipt.
    own: OwnDatagrams,
    local: SocketAddr,
}

impl Core {
    /// Sends (or queues, in `lane`) everything the endpoint has to send,
    /// collects its outputs, and tracks its deadline. Returns whether the timer task must wake.
    fn pump(&mut self, shared: &Shared, lane: Lane) -> bool {
        let Core { endpoint, io, send, deadline, notes, .. } = self;
        let Some(ep) = endpoint.as_mut() else { return false };
        let mut wake = false;
        let mut errors = Vec::new();
        while let Some(t) = ep.poll_transmit() {
            // Stopped: nowhere to send (emit is refused before this happens).
            if let Some(io) = io {
                let dest = match t.destination {
                    Destination::Group => io.group,
                    Destination::Unicast(addr) => addr,
                };
                let mut socket = |p: &[u8], d| io.link.send_to(p, d);
                wake |= send.send_or_queue(&mut socket, dest, t.payload, lane, &mut errors);
            }
        }
        for (dest, e) in errors {
            record_send_error(shared, notes, dest, e);
        }
        while let Some(out) = ep.poll_output() {
            notes.push(match out {
                Output::Event(e) => Notification::Event(e),
                Output::VersionMismatch { version, source } => Notification::Error {
                    code: "EPRVERSION",
                    message: format!("datagram from {source} has protocol version {version}, expected 3"),
                },
                Output::Gap { sender, count } => Notification::Gap { sender, count },
            });
        }
        let next = ep.poll_timeout();
        if next != *deadline {
            wake |= match (next, *deadline) {
                (Some(n), Some(old)) => n < old,
                (Some(_), None) => true,
                (None, _) => false,
            };
            *deadline = next;
        }
        wake
    }
}

impl Core {
    /// Sends what the queue holds through `socket` until it would block; errors
    /// and a due `Drain` become notifications. Returns how many datagrams are left.
    fn flush(&mut self, shared: &Shared, link: &Link) -> usize {
        let Core { send, notes, .. } = self;
        let mut errors = Vec::new();
        let drain = send.flush(&mut |p, d| link.send_to(p, d), &mut errors);
        for (dest, e) in errors {
            record_send_error(shared, notes, dest, e);
        }
        send::drain_note(drain, notes);
        send.len()
    }
}

fn record_send_error(shared: &Shared, notes: &mut Vec<Notification>, dest: SocketAddr, e: io::Error) {
    shared.send_errors.fetch_add(1, Ordering::Relaxed);
    tracing::warn!("eventcast: sending to {dest} failed: {e}");
    let err = Error::Io(e);
    notes.push(Notification::Error { code: err.code(), message: format!("sending to {dest}: {err}") });
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, Core> {
        match self.core.lock() {
            Ok(core) => core,
            Err(poisoned) => {
                // A thread panicked while holding the state: the node must not
                // look alive. Report it (EINTERNAL) and stop; the state is still
                // memory-safe to use for that.
                self.core.clear_poison();
                let core = poisoned.into_inner();
                self.fault("a thread panicked while holding the node's state");
                core
            }
        }
    }

    /// One burst of polled-mode receiving (from `receive()` or the stall guard;
    /// the `polled` lock keeps their deliveries in order). It reads even when
    /// the sink is full: leaving datagrams in the socket would let the kernel
    /// drop what overflows it, heartbeats included, and a sender whose tail of
    /// heartbeats is lost that way can never be found to have lost anything.
    /// Read, heartbeats keep loss detectable, and events the sink has no room
    /// for are reported as gaps by the sink.
    fn receive_burst(&self) -> usize {
        let mut polled = self.polled.lock().unwrap_or_else(|p| p.into_inner());
        let Some((socket, own)) =
            self.core().io.as_ref().and_then(|io| io.udp.as_ref()).map(|udp| (udp.socket.clone(), udp.own.clone()))
        else {
            return 0;
        };
        let burst = polled.get_or_insert_with(|| Box::new(Burst::new()));
        burst.run(self, &own, |buf| socket.recv_from(buf))
    }

    /// Hands notifications to every subscriber and to the sink (the sink, or
    /// else the last subscriber, gets the originals; the others get clones).
    fn deliver(&self, notes: &mut Vec<Notification>) {
        if notes.is_empty() {
            return;
        }
        let sink = self.sink.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut dropped = 0u64;
        {
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            subs.retain(|s| !s.is_closed());
            let (cloned, last) = match (&sink, subs.split_last()) {
                (Some(_), _) => (&subs[..], None),
                (None, Some((last, others))) => (others, Some(last)),
                (None, None) => (&subs[..], None),
            };
            for note in notes.iter() {
                for s in cloned {
                    if let Err(mpsc::error::TrySendError::Full(_)) = s.try_send(note.clone()) {
                        dropped += 1;
                    }
                }
            }
            if let Some(last) = last {
                for note in notes.drain(..) {
                    if let Err(mpsc::error::TrySendError::Full(_)) = last.try_send(note) {
                        dropped += 1;
                    }
                }
            }
        }
        if let Some(sink) = sink {
            if !notes.is_empty() {
                dropped += sink.deliver(notes);
            }
        }
        notes.clear();
        if dropped > 0 {
            let total = self.notifications_dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
            // At most one warning per second (a stuck subscriber would otherwise log every burst).
            let now_ms = self.epoch.elapsed().as_millis() as u64;
            let last = self.last_drop_warning_ms.load(Ordering::Relaxed);
            if last == 0 || now_ms >= last + 1000 {
                self.last_drop_warning_ms.store(now_ms.max(1), Ordering::Relaxed);
                tracing::warn!(
                    "eventcast: a subscriber is {SUBSCRIBER_CAPACITY} notifications behind; notifications dropped so far: {total}"
                );
            }
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
                status: AtomicU8::new(0),
                shared: Arc::new(Shared {
                    core: Mutex::new(Core {
                        endpoint: None,
                        endpoint_port: 0,
                        io: None,
                        send,
                        deadline: None,
                        notes: Vec::new(),
                    }),
                    subscribers: Mutex::new(Vec::new()),
                    sink: Mutex::new(None),
                    polled: Mutex::new(None),
                    last_receive_us: AtomicU64::new(0),
                    owner: owner.clone(),
                    faulted: Default::default(),
                    runtime: Mutex::new(None),
                    guard_stop: Mutex::new(None),
                    inject_fault: AtomicU8::new(0),
                    wake: Notify::new(),
                    notifications_dropped: AtomicU64::new(0),
                    send_errors: AtomicU64::new(0),
                    own_skipped: AtomicU64::new(0),
                    nats: Default::default(),
                    epoch: Instant::now(),
                    last_drop_warning_ms: AtomicU64::new(0),
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
        Status::from_u8(self.inner.status.load(Ordering::Acquire))
    }

    fn set_status(&self, s: Status) {
        self.inner.set_status(s);
    }

    /// Binds `address:port`, joins the group and spawns the driver tasks on the
    /// current tokio runtime. Idempotent: starting a started node does nothing.
    /// Bind failures come back as [`Error::Io`] (`code()` `EADDRINUSE`, ...).
    pub async fn start(&self) -> Result<(), Error> {
        self.start_with(Receive::Task).await
    }

    /// Like [`start`](Self::start), but without a receive task: datagrams wait
    /// in the socket until the caller, which watches [`receive_fd`](Self::receive_fd)
    /// for readability in its own event loop, calls [`receive`](Self::receive)
    /// on its own thread. Timers and queued sends still run on tokio. The Node
    /// binding uses this so that a received event reaches JS with one thread
    /// wake-up (the JS thread's) instead of two.
    ///
    /// A stalled caller does not let the socket buffer overflow: a guard task
    /// checks every [`GUARD_TICK`] (every [`POLL_STALL`] while it is reading),
    /// and when `receive()` has not run for [`POLL_STALL`], it reads what is
    /// waiting itself (the notifications then reach the sink from the guard's
    /// thread; a sink with no room left reports what it drops, see
    /// [`NotificationSink::deliver`]).
    pub async fn start_polled(&self) -> Result<(), Error> {
        self.start_with(Receive::Polled).await
    }

    async fn start_with(&self, receive: Receive) -> Result<(), Error> {
        let mut control = self.inner.control.lock().await;
        if !control.tasks.is_empty() {
            return Ok(());
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Io(io::Error::other("Eventcast::start must run inside a tokio runtime")));
        }
        self.set_status(Status::Starting);
        let config = match self.config().await {
            Ok(c) => c,
            Err(e) => {
                self.set_status(Status::Stopped);
                return Err(e);
            }
        };
        let opened = match &self.inner.options.transport {
            Transport::Multicast => self.open(config, receive),
            Transport::Nats(nats) => self.open_nats(config, nats).await,
        };
        match opened {
            Ok(tasks) => {
                control.tasks = tasks;
                self.set_status(Status::Started);
                Ok(())
            }
            Err(e) => {
                self.set_status(Status::Stopped);
                Err(e)
            }
        }
    }

    /// The engine configuration, derived once: the default encryption scheme's
    /// PBKDF2 takes hundreds of milliseconds, so it runs on a blocking thread
    /// during the first `start()` rather than in `new()` (which may be on a JS thread).
    async fn config(&self) -> Result<Config, Error> {
        if let Some(c) = self.inner.config.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(c.clone());
        }
        let options = self.inner.options.clone();
        let config = tokio::task::spawn_blocking(move || options.to_config())
            .await
            .map_err(|e| Error::Io(io::Error::other(format!("key derivation task failed: {e}"))))??;
        *self.inner.config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config.clone());
        Ok(config)
    }

    fn open(&self, config: Config, receive: Receive) -> Result<Vec<JoinHandle<()>>, Error> {
        let options = &self.inner.options;
        let socket = socket::bind_multicast(options)?;
        let local = socket.local_addr()?;
        let send = socket::bind_sender(&Options { port: local.port(), ..options.clone() })?;
        // Without the kernel filter, own datagrams are recognised on receipt
        // (source address, then the id in the meta).
        let own = match socket::drop_own_datagrams(&socket, send.source) {
            Ok(()) => OwnDatagrams::Filtered,
            Err(e) => {
                tracing::debug!("eventcast: no kernel filter for own datagrams ({e}); skipping them on receipt");
                OwnDatagrams::Check { source: SocketAddr::V4(send.source), id: self.inner.id.as_str().into() }
            }
        };
        let task_socket = match receive {
            Receive::Task => Some(UdpSocket::from_std(socket.try_clone()?)?),
            Receive::Polled => None,
        };
        let socket = Arc::new(socket);
        let link = Link::Udp(Arc::new(send.socket));
        let group = SocketAddr::V4(SocketAddrV4::new(options.multicast_membership, local.port()));
        let shared = &self.inner.shared;
        let io = Io { link: link.clone(), group, udp: Some(UdpReceive { socket, own: own.clone(), local }) };
        self.install(config, local.port(), io);
        tracing::debug!("eventcast {} bound {local}, joined {}", self.inner.id, options.multicast_membership);
        let mut tasks = vec![supervise::spawn(shared, DriverTask::Timer, timer_loop(shared.clone(), link))];
        match task_socket {
            Some(socket) => {
                tasks.push(supervise::spawn(shared, DriverTask::Receive, recv_loop(shared.clone(), socket, own)))
            }
            None => {
                let (stop, stopped) = std::sync::mpsc::channel();
                *shared.guard_stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop);
                let guard = shared.clone();
                tasks.push(supervise::spawn_blocking(shared, DriverTask::StallGuard, move || {
                    stall_guard(guard, stopped)
                }))
            }
        }
        shared.wake.notify_one();
        Ok(tasks)
    }

    /// Connects the NATS transport and spawns its tasks (a receive task in
    /// both receive modes: a subscription has no descriptor to poll).
    async fn open_nats(&self, mut config: Config, nats: &NatsOptions) -> Result<Vec<JoinHandle<()>>, Error> {
        let shared = &self.inner.shared;
        let port = self.inner.options.port;
        let conn = nats::connect(nats, port, &self.inner.id, shared).await?;
        config.max_payload_size = conn.chunk;
        let link = Link::Nats(conn.publisher);
        // The group address only names the destination for the engine; NATS ignores it.
        let group = SocketAddr::V4(SocketAddrV4::new(self.inner.options.multicast_membership, port));
        self.install(config, port, Io { link: link.clone(), group, udp: None });
        Ok(vec![
            supervise::spawn(shared, DriverTask::Timer, timer_loop(shared.clone(), link)),
            supervise::spawn(shared, DriverTask::Receive, nats::recv_loop(shared.clone(), conn.subscriber)),
        ])
    }

    /// Puts a freshly opened transport in place: the endpoint (kept across
    /// stop/start on the same port), its wall clock, the queue emptied, the
    /// fault state reset. Then the driver tasks may be spawned.
    fn install(&self, config: Config, port: u16, io: Io) {
        let shared = &self.inner.shared;
        {
            let mut core = shared.core();
            // Keep the endpoint (and its sequence state) across stop/start on the same port.
            if core.endpoint.is_none() || core.endpoint_port != port {
                let identity = Identity {
                    id: self.inner.id.clone(),
                    host: socket::advertised_host(&self.inner.options).to_string(),
                    port,
                    hostname: socket::hostname(),
                };
                core.endpoint = Some(Endpoint::new(config, identity, rand::random()));
                core.endpoint_port = port;
            }
            // The engine reads no clock: anchor its wall time now, and again on
            // every start so a long-lived node follows clock adjustments. A
            // listen-only node would otherwise stamp its repair requests and
            // heartbeats with 1970, and secure peers would drop them as replays.
            if let Some(ep) = core.endpoint.as_mut() {
                ep.set_wall_clock(Instant::now(), SystemTime::now());
                core.deadline = None;
            }
            core.io = Some(io);
            core.send.clear();
            let _ = core.pump(shared, Lane::Urgent);
        }
        shared.faulted.store(false, Ordering::Release);
        shared.inject_fault.store(0, Ordering::Relaxed);
        *shared.runtime.lock().unwrap_or_else(|p| p.into_inner()) = tokio::runtime::Handle::try_current().ok();
    }

    /// Stops the driver, delivers notifications already produced to the
    /// subscribers, sends what is still queued (up to 1 s), leaves the group
    /// and closes the socket. Idempotent. A stopped node can be started again
    /// (same id; subscriptions stay open).
    pub async fn stop(&self) -> Result<(), Error> {
        let mut control = self.inner.control.lock().await;
        if control.tasks.is_empty() {
            return Ok(());
        }
        self.set_status(Status::Stopping);
        // The stall guard is a blocking thread: closing its channel ends it (abort cannot).
        self.inner.shared.guard_stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        let tasks = std::mem::take(&mut control.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        let shared = &self.inner.shared;
        let io = {
            let mut core = shared.core();
            let _ = core.pump(shared, Lane::Urgent);
            core.io.take()
        };
        if let Some(io) = io {
            let deadline = tokio::time::Instant::now() + STOP_FLUSH_TIMEOUT;
            loop {
                let left = shared.core().flush(shared, &io.link);
                if left == 0 {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!("eventcast: stop() gave up on {left} queued datagrams");
                    shared.send_errors.fetch_add(left as u64, Ordering::Relaxed);
                    shared.core().send.clear();
                    break;
                }
                tokio::time::sleep(SEND_RETRY).await;
            }
            match (&io.udp, &io.link) {
                (Some(udp), _) => socket::leave_multicast(&udp.socket, &self.inner.options),
                // What the client still holds reaches the server before the connection closes.
                (None, Link::Nats(publisher)) => publisher.flush(STOP_FLUSH_TIMEOUT).await,
                (None, Link::Udp(_)) => {}
            }
        }
        let mut notes = std::mem::take(&mut shared.core().notes);
        shared.deliver(&mut notes);
        self.set_status(Status::Stopped);
        Ok(())
    }

    /// Sends an event to the group, from the calling thread (no thread hop).
    /// [`Error::NotStarted`] unless started; [`Error::Payload`] when the
    /// arguments cannot be encoded or exceed the size limit. A full socket
    /// buffer queues the datagrams for the driver; nothing is dropped. While
    /// [`Options::send_queue_bytes`] or more are queued (a slow link), the
    /// event is refused with [`Error::Backpressure`] (`EBACKPRESSURE`), nothing
    /// sent; [`Notification::Drain`] says when to emit again.
    pub fn emit(&self, name: &str, args: &[Bson]) -> Result<(), Error> {
        self.emit_with(|ep, now, wall| ep.emit(now, wall, name, args))
    }

    /// Like [`emit`](Self::emit) with the body already encoded as the BSON
    /// document `{payload: [...]}` (saves a conversion when the caller builds BSON itself).
    pub fn emit_encoded(&self, name: &str, body: &[u8]) -> Result<(), Error> {
        self.emit_with(|ep, now, wall| endpoint_emit_encoded(ep, now, wall, name, body))
    }

    fn emit_with(&self, f: impl FnOnce(&mut Endpoint, Instant, SystemTime) -> Result<(), Error>) -> Result<(), Error> {
        let shared = &*self.inner.shared;
        let mut notes = {
            let mut core = shared.core();
            if core.io.is_none() || core.endpoint.is_none() {
                return Err(Error::NotStarted);
            }
            // Refused before the engine numbers the message: nothing of it exists anywhere.
            core.send.admit()?;
            let Some(ep) = core.endpoint.as_mut() else { return Err(Error::NotStarted) };
            f(ep, Instant::now(), SystemTime::now())?;
            if core.pump(shared, Lane::Urgent) {
                shared.wake.notify_one();
            }
            if core.notes.is_empty() {
                return Ok(());
            }
            std::mem::take(&mut core.notes)
        };
        shared.deliver(&mut notes);
        Ok(())
    }

    /// A new subscription; it receives every notification from now on.
    pub fn subscribe(&self) -> Events {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_CAPACITY);
        self.inner.shared.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        Events { rx }
    }

    /// Installs (or, with `None`, removes) the node's [`NotificationSink`],
    /// which from now on receives every notification synchronously, besides
    /// the [`Events`] subscriptions. Returns the previous sink. Removing it
    /// drops the node's reference once no delivery is using it.
    pub fn set_sink(&self, sink: Option<Arc<dyn NotificationSink>>) -> Option<Arc<dyn NotificationSink>> {
        std::mem::replace(&mut *self.inner.shared.sink.lock().unwrap_or_else(|p| p.into_inner()), sink)
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
            stats
        };
        let own = shared.own_skipped.load(Ordering::Relaxed);
        stats.datagrams_received += own;
        stats.own_datagrams_ignored += own;
        stats.notifications_dropped = shared.notifications_dropped.load(Ordering::Relaxed);
        stats.send_errors = shared.send_errors.load(Ordering::Relaxed);
        let nats = &shared.nats;
        stats.nats_connects = nats.connects.load(Ordering::Relaxed);
        stats.nats_disconnects = nats.disconnects.load(Ordering::Relaxed);
        stats.nats_slow_consumer = nats.slow_consumer.load(Ordering::Relaxed);
        stats.nats_server_errors = nats.server_errors.load(Ordering::Relaxed);
        stats.nats_oversize_dropped = nats.oversize_dropped.load(Ordering::Relaxed);
        stats
    }

    /// With [`start_polled`](Self::start_polled): reads the datagrams waiting
    /// in the socket (one burst of at most 512, without blocking) on the calling
    /// thread, processes them and delivers the resulting notifications (to the
    /// sink and the subscriptions) before returning. Returns how many datagrams
    /// were read; call again while the socket stays readable. Does nothing
    /// (returns 0) when stopped or started with [`start`](Self::start).
    pub fn receive(&self) -> usize {
        let shared = &*self.inner.shared;
        shared.last_receive_us.store(shared.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        shared.receive_burst()
    }

    /// Reports a failure outside the driver tasks (a panic caught on the
    /// caller's thread): `EINTERNAL` to subscribers and the sink, then the
    /// node stops itself, as for a driver task's panic.
    // Only the Node binding's receive on the JS thread (`binding/watch.rs`) needs it.
    #[cfg(all(feature = "napi", unix))]
    pub(crate) fn report_fault(&self, what: &str) {
        self.inner.shared.fault(what);
    }

    /// Test hook: simulates a slow link. With `Some(rate)`, datagrams leave at
    /// most at `rate` bytes per second (the rest "would block" and queue, as on
    /// a congested interface); `None` lifts it. Not for production use.
    #[doc(hidden)]
    pub fn throttle_sends(&self, bytes_per_sec: Option<u64>) {
        self.inner.shared.core().send.set_throttle(bytes_per_sec);
        self.inner.shared.wake.notify_one();
    }

    /// Test hook: makes `task` panic the next time it runs (the receive task
    /// at its next datagram, the timer task at once, the stall guard at its
    /// next tick, the send flush at its next retry, holding the state lock).
    /// The node must then report `EINTERNAL` and stop. Not for production use.
    #[doc(hidden)]
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
    /// send repair requests); JS `getAddress()` returns it. See [`socket::advertised_addr`].
    pub fn advertised_addr(&self) -> SocketAddrV4 {
        let core = self.inner.shared.core();
        socket::advertised_addr(&self.inner.options, core.endpoint.as_ref().map(Endpoint::identity))
    }
}

/// Checks that `body` is the BSON document `{payload: [...]}` (or empty), then
/// hands it to [`Endpoint::emit_encoded`] unchanged.
fn endpoint_emit_encoded(
    ep: &mut Endpoint,
    now: Instant,
    wall: SystemTime,
    name: &str,
    body: &[u8],
) -> Result<(), Error> {
    let doc =
        bson::RawDocument::from_bytes(body).map_err(|e| Error::Payload(format!("body is not a BSON document: {e}")))?;
    match doc.get("payload") {
        Ok(Some(bson::RawBsonRef::Array(_))) => {}
        Ok(None) if doc.is_empty() => {}
        _ => return Err(Error::Payload("body must be the BSON document {payload: [...]}".into())),
    }
    ep.emit_encoded(now, wall, name, body)
}

/// How the node's receive socket is read.
#[derive(Clone, Copy)]
enum Receive {
    /// By a tokio task ([`Eventcast::start`]).
    Task,
    /// By the caller, through [`Eventcast::receive`] ([`Eventcast::start_polled`]).
    Polled,
}

/// How our own datagrams (multicast loopback) are kept out of the endpoint.
#[derive(Clone)]
enum OwnDatagrams {
    /// By the kernel: a socket filter on our send socket's source address.
    Filtered,
    /// On receipt: by that source address, else by the id in the meta.
    Check { source: SocketAddr, id: Arc<str> },
}

impl OwnDatagrams {
    fn is_own(&self, source: SocketAddr, datagram: &[u8]) -> bool {
        match self {
            OwnDatagrams::Filtered => false,
            OwnDatagrams::Check { source: ours, id } => source == *ours || is_own_datagram(datagram, id.as_bytes()),
        }
    }
}

/// One receive burst's buffers: datagrams land in one arena (no allocation per datagram).
struct Burst {
    arena: Vec<u8>,
    marks: Vec<(usize, usize, SocketAddr)>,
    notes: Vec<Notification>,
}

impl Burst {
    fn new() -> Self {
        Burst { arena: vec![0u8; RECV_ARENA], marks: Vec::with_capacity(RECV_BATCH), notes: Vec::new() }
    }

    /// Reads datagrams with `recv` (non-blocking) until it would block or the
    /// burst is full, feeds them to the endpoint under one lock, sends what that
    /// produced and delivers the notifications. Returns how many were read.
    fn run(
        &mut self,
        shared: &Shared,
        own: &OwnDatagrams,
        mut recv: impl FnMut(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    ) -> usize {
        let Burst { arena, marks, notes } = self;
        marks.clear();
        let mut used = 0;
        let mut skipped = 0u64;
        while marks.len() < RECV_BATCH && RECV_ARENA - used >= MAX_DATAGRAM {
            match recv(&mut arena[used..]) {
                Ok((n, source)) => {
                    if own.is_own(source, &arena[used..used + n]) {
                        skipped += 1;
                        continue;
                    }
                    marks.push((used, n, source));
                    used += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("eventcast: receive failed: {e}");
                    let err = Error::Io(e);
                    notes.push(Notification::Error { code: err.code(), message: format!("receiving: {err}") });
                    break;
                }
            }
        }
        if skipped > 0 {
            shared.own_skipped.fetch_add(skipped, Ordering::Relaxed);
        }
        if !marks.is_empty() {
            let now = Instant::now();
            let mut core = shared.core();
            if let Some(ep) = core.endpoint.as_mut() {
                for &(start, len, source) in marks.iter() {
                    ep.handle_datagram(now, source, &arena[start..start + len]);
                }
            }
            // What a received datagram makes us send is a repair: after our own new data.
            if core.pump(shared, Lane::Repair) {
                shared.wake.notify_one();
            }
            notes.append(&mut core.notes);
        }
        shared.deliver(notes);
        marks.len() + skipped as usize
    }

    fn was_full(&self) -> bool {
        self.marks.len() == RECV_BATCH
    }
}

/// Polled mode: how long `receive()` may go uncalled while datagrams wait
/// before the stall guard reads them itself.
pub const POLL_STALL: Duration = Duration::from_millis(5);
/// Polled mode: how often the stall guard looks while the caller keeps up or
/// nothing arrives (its whole idle cost: one timer wake-up and, when
/// `receive()` has not run lately, one `recvfrom` that finds nothing).
pub const GUARD_TICK: Duration = Duration::from_millis(10);

/// Polled mode's safety net: a caller thread that is busy (a long synchronous
/// job on the JS thread, a GC pause) stops reading the socket, and its buffer
/// (8 MiB at best, 208 KiB by default without privileges) would overflow at
/// high rates. Every [`GUARD_TICK`] this task checks whether `receive()` ran
/// within the last [`POLL_STALL`]; if not, it reads what is waiting itself,
/// burst after burst, then looks again every [`POLL_STALL`] while it finds
/// datagrams. So a burst that starts while the caller is already blocked is
/// read within about 10 ms. It does not watch the socket itself, which would
/// wake a second thread for every datagram. It reads even while the sink is
/// full (see [`Shared::receive_burst`]), so heartbeats keep loss detectable;
/// the Node binding's sink reports the events it has no room for as gaps.
/// (An idle caller that is about to read a datagram that
/// just arrived may find the guard read it first: harmless, in order.)
///
/// It runs on a thread of its own (tokio's blocking pool) that sleeps in
/// `recv_timeout` on `stop`, which `stop()` closes. Measured idle cost on a
/// 2-vCPU VM: 0.45 % of one core (100 wake-ups/s; a bare loop of 10 ms sleeps
/// and one `recvfrom` costs 0.40 % there), against 0.6 % as a tokio timer task,
/// whose every tick also woke the runtime's workers.
fn stall_guard(shared: Arc<Shared>, stop: std::sync::mpsc::Receiver<()>) {
    let mut period = GUARD_TICK;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(period) {
        shared.fault_point(DriverTask::StallGuard);
        let last = Duration::from_micros(shared.last_receive_us.load(Ordering::Relaxed));
        if shared.epoch.elapsed().saturating_sub(last) < POLL_STALL {
            period = GUARD_TICK;
            continue;
        }
        // The `polled` lock is only ever held for one burst: no long block here.
        let mut read = 0;
        loop {
            let n = shared.receive_burst();
            read += n;
            if n < RECV_BATCH {
                break;
            }
        }
        period = if read > 0 { POLL_STALL } else { GUARD_TICK };
    }
}

/// Receive task: waits for readability, then one [`Burst`] at a time.
async fn recv_loop(shared: Arc<Shared>, socket: UdpSocket, own: OwnDatagrams) {
    let mut burst = Burst::new();
    loop {
        if let Err(e) = socket.readable().await {
            burst.notes.push(Notification::Error { code: "ESOCKET", message: format!("waiting for datagrams: {e}") });
            shared.deliver(&mut burst.notes);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        shared.fault_point(DriverTask::Receive);
        // tokio's try_recv_from clears the readiness flag on WouldBlock, so `readable()` waits for real.
        burst.run(&shared, &own, |buf| socket.try_recv_from(buf));
        if burst.was_full() {
            // More is waiting: let subscribers on this runtime catch up first.
            tokio::task::yield_now().await;
        }
    }
}

/// Whether a datagram's meta carries our own instance id, i.e. it is one of
/// ours coming back through multicast loopback that neither the kernel filter
/// nor the source check caught (no filter on this OS, or the host's address
/// changed since start). The endpoint would decode and drop it; skipping it
/// here saves the decode and the endpoint lock. Walks the top-level meta elements
/// without allocating; anything unexpected answers false and the endpoint
/// decides. (Encrypted outer datagrams carry no id and go to the endpoint.)
fn is_own_datagram(datagram: &[u8], id: &[u8]) -> bool {
    let Some(len) = datagram.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize) else { return false };
    let Some(meta) = datagram.get(2..2 + len) else { return false };
    let i32_at = |at: usize| meta.get(at..at + 4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let mut at = 4; // document length
    while let Some(&kind) = meta.get(at) {
        if kind == 0 {
            return false;
        }
        let Some(key_len) = meta.get(at + 1..).and_then(|rest| rest.iter().position(|&b| b == 0)) else { return false };
        let key = &meta[at + 1..at + 1 + key_len];
        let value = at + 2 + key_len;
        let size = match kind {
            0x01 | 0x09 | 0x11 | 0x12 => 8,
            0x02 => match i32_at(value) {
                Some(n) if n > 0 => {
                    if key == b"id" {
                        let text = meta.get(value + 4..value + 4 + n as usize - 1);
                        return text == Some(id);
                    }
                    4 + n as usize
                }
                _ => return false,
            },
            0x03 | 0x04 => match i32_at(value) {
                Some(n) if n >= 5 => n as usize,
                _ => return false,
            },
            0x05 => match i32_at(value) {
                Some(n) if n >= 0 => 5 + n as usize,
                _ => return false,
            },
            0x07 => 12,
            0x08 => 1,
            0x0A => 0,
            0x10 => 4,
            0x13 => 16,
            _ => return false,
        };
        at = value + size;
    }
    false
}

/// Timer task: runs the endpoint's timers and flushes queued sends through `link`.
async fn timer_loop(shared: Arc<Shared>, link: Link) {
    let mut notes: Vec<Notification> = Vec::new();
    // Timers run at most once per millisecond, even if the engine keeps
    // asking for a deadline that has already passed.
    let mut earliest_next = tokio::time::Instant::now();
    loop {
        shared.fault_point(DriverTask::Timer);
        let (deadline, has_pending) = {
            let core = shared.core();
            (core.deadline, !core.send.is_empty())
        };
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let sleep_until = deadline.map(tokio::time::Instant::from_std).unwrap_or(far).max(earliest_next);
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                earliest_next = tokio::time::Instant::now() + Duration::from_millis(1);
                let mut core = shared.core();
                if let Some(ep) = core.endpoint.as_mut() {
                    let now = Instant::now();
                    // Re-anchor wall time so days of uptime do not drift from the system clock.
                    ep.set_wall_clock(now, SystemTime::now());
                    ep.handle_timeout(now);
                }
                // A deadline that did not move would spin; forget it so pump re-reads it.
                core.deadline = None;
                let _ = core.pump(&shared, Lane::Urgent);
                notes.append(&mut core.notes);
            }
            _ = tokio::time::sleep(SEND_RETRY), if has_pending => {
                let mut core = shared.core();
                shared.fault_point(DriverTask::SendFlush);
                core.flush(&shared, &link);
                notes.append(&mut core.notes);
            }
        }
        shared.deliver(&mut notes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(meta: &bson::Document, body: &[u8]) -> Vec<u8> {
        let meta = meta.to_vec().unwrap();
        let mut d = (meta.len() as u16).to_be_bytes().to_vec();
        d.extend_from_slice(&meta);
        d.extend_from_slice(body);
        d
    }

    #[test]
    fn own_datagrams_are_recognised_by_meta_id_only() {
        let id = "0123456789abcdef";
        let full = bson::doc! {
            "v": 3, "seq": 0, "seqLen": 1, "seqId": "ab".repeat(20), "seqEnd": true, "enc": false,
            "nonce": "cd".repeat(20), "name": "x", "host": "127.0.0.1", "port": 9000, "hostname": "h",
            "id": id, "time": "2020-01-01T00:00:00.000Z", "sn": 5_i64, "extra": { "a": 1.5 },
        };
        assert!(is_own_datagram(&datagram(&full, b"body"), id.as_bytes()));
        let mut other = full.clone();
        other.insert("id", "fedcba9876543210");
        assert!(!is_own_datagram(&datagram(&other, b""), id.as_bytes()));
        // Our id in the body (e.g. a peer's repair request naming us) is not ours.
        let mut body = b"\x02id\x00\x11\x00\x00\x00".to_vec();
        body.extend_from_slice(id.as_bytes());
        let request = datagram(&bson::doc! { "v": 3, "name": "__ec_retx", "id": "fedcba9876543210" }, &body);
        assert!(!is_own_datagram(&request, id.as_bytes()));
        // A prefix of our id, or no id at all, is not ours.
        assert!(!is_own_datagram(&datagram(&bson::doc! { "id": "0123456789abcde" }, b""), id.as_bytes()));
        assert!(!is_own_datagram(&datagram(&bson::doc! { "v": 3, "enc": true }, b""), id.as_bytes()));
        // Truncated and garbage input never panics.
        let ours = datagram(&full, b"");
        for cut in 0..ours.len() {
            let _ = is_own_datagram(&ours[..cut], id.as_bytes());
        }
        assert!(!is_own_datagram(&[0xff, 0xff, 1, 2, 3], id.as_bytes()));
        assert!(!is_own_datagram(&[], id.as_bytes()));
        let mut rng = 12345u64;
        for _ in 0..20_000 {
            let mut d = ours.clone();
            for _ in 0..4 {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let i = (rng >> 33) as usize % d.len();
                d[i] = (rng >> 13) as u8;
            }
            let _ = is_own_datagram(&d, id.as_bytes());
        }
    }
}
