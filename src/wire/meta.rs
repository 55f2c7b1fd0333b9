//! The BSON meta document of a datagram.

/// Decoded meta of one datagram. Field names follow PROTOCOL.md; `Option`s are
/// fields 0.1.x writes only on some datagrams. Encoding writes the fields in
/// 0.1.x's order (v, seq, seqLen, seqId, seqEnd, enc, nonce, name, host, port,
/// hostname, id, time) followed by our extension fields, which 0.1.x ignores.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Protocol version (3).
    pub v: i32,
    /// Chunk index, 0 for an unchunked message.
    pub seq: i32,
    /// Number of chunks, 1 for an unchunked message.
    pub seq_len: i32,
    /// 40 lower-case hex chars identifying the message (shared by its chunks).
    pub seq_id: String,
    /// True on the last chunk and on an unchunked message.
    pub seq_end: bool,
    /// True when the body is ciphertext.
    pub enc: bool,
    /// 40 hex chars, fresh per datagram, only when encryption is configured.
    pub nonce: Option<String>,
    /// Event name (absent on the outer datagram of an encrypted message).
    pub name: Option<String>,
    /// Sender's IPv4 address as text.
    pub host: Option<String>,
    /// Sender's UDP port.
    pub port: Option<i32>,
    /// Sender's OS hostname.
    pub hostname: Option<String>,
    /// Sender instance id, 16 lower-case hex chars.
    pub id: Option<String>,
    /// ISO-8601 UTC send time.
    pub time: Option<String>,
    /// Extension `sn` (int64): the sender's per-message sequence number, used
    /// for loss detection of single-datagram messages. Absent from 0.1.x.
    pub sn: Option<i64>,
}

impl Meta {
    /// True when this datagram is one chunk of a larger message.
    pub fn is_multipart(&self) -> bool {
        !self.seq_end || self.seq > 0
    }
}
