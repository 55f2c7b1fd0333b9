//! Writing an event's arguments value by value: for a caller that walks
//! values of its own kind (the Node addon walks JS values through Node-API)
//! and must not build a `bson::Bson` tree first, nor know the BSON format.
//!
//! [`ArgsWriter`] appends the body `{payload: [...]}` straight into a byte
//! buffer. The caller says what each value is (`number`, `string`, `date`,
//! `begin_document`, ...); the type bytes, lengths and keys are written here.
//! It also enforces what receivers enforce, so a node never sends what its
//! peers would refuse: at most [`MAX_ARGS`] arguments and [`MAX_VALUES`]
//! values in all (`EPAYLOAD`, worded as the receivers' refusal).
//!
//! Mapping of numbers, js-bson 0.2's rule as eventcast 0.1.x used it (so
//! 0.1.x receivers see the types they always saw): see [`number_type`].

use super::bson_writer::{self as w, EncodeResult};
use super::depth::{MAX_ARGS, MAX_VALUES};
use super::ArgsBody;
use crate::error::{Error, WireError};

pub use super::bson_writer::Key;

/// BSON element types written here (BSON 1.1).
mod ty {
    pub const DOUBLE: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const DOCUMENT: u8 = 0x03;
    pub const ARRAY: u8 = 0x04;
    pub const BINARY: u8 = 0x05;
    pub const BOOLEAN: u8 = 0x08;
    pub const DATETIME: u8 = 0x09;
    pub const NULL: u8 = 0x0A;
    pub const REGEX: u8 = 0x0B;
    pub const INT32: u8 = 0x10;
    pub const INT64: u8 = 0x12;
}

/// Largest integer a JS number (an `f64`) holds exactly: 2^53.
const SAFE_INT: f64 = 9_007_199_254_740_992.0;

/// How a number travels, by js-bson 0.2's rule, except that `-0` stays a
/// double (so it round-trips).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberType {
    /// A whole number in the int32 range.
    Int32(i32),
    /// A whole number with |n| ≤ 2^53 outside the int32 range.
    Int64(i64),
    /// Anything else: fractions, `-0`, NaN, ±Infinity, |n| > 2^53.
    Double(f64),
}

/// The BSON type a JS number is sent as (see [`NumberType`]).
pub fn number_type(n: f64) -> NumberType {
    if n.fract() == 0.0 && n.is_finite() && !(n == 0.0 && n.is_sign_negative()) {
        if n >= i32::MIN as f64 && n <= i32::MAX as f64 {
            return NumberType::Int32(n as i32);
        }
        if n.abs() <= SAFE_INT {
            return NumberType::Int64(n as i64);
        }
    }
    NumberType::Double(n)
}

/// Appends an event's arguments, `{payload: [...]}`, one value at a time.
///
/// Each value method takes the element's [`Key`]: [`Key::Index`] inside an
/// array (the arguments are one), [`Key::Name`] inside a document. On an
/// error, the buffer holds a partial body: discard it.
pub struct ArgsWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Where the body starts in `out` (a caller may have written before it).
    base: usize,
    /// Offsets of the open documents: the body, the arguments array, then
    /// each nested document or array, innermost last.
    open: Vec<usize>,
    /// Values written so far, at every level.
    values: usize,
    /// Arguments written so far.
    args: usize,
}

