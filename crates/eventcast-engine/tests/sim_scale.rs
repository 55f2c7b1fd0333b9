//! How the cost of repair grows with the group (issue 26): one sender, R
//! receivers, each link losing 5% of datagrams independently, 2,000 small
//! events and 5 messages of 100 KiB.
//!
//! Per run it measures, and the tests assert:
//!
//! * every receiver completes: all 2,005 events delivered once, no gap;
//! * **repairs sent ≤ 1.2 × the union of losses**. *Repairs sent* is the
//!   sender's `repairs_sent` counter (every resent datagram). The *union of
//!   losses* is the number of distinct data datagrams of the sender (chunks
//!   and single-datagram events, not heartbeats) whose *first* transmission
//!   the loss model dropped for at least one receiver: the least any repair
//!   scheme that resends to the whole group must send. Counted exactly from
//!   the simulator's record of what the sender transmitted and who lost it
//!   ([`Network::watch`]); a resend has the same bytes as the first send, so
//!   the first transmission of each distinct payload is the original;
//! * **repair requests per receiver fall as R grows** (NACK suppression: of
//!   the receivers missing the same data, the first to ask makes the others
//!   wait for the answer).
//!
//! Resends are lost too, so even a perfect scheme (no FEC) sends more than
//! the union: a datagram lost by k receivers needs
//! `1 + Σₙ≥₁ (1 − (1 − pⁿ)ᵏ)` sends in expectation, which over the
//! binomial k is 1.07 × the union at R = 10 and 16, 1.14 at R = 50 and
//! **1.42 at R = 200** (p = 5%). So 1.2 holds at R = 10 and 50 and cannot at R = 200;
//! there the bound checked is 1.5.
//!
//! At R = 200 the sender's node-wide repair budget (about the bytes it
//! emitted, plus 64 KiB/s; see the `repair` module docs) is below that 1.42 ×
//! everything it sent: with the default limits some receivers give up on a
//! 100 KiB message (reported as gaps, `repairsBudgetLimited` at the sender).
//! The table shows that run and one with a repair floor of 1 MiB/s, where
//! every receiver completes.
//!
//! Reported, not asserted (no timing assertions): the sender's CPU per
//! receiver, the real time spent in the sender's `Endpoint` calls during the
//! run ([`eventcast_engine::protocol::sim::SimNode::busy`]) divided by R. It
//! means something only in a release build:
//! `cargo test --release -p eventcast-engine --test sim_scale -- --ignored --nocapture`
//! prints the table of `bench/README.md`.
//!
//! `npm test` (a debug build) runs R = 10 and R = 50, which also checks that
//! requests per receiver fall from one to the other; R = 200 takes minutes in
//! a debug build and is `#[ignore]`d (the command above runs it).

use bson::Bson;
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::Config;
use eventcast_engine::wire;
use std::collections::HashMap;
use std::time::Duration;

const SMALL: i32 = 2_000;
const BIG: i32 = 5;
const BIG_BYTES: usize = 100 * 1024;
const LOSS: f64 = 0.05;
/// Small events emitted per millisecond of virtual time.
const PER_MS: i32 = 10;

/// What one run measured.
struct Outcome {
    receivers: usize,
    complete: usize,
    data_datagrams: usize,
    union: usize,
    losses_per_receiver: f64,
    repairs_sent: u64,
    requests_per_receiver: f64,
    suppressed_per_receiver: f64,
    sender_cpu_per_receiver: Duration,
    virtual_time: Duration,
    /// The sender's `repairs_budget_limited`.
    budget_limited: u64,
}

impl Outcome {
    fn ratio(&self) -> f64 {
        self.repairs_sent as f64 / self.union as f64
    }

