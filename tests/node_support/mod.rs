//! Helpers shared by the socket tests (`tests/node_*.rs`, `tests/cli_*.rs`).
#![allow(dead_code)]

/// True when this process runs in a private network namespace whose only
/// interface is `lo` and which routes 224.0.0.0/4 to it (see
/// `scripts/netns-run.sh`). Socket tests call this first and skip, with a
/// message, when it is false, so they never send to a real network.
///
/// `/proc/self/net` is used rather than `/sys/class/net`: sysfs keeps showing
/// the namespace it was mounted in after `unshare -n`.
pub fn in_private_netns() -> bool {
    let Ok(dev) = std::fs::read_to_string("/proc/self/net/dev") else { return false };
    let ifaces: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    if ifaces != ["lo"] {
        return false;
    }
    let Ok(route) = std::fs::read_to_string("/proc/self/net/route") else { return false };
    route.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 7 && f[0] == "lo" && f[1] == "000000E0" && f[7] == "000000F0"
    })
}

/// Prints why a socket test is skipped and returns true when it must be.
pub fn skip_outside_netns(test: &str) -> bool {
    if in_private_netns() {
        return false;
    }
    eprintln!(
        "SKIPPED {test}: socket tests run only in a private network namespace with multicast routed to lo; \
         run `scripts/netns-run.sh cargo test` (as root, or with user namespaces)"
    );
    true
}

/// A random port in the dynamic range (tests retry on EADDRINUSE).
pub fn random_port() -> u16 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
        ^ std::process::id().wrapping_mul(2654435761)
        ^ NEXT.fetch_add(7919, std::sync::atomic::Ordering::Relaxed);
    20_000 + (seed % 40_000) as u16
}
