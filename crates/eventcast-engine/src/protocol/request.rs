//! The repair request as the engine uses it. Its document (fields, parse,
//! emit, the identifier and number rules) is [`crate::wire::retx`]'s; what
//! stays here is protocol policy: how many items one request carries.

pub use crate::wire::retx::RepairRequest;

/// At most this many chunk indexes or message numbers travel in one request,
/// so a request fits one datagram at the default `maxPayloadSize`.
pub const MAX_ITEMS_PER_REQUEST: usize = 64;

// A receiver reads every item a sender of ours puts in a request, and the
// wire keeps `missedSn` entries in exactly the range of `Sn`.
const _: () = assert!(MAX_ITEMS_PER_REQUEST <= crate::wire::retx::MAX_ITEMS_READ);
const _: () = assert!(super::MAX_SN == crate::wire::integers::MAX_SAFE_INTEGER);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_keeps_every_message_number() {
        let r = RepairRequest::from_document(
            &bson::doc! { "id": "a1b2c3d4e5f60718", "missedSn": [super::super::MAX_SN, super::super::MAX_SN + 1] },
        );
        assert_eq!(r.unwrap().missed_sn, vec![super::super::MAX_SN]);
    }
}
