//! The one declaration of every option of the JS API (`Eventcast(options)`):
//! name, default, bounds, meaning. Everything else is derived from it or
//! checked against it:
//!
//! * Rust: [`Options::default`](super::Options) and [`Options::validate`](super::Options::validate)
//!   (the bounds are the same constants; a test compares the defaults);
//! * JS: `lib/options.js` reads this table through the addon (`optionTable()`)
//!   for its defaults and bounds, and keeps only the type checks and messages;
//! * docs: the README's options table is generated from it
//!   (`node scripts/options-doc.js --write`) and `index.d.ts` names every
//!   option with its default and range; `__test__/options-doc.test.js` fails
//!   when either drifts.

use super::options::{
    OptionBound, MAX_PAYLOAD_SIZE_BOUND, MESSAGE_TTL_MS_BOUND, MULTICAST_TTL_BOUND, PRESENCE_INTERVAL_MS_BOUND,
    PRESENCE_MAX_PEERS_BOUND, PRESENCE_TIMEOUT_MS_BOUND, RETRANSMIT_ATTEMPTS_BOUND, SEND_QUEUE_BYTES_BOUND,
};

/// `replMaxClients`: REPL sessions at once (the REPL lives in the JS face only).
pub const REPL_MAX_CLIENTS_BOUND: OptionBound = OptionBound { option: "replMaxClients", min: 1, max: 1024 };
/// `replIdleTimeout` in milliseconds: 100 ms to one day.
pub const REPL_IDLE_TIMEOUT_BOUND: OptionBound =
    OptionBound { option: "replIdleTimeout", min: 100, max: 24 * 3600 * 1000 };

/// `requestTimeout` in milliseconds: how long `request`/`gather` wait (1 ms to
/// one hour, the longest a request can say on the wire). The Rust API takes
/// the timeout per call.
pub const REQUEST_TIMEOUT_BOUND: OptionBound =
    OptionBound { option: "requestTimeout", min: 1, max: crate::wire::exchange::MAX_TIMEOUT_MS as u64 };

/// One option of the JS API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    /// The name as the JS API spells it.
    pub name: &'static str,
    /// The default as JSON, when it is a value (`None`: decided at start,
    /// see `default_note`).
    pub default_json: Option<&'static str>,
    /// How the documentation says the default when it is not a value
    /// (`random in 49152–65535`), or a gloss after it (`8 MiB`); may be empty.
    pub default_note: &'static str,
    /// The accepted range of a numeric option, inclusive.
    pub bound: Option<OptionBound>,
    /// What it does, as the README's options table says it; `{range}` marks
    /// where the bound goes (else it follows the text).
    pub meaning: &'static str,
}

const fn spec(
    name: &'static str,
    default_json: Option<&'static str>,
    default_note: &'static str,
    bound: Option<OptionBound>,
    meaning: &'static str,
) -> OptionSpec {
    OptionSpec { name, default_json, default_note, bound, meaning }
}

