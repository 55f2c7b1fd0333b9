//! Presence beacons: the `{payload: {...}}` document of the `__ec_presence`
//! event, which a node multicasts every `presence.interval` while started
//! (`kind: "hello"`) and once more when it stops (`kind: "bye"`).
//!
//! ```text
//! { kind: "hello" | "bye",
//!   version: "0.2.0",            eventcast version of the sender
//!   since: int64,                ms since 1970 when the sender started
//!   transport: "udp" | "nats",   how the sender itself is connected
//!   name: "pricing-1",           optional: the label it advertises
//!   pid: int64,                  optional: its process id
//!   meta: { ... },               optional: its application object
//!   stats: { eventsSent, eventsDelivered, datagramsSent,
//!            repairsSent, repairsRequested, gapsUnrecovered } }   int64 each
//! ```
//!
//! Who sent it (`id`, `host`, `port`, `hostname`) is the datagram's meta, as
//! for every datagram. 0.1.x nodes deliver the event to listeners of
//! `__ec_presence`, which applications do not have (as for `__ec_hb`).
//! Unknown fields are ignored (later versions may add some); every field read
//! is bounded: strings by [`MAX_NAME_BYTES`] / [`MAX_VERSION_BYTES`], `meta` by
//! [`MAX_META_BYTES`] encoded, numbers by their range.

use super::integers::int64;
use bson::{Bson, Document};

/// Event name of a presence beacon.
pub const PRESENCE_EVENT: &str = "__ec_presence";
/// Longest `name` (UTF-8 bytes) a node advertises or accepts.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest `version` accepted.
pub const MAX_VERSION_BYTES: usize = 64;
/// Largest `meta`, as encoded BSON (a small object: role, version, a port).
pub const MAX_META_BYTES: usize = 1024;
/// Latest `since` accepted: 9999-12-31T23:59:59.999Z, in ms.
const MAX_SINCE_MS: i64 = 253_402_300_799_999;

/// Whether a beacon announces a node or takes it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeaconKind {
    /// "I am here" (`hello`), every interval.
    Hello,
    /// "I am leaving" (`bye`), sent by `stop()`.
    Goodbye,
}

/// How a node is connected to its group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PeerTransport {
    /// UDP multicast on a LAN (0.1.x nodes too).
    #[default]
    Udp,
    /// A NATS subject.
    Nats,
}

impl PeerTransport {
    /// The name on the wire and in JS (`"udp"`, `"nats"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PeerTransport::Udp => "udp",
            PeerTransport::Nats => "nats",
        }
    }
}

/// A node's own counters, as its latest beacon carried them (each a subset
/// of [`crate::protocol::Stats`], same names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Events it emitted.
    pub events_sent: u64,
    /// Events delivered to it.
    pub events_delivered: u64,
    /// Datagrams it sent.
    pub datagrams_sent: u64,
    /// Chunks it resent in answer to repair requests.
    pub repairs_sent: u64,
    /// Repair requests it sent.
    pub repairs_requested: u64,
    /// Messages it gave up on (lost beyond repair).
    pub gaps_unrecovered: u64,
}

impl PeerStats {
    /// `(JS name, value)` of each counter, in wire order.
    pub fn fields(&self) -> [(&'static str, u64); 6] {
        [
            ("eventsSent", self.events_sent),
            ("eventsDelivered", self.events_delivered),
            ("datagramsSent", self.datagrams_sent),
            ("repairsSent", self.repairs_sent),
            ("repairsRequested", self.repairs_requested),
            ("gapsUnrecovered", self.gaps_unrecovered),
        ]
    }

    fn from_document(doc: &Document) -> Option<PeerStats> {
        // Absent counters read as 0; a present one must be a non-negative integer.
        let get = |key: &str| match doc.get(key) {
            None => Some(0),
            Some(v) => int64(v).and_then(|n| u64::try_from(n).ok()),
        };
        Some(PeerStats {
            events_sent: get("eventsSent")?,
            events_delivered: get("eventsDelivered")?,
            datagrams_sent: get("datagramsSent")?,
            repairs_sent: get("repairsSent")?,
            repairs_requested: get("repairsRequested")?,
            gaps_unrecovered: get("gapsUnrecovered")?,
        })
    }
}

/// A parsed or to-be-sent beacon.
#[derive(Clone, Debug, PartialEq)]
pub struct Beacon {
    /// Hello or goodbye.
    pub kind: BeaconKind,
    /// The sender's eventcast version.
    pub version: String,
    /// When the sender started, in ms since 1970.
    pub since_ms: i64,
    /// How the sender is connected.
    pub transport: PeerTransport,
    /// The label it advertises.
    pub name: Option<String>,
    /// Its process id.
    pub pid: Option<u32>,
    /// Its application object (empty when it has none).
    pub meta: Document,
    /// Its counters.
    pub stats: PeerStats,
}

/// Why a received beacon document was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeaconError {
    /// A required field is missing, or a field has the wrong type or range.
    Malformed(&'static str),
    /// `name`, `version` or `meta` is larger than its bound.
    TooLarge(&'static str),
}

impl std::fmt::Display for BeaconError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BeaconError::Malformed(what) => write!(f, "malformed presence beacon: {what}"),
            BeaconError::TooLarge(what) => write!(f, "presence beacon field too large: {what}"),
        }
    }
}

