//! The NATS transport under server trouble, against real `nats-server`
//! processes: a three-server cluster, and a server killed and restarted in
//! the middle of 10,000 events (inside a private network namespace).

mod nats_support;
mod node_support;

use bson::Bson;
use eventcast::{Error, Eventcast, Events, NatsOptions, Notification, Options, Transport};
use nats_support::NatsServer;
use node_support::{random_port, skip_outside_netns};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn node_on(url: &str, port: u16) -> Eventcast {
    Eventcast::new(Options { transport: Transport::Nats(NatsOptions::new([url])), ..Options::with_port(port) }).unwrap()
}

/// Event names received until `deadline` (gaps and transport notices ignored).
async fn names_until(events: &mut Events, deadline: Instant, want: usize) -> Vec<String> {
    let mut names = Vec::new();
    while names.len() < want {
        match tokio::time::timeout_at(deadline.into(), events.recv()).await {
            Ok(Some(Notification::Event(e))) => names.push(e.name),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_the_three_servers_of_a_cluster_see_each_other() {
    if skip_outside_netns("nodes_on_the_three_servers_of_a_cluster_see_each_other") {
        return;
    }
    let servers = 'retry: loop {
        let cluster: Vec<u16> = (0..3).map(|_| random_port()).collect();
        let routes = cluster.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
        let mut servers = Vec::new();
        for &c in &cluster {
            let listen = format!("nats://127.0.0.1:{c}");
            let args = ["--cluster_name", "ec", "--cluster", &listen, "--routes", &routes];
            match NatsServer::start_on(random_port(), &args) {
                Some(s) => servers.push(s),
                None => continue 'retry,
            }
        }
        break servers;
    };
    let port = random_port();
    let nodes: Vec<Eventcast> = servers.iter().map(|s| node_on(&s.url(), port)).collect();
    let mut subs: Vec<Events> = nodes.iter().map(|n| n.subscribe()).collect();
    for n in &nodes {
        n.start().await.unwrap();
    }
    // Routes take a moment to form: probe until every node has heard every other one.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut heard = vec![HashSet::new(); 3];
    while heard.iter().any(|h| h.len() < 2) {
        assert!(Instant::now() < deadline, "the cluster did not connect the nodes: {heard:?}");
        for (i, n) in nodes.iter().enumerate() {
            n.emit(&format!("probe-{i}"), &[]).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (i, s) in subs.iter_mut().enumerate() {
            while let Some(note) = s.try_recv() {
                if let Notification::Event(e) = note {
                    heard[i].insert(e.name);
                }
            }
        }
    }
    // Then each node's 100 events reach the two others exactly once.
    for (i, n) in nodes.iter().enumerate() {
        for k in 0..100 {
            n.emit(&format!("ev-{i}-{k}"), &[Bson::Int32(k)]).unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (i, s) in subs.iter_mut().enumerate() {
        let names: Vec<String> =
            names_until(s, deadline, 200).await.into_iter().filter(|n| n.starts_with("ev-")).collect();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "node {i} got duplicates");
        assert_eq!(names.len(), 200, "node {i}: {} of 200 (on server {})", names.len(), servers[i].url());
        assert!(names.iter().all(|n| !n.starts_with(&format!("ev-{i}-"))), "node {i} heard itself");
    }
    for n in &nodes {
        n.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_during_10000_events_loses_nothing_silently() {
    if skip_outside_netns("a_server_killed_and_restarted_during_10000_events_loses_nothing_silently") {
        return;
    }
    const TOTAL: i32 = 10_000;
    let mut server = NatsServer::start(&[]);
    let port = random_port();
    let (a, b) = (node_on(&server.url(), port), node_on(&server.url(), port));
    let mut b_events = b.subscribe();
    let mut a_events = a.subscribe();
    a.start().await.unwrap();
    b.start().await.unwrap();

    let receiver = tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut duplicates = 0u64;
        let mut gaps = 0u64;
        let deadline = Instant::now() + Duration::from_secs(90);
        while (seen.len() as u64) + gaps < TOTAL as u64 {
            match tokio::time::timeout_at(deadline.into(), b_events.recv()).await {
                Ok(Some(Notification::Event(e))) => {
                    let Some(Bson::Int32(i)) = e.args.first() else { panic!("bad event {e:?}") };
                    if !seen.insert(*i) {
                        duplicates += 1;
                    }
                }
                Ok(Some(Notification::Gap { count, .. })) => gaps += count,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        (seen.len() as u64, gaps, duplicates)
    });

    let mut i = 0;
    let mut restarted = false;
    let started = Instant::now();
    // Sends run ahead of the server restart: kill it once 3,000 are out.
    while i < TOTAL {
        if i == 3_000 && !restarted {
            server.kill();
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.restart();
            restarted = true;
        }
        match a.emit("n", &[Bson::Int32(i)]) {
            Ok(()) => i += 1,
            Err(Error::Backpressure { .. }) => {
                // Wait for 'drain' (the client's queue and ours are full while reconnecting).
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(n) = a_events.recv().await {
                        if matches!(n, Notification::Drain) {
                            break;
                        }
                    }
                })
                .await;
            }
            Err(e) => panic!("emit {i}: {e}"),
        }
        // Paced (about 2,500/s, 4 s in all): events keep coming for seconds
        // after the restart, so a receiver that reconnects after the sender
        // learns of what it missed from later `sn`s. (A loss in the last
        // ~1.3 s of a sender's activity, its heartbeat tail, is invisible to a
        // receiver that is still disconnected then: see README, NATS.)
        if i % 25 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "emitting stalled at {i}: {:?}", a.stats());
    }
    let (delivered, gaps, duplicates) = receiver.await.unwrap();
    let (sa, sb) = (a.stats(), b.stats());
    eprintln!(
        "delivered {delivered}, gaps {gaps}, duplicates {duplicates}, repaired {}; sender {sa:?}; receiver {sb:?}",
        sb.repairs_received
    );
    assert_eq!(duplicates, 0);
    assert_eq!(delivered + gaps, TOTAL as u64, "every event arrives once or is reported as a gap");
    assert!(sb.nats_disconnects >= 1 && sb.nats_connects >= 2, "{sb:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
