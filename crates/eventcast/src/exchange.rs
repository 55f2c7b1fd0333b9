//! The driver's side of request/reply: which handlers this node has, which of
//! our requests await replies, and which received requests are being
//! answered. It lives in [`Core`](super::state::Core), under the one lock on
//! protocol state, so a reply is matched in the same critical section that
//! decoded it.
//!
//! Every table is bounded, and what it refuses is counted:
//!
//! * `pending` (our requests): at most [`MAX_PENDING`]; each entry ends when
//!   its caller gives up (timeout, cancel) or, at the latest, a little after
//!   its deadline. A reply counts only when its request id is pending and
//!   its responder has not replied to it yet; at most [`MAX_REPLIES`]
//!   replies per request. A flood of forged replies therefore resolves
//!   nothing it did not name exactly (random 64-bit ids) and grows nothing.
//! * `serving` (requests we are answering): at most [`MAX_SERVING`] at once;
//!   a request beyond that is refused unanswered. An entry ends with its
//!   reply or at the requester's timeout, after which a reply is not sent.
//!   So a flood of forged requests makes a node send at most one reply per
//!   request it accepted, and at most [`MAX_SERVING`] within any timeout.

use crate::protocol::{IncomingReply, IncomingRequest, RemoteFailure, RequestId, Sender};
use bson::Bson;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Most of our requests awaiting replies at once.
pub const MAX_PENDING: usize = 65_536;
/// Most replies kept for one request (`gather`): one per responder.
pub const MAX_REPLIES: usize = 4_096;
/// Most received requests being answered at once.
pub const MAX_SERVING: usize = 1_024;
/// How long after its caller's deadline a pending entry nobody cancelled is
/// dropped anyway (a caller that forgot to cancel cannot fill the table).
const PENDING_GRACE: Duration = Duration::from_secs(5);

/// A request from another node, for a handler of this one.
#[derive(Clone, Debug)]
pub struct Request {
    /// The request's name.
    pub name: String,
    /// Its arguments.
    pub args: Vec<Bson>,
    /// The requester.
    pub from: Arc<Sender>,
    /// The requester's id for it (with `from.id`, what [`Eventcast::reply`](crate::Eventcast::reply) names).
    pub rid: RequestId,
    /// How long the requester waits: a reply after that is not sent.
    pub timeout: Duration,
}

/// A reply to one of our requests.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The request it answers.
    pub rid: RequestId,
    /// The responder.
    pub from: Arc<Sender>,
    /// The value the responder's handler returned, or what it threw.
    pub outcome: Result<Bson, RemoteFailure>,
}

impl Reply {
    /// The responder's instance id.
    pub fn peer(&self) -> &str {
        &self.from.id
    }
}

/// Where the requests for one handler go.
pub(crate) enum HandlerRoute {
    /// To a Rust handler's dispatcher task.
    Channel(mpsc::Sender<Request>),
    /// To the notification stream as `Notification::Request` (the Node
    /// binding's JS handlers), answered through `Eventcast::reply`.
    Notify,
}

/// Where the replies to one of our requests go.
pub(crate) enum ReplyRoute {
    /// To the awaiting Rust future.
    Channel(mpsc::Sender<Reply>),
    /// To the notification stream as `Notification::Reply` (the Node binding).
    Notify,
}

struct Pending {
    route: ReplyRoute,
    /// Dropped after this even if never cancelled.
    expires: Instant,
    /// `request`: done at the first reply. `gather`: until cancelled.
    first_only: bool,
    /// Responders heard, one reply each.
    heard: HashSet<String>,
}

/// Counters of what the tables refused (merged into `Stats`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ExchangeCounters {
    pub requests_unhandled: u64,
    pub requests_refused: u64,
    pub replies_unmatched: u64,
    pub replies_late: u64,
}

/// See the [module docs](self).
#[derive(Default)]
pub(crate) struct Exchange {
    handlers: HashMap<String, HandlerRoute>,
    pending: HashMap<RequestId, Pending>,
    serving: HashMap<(String, RequestId), Instant>,
    pub(crate) counters: ExchangeCounters,
}

/// What [`Exchange::check_serving`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Serving {
    /// The request awaits this reply: send it.
    Due,
    /// Its requester's timeout passed: do not send.
    Late,
    /// No such request is being answered (answered already, or never received).
    Unknown,
}

impl Exchange {
    /// Adds a handler; `false` when `name` has one already.
    pub(crate) fn add_handler(&mut self, name: &str, route: HandlerRoute) -> bool {
        if self.handlers.contains_key(name) {
            return false;
        }
        self.handlers.insert(name.to_owned(), route);
        true
    }

