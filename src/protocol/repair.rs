//! Repair scheduling: when to ask for lost data again, NACK suppression.
//!
//! A receiver that notices missing data waits a *repair delay* before asking,
//! so reordered datagrams can still arrive and so that, of several receivers
//! missing the same datagram, usually only one asks (the others hear its
//! request on the group and postpone theirs, as NORM and PGM do):
//!
//! * base delay `d = clamp(message_ttl / 8, 10 ms, 500 ms)` (375 ms for the
//!   default 3 s TTL), each wait drawn uniformly from `[d, 2d)`;
//! * after a request, the next one follows another jittered delay if no
//!   progress was made, at most `retransmit_attempts` more times; any progress
//!   resets that count;
//! * repeated requests for the same data (no progress since the last one) are
//!   sent in `min(attempt, 3)` copies, and a sender answering a chunk again
//!   sends `min(times asked, 3)` copies: persistent loss costs a little
//!   redundancy instead of a lost message;
//! * a sender resends one datagram at most once per `d / 4`, however many
//!   receivers ask, and at most `max_repair_bytes_per_requester` bytes per
//!   second in answer to one requester ([`RepairBudget`]).

use rand::Rng;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most requesters with a repair budget remembered; the idlest is forgotten.
const MAX_REQUESTERS: usize = 1024;

/// Token buckets of repair bytes, one per requester id.
pub(crate) struct RepairBudget {
    rate: f64,
    buckets: HashMap<String, (f64, Instant)>,
}

impl RepairBudget {
    pub fn new(bytes_per_sec: usize) -> Self {
        RepairBudget { rate: bytes_per_sec as f64, buckets: HashMap::new() }
    }

    /// Takes `bytes` from `requester`'s bucket if it holds enough.
    pub fn take(&mut self, now: Instant, requester: &str, bytes: usize) -> bool {
        if !self.buckets.contains_key(requester) && self.buckets.len() >= MAX_REQUESTERS {
            if let Some(idle) = self.buckets.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone()) {
                self.buckets.remove(&idle);
            }
        }
        let rate = self.rate;
        let (tokens, last) = self.buckets.entry(requester.to_owned()).or_insert((rate, now));
        *tokens = (*tokens + rate * now.saturating_duration_since(*last).as_secs_f64()).min(rate);
        *last = now;
        if *tokens >= bytes as f64 {
            *tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

/// Most copies of one request sent at once.
pub(crate) const MAX_REQUEST_COPIES: u32 = 3;

/// Repair timing derived from the message TTL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RepairTiming {
    /// Base repair delay `d`.
    pub base: Duration,
}

impl RepairTiming {
    pub fn new(message_ttl: Duration) -> Self {
        RepairTiming { base: (message_ttl / 8).clamp(Duration::from_millis(10), Duration::from_millis(500)) }
    }

    /// A delay drawn uniformly from `[d, 2d)`.
    pub fn jittered<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let nanos = self.base.as_nanos().min(u64::MAX as u128) as u64;
        self.base + Duration::from_nanos(rng.gen_range(0..nanos.max(1)))
    }

    /// Minimum time between two resends of one datagram.
    pub fn resend_window(&self) -> Duration {
        self.base / 4
    }
}

/// The request timer of one piece of missing data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Nack {
    /// When to send the next request, if one is still allowed.
    pub due: Option<Instant>,
    /// Requests sent since the last progress.
    pub attempts: u32,
}

impl Nack {
    /// A timer armed `delay` after `now`.
    pub fn armed(now: Instant, delay: Duration) -> Self {
        Nack { due: Some(now + delay), attempts: 0 }
    }

    /// Progress was made: start over.
    pub fn progress(&mut self, now: Instant, delay: Duration) {
        self.attempts = 0;
        self.due = Some(now + delay);
    }

    /// Someone else asked for the same data: wait another delay before we do.
    pub fn postpone(&mut self, now: Instant, delay: Duration) {
        if let Some(due) = self.due {
            self.due = Some(due.max(now + delay));
        }
    }

    /// Records a request sent at `now`; returns how many copies to send. The
    /// timer is rearmed only while `attempts` stays within `1 + retries`.
    pub fn fire(&mut self, now: Instant, delay: Duration, retries: u32) -> u32 {
        self.attempts += 1;
        self.due = if self.attempts <= retries { Some(now + delay) } else { None };
        self.attempts.min(MAX_REQUEST_COPIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delay_is_clamped_and_jitter_in_range() {
        assert_eq!(RepairTiming::new(Duration::from_millis(3000)).base, Duration::from_millis(375));
        assert_eq!(RepairTiming::new(Duration::from_millis(10)).base, Duration::from_millis(10));
        assert_eq!(RepairTiming::new(Duration::from_secs(60)).base, Duration::from_millis(500));
        let t = RepairTiming::new(Duration::from_millis(800));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let j = t.jittered(&mut rng);
            assert!(j >= t.base && j < 2 * t.base);
        }
    }

    #[test]
    fn repair_budget_per_requester() {
        let t0 = Instant::now();
        let mut b = RepairBudget::new(1000);
        assert!(b.take(t0, "a", 600));
        assert!(!b.take(t0, "a", 600));
        assert!(b.take(t0, "b", 600));
        assert!(b.take(t0 + Duration::from_millis(200), "a", 600));
        assert!(!b.take(t0 + Duration::from_millis(200), "a", 100));
        for i in 0..2 * MAX_REQUESTERS {
            b.take(t0, &i.to_string(), 1);
        }
        assert!(b.buckets.len() <= MAX_REQUESTERS);
    }

    #[test]
    fn nack_retries_then_stops_and_progress_resets() {
        let t0 = Instant::now();
        let d = Duration::from_millis(10);
        let mut n = Nack::armed(t0, d);
        assert_eq!(n.fire(t0, d, 2), 1);
        assert_eq!(n.fire(t0, d, 2), 2);
        assert_eq!(n.fire(t0, d, 2), 3);
        assert_eq!(n.due, None);
        n.progress(t0, d);
        assert_eq!((n.attempts, n.due), (0, Some(t0 + d)));
        n.postpone(t0, 3 * d);
        assert_eq!(n.due, Some(t0 + 3 * d));
    }
}
