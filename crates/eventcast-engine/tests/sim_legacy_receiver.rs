//! Do 0.1.x receivers get our large messages under loss?
//!
//! A model of the real eventcast 0.1.2 receiver (`lib/MessageBuffer.js`,
//! `lib/Eventcast.js`), which the network lab checks against the real thing
//! (`tests/lab/`, scenario `mixed-012-10`):
//!
//! * every chunk of a chunk group (re)arms a `messageTtl` (3 s) timer on its
//!   partial message; when it fires, the receiver sends **one** `__ec_retx`
//!   request `{id, seqId, missedSeq, host, port}` (none of our extensions)
//!   unicast to the `host:port` that the partial's lowest chunk advertises,
//!   and arms a second timer that drops the partial `messageTtl` after the
//!   request, whatever arrives meanwhile (chunks re-arm only the first timer;
//!   its retry counter is never incremented, so there is no second request);
//! * a message is complete when its highest chunk is the last one and every
//!   index below it is present; it is then delivered and forgotten;
//! * it remembers nothing about completed or dropped groups: a chunk that
//!   arrives afterwards (a second copy of a repair, or a repair another
//!   receiver asked for, which reaches everyone on the group) starts a new
//!   partial, which asks 3 s later for every other chunk of the message and,
//!   if they come, delivers the message **again**.
//!
//! Our sender (a real [`Endpoint`]) emits 100 KiB messages (~100 chunks) at
//! the lab's pace to two such receivers, with 10% random loss on the
//! receivers' input. Required: at least 90% of the messages delivered at each
//! receiver, and never twice.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson};
use eventcast_engine::protocol::{Config, Destination, Endpoint, Identity, RepairRequest};
use eventcast_engine::wire::{self, Meta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// 0.1.2's default `messageTtl`.
const TTL: Duration = Duration::from_millis(3000);
const LATENCY: Duration = Duration::from_micros(300);
/// Time a 0.1.2 receiver spends on one chunk (it decodes BSON in JavaScript):
/// in the lab, a 100 KiB message (101 chunks) takes it about 17 ms. Chunks
/// queue behind each other, so two receivers that lost different chunks fire
/// their timers a few milliseconds apart, and a repair one of them asked for
/// can reach the other before its own timer fires, which re-arms it.
const SERVICE: Duration = Duration::from_micros(170);
const RECEIVERS: usize = 2;

/// Where a datagram goes in the model.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum To {
    Sender(usize),
    Receiver(usize),
}

/// One partial message at a 0.1.2 receiver (`_incomingMessages[seqId]`).
struct Partial {
    /// Chunk index → its `seqEnd`.
    chunks: BTreeMap<i32, bool>,
    /// `seqLen` of each chunk (0.1.2 reads the lowest chunk's when it asks).
    seq_len: HashMap<i32, i32>,
    /// `_timers.receive`: re-armed by every chunk, cleared when it fires.
    receive_at: Option<Instant>,
    /// `_timers.nack`: armed when the one request goes out; drops the partial.
    expire_at: Option<Instant>,
}

impl Partial {
    /// 0.1.2's `isComplete`: the highest chunk present ends the message and
    /// the count of chunks equals its index + 1.
    fn is_complete(&self) -> bool {
        self.chunks.last_key_value().is_some_and(|(&seq, &end)| end && seq as usize == self.chunks.len() - 1)
    }
}

/// A 0.1.2 receiver, as its source behaves.
struct LegacyReceiver {
    id: String,
    partials: HashMap<String, Partial>,
    /// Deliveries per chunk group (more than one is a duplicate event).
    delivered: HashMap<String, u32>,
    requests_sent: u64,
    expired: u64,
}

impl LegacyReceiver {
    fn new(i: usize) -> Self {
        LegacyReceiver {
            id: format!("{:016x}", 0xb0 + i),
            partials: HashMap::new(),
            delivered: HashMap::new(),
            requests_sent: 0,
            expired: 0,
        }
    }

    fn on_datagram(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(d) = wire::decode_datagram(bytes) else { return };
        let m = d.meta;
        // `isMultipart`: single datagrams (heartbeats) are delivered at once and do not matter here.
        if m.seq_end && m.seq <= 0 {
            return;
        }
        let p = self.partials.entry(m.seq_id.clone()).or_insert_with(|| Partial {
            chunks: BTreeMap::new(),
            seq_len: HashMap::new(),
            receive_at: None,
            expire_at: None,
        });
        // A duplicate chunk is not stored again, but it re-arms the timer all the same.
        p.chunks.entry(m.seq).or_insert(m.seq_end);
        p.seq_len.entry(m.seq).or_insert(m.seq_len);
        p.receive_at = Some(now + TTL);
        if p.is_complete() {
            self.partials.remove(&m.seq_id);
            // Other chunked messages (our forwarded requests) reach 0.1.2's `_retransmit`, which finds nothing to resend.
            if m.name.as_deref() == Some("big") {
                *self.delivered.entry(m.seq_id).or_insert(0) += 1;
            }
        }
    }

