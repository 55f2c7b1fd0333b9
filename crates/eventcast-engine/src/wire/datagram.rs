//! Datagram framing: `u16 BE metaLength | BSON meta | body`.

use super::bson_writer::{begin_doc, end_doc, put_bool, put_i32, put_i64, put_str};
pub use super::framing::{split_datagram, MAX_META_LEN};
use super::integers::{int32_raw, int64_raw};
use super::meta::Meta;
use crate::error::{Malformed, WireError};
use bson::raw::RawBsonRef;

/// One parsed datagram; `body` borrows from the received buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The meta document.
    pub meta: Meta,
    /// Everything after the meta document.
    pub body: &'a [u8],
}

fn malformed(what: &'static str) -> WireError {
    WireError::Malformed(Malformed::new(what))
}

/// Parses a datagram. Reports `WireError::Version` when `v` is present and not 3.
///
/// Unknown meta fields are ignored (0.1.x ignores them too, which is what lets
/// us add extensions). A `null` optional field reads as absent. Numeric fields
/// accept int32, int64 and integral doubles, as 0.1.x's js-bson would
/// ([`super::integers`], the one lenient number rule).
pub fn decode_datagram(buf: &[u8]) -> Result<Datagram<'_>, WireError> {
    let d = decode_datagram_ref(buf)?;
    Ok(Datagram { meta: d.meta.to_owned_meta(), body: d.body })
}

/// One parsed datagram whose meta strings borrow from the received buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramRef<'a> {
    /// The meta document, borrowed.
    pub meta: MetaRef<'a>,
    /// Everything after the meta document.
    pub body: &'a [u8],
}

/// [`Meta`] with its strings borrowed from the datagram; same fields, same meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct MetaRef<'a> {
    pub v: i32,
    pub seq: i32,
    pub seq_len: i32,
    pub seq_id: &'a str,
    pub seq_end: bool,
    pub enc: bool,
    pub nonce: Option<&'a str>,
    pub name: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<i32>,
    pub hostname: Option<&'a str>,
    pub id: Option<&'a str>,
    pub time: Option<&'a str>,
    pub sn: Option<i64>,
    pub sn_age: Option<i32>,
}

impl Meta {
    /// A borrowed view of this meta.
    pub fn as_meta_ref(&self) -> MetaRef<'_> {
        MetaRef {
            v: self.v,
            seq: self.seq,
            seq_len: self.seq_len,
            seq_id: &self.seq_id,
            seq_end: self.seq_end,
            enc: self.enc,
            nonce: self.nonce.as_deref(),
            name: self.name.as_deref(),
            host: self.host.as_deref(),
            port: self.port,
            hostname: self.hostname.as_deref(),
            id: self.id.as_deref(),
            time: self.time.as_deref(),
            sn: self.sn,
            sn_age: self.sn_age,
        }
    }
}

impl MetaRef<'_> {
    /// True when this datagram is one chunk of a larger message.
    pub fn is_multipart(&self) -> bool {
        !self.seq_end || self.seq > 0
    }

    /// An owned copy.
    pub fn to_owned_meta(&self) -> Meta {
        let own = |s: Option<&str>| s.map(str::to_owned);
        Meta {
            v: self.v,
            seq: self.seq,
            seq_len: self.seq_len,
            seq_id: self.seq_id.to_owned(),
            seq_end: self.seq_end,
            enc: self.enc,
            nonce: own(self.nonce),
            name: own(self.name),
            host: own(self.host),
            port: self.port,
            hostname: own(self.hostname),
            id: own(self.id),
            time: own(self.time),
            sn: self.sn,
            sn_age: self.sn_age,
        }
    }
}

/// Parses a datagram without copying its meta strings (the receive hot path);
/// [`decode_datagram`] is this plus [`MetaRef::to_owned_meta`]. Reports `WireError::Version` when `v` is present and not 3.
///
/// Unknown meta fields are ignored (0.1.x ignores them too, which is what lets
/// us add extensions). A `null` optional field reads as absent. Numeric fields
/// accept int32, int64 and integral doubles, as 0.1.x's js-bson would
/// ([`super::integers`], the one lenient number rule).
pub fn decode_datagram_ref(buf: &[u8]) -> Result<DatagramRef<'_>, WireError> {
    match decode_fast(buf) {
        Some(d) => Ok(d),
        None => decode_datagram_ref_bson(buf),
    }
}

