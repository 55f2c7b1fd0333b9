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

use super::counters::Counters;
use super::events::{Fanout, Notification};
use super::options::NatsOptions;
use super::status::StatusCell;
use crate::error::Error;
use crate::wire::bundle::BundleWriter;
use async_nats::{Client, ConnectErrorKind, Event, RequestErrorKind, Subject, Subscriber};
use bytes::Bytes;
use futures_util::FutureExt;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

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

/// Messages the client buffers for our subscription before it drops them as
/// a slow consumer (`natsSlowConsumer`; the engine never saw them, so a lost
/// message of a tracked sender is asked for again, else reported as a gap).
///
/// This is the receive side's memory bound and its longest backlog: at most
/// 1,024 messages wait, each a bundle of at most 64 KiB from our senders (at
/// most [`NATS_MAX_DATAGRAM`], 128 KiB, from anyone else, 128 MiB in all;
/// larger ones, up to the server's `max_payload`, are dropped as soon as the
/// receive task reaches them). 4,096 let a flood of valid 64 KiB bundles park
/// ~300 MB and seconds of forged events in front of every real one. 512 was
/// too few: a real 300,000-event burst between two nodes of one loaded
/// process then lost bundles (2 runs in 25, thousands of events as gaps);
/// 1,024 lost none in 40.
pub const NATS_SUBSCRIPTION_CAPACITY: usize = 1024;

/// Room left in the server's `max_payload` for a chunk's meta and encryption.
const MAX_PAYLOAD_HEADROOM: usize = 2048;

/// The client reports a slow consumer once per dropped message: thousands
/// a second under overload. `'error'` listeners hear of it at most this
/// often; `natsSlowConsumer` counts every one.
const SLOW_CONSUMER_NOTICE_EVERY: Duration = Duration::from_secs(1);

/// Largest bundle (several datagrams in one NATS message, see
/// [`crate::wire::bundle`]): far under the receivers' [`NATS_MAX_DATAGRAM`]
/// and the server's default `max_payload` (1 MiB), and big enough that a
/// burst of small events costs one NATS message per ~400 of them.
pub const NATS_BUNDLE_BYTES: usize = 64 * 1024;

/// Bytes the outbox may hold before a send "would block" (the node's send
/// queue, backpressure and `'drain'` take over): a burst of ~10,000 small
/// events or two 1 MiB messages.
pub const NATS_OUTBOX_BYTES: usize = 2 * 1024 * 1024;

/// A datagram sent at least this long after the previous one, with nothing
/// waiting, is published at once (no bundle, no hop through the writer): a
/// lone event keeps the lowest latency. Closer together, datagrams are part
/// of a burst and wait for the writer, which bundles them.
const BURST_GAP: Duration = Duration::from_micros(100);

/// How long the writer lets the outbox fill during a sustained burst (see
/// [`write_loop`]): the delay a burst's later events may take, against
/// thousands of thread wake-ups a second.
const LINGER: Duration = Duration::from_millis(1);

/// Messages waiting for the writer and what it is handing to the client.
#[derive(Default)]
struct Outbox {
    /// Bundles in the making, oldest first (only the last one still grows).
    bundles: VecDeque<BundleWriter>,
    /// Bytes in `bundles`.
    bytes: usize,
    /// The message the writer is publishing. Kept here, not by the writer,
    /// so that `flush` sends it if stop() aborts the writer meanwhile.
    in_flight: Option<Message>,
    /// When the last datagram was handed to us (see [`BURST_GAP`]).
    last_send: Option<Instant>,
    /// A writer task is running. Without one (before it starts, after
    /// stop() aborted it), every datagram is published directly, behind
    /// whatever the outbox still holds.
    writer: bool,
}

/// A NATS message ready to publish and the datagrams it carries.
#[derive(Clone)]
struct Message {
    payload: Bytes,
    datagrams: usize,
}

impl Outbox {
    /// The message to publish next: the one already in flight, else the
    /// oldest bundle, which becomes the one in flight (until `done`).
    fn next(&mut self) -> Option<Message> {
        if self.in_flight.is_none() {
            let b = self.bundles.pop_front()?;
            self.bytes -= b.len();
            self.in_flight = Some(into_message(b));
        }
        self.in_flight.clone()
    }

    /// The message in flight was handed to the client (or refused).
    fn done(&mut self) {
        self.in_flight = None;
    }
}

