//! `NativeEventcast`: the napi class `index.js` wraps.
//!
//! Received notifications cross into JS through ONE ThreadsafeFunction per
//! started period: a pump task drains [`crate::node::Events`] with
//! `recv_many(.., 1024)` and makes one non-blocking JS call per batch. The
//! ThreadsafeFunction is referenced (it keeps the process alive, like a bound
//! `dgram` socket) and is released when the pump ends after `stop()`, after a
//! final batch that drains what was still queued and ends with the `done` entry.
//!
//! Batch layout: one flat array, three slots per entry (no array per entry):
//! `0, [name, ...args], -` event (ready for `emit.apply`) · `1, code, message`
//! error · `2, senderId, count` gap · `3, -, -` done (last call of this period).

use super::convert::{ConvError, ToJs};
use super::{conv_error, throw, with_name_and_body, Raw};
use crate::node::{EncryptOptions, Events, Notification, Options};
use crate::Eventcast;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Status};
use napi_derive::napi;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Most notifications handed to JS in one call.
const BATCH: usize = 1024;
/// Most batches queued for the JS thread at once.
const IN_FLIGHT: usize = 4;

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
    /// Passphrase when encryption is on.
    pub encrypt_key: Option<String>,
    /// Use the 0.1.x legacy scheme.
    pub encrypt_legacy: Option<bool>,
}

fn ipv4(env: sys::napi_env, option: &str, s: &str) -> napi::Result<Ipv4Addr> {
    s.parse().map_err(|_| {
        throw(
            env,
            true,
            "ERR_INVALID_ADDRESS",
            &format!("{option} must be an IPv4 address, got {s:?}"),
        )
    })
}

impl NativeOptions {
    fn into_options(self, env: sys::napi_env) -> napi::Result<Options> {
        let port = u16::try_from(self.port).map_err(|_| {
            throw(
                env,
                false,
                "ERR_INVALID_PORT",
                "port must be within 0-65535",
            )
        })?;
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
            encrypt: self.encrypt_key.map(|key| EncryptOptions {
                key,
                legacy: self.encrypt_legacy.unwrap_or(false),
            }),
            ..Options::default()
        })
    }
}

/// A batch of notifications on its way to JS.
pub struct Batch {
    items: Vec<Notification>,
    done: bool,
    /// Held until the batch was handed to JS: bounds the batches in flight.
    _permit: Option<OwnedSemaphorePermit>,
}

impl ToNapiValue for Batch {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        build_batch(env, &val).map_err(|e| match e {
            ConvError::Pending => napi::Error::new(Status::PendingException, "exception pending"),
            ConvError::Payload(m) | ConvError::Napi(m) => napi::Error::from_reason(m),
        })
    }
}

