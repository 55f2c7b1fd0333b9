//! JS ⇄ BSON conversion straight through Node-API (no JSON string in between).
//!
//! JS → BSON ([`ToBson`], writing the BSON bytes directly), following js-bson 0.2 as eventcast 0.1.x used it:
//!
//! | JS | BSON |
//! |----|------|
//! | string | string |
//! | number, whole, in int32 range (not `-0`) | int32 |
//! | number, whole, \|n\| ≤ 2^53 | int64 |
//! | any other number (fractions, `-0`, NaN, ±Infinity, \|n\| > 2^53) | double |
//! | BigInt in int64 range | int64 (out of range → `EPAYLOAD`) |
//! | boolean | boolean |
//! | null, undefined (also as object property values and array holes) | null |
//! | Array | array |
//! | Date | UTC datetime (an invalid Date → `EPAYLOAD`) |
//! | RegExp | regex; flags mapped by [`crate::wire::js_flags_to_bson_options`] (`g`→`s`, js-bson 0.2's quirk; `i`, `m`, `u` kept; others dropped) |
//! | Buffer, Uint8Array, any TypedArray, ArrayBuffer | binary subtype 0 (the raw bytes) |
//! | other objects | document of their own enumerable string-keyed properties |
//! | function, symbol, external, nesting deeper than [`MAX_DEPTH`] (circular) | `EPAYLOAD` |
//!
//! BSON → JS ([`to_js`]): int32/double → number; int64 → number when
//! \|n\| ≤ 2^53, else BigInt; datetime → Date; regex → RegExp (options
//! by [`crate::wire::bson_options_to_js_flags`]: `s`→`g`, `i`, `m`, `u`;
//! others dropped; a pattern JS rejects arrives as
//! `{$regex, $options}`); binary (any subtype) → Buffer; document → plain
//! object (its keys own data properties, `__proto__` too, as `JSON.parse` makes them);
//! array → array; null/undefined → null; ObjectId → 24-hex string;
//! Decimal128 → its decimal string; timestamp → `{t, i}`; symbol and
//! JavaScript code → string; code with scope → `{code, scope}`;
//! MinKey/MaxKey/DBPointer → null.

use crate::wire::args_writer::{ArgsWriter, Key};
use crate::wire::ArgsBody;
use bson::Bson;
use napi::sys;
use std::ffi::c_void;
use std::ptr;

/// Deepest nesting of arrays/objects accepted by `emit`; deeper (or circular)
/// → `EPAYLOAD`. The same bound receivers enforce ([`crate::wire::MAX_NESTING`]).
pub const MAX_DEPTH: usize = crate::wire::MAX_NESTING;

/// Why a conversion failed.
#[derive(Debug)]
pub enum ConvError {
    /// The value cannot be carried in BSON (`EPAYLOAD`).
    Payload(String),
    /// A JS exception is pending (a throwing getter, ...); let it propagate.
    Pending,
    /// A Node-API call failed.
    Napi(String),
}

type ConvResult<T> = Result<T, ConvError>;

fn check(env: sys::napi_env, status: sys::napi_status, what: &str) -> ConvResult<()> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    let mut pending = false;
    // SAFETY: `env` is the live env of the call being converted (see `raw.rs`,
    // rule 1); `pending` is a live bool Node-API writes.
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending {
        Err(ConvError::Pending)
    } else {
        Err(ConvError::Napi(format!("{what} failed (napi status {status})")))
    }
}

macro_rules! napi_check {
    ($env:expr, $call:expr, $what:literal) => {
        // SAFETY: every `ck!` is a Node-API call with the env of the call being
        // converted and values made in it (`raw.rs`, rules 1 and 2), writing to
        // locals of the type it writes (rule 3); pointer arithmetic in `$call`
        // carries its own SAFETY comment at the call site.
        check($env, unsafe { $call }, $what)?
    };
}

