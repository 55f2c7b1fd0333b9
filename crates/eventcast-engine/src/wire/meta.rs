//! The BSON meta document of a datagram.

/// Value of the outer meta's `alg` extension field that marks version 1 of
/// the authenticated scheme ([`super::secure::hs256`]), opened for one more
/// release, no longer sent.
pub const SECURE_ALG: &str = "hs256";

/// Value of the outer meta's `alg` extension field that marks version 2 of
/// the authenticated scheme ([`super::secure::aead`], XAES-256-GCM): what
/// nodes send.
pub const AEAD_ALG: &str = "xaes256gcm";

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
    /// Extension `snAge` (int32, milliseconds, `0 ..= i32::MAX`): how long
    /// before this datagram was built the sender sent its message number 1,
    /// on the sender's monotonic clock (saturating). Written only while the
    /// stream is young (`sn <= 16,384`), on numbered datagrams and
    /// heartbeats; a receiver hearing a sender for the first time uses it to
    /// tell "I missed the start of this stream" from "I joined late" (see
    /// `protocol::tracker`). Absent from 0.1.x.
    pub sn_age: Option<i32>,
}

impl Meta {
    /// True when this datagram is one chunk of a larger message.
    pub fn is_multipart(&self) -> bool {
        !self.seq_end || self.seq > 0
    }
}

/// One top-level element of a datagram's meta, as found by [`elements`]:
/// borrowed, undecoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element<'a> {
    /// BSON element type (0x02 string, 0x08 boolean, ...).
    pub tag: u8,
    /// The key, without its NUL.
    pub key: &'a [u8],
    /// The value's bytes (for a string: int32 length, text, NUL).
    pub value: &'a [u8],
}

/// Walks the top-level elements of a datagram's meta document without
/// decoding or allocating: the cheap look other layers need (whose datagram
/// is this, is it encrypted) before, or instead of, a full decode.
///
/// The walk stops (yields `None`) at the terminator or at the first thing it
/// cannot frame: a `metaLength` or document length that disagrees with the
/// datagram, a key without NUL, a value running past the document, an
/// element type a meta never holds. It is iterative and every step moves
/// forward by at least two bytes, so any input ends within `metaLength / 2`
/// steps. Stopping early means "don't know": the caller then leaves the
/// datagram to the full decoder ([`super::decode_received`]), which judges it.
pub fn elements(datagram: &[u8]) -> Elements<'_> {
    let doc = (|| {
        let (header, rest) = datagram.split_first_chunk::<2>()?;
        let doc = rest.get(..usize::from(u16::from_be_bytes(*header)))?;
        let declared = usize::try_from(i32::from_le_bytes(*doc.first_chunk::<4>()?)).ok()?;
        // A document is at least its length and its terminator; its declared
        // length is the frame's, and its last byte is the terminator.
        (declared == doc.len() && declared >= 5 && doc[declared - 1] == 0).then(|| &doc[..declared - 1])
    })();
    Elements { doc: doc.unwrap_or(&[]), at: 4 }
}

/// Iterator of [`elements`].
#[derive(Clone, Debug)]
pub struct Elements<'a> {
    /// The meta document without its terminator (empty when unframed).
    doc: &'a [u8],
    /// Offset of the next element.
    at: usize,
}

impl Elements<'_> {
    /// True once the walk has reached the meta's terminator (it read every
    /// element); false while it can go on or after it stopped at something
    /// it could not frame.
    pub fn is_done(&self) -> bool {
        self.at == self.doc.len()
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        let rest = self.doc.get(self.at..)?;
        let (&tag, rest) = rest.split_first()?;
        let key_len = rest.iter().position(|&b| b == 0)?;
        let (key, rest) = (&rest[..key_len], &rest[key_len + 1..]);
        let len_at = |min: i32| -> Option<usize> {
            let n = i32::from_le_bytes(*rest.first_chunk::<4>()?);
            usize::try_from(n).ok().filter(|_| n >= min)
        };
        let size = match tag {
            0x01 | 0x09 | 0x11 | 0x12 => 8,
            // string, JavaScript code, symbol: int32 length (with its NUL), bytes.
            0x02 | 0x0D | 0x0E => 4 + len_at(1)?,
            0x03 | 0x04 => len_at(5)?,
            0x05 => 5 + len_at(0)?,
            0x06 | 0x0A | 0x7F | 0xFF => 0,
            0x07 => 12,
            0x08 => 1,
            0x10 => 4,
            0x13 => 16,
            // regex, DBPointer, code with scope: never in a meta; stop.
            _ => return None,
        };
        let value = rest.get(..size)?;
        self.at += 1 + key_len + 1 + size;
        Some(Element { tag, key, value })
    }
}

