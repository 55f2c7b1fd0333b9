//! The state the handle, the callers of `emit` and the driver tasks share:
//! [`Shared`] (atomics, subscribers, the sink) around one lock, [`Core`]
//! (the endpoint, the transport, the send queue), and [`Core::pump`], which
//! moves what the endpoint produced onto the network and into notifications.

use super::burst::Burst;
use super::counters::Counters;
use super::events::Fanout;
use super::exchange::Exchange;
use super::interface::{InterfaceInUse, Resolved};
use super::send::{self, Lane, SendQueue};
use super::status::{StatusCell, StopAfterFault};
use super::transport::Link;
use super::{Notification, OwnDatagrams};
use crate::error::Error;
use crate::protocol::{Destination, Endpoint, Output, PeerChange};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;
use tokio::sync::Notify;

/// State shared by the handle, the calling threads of `emit` and the driver tasks.
pub(super) struct Shared {
    pub(super) core: Mutex<Core>,
    /// Where notifications go: subscriptions and the sink.
    pub(super) fanout: Arc<Fanout>,
    /// Buffers of [`Eventcast::receive`] (polled mode), allocated on first use.
    pub(super) polled: Mutex<Option<Box<Burst>>>,
    /// Polled mode: when `receive()` last ran (µs since `epoch`).
    pub(super) last_receive_us: AtomicU64,
    /// The node this state belongs to (for a driver task that fails and must stop it).
    pub(super) status: Arc<StatusCell>,
    pub(super) owner: Weak<dyn StopAfterFault>,
    /// Set by the first driver fault of a started period (see [`supervise`]).
    pub(super) faulted: std::sync::atomic::AtomicBool,
    /// The runtime the driver tasks run on (a fault noticed on another thread stops the node there).
    pub(super) runtime: Mutex<Option<tokio::runtime::Handle>>,
    /// Closing it (dropping the sender) ends the stall guard's thread.
    pub(super) guard_stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    /// Test hook: the driver task that must panic next ([`DriverTask`] as u8; 0 = none).
    pub(super) inject_fault: AtomicU8,
    /// Wakes the timer task: deadline moved earlier, or sends were queued.
    pub(super) wake: Notify,
    /// The driver's and the transports' counters.
    pub(super) counters: Arc<Counters>,
    /// Time base of `last_receive_us`.
    pub(super) epoch: Instant,
}

pub(super) struct Core {
    pub(super) endpoint: Option<Endpoint>,
    /// The port `endpoint`'s identity advertises.
    pub(super) endpoint_port: u16,
    pub(super) io: Option<Io>,
    /// Datagrams that met a full socket buffer, bounded; sent by the timer task.
    pub(super) send: SendQueue,
    /// Last `poll_timeout` seen, to wake the timer task only when it moves earlier.
    pub(super) deadline: Option<Instant>,
    /// Notifications produced under the lock, delivered after unlocking.
    pub(super) notes: Vec<Notification>,
    /// Request/reply: handlers, our pending requests, requests being answered.
    pub(super) exchange: Exchange,
}

pub(super) struct Io {
    /// Where datagrams leave: the send socket (ephemeral port; see
    /// [`socket::Sender`]; std, non-blocking, not in the reactor) or NATS.
    pub(super) link: Link,
    pub(super) group: SocketAddr,
    /// Multicast only: the receive side (over NATS the receive task owns the subscription).
    pub(super) udp: Option<UdpReceive>,
}

/// The multicast receive side.
pub(super) struct UdpReceive {
    /// Receive socket: bound to the group port, joined, own datagrams filtered
    /// out; non-blocking. The receive task registers a duplicate of it with tokio.
    pub(super) socket: Arc<std::net::UdpSocket>,
    /// Who recognises our own datagrams on receipt.
    pub(super) own: OwnDatagrams,
    pub(super) local: SocketAddr,
    /// `multicast_interface` as resolved at start (to leave the group on it).
    pub(super) resolved: Resolved,
    /// What [`Eventcast::interface`](crate::Eventcast::interface) reports.
    pub(super) interface: InterfaceInUse,
}