impl<'a> ArgsWriter<'a> {
    /// Starts a body at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        let base = out.len();
        let body = w::begin_doc(out);
        // The key is fixed: writing it cannot fail.
        let _ = w::put_key(out, ty::ARRAY, Key::Name(b"payload"));
        let args = w::begin_doc(out);
        ArgsWriter { out, base, open: vec![body, args], values: 0, args: 0 }
    }

    /// How many documents and arrays are open inside the arguments (0 at the
    /// top level, where each value is one argument).
    pub fn depth(&self) -> usize {
        self.open.len() - 2
    }

    /// Counts one value (and one argument at the top level) against the
    /// bounds receivers enforce.
    fn count(&mut self) -> Result<(), Error> {
        if self.open.len() == 2 {
            self.args += 1;
            if self.args > MAX_ARGS {
                return Err(too_many("arguments", MAX_ARGS));
            }
        }
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(too_many("values", MAX_VALUES));
        }
        Ok(())
    }

    /// Counts a value and writes its type byte and key.
    fn key(&mut self, ty: u8, key: Key<'_>) -> Result<(), Error> {
        self.count()?;
        payload(w::put_key(self.out, ty, key))
    }

    /// A null (JS `null` and `undefined`).
    pub fn null(&mut self, key: Key<'_>) -> Result<(), Error> {
        self.key(ty::NULL, key)
    }

    /// A boolean.
    pub fn boolean(&mut self, key: Key<'_>, v: bool) -> Result<(), Error> {
        self.key(ty::BOOLEAN, key)?;
        self.out.push(v as u8);
        Ok(())
    }

    /// A JS number, as int32, int64 or double by [`number_type`].
    pub fn number(&mut self, key: Key<'_>, n: f64) -> Result<(), Error> {
        match number_type(n) {
            NumberType::Int32(i) => {
                self.key(ty::INT32, key)?;
                self.out.extend_from_slice(&i.to_le_bytes());
            }
            NumberType::Int64(i) => self.int64(key, i)?,
            NumberType::Double(d) => {
                self.key(ty::DOUBLE, key)?;
                self.out.extend_from_slice(&d.to_le_bytes());
            }
        }
        Ok(())
    }

    /// An int64 (a JS BigInt in range).
    pub fn int64(&mut self, key: Key<'_>, v: i64) -> Result<(), Error> {
        self.key(ty::INT64, key)?;
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    /// A string.
    pub fn string(&mut self, key: Key<'_>, s: &str) -> Result<(), Error> {
        self.string_with(key, |out| {
            out.extend_from_slice(s.as_bytes());
            Ok::<(), Error>(())
        })
    }

    /// A string whose UTF-8 bytes (no NUL) `fill` appends to the buffer
    /// itself: straight from its source, with no copy in between.
    pub fn string_with<E: From<Error>>(
        &mut self,
        key: Key<'_>,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.key(ty::STRING, key)?;
        let start = w::begin_string(self.out);
        fill(self.out)?;
        Ok(payload(w::end_string(self.out, start))?)
    }

    /// Binary data (subtype 0, generic): Buffers, typed arrays, ArrayBuffers.
    pub fn binary(&mut self, key: Key<'_>, bytes: &[u8]) -> Result<(), Error> {
        self.key(ty::BINARY, key)?;
        payload(w::put_binary_value(self.out, 0, bytes))
    }

    /// A UTC datetime, in milliseconds since 1970.
    pub fn date(&mut self, key: Key<'_>, millis: i64) -> Result<(), Error> {
        self.key(ty::DATETIME, key)?;
        self.out.extend_from_slice(&millis.to_le_bytes());
        Ok(())
    }

    /// A regular expression: its source and its JS flags, which are mapped
    /// to BSON options by [`super::js_flags_to_bson_options`]. A NUL in
    /// either cannot be carried (`EPAYLOAD`).
    pub fn regex(&mut self, key: Key<'_>, source: &str, js_flags: &str) -> Result<(), Error> {
        self.key(ty::REGEX, key)?;
        let options = super::js_flags_to_bson_options(js_flags);
        payload(w::put_regex_value(self.out, source.as_bytes(), options.as_bytes()))
    }

    /// Opens a document (an object): the values that follow, with
    /// [`Key::Name`] keys, are its fields until [`ArgsWriter::end`].
    pub fn begin_document(&mut self, key: Key<'_>) -> Result<(), Error> {
        self.key(ty::DOCUMENT, key)?;
        self.open.push(w::begin_doc(self.out));
        Ok(())
    }

    /// Opens an array: the values that follow, with [`Key::Index`] keys 0,
    /// 1, ..., are its elements until [`ArgsWriter::end`].
    pub fn begin_array(&mut self, key: Key<'_>) -> Result<(), Error> {
        self.key(ty::ARRAY, key)?;
        self.open.push(w::begin_doc(self.out));
        Ok(())
    }

    /// Closes the innermost open document or array.
    ///
    /// # Panics
    ///
    /// If none is open (a bug in the caller: more `end`s than `begin`s).
    pub fn end(&mut self) -> Result<(), Error> {
        assert!(self.open.len() > 2, "ArgsWriter::end without an open document or array");
        let start = self.open.pop().expect("checked above");
        payload(w::end_doc(self.out, start))
    }

    /// Closes the arguments and the body, and returns the body's bytes.
    ///
    /// # Panics
    ///
    /// If a document or array is still open (a bug in the caller).
    pub fn finish(self) -> Result<ArgsBody<'a>, Error> {
        self.finish_after().map(|(_, body)| body)
    }

    /// Like [`ArgsWriter::finish`], and also returns what the buffer held
    /// before the body (a caller that wrote the event's name there reads it
    /// back without a copy).
    pub fn finish_after(self) -> Result<(&'a [u8], ArgsBody<'a>), Error> {
        assert_eq!(self.open.len(), 2, "ArgsWriter::finish with a document or array still open");
        let ArgsWriter { out, base, open, .. } = self;
        payload(w::end_doc(out, open[1]))?;
        payload(w::end_doc(out, open[0]))?;
        let out: &'a Vec<u8> = out;
        let (before, body) = out.split_at(base);
        Ok((before, ArgsBody::written(body)))
    }
}

