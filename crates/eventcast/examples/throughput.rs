//! Rust → Rust throughput through the public API: one sender node and one
//! receiver node (same host and port, separate runtimes and threads) exchange
//! small events; prints events/s and loss.
//!
//! `scripts/netns-run.sh cargo run --release --example throughput -- [COUNT] [PAYLOAD_BYTES] [RATE]`
//! (RATE in events/s; 0 = as fast as possible).

use bson::Bson;
use eventcast::{Eventcast, Notification, Options};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200_000);
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let rate: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0.0);
    let mut options = Options::with_port(47_001);
    options.multicast_membership = "239.255.47.1".parse()?;

    // Receiver on its own current-thread runtime in its own OS thread.
    let receiver = Eventcast::new(options.clone())?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rx_node = receiver.clone();
    let rx_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut events = rx_node.subscribe();
            rx_node.start().await.unwrap();
            ready_tx.send(()).unwrap();
            let mut got = 0u64;
            let mut first: Option<Instant> = None;
            let mut last = Instant::now();
            let mut buf = Vec::with_capacity(4096);
            loop {
                match tokio::time::timeout(Duration::from_secs(2), events.recv_many(&mut buf, 4096)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        for n in buf.drain(..) {
                            if let Notification::Event(_) = n {
                                got += 1;
                                first.get_or_insert_with(Instant::now);
                                last = Instant::now();
                            }
                        }
                        if got == count {
                            break;
                        }
                    }
                }
            }
            rx_node.stop().await.unwrap();
            (got, first.map(|f| last - f))
        })
    });
    ready_rx.recv()?;

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let sender = Eventcast::new(options)?;
    rt.block_on(sender.start())?;
    let payload = [Bson::String("x".repeat(size))];
    let start = Instant::now();
    for i in 0..count {
        if rate > 0.0 {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        sender.emit("bench", &payload)?;
    }
    let send_time = start.elapsed();
    let (got, span) = rx_thread.join().unwrap();
    rt.block_on(sender.stop())?;
    let span = span.unwrap_or_default().max(Duration::from_micros(1));
    println!(
        "sent {count} events of {size} B in {:.3} s ({:.0}/s); received {got} ({:.3}% loss) at {:.0}/s",
        send_time.as_secs_f64(),
        count as f64 / send_time.as_secs_f64(),
        100.0 * (count - got) as f64 / count as f64,
        got as f64 / span.as_secs_f64(),
    );
    let s = receiver.stats();
    println!(
        "receiver: datagrams {} delivered {} dropped-notifications {} gaps {}",
        s.datagrams_received, s.events_delivered, s.notifications_dropped, s.gaps_unrecovered
    );
    Ok(())
}
