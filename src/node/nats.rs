//! The NATS transport: the group's datagrams, unchanged, as the payloads of
//! messages on one subject (default `eventcast.<port>`).
//!
//! NATS fans a message out to every subscriber at most once, like multicast,
//! so the protocol engine runs unchanged on top: chunking, `sn` numbers,
//! heartbeats, repair and encryption (the server only ever sees ciphertext).
//! Every datagram, repairs and requests included, is published on the subject
//! (NATS has no unicast to a peer; peers ignore what is not for them).
//!
//! * Own datagrams never come back: the connection is made with `no_echo`.
//! * There is no source address: every message reaches the engine from
//!   [`NATS_SOURCE`]. Per-source budgets in the engine therefore treat all
//!   NATS peers as one requester; the node-wide budgets still bound everything.
//! * Publishing never waits: `emit` runs on the caller's thread under the
//!   node's lock, so a publish that finds the client's command queue full
//!   "would block" and the datagram joins the node's bounded send queue, as
//!   on a full UDP socket buffer (backpressure and `'drain'` work the same).
//! * The client reconnects by itself; state changes become notifications
//!   with stable codes (see [`event_note`]).

use super::options::NatsOptions;
use super::send::Lane;
use super::supervise::DriverTask;
use super::{Notification, Shared, Status, RECV_BATCH};
use crate::error::Error;
use async_nats::{Client, ConnectErrorKind, Event, RequestErrorKind, Subject, Subscriber};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The source address every NATS message is handed to the engine with
/// (`0.0.0.0:0`): NATS does not tell who published a message.
pub const NATS_SOURCE: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// `start()` with a NATS transport fails with `ENATSCONNECT` when no server
/// accepted the connection within this time (all servers tried once).
pub const NATS_START_TIMEOUT: Duration = Duration::from_secs(5);

/// Time allowed to one server for TCP, TLS and the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages larger than this are dropped before decoding and counted in
/// `natsOversizeDropped`: no eventcast datagram comes near it (chunks are at
/// most 65,000 bytes plus their meta), but the server accepts up to its
/// `max_payload` (1 MiB by default) from anyone allowed to publish.
pub const NATS_MAX_DATAGRAM: usize = 128 * 1024;

/// Messages the client buffers for our subscription before the server sees
/// a slow consumer and drops (repaired or reported as a gap). Bounds memory:
/// at most this many times the server's `max_payload`.
const SUBSCRIPTION_CAPACITY: usize = 4096;

/// Room left in the server's `max_payload` for a chunk's meta and encryption.
const MAX_PAYLOAD_HEADROOM: usize = 2048;

/// Transport counters, read by `Eventcast::stats`.
#[derive(Default)]
pub(super) struct NatsCounters {
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    pub slow_consumer: AtomicU64,
    pub server_errors: AtomicU64,
    pub oversize_dropped: AtomicU64,
}

/// The sending half: cheap to clone, never waits.
#[derive(Clone)]
pub(super) struct Publisher {
    client: Client,
    subject: Subject,
}

impl Publisher {
    /// Publishes `datagram` if the client's command queue has room now;
    /// `WouldBlock` otherwise (the caller queues it and retries).
    pub(super) fn try_send(&self, datagram: &[u8]) -> io::Result<()> {
        // The publish future validates, then sends on a bounded channel: its
        // first poll either completes or finds the channel full. Dropping it
        // unfinished sends nothing.
        match self.client.publish(self.subject.clone(), Bytes::copy_from_slice(datagram)).now_or_never() {
            None => Err(io::ErrorKind::WouldBlock.into()),
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(io::Error::other(format!("NATS publish: {e}"))),
        }
    }

    /// Waits until the server has everything published so far (bounded by `timeout`).
    pub(super) async fn flush(&self, timeout: Duration) {
        match tokio::time::timeout(timeout, self.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("eventcast: NATS flush at stop failed: {e}"),
            Err(_) => tracing::warn!("eventcast: NATS flush at stop timed out after {timeout:?}"),
        }
    }
}

/// A connected, subscribed transport.
pub(super) struct Connection {
    pub publisher: Publisher,
    pub subscriber: Subscriber,
    /// Chunk size for the engine: the configured one, lowered to fit the server's `max_payload`.
    pub chunk: usize,
}

