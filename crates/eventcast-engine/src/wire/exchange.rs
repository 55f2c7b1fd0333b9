//! Requests and replies on the wire (request/reply, `ec.request`/`ec.gather`).
//!
//! Both travel as ordinary numbered messages of the sender's stream, so they
//! get what events get: chunking, repair under loss, sealing, every budget of
//! the receive path. What marks them is the event name, under the protocol
//! prefix (`__ec_`), which 0.1.x nodes have no listener for (they emit it on
//! themselves and nothing happens) and which applications cannot emit:
//!
//! * a request: `__ec_req:<rid>:<timeout>:<name>`, body `{payload: [args...]}`
//!   — `rid` the requester's request id (16 lower-case hex chars, random),
//!   `timeout` how long the requester waits, in decimal milliseconds (a
//!   responder forgets the request after it, whatever its handler does),
//!   `name` the request's name as the application gave it;
//! * a reply: `__ec_rep:<to>:<rid>`, body `{payload: [value]}` — `to` the
//!   requester's instance id, `rid` its request id;
//! * an error reply: `__ec_rer:<to>:<rid>`, body `{payload: [{message, code}]}`
//!   (both strings, bounded by [`MAX_ERROR_MESSAGE_BYTES`] and
//!   [`MAX_ERROR_CODE_BYTES`]).
//!
//! Parsing is total and bounded: a name that does not fit these shapes
//! exactly (other lengths, upper-case hex, a timeout out of range) is not a
//! request or reply, and the caller drops it as an unknown protocol message.

use super::ids::{INSTANCE_ID_LEN, SEQ_ID_LEN};
use bson::{doc, Bson, Document};
use std::fmt;

/// Name prefix of a request.
pub const REQUEST_PREFIX: &str = "__ec_req:";
/// Name prefix of a reply carrying a value.
pub const REPLY_PREFIX: &str = "__ec_rep:";
/// Name prefix of a reply carrying an error.
pub const ERROR_REPLY_PREFIX: &str = "__ec_rer:";
/// Longest timeout a request may carry: one hour (also the bound of the
/// `requestTimeout` option).
pub const MAX_TIMEOUT_MS: u32 = 3_600_000;
/// Longest `message` of an error reply; a longer one is cut (on a char
/// boundary) by the sender, and refused from the network.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 4096;
/// Longest `code` of an error reply.
pub const MAX_ERROR_CODE_BYTES: usize = 64;

/// A request id: 64 random bits, written as 16 lower-case hex chars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl RequestId {
    /// Parses exactly 16 lower-case hex chars.
    pub fn parse(s: &str) -> Option<RequestId> {
        (s.len() == INSTANCE_ID_LEN && is_lower_hex(s))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
            .map(RequestId)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What a request's wire name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestName<'a> {
    /// The requester's id for this request.
    pub rid: RequestId,
    /// How long the requester waits, in ms (`1 ..= MAX_TIMEOUT_MS`).
    pub timeout_ms: u32,
    /// The request's name as the application gave it.
    pub name: &'a str,
}

impl<'a> RequestName<'a> {
    /// The wire name.
    pub fn to_wire(&self) -> String {
        format!("{REQUEST_PREFIX}{}:{}:{}", self.rid, self.timeout_ms, self.name)
    }

    /// Parses a wire name; `None` when it is not exactly a request's.
    pub fn parse(wire: &'a str) -> Option<Self> {
        let rest = wire.strip_prefix(REQUEST_PREFIX)?;
        let (rid, rest) = rest.split_once(':')?;
        let (timeout, name) = rest.split_once(':')?;
        let rid = RequestId::parse(rid)?;
        // Decimal digits only, no sign, no leading zero: one spelling per value.
        if timeout.is_empty()
            || timeout.len() > 7
            || !timeout.bytes().all(|b| b.is_ascii_digit())
            || timeout.starts_with('0')
        {
            return None;
        }
        let timeout_ms: u32 = timeout.parse().ok()?;
        (timeout_ms <= MAX_TIMEOUT_MS).then_some(RequestName { rid, timeout_ms, name })
    }
}

/// What a reply's wire name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyName<'a> {
    /// The requester's instance id.
    pub to: &'a str,
    /// The request it answers.
    pub rid: RequestId,
    /// An error reply (its body is a [`RemoteFailure`]).
    pub error: bool,
}

impl<'a> ReplyName<'a> {
    /// The wire name.
    pub fn to_wire(&self) -> String {
        let prefix = if self.error { ERROR_REPLY_PREFIX } else { REPLY_PREFIX };
        format!("{prefix}{}:{}", self.to, self.rid)
    }

    /// Parses a wire name; `None` when it is not exactly a reply's.
    pub fn parse(wire: &'a str) -> Option<Self> {
        let (rest, error) = match wire.strip_prefix(REPLY_PREFIX) {
            Some(rest) => (rest, false),
            None => (wire.strip_prefix(ERROR_REPLY_PREFIX)?, true),
        };
        let (to, rid) = rest.split_once(':')?;
        if to.len() != INSTANCE_ID_LEN || !is_lower_hex(to) {
            return None;
        }
        Some(ReplyName { to, rid: RequestId::parse(rid)?, error })
    }
}

