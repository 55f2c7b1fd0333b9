//! Hostile sizes in values: one event with tens of thousands of arguments, or
//! a body of millions of tiny values. Before the bound, a chunked plaintext
//! event with 60,000 arguments (≈ 480 KB) reached every Node receiver, whose
//! `emit.apply` overflowed the JS stack (`RangeError`, uncaught: the process
//! exited). Now the wire's walk refuses more than `MAX_ARGS` arguments or
//! `MAX_VALUES` values before any conversion, on every path (UDP, NATS, the
//! Rust API, the CLI all go through `Endpoint::handle_datagram`), counts it
//! in `rejected_too_many_values`, and `emit` refuses to send such an event.

use bson::{doc, Bson};
use eventcast_engine::protocol::{Config, Endpoint, Identity, Output};
use eventcast_engine::wire::{self, ArgsBody, Payload, MAX_ARGS, MAX_VALUES};
use eventcast_engine::{Error, WireError};
use std::time::{Duration, Instant, SystemTime};

fn args_body(args: Vec<Bson>) -> Vec<u8> {
    doc! {"payload": args}.to_vec().unwrap()
}

fn nulls(n: usize) -> Vec<Bson> {
    vec![Bson::Null; n]
}

fn too_many(r: Result<Payload, WireError>) -> Option<&'static str> {
    match r {
        Err(WireError::TooManyValues { what, .. }) => Some(what),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => None,
    }
}

#[test]
fn the_bounds_are_exact_for_arguments_and_values() {
    assert_eq!(too_many(wire::decode_body(&args_body(nulls(MAX_ARGS)))), None);
    assert_eq!(too_many(wire::decode_body(&args_body(nulls(MAX_ARGS + 1)))), Some("arguments"));
    // One argument holding MAX_VALUES - 1 values: MAX_VALUES in all.
    let within = args_body(vec![Bson::Array(nulls(MAX_VALUES - 1))]);
    assert_eq!(too_many(wire::decode_body(&within)), None);
    let over = args_body(vec![Bson::Array(nulls(MAX_VALUES))]);
    assert_eq!(too_many(wire::decode_body(&over)), Some("values"));
    // Deeper and spread over several arguments, object properties count too.
    let spread: Vec<Bson> =
        (0..4).map(|_| Bson::Document(doc! {"a": nulls(MAX_VALUES / 8), "b": nulls(MAX_VALUES / 8)})).collect();
    assert_eq!(too_many(wire::decode_body(&args_body(spread))), Some("values"));
    // A `{payload: {...}}` body (one argument) is bounded in values as well.
    let doc_body = wire::encode_document_body(&doc! {"k": nulls(MAX_VALUES)});
    assert_eq!(too_many(wire::decode_body(&doc_body)), Some("values"));
    let doc_body = wire::encode_document_body(&doc! {"k": nulls(1000)});
    assert_eq!(too_many(wire::decode_body(&doc_body)), None);
    assert_eq!(WireError::TooManyValues { what: "arguments", limit: MAX_ARGS }.code(), "ETOOMANYVALUES");
}

/// 16 MiB of two-byte elements (type `null`, empty key) would be eight
/// million values: refused after reading the first `MAX_VALUES` of them.
#[test]
fn sixteen_mib_of_tiny_values_is_refused_early() {
    /// A document of the given encoded elements.
    fn document(elements: &[u8]) -> Vec<u8> {
        let mut d = ((elements.len() + 5) as i32).to_le_bytes().to_vec();
        d.extend_from_slice(elements);
        d.push(0);
        d
    }
    let n = 8 << 20;
    let inner = document(&[0x0A, 0].repeat(n));
    // {payload: [ null × 8 Mi ]}: refused at the first argument over the bound.
    let mut elements = b"\x04payload\0".to_vec();
    elements.extend_from_slice(&inner);
    assert_eq!(too_many(wire::decode_body(&document(&elements))), Some("arguments"));
    // {payload: [[ null × 8 Mi ]]}: one argument, refused at the first value over the bound.
    let mut arg = vec![0x04, b'0', 0];
    arg.extend_from_slice(&inner);
    let mut elements = b"\x04payload\0".to_vec();
    elements.extend_from_slice(&document(&arg));
    let body = document(&elements);
    assert!(body.len() > 16 << 20);
    assert_eq!(too_many(wire::decode_body(&body)), Some("values"));
}

