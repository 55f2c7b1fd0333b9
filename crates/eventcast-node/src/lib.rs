//! # eventcast-node — the Node.js addon
//!
//! A thin napi-rs 3 layer over [`eventcast::Eventcast`]: `index.js` holds the
//! public JS API, this module only converts values and moves them across the
//! thread boundary.
//!
//! * `convert` — JS ⇄ BSON directly through Node-API.
//! * `delivery` — the delivery queue of one started period: notifications
//!   reach JS in batches, directly from the JS thread's own receive (`watch`),
//!   through one ThreadsafeFunction when produced on other threads.
//! * `node` — `NativeEventcast`, the class `index.js` wraps; it starts and
//!   ends each period's delivery.
//! * `decided_in_rust` — what Rust decides and JS reads instead of re-deriving it:
//!   the advertised address, the bounds of numeric options.
//! * `log` — forwards `tracing` events to the JS logger, in batches.
//! * `raw` — the raw Node-API calls (outside `convert`) behind safe methods,
//!   their safety argued once.
//! * `watch` — receives on the JS thread through a libuv poll handle (unix).
#![warn(unsafe_op_in_unsafe_fn)]
// Every `unsafe` block says why it is sound; the Node-API calls are argued
// once, in `raw.rs`.
#![warn(clippy::undocumented_unsafe_blocks)]

mod convert;
mod decided_in_rust;
mod delivery;
mod emit;
mod exchange;
mod log;
mod node;
mod raw;
#[cfg(unix)]
mod watch;

// The layers below, under the names the modules here use for them.
use eventcast::{protocol, wire};

use convert::{ConvError, ToBson, ToJs};
use napi::bindgen_prelude::*;
use napi::{sys, Env, Status};
use napi_derive::napi;
use raw::JsEnv;

/// Throws `TypeError` (or `Error`) with `code` and turns it into the napi
/// error that tells napi-rs an exception is already pending.
pub(crate) fn throw(env: JsEnv, type_error: bool, code: &str, message: &str) -> napi::Error {
    env.throw_error(type_error, code, message);
    napi::Error::new(Status::PendingException, message.to_string())
}

/// Maps a conversion failure to a JS exception (`EPAYLOAD` → TypeError).
pub(crate) fn conv_error(env: JsEnv, e: ConvError) -> napi::Error {
    match e {
        ConvError::Payload(m) => throw(env, true, "EPAYLOAD", &format!("cannot send payload: {m}")),
        ConvError::Pending => napi::Error::new(Status::PendingException, "exception pending"),
        ConvError::Napi(m) => throw(env, false, "ENAPI", &m),
    }
}

/// A raw JS value a `#[napi]` function returns as is.
pub struct Raw(pub sys::napi_value);

impl ToNapiValue for Raw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

impl TypeName for Raw {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> napi::ValueType {
        napi::ValueType::Unknown
    }
}

/// Scratch buffers larger than this are not kept between calls.
const SCRATCH_KEEP: usize = 256 * 1024;

