//! Rust peer for `npm run bench`: a node of the public Rust API
//! (`eventcast::Eventcast`) sending or receiving the bench events
//! `e(payload, trial, seq, sendTimeMs)`, the same events the Node peers use.
//!
//! Usage: `rust_peer send|recv PORT [KEY]` (KEY turns on `encrypt: {key}`),
//! inside a private network namespace; JSON commands on stdin, one answer per
//! line on stdout.

use bson::{spec::BinarySubtype, Binary, Bson};
use eventcast::{EncryptOptions, Eventcast, Notification, Options};
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::Instant;

include!("common.rs");

#[derive(Default)]
struct Tally {
    trial: i64,
    count: u64,
    bytes: u64,
    first: f64,
    last: f64,
    lat: Vec<f64>,
}

fn int(b: Option<&Bson>) -> i64 {
    match b {
        Some(Bson::Int32(i)) => i64::from(*i),
        Some(Bson::Int64(i)) => *i,
        Some(Bson::Double(f)) => *f as i64,
        _ => -1,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(role), Some(port)) = (args.get(1).cloned(), args.get(2).and_then(|p| p.parse::<u16>().ok())) else {
        eprintln!("usage: rust_peer send|recv PORT [KEY]");
        std::process::exit(2);
    };
    ensure_private_netns();
    let mut options = Options::with_port(port);
    let mut scheme = "plain";
    if let Some(key) = args.get(3) {
        options.encrypt = Some(EncryptOptions { key: key.clone(), legacy: false });
        scheme = "default";
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let node = match Eventcast::new(options.clone()) {
        Ok(n) => n,
        // The authenticated default may not be in this build yet: measure the 0.1.x scheme.
        Err(e) if options.encrypt.is_some() => {
            eprintln!("rust_peer: encrypt {{key}}: {e}; using legacy");
            options.encrypt = options.encrypt.map(|o| EncryptOptions { legacy: true, ..o });
            scheme = "legacy";
            match Eventcast::new(options) {
                Ok(n) => n,
                Err(e) => {
                    answer(serde_json::json!({ "error": format!("{e}"), "code": e.code() }));
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            answer(serde_json::json!({ "error": format!("{e}"), "code": e.code() }));
            std::process::exit(1);
        }
    };
    let mut events = node.subscribe();
    if let Err(e) = rt.block_on(node.start()) {
        answer(serde_json::json!({ "error": format!("{e}"), "code": e.code() }));
        std::process::exit(1);
    }
    let tally = Arc::new(Mutex::new(Tally { trial: -1, ..Tally::default() }));
    if role == "recv" {
        let tally = tally.clone();
        rt.spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            while events.recv_many(&mut buf, 1024).await > 0 {
                let now = wall_ms();
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                for note in buf.drain(..) {
                    let Notification::Event(e) = note else { continue };
                    if e.name != "e" || int(e.args.get(1)) != t.trial {
                        continue;
                    }
                    let len = match e.args.first() {
                        Some(Bson::String(s)) => s.len(),
                        Some(Bson::Binary(b)) => b.bytes.len(),
                        _ => 0,
                    };
                    if t.count == 0 {
                        t.first = now;
                    }
                    t.count += 1;
                    t.bytes += len as u64;
                    t.last = now;
                    if let Some(Bson::Double(ts)) = e.args.get(3) {
                        if len <= 128 && t.lat.len() < 4_000_000 {
                            t.lat.push(now - ts);
                        }
                    }
                }
            }
        });
    } else {
        drop(events);
    }
    answer(serde_json::json!({ "ready": true, "id": node.id(), "scheme": scheme }));
    let small: String = "x".repeat(64);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(cmd) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let trial = num(&cmd, "trial") as i32;
        match cmd.get("cmd").and_then(|c| c.as_str()).unwrap_or("") {
            "rate" => {
                let rate = num(&cmd, "rate");
                let total = (rate * num(&cmd, "dur")) as u64;
                let t0 = wall_ms();
                let start = Instant::now();
                let (mut sent, mut errors) = (0u64, 0u64);
                while sent < total {
                    let due = paced_due(start, rate, sent, total);
                    while sent < due {
                        let args = [
                            Bson::String(small.clone()),
                            Bson::Int32(trial),
                            Bson::Int32(sent as i32),
                            Bson::Double(wall_ms()),
                        ];
                        if node.emit("e", &args).is_err() {
                            errors += 1;
                        }
                        sent += 1;
                    }
                }
                let elapsed = start.elapsed().as_secs_f64() * 1000.0;
                answer(serde_json::json!({ "sent": sent, "errors": errors, "elapsed": elapsed, "t0": t0 }));
            }
            "bulk" => {
                let count = num(&cmd, "count") as i32;
                let size = num(&cmd, "size") as usize;
                let t0 = wall_ms();
                let mut errors = 0u64;
                for seq in 0..count {
                    let payload = Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![b'x'; size] });
                    if node
                        .emit("e", &[payload, Bson::Int32(trial), Bson::Int32(seq), Bson::Double(wall_ms())])
                        .is_err()
                    {
                        errors += 1;
                    }
                }
                answer(serde_json::json!({ "sent": count, "errors": errors, "t0": t0, "t1": wall_ms() }));
            }
            "reset" => {
                *tally.lock().unwrap_or_else(|p| p.into_inner()) =
                    Tally { trial: i64::from(trial), ..Tally::default() };
                answer(serde_json::json!({ "ok": true }));
            }
            "report" => {
                let t = tally.lock().unwrap_or_else(|p| p.into_inner());
                let mut lat = t.lat.clone();
                let (p50, p99) = (quantile(&mut lat, 0.5), quantile(&mut lat, 0.99));
                answer(serde_json::json!({
                    "count": t.count, "bytes": t.bytes, "first": t.first, "last": t.last,
                    "p50": if p50.is_nan() { None } else { Some(p50) },
                    "p99": if p99.is_nan() { None } else { Some(p99) },
                    "stats": format!("{:?}", node.stats()),
                }));
            }
            "rss" => answer(serde_json::json!({ "rss": rss_bytes() })),
            "quit" => break,
            other => answer(serde_json::json!({ "error": format!("unknown command {other}") })),
        }
    }
    let _ = rt.block_on(node.stop());
}
