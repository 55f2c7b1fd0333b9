//! Lab-sized runs in simulation (the multi-host lab's workloads):
//! 10,000 small events and 50 messages of 1 MiB, one sender, two receivers.
//! Ignored by default (slow in debug builds): `cargo test --test sim_lab -- --ignored`.

use bson::Bson;
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::Config;
use std::time::Duration;

fn run(loss: f64, seed: u64, n: i32, size: usize, per_ms: i32) -> (Vec<usize>, Vec<u64>) {
    let mut net = Network::new(seed);
    let a = net.add_endpoint(Config::default());
    let rs: Vec<usize> = (0..2).map(|_| net.add_endpoint(Config::default())).collect();
    net.set_loss(loss);
    for i in 0..n {
        let arg = if size > 0 { Bson::String("p".repeat(size)) } else { Bson::Int32(i) };
        net.emit(a, "e", &[Bson::Int32(i), arg]).unwrap();
        if i % per_ms == per_ms - 1 {
            net.run_for(Duration::from_millis(1));
        }
    }
    assert!(net.run_until_idle());
    let delivered = rs
        .iter()
        .map(|&r| {
            let mut got: Vec<i32> = net.events(r).iter().map(|e| e.args[0].as_i32().unwrap()).collect();
            got.sort();
            got.dedup();
            assert_eq!(got.len(), net.events(r).len(), "duplicates delivered");
            got.len()
        })
        .collect();
    let gaps = rs.iter().map(|&r| net.node(r).gaps.iter().map(|g| g.1).sum()).collect();
    for &r in &rs {
        eprintln!("loss {loss} receiver {r}: {:?}", net.stats(r));
    }
    eprintln!("sender: {:?}", net.stats(a));
    (delivered, gaps)
}

#[test]
#[ignore = "slow in a debug build; the network lab runs this workload for real: cargo test --release --test sim_lab -- --ignored"]
fn lab_small_events() {
    for loss in [0.0, 0.05, 0.10, 0.30] {
        let (d, g) = run(loss, 100, 10_000, 0, 10);
        eprintln!("small events loss {loss}: delivered {d:?} gaps {g:?}");
        for (d, g) in d.iter().zip(&g) {
            assert_eq!(*d as u64 + g, 10_000, "every undelivered event is reported");
            if loss <= 0.10 {
                assert_eq!(*d, 10_000);
            } else {
                assert!(*d >= 9_900);
            }
        }
    }
}

#[test]
#[ignore = "slow in a debug build; the network lab runs this workload for real: cargo test --release --test sim_lab -- --ignored"]
fn lab_big_messages() {
    for loss in [0.0, 0.10, 0.30] {
        let (d, g) = run(loss, 101, 50, 1 << 20, 1);
        eprintln!("1 MiB messages loss {loss}: delivered {d:?} gaps {g:?}");
        for (d, g) in d.iter().zip(&g) {
            assert_eq!(*d as u64 + g, 50);
            if loss <= 0.10 {
                assert_eq!(*d, 50);
            } else {
                assert!(*d >= 49);
            }
        }
    }
}
