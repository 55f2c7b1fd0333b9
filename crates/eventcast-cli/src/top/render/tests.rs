use super::*;
use crate::text::width_of;
use crate::top::model::PeerSample;

fn peer(id: &str, name: &str, rate_in: f64, rate_out: f64) -> PeerRow {
    PeerRow {
        peer: PeerSample {
            id: id.into(),
            host: "10.1.2.3".into(),
            port: 9000,
            name: Some(name.into()),
            hostname: "box".into(),
            kind: PeerKind { transport: "udp", bridged: false, legacy: false },
            delivered: 120,
            events_sent: 130,
            repairs_sent: 2,
            gaps: 1,
            last_seen_ago: Duration::from_millis(300),
        },
        rate_in,
        rate_out,
    }
}

fn name(n: &str, rate: f64) -> NameRow {
    NameRow { name: n.into(), rate, count: 42, mean_bytes: 24, max_bytes: 1500 }
}

fn view(peers: Vec<PeerRow>, names: Vec<NameRow>) -> View {
    View {
        header: Header {
            listening: "239.1.2.3:9000".into(),
            via: "udp multicast, interface any".into(),
            id: "00112233445566aa".into(),
            refresh: Duration::from_secs(1),
        },
        peers,
        names_tracked: names.len(),
        names,
        other: None,
        names_evicted: 0,
        rate_in: 70.0,
        events_in: 420,
        gaps: 1,
        dropped: 0,
        note: None,
    }
}

#[test]
fn the_screen_shows_peers_with_rates_and_the_busy_names() {
    let v = view(
        vec![peer("aaaaaaaaaaaaaaaa", "alpha", 50.0, 50.0), peer("bbbbbbbbbbbbbbbb", "beta", 20.0, 20.5)],
        vec![name("tick", 50.0), name("tock", 20.0)],
    );
    let lines = render(&v, 160, Some(40));
    let screen = lines.join("\n");
    assert!(
        lines[0].contains("239.1.2.3:9000") && lines[0].contains("2 peers") && lines[0].contains("q quits"),
        "{screen}"
    );
    let alpha = lines.iter().find(|l| l.contains("alpha")).expect(&screen);
    assert!(alpha.contains("10.1.2.3:9000") && alpha.contains("50.0") && alpha.contains("0.3s"), "{alpha}");
    let beta = lines.iter().find(|l| l.contains("beta")).expect(&screen);
    assert!(beta.contains("20.5"), "{beta}");
    let tick = lines.iter().find(|l| l.starts_with("tick")).expect(&screen);
    assert!(tick.contains("50.0") && tick.contains("42") && tick.contains("24") && tick.contains("1500"), "{tick}");
    // Columns line up: the rates of both peers end at the same column.
    let col = |l: &str, s: &str| l.find(s).map(|i| i + s.len());
    assert_eq!(col(alpha, "50.0"), col(beta, "20.0"), "{screen}");
    assert!(lines.len() <= 40);
}

#[test]
fn lines_fit_the_terminal_and_the_peers_give_way_to_the_names() {
    let peers: Vec<PeerRow> = (0..100).map(|i| peer(&format!("{i:016x}"), &format!("node-{i}"), 1.0, 1.0)).collect();
    let names: Vec<NameRow> = (0..100).map(|i| name(&format!("ev{i}"), 1.0)).collect();
    let v = view(peers, names);
    for (w, h) in [(160, 40), (80, 24), (20, 10), (1, 3)] {
        let lines = render(&v, w, Some(h));
        assert!(lines.len() <= h, "{w}x{h}: {} lines", lines.len());
        assert!(lines.iter().all(|l| width_of(l) <= w), "{w}x{h}: {lines:?}");
    }
    let lines = render(&v, 160, Some(40));
    let screen = lines.join("\n");
    assert!(screen.contains("more peers"), "{screen}");
    assert!(lines.iter().filter(|l| l.starts_with("ev")).count() >= MIN_NAME_LINES - 1, "{screen}");
}

#[test]
fn plain_output_lists_every_peer_and_no_escape_codes() {
    let peers: Vec<PeerRow> = (0..50).map(|i| peer(&format!("{i:016x}"), &format!("node-{i}"), 1.0, 1.0)).collect();
    let names: Vec<NameRow> = (0..50).map(|i| name(&format!("ev{i}"), 1.0)).collect();
    let lines = render(&view(peers, names), 200, None);
    assert_eq!(lines.iter().filter(|l| l.contains("node-")).count(), 50);
    assert_eq!(lines.iter().filter(|l| l.starts_with("ev") && !l.starts_with("eventcast")).count(), PLAIN_NAMES);
    assert!(!lines[0].contains("q quits"));
    assert!(lines.iter().all(|l| !l.contains('\x1b')));
}

#[test]
fn hostile_names_cannot_reach_the_terminal() {
    let mut p = peer("aaaaaaaaaaaaaaaa", "\x1b[2J\x1b]0;pwned\x07", 1.0, 1.0);
    p.peer.hostname = "h\r\nFAKE LINE".into();
    p.peer.host = "\u{9b}1;1H".into();
    let v = view(vec![p], vec![name("\x1b[31mred\u{202e}", 1.0)]);
    for lines in [render(&v, 160, Some(40)), render(&v, 160, None)] {
        for l in &lines {
            assert!(!l.chars().any(|c| c.is_control() || c == '\u{202e}'), "{l:?}");
        }
        assert!(!lines.iter().any(|l| l.starts_with("FAKE LINE")));
    }
}

#[test]
fn empty_states_say_why() {
    let lines = render(&view(vec![], vec![]), 160, Some(40)).join("\n");
    assert!(lines.contains("no peers yet") && lines.contains("no events yet") && lines.contains("0 peers"), "{lines}");
    let mut v = view(vec![], vec![]);
    v.other = Some(name("", 3.0));
    v.note = Some("EPRVERSION: version 9".into());
    v.dropped = 7;
    let lines = render(&v, 160, Some(40)).join("\n");
    assert!(lines.contains("other names") && lines.contains("last error: EPRVERSION"), "{lines}");
    assert!(lines.contains("7 notifications missed: top fell behind"), "{lines}");
}

#[test]
fn numbers_stay_short() {
    assert_eq!(rate(0.04), "0.0");
    assert_eq!(rate(12_345.0), "12.3k");
    assert_eq!(rate(2_500_000.0), "2.5M");
    assert_eq!(count(99_999), "99999");
    assert_eq!(count(123_456), "123k");
    assert_eq!(count(u64::MAX), "18446744T");
    assert_eq!(ago(Duration::from_millis(250)), "0.2s");
    assert_eq!(ago(Duration::from_secs(75)), "75s");
    assert_eq!(ago(Duration::from_secs(3600)), "60m");
    assert_eq!(ago(Duration::from_secs(90_000)), "25h");
}
