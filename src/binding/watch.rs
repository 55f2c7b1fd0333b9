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

use super::node::{build_batch, Batch, JsSink};
use crate::Eventcast;
use napi::sys;
use std::ffi::{c_int, c_void};
use std::ptr;
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
    env: sys::napi_env,
    node: Eventcast,
    sink: Arc<JsSink>,
    callback: sys::napi_ref,
    async_context: sys::napi_async_context,
    layout: std::alloc::Layout,
    /// Closed by the env cleanup hook: the env is going away with its
    /// references and async contexts; napi must not be called any more.
    teardown: std::cell::Cell<bool>,
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

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!("{what} failed (napi status {status})")))
    }
}

impl Watch {
    /// Starts watching `node`'s receive socket on `env`'s loop; `callback`
    /// receives the batches (same layout as the ThreadsafeFunction's).
    ///
    /// # Safety
    /// `env` and `callback` must be live values of the calling (JS) thread.
    pub(crate) unsafe fn start(
        env: sys::napi_env,
        node: Eventcast,
        sink: Arc<JsSink>,
        callback: sys::napi_value,
    ) -> napi::Result<Watch> {
        let Some(fd) = node.receive_fd() else {
            return Err(napi::Error::from_reason("not started"));
        };
        let mut event_loop = ptr::null_mut();
        check(sys::napi_get_uv_event_loop(env, &mut event_loop), "napi_get_uv_event_loop")?;
        let mut callback_ref = ptr::null_mut();
        check(sys::napi_create_reference(env, callback, 1, &mut callback_ref), "napi_create_reference")?;
        let mut name = ptr::null_mut();
        let mut async_context = ptr::null_mut();
        let label = "eventcast:receive";
        check(
            sys::napi_create_string_utf8(env, label.as_ptr().cast(), label.len() as isize, &mut name),
            "napi_create_string_utf8",
        )?;
        check(sys::napi_async_init(env, ptr::null_mut(), name, &mut async_context), "napi_async_init")?;
        let layout = std::alloc::Layout::from_size_align(uv_handle_size(UV_POLL).max(8), 16)
            .map_err(|e| napi::Error::from_reason(e.to_string()))?;
        let handle = std::alloc::alloc_zeroed(layout).cast::<c_void>();
        if handle.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let state = Box::new(State {
            env,
            node,
            sink,
            callback: callback_ref,
            async_context,
            layout,
            teardown: Default::default(),
        });
        let rc = uv_poll_init(event_loop.cast(), handle, fd);
        if rc != 0 {
            std::alloc::dealloc(handle.cast(), layout);
            release(&state);
            return Err(uv_error("uv_poll_init", rc));
        }
        *handle.cast::<*mut c_void>() = Box::into_raw(state).cast();
        let rc = uv_poll_start(handle, UV_READABLE, on_readable);
        if rc != 0 {
            uv_close(handle, on_close);
            return Err(uv_error("uv_poll_start", rc));
        }
        if let Err(e) =
            check(sys::napi_add_env_cleanup_hook(env, Some(on_env_teardown), handle), "napi_add_env_cleanup_hook")
        {
            close_handle(handle);
            return Err(e);
        }
        Ok(Watch { env, handle })
    }

    /// Stops watching (on the JS thread). Datagrams that arrive afterwards wait
    /// in the socket until `stop()` closes it.
    pub(crate) fn close(self) {
        // SAFETY: the handle is live until its close callback, which only `close_handle` triggers.
        unsafe {
            sys::napi_remove_env_cleanup_hook(self.env, Some(on_env_teardown), self.handle);
            close_handle(self.handle);
        }
    }
}

unsafe fn close_handle(handle: *mut c_void) {
    uv_poll_stop(handle);
    uv_close(handle, on_close);
}

unsafe fn release(state: &State) {
    sys::napi_delete_reference(state.env, state.callback);
    sys::napi_async_destroy(state.env, state.async_context);
}

unsafe extern "C" fn on_env_teardown(handle: *mut c_void) {
    let state = *handle.cast::<*mut State>();
    if let Some(state) = state.as_ref() {
        state.teardown.set(true);
    }
    close_handle(handle);
}

unsafe extern "C" fn on_close(handle: *mut c_void) {
    let state = *handle.cast::<*mut State>();
    if state.is_null() {
        return;
    }
    let state = Box::from_raw(state);
    if !state.teardown.get() {
        release(&state);
    }
    std::alloc::dealloc(handle.cast(), state.layout);
}

unsafe extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
    let state = &*(*handle.cast::<*mut State>());
    if status < 0 {
        // The socket is in error (it is being closed): stop until unwatch/stop.
        tracing::warn!("eventcast: polling the receive socket failed: {}", uv_error("uv_poll", status));
        uv_poll_stop(handle);
        return;
    }
    // A panic must not unwind into libuv (that aborts the process): it stops
    // the node with an EINTERNAL error instead, like a driver task's.
    let mut notes = Vec::new();
    let received = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.node.receive(&mut notes)));
    let batch = state.sink.take_received(&state.node, &mut notes);
    if received.is_err() {
        uv_poll_stop(handle);
        state.node.report_fault("receiving on the JS thread panicked");
    }
    if !batch.is_empty() {
        call_js(state, &batch);
    }
}

/// Calls the JS callback with the batch, as an I/O callback would: in a handle
/// scope and through `napi_make_callback` (which runs the microtask and
/// nextTick queues afterwards); an exception becomes an uncaught exception.
unsafe fn call_js(state: &State, batch: &Batch) {
    let env = state.env;
    let mut scope = ptr::null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
        return;
    }
    if let Ok(array) = build_batch(env, batch) {
        let mut function = ptr::null_mut();
        let mut receiver = ptr::null_mut();
        let mut result = ptr::null_mut();
        sys::napi_get_reference_value(env, state.callback, &mut function);
        // napi_make_callback converts `this` to an object: undefined would throw.
        sys::napi_get_global(env, &mut receiver);
        if !function.is_null() {
            sys::napi_make_callback(env, state.async_context, receiver, function, 1, &array, &mut result);
        }
    }
    let mut pending = false;
    sys::napi_is_exception_pending(env, &mut pending);
    if pending {
        let mut error = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut error);
        sys::napi_fatal_exception(env, error);
    }
    sys::napi_close_handle_scope(env, scope);
}