/// Converts JS values straight into BSON bytes within one Node-API call: the
/// values are handed to the wire's [`ArgsWriter`] while the JS values are
/// walked, with no intermediate `Bson` tree. This type only maps JS values
/// to the writer's kinds; the bytes, and the bounds receivers enforce
/// (arguments, values), are the wire layer's.
pub struct ToBson<'a> {
    env: sys::napi_env,
    regexp: sys::napi_value,
    out: ArgsWriter<'a>,
    /// A reusable buffer for object keys.
    name: Vec<u8>,
}

impl<'a> ToBson<'a> {
    /// A converter for `env` (must be called on the JS thread) appending a
    /// body to `out`.
    pub fn new(env: sys::napi_env, out: &'a mut Vec<u8>) -> Self {
        ToBson { env, regexp: ptr::null_mut(), out: ArgsWriter::new(out), name: Vec::new() }
    }

    /// Writes the body `{payload: [...]}` of the JS array `array` (emit arguments).
    /// On error, the buffer holds a partial document: discard it.
    pub fn body(mut self, array: sys::napi_value) -> ConvResult<ArgsBody<'a>> {
        let env = self.env;
        let mut is_array = false;
        napi_check!(env, sys::napi_is_array(env, array, &mut is_array), "napi_is_array");
        if !is_array {
            return Err(ConvError::Payload("emit arguments must be an array".into()));
        }
        let len = array_length(env, array)?;
        self.elements(len, |i| element(env, array, i), 0)?;
        self.out.finish().map_err(ConvError::from)
    }

    /// Writes the body `{payload: [...]}` of `values`, the emit arguments as
    /// they were passed to a call (no JS array in between).
    /// The bytes the buffer held before the body come back with it.
    pub fn body_of(mut self, values: &[sys::napi_value]) -> ConvResult<(&'a [u8], ArgsBody<'a>)> {
        self.elements(values.len(), |i| Ok(values[i]), 0)?;
        self.out.finish_after().map_err(ConvError::from)
    }

    /// Writes `len` elements, element `i` being `get(i)`, into the innermost
    /// open array (the arguments at `depth` 0).
    fn elements(
        &mut self,
        len: usize,
        mut get: impl FnMut(usize) -> ConvResult<sys::napi_value>,
        depth: usize,
    ) -> ConvResult<()> {
        for i in 0..len {
            let v = get(i)?;
            self.value(Key::Index(i), v, depth)?;
        }
        Ok(())
    }

    /// Writes one JS value as element `key`; `depth` counts enclosing arrays/objects.
    fn value(&mut self, key: Key<'_>, v: sys::napi_value, depth: usize) -> ConvResult<()> {
        let env = self.env;
        let mut ty = 0;
        napi_check!(env, sys::napi_typeof(env, v, &mut ty), "napi_typeof");
        match ty {
            sys::ValueType::napi_undefined | sys::ValueType::napi_null => self.out.null(key).map_err(ConvError::from),
            sys::ValueType::napi_boolean => {
                let mut b = false;
                napi_check!(env, sys::napi_get_value_bool(env, v, &mut b), "napi_get_value_bool");
                self.out.boolean(key, b).map_err(ConvError::from)
            }
            sys::ValueType::napi_number => {
                let mut n = 0f64;
                napi_check!(env, sys::napi_get_value_double(env, v, &mut n), "napi_get_value_double");
                self.out.number(key, n).map_err(ConvError::from)
            }
            sys::ValueType::napi_string => self.out.string_with(key, |out| append_js_string(env, v, out).map(|_| ())),
            sys::ValueType::napi_bigint => {
                let mut n = 0i64;
                let mut lossless = false;
                napi_check!(
                    env,
                    sys::napi_get_value_bigint_int64(env, v, &mut n, &mut lossless),
                    "napi_get_value_bigint_int64"
                );
                if !lossless {
                    return Err(ConvError::Payload("BigInt outside the int64 range".into()));
                }
                self.out.int64(key, n).map_err(ConvError::from)
            }
            sys::ValueType::napi_symbol => Err(ConvError::Payload("a Symbol cannot be sent".into())),
            sys::ValueType::napi_function => Err(ConvError::Payload("a function cannot be sent".into())),
            sys::ValueType::napi_object => self.object(key, v, depth),
            _ => Err(ConvError::Payload("this value type cannot be sent".into())),
        }
    }

    fn binary(&mut self, key: Key<'_>, data: *mut c_void, len: usize) -> ConvResult<()> {
        let bytes: &[u8] = if data.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: `data`/`len` were just reported by Node-API for a live
            // (Typed)ArrayBuffer of this call, and no JS runs between that and
            // this copy (nothing can detach or resize it meanwhile).
            unsafe { std::slice::from_raw_parts(data as *const u8, len) }
        };
        self.out.binary(key, bytes).map_err(ConvError::from)
    }

    fn object(&mut self, key: Key<'_>, v: sys::napi_value, depth: usize) -> ConvResult<()> {
        let env = self.env;
        if depth >= MAX_DEPTH {
            return Err(ConvError::Payload(format!("nesting deeper than {MAX_DEPTH} levels (circular structure?)")));
        }
        let mut yes = false;
        napi_check!(env, sys::napi_is_array(env, v, &mut yes), "napi_is_array");
        if yes {
            self.out.begin_array(key).map_err(ConvError::from)?;
            let len = array_length(env, v)?;
            self.elements(len, |i| element(env, v, i), depth + 1)?;
            return self.out.end().map_err(ConvError::from);
        }
        napi_check!(env, sys::napi_is_typedarray(env, v, &mut yes), "napi_is_typedarray");
        if yes {
            let (data, len) = typedarray_bytes(env, v)?;
            return self.binary(key, data, len);
        }
        napi_check!(env, sys::napi_is_date(env, v, &mut yes), "napi_is_date");
        if yes {
            let mut t = 0f64;
            napi_check!(env, sys::napi_get_date_value(env, v, &mut t), "napi_get_date_value");
            if !t.is_finite() {
                return Err(ConvError::Payload("an invalid Date cannot be sent".into()));
            }
            return self.out.date(key, t as i64).map_err(ConvError::from);
        }
        napi_check!(env, sys::napi_is_arraybuffer(env, v, &mut yes), "napi_is_arraybuffer");
        if yes {
            let mut data = ptr::null_mut();
            let mut len = 0usize;
            napi_check!(env, sys::napi_get_arraybuffer_info(env, v, &mut data, &mut len), "napi_get_arraybuffer_info");
            return self.binary(key, data, len);
        }
        if self.is_regexp(v)? {
            let source = self.string_property(v, c"source")?;
            let flags = self.string_property(v, c"flags")?;
            return self.out.regex(key, &source, &flags).map_err(ConvError::from);
        }
        // A plain (or class-instance) object: its own enumerable string keys.
        let mut keys = ptr::null_mut();
        napi_check!(
            env,
            sys::napi_get_all_property_names(
                env,
                v,
                sys::KeyCollectionMode::own_only,
                sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
                sys::KeyConversion::numbers_to_strings,
                &mut keys,
            ),
            "napi_get_all_property_names"
        );
        let len = array_length(env, keys)?;
        self.out.begin_document(key).map_err(ConvError::from)?;
        // The key buffer is taken while the fields are written (a nested
        // object gets a fresh one) and put back for the next object.
        let mut name = std::mem::take(&mut self.name);
        for i in 0..len {
            let k = element(env, keys, i)?;
            name.clear();
            append_js_string(env, k, &mut name)?;
            let mut val = ptr::null_mut();
            napi_check!(env, sys::napi_get_property(env, v, k, &mut val), "napi_get_property");
            // A key holding NUL is refused by the writer (`EPAYLOAD`).
            self.value(Key::Name(&name), val, depth + 1)?;
        }
        self.name = name;
        self.out.end().map_err(ConvError::from)
    }

    fn is_regexp(&mut self, v: sys::napi_value) -> ConvResult<bool> {
        let env = self.env;
        if self.regexp.is_null() {
            self.regexp = global(env, c"RegExp")?;
        }
        let mut yes = false;
        napi_check!(env, sys::napi_instanceof(env, v, self.regexp, &mut yes), "napi_instanceof");
        Ok(yes)
    }

    fn string_property(&mut self, v: sys::napi_value, name: &std::ffi::CStr) -> ConvResult<String> {
        let env = self.env;
        let mut p = ptr::null_mut();
        napi_check!(env, sys::napi_get_named_property(env, v, name.as_ptr(), &mut p), "napi_get_named_property");
        js_string(env, p)
    }
}

