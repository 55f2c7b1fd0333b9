//! Typed errors. Every error carries a stable string code (`EPRVERSION`, `EDECRYPT`, ...)
//! that the Node binding copies onto the JS `Error` object's `code` property.

use std::io;

/// Why a datagram from the network was rejected. Every variant is counted in
/// [`crate::protocol::Stats`]; none of them can crash a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The datagram is shorter than its framing says, or its fields do not parse.
    #[error("malformed datagram: {0}")]
    Malformed(Malformed),
    /// The meta document carries a protocol version other than 3.
    #[error("unsupported protocol version {0} (expected 3)")]
    Version(i32),
    /// The body could not be decrypted or authenticated with our key,
    /// or it arrived in plaintext while encryption is configured.
    #[error("decryption failed: {0}")]
    Decrypt(&'static str),
    /// A declared size or count exceeds a configured limit.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// A body with more arguments, or more values in all, than any node
    /// sends ([`crate::wire::depth::MAX_ARGS`], [`crate::wire::depth::MAX_VALUES`]):
    /// refused before conversion, since delivering it could overflow the
    /// receiver's stack or memory.
    #[error("more {what} than the {limit} an event may carry")]
    TooManyValues {
        /// `arguments` or `values`.
        what: &'static str,
        /// The bound exceeded.
        limit: usize,
    },
}

/// What was wrong with a malformed datagram. Static data only: a node
/// rejects hostile datagrams at line rate and only counts them, so building
/// one allocates nothing; the text is composed when it is displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// What is wrong.
    pub what: &'static str,
    /// The field or part concerned (`seq`, `document`, ...), when there is one.
    pub field: Option<&'static str>,
    /// A size or number that goes with it (a length, a chunk index).
    pub value: Option<i64>,
}

impl Malformed {
    /// A reason with no field or number.
    pub const fn new(what: &'static str) -> Self {
        Malformed { what, field: None, value: None }
    }

    /// The same, about `field`.
    pub const fn field(self, field: &'static str) -> Self {
        Malformed { field: Some(field), ..self }
    }

    /// The same, with a number (saturated to the `i64` range).
    pub fn value(self, value: impl TryInto<i64>) -> Self {
        Malformed { value: Some(value.try_into().unwrap_or(i64::MAX)), ..self }
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(field) = self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(self.what)?;
        if let Some(v) = self.value {
            write!(f, " ({v})")?;
        }
        Ok(())
    }
}

impl From<Malformed> for WireError {
    fn from(m: Malformed) -> Self {
        WireError::Malformed(m)
    }
}

impl WireError {
    /// Stable error code, surfaced as `err.code` in JS.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Malformed(_) => "EMALFORMED",
            WireError::Version(_) => "EPRVERSION",
            WireError::Decrypt(_) => "EDECRYPT",
            WireError::Limit(_) => "ELIMIT",
            WireError::TooManyValues { .. } => "ETOOMANYVALUES",
        }
    }
}

