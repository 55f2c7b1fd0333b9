//! One-way latency through the public API: a sender node emits events carrying
//! their send time at a fixed rate; a receiver node (same process, own thread
//! and runtime) measures arrival minus send time. Prints p50/p99/max.
//!
//! `scripts/netns-run.sh cargo run --release --example latency -- [COUNT] [RATE]`

use bson::Bson;
use eventcast::{Eventcast, Notification, Options};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5000);
    let rate: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000.0);
    let mut options = Options::with_port(47_002);
    options.multicast_membership = "239.255.47.2".parse()?;
    let epoch = Instant::now();

    let receiver = Eventcast::new(options.clone())?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rx_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut events = receiver.subscribe();
            receiver.start().await.unwrap();
            ready_tx.send(()).unwrap();
            let mut lat = Vec::with_capacity(count);
            while lat.len() < count {
                match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
                    Ok(Some(Notification::Event(e))) => {
                        let now = epoch.elapsed().as_nanos() as i64;
                        if let Some(Bson::Int64(sent)) = e.args.first() {
                            lat.push(now - sent);
                        }
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            receiver.stop().await.unwrap();
            lat
        })
    });
    ready_rx.recv()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let sender = Eventcast::new(options)?;
    rt.block_on(sender.start())?;
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        sender.emit("lat", &[Bson::Int64(epoch.elapsed().as_nanos() as i64), Bson::String("x".repeat(48))])?;
    }
    let mut lat = rx_thread.join().unwrap();
    rt.block_on(sender.stop())?;
    lat.sort_unstable();
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1e6
    };
    println!(
        "{} of {count} events at {rate}/s: latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        lat.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    Ok(())
}
