//! The emit path: [`Eventcast::emit`] runs on the caller's thread — the
//! endpoint builds the datagrams under the state lock and they leave at once
//! (see `send` for the queue a full socket buffer spills into).

use super::exchange::Exchange;
use super::send::Lane;
use super::Eventcast;
use crate::error::Error;
use crate::protocol::Endpoint;
use crate::wire::ArgsBody;
use bson::Bson;
use std::time::{Instant, SystemTime};

impl Eventcast {
    /// Sends an event to the group, from the calling thread (no thread hop).
    /// [`Error::NotStarted`] unless started; [`Error::Payload`] when the
    /// arguments cannot be encoded or exceed the size limit. A full socket
    /// buffer queues the datagrams for the driver; nothing is dropped. While
    /// [`Options::send_queue_bytes`](super::Options::send_queue_bytes) or more are queued (a slow link), the
    /// event is refused with [`Error::Backpressure`] (`EBACKPRESSURE`), nothing
    /// sent; [`Notification::Drain`](super::Notification::Drain) says when to emit again.
    pub fn emit(&self, name: &str, args: &[Bson]) -> Result<(), Error> {
        self.emit_with(|ep, now, wall| ep.emit(now, wall, name, args))
    }

    /// Like [`emit`](Self::emit) with the body already encoded as the BSON
    /// document `{payload: [...]}` (saves a conversion when the caller builds BSON itself).
    /// The body is checked first ([`ArgsBody::check`], `EPAYLOAD`).
    pub fn emit_encoded(&self, name: &str, body: &[u8]) -> Result<(), Error> {
        self.emit_body(name, ArgsBody::check(body)?)
    }

    /// Like [`emit_encoded`](Self::emit_encoded) with a body already known
    /// to be `{payload: [...]}` (the Node binding's, written by the wire's
    /// BSON writer): handed to the endpoint without another look.
    pub fn emit_body(&self, name: &str, body: ArgsBody<'_>) -> Result<(), Error> {
        self.emit_with(|ep, now, wall| ep.emit_encoded(now, wall, name, body.as_bytes()))
    }

    fn emit_with(&self, f: impl FnOnce(&mut Endpoint, Instant, SystemTime) -> Result<(), Error>) -> Result<(), Error> {
        self.send_with(|ep, _, now, wall| f(ep, now, wall))
    }

    /// Runs `f` with the started endpoint (and the request/reply tables)
    /// under the state lock, then sends what it produced at once, from this
    /// thread: the one way a caller's message leaves (events, requests,
    /// replies). `ENOTSTARTED` when stopped; `EBACKPRESSURE` while the send
    /// queue is full, before `f` runs (nothing of the message exists anywhere).
    pub(super) fn send_with<T>(
        &self,
        f: impl FnOnce(&mut Endpoint, &mut Exchange, Instant, SystemTime) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let shared = &*self.inner.shared;
        let (out, mut notes) = {
            let mut core = shared.core();
            if core.io.is_none() || core.endpoint.is_none() {
                return Err(Error::NotStarted);
            }
            // Refused before the engine numbers the message: nothing of it exists anywhere.
            core.send.admit()?;
            let core = &mut *core;
            let Some(ep) = core.endpoint.as_mut() else { return Err(Error::NotStarted) };
            let out = f(ep, &mut core.exchange, Instant::now(), SystemTime::now())?;
            if core.pump(shared, Lane::Urgent) {
                shared.wake.notify_one();
            }
            if core.notes.is_empty() {
                return Ok(out);
            }
            (out, std::mem::take(&mut core.notes))
        };
        shared.deliver(&mut notes);
        Ok(out)
    }
}
