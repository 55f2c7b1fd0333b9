//! Deterministic simulation: N endpoints, virtual time, seeded loss/duplication/reordering.
//!
//! This is the test harness of the protocol engine. A [`Network`] owns several
//! [`Endpoint`]s joined to one simulated multicast group: every datagram an
//! endpoint transmits to [`Destination::Group`] is delivered to every endpoint,
//! the sender included (multicast loopback, which real sockets also do), after
//! a latency plus random jitter (so datagrams get reordered), unless the loss
//! model drops it; it may also be duplicated. All randomness comes from one
//! seeded [`StdRng`], and time is virtual, so a run is reproducible from its seed.
//!
//! Two observations for measuring cost rather than behaviour: the real time
//! each endpoint spends in its own calls ([`SimNode::busy`]), and, for one
//! watched endpoint, every datagram it transmitted with the endpoints the
//! loss model dropped it for ([`Network::watch`], [`Network::transmissions`]).
//!
//! ```
//! use eventcast_engine::protocol::{sim::Network, Config};
//! use std::time::Duration;
//! let mut net = Network::new(7);
//! let a = net.add_endpoint(Config::default());
//! let b = net.add_endpoint(Config::default());
//! net.set_loss(0.3); // 30% of datagrams lost on every link
//! let big = bson::Bson::String("x".repeat(50_000)); // ~50 chunks
//! net.emit(a, "hello", &[big.clone()]).unwrap();
//! net.run_for(Duration::from_secs(10));
//! assert_eq!(net.events(b).len(), 1);
//! assert_eq!(net.events(b)[0].args, vec![big]);
//! ```

use super::{
    Config, Destination, Endpoint, Event, Identity, IncomingReply, IncomingRequest, Output, PeerChange, SharedBytes,
    Stats,
};
use crate::error::Error;
use bson::Bson;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The simulated multicast port every endpoint advertises.
pub const SIM_PORT: u16 = 9000;

/// One endpoint of the network and what it delivered.
pub struct SimNode {
    /// The engine.
    pub endpoint: Endpoint,
    /// Its simulated address (`10.0.0.<index + 1>:9000`).
    pub addr: SocketAddr,
    /// Events it delivered, in delivery order.
    pub events: Vec<Event>,
    /// Gaps it reported: (sender id, count).
    pub gaps: Vec<(String, u64)>,
    /// Version mismatches it reported.
    pub version_errors: Vec<i32>,
    /// Presence changes it reported (peers up, down, updated), in order.
    pub peer_changes: Vec<PeerChange>,
    /// Requests it received (request/reply), in order.
    pub requests: Vec<IncomingRequest>,
    /// Replies addressed to it, in order.
    pub replies: Vec<IncomingReply>,
    /// Real (not virtual) time spent inside this endpoint's own calls
    /// (`emit`, `handle_datagram`, `handle_timeout`, `poll_*`, [`Network::act`]),
    /// not in the simulator's delivery work: a measure of its CPU cost.
    pub busy: Duration,
}

/// One datagram a [watched](Network::watch) endpoint transmitted.
pub struct Transmission {
    /// Virtual time it was sent.
    pub at: Instant,
    /// Its bytes (a resend of retained data has the same bytes as the first send).
    pub payload: SharedBytes,
    /// The endpoints it was addressed to and the loss model dropped it for.
    pub lost_by: Vec<usize>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    to: usize,
    from: SocketAddr,
    payload: Vec<u8>,
}

/// A simulated multicast group. See the [module docs](self).
pub struct Network {
    start: Instant,
    now: Instant,
    wall0: SystemTime,
    rng: StdRng,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    loss: f64,
    receiver_loss: HashMap<usize, f64>,
    link_loss: HashMap<(usize, usize), f64>,
    duplication: f64,
    latency: Duration,
    jitter: Duration,
    sourceless: bool,
    watched: Option<usize>,
    transmissions: Vec<Transmission>,
    /// Datagrams dropped by the loss model.
    pub dropped: u64,
    /// Datagrams delivered to endpoints.
    pub delivered: u64,
}

impl Network {
    /// An empty network whose randomness derives from `seed`. Defaults: no loss,
    /// no duplication, 1 ms latency with 0.5 ms jitter.
    pub fn new(seed: u64) -> Self {
        let start = Instant::now();
        Network {
            start,
            now: start,
            wall0: UNIX_EPOCH + Duration::from_millis(1_700_000_000_000),
            rng: StdRng::seed_from_u64(seed),
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            order: 0,
            loss: 0.0,
            receiver_loss: HashMap::new(),
            link_loss: HashMap::new(),
            duplication: 0.0,
            latency: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            sourceless: false,
            watched: None,
            transmissions: Vec::new(),
            dropped: 0,
            delivered: 0,
        }
    }