/// Connects to one of `nats.servers` (within [`NATS_START_TIMEOUT`]) with
/// `no_echo`, subscribes to the subject of `port`, and routes connection
/// events to `shared`'s notifications.
pub(super) async fn connect(
    nats: &NatsOptions,
    port: u16,
    id: &str,
    shared: &Arc<Shared>,
) -> Result<Connection, Error> {
    let weak = Arc::downgrade(shared);
    let client = open_client(nats, format!("eventcast {id}"), move |event| on_event(&weak, event)).await?;
    let (chunk, subscriber, subject) = subscribe(&client, nats, port).await?;
    tracing::debug!("eventcast {id}: NATS connected, subject {subject}, chunk {chunk} bytes");
    Ok(Connection { publisher: Publisher { client, subject }, subscriber, chunk })
}

/// Connects a client (`no_echo`, unlimited reconnects, within
/// [`NATS_START_TIMEOUT`]) whose connection events go to `on_event`.
pub(super) async fn open_client(
    nats: &NatsOptions,
    default_name: String,
    on_event: impl Fn(Event) + Send + Sync + 'static,
) -> Result<Client, Error> {
    let config = |message: String| Error::Nats { code: "ENATSCONFIG", message };
    let mut opts = async_nats::ConnectOptions::new();
    if let Some(path) = &nats.creds_file {
        opts = opts.credentials_file(path).await.map_err(|e| config(format!("credentials file {path}: {e}")))?;
    }
    if let Some(token) = &nats.token {
        opts = opts.token(token.clone());
    }
    if let (Some(user), Some(pass)) = (&nats.user, &nats.pass) {
        opts = opts.user_and_password(user.clone(), pass.clone());
    }
    if let Some(ca) = &nats.tls.ca {
        opts = opts.add_root_certificates(ca.into()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&nats.tls.cert, &nats.tls.key) {
        opts = opts.add_client_certificate(cert.into(), key.into()).require_tls(true);
    }
    let on_event = Arc::new(on_event);
    opts = opts
        .no_echo()
        .name(nats.name.clone().unwrap_or(default_name))
        .connection_timeout(CONNECT_TIMEOUT)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .max_reconnects(None)
        .event_callback(move |event| {
            let on_event = on_event.clone();
            async move { on_event(event) }
        });
    let servers = nats.servers.join(",");
    match tokio::time::timeout(NATS_START_TIMEOUT, opts.connect(nats.servers.as_slice())).await {
        Err(_) => Err(Error::Nats {
            code: "ENATSCONNECT",
            message: format!("no NATS server reachable within {NATS_START_TIMEOUT:?} ({servers})"),
        }),
        Ok(Err(e)) => {
            let code = match e.kind() {
                ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => "ENATSAUTH",
                ConnectErrorKind::Tls => "ENATSTLS",
                ConnectErrorKind::ServerParse => "ENATSCONFIG",
                _ => "ENATSCONNECT",
            };
            Err(Error::Nats { code, message: format!("connecting to {servers}: {e}") })
        }
        Ok(Ok(client)) => Ok(client),
    }
}

/// Subscribes `client` to the subject of `port` and confirms it with the
/// server. Returns the chunk size that fits the server's `max_payload`.
pub(super) async fn subscribe(
    client: &Client,
    nats: &NatsOptions,
    port: u16,
) -> Result<(usize, Subscriber, Subject), Error> {
    let max_payload = client.server_info().max_payload;
    let chunk = nats.chunk_size.min(max_payload.saturating_sub(MAX_PAYLOAD_HEADROOM));
    if chunk < 1024 {
        return Err(Error::Nats {
            code: "ENATSCONFIG",
            message: format!("the server's max_payload ({max_payload} bytes) leaves no room for 1 KiB chunks"),
        });
    }
    let subject: Subject = nats.subject_for(port).into();
    let subscriber = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| Error::Nats { code: "ENATSSUBSCRIBE", message: format!("subscribing to {subject}: {e}") })?;
    confirm(client, &subject).await?;
    Ok((chunk, subscriber, subject))
}