/// Every option of `Eventcast(options)` but the transport's (`transport`,
/// `nats`: see the README's NATS section), in the README's order.
pub const OPTION_TABLE: &[OptionSpec] = &[
    spec(
        "address",
        Some("\"0.0.0.0\""),
        "",
        None,
        "address to bind; unspecified (`'0.0.0.0'`, `'::'`) is any address of the group's family, a specific one must be of that family",
    ),
    spec("port", None, "random in 49152–65535", None, "UDP port of the group (1–65535)"),
    spec(
        "multicastMembership",
        Some("\"224.0.0.1\""),
        "",
        None,
        "multicast group: IPv4 (224.0.0.0–239.255.255.255) or IPv6 (ff00::/8: `'ff15::…'` site-local, `'ff12::…'` link-local, which needs `multicastInterface` or a zone, `'ff12::1%eth0'`); eventcast 0.1.x nodes speak IPv4 only",
    ),
    spec(
        "multicastInterface",
        None,
        "any",
        None,
        "the interface to join and send on: its name (`'eth1'`), an address of it, or its index (a number); required for link-local IPv6 groups; one the host lacks fails `start()` with `ENOINTERFACE`",
    ),
    spec(
        "multicastLoopback",
        Some("true"),
        "",
        None,
        "receive the group's datagrams sent from this host (needed for several nodes on one host)",
    ),
    spec(
        "multicastTtl",
        Some("1"),
        "",
        Some(MULTICAST_TTL_BOUND),
        "multicast TTL, an IPv6 group's hop limit ({range}; 1 = this subnet)",
    ),
    spec("replEnabled", Some("false"), "", None, "serve the TCP REPL (giving `replPort` enables it too)"),
    spec("replPort", None, "random in 49152–65535", None, "REPL port (1–65535)"),
    spec("replHost", Some("\"localhost\""), "", None, "REPL bind host; anything non-loopback logs a warning"),
    spec(
        "replMaxClients",
        Some("16"),
        "",
        Some(REPL_MAX_CLIENTS_BOUND),
        "REPL sessions at once ({range}); further connections are refused, counted in `replStats().refused` and logged",
    ),
    spec(
        "replIdleTimeout",
        Some("600000"),
        "10 min",
        Some(REPL_IDLE_TIMEOUT_BOUND),
        "ms without input after which a REPL session is closed",
    ),
    spec(
        "requestTimeout",
        Some("1000"),
        "",
        Some(REQUEST_TIMEOUT_BOUND),
        "ms `request()` and `gather()` wait for replies ({range}); per call: `ec.timeout(ms).request(...)`",
    ),
    spec(
        "encrypt",
        Some("false"),
        "",
        None,
        "`{ key }` (authenticated scheme) or `{ key, legacy: true }` (0.1.x scheme)",
    ),
    spec(
        "maxPayloadSize",
        Some("1024"),
        "",
        Some(MAX_PAYLOAD_SIZE_BOUND),
        "largest datagram before a message is chunked",
    ),
    spec(
        "messageTtl",
        Some("3000"),
        "",
        Some(MESSAGE_TTL_MS_BOUND),
        "ms to reassemble a message; sent data is kept 3× this for repairs",
    ),
    spec(
        "messageRetransmitAttempts",
        Some("3"),
        "",
        Some(RETRANSMIT_ATTEMPTS_BOUND),
        "repair requests per stalled message ({range}; 0.1.x's spelling `messageRetransmitAttemps` works too)",
    ),
    spec(
        "sendQueueBytes",
        Some("8388608"),
        "8 MiB",
        Some(SEND_QUEUE_BYTES_BOUND),
        "bound of the send queue ({range}); `emit` throws `EBACKPRESSURE` while this much waits for a slow link (see \"Delivery guarantees\")",
    ),
    spec(
        "name",
        None,
        "`process.title`",
        None,
        "label this node advertises to its peers (at most 256 bytes; see \"Presence\")",
    ),
    spec(
        "meta",
        Some("{}"),
        "",
        None,
        "application object advertised to peers (JSON values, at most 1 KiB encoded); change it with `setMeta()`",
    ),
    spec(
        "presence",
        Some("true"),
        "",
        None,
        "`false`: no beacons and no peer table; or `{ interval, timeout, maxPeers }` (below)",
    ),
    spec(
        "presence.interval",
        Some("1000"),
        "",
        Some(PRESENCE_INTERVAL_MS_BOUND),
        "ms between this node's beacons ({range}; each jittered ±10%)",
    ),
    spec(
        "presence.timeout",
        Some("5000"),
        "",
        Some(PRESENCE_TIMEOUT_MS_BOUND),
        "ms without a beacon or event after which a peer is down ({range}; at least 2 × interval)",
    ),
    spec(
        "presence.maxPeers",
        Some("1024"),
        "",
        Some(PRESENCE_MAX_PEERS_BOUND),
        "peers tracked ({range}); a new one evicts the least recently heard (`peersEvicted`)",
    ),
    spec("log", Some("false"), "", None, "write bunyan JSON records to stdout"),
    spec("logLevel", Some("\"error\""), "", None, "`trace` `debug` `info` `warn` `error` `fatal` or 10–60"),
];

/// The entry of `name`, if the JS API has that option.
pub fn option_spec(name: &str) -> Option<&'static OptionSpec> {
    OPTION_TABLE.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Options, OPTION_BOUNDS};

    fn default_of(name: &str) -> serde_json::Value {
        serde_json::from_str(option_spec(name).unwrap().default_json.unwrap()).unwrap()
    }

    /// The Rust API's defaults are the table's.
    #[test]
    fn rust_defaults_are_the_tables() {
        let o = Options::default();
        assert_eq!(default_of("address"), o.address.to_string());
        assert_eq!(default_of("multicastMembership"), o.multicast_membership.to_string());
        assert_eq!(option_spec("multicastInterface").unwrap().default_json, None);
        assert!(o.multicast_interface.is_none());
        assert_eq!(default_of("multicastLoopback"), o.multicast_loopback);
        assert_eq!(default_of("multicastTtl"), o.multicast_ttl);
        assert_eq!(default_of("maxPayloadSize"), o.max_payload_size);
        assert_eq!(default_of("messageTtl"), o.message_ttl.as_millis() as u64);
        assert_eq!(default_of("messageRetransmitAttempts"), o.message_retransmit_attempts);
        assert_eq!(default_of("sendQueueBytes"), o.send_queue_bytes);
        assert_eq!(default_of("encrypt"), false);
        assert!(o.encrypt.is_none());
        assert_eq!(default_of("meta"), serde_json::json!({}));
        assert!(o.meta.is_empty() && o.name.is_none());
        let p = o.presence.unwrap();
        assert_eq!(default_of("presence"), true);
        assert_eq!(default_of("presence.interval"), p.interval.as_millis() as u64);
        assert_eq!(default_of("presence.timeout"), p.timeout.as_millis() as u64);
        assert_eq!(default_of("presence.maxPeers"), p.max_peers);
    }

    /// Every bound the Rust API checks is in the table, under the same name.
    #[test]
    fn every_rust_bound_is_in_the_table() {
        for b in OPTION_BOUNDS {
            assert_eq!(option_spec(b.option).and_then(|s| s.bound), Some(b), "{}", b.option);
        }
        for s in OPTION_TABLE {
            if let (Some(b), Some(json)) = (s.bound, s.default_json) {
                let v: u64 = serde_json::from_str(json).unwrap();
                assert!(b.contains(v), "{}'s default {v} outside its bound", s.name);
                assert_eq!(b.option, s.name);
            }
        }
    }

    #[test]
    fn every_default_is_json() {
        for s in OPTION_TABLE {
            if let Some(json) = s.default_json {
                serde_json::from_str::<serde_json::Value>(json).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            } else {
                assert!(!s.default_note.is_empty(), "{}: no default and no note", s.name);
            }
        }
    }
}
