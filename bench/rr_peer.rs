//! Request/reply round-trip peer for `npm run bench -- --only rr`: one side
//! answers, the other asks, one request outstanding at a time, and times each
//! round trip with a monotonic clock (both ends of a sample are in the
//! requester, so no cross-process clock is involved).
//!
//! Usage: `rr_peer ours|ours-blockon|udp responder|requester PORT` inside a
//! private network namespace; JSON commands on stdin, one answer per line on
//! stdout (bench/README.md, "Peer protocol").
//!
//! * `ours`: the Rust API. The responder `handle`s `rr` and returns its
//!   argument; the requester awaits `node.request("rr", [seq])` in a task on
//!   the node's runtime (as a server's code runs). Both nodes on loopback
//!   multicast (the group and PORT), as `bench_rust_peer`.
//! * `ours-blockon`: the same, the requester awaiting each request with
//!   `block_on` from a thread outside the runtime (the main thread, as the
//!   body of `#[tokio::main]` runs): the reply then crosses one more thread
//!   hand-off, from the runtime worker that received it to that thread.
//! * `udp`: the baseline, two plain blocking std UDP sockets on 127.0.0.1
//!   (unicast ping-pong: the shortest round trip the machine offers). The
//!   responder binds PORT and sends every datagram back to its source; the
//!   requester sends a 16-byte datagram (seq u64 LE + padding) and waits for
//!   the one carrying its seq.
//!
//! Requester commands: `{"cmd":"wait"}` asks until a first reply comes (up
//! to 10 s) → `{ok, ms}`; `{"cmd":"rr","count":N[,"samples":true]}` → `{n,
//! errors, p50, p99[, lat]}` (ms). Both: `{"cmd":"rss"}`, `{"cmd":"quit"}`.

// common.rs is shared by the peers: this one paces nothing and reads no wall clock.
#![allow(dead_code)]

use bson::Bson;
use eventcast::{Eventcast, Options, Request};
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

include!("common.rs");

const NAME: &str = "rr";
/// Per request: a lost request or reply counts as an error, it is not retried.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Sequential round trips: `run(first, count)` asks seqs `first..first + count`
/// one at a time; the round-trip times (ms) of those that came back, and how
/// many did not.
trait Asker {
    fn run(&mut self, first: u64, count: u64) -> (Vec<f64>, u64);
}

/// Times `count` sequential calls of `ask` (whether the seq came back).
fn timed(first: u64, count: u64, mut ask: impl FnMut(u64) -> bool) -> (Vec<f64>, u64) {
    let mut lat = Vec::with_capacity(count as usize);
    let mut errors = 0;
    for seq in first..first + count {
        let t0 = Instant::now();
        if ask(seq) {
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        } else {
            errors += 1;
        }
    }
    (lat, errors)
}

async fn ask_ours(node: &Eventcast, seq: u64) -> bool {
    let args = [Bson::Int64(seq as i64)];
    matches!(node.request(NAME, &args, TIMEOUT).await, Ok(Bson::Int64(s)) if s == seq as i64)
}

struct OursAsker {
    rt: tokio::runtime::Runtime,
    node: Eventcast,
    in_task: bool,
}

