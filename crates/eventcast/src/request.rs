//! Request/reply, the public API: answering requests ([`Eventcast::handle`]),
//! asking one node ([`Eventcast::request`]) or every node
//! ([`Eventcast::gather`]), and the lower-level calls a binding uses
//! (requests and replies as [`Notification`](crate::Notification)s).
//!
//! Requests and replies are numbered messages of the sender's stream (see
//! `wire::exchange`): repaired, chunked and sealed like events. Replies go to
//! the group, like repairs, and every node but the requester drops them
//! before decoding their arguments further than the engine's checks (see
//! `protocol::endpoint::exchange`). The tables behind them are in
//! `exchange.rs`.

use super::exchange::{HandlerRoute, Reply, ReplyRoute, Request, Serving, MAX_PENDING, MAX_REPLIES, MAX_SERVING};
use super::Eventcast;
use crate::error::Error;
use crate::protocol::{names, RemoteFailure, RequestId};
use crate::wire::{self, exchange::MAX_TIMEOUT_MS, ArgsBody};
use bson::Bson;
use futures_util::FutureExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

impl Eventcast {
    /// Answers requests named `name` with `handler`: for each request, the
    /// value its future yields is sent back to the requester, or the
    /// [`RemoteFailure`] as an error reply (a handler that panics answers
    /// `EINTERNAL`). One handler per name ([`Error::HandlerExists`],
    /// `EHANDLEREXISTS`); requests never reach event subscribers. Runs the
    /// handlers on the current tokio runtime (it must be called inside one).
    /// At most [`MAX_SERVING`] requests are answered at once; a reply later
    /// than the requester's timeout is not sent.
    pub fn handle<F, Fut>(&self, name: &str, handler: F) -> Result<(), Error>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bson, RemoteFailure>> + Send + 'static,
    {
        names::check_sendable(name)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Io(std::io::Error::other("Eventcast::handle must run inside a tokio runtime")))?;
        let (tx, mut rx) = mpsc::channel::<Request>(MAX_SERVING);
        self.add_handler(name, HandlerRoute::Channel(tx))?;
        let node = Arc::downgrade(&self.inner);
        let handler = Arc::new(handler);
        runtime.spawn(async move {
            // Ends when the handler is removed (its sender dropped) or the node is gone.
            while let Some(request) = rx.recv().await {
                let Some(inner) = node.upgrade() else { break };
                let node = Eventcast { inner };
                let (to, rid) = (request.from.id.clone(), request.rid);
                let mut answer = Box::pin(std::panic::AssertUnwindSafe(handler(request)).catch_unwind());
                // A handler that answers at once is answered here, without a
                // task of its own (a spawn and a wake-up per request, the
                // largest cost of a quick round trip); one that waits gets a task.
                match (&mut answer).now_or_never() {
                    Some(outcome) => send_answer(&node, &to, rid, outcome),
                    None => {
                        tokio::spawn(async move { send_answer(&node, &to, rid, answer.await) });
                    }
                }
            }
        });
        Ok(())
    }

    /// Takes requests named `name` as [`Notification::Request`](crate::Notification::Request)s
    /// on the notification stream, to answer with [`Eventcast::reply`] (what
    /// the Node binding does for JS handlers). Same rules as [`Eventcast::handle`].
    pub fn handle_with_notifications(&self, name: &str) -> Result<(), Error> {
        names::check_sendable(name)?;
        self.add_handler(name, HandlerRoute::Notify)
    }

    /// Stops answering requests named `name`; whether there was a handler.
    /// Requests already handed to it may still be answered.
    pub fn unhandle(&self, name: &str) -> bool {
        self.inner.shared.core().exchange.remove_handler(name)
    }

    /// Whether this node answers requests named `name`.
    pub fn has_handler(&self, name: &str) -> bool {
        self.inner.shared.core().exchange.has_handler(name)
    }

    fn add_handler(&self, name: &str, route: HandlerRoute) -> Result<(), Error> {
        match self.inner.shared.core().exchange.add_handler(name, route) {
            true => Ok(()),
            false => Err(Error::HandlerExists(name.to_owned())),
        }
    }

    /// Asks the group and returns the first reply's value; [`Error::Remote`]
    /// (`EREMOTE`) when that reply is an error, [`Error::TimedOut`]
    /// (`ETIMEDOUT`) when none came within `timeout`, `ENOTSTARTED` when stopped.
    pub async fn request(&self, name: &str, args: &[Bson], timeout: Duration) -> Result<Bson, Error> {
        let reply = self.request_reply(name, args, timeout).await?;
        match reply.outcome {
            Ok(value) => Ok(value),
            Err(f) => Err(Error::Remote { peer: reply.from.id.clone(), message: f.message, remote_code: f.code }),
        }
    }

    /// Like [`Eventcast::request`], returning the whole first reply (who
    /// answered, and the value or the error).
    pub async fn request_reply(&self, name: &str, args: &[Bson], timeout: Duration) -> Result<Reply, Error> {
        let mut replies = self.ask(name, args, timeout, true).await?;
        match replies.pop() {
            Some(reply) => Ok(reply),
            None => Err(Error::TimedOut { name: name.to_owned(), ms: timeout.as_millis() as u64 }),
        }
    }

    /// Asks the group and returns every reply that arrived within `timeout`,
    /// one per responding node (at most [`MAX_REPLIES`]), in arrival order;
    /// empty when nobody answered.
    pub async fn gather(&self, name: &str, args: &[Bson], timeout: Duration) -> Result<Vec<Reply>, Error> {
        self.ask(name, args, timeout, false).await
    }

    async fn ask(&self, name: &str, args: &[Bson], timeout: Duration, first_only: bool) -> Result<Vec<Reply>, Error> {
        let timeout = check_request_timeout(timeout)?;
        let body = wire::try_encode_args(args)?;
        let (tx, mut rx) = mpsc::channel(if first_only { 1 } else { MAX_REPLIES });
        let rid = self.send_request_to(name, ArgsBody::check(&body)?, timeout, first_only, ReplyRoute::Channel(tx))?;
        // Dropped with this future (a caller that gives up early) as at the end.
        let _pending = CancelOnDrop { node: self, rid };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut replies = Vec::new();
        while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            replies.push(reply);
            if first_only {
                break;
            }
        }
        Ok(replies)
    }

    /// Sends a request whose replies arrive as [`Notification::Reply`](crate::Notification::Reply)s
    /// naming the returned id: each node's first reply; with `first_only`
    /// only the first reply of all. The caller times it and calls
    /// [`Eventcast::cancel_request`] when it stops waiting (the entry is
    /// dropped anyway a few seconds after `timeout`). At most [`MAX_PENDING`]
    /// requests await replies at once ([`Error::TooManyRequests`]).
    pub fn send_request(
        &self,
        name: &str,
        body: ArgsBody<'_>,
        timeout: Duration,
        first_only: bool,
    ) -> Result<RequestId, Error> {
        self.send_request_to(name, body, check_request_timeout(timeout)?, first_only, ReplyRoute::Notify)
    }

    fn send_request_to(
        &self,
        name: &str,
        body: ArgsBody<'_>,
        timeout: Duration,
        first_only: bool,
        route: ReplyRoute,
    ) -> Result<RequestId, Error> {
        names::check_sendable(name)?;
        self.send_with(|ep, x, now, wall| {
            let rid =
                x.add_pending(now, timeout, first_only, route).ok_or(Error::TooManyRequests { limit: MAX_PENDING })?;
            ep.request_encoded(now, wall, rid, timeout, name, body.as_bytes()).inspect_err(|_| x.cancel(rid))?;
            Ok(rid)
        })
    }

    /// Stops waiting for replies to request `rid` (later ones are dropped).
    pub fn cancel_request(&self, rid: RequestId) {
        self.inner.shared.core().exchange.cancel(rid);
    }

    /// Answers request `rid` of node `to` (a [`Request`]'s `from.id` and
    /// `rid`) with a value or an error. `Ok(false)` when no reply is due: the
    /// request was answered already, its timeout passed (counted in
    /// `Stats::replies_late`), or it never came.
    pub fn reply(&self, to: &str, rid: RequestId, outcome: Result<Bson, RemoteFailure>) -> Result<bool, Error> {
        match outcome {
            Ok(value) => {
                let body = wire::try_encode_args(std::slice::from_ref(&value))?;
                self.reply_body(to, rid, ArgsBody::check(&body)?)
            }
            Err(failure) => self.reply_failure(to, rid, &failure),
        }
    }

    /// Like [`Eventcast::reply`] with the value already encoded as
    /// `{payload: [value]}` (exactly one value: the receiver refuses others).
    pub fn reply_body(&self, to: &str, rid: RequestId, body: ArgsBody<'_>) -> Result<bool, Error> {
        self.send_reply(to, rid, |ep, now, wall| ep.reply_encoded(now, wall, to, rid, body.as_bytes()))
    }

    /// Answers request `rid` of node `to` with an error.
    pub fn reply_failure(&self, to: &str, rid: RequestId, failure: &RemoteFailure) -> Result<bool, Error> {
        self.send_reply(to, rid, |ep, now, wall| ep.reply_failure(now, wall, to, rid, failure))
    }

    fn send_reply(
        &self,
        to: &str,
        rid: RequestId,
        send: impl FnOnce(&mut crate::protocol::Endpoint, std::time::Instant, std::time::SystemTime) -> Result<(), Error>,
    ) -> Result<bool, Error> {
        self.send_with(|ep, x, now, wall| match x.check_serving(now, to, rid) {
            Serving::Due => {
                send(ep, now, wall)?;
                x.end_serving(to, rid);
                Ok(true)
            }
            Serving::Late | Serving::Unknown => Ok(false),
        })
    }
}

