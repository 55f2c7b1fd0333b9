//! The driver under pressure: send backpressure on a slow
//! link, the stall guard of polled receiving, supervised tasks. Real nodes on
//! loopback multicast, inside a private network namespace
//! (`node scripts/netns.js cargo test --test node_driver`).

mod node_support;

use bson::Bson;
use eventcast::DriverTask;
use eventcast::{Error, Eventcast, Events, Notification, Status};
use node_support::{is_presence, skip_outside_netns, started, test_options};
use std::time::{Duration, Instant};

/// Resident set size of this process, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

/// Waits for the next notification matching `pred`, up to `within`.
async fn wait_for(events: &mut Events, within: Duration, mut pred: impl FnMut(&Notification) -> bool) -> Notification {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(n)) if pred(&n) => return n,
            Ok(Some(_)) => {}
            Ok(None) => panic!("subscription closed"),
            Err(_) => panic!("nothing matching within {within:?}"),
        }
    }
}

async fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// 100 × 1 MiB into a 40 MB/s link (the test hook): emit refuses with
/// EBACKPRESSURE once 4 MiB wait, 'drain' lets it resume, the queue and the
/// memory stay bounded, everything arrives, and a small event emitted after
/// a drain leaves promptly. Without the bound every emit
/// was accepted at once and the queue held ~100 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_bounds_the_send_queue_and_drain_resumes_emitting() {
    if skip_outside_netns("a_slow_link_bounds_the_send_queue_and_drain_resumes_emitting") {
        return;
    }
    let mut options = test_options();
    options.send_queue_bytes = 4 * 1024 * 1024;
    options.message_ttl = Duration::from_millis(500); // retention 1.5 s
    let receiver = started(options.clone()).await;
    let mut received = receiver.subscribe();
    // The receiving application: counts the big events, notes when the small one arrives.
    let consumer = tokio::spawn(async move {
        let (mut bigs, mut small_at) = (0, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while bigs < 100 || small_at.is_none() {
            match tokio::time::timeout_at(deadline, received.recv()).await {
                Ok(Some(Notification::Event(e))) if e.name == "big" => bigs += 1,
                Ok(Some(Notification::Event(e))) if e.name == "small" => small_at = Some(Instant::now()),
                Ok(Some(n)) if is_presence(&n) => {}
                Ok(Some(other)) => panic!("unexpected {other:?}"),
                Ok(None) | Err(_) => break,
            }
        }
        (bigs, small_at)
    });
    let sender = started(options).await;
    let mut sender_events = sender.subscribe();
    sender.throttle_sends(Some(40_000_000));
    let big = Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![7u8; 1 << 20] });
    let rss0 = rss();
    let (mut accepted, mut refused, mut max_queue, mut max_rss) = (0, 0u64, 0u64, 0u64);
    let mut small_emitted = None;
    let started_at = Instant::now();
    while accepted < 100 {
        match sender.emit("big", std::slice::from_ref(&big)) {
            Ok(()) => accepted += 1,
            Err(Error::Backpressure { queued, limit }) => {
                assert_eq!(limit, 4 * 1024 * 1024);
                assert!(queued >= limit);
                refused += 1;
                wait_for(&mut sender_events, Duration::from_secs(10), |n| matches!(n, Notification::Drain)).await;
                let s = sender.stats();
                // Drained to half; between the drain notice and this read the
                // timer task may queue a heartbeat or a repair (hundreds of
                // bytes; seen in CI under load): one datagram of slack.
                let slack = 65_536;
                assert!(s.send_queue_bytes <= 2 * 1024 * 1024 + slack, "drained to half: {}", s.send_queue_bytes);
                if small_emitted.is_none() {
                    sender.emit("small", &[Bson::Int32(1)]).unwrap();
                    small_emitted = Some(Instant::now());
                }
            }
            Err(e) => panic!("emit: {e}"),
        }
        max_queue = max_queue.max(sender.stats().send_queue_bytes);
        max_rss = max_rss.max(rss());
    }
    let emit_time = started_at.elapsed();
    // Everything arrives; the small one promptly after its emit.
    let (bigs, small_at) = consumer.await.unwrap();
    let small_latency = small_at.zip(small_emitted).map(|(at, emitted)| at.saturating_duration_since(emitted));
    let s = sender.stats();
    eprintln!(
        "100 x 1 MiB at 40 MB/s: {emit_time:?}, {refused} refusals, queue max {max_queue} B, RSS +{} MiB, \
         small event emitted after a drain arrived in {small_latency:?}",
        (max_rss.saturating_sub(rss0)) >> 20
    );
    assert_eq!(bigs, 100, "every big event arrived");
    assert!(refused >= 10, "the queue filled again and again: {refused}");
    assert_eq!(s.send_queue_full, refused);
    // Below the bound when accepted, plus that one message (its 1,024 datagrams
    // carry ~250 B of meta each).
    assert!(max_queue < 4 * 1024 * 1024 + (1 << 20) * 13 / 10, "queue max {max_queue}");
    // Retention (1.5 s at 40 MB/s ~ 60 MB) and the receiver's buffers, not
    // the 100 MiB an unbounded queue held on top.
    assert!(max_rss.saturating_sub(rss0) < 100 << 20, "RSS grew by {} MiB", (max_rss - rss0) >> 20);
    let small_latency = small_latency.expect("the small event arrived");
    assert!(small_latency < Duration::from_millis(500), "small event took {small_latency:?}");
    sender.stop().await.unwrap();
    receiver.stop().await.unwrap();
}