/// The wire's refusal of a value (`EPAYLOAD`) as a conversion error.
impl From<eventcast::Error> for ConvError {
    fn from(e: eventcast::Error) -> Self {
        match e {
            eventcast::Error::Payload(m) => ConvError::Payload(m),
            other => ConvError::Payload(other.to_string()),
        }
    }
}

/// The length of the JS array `array`.
fn array_length(env: sys::napi_env, array: sys::napi_value) -> ConvResult<usize> {
    let mut len = 0u32;
    napi_check!(env, sys::napi_get_array_length(env, array, &mut len), "napi_get_array_length");
    Ok(len as usize)
}

/// Element `i` of the JS array `array`.
fn element(env: sys::napi_env, array: sys::napi_value, i: usize) -> ConvResult<sys::napi_value> {
    let mut el = ptr::null_mut();
    napi_check!(env, sys::napi_get_element(env, array, i as u32, &mut el), "napi_get_element");
    Ok(el)
}

/// Appends a JS string's UTF-8 (lone surrogates become U+FFFD) to `out`, no
/// terminator; returns the number of bytes appended. One UTF-16 length query,
/// then one copy straight into `out` (at most 3 UTF-8 bytes per UTF-16 unit).
pub fn append_js_string(env: sys::napi_env, v: sys::napi_value, out: &mut Vec<u8>) -> ConvResult<usize> {
    let mut units = 0usize;
    napi_check!(
        env,
        sys::napi_get_value_string_utf16(env, v, ptr::null_mut(), 0, &mut units),
        "napi_get_value_string_utf16"
    );
    let room = units * 3 + 1;
    out.reserve(room);
    let at = out.len();
    let mut written = 0usize;
    // SAFETY: `reserve` made room for `room` bytes past `len`; Node-API writes at
    // most `room` bytes (including its NUL) and reports how many it wrote before it.
    napi_check!(
        env,
        sys::napi_get_value_string_utf8(env, v, out.as_mut_ptr().add(at).cast(), room, &mut written),
        "napi_get_value_string_utf8"
    );
    // SAFETY: Node-API initialised `written` bytes at `at` (within the reserved room).
    unsafe { out.set_len(at + written) };
    Ok(written)
}

