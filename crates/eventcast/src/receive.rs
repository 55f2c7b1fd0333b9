//! The receive path, one seam for every transport: whatever reads
//! datagrams — the receive task on the multicast socket ([`recv_loop`]), the
//! caller in polled mode ([`Shared::receive_burst`], from
//! `Eventcast::receive`) and its stall guard ([`stall_guard`]), the NATS
//! receive task ([`nats_recv_loop`]) — hands its burst to [`feed`], which
//! gives it to the engine under one lock, sends what that produced and
//! collects the notifications.

use super::burst::{Burst, RECV_BATCH};
use super::events::Notification;
use super::send::Lane;
use super::state::Shared;
use super::supervise::DriverTask;
use super::{OwnDatagrams, NATS_BUNDLE_BYTES, NATS_MAX_DATAGRAM, NATS_SOURCE};
use crate::wire::bundle;
use async_nats::Subscriber;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Feeds received datagrams to the engine under one lock, sends what that
/// produced (repairs: after our own new data, [`Lane::Repair`]), wakes the
/// timer task if its deadline moved earlier, and appends the notifications
/// to `notes`. The one place received bytes enter the engine.
pub(super) fn feed<'a>(
    shared: &Shared,
    datagrams: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    notes: &mut Vec<Notification>,
) {
    let now = Instant::now();
    let mut core = shared.core();
    if let Some(ep) = core.endpoint.as_mut() {
        for (source, datagram) in datagrams {
            ep.handle_datagram(now, source, datagram);
        }
    }
    if core.pump(shared, Lane::Repair) {
        shared.wake.notify_one();
    }
    notes.append(&mut core.notes);
}

/// Reads one burst from a UDP socket (`recv`, non-blocking) and feeds it.
/// Returns how many datagrams were read, own ones included.
fn udp_burst(
    shared: &Shared,
    burst: &mut Burst,
    own: &OwnDatagrams,
    recv: impl FnMut(&mut [u8]) -> std::io::Result<(usize, SocketAddr)>,
) -> usize {
    let skipped = burst.fill(own, recv);
    if skipped > 0 {
        shared.counters.own_skipped.fetch_add(skipped, Ordering::Relaxed);
    }
    if burst.len() > 0 {
        let mut notes = std::mem::take(&mut burst.notes);
        feed(shared, burst.datagrams(), &mut notes);
        burst.notes = notes;
    }
    burst.len() + skipped as usize
}

/// Polled mode: how long `receive()` may go uncalled while datagrams wait
/// before the stall guard reads them itself.
pub const POLL_STALL: Duration = Duration::from_millis(5);
/// Polled mode: how often the stall guard looks while the caller keeps up or
/// nothing arrives (its whole idle cost: one timer wake-up and, when
/// `receive()` has not run lately, one `recvfrom` that finds nothing).
pub const GUARD_TICK: Duration = Duration::from_millis(10);

/// Polled mode's safety net: a caller thread that is busy (a long synchronous
/// job on the JS thread, a GC pause) stops reading the socket, and its buffer
/// (8 MiB at best, 208 KiB by default without privileges) would overflow at
/// high rates. Every [`GUARD_TICK`] this task checks whether `receive()` ran
/// within the last [`POLL_STALL`]; if not, it reads what is waiting itself,
/// burst after burst, then looks again every [`POLL_STALL`] while it finds
/// datagrams. So a burst that starts while the caller is already blocked is
/// read within about 10 ms. It does not watch the socket itself, which would
/// wake a second thread for every datagram. It reads even while the sink is
/// full (see [`Shared::receive_burst`]), so heartbeats keep loss detectable;
/// the Node binding's sink reports the events it has no room for as gaps.
/// (An idle caller that is about to read a datagram that
/// just arrived may find the guard read it first: harmless, in order.)
///
/// It runs on a thread of its own (tokio's blocking pool) that sleeps in
/// `recv_timeout` on `stop`, which `stop()` closes. Measured idle cost on a
/// 2-vCPU VM: 0.45 % of one core (100 wake-ups/s; a bare loop of 10 ms sleeps
/// and one `recvfrom` costs 0.40 % there), against 0.6 % as a tokio timer task,
/// whose every tick also woke the runtime's workers.
pub(super) fn stall_guard(shared: Arc<Shared>, stop: std::sync::mpsc::Receiver<()>) {
    let mut period = GUARD_TICK;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(period) {
        shared.fault_point(DriverTask::StallGuard);
        let last = Duration::from_micros(shared.last_receive_us.load(Ordering::Relaxed));
        if shared.epoch.elapsed().saturating_sub(last) < POLL_STALL {
            period = GUARD_TICK;
            continue;
        }
        // The `polled` lock is only ever held for one burst: no long block here.
        let mut read = 0;
        loop {
            let n = shared.receive_burst(|notes| shared.deliver(notes));
            read += n;
            if n < RECV_BATCH {
                break;
            }
        }
        period = if read > 0 { POLL_STALL } else { GUARD_TICK };
    }
}