/// [`decode_datagram_ref`] plus the identifier rule of [`super::ids`]: what a
/// node accepts from the network. `seqId` must be 40 and `id` (when present)
/// 16 lower-case hex chars, else `WireError::Malformed`; so no receiver
/// stores or compares an identifier of a sender-chosen size. (The plain
/// decoders stay a faithful codec for any string, as 0.1.x's is.)
pub fn decode_received(buf: &[u8]) -> Result<DatagramRef<'_>, WireError> {
    let d = decode_datagram_ref(buf)?;
    if !super::ids::is_seq_id(d.meta.seq_id) {
        return Err(Malformed::new("not 40 lower-case hex chars").field("seqId").value(d.meta.seq_id.len()).into());
    }
    if d.meta.id.is_some_and(|id| !super::ids::is_instance_id(id)) {
        return Err(Malformed::new("not 16 lower-case hex chars").field("id").into());
    }
    Ok(d)
}

/// Reads a little-endian `i32` at the start of `b`.
fn le_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_le_bytes(*b.first_chunk::<4>()?))
}

/// The fast path of [`decode_datagram_ref`]: one pass over the meta's
/// top-level elements, keys matched by bytes. It accepts only the shape
/// senders actually produce: a well-framed document whose elements all lie
/// before its terminator, known keys with their usual BSON types (int32
/// numbers, int32/int64 `sn`, int32 `snAge`, strings, 0/1 booleans, nulls for optional
/// fields), `v` = 3, the required fields present and in range. Anything else
/// (unknown keys, lenient numerics, errors of any kind) returns `None`, and
/// [`decode_datagram_ref_bson`] decides, so both accept and reject exactly
/// the same inputs with the same results (a differential proptest checks this).
fn decode_fast(buf: &[u8]) -> Option<DatagramRef<'_>> {
    let (header, rest) = buf.split_first_chunk::<2>()?;
    let meta_len = u16::from_be_bytes(*header) as usize;
    if meta_len > rest.len() {
        return None;
    }
    let (doc, body) = rest.split_at(meta_len);
    let n = doc.len();
    if n < 5 || usize::try_from(le_i32(doc)?).ok()? != n || doc[n - 1] != 0 {
        return None;
    }
    // Elements must lie in doc[4..end]; doc[end] is the terminator.
    let end = n - 1;
    let (mut v, mut seq, mut seq_len, mut seq_id, mut seq_end) = (None, None, None, None, None);
    let mut meta = MetaRef::default();
    let mut pos = 4;
    while pos < end {
        let tag = doc[pos];
        let key_start = pos + 1;
        let key_len = doc[key_start..end].iter().position(|&b| b == 0)?;
        let key = &doc[key_start..key_start + key_len];
        let val = &doc[key_start + key_len + 1..end];
        // BSON element types: 0x02 string, 0x08 boolean, 0x0A null, 0x10 int32, 0x12 int64.
        let int32 = || (tag == 0x10).then(|| le_i32(val)).flatten();
        let string = || -> Option<(&str, usize)> {
            if tag != 0x02 {
                return None;
            }
            let len = usize::try_from(le_i32(val)?).ok()?;
            if len == 0 || 4 + len > val.len() || val[3 + len] != 0 {
                return None;
            }
            Some((std::str::from_utf8(&val[4..3 + len]).ok()?, 4 + len))
        };
        let boolean = || match (tag, val.first()) {
            (0x08, Some(&b)) if b <= 1 => Some(b == 1),
            _ => None,
        };
        let used = match key {
            b"v" => {
                v = Some(int32()?);
                4
            }
            b"seq" => {
                seq = Some(int32()?);
                4
            }
            b"seqLen" => {
                seq_len = Some(int32()?);
                4
            }
            b"seqId" => {
                let (s, used) = string()?;
                seq_id = Some(s);
                used
            }
            b"seqEnd" => {
                seq_end = Some(boolean()?);
                1
            }
            b"enc" if tag == 0x0A => {
                meta.enc = false;
                0
            }
            b"enc" => {
                meta.enc = boolean()?;
                1
            }
            b"port" if tag == 0x0A => {
                meta.port = None;
                0
            }
            b"port" => {
                meta.port = Some(int32()?);
                4
            }
            b"sn" => match tag {
                0x0A => {
                    meta.sn = None;
                    0
                }
                0x10 => {
                    meta.sn = Some(i64::from(int32()?));
                    4
                }
                0x12 => {
                    meta.sn = Some(i64::from_le_bytes(*val.first_chunk::<8>()?));
                    8
                }
                _ => return None,
            },
            b"snAge" => match tag {
                0x0A => {
                    meta.sn_age = None;
                    0
                }
                _ => {
                    meta.sn_age = Some(int32()?);
                    4
                }
            },
            b"nonce" | b"name" | b"host" | b"hostname" | b"id" | b"time" => {
                let (s, used) = if tag == 0x0A { (None, 0) } else { string().map(|(s, u)| (Some(s), u))? };
                match key {
                    b"nonce" => meta.nonce = s,
                    b"name" => meta.name = s,
                    b"host" => meta.host = s,
                    b"hostname" => meta.hostname = s,
                    b"id" => meta.id = s,
                    _ => meta.time = s,
                }
                used
            }
            _ => return None,
        };
        if used > val.len() {
            return None;
        }
        pos = key_start + key_len + 1 + used;
    }
    let (Some(super::PROTOCOL_VERSION), Some(seq), Some(seq_len), Some(seq_id), Some(seq_end)) =
        (v, seq, seq_len, seq_id, seq_end)
    else {
        return None;
    };
    if seq < 0 || seq_len < 1 || seq >= seq_len {
        return None;
    }
    meta.v = super::PROTOCOL_VERSION;
    meta.seq = seq;
    meta.seq_len = seq_len;
    meta.seq_id = seq_id;
    meta.seq_end = seq_end;
    Some(DatagramRef { meta, body })
}

