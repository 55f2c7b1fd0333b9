//! `NativeEventcast`: the napi class `index.js` wraps.
//!
//! Received notifications cross into JS through ONE ThreadsafeFunction per
//! started period, fed by a [`NotificationSink`]: the driver thread that
//! produced them appends them to a bounded queue and, if no JS call is pending
//! yet, schedules one. That call (on the JS thread) takes everything queued
//! at that moment — up to [`BATCH`] entries, scheduling another call for the
//! rest — so a burst costs one JS call, and a lone event reaches JS after a
//! single thread hop (driver thread → JS thread, no task in between). The
//! ThreadsafeFunction is referenced (it keeps the process alive, like a bound
//! `dgram` socket) and is released after `stop()`, whose final call delivers
//! what was still queued and ends with the `done` entry.
//!
//! Batch layout: one flat array, three slots per entry (no array per entry):
//! `0, [name, ...args], -` event (ready for `emit.apply`) · `1, code, message`
//! error · `2, senderId, count` gap · `3, -, -` done (last call of this period)
//! · `4, -, -` drain (the send queue has room again after a refused emit).

use super::convert::{ConvError, ToJs};
use super::{conv_error, throw, with_name_and_body, Raw};
use crate::node::{
    EncryptOptions, NatsOptions, NatsTls, Notification, NotificationSink, Options, Transport, SUBSCRIBER_CAPACITY,
};
use crate::Eventcast;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Status};
use napi_derive::napi;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most notifications handed to JS in one call (other JS work runs between calls).
const BATCH: usize = 4096;
/// Most notifications waiting for the JS thread; beyond it they are dropped
/// and counted (`notificationsDropped`), as for a lagging Rust subscription.
const QUEUE_CAPACITY: usize = SUBSCRIBER_CAPACITY;

/// Options as `index.js` passes them after validation (camelCase in JS).
#[napi(object)]
pub struct NativeOptions {
    /// Bind address.
    pub address: String,
    /// UDP port.
    pub port: u32,
    /// Multicast group.
    pub multicast_membership: String,
    /// Interface address, if any.
    pub multicast_interface: Option<String>,
    /// Loop our multicast back to this host.
    pub multicast_loopback: bool,
    /// Multicast TTL.
    pub multicast_ttl: u32,
    /// Largest datagram before chunking.
    pub max_payload_size: u32,
    /// Reassembly timeout in ms.
    pub message_ttl: u32,
    /// Repair requests per stalled message.
    pub message_retransmit_attempts: u32,
    /// Bound of the send queue in bytes (default 8 MiB).
    pub send_queue_bytes: Option<u32>,
    /// Passphrase when encryption is on.
    pub encrypt_key: Option<String>,
    /// Use the 0.1.x legacy scheme.
    pub encrypt_legacy: Option<bool>,
    /// The NATS transport, when `transport` names NATS servers.
    pub nats: Option<NativeNats>,
}

/// `transport: 'nats://...'` with `nats: {...}`, as `lib/options.js` resolves them.
#[napi(object)]
pub struct NativeNats {
    /// Server URLs.
    pub servers: Vec<String>,
    /// Authentication token.
    pub token: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub pass: Option<String>,
    /// A `.creds` file.
    pub creds_file: Option<String>,
    /// CA certificate (PEM path).
    pub tls_ca: Option<String>,
    /// Client certificate (PEM path).
    pub tls_cert: Option<String>,
    /// Client key (PEM path).
    pub tls_key: Option<String>,
    /// Connection name.
    pub name: Option<String>,
    /// Subject (default `eventcast.<port>`).
    pub subject: Option<String>,
}

impl From<NativeNats> for Transport {
    fn from(n: NativeNats) -> Transport {
        let mut nats = NatsOptions::new(n.servers);
        nats.token = n.token;
        nats.user = n.user;
        nats.pass = n.pass;
        nats.creds_file = n.creds_file;
        nats.tls = NatsTls { ca: n.tls_ca, cert: n.tls_cert, key: n.tls_key };
        nats.name = n.name;
        nats.subject = n.subject;
        Transport::Nats(nats)
    }
}

fn ipv4(env: sys::napi_env, option: &str, s: &str) -> napi::Result<Ipv4Addr> {
    s.parse()
        .map_err(|_| throw(env, true, "ERR_INVALID_ADDRESS", &format!("{option} must be an IPv4 address, got {s:?}")))
}