/// Errors returned by the public API (emit, start, stop, options).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Arguments that cannot be sent: too large, or a value BSON cannot carry.
    #[error("cannot send payload: {0}")]
    Payload(String),
    /// An invalid option value.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// Option name as the JS API spells it (`port`, `multicastMembership`, ...).
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The operation needs a started node.
    #[error("node is not started")]
    NotStarted,
    /// `multicastInterface` names an interface this host does not have (by
    /// name, index or address), or one without an address the group needs
    /// (an IPv4 group joins by the interface's IPv4 address). Returned by
    /// `start()`, not by option validation: the value is well formed, the
    /// host lacks it, and may have it later (a VPN or container link that
    /// comes up), so a caller can tell this apart from a bad value.
    #[error("{reason} (this host's interfaces: {})", if available.is_empty() { "none found".to_string() } else { available.join(", ") })]
    NoInterface {
        /// The interface as given (`eth1`, `3`, `192.0.2.1`).
        interface: String,
        /// What is missing, naming the interface.
        reason: String,
        /// The host's interfaces, `name (addresses)`, as listed at the time.
        available: Vec<String>,
    },
    /// Binding, joining or sending failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// A datagram was rejected (reported through events, not returned from calls).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The send queue is full (a slow link): the event was not sent. Emit
    /// again after the driver's `Notification::Drain`.
    #[error("send queue full ({queued} bytes queued, limit {limit}): wait for 'drain'")]
    Backpressure {
        /// Bytes waiting to be sent.
        queued: usize,
        /// The bound (`Options::send_queue_bytes`).
        limit: usize,
    },
    /// The NATS transport failed: `code` is `ENATSCONNECT` (no server
    /// reachable within the start timeout), `ENATSAUTH` (credentials refused),
    /// `ENATSTLS`, `ENATSCONFIG` (unusable settings, e.g. a missing creds file),
    /// `ENATSSUBSCRIBE`.
    #[error("NATS: {message}")]
    Nats {
        /// Stable code (see above).
        code: &'static str,
        /// What happened, with the server(s) concerned.
        message: String,
    },
    /// The wall clock reads before 1970 (`ECLOCK`): datagrams carry their send
    /// time, which cannot say that. Returned by `start()` (and by `emit` if the
    /// clock is set back that far while running).
    #[error("unusable clock: {0}")]
    Clock(String),
    /// `handle(name, ..)` while this node already has a handler for `name`.
    #[error("a handler for {0:?} exists already on this node (unhandle it first)")]
    HandlerExists(String),
    /// No reply to a request arrived within its timeout.
    #[error("no reply to request {name:?} within {ms} ms")]
    TimedOut {
        /// The request's name.
        name: String,
        /// The timeout, in ms.
        ms: u64,
    },
    /// The first reply to a request was an error: what the responder's handler threw.
    #[error("{message}")]
    Remote {
        /// The responder's instance id.
        peer: String,
        /// The error's message, as the responder sent it.
        message: String,
        /// The error's code as the responder sent it (empty when it had none).
        remote_code: String,
    },
    /// As many requests are awaiting replies as a node keeps track of
    /// (`limit`): this one was not sent.
    #[error("{limit} requests are awaiting replies already: this one was not sent")]
    TooManyRequests {
        /// The bound.
        limit: usize,
    },
    /// A driver task failed (a bug): the node stopped itself. Reported as a
    /// notification, never returned from calls.
    #[error("internal error, node stopped: {0}")]
    Internal(String),
    /// An event-name pattern that breaks the token rules (`EPATTERN`): an
    /// empty token, `*` or `>` inside a token, `>` not last, or too long
    /// (the driver's `Pattern::parse` says which).
    #[error("invalid pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern as given, cut to its first 64 characters (a pattern
        /// refused for its length would otherwise fill the message).
        pattern: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
}

impl Error {
    /// Stable error code, surfaced as `err.code` in JS.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Payload(_) => "EPAYLOAD",
            Error::InvalidOption { .. } => "EINVALIDOPTION",
            Error::NotStarted => "ENOTSTARTED",
            Error::NoInterface { .. } => "ENOINTERFACE",
            Error::Io(e) => match e.kind() {
                io::ErrorKind::AddrInUse => "EADDRINUSE",
                io::ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
                io::ErrorKind::PermissionDenied => "EACCES",
                _ => "ESOCKET",
            },
            Error::Wire(w) => w.code(),
            Error::Backpressure { .. } => "EBACKPRESSURE",
            Error::Nats { code, .. } => code,
            Error::Clock(_) => "ECLOCK",
            Error::Internal(_) => "EINTERNAL",
            Error::HandlerExists(_) => "EHANDLEREXISTS",
            Error::TimedOut { .. } => "ETIMEDOUT",
            Error::Remote { .. } => "EREMOTE",
            Error::TooManyRequests { .. } => "ETOOMANYREQUESTS",
            Error::Pattern { .. } => "EPATTERN",
        }
    }
}
