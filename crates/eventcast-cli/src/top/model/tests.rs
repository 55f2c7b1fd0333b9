use super::*;

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

#[test]
fn a_steady_counter_gives_its_rate() {
    let t0 = Instant::now();
    let mut m = RateMeter::new(Duration::from_secs(3));
    assert_eq!(m.update(t0, 0), 0.0, "one sample has no rate");
    // 50 per second, sampled every 200 ms, for 10 s.
    let mut rate = 0.0;
    for i in 1..=50u64 {
        rate = m.update(at(t0, i * 200), i * 10);
    }
    assert!((rate - 50.0).abs() < 1e-6, "{rate}");
    assert!(m.samples.len() <= METER_SAMPLES);
}

#[test]
fn a_counter_that_rises_in_steps_is_averaged_over_the_window() {
    // The peer's own counters arrive once a second (its beacons): the
    // counter steps by 100 every second, sampled every 250 ms.
    let t0 = Instant::now();
    let mut m = RateMeter::new(Duration::from_secs(3));
    let mut rates = Vec::new();
    for i in 0..=40u64 {
        let value = (i * 250 / 1000) * 100;
        let r = m.update(at(t0, i * 250), value);
        if i >= 16 {
            rates.push(r);
        }
    }
    for r in rates {
        assert!(
            (r - 100.0).abs() <= 100.0 / 3.0 + 1e-6,
            "a step must not swing the rate more than a step per window: {r}"
        );
    }
}

#[test]
fn a_stopped_counter_falls_to_zero_and_a_reset_starts_over() {
    let t0 = Instant::now();
    let mut m = RateMeter::new(Duration::from_secs(2));
    for i in 0..=10u64 {
        m.update(at(t0, i * 100), i * 10);
    }
    assert!(m.update(at(t0, 1100), 110) > 0.0);
    // Nothing new for longer than the window.
    assert_eq!(m.update(at(t0, 5000), 110), 0.0);
    // A restarted counter is not a huge negative (or wrapped) rate.
    assert_eq!(m.update(at(t0, 5100), 3), 0.0);
    assert!(m.update(at(t0, 6100), 13) > 0.0);
}

#[test]
fn the_busiest_names_come_first_with_sizes() {
    let t0 = Instant::now();
    let mut names = EventNames::new(Duration::from_secs(2));
    names.tick(t0);
    for i in 0..20u64 {
        names.record("tick", 10 + i % 2 * 10);
        if i % 4 == 0 {
            names.record("rare", 1000);
        }
    }
    names.tick(at(t0, 1000));
    let rows = names.busiest(10);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].name, "tick");
    assert!((rows[0].rate - 20.0).abs() < 1e-6, "{rows:?}");
    assert_eq!((rows[0].count, rows[0].mean_bytes, rows[0].max_bytes), (20, 15, 20));
    assert_eq!(rows[1].name, "rare");
    assert!((rows[1].rate - 5.0).abs() < 1e-6, "{rows:?}");
    assert_eq!(names.busiest(1).len(), 1);
    assert!(names.other().is_none());
}

#[test]
fn hostile_names_are_bounded_counted_and_evicted_when_idle() {
    let t0 = Instant::now();
    let mut names = EventNames::new(Duration::from_secs(1));
    names.tick(t0);
    // A flood of distinct (and long) names.
    let long = "x".repeat(100_000);
    for i in 0..10_000 {
        names.record(&format!("{i}{long}"), 1);
    }
    assert_eq!(names.tracked(), MAX_NAMES);
    assert!(names.busiest(MAX_NAMES).iter().all(|r| r.name.len() <= MAX_NAME_BYTES));
    let other = names.other().unwrap();
    assert_eq!(other.count, 10_000 - MAX_NAMES as u64);
    // The flood stops; a real name keeps going. After a window the idle
    // names leave the table (counted) and the real one gets in.
    names.tick(at(t0, 500));
    for i in 1..=4u64 {
        names.record("real", 8);
        names.tick(at(t0, 500 + i * 600));
    }
    assert_eq!(names.evicted(), MAX_NAMES as u64);
    let rows = names.busiest(5);
    assert_eq!(rows[0].name, "real", "{rows:?}");
    assert!(rows[0].rate > 0.0);
    assert!(names.tracked() < MAX_NAMES);
}

#[test]
fn names_are_cut_at_a_character_boundary() {
    let mut names = EventNames::new(Duration::from_secs(1));
    let name = "é".repeat(MAX_NAME_BYTES); // two bytes each
    names.record(&name, 1);
    names.record(&format!("{name}more"), 1);
    let rows = names.busiest(5);
    assert_eq!(rows.len(), 1, "both cut to the same key");
    assert_eq!(rows[0].count, 2);
    assert!(rows[0].name.len() <= MAX_NAME_BYTES && rows[0].name.chars().all(|c| c == 'é'));
}

fn sample(id: &str, name: &str, delivered: u64, sent: u64) -> PeerSample {
    PeerSample {
        id: id.into(),
        host: "10.0.0.1".into(),
        port: 9000,
        name: Some(name.into()),
        hostname: "h".into(),
        kind: PeerKind { transport: "udp", bridged: false, legacy: false },
        delivered,
        events_sent: sent,
        repairs_sent: 0,
        gaps: 0,
        last_seen_ago: Duration::from_millis(100),
    }
}

#[test]
fn peer_rates_come_from_counter_deltas_and_leave_with_the_peer() {
    let t0 = Instant::now();
    let mut rates = PeerRates::new(Duration::from_secs(2));
    rates.update(t0, vec![sample("a", "alpha", 0, 0), sample("b", "beta", 0, 0)]);
    let rows = rates.update(at(t0, 1000), vec![sample("a", "alpha", 10, 12), sample("b", "beta", 50, 40)]);
    assert_eq!(rows[0].peer.name.as_deref(), Some("beta"), "busiest first");
    assert!((rows[0].rate_in - 50.0).abs() < 1e-6 && (rows[0].rate_out - 40.0).abs() < 1e-6, "{rows:?}");
    assert!((rows[1].rate_in - 10.0).abs() < 1e-6 && (rows[1].rate_out - 12.0).abs() < 1e-6, "{rows:?}");
    let rows = rates.update(at(t0, 2000), vec![sample("a", "alpha", 20, 24)]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rates.meters.len(), 1, "the departed peer's meters are dropped");
}