fn build_batch(
    env: sys::napi_env,
    batch: &Batch,
) -> std::result::Result<sys::napi_value, ConvError> {
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

type BatchFn = ThreadsafeFunction<Batch, Unknown<'static>, Batch, Status, false>;

/// The receive pump of one started period.
struct Pump {
    shutdown: oneshot::Sender<()>,
    /// Puts the subscription back into `NativeEventcast::events` when it ends.
    task: tokio::task::JoinHandle<()>,
}

/// The native node; `index.js` wraps it in the public `Eventcast` class.
#[napi]
pub struct NativeEventcast {
    node: Eventcast,
    /// The one subscription of this instance while no pump holds it.
    events: Arc<Mutex<Option<Events>>>,
    pump: Arc<Mutex<Option<Pump>>>,
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
        NativeFailure {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

async fn pump(
    mut events: Events,
    on_batch: BatchFn,
    mut shutdown: oneshot::Receiver<()>,
    home: Arc<Mutex<Option<Events>>>,
) {
    // At most IN_FLIGHT batches wait in the ThreadsafeFunction's queue; when JS
    // falls further behind, notifications wait in the node's bounded
    // subscription (which counts what it has to drop) instead of piling up here.
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut buf = Vec::with_capacity(BATCH);
    loop {
        let permit = tokio::select! {
            p = in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        tokio::select! {
            n = events.recv_many(&mut buf, BATCH) => {
                if n == 0 {
                    break;
                }
                let items = std::mem::replace(&mut buf, Vec::with_capacity(BATCH));
                let batch = Batch { items, done: false, _permit: Some(permit) };
                on_batch.call(batch, ThreadsafeFunctionCallMode::NonBlocking);
            }
            _ = &mut shutdown => break,
        }
    }
    // Deliver whatever is still queued, then tell JS this period is over.
    while let Some(n) = events.try_recv() {
        buf.push(n);
    }
    on_batch.call(
        Batch {
            items: buf,
            done: true,
            _permit: None,
        },
        ThreadsafeFunctionCallMode::NonBlocking,
    );
    // Dropping `on_batch` releases the ThreadsafeFunction: nothing native keeps the loop alive.
    drop(on_batch);
    *lock(&home) = Some(events);
}

#[napi]
impl NativeEventcast {
    /// Creates a stopped node.
    #[napi(constructor)]
    pub fn new(env: Env, options: NativeOptions) -> napi::Result<Self> {
        let raw = env.raw();
        let options = options.into_options(raw)?;
        let node =
            Eventcast::new(options).map_err(|e| throw(raw, true, e.code(), &e.to_string()))?;
        let events = node.subscribe();
        Ok(NativeEventcast {
            node,
            events: Arc::new(Mutex::new(Some(events))),
            pump: Arc::new(Mutex::new(None)),
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
        on_batch: Function<'env, Batch, Unknown<'static>>,
    ) -> napi::Result<PromiseRaw<'env, Option<NativeFailure>>> {
        let tsfn: BatchFn = on_batch
            .build_threadsafe_function()
            .callee_handled::<false>()
            .build()?;
        let (tx, rx) = oneshot::channel();
        let events = lock(&self.events)
            .take()
            .unwrap_or_else(|| self.node.subscribe());
        let task = napi::bindgen_prelude::spawn(pump(events, tsfn, rx, self.events.clone()));
        let old = lock(&self.pump).replace(Pump { shutdown: tx, task });
        if let Some(old) = old {
            // index.js serializes start/stop, so this is only a safety net.
            let _ = old.shutdown.send(());
        }
        let node = self.node.clone();
        let pump = self.pump.clone();
        env.spawn_future(async move {
            match node.start().await {
                Ok(()) => Ok(None),
                Err(e) => {
                    finish_pump(&pump).await;
                    Ok(Some(NativeFailure::from(e)))
                }
            }
        })
    }

    /// Leaves the group and closes; the pump delivers what is queued, then the
    /// ThreadsafeFunction is released. Resolves to null or `{code, message}`.
    #[napi]
    pub fn stop<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Option<NativeFailure>>> {
        let node = self.node.clone();
        let pump = self.pump.clone();
        env.spawn_future(async move {
            let res = node.stop().await;
            finish_pump(&pump).await;
            Ok(res.err().map(NativeFailure::from))
        })
    }

    /// Sends `name(...args)` to the group. Throws `TypeError` `EPAYLOAD` before
    /// sending anything when the arguments cannot be carried.
    #[napi(ts_args_type = "name: string, args: unknown[]")]
    pub fn emit(&self, env: Env, name: Unknown, args: Unknown) -> napi::Result<()> {
        let raw = env.raw();
        with_name_and_body(raw, name.raw(), args.raw(), |name, body| {
            self.node
                .emit_encoded(name, body)
                .map_err(|e| throw(raw, e.code() == "EPAYLOAD", e.code(), &e.to_string()))
        })
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
                let host = js
                    .string(&a.ip().to_string())
                    .map_err(|e| conv_error(raw, e))?;
                let port = js.number(a.port() as f64).map_err(|e| conv_error(raw, e))?;
                js.object([("host", host), ("port", port)])
                    .map_err(|e| conv_error(raw, e))?
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
        let fields: [(&str, u64); 26] = [
            ("datagramsSent", s.datagrams_sent),
            ("datagramsReceived", s.datagrams_received),
            ("eventsDelivered", s.events_delivered),
            ("eventsSent", s.events_sent),
            ("ownDatagramsIgnored", s.own_datagrams_ignored),
            ("duplicatesIgnored", s.duplicates_ignored),
            ("repairsRequested", s.repairs_requested),
            ("repairsSent", s.repairs_sent),
            ("repairsReceived", s.repairs_received),
            ("gapsUnrecovered", s.gaps_unrecovered),
            ("repairRequestsSuppressed", s.repair_requests_suppressed),
            ("repairsSuppressed", s.repairs_suppressed),
            ("repairsRateLimited", s.repairs_rate_limited),
            ("repairRequestsIgnored", s.repair_requests_ignored),
            ("retentionDropped", s.retention_dropped),
            ("heartbeatsSent", s.heartbeats_sent),
            ("rejectedReplay", s.rejected_replay),
            ("rejectedMalformed", s.rejected_malformed),
            ("rejectedVersion", s.rejected_version),
            ("rejectedDecrypt", s.rejected_decrypt),
            ("rejectedLimits", s.rejected_limits),
            ("partialsEvicted", s.partials_evicted),
            ("reassemblyBytes", s.reassembly_bytes),
            ("retainedBytes", s.retained_bytes),
            ("notificationsDropped", s.notifications_dropped),
            ("sendErrors", s.send_errors),
        ];
        let mut js = ToJs::new(raw);
        let mut vals = Vec::with_capacity(fields.len());
        for (k, v) in fields {
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

/// Ends the current pump (if any) and waits until its final batch is queued
/// (and the subscription is back for the next start).
async fn finish_pump(pump: &Mutex<Option<Pump>>) {
    let p = lock(pump).take();
    if let Some(p) = p {
        let _ = p.shutdown.send(());
        let _ = p.task.await;
    }
}