    /// Runs timers; returns the requests to send to the sender.
    fn on_timers(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut expired = Vec::new();
        for (seq_id, p) in &mut self.partials {
            // The drop timer was armed first and never later than a re-armed chunk timer.
            if let Some(at) = p.expire_at {
                if now >= at {
                    expired.push(seq_id.clone());
                }
                continue;
            }
            if p.receive_at.is_some_and(|at| now >= at) {
                p.receive_at = None;
                let (lowest, _) = p.chunks.first_key_value().expect("a partial holds a chunk");
                let seq_len = p.seq_len[lowest];
                let missed_seq: Vec<i32> = (0..seq_len).filter(|s| !p.chunks.contains_key(s)).collect();
                out.push(legacy_request(&self.id, seq_id, missed_seq));
                self.requests_sent += 1;
                p.expire_at = Some(now + TTL);
            }
        }
        for s in expired {
            self.partials.remove(&s);
            self.expired += 1;
        }
        out
    }

    fn next_timer(&self) -> Option<Instant> {
        self.partials.values().filter_map(|p| p.expire_at.or(p.receive_at)).min()
    }

    fn completed(&self) -> usize {
        self.delivered.len()
    }

    fn duplicates(&self) -> u64 {
        self.delivered.values().map(|&n| u64::from(n) - 1).sum()
    }
}

/// A `__ec_retx` datagram as a 0.1.x receiver `id` writes it (no `sn`/`to`).
fn legacy_request(id: &str, seq_id: &str, missed_seq: Vec<i32>) -> Vec<u8> {
    let req = RepairRequest {
        id: id.to_owned(),
        seq_id: seq_id.to_owned(),
        missed_seq,
        host: "10.0.0.9".into(),
        port: 9000,
        missed_sn: Vec::new(),
        to: None,
        relayed: false,
    };
    let meta = Meta {
        v: 3,
        seq: 0,
        seq_len: 1,
        seq_id: "cd".repeat(20),
        seq_end: true,
        name: Some("__ec_retx".into()),
        host: Some("10.0.0.9".into()),
        port: Some(9000),
        hostname: Some("legacy".into()),
        id: Some(id.to_owned()),
        time: Some("2024-01-01T00:00:00.000Z".into()),
        ..Meta::default()
    };
    let mut d = Vec::new();
    wire::encode_datagram(&meta, &wire::encode_document_body(&req.to_document()), &mut d);
    d
}

/// Datagrams in flight: (arrival, order, destination, bytes), earliest first.
type Queue = BinaryHeap<Reverse<(Instant, u64, To, Vec<u8>)>>;

/// The network and the receivers' input queues.
struct Net {
    queue: Queue,
    order: u64,
    /// When each receiver is done with the chunks queued for it.
    busy: [Instant; RECEIVERS],
}

impl Net {
    fn push(&mut self, at: Instant, to: To, bytes: Vec<u8>) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, to, bytes)));
    }
}

/// Hands the sender's transmits (to the group) to both receivers, each losing `loss` of them.
fn transmit(sender: &mut Endpoint, now: Instant, net: &mut Net, rng: &mut StdRng, loss: f64) {
    while let Some(t) = sender.poll_transmit() {
        assert_eq!(t.destination, Destination::Group, "repairs go to the group");
        for r in 0..RECEIVERS {
            if rng.gen_bool(loss) {
                continue;
            }
            let at = (now + LATENCY).max(net.busy[r]) + SERVICE;
            net.busy[r] = at;
            net.push(at, To::Receiver(r), t.payload.to_vec());
        }
    }
}

/// What one run did.
#[derive(Default, Debug)]
struct Outcome {
    /// Messages delivered, at each receiver.
    delivered: Vec<usize>,
    duplicates: u64,
    requests: u64,
    expired: u64,
}

