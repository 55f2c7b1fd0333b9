use super::*;
use std::time::Duration;

#[test]
fn recent_senders_share_one_sender_per_identity_and_stay_bounded() {
    let r = |id, host, port, hostname| SenderRef { id, host, port, hostname };
    let mut cache = RecentSenders::default();
    let a = cache.get(r("00000000000000aa", "10.0.0.1", 9000, "box"));
    assert!(Arc::ptr_eq(&a, &cache.get(r("00000000000000aa", "10.0.0.1", 9000, "box"))));
    assert_eq!(*a, r("00000000000000aa", "10.0.0.1", 9000, "box").to_sender());
    // Any field that differs is another sender (a restart on another port, a forged host).
    for other in [
        r("00000000000000aa", "10.0.0.2", 9000, "box"),
        r("00000000000000aa", "10.0.0.1", 9001, "box"),
        r("00000000000000aa", "10.0.0.1", 9000, "box2"),
        r("00000000000000ab", "10.0.0.1", 9000, "box"),
    ] {
        let s = cache.get(other);
        assert!(!Arc::ptr_eq(&a, &s));
        assert_eq!(*s, other.to_sender());
    }
    // A flood of distinct senders keeps at most RECENT_SENDERS, and every
    // event still gets its own sender's fields.
    let ids: Vec<String> = (0..100).map(|i| format!("{i:016x}")).collect();
    for id in &ids {
        assert_eq!(cache.get(r(id, "h", 1, "n")).id, *id);
    }
    assert_eq!(cache.slots.len(), RECENT_SENDERS);
}

fn info(seq: i32, seq_len: i32, s: &Sender) -> ChunkInfo<'_> {
    let sender = SenderRef { id: &s.id, host: &s.host, port: s.port, hostname: &s.hostname };
    ChunkInfo { seq, seq_len, seq_end: seq == seq_len - 1, sn: None, sender, wire_len: 0, protected: false }
}

fn key(id: &str) -> Key {
    let mut sender = [0u8; 8];
    sender[..id.len()].copy_from_slice(id.as_bytes());
    Key { sender, group: [7; 20] }
}