/// The error an error reply carries: what the responder's handler threw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFailure {
    /// The error's message (at most [`MAX_ERROR_MESSAGE_BYTES`]).
    pub message: String,
    /// The error's code (at most [`MAX_ERROR_CODE_BYTES`]; empty when it had none).
    pub code: String,
}

impl RemoteFailure {
    /// A failure with `message` and `code` cut to their bounds (on char boundaries).
    pub fn new(message: &str, code: &str) -> Self {
        RemoteFailure {
            message: cut(message, MAX_ERROR_MESSAGE_BYTES).into(),
            code: cut(code, MAX_ERROR_CODE_BYTES).into(),
        }
    }

    /// The document an error reply carries as its one argument.
    pub fn to_document(&self) -> Document {
        doc! { "message": &self.message, "code": &self.code }
    }

    /// Reads an error reply's argument: a document with string `message` and
    /// `code` within their bounds (other fields ignored); `None` otherwise.
    pub fn from_bson(value: &Bson) -> Option<Self> {
        let Bson::Document(d) = value else { return None };
        let message = d.get_str("message").ok()?;
        let code = d.get_str("code").ok()?;
        (message.len() <= MAX_ERROR_MESSAGE_BYTES && code.len() <= MAX_ERROR_CODE_BYTES)
            .then(|| RemoteFailure { message: message.into(), code: code.into() })
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `s` cut to at most `max` bytes on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// A seqId is longer than any id here: a reply name never reads as a seqId.
const _: () = assert!(SEQ_ID_LEN > INSTANCE_ID_LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names_round_trip_with_golden_text() {
        let r = RequestName { rid: RequestId(0x0123_4567_89ab_cdef), timeout_ms: 1000, name: "sum.of:parts" };
        assert_eq!(r.to_wire(), "__ec_req:0123456789abcdef:1000:sum.of:parts");
        assert_eq!(RequestName::parse(&r.to_wire()), Some(r));
        let empty = RequestName { rid: RequestId(1), timeout_ms: 1, name: "" };
        assert_eq!(RequestName::parse(&empty.to_wire()), Some(empty));
    }

    #[test]
    fn reply_names_round_trip_with_golden_text() {
        let r = ReplyName { to: "00112233aabbccdd", rid: RequestId(0xff), error: false };
        assert_eq!(r.to_wire(), "__ec_rep:00112233aabbccdd:00000000000000ff");
        assert_eq!(ReplyName::parse(&r.to_wire()), Some(r));
        let e = ReplyName { error: true, ..r };
        assert_eq!(e.to_wire(), "__ec_rer:00112233aabbccdd:00000000000000ff");
        assert_eq!(ReplyName::parse(&e.to_wire()), Some(e));
    }

    #[test]
    fn anything_else_is_not_a_request_or_reply() {
        for bad in [
            "__ec_req:",
            "__ec_req:0123456789abcdef",
            "__ec_req:0123456789abcdef:1000",
            "__ec_req:0123456789ABCDEF:1000:x",
            "__ec_req:0123456789abcde:1000:x",
            "__ec_req:0123456789abcdef0:1000:x",
            "__ec_req:0123456789abcdef:0:x",
            "__ec_req:0123456789abcdef:01000:x",
            "__ec_req:0123456789abcdef:-5:x",
            "__ec_req:0123456789abcdef:+5:x",
            "__ec_req:0123456789abcdef:3600001:x",
            "__ec_req:0123456789abcdef:99999999999:x",
            "__ec_req:0123456789abcdef::x",
            "__ec_rep:0123456789abcdef:0123456789abcdef",
            "req:0123456789abcdef:5:x",
        ] {
            assert_eq!(RequestName::parse(bad), None, "{bad}");
        }
        for bad in [
            "__ec_rep:",
            "__ec_rep:00112233aabbccdd",
            "__ec_rep:00112233aabbccdd:",
            "__ec_rep:00112233AABBCCDD:00000000000000ff",
            "__ec_rep:00112233aabbccd:00000000000000ff",
            "__ec_rep:00112233aabbccdd:00000000000000ff:x",
            "__ec_rex:00112233aabbccdd:00000000000000ff",
            "__ec_req:00112233aabbccdd:00000000000000ff",
        ] {
            assert_eq!(ReplyName::parse(bad), None, "{bad}");
        }
        assert!(RequestName::parse(&format!("__ec_req:0123456789abcdef:{MAX_TIMEOUT_MS}:x")).is_some());
    }

    #[test]
    fn failures_are_bounded_both_ways() {
        let long = "é".repeat(MAX_ERROR_MESSAGE_BYTES);
        let f = RemoteFailure::new(&long, &"C".repeat(100));
        assert!(f.message.len() <= MAX_ERROR_MESSAGE_BYTES && f.message.len() >= MAX_ERROR_MESSAGE_BYTES - 1);
        assert_eq!(f.code.len(), MAX_ERROR_CODE_BYTES);
        assert_eq!(RemoteFailure::from_bson(&Bson::Document(f.to_document())), Some(f));
        let too_long = doc! { "message": "x".repeat(MAX_ERROR_MESSAGE_BYTES + 1), "code": "" };
        assert_eq!(RemoteFailure::from_bson(&Bson::Document(too_long)), None);
        assert_eq!(RemoteFailure::from_bson(&Bson::Document(doc! { "message": 5, "code": "" })), None);
        assert_eq!(RemoteFailure::from_bson(&Bson::String("boom".into())), None);
    }
}