/// Emits `messages` 100 KiB messages at 4/s (the lab's pace) from our sender
/// to two 0.1.2 receivers with `loss` on the receivers' input, and runs until
/// everything has settled.
fn run(seed: u64, messages: usize, loss: f64) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = Instant::now();
    let wall0 = SystemTime::now();
    let identity =
        Identity { id: "00000000000000a1".into(), host: "10.0.0.1".into(), port: 9000, hostname: "ours".into() };
    let mut sender = Endpoint::new(Config::default(), identity, seed, t0, wall0).unwrap();
    let mut receivers: Vec<LegacyReceiver> = (0..RECEIVERS).map(LegacyReceiver::new).collect();
    // 0.1.2 sends from its one socket, bound to the group port.
    let sources: Vec<SocketAddr> = (0..RECEIVERS).map(|r| SocketAddr::from(([10, 0, 0, 10 + r as u8], 9000))).collect();
    let mut net = Net { queue: BinaryHeap::new(), order: 0, busy: [t0; RECEIVERS] };
    let mut now = t0;
    let pace = Duration::from_millis(250);
    // Long enough for the sender's retention (3 × messageTtl) and every receiver timer to run out.
    let end = t0 + pace * messages as u32 + Duration::from_secs(60);
    for m in 0..=messages {
        let at = if m < messages { t0 + pace * m as u32 } else { end };
        loop {
            let next = [
                net.queue.peek().map(|Reverse((t, ..))| *t),
                sender.poll_timeout(),
                receivers.iter().filter_map(LegacyReceiver::next_timer).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|&n| n <= at) else { break };
            now = now.max(next);
            while net.queue.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
                let Reverse((_, _, to, bytes)) = net.queue.pop().unwrap();
                match to {
                    To::Sender(r) => sender.handle_datagram(now, sources[r], &bytes),
                    To::Receiver(r) => receivers[r].on_datagram(now, &bytes),
                }
            }
            if sender.poll_timeout().is_some_and(|t| t <= now) {
                sender.handle_timeout(now);
            }
            for (r, recv) in receivers.iter_mut().enumerate() {
                for req in recv.on_timers(now) {
                    // Requests reach the sender (the loss is on the receivers' input).
                    net.push(now + LATENCY, To::Sender(r), req);
                }
            }
            transmit(&mut sender, now, &mut net, &mut rng, loss);
        }
        now = now.max(at);
        if m < messages {
            let body = Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![m as u8; 100 * 1024] });
            sender.emit(now, wall0 + (now - t0), "big", &[body]).unwrap();
            transmit(&mut sender, now, &mut net, &mut rng, loss);
        }
    }
    assert!(receivers.iter().all(|r| r.partials.is_empty()), "every partial settled");
    Outcome {
        delivered: receivers.iter().map(LegacyReceiver::completed).collect(),
        duplicates: receivers.iter().map(LegacyReceiver::duplicates).sum(),
        requests: receivers.iter().map(|r| r.requests_sent).sum(),
        expired: receivers.iter().map(|r| r.expired).sum(),
    }
}

#[test]
fn legacy_receivers_complete_large_messages_at_10_percent_loss_once_each() {
    let messages = 10;
    let (mut worst, mut done, mut total, mut duplicates, mut requests, mut expired) = (messages, 0, 0, 0, 0, 0);
    for seed in 0..10 {
        let o = run(seed, messages, 0.10);
        println!("seed {seed}: {o:?}");
        worst = worst.min(*o.delivered.iter().min().unwrap());
        done += o.delivered.iter().sum::<usize>();
        total += RECEIVERS * messages;
        duplicates += o.duplicates;
        requests += o.requests;
        expired += o.expired;
    }
    println!(
        "0.1.2 receivers delivered {done}/{total}, worst {worst}/{messages} at one receiver, {duplicates} duplicates \
         ({requests} requests, {expired} partials dropped)"
    );
    assert!(worst * 10 >= messages * 9, "a receiver got only {worst}/{messages}");
    assert_eq!(duplicates, 0, "0.1.2 receivers delivered messages twice");
}

fn endpoint(id: &str, t0: Instant, wall0: SystemTime) -> Endpoint {
    let identity = Identity { id: id.into(), host: "10.0.0.1".into(), port: 9000, hostname: "shared-host".into() };
    Endpoint::new(Config::default(), identity, 7, t0, wall0).unwrap()
}

fn drain(e: &mut Endpoint) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| e.poll_transmit()).map(|t| t.payload.to_vec()).collect()
}