    /// Removes the handler of `name`; whether there was one.
    pub(crate) fn remove_handler(&mut self, name: &str) -> bool {
        self.handlers.remove(name).is_some()
    }

    /// Whether `name` has a handler.
    pub(crate) fn has_handler(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    /// Registers one of our requests, under a fresh random id, or `None`
    /// when [`MAX_PENDING`] requests are pending already.
    pub(crate) fn add_pending(
        &mut self,
        now: Instant,
        timeout: Duration,
        first_only: bool,
        route: ReplyRoute,
    ) -> Option<RequestId> {
        if self.pending.len() >= MAX_PENDING {
            self.pending.retain(|_, p| p.expires > now);
            if self.pending.len() >= MAX_PENDING {
                return None;
            }
        }
        let rid = loop {
            let rid = RequestId(rand::random());
            if !self.pending.contains_key(&rid) {
                break rid;
            }
        };
        let expires = now + timeout + PENDING_GRACE;
        self.pending.insert(rid, Pending { route, expires, first_only, heard: HashSet::new() });
        Some(rid)
    }

    /// Forgets one of our requests (its caller stopped waiting).
    pub(crate) fn cancel(&mut self, rid: RequestId) {
        self.pending.remove(&rid);
    }

    /// Routes a received request to its handler; returns it when the
    /// handler takes requests as notifications (the Node binding's).
    pub(crate) fn take_request(&mut self, now: Instant, r: IncomingRequest) -> Option<Request> {
        let Some(route) = self.handlers.get(&r.name) else {
            self.counters.requests_unhandled += 1;
            return None;
        };
        let key = (r.sender.id.clone(), r.rid);
        if self.serving.contains_key(&key) {
            // The same request id from the same requester again: one answer each.
            self.counters.requests_refused += 1;
            return None;
        }
        if self.serving.len() >= MAX_SERVING {
            self.serving.retain(|_, until| *until > now);
            if self.serving.len() >= MAX_SERVING {
                self.counters.requests_refused += 1;
                return None;
            }
        }
        let request = Request { name: r.name, args: r.args, from: r.sender, rid: r.rid, timeout: r.timeout };
        match route {
            HandlerRoute::Channel(tx) => {
                if tx.try_send(request).is_err() {
                    self.counters.requests_refused += 1;
                    return None;
                }
                self.serving.insert(key, now + r.timeout);
                None
            }
            HandlerRoute::Notify => {
                self.serving.insert(key, now + r.timeout);
                Some(request)
            }
        }
    }

    /// Whether a reply to request `rid` of node `to` is due (a late one
    /// ends the request here). A due one stays until [`Exchange::end_serving`]
    /// (after it was sent: a reply the engine refused, too large, can be
    /// followed by an error reply).
    pub(crate) fn check_serving(&mut self, now: Instant, to: &str, rid: RequestId) -> Serving {
        let key = (to.to_owned(), rid);
        match self.serving.get(&key) {
            Some(until) if *until > now => Serving::Due,
            Some(_) => {
                self.serving.remove(&key);
                self.counters.replies_late += 1;
                Serving::Late
            }
            None => Serving::Unknown,
        }
    }

    /// The reply to request `rid` of node `to` was sent.
    pub(crate) fn end_serving(&mut self, to: &str, rid: RequestId) {
        self.serving.remove(&(to.to_owned(), rid));
    }

    /// Matches a received reply to our pending request; returns it when the
    /// request takes its replies as notifications (the Node binding's).
    pub(crate) fn take_reply(&mut self, now: Instant, r: IncomingReply) -> Option<Reply> {
        let Some(p) = self.pending.get_mut(&r.rid) else {
            self.counters.replies_unmatched += 1;
            return None;
        };
        if p.expires <= now {
            self.pending.remove(&r.rid);
            self.counters.replies_unmatched += 1;
            return None;
        }
        if p.heard.len() >= MAX_REPLIES || !p.heard.insert(r.sender.id.clone()) {
            self.counters.replies_unmatched += 1;
            return None;
        }
        let reply = Reply { rid: r.rid, from: r.sender, outcome: r.outcome };
        let note = match &p.route {
            ReplyRoute::Channel(tx) => {
                if tx.try_send(reply).is_err() {
                    self.counters.replies_unmatched += 1;
                }
                None
            }
            ReplyRoute::Notify => Some(reply),
        };
        if p.first_only {
            self.pending.remove(&r.rid);
        }
        note
    }

    /// How many of our requests await replies, and how many received ones are being answered.
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.pending.len(), self.serving.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(id: &str) -> Arc<Sender> {
        Arc::new(Sender { id: id.into(), host: "127.0.0.1".into(), port: 1, hostname: "h".into() })
    }

    fn reply(rid: RequestId, from: &str) -> IncomingReply {
        IncomingReply { rid, outcome: Ok(Bson::Int32(1)), sender: sender(from) }
    }

    fn request(rid: u64, from: &str, name: &str) -> IncomingRequest {
        IncomingRequest {
            rid: RequestId(rid),
            name: name.into(),
            timeout: Duration::from_secs(1),
            args: vec![],
            sender: sender(from),
        }
    }

    #[test]
    fn a_request_takes_its_first_reply_and_a_gather_one_per_peer() {
        let now = Instant::now();
        let mut x = Exchange::default();
        let first = x.add_pending(now, Duration::from_secs(1), true, ReplyRoute::Notify).unwrap();
        let all = x.add_pending(now, Duration::from_secs(1), false, ReplyRoute::Notify).unwrap();
        assert!(x.take_reply(now, reply(first, "aaaaaaaaaaaaaaaa")).is_some());
        assert!(x.take_reply(now, reply(first, "bbbbbbbbbbbbbbbb")).is_none(), "request: first reply only");
        assert!(x.take_reply(now, reply(all, "aaaaaaaaaaaaaaaa")).is_some());
        assert!(x.take_reply(now, reply(all, "bbbbbbbbbbbbbbbb")).is_some());
        assert!(x.take_reply(now, reply(all, "aaaaaaaaaaaaaaaa")).is_none(), "one reply per peer");
        assert!(x.take_reply(now, reply(RequestId(7), "aaaaaaaaaaaaaaaa")).is_none(), "unknown id");
        assert_eq!(x.counters.replies_unmatched, 3);
        x.cancel(all);
        assert_eq!(x.sizes(), (0, 0));
    }

    #[test]
    fn forged_replies_grow_nothing() {
        let now = Instant::now();
        let mut x = Exchange::default();
        let rid = x.add_pending(now, Duration::from_secs(1), false, ReplyRoute::Notify).unwrap();
        let mut accepted = 0;
        for i in 0..(MAX_REPLIES + 500) {
            accepted += usize::from(x.take_reply(now, reply(rid, &format!("{i:016x}"))).is_some());
        }
        assert_eq!(accepted, MAX_REPLIES);
        for i in 0..10_000u64 {
            assert!(x.take_reply(now, reply(RequestId(i), "aaaaaaaaaaaaaaaa")).is_none());
        }
        assert_eq!(x.sizes(), (1, 0));
        // Past its deadline and grace the entry goes on the next reply.
        assert!(x.take_reply(now + Duration::from_secs(60), reply(rid, "cccccccccccccccc")).is_none());
        assert_eq!(x.sizes(), (0, 0));
    }

    #[test]
    fn requests_are_answered_once_within_bounds() {
        let now = Instant::now();
        let mut x = Exchange::default();
        assert!(x.take_request(now, request(1, "aaaaaaaaaaaaaaaa", "sum")).is_none());
        assert_eq!(x.counters.requests_unhandled, 1);
        assert!(x.add_handler("sum", HandlerRoute::Notify));
        assert!(!x.add_handler("sum", HandlerRoute::Notify), "one handler per name");
        assert!(x.take_request(now, request(1, "aaaaaaaaaaaaaaaa", "sum")).is_some());
        assert!(x.take_request(now, request(1, "aaaaaaaaaaaaaaaa", "sum")).is_none(), "same id again");
        assert_eq!(x.check_serving(now, "aaaaaaaaaaaaaaaa", RequestId(1)), Serving::Due);
        x.end_serving("aaaaaaaaaaaaaaaa", RequestId(1));
        assert_eq!(x.check_serving(now, "aaaaaaaaaaaaaaaa", RequestId(1)), Serving::Unknown, "one reply");
        for i in 0..(MAX_SERVING as u64 + 100) {
            x.take_request(now, request(i + 10, "bbbbbbbbbbbbbbbb", "sum"));
        }
        assert_eq!(x.sizes().1, MAX_SERVING);
        assert_eq!(x.counters.requests_refused, 1 + 100);
        // After their timeout, room again; a reply then is late.
        let later = now + Duration::from_secs(2);
        assert_eq!(x.check_serving(later, "bbbbbbbbbbbbbbbb", RequestId(10)), Serving::Late);
        assert!(x.take_request(now, request(99_998, "cccccccccccccccc", "sum")).is_some());
        assert_eq!(x.sizes().1, MAX_SERVING);
        // Full: the expired ones are forgotten to make room.
        assert!(x.take_request(later, request(99_999, "cccccccccccccccc", "sum")).is_some());
        assert_eq!(x.sizes().1, 1);
    }
}
