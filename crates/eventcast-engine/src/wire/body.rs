//! Message bodies: `{payload: [...]}` for events, `{payload: {...}}` for `__ec_retx`.
//!
//! ## js-bson 0.2 value mapping (what 0.1.x peers write and expect)
//!
//! - whole JS numbers in int32 range are int32, other whole numbers up to 2^53
//!   are written by 0.1.2 as **double** (the `plain-types` vector's `2**40` is
//!   a BSON double), other numbers double; int64 is read back as a Number;
//! - `Date` is a UTC datetime, `Buffer` binary subtype 0, `null`/`undefined` null;
//! - `RegExp` is a BSON regex whose options map JS flag `g` to BSON option `s`
//!   (and back): see [`js_flags_to_bson_options`] and [`bson_options_to_js_flags`].

use super::bson_writer::{begin_doc, end_doc, put_array, put_document, put_element, Key};
use super::depth::{check_shape, ARGS_BODY, DOCUMENT_BODY, MAX_ARGS_BODY_LEVELS};
use crate::error::{Error, Malformed, WireError};
use bson::raw::{RawArray, RawBsonRef, RawDocument};
use bson::{Binary, Bson, Document};

/// A decoded body.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// Emit arguments (`{payload: [..]}`, or an empty body).
    Args(Vec<Bson>),
    /// A single document (`{payload: {..}}`), as in retransmission requests.
    Document(Document),
}

/// A body decoded without copying: the payload still borrows the datagram.
/// Converting straight from these raw views (e.g. to JS values) skips the
/// intermediate `Bson` tree of [`decode_body`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawPayload<'a> {
    /// `{payload: [..]}`; `None` for an empty body (no arguments).
    Args(Option<&'a RawArray>),
    /// `{payload: {..}}`.
    Document(&'a RawDocument),
}

impl RawPayload<'_> {
    /// Converts to the owned form; a corrupt element is `WireError::Malformed`.
    pub fn to_payload(&self) -> Result<Payload, WireError> {
        let malformed = |_| Malformed::new("element does not parse").field("payload").into();
        match self {
            RawPayload::Args(None) => Ok(Payload::Args(Vec::new())),
            RawPayload::Args(Some(a)) => owned_array(a, 1).map(Payload::Args).map_err(malformed),
            RawPayload::Document(d) => owned_document(d, 1).map(Payload::Document).map_err(malformed),
        }
    }
}

/// Why a raw value did not convert (the caller names the field).
struct NotOwned;

/// `Vec<Bson>` from a raw array in one pass. The crate's own conversion
/// goes through `RawBson`, which copies every nested array or document into
/// a buffer of its own before converting it (so each byte of a body nested
/// `n` levels deep was copied up to `n` times) and allocates each string and
/// binary twice; it was a quarter of a receiver's driver-thread time for
/// small events. `level` counts enclosing containers: [`decode_body_raw`]'s
/// walk bounds the nesting before this recursion runs, and it is checked
/// again here rather than trusted.
fn owned_array(a: &RawArray, level: usize) -> Result<Vec<Bson>, NotOwned> {
    let mut out = Vec::new();
    for v in a {
        out.push(owned_value(v.map_err(|_| NotOwned)?, level)?);
    }
    Ok(out)
}

/// `Document` from a raw document in one pass (see [`owned_array`]).
fn owned_document(d: &RawDocument, level: usize) -> Result<Document, NotOwned> {
    let mut out = Document::new();
    for item in d {
        let (k, v) = item.map_err(|_| NotOwned)?;
        out.insert(k.as_str(), owned_value(v, level)?);
    }
    Ok(out)
}

fn owned_value(v: RawBsonRef<'_>, level: usize) -> Result<Bson, NotOwned> {
    if level > MAX_ARGS_BODY_LEVELS {
        return Err(NotOwned);
    }
    Ok(match v {
        RawBsonRef::Double(n) => Bson::Double(n),
        RawBsonRef::String(s) => Bson::String(s.to_owned()),
        RawBsonRef::Array(a) => Bson::Array(owned_array(a, level + 1)?),
        RawBsonRef::Document(d) => Bson::Document(owned_document(d, level + 1)?),
        RawBsonRef::Boolean(b) => Bson::Boolean(b),
        RawBsonRef::Null => Bson::Null,
        RawBsonRef::Int32(n) => Bson::Int32(n),
        RawBsonRef::Int64(n) => Bson::Int64(n),
        RawBsonRef::DateTime(t) => Bson::DateTime(t),
        RawBsonRef::Binary(b) => Bson::Binary(Binary { subtype: b.subtype, bytes: b.bytes.to_vec() }),
        // The rare types (regex, code with scope, ObjectId, ...): the crate's
        // own conversion, which also normalizes them (regex options sorted).
        other => Bson::try_from(other).map_err(|_| NotOwned)?,
    })
}

