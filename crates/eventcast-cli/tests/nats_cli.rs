//! `eventcast listen|emit --nats URL [--subject S]` against a real
//! `nats-server`, both ways with a Rust node (inside a private network
//! namespace; see `nats_support`).

#[path = "../../eventcast/tests/nats_support/mod.rs"]
mod nats_support;
#[path = "../../eventcast/tests/node_support/mod.rs"]
mod node_support;

use bson::Bson;
use eventcast::{Eventcast, NatsOptions, Notification, Options, Transport};
use nats_support::NatsServer;
use node_support::{random_port, skip_outside_netns};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_eventcast");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_and_a_node_exchange_events_both_ways_over_nats() {
    if skip_outside_netns("cli_and_a_node_exchange_events_both_ways_over_nats") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let subject = format!("team.events.{port}");
    let mut nats = NatsOptions::new([server.url()]);
    nats.subject = Some(subject.clone());
    let node = Eventcast::new(Options { transport: Transport::Nats(nats), ..Options::with_port(port) }).unwrap();
    let mut events = node.subscribe();
    node.start().await.unwrap();

    // CLI → node.
    let out = Command::new(BIN)
        .args(["emit", "--port", &port.to_string(), "--nats", &server.url(), "--subject", &subject])
        .args(["--linger-ms", "100", "--", "from-cli", "\"hi\"", "{\"$date\":\"2020-01-02T03:04:05.678Z\"}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "emit: {}", String::from_utf8_lossy(&out.stderr));
    let e = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("event within 10 s") {
            Some(Notification::Event(e)) => break e,
            Some(_) => continue,
            None => panic!("closed"),
        }
    };
    assert_eq!(e.name, "from-cli");
    assert_eq!(e.args[0], Bson::String("hi".into()));
    assert!(matches!(e.args[1], Bson::DateTime(_)));

    // Node → CLI (a listener on the same subject; two URLs, the first one dead).
    let dead = format!("nats://127.0.0.1:{}", random_port());
    let mut child = Command::new(BIN)
        .args(["listen", "--port", &port.to_string(), "--nats", &format!("{dead},{}", server.url())])
        .args(["--subject", &subject, "--count", "1", "--timeout-ms", "30000", "--stats"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "listen exited before ready");
        if line.starts_with("listening on ") {
            assert!(line.contains(&format!("nats subject {subject} id=")), "{line}");
            break;
        }
    }
    let big = "y".repeat(200_000); // several 60 KiB chunks
    node.emit("from-node", &[Bson::String(big.clone())]).unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "listen failed: {rest}");
    let got: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(got["name"], "from-node");
    assert_eq!(got["args"][0].as_str().unwrap().len(), big.len());
    assert!(rest.contains("\"nats_connects\":1"), "{rest}");
    node.stop().await.unwrap();

    // Multicast options with --nats are refused.
    let out = Command::new(BIN)
        .args(["listen", "--port", "9000", "--nats", &server.url(), "--group", "239.1.1.1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
