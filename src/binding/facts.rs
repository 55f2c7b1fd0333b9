//! What Rust decides and JS reads, so that no JS copy can drift from it.
//!
//! `index.js` used to re-derive the advertised host from
//! `os.networkInterfaces()`, ignoring `address` and `multicastInterface`, so
//! `getAddress()` could disagree with the `meta.host` every datagram carries.
//! It now asks the node.

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
