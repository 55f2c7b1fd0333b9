//! The delivery of one started period: notifications on their way to JS.
//!
//! Received notifications cross into JS through ONE ThreadsafeFunction per
//! started period, fed by a [`JsSink`]: the driver thread that produced them
//! appends them to a bounded queue and, if no JS call is pending yet,
//! schedules one. That call (on the JS thread) takes everything queued at
//! that moment — up to [`BATCH`] entries, scheduling another call for the
//! rest — so a burst costs one JS call, and a lone event reaches JS after a
//! single thread hop (driver thread → JS thread, no task in between). The
//! ThreadsafeFunction is referenced (it keeps the process alive, like a bound
//! `dgram` socket) and is released after `stop()`, whose final call delivers
//! what was still queued and ends with the `done` entry. A receive on the JS
//! thread itself (`watch`) gets its notifications back from
//! `Eventcast::receive` and hands them over with [`JsSink::take_received`].
//!
//! Batch layout: an array with one array per entry. An event is
//! `[name, ...args]`, ready for `emit.apply`; anything else is `[tag, ...]`,
//! a [`Tag`] (a number, where an event name is a string) then values whose
//! meaning the tag gives. The tags are defined here only; `index.js` reads
//! them through `batchTags()`.
//!
//! The entries are made by calling a JS function (registered once per JS
//! thread with `setDelivery`) with the entry's values as arguments, `this`
//! being the batch: one Node-API call per entry, where building each entry's
//! array element by element took one call per value and was the largest
//! cost of a received event. Small binaries become Buffers over a shared
//! 8 KiB ArrayBuffer, as Node's own `Buffer.from` does for small sizes,
//! through the registered Buffer maker (see [`super::convert::ToJs::buffer`]).
//!
//! This module is what `node` (the JS class, which creates and ends a
//! period's sink) and `watch` (the JS thread's own receive) share; neither
//! depends on the other for it.

use super::convert::{ConvError, ToJs};
use super::raw::{JsEnv, JsRef, RawError};
use eventcast::{Eventcast, Notification, NotificationSink, SUBSCRIBER_CAPACITY};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Status};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// What a batch entry is: its first slot. The numbers are what JS sees;
/// `index.js` takes them from [`batch_tags`], never writes them itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    /// `error, code, message`: an error to report (`'error'` with `code`).
    Error = 1,
    /// `gap, senderId, count`: messages lost beyond repair (`'gap'`).
    Gap = 2,
    /// `done, -, -`: the last entry of this started period.
    Done = 3,
    /// `drain, -, -`: the send queue has room again after a refused emit.
    Drain = 4,
    /// `peerUp, peerJson, -`: a peer appeared (`'peerUp'`).
    PeerUp = 5,
    /// `peerDown, peerJson, reason`: a peer left (`'peerDown'`).
    PeerDown = 6,
    /// `peerUpdate, peerJson, -`: a peer's name or meta changed (`'peerUpdate'`).
    PeerUpdate = 7,
    /// `request, name, fromId, rid, timeoutMs, ...args`: a request for a JS handler.
    Request = 8,
    /// `reply, rid, peerId, value`: a reply to a JS request.
    Reply = 9,
    /// `replyError, rid, peerId, message, code`: an error reply to a JS request.
    ReplyError = 10,
}

