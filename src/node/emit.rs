//! The emit path: [`Eventcast::emit`] runs on the caller's thread — the
//! endpoint builds the datagrams under the state lock and they leave at once
//! (see `send` for the queue a full socket buffer spills into).

use super::send::Lane;
use super::Eventcast;
use crate::error::Error;
use crate::protocol::Endpoint;
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
    pub fn emit_encoded(&self, name: &str, body: &[u8]) -> Result<(), Error> {
        self.emit_with(|ep, now, wall| endpoint_emit_encoded(ep, now, wall, name, body))
    }

    fn emit_with(&self, f: impl FnOnce(&mut Endpoint, Instant, SystemTime) -> Result<(), Error>) -> Result<(), Error> {
        let shared = &*self.inner.shared;
        let mut notes = {
            let mut core = shared.core();
            if core.io.is_none() || core.endpoint.is_none() {
                return Err(Error::NotStarted);
            }
            // Refused before the engine numbers the message: nothing of it exists anywhere.
            core.send.admit()?;
            let Some(ep) = core.endpoint.as_mut() else { return Err(Error::NotStarted) };
            f(ep, Instant::now(), SystemTime::now())?;
            if core.pump(shared, Lane::Urgent) {
                shared.wake.notify_one();
            }
            if core.notes.is_empty() {
                return Ok(());
            }
            std::mem::take(&mut core.notes)
        };
        shared.deliver(&mut notes);
        Ok(())
    }
}

/// Checks that `body` is the BSON document `{payload: [...]}` (or empty), then
/// hands it to [`Endpoint::emit_encoded`] unchanged.
fn endpoint_emit_encoded(
    ep: &mut Endpoint,
    now: Instant,
    wall: SystemTime,
    name: &str,
    body: &[u8],
) -> Result<(), Error> {
    let doc =
        bson::RawDocument::from_bytes(body).map_err(|e| Error::Payload(format!("body is not a BSON document: {e}")))?;
    match doc.get("payload") {
        Ok(Some(bson::RawBsonRef::Array(_))) => {}
        Ok(None) if doc.is_empty() => {}
        _ => return Err(Error::Payload("body must be the BSON document {payload: [...]}".into())),
    }
    ep.emit_encoded(now, wall, name, body)
}
