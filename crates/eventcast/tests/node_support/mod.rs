//! Helpers shared by the socket tests (`tests/node_*.rs`, `tests/cli_*.rs`).
#![allow(dead_code)] // each test binary uses a different part

#[path = "../../src/skip_report.rs"]
mod skip_report;
#[allow(unused_imports)] // as dead_code above: not every test binary skips
pub use skip_report::skipped;

/// True when this process runs in a private network namespace whose only
/// interface is `lo` and which routes 224.0.0.0/4 to it (see
/// `scripts/netns-run.sh`). Socket tests call [`skip_outside_netns`] first,
/// so they never send to a real network.
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

/// Makes a socket test run only inside a private network namespace. Inside
/// one, returns false: run the test body here. Outside, runs this very test
/// again, alone, in a fresh private namespace (`unshare -n`, loopback up,
/// multicast routed to it) and returns true once it **passed there** (the
/// caller returns): a plain `cargo test` neither skips socket tests as if they
/// passed nor sends a datagram to a real network. It panics, saying why, when
/// the child failed or no namespace can be made (`unshare` needs root or user
/// namespaces): a test that cannot run is never counted as passed.
pub fn skip_outside_netns(test: &str) -> bool {
    if in_private_netns() {
        return false;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let setup = "ip link set lo up && (ip route add 224.0.0.0/4 dev lo 2>/dev/null || true) \
                 && (ip -6 route add local ff00::/8 dev lo table local 2>/dev/null || true) && exec \"$0\" \"$@\"";
    let out = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", setup])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .output()
        .unwrap_or_else(|e| {
            panic!("{test} opens sockets and needs a private network namespace, but `unshare -n` failed: {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    // `--exact` with a name that matches nothing would "pass" running zero tests.
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} did not pass inside a private network namespace ({}):\n{stdout}",
        out.status
    );
    eprintln!("{test}: passed inside a private network namespace (re-run by node_support::skip_outside_netns)");
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

/// Options on a random port and a random administratively scoped group, so
/// tests running in parallel never hear each other. Presence is off: these
/// tests count datagrams and notifications exactly, and beacons would come
/// on their own timer among them (`node_presence.rs` turns it on; the JS
/// tests run with it on, the default).
pub fn test_options() -> eventcast::Options {
    let port = random_port();
    let mut o = eventcast::Options::with_port(port);
    o.multicast_membership = std::net::Ipv4Addr::new(239, 255, (port >> 8) as u8, port as u8).into();
    o.presence = None;
    o
}

/// A node made from `options` and started.
pub async fn started(options: eventcast::Options) -> eventcast::Eventcast {
    let node = eventcast::Eventcast::new(options).expect("valid options");
    node.start().await.expect("start");
    assert_eq!(node.status(), eventcast::Status::Started);
    node
}

/// Whether `n` is a presence notification (peer up, down, updated): nodes
/// beacon by default, so tests about other things skip these.
pub fn is_presence(n: &eventcast::Notification) -> bool {
    use eventcast::Notification::{PeerDown, PeerUp, PeerUpdate};
    matches!(n, PeerUp(_) | PeerDown { .. } | PeerUpdate(_))
}

/// Child processes killed (and reaped) when the test ends, however it ends.
pub struct Children(pub Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
