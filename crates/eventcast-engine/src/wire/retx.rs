//! Repair requests: the `__ec_retx` event's `{payload: {...}}` document,
//! with our extensions (PROTOCOL.md, "Retransmission requests").
//!
//! 0.1.x writes `{id, seqId, missedSeq: [int32..], host, port}`. We add
//! `missedSn: [int64..]` (whole messages missed, by per-sender number) and
//! `to` (the instance id of the sender being asked), and `relayed: true` on a
//! 0.1.x request that one of our nodes forwarded to the group (see
//! `Endpoint::handle_request`); 0.1.x ignores all three.
//! `host`/`port` are read but never used as a destination (anti-reflection:
//! repairs go to the group only). Identifiers follow [`super::ids`]:
//! `id` and `to` 16, `seqId` 40 lower-case hex chars (or empty when only
//! `missedSn` is asked). Numbers follow [`super::integers`]; entries of
//! `missedSeq` outside the int32 range and of `missedSn` outside
//! `1 ..= MAX_SAFE_INTEGER` (no message has such a number) are dropped; each
//! list keeps at most [`MAX_ITEMS_READ`] entries.

use super::ids::{is_instance_id, is_seq_id};
use super::integers::{int32, int64, MAX_SAFE_INTEGER};
use bson::{Bson, Document};

/// At most this many entries of `missedSeq` and of `missedSn` are read from
/// one request (more cannot fit a datagram a sender of ours writes; what an
/// attacker adds beyond is ignored, so the work per request is bounded).
pub const MAX_ITEMS_READ: usize = 256;

/// A parsed or to-be-sent repair request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairRequest {
    /// Requester instance id.
    pub id: String,
    /// Chunk group asked about (empty when only `missed_sn` is used).
    pub seq_id: String,
    /// Missing chunk indexes of `seq_id`.
    pub missed_seq: Vec<i32>,
    /// Requester's advertised address (informational only).
    pub host: String,
    /// Requester's advertised port (informational only).
    pub port: i32,
    /// Extension: whole messages missed, by the target sender's `sn`.
    pub missed_sn: Vec<i64>,
    /// Extension: the instance id of the sender asked.
    pub to: Option<String>,
    /// Extension: a 0.1.x request (no `to`, no `missedSn`) forwarded to the
    /// group by a node that did not hold the data; never forwarded again.
    pub relayed: bool,
}

impl RepairRequest {
    /// The document, fields in 0.1.x's order followed by the extensions (written only when used).
    pub fn to_document(&self) -> Document {
        let mut d = Document::new();
        d.insert("id", self.id.clone());
        d.insert("seqId", self.seq_id.clone());
        d.insert("missedSeq", self.missed_seq.iter().map(|&s| Bson::Int32(s)).collect::<Vec<_>>());
        d.insert("host", self.host.clone());
        d.insert("port", self.port);
        if !self.missed_sn.is_empty() {
            d.insert("missedSn", self.missed_sn.iter().map(|&s| Bson::Int64(s)).collect::<Vec<_>>());
        }
        if let Some(to) = &self.to {
            d.insert("to", to.clone());
        }
        if self.relayed {
            d.insert("relayed", true);
        }
        d
    }