#[test]
fn keys_are_fixed_size_and_sender_strings_are_charged() {
    assert_eq!(std::mem::size_of::<Key>(), 28);
    let k = Key::parse("a1b2c3d4e5f60718", &"ab".repeat(20)).unwrap();
    assert_eq!(k.seq_id(), "ab".repeat(20));
    assert!(Key::parse("a1b2c3d4e5f6071", &"ab".repeat(20)).is_none());
    assert!(Key::parse("a1b2c3d4e5f60718", &"ab".repeat(30_000)).is_none());
    let t = Instant::now();
    let nack = Nack::armed(t, Duration::from_millis(5));
    let limits = Limits { max_partial_messages: 8, max_completed_ids: 16, ..Limits::default() };
    let mut r = Reassembly::new(limits);
    let mut ev = Vec::new();
    let big = Sender { hostname: "h".repeat(60_000), ..Sender::default() };
    r.insert(t, key("a"), info(0, 3, &big), b"aa", nack, &mut ev);
    assert_eq!(r.bytes(), PARTIAL_OVERHEAD + 60_000 + 2 + CHUNK_OVERHEAD);
    // Whatever arrives, the keys stored stay within the two counts.
    for i in 0..1000u32 {
        let k = Key {
            sender: [1; 8],
            group: [(i % 251) as u8, (i / 251) as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        if i % 2 == 0 {
            r.mark_single_done(k);
        } else {
            r.insert(t, k, info(0, 2, &big), b"x", nack, &mut ev);
        }
        assert!(r.keys() <= 8 + 16, "{}", r.keys());
    }
}

#[test]
fn reassembles_in_any_order_once() {
    let t = Instant::now();
    let s = Sender::default();
    let nack = Nack::armed(t, Duration::from_millis(5));
    let mut r = Reassembly::new(Limits::default());
    let mut ev = Vec::new();
    assert!(matches!(r.insert(t, key("a"), info(2, 3, &s), b"c", nack, &mut ev), Insert::Progress { new: true, .. }));
    assert!(matches!(r.insert(t, key("a"), info(2, 3, &s), b"c", nack, &mut ev), Insert::Duplicate));
    assert_eq!(r.get_mut(&key("a")).unwrap().missing(10), vec![0, 1]);
    assert!(matches!(r.insert(t, key("a"), info(0, 3, &s), b"aa", nack, &mut ev), Insert::Progress { new: false, .. }));
    match r.insert(t, key("a"), info(1, 3, &s), b"bb", nack, &mut ev) {
        Insert::Complete { data, .. } => assert_eq!(data, b"aabbc"),
        other => panic!("{other:?}"),
    }
    assert_eq!((r.len(), r.bytes()), (0, 0));
    assert!(matches!(r.insert(t, key("a"), info(1, 3, &s), b"bb", nack, &mut ev), Insert::Late));
    assert!(r.next_deadline().is_none());
}

#[test]
fn rejects_inconsistent_and_oversized_chunks() {
    let t = Instant::now();
    let s = Sender::default();
    let nack = Nack::armed(t, Duration::from_millis(5));
    let limits = Limits { max_message_size: 100, ..Limits::default() };
    let mut r = Reassembly::new(limits);
    let mut ev = Vec::new();
    let mut ins = |r: &mut Reassembly, i: ChunkInfo<'_>, b: &[u8]| r.insert(t, key("a"), i, b, nack, &mut ev);
    assert!(matches!(ins(&mut r, info(3, 3, &s), b"x"), Insert::Rejected(Reject::Malformed)));
    assert!(matches!(ins(&mut r, info(-1, 3, &s), b"x"), Insert::Rejected(Reject::Malformed)));
    assert!(matches!(
        ins(&mut r, ChunkInfo { seq_end: true, ..info(0, 3, &s) }, b"x"),
        Insert::Rejected(Reject::Malformed)
    ));
    assert!(matches!(ins(&mut r, info(0, 1_000_000, &s), b"x"), Insert::Rejected(Reject::Limit)));
    assert!(matches!(ins(&mut r, info(0, 3, &s), &[0; 60]), Insert::Rejected(Reject::Limit)));
    assert!(matches!(ins(&mut r, info(0, 3, &s), &[0; 30]), Insert::Progress { .. }));
    assert!(matches!(ins(&mut r, info(1, 3, &s), &[0; 31]), Insert::Rejected(Reject::Malformed)));
    assert!(matches!(ins(&mut r, info(1, 4, &s), &[0; 30]), Insert::Rejected(Reject::Malformed)));
    assert!(matches!(ins(&mut r, info(2, 3, &s), &[0; 31]), Insert::Rejected(Reject::Malformed)));
    assert!(matches!(ins(&mut r, info(2, 3, &s), &[0; 3]), Insert::Progress { .. }));
    assert_eq!(r.len(), 1);
}

#[test]
fn evicts_oldest_within_limits() {
    let t = Instant::now();
    let s = Sender::default();
    let nack = Nack::armed(t, Duration::from_millis(5));
    let limits = Limits { max_partial_messages: 3, max_reassembly_bytes: 10_000, ..Limits::default() };
    let mut r = Reassembly::new(limits);
    let mut ev = Vec::new();
    for i in 0..10 {
        r.insert(t, key(&i.to_string()), info(0, 5, &s), &[0; 1000], nack, &mut ev);
        assert!(r.len() <= 3 && r.bytes() <= 10_000);
    }
    assert_eq!(ev.len(), 7);
    assert!(r.is_done(key("0")));
    let mut ev = Vec::new();
    let mut r = Reassembly::new(Limits { max_reassembly_bytes: 3000, ..Limits::default() });
    for i in 0..10 {
        r.insert(t, key(&i.to_string()), info(0, 5, &s), &[0; 1000], nack, &mut ev);
        assert!(r.bytes() <= 3000, "{}", r.bytes());
    }
    assert_eq!(ev.len(), 8);
}

#[test]
fn single_done_key_makes_an_active_group_late() {
    let t = Instant::now();
    let s = Sender::default();
    let nack = Nack::armed(t, Duration::from_millis(5));
    let mut r = Reassembly::new(Limits { max_completed_ids: 2, ..Limits::default() });
    let mut ev = Vec::new();
    assert!(matches!(r.insert(t, key("a"), info(0, 3, &s), b"aa", nack, &mut ev), Insert::Progress { .. }));
    assert!(r.mark_single_done(key("a")));
    assert!(!r.mark_single_done(key("a")));
    assert!(matches!(r.insert(t, key("a"), info(1, 3, &s), b"bb", nack, &mut ev), Insert::Late));
    // Once the done set forgets the key, the group progresses again.
    assert!(r.mark_single_done(key("x")));
    assert!(r.mark_single_done(key("y")));
    assert!(!r.is_done(key("a")));
    assert!(matches!(r.insert(t, key("a"), info(1, 3, &s), b"bb", nack, &mut ev), Insert::Progress { .. }));
    match r.insert(t, key("a"), info(2, 3, &s), b"c", nack, &mut ev) {
        Insert::Complete { data, .. } => assert_eq!(data, b"aabbc"),
        other => panic!("{other:?}"),
    }
    assert_eq!((r.len(), r.bytes(), r.late), (0, 0, 0));
}

#[test]
fn out_of_order_chunks_fold_into_the_prefix() {
    let t = Instant::now();
    let s = Sender::default();
    let nack = Nack::armed(t, Duration::from_millis(5));
    let mut r = Reassembly::new(Limits::default());
    let mut ev = Vec::new();
    for seq in [1, 3, 0, 5, 2] {
        let body = [b'0' + seq as u8; 2];
        assert!(matches!(r.insert(t, key("a"), info(seq, 6, &s), &body, nack, &mut ev), Insert::Progress { .. }));
    }
    let p = r.get_mut(&key("a")).unwrap();
    assert_eq!((p.prefix_count, p.chunks.len()), (4, 1));
    assert_eq!(p.missing(10), vec![4]);
    assert!(p.misses_any(&[0, 4]) && !p.misses_any(&[0, 1, 5, 6, -1]));
    assert!(matches!(r.insert(t, key("a"), info(3, 6, &s), b"33", nack, &mut ev), Insert::Duplicate));
    match r.insert(t, key("a"), info(4, 6, &s), b"44", nack, &mut ev) {
        Insert::Complete { data, .. } => assert_eq!(data, b"001122334455"),
        other => panic!("{other:?}"),
    }
}
