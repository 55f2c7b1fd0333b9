use super::*;
use eventcast::{PeerDownReason, PeerStats, PeerTransport};

fn peer(name: &str) -> PeerInfo {
    let now = SystemTime::now();
    PeerInfo {
        id: "0123456789abcdef".into(),
        host: "10.0.0.7".into(),
        port: 9000,
        hostname: "box".into(),
        name: Some(name.into()),
        pid: Some(4242),
        version: Some("0.2.0".into()),
        meta: bson::doc! {"role": "pricing", "http": 8080},
        since: now - Duration::from_secs(75),
        last_seen: now - Duration::from_millis(400),
        transport: PeerTransport::Nats,
        bridged: true,
        legacy: false,
        stats: PeerStats { events_sent: 5, ..PeerStats::default() },
        delivered: 3,
        gaps: 0,
    }
}

#[test]
fn the_table_has_every_field() {
    let lines = table(&[peer("alpha")], SystemTime::now());
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("ID") && lines[0].ends_with("META"), "{}", lines[0]);
    let row = &lines[1];
    for part in ["0123456789abcdef", "alpha", "10.0.0.7:9000", "box", "4242", "0.2.0", "nats bridged", "75s", "0.4s"] {
        assert!(row.contains(part), "no {part} in {row}");
    }
    assert!(row.ends_with(r#"{"http":8080,"role":"pricing"}"#), "{row}");
    // A legacy (0.1.x) peer has no pid or version.
    let mut old = peer("old");
    (old.pid, old.version, old.legacy, old.transport, old.bridged) = (None, None, true, PeerTransport::Udp, false);
    let row = &table(&[old], SystemTime::now())[1];
    assert!(row.contains("udp 0.1.x") && row.contains(" - "), "{row}");
}

#[test]
fn a_clock_ahead_of_ours_is_not_an_age() {
    let now = SystemTime::now();
    assert_eq!(age(now, now + Duration::from_secs(3600)), "-");
    assert_eq!(age(now, now - Duration::from_secs(2)), "2.0s");
}

#[test]
fn watch_lines_say_what_changed() {
    let up = Notification::PeerUp(peer("alpha"));
    let down = Notification::PeerDown { peer: peer("alpha"), reason: PeerDownReason::Goodbye };
    let update = Notification::PeerUpdate(peer("alpha"));
    assert!(change_line(&up, false).unwrap().starts_with("up "));
    let line = change_line(&down, false).unwrap();
    assert!(line.starts_with("down (goodbye)") && line.contains("alpha") && line.contains("\"role\""), "{line}");
    assert!(change_line(&update, false).unwrap().starts_with("update "));
    let v: serde_json::Value = serde_json::from_str(&change_line(&down, true).unwrap()).unwrap();
    assert_eq!(v["event"], "peerDown");
    assert_eq!(v["reason"], "goodbye");
    assert_eq!(v["peer"]["name"], "alpha");
    assert_eq!(v["peer"]["meta"]["role"], "pricing");
    let v: serde_json::Value = serde_json::from_str(&change_line(&up, true).unwrap()).unwrap();
    assert_eq!(v["event"], "peerUp");
    assert!(v.get("reason").is_none());
    assert!(change_line(&Notification::Drain, false).is_none());
}

#[test]
fn hostile_peer_fields_cannot_reach_the_terminal() {
    let mut p = peer("\x1b]0;pwned\x07\x1b[2J");
    p.hostname = "h\r\nfake".into();
    p.host = "\u{9b}H".into();
    p.version = Some("\x1b[31m".into());
    p.meta = bson::doc! {"x": "\u{1b}[5m\u{9b}\u{202e}"};
    let down = Notification::PeerDown { peer: p.clone(), reason: PeerDownReason::Timeout };
    let mut lines = table(&[p.clone()], SystemTime::now());
    lines.push(change_line(&down, false).unwrap());
    lines.push(change_line(&down, true).unwrap());
    lines.push(json_for_terminal(&peer_json(&p).to_string()));
    for l in &lines {
        assert!(!l.chars().any(|c| c.is_control() || c == '\u{202e}'), "{l:?}");
    }
    // The JSON keeps the value: escaped, not altered.
    let v: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(v["meta"]["x"], "\u{1b}[5m\u{9b}\u{202e}");
}

#[test]
fn peers_listen_a_little_longer_than_one_interval() {
    assert_eq!(listen_for(Duration::from_secs(1)), Duration::from_millis(1500));
    assert_eq!(listen_for(Duration::from_millis(100)), Duration::from_millis(350));
}
