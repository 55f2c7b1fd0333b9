//! Nesting depth and structure of untrusted BSON, checked *before* any
//! conversion.
//!
//! Every converter downstream is recursive: the `bson` crate's
//! `RawDocument` → `Document`/`Bson` conversion, serde, dropping a `Bson`
//! tree, and the binding's BSON → JS conversion. A datagram nested 6,000
//! levels deep (≈ 48 KB) overflowed the stack of every node that received it.
//! [`check_nesting`] walks the raw bytes once, iteratively (an explicit stack
//! of end offsets, bounded by the limit), and refuses a document nested deeper
//! than the limit before any of those converters sees it.
//!
//! The walk is linear in the input: every step consumes at least one byte,
//! values are skipped by their length prefix, and nothing is validated twice.
//! It checks the framing the converters rely on (every length prefix fits its
//! enclosing document, every document and string ends in NUL, element types
//! are known) but not the content (UTF-8, binary subtypes), which the `bson`
//! crate still checks when it converts the (now shallow) document.
//!
//! The same walk counts what a body would become: its arguments and its
//! values at every level ([`check_shape`]). Each value becomes a `Bson` and
//! then a JS value, and every argument a stack slot of `emit.apply` in Node:
//! 60,000 arguments (≈ 480 KB, one chunked datagram) overflowed the JS stack
//! of every Node receiver, and a 16 MiB body of two-byte elements would have
//! become eight million values. Both are refused here, before any conversion.

use crate::error::{Malformed, WireError};

/// Deepest nesting of arrays/objects inside one emitted argument: what `emit`
/// accepts (a top-level argument that is an array or object is level 1) and
/// what a receiver delivers. Deeper bodies are refused as malformed.
pub const MAX_NESTING: usize = 100;

/// Documents levels of a `{payload: [...]}` body holding arguments nested
/// [`MAX_NESTING`] deep: the body itself, the `payload` array, then the
/// arguments' own levels.
pub const MAX_ARGS_BODY_LEVELS: usize = MAX_NESTING + 2;

/// Document levels of a `{payload: {...}}` body whose payload document is
/// delivered as one argument (itself level 1 of [`MAX_NESTING`]).
pub const MAX_DOCUMENT_BODY_LEVELS: usize = MAX_NESTING + 1;

/// Most arguments of one event: what `emit` sends and a receiver delivers.
/// Node's `emit.apply` with a rest-parameter listener overflows its default
/// stack near 60,000 arguments (fewer when called deeper); no real event
/// needs more than a handful, and a list belongs in one array argument.
pub const MAX_ARGS: usize = 4096;

/// Most values of one event, counting every array element and object property
/// at every level (a Buffer, TypedArray or string is one value). Bounds what a
/// receiver allocates converting one body (a `Bson` and a JS value each),
/// whatever the body's bytes: tiny elements would otherwise turn 16 MiB into
/// millions of values.
pub const MAX_VALUES: usize = 262_144;

/// What [`check_shape`] allows: nesting, and how many arguments and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Document levels, the checked document itself being level 1.
    pub max_levels: usize,
    /// Elements of the top-level document's own arrays/documents (the
    /// arguments, in a `{payload: [...]}` body).
    pub max_args: usize,
    /// Elements below the top level, at any depth.
    pub max_values: usize,
}

/// A `{payload: [...]}` emit body: [`MAX_ARGS_BODY_LEVELS`], [`MAX_ARGS`], [`MAX_VALUES`].
pub const ARGS_BODY: Shape = Shape { max_levels: MAX_ARGS_BODY_LEVELS, max_args: MAX_ARGS, max_values: MAX_VALUES };

/// A `{payload: {...}}` body (one argument): [`MAX_DOCUMENT_BODY_LEVELS`], [`MAX_VALUES`].
pub const DOCUMENT_BODY: Shape =
    Shape { max_levels: MAX_DOCUMENT_BODY_LEVELS, max_args: MAX_VALUES, max_values: MAX_VALUES };

fn malformed(what: &'static str) -> WireError {
    WireError::Malformed(Malformed::new(what))
}

/// Reads the little-endian `i32` length prefix at `at` as a size that must lie
/// in `min..=limit - at` (it must fit before `limit`).
fn len_at(bytes: &[u8], at: usize, limit: usize, min: usize, what: &'static str) -> Result<usize, WireError> {
    let raw = bytes
        .get(at..at + 4)
        .filter(|_| at + 4 <= limit)
        .ok_or_else(|| WireError::from(Malformed::new("truncated length").field(what)))?;
    let n = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let n = usize::try_from(n).map_err(|_| WireError::from(Malformed::new("negative length").field(what)))?;
    if n < min || n > limit - at {
        return Err(Malformed::new("length does not fit").field(what).value(n).into());
    }
    Ok(n)
}

