//! `eventcast peers` against real nodes (other `eventcast` processes with
//! names and meta), inside a private network namespace; and what `peers`
//! and `top` print when a peer's name, meta and events carry escape sequences.

#[path = "../../eventcast/tests/node_support/mod.rs"]
mod node_support;

use node_support::{random_port, skip_outside_netns, Children};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_eventcast");

fn group_args(port: u16) -> Vec<String> {
    vec!["--port".into(), port.to_string(), "--group".into(), format!("239.252.{}.{}", port >> 8, port & 0xff)]
}

/// A node that stays up for a minute, advertising `name` and `meta` and emitting now and then.
fn node(port: u16, name: &str, meta: &str, event: &str) -> Child {
    Command::new(BIN)
        .arg("emit")
        .args(group_args(port))
        .args(["--name", name, "--meta", meta, "--rate", "5", "--repeat", "300", "--", event, "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn emit")
}

/// Runs `eventcast peers` with `extra` to the end; its stdout lines.
fn peers(port: u16, extra: &[&str]) -> Vec<String> {
    let out = Command::new(BIN).arg("peers").args(group_args(port)).args(extra).output().expect("run peers");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "peers failed: {stderr}");
    assert!(stderr.contains("listening on ") && stderr.contains("udp multicast, interface any"), "{stderr}");
    assert!(stderr.contains("name=eventcast-peers"), "{stderr}");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// The JSON objects of `lines`, each line one.
fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn peers_lists_two_nodes_with_their_meta() {
    if skip_outside_netns("peers_lists_two_nodes_with_their_meta") {
        return;
    }
    let port = random_port();
    let _nodes = Children(vec![
        node(port, "pricing-1", r#"{"role":"pricing","http":8080}"#, "quote"),
        node(port, "ledger", r#"{"role":"ledger","shards":[1,2]}"#, "entry"),
    ]);
    // Both are up once each was started and beaconed: give their start a moment.
    std::thread::sleep(Duration::from_millis(500));
    let list = json_lines(&peers(port, &["--json"]));
    let by_name =
        |n: &str| list.iter().find(|p| p["name"] == n).unwrap_or_else(|| panic!("no {n} in {list:#?}")).clone();
    assert_eq!(list.len(), 2, "{list:#?}");
    let pricing = by_name("pricing-1");
    assert_eq!(pricing["meta"], serde_json::json!({"role": "pricing", "http": 8080}));
    assert_eq!(pricing["port"], port);
    assert_eq!(pricing["transport"], "udp");
    assert_eq!((&pricing["bridged"], &pricing["legacy"]), (&false.into(), &false.into()));
    assert!(pricing["pid"].as_u64().is_some() && pricing["version"].is_string(), "{pricing}");
    assert_eq!(pricing["id"].as_str().unwrap().len(), 16);
    assert_eq!(by_name("ledger")["meta"], serde_json::json!({"role": "ledger", "shards": [1, 2]}));

    // The table: a header and one row per peer, meta as compact JSON.
    let table = peers(port, &[]);
    assert!(table[0].starts_with("ID") && table[0].contains("META"), "{table:?}");
    assert_eq!(table.len(), 3, "{table:?}");
    let ledger = table.iter().find(|l| l.contains("ledger ")).expect("ledger row");
    assert!(ledger.contains(&format!("127.0.0.1:{port}")) && ledger.ends_with(r#"{"role":"ledger","shards":[1,2]}"#));
}

#[test]
fn peers_watch_shows_a_goodbye_when_a_node_stops() {
    if skip_outside_netns("peers_watch_shows_a_goodbye_when_a_node_stops") {
        return;
    }
    let port = random_port();
    let mut watch = Command::new(BIN)
        .arg("peers")
        .args(group_args(port))
        .args(["--watch", "--json", "--timeout-ms", "60000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn peers --watch");
    let stdout = watch.stdout.take().unwrap();
    let stderr = watch.stderr.take().unwrap();
    let _watch = Children(vec![watch]);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Ready when it says where it listens.
    let ready = BufReader::new(stderr).lines().map_while(Result::ok).next().unwrap_or_default();
    assert!(ready.starts_with("listening on "), "{ready}");

    let _steady = Children(vec![node(port, "steady", r#"{"role":"a"}"#, "x")]);
    // A node that emits a few events and stops by itself (a stop says goodbye).
    let brief = Command::new(BIN)
        .arg("emit")
        .args(group_args(port))
        .args(["--name", "brief", "--meta", r#"{"role":"b"}"#, "--repeat", "3", "--linger-ms", "1500", "--", "y", "2"])
        .output()
        .expect("run emit");
    assert!(brief.status.success(), "{}", String::from_utf8_lossy(&brief.stderr));

    let mut seen = Vec::new();
    let down = loop {
        let line = lines.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("no goodbye in {seen:#?}"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["event"] == "peerDown" {
            break v;
        }
        seen.push(v);
    };
    assert_eq!(down["peer"]["name"], "brief", "{down}");
    assert_eq!(down["reason"], "goodbye", "{down}");
    assert_eq!(down["peer"]["meta"]["role"], "b");
    for name in ["steady", "brief"] {
        assert!(
            seen.iter().any(|v| v["event"] == "peerUp" && v["peer"]["name"] == name),
            "no peerUp of {name}: {seen:#?}"
        );
    }
}

/// Every byte a terminal would act on: C0 controls but the newline, DEL, and (as UTF-8) C1 and bidi overrides.
fn terminal_controls(out: &str) -> Vec<char> {
    out.chars().filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c)).collect()
}

#[test]
fn peers_and_top_print_no_escape_sequences_a_peer_sent() {
    if skip_outside_netns("peers_and_top_print_no_escape_sequences_a_peer_sent") {
        return;
    }
    let port = random_port();
    let name = "\x1b[2J\x1b]0;pwned\x07evil\u{9b}31m\u{202e}";
    let _nodes = Children(vec![node(port, name, r#"{"x":"\u001b[5m\u009b\u202e"}"#, "\x1b[31mred\r\nfake")]);
    std::thread::sleep(Duration::from_millis(500));
    for extra in [&[][..], &["--json"][..]] {
        let out = peers(port, extra).join("\n");
        assert!(out.contains("pwned"), "the peer is listed: {out}");
        assert_eq!(terminal_controls(&out), Vec::<char>::new(), "{out:?}");
    }
    // The JSON keeps the values (escaped), so a program reading it sees them as sent.
    let list = json_lines(&peers(port, &["--json"]));
    assert_eq!(list[0]["name"], name);
    assert_eq!(list[0]["meta"]["x"], "\u{1b}[5m\u{9b}\u{202e}");

    let out = Command::new(BIN)
        .arg("top")
        .args(group_args(port))
        .args(["--interval", "500", "--iterations", "6"])
        .output()
        .expect("run top");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("pwned") && stdout.contains("red"), "{stdout}");
    assert_eq!(terminal_controls(&stdout), Vec::<char>::new(), "{stdout:?}");
    assert!(!stdout.lines().any(|l| l.starts_with("fake")), "an event name broke a line: {stdout}");
}
