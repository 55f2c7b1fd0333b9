//! Receiving on the JS thread.
//!
//! With the node started by [`Eventcast::start_polled`], a libuv poll handle
//! watches the receive socket in Node's own event loop. When it is readable,
//! the JS thread reads a burst ([`Eventcast::receive`]), the engine processes
//! it, and the notifications go straight into one JS call — one thread
//! wake-up per event, like a `dgram` socket, instead of a tokio worker's
//! followed by the JS thread's. Notifications produced elsewhere (timers:
//! gaps, errors; `stop()`) still come through the ThreadsafeFunction.
//!
//! libuv is Node's own: its symbols are resolved from the Node binary when the
//! addon loads (`napi_get_uv_event_loop` exists for this purpose). Only the
//! handful of functions below are used, with `uv_handle_size` so that no libuv
//! struct layout is assumed beyond `data` being the first field of every
//! handle (part of libuv's public ABI).
//!
//! # Safety of the handle
//!
//! Node-API calls go through [`JsEnv`] (`raw.rs` argues them). What is left
//! here is libuv and the handle's memory, and it rests on three facts:
//!
//! * **One owner, one thread.** The handle and its [`State`] are allocated by
//!   [`Watch::start`] and freed only by [`on_close`], which libuv calls once,
//!   after `uv_close`, on the loop's (the JS) thread; every callback runs
//!   there too, so nothing here is shared between threads. The handle's
//!   first word (libuv's `data`) points to the `State` from right after
//!   `uv_poll_init` until `on_close` frees both.
//! * **Closed exactly once.** `uv_close` is called by one of: `start`'s own
//!   failure path, [`Watch::close`] (which consumes the `Watch` and removes
//!   the env cleanup hook first), or [`on_env_teardown`] (the hook, which
//!   runs only if `close` has not removed it).
//! * **No Node-API after teardown.** The env cleanup hook marks the state
//!   torn down before closing; `on_close` then does not release the
//!   reference and async context (they die with the env).

use super::delivery::{build_batch, Batch, JsSink};
use super::raw::{AsyncContext, JsEnv, JsRef};
use eventcast::Eventcast;
use napi::sys;
use std::ffi::{c_int, c_void};
use std::sync::Arc;

const UV_POLL: c_int = 8; // uv_handle_type
const UV_READABLE: c_int = 1; // uv_poll_event

type PollCb = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
type CloseCb = unsafe extern "C" fn(handle: *mut c_void);

extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init(event_loop: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut c_void, events: c_int, cb: PollCb) -> c_int;
    fn uv_poll_stop(handle: *mut c_void) -> c_int;
    fn uv_close(handle: *mut c_void, cb: CloseCb);
    fn uv_strerror(err: c_int) -> *const std::ffi::c_char;
}

/// What the poll callback needs; owned by the handle (its `data`), freed by the close callback.
struct State {
    /// The env of the JS thread, re-wrapped in each callback (a [`JsEnv`] is
    /// not kept beyond the call it was made for).
    env: sys::napi_env,
    node: Eventcast,
    sink: Arc<JsSink>,
    callback: JsRef,
    async_context: AsyncContext,
    layout: std::alloc::Layout,
    /// Closed by the env cleanup hook: the env is going away with its
    /// references and async contexts; napi must not be called any more.
    teardown: std::cell::Cell<bool>,
}

impl State {
    /// Releases the Node-API handles (on the JS thread, before teardown).
    fn release(self, env: JsEnv) {
        self.callback.delete(env);
        self.async_context.destroy(env);
    }
}

/// A started watch; [`Watch::close`] ends it (the env cleanup hook does, at teardown).
pub(crate) struct Watch {
    env: sys::napi_env,
    handle: *mut c_void,
}

fn uv_error(what: &str, rc: c_int) -> napi::Error {
    // SAFETY: uv_strerror returns a static NUL-terminated string for any code.
    let text = unsafe { std::ffi::CStr::from_ptr(uv_strerror(rc)) }.to_string_lossy();
    napi::Error::from_reason(format!("{what}: {text}"))
}

impl Watch {
    /// Starts watching `node`'s receive socket on `env`'s loop; `callback`
    /// (a value of this call) receives the batches (same layout as the
    /// ThreadsafeFunction's).
    pub(crate) fn start(
        env: JsEnv,
        node: Eventcast,
        sink: Arc<JsSink>,
        callback: sys::napi_value,
    ) -> napi::Result<Watch> {
        let Some(fd) = node.receive_fd() else {
            return Err(napi::Error::from_reason("not started"));
        };
        let event_loop = env.uv_loop()?;
        let callback = env.reference(callback)?;
        let async_context = match env.async_context("eventcast:receive") {
            Ok(c) => c,
            Err(e) => {
                callback.delete(env);
                return Err(e.into());
            }
        };
        // SAFETY: uv_handle_size only reads its argument, a valid uv_handle_type.
        let size = unsafe { uv_handle_size(UV_POLL) };
        let layout = std::alloc::Layout::from_size_align(size.max(8), 16)
            .map_err(|e| napi::Error::from_reason(e.to_string()))?;
        // SAFETY: `layout` has a non-zero size (at least 8).
        let handle = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<c_void>();
        if handle.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let state = Box::new(State {
            env: env.raw(),
            node,
            sink,
            callback,
            async_context,
            layout,
            teardown: Default::default(),
        });
        // SAFETY: `event_loop` is this thread's loop (from Node-API); `handle`
        // is fresh zeroed memory of uv_handle_size(UV_POLL) bytes, aligned to 16.
        let rc = unsafe { uv_poll_init(event_loop, handle, fd) };
        if rc != 0 {
            // SAFETY: libuv refused the handle and keeps no pointer to it;
            // allocated above with this layout.
            unsafe { std::alloc::dealloc(handle.cast(), layout) };
            state.release(env);
            return Err(uv_error("uv_poll_init", rc));
        }
        // SAFETY: the handle is initialised; its first word is libuv's `data`
        // (public ABI), ours until on_close (see the module doc).
        unsafe { *handle.cast::<*mut c_void>() = Box::into_raw(state).cast() };
        // SAFETY: an initialised poll handle; on_readable matches PollCb.
        let rc = unsafe { uv_poll_start(handle, UV_READABLE, on_readable) };
        if rc != 0 {
            // SAFETY: closed once, here (no Watch exists, no hook is registered).
            unsafe { uv_close(handle, on_close) };
            return Err(uv_error("uv_poll_start", rc));
        }
        if let Err(e) = env.add_cleanup_hook(on_env_teardown, handle) {
            // SAFETY: closed once, here (no Watch exists, the hook is not registered).
            unsafe { close_handle(handle) };
            return Err(e.into());
        }
        Ok(Watch { env: env.raw(), handle })
    }