impl Asker for OursAsker {
    fn run(&mut self, first: u64, count: u64) -> (Vec<f64>, u64) {
        if !self.in_task {
            let (rt, node) = (&self.rt, &self.node);
            return timed(first, count, |seq| rt.block_on(ask_ours(node, seq)));
        }
        let node = self.node.clone();
        let task = self.rt.spawn(async move {
            let mut lat = Vec::with_capacity(count as usize);
            let mut errors = 0;
            for seq in first..first + count {
                let t0 = Instant::now();
                if ask_ours(&node, seq).await {
                    lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        });
        self.rt.block_on(task).unwrap_or_else(|_| (Vec::new(), count))
    }
}

struct UdpAsker {
    sock: UdpSocket,
}

impl Asker for UdpAsker {
    fn run(&mut self, first: u64, count: u64) -> (Vec<f64>, u64) {
        let sock = &self.sock;
        timed(first, count, |seq| ping(sock, seq))
    }
}

/// One UDP ping-pong with `seq`; whether its echo came back.
fn ping(sock: &UdpSocket, seq: u64) -> bool {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&seq.to_le_bytes());
    if sock.send(&out).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    // A stale reply (of a request that timed out) is skipped, not counted.
    while let Ok(n) = sock.recv(&mut buf) {
        if n >= 8 && buf[..8] == out[..8] {
            return true;
        }
    }
    false
}

fn ours_node(port: u16) -> (tokio::runtime::Runtime, Eventcast) {
    // The runtime the addon and the CLI run the driver on (short scheduler slice).
    let rt = eventcast::driver_runtime_builder().build().expect("tokio runtime");
    let node = match Eventcast::new(Options::with_port(port)) {
        Ok(n) => n,
        Err(e) => {
            answer(serde_json::json!({ "error": format!("{e}"), "code": e.code() }));
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(node.start()) {
        answer(serde_json::json!({ "error": format!("{e}"), "code": e.code() }));
        std::process::exit(1);
    }
    (rt, node)
}

fn udp_socket(port: u16) -> UdpSocket {
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).unwrap_or_else(|e| {
        answer(serde_json::json!({ "error": format!("bind 127.0.0.1:{port}: {e}") }));
        std::process::exit(1);
    });
    sock
}

/// Answers until stdin says quit (or closes); the answering runs beside it.
fn serve_until_quit(impl_: &str, port: u16) {
    // Kept alive until quit: the node (and its runtime) or the echo thread.
    let _ours = if impl_ != "udp" {
        let (rt, node) = ours_node(port);
        let handled = rt.block_on(async {
            node.handle(NAME, |r: Request| async move { Ok(r.args.into_iter().next().unwrap_or(Bson::Null)) })
        });
        if let Err(e) = handled {
            answer(serde_json::json!({ "error": format!("{e}"), "code": e.code() }));
            std::process::exit(1);
        }
        Some((rt, node))
    } else {
        let sock = udp_socket(port);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..n], from);
            }
        });
        None
    };
    answer(serde_json::json!({ "ready": true }));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(cmd) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        match cmd.get("cmd").and_then(|c| c.as_str()).unwrap_or("") {
            "rss" => answer(serde_json::json!({ "rss": rss_bytes() })),
            "quit" => {
                answer(serde_json::json!({ "ok": true }));
                break;
            }
            other => answer(serde_json::json!({ "error": format!("unknown command {other}") })),
        }
    }
    if let Some((rt, node)) = _ours {
        let _ = rt.block_on(node.stop());
    }
}

fn ask_until_quit(impl_: &str, port: u16) {
    let mut asker: Box<dyn Asker> = if impl_ != "udp" {
        let (rt, node) = ours_node(port);
        Box::new(OursAsker { rt, node, in_task: impl_ == "ours" })
    } else {
        let sock = udp_socket(0);
        sock.connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).expect("connect");
        sock.set_read_timeout(Some(TIMEOUT)).expect("SO_RCVTIMEO");
        Box::new(UdpAsker { sock })
    };
    answer(serde_json::json!({ "ready": true }));
    let mut seq = 0u64;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(cmd) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        match cmd.get("cmd").and_then(|c| c.as_str()).unwrap_or("") {
            "wait" => {
                // The responder's socket (or subscription) may not be up yet.
                let start = Instant::now();
                let mut ok = false;
                while !ok && start.elapsed() < Duration::from_secs(10) {
                    seq += 1;
                    ok = asker.run(seq, 1).1 == 0;
                }
                answer(serde_json::json!({ "ok": ok, "ms": start.elapsed().as_secs_f64() * 1000.0 }));
            }
            "rr" => {
                let count = num(&cmd, "count") as u64;
                let (mut lat, errors) = asker.run(seq + 1, count);
                seq += count;
                let samples = cmd.get("samples").and_then(serde_json::Value::as_bool).unwrap_or(false);
                let kept = samples.then(|| lat.iter().map(|x| (x * 1e6).round() / 1e6).collect::<Vec<_>>());
                let (p50, p99) = (quantile(&mut lat, 0.5), quantile(&mut lat, 0.99));
                answer(serde_json::json!({
                    "n": lat.len(), "errors": errors,
                    "p50": if p50.is_nan() { None } else { Some(p50) },
                    "p99": if p99.is_nan() { None } else { Some(p99) },
                    "lat": kept,
                }));
            }
            "rss" => answer(serde_json::json!({ "rss": rss_bytes() })),
            "quit" => {
                answer(serde_json::json!({ "ok": true }));
                break;
            }
            other => answer(serde_json::json!({ "error": format!("unknown command {other}") })),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(impl_), Some(role), Some(port)) =
        (args.get(1).cloned(), args.get(2).cloned(), args.get(3).and_then(|p| p.parse::<u16>().ok()))
    else {
        eprintln!("usage: rr_peer ours|ours-blockon|udp responder|requester PORT");
        std::process::exit(2);
    };
    if !["ours", "ours-blockon", "udp"].contains(&impl_.as_str()) {
        eprintln!("rr_peer: unknown implementation {impl_}");
        std::process::exit(2);
    }
    ensure_private_netns();
    match role.as_str() {
        "responder" => serve_until_quit(&impl_, port),
        "requester" => ask_until_quit(&impl_, port),
        _ => {
            eprintln!("rr_peer: role is responder or requester");
            std::process::exit(2);
        }
    }
}
