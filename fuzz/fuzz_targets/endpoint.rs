//! Reassembly and repair: a sequence of datagrams and clock steps through an
//! `Endpoint` with small limits never panics, never holds more than its byte
//! limits, and only ever sends to the group.
//!
//! Input format: repeated `[op: u8][len: u16 LE][len bytes]`; odd `op`
//! advances the clock by `(op >> 1) * 10` ms and runs timers first.
#![no_main]
use eventcast_engine::protocol::{Config, Destination, Endpoint, Identity, Limits};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_message_size: 64 * 1024,
        max_partial_messages: 16,
        max_reassembly_bytes: 48 * 1024,
        max_retained_bytes: 48 * 1024,
        max_completed_ids: 512,
        ..Limits::default()
    };
    let config = Config { message_ttl: Duration::from_millis(300), limits: limits.clone(), ..Config::default() };
    let identity = Identity { id: "00000000000000aa".into(), host: "192.0.2.2".into(), port: 9000, hostname: "fuzz".into() };
    let mut ep = Endpoint::new(config, identity, 0, Instant::now(), SystemTime::now()).unwrap();
    let src: SocketAddr = "192.0.2.66:9000".parse().unwrap();
    let mut now = Instant::now();
    let mut rest = data;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = (u16::from_le_bytes([rest[1], rest[2]]) as usize).min(rest.len() - 3);
        let (dg, tail) = rest[3..].split_at(len);
        rest = tail;
        if op & 1 == 1 {
            now += Duration::from_millis(u64::from(op >> 1) * 10);
            ep.handle_timeout(now);
        }
        ep.handle_datagram(now, src, dg);
        while let Some(t) = ep.poll_transmit() {
            assert_eq!(t.destination, Destination::Group);
        }
        while ep.poll_output().is_some() {}
        let st = ep.stats();
        assert!(st.reassembly_bytes <= limits.max_reassembly_bytes as u64);
        assert!(st.retained_bytes <= limits.max_retained_bytes as u64);
    }
});
