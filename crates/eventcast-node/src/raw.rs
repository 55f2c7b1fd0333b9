//! The binding's raw Node-API calls, behind safe methods of [`JsEnv`].
//!
//! Everything the binding asks of Node-API outside the BSON conversion
//! (`convert.rs`, which keeps its own calls next to the rules they implement)
//! goes through here: throwing errors, building the batch arrays, the
//! callback reference, async context and handle scope of the JS thread's own
//! receive, env cleanup hooks.
//!
//! # Why these calls are sound (argued once)
//!
//! A Node-API call is sound when:
//!
//! 1. **The env is live and ours.** A `napi_env` is valid on the JS thread
//!    that owns it, while Node runs native code there (a `#[napi]` function,
//!    a ThreadsafeFunction's conversion, a libuv callback of that thread's
//!    loop), until the env's cleanup hooks run. A [`JsEnv`] is made only from
//!    napi-rs's [`Env`] (which napi-rs hands only to code running on the JS
//!    thread) or by the `unsafe` [`JsEnv::new`], whose caller states why the
//!    env is live. It holds a raw pointer, so it is neither `Send` nor `Sync`:
//!    it cannot leave the thread. It is not kept beyond the native call it
//!    was made for: what needs the env later (the poll handle, `watch.rs`)
//!    keeps the raw env and re-wraps it in its callback, saying why it is live.
//! 2. **Values are from the current handle scope.** A `napi_value` dies with
//!    the handle scope it was made in. The binding never keeps one beyond the
//!    native call that made it: what must outlive a call is held as a
//!    [`JsRef`]. (A `napi_value` is a plain pointer type, so this is the one
//!    rule these methods cannot check; keep it when adding a field.)
//!    Node-API checks everything else about a value — null, wrong JS type —
//!    and answers with a status, which every method here turns into an `Err`.
//! 3. **Out-pointers and lengths are exact.** Each method passes pointers to
//!    its own locals of the type Node-API writes, and strings with their byte
//!    length; nothing is read that Node-API did not report as written.
//! 4. **Handles are released once.** [`JsRef`] and [`AsyncContext`] are owned,
//!    not `Clone`, and releasing one consumes it. A handle scope is closed by
//!    the same method that opened it ([`JsEnv::handle_scope`]).
//!
//! libuv, which only the JS thread's receive uses, keeps its calls and their
//! own safety comments in `watch.rs`.

use napi::{sys, Env};
use std::ffi::c_void;
use std::fmt;
use std::ptr;

/// A Node-API call that failed: which one, its status, and whether it left a
/// JS exception pending (then the caller lets that exception propagate).
#[derive(Debug)]
pub(crate) struct RawError {
    what: &'static str,
    status: sys::napi_status,
    /// A JS exception is pending (a throwing getter, a failed `RegExp`, ...).
    pub(crate) pending: bool,
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed (napi status {})", self.what, self.status)
    }
}

impl From<RawError> for napi::Error {
    fn from(e: RawError) -> napi::Error {
        if e.pending {
            napi::Error::new(napi::Status::PendingException, e.to_string())
        } else {
            napi::Error::from_reason(e.to_string())
        }
    }
}

type RawResult<T> = Result<T, RawError>;

/// The env of the JS thread, while Node runs native code on it (see the module doc, rule 1).
#[derive(Clone, Copy)]
pub(crate) struct JsEnv(sys::napi_env);

impl JsEnv {
    /// Wraps a raw env.
    ///
    /// # Safety
    /// `env` is the env of the calling thread, which is running native code
    /// for Node now (a conversion napi-rs asked for, a libuv callback of this
    /// env's loop), and the env's cleanup hooks have not run.
    pub(crate) unsafe fn new(env: sys::napi_env) -> JsEnv {
        JsEnv(env)
    }

    /// The env of a `#[napi]` function's call.
    pub(crate) fn of(env: &Env) -> JsEnv {
        JsEnv(env.raw())
    }

