//! Request/reply for JS: the methods `index.js` calls to register handlers,
//! send requests and replies. Requests for JS handlers and replies to JS
//! requests reach JS as batch entries (`delivery.rs`: tags `request`,
//! `reply`, `replyError`); the request ids travel as 16-hex-char strings.
//! Timing a request (its timeout) is `index.js`'s; it cancels here when it
//! stops waiting.

use super::node::NativeEventcast;
use super::raw::JsEnv;
use super::{throw, with_body};
use eventcast::{RemoteFailure, RequestId};
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use std::time::Duration;

fn rid(env: JsEnv, s: &str) -> napi::Result<RequestId> {
    RequestId::parse(s).ok_or_else(|| throw(env, true, "ERR_INVALID_ARG_VALUE", &format!("not a request id: {s:?}")))
}

fn fail(env: JsEnv, e: eventcast::Error) -> napi::Error {
    let type_error = matches!(e.code(), "EPAYLOAD" | "EINVALIDOPTION");
    throw(env, type_error, e.code(), &e.to_string())
}

#[napi]
impl NativeEventcast {
    /// Answers requests named `name` in JS (they arrive as `request` batch
    /// entries); throws `EHANDLEREXISTS` when `name` has a handler already.
    #[napi]
    pub fn handle(&self, env: Env, name: String) -> napi::Result<()> {
        let raw = JsEnv::of(&env);
        self.node.handle_with_notifications(&name).map_err(|e| fail(raw, e))
    }

    /// Stops answering requests named `name`; whether there was a handler.
    #[napi]
    pub fn unhandle(&self, name: String) -> bool {
        self.node.unhandle(&name)
    }

    /// Sends a request `name(...args)` (`args` an array) and returns its id;
    /// replies arrive as `reply`/`replyError` entries naming it (with
    /// `first`, only the first reply of all). Throws `ENOTSTARTED`,
    /// `EPAYLOAD`, `EBACKPRESSURE`, `ETOOMANYREQUESTS`.
    #[napi(ts_args_type = "first: boolean, timeoutMs: number, name: string, args: unknown[]")]
    pub fn request(&self, env: Env, first: bool, timeout_ms: u32, name: String, args: Unknown) -> napi::Result<String> {
        let raw = JsEnv::of(&env);
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        with_body(raw, args.raw(), |body| {
            let body = eventcast::wire::ArgsBody::check(body).map_err(|e| fail(raw, e))?;
            self.node.send_request(&name, body, timeout, first).map_err(|e| fail(raw, e))
        })
        .map(|rid| rid.to_string())
    }

    /// Stops waiting for replies to request `rid`.
    #[napi]
    pub fn cancel_request(&self, env: Env, rid_hex: String) -> napi::Result<()> {
        let raw = JsEnv::of(&env);
        self.node.cancel_request(rid(raw, &rid_hex)?);
        Ok(())
    }

    /// Answers request `rid` of node `to` with the value `args[0]` (`args`
    /// a one-element array). Returns whether a reply was due (false: the
    /// requester's timeout passed, or it was answered already). Throws
    /// `EPAYLOAD` for a value that cannot travel (nothing sent; an error
    /// reply can follow).
    #[napi(ts_args_type = "to: string, rid: string, args: [unknown]")]
    pub fn reply(&self, env: Env, to: String, rid_hex: String, args: Unknown) -> napi::Result<bool> {
        let raw = JsEnv::of(&env);
        let rid = rid(raw, &rid_hex)?;
        with_body(raw, args.raw(), |body| {
            let body = eventcast::wire::ArgsBody::check(body).map_err(|e| fail(raw, e))?;
            self.node.reply_body(&to, rid, body).map_err(|e| fail(raw, e))
        })
    }

    /// Answers request `rid` of node `to` with an error (`message` and
    /// `code` are cut to their bounds). Returns whether a reply was due.
    #[napi]
    pub fn reply_error(
        &self,
        env: Env,
        to: String,
        rid_hex: String,
        message: String,
        code: String,
    ) -> napi::Result<bool> {
        let raw = JsEnv::of(&env);
        let rid = rid(raw, &rid_hex)?;
        self.node.reply_failure(&to, rid, &RemoteFailure::new(&message, &code)).map_err(|e| fail(raw, e))
    }
}
