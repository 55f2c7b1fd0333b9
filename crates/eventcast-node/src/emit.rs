//! The emit path: `emitArgs(slot, name, ...args)`, a plain Node-API function.
//!
//! `emit()` is the hot path of a sender, and two costs of a `#[napi]` class
//! method dominated it for a small event (a perf profile of a sender over
//! NATS): napi-rs's per-call class identity check, `napi_unwrap` and native
//! borrow bookkeeping (about a fifth of the sender's CPU), and reading the
//! arguments back out of the JS array they were packed into (one
//! `napi_get_element` each, another tenth). This function takes the
//! arguments straight from the call (`napi_get_cb_info`), and finds its node
//! by a number in a registry of the JS thread's nodes: a wrong number is an
//! error, never a pointer taken on trust.
//!
//! A [`Slot`] is held by each `NativeEventcast` and frees its number when the
//! instance is collected; `index.js` holds the instance as long as it uses
//! the number, so a number is never used after it was freed.

use super::raw::JsEnv;
use super::{throw, with_name_and_body};
use eventcast::Eventcast;
use napi::bindgen_prelude::*;
use napi::{sys, Env};
use std::cell::RefCell;
use std::ptr;

/// The JS thread's nodes, by slot number.
#[derive(Default)]
struct Registry {
    nodes: Vec<Option<Eventcast>>,
    free: Vec<u32>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
    /// The argument slots of `emitArgs`, reused between calls.
    static ARGS: RefCell<Vec<sys::napi_value>> = const { RefCell::new(Vec::new()) };
}

/// A node's place in the registry; frees it when dropped.
pub(crate) struct Slot(u32);

impl Slot {
    /// Registers `node` (on the JS thread, which will call `emitArgs`).
    pub(crate) fn register(node: Eventcast) -> Slot {
        REGISTRY.with_borrow_mut(|r| match r.free.pop() {
            Some(n) => {
                r.nodes[n as usize] = Some(node);
                Slot(n)
            }
            None => {
                r.nodes.push(Some(node));
                Slot(r.nodes.len() as u32 - 1)
            }
        })
    }

    /// The number `emitArgs` takes.
    pub(crate) fn number(&self) -> u32 {
        self.0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The thread's registry may already be gone at thread exit: nothing to free then.
        let _ = REGISTRY.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                if let Some(entry) = r.nodes.get_mut(self.0 as usize) {
                    *entry = None;
                    r.free.push(self.0);
                }
            }
        });
    }
}

/// Adds `emitArgs` to the module's exports.
#[napi_derive::napi(module_exports)]
pub fn register_emit_args(exports: Object, env: Env) -> napi::Result<()> {
    let raw = JsEnv::of(&env);
    let function = raw.function("emitArgs", Some(emit_args))?;
    raw.set_property(exports.raw(), "emitArgs", function)?;
    Ok(())
}

/// `emitArgs(slot, name, ...args)`: sends `name(...args)` to the group of
/// node `slot`. Throws `TypeError` `EPAYLOAD` before sending anything when
/// the arguments cannot be carried, `Error` `EBACKPRESSURE` while the send
/// queue is full (wait for a drain entry). Returns `undefined`.
unsafe extern "C" fn emit_args(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: Node calls this function on the JS thread that owns `env`,
    // while it runs native code for this call.
    let raw = unsafe { JsEnv::new(env) };
    // A panic must not unwind into Node (that aborts): it becomes an exception.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ARGS.with(|cell| {
            // A re-entrant call (a getter that emits) gets slots of its own.
            let mut own = Vec::new();
            let mut guard = cell.try_borrow_mut();
            let args = match guard {
                Ok(ref mut v) => &mut **v,
                Err(_) => &mut own,
            };
            emit(raw, info, args)
        })
    }));
    if outcome.is_err() {
        throw(raw, false, "EINTERNAL", "emitArgs panicked");
    }
    ptr::null_mut()
}

/// The body of [`emit_args`]; an `Err` has its JS exception thrown already.
fn emit(raw: JsEnv, info: sys::napi_callback_info, args: &mut Vec<sys::napi_value>) -> napi::Result<()> {
    raw.call_args(info, args).map_err(|e| throw(raw, false, "ENAPI", &e.to_string()))?;
    let [slot, name, rest @ ..] = &args[..] else {
        return Err(throw(raw, true, "ENAPI", "emitArgs(slot, name, ...args): too few arguments"));
    };
    let slot = raw.uint32(*slot).map_err(|_| throw(raw, true, "ENAPI", "emitArgs: the slot is not a number"))?;
    let node = REGISTRY.with_borrow(|r| r.nodes.get(slot as usize).and_then(Option::clone));
    let node = node.ok_or_else(|| throw(raw, false, "ENAPI", "emitArgs: no node in this slot"))?;
    with_name_and_body(raw, *name, rest, |name, body| {
        node.emit_body(name, body).map_err(|e| throw(raw, e.code() == "EPAYLOAD", e.code(), &e.to_string()))
    })
}
