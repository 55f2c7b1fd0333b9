//! The send path: numbering and encoding (encryption, chunking) our own
//! messages and the control messages we send on our own (repair requests,
//! heartbeats), queueing them now or later, and retaining what was sent for
//! repair.

use super::heartbeat::{heartbeat_interval, sn_age, HEARTBEATS_AFTER_LAST};
use super::Endpoint;
use crate::error::Error;
use crate::protocol::names;
use crate::protocol::repair::REPAIR_BYTES_PER_REQUEST_BYTE;
use crate::protocol::request::RepairRequest;
use crate::protocol::retention::Datagrams;

use crate::protocol::{Destination, Encryption, Identity, SharedBytes, Transmit};
use crate::wire::ids::SeqId;
use crate::wire::{self, Meta, MetaRef, PROTOCOL_VERSION, RETX_EVENT};
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document};
use rand::rngs::StdRng;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Largest argument buffer [`Endpoint::emit`] keeps for the next call (a
/// 100 MiB message should not pin 100 MiB).
const MAX_REUSED_ARGS_BUF: usize = 64 * 1024;

impl Endpoint {
    /// Queues the datagrams of one message. `wall` is the send time written into `time`.
    pub fn emit(&mut self, now: Instant, wall: SystemTime, name: &str, args: &[Bson]) -> Result<(), Error> {
        let mut body = std::mem::take(&mut self.args_buf);
        let r = wire::try_encode_args_into(args, &mut body).and_then(|()| self.emit_encoded(now, wall, name, &body));
        if body.capacity() <= MAX_REUSED_ARGS_BUF {
            self.args_buf = body;
        }
        r
    }

    /// Like [`Endpoint::emit`], with the body already encoded as `{payload: [..]}`
    /// (see [`wire::encode_args`]).
    pub fn emit_encoded(&mut self, now: Instant, wall: SystemTime, name: &str, body: &[u8]) -> Result<(), Error> {
        names::check_sendable(name)?;
        self.emit_numbered(now, wall, name, body)?;
        self.stats.events_sent += 1;
        Ok(())
    }

    /// Sends one numbered message of our stream named `name` (an event's
    /// name, or a request's or reply's wire name): chunked, sealed, retained
    /// for repair, followed by heartbeats. Returns its datagram when it is
    /// one (not chunked).
    pub(super) fn emit_numbered(
        &mut self,
        now: Instant,
        wall: SystemTime,
        name: &str,
        body: &[u8],
    ) -> Result<Option<SharedBytes>, Error> {
        self.set_wall_clock(now, wall)?;
        let sn = self.next_sn;
        let numbered_since = *self.numbered_since.get_or_insert(now);
        let (group, datagrams) = self.build(wall, name, body, Some(sn), sn_age(numbered_since, now, sn))?;
        self.next_sn += 1;
        self.queue(&datagrams);
        self.credit_repairs(&datagrams);
        let single = match &datagrams[..] {
            [one] => Some(one.clone()),
            _ => None,
        };
        self.retention.insert(now, Some(sn), group, datagrams);
        self.heartbeats_left = HEARTBEATS_AFTER_LAST;
        if self.heartbeat_due.is_none() {
            self.heartbeat_due = Some(now + heartbeat_interval(self.config.message_ttl));
        }
        self.sync_stats();
        Ok(single)
    }

    /// Each byte we retain for repair may be resent about once (see the `repair` module docs).
    fn credit_repairs(&mut self, datagrams: &[SharedBytes]) {
        self.repair_credit.credit(datagrams.iter().map(|d| d.len() as f64).sum());
    }

    fn queue(&mut self, datagrams: &[SharedBytes]) {
        self.transmits
            .extend(datagrams.iter().map(|d| Transmit { destination: Destination::Group, payload: d.clone() }));
    }

    /// Queues `datagrams` to go to the group at `at` (kept in time order).
    pub(super) fn delay(&mut self, at: Instant, datagrams: &[SharedBytes]) {
        let i = self.delayed.partition_point(|(t, _)| *t <= at);
        for (k, d) in datagrams.iter().enumerate() {
            self.delayed.insert(i + k, (at, d.clone()));
        }
    }

    /// A datagram's `nonce` (a function of the fields it reads, so that the
    /// cached `time` string can stay borrowed meanwhile).
    fn nonce(encryption: &Encryption, rng: &mut StdRng) -> Option<SeqId> {
        // 0.1.x writes a nonce when encryption is on; the authenticated scheme
        // has a random IV per datagram instead.
        match encryption {
            Encryption::Legacy(_) => Some(SeqId::random(rng)),
            Encryption::None | Encryption::Secure(_) => None,
        }
    }

    /// The meta of one datagram this endpoint sends, borrowing its strings.
    #[allow(clippy::too_many_arguments)]
    fn sender_meta<'a>(
        identity: &'a Identity,
        nonce: Option<&'a str>,
        seq: i32,
        seq_len: i32,
        seq_id: &'a str,
        name: &'a str,
        time: &'a str,
        sn: Option<i64>,
        sn_age: Option<i32>,
    ) -> MetaRef<'a> {
        MetaRef {
            v: PROTOCOL_VERSION,
            seq,
            seq_len,
            seq_id,
            seq_end: seq == seq_len - 1,
            enc: false,
            nonce,
            name: Some(name),
            host: Some(&identity.host),
            port: Some(i32::from(identity.port)),
            hostname: Some(&identity.hostname),
            id: Some(&identity.id),
            time: Some(time),
            sn,
            sn_age,
        }
    }

    /// Encodes (encrypts, chunks) one message; returns the chunk group id if
    /// chunked. `sn` and `sn_age` go into the meta of every datagram.
    fn build(
        &mut self,
        wall: SystemTime,
        name: &str,
        body: &[u8],
        sn: Option<i64>,
        sn_age: Option<i32>,
    ) -> Result<(Option<String>, Datagrams), Error> {
        let max = self.config.limits.max_message_size;
        if body.len() > max {
            return Err(Error::Payload(format!("message of {} bytes exceeds the limit of {max} bytes", body.len())));
        }
        let time = self.time_text.format(wall);
        let seq_id = SeqId::random(&mut self.rng);
        let nonce = Self::nonce(&self.config.encryption, &mut self.rng);
        let nonce = nonce.as_ref().map(SeqId::as_str);
        let meta = Self::sender_meta(&self.identity, nonce, 0, 1, seq_id.as_str(), name, time, sn, sn_age);
        // Unchunked, plain or sealed in place (the common case), this buffer is
        // the datagram: usually the one of a message that left the retention, reused.
        let mut shared = self.retention.take_buffer(body.len() + 256 + wire::secure::SEAL_OVERHEAD_MAX);
        let inner = Arc::make_mut(&mut shared);
        wire::try_encode_datagram_ref(&meta, body, inner).map_err(|e| Error::Payload(e.to_string()))?;
        if let Encryption::Secure(key) = &self.config.encryption {
            // Authenticated scheme: every datagram, chunks included, is sealed
            // on its own, so each one is authenticated and replay-checked.
            let key = key.clone();
            if inner.len() > max {
                return Err(Error::Payload(format!(
                    "message of {} bytes exceeds the limit of {max} bytes",
                    inner.len()
                )));
            }
            let mps = self.config.max_payload_size.max(1);
            if inner.len() <= mps {
                // Sealed where it was encoded: like a plain datagram, the reused buffer is the datagram.
                key.seal_in_place(inner, &mut self.rng);
                return Ok((None, Datagrams::One(SharedBytes::whole(shared))));
            }
            let n = inner.len().div_ceil(mps);
            let seq_len = i32::try_from(n).map_err(|_| Error::Payload("too many chunks".into()))?;
            let group = wire::ids::seq_id(&mut self.rng);
            let mut out = Vec::with_capacity(n);
            for (i, slice) in inner.chunks(mps).enumerate() {
                let nonce = Self::nonce(&self.config.encryption, &mut self.rng);
                let meta = Self::sender_meta(
                    &self.identity,
                    nonce.as_ref().map(SeqId::as_str),
                    i as i32,
                    seq_len,
                    &group,
                    name,
                    time,
                    sn,
                    sn_age,
                );
                let mut d = Vec::with_capacity(slice.len() + 300);
                wire::try_encode_datagram_ref(&meta, slice, &mut d).map_err(|e| Error::Payload(e.to_string()))?;
                out.push(key.seal(&d, &mut self.rng).into());
            }
            self.retention.give_back(shared);
            return Ok((Some(group), Datagrams::Chunks(out)));
        }
        let legacy = match &self.config.encryption {
            Encryption::None | Encryption::Secure(_) => None,
            Encryption::Legacy(key) => {
                let outer = Meta {
                    v: PROTOCOL_VERSION,
                    seq: 0,
                    seq_len: 1,
                    seq_id: seq_id.as_str().to_string(),
                    seq_end: true,
                    enc: true,
                    ..Meta::default()
                };
                let ct = key.encrypt(inner);
                let mut out = Vec::with_capacity(ct.len() + 128);
                wire::encode_datagram(&outer, &ct, &mut out);
                Some(out)
            }
        };
        let whole: &[u8] = legacy.as_deref().unwrap_or(inner);
        if whole.len() > max {
            return Err(Error::Payload(format!("message of {} bytes exceeds the limit of {max} bytes", whole.len())));
        }
        let mps = self.config.max_payload_size.max(1);
        if whole.len() <= mps {
            let datagram = match legacy {
                Some(outer) => {
                    self.retention.give_back(shared);
                    outer.into()
                }
                None => SharedBytes::whole(shared),
            };
            return Ok((None, Datagrams::One(datagram)));
        }
        let n = whole.len().div_ceil(mps);
        let seq_len = i32::try_from(n).map_err(|_| Error::Payload("too many chunks".into()))?;
        let group = wire::ids::seq_id(&mut self.rng);
        // All chunks go into one buffer, shared by the transmits and the retention.
        let mut buf = Vec::with_capacity(whole.len() + n * 300);
        let mut ends = Vec::with_capacity(n);
        for (i, slice) in whole.chunks(mps).enumerate() {
            let nonce = Self::nonce(&self.config.encryption, &mut self.rng);
            let nonce = nonce.as_ref().map(SeqId::as_str);
            let meta = Self::sender_meta(&self.identity, nonce, i as i32, seq_len, &group, name, time, sn, sn_age);
            wire::try_encode_datagram_ref(&meta, slice, &mut buf).map_err(|e| Error::Payload(e.to_string()))?;
            ends.push(buf.len());
        }
        self.retention.give_back(shared);
        Ok((Some(group), Datagrams::Chunks(SharedBytes::split(buf, &ends))))
    }

    /// Sends an internal message (repair request, heartbeat) to the group, in
    /// up to `copies` copies. Repair requests (`budgeted`) draw every copy
    /// from the node-wide request budget; returns how many copies went out.
    /// `sn_age` is the meta's `snAge` (heartbeats of a young stream).
    pub(super) fn send_control(
        &mut self,
        now: Instant,
        name: &str,
        doc: &Document,
        copies: u32,
        budgeted: bool,
        sn_age: Option<i32>,
    ) -> u32 {
        let wall = self.wall_at(now);
        let built = wire::try_encode_document_body(doc).and_then(|body| self.build(wall, name, &body, None, sn_age));
        match built {
            Ok((group, datagrams)) => {
                let bytes: usize = datagrams.iter().map(|d| d.len()).sum();
                // Copies are spaced by more than the senders' resend window,
                // so each one that arrives gets its own answer: a sender
                // answers every request datagram at most once and never
                // multiplies its repairs, so redundancy against repeated loss
                // is the requester's to pay for.
                let spacing = self.timing.resend_window() + Duration::from_millis(1);
                let mut sent = 0;
                for copy in 0..copies.max(1) {
                    if budgeted && !self.request_credit.take(now, bytes) {
                        self.stats.repair_requests_rate_limited += 1;
                        break;
                    }
                    if copy == 0 {
                        self.queue(&datagrams);
                    } else {
                        self.delay(now + spacing * copy, &datagrams);
                    }
                    sent += 1;
                }
                if group.is_some() && sent > 0 {
                    self.credit_repairs(&datagrams);
                    self.retention.insert(now, None, group, datagrams);
                }
                sent
            }
            Err(e) => {
                tracing::warn!("cannot send {name}: {e}");
                0
            }
        }
    }

    /// Sends one repair request within the request budget, counting it if
    /// it went out. `answer` is the bytes it may bring back: when the
    /// configuration says so ([`Config::pay_for_repairs`]) the request is
    /// padded to pay for them (see [`Endpoint::pad_request`]).
    ///
    /// [`Config::pay_for_repairs`]: crate::protocol::Config::pay_for_repairs
    pub(super) fn send_request(&mut self, now: Instant, req: &RepairRequest, copies: u32, answer: usize) {
        let mut doc = req.to_document();
        if self.config.pay_for_repairs {
            self.pad_request(&mut doc, answer);
        }
        if self.send_control(now, RETX_EVENT, &doc, copies, true, None) > 0 {
            self.stats.repairs_requested += 1;
        }
    }

    /// The bytes one resent datagram of ours may take: a full chunk and its meta.
    pub(super) fn answer_datagram_bytes(&self) -> usize {
        self.config.max_payload_size + ANSWER_DATAGRAM_OVERHEAD
    }

    /// Adds a `pad` field (zeros; 0.1.x and our parser ignore it) so that
    /// the request weighs a third of `answer`, and at least a third of one
    /// full datagram: a sender answers a requester without a source address
    /// with at most 3 bytes per byte of its requests, and a message's chunk
    /// is resent whole or not at all. The request stays one datagram
    /// (`max_payload_size` less [`REQUEST_META_ROOM`]).
    fn pad_request(&self, doc: &mut Document, answer: usize) {
        // One datagram, never chunked: a chunk of a request lost would
        // itself be asked for. What the pad cannot cover is asked again.
        let room = self.config.max_payload_size.saturating_sub(REQUEST_META_ROOM);
        let need = answer.max(self.answer_datagram_bytes()).div_ceil(REPAIR_BYTES_PER_REQUEST_BYTE).min(room);
        let have = wire::try_encode_document_body(doc).map_or(0, |b| b.len());
        // The element's own bytes: type, "pad\0", length, subtype.
        let pad = need.saturating_sub(have + 10);
        if pad > 0 {
            doc.insert("pad", Binary { subtype: BinarySubtype::Generic, bytes: vec![0; pad] });
        }
    }

    /// The bytes `req` would take on the wire (built, not sent).
    fn request_len(&mut self, now: Instant, req: &RepairRequest) -> Option<usize> {
        let wall = self.wall_at(now);
        let body = wire::try_encode_document_body(&req.to_document()).ok()?;
        let (_, datagrams) = self.build(wall, RETX_EVENT, &body, None, None).ok()?;
        Some(datagrams.iter().map(|d| d.len()).sum())
    }

    /// Sends `req` once, trimmed (items dropped from the end) to at most
    /// `allowance` bytes, which it then lowers; counts a trimmed or withheld
    /// request in `repairRequestsTrimmed`. Returns whether it went out.
    /// Only for requests to senders not known yet (off the hot path: it
    /// builds the request up to a few times to measure it).
    pub(super) fn send_request_within(&mut self, now: Instant, req: &mut RepairRequest, allowance: &mut usize) -> bool {
        let Some(full) = self.request_len(now, req) else { return false };
        let mut len = full;
        if len > *allowance {
            self.stats.repair_requests_trimmed += 1;
            let items = req.missed_seq.len() + req.missed_sn.len();
            let (seq, sn) = (std::mem::take(&mut req.missed_seq), std::mem::take(&mut req.missed_sn));
            let Some(empty) = self.request_len(now, req) else { return false };
            if empty >= *allowance || items == 0 {
                return false;
            }
            // Items cost about the same each; measure to be exact.
            let per_item = (full - empty).div_ceil(items).max(1);
            let mut keep = ((*allowance - empty) / per_item).min(items);
            loop {
                if keep == 0 {
                    return false;
                }
                req.missed_seq = seq[..keep.min(seq.len())].to_vec();
                req.missed_sn = sn[..keep.saturating_sub(seq.len()).min(sn.len())].to_vec();
                match self.request_len(now, req) {
                    Some(l) if l <= *allowance => {
                        len = l;
                        break;
                    }
                    Some(_) => keep -= 1,
                    None => return false,
                }
            }
        }
        if self.send_control(now, RETX_EVENT, &req.to_document(), 1, true, None) == 0 {
            return false;
        }
        self.stats.repairs_requested += 1;
        *allowance -= len;
        true
    }
}