fn ident(id: &str) -> Identity {
    Identity { id: id.into(), host: "10.0.0.1".into(), port: 9000, hostname: "h".into() }
}

/// Sends `body` as event `name` from an attacker endpoint (`Endpoint::emit_encoded`
/// writes it unchecked), chunked at `max_payload_size`, between two real
/// events; returns the receiver's events and its stats.
fn through_engine(body: &[u8], max_payload_size: usize) -> (Vec<(String, usize)>, eventcast_engine::protocol::Stats) {
    let t0 = Instant::now();
    let w0 = SystemTime::now();
    let config = Config { max_payload_size, ..Config::default() };
    let mut tx = Endpoint::new(config.clone(), ident("00000000000000a1"), 1, t0, w0).unwrap();
    let mut rx = Endpoint::new(config, ident("00000000000000b2"), 2, t0, w0).unwrap();
    tx.emit(t0, w0, "before", &[Bson::Int32(1)]).unwrap();
    tx.emit_encoded(t0, w0, "nobody-listens", body).unwrap();
    tx.emit(t0, w0, "after", &[Bson::Int32(2)]).unwrap();
    let src = "10.0.0.9:9000".parse().unwrap();
    let mut k = 0u64;
    while let Some(t) = tx.poll_transmit() {
        k += 1;
        rx.handle_datagram(t0 + Duration::from_micros(k), src, &t.payload);
    }
    let mut events = Vec::new();
    while let Some(o) = rx.poll_output() {
        if let Output::Event(e) = o {
            events.push((e.name, e.args.len()));
        }
    }
    (events, rx.stats().clone())
}

#[test]
fn sixty_thousand_arguments_chunked_through_the_engine_are_refused_and_counted() {
    let attack = args_body(vec![Bson::Int32(7); 60_000]);
    eprintln!("60,000 arguments: {} bytes", attack.len());
    let (events, stats) = through_engine(&attack, 1024);
    assert_eq!(events, [("before".to_owned(), 1), ("after".to_owned(), 1)]);
    assert_eq!(stats.rejected_too_many_values, 1);
    assert_eq!(stats.rejected_malformed, 0);
    // The most arguments an event may carry still arrive, all of them.
    let (events, stats) = through_engine(&args_body(vec![Bson::Int32(7); MAX_ARGS]), 1024);
    assert_eq!(events[1], ("nobody-listens".to_owned(), MAX_ARGS));
    assert_eq!(stats.rejected_too_many_values, 0);
}

#[test]
fn emit_refuses_what_receivers_refuse() {
    let t0 = Instant::now();
    let w0 = SystemTime::now();
    let mut tx = Endpoint::new(Config::default(), ident("00000000000000a1"), 1, t0, w0).unwrap();
    let payload = |r: Result<(), Error>| match r {
        Err(e @ Error::Payload(_)) => {
            assert_eq!(e.code(), "EPAYLOAD");
            Some(e.to_string())
        }
        Err(e) => panic!("{e}"),
        Ok(()) => None,
    };
    assert_eq!(payload(tx.emit(t0, w0, "e", &nulls(MAX_ARGS))), None);
    let msg = payload(tx.emit(t0, w0, "e", &nulls(MAX_ARGS + 1))).unwrap();
    assert!(msg.contains("arguments") && msg.contains(&MAX_ARGS.to_string()), "{msg}");
    assert_eq!(payload(tx.emit(t0, w0, "e", &[Bson::Array(nulls(MAX_VALUES - 1))])), None);
    let msg = payload(tx.emit(t0, w0, "e", &[Bson::Array(nulls(MAX_VALUES))])).unwrap();
    assert!(msg.contains("values"), "{msg}");
    assert!(wire::try_encode_args(&nulls(MAX_ARGS + 1)).is_err());
    // Bodies encoded elsewhere (`Eventcast::emit_encoded` checks them with `ArgsBody::check`).
    assert!(ArgsBody::check(&args_body(nulls(MAX_ARGS))).is_ok());
    assert!(matches!(ArgsBody::check(&args_body(nulls(MAX_ARGS + 1))), Err(Error::Payload(_))));
    assert!(matches!(ArgsBody::check(&args_body(vec![Bson::Array(nulls(MAX_VALUES))])), Err(Error::Payload(_))));
}