impl std::error::Error for BeaconError {}

/// Encoded size of `meta` when it is at most `MAX_META_BYTES` and a valid
/// document; the check a sender makes before advertising it.
pub fn check_meta(meta: &Document) -> Result<usize, BeaconError> {
    let mut buf = Vec::new();
    meta.to_writer(&mut buf).map_err(|_| BeaconError::Malformed("meta"))?;
    if buf.len() > MAX_META_BYTES {
        return Err(BeaconError::TooLarge("meta"));
    }
    Ok(buf.len())
}

/// Checks an advertised name: at most `MAX_NAME_BYTES` bytes.
pub fn check_name(name: &str) -> Result<(), BeaconError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(BeaconError::TooLarge("name"));
    }
    Ok(())
}

impl Beacon {
    /// The document (written in the order of the module docs).
    pub fn to_document(&self) -> Document {
        let mut d = Document::new();
        d.insert("kind", if self.kind == BeaconKind::Hello { "hello" } else { "bye" });
        d.insert("version", self.version.clone());
        d.insert("since", Bson::Int64(self.since_ms));
        d.insert("transport", self.transport.as_str());
        if let Some(name) = &self.name {
            d.insert("name", name.clone());
        }
        if let Some(pid) = self.pid {
            d.insert("pid", Bson::Int64(i64::from(pid)));
        }
        if !self.meta.is_empty() {
            d.insert("meta", self.meta.clone());
        }
        let mut stats = Document::new();
        for (key, value) in self.stats.fields() {
            stats.insert(key, Bson::Int64(i64::try_from(value).unwrap_or(i64::MAX)));
        }
        d.insert("stats", stats);
        d
    }