/// The text of a BSON string value (length, bytes, NUL), without its NUL;
/// `None` when the length does not match the bytes.
fn string_value(value: &[u8]) -> Option<&[u8]> {
    let (len, text) = value.split_first_chunk::<4>()?;
    let len = usize::try_from(i32::from_le_bytes(*len)).ok()?;
    (len >= 1 && text.len() == len && text[len - 1] == 0).then(|| &text[..len - 1])
}

/// The sender's instance id (`id` in the meta) as raw bytes, without
/// decoding the datagram: the driver compares it with its own id to drop its
/// own datagrams coming back through multicast loopback. Agrees with the
/// decoder ([`super::decode_datagram_ref`]) on every meta both can read: the
/// last `id` counts, a null one is none. `None` when there is no id (an
/// encrypted outer datagram carries none), it is not a string, or the walk
/// cannot read the whole meta ([`elements`]). Says nothing about whether the
/// id is well formed: [`super::decode_received`] checks that.
pub fn sender_id(datagram: &[u8]) -> Option<&[u8]> {
    let mut walk = elements(datagram);
    let mut id = None;
    for e in walk.by_ref() {
        if e.key == b"id" {
            id = match e.tag {
                0x02 => Some(string_value(e.value)?),
                0x06 | 0x0A => None,
                _ => return None,
            };
        }
    }
    // A later field could have been another `id`: only a whole meta answers.
    walk.is_done().then_some(id).flatten()
}

/// How a datagram's body is protected, as its meta says ([`encryption`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// `enc` absent, null or false: the body is plaintext.
    Plain,
    /// `enc: true` without `alg`: 0.1.x's legacy scheme ([`super::legacy`]).
    Legacy,
    /// `enc: true` with the `alg` of a version of the authenticated scheme
    /// ([`super::secure`]): `"xaes256gcm"` or `"hs256"`.
    Secure,
}

