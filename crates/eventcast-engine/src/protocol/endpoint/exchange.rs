//! Requests and replies (request/reply): sending them as numbered messages of
//! our stream, and recognising received ones (see [`crate::wire::exchange`]
//! for their names and bodies).
//!
//! A request or reply that fits in one datagram is sent twice, the copy
//! [`COPY_AFTER`] later, and is followed by a heartbeat sooner than an
//! event ([`exchange_heartbeat`]): a round trip waits on two messages, each
//! of which the repair path would recover only after its NACK delay (an
//! eighth to a quarter of `messageTtl`) once a later message or heartbeat
//! revealed the loss, often longer than a request's timeout. With the copy,
//! a message is late only when both copies are lost (1% at 10% independent
//! loss), and the quick heartbeat starts its repair early. A receiver drops
//! the second copy as a duplicate (by `sn`). Over a transport that loses
//! nothing (NATS: `Config::lossless_transport`) there is no copy. What a node sends in answer to
//! a request is therefore at most two copies of one reply (a chunked reply
//! is sent once and repaired like any message).
//!
//! The engine only carries them: which requests are ours and still awaited,
//! which handlers exist, how many requests are answered at once, are the
//! driver's. What the engine decides is what reaches the driver at all: a
//! request that parses, a reply addressed to us whose body has the shape of
//! a reply; anything else under these prefixes is counted and dropped like
//! any unknown protocol message.

use super::Endpoint;
use crate::error::Error;
use crate::protocol::names;
use crate::protocol::reassembly::SenderRef;
use crate::protocol::{IncomingReply, IncomingRequest, Output};
use crate::wire;
use crate::wire::exchange::{
    RemoteFailure, ReplyName, RequestId, RequestName, ERROR_REPLY_PREFIX, MAX_TIMEOUT_MS, REPLY_PREFIX, REQUEST_PREFIX,
};
use bson::Bson;
use std::time::{Duration, Instant, SystemTime};

/// When the second copy of a one-datagram request or reply leaves: a few
/// milliseconds apart, so a short burst of loss does not take both.
pub(super) const COPY_AFTER: Duration = Duration::from_millis(3);

/// How soon after a request or reply the first heartbeat follows: a quarter
/// of the usual interval (at least 20 ms), so that a receiver that lost both
/// copies notices the gap early.
fn exchange_heartbeat(message_ttl: Duration) -> Duration {
    (super::heartbeat::heartbeat_interval(message_ttl) / 4).max(Duration::from_millis(20))
}

impl Endpoint {
    /// Sends a request named `name` (an application name: `EPAYLOAD` for a
    /// reserved or protocol one) with the arguments `body` (`{payload: [...]}`),
    /// whose replies name `rid`; `timeout` (1 ms ..= one hour, rounded up to
    /// whole ms) tells responders how long to bother.
    pub fn request_encoded(
        &mut self,
        now: Instant,
        wall: SystemTime,
        rid: RequestId,
        timeout: Duration,
        name: &str,
        body: &[u8],
    ) -> Result<(), Error> {
        names::check_sendable(name)?;
        let timeout_ms = u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX).min(MAX_TIMEOUT_MS);
        let wire_name = RequestName { rid, timeout_ms, name }.to_wire();
        self.emit_exchange(now, wall, &wire_name, body)?;
        self.stats.requests_sent += 1;
        Ok(())
    }

    /// Sends the reply to request `rid` of node `to`: the value in `body`
    /// (`{payload: [value]}`).
    pub fn reply_encoded(
        &mut self,
        now: Instant,
        wall: SystemTime,
        to: &str,
        rid: RequestId,
        body: &[u8],
    ) -> Result<(), Error> {
        let wire_name = ReplyName { to, rid, error: false }.to_wire();
        self.emit_exchange(now, wall, &wire_name, body)?;
        self.stats.replies_sent += 1;
        Ok(())
    }

    /// Sends an error reply to request `rid` of node `to`.
    pub fn reply_failure(
        &mut self,
        now: Instant,
        wall: SystemTime,
        to: &str,
        rid: RequestId,
        failure: &RemoteFailure,
    ) -> Result<(), Error> {
        let body = wire::encode_args(&[Bson::Document(failure.to_document())]);
        let wire_name = ReplyName { to, rid, error: true }.to_wire();
        self.emit_exchange(now, wall, &wire_name, &body)?;
        self.stats.replies_sent += 1;
        Ok(())
    }

    /// Sends a request or reply: a numbered message, its copy, an early heartbeat (see the module docs).
    fn emit_exchange(&mut self, now: Instant, wall: SystemTime, wire_name: &str, body: &[u8]) -> Result<(), Error> {
        if let Some(one) = self.emit_numbered(now, wall, wire_name, body)? {
            if !self.config.lossless_transport {
                self.delay(now + COPY_AFTER, &[one]);
            }
        }
        let soon = now + exchange_heartbeat(self.config.message_ttl);
        self.heartbeat_due = Some(self.heartbeat_due.map_or(soon, |due| due.min(soon)));
        Ok(())
    }

    /// Takes a received message whose name is under a request or reply
    /// prefix; returns `false` when `name` is neither (the caller goes on).
    /// The message was checked fresh (not a duplicate) already.
    pub(super) fn handle_exchange(&mut self, name: &str, args: &mut Vec<Bson>, from: SenderRef<'_>) -> bool {
        if name.starts_with(REQUEST_PREFIX) {
            match RequestName::parse(name) {
                Some(r) if names::is_deliverable(r.name) => {
                    self.stats.requests_received += 1;
                    let sender = self.recent_senders.get(from);
                    self.known.insert(&sender.id);
                    self.outputs.push_back(Output::Request(Box::new(IncomingRequest {
                        rid: r.rid,
                        name: r.name.to_owned(),
                        timeout: Duration::from_millis(u64::from(r.timeout_ms)),
                        args: std::mem::take(args),
                        sender,
                    })));
                }
                _ => self.stats.rejected_malformed += 1,
            }
            return true;
        }
        if !(name.starts_with(REPLY_PREFIX) || name.starts_with(ERROR_REPLY_PREFIX)) {
            return false;
        }
        let Some(reply) = ReplyName::parse(name) else {
            self.stats.rejected_malformed += 1;
            return true;
        };
        if reply.to != self.identity.id {
            self.stats.replies_not_ours += 1;
            return true;
        }
        let outcome = match (reply.error, args.as_mut_slice()) {
            (false, [value]) => Ok(std::mem::replace(value, Bson::Null)),
            (true, [value]) => match RemoteFailure::from_bson(value) {
                Some(f) => Err(f),
                None => {
                    self.stats.rejected_malformed += 1;
                    return true;
                }
            },
            _ => {
                self.stats.rejected_malformed += 1;
                return true;
            }
        };
        self.stats.replies_received += 1;
        let sender = self.recent_senders.get(from);
        self.known.insert(&sender.id);
        self.outputs.push_back(Output::Reply(Box::new(IncomingReply { rid: reply.rid, outcome, sender })));
        true
    }
}