impl NativeOptions {
    fn into_options(self, env: sys::napi_env) -> napi::Result<Options> {
        let port = u16::try_from(self.port)
            .map_err(|_| throw(env, false, "ERR_INVALID_PORT", "port must be within 0-65535"))?;
        Ok(Options {
            address: ipv4(env, "address", &self.address)?,
            port,
            multicast_membership: ipv4(env, "multicastMembership", &self.multicast_membership)?,
            multicast_interface: match &self.multicast_interface {
                Some(s) => Some(ipv4(env, "multicastInterface", s)?),
                None => None,
            },
            multicast_loopback: self.multicast_loopback,
            multicast_ttl: self.multicast_ttl,
            max_payload_size: self.max_payload_size as usize,
            message_ttl: Duration::from_millis(self.message_ttl as u64),
            message_retransmit_attempts: self.message_retransmit_attempts,
            encrypt: self.encrypt_key.map(|key| EncryptOptions { key, legacy: self.encrypt_legacy.unwrap_or(false) }),
            send_queue_bytes: self.send_queue_bytes.map_or(crate::node::DEFAULT_SEND_QUEUE_BYTES, |b| b as usize),
            transport: self.nats.map_or(Transport::Multicast, Transport::from),
            ..Options::default()
        })
    }
}

/// What JS has not received yet, for one started period.
#[derive(Default)]
struct Queue {
    items: Vec<Notification>,
    /// A JS call is pending; it will take whatever is queued when it runs.
    scheduled: bool,
    /// `stop()` finished: the call that empties the queue also says `done`.
    finished: bool,
    done_sent: bool,
    /// Events there was no room for, per sender: reported to JS as `'gap'`
    /// as soon as there is room (see [`Queue::push`]).
    lost: HashMap<String, u64>,
}

/// Most senders whose unqueued events are tallied; beyond it they are
/// tallied under the empty sender id (still reported, as one gap).
const MAX_LOST_SENDERS: usize = 1024;

impl Queue {
    /// Queues `batch` within [`QUEUE_CAPACITY`]. An event that does not fit is
    /// dropped and tallied per sender, then reported as a `Gap` once there is
    /// room: a JS thread blocked for long makes events lost, never lost
    /// silently. Errors, gaps and drains are always queued (they are few).
    /// Returns how many events were dropped.
    fn push(&mut self, batch: &mut Vec<Notification>) -> u64 {
        self.report_lost();
        let mut dropped = 0;
        for n in batch.drain(..) {
            match n {
                Notification::Event(e) if self.items.len() >= QUEUE_CAPACITY => {
                    let key = if self.lost.len() < MAX_LOST_SENDERS || self.lost.contains_key(&e.sender.id) {
                        e.sender.id
                    } else {
                        String::new()
                    };
                    *self.lost.entry(key).or_insert(0) += 1;
                    dropped += 1;
                }
                n => self.items.push(n),
            }
        }
        dropped
    }

    /// Turns the tally of dropped events into gap reports while there is room.
    fn report_lost(&mut self) {
        if self.lost.is_empty() || self.items.len() + self.lost.len() > QUEUE_CAPACITY {
            return;
        }
        for (sender, count) in self.lost.drain() {
            self.items.push(Notification::Gap { sender, count });
        }
    }

    /// Marks a JS call as pending; true if none was, i.e. the caller must make it
    /// (outside the lock). At most one call waits at a time.
    fn claim_call(&mut self) -> bool {
        !std::mem::replace(&mut self.scheduled, true)
    }
}

/// The [`NotificationSink`] of one started period; owns its ThreadsafeFunction.
pub(crate) struct JsSink {
    queue: Mutex<Queue>,
    on_batch: BatchFn,
}

impl JsSink {
    /// After a receive on the JS thread ([`super::watch`]): queues what
    /// `Eventcast::receive` handed back (behind what other threads queued
    /// before; drops are counted on `node`), takes up to [`BATCH`] for a
    /// direct call, and schedules a JS call for any rest.
    pub(crate) fn take_received(self: &Arc<Self>, node: &Eventcast, received: &mut Vec<Notification>) -> Batch {
        let (items, call, dropped) = {
            let mut q = lock(&self.queue);
            let dropped = q.push(received);
            let items = take_at_most(&mut q.items, BATCH);
            q.report_lost();
            let call = !q.items.is_empty() && q.claim_call();
            (items, call, dropped)
        };
        node.report_dropped(dropped);
        if call {
            self.schedule();
        }
        Batch { items, done: false }
    }

