//! What Rust decides and JS reads, so that no JS copy can drift from it.
//!
//! `index.js` used to re-derive the advertised host from
//! `os.networkInterfaces()`, ignoring `address` and `multicastInterface`, so
//! `getAddress()` could disagree with the `meta.host` every datagram carries.
//! It now asks the node. Likewise `lib/options.js` kept its own option
//! bounds (its `messageTtl` limit was not Rust's); it now reads Rust's table.

use super::node::NativeEventcast;
use napi_derive::napi;

/// `{host, port}` as `getAddress()` returns it (0.1.x's shape).
#[napi(object)]
pub struct NativeAddress {
    /// IPv4 address in dotted form.
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

/// The bounds of the numeric options, Rust's table: `lib/options.js` checks
/// these instead of keeping its own numbers.
#[napi(js_name = "optionBounds")]
pub fn option_bounds() -> Vec<NativeOptionBound> {
    eventcast::OPTION_BOUNDS
        .iter()
        // Every bound is far below 2^53: exact as a JS number.
        .map(|b| NativeOptionBound { option: b.option.to_string(), min: b.min as f64, max: b.max as f64 })
        .collect()
}
