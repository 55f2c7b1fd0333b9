//! Authenticated scheme: keys are bound to the group (address and
//! port), so a datagram sealed in another group with the same passphrase is
//! refused (`rejected_decrypt`).

use bson::Bson;
use eventcast_engine::protocol::{Config, Encryption, Endpoint, Identity, Output};
use eventcast_engine::wire::secure::SecureKey;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

/// The unbound keys of one passphrase (few iterations: the tests are about
/// the binding, not the slow derivation).
fn master() -> &'static SecureKey {
    static K: OnceLock<SecureKey> = OnceLock::new();
    K.get_or_init(|| SecureKey::derive_with_iterations("same passphrase", 1000))
}

fn group(g: &str) -> SecureKey {
    master().for_group(g.parse::<SocketAddr>().unwrap())
}

fn config(key: SecureKey) -> Config {
    Config { encryption: Encryption::Secure(key), ..Config::default() }
}

fn ident(id: &str) -> Identity {
    Identity { id: id.into(), host: "10.0.0.1".into(), port: 41234, hostname: "h".into() }
}

fn names(e: &mut Endpoint) -> Vec<String> {
    std::iter::from_fn(|| e.poll_output())
        .filter_map(|o| if let Output::Event(ev) = o { Some(ev.name) } else { None })
        .collect()
}

#[test]
fn sealed_in_another_group_is_refused_by_the_codec() {
    let mut rng = rand::thread_rng();
    let here = group("239.1.2.3:41234");
    let sealed = here.seal(b"inner datagram", &mut rng);
    assert_eq!(here.open(&sealed).unwrap(), b"inner datagram");
    for other in ["239.1.2.3:41235", "239.1.2.4:41234", "224.0.0.1:41234"] {
        assert!(group(other).open(&sealed).is_err(), "{other}");
    }
    // Unbound keys (simulations) are a group of their own too.
    assert!(master().open(&sealed).is_err());
}

#[test]
fn sealed_in_another_group_is_refused_and_counted_by_the_engine() {
    let t0 = Instant::now();
    let w0 = SystemTime::now();
    let mut other = Endpoint::new(config(group("239.1.2.3:41235")), ident("00000000000000a1"), 1, t0, w0).unwrap();
    let mut same = Endpoint::new(config(group("239.1.2.3:41234")), ident("00000000000000a2"), 2, t0, w0).unwrap();
    let mut rx = Endpoint::new(config(group("239.1.2.3:41234")), ident("00000000000000b2"), 3, t0, w0).unwrap();
    // Large enough to be chunked: every chunk is sealed, every chunk is refused.
    other.emit(t0, w0, "foreign", &[Bson::String("x".repeat(5000))]).unwrap();
    same.emit(t0, w0, "ours", &[Bson::String("y".repeat(5000))]).unwrap();
    let src = "10.0.0.9:41234".parse().unwrap();
    let mut foreign = 0;
    while let Some(t) = other.poll_transmit() {
        foreign += 1;
        rx.handle_datagram(t0, src, &t.payload);
    }
    while let Some(t) = same.poll_transmit() {
        rx.handle_datagram(t0, src, &t.payload);
    }
    assert!(foreign > 1);
    assert_eq!(names(&mut rx), ["ours"]);
    assert_eq!(rx.stats().rejected_decrypt, foreign);
}
