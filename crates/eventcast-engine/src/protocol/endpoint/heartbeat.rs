//! Heartbeats: while and after it emits, a sender multicasts its latest
//! message number, so receivers notice lost trailing messages.

use super::Endpoint;
use crate::protocol::tracker::{Peer, Sn, SPAN};
use crate::wire;
use bson::{Bson, Document};
use std::time::{Duration, Instant};

/// Event name of the heartbeat: payload document `{id, sn}` with the sender's
/// latest message number, so receivers notice lost trailing messages.
pub const HEARTBEAT_EVENT: &str = "__ec_hb";

/// Heartbeats sent after the last message. A receiver misses a lost last
/// message only if it loses every one of them too: at 30% loss that is
/// 0.3^9 ≈ 2·10⁻⁵ (with 3 it was 0.3^4 ≈ 0.8%, measured 0.73% in simulation,
/// and the network lab's 30% scenario occasionally failed on it).
pub(super) const HEARTBEATS_AFTER_LAST: u32 = 8;

impl Endpoint {
    pub(super) fn send_heartbeat(&mut self, now: Instant) {
        self.heartbeat_due = None;
        if self.heartbeats_left == 0 || self.next_sn <= 1 {
            return;
        }
        // Reset by an emit since the previous heartbeat: still emitting.
        let emitting = self.heartbeats_left == HEARTBEATS_AFTER_LAST;
        self.heartbeats_left -= 1;
        let mut doc = Document::new();
        doc.insert("id", self.identity.id.clone());
        doc.insert("sn", Bson::Int64(self.next_sn - 1));
        self.stats.heartbeats_sent += 1;
        // A young stream's heartbeats say when it started, like its messages:
        // a receiver that lost all of a short burst learns of it from them.
        let age = self.numbered_since.and_then(|t| sn_age(t, now, self.next_sn - 1));
        self.send_control(now, HEARTBEAT_EVENT, &doc, 1, false, age);
        if self.heartbeats_left > 0 {
            // The tail comes three times as often, so that it ends within about
            // 2 s (default TTL), well inside the retention, while senders linger.
            let period = heartbeat_interval(self.config.message_ttl);
            self.heartbeat_due = Some(now + if emitting { period } else { period / 3 });
        }
    }

    /// A heartbeat of `wire_len` bytes from `sender`, whose latest message is `sn`.
    pub(super) fn handle_heartbeat(
        &mut self,
        now: Instant,
        sender: &str,
        sn: Sn,
        sn_age: Option<Duration>,
        wire_len: usize,
    ) {
        // First contact through a heartbeat: nothing is missing yet (a late
        // joiner starts after the sender's latest message), unless the
        // sender's stream started while we listened: then all of it is.
        let ttl = self.config.message_ttl;
        let from_start = self.started_while_listening(now, sn_age);
        self.ensure_peer(now, sender, || Peer::after_latest(now, sn, ttl, from_start));
        if let Some(p) = self.peers.get_mut(sender) {
            p.received = p.received.saturating_add(wire_len as u64);
            let before = p.missing_count();
            let lost = p.on_latest(now, sn);
            self.peer_changed(now, sender, before, lost);
        }
    }
}

/// Heartbeat period: `clamp(message_ttl / 6, 20 ms, 1 s)`.
pub(super) fn heartbeat_interval(message_ttl: Duration) -> Duration {
    (message_ttl / 6).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

/// The `sn` of a heartbeat document `{id, sn}` sent by `sender`: the id must
/// be the datagram's own sender id and `sn` a valid message number.
pub(super) fn heartbeat_fields(doc: &Document, sender: &str) -> Option<Sn> {
    if doc.get_str("id").ok()? != sender {
        return None;
    }
    doc.get("sn").and_then(wire::integers::int64).and_then(Sn::new)
}

/// The `snAge` of a datagram built at `now` for (or, in a heartbeat, about)
/// message `sn` of a numbering whose message 1 was sent at `numbered_since`:
/// milliseconds, saturating at `i32::MAX` (24.8 days). Written only while
/// `sn <= SPAN`: beyond that a receiver's window could not reach back to
/// message 1 anyway (see `tracker`), so the 11 bytes are not spent on every
/// datagram of a long stream.
pub(super) fn sn_age(numbered_since: Instant, now: Instant, sn: i64) -> Option<i32> {
    (sn <= SPAN).then(|| {
        let ms = now.saturating_duration_since(numbered_since).as_millis();
        i32::try_from(ms).unwrap_or(i32::MAX)
    })
}