/// End (exclusive) of a BSON string value (`i32 length, bytes, NUL`) at `at`.
fn string_end(bytes: &[u8], at: usize, limit: usize) -> Result<usize, WireError> {
    let n = len_at(bytes, at, limit, 1, "string")?;
    let end = at + 4 + n;
    if end > limit || bytes[end - 1] != 0 {
        return Err(malformed("string: not NUL-terminated within its document"));
    }
    Ok(end)
}

/// End (exclusive) of a cstring (key, regex part) at `at`, within `limit`.
fn cstring_end(bytes: &[u8], at: usize, limit: usize) -> Result<usize, WireError> {
    bytes
        .get(at..limit)
        .and_then(|s| s.iter().position(|&b| b == 0))
        .map(|n| at + n + 1)
        .ok_or_else(|| malformed("cstring: no NUL within its document"))
}

/// The open documents of [`check_nesting`], innermost last: on the stack up
/// to [`INLINE_LEVELS`] (every bound the codec uses), so checking a datagram
/// allocates nothing; deeper only for a caller's own larger bound.
struct Open {
    inline: [usize; INLINE_LEVELS],
    spill: Vec<usize>,
    len: usize,
}

/// Levels [`Open`] keeps without allocating.
const INLINE_LEVELS: usize = 128;
const _: () = assert!(MAX_ARGS_BODY_LEVELS <= INLINE_LEVELS && MAX_DOCUMENT_BODY_LEVELS <= INLINE_LEVELS);

impl Open {
    fn new() -> Self {
        Open { inline: [0; INLINE_LEVELS], spill: Vec::new(), len: 0 }
    }

    fn push(&mut self, end: usize) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = end,
            None => self.spill.push(end),
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        if self.len > INLINE_LEVELS {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }

    fn last(&self) -> Option<usize> {
        match self.len {
            0 => None,
            n if n > INLINE_LEVELS => self.spill.last().copied(),
            n => Some(self.inline[n - 1]),
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Checks that `bytes` is exactly one BSON document whose documents and
/// arrays (JavaScript-code-with-scope scopes included) nest at most
/// `max_levels` deep, counting `bytes` itself as level 1. Iterative, linear in
/// `bytes.len()`, and its memory is bounded by `max_levels`: a hostile
/// document nested a million levels deep is refused after reading its first
/// `max_levels` levels.
pub fn check_nesting(bytes: &[u8], max_levels: usize) -> Result<(), WireError> {
    check_shape(bytes, Shape { max_levels, max_args: usize::MAX, max_values: usize::MAX })
}

/// [`check_nesting`] with `shape.max_levels`, in the same single pass also
/// refusing a document with more than `shape.max_args` elements in the
/// containers of its top level or more than `shape.max_values` elements below
/// its top level ([`WireError::TooManyValues`]). Nothing is allocated.
pub fn check_shape(bytes: &[u8], shape: Shape) -> Result<(), WireError> {
    let max_levels = shape.max_levels;
    let (mut args, mut values) = (0usize, 0usize);
    let len = len_at(bytes, 0, bytes.len(), 5, "document")?;
    if len != bytes.len() || bytes[len - 1] != 0 {
        return Err(malformed("document: length does not match, or no terminating NUL"));
    }
    if max_levels == 0 {
        return Err(malformed("document nested deeper than allowed"));
    }
    // Offsets of the terminating NUL of each open document, innermost last.
    let mut open = Open::new();
    open.push(len - 1);
    let mut pos = 4;
    while let Some(end) = open.last() {
        if pos == end {
            // The terminator: the document is complete.
            open.pop();
            pos += 1;
            continue;
        }
        match open.len() {
            1 => {}
            2 => {
                args += 1;
                values += 1;
                if args > shape.max_args {
                    return Err(WireError::TooManyValues { what: "arguments", limit: shape.max_args });
                }
            }
            _ => values += 1,
        }
        if values > shape.max_values {
            return Err(WireError::TooManyValues { what: "values", limit: shape.max_values });
        }
        let ty = bytes[pos];
        pos = cstring_end(bytes, pos + 1, end)?;
        let fixed = |n: usize| if n <= end - pos { Ok(pos + n) } else { Err(malformed("value: truncated")) };
        pos = match ty {
            0x01 | 0x09 | 0x11 | 0x12 => fixed(8)?,
            0x02 | 0x0D | 0x0E => string_end(bytes, pos, end)?,
            0x03 | 0x04 => {
                let n = len_at(bytes, pos, end, 5, "document")?;
                if bytes[pos + n - 1] != 0 {
                    return Err(malformed("document: no terminating NUL"));
                }
                if open.len() >= max_levels {
                    return Err(Malformed::new("nested deeper than this many document levels")
                        .value(max_levels)
                        .into());
                }
                open.push(pos + n - 1);
                pos + 4
            }
            0x05 => {
                let n = len_at(bytes, pos, end, 0, "binary")?;
                if n + 1 > end - pos - 4 {
                    return Err(malformed("binary: truncated"));
                }
                pos + 4 + 1 + n
            }
            0x06 | 0x0A | 0x7F | 0xFF => pos,
            0x07 => fixed(12)?,
            0x08 => fixed(1)?,
            0x0B => cstring_end(bytes, cstring_end(bytes, pos, end)?, end)?,
            0x0C => {
                let s = string_end(bytes, pos, end)?;
                if 12 > end - s {
                    return Err(malformed("DBPointer: truncated"));
                }
                s + 12
            }
            0x0F => {
                // i32 total length, string (code), document (scope): the scope
                // is a document like any other, one level deeper.
                let total = len_at(bytes, pos, end, 4 + 5 + 5, "code with scope")?;
                let scope = string_end(bytes, pos + 4, pos + total)?;
                let n = len_at(bytes, scope, pos + total, 5, "scope")?;
                if scope + n != pos + total || bytes[scope + n - 1] != 0 {
                    return Err(malformed("code with scope: lengths disagree"));
                }
                if open.len() >= max_levels {
                    return Err(Malformed::new("nested deeper than this many document levels")
                        .value(max_levels)
                        .into());
                }
                open.push(scope + n - 1);
                scope + 4
            }
            0x10 => fixed(4)?,
            0x13 => fixed(16)?,
            other => return Err(Malformed::new("unknown element type").value(other).into()),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Bson};

    fn ok(b: &[u8], levels: usize) -> bool {
        check_nesting(b, levels).is_ok()
    }

    /// `{}` and `{a: {b: [1]}}` written out byte by byte (BSON 1.1).
    #[test]
    fn golden_bytes() {
        let empty = [5, 0, 0, 0, 0];
        assert!(ok(&empty, 1));
        assert!(!ok(&empty, 0));
        #[rustfmt::skip]
        let nested: &[u8] = &[
            28, 0, 0, 0,                     // {  (28 bytes)
              0x03, b'a', 0, 20, 0, 0, 0,    //   a: { (20 bytes)
                0x04, b'b', 0, 12, 0, 0, 0,  //     b: [ (12 bytes)
                  0x10, b'0', 0, 1, 0, 0, 0, //       0: int32 1
                0,                           //     ]
              0,                             //   }
            0,                               // }
        ];
        assert_eq!(nested, doc! {"a": {"b": [1]}}.to_vec().unwrap());
        assert!(ok(nested, 3));
        assert!(!ok(nested, 2));
        // Every strict prefix and every corruption of a length byte is refused
        // or still well-formed; none panics.
        for n in 0..nested.len() {
            assert!(!ok(&nested[..n], 10), "prefix {n}");
        }
        for (i, v) in [(7, 21u8), (7, 19), (14, 13), (14, 11), (14, 0xff), (17, 5), (3, 1)] {
            let mut b = nested.to_vec();
            b[i] = v;
            assert!(!ok(&b, 10), "byte {i} = {v}");
        }
        // Trailing garbage, unknown type, missing inner terminator.
        let mut b = nested.to_vec();
        b.push(0);
        assert!(!ok(&b, 10));
        let mut b = nested.to_vec();
        b[4] = 0x42;
        assert!(!ok(&b, 10));
        let mut b = nested.to_vec();
        b[25] = 1;
        assert!(!ok(&b, 10));
    }

    /// Code with scope: `{c: Code("x", {s: {}})}`; the scope is a level.
    #[test]
    fn code_with_scope_scope_is_a_level() {
        #[rustfmt::skip]
        let b: &[u8] = &[
            31, 0, 0, 0,
              0x0F, b'c', 0, 23, 0, 0, 0,    // c: code_w_s (23 bytes)
                2, 0, 0, 0, b'x', 0,         //   code "x"
                13, 0, 0, 0,                 //   scope { (13 bytes)
                  0x03, b's', 0, 5, 0, 0, 0, 0, //  s: {}
                0,                           //   }
            0,
        ];
        let scope =
            Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope { code: "x".into(), scope: doc! {"s": {}} });
        assert_eq!(b, doc! {"c": scope}.to_vec().unwrap());
        assert!(ok(b, 3));
        assert!(!ok(b, 2));
        let mut bad = b.to_vec();
        bad[7] = 24; // total length disagrees with string + scope
        assert!(!ok(&bad, 10));
    }

    #[test]
    fn every_element_type_the_bson_crate_writes_is_walked() {
        let d = doc! {
            "f": 1.5, "s": "str", "d": {"x": 1}, "a": [1, "two"],
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "u": Bson::Undefined, "oid": bson::oid::ObjectId::from_bytes([7; 12]), "t": true,
            "dt": bson::DateTime::from_millis(5), "n": Bson::Null,
            "re": bson::Regex { pattern: "a.c".try_into().unwrap(), options: "i".try_into().unwrap() },
            "js": Bson::JavaScriptCode("1".into()),
            "sym": Bson::Symbol("s".into()), "i": 3, "ts": bson::Timestamp { time: 1, increment: 2 },
            "l": 4i64, "dec": bson::Decimal128::from_bytes([0; 16]), "max": Bson::MaxKey, "min": Bson::MinKey,
        };
        let b = d.to_vec().unwrap();
        assert!(ok(&b, 2));
        assert!(!ok(&b, 1));
        for n in 0..b.len() {
            assert!(!ok(&b[..n], 10));
        }
        // DBPointer (no public constructor in the bson crate): `{p: DBPointer("c", oid)}`.
        let mut p = vec![26, 0, 0, 0, 0x0C, b'p', 0, 2, 0, 0, 0, b'c', 0];
        p.extend_from_slice(&[9; 12]);
        p.push(0);
        assert!(matches!(bson::Document::from_reader(&p[..]).unwrap().get("p"), Some(Bson::DbPointer(_))));
        assert!(ok(&p, 1));
        assert!(!ok(&p[..25], 1));
        p[7] = 3; // string length runs into the ObjectId: its NUL is not where it claims
        assert!(!ok(&p, 1));
    }

    /// A document nested `levels` deep, written iteratively.
    fn deep(levels: usize) -> Vec<u8> {
        // Each level: 4-byte length, then (except the innermost) element
        // `0x03 "0" 0` holding the next level, then the terminator.
        let mut b = Vec::with_capacity(levels * 8);
        for _ in 1..levels {
            b.extend_from_slice(&[0, 0, 0, 0, 0x03, b'0', 0]);
        }
        b.extend_from_slice(&[5, 0, 0, 0, 0]);
        for l in (0..levels - 1).rev() {
            b.push(0);
            let len = (b.len() - l * 7) as i32;
            b[l * 7..l * 7 + 4].copy_from_slice(&len.to_le_bytes());
        }
        b
    }

    /// Wraps `elements` (already encoded) in a document.
    fn wrap(elements: &[u8]) -> Vec<u8> {
        let mut b = ((elements.len() + 5) as i32).to_le_bytes().to_vec();
        b.extend_from_slice(elements);
        b.push(0);
        b
    }

    /// The walk is linear: 16 MiB (the largest reassembled message) of the
    /// most elements, the longest key, and the most open/close churn within
    /// the limit each take one pass, bounded in time.
    #[test]
    fn sixteen_mib_worst_cases_take_one_linear_pass() {
        const SIZE: usize = 16 << 20;
        let mut flat = Vec::with_capacity(SIZE);
        let mut i = 0usize;
        while flat.len() < SIZE - 16 {
            flat.push(0x0A);
            flat.extend_from_slice(i.to_string().as_bytes());
            flat.push(0);
            i += 1;
        }
        let mut long_key = vec![0x0A];
        long_key.resize(SIZE - 8, b'k');
        long_key.push(0);
        let subtree = deep(MAX_ARGS_BODY_LEVELS - 1);
        let mut churn = Vec::with_capacity(SIZE);
        while churn.len() < SIZE - subtree.len() - 16 {
            churn.extend_from_slice(&[0x03, b'd', 0]);
            churn.extend_from_slice(&subtree);
        }
        for (what, elements) in [("elements", flat), ("one key", long_key), ("open/close", churn)] {
            let doc = wrap(&elements);
            let t = std::time::Instant::now();
            assert!(ok(&doc, MAX_ARGS_BODY_LEVELS), "{what}");
            let took = t.elapsed();
            eprintln!("walk of {} bytes ({what}): {took:?}", doc.len());
            assert!(took < std::time::Duration::from_secs(3), "{what}: {took:?}");
        }
    }

    #[test]
    fn a_million_levels_are_refused_quickly_and_the_limit_is_exact() {
        for levels in [1, 2, 50, 101, 102] {
            let b = deep(levels);
            assert!(ok(&b, levels), "{levels}");
            assert!(!ok(&b, levels - 1), "{levels}");
        }
        // Converting this one would overflow the stack; walking it does not.
        let b = deep(1_000_000);
        let t = std::time::Instant::now();
        assert!(!ok(&b, MAX_ARGS_BODY_LEVELS));
        assert!(ok(&b, 1_000_000));
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
