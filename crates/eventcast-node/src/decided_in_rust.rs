//! What Rust decides and JS reads, so that no JS copy can drift from it.
//!
//! `index.js` used to re-derive the advertised host from
//! `os.networkInterfaces()`, ignoring `address` and `multicastInterface`, so
//! `getAddress()` could disagree with the `meta.host` every datagram carries.
//! It now asks the node. Likewise `lib/options.js` kept its own option
//! bounds (its `messageTtl` limit was not Rust's); it now reads Rust's
//! option table, and `index.js` the protocol version.

use super::node::NativeEventcast;
use napi_derive::napi;

/// `{host, port}` as `getAddress()` returns it (0.1.x's shape).
#[napi(object)]
pub struct NativeAddress {
    /// IP address: dotted IPv4, or IPv6 (for an IPv6 group) without brackets or zone.
    pub host: String,
    /// UDP port (multicast) or the port naming the subject (NATS).
    pub port: u32,
}

#[napi]
impl NativeEventcast {
    /// The `host:port` written into our datagrams' meta (see
    /// [`crate::Eventcast::advertised_addr`]): what peers see, started or not.
    #[napi(js_name = "advertisedAddress")]
    pub fn advertised_address(&self) -> NativeAddress {
        let addr = self.node.advertised_addr();
        NativeAddress { host: addr.ip().to_string(), port: u32::from(addr.port()) }
    }
}

/// One entry of [`eventcast::OPTION_TABLE`] for JS.
#[napi(object)]
pub struct NativeOptionSpec {
    /// The option's name as the JS API spells it.
    pub name: String,
    /// The default as JSON, when it is a value.
    pub default_json: Option<String>,
    /// How the docs say the default when it is not a value, or a gloss; may be empty.
    pub default_note: String,
    /// Smallest value accepted (numeric options).
    pub min: Option<f64>,
    /// Largest value accepted (numeric options).
    pub max: Option<f64>,
    /// What it does.
    pub meaning: String,
}

/// Every option of the JS API, Rust's table: `lib/options.js` takes its
/// defaults and bounds from it, the README's options table is generated from it.
#[napi(js_name = "optionTable")]
pub fn option_table() -> Vec<NativeOptionSpec> {
    eventcast::OPTION_TABLE
        .iter()
        .map(|s| NativeOptionSpec {
            name: s.name.to_string(),
            default_json: s.default_json.map(str::to_string),
            default_note: s.default_note.to_string(),
            // Every bound is far below 2^53: exact as a JS number.
            min: s.bound.map(|b| b.min as f64),
            max: s.bound.map(|b| b.max as f64),
            meaning: s.meaning.to_string(),
        })
        .collect()
}

/// One entry of [`eventcast::OPTION_BOUNDS`] for JS: `{option, min, max}`, inclusive.
#[napi(object)]
pub struct NativeOptionBound {
    /// The option's name as the JS API spells it.
    pub option: String,
    /// Smallest value accepted.
    pub min: f64,
    /// Largest value accepted.
    pub max: f64,
}

/// The bounds the native side checks too (the table's bounded options but
/// the REPL's, which only the JS face has).
#[napi(js_name = "optionBounds")]
pub fn option_bounds() -> Vec<NativeOptionBound> {
    eventcast::OPTION_BOUNDS
        .iter()
        .map(|b| NativeOptionBound { option: b.option.to_string(), min: b.min as f64, max: b.max as f64 })
        .collect()
}

/// The wire protocol version this build speaks (0.1.x's is 3).
#[napi(js_name = "protocolVersion")]
pub fn protocol_version() -> i32 {
    crate::wire::PROTOCOL_VERSION
}

/// The presence bounds `lib/options.js` checks before Rust does (Rust checks
/// them again): `{ nameMaxBytes, metaMaxBytes }`.
#[napi(object)]
pub struct NativePresenceLimits {
    /// Longest advertised `name`, in UTF-8 bytes.
    pub name_max_bytes: u32,
    /// Largest `meta`, as encoded BSON.
    pub meta_max_bytes: u32,
}

/// The presence bounds (`wire::beacon`).
#[napi(js_name = "presenceLimits")]
pub fn presence_limits() -> NativePresenceLimits {
    NativePresenceLimits {
        name_max_bytes: eventcast::wire::beacon::MAX_NAME_BYTES as u32,
        meta_max_bytes: eventcast::wire::beacon::MAX_META_BYTES as u32,
    }
}

/// The tokens of an event-name pattern (`['orders', '*', 'created']`), or a
/// `TypeError` with code `EPATTERN` saying which rule it breaks: the one
/// parser ([`eventcast::Pattern::parse`]), so `onPattern` accepts exactly what
/// `Eventcast::subscribe_pattern` and `eventcast listen --pattern` accept.
/// JS matches names with these tokens itself (`lib/patterns.js`): a call into
/// Rust per event would cost more than the match.
#[napi(js_name = "patternTokens")]
pub fn pattern_tokens(env: napi::Env, pattern: String) -> napi::Result<Vec<String>> {
    match eventcast::Pattern::parse(&pattern) {
        Ok(p) => Ok(p.tokens().map(str::to_string).collect()),
        Err(e) => Err(crate::throw(crate::raw::JsEnv::of(&env), true, e.code(), &e.to_string())),
    }
}