/// Reads a JS string as UTF-8 (lone surrogates become U+FFFD).
pub fn js_string(env: sys::napi_env, v: sys::napi_value) -> ConvResult<String> {
    let mut len = 0usize;
    napi_check!(
        env,
        sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len),
        "napi_get_value_string_utf8"
    );
    let mut buf = vec![0u8; len + 1];
    let mut written = 0usize;
    napi_check!(
        env,
        sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), len + 1, &mut written),
        "napi_get_value_string_utf8"
    );
    buf.truncate(written);
    String::from_utf8(buf).map_err(|_| ConvError::Napi("string is not UTF-8".into()))
}

/// The data pointer and byte length of a TypedArray (Buffer, Uint8Array, ...).
fn typedarray_bytes(env: sys::napi_env, v: sys::napi_value) -> ConvResult<(*mut c_void, usize)> {
    let mut ty = 0;
    let mut len = 0usize;
    let mut data = ptr::null_mut();
    let mut ab = ptr::null_mut();
    let mut offset = 0usize;
    napi_check!(
        env,
        sys::napi_get_typedarray_info(env, v, &mut ty, &mut len, &mut data, &mut ab, &mut offset),
        "napi_get_typedarray_info"
    );
    use sys::TypedarrayType as T;
    let size = match ty {
        T::int8_array | T::uint8_array | T::uint8_clamped_array => 1,
        T::int16_array | T::uint16_array => 2,
        T::int32_array | T::uint32_array | T::float32_array => 4,
        T::float64_array | T::bigint64_array | T::biguint64_array => 8,
        _ => return Err(ConvError::Payload("unsupported TypedArray type".into())),
    };
    Ok((data, len * size))
}

