//! `NativeEventcast`: the napi class `index.js` wraps, and the options it is
//! created with.
//!
//! Each started period delivers its notifications through one
//! [`JsSink`] (`delivery.rs`, which also documents the batch layout); this
//! class creates it in `start()`, hands it to the JS thread's own receive in
//! `watch()` (`watch.rs`), and ends it after `stop()`.

use super::convert::ToJs;
use super::delivery::{lock, JsSink, Signal};
use super::raw::JsEnv;
use super::{conv_error, throw, Raw};
use eventcast::Eventcast;
use eventcast::{EncryptOptions, MulticastInterface, NatsOptions, NatsTls, Options, PresenceOptions, Transport};
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Options as `index.js` passes them after validation (camelCase in JS).
#[napi(object)]
pub struct NativeOptions {
    /// Bind address (IPv4 or IPv6).
    pub address: String,
    /// UDP port.
    pub port: u32,
    /// Multicast group, IPv4 or IPv6 (`lib/options.js` has moved a `%zone` into `multicast_interface`).
    pub multicast_membership: String,
    /// Interface: a name, an address of it, or an index in digits (`lib/options.js` turns a number into them).
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
    /// The label advertised to peers (`lib/options.js` defaults it to `process.title`).
    pub name: Option<String>,
    /// The advertised application object, as `JSON.stringify(meta)`.
    pub meta_json: Option<String>,
    /// `presence: false`.
    pub presence_off: Option<bool>,
    /// `presence.interval` in ms.
    pub presence_interval: Option<u32>,
    /// `presence.timeout` in ms.
    pub presence_timeout: Option<u32>,
    /// `presence.maxPeers`.
    pub presence_max_peers: Option<u32>,
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
    /// The LAN group the `encrypt` key is bound to (default `224.0.0.1`; IPv4 or IPv6).
    pub group: Option<String>,
}

impl NativeNats {
    /// The NATS transport these settings describe (`nats.group` parsed here;
    /// `lib/options.js` has already refused a non-multicast one).
    fn into_transport(self, env: JsEnv) -> napi::Result<Transport> {
        let n = self;
        let group = match &n.group {
            Some(g) => Some(ip(env, "nats.group", g)?),
            None => None,
        };
        let mut nats = NatsOptions::new(n.servers);
        nats.token = n.token;
        nats.user = n.user;
        nats.pass = n.pass;
        nats.creds_file = n.creds_file;
        nats.tls = NatsTls { ca: n.tls_ca, cert: n.tls_cert, key: n.tls_key };
        nats.name = n.name;
        nats.subject = n.subject;
        nats.group = group;
        Ok(Transport::Nats(nats))
    }
}

fn ip(env: JsEnv, option: &str, s: &str) -> napi::Result<IpAddr> {
    s.parse()
        .map_err(|_| throw(env, true, "ERR_INVALID_ADDRESS", &format!("{option} must be an IP address, got {s:?}")))
}

fn interface(env: JsEnv, s: &str) -> napi::Result<MulticastInterface> {
    s.parse().map_err(|reason| throw(env, true, "ERR_INVALID_ADDRESS", &format!("multicastInterface: {reason}")))
}

impl NativeOptions {
    fn into_options(self, env: JsEnv) -> napi::Result<Options> {
        let port = u16::try_from(self.port)
            .map_err(|_| throw(env, false, "ERR_INVALID_PORT", "port must be within 0-65535"))?;
        Ok(Options {
            address: ip(env, "address", &self.address)?,
            port,
            multicast_membership: ip(env, "multicastMembership", &self.multicast_membership)?,
            multicast_interface: match &self.multicast_interface {
                Some(s) => Some(interface(env, s)?),
                None => None,
            },
            multicast_loopback: self.multicast_loopback,
            multicast_ttl: self.multicast_ttl,
            max_payload_size: self.max_payload_size as usize,
            message_ttl: Duration::from_millis(self.message_ttl as u64),
            message_retransmit_attempts: self.message_retransmit_attempts,
            encrypt: self.encrypt_key.map(|key| EncryptOptions { key, legacy: self.encrypt_legacy.unwrap_or(false) }),
            send_queue_bytes: self.send_queue_bytes.map_or(eventcast::DEFAULT_SEND_QUEUE_BYTES, |b| b as usize),
            transport: match self.nats {
                Some(n) => n.into_transport(env)?,
                None => Transport::Multicast,
            },
            name: self.name,
            meta: match &self.meta_json {
                Some(json) => {
                    eventcast::meta_from_json(json).map_err(|e| throw(env, true, e.code(), &e.to_string()))?
                }
                None => bson::Document::new(),
            },
            presence: if self.presence_off == Some(true) {
                None
            } else {
                let d = PresenceOptions::default();
                let ms = |v: Option<u32>, d: Duration| v.map_or(d, |v| Duration::from_millis(u64::from(v)));
                Some(PresenceOptions {
                    interval: ms(self.presence_interval, d.interval),
                    timeout: ms(self.presence_timeout, d.timeout),
                    max_peers: self.presence_max_peers.map_or(d.max_peers, |n| n as usize),
                })
            },
            ..Options::default()
        })
    }
}