/// The encryption scheme a datagram's meta announces, read without decoding
/// it. The first `enc` and `alg` count, as in
/// [`super::secure::SecureKey::open`]. `None` when the walk cannot read the
/// whole meta ([`elements`]) or `enc` or `alg` have an unexpected type. A
/// claim, not a proof: only opening the datagram with the key authenticates it.
pub fn encryption(datagram: &[u8]) -> Option<Encryption> {
    let (mut enc, mut secure) = (None, None);
    let mut walk = elements(datagram);
    for e in walk.by_ref() {
        match (e.key, e.tag) {
            (b"enc", 0x08) if enc.is_none() => enc = Some(e.value[0] != 0),
            (b"enc", 0x06 | 0x0A) if enc.is_none() => enc = Some(false),
            (b"enc", _) if enc.is_none() => return None,
            (b"alg", 0x02) if secure.is_none() => {
                let alg = string_value(e.value)?;
                secure = Some(alg == AEAD_ALG.as_bytes() || alg == SECURE_ALG.as_bytes());
            }
            (b"alg", _) if secure.is_none() => return None,
            _ => {}
        }
    }
    // A later field could have been the `alg`: only a whole meta answers.
    if !walk.is_done() {
        return None;
    }
    Some(match (enc.unwrap_or(false), secure.unwrap_or(false)) {
        (false, _) => Encryption::Plain,
        (true, false) => Encryption::Legacy,
        (true, true) => Encryption::Secure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_datagram_ref, encode_datagram};
    use proptest::prelude::*;

    fn datagram(meta: &bson::Document, body: &[u8]) -> Vec<u8> {
        let meta = meta.to_vec().unwrap();
        let mut d = (meta.len() as u16).to_be_bytes().to_vec();
        d.extend_from_slice(&meta);
        d.extend_from_slice(body);
        d
    }

    const ID: &str = "0123456789abcdef";

    fn full() -> bson::Document {
        bson::doc! {
            "v": 3, "seq": 0, "seqLen": 1, "seqId": "ab".repeat(20), "seqEnd": true, "enc": false,
            "nonce": "cd".repeat(20), "name": "x", "host": "127.0.0.1", "port": 9000, "hostname": "h",
            "id": ID, "time": "2020-01-01T00:00:00.000Z", "sn": 5_i64, "extra": { "a": 1.5 },
            "more": [1, "two"], "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1] },
        }
    }

    /// The cases of the driver's former `is_own_datagram`, plus the last-`id` rule.
    #[test]
    fn sender_id_reads_the_meta_id_only() {
        assert_eq!(sender_id(&datagram(&full(), b"body")), Some(ID.as_bytes()));
        let mut other = full();
        other.insert("id", "fedcba9876543210");
        assert_eq!(sender_id(&datagram(&other, b"")), Some(&b"fedcba9876543210"[..]));
        // An id in the body (e.g. a peer's repair request naming us) is not the sender's.
        let mut body = b"\x02id\x00\x11\x00\x00\x00".to_vec();
        body.extend_from_slice(ID.as_bytes());
        assert_eq!(sender_id(&datagram(&bson::doc! { "v": 3, "name": "__ec_retx" }, &body)), None);
        // No id, a null id, an id of another type.
        assert_eq!(sender_id(&datagram(&bson::doc! { "v": 3, "enc": true }, b"")), None);
        assert_eq!(sender_id(&datagram(&bson::doc! { "id": bson::Bson::Null }, b"")), None);
        assert_eq!(sender_id(&datagram(&bson::doc! { "id": 5 }, b"")), None);
        // A prefix is returned as such (the caller compares whole ids).
        assert_eq!(sender_id(&datagram(&bson::doc! { "id": "0123456789abcde" }, b"")), Some(&b"0123456789abcde"[..]));
        // Duplicate keys: the last counts, as in the decoder.
        let mut twice = datagram(&full(), b"");
        let extra = b"\x02id\x00\x11\x00\x00\x00fedcba9876543210\x00";
        twice.splice(twice.len() - 1..twice.len() - 1, *extra);
        let meta_len = twice.len() - 2;
        twice[..2].copy_from_slice(&(meta_len as u16).to_be_bytes());
        twice[2..6].copy_from_slice(&(meta_len as i32).to_le_bytes());
        assert_eq!(decode_datagram_ref(&twice).unwrap().meta.id, Some("fedcba9876543210"));
        assert_eq!(sender_id(&twice), Some(&b"fedcba9876543210"[..]));
    }

    #[test]
    fn hostile_metas_stop_the_walk() {
        let ours = datagram(&full(), b"");
        for cut in 0..ours.len() {
            // The meta is cut short: nothing is read past the datagram's end.
            assert_eq!(sender_id(&ours[..cut]), None, "cut at {cut}");
            assert_eq!(encryption(&ours[..cut]), None, "cut at {cut}");
        }
        for bad in [&[][..], &[0], &[0, 0], &[0xff, 0xff, 1, 2, 3], &[0, 5, 5, 0, 0, 0, 0]] {
            assert_eq!(sender_id(bad), None);
        }
        let id_at = |d: &[u8]| d.windows(3).position(|w| w == b"id\0").unwrap();
        // A string length far past the end, negative, or zero.
        for len in [i32::MAX, 0x7fff, -1, i32::MIN, 0] {
            let mut d = ours.clone();
            let at = id_at(&d) + 3;
            d[at..at + 4].copy_from_slice(&len.to_le_bytes());
            assert_eq!(sender_id(&d), None, "{len}");
        }
        // An embedded document whose length runs past the meta, or is absurdly small.
        let mut d = datagram(&bson::doc! { "x": { "a": 1 }, "id": ID }, b"");
        for len in [i32::MAX, 4, 0, -5] {
            d[2 + 4 + 3..2 + 4 + 7].copy_from_slice(&len.to_le_bytes());
            assert_eq!(sender_id(&d), None, "{len}");
        }
        // A document length that disagrees with metaLength.
        let mut d = ours.clone();
        d[2] ^= 1;
        assert_eq!(sender_id(&d), None);
        // An element type a meta never holds, before the id.
        let d = datagram(
            &bson::doc! { "re": bson::Regex { pattern: "a".try_into().unwrap(), options: "".try_into().unwrap() }, "id": ID },
            b"",
        );
        assert_eq!(sender_id(&d), None);
        // A key without its NUL.
        let d = [0, 7, 7, 0, 0, 0, 0x02, b'i', 0];
        assert_eq!(sender_id(&d), None);
    }

    #[test]
    fn encryption_kind() {
        let plain = datagram(&full(), b"");
        assert_eq!(encryption(&plain), Some(Encryption::Plain));
        assert_eq!(encryption(&datagram(&bson::doc! { "v": 3 }, b"")), Some(Encryption::Plain));
        assert_eq!(encryption(&datagram(&bson::doc! { "enc": bson::Bson::Null }, b"")), Some(Encryption::Plain));
        assert_eq!(encryption(&datagram(&bson::doc! { "v": 3, "enc": true }, b"x")), Some(Encryption::Legacy));
        let other_alg = bson::doc! { "enc": true, "alg": "rot13" };
        assert_eq!(encryption(&datagram(&other_alg, b"")), Some(Encryption::Legacy));
        assert_eq!(encryption(&datagram(&bson::doc! { "enc": "yes" }, b"")), None);
        assert_eq!(encryption(&datagram(&bson::doc! { "enc": true, "alg": 1 }, b"")), None);
        let key = crate::wire::SecureKey::derive_with_iterations("pw", 1);
        // Both versions of the authenticated scheme.
        for sealed in [key.seal(&plain, &mut rand::thread_rng()), key.seal_hs256(&plain, &mut rand::thread_rng())] {
            assert_eq!(encryption(&sealed), Some(Encryption::Secure));
            assert_eq!(sender_id(&sealed), None, "a sealed datagram hides its sender");
        }
    }

    /// The 0.1.2 vectors (`crates/eventcast-engine/tests/fixtures/`): what the walk reads is what the decoder reads.
    #[test]
    fn golden_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/eventcast-0.1.2.json");
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut seen = (0, 0);
        for case in json["cases"].as_array().unwrap() {
            for hex in case["datagrams"].as_array().unwrap() {
                let hex = hex.as_str().unwrap();
                let d: Vec<u8> =
                    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
                let meta = decode_datagram_ref(&d).unwrap().meta;
                assert_eq!(sender_id(&d), meta.id.map(str::as_bytes), "{}", case["name"]);
                let kind = if meta.enc { Encryption::Legacy } else { Encryption::Plain };
                assert_eq!(encryption(&d), Some(kind), "{}", case["name"]);
                seen.0 += usize::from(meta.id.is_some());
                seen.1 += usize::from(meta.enc);
            }
        }
        assert!(seen.0 > 0 && seen.1 > 0, "the vectors hold both plain datagrams with ids and encrypted ones");
        // And our own encoder's bytes.
        let m = crate::wire::Meta {
            v: 3,
            seq_len: 1,
            seq_end: true,
            seq_id: "ab".repeat(20),
            id: Some(ID.into()),
            ..Default::default()
        };
        let mut out = Vec::new();
        encode_datagram(&m, b"{}", &mut out);
        assert_eq!((sender_id(&out), encryption(&out)), (Some(ID.as_bytes()), Some(Encryption::Plain)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Never panics on mutated or random input, and whenever the decoder
        /// reads the datagram and the walk answers, they agree.
        #[test]
        fn never_panics_and_agrees_with_the_decoder(
            random in prop::collection::vec(any::<u8>(), 0..80),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            pick_random: bool,
        ) {
            let mut d = if pick_random { random } else { datagram(&full(), b"body") };
            if !d.is_empty() {
                for (i, x) in flips {
                    let i = i.index(d.len());
                    d[i] = x;
                }
                d.truncate(cut.index(d.len() + 1));
            }
            let id = sender_id(&d);
            let _ = encryption(&d);
            let _ = elements(&d).count();
            if let (Some(id), Ok(decoded)) = (id, decode_datagram_ref(&d)) {
                prop_assert_eq!(Some(id), decoded.meta.id.map(str::as_bytes));
            }
        }
    }
}