    /// Stops watching (on the JS thread). Datagrams that arrive afterwards wait
    /// in the socket until `stop()` closes it.
    pub(crate) fn close(self) {
        // SAFETY: a Watch holds raw pointers, so it is not Send and this runs
        // on the JS thread that started it, in a native call (`unwatch`, `watch`,
        // `stop`); the env is not torn down (JS is still calling in).
        let env = unsafe { JsEnv::new(self.env) };
        env.remove_cleanup_hook(on_env_teardown, self.handle);
        // SAFETY: the handle is live until its close callback, and this is the
        // one close (the hook that would close it is removed above).
        unsafe { close_handle(self.handle) };
    }
}

/// Stops and closes the poll handle; [`on_close`] frees it.
///
/// # Safety
/// `handle` is a started watch's live handle, closed by no one else.
unsafe fn close_handle(handle: *mut c_void) {
    // SAFETY: the caller's contract: a live, initialised poll handle.
    unsafe {
        uv_poll_stop(handle);
        uv_close(handle, on_close);
    }
}

/// The env cleanup hook: the env is going away while still watching.
unsafe extern "C" fn on_env_teardown(handle: *mut c_void) {
    // SAFETY: registered with a live handle whose `data` is its State; the
    // hook runs only if `Watch::close` did not remove it, i.e. the handle
    // has not been closed.
    unsafe {
        let state = *handle.cast::<*mut State>();
        if let Some(state) = state.as_ref() {
            state.teardown.set(true);
        }
        close_handle(handle);
    }
}

/// libuv's close callback: frees the State and the handle.
unsafe extern "C" fn on_close(handle: *mut c_void) {
    // SAFETY: libuv calls this once per uv_close, on the loop's thread, with
    // the handle we allocated; its `data` is the State or null (a handle
    // closed before the State was attached).
    let state = unsafe { *handle.cast::<*mut State>() };
    if state.is_null() {
        return;
    }
    // SAFETY: `state` came from Box::into_raw in Watch::start, freed only here.
    let state = unsafe { Box::from_raw(state) };
    let layout = state.layout;
    if !state.teardown.get() {
        // SAFETY: a close callback of the JS thread's loop, and the env is
        // not torn down (`teardown` is false).
        let env = unsafe { JsEnv::new(state.env) };
        state.release(env);
    }
    // SAFETY: libuv is done with the handle (this is its close callback);
    // allocated in Watch::start with this layout.
    unsafe { std::alloc::dealloc(handle.cast(), layout) };
}

/// libuv's poll callback: the receive socket is readable (or in error).
unsafe extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
    // SAFETY: the handle is live while libuv polls it, and its `data` is the
    // State (attached before uv_poll_start, freed only after close).
    let state = unsafe { &*(*handle.cast::<*mut State>()) };
    if status < 0 {
        // The socket is in error (it is being closed): stop until unwatch/stop.
        tracing::warn!("eventcast: polling the receive socket failed: {}", uv_error("uv_poll", status));
        // SAFETY: a live, started poll handle.
        unsafe { uv_poll_stop(handle) };
        return;
    }
    // A panic must not unwind into libuv (that aborts the process): it stops
    // the node with an EINTERNAL error instead, like a driver task's.
    let mut notes = Vec::new();
    let received = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.node.receive(&mut notes)));
    let batch = state.sink.take_received(&state.node, &mut notes);
    if received.is_err() {
        // SAFETY: a live, started poll handle.
        unsafe { uv_poll_stop(handle) };
        state.node.report_fault("receiving on the JS thread panicked");
    }
    if !batch.is_empty() {
        // SAFETY: a poll callback of the JS thread's loop; the env is not torn
        // down (the teardown hook closes this handle first).
        let env = unsafe { JsEnv::new(state.env) };
        call_js(env, state, &batch);
    }
}

/// Calls the JS callback with the batch, as an I/O callback would: in a handle
/// scope and through `napi_make_callback` (which runs the microtask and
/// nextTick queues afterwards); an exception becomes an uncaught exception.
fn call_js(env: JsEnv, state: &State, batch: &Batch) {
    let _ = env.handle_scope(|| {
        if let (Ok(array), Ok(function)) = (build_batch(env, batch), env.reference_value(&state.callback)) {
            // napi_make_callback converts `this` to an object: undefined would throw.
            if let Ok(receiver) = env.global() {
                if !function.is_null() {
                    let _ = env.make_callback(&state.async_context, receiver, function, &[array]);
                }
            }
        }
        if let Some(error) = env.take_exception() {
            env.fatal_exception(error);
        }
    });
}