/// The native node; `index.js` wraps it in the public `Eventcast` class.
#[napi]
pub struct NativeEventcast {
    /// Also read by `super::decided_in_rust` (methods that report what Rust decided).
    pub(super) node: Eventcast,
    /// The delivery of the current started period (shared with start/stop futures).
    sink: Arc<Mutex<Option<Arc<JsSink>>>>,
    /// Receiving on the JS thread, between `watch()` and `unwatch()`.
    #[cfg(unix)]
    watch: std::cell::RefCell<Option<super::watch::Watch>>,
    /// Where `emitArgs` finds this node (freed with it).
    slot: super::emit::Slot,
}

/// `{code, message}` of a failed start/stop (the promise resolves to it, or to null).
#[napi(object)]
pub struct NativeFailure {
    /// Stable error code (`EADDRINUSE`, ...).
    pub code: String,
    /// Human-readable reason.
    pub message: String,
}

impl From<eventcast::Error> for NativeFailure {
    fn from(e: eventcast::Error) -> Self {
        NativeFailure { code: e.code().to_string(), message: e.to_string() }
    }
}

#[napi]
impl NativeEventcast {
    /// Creates a stopped node.
    #[napi(constructor)]
    pub fn new(env: Env, options: NativeOptions) -> napi::Result<Self> {
        let raw = JsEnv::of(&env);
        let options = options.into_options(raw)?;
        let node = Eventcast::new(options).map_err(|e| throw(raw, true, e.code(), &e.to_string()))?;
        Ok(NativeEventcast {
            slot: super::emit::Slot::register(node.clone()),
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
        let sink = JsSink::new(on_batch.build_threadsafe_function().callee_handled::<false>().build()?);
        // index.js serializes start/stop, so an old sink here is only a safety net.
        finish_sink(&self.node, &self.sink);
        self.node.set_sink(Some(sink.handle()));
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
            let watch = super::watch::Watch::start(JsEnv::of(&env), self.node.clone(), sink, on_batch.raw())?;
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

    /// This node's number for `emitArgs(slot, name, ...args)`, the emit path
    /// (see `crates/eventcast-node/src/emit.rs`).
    #[napi(getter)]
    pub fn slot(&self) -> u32 {
        self.slot.number()
    }

    /// Test hook: simulates a slow link, `bytesPerSec` or null to lift it.
    #[napi(js_name = "_throttleSends", ts_args_type = "bytesPerSec: number | null")]
    pub fn throttle_sends(&self, bytes_per_sec: Option<f64>) {
        self.node.throttle_sends(bytes_per_sec.map(|r| r.max(1.0) as u64));
    }

    /// Test hook: makes a driver task panic (`receive`, `timer`, `stall guard`, `send flush`).
    #[napi(js_name = "_injectFault")]
    pub fn inject_fault(&self, env: Env, task: String) -> napi::Result<()> {
        let task = eventcast::DriverTask::from_name(&task)
            .ok_or_else(|| throw(JsEnv::of(&env), true, "EINVALIDOPTION", &format!("no driver task {task:?}")))?;
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
        let raw = JsEnv::of(&env);
        let mut js = ToJs::new(raw.raw());
        let out = match self.node.local_addr() {
            Some(a) => {
                let host = js.string(&a.ip().to_string()).map_err(|e| conv_error(raw, e))?;
                let port = js.number(a.port() as f64).map_err(|e| conv_error(raw, e))?;
                js.object([("host", host), ("port", port)]).map_err(|e| conv_error(raw, e))?
            }
            None => raw.null().map_err(napi::Error::from)?,
        };
        Ok(Raw(out))
    }

    /// The peers this node knows, as a JSON array (`index.js` parses it;
    /// the shape is `eventcast::peer_json`'s, one source for JS and the CLI).
    #[napi]
    pub fn peers_json(&self) -> String {
        let peers: Vec<serde_json::Value> = self.node.peers().iter().map(eventcast::peer_json).collect();
        serde_json::Value::Array(peers).to_string()
    }

    /// Changes the advertised `meta` (`JSON.stringify(meta)`); throws
    /// `EINVALIDOPTION` when it is too large or presence is off.
    #[napi]
    pub fn set_meta(&self, env: Env, meta_json: String) -> napi::Result<()> {
        let raw = JsEnv::of(&env);
        let meta = eventcast::meta_from_json(&meta_json).map_err(|e| throw(raw, true, e.code(), &e.to_string()))?;
        self.node.set_meta(meta).map_err(|e| throw(raw, true, e.code(), &e.to_string()))
    }

    /// The node's counters as a plain object (numbers).
    #[napi(ts_return_type = "Record<string, number>")]
    pub fn stats(&self, env: Env) -> napi::Result<Raw> {
        let raw = JsEnv::of(&env);
        let s = self.node.stats();
        let fields = s.fields();
        let mut js = ToJs::new(raw.raw());
        let mut vals = Vec::with_capacity(fields.len());
        for (_, k, v) in fields {
            vals.push((k, js.number(v as f64).map_err(|e| conv_error(raw, e))?));
        }
        js.object(vals).map(Raw).map_err(|e| conv_error(raw, e))
    }
}

fn status_str(s: eventcast::Status) -> &'static str {
    use eventcast::Status as S;
    match s {
        S::Stopped => "stopped",
        S::Starting => "starting",
        S::Started => "started",
        S::Stopping => "stopping",
    }
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
