//! Raw Rust UDP baseline for `npm run bench`: one thread each side, no
//! framing beyond a 16-byte header (trial u32 LE, seq u32 LE, send time f64 LE ms),
//! 8 MiB SO_RCVBUF, loopback multicast. It shows what the machine can do without
//! eventcast's protocol.
//!
//! Usage: `udp_baseline send|recv PORT` (inside a private network namespace),
//! then JSON commands on stdin, one answer per line on stdout.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

include!("common.rs");

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
const HEADER: usize = 16;
/// Payload bytes per datagram of a bulk message (eventcast's default maxPayloadSize).
const CHUNK: usize = 1024;
const BUFFER: usize = 8 * 1024 * 1024;

fn force_buffer(socket: &Socket, option: i32) -> bool {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
    }
    let value: i32 = BUFFER as i32;
    // SAFETY: valid fd owned by `socket`, pointer to a live i32 and its exact size.
    unsafe { setsockopt(socket.as_raw_fd(), 1, option, (&value as *const i32).cast(), 4) == 0 }
}

fn socket(port: u16, join: bool) -> UdpSocket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.set_reuse_port(true).expect("SO_REUSEPORT");
    // SO_RCVBUFFORCE / SO_SNDBUFFORCE (root), else the capped SO_RCVBUF / SO_SNDBUF.
    if !force_buffer(&s, 33) {
        let _ = s.set_recv_buffer_size(BUFFER);
    }
    if !force_buffer(&s, 32) {
        let _ = s.set_send_buffer_size(BUFFER);
    }
    s.set_multicast_loop_v4(true).expect("IP_MULTICAST_LOOP");
    s.set_multicast_ttl_v4(1).expect("IP_MULTICAST_TTL");
    if join {
        s.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))).expect("bind");
        s.join_multicast_v4(&GROUP, &Ipv4Addr::UNSPECIFIED).expect("join");
    } else {
        s.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))).expect("bind");
    }
    s.into()
}

fn header(buf: &mut [u8], trial: u32, seq: u32) {
    buf[0..4].copy_from_slice(&trial.to_le_bytes());
    buf[4..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&wall_ms().to_le_bytes());
}

fn sender(port: u16) {
    let sock = socket(port, false);
    let dest = SocketAddrV4::new(GROUP, port);
    answer(serde_json::json!({ "ready": true }));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(cmd) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let trial = num(&cmd, "trial") as u32;
        match cmd.get("cmd").and_then(|c| c.as_str()).unwrap_or("") {
            "rate" => {
                let rate = num(&cmd, "rate");
                let total = (rate * num(&cmd, "dur")) as u64;
                let size = (num(&cmd, "size") as usize).max(HEADER);
                let mut buf = vec![b'x'; size];
                let t0 = wall_ms();
                let start = Instant::now();
                let (mut sent, mut errors) = (0u64, 0u64);
                while sent < total {
                    let due = paced_due(start, rate, sent, total);
                    while sent < due {
                        header(&mut buf, trial, sent as u32);
                        if sock.send_to(&buf, dest).is_err() {
                            errors += 1;
                        }
                        sent += 1;
                    }
                }
                let elapsed = start.elapsed().as_secs_f64() * 1000.0;
                answer(serde_json::json!({ "sent": sent, "errors": errors, "elapsed": elapsed, "t0": t0 }));
            }
            "bulk" => {
                let count = num(&cmd, "count") as u64;
                let size = num(&cmd, "size") as usize;
                let mut buf = vec![b'x'; HEADER + CHUNK];
                let t0 = wall_ms();
                let (mut sent, mut seq) = (0u64, 0u32);
                for _ in 0..count {
                    let mut left = size;
                    while left > 0 {
                        let n = left.min(CHUNK);
                        header(&mut buf, trial, seq);
                        let _ = sock.send_to(&buf[..HEADER + n], dest);
                        left -= n;
                        seq += 1;
                        sent += 1;
                    }
                }
                answer(serde_json::json!({ "sent": sent, "t0": t0, "t1": wall_ms() }));
            }
            "rss" => answer(serde_json::json!({ "rss": rss_bytes() })),
            "quit" => break,
            other => answer(serde_json::json!({ "error": format!("unknown command {other}") })),
        }
    }
}

enum Cmd {
    Reset(u32, mpsc::Sender<()>),
    Report(mpsc::Sender<serde_json::Value>),
}

#[derive(Default)]
struct Tally {
    trial: u32,
    count: u64,
    bytes: u64,
    first: f64,
    last: f64,
    lat: Vec<f64>,
}

fn receiver(port: u16) {
    let sock = socket(port, true);
    sock.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    let (tx, rx) = mpsc::channel::<Cmd>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut t = Tally { trial: u32::MAX, ..Tally::default() };
        let mut n_since = 0u32;
        loop {
            match sock.recv(&mut buf) {
                Ok(n) if n >= HEADER => {
                    let trial = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    if trial == t.trial {
                        let now = wall_ms();
                        if t.count == 0 {
                            t.first = now;
                        }
                        t.count += 1;
                        t.bytes += (n - HEADER) as u64;
                        t.last = now;
                        if n <= 128 && t.lat.len() < 4_000_000 {
                            let ts = f64::from_le_bytes(buf[8..16].try_into().unwrap_or([0; 8]));
                            t.lat.push(now - ts);
                        }
                    }
                    n_since += 1;
                    if n_since < 256 {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(_) => {} // timeout: look at commands
            }
            n_since = 0;
            while let Ok(cmd) = rx.try_recv() {
                match cmd {
                    Cmd::Reset(trial, done) => {
                        t = Tally { trial, ..Tally::default() };
                        let _ = done.send(());
                    }
                    Cmd::Report(reply) => {
                        let mut lat = t.lat.clone();
                        let p50 = quantile(&mut lat, 0.5);
                        let p99 = quantile(&mut lat, 0.99);
                        let _ = reply.send(serde_json::json!({
                            "count": t.count, "bytes": t.bytes, "first": t.first, "last": t.last,
                            "p50": if p50.is_nan() { None } else { Some(p50) },
                            "p99": if p99.is_nan() { None } else { Some(p99) },
                        }));
                    }
                }
            }
        }
    });
    answer(serde_json::json!({ "ready": true }));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(cmd) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        match cmd.get("cmd").and_then(|c| c.as_str()).unwrap_or("") {
            "reset" => {
                let (dtx, drx) = mpsc::channel();
                let _ = tx.send(Cmd::Reset(num(&cmd, "trial") as u32, dtx));
                let _ = drx.recv(); // applied before we answer: the sender may start right away
                answer(serde_json::json!({ "ok": true }));
            }
            "report" => {
                let (rtx, rrx) = mpsc::channel();
                let _ = tx.send(Cmd::Report(rtx));
                answer(rrx.recv().unwrap_or(serde_json::json!({ "error": "receiver thread gone" })));
            }
            "rss" => answer(serde_json::json!({ "rss": rss_bytes() })),
            "quit" => break,
            other => answer(serde_json::json!({ "error": format!("unknown command {other}") })),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(role), Some(port)) = (args.get(1), args.get(2).and_then(|p| p.parse::<u16>().ok())) else {
        eprintln!("usage: udp_baseline send|recv PORT");
        std::process::exit(2);
    };
    ensure_private_netns();
    match role.as_str() {
        "send" => sender(port),
        "recv" => receiver(port),
        _ => {
            eprintln!("usage: udp_baseline send|recv PORT");
            std::process::exit(2);
        }
    }
}