impl Tag {
    /// Every tag, with the name JS knows it by.
    const ALL: [(Tag, &'static str); 10] = [
        (Tag::Error, "error"),
        (Tag::Gap, "gap"),
        (Tag::Done, "done"),
        (Tag::Drain, "drain"),
        (Tag::PeerUp, "peerUp"),
        (Tag::PeerDown, "peerDown"),
        (Tag::PeerUpdate, "peerUpdate"),
        (Tag::Request, "request"),
        (Tag::Reply, "reply"),
        (Tag::ReplyError, "replyError"),
    ];
}

/// The tags of batch entries other than events, `{error, gap, done, drain, peerUp, ..., replyError}` → number:
/// the one definition `index.js` switches on.
// (Typed as a record, not field by field: the names are listed only in `Tag::ALL`.)
#[napi_derive::napi(js_name = "batchTags", ts_return_type = "Record<string, number>")]
pub fn batch_tags(env: Env) -> napi::Result<super::Raw> {
    let raw = JsEnv::of(&env);
    let mut js = ToJs::new(raw.raw());
    let mut fields = Vec::with_capacity(Tag::ALL.len());
    for (tag, name) in Tag::ALL {
        fields.push((name, js.number(tag as u8 as f64).map_err(|e| super::conv_error(raw, e))?));
    }
    js.object(fields).map(super::Raw).map_err(|e| super::conv_error(raw, e))
}

/// Most notifications handed to JS in one call (other JS work runs between calls).
const BATCH: usize = 4096;
/// Most notifications waiting for the JS thread; beyond it they are dropped
/// and counted (`notificationsDropped`), as for a lagging Rust subscription.
const QUEUE_CAPACITY: usize = SUBSCRIBER_CAPACITY;

/// What JS has not received yet, for one started period.
#[derive(Default)]
struct Queue {
    /// A deque: a call takes [`BATCH`] from the front of up to
    /// [`QUEUE_CAPACITY`] without moving the rest.
    items: VecDeque<Notification>,
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
                        e.sender.id.clone()
                    } else {
                        String::new()
                    };
                    *self.lost.entry(key).or_insert(0) += 1;
                    dropped += 1;
                }
                n => self.items.push_back(n),
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
            self.items.push_back(Notification::Gap { sender, count });
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
    /// The delivery of a new started period, calling `on_batch` on the JS thread.
    pub(crate) fn new(on_batch: BatchFn) -> Arc<JsSink> {
        Arc::new(JsSink { queue: Mutex::new(Queue::default()), on_batch })
    }

    /// What the node delivers to (see [`crate::Eventcast::set_sink`]).
    pub(crate) fn handle(self: &Arc<Self>) -> Arc<dyn NotificationSink> {
        Arc::new(SinkHandle(self.clone()))
    }

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
    pub(crate) fn finish(self: &Arc<Self>) {
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
fn take_at_most(items: &mut VecDeque<Notification>, max: usize) -> Vec<Notification> {
    if items.len() <= max {
        Vec::from(std::mem::take(items))
    } else {
        items.drain(..max).collect()
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
        // SAFETY: napi-rs converts a ThreadsafeFunction's value on the JS
        // thread, inside the call it is making with this env.
        let env = unsafe { JsEnv::new(env) };
        build_batch(env, &val.take()).map_err(|e| match e {
            ConvError::Pending => napi::Error::new(Status::PendingException, "exception pending"),
            ConvError::Payload(m) | ConvError::Napi(m) => napi::Error::from_reason(m),
        })
    }
}

/// The JS functions batches are built with, registered once per JS thread by
/// [`set_delivery`] (`index.js` does it as it loads).
struct Helpers {
    /// The env they belong to (the one env of this thread, checked anyway).
    env: sys::napi_env,
    /// `function (...entry) { this.push(entry) }`: appends one entry to the batch.
    collect: JsRef,
    /// `(arrayBuffer, offset, length) => Buffer`: a Buffer over part of an ArrayBuffer.
    buffer: JsRef,
}

thread_local! {
    /// This JS thread's [`Helpers`]; taken (not deleted: Node releases an
    /// env's references itself) when the env is torn down.
    static HELPERS: RefCell<Option<Helpers>> = const { RefCell::new(None) };
}

/// Registers the two JS functions batches are built with: `collect` is
/// called with `this` = the batch and one entry's values as arguments, and
/// must append them (as an array) to the batch; `buffer(arrayBuffer, offset,
/// length)` must return a Buffer over that part of the ArrayBuffer. A second
/// registration replaces the first.
#[napi_derive::napi(
    js_name = "setDelivery",
    ts_args_type = "collect: (this: unknown[][], ...entry: unknown[]) => void, buffer: (ab: ArrayBuffer, offset: number, length: number) => Buffer"
)]
pub fn set_delivery(env: Env, collect: Unknown, buffer: Unknown) -> napi::Result<()> {
    let raw = JsEnv::of(&env);
    let helpers =
        Helpers { env: raw.raw(), collect: raw.reference(collect.raw())?, buffer: raw.reference(buffer.raw())? };
    let old = HELPERS.with_borrow_mut(|h| h.replace(helpers));
    match old {
        Some(old) if old.env == raw.raw() => {
            old.collect.delete(raw);
            old.buffer.delete(raw);
        }
        // First registration on this thread: forget the helpers when the env goes.
        _ => raw.add_cleanup_hook(forget_helpers, std::ptr::null_mut())?,
    }
    Ok(())
}