/// Two of our nodes share one host and port with the sender; the kernel hands
/// a 0.1.x receiver's unicast request to the node that does not hold the data.
/// It forwards the request to the group once; the real sender answers.
#[test]
fn a_legacy_request_landing_on_the_wrong_node_of_a_shared_host_is_relayed_once() {
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let src: SocketAddr = "10.0.0.9:9000".parse().unwrap();
    let mut sender = endpoint("00000000000000a1", t0, wall0);
    let mut other = endpoint("00000000000000a2", t0, wall0);
    let mut third = endpoint("00000000000000a3", t0, wall0);
    let body = Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![7; 20 * 1024] });
    sender.emit(t0, wall0, "big", &[body]).unwrap();
    let chunks = drain(&mut sender);
    let seq_id = wire::decode_datagram(&chunks[0]).unwrap().meta.seq_id;
    let now = t0 + Duration::from_millis(3100);
    let request = legacy_request("00000000000000b0", &seq_id, vec![2, 5, 9]);

    // The request lands on `other`, which holds nothing of that group.
    other.handle_datagram(now, src, &request);
    let relayed = drain(&mut other);
    assert_eq!(relayed.len(), 1, "{:?}", other.stats());
    assert_eq!(other.stats().repair_requests_relayed, 1);
    // Twice the same request (0.1.x asks once; a forger may repeat): forwarded once.
    other.handle_datagram(now, src, &request);
    assert!(drain(&mut other).is_empty());
    assert_eq!(other.stats().repair_requests_relayed, 1);

    // The sender answers the forwarded request: chunks 2, 5, 9, in the copies
    // a 0.1.x requester gets.
    let from_other: SocketAddr = "10.0.0.1:40001".parse().unwrap();
    sender.handle_datagram(now, from_other, &relayed[0]);
    let mut answered = drain(&mut sender);
    sender.handle_timeout(now + Duration::from_millis(50));
    answered.extend(drain(&mut sender));
    let seqs: Vec<i32> = answered.iter().map(|d| wire::decode_datagram(d).unwrap().meta.seq).collect();
    for s in [2, 5, 9] {
        assert!(seqs.iter().filter(|&&x| x == s).count() >= 2, "chunk {s} in {seqs:?}");
    }
    assert_eq!(sender.stats().repair_requests_relayed, 0, "the holder answers, it does not forward");

    // A node that does not hold the data either never forwards a forwarded request.
    third.handle_datagram(now, from_other, &relayed[0]);
    assert!(drain(&mut third).is_empty());
    assert_eq!(third.stats().repair_requests_relayed, 0);
}

/// 0.1.2 asks once per partial message and forgets a group once it is
/// complete: a second request from the same receiver for the same group comes
/// from a partial that late copies started there. Answering it resent nearly
/// the whole message in three copies and delivered it a second time; it is
/// neither answered nor forwarded, also after the message left retention.
/// Another receiver's first request for that group is answered as ever.
#[test]
fn a_second_legacy_request_from_one_source_for_one_group_is_not_answered() {
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let mut sender = endpoint("00000000000000a1", t0, wall0);
    let body = Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![7; 20 * 1024] });
    sender.emit(t0, wall0, "big", &[body]).unwrap();
    let chunks = drain(&mut sender);
    let seq_id = wire::decode_datagram(&chunks[0]).unwrap().meta.seq_id;
    let (a, b): (SocketAddr, SocketAddr) = ("10.0.0.9:9000".parse().unwrap(), "10.0.0.10:9000".parse().unwrap());
    // Chunks of the message sent within 100 ms (heartbeats aside).
    let answered = |sender: &mut Endpoint, now: Instant| {
        let mut out = drain(sender);
        sender.handle_timeout(now + Duration::from_millis(100));
        out.extend(drain(sender));
        out.iter().filter(|d| wire::decode_datagram(d).is_ok_and(|d| d.meta.seq_id == seq_id)).count()
    };

    // The first request from `a` is answered, in copies.
    let now = t0 + Duration::from_millis(3100);
    sender.handle_datagram(now, a, &legacy_request("00000000000000b0", &seq_id, vec![2, 5, 9]));
    assert!(answered(&mut sender, now) >= 6, "{:?}", sender.stats());

    // Its stray partial asks 3 s later for everything else: ignored.
    let later = now + Duration::from_millis(3100);
    let rest: Vec<i32> = (0..chunks.len() as i32).filter(|s| ![2, 5, 9].contains(s)).collect();
    sender.handle_datagram(later, a, &legacy_request("00000000000000b0", &seq_id, rest.clone()));
    assert_eq!(answered(&mut sender, later), 0, "{:?}", sender.stats());
    assert_eq!(sender.stats().legacy_repeat_requests_ignored, 1);

    // Another receiver's first request for the group is answered.
    sender.handle_datagram(later, b, &legacy_request("00000000000000b1", &seq_id, vec![4]));
    assert!(answered(&mut sender, later) >= 2, "{:?}", sender.stats());

    // After the message left retention (3 × messageTtl), a stray request from
    // `a` is not forwarded to the group either.
    let gone = t0 + Duration::from_secs(20);
    sender.handle_timeout(gone);
    drain(&mut sender);
    sender.handle_datagram(gone, a, &legacy_request("00000000000000b0", &seq_id, rest));
    assert_eq!(answered(&mut sender, gone), 0, "{:?}", sender.stats());
    assert_eq!(sender.stats().repair_requests_relayed, 0);
    assert_eq!(sender.stats().legacy_repeat_requests_ignored, 2);
}
