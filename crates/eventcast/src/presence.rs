//! Presence in the driver: the options (`name`, `meta`, `presence`), what the
//! node advertises (its process, version and transport), and the one JSON
//! shape of a peer that the JS API (`ec.peers()`, `'peerUp'`, ...) and the
//! CLI (`eventcast peers --json`) print.
//!
//! The peer table and the beacons are the engine's
//! ([`crate::protocol::PresenceConfig`], `wire::beacon`); the driver starts
//! them with the node, says goodbye when it stops, and turns their changes
//! into [`crate::Notification::PeerUp`] / `PeerDown` / `PeerUpdate`.

use crate::error::Error;
use crate::protocol::{Advertised, Endpoint, PeerInfo, PeerTransport, PresenceConfig};

use std::time::{Duration, SystemTime};

/// How a node announces itself and watches its peers (`presence` option;
/// `None` in [`crate::Options::presence`] turns presence off: no beacons, no table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceOptions {
    /// Beacon period (default 1 s; each beacon jittered by ±10%).
    pub interval: Duration,
    /// A peer not heard from for this long is down (default 5 s; at least 2 × `interval`).
    pub timeout: Duration,
    /// Most peers tracked (default 1,024); a new one evicts the least recently heard.
    pub max_peers: usize,
}

impl Default for PresenceOptions {
    fn default() -> Self {
        let d = PresenceConfig::default();
        PresenceOptions { interval: d.interval, timeout: d.timeout, max_peers: d.max_peers }
    }
}

/// The engine's presence configuration for the options `name`, `meta`,
/// `presence` of a node on `transport` (`None`: presence off).
pub(crate) fn engine_config(
    name: Option<&str>,
    meta: &bson::Document,
    presence: Option<&PresenceOptions>,
    transport: PeerTransport,
) -> Option<PresenceConfig> {
    let p = presence?;
    Some(PresenceConfig {
        interval: p.interval,
        timeout: p.timeout,
        max_peers: p.max_peers,
        advertised: Advertised {
            name: Some(name.map_or_else(default_name, str::to_owned)),
            pid: Some(std::process::id()),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            transport,
            meta: meta.clone(),
        },
    })
}

/// The name a node advertises when `name` is not set: its program's file
/// name (the JS API passes `process.title`), cut to the beacon's bound.
pub fn default_name() -> String {
    let exe = std::env::args_os().next().map(std::path::PathBuf::from);
    let name = exe
        .as_deref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "eventcast".to_owned());
    let mut end = name.len().min(crate::wire::beacon::MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A peer as JSON, in the shape of the JS API's peer objects (`ec.peers()`,
/// `'peerUp'`): `{ id, host, port, hostname, name, pid, version, meta, since,
/// lastSeen, transport, bridged, legacy, stats: {...}, delivered, gaps }`,
/// times in ms since 1970, `meta` as relaxed extended JSON (plain JSON for
/// the strings, numbers, booleans, arrays and objects a JS node sends).
pub fn peer_json(p: &PeerInfo) -> serde_json::Value {
    let stats: serde_json::Map<String, serde_json::Value> =
        p.stats.fields().iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
    serde_json::json!({
        "id": p.id,
        "host": p.host,
        "port": p.port,
        "hostname": p.hostname,
        "name": p.name,
        "pid": p.pid,
        "version": p.version,
        "meta": bson::Bson::Document(p.meta.clone()).into_relaxed_extjson(),
        "since": epoch_ms(p.since),
        "lastSeen": epoch_ms(p.last_seen),
        "transport": p.transport.as_str(),
        "bridged": p.bridged,
        "legacy": p.legacy,
        "stats": stats,
        "delivered": p.delivered,
        "gaps": p.gaps,
    })
}

/// Parses a JSON object into the BSON document `meta` holds (the JS API
/// passes `JSON.stringify(meta)`); `EINVALIDOPTION` when it is not an object
/// or encodes larger than `wire::beacon::MAX_META_BYTES`.
pub fn meta_from_json(text: &str) -> Result<bson::Document, Error> {
    let bad = |reason: String| Error::InvalidOption { option: "meta", reason };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(bad("must be an object".into()));
    }
    let doc = match bson::Bson::try_from(value) {
        Ok(bson::Bson::Document(d)) => d,
        Ok(_) => return Err(bad("must be an object".into())),
        Err(e) => return Err(bad(e.to_string())),
    };
    Endpoint::check_advertised_meta(&doc)?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_from_json_takes_objects_within_the_bound() {
        assert_eq!(
            meta_from_json(r#"{"role":"pricing","port":8080}"#).unwrap(),
            bson::doc! {"role": "pricing", "port": 8080}
        );
        for bad in ["[1]", "3", "\"x\"", "{", &format!(r#"{{"x":"{}"}}"#, "y".repeat(2000))] {
            assert!(matches!(meta_from_json(bad), Err(Error::InvalidOption { option: "meta", .. })), "{bad}");
        }
    }

    #[test]
    fn default_name_is_bounded() {
        let n = default_name();
        assert!(!n.is_empty() && n.len() <= crate::wire::beacon::MAX_NAME_BYTES);
    }
}