    fn schedule(self: &Arc<Self>) {
        self.on_batch.call(Signal(self.clone()), ThreadsafeFunctionCallMode::NonBlocking);
    }

    /// After `stop()`: one last call delivers the rest and the `done` entry.
    fn finish(self: &Arc<Self>) {
        let call = {
            let mut q = lock(&self.queue);
            q.finished = true;
            q.claim_call()
        };
        if call {
            self.schedule();
        }
    }
}

/// `NotificationSink` is implemented for the `Arc` so `deliver` can hand a
/// clone to the JS call it schedules.
struct SinkHandle(Arc<JsSink>);

impl NotificationSink for SinkHandle {
    fn deliver(&self, batch: &mut Vec<Notification>) -> u64 {
        let (call, dropped) = {
            let mut q = lock(&self.0.queue);
            let dropped = q.push(batch);
            let call = !q.items.is_empty() && q.claim_call();
            (call, dropped)
        };
        if call {
            self.0.schedule();
        }
        dropped
    }
}

/// A scheduled JS call: converted on the JS thread into the batch array.
pub struct Signal(Arc<JsSink>);

/// What one JS call carries.
pub(crate) struct Batch {
    items: Vec<Notification>,
    done: bool,
}

impl Batch {
    /// Nothing to tell JS.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty() && !self.done
    }
}

/// The first `max` items of `items` (all of them when there are fewer).
fn take_at_most(items: &mut Vec<Notification>, max: usize) -> Vec<Notification> {
    if items.len() <= max {
        std::mem::take(items)
    } else {
        let rest = items.split_off(max);
        std::mem::replace(items, rest)
    }
}

impl Signal {
    /// Takes up to [`BATCH`] queued notifications (on the JS thread); schedules
    /// another call when more remain.
    fn take(&self) -> Batch {
        let sink = &self.0;
        let (batch, again) = {
            let mut q = lock(&sink.queue);
            let items = take_at_most(&mut q.items, BATCH);
            q.report_lost();
            let again = !q.items.is_empty();
            q.scheduled = again;
            let done = q.finished && !again && !q.done_sent;
            q.done_sent |= done;
            (Batch { items, done }, again)
        };
        if again {
            sink.schedule();
        }
        batch
    }
}

impl ToNapiValue for Signal {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        build_batch(env, &val.take()).map_err(|e| match e {
            ConvError::Pending => napi::Error::new(Status::PendingException, "exception pending"),
            ConvError::Payload(m) | ConvError::Napi(m) => napi::Error::from_reason(m),
        })
    }
}

pub(crate) fn build_batch(env: sys::napi_env, batch: &Batch) -> std::result::Result<sys::napi_value, ConvError> {
    let mut js = ToJs::new(env);
    let count = (batch.items.len() + batch.done as usize) * 3;
    let mut out = std::ptr::null_mut();
    ck(env, unsafe { sys::napi_create_array_with_length(env, count, &mut out) })?;
    // Events of a batch mostly share a name: one JS string per run of equal
    // names (fewer allocations, and EventEmitter's lookup of the same string is cheaper).
    let mut last_name: Option<(&str, sys::napi_value)> = None;
    let mut at = 0u32;
    let mut put = |js: &mut ToJs, kind: f64, a: sys::napi_value, b: Option<sys::napi_value>| {
        let k = js.number(kind)?;
        ck(env, unsafe { sys::napi_set_element(env, out, at, k) })?;
        ck(env, unsafe { sys::napi_set_element(env, out, at + 1, a) })?;
        if let Some(b) = b {
            ck(env, unsafe { sys::napi_set_element(env, out, at + 2, b) })?;
        }
        at += 3;
        Ok::<(), ConvError>(())
    };
    for n in &batch.items {
        match n {
            Notification::Event(ev) => {
                let name = match last_name {
                    Some((s, v)) if s == ev.name.as_str() => v,
                    _ => {
                        let v = js.string(&ev.name)?;
                        last_name = Some((ev.name.as_str(), v));
                        v
                    }
                };
                let args = js.array_after(name, &ev.args)?;
                put(&mut js, 0.0, args, None)?;
            }
            Notification::Error { code, message } => {
                let (c, m) = (js.string(code)?, js.string(message)?);
                put(&mut js, 1.0, c, Some(m))?;
            }
            Notification::Gap { sender, count } => {
                let (s, c) = (js.string(sender)?, js.number(*count as f64)?);
                put(&mut js, 2.0, s, Some(c))?;
            }
            Notification::Drain => {
                let zero = js.number(0.0)?;
                put(&mut js, 4.0, zero, None)?;
            }
        }
    }
    if batch.done {
        let k = js.number(3.0)?;
        ck(env, unsafe { sys::napi_set_element(env, out, at, k) })?;
    }
    Ok(out)
}

