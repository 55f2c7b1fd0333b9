// Helpers shared by the bench peers (`udp_baseline.rs`, `rust_peer.rs`),
// included with `include!` so each example stays one self-contained binary.
//
// Peers speak one JSON object per line: commands on stdin, one answer per
// command on stdout (see `bench/README.md`, "Peer protocol").

/// Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME, µs resolution),
/// the clock the Node peers calibrate against.
fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Refuses to open sockets outside a private network namespace (only `lo`):
/// this machine's default route leads to a real LAN.
fn ensure_private_netns() {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let ifs: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).filter(|s| !s.is_empty()).collect();
    if ifs != ["lo"] {
        eprintln!("refusing to run outside a private network namespace (interfaces: {ifs:?}); use `npm run bench`");
        std::process::exit(2);
    }
}

/// Resident set size of this process in bytes (from /proc/self/statm).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// p-quantile (0..=1) of `v` (sorted in place); NaN when empty.
fn quantile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Sleeps or spins until `elapsed * rate` items are due; returns how many are due now.
fn paced_due(start: std::time::Instant, rate: f64, sent: u64, total: u64) -> u64 {
    loop {
        let due = ((start.elapsed().as_secs_f64() * rate) as u64 + 1).min(total);
        if due > sent {
            return due;
        }
        let wait = (sent + 1) as f64 / rate - start.elapsed().as_secs_f64();
        if wait > 0.0002 {
            std::thread::sleep(std::time::Duration::from_secs_f64(wait - 0.0001));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Reads a JSON number field as f64 (0 when absent).
fn num(cmd: &serde_json::Value, key: &str) -> f64 {
    cmd.get(key).and_then(serde_json::Value::as_f64).unwrap_or(0.0)
}

/// Prints one answer line and flushes.
fn answer(v: serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}
