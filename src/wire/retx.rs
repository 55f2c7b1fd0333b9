//! Retransmission requests: the `__ec_retx` event's `{payload: {...}}` document.

use crate::error::WireError;
use bson::{Bson, Document};

/// A request for missing chunks of one chunk group (PROTOCOL.md,
/// "Retransmission requests"). 0.1.x sends it as event
/// [`RETX_EVENT`](super::RETX_EVENT) with this document as the body payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetxRequest {
    /// Requester's instance id.
    pub id: String,
    /// The chunk group (`seqId`) with missing chunks.
    pub seq_id: String,
    /// Indices (`seq`) of the missing chunks.
    pub missed_seq: Vec<i32>,
    /// Requester's advertised address (where 0.1.x sends the repairs).
    pub host: String,
    /// Requester's advertised port.
    pub port: i32,
}

impl RetxRequest {
    /// The document 0.1.x writes: fields in the order id, seqId, missedSeq
    /// (int32 array), host, port (int32).
    pub fn to_document(&self) -> Document {
        let mut d = Document::new();
        d.insert("id", self.id.clone());
        d.insert("seqId", self.seq_id.clone());
        d.insert("missedSeq", Bson::Array(self.missed_seq.iter().map(|&s| Bson::Int32(s)).collect()));
        d.insert("host", self.host.clone());
        d.insert("port", self.port);
        d
    }

    /// Reads a request; unknown fields (extensions) are ignored, numbers may be
    /// int32, int64 or integral doubles. Anything missing or mistyped is
    /// `WireError::Malformed`.
    pub fn from_document(doc: &Document) -> Result<Self, WireError> {
        let bad = |f: &str| WireError::Malformed(format!("retransmission request: bad or missing {f}"));
        let string = |f: &str| match doc.get(f) {
            Some(Bson::String(s)) => Ok(s.clone()),
            _ => Err(bad(f)),
        };
        let missed_seq = match doc.get("missedSeq") {
            Some(Bson::Array(a)) => {
                a.iter().map(|v| super::num::int32(v).ok_or_else(|| bad("missedSeq"))).collect::<Result<_, _>>()?
            }
            _ => return Err(bad("missedSeq")),
        };
        Ok(RetxRequest {
            id: string("id")?,
            seq_id: string("seqId")?,
            missed_seq,
            host: string("host")?,
            port: doc.get("port").and_then(super::num::int32).ok_or_else(|| bad("port"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn round_trip_and_order() {
        let r = RetxRequest {
            id: "ffeeddccbbaa9988".into(),
            seq_id: "da39".into(),
            missed_seq: vec![1, 3],
            host: "10.1.2.4".into(),
            port: 9000,
        };
        let d = r.to_document();
        let keys: Vec<&str> = d.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["id", "seqId", "missedSeq", "host", "port"]);
        assert_eq!(RetxRequest::from_document(&d).unwrap(), r);
    }

    #[test]
    fn lenient_numbers_unknown_fields_and_errors() {
        let d = doc! { "id": "a", "seqId": "b", "missedSeq": [1i64, 2.0], "host": "h",
        "port": 9000i64, "missedSn": [5i64] };
        let r = RetxRequest::from_document(&d).unwrap();
        assert_eq!((r.missed_seq, r.port), (vec![1, 2], 9000));
        for (k, v) in [
            ("id", Bson::Int32(1)),
            ("missedSeq", Bson::String("x".into())),
            ("port", Bson::Double(1.5)),
            ("missedSeq", Bson::Array(vec![Bson::Null])),
        ] {
            let mut bad = d.clone();
            bad.insert(k, v);
            assert!(matches!(RetxRequest::from_document(&bad), Err(WireError::Malformed(_))));
        }
        let mut bad = d.clone();
        bad.remove("host");
        assert!(RetxRequest::from_document(&bad).is_err());
    }
}