/// More arguments or values than receivers accept, worded as their refusal.
fn too_many(what: &'static str, limit: usize) -> Error {
    Error::Payload(WireError::TooManyValues { what, limit }.to_string())
}

/// A refusal of the BSON writer (NUL in a key or regex, a part over 2 GiB).
fn payload(r: EncodeResult) -> Result<(), Error> {
    r.map_err(Error::Payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Binary, Bson, DateTime, Regex};

    fn payload_of(body: ArgsBody<'_>) -> bson::Document {
        bson::Document::from_reader(body.as_bytes()).unwrap()
    }

    #[test]
    fn writes_what_the_bson_crate_reads() {
        let mut buf = b"prefix".to_vec();
        let mut a = ArgsWriter::new(&mut buf);
        a.string(Key::Index(0), "héllo").unwrap();
        a.number(Key::Index(1), 5.0).unwrap();
        a.number(Key::Index(2), 1e12).unwrap();
        a.number(Key::Index(3), 0.5).unwrap();
        a.number(Key::Index(4), -0.0).unwrap();
        a.int64(Key::Index(5), -7).unwrap();
        a.begin_document(Key::Index(6)).unwrap();
        a.boolean(Key::Name(b"t"), true).unwrap();
        a.null(Key::Name(b"n")).unwrap();
        a.begin_array(Key::Name(b"arr")).unwrap();
        a.binary(Key::Index(0), &[1, 2]).unwrap();
        a.date(Key::Index(1), 1_700_000_000_123).unwrap();
        a.regex(Key::Index(2), "a.b", "gi").unwrap();
        assert_eq!(a.depth(), 2);
        a.end().unwrap();
        a.end().unwrap();
        let body = a.finish().unwrap();
        let expect = doc! { "payload": [
            "héllo", 5i32, 1_000_000_000_000i64, 0.5, -0.0, -7i64,
            { "t": true, "n": Bson::Null, "arr": [
                Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] },
                DateTime::from_millis(1_700_000_000_123),
                Regex { pattern: "a.b".try_into().unwrap(), options: "is".try_into().unwrap() },
            ] },
        ] };
        assert_eq!(body.as_bytes(), expect.to_vec().unwrap());
        assert_eq!(payload_of(body), expect);
        assert!(buf.starts_with(b"prefix"));

        let mut buf = b"name".to_vec();
        let mut a = ArgsWriter::new(&mut buf);
        a.number(Key::Index(0), 1.0).unwrap();
        let (before, body) = a.finish_after().unwrap();
        assert_eq!(before, b"name");
        assert_eq!(body.as_bytes(), doc! { "payload": [1i32] }.to_vec().unwrap());
    }

    #[test]
    fn number_types_follow_js_bson() {
        assert_eq!(number_type(1.0), NumberType::Int32(1));
        assert_eq!(number_type(-2147483648.0), NumberType::Int32(i32::MIN));
        assert_eq!(number_type(2147483648.0), NumberType::Int64(1 << 31));
        assert_eq!(number_type(SAFE_INT), NumberType::Int64(1 << 53));
        assert!(matches!(number_type(SAFE_INT * 2.0), NumberType::Double(_)));
        assert!(matches!(number_type(-0.0), NumberType::Double(d) if d.is_sign_negative()));
        assert!(matches!(number_type(f64::NAN), NumberType::Double(_)));
    }

    #[test]
    fn refuses_what_receivers_refuse() {
        let mut buf = Vec::new();
        let mut a = ArgsWriter::new(&mut buf);
        for i in 0..MAX_ARGS {
            a.null(Key::Index(i)).unwrap();
        }
        let e = a.null(Key::Index(MAX_ARGS)).unwrap_err();
        assert_eq!(e.code(), "EPAYLOAD");
        assert!(e.to_string().contains("arguments"), "{e}");

        let mut buf = Vec::new();
        let mut a = ArgsWriter::new(&mut buf);
        a.begin_array(Key::Index(0)).unwrap();
        let mut last = Ok(());
        for i in 0..MAX_VALUES {
            last = a.null(Key::Index(i));
            if last.is_err() {
                break;
            }
        }
        let e = last.unwrap_err();
        assert!(e.to_string().contains("values"), "{e}");

        let mut buf = Vec::new();
        let mut a = ArgsWriter::new(&mut buf);
        assert_eq!(a.null(Key::Name(b"a\0b")).unwrap_err().code(), "EPAYLOAD");
        assert_eq!(a.regex(Key::Index(0), "a\0", "").unwrap_err().code(), "EPAYLOAD");
    }
}