impl Core {
    /// Sends (or queues, in `lane`) everything the endpoint has to send,
    /// collects its outputs, and tracks its deadline. Returns whether the timer task must wake.
    pub(super) fn pump(&mut self, shared: &Shared, lane: Lane) -> bool {
        let Core { endpoint, io, send, deadline, notes, exchange, .. } = self;
        let Some(ep) = endpoint.as_mut() else { return false };
        let mut wake = false;
        let mut errors = Vec::new();
        while let Some(t) = ep.poll_transmit() {
            // Stopped: nowhere to send (emit is refused before this happens).
            if let Some(io) = io {
                let dest = match t.destination {
                    Destination::Group => io.group,
                    Destination::Unicast(addr) => addr,
                };
                let mut socket = |p: &[u8], d| io.link.send_to(p, d);
                wake |= send.send_or_queue(&mut socket, dest, t.payload, lane, &mut errors);
            }
        }
        for (dest, e) in errors {
            record_send_error(shared, notes, dest, e);
        }
        while let Some(out) = ep.poll_output() {
            notes.push(match out {
                Output::Event(e) => Notification::Event(e),
                Output::VersionMismatch { version, source } => Notification::Error {
                    code: "EPRVERSION",
                    message: format!("datagram from {source} has protocol version {version}, expected 3"),
                },
                Output::Gap { sender, count } => Notification::Gap { sender, count },
                Output::Peer(change) => match *change {
                    PeerChange::Up(peer) => Notification::PeerUp(peer),
                    PeerChange::Down(peer, reason) => Notification::PeerDown { peer, reason },
                    PeerChange::Update(peer) => Notification::PeerUpdate(peer),
                },
                Output::Request(r) => match exchange.take_request(Instant::now(), *r) {
                    Some(r) => Notification::Request(Box::new(r)),
                    None => continue,
                },
                Output::Reply(r) => match exchange.take_reply(Instant::now(), *r) {
                    Some(r) => Notification::Reply(Box::new(r)),
                    None => continue,
                },
            });
        }
        let next = ep.poll_timeout();
        if next != *deadline {
            wake |= match (next, *deadline) {
                (Some(n), Some(old)) => n < old,
                (Some(_), None) => true,
                (None, _) => false,
            };
            *deadline = next;
        }
        wake
    }
}

impl Core {
    /// Sends what the queue holds through `socket` until it would block; errors
    /// and a due `Drain` become notifications. Returns how many datagrams are left.
    pub(super) fn flush(&mut self, shared: &Shared, link: &Link) -> usize {
        let Core { send, notes, .. } = self;
        let mut errors = Vec::new();
        let drain = send.flush(&mut |p, d| link.send_to(p, d), &mut errors);
        for (dest, e) in errors {
            record_send_error(shared, notes, dest, e);
        }
        send::drain_note(drain, notes);
        send.len()
    }
}

pub(super) fn record_send_error(shared: &Shared, notes: &mut Vec<Notification>, dest: SocketAddr, e: io::Error) {
    shared.counters.send_errors.fetch_add(1, Ordering::Relaxed);
    tracing::warn!("eventcast: sending to {dest} failed: {e}");
    let err = Error::Io(e);
    notes.push(Notification::Error { code: err.code(), message: format!("sending to {dest}: {err}") });
}

impl Shared {
    /// Hands notifications on (see [`Fanout::deliver`]).
    pub(super) fn deliver(&self, notes: &mut Vec<Notification>) {
        self.fanout.deliver(notes);
    }

    /// Hands copies to the subscriptions only (see [`Fanout::deliver_copies`]).
    pub(super) fn deliver_copies(&self, notes: &mut Vec<Notification>) {
        self.fanout.deliver_copies(notes);
    }

    /// Counts notifications nobody had room for (see [`Fanout::count_dropped`]).
    pub(super) fn count_dropped(&self, dropped: u64) {
        self.fanout.count_dropped(dropped);
    }

    pub(super) fn core(&self) -> MutexGuard<'_, Core> {
        match self.core.lock() {
            Ok(core) => core,
            Err(poisoned) => {
                // A thread panicked while holding the state: the node must not
                // look alive. Report it (EINTERNAL) and stop; the state is still
                // memory-safe to use for that.
                self.core.clear_poison();
                let core = poisoned.into_inner();
                self.fault("a thread panicked while holding the node's state");
                core
            }
        }
    }
}