/// Sends what a handler produced (a panic becomes an `EINTERNAL` error reply).
fn send_answer(node: &Eventcast, to: &str, rid: RequestId, outcome: std::thread::Result<Result<Bson, RemoteFailure>>) {
    let outcome = outcome.unwrap_or_else(|_| Err(RemoteFailure::new("the request handler panicked", "EINTERNAL")));
    if let Err(e) = node.reply(to, rid, outcome) {
        tracing::warn!("eventcast: the reply to request {rid} of {to} was not sent: {e}");
    }
}

/// Cancels a pending request when dropped.
struct CancelOnDrop<'a> {
    node: &'a Eventcast,
    rid: RequestId,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.node.cancel_request(self.rid);
    }
}

/// Checks a request timeout: 1 ms ..= one hour, what a request can carry
/// (`EINVALIDOPTION` otherwise).
pub fn check_request_timeout(timeout: Duration) -> Result<Duration, Error> {
    if timeout.is_zero() || timeout > Duration::from_millis(u64::from(MAX_TIMEOUT_MS)) {
        return Err(Error::InvalidOption {
            option: "requestTimeout",
            reason: format!("must be between 1 ms and {MAX_TIMEOUT_MS} ms, got {timeout:?}"),
        });
    }
    Ok(timeout)
}