/// An emit body known to be the BSON document `{payload: [...]}` (or empty):
/// written by this crate's BSON writer ([`try_encode_args_into`],
/// [`super::args_writer::ArgsWriter`]) or checked once by [`ArgsBody::check`]. The emit
/// path takes it as is: the driver does not read a body again that was
/// written microseconds earlier, and it never parses BSON itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgsBody<'a>(&'a [u8]);

impl<'a> ArgsBody<'a> {
    /// Checks bytes from elsewhere: the document's framing, that its
    /// `payload` is an array (or the document is empty), and what receivers
    /// refuse (nesting, numbers of arguments and values, one walk). Else
    /// `EPAYLOAD`.
    pub fn check(body: &'a [u8]) -> Result<Self, Error> {
        let doc =
            super::framing::raw_document(body).ok_or_else(|| Error::Payload("body is not a BSON document".into()))?;
        match doc.get("payload") {
            Ok(Some(RawBsonRef::Array(_))) => check_emit_body(body).map(|()| ArgsBody(body)),
            Ok(None) if doc.is_empty() => Ok(ArgsBody(body)),
            _ => Err(Error::Payload("body must be the BSON document {payload: [...]}".into())),
        }
    }

    /// A body this crate's writer just produced as `{payload: [...]}`
    /// ([`super::args_writer::ArgsWriter::finish`]).
    pub(crate) fn written(body: &'a [u8]) -> Self {
        ArgsBody(body)
    }

    /// The encoded body.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// What receivers refuse ([`ARGS_BODY`]) as the `EPAYLOAD` an emit returns.
fn check_emit_body(body: &[u8]) -> Result<(), Error> {
    check_shape(body, ARGS_BODY).map_err(|e| match e {
        WireError::TooManyValues { .. } => Error::Payload(e.to_string()),
        _ => Error::Payload(format!("arguments nested deeper than {} levels", super::depth::MAX_NESTING)),
    })
}

/// Writes `{payload: [...]}`, or an error when a document key holds a NUL
/// byte, the arguments nest deeper than [`MAX_NESTING`](super::depth::MAX_NESTING)
/// levels, or there are more than [`MAX_ARGS`](super::depth::MAX_ARGS)
/// arguments or [`MAX_VALUES`](super::depth::MAX_VALUES) values (receivers
/// refuse those).
pub fn try_encode_args(args: &[Bson]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(32 + args.len() * 16);
    try_encode_args_into(args, &mut out)?;
    Ok(out)
}

/// Like [`try_encode_args`], into `out` (cleared first), so a caller can
/// reuse one buffer for every message; `out` is left empty on error.
pub fn try_encode_args_into(args: &[Bson], out: &mut Vec<u8>) -> Result<(), Error> {
    out.clear();
    let r = (|| {
        let start = begin_doc(out);
        out.push(0x04);
        out.extend_from_slice(b"payload\0");
        put_array(out, args).map_err(Error::Payload)?;
        end_doc(out, start).map_err(Error::Payload)?;
        // Receivers refuse deeper or larger bodies: fail here, as the JS
        // `emit` does, rather than send what every member drops.
        check_emit_body(out)
    })();
    if r.is_err() {
        out.clear();
    }
    r
}

/// Encodes emit arguments as `{payload: [...]}`.
///
/// # Panics
///
/// If a document key inside `args` contains a NUL byte (BSON cannot carry it);
/// use [`try_encode_args`] for arguments that were not validated.
pub fn encode_args(args: &[Bson]) -> Vec<u8> {
    match try_encode_args(args) {
        Ok(v) => v,
        Err(e) => panic!("encode_args: {e}"),
    }
}

/// Writes `{payload: doc}`, or an error when a key holds a NUL byte.
pub fn try_encode_document_body(doc: &Document) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    let start = begin_doc(&mut out);
    out.push(0x03);
    out.extend_from_slice(b"payload\0");
    put_document(&mut out, doc).map_err(Error::Payload)?;
    end_doc(&mut out, start).map_err(Error::Payload)?;
    Ok(out)
}

