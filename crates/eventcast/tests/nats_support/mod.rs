//! Real `nats-server` processes for the NATS transport tests (`tests/nats_*.rs`).
//!
//! Each [`NatsServer`] runs the Debian package's binary on a random loopback
//! port (the tests run inside a private network namespace, see
//! `node_support::skip_outside_netns`), is waited for until it accepts
//! connections, and is killed when the guard drops, also when a test panics.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `nats-server` binary: `$NATS_SERVER`, else the Debian package's path, else `$PATH`.
pub fn nats_server_bin() -> String {
    if let Ok(p) = std::env::var("NATS_SERVER") {
        return p;
    }
    for p in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    "nats-server".into()
}

/// A running `nats-server`, killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
}

impl NatsServer {
    /// Starts a server on a random loopback port with extra `args`.
    pub fn start(args: &[&str]) -> NatsServer {
        for _ in 0..10 {
            let port = super::node_support::random_port();
            let mut server = NatsServer { child: None, port, args: args.iter().map(|s| s.to_string()).collect() };
            if server.spawn() {
                return server;
            }
        }
        panic!("nats-server did not start on any of 10 random ports");
    }

    /// Starts a server on a given client `port` (for clusters, whose route
    /// arguments name ports chosen in advance); `None` if it did not come up.
    pub fn start_on(port: u16, args: &[&str]) -> Option<NatsServer> {
        let mut server = NatsServer { child: None, port, args: args.iter().map(|s| s.to_string()).collect() };
        server.spawn().then_some(server)
    }

    /// Starts a server on `port` (a restart after [`kill`](Self::kill)).
    fn spawn(&mut self) -> bool {
        let child = Command::new(nats_server_bin())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} (apt-get install nats-server): {e}", nats_server_bin()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false; // exited: port taken, most likely
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut line = String::new();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                if BufReader::new(&mut s).read_line(&mut line).is_ok() && line.starts_with("INFO ") {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no lame-duck goodbye).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the killed server again on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill only");
        assert!(self.spawn(), "nats-server did not restart on port {}", self.port);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bare NATS client speaking the text protocol over TCP: what any plain
/// NATS user (or attacker with publish rights) sees and can send.
pub struct RawClient {
    stream: BufReader<TcpStream>,
}

impl RawClient {
    /// Connects (no auth), optionally subscribed to `subject`.
    pub fn connect(port: u16, subscribe: Option<&str>) -> RawClient {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to nats-server");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = RawClient { stream: BufReader::new(s) };
        let mut info = String::new();
        c.stream.read_line(&mut info).unwrap();
        assert!(info.starts_with("INFO "), "{info}");
        c.write(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
        if let Some(subject) = subscribe {
            c.write(format!("SUB {subject} 1\r\n").as_bytes());
        }
        c.write(b"PING\r\n");
        c.expect_pong();
        c
    }

    fn write(&mut self, b: &[u8]) {
        self.stream.get_mut().write_all(b).unwrap();
    }

    fn expect_pong(&mut self) {
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).unwrap();
            if line.starts_with("PONG") {
                return;
            }
            assert!(!line.starts_with("-ERR"), "{line}");
        }
    }

    /// Publishes `payload` and waits until the server has processed it.
    pub fn publish(&mut self, subject: &str, payload: &[u8]) {
        self.write(format!("PUB {subject} {}\r\n", payload.len()).as_bytes());
        self.write(payload);
        self.write(b"\r\nPING\r\n");
        self.expect_pong();
    }

    /// Publishes every payload back to back, as fast as the socket takes
    /// them, then waits until the server has processed them all.
    pub fn publish_all<'a>(&mut self, subject: &str, payloads: impl IntoIterator<Item = &'a [u8]>) {
        let mut out = Vec::new();
        for p in payloads {
            out.clear();
            out.extend_from_slice(format!("PUB {subject} {}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
            self.write(&out);
        }
        self.write(b"PING\r\n");
        self.expect_pong();
    }

    /// Counts messages until none came for `quiet` (the first may take up to
    /// 30 s) or `cap` arrived (traffic that never stops: a loop).
    pub fn count_until_quiet(&mut self, quiet: Duration, cap: u64) -> u64 {
        let mut n = 0;
        self.stream.get_mut().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        while n < cap {
            let mut line = String::new();
            match self.stream.read_line(&mut line) {
                Ok(0) | Err(_) => return n,
                Ok(_) => {}
            }
            if line.starts_with("PING") {
                self.write(b"PONG\r\n");
            } else if let Some(rest) = line.strip_prefix("MSG ") {
                let len: usize = rest.split_whitespace().last().unwrap().parse().unwrap();
                let mut payload = vec![0; len + 2];
                self.stream.read_exact(&mut payload).unwrap();
                n += 1;
                self.stream.get_mut().set_read_timeout(Some(quiet)).unwrap();
            }
        }
        n
    }

    /// Payload bytes of the messages that arrive until none came for `quiet`
    /// (the first may take up to 30 s) or `cap` bytes arrived.
    pub fn bytes_until_quiet(&mut self, quiet: Duration, cap: u64) -> u64 {
        let mut n = 0;
        self.stream.get_mut().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        while n < cap {
            let mut line = String::new();
            match self.stream.read_line(&mut line) {
                Ok(0) | Err(_) => return n,
                Ok(_) => {}
            }
            if line.starts_with("PING") {
                self.write(b"PONG\r\n");
            } else if let Some(rest) = line.strip_prefix("MSG ") {
                let len: usize = rest.split_whitespace().last().unwrap().parse().unwrap();
                let mut payload = vec![0; len + 2];
                self.stream.read_exact(&mut payload).unwrap();
                n += len as u64;
                self.stream.get_mut().set_read_timeout(Some(quiet)).unwrap();
            }
        }
        n
    }

    /// The next message's payload (answers the server's PINGs meanwhile).
    pub fn next_message(&mut self) -> Vec<u8> {
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).expect("message within 10 s");
            if line.starts_with("PING") {
                self.write(b"PONG\r\n");
                continue;
            }
            if let Some(rest) = line.strip_prefix("MSG ") {
                let len: usize = rest.split_whitespace().last().unwrap().parse().unwrap();
                let mut payload = vec![0; len + 2];
                self.stream.read_exact(&mut payload).unwrap();
                payload.truncate(len);
                return payload;
            }
        }
    }
}