    /// Parses a received beacon document (untrusted: every field checked).
    pub fn from_document(doc: &Document) -> Result<Beacon, BeaconError> {
        use BeaconError::{Malformed, TooLarge};
        let kind = match doc.get_str("kind") {
            Ok("hello") => BeaconKind::Hello,
            Ok("bye") => BeaconKind::Goodbye,
            _ => return Err(Malformed("kind")),
        };
        let version = doc.get_str("version").map_err(|_| Malformed("version"))?;
        if version.len() > MAX_VERSION_BYTES {
            return Err(TooLarge("version"));
        }
        let since_ms = doc.get("since").and_then(int64).filter(|ms| (0..=MAX_SINCE_MS).contains(ms));
        let since_ms = since_ms.ok_or(Malformed("since"))?;
        let transport = match doc.get_str("transport") {
            Ok("udp") => PeerTransport::Udp,
            Ok("nats") => PeerTransport::Nats,
            _ => return Err(Malformed("transport")),
        };
        let name = match doc.get("name") {
            None | Some(Bson::Null) => None,
            Some(Bson::String(s)) => {
                check_name(s)?;
                Some(s.clone())
            }
            Some(_) => return Err(Malformed("name")),
        };
        let pid = match doc.get("pid") {
            None | Some(Bson::Null) => None,
            Some(v) => Some(int64(v).and_then(|n| u32::try_from(n).ok()).ok_or(Malformed("pid"))?),
        };
        let meta = match doc.get("meta") {
            None | Some(Bson::Null) => Document::new(),
            Some(Bson::Document(m)) => {
                check_meta(m)?;
                m.clone()
            }
            Some(_) => return Err(Malformed("meta")),
        };
        let stats = match doc.get("stats") {
            None | Some(Bson::Null) => PeerStats::default(),
            Some(Bson::Document(s)) => PeerStats::from_document(s).ok_or(Malformed("stats"))?,
            Some(_) => return Err(Malformed("stats")),
        };
        Ok(Beacon { kind, version: version.to_owned(), since_ms, transport, name, pid, meta, stats })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn sample() -> Beacon {
        Beacon {
            kind: BeaconKind::Hello,
            version: "0.2.0".into(),
            since_ms: 1_764_979_200_000,
            transport: PeerTransport::Udp,
            name: Some("pricing-1".into()),
            pid: Some(4242),
            meta: doc! { "role": "pricing", "http": 8080 },
            stats: PeerStats { events_sent: 7, repairs_sent: 1, ..PeerStats::default() },
        }
    }

    /// The bytes of `sample()`'s document, so a change of the format shows up here.
    #[test]
    fn golden_bytes() {
        let mut bytes = Vec::new();
        sample().to_document().to_writer(&mut bytes).unwrap();
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expected = concat!(
            "2a010000", // document length 298
            "02",
            "6b696e6400",
            "06000000",
            "68656c6c6f00", // kind: "hello"
            "02",
            "76657273696f6e00",
            "06000000",
            "302e322e3000", // version: "0.2.0"
            "12",
            "73696e636500",
            "0050f5f09a010000", // since: int64 1764979200000
            "02",
            "7472616e73706f727400",
            "04000000",
            "75647000", // transport: "udp"
            "02",
            "6e616d6500",
            "0a000000",
            "70726963696e672d3100", // name: "pricing-1"
            "12",
            "70696400",
            "9210000000000000", // pid: int64 4242
            "03",
            "6d65746100",
            "21000000", // meta: {
            "02",
            "726f6c6500",
            "08000000",
            "70726963696e6700", //   role: "pricing",
            "10",
            "6874747000",
            "901f0000",
            "00", //   http: int32 8080 }
            "03",
            "737461747300",
            "91000000", // stats: {
            "12",
            "6576656e747353656e7400",
            "0700000000000000", //   eventsSent: 7,
            "12",
            "6576656e747344656c69766572656400",
            "0000000000000000", //   eventsDelivered: 0,
            "12",
            "646174616772616d7353656e7400",
            "0000000000000000", //   datagramsSent: 0,
            "12",
            "7265706169727353656e7400",
            "0100000000000000", //   repairsSent: 1,
            "12",
            "7265706169727352657175657374656400",
            "0000000000000000", //   repairsRequested: 0,
            "12",
            "67617073556e7265636f766572656400",
            "0000000000000000", //   gapsUnrecovered: 0 }
            "00",
            "00", // end of stats, end of document
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn round_trip() {
        let b = sample();
        assert_eq!(Beacon::from_document(&b.to_document()).unwrap(), b);
        let bye = Beacon { kind: BeaconKind::Goodbye, name: None, pid: None, meta: Document::new(), ..sample() };
        assert_eq!(Beacon::from_document(&bye.to_document()).unwrap(), bye);
    }

    #[test]
    fn refuses_what_a_node_of_ours_never_writes() {
        let base = sample().to_document();
        let with = |key: &str, value: Bson| {
            let mut d = base.clone();
            d.insert(key, value);
            Beacon::from_document(&d)
        };
        assert_eq!(with("kind", "hi".into()), Err(BeaconError::Malformed("kind")));
        assert_eq!(with("since", Bson::Int64(-1)), Err(BeaconError::Malformed("since")));
        assert_eq!(with("since", Bson::Int64(i64::MAX)), Err(BeaconError::Malformed("since")));
        assert_eq!(with("transport", "tcp".into()), Err(BeaconError::Malformed("transport")));
        assert_eq!(with("pid", Bson::Int64(-5)), Err(BeaconError::Malformed("pid")));
        assert_eq!(with("pid", Bson::Int64(1 << 40)), Err(BeaconError::Malformed("pid")));
        assert_eq!(with("name", Bson::Int32(1)), Err(BeaconError::Malformed("name")));
        assert_eq!(with("name", "x".repeat(MAX_NAME_BYTES + 1).into()), Err(BeaconError::TooLarge("name")));
        assert_eq!(with("version", "v".repeat(MAX_VERSION_BYTES + 1).into()), Err(BeaconError::TooLarge("version")));
        assert_eq!(with("meta", "text".into()), Err(BeaconError::Malformed("meta")));
        let big = doc! { "blob": "x".repeat(MAX_META_BYTES) };
        assert_eq!(with("meta", Bson::Document(big)), Err(BeaconError::TooLarge("meta")));
        assert_eq!(with("stats", doc! { "eventsSent": -1 }.into()), Err(BeaconError::Malformed("stats")));
        assert_eq!(with("stats", doc! { "eventsSent": "many" }.into()), Err(BeaconError::Malformed("stats")));
        let mut missing = base.clone();
        missing.remove("version");
        assert_eq!(Beacon::from_document(&missing), Err(BeaconError::Malformed("version")));
    }

    #[test]
    fn unknown_fields_and_absent_optionals_are_fine() {
        let d = doc! { "kind": "hello", "version": "9.9", "since": 0_i64, "transport": "nats", "future": [1, 2] };
        let b = Beacon::from_document(&d).unwrap();
        assert_eq!((b.name, b.pid, b.meta.is_empty(), b.stats), (None, None, true, PeerStats::default()));
        assert_eq!(b.transport, PeerTransport::Nats);
        // Numbers follow the lenient rule (int32, int64, integral doubles).
        let d = doc! { "kind": "bye", "version": "1", "since": 5.0_f64, "transport": "udp", "pid": 7_i32 };
        assert_eq!(Beacon::from_document(&d).unwrap().pid, Some(7));
    }

    #[test]
    fn meta_at_the_bound_is_accepted() {
        // A document of exactly MAX_META_BYTES: 4 (length) + 1 (type) + "b\0" + 4 (str len) + text + NUL + 1 (end).
        let text = "x".repeat(MAX_META_BYTES - 13);
        let meta = doc! { "b": text };
        assert_eq!(check_meta(&meta), Ok(MAX_META_BYTES));
        let over = doc! { "b": "x".repeat(MAX_META_BYTES - 12) };
        assert_eq!(check_meta(&over), Err(BeaconError::TooLarge("meta")));
    }
}