/// Most bytes a resent datagram carries beyond its chunk body (meta,
/// sealing): sizes the padding of requests that pay for their answers.
pub(super) const ANSWER_DATAGRAM_OVERHEAD: usize = 320;

/// Room left in a datagram of `max_payload_size` for a request's meta and
/// sealing, when padding it: the padded body stays within the rest.
pub(super) const REQUEST_META_ROOM: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Config;

    /// Past the retention's 65,536 messages every emit writes into the buffer
    /// of a message that left it: each datagram must still be exactly its
    /// own message, and a datagram still held elsewhere (a send queue) must
    /// never be written over.
    #[test]
    fn reused_buffers_carry_their_own_message_and_spare_held_ones() {
        let (t0, w0) = (Instant::now(), SystemTime::now());
        let identity =
            Identity { id: "00000000000000aa".into(), host: "127.0.0.1".into(), port: 41234, hostname: "h".into() };
        let mut ep = Endpoint::new(Config::default(), identity, 1, t0, w0).unwrap();
        let mut held = Vec::new();
        for i in 0..70_000i64 {
            let now = t0 + Duration::from_micros(i as u64 * 10);
            // Sizes vary, so a reused buffer is sometimes longer than the new datagram.
            let text = "x".repeat((i % 7 * 13) as usize);
            ep.emit(now, w0, "e", &[Bson::Int64(i), Bson::String(text.clone())]).unwrap();
            let t = ep.poll_transmit().unwrap();
            assert!(ep.poll_transmit().is_none());
            let d = wire::decode_datagram(&t.payload).unwrap();
            assert_eq!(d.meta.sn, Some(i + 1));
            let args = wire::decode_body(d.body).unwrap();
            assert_eq!(args, wire::Payload::Args(vec![Bson::Int64(i), Bson::String(text)]), "message {i}");
            if i % 997 == 0 {
                let copy = t.payload.to_vec();
                held.push((t.payload, copy));
            }
        }
        for (payload, copy) in &held {
            assert_eq!(&payload[..], &copy[..]);
        }
    }
}
