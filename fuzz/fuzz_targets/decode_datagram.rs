//! Datagram decoding: any bytes → `decode_datagram` and `decode_body` never
//! panic, and a decoded datagram re-encodes to one that decodes the same.
#![no_main]
use eventcast_engine::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::split_datagram(data);
    if let Ok(dg) = wire::decode_datagram(data) {
        let _ = wire::decode_body(dg.body);
        let _ = wire::decode_body_raw(dg.body);
        let mut again = Vec::new();
        if wire::try_encode_datagram(&dg.meta, dg.body, &mut again).is_ok() {
            let back = wire::decode_datagram(&again).expect("a re-encoded datagram decodes");
            assert_eq!(back.meta, dg.meta);
            assert_eq!(back.body, dg.body);
        }
    }
});