/// The NATS message of a bundle: a bundle, or the bare datagram when it holds one.
fn into_message(b: BundleWriter) -> Message {
    let datagrams = b.frames();
    Message { payload: b.finish(), datagrams }
}

struct PublisherState {
    client: Client,
    subject: Subject,
    /// Largest bundle: [`NATS_BUNDLE_BYTES`], or the server's `max_payload`
    /// when smaller (the client refuses larger messages). A datagram alone
    /// always fits: chunks leave room for their meta under `max_payload`.
    bundle_limit: usize,
    outbox: Mutex<Outbox>,
    /// Rung when the outbox stops being empty.
    doorbell: Notify,
    /// For counting and reporting datagrams the client refused.
    reporter: Reporter,
}

fn lock(outbox: &Mutex<Outbox>) -> MutexGuard<'_, Outbox> {
    // Consistent after any panic: each change is one push, pop or assignment.
    outbox.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sending half: cheap to clone, never waits.
#[derive(Clone)]
pub(super) struct Publisher(Arc<PublisherState>);

impl Publisher {
    fn new(client: Client, subject: Subject, reporter: Reporter) -> Self {
        let bundle_limit = NATS_BUNDLE_BYTES.min(client.server_info().max_payload);
        Publisher(Arc::new(PublisherState {
            client,
            subject,
            bundle_limit,
            outbox: Mutex::new(Outbox::default()),
            doorbell: Notify::new(),
            reporter,
        }))
    }

