//! Repair over real sockets: two `eventcast listen` on the SAME port and one
//! `eventcast emit`, with nftables dropping 10% of the UDP datagrams arriving
//! on the port (requests and repairs included). Every event must arrive
//! exactly once at both listeners.
//!
//! Runs in a nested private network namespace of its own (the loss rule must
//! not touch other tests), so it needs root, `unshare`, `ip` and `nft`; it
//! skips with a message otherwise.

#[path = "../../eventcast/tests/node_support/mod.rs"]
mod node_support;

use node_support::{random_port, skip_outside_netns, skipped};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_eventcast");

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().map(|o| o.status.success()).unwrap_or(false)
}

/// Cargo has no "skipped": a missing tool fails the test with the reason
/// rather than letting it pass without running (`.ci/run` installs them).
fn require_tools() {
    for tool in ["unshare", "nft", "ip"] {
        assert!(have(tool), "this test needs `{tool}` (Debian: util-linux, nftables, iproute2; .ci/run installs them)");
    }
}

/// Runs `script` in a network namespace of its own; its stdout and stderr,
/// or `None` (recorded as skipped, see `node_support::skipped`) when no
/// nested namespace can be made. A failing script fails the test.
fn run_in_own_netns(test: &str, script: &str) -> Option<(String, String)> {
    let out = Command::new("unshare").args(["-n", "sh", "-c", script]).output().expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() && stderr.contains("unshare failed") {
        skipped(test, &format!("cannot create a nested network namespace: {}", stderr.trim()));
        return None;
    }
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    eprintln!("{stdout}");
    Some((stdout, stderr))
}

#[test]
fn two_listeners_on_one_port_get_everything_at_10_percent_loss() {
    const TEST: &str = "two_listeners_on_one_port_get_everything_at_10_percent_loss";
    if skip_outside_netns(TEST) {
        return;
    }
    require_tools();
    let port = random_port();
    let small = 2000;
    let script = format!(
        r#"set -e
ip link set lo up
ip route add 224.0.0.0/4 dev lo
nft add table inet loss
nft add chain inet loss input '{{ type filter hook input priority 0; }}'
nft add rule inet loss input udp dport {port} numgen random mod 100 '<' 10 drop
BIN='{BIN}'
dir=$(mktemp -d)
for n in 1 2; do
  "$BIN" listen --port {port} --count {count} --timeout-ms 60000 --stats >"$dir/out$n" 2>"$dir/err$n" &
done
for n in 1 2; do
  until grep -q '^listening on' "$dir/err$n"; do sleep 0.05; done
done
"$BIN" emit --port {port} --repeat {small} --rate 4000 small '"0123456789012345678901234567890123456789012345678901234567"' &
"$BIN" emit --port {port} --stats big "\"$(head -c 120000 /dev/zero | tr '\0' 'b')\""
wait
for n in 1 2; do
  echo "listener $n: $(grep -c '"name":"small"' "$dir/out$n") small, $(grep -c '"name":"big"' "$dir/out$n") big"
  grep '^stats' "$dir/err$n"
done
rm -rf "$dir"
"#,
        count = small + 1,
    );
    let Some((stdout, stderr)) = run_in_own_netns(TEST, &script) else { return };
    for n in 1..=2 {
        assert!(
            stdout.contains(&format!("listener {n}: {small} small, 1 big")),
            "stdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    // The loss rule really dropped datagrams and both listeners really repaired.
    let stats: Vec<serde_json::Value> =
        stdout.lines().filter_map(|l| l.strip_prefix("stats ")).map(|j| serde_json::from_str(j).unwrap()).collect();
    assert_eq!(stats.len(), 2, "{stdout}");
    // (A listener whose request was suppressed by the other's may count no repair of its own.)
    let repaired: u64 = stats.iter().map(|s| s["repairs_received"].as_u64().unwrap()).sum();
    assert!(repaired > 0, "no repairs at 10% loss? {stdout}");
    for s in &stats {
        assert_eq!(s["gaps_unrecovered"], 0, "{s}");
    }
}

/// The join rule over real sockets: a listener that was listening for a
/// second when an emitter started, but lost the emitter's first datagrams
/// (nftables drops the first 100 packets to the port; loopback multicast may
/// count a datagram twice, so that is events 1..=50 to 1..=100), asks for
/// them and gets all 200 events once, no gap. Before `snAge` the listener
/// took the emitter for one it joined late and lost them silently.
#[test]
fn a_listener_that_lost_the_start_of_a_burst_repairs_it() {
    const TEST: &str = "a_listener_that_lost_the_start_of_a_burst_repairs_it";
    if skip_outside_netns(TEST) {
        return;
    }
    require_tools();
    let port = random_port();
    let script = format!(
        r#"set -e
ip link set lo up
ip route add 224.0.0.0/4 dev lo
BIN='{BIN}'
dir=$(mktemp -d)
"$BIN" listen --port {port} --count 200 --timeout-ms 20000 --stats >"$dir/out" 2>"$dir/err" &
until grep -q '^listening on' "$dir/err"; do sleep 0.05; done
sleep 1
nft add table inet start
nft add chain inet start input '{{ type filter hook input priority 0; }}'
nft add rule inet start input udp dport {port} numgen inc mod 1000000000 '<' 100 counter drop
"$BIN" emit --port {port} --repeat 200 --rate 2000 --linger-ms 6000 n '"x"'
wait
echo "listener: $(grep -c '"name":"n"' "$dir/out") events"
grep '^gap' "$dir/err" || true
grep '^stats' "$dir/err"
echo "dropped: $(nft list chain inet start input | grep -o 'packets [0-9]*')"
rm -rf "$dir"
"#
    );
    let Some((stdout, stderr)) = run_in_own_netns(TEST, &script) else { return };
    assert!(stdout.contains("dropped: packets 100"), "the rule dropped the burst's start: {stdout}");
    assert!(stdout.contains("listener: 200 events"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("gap "), "{stdout}");
    let stats: Vec<serde_json::Value> =
        stdout.lines().filter_map(|l| l.strip_prefix("stats ")).map(|j| serde_json::from_str(j).unwrap()).collect();
    assert_eq!(stats.len(), 1, "{stdout}");
    assert!(stats[0]["repairs_received"].as_u64().unwrap() >= 50, "{stdout}");
    assert_eq!(stats[0]["gaps_unrecovered"], 0, "{stdout}");
}