/// [`decode_datagram_ref`] through the `bson` crate's raw document
/// iterator: handles every input (lenient numerics, unknown fields, all the
/// error cases). The fallback of the fast path, and its test oracle.
pub(crate) fn decode_datagram_ref_bson(buf: &[u8]) -> Result<DatagramRef<'_>, WireError> {
    let (raw, body) = split_datagram(buf)?;
    // Our own walk of every element's framing first (iterative, no
    // allocation): the `bson` crate's iterator would build an error message
    // for a corrupt element. A meta nested deeper than any body may be is
    // refused too. (A string that is not UTF-8 is still found by the crate.)
    super::depth::check_nesting(raw.as_bytes(), super::depth::MAX_DOCUMENT_BODY_LEVELS)
        .map_err(|_| malformed("meta element does not parse"))?;

    let mut v = None;
    let mut seq = None;
    let mut seq_len = None;
    let mut seq_id = None;
    let mut seq_end = None;
    let mut meta = MetaRef::default();
    // The first problem found; reported after `v` has had its chance, so a
    // future version's datagram is always reported as a version mismatch.
    let mut problem: Option<Malformed> = None;

    for item in raw.iter() {
        let (key, value) = match item {
            Ok(kv) => kv,
            Err(_) => {
                problem.get_or_insert(Malformed::new("meta element does not parse"));
                break;
            }
        };
        let key = key.as_str();
        // `key` is one of the literals matched below: name it by its static copy.
        let bad = |field: &'static str, expected: &'static str| Malformed::new(expected).field(field);
        macro_rules! opt_str {
            ($field:expr, $name:literal) => {
                match value {
                    RawBsonRef::String(s) => $field = Some(s),
                    RawBsonRef::Null | RawBsonRef::Undefined => $field = None,
                    _ => {
                        problem.get_or_insert(bad($name, "expected a string"));
                    }
                }
            };
        }
        match key {
            "v" => match int32_raw(value) {
                Some(x) => v = Some(x),
                None => {
                    problem.get_or_insert(bad("v", "expected an integer"));
                }
            },
            "seq" => match int32_raw(value) {
                Some(x) => seq = Some(x),
                None => {
                    problem.get_or_insert(bad("seq", "expected an integer"));
                }
            },
            "seqLen" => match int32_raw(value) {
                Some(x) => seq_len = Some(x),
                None => {
                    problem.get_or_insert(bad("seqLen", "expected an integer"));
                }
            },
            "seqId" => match value {
                RawBsonRef::String(s) => seq_id = Some(s),
                _ => {
                    problem.get_or_insert(bad("seqId", "expected a string"));
                }
            },
            "seqEnd" => match value {
                RawBsonRef::Boolean(b) => seq_end = Some(b),
                _ => {
                    problem.get_or_insert(bad("seqEnd", "expected a boolean"));
                }
            },
            "enc" => match value {
                RawBsonRef::Boolean(b) => meta.enc = b,
                RawBsonRef::Null | RawBsonRef::Undefined => meta.enc = false,
                _ => {
                    problem.get_or_insert(bad("enc", "expected a boolean"));
                }
            },
            "port" => match value {
                RawBsonRef::Null | RawBsonRef::Undefined => meta.port = None,
                _ => match int32_raw(value) {
                    Some(x) => meta.port = Some(x),
                    None => {
                        problem.get_or_insert(bad("port", "expected an integer"));
                    }
                },
            },
            "sn" => match value {
                RawBsonRef::Null | RawBsonRef::Undefined => meta.sn = None,
                _ => match int64_raw(value) {
                    Some(x) => meta.sn = Some(x),
                    None => {
                        problem.get_or_insert(bad("sn", "expected an integer"));
                    }
                },
            },
            "snAge" => match value {
                RawBsonRef::Null | RawBsonRef::Undefined => meta.sn_age = None,
                _ => match int32_raw(value) {
                    Some(x) => meta.sn_age = Some(x),
                    None => {
                        problem.get_or_insert(bad("snAge", "expected an integer"));
                    }
                },
            },
            "nonce" => opt_str!(meta.nonce, "nonce"),
            "name" => opt_str!(meta.name, "name"),
            "host" => opt_str!(meta.host, "host"),
            "hostname" => opt_str!(meta.hostname, "hostname"),
            "id" => opt_str!(meta.id, "id"),
            "time" => opt_str!(meta.time, "time"),
            _ => {}
        }
    }

    match v {
        Some(v) if v != super::PROTOCOL_VERSION => return Err(WireError::Version(v)),
        _ => {}
    }
    if let Some(p) = problem {
        return Err(p.into());
    }
    let (Some(v), Some(seq), Some(seq_len), Some(seq_id), Some(seq_end)) = (v, seq, seq_len, seq_id, seq_end) else {
        return Err(malformed("meta lacks one of v, seq, seqLen, seqId, seqEnd"));
    };
    if seq < 0 || seq_len < 1 || seq >= seq_len {
        return Err(Malformed::new("chunk index out of range").field("seq").value(seq).into());
    }
    meta.v = v;
    meta.seq = seq;
    meta.seq_len = seq_len;
    meta.seq_id = seq_id;
    meta.seq_end = seq_end;
    Ok(DatagramRef { meta, body })
}