    /// Publishes `datagram` at once when it is alone (nothing waiting, the
    /// previous one at least [`BURST_GAP`] ago), else adds it to the outbox
    /// for the writer; `WouldBlock` when the outbox holds
    /// [`NATS_OUTBOX_BYTES`] (the caller queues it and retries). Order is
    /// kept: a datagram bypasses the outbox only when it is empty and
    /// nothing is in the writer's hands.
    pub(super) fn try_send(&self, datagram: &[u8]) -> io::Result<()> {
        let state = &*self.0;
        let now = Instant::now();
        let mut outbox = lock(&state.outbox);
        let previous = outbox.last_send.replace(now);
        let idle = outbox.bundles.is_empty() && outbox.in_flight.is_none();
        if !outbox.writer {
            return self.publish_behind(&mut outbox, datagram);
        }
        if idle && previous.is_none_or(|t| now.saturating_duration_since(t) >= BURST_GAP) {
            match self.publish_one(Bytes::copy_from_slice(datagram)) {
                // The client's queue is full: the outbox takes it, and the writer waits for room.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return result,
            }
        }
        if outbox.bytes > 0 && outbox.bytes + datagram.len() > NATS_OUTBOX_BYTES {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let was_empty = outbox.bytes == 0;
        let grown = match outbox.bundles.back_mut() {
            Some(last) if last.fits(datagram, state.bundle_limit) => {
                let before = last.len();
                last.push(datagram);
                last.len() - before
            }
            _ => {
                let b = BundleWriter::new(datagram);
                let len = b.len();
                outbox.bundles.push_back(b);
                len
            }
        };
        outbox.bytes += grown;
        drop(outbox);
        if was_empty {
            state.doorbell.notify_one();
        }
        Ok(())
    }

    /// The path without a writer: publishes what the outbox still holds,
    /// then `datagram`, each only if the client's command queue has room now.
    fn publish_behind(&self, outbox: &mut Outbox, datagram: &[u8]) -> io::Result<()> {
        // A full queue leaves the message in flight: first in line, as the writer's would be.
        while let Some(message) = outbox.next() {
            self.publish_or_count(message)?;
            outbox.done();
        }
        self.publish_one(Bytes::copy_from_slice(datagram))
    }

    /// Publishes `message`; a refusal other than a full queue is counted
    /// (not reported from here: the node's lock may be held) and the message dropped.
    fn publish_or_count(&self, message: Message) -> io::Result<()> {
        match self.publish_one(message.payload) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            Err(e) => {
                self.0.reporter.counters.send_errors.fetch_add(message.datagrams as u64, Ordering::Relaxed);
                tracing::warn!("eventcast: a message was not published on NATS: {e}");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    fn publish_one(&self, payload: Bytes) -> io::Result<()> {
        // The publish future validates, then sends on a bounded channel: its
        // first poll either completes or finds the channel full. Dropping it
        // unfinished sends nothing.
        match self.0.client.publish(self.0.subject.clone(), payload).now_or_never() {
            None => Err(io::ErrorKind::WouldBlock.into()),
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(io::Error::other(format!("NATS publish: {e}"))),
        }
    }

    /// Publishes what the outbox still holds (the writer is stopped by
    /// then) and waits until the server has everything published so far;
    /// bounded by `timeout`. What is left after it counts as send errors.
    pub(super) async fn flush(&self, timeout: Duration) {
        let state = &*self.0;
        let drain = async {
            loop {
                let Some(message) = lock(&state.outbox).next() else { break };
                let sent = state.client.publish(state.subject.clone(), message.payload).await;
                lock(&state.outbox).done();
                sent.map_err(|e| io::Error::other(e.to_string()))?;
            }
            state.client.flush().await.map_err(|e| io::Error::other(e.to_string()))
        };
        match tokio::time::timeout(timeout, drain).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => tracing::warn!("eventcast: NATS flush at stop failed: {e}"),
            Err(_) => tracing::warn!("eventcast: NATS flush at stop timed out after {timeout:?}"),
        }
        let left = {
            let mut outbox = lock(&state.outbox);
            let left = outbox.bundles.iter().map(|b| b.frames()).sum::<usize>()
                + outbox.in_flight.as_ref().map_or(0, |m| m.datagrams);
            (outbox.bundles, outbox.bytes, outbox.in_flight) = (VecDeque::new(), 0, None);
            left
        };
        if left > 0 {
            state.reporter.counters.send_errors.fetch_add(left as u64, Ordering::Relaxed);
            tracing::warn!("eventcast: stop() gave up on {left} datagram(s) the NATS client did not take");
        }
    }
}

/// Marks the writer as running while it exists (dropped when the task ends,
/// is aborted or panics: `try_send` then publishes directly).
struct WriterRunning(Arc<PublisherState>);

impl WriterRunning {
    fn new(state: &Arc<PublisherState>) -> Self {
        lock(&state.outbox).writer = true;
        WriterRunning(state.clone())
    }
}

impl Drop for WriterRunning {
    fn drop(&mut self) {
        lock(&self.0.outbox).writer = false;
    }
}

/// Writer task: publishes the outbox, one bundle per NATS message, oldest
/// first. While it publishes, `emit` keeps filling the next bundle, so the
/// bundles grow with the load by themselves; when the client's command
/// queue is full, the publish waits for room (the outbox then fills and the
/// node's send queue and `EBACKPRESSURE` take over).
pub(super) async fn write_loop(publisher: Publisher) {
    let state = &publisher.0;
    let _running = WriterRunning::new(state);
    let mut last_round: Option<Instant> = None;
    loop {
        state.doorbell.notified().await;
        // In a sustained burst (the last round just ended), let the outbox
        // fill for a moment: one wake-up and one message per LINGER instead
        // of one per few datagrams (each wake-up of this task also takes the
        // CPU from the emitting thread). A burst's first datagrams, and
        // anything after a pause, go at once.
        if last_round.is_some_and(|t| t.elapsed() < 2 * LINGER) {
            tokio::time::sleep(LINGER).await;
        }
        loop {
            let Some(message) = lock(&state.outbox).next() else { break };
            let datagrams = message.datagrams as u64;
            // No await between the publish completing and the message being
            // done: an abort (stop) either finds it unsent or done.
            let sent = state.client.publish(state.subject.clone(), message.payload).await;
            lock(&state.outbox).done();
            let reporter = &state.reporter;
            match sent {
                Ok(()) => {
                    _ = reporter.counters.nats.bundles_sent.fetch_add(u64::from(datagrams > 1), Ordering::Relaxed)
                }
                Err(e) => {
                    reporter.counters.send_errors.fetch_add(datagrams, Ordering::Relaxed);
                    let message = format!("a message was not published on {}: {e}", state.subject);
                    tracing::warn!("eventcast: {message}");
                    reporter.fanout.deliver(&mut vec![Notification::Error { code: "ENATSPUBLISH", message }]);
                }
            }
        }
        last_round = Some(Instant::now());
    }
}

/// A connected, subscribed transport.
/// Where the NATS transport reports: the node's counters, its
/// notifications, and whether it is running (connection events of a node
/// that is stopping are its own doing, not news).
#[derive(Clone)]
pub(super) struct Reporter {
    pub counters: Arc<Counters>,
    pub fanout: Arc<Fanout>,
    pub status: Arc<StatusCell>,
}

pub(super) struct Connection {
    pub publisher: Publisher,
    pub subscriber: Subscriber,
    /// Chunk size for the engine: the configured one, lowered to fit the server's `max_payload`.
    pub chunk: usize,
}

/// Connects to one of `nats.servers` (within [`NATS_START_TIMEOUT`]) with
/// `no_echo`, subscribes to the subject of `port`, and routes connection
/// events to `reporter`.
pub(super) async fn connect(nats: &NatsOptions, port: u16, id: &str, reporter: Reporter) -> Result<Connection, Error> {
    let events = reporter.clone();
    let client = open_client(nats, format!("eventcast {id}"), move |event| on_event(&events, event)).await?;
    let (chunk, subscriber, subject) = subscribe(&client, nats, port).await?;
    tracing::debug!("eventcast {id}: NATS connected, subject {subject}, chunk {chunk} bytes");
    Ok(Connection { publisher: Publisher::new(client, subject, reporter), subscriber, chunk })
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
        .subscription_capacity(NATS_SUBSCRIPTION_CAPACITY)
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
            "NATS messages for this node were dropped (slow consumer; reported at most once a second, \
             natsSlowConsumer counts them all); they are repaired or reported as gaps"
                .into(),
        )),
        Event::ServerError(e) => Some(("ENATSSERVER", format!("NATS server error: {e}"))),
        Event::ClientError(e) => Some(("ENATSCLIENT", format!("NATS client error: {e}"))),
        Event::Draining | Event::Closed => None,
    }
}