fn global(env: sys::napi_env, name: &std::ffi::CStr) -> ConvResult<sys::napi_value> {
    let mut g = ptr::null_mut();
    napi_check!(env, sys::napi_get_global(env, &mut g), "napi_get_global");
    let mut v = ptr::null_mut();
    napi_check!(env, sys::napi_get_named_property(env, g, name.as_ptr(), &mut v), "napi_get_named_property");
    Ok(v)
}

/// Builds JS values from BSON on the JS thread.
///
/// The conversion recurses, so it only ever sees shallow values: received
/// bodies are refused above [`MAX_DEPTH`] levels by the iterative walk in
/// [`crate::wire::depth`] before they become `Bson`. It still keeps its own
/// count and refuses a deeper value (`EPAYLOAD`) instead of trusting that.
pub struct ToJs {
    env: sys::napi_env,
    regexp: sys::napi_value,
    /// Arrays/objects being converted, outermost first.
    depth: usize,
    /// `(arrayBuffer, offset, length) => Buffer`, or null: every Buffer its own copy.
    make_buffer: sys::napi_value,
    /// The shared ArrayBuffer small Buffers are made over, and how much of it is used.
    pool: Option<(sys::napi_value, *mut u8, usize)>,
}

/// Size of the ArrayBuffer small Buffers share (Node's `Buffer.poolSize`).
const POOL_SIZE: usize = 8 * 1024;

impl ToJs {
    /// A builder for `env` (must be called on the JS thread).
    pub fn new(env: sys::napi_env) -> Self {
        ToJs { env, regexp: ptr::null_mut(), depth: 0, make_buffer: ptr::null_mut(), pool: None }
    }

    /// A builder whose Buffers under 4 KiB share 8 KiB ArrayBuffers, as Node's
    /// `Buffer.from` does: `make_buffer(arrayBuffer, offset, length)` returns
    /// a Buffer over that part. A Buffer of its own costs a `malloc`, an
    /// ArrayBuffer and its backing-store bookkeeping: it was the largest
    /// single cost of a received small event.
    pub fn with_buffers(env: sys::napi_env, make_buffer: sys::napi_value) -> Self {
        ToJs { make_buffer, ..ToJs::new(env) }
    }