/// Env teardown: Node releases the references itself; drop our handles to them.
unsafe extern "C" fn forget_helpers(_: *mut std::ffi::c_void) {
    HELPERS.with_borrow_mut(|h| h.take());
}

/// The JS array of `batch`: one array per entry, see the module doc.
pub(crate) fn build_batch(env: JsEnv, batch: &Batch) -> std::result::Result<sys::napi_value, ConvError> {
    let (collect, buffer) = HELPERS.with_borrow(|h| match h {
        Some(h) if h.env == env.raw() => Ok((env.reference_value(&h.collect)?, env.reference_value(&h.buffer)?)),
        _ => Err(ConvError::Napi("building a batch: setDelivery() was not called on this thread".into())),
    })?;
    let mut js = ToJs::with_buffers(env.raw(), buffer);
    let out = env.array(0)?;
    // Events of a batch mostly share a name: one JS string per run of equal
    // names (fewer allocations, and EventEmitter's lookup of the same string is cheaper).
    let mut last_name: Option<(&str, sys::napi_value)> = None;
    let mut entry: Vec<sys::napi_value> = Vec::new();
    for n in &batch.items {
        entry.clear();
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
                entry.push(name);
                for arg in &ev.args {
                    entry.push(js.value(arg)?);
                }
            }
            Notification::Error { code, message } => {
                entry.extend([js.number(Tag::Error as u8 as f64)?, js.string(code)?, js.string(message)?]);
            }
            Notification::Gap { sender, count } => {
                entry.extend([js.number(Tag::Gap as u8 as f64)?, js.string(sender)?, js.number(*count as f64)?]);
            }
            Notification::Drain => entry.push(js.number(Tag::Drain as u8 as f64)?),
            // A peer travels as the JSON of `eventcast::peer_json` (one shape
            // for JS and the CLI; peers change rarely, so parsing is no cost).
            Notification::PeerUp(p) => {
                let json = eventcast::peer_json(p).to_string();
                entry.extend([js.number(Tag::PeerUp as u8 as f64)?, js.string(&json)?]);
            }
            Notification::PeerDown { peer, reason } => {
                let json = eventcast::peer_json(peer).to_string();
                entry.extend([js.number(Tag::PeerDown as u8 as f64)?, js.string(&json)?, js.string(reason.as_str())?]);
            }
            Notification::PeerUpdate(p) => {
                let json = eventcast::peer_json(p).to_string();
                entry.extend([js.number(Tag::PeerUpdate as u8 as f64)?, js.string(&json)?]);
            }
            Notification::Request(r) => {
                entry.extend([
                    js.number(Tag::Request as u8 as f64)?,
                    js.string(&r.name)?,
                    js.string(&r.from.id)?,
                    js.string(&r.rid.to_string())?,
                    js.number(r.timeout.as_millis() as f64)?,
                ]);
                for arg in &r.args {
                    entry.push(js.value(arg)?);
                }
            }
            Notification::Reply(r) => match &r.outcome {
                Ok(value) => entry.extend([
                    js.number(Tag::Reply as u8 as f64)?,
                    js.string(&r.rid.to_string())?,
                    js.string(&r.from.id)?,
                    js.value(value)?,
                ]),
                Err(f) => entry.extend([
                    js.number(Tag::ReplyError as u8 as f64)?,
                    js.string(&r.rid.to_string())?,
                    js.string(&r.from.id)?,
                    js.string(&f.message)?,
                    js.string(&f.code)?,
                ]),
            },
        }
        env.call_function(out, collect, &entry)?;
    }
    if batch.done {
        env.call_function(out, collect, &[js.number(Tag::Done as u8 as f64)?])?;
    }
    Ok(out)
}

/// A failed Node-API call while building a batch: let a pending exception
/// propagate, report anything else.
impl From<RawError> for ConvError {
    fn from(e: RawError) -> ConvError {
        if e.pending {
            ConvError::Pending
        } else {
            ConvError::Napi(format!("building a batch: {e}"))
        }
    }
}

/// The JS `onBatch` callback as a ThreadsafeFunction taking [`Signal`]s.
pub(crate) type BatchFn = ThreadsafeFunction<Signal, Unknown<'static>, Signal, Status, false>;

/// Locks `m`, recovering from poisoning (the queue stays consistent: every
/// critical section only moves whole items).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