/// Encodes `{payload: doc}`.
///
/// # Panics
///
/// If a key inside `doc` contains a NUL byte; see [`try_encode_document_body`].
pub fn encode_document_body(doc: &Document) -> Vec<u8> {
    match try_encode_document_body(doc) {
        Ok(v) => v,
        Err(e) => panic!("encode_document_body: {e}"),
    }
}

/// Appends one BSON value as element `key` of a document being written.
/// Exposed for callers that build bodies incrementally.
pub fn append_element(out: &mut Vec<u8>, key: &str, value: &Bson) -> Result<(), Error> {
    put_element(out, Key::Name(key.as_bytes()), value).map_err(Error::Payload)
}

/// Decodes a body without copying it; an empty body is `RawPayload::Args(None)`.
/// The whole body's framing, nesting depth and size in values are checked
/// here, in one iterative walk ([`check_shape`]): arguments nested deeper
/// than [`MAX_NESTING`](super::depth::MAX_NESTING) levels are `Malformed`, so
/// the recursive conversions downstream stay shallow; more than
/// [`MAX_ARGS`](super::depth::MAX_ARGS) arguments or
/// [`MAX_VALUES`](super::depth::MAX_VALUES) values are
/// [`WireError::TooManyValues`], so what they convert to stays small.
/// Element contents (UTF-8, ...) are validated when they are read.
pub fn decode_body_raw(body: &[u8]) -> Result<RawPayload<'_>, WireError> {
    if body.is_empty() {
        return Ok(RawPayload::Args(None));
    }
    let doc = super::framing::raw_document(body).ok_or(Malformed::new("body is not a BSON document"))?;
    // Finding `payload` reads only the top level; the walk then covers everything.
    match doc.get("payload") {
        Ok(Some(RawBsonRef::Array(a))) => {
            check_shape(body, ARGS_BODY)?;
            Ok(RawPayload::Args(Some(a)))
        }
        Ok(Some(RawBsonRef::Document(d))) => {
            check_shape(body, DOCUMENT_BODY)?;
            Ok(RawPayload::Document(d))
        }
        Ok(Some(other)) => Err(Malformed::new("neither an array nor a document")
            .field("payload")
            .value(other.element_type() as u8)
            .into()),
        Ok(None) => Err(Malformed::new("body has no payload field").into()),
        Err(_) => Err(Malformed::new("body element does not parse").into()),
    }
}

/// Decodes a body; an empty body is `Payload::Args(vec![])`.
pub fn decode_body(body: &[u8]) -> Result<Payload, WireError> {
    decode_body_raw(body)?.to_payload()
}

/// Maps JS `RegExp` flags to BSON regex options the way js-bson 0.2 did:
/// `g` -> `s`, `i` -> `i`, `m` -> `m`; we also map `u` -> `u`. Flags with no
/// BSON counterpart (`y`, `d`, `v`, and JS `s`/dotAll, whose BSON letter
/// js-bson already spent on `g`) are dropped, as 0.1.x dropped them. The
/// result is in alphabetical order, as the BSON spec requires.
pub fn js_flags_to_bson_options(flags: &str) -> String {
    let has = |c| flags.contains(c);
    let mut out = String::with_capacity(4);
    for (js, bson) in [('i', 'i'), ('m', 'm'), ('g', 's'), ('u', 'u')] {
        if has(js) {
            out.push(bson);
        }
    }
    out
}