fn ck(env: sys::napi_env, status: sys::napi_status) -> std::result::Result<(), ConvError> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    let mut pending = false;
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    Err(if pending {
        ConvError::Pending
    } else {
        ConvError::Napi(format!("building a batch failed (napi status {status})"))
    })
}

type BatchFn = ThreadsafeFunction<Signal, Unknown<'static>, Signal, Status, false>;

/// The native node; `index.js` wraps it in the public `Eventcast` class.
#[napi]
pub struct NativeEventcast {
    node: Eventcast,
    /// The delivery of the current started period (shared with start/stop futures).
    sink: Arc<Mutex<Option<Arc<JsSink>>>>,
    /// Receiving on the JS thread, between `watch()` and `unwatch()`.
    #[cfg(unix)]
    watch: std::cell::RefCell<Option<super::watch::Watch>>,
}

/// `{code, message}` of a failed start/stop (the promise resolves to it, or to null).
#[napi(object)]
pub struct NativeFailure {
    /// Stable error code (`EADDRINUSE`, ...).
    pub code: String,
    /// Human-readable reason.
    pub message: String,
}

impl From<crate::Error> for NativeFailure {
    fn from(e: crate::Error) -> Self {
        NativeFailure { code: e.code().to_string(), message: e.to_string() }
    }
}

#[napi]
impl NativeEventcast {
    /// Creates a stopped node.
    #[napi(constructor)]
    pub fn new(env: Env, options: NativeOptions) -> napi::Result<Self> {
        let raw = env.raw();
        let options = options.into_options(raw)?;
        let node = Eventcast::new(options).map_err(|e| throw(raw, true, e.code(), &e.to_string()))?;
        Ok(NativeEventcast {
            node,
            sink: Arc::default(),
            #[cfg(unix)]
            watch: Default::default(),
        })
    }