    fn row(&self) -> String {
        format!(
            "| {} | {}/{} | {} of {} | {:.1} | {} | {:.2} | {:.1} | {:.1} | {:.1} µs | {} | {:.1} s |",
            self.receivers,
            self.complete,
            self.receivers,
            self.union,
            self.data_datagrams,
            self.losses_per_receiver,
            self.repairs_sent,
            self.ratio(),
            self.requests_per_receiver,
            self.suppressed_per_receiver,
            self.sender_cpu_per_receiver.as_secs_f64() * 1e6,
            self.budget_limited,
            self.virtual_time.as_secs_f64(),
        )
    }
}

const HEADER: &str = "| R | receivers complete | union of losses (of data datagrams) | losses per receiver | \
repairs sent | repairs / union | repair requests per receiver | requests suppressed per receiver | \
sender CPU per receiver | resends over budget | virtual time |";

/// The workload with `r` receivers; every 400 small events one big one.
fn run(r: usize, seed: u64) -> Outcome {
    run_with(r, seed, Config::default())
}

/// [`run`] with the sender configured by `sender_config`.
fn run_with(r: usize, seed: u64, sender_config: Config) -> Outcome {
    let mut net = Network::new(seed);
    let sender = net.add_endpoint(sender_config);
    let receivers: Vec<usize> = (0..r).map(|_| net.add_endpoint(Config::default())).collect();
    net.set_loss(LOSS);
    net.watch(sender);
    let mut big = 0;
    for i in 0..SMALL {
        net.emit(sender, "small", &[Bson::Int32(i), Bson::String(format!("small event {i}"))]).unwrap();
        if i % 400 == 399 {
            net.emit(sender, "big", &[Bson::Int32(big), Bson::Binary(big_payload(big))]).unwrap();
            big += 1;
        }
        if i % PER_MS == PER_MS - 1 {
            net.run_for(Duration::from_millis(1));
        }
    }
    assert_eq!(big, BIG);
    assert!(net.run_until_idle(), "the run ends (no timer left armed)");

    let complete = receivers.iter().filter(|&&i| completed(&net, i)).count();
    // Nothing lost silently: what a receiver lacks it reported as gaps.
    for &i in &receivers {
        let gaps: u64 = net.node(i).gaps.iter().map(|g| g.1).sum();
        assert_eq!(net.events(i).len() as u64 + gaps, (SMALL + BIG) as u64, "receiver {i}: {:?}", net.stats(i));
    }
    // What the incomplete ones lack (the first few).
    for &i in receivers.iter().filter(|&&i| !completed(&net, i)).take(3) {
        let bigs: Vec<i32> =
            net.events(i).iter().filter(|e| e.name == "big").map(|e| e.args[0].as_i32().unwrap()).collect();
        eprintln!("R = {r}: receiver {i} incomplete: big messages delivered {bigs:?}, gaps {:?}", net.node(i).gaps);
    }
    let (data_datagrams, union, losses, resends) = losses(&net);
    let s = net.stats(sender);
    // The record and the counter see the same resends: each is checked by the other.
    assert_eq!(resends, s.repairs_sent, "resends seen on the wire = the sender's repairsSent");
    let budget_limited = s.repairs_budget_limited;
    let per = |f: &dyn Fn(usize) -> u64| receivers.iter().map(|&i| f(i)).sum::<u64>() as f64 / r as f64;
    Outcome {
        receivers: r,
        complete,
        data_datagrams,
        union,
        losses_per_receiver: losses as f64 / r as f64,
        repairs_sent: s.repairs_sent,
        requests_per_receiver: per(&|i| net.stats(i).repairs_requested),
        suppressed_per_receiver: per(&|i| net.stats(i).repair_requests_suppressed),
        sender_cpu_per_receiver: net.node(sender).busy / r as u32,
        virtual_time: net.elapsed(),
        budget_limited,
    }
}

fn big_payload(k: i32) -> bson::Binary {
    let bytes = (0..BIG_BYTES).map(|j| (j as u32).wrapping_mul(2_654_435_761).wrapping_add(k as u32) as u8).collect();
    bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes }
}

