//! A small allocation-free BSON writer for the hot path: the only BSON
//! writer of the workspace.
//!
//! `bson::Document::to_writer` first builds a whole `RawDocumentBuf` copy of
//! the document; datagram metas and `{payload: [...]}` bodies are written on
//! every emit, so we append the BSON bytes straight into the output buffer
//! instead. Two kinds of callers: [`put_element`] writes `bson::Bson`
//! values (Rust emitters, control messages), and [`super::args_writer`]
//! writes values one by one for a caller that walks values of its own (the
//! Node addon walks JS values). The layout is the BSON 1.1 spec (all
//! integers little-endian). Rare element types whose fields the `bson` crate
//! keeps private (`DbPointer`, old-style binary subtype 2) go through
//! `bson`'s own encoder.

use bson::spec::BinarySubtype;
use bson::{Bson, Document};

/// Why a value cannot be written as BSON.
pub(crate) type EncodeResult = Result<(), String>;

/// Reserves a document's 4-byte length; returns the offset to pass to [`end_doc`].
#[inline]
pub(crate) fn begin_doc(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    start
}

/// Writes the terminating NUL and patches the length reserved by [`begin_doc`].
#[inline]
pub(crate) fn end_doc(out: &mut Vec<u8>, start: usize) -> EncodeResult {
    out.push(0);
    let len = i32::try_from(out.len() - start).map_err(|_| "document larger than 2 GiB")?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Writes a fixed element key and its NUL. The caller guarantees no NUL inside.
#[inline]
fn put_cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// Writes a BSON string value: int32 length (with NUL), bytes, NUL.
#[inline]
fn put_string(out: &mut Vec<u8>, s: &str) -> EncodeResult {
    let start = begin_string(out);
    out.extend_from_slice(s.as_bytes());
    end_string(out, start)
}

/// Reserves a string value's 4-byte length; append the UTF-8 bytes (no NUL)
/// to `out`, then call [`end_string`] with the returned offset. Lets a caller
/// write a string straight from its source (a JS string) without a copy.
#[inline]
pub(crate) fn begin_string(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    start
}

/// Writes the string's NUL and patches the length reserved by [`begin_string`].
#[inline]
pub(crate) fn end_string(out: &mut Vec<u8>, start: usize) -> EncodeResult {
    out.push(0);
    let len = i32::try_from(out.len() - start - 4).map_err(|_| "string larger than 2 GiB")?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Writes a binary value: int32 length, subtype, bytes.
#[inline]
pub(crate) fn put_binary_value(out: &mut Vec<u8>, subtype: u8, bytes: &[u8]) -> EncodeResult {
    let len = i32::try_from(bytes.len()).map_err(|_| "binary larger than 2 GiB")?;
    out.extend_from_slice(&len.to_le_bytes());
    out.push(subtype);
    out.extend_from_slice(bytes);
    Ok(())
}

/// Writes a regex value: pattern and options as cstrings. Options must
/// already be BSON options ([`super::body::js_flags_to_bson_options`] maps
/// JS flags); a NUL in either part cannot be carried and is an error.
#[inline]
pub(crate) fn put_regex_value(out: &mut Vec<u8>, pattern: &[u8], options: &[u8]) -> EncodeResult {
    if pattern.contains(&0) || options.contains(&0) {
        return Err("a regex containing NUL cannot be sent".into());
    }
    out.extend_from_slice(pattern);
    out.push(0);
    out.extend_from_slice(options);
    out.push(0);
    Ok(())
}

/// Element `key: int32` (fixed key, no NUL check).
#[inline]
pub(crate) fn put_i32(out: &mut Vec<u8>, key: &str, v: i32) {
    out.push(0x10);
    put_cstr(out, key);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Element `key: int64` (fixed key, no NUL check).
#[inline]
pub(crate) fn put_i64(out: &mut Vec<u8>, key: &str, v: i64) {
    out.push(0x12);
    put_cstr(out, key);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Element `key: bool` (fixed key, no NUL check).
#[inline]
pub(crate) fn put_bool(out: &mut Vec<u8>, key: &str, v: bool) {
    out.push(0x08);
    put_cstr(out, key);
    out.push(v as u8);
}

/// Element `key: string` (fixed key, no NUL check). Strings longer than 2 GiB
/// cannot occur in a datagram; the caller bounds the total size.
#[inline]
pub(crate) fn put_str(out: &mut Vec<u8>, key: &str, v: &str) -> EncodeResult {
    out.push(0x02);
    put_cstr(out, key);
    put_string(out, v)
}

/// Writes the type byte and the decimal digits of an array index as a key.
#[inline]
fn put_index_key(out: &mut Vec<u8>, ty: u8, i: usize) {
    out.push(ty);
    put_index_digits(out, i);
}

/// Writes the decimal digits of an array index and the key's NUL (BSON array
/// keys are "0", "1", ...).
#[inline]
fn put_index_digits(out: &mut Vec<u8>, mut i: usize) {
    let mut digits = [0u8; 20];
    let mut n = digits.len();
    loop {
        n -= 1;
        digits[n] = b'0' + (i % 10) as u8;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[n..]);
    out.push(0);
}

/// Writes a whole document.
pub(crate) fn put_document(out: &mut Vec<u8>, doc: &Document) -> EncodeResult {
    let start = begin_doc(out);
    for (k, v) in doc {
        put_element(out, Key::Name(k.as_bytes()), v)?;
    }
    end_doc(out, start)
}

/// Writes an array (a document with keys "0", "1", ...).
pub(crate) fn put_array(out: &mut Vec<u8>, items: &[Bson]) -> EncodeResult {
    let start = begin_doc(out);
    for (i, v) in items.iter().enumerate() {
        put_element(out, Key::Index(i), v)?;
    }
    end_doc(out, start)
}

/// An element key: a document field name or an array index.
#[derive(Clone, Copy)]
pub enum Key<'a> {
    /// A field name, UTF-8 (checked for NUL bytes, which would end it early).
    Name(&'a [u8]),
    /// An array index, written in decimal.
    Index(usize),
}

/// Writes an element's type byte and key; a field name holding a NUL byte
/// is an error (BSON cannot carry it).
#[inline]
pub(crate) fn put_key(out: &mut Vec<u8>, ty: u8, key: Key<'_>) -> EncodeResult {
    match key {
        Key::Name(k) => {
            if k.contains(&0) {
                return Err(format!("document key {:?} contains a NUL byte", String::from_utf8_lossy(k)));
            }
            out.push(ty);
            out.extend_from_slice(k);
            out.push(0);
        }
        Key::Index(i) => put_index_key(out, ty, i),
    }
    Ok(())
}

/// Writes one element (type byte, key, value).
pub(crate) fn put_element(out: &mut Vec<u8>, key: Key<'_>, v: &Bson) -> EncodeResult {
    match v {
        Bson::Double(f) => {
            put_key(out, 0x01, key)?;
            out.extend_from_slice(&f.to_le_bytes());
        }
        Bson::String(s) => {
            put_key(out, 0x02, key)?;
            put_string(out, s)?;
        }
        Bson::Document(d) => {
            put_key(out, 0x03, key)?;
            put_document(out, d)?;
        }
        Bson::Array(a) => {
            put_key(out, 0x04, key)?;
            put_array(out, a)?;
        }
        Bson::Binary(b) if b.subtype != BinarySubtype::BinaryOld => {
            put_key(out, 0x05, key)?;
            put_binary_value(out, u8::from(b.subtype), &b.bytes)?;
        }
        Bson::Undefined => put_key(out, 0x06, key)?,
        Bson::ObjectId(o) => {
            put_key(out, 0x07, key)?;
            out.extend_from_slice(&o.bytes());
        }
        Bson::Boolean(b) => {
            put_key(out, 0x08, key)?;
            out.push(*b as u8);
        }
        Bson::DateTime(d) => {
            put_key(out, 0x09, key)?;
            out.extend_from_slice(&d.timestamp_millis().to_le_bytes());
        }
        Bson::Null => put_key(out, 0x0A, key)?,
        Bson::RegularExpression(r) => {
            put_key(out, 0x0B, key)?;
            put_regex_value(out, r.pattern.as_str().as_bytes(), r.options.as_str().as_bytes())?;
        }
        Bson::JavaScriptCode(s) => {
            put_key(out, 0x0D, key)?;
            put_string(out, s)?;
        }
        Bson::Symbol(s) => {
            put_key(out, 0x0E, key)?;
            put_string(out, s)?;
        }
        Bson::JavaScriptCodeWithScope(c) => {
            put_key(out, 0x0F, key)?;
            let start = out.len();
            out.extend_from_slice(&[0, 0, 0, 0]);
            put_string(out, &c.code)?;
            put_document(out, &c.scope)?;
            let len = i32::try_from(out.len() - start).map_err(|_| "code larger than 2 GiB")?;
            out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        Bson::Int32(i) => {
            put_key(out, 0x10, key)?;
            out.extend_from_slice(&i.to_le_bytes());
        }
        Bson::Timestamp(t) => {
            put_key(out, 0x11, key)?;
            out.extend_from_slice(&t.increment.to_le_bytes());
            out.extend_from_slice(&t.time.to_le_bytes());
        }
        Bson::Int64(i) => {
            put_key(out, 0x12, key)?;
            out.extend_from_slice(&i.to_le_bytes());
        }
        Bson::Decimal128(d) => {
            put_key(out, 0x13, key)?;
            out.extend_from_slice(&d.bytes());
        }
        Bson::MaxKey => put_key(out, 0x7F, key)?,
        Bson::MinKey => put_key(out, 0xFF, key)?,
        Bson::DbPointer(_) | Bson::Binary(_) => put_via_bson_crate(out, key, v)?,
    }
    Ok(())
}

/// Encodes `{key: v}` with the `bson` crate and copies out the element bytes.
fn put_via_bson_crate(out: &mut Vec<u8>, key: Key<'_>, v: &Bson) -> EncodeResult {
    let k = match key {
        Key::Name(k) => String::from_utf8_lossy(k).into_owned(),
        Key::Index(i) => i.to_string(),
    };
    let mut d = Document::new();
    d.insert(k, v.clone());
    let bytes = d.to_vec().map_err(|e| e.to_string())?;
    // 4-byte length, the element, the trailing NUL.
    out.extend_from_slice(&bytes[4..bytes.len() - 1]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId, Binary, DateTime, Decimal128, JavaScriptCodeWithScope, Regex, Timestamp};

    /// Every element type must produce exactly the bytes of the `bson` crate.
    #[test]
    fn matches_bson_crate_for_every_type() {
        let d = doc! {
            "double": 1.5, "string": "héllo\0x", "doc": { "a": 1 }, "arr": [1, "two", [3]],
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2] },
            "binold": Binary { subtype: BinarySubtype::BinaryOld, bytes: vec![9, 8] },
            "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
            "undef": Bson::Undefined, "oid": ObjectId::from_bytes([3; 12]), "t": true, "f": false,
            "date": DateTime::from_millis(1_700_000_000_123), "null": Bson::Null,
            "re": Regex { pattern: "a.b".try_into().unwrap(), options: "im".try_into().unwrap() },
            "js": Bson::JavaScriptCode("f()".into()), "sym": Bson::Symbol("s".into()),
            "jsws": JavaScriptCodeWithScope { code: "g()".into(), scope: doc! { "x": 1 } },
            "i32": -7, "ts": Timestamp { time: 5, increment: 6 }, "i64": 1i64 << 40,
            "dec": Decimal128::from_bytes([1; 16]), "max": Bson::MaxKey, "min": Bson::MinKey,
        };
        let mut out = Vec::new();
        put_document(&mut out, &d).unwrap();
        assert_eq!(out, d.to_vec().unwrap());
    }

    #[test]
    fn array_index_keys() {
        let items: Vec<Bson> = (0..123).map(Bson::Int32).collect();
        let mut out = Vec::new();
        put_array(&mut out, &items).unwrap();
        let expect = doc! { "a": items.clone() }.to_vec().unwrap();
        // The array document starts after: 4 length + type + "a\0".
        assert_eq!(out, expect[7..expect.len() - 1]);
    }

    #[test]
    fn nul_in_key_is_an_error_not_a_panic() {
        let mut d = Document::new();
        d.insert("a\0b", 1);
        assert!(put_document(&mut Vec::new(), &d).is_err());
    }
}
