//! Starting and stopping a node: opening the transport (multicast sockets or
//! NATS), installing the endpoint, spawning the supervised driver tasks, and
//! the orderly stop (tasks ended, queue flushed, group left).

use super::receive::{nats_recv_loop, recv_loop, stall_guard};
use super::send::Lane;
use super::state::{Io, UdpReceive};
use super::supervise::DriverTask;
use super::timers::{timer_loop, SEND_RETRY};
use super::transport::Link;
use super::{interface, nats, socket, supervise, Eventcast, NatsOptions, Options, OwnDatagrams, Status, Transport};
#[allow(unused_imports)] // doc links
use super::{NotificationSink, GUARD_TICK, POLL_STALL};
use crate::error::Error;
use crate::protocol::{Config, Endpoint, Identity};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// How long `stop()` keeps trying to send datagrams still queued.
const STOP_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// How the node's receive socket is read.
#[derive(Clone, Copy)]
pub(super) enum Receive {
    /// By a tokio task ([`Eventcast::start`]).
    Task,
    /// By the caller, through [`Eventcast::receive`] ([`Eventcast::start_polled`]).
    Polled,
}

impl Eventcast {
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
        let mut config = tokio::task::spawn_blocking(move || options.to_config())
            .await
            .map_err(|e| Error::Io(io::Error::other(format!("key derivation task failed: {e}"))))??;
        if let (Some(p), Some(meta)) =
            (config.presence.as_mut(), self.inner.meta.lock().unwrap_or_else(|p| p.into_inner()).clone())
        {
            p.advertised.meta = meta;
        }
        *self.inner.config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config.clone());
        Ok(config)
    }

    fn open(&self, config: Config, receive: Receive) -> Result<Vec<JoinHandle<()>>, Error> {
        let options = &self.inner.options;
        let resolved = interface::resolve(options)?;
        let socket = socket::bind_multicast(options, &resolved)?;
        let local = socket.local_addr()?;
        let send = socket::bind_sender(&Options { port: local.port(), ..options.clone() }, &resolved)?;
        // Without the kernel filter, own datagrams are recognised on receipt
        // (source address, then the id in the meta).
        let own = match socket::drop_own_datagrams(&socket, send.source) {
            Ok(()) => OwnDatagrams::Filtered,
            Err(e) => {
                tracing::debug!("eventcast: no kernel filter for own datagrams ({e}); skipping them on receipt");
                OwnDatagrams::Check { source: send.source, id: self.inner.id.as_str().into() }
            }
        };
        let task_socket = match receive {
            Receive::Task => Some(UdpSocket::from_std(socket.try_clone()?)?),
            Receive::Polled => None,
        };
        let socket = Arc::new(socket);
        let link = Link::Udp(Arc::new(send.socket));
        let group = socket::group_addr(options, &resolved, local.port());
        let shared = &self.inner.shared;
        let host = socket::advertised_host_on(options, &resolved);
        let interface = resolved.in_use(send.source.ip());
        tracing::debug!("eventcast {} bound {local}, joined {group} on {interface}", self.inner.id);
        let udp = UdpReceive { socket, own: own.clone(), local, resolved, interface };
        self.install(config, local.port(), host, Io { link: link.clone(), group, udp: Some(udp) })?;
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
        let reporter = nats::Reporter {
            counters: shared.counters.clone(),
            fanout: shared.fanout.clone(),
            status: shared.status.clone(),
        };
        let conn = nats::connect(nats, port, &self.inner.id, reporter).await?;
        config.max_payload_size = conn.chunk;
        let writer = nats::write_loop(conn.publisher.clone());
        let link = Link::Nats(conn.publisher);
        // The group address only names the destination for the engine; NATS ignores it.
        let group = SocketAddr::new(self.inner.options.multicast_membership, port);
        let host = socket::advertised_host(&self.inner.options);
        self.install(config, port, host, Io { link: link.clone(), group, udp: None })?;
        Ok(vec![
            supervise::spawn(shared, DriverTask::SendFlush, writer),
            supervise::spawn(shared, DriverTask::Timer, timer_loop(shared.clone(), link)),
            supervise::spawn(shared, DriverTask::Receive, nats_recv_loop(shared.clone(), conn.subscriber)),
        ])
    }

    /// Puts a freshly opened transport in place: the endpoint (kept across
    /// stop/start on the same port), its wall clock, the queue emptied, the
    /// fault state reset. Then the driver tasks may be spawned. `host` is
    /// what a new endpoint advertises (`socket::advertised_host`).
    /// [`Error::Clock`] when the system clock reads before 1970 (`io` is then
    /// dropped, which closes the transport).
    fn install(&self, config: Config, port: u16, host: IpAddr, io: Io) -> Result<(), Error> {
        let shared = &self.inner.shared;
        {
            let mut core = shared.core();
            let (now, wall) = (Instant::now(), SystemTime::now());
            // Keep the endpoint (and its sequence state) across stop/start on the same port.
            if core.endpoint.is_none() || core.endpoint_port != port {
                let identity =
                    Identity { id: self.inner.id.clone(), host: host.to_string(), port, hostname: socket::hostname() };
                core.endpoint = Some(Endpoint::new(config, identity, rand::random(), now, wall)?);
                core.endpoint_port = port;
            } else if let Some(ep) = core.endpoint.as_mut() {
                // The engine reads no clock: re-anchor its wall time on every
                // start so a long-lived node follows clock adjustments.
                ep.set_wall_clock(now, wall)?;
                // Not listening while stopped: a sender that started since
                // is a late join, not a stream whose start we lost.
                ep.listening_since(now);
            }
            core.deadline = None;
            core.io = Some(io);
            core.send.clear();
            if let Some(ep) = core.endpoint.as_mut() {
                // A hello beacon now, then every interval: peers see us within one.
                ep.start_presence(now);
            }
            let _ = core.pump(shared, Lane::Urgent);
        }
        shared.faulted.store(false, Ordering::Release);
        shared.inject_fault.store(0, Ordering::Relaxed);
        *shared.runtime.lock().unwrap_or_else(|p| p.into_inner()) = tokio::runtime::Handle::try_current().ok();
        Ok(())
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
            if let Some(ep) = core.endpoint.as_mut() {
                // Goodbye goes out with the last sends, below.
                ep.stop_presence(Instant::now());
            }
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
                    shared.counters.send_errors.fetch_add(left as u64, Ordering::Relaxed);
                    shared.core().send.clear();
                    break;
                }
                tokio::time::sleep(SEND_RETRY).await;
            }
            match (&io.udp, &io.link) {
                (Some(udp), _) => socket::leave_multicast(&udp.socket, &self.inner.options, &udp.resolved),
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
}