    /// The raw env, for `convert.rs`'s builders.
    pub(crate) fn raw(self) -> sys::napi_env {
        self.0
    }

    /// `Ok` for `napi_ok`; else the error, noting a pending exception.
    fn check(self, status: sys::napi_status, what: &'static str) -> RawResult<()> {
        if status == sys::Status::napi_ok {
            return Ok(());
        }
        Err(RawError { what, status, pending: self.exception_pending() })
    }

    /// Whether a JS exception is pending.
    pub(crate) fn exception_pending(self) -> bool {
        let mut pending = false;
        // SAFETY: rule 1 (live env); `pending` is a live bool Node-API writes.
        unsafe { sys::napi_is_exception_pending(self.0, &mut pending) };
        pending
    }

    /// Takes the pending JS exception, if any (JS sees none afterwards).
    pub(crate) fn take_exception(self) -> Option<sys::napi_value> {
        // With none pending, Node-API would hand back `undefined`.
        if !self.exception_pending() {
            return None;
        }
        let mut error = ptr::null_mut();
        // SAFETY: rule 1; `error` is a live slot for one napi_value.
        let status = unsafe { sys::napi_get_and_clear_last_exception(self.0, &mut error) };
        (status == sys::Status::napi_ok && !error.is_null()).then_some(error)
    }

    /// Hands `error` to Node as an uncaught exception (`process.on('uncaughtException')`).
    pub(crate) fn fatal_exception(self, error: sys::napi_value) {
        // SAFETY: rules 1 and 2.
        unsafe { sys::napi_fatal_exception(self.0, error) };
    }