thread_local! {
    /// The JS thread's reusable buffer for encoding emit bodies (no allocation per emit).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes the JS array `args` as the body `{payload: [...]}` into the JS
/// thread's scratch buffer and hands the bytes to `f`.
pub(crate) fn with_body<T>(
    env: JsEnv,
    args: sys::napi_value,
    f: impl FnOnce(&[u8]) -> napi::Result<T>,
) -> napi::Result<T> {
    with_scratch(|buf| {
        let body = ToBson::new(env.raw(), buf).body(args).map_err(|e| conv_error(env, e))?;
        f(body.as_bytes())
    })
}

/// Runs `f` with the JS thread's cleared scratch buffer.
fn with_scratch<T>(f: impl FnOnce(&mut Vec<u8>) -> napi::Result<T>) -> napi::Result<T> {
    SCRATCH.with(|cell| {
        // A re-entrant call (a getter that emits) gets a fresh buffer.
        let mut owned;
        let mut guard = cell.try_borrow_mut();
        let buf: &mut Vec<u8> = match guard {
            Ok(ref mut b) => b,
            Err(_) => {
                owned = Vec::new();
                &mut owned
            }
        };
        buf.clear();
        let res = f(buf);
        if buf.capacity() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
        res
    })
}

/// Like [`with_body`] for the arguments of a call (`args`, no JS array),
/// and also reads the JS string `name` into the same scratch buffer (no
/// `String` allocation per emit): `f(name, body)`, the body typed as
/// known-good so the driver does not check it again.
pub(crate) fn with_name_and_body<T>(
    env: JsEnv,
    name: sys::napi_value,
    args: &[sys::napi_value],
    f: impl FnOnce(&str, crate::wire::ArgsBody<'_>) -> napi::Result<T>,
) -> napi::Result<T> {
    with_scratch(|buf| {
        let split = convert::append_js_string(env.raw(), name, buf).map_err(|e| conv_error(env, e))?;
        let (name, body) = ToBson::new(env.raw(), buf).body_of(args).map_err(|e| conv_error(env, e))?;
        debug_assert_eq!(name.len(), split);
        let name = std::str::from_utf8(name).map_err(|_| throw(env, false, "ENAPI", "event name is not UTF-8"))?;
        f(name, body)
    })
}

/// Encodes emit arguments the way they travel: the BSON document `{payload: [...]}`.
/// Exposed for tests of the conversion rules.
#[napi(js_name = "encodePayload", ts_args_type = "args: unknown[]", ts_return_type = "Buffer")]
pub fn encode_payload(env: Env, args: Unknown) -> napi::Result<Raw> {
    let env = JsEnv::of(&env);
    with_body(env, args.raw(), |bytes| ToJs::new(env.raw()).buffer(bytes).map(Raw).map_err(|e| conv_error(env, e)))
}

/// Decodes a `{payload: [...]}` BSON body into the JS arguments a receiver emits.
/// Exposed for tests of the conversion rules.
#[napi(js_name = "decodePayload", ts_return_type = "unknown[]")]
pub fn decode_payload(env: Env, body: Buffer) -> napi::Result<Raw> {
    let env = JsEnv::of(&env);
    // Walk first, iteratively: `from_reader` recurses and would overflow the
    // stack on a deeply nested body.
    crate::wire::check_shape(&body, crate::wire::depth::ARGS_BODY)
        .map_err(|e| throw(env, true, e.code(), &e.to_string()))?;
    let doc = bson::Document::from_reader(&body[..])
        .map_err(|e| throw(env, true, "EMALFORMED", &format!("not a BSON document: {e}")))?;
    let mut to_js = ToJs::new(env.raw());
    let out = match doc.get("payload") {
        Some(bson::Bson::Array(a)) => to_js.array(a),
        Some(other) => to_js.array(std::slice::from_ref(other)),
        None => to_js.array(&[]),
    };
    out.map(Raw).map_err(|e| conv_error(env, e))
}

/// Event names that stay on the instance that emits them (see
/// [`crate::protocol::names`], the one list for Rust and JS).
#[napi(js_name = "reservedEvents")]
pub fn reserved_events() -> Vec<&'static str> {
    crate::protocol::names::RESERVED_EVENTS.to_vec()
}

/// Prefix of the protocol's own event names, which applications cannot emit.
#[napi(js_name = "protocolPrefix")]
pub fn protocol_prefix() -> &'static str {
    crate::protocol::names::PROTOCOL_PREFIX
}

/// The addon's tokio runtime: like napi-rs' default (a multi-thread runtime,
/// one worker per CPU), built by `eventcast::driver_runtime_builder` so each
/// worker asks for a short scheduler slice (a woken worker preempts a busy
/// CPU sooner) and is named so `top -H` and `perf` show whose threads they are.
/// If it cannot be built here, napi-rs builds its default one at first use;
/// napi-rs also falls back to its default if it shut this one down (the last
/// Node environment using the addon exited) and the addon is used again.
/// Either way only the slice hint is lost.
#[napi_derive::module_init]
fn init_runtime() {
    match eventcast::driver_runtime_builder().build() {
        Ok(rt) => napi::bindgen_prelude::create_custom_tokio_runtime(rt),
        Err(e) => tracing::debug!("eventcast: napi-rs' default runtime instead of ours: {e}"),
    }
}