/// Counts a connection event and reports it (not while stopping: closing
/// the connection is ours then).
fn on_event(reporter: &Reporter, event: Event) {
    let counters = &reporter.counters.nats;
    match &event {
        // Also sent for the first connection (counted here only, so once).
        Event::Connected => match counters.connects.fetch_add(1, Ordering::Relaxed) {
            0 => {}
            _ => tracing::info!("eventcast: NATS reconnected"),
        },
        Event::Disconnected => _ = counters.disconnects.fetch_add(1, Ordering::Relaxed),
        Event::SlowConsumer(_) => {
            counters.slow_consumer.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            let mut last = counters.slow_noticed.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| now.saturating_duration_since(t) < SLOW_CONSUMER_NOTICE_EVERY) {
                return;
            }
            *last = Some(now);
        }
        Event::ServerError(_) => _ = counters.server_errors.fetch_add(1, Ordering::Relaxed),
        _ => {}
    }
    let running = reporter.status.is_running();
    if let (true, Some((code, message))) = (running, event_note(&event)) {
        tracing::warn!("eventcast: {message}");
        reporter.fanout.deliver(&mut vec![Notification::Error { code, message }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Eventcast, NatsOptions, Options, Transport};

    /// async-nats reports one `SlowConsumer` per dropped message; `'error'`
    /// listeners hear of it once a second at most, the counter sees all.
    #[test]
    fn slow_consumer_notices_reach_listeners_at_most_once_a_second() {
        let options = Options {
            transport: Transport::Nats(NatsOptions::new(["nats://127.0.0.1:4222"])),
            ..Options::with_port(9000)
        };
        let node = Eventcast::new(options).unwrap();
        let mut events = node.subscribe();
        // As if started: notices are reported only while the node runs.
        node.inner.shared.status.set(crate::Status::Started);
        let shared = &node.inner.shared;
        let reporter = Reporter {
            counters: shared.counters.clone(),
            fanout: shared.fanout.clone(),
            status: shared.status.clone(),
        };
        let notices = |events: &mut crate::Events| {
            std::iter::from_fn(|| events.try_recv())
                .filter(|n| matches!(n, Notification::Error { code: "ENATSSLOWCONSUMER", .. }))
                .count()
        };
        for _ in 0..1_000 {
            on_event(&reporter, Event::SlowConsumer(1));
        }
        assert_eq!(notices(&mut events), 1);
        assert_eq!(node.inner.shared.counters.nats.slow_consumer.load(Ordering::Relaxed), 1_000);
        // A second later, the next one is reported again.
        *node.inner.shared.counters.nats.slow_noticed.lock().unwrap() =
            Some(Instant::now() - SLOW_CONSUMER_NOTICE_EVERY);
        on_event(&reporter, Event::SlowConsumer(1));
        on_event(&reporter, Event::SlowConsumer(1));
        assert_eq!(notices(&mut events), 1);
        node.inner.shared.status.set(crate::Status::Stopped);
    }
}
