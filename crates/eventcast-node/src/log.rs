//! Forwards the Rust side's `tracing` events into the JS (bunyan-style) logger.
//!
//! A global `tracing` subscriber with one [`Forward`] layer buffers
//! `(level, target, message)` records; the first record of an empty buffer
//! schedules one call of a weak (unref'd, never keeps the process alive)
//! ThreadsafeFunction, which hands the whole buffer to JS at once. The
//! threshold is a bunyan level (10 trace … 50 error; 0 = off) set from JS.

use super::raw::JsEnv;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Status};
use napi_derive::napi;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Records kept at most while JS has not collected them (older ones are dropped).
const MAX_BUFFERED: usize = 10_000;

static THRESHOLD: AtomicU32 = AtomicU32::new(0);
static BUFFER: Mutex<Vec<(u32, String, String)>> = Mutex::new(Vec::new());
static SINK: OnceLock<Mutex<Option<LogFn>>> = OnceLock::new();

type LogFn = ThreadsafeFunction<Flush, Unknown<'static>, Flush, Status, false, true>;

fn bunyan_level(l: &Level) -> u32 {
    match *l {
        Level::ERROR => 50,
        Level::WARN => 40,
        Level::INFO => 30,
        Level::DEBUG => 20,
        Level::TRACE => 10,
    }
}

fn wanted(l: &Level) -> bool {
    let t = THRESHOLD.load(Ordering::Relaxed);
    t != 0 && bunyan_level(l) >= t
}

/// Asks JS to collect the buffered records. (Not zero-sized: napi-rs passes
/// no argument at all for a zero-sized value.)
pub struct Flush {
    _nonzero: u8,
}

impl ToNapiValue for Flush {
    unsafe fn to_napi_value(env: sys::napi_env, _val: Self) -> napi::Result<sys::napi_value> {
        // SAFETY: napi-rs converts a ThreadsafeFunction's value on the JS
        // thread, inside the call it is making with this env.
        let env = unsafe { JsEnv::new(env) };
        let records = std::mem::take(&mut *BUFFER.lock().unwrap_or_else(|p| p.into_inner()));
        let mut js = super::convert::ToJs::new(env.raw());
        let out = env.array(records.len())?;
        for (i, (level, target, msg)) in records.iter().enumerate() {
            let rec = env.array(3)?;
            let vals = [
                js.number(*level as f64).map_err(|_| napi::Error::from_reason("log level"))?,
                js.string(target).map_err(|_| napi::Error::from_reason("log target"))?,
                js.string(msg).map_err(|_| napi::Error::from_reason("log message"))?,
            ];
            for (j, v) in vals.into_iter().enumerate() {
                env.set_element(rec, j as u32, v)?;
            }
            env.set_element(out, i as u32, rec)?;
        }
        Ok(out)
    }
}

#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// The layer that buffers events for JS.
struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // The threshold changes at run time: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        wanted(metadata.level())
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if !wanted(meta.level()) {
            return;
        }
        let mut m = Message::default();
        event.record(&mut m);
        m.text.push_str(&m.fields);
        let first = {
            let mut buf = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
            if buf.len() >= MAX_BUFFERED {
                return;
            }
            buf.push((bunyan_level(meta.level()), meta.target().to_string(), m.text));
            buf.len() == 1
        };
        if first {
            if let Some(sink) = SINK.get() {
                if let Some(f) = sink.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                    f.call(Flush { _nonzero: 0 }, ThreadsafeFunctionCallMode::NonBlocking);
                }
            }
        }
    }
}

/// Installs `sink` as the receiver of Rust log records:
/// `sink(records: Array<[level: number, target: string, message: string]>)`.
/// The first call installs the global `tracing` subscriber.
#[napi(js_name = "setLogSink", ts_args_type = "sink: (records: Array<[number, string, string]>) => void")]
pub fn set_log_sink(sink: Function<'_, Flush, Unknown<'static>>) -> napi::Result<()> {
    let f: LogFn = sink.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?;
    let slot = SINK.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forward));
        Mutex::new(None)
    });
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    Ok(())
}

/// Sets the lowest bunyan level forwarded (10 trace … 50 error, 60 fatal); 0 turns forwarding off.
#[napi(js_name = "setLogLevel")]
pub fn set_log_level(_env: Env, level: u32) {
    THRESHOLD.store(level, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}