    /// A JS string.
    pub(crate) fn string(self, s: &str) -> RawResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1 and 3: `s`'s pointer with its exact byte length (UTF-8, no NUL needed).
        let status = unsafe { sys::napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len() as isize, &mut out) };
        self.check(status, "napi_create_string_utf8").map(|()| out)
    }

    /// `null`.
    pub(crate) fn null(self) -> RawResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1 and 3.
        let status = unsafe { sys::napi_get_null(self.0, &mut out) };
        self.check(status, "napi_get_null").map(|()| out)
    }

    /// `globalThis`.
    pub(crate) fn global(self) -> RawResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1 and 3.
        let status = unsafe { sys::napi_get_global(self.0, &mut out) };
        self.check(status, "napi_get_global").map(|()| out)
    }

    /// A JS array of `len` holes.
    pub(crate) fn array(self, len: usize) -> RawResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1 and 3.
        let status = unsafe { sys::napi_create_array_with_length(self.0, len, &mut out) };
        self.check(status, "napi_create_array_with_length").map(|()| out)
    }

    /// `array[index] = value`.
    pub(crate) fn set_element(self, array: sys::napi_value, index: u32, value: sys::napi_value) -> RawResult<()> {
        // SAFETY: rules 1 and 2 (Node-API checks `array` is an object).
        let status = unsafe { sys::napi_set_element(self.0, array, index, value) };
        self.check(status, "napi_set_element")
    }

    /// Throws a JS `TypeError` (or `Error`) with `err.code = code`. Nothing is
    /// thrown if Node-API cannot even make the error (out of memory).
    pub(crate) fn throw_error(self, type_error: bool, code: &str, message: &str) {
        let (Ok(c), Ok(m)) = (self.string(code), self.string(message)) else { return };
        let mut error = ptr::null_mut();
        // SAFETY: rules 1, 2 (`c`, `m` were just made) and 3.
        let status = unsafe {
            if type_error {
                sys::napi_create_type_error(self.0, c, m, &mut error)
            } else {
                sys::napi_create_error(self.0, c, m, &mut error)
            }
        };
        if status == sys::Status::napi_ok {
            // SAFETY: rules 1 and 2 (`error` was just made).
            unsafe { sys::napi_throw(self.0, error) };
        }
    }

    /// The libuv loop of this env's thread.
    pub(crate) fn uv_loop(self) -> RawResult<*mut c_void> {
        let mut event_loop = ptr::null_mut();
        // SAFETY: rules 1 and 3.
        let status = unsafe { sys::napi_get_uv_event_loop(self.0, &mut event_loop) };
        self.check(status, "napi_get_uv_event_loop").map(|()| event_loop.cast())
    }

    /// A strong reference to `value` that outlives this call (rule 2's way out).
    pub(crate) fn reference(self, value: sys::napi_value) -> RawResult<JsRef> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1, 2 and 3.
        let status = unsafe { sys::napi_create_reference(self.0, value, 1, &mut out) };
        self.check(status, "napi_create_reference").map(|()| JsRef(out))
    }

    /// The value `r` refers to.
    pub(crate) fn reference_value(self, r: &JsRef) -> RawResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1 and 3; `r` is live (rule 4: not deleted, it is borrowed here).
        let status = unsafe { sys::napi_get_reference_value(self.0, r.0, &mut out) };
        self.check(status, "napi_get_reference_value").map(|()| out)
    }

    /// Calls `function` with `this` = `receiver` and `args` (no microtask
    /// checkpoint: for calls made while Node runs native code, not as a callback).
    /// A JS exception stays pending.
    pub(crate) fn call_function(
        self,
        receiver: sys::napi_value,
        function: sys::napi_value,
        args: &[sys::napi_value],
    ) -> RawResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1 and 2; `args` pointer with its exact length (rule 3).
        let status =
            unsafe { sys::napi_call_function(self.0, receiver, function, args.len(), args.as_ptr(), &mut out) };
        self.check(status, "napi_call_function").map(|()| out)
    }

    /// The arguments of the call `info` describes, into `out` (cleared first).
    pub(crate) fn call_args(self, info: sys::napi_callback_info, out: &mut Vec<sys::napi_value>) -> RawResult<()> {
        let mut argc = out.capacity().max(8);
        out.clear();
        out.resize(argc, ptr::null_mut());
        // SAFETY: rule 1 (`info` is the live callback info of the call Node is
        // making now); `out` has exactly `argc` slots, and Node-API writes at
        // most that many and reports the real count in `argc` (rule 3).
        let status = unsafe {
            sys::napi_get_cb_info(self.0, info, &mut argc, out.as_mut_ptr(), ptr::null_mut(), ptr::null_mut())
        };
        self.check(status, "napi_get_cb_info")?;
        if argc > out.len() {
            // More arguments than slots: ask again with room for all of them.
            out.resize(argc, ptr::null_mut());
            // SAFETY: as above, with `argc` slots now.
            let status = unsafe {
                sys::napi_get_cb_info(self.0, info, &mut argc, out.as_mut_ptr(), ptr::null_mut(), ptr::null_mut())
            };
            self.check(status, "napi_get_cb_info")?;
        }
        out.truncate(argc);
        Ok(())
    }

    /// A JS number as `u32` (Node-API's conversion: non-numbers are an error).
    pub(crate) fn uint32(self, value: sys::napi_value) -> RawResult<u32> {
        let mut out = 0u32;
        // SAFETY: rules 1, 2 and 3.
        let status = unsafe { sys::napi_get_value_uint32(self.0, value, &mut out) };
        self.check(status, "napi_get_value_uint32").map(|()| out)
    }

    /// A JS function named `name` running `callback`.
    pub(crate) fn function(self, name: &str, callback: sys::napi_callback) -> RawResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1 and 3: `name` with its exact byte length; a null data pointer.
        let status = unsafe {
            sys::napi_create_function(
                self.0,
                name.as_ptr().cast(),
                name.len() as isize,
                callback,
                ptr::null_mut(),
                &mut out,
            )
        };
        self.check(status, "napi_create_function").map(|()| out)
    }

    /// `object[name] = value`.
    pub(crate) fn set_property(self, object: sys::napi_value, name: &str, value: sys::napi_value) -> RawResult<()> {
        let key = self.string(name)?;
        // SAFETY: rules 1 and 2 (Node-API checks `object` is an object).
        let status = unsafe { sys::napi_set_property(self.0, object, key, value) };
        self.check(status, "napi_set_property")
    }

    /// An async context named `name`, for [`JsEnv::make_callback`].
    pub(crate) fn async_context(self, name: &str) -> RawResult<AsyncContext> {
        let name = self.string(name)?;
        let mut out = ptr::null_mut();
        // SAFETY: rules 1, 2 (`name` was just made) and 3; a null resource is allowed.
        let status = unsafe { sys::napi_async_init(self.0, ptr::null_mut(), name, &mut out) };
        self.check(status, "napi_async_init").map(|()| AsyncContext(out))
    }

    /// Calls `function` as an I/O callback would: in `context`, and running the
    /// microtask and nextTick queues afterwards. A JS exception stays pending.
    pub(crate) fn make_callback(
        self,
        context: &AsyncContext,
        receiver: sys::napi_value,
        function: sys::napi_value,
        args: &[sys::napi_value],
    ) -> RawResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: rules 1 and 2; `args` pointer with its exact length (rule 3);
        // `context` is live (rule 4).
        let status = unsafe {
            sys::napi_make_callback(self.0, context.0, receiver, function, args.len(), args.as_ptr(), &mut out)
        };
        self.check(status, "napi_make_callback").map(|()| out)
    }

    /// Runs `f` in a handle scope of its own: the values it makes are freed
    /// when it returns (a libuv callback has no scope of its own). Does not
    /// run `f` if no scope can be opened.
    pub(crate) fn handle_scope<T>(self, f: impl FnOnce() -> T) -> RawResult<T> {
        let mut scope = ptr::null_mut();
        // SAFETY: rules 1 and 3.
        let status = unsafe { sys::napi_open_handle_scope(self.0, &mut scope) };
        self.check(status, "napi_open_handle_scope")?;
        let out = f();
        // SAFETY: rule 1; `scope` was opened above and is closed once (rule 4).
        // (A panic in `f` skips this; the binding runs `f` only in `extern "C"`
        // callbacks, where a panic aborts the process anyway.)
        unsafe { sys::napi_close_handle_scope(self.0, scope) };
        Ok(out)
    }

    /// Registers `hook(arg)` to run when the env is torn down.
    pub(crate) fn add_cleanup_hook(self, hook: unsafe extern "C" fn(*mut c_void), arg: *mut c_void) -> RawResult<()> {
        // SAFETY: rule 1; Node-API only stores the pair (what `hook` does with
        // `arg` is `hook`'s own unsafe code, argued there).
        let status = unsafe { sys::napi_add_env_cleanup_hook(self.0, Some(hook), arg) };
        self.check(status, "napi_add_env_cleanup_hook")
    }

    /// Unregisters what [`JsEnv::add_cleanup_hook`] registered (a no-op status otherwise).
    pub(crate) fn remove_cleanup_hook(self, hook: unsafe extern "C" fn(*mut c_void), arg: *mut c_void) {
        // SAFETY: rule 1; Node-API looks the pair up and removes it if present.
        unsafe { sys::napi_remove_env_cleanup_hook(self.0, Some(hook), arg) };
    }
}

/// A strong reference to a JS value, valid across calls until [`JsRef::delete`].
pub(crate) struct JsRef(sys::napi_ref);

impl JsRef {
    /// Releases the reference (rule 4: once, as this consumes it).
    pub(crate) fn delete(self, env: JsEnv) {
        // SAFETY: rule 1; the reference is live and deleted once (rule 4).
        unsafe { sys::napi_delete_reference(env.0, self.0) };
    }
}

/// An async context for [`JsEnv::make_callback`], valid until [`AsyncContext::destroy`].
pub(crate) struct AsyncContext(sys::napi_async_context);

impl AsyncContext {
    /// Releases the context (rule 4: once, as this consumes it).
    pub(crate) fn destroy(self, env: JsEnv) {
        // SAFETY: rule 1; the context is live and destroyed once (rule 4).
        unsafe { sys::napi_async_destroy(env.0, self.0) };
    }
}