/// Maps BSON regex options back to JS flags as js-bson 0.2 read them:
/// `s` -> `g`, `i` -> `i`, `m` -> `m`; we also map `u` -> `u`. Options JS
/// cannot express (`x`, `l`) are dropped. Output is in JS's canonical order.
pub fn bson_options_to_js_flags(options: &str) -> String {
    let has = |c| options.contains(c);
    let mut out = String::with_capacity(4);
    for (bson, js) in [('s', 'g'), ('i', 'i'), ('m', 'm'), ('u', 'u')] {
        if has(bson) {
            out.push(js);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn encode_args_into_reuses_a_buffer_with_identical_bytes() {
        let lists: Vec<Vec<Bson>> = vec![
            vec![Bson::String("x".repeat(64)), Bson::Int32(7), Bson::Double(1.5)],
            vec![],
            vec![Bson::Document(bson::doc! {"a": [1, 2, {"b": "c"}]}), Bson::Null],
            vec![Bson::Int64(-1)],
        ];
        let mut buf = Vec::new();
        for args in &lists {
            try_encode_args_into(args, &mut buf).unwrap();
            assert_eq!(buf, try_encode_args(args).unwrap());
        }
        // A NUL in a document key fails, leaves the buffer empty, and the next call works.
        let bad = vec![Bson::Document(bson::doc! {"a\0b": 1})];
        assert!(try_encode_args(&bad).is_err());
        assert!(try_encode_args_into(&bad, &mut buf).is_err());
        assert!(buf.is_empty());
        try_encode_args_into(&lists[0], &mut buf).unwrap();
        assert_eq!(buf, try_encode_args(&lists[0]).unwrap());
    }

    #[test]
    fn args_layout_matches_bson_crate() {
        let args = vec![Bson::String("a".into()), Bson::Int32(5)];
        let b = encode_args(&args);
        assert_eq!(b, doc! { "payload": args.clone() }.to_vec().unwrap());
        assert_eq!(decode_body(&b).unwrap(), Payload::Args(args));
        assert_eq!(encode_args(&[]), doc! { "payload": [] }.to_vec().unwrap());
    }

    #[test]
    fn document_body() {
        let d = doc! { "id": "x", "missedSeq": [1, 3] };
        let b = encode_document_body(&d);
        assert_eq!(b, doc! { "payload": d.clone() }.to_vec().unwrap());
        assert_eq!(decode_body(&b).unwrap(), Payload::Document(d));
    }

    #[test]
    fn edge_bodies() {
        assert_eq!(decode_body(b"").unwrap(), Payload::Args(vec![]));
        assert_eq!(decode_body_raw(b"").unwrap(), RawPayload::Args(None));
        for bad in [doc! { "payload": 1 }, doc! { "other": [] }, doc! {}] {
            let b = bad.to_vec().unwrap();
            assert!(matches!(decode_body(&b), Err(WireError::Malformed(_))), "{bad}");
        }
        assert!(matches!(decode_body(b"\x05\0\0\0"), Err(WireError::Malformed(_))));
        // Trailing garbage after the document is rejected.
        let mut b = encode_args(&[]);
        b.push(0);
        assert!(matches!(decode_body(&b), Err(WireError::Malformed(_))));
        // A corrupt nested element is an error from decode_body.
        let mut b = encode_args(&[Bson::String("abc".into())]);
        let n = b.len();
        b[n - 8] = 0x7e; // length of the string
        assert!(decode_body(&b).is_err());
    }

    #[test]
    fn nul_keys_are_errors_in_try_variants() {
        let mut d = Document::new();
        d.insert("a\0", 1);
        assert!(try_encode_args(&[Bson::Document(d.clone())]).is_err());
        assert!(try_encode_document_body(&d).is_err());
    }

    #[test]
    fn regex_flag_mapping() {
        assert_eq!(js_flags_to_bson_options("g"), "s");
        assert_eq!(js_flags_to_bson_options("i"), "i");
        assert_eq!(js_flags_to_bson_options("gim"), "ims");
        assert_eq!(js_flags_to_bson_options("mig"), "ims");
        assert_eq!(js_flags_to_bson_options("yus"), "u");
        assert_eq!(js_flags_to_bson_options(""), "");
        assert_eq!(bson_options_to_js_flags("s"), "g");
        assert_eq!(bson_options_to_js_flags("ims"), "gim");
        assert_eq!(bson_options_to_js_flags("sim"), "gim"); // js-bson 0.2's own order
        assert_eq!(bson_options_to_js_flags("lux"), "u");
        for f in ["", "g", "i", "m", "u", "gi", "gm", "im", "gim", "gimu"] {
            assert_eq!(bson_options_to_js_flags(&js_flags_to_bson_options(f)), f);
        }
    }

    #[test]
    fn args_body_check() {
        for ok in [encode_args(&[Bson::Int32(1)]), encode_args(&[]), doc! {}.to_vec().unwrap()] {
            assert_eq!(ArgsBody::check(&ok).unwrap().as_bytes(), ok);
        }
        let mut truncated = encode_args(&[Bson::Int32(1)]);
        truncated.pop();
        for bad in [
            vec![1, 2],
            truncated,
            doc! { "payload": 1 }.to_vec().unwrap(),
            doc! { "payload": { "a": 1 } }.to_vec().unwrap(),
            doc! { "other": [] }.to_vec().unwrap(),
        ] {
            assert!(matches!(ArgsBody::check(&bad), Err(Error::Payload(_))), "{bad:?}");
        }
    }
}