/// Receive task: waits for readability, then one [`Burst`] at a time.
pub(super) async fn recv_loop(shared: Arc<Shared>, socket: UdpSocket, own: OwnDatagrams) {
    let mut burst = Burst::new();
    loop {
        if let Err(e) = socket.readable().await {
            burst.notes.push(Notification::Error { code: "ESOCKET", message: format!("waiting for datagrams: {e}") });
            shared.deliver(&mut burst.notes);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        shared.fault_point(DriverTask::Receive);
        // tokio's try_recv_from clears the readiness flag on WouldBlock, so `readable()` waits for real.
        udp_burst(&shared, &mut burst, &own, |buf| socket.try_recv_from(buf));
        shared.deliver(&mut burst.notes);
        if burst.was_full() {
            // More is waiting: let subscribers on this runtime catch up first.
            tokio::task::yield_now().await;
        }
    }
}

impl Shared {
    /// One burst of polled-mode receiving (from `receive()` or the stall
    /// guard); `hand` takes the notifications while the `polled` lock is still
    /// held, so the two hand theirs on in the order they were read. It reads
    /// even when the sink (or the caller's queue) is full: leaving datagrams in
    /// the socket would let the kernel drop what overflows it, heartbeats
    /// included, and a sender whose tail of heartbeats is lost that way can
    /// never be found to have lost anything. Read, heartbeats keep loss
    /// detectable, and events with no room are reported as gaps by whoever
    /// had no room (the Node binding does).
    pub(super) fn receive_burst(&self, hand: impl FnOnce(&mut Vec<Notification>)) -> usize {
        let mut polled = self.polled.lock().unwrap_or_else(|p| p.into_inner());
        let Some((socket, own)) =
            self.core().io.as_ref().and_then(|io| io.udp.as_ref()).map(|udp| (udp.socket.clone(), udp.own.clone()))
        else {
            return 0;
        };
        let burst = polled.get_or_insert_with(|| Box::new(Burst::new()));
        let read = udp_burst(self, burst, &own, |buf| socket.recv_from(buf));
        if !burst.notes.is_empty() {
            hand(&mut burst.notes);
            burst.notes.clear();
        }
        read
    }

    /// Polled mode: notes that the caller is reading now (the stall guard
    /// leaves the socket alone for [`POLL_STALL`] after this).
    pub(super) fn mark_receive(&self) {
        self.last_receive_us.store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

/// Receive task: takes what the subscription holds (up to one burst:
/// [`RECV_BATCH`] messages or one bundle's worth of bytes), feeds its
/// datagrams to the endpoint under one lock (a bundle's one by one), sends
/// the repairs that produced and delivers the notifications.
pub(super) async fn nats_recv_loop(shared: Arc<Shared>, mut subscriber: Subscriber) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(RECV_BATCH);
    let mut notes = Vec::new();
    loop {
        let Some(first) = subscriber.next().await else {
            // Only when the client is gone (stop() aborts this task first).
            tracing::debug!("eventcast: NATS subscription ended");
            return;
        };
        shared.fault_point(DriverTask::Receive);
        let mut bytes = first.payload.len();
        batch.push(first.payload);
        // Bounded work per lock: the lock also holds up emit on other threads.
        while batch.len() < RECV_BATCH && bytes < NATS_BUNDLE_BYTES {
            match subscriber.next().now_or_never() {
                Some(Some(m)) => {
                    bytes += m.payload.len();
                    batch.push(m.payload);
                }
                _ => break,
            }
        }
        let (mut oversize, mut bundles, mut malformed) = (0, 0, 0);
        let datagrams = batch
            .iter()
            .filter_map(|payload| {
                if payload.len() > NATS_MAX_DATAGRAM {
                    oversize += 1;
                    return None;
                }
                // A bundle is judged whole before any of its datagrams
                // reaches the engine: a forged one costs a pass over its
                // frame headers, not the engine's work per frame.
                bundles += u64::from(bundle::is_bundle(payload));
                bundle::open(payload).inspect_err(|_| malformed += 1).ok()
            })
            .flatten()
            .map(|datagram| (NATS_SOURCE, datagram));
        feed(&shared, datagrams, &mut notes);
        if malformed > 0 {
            tracing::debug!("eventcast: {malformed} NATS bundle(s) refused whole (a frame that is no datagram)");
        }
        for (counter, n) in [
            (&shared.counters.nats.oversize_dropped, oversize),
            (&shared.counters.nats.bundles_received, bundles),
            (&shared.counters.nats.bundles_malformed, malformed),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
        let full = batch.len() == RECV_BATCH || bytes >= NATS_BUNDLE_BYTES;
        batch.clear();
        shared.deliver(&mut notes);
        if full {
            tokio::task::yield_now().await;
        }
    }
}
