//! Datagrams as a forging (or 0.1.x) peer writes them, for the hostile-input
//! simulator tests: one place for the meta they share.
#![allow(dead_code)] // each test file uses a different part

use eventcast_engine::wire::{self, Meta};

/// A peer's meta in 0.1.x's field order: chunk `seq` of `seq_len` of group
/// `seq_id`, event `name`, from instance `id` at 10.6.6.6:9000 ("evil"),
/// with message number `sn` when the peer numbers its messages.
pub fn meta(id: Option<&str>, seq_id: &str, name: &str, seq: i32, seq_len: i32, sn: Option<i64>) -> Meta {
    Meta {
        v: 3,
        seq,
        seq_len,
        seq_id: seq_id.to_owned(),
        seq_end: seq == seq_len - 1,
        name: Some(name.into()),
        host: Some("10.6.6.6".into()),
        port: Some(9000),
        hostname: Some("evil".into()),
        id: id.map(str::to_owned),
        time: Some("2024-01-01T00:00:00.000Z".into()),
        sn,
        ..Meta::default()
    }
}

/// The datagram of `meta` and `body`.
pub fn datagram(meta: &Meta, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode_datagram(meta, body, &mut out);
    out
}
