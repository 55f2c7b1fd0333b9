//! Which event names travel, and which stay on the instance that emits them.
//!
//! Two kinds of name never reach an application listener from the network:
//!
//! * **Reserved names** ([`RESERVED_EVENTS`]): the events an instance emits on
//!   itself (`start`, `stop`, `gap`, `drain`, EventEmitter's `newListener` and
//!   `removeListener`, the REPL's `replConnected` and `replDisconnected`,
//!   presence's `peerUp`, `peerDown` and `peerUpdate`). A datagram carrying one would let anyone on the LAN fake a lifecycle event
//!   (a forged `stop` making an application tear down). `emit` of such a name
//!   delivers to local listeners only (the JS layer) and the engine refuses to
//!   send it; a received one is dropped and counted in
//!   [`super::Stats::rejected_reserved`].
//! * **Protocol names** (prefix [`PROTOCOL_PREFIX`], `__ec_retx`, `__ec_hb`,
//!   and whatever later versions add): the engine's own control messages.
//!   Applications cannot emit them (`EPAYLOAD`), and a received one the engine
//!   does not handle is dropped and counted the same way, never delivered.
//!
//! `error` is neither: it travels, and the JS layer hands a received one to
//! `'error'` listeners only as an `Error` with code `EREMOTE` (never thrown at
//! an instance without such a listener). This list is the one source of truth:
//! the Node binding exports it to `index.js` (`reservedEvents()`).

/// Event names an instance emits on itself; they never travel.
pub const RESERVED_EVENTS: &[&str] = &[
    "start",
    "stop",
    "gap",
    "drain",
    "newListener",
    "removeListener",
    "replConnected",
    "replDisconnected",
    "peerUp",
    "peerDown",
    "peerUpdate",
];

/// Prefix of the protocol's own control messages (`__ec_retx`, `__ec_hb`).
pub const PROTOCOL_PREFIX: &str = "__ec_";

/// Whether `name` is one of [`RESERVED_EVENTS`].
pub fn is_reserved(name: &str) -> bool {
    RESERVED_EVENTS.contains(&name)
}

/// Whether `name` belongs to the protocol's own control messages.
pub fn is_protocol(name: &str) -> bool {
    name.starts_with(PROTOCOL_PREFIX)
}

/// Whether an event of this name may be delivered to listeners when received.
pub fn is_deliverable(name: &str) -> bool {
    !is_reserved(name) && !is_protocol(name)
}

/// `EPAYLOAD` unless an application may send an event or a request named
/// `name` (the same rule as [`is_deliverable`]): the engine's `emit` and
/// `request_encoded` and the driver's `handle` all ask this.
pub fn check_sendable(name: &str) -> Result<(), crate::error::Error> {
    if is_deliverable(name) {
        return Ok(());
    }
    Err(crate::error::Error::Payload(format!(
        "event name {name:?} is reserved (an instance's own lifecycle event or a protocol message): it never travels"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_and_protocol_names_are_not_deliverable() {
        for n in RESERVED_EVENTS {
            assert!(!is_deliverable(n), "{n}");
        }
        for n in ["__ec_retx", "__ec_hb", "__ec_presence", "__ec_"] {
            assert!(is_protocol(n) && !is_deliverable(n), "{n}");
        }
        for n in ["myevent", "error", "Start", "stopped", "_ec_x", "", "__e"] {
            assert!(is_deliverable(n), "{n}");
        }
    }
}
