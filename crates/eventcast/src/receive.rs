//! The receive path: a burst of datagrams read into one arena and fed to the
//! endpoint under one lock ([`Burst`]), run by the receive task
//! ([`recv_loop`]) or, in polled mode, by the caller ([`Eventcast::receive`])
//! with the stall guard ([`stall_guard`]) as its safety net.

use super::send::Lane;
use super::state::Shared;
use super::supervise::DriverTask;
use super::{Eventcast, Notification, OwnDatagrams};
use crate::error::Error;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Most datagrams the receive task takes from the socket per burst.
pub(super) const RECV_BATCH: usize = 512;
/// Receive arena: a burst stops when less than one maximal datagram fits.
const RECV_ARENA: usize = 512 * 1024;
/// Largest UDP datagram we may receive (64 KiB covers IPv4's 65,507).
const MAX_DATAGRAM: usize = 64 * 1024;

/// One receive burst's buffers: datagrams land in one arena (no allocation per datagram).
pub(super) struct Burst {
    pub(super) arena: Vec<u8>,
    pub(super) marks: Vec<(usize, usize, SocketAddr)>,
    pub(super) notes: Vec<Notification>,
}

impl Burst {
    pub(super) fn new() -> Self {
        Burst { arena: vec![0u8; RECV_ARENA], marks: Vec::with_capacity(RECV_BATCH), notes: Vec::new() }
    }

    /// Reads datagrams with `recv` (non-blocking) until it would block or the
    /// burst is full, feeds them to the endpoint under one lock and sends what
    /// that produced. The notifications are left in `notes` for the caller to
    /// hand on. Returns how many datagrams were read.
    pub(super) fn run(
        &mut self,
        shared: &Shared,
        own: &OwnDatagrams,
        mut recv: impl FnMut(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    ) -> usize {
        let Burst { arena, marks, notes } = self;
        marks.clear();
        let mut used = 0;
        let mut skipped = 0u64;
        while marks.len() < RECV_BATCH && RECV_ARENA - used >= MAX_DATAGRAM {
            match recv(&mut arena[used..]) {
                Ok((n, source)) => {
                    if own.is_own(source, &arena[used..used + n]) {
                        skipped += 1;
                        continue;
                    }
                    marks.push((used, n, source));
                    used += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("eventcast: receive failed: {e}");
                    let err = Error::Io(e);
                    notes.push(Notification::Error { code: err.code(), message: format!("receiving: {err}") });
                    break;
                }
            }
        }
        if skipped > 0 {
            shared.own_skipped.fetch_add(skipped, Ordering::Relaxed);
        }
        if !marks.is_empty() {
            let now = Instant::now();
            let mut core = shared.core();
            if let Some(ep) = core.endpoint.as_mut() {
                for &(start, len, source) in marks.iter() {
                    ep.handle_datagram(now, source, &arena[start..start + len]);
                }
            }
            // What a received datagram makes us send is a repair: after our own new data.
            if core.pump(shared, Lane::Repair) {
                shared.wake.notify_one();
            }
            notes.append(&mut core.notes);
        }
        marks.len() + skipped as usize
    }

    pub(super) fn was_full(&self) -> bool {
        self.marks.len() == RECV_BATCH
    }
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
        burst.run(&shared, &own, |buf| socket.try_recv_from(buf));
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
        let read = burst.run(self, &own, |buf| socket.recv_from(buf));
        if !burst.notes.is_empty() {
            hand(&mut burst.notes);
            burst.notes.clear();
        }
        read
    }

    /// Polled mode: notes that the caller is reading now (the stall guard
    /// leaves the socket alone for [`POLL_STALL`] after this).
    fn mark_receive(&self) {
        self.last_receive_us.store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

impl Eventcast {
    /// With [`start_polled`](Self::start_polled): reads the datagrams waiting
    /// in the socket (one burst of at most 512, without blocking) on the calling
    /// thread, processes them, and appends the resulting notifications, in
    /// order, to `out`: they are the caller's to hand on (the
    /// [`NotificationSink`](super::NotificationSink) does not see them; the
    /// [`Events`](super::Events) subscriptions get copies). Returns how many
    /// datagrams were read; call again while the socket stays readable. Does
    /// nothing (returns 0) when stopped or started with [`start`](Self::start).
    ///
    /// Order with the stall guard: it delivers to the sink only bursts read
    /// after this one, and leaves the socket alone for [`POLL_STALL`] after
    /// `receive` returns; a caller that queues `out` within that time keeps
    /// every notification in order. A caller with no room for some of them
    /// reports them with [`report_dropped`](Self::report_dropped).
    pub fn receive(&self, out: &mut Vec<Notification>) -> usize {
        let shared = &*self.inner.shared;
        shared.mark_receive();
        let read = shared.receive_burst(|notes| {
            shared.deliver_copies(notes);
            out.append(notes);
        });
        // The burst may have taken a while: the guard's wait starts now.
        shared.mark_receive();
        read
    }

    /// Counts `count` notifications that the caller of
    /// [`receive`](Self::receive) had no room for, in
    /// [`Stats::notifications_dropped`](crate::protocol::Stats::notifications_dropped),
    /// and logs them like a lagging subscription's: nothing is dropped silently.
    pub fn report_dropped(&self, count: u64) {
        self.inner.shared.count_dropped(count);
    }
}