/// Appends the encoded datagram to `out`, or returns `WireError::Limit` (and
/// leaves `out` unchanged) when the meta exceeds [`MAX_META_LEN`] bytes, which
/// only a huge event name or sender field can cause.
///
/// Fields are written in 0.1.x's order with 0.1.x's BSON types (int32, string,
/// boolean), then the `sn` extension as int64 and `snAge` as int32.
pub fn try_encode_datagram(meta: &Meta, body: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    try_encode_datagram_ref(&meta.as_meta_ref(), body, out)
}

/// [`try_encode_datagram`] from a borrowed meta (no owned strings needed: the send hot path).
pub fn try_encode_datagram_ref(meta: &MetaRef<'_>, body: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    let origin = out.len();
    out.reserve(2 + 160 + body.len());
    out.extend_from_slice(&[0, 0]);
    let start = begin_doc(out);
    let r = (|| {
        put_i32(out, "v", meta.v);
        put_i32(out, "seq", meta.seq);
        put_i32(out, "seqLen", meta.seq_len);
        put_str(out, "seqId", meta.seq_id)?;
        put_bool(out, "seqEnd", meta.seq_end);
        put_bool(out, "enc", meta.enc);
        if let Some(s) = meta.nonce {
            put_str(out, "nonce", s)?;
        }
        if let Some(s) = meta.name {
            put_str(out, "name", s)?;
        }
        if let Some(s) = meta.host {
            put_str(out, "host", s)?;
        }
        if let Some(p) = meta.port {
            put_i32(out, "port", p);
        }
        if let Some(s) = meta.hostname {
            put_str(out, "hostname", s)?;
        }
        if let Some(s) = meta.id {
            put_str(out, "id", s)?;
        }
        if let Some(s) = meta.time {
            put_str(out, "time", s)?;
        }
        if let Some(sn) = meta.sn {
            put_i64(out, "sn", sn);
        }
        if let Some(age) = meta.sn_age {
            put_i32(out, "snAge", age);
        }
        end_doc(out, start)
    })();
    let meta_len = out.len() - start;
    if r.is_err() || meta_len > MAX_META_LEN {
        out.truncate(origin);
        return Err(WireError::Limit(format!(
            "meta of {meta_len} bytes exceeds the {MAX_META_LEN}-byte framing limit"
        )));
    }
    out[origin..origin + 2].copy_from_slice(&(meta_len as u16).to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Appends the encoded datagram to `out` (see [`try_encode_datagram`]).
///
/// # Panics
///
/// If the meta exceeds [`MAX_META_LEN`] bytes. Callers that put untrusted
/// or unbounded strings into the meta (event names) must bound them first or
/// use [`try_encode_datagram`].
pub fn encode_datagram(meta: &Meta, body: &[u8], out: &mut Vec<u8>) {
    if let Err(e) = try_encode_datagram(meta, body, out) {
        panic!("encode_datagram: {e}");
    }
}

#[cfg(test)]
mod tests;