/// Receiver `i` delivered every event exactly once, with the right content, and reported no gap.
fn completed(net: &Network, i: usize) -> bool {
    let mut small = vec![0u32; SMALL as usize];
    let mut big = vec![0u32; BIG as usize];
    for e in net.events(i) {
        let k = e.args[0].as_i32().expect("an index") as usize;
        match (e.name.as_str(), &e.args[1]) {
            ("small", Bson::String(s)) if *s == format!("small event {k}") => small[k] += 1,
            ("big", Bson::Binary(b)) if *b == big_payload(k as i32) => big[k] += 1,
            _ => return false,
        }
    }
    net.node(i).gaps.is_empty() && small.iter().chain(&big).all(|&n| n == 1)
}

/// From the record of the sender's transmissions: (distinct data datagrams,
/// the union of their first transmissions' losses, the sum over receivers of
/// those losses, resends of data datagrams).
fn losses(net: &Network) -> (usize, usize, u64, u64) {
    let mut first: HashMap<&[u8], usize> = HashMap::new();
    let mut resends = 0;
    for t in net.transmissions() {
        let d = wire::decode_datagram_ref(&t.payload).expect("the sender's datagrams decode");
        if !matches!(d.meta.name, Some("small" | "big")) {
            continue; // heartbeats: never retained, never repaired
        }
        match first.get(&*t.payload) {
            Some(_) => resends += 1,
            None => {
                first.insert(&t.payload, t.lost_by.len());
            }
        }
    }
    let union = first.values().filter(|&&n| n > 0).count();
    let sum = first.values().map(|&n| n as u64).sum();
    (first.len(), union, sum, resends)
}

fn check(o: &Outcome, max_ratio: f64) {
    eprintln!("{HEADER}\n{}", o.row());
    assert_eq!(o.complete, o.receivers, "every receiver completes");
    assert!(o.union > 0, "the loss model dropped something");
    assert!(o.ratio() <= max_ratio, "repairs sent {} > {max_ratio} × union of losses {}", o.repairs_sent, o.union);
}

fn fewer_requests(small: &Outcome, large: &Outcome) {
    assert!(
        large.requests_per_receiver < small.requests_per_receiver,
        "repair requests per receiver: {:.1} at R = {}, {:.1} at R = {}",
        small.requests_per_receiver,
        small.receivers,
        large.requests_per_receiver,
        large.receivers
    );
}

#[test]
fn group_of_10_and_50_repairs_within_the_union_and_fewer_requests_each() {
    let ten = run(10, 26);
    check(&ten, 1.2);
    let fifty = run(50, 26);
    check(&fifty, 1.2);
    fewer_requests(&ten, &fifty);
}

#[test]
#[ignore = "minutes in a debug build; the table of bench/README.md: cargo test --release -p eventcast-engine --test sim_scale -- --ignored --nocapture"]
fn group_scaling_table() {
    let mut roomy = Config::default();
    roomy.limits.repair_floor_bytes_per_sec = 1 << 20;
    let ten = run(10, 26);
    // The network lab's group (tests/lab/scale.js), for comparison.
    let sixteen = run(16, 26);
    let fifty = run(50, 26);
    let two_hundred = run(200, 26);
    let two_hundred_roomy = run_with(200, 26, roomy);
    eprintln!("\n{HEADER}\n|---|---|---|---|---|---|---|---|---|---|---|");
    for o in [&ten, &sixteen, &fifty, &two_hundred, &two_hundred_roomy] {
        eprintln!("{}", o.row());
    }
    check(&ten, 1.2);
    check(&sixteen, 1.2);
    check(&fifty, 1.2);
    // The default budget is below what 200 receivers need (see the module docs).
    assert!(two_hundred.budget_limited > 0);
    check(&two_hundred_roomy, 1.5);
    fewer_requests(&ten, &sixteen);
    fewer_requests(&sixteen, &fifty);
    fewer_requests(&fifty, &two_hundred_roomy);
}