/// Waits until the server has processed everything this client sent, the
/// subscription included, so that a peer's first events cannot pass us by.
///
/// `Client::flush` is not enough: it only writes our buffer to the socket.
/// A request to a fresh inbox subject, which no one listens on, comes back
/// as "no responders" only after the server has read everything sent before
/// it: a real round trip. A server that refuses the request (a publish
/// permission on `_INBOX.>` missing) costs [`CONNECT_TIMEOUT`] and a warning
/// in the log, nothing else: the subscription was sent first either way.
async fn confirm(client: &Client, subject: &Subject) -> Result<(), Error> {
    let probe = client.new_inbox();
    match tokio::time::timeout(CONNECT_TIMEOUT, client.request(probe, Bytes::new())).await {
        Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
        // Someone answers on our inbox (it cannot: but the server passed our SUB first either way).
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == RequestErrorKind::Other => {
            Err(Error::Nats { code: "ENATSCONNECT", message: format!("confirming the subscription to {subject}: {e}") })
        }
        Ok(Err(e)) => {
            tracing::warn!("eventcast: the server did not confirm the subscription to {subject} ({e}); going on");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(
                "eventcast: the server did not confirm the subscription to {subject} within {CONNECT_TIMEOUT:?}; going on"
            );
            Ok(())
        }
    }
}

/// The notification a connection event becomes, if any, with its stable code.
fn event_note(event: &Event) -> Option<(&'static str, String)> {
    match event {
        Event::Connected => None,
        Event::Disconnected => Some(("ENATSDISCONNECTED", "disconnected from the NATS server; reconnecting".into())),
        Event::LameDuckMode => Some(("ENATSLAMEDUCK", "the NATS server is shutting down (lame duck mode)".into())),
        Event::SlowConsumer(_) => Some((
            "ENATSSLOWCONSUMER",
            "the NATS server dropped messages for this node (slow consumer); they are repaired or reported as gaps"
                .into(),
        )),
        Event::ServerError(e) => Some(("ENATSSERVER", format!("NATS server error: {e}"))),
        Event::ClientError(e) => Some(("ENATSCLIENT", format!("NATS client error: {e}"))),
        Event::Draining | Event::Closed => None,
    }
}

/// Counts a connection event and reports it (not while stopping: closing
/// the connection is ours then).
fn on_event(shared: &Weak<Shared>, event: Event) {
    let Some(shared) = shared.upgrade() else { return };
    let counters = &shared.nats;
    match &event {
        // Also sent for the first connection (counted here only, so once).
        Event::Connected => match counters.connects.fetch_add(1, Ordering::Relaxed) {
            0 => {}
            _ => tracing::info!("eventcast: NATS reconnected"),
        },
        Event::Disconnected => _ = counters.disconnects.fetch_add(1, Ordering::Relaxed),
        Event::SlowConsumer(_) => _ = counters.slow_consumer.fetch_add(1, Ordering::Relaxed),
        Event::ServerError(_) => _ = counters.server_errors.fetch_add(1, Ordering::Relaxed),
        _ => {}
    }
    let running = shared.owner.upgrade().is_some_and(|inner| {
        matches!(Status::from_u8(inner.status.load(Ordering::Acquire)), Status::Started | Status::Starting)
    });
    if let (true, Some((code, message))) = (running, event_note(&event)) {
        tracing::warn!("eventcast: {message}");
        shared.deliver(&mut vec![Notification::Error { code, message }]);
    }
}

/// Receive task: takes what the subscription holds (up to one burst), feeds
/// it to the endpoint under one lock, sends the repairs that produced and
/// delivers the notifications.
pub(super) async fn recv_loop(shared: Arc<Shared>, mut subscriber: Subscriber) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(RECV_BATCH);
    let mut notes = Vec::new();
    loop {
        let Some(first) = subscriber.next().await else {
            // Only when the client is gone (stop() aborts this task first).
            tracing::debug!("eventcast: NATS subscription ended");
            return;
        };
        shared.fault_point(DriverTask::Receive);
        batch.push(first.payload);
        while batch.len() < RECV_BATCH {
            match subscriber.next().now_or_never() {
                Some(Some(m)) => batch.push(m.payload),
                _ => break,
            }
        }
        let oversize = batch.iter().filter(|p| p.len() > NATS_MAX_DATAGRAM).count() as u64;
        if oversize > 0 {
            shared.nats.oversize_dropped.fetch_add(oversize, Ordering::Relaxed);
        }
        {
            let now = Instant::now();
            let mut core = shared.core();
            if let Some(ep) = core.endpoint.as_mut() {
                for payload in batch.iter().filter(|p| p.len() <= NATS_MAX_DATAGRAM) {
                    ep.handle_datagram(now, NATS_SOURCE, payload);
                }
            }
            if core.pump(&shared, Lane::Repair) {
                shared.wake.notify_one();
            }
            notes.append(&mut core.notes);
        }
        let full = batch.len() == RECV_BATCH;
        batch.clear();
        shared.deliver(&mut notes);
        if full {
            tokio::task::yield_now().await;
        }
    }
}