    /// Runs `f` one array/object level deeper, refusing more than
    /// `MAX_DEPTH + 1` levels (an arguments array and arguments nested `MAX_DEPTH` deep).
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> ConvResult<T>) -> ConvResult<T> {
        if self.depth > MAX_DEPTH {
            return Err(ConvError::Payload(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// A JS array of the converted values.
    pub fn array(&mut self, values: &[Bson]) -> ConvResult<sys::napi_value> {
        self.nested(|js| js.array_level(values))
    }

    fn array_level(&mut self, values: &[Bson]) -> ConvResult<sys::napi_value> {
        let env = self.env;
        let mut arr = ptr::null_mut();
        napi_check!(env, sys::napi_create_array_with_length(env, values.len(), &mut arr), "napi_create_array");
        for (i, v) in values.iter().enumerate() {
            let js = self.value(v)?;
            napi_check!(env, sys::napi_set_element(env, arr, i as u32, js), "napi_set_element");
        }
        Ok(arr)
    }

    /// A JS string.
    pub fn string(&mut self, s: &str) -> ConvResult<sys::napi_value> {
        let env = self.env;
        let mut out = ptr::null_mut();
        napi_check!(
            env,
            sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out),
            "napi_create_string_utf8"
        );
        Ok(out)
    }

    /// A JS number.
    pub fn number(&mut self, n: f64) -> ConvResult<sys::napi_value> {
        let env = self.env;
        let mut out = ptr::null_mut();
        napi_check!(env, sys::napi_create_double(env, n, &mut out), "napi_create_double");
        Ok(out)
    }

    fn null(&mut self) -> ConvResult<sys::napi_value> {
        let env = self.env;
        let mut out = ptr::null_mut();
        napi_check!(env, sys::napi_get_null(env, &mut out), "napi_get_null");
        Ok(out)
    }

    /// A JS object from `(key, value)` pairs.
    pub fn object<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a str, sys::napi_value)>,
    ) -> ConvResult<sys::napi_value> {
        let env = self.env;
        let mut obj = ptr::null_mut();
        napi_check!(env, sys::napi_create_object(env, &mut obj), "napi_create_object");
        for (k, v) in fields {
            let key = self.string(k)?;
            self.set_field(obj, k, key, v)?;
        }
        Ok(obj)
    }

    /// Makes `value` the own data property `name` (`key`, the same as a JS
    /// string) of the fresh object `obj`, as `JSON.parse` does. A plain
    /// assignment (`napi_set_property`) of `__proto__` runs
    /// `Object.prototype`'s setter instead: a received key would choose the
    /// object's prototype. Only that key takes the slower defining call.
    fn set_field(
        &mut self,
        obj: sys::napi_value,
        name: &str,
        key: sys::napi_value,
        value: sys::napi_value,
    ) -> ConvResult<()> {
        let env = self.env;
        if name != "__proto__" {
            napi_check!(env, sys::napi_set_property(env, obj, key, value), "napi_set_property");
            return Ok(());
        }
        let descriptor = sys::napi_property_descriptor {
            utf8name: ptr::null(),
            name: key,
            method: None,
            getter: None,
            setter: None,
            value,
            attributes: sys::PropertyAttributes::writable
                | sys::PropertyAttributes::enumerable
                | sys::PropertyAttributes::configurable,
            data: ptr::null_mut(),
        };
        // `descriptor` is one live local, read by Node-API during the call only.
        napi_check!(env, sys::napi_define_properties(env, obj, 1, &descriptor), "napi_define_properties");
        Ok(())
    }

    /// Converts one BSON value.
    pub fn value(&mut self, v: &Bson) -> ConvResult<sys::napi_value> {
        let env = self.env;
        let mut out = ptr::null_mut();
        match v {
            Bson::Double(n) => return self.number(*n),
            Bson::Int32(n) => return self.number(*n as f64),
            Bson::Int64(n) => {
                if n.unsigned_abs() <= 1u64 << 53 {
                    return self.number(*n as f64);
                }
                napi_check!(env, sys::napi_create_bigint_int64(env, *n, &mut out), "napi_create_bigint_int64");
            }
            Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => return self.string(s),
            Bson::Boolean(b) => {
                napi_check!(env, sys::napi_get_boolean(env, *b, &mut out), "napi_get_boolean");
            }
            Bson::Null | Bson::Undefined | Bson::MinKey | Bson::MaxKey | Bson::DbPointer(_) => return self.null(),
            Bson::Array(a) => return self.array(a),
            Bson::Document(d) => {
                napi_check!(env, sys::napi_create_object(env, &mut out), "napi_create_object");
                self.nested(|js| {
                    for (k, val) in d {
                        let key = js.string(k)?;
                        let v = js.value(val)?;
                        js.set_field(out, k, key, v)?;
                    }
                    Ok(())
                })?;
            }
            Bson::DateTime(dt) => {
                napi_check!(
                    env,
                    sys::napi_create_date(env, dt.timestamp_millis() as f64, &mut out),
                    "napi_create_date"
                );
            }
            Bson::Binary(b) => return self.buffer(&b.bytes),
            Bson::RegularExpression(re) => return self.regex(re.pattern.as_str(), re.options.as_str()),
            Bson::ObjectId(oid) => return self.string(&oid.to_hex()),
            Bson::Decimal128(d) => return self.string(&d.to_string()),
            Bson::Timestamp(ts) => {
                let t = self.number(ts.time as f64)?;
                let i = self.number(ts.increment as f64)?;
                return self.object([("t", t), ("i", i)]);
            }
            Bson::JavaScriptCodeWithScope(c) => {
                let code = self.string(&c.code)?;
                let scope = self.value(&Bson::Document(c.scope.clone()))?;
                return self.object([("code", code), ("scope", scope)]);
            }
        }
        Ok(out)
    }

    /// A Buffer holding a copy of `bytes`: over the shared ArrayBuffer when
    /// there is one ([`ToJs::with_buffers`]) and `bytes` is small.
    pub fn buffer(&mut self, bytes: &[u8]) -> ConvResult<sys::napi_value> {
        if !self.make_buffer.is_null() && bytes.len() < POOL_SIZE / 2 {
            return self.pooled_buffer(bytes);
        }
        let env = self.env;
        let mut out = ptr::null_mut();
        let mut data = ptr::null_mut();
        napi_check!(
            env,
            sys::napi_create_buffer_copy(env, bytes.len(), bytes.as_ptr().cast(), &mut data, &mut out),
            "napi_create_buffer_copy"
        );
        Ok(out)
    }

    fn pooled_buffer(&mut self, bytes: &[u8]) -> ConvResult<sys::napi_value> {
        let env = self.env;
        let (ab, data, used) = match self.pool {
            Some((ab, data, used)) if used + bytes.len() <= POOL_SIZE => (ab, data, used),
            _ => {
                let mut ab = ptr::null_mut();
                let mut data = ptr::null_mut();
                napi_check!(
                    env,
                    sys::napi_create_arraybuffer(env, POOL_SIZE, &mut data, &mut ab),
                    "napi_create_arraybuffer"
                );
                (ab, data.cast::<u8>(), 0)
            }
        };
        // SAFETY: `data` is the live backing store of `ab` (made in this call's
        // scope, never detached: only Buffers over it reach JS), `POOL_SIZE`
        // bytes long, and `used + bytes.len() <= POOL_SIZE` (checked above, or
        // `used` is 0 and `bytes.len() < POOL_SIZE / 2`).
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data.add(used), bytes.len()) };
        // The next one starts 8-aligned, as in Node's pool (aligned views stay possible).
        self.pool = Some((ab, data, (used + bytes.len() + 7) & !7));
        let mut args = [ab, ptr::null_mut(), ptr::null_mut()];
        napi_check!(env, sys::napi_create_uint32(env, used as u32, &mut args[1]), "napi_create_uint32");
        napi_check!(env, sys::napi_create_uint32(env, bytes.len() as u32, &mut args[2]), "napi_create_uint32");
        let mut undefined = ptr::null_mut();
        napi_check!(env, sys::napi_get_undefined(env, &mut undefined), "napi_get_undefined");
        let mut out = ptr::null_mut();
        napi_check!(
            env,
            sys::napi_call_function(env, undefined, self.make_buffer, args.len(), args.as_ptr(), &mut out),
            "napi_call_function"
        );
        Ok(out)
    }

    fn regex(&mut self, pattern: &str, options: &str) -> ConvResult<sys::napi_value> {
        let env = self.env;
        let flags = crate::wire::bson_options_to_js_flags(options);
        if self.regexp.is_null() {
            self.regexp = global(env, c"RegExp")?;
        }
        let args = [self.string(pattern)?, self.string(&flags)?];
        let mut out = ptr::null_mut();
        // SAFETY: live env and values of this call (`raw.rs`, rules 1 and 2);
        // `args` with its exact length, `out` a local slot (rule 3).
        let status = unsafe { sys::napi_new_instance(env, self.regexp, 2, args.as_ptr(), &mut out) };
        if status == sys::Status::napi_ok {
            return Ok(out);
        }
        // A pattern JS cannot compile (it came from the network): never throw, keep the data.
        let mut exc = ptr::null_mut();
        // SAFETY: live env (`raw.rs`, rule 1); `exc` a local slot (rule 3).
        unsafe { sys::napi_get_and_clear_last_exception(env, &mut exc) };
        let p = self.string(pattern)?;
        let o = self.string(options)?;
        self.object([("$regex", p), ("$options", o)])
    }
}
