//! The engine's wall clock: given at construction (the driver passes
//! `SystemTime::now()`, these tests a fixed time), never a silent 1970, and a
//! clock before 1970 is an error with a code (`ECLOCK`).
//!
//! (An endpoint once had no wall clock until `set_wall_clock`, and
//! one never given it stamped its repair requests with 1970-01-01, which
//! secure peers drop as replays. These tests need the new constructor, so
//! they cannot run against the old code.)

use bson::Bson;
use eventcast_engine::protocol::timefmt::parse_iso;
use eventcast_engine::protocol::{Config, Endpoint, Identity};
use eventcast_engine::wire::{self, RETX_EVENT};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A fixed wall clock: 2025-06-15T15:06:40Z.
const WALL: Duration = Duration::from_millis(1_750_000_000_000);

fn ident(id: &str) -> Identity {
    Identity { id: id.into(), host: "10.0.0.1".into(), port: 9000, hostname: "h".into() }
}

fn src() -> SocketAddr {
    "10.0.0.1:9000".parse().unwrap()
}

fn before_1970() -> SystemTime {
    UNIX_EPOCH - Duration::from_secs(1)
}

#[test]
fn a_wall_clock_before_1970_is_an_eclock_error_not_a_silent_zero() {
    let t0 = Instant::now();
    let Err(err) = Endpoint::new(Config::default(), ident("00000000000000a1"), 1, t0, before_1970()) else {
        panic!("a wall clock before 1970 was accepted")
    };
    assert_eq!(err.code(), "ECLOCK", "{err}");
    // 1970 itself is fine (the format can say it).
    assert!(Endpoint::new(Config::default(), ident("00000000000000a1"), 1, t0, UNIX_EPOCH).is_ok());

    let mut e = Endpoint::new(Config::default(), ident("00000000000000a1"), 1, t0, UNIX_EPOCH + WALL).unwrap();
    // Re-anchoring to a clock set back before 1970 is refused; the anchor stays.
    assert_eq!(e.set_wall_clock(t0, before_1970()).unwrap_err().code(), "ECLOCK");
    // An emit with such a clock is refused before the message is numbered.
    let err = e.emit(t0, before_1970(), "x", &[Bson::Int32(1)]).unwrap_err();
    assert_eq!(err.code(), "ECLOCK");
    assert!(e.poll_transmit().is_none(), "nothing was sent");
    e.emit(t0, UNIX_EPOCH + WALL, "x", &[Bson::Int32(1)]).unwrap();
    let sent = e.poll_transmit().unwrap();
    let dg = wire::decode_datagram(&sent.payload).unwrap();
    assert_eq!(dg.meta.sn, Some(1), "the refused emit consumed no sn");
    assert_eq!(dg.meta.time.as_deref(), Some("2025-06-15T15:06:40.000Z"));
}

#[test]
fn a_listen_only_endpoint_stamps_its_repair_requests_with_the_wall_clock_it_was_built_with() {
    let t0 = Instant::now();
    let wall = UNIX_EPOCH + WALL;
    let mut tx = Endpoint::new(Config::default(), ident("00000000000000a1"), 1, t0, wall).unwrap();
    // The receiver never emits, and nobody calls set_wall_clock on it.
    let mut rx = Endpoint::new(Config::default(), ident("00000000000000b2"), 2, t0, wall).unwrap();
    for i in 1..=3 {
        tx.emit(t0, wall, "n", &[Bson::Int32(i)]).unwrap();
    }
    let sent: Vec<_> = std::iter::from_fn(|| tx.poll_transmit()).collect();
    assert_eq!(sent.len(), 3);
    // The second message is lost: the receiver must ask for it.
    rx.handle_datagram(t0, src(), &sent[0].payload);
    rx.handle_datagram(t0, src(), &sent[2].payload);
    let mut now = t0;
    let mut request = None;
    for _ in 0..100 {
        let Some(next) = rx.poll_timeout() else { break };
        now = now.max(next);
        rx.handle_timeout(now);
        if let Some(t) = std::iter::from_fn(|| rx.poll_transmit())
            .find(|t| wire::decode_datagram(&t.payload).unwrap().meta.name.as_deref() == Some(RETX_EVENT))
        {
            request = Some(t);
            break;
        }
    }
    let request = request.expect("a repair request for the lost message");
    let meta = wire::decode_datagram(&request.payload).unwrap().meta;
    let stamped = parse_iso(meta.time.as_deref().unwrap()).unwrap();
    // Stamped with the construction clock plus the (virtual) time elapsed: not 1970.
    let expected = wall + (now - t0);
    let off = stamped.duration_since(expected).unwrap_or_else(|e| e.duration());
    assert!(off <= Duration::from_millis(1), "stamped {:?}, expected {expected:?}", meta.time);
}