/// Polled mode with a caller that never calls `receive()` (a JS thread blocked
/// from before the burst): the stall guard still reads everything. Before
/// the hardening it slept until `receive()` woke it, and nothing was read at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stall_guard_reads_a_burst_that_starts_while_the_caller_is_blocked() {
    if skip_outside_netns("the_stall_guard_reads_a_burst_that_starts_while_the_caller_is_blocked") {
        return;
    }
    let options = test_options();
    let receiver = Eventcast::new(options.clone()).unwrap();
    receiver.start_polled().await.unwrap();
    let mut events = receiver.subscribe();
    let sender = started(options).await;
    // Long enough for the old guard to have gone to sleep (200 ms).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let total = 20_000i64;
    for chunk in 0..total / 1000 {
        for i in 0..1000 {
            sender.emit("n", &[Bson::Int64(chunk * 1000 + i)]).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut next = 0i64;
    while next < total {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Notification::Event(e))) => {
                assert_eq!(e.args, vec![Bson::Int64(next)], "in order");
                next += 1;
            }
            Ok(Some(n)) if is_presence(&n) => {}
            other => panic!("after {next} events: {other:?} ({:?})", receiver.stats()),
        }
    }
    assert_eq!(receiver.stats().repairs_requested, 0, "nothing was lost in the socket");
    sender.stop().await.unwrap();
    receiver.stop().await.unwrap();
}

/// Injects a panic into `task` of a started node (after `prepare`) and checks
/// the node reports EINTERNAL, ends up stopped, and can be started again.
async fn a_panicking_task_stops_the_node(task: DriverTask, polled: bool) {
    let options = test_options();
    let node = Eventcast::new(options.clone()).unwrap();
    if polled {
        node.start_polled().await.unwrap();
    } else {
        node.start().await.unwrap();
    }
    let mut events = node.subscribe();
    let peer = started(options).await;
    if task == DriverTask::SendFlush {
        // Something must wait in the queue for the flush to run.
        node.throttle_sends(Some(1));
        node.emit("queued", &[Bson::String("x".repeat(70_000))]).unwrap();
    }
    node.inject_fault(task);
    if task == DriverTask::Receive {
        peer.emit("wake", &[]).unwrap();
    }
    let n = wait_for(&mut events, Duration::from_secs(5), |n| matches!(n, Notification::Error { .. })).await;
    match n {
        Notification::Error { code, message } => {
            assert_eq!(code, "EINTERNAL");
            assert!(message.contains(task.name()), "{message}");
        }
        _ => unreachable!(),
    }
    assert!(wait_until(Duration::from_secs(5), || node.status() == Status::Stopped).await, "{:?}", node.status());
    assert!(node.local_addr().is_none(), "socket closed");
    assert!(matches!(node.emit("x", &[]), Err(Error::NotStarted)));
    // A fresh start works again and has healthy tasks.
    node.throttle_sends(None);
    node.start().await.unwrap();
    let mut got = peer.subscribe();
    node.emit("again", &[]).unwrap();
    let e = wait_for(&mut got, Duration::from_secs(5), |n| matches!(n, Notification::Event(_))).await;
    assert!(matches!(e, Notification::Event(e) if e.name == "again"));
    assert_eq!(node.status(), Status::Started);
    node.stop().await.unwrap();
    peer.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_timer_task_is_reported_and_stops_the_node() {
    if skip_outside_netns("a_panic_in_the_timer_task_is_reported_and_stops_the_node") {
        return;
    }
    a_panicking_task_stops_the_node(DriverTask::Timer, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_receive_task_is_reported_and_stops_the_node() {
    if skip_outside_netns("a_panic_in_the_receive_task_is_reported_and_stops_the_node") {
        return;
    }
    a_panicking_task_stops_the_node(DriverTask::Receive, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_stall_guard_is_reported_and_stops_the_node() {
    if skip_outside_netns("a_panic_in_the_stall_guard_is_reported_and_stops_the_node") {
        return;
    }
    a_panicking_task_stops_the_node(DriverTask::StallGuard, true).await;
}

/// The flush panics while holding the state lock: the poisoned lock is
/// reported too (once), not silently recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_send_flush_under_the_lock_is_reported_and_stops_the_node() {
    if skip_outside_netns("a_panic_in_the_send_flush_under_the_lock_is_reported_and_stops_the_node") {
        return;
    }
    a_panicking_task_stops_the_node(DriverTask::SendFlush, false).await;
}