    /// The instance id (16 hex chars).
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.node.id().to_string()
    }

    /// Binds, joins and starts delivering notifications to `onBatch`.
    /// Resolves to null, or to `{code, message}` on failure.
    #[napi(ts_args_type = "onBatch: (batch: Array<any>) => void")]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        on_batch: Function<'env, Signal, Unknown<'static>>,
    ) -> napi::Result<PromiseRaw<'env, Option<NativeFailure>>> {
        let on_batch: BatchFn = on_batch.build_threadsafe_function().callee_handled::<false>().build()?;
        let sink = Arc::new(JsSink { queue: Mutex::new(Queue::default()), on_batch });
        // index.js serializes start/stop, so an old sink here is only a safety net.
        finish_sink(&self.node, &self.sink);
        self.node.set_sink(Some(Arc::new(SinkHandle(sink.clone()))));
        *lock(&self.sink) = Some(sink);
        let node = self.node.clone();
        let current = self.sink.clone();
        env.spawn_future(async move {
            // Unix: no receive task; `watch()` reads the socket on the JS thread.
            #[cfg(unix)]
            let started = node.start_polled().await;
            #[cfg(not(unix))]
            let started = node.start().await;
            match started {
                Ok(()) => Ok(None),
                Err(e) => {
                    finish_sink(&node, &current);
                    Ok(Some(NativeFailure::from(e)))
                }
            }
        })
    }

    /// After `start()` resolved: receives on the JS thread from now on, calling
    /// `onBatch` directly (unix; elsewhere the node has its own receive task
    /// and this does nothing). Returns whether it is watching.
    #[napi(ts_args_type = "onBatch: (batch: Array<any>) => void")]
    pub fn watch(&self, env: Env, on_batch: Unknown) -> napi::Result<bool> {
        #[cfg(unix)]
        {
            self.unwatch();
            let Some(sink) = lock(&self.sink).clone() else { return Ok(false) };
            // NATS: no descriptor to watch; the node's receive task delivers to the sink.
            if self.node.receive_fd().is_none() {
                return Ok(false);
            }
            // SAFETY: env and on_batch are this JS call's live values.
            let watch = unsafe { super::watch::Watch::start(env.raw(), self.node.clone(), sink, on_batch.raw())? };
            *self.watch.borrow_mut() = Some(watch);
            Ok(true)
        }
        #[cfg(not(unix))]
        {
            let _ = (env, on_batch);
            Ok(false)
        }
    }

    /// Stops receiving on the JS thread (before `stop()`). Idempotent.
    #[napi]
    pub fn unwatch(&self) {
        #[cfg(unix)]
        if let Some(w) = self.watch.borrow_mut().take() {
            w.close();
        }
    }

    /// Leaves the group and closes; what is still queued is delivered, then the
    /// ThreadsafeFunction is released. Resolves to null or `{code, message}`.
    #[napi]
    pub fn stop<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Option<NativeFailure>>> {
        self.unwatch();
        let node = self.node.clone();
        let current = self.sink.clone();
        env.spawn_future(async move {
            let res = node.stop().await;
            finish_sink(&node, &current);
            Ok(res.err().map(NativeFailure::from))
        })
    }

    /// Sends `name(...args)` to the group. Throws `TypeError` `EPAYLOAD` before
    /// sending anything when the arguments cannot be carried, `Error`
    /// `EBACKPRESSURE` while the send queue is full (wait for a drain entry).
    #[napi(ts_args_type = "name: string, args: unknown[]")]
    pub fn emit(&self, env: Env, name: Unknown, args: Unknown) -> napi::Result<()> {
        let raw = env.raw();
        with_name_and_body(raw, name.raw(), args.raw(), |name, body| {
            self.node.emit_encoded(name, body).map_err(|e| throw(raw, e.code() == "EPAYLOAD", e.code(), &e.to_string()))
        })
    }

    /// Test hook: simulates a slow link, `bytesPerSec` or null to lift it.
    #[napi(js_name = "_throttleSends", ts_args_type = "bytesPerSec: number | null")]
    pub fn throttle_sends(&self, bytes_per_sec: Option<f64>) {
        self.node.throttle_sends(bytes_per_sec.map(|r| r.max(1.0) as u64));
    }

    /// Test hook: makes a driver task panic (`receive`, `timer`, `stall guard`, `send flush`).
    #[napi(js_name = "_injectFault")]
    pub fn inject_fault(&self, env: Env, task: String) -> napi::Result<()> {
        let task = crate::node::DriverTask::from_name(&task)
            .ok_or_else(|| throw(env.raw(), true, "EINVALIDOPTION", &format!("no driver task {task:?}")))?;
        self.node.inject_fault(task);
        Ok(())
    }

    /// The node's status: `stopped`, `starting`, `started` or `stopping`.
    #[napi(getter)]
    pub fn status(&self) -> String {
        status_str(self.node.status()).to_string()
    }

    /// The bound local address `{host, port}`, when started.
    #[napi(ts_return_type = "{ host: string, port: number } | null")]
    pub fn local_addr(&self, env: Env) -> napi::Result<Raw> {
        let raw = env.raw();
        let mut js = ToJs::new(raw);
        let out = match self.node.local_addr() {
            Some(a) => {
                let host = js.string(&a.ip().to_string()).map_err(|e| conv_error(raw, e))?;
                let port = js.number(a.port() as f64).map_err(|e| conv_error(raw, e))?;
                js.object([("host", host), ("port", port)]).map_err(|e| conv_error(raw, e))?
            }
            None => {
                let mut n = std::ptr::null_mut();
                unsafe { sys::napi_get_null(raw, &mut n) };
                n
            }
        };
        Ok(Raw(out))
    }

    /// The node's counters as a plain object (numbers).
    #[napi(ts_return_type = "Record<string, number>")]
    pub fn stats(&self, env: Env) -> napi::Result<Raw> {
        let raw = env.raw();
        let s = self.node.stats();
        let fields = s.fields();
        let mut js = ToJs::new(raw);
        let mut vals = Vec::with_capacity(fields.len());
        for (_, k, v) in fields {
            vals.push((k, js.number(v as f64).map_err(|e| conv_error(raw, e))?));
        }
        js.object(vals).map(Raw).map_err(|e| conv_error(raw, e))
    }
}

fn status_str(s: crate::node::Status) -> &'static str {
    use crate::node::Status as S;
    match s {
        S::Stopped => "stopped",
        S::Starting => "starting",
        S::Started => "started",
        S::Stopping => "stopping",
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Ends a started period's delivery: the node lets go of the sink, and one
/// last JS call takes what is still queued and says `done`. The
/// ThreadsafeFunction is released when that call has been made.
fn finish_sink(node: &Eventcast, current: &Mutex<Option<Arc<JsSink>>>) {
    node.set_sink(None);
    if let Some(sink) = lock(current).take() {
        sink.finish();
    }
}