    /// Adds an endpoint with a random instance id; returns its index.
    pub fn add_endpoint(&mut self, config: Config) -> usize {
        let i = self.nodes.len();
        let ip = Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 1) as u8);
        let identity = Identity {
            id: crate::wire::ids::instance_id(&mut self.rng),
            host: ip.to_string(),
            port: SIM_PORT,
            hostname: format!("sim{i}"),
        };
        // The simulated wall clock starts in 2023: never before 1970.
        let endpoint = Endpoint::new(config, identity, self.rng.gen(), self.now, self.wall())
            .expect("the simulated wall clock is after 1970");
        self.nodes.push(SimNode {
            endpoint,
            addr: SocketAddr::new(IpAddr::V4(ip), SIM_PORT),
            events: Vec::new(),
            gaps: Vec::new(),
            version_errors: Vec::new(),
            peer_changes: Vec::new(),
            requests: Vec::new(),
            replies: Vec::new(),
            busy: Duration::ZERO,
        });
        i
    }

    /// Delivers every datagram without a source address (`0.0.0.0:0`), as
    /// the NATS transport does, so budgets go by requester id.
    pub fn set_sourceless(&mut self, on: bool) {
        self.sourceless = on;
    }

    /// Loss probability of every link (0.0 ..= 1.0).
    pub fn set_loss(&mut self, p: f64) {
        self.loss = p;
    }

    /// Loss probability of every datagram arriving at endpoint `to` (overrides [`Network::set_loss`]).
    pub fn set_receiver_loss(&mut self, to: usize, p: f64) {
        self.receiver_loss.insert(to, p);
    }

    /// Loss probability of the link `from` → `to` (overrides the others).
    pub fn set_link_loss(&mut self, from: usize, to: usize, p: f64) {
        self.link_loss.insert((from, to), p);
    }

    /// Records every datagram endpoint `i` transmits from now on, with the
    /// endpoints the loss model dropped it for ([`Network::transmissions`]).
    pub fn watch(&mut self, i: usize) {
        self.watched = Some(i);
    }

    /// What the [watched](Network::watch) endpoint transmitted, in order.
    pub fn transmissions(&self) -> &[Transmission] {
        &self.transmissions
    }

    /// Probability that a delivered datagram arrives twice.
    pub fn set_duplication(&mut self, p: f64) {
        self.duplication = p;
    }

    /// One-way latency and the maximum extra random delay (reordering).
    pub fn set_latency(&mut self, latency: Duration, jitter: Duration) {
        self.latency = latency;
        self.jitter = jitter;
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since the network was created.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Current virtual wall-clock time.
    pub fn wall(&self) -> SystemTime {
        self.wall0 + (self.now - self.start)
    }

    /// Endpoint `i` and its deliveries.
    pub fn node(&self, i: usize) -> &SimNode {
        &self.nodes[i]
    }

    /// Mutable access to endpoint `i`.
    pub fn node_mut(&mut self, i: usize) -> &mut SimNode {
        &mut self.nodes[i]
    }

    /// Events delivered by endpoint `i`.
    pub fn events(&self, i: usize) -> &[Event] {
        &self.nodes[i].events
    }

    /// Counters of endpoint `i`.
    pub fn stats(&self, i: usize) -> &Stats {
        self.nodes[i].endpoint.stats()
    }

    /// Instance id of endpoint `i`.
    pub fn id(&self, i: usize) -> String {
        self.nodes[i].endpoint.identity().id.clone()
    }

    /// Endpoint `i` emits an event now.
    pub fn emit(&mut self, i: usize, name: &str, args: &[Bson]) -> Result<(), Error> {
        let (now, wall) = (self.now, self.wall());
        let node = &mut self.nodes[i];
        timed(&mut node.busy, || node.endpoint.emit(now, wall, name, args))?;
        self.flush(i);
        Ok(())
    }

    /// Runs `f` on endpoint `i` at the current virtual time, then collects its
    /// outputs and sends what it produced (for calls the driver makes:
    /// `start_presence`, `stop_presence`, `set_meta`, ...).
    pub fn act<T>(&mut self, i: usize, f: impl FnOnce(&mut Endpoint, Instant) -> T) -> T {
        let now = self.now;
        let node = &mut self.nodes[i];
        let out = timed(&mut node.busy, || f(&mut node.endpoint, now));
        self.collect(i);
        self.flush(i);
        out
    }

    /// Hands a raw datagram to endpoint `to` right now, as if from `from`
    /// (bypasses the loss model; for crafted or recorded datagrams).
    pub fn inject(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) {
        self.deliver(to, from, datagram);
        self.flush(to);
    }

    /// Moves endpoint `i`'s transmits into the network.
    fn flush(&mut self, i: usize) {
        loop {
            let node = &mut self.nodes[i];
            let Some(t) = timed(&mut node.busy, || node.endpoint.poll_transmit()) else { break };
            let mut lost_by = Vec::new();
            let targets: Vec<usize> = match t.destination {
                Destination::Group => (0..self.nodes.len()).collect(),
                Destination::Unicast(addr) => {
                    (0..self.nodes.len()).filter(|&j| self.nodes[j].addr == addr).take(1).collect()
                }
            };
            for to in targets {
                let p = if to == i {
                    0.0
                } else {
                    self.link_loss.get(&(i, to)).or_else(|| self.receiver_loss.get(&to)).copied().unwrap_or(self.loss)
                };
                if p > 0.0 && self.rng.gen_bool(p.min(1.0)) {
                    self.dropped += 1;
                    lost_by.push(to);
                    continue;
                }
                let copies = if self.duplication > 0.0 && self.rng.gen_bool(self.duplication.min(1.0)) { 2 } else { 1 };
                for _ in 0..copies {
                    let jitter = if self.jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        Duration::from_nanos(self.rng.gen_range(0..self.jitter.as_nanos() as u64))
                    };
                    self.order += 1;
                    self.queue.push(Reverse(InFlight {
                        at: self.now + self.latency + jitter,
                        order: self.order,
                        to,
                        from: if self.sourceless { super::NO_SOURCE_ADDRESS } else { self.nodes[i].addr },
                        payload: t.payload.to_vec(),
                    }));
                }
            }
            if self.watched == Some(i) {
                self.transmissions.push(Transmission { at: self.now, payload: t.payload, lost_by });
            }
        }
    }

    /// Hands `datagram` to endpoint `to` now, then collects and sends what it produced.
    fn deliver(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) {
        let now = self.now;
        let node = &mut self.nodes[to];
        timed(&mut node.busy, || node.endpoint.handle_datagram(now, from, datagram));
        self.collect(to);
        self.flush(to);
    }

    fn collect(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        while let Some(o) = timed(&mut node.busy, || node.endpoint.poll_output()) {
            match o {
                Output::Event(e) => node.events.push(e),
                Output::Gap { sender, count } => node.gaps.push((sender, count)),
                Output::VersionMismatch { version, .. } => node.version_errors.push(version),
                Output::Peer(c) => node.peer_changes.push(*c),
                Output::Request(r) => node.requests.push(*r),
                Output::Reply(r) => node.replies.push(*r),
            }
        }
    }

    /// The next instant something happens (a datagram arrives or a timer fires).
    pub fn next_event(&self) -> Option<Instant> {
        let timers = self.nodes.iter().filter_map(|n| n.endpoint.poll_timeout()).min();
        let arrival = self.queue.peek().map(|Reverse(f)| f.at);
        [timers, arrival].into_iter().flatten().min()
    }

    /// Advances to the next event and processes everything due then; false when idle.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_event() else { return false };
        self.advance_to(at);
        true
    }

    fn advance_to(&mut self, at: Instant) {
        self.now = self.now.max(at);
        let now = self.now;
        while self.queue.peek().is_some_and(|Reverse(f)| f.at <= now) {
            let Reverse(f) = self.queue.pop().expect("peeked");
            self.delivered += 1;
            self.deliver(f.to, f.from, &f.payload);
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].endpoint.poll_timeout().is_some_and(|t| t <= now) {
                let node = &mut self.nodes[i];
                timed(&mut node.busy, || node.endpoint.handle_timeout(now));
                self.collect(i);
                self.flush(i);
            }
        }
    }

    /// Runs until no datagram is in flight and no timer is armed, or `limit`
    /// of virtual time has passed; returns whether it became idle.
    pub fn run_until_idle_within(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        while let Some(at) = self.next_event() {
            if at > end {
                self.now = end;
                return false;
            }
            self.advance_to(at);
        }
        true
    }

    /// [`Network::run_until_idle_within`] with a limit of one virtual hour.
    pub fn run_until_idle(&mut self) -> bool {
        self.run_until_idle_within(Duration::from_secs(3600))
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.next_event().filter(|&at| at <= end) {
            self.advance_to(at);
        }
        self.now = end;
    }
}

/// Runs `f`, adding the real time it took to `busy`.
fn timed<T>(busy: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let out = f();
    *busy += t0.elapsed();
    out
}