    /// Parses a request leniently ([`super::integers`]); `None` when it is not a
    /// request at all or an identifier is malformed. Lists keep at most
    /// [`MAX_ITEMS_READ`] entries.
    pub fn from_document(d: &Document) -> Option<Self> {
        let cap = MAX_ITEMS_READ;
        let id = d.get_str("id").ok().filter(|id| is_instance_id(id))?.to_owned();
        let seq_id = d.get_str("seqId").unwrap_or("");
        if !seq_id.is_empty() && !is_seq_id(seq_id) {
            return None;
        }
        let to = match d.get("to") {
            None | Some(Bson::Null) => None,
            Some(Bson::String(to)) if is_instance_id(to) => Some(to.clone()),
            Some(_) => return None,
        };
        let missed_seq = match d.get("missedSeq") {
            Some(Bson::Array(a)) => a.iter().filter_map(int32).take(cap).collect(),
            _ => Vec::new(),
        };
        let missed_sn = match d.get("missedSn") {
            Some(Bson::Array(a)) => {
                a.iter().filter_map(int64).filter(|v| (1..=MAX_SAFE_INTEGER).contains(v)).take(cap).collect()
            }
            _ => Vec::new(),
        };
        Some(RepairRequest {
            id,
            seq_id: seq_id.to_owned(),
            missed_seq,
            host: d.get_str("host").unwrap_or("").to_owned(),
            port: d.get("port").and_then(int32).unwrap_or(0),
            missed_sn,
            to,
            relayed: d.get_bool("relayed").unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_extensions() {
        let r = RepairRequest {
            id: "a1b2c3d4e5f60718".into(),
            seq_id: "ab".repeat(20),
            missed_seq: vec![1, 3],
            host: "10.1.2.4".into(),
            port: 9000,
            missed_sn: vec![],
            to: None,
            relayed: false,
        };
        let d = r.to_document();
        let keys: Vec<_> = d.keys().cloned().collect();
        assert_eq!(keys, ["id", "seqId", "missedSeq", "host", "port"]);
        assert_eq!(RepairRequest::from_document(&d), Some(r.clone()));
        let r2 = RepairRequest { missed_sn: vec![7, 1 << 40], to: Some("0123456789abcdef".into()), ..r };
        assert_eq!(RepairRequest::from_document(&r2.to_document()), Some(r2));
    }

    #[test]
    fn rejects_non_requests_and_caps_lists() {
        assert!(RepairRequest::from_document(&bson::doc! {"x": 1}).is_none());
        let big: Vec<Bson> = (0..10_000).map(Bson::Int32).collect();
        let r = RepairRequest::from_document(&bson::doc! {"id": "a1b2c3d4e5f60718", "missedSeq": big}).unwrap();
        assert_eq!(r.missed_seq.len(), MAX_ITEMS_READ);
    }

    #[test]
    fn refuses_malformed_identifiers_and_drops_absurd_numbers() {
        let ok = bson::doc! {"id": "a1b2c3d4e5f60718", "seqId": "ab".repeat(20), "to": "0123456789abcdef"};
        assert!(RepairRequest::from_document(&ok).is_some());
        for (k, v) in [
            ("id", Bson::String("a".into())),
            ("id", Bson::String("A1B2C3D4E5F60718".into())),
            ("seqId", Bson::String("x".repeat(60_000))),
            ("seqId", Bson::String("AB".repeat(20))),
            ("to", Bson::String("0123456789abcdef0".into())),
            ("to", Bson::Int32(5)),
        ] {
            let mut d = ok.clone();
            d.insert(k, v.clone());
            assert!(RepairRequest::from_document(&d).is_none(), "{k}: {v}");
        }
        let mut d = ok.clone();
        d.insert("seqId", "");
        let sns = [Bson::Int64(0), Bson::Int64(-1), Bson::Int64(i64::MIN), Bson::Int64(i64::MAX), Bson::Int64(5)];
        d.insert("missedSn", sns.to_vec());
        assert_eq!(RepairRequest::from_document(&d).unwrap().missed_sn, vec![5]);
    }

    #[test]
    fn lenient_numbers_and_unknown_fields() {
        let d = bson::doc! { "id": "a1b2c3d4e5f60718", "seqId": "ab".repeat(20), "missedSeq": [1i64, 2.0, 2.5, "3", 1i64 << 40],
        "host": "h", "port": 9000i64, "missedSn": [5.0, 6i32, 0.5], "zzz": {"a": 1} };
        let r = RepairRequest::from_document(&d).unwrap();
        assert_eq!((r.missed_seq, r.port, r.missed_sn), (vec![1, 2], 9000, vec![5, 6]));
        for port in [Bson::Double(1.5), Bson::String("9000".into()), Bson::Int64(1 << 40)] {
            let mut d = d.clone();
            d.insert("port", port);
            assert_eq!(RepairRequest::from_document(&d).unwrap().port, 0);
        }
    }

    /// Golden bytes: the request of the 0.1.2 vector `plain-retx-request`
    /// (`crates/eventcast-engine/tests/fixtures/`) reads and writes back to the very same body, and
    /// our extension form has the layout of the `bson` crate's encoder.
    #[test]
    fn golden_bytes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/eventcast-0.1.2.json");
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let case = json["cases"].as_array().unwrap().iter().find(|c| c["name"] == "plain-retx-request").unwrap();
        let hex = case["datagrams"][0].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let d = crate::wire::decode_datagram(&bytes).unwrap();
        assert_eq!(d.meta.name.as_deref(), Some(crate::wire::RETX_EVENT));
        let crate::wire::Payload::Document(doc) = crate::wire::decode_body(d.body).unwrap() else { panic!() };
        let r = RepairRequest::from_document(&doc).unwrap();
        assert_eq!((r.missed_seq.as_slice(), r.host.as_str(), r.port), (&[1, 3][..], "10.1.2.4", 9000));
        assert_eq!((r.missed_sn.len(), r.to.as_ref(), r.relayed), (0, None, false));
        assert_eq!(crate::wire::encode_document_body(&r.to_document()), d.body);

        let ext = RepairRequest { missed_sn: vec![7], to: Some("0123456789abcdef".into()), relayed: true, ..r };
        let expect = bson::doc! {
            "payload": { "id": ext.id.clone(), "seqId": ext.seq_id.clone(), "missedSeq": [1, 3], "host": "10.1.2.4",
            "port": 9000, "missedSn": [7i64], "to": "0123456789abcdef", "relayed": true },
        };
        assert_eq!(crate::wire::encode_document_body(&ext.to_document()), expect.to_vec().unwrap());
    }
}
