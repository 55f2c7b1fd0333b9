//! The LAN⇄NATS bridge: relays datagrams, unchanged, between a multicast
//! group and a NATS subject, so LAN nodes (0.1.x included) and NATS nodes
//! see each other with no change. It runs no protocol engine and needs no
//! key: encrypted datagrams cross as ciphertext.
//!
//! # No loops
//!
//! Every bridge on a subject sees everything on both sides (it is in the
//! multicast group and subscribed to the subject), so each remembers, for
//! [`BRIDGE_WINDOW`], the (keyed) hashes of the datagrams seen on the LAN and
//! of those seen on NATS. A datagram arriving from one side crosses only if it
//! was not seen on the other side: a datagram another bridge already relayed
//! is known there and stops. Two bridges on one LAN and subject therefore
//! relay each datagram at most once each (at most one duplicate per extra
//! bridge, which receivers drop as duplicates) and never in a circle. Each
//! memory holds at most [`BRIDGE_SEEN_CAPACITY`] hashes (oldest forgotten
//! first): bounded memory whatever the traffic.
//!
//! # Only eventcast datagrams cross
//!
//! Whatever crosses is multiplied by the bridges on the subject, and what a
//! bridge unpacks by the frames of a bundle. So a bridge relays a datagram
//! only once the decoder has accepted its meta ([`crate::wire::decode_received`]:
//! the framing, the required fields, the identifier rule; the body stays
//! unread, it may be ciphertext), and unpacks a bundle only when the whole
//! bundle is well framed ([`bundle::open`]) and every one of its datagrams
//! passes that check, before it multicasts any. A LAN datagram that is a
//! bundle, or no datagram at all, stays on the LAN; a NATS message that is
//! neither a datagram nor such a bundle stays on NATS. Each is counted
//! (`not_datagrams_dropped`, `bundles_malformed`). So the LAN sees at most one
//! datagram per bridge for each datagram published, and NATS at most one
//! message per bridge for each datagram multicast.
//!
//! The price: a datagram resent with identical bytes (a repair of unencrypted
//! data) within the window after it crossed does not cross again. Repairs come
//! after at least `clamp(messageTtl / 8, 10 ms, 500 ms)` and are asked for again
//! while they make no progress, so a later attempt crosses.

use super::interface::{self, InterfaceInUse, Resolved};
use super::nats::{open_client, subscribe, NATS_MAX_DATAGRAM};
use super::options::{NatsOptions, Options, Transport};
use super::socket;
use crate::error::Error;
use crate::wire::{bundle, decode_received};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// How long a bridge remembers a datagram it saw (loop prevention).
pub const BRIDGE_WINDOW: Duration = Duration::from_secs(1);
/// Most datagram hashes remembered per side (about 40 bytes each).
pub const BRIDGE_SEEN_CAPACITY: usize = 65_536;
/// Largest datagram multicast can carry (IPv4 UDP; IPv6 carries 20 bytes
/// more, but a NATS node's datagrams must fit both); larger NATS messages are dropped.
const MAX_UDP_DATAGRAM: usize = 65_507;

/// What to bridge: a multicast group (`multicast`: port, group — IPv4 or
/// IPv6 — interface, TTL, loopback; its transport is ignored) and a NATS
/// subject (`nats`).
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// The LAN side.
    pub multicast: Options,
    /// The NATS side (subject default `eventcast.<port>`; its `group` is
    /// ignored: the bridge holds no key, NATS nodes set it to `multicast`'s group).
    pub nats: NatsOptions,
}

macro_rules! bridge_stats {
    ($( $(#[doc = $doc:literal])* $name:ident, )*) => {
        /// A bridge's counters.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct BridgeStats {
            $( $(#[doc = $doc])* pub $name: u64, )*
        }

        #[derive(Default)]
        struct Counters {
            $( $name: AtomicU64, )*
        }

        impl Counters {
            fn snapshot(&self) -> BridgeStats {
                BridgeStats { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }

        impl BridgeStats {
            /// Every counter as `(snake_case name, value)`.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$( (stringify!($name), self.$name), )*]
            }
        }
    };
}

bridge_stats! {
    /// Datagrams received from the multicast group.
    lan_received,
    /// Messages received from the NATS subject.
    nats_received,
    /// Datagrams published from the LAN to NATS.
    relayed_to_nats,
    /// Datagrams multicast from NATS to the LAN (a bundle's one by one).
    relayed_to_lan,
    /// Datagrams not relayed because the other side had already seen them (another bridge's copy).
    loops_dropped,
    /// Datagrams too large for the other side (NATS max_payload, or 65,507 bytes for UDP).
    oversize_dropped,
    /// Relays that failed (socket or publish errors).
    send_errors,
    /// NATS connections established (the first, then every reconnect).
    nats_connects,
    /// Times the NATS connection was lost.
    nats_disconnects,
    /// Bundles received from NATS (several datagrams in one message; relayed to the LAN one by one).
    bundles_received,
    /// Bundles refused whole (a frame not framed as a datagram or past the bundle's end, or a datagram the decoder refuses): none of their datagrams was relayed.
    bundles_malformed,
    /// LAN datagrams and bare NATS messages that are not eventcast datagrams (a bundle on the LAN, a meta the decoder refuses): not relayed.
    not_datagrams_dropped,
}

/// Hashes seen within [`BRIDGE_WINDOW`], at most [`BRIDGE_SEEN_CAPACITY`].
#[derive(Default)]
struct Seen {
    order: VecDeque<(Instant, u64)>,
    count: HashMap<u64, u32>,
}

impl Seen {
    fn expire(&mut self, now: Instant) {
        while let Some(&(t, h)) = self.order.front() {
            if now.duration_since(t) < BRIDGE_WINDOW && self.order.len() < BRIDGE_SEEN_CAPACITY {
                break;
            }
            self.order.pop_front();
            if let Some(c) = self.count.get_mut(&h) {
                *c -= 1;
                if *c == 0 {
                    self.count.remove(&h);
                }
            }
        }
    }

    fn insert(&mut self, now: Instant, h: u64) {
        self.expire(now);
        self.order.push_back((now, h));
        *self.count.entry(h).or_insert(0) += 1;
    }

    fn contains(&self, h: u64) -> bool {
        self.count.contains_key(&h)
    }
}

struct State {
    lan: Seen,
    nats: Seen,
}

struct BridgeShared {
    counters: Counters,
    state: Mutex<State>,
    hasher: std::collections::hash_map::RandomState,
}

impl BridgeShared {
    /// Multicasts one datagram from NATS unless too large for UDP or already seen on the LAN.
    async fn relay_to_lan(&self, lan_out: &UdpSocket, group: SocketAddr, datagram: &[u8]) {
        if datagram.len() > MAX_UDP_DATAGRAM {
            self.counters.oversize_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !self.admit(datagram, false) {
            self.counters.loops_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match lan_out.send_to(datagram, group).await {
            Ok(_) => self.counters.relayed_to_lan.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.counters.send_errors.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// The datagrams of a NATS message that may be multicast: all of a
    /// bundle's, or the bare datagram, when every one of them is an eventcast
    /// datagram (see the module docs); else none, counted.
    fn unpack<'a>(&self, payload: &'a [u8]) -> Option<bundle::Datagrams<'a>> {
        let is_bundle = bundle::is_bundle(payload);
        if is_bundle {
            self.counters.bundles_received.fetch_add(1, Ordering::Relaxed);
        }
        let valid = bundle::open(payload).ok().filter(|d| d.clone().all(|d| decode_received(d).is_ok()));
        if valid.is_none() {
            let counter =
                if is_bundle { &self.counters.bundles_malformed } else { &self.counters.not_datagrams_dropped };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        valid
    }

    /// Records `datagram` as seen on its arrival side; true if it may cross
    /// (the other side has not seen it), then also records it there.
    fn admit(&self, datagram: &[u8], from_lan: bool) -> bool {
        let h = self.hasher.hash_one(datagram);
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State { lan, nats } = &mut *st;
        let (here, there) = if from_lan { (lan, nats) } else { (nats, lan) };
        here.insert(now, h);
        there.expire(now);
        if there.contains(h) {
            return false;
        }
        there.insert(now, h);
        true
    }
}

/// A running bridge. Dropping it stops the relay tasks.
pub struct Bridge {
    shared: Arc<BridgeShared>,
    tasks: Vec<JoinHandle<()>>,
    client: async_nats::Client,
    receive: Arc<std::net::UdpSocket>,
    options: Options,
    resolved: Resolved,
    interface: InterfaceInUse,
    subject: String,
}

impl Bridge {
    /// Joins the group, connects to NATS (within [`super::NATS_START_TIMEOUT`])
    /// and starts relaying, on the current tokio runtime.
    pub async fn start(options: BridgeOptions) -> Result<Bridge, Error> {
        let multicast = Options { transport: Transport::Multicast, ..options.multicast };
        multicast.validate()?;
        if multicast.port == 0 {
            return Err(Error::InvalidOption { option: "port", reason: "a bridge needs the group's port".into() });
        }
        Options { transport: Transport::Nats(options.nats.clone()), ..Options::with_port(multicast.port) }
            .validate()?;
        let shared = Arc::new(BridgeShared {
            counters: Counters::default(),
            state: Mutex::new(State { lan: Seen::default(), nats: Seen::default() }),
            hasher: Default::default(),
        });
        let weak = Arc::downgrade(&shared);
        let client = open_client(&options.nats, "eventcast bridge".into(), move |event| {
            let Some(shared) = weak.upgrade() else { return };
            match event {
                async_nats::Event::Connected => _ = shared.counters.nats_connects.fetch_add(1, Ordering::Relaxed),
                async_nats::Event::Disconnected => {
                    shared.counters.nats_disconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("eventcast bridge: disconnected from NATS; reconnecting");
                }
                other => tracing::warn!("eventcast bridge: NATS {other}"),
            }
        })
        .await?;
        let (_, subscriber, subject) = subscribe(&client, &options.nats, multicast.port).await?;
        let max_payload = client.server_info().max_payload;

        let resolved = interface::resolve(&multicast)?;
        let receive = socket::bind_multicast(&multicast, &resolved)?;
        let send = socket::bind_sender(&multicast, &resolved)?;
        let interface = resolved.in_use(send.source.ip());
        // Our own multicast must not come back as LAN traffic: by the kernel filter, else by source
        // (address and port: an IPv6 source's scope is the interface it arrived on).
        let own = match socket::drop_own_datagrams(&receive, send.source) {
            Ok(()) => None,
            Err(_) => Some((send.source.ip(), send.source.port())),
        };
        let group = socket::group_addr(&multicast, &resolved, multicast.port);
        let lan_in = UdpSocket::from_std(receive.try_clone()?)?;
        let lan_out = UdpSocket::from_std(send.socket)?;

        let mut tasks = Vec::new();
        let (s, c, subj) = (shared.clone(), client.clone(), subject.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let (n, source) = match lan_in.recv_from(&mut buf).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!("eventcast bridge: receiving: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if Some((source.ip(), source.port())) == own {
                    continue;
                }
                s.counters.lan_received.fetch_add(1, Ordering::Relaxed);
                let datagram = &buf[..n];
                // Checked before it is remembered: garbage takes no room in the memory of what crossed.
                if decode_received(datagram).is_err() {
                    s.counters.not_datagrams_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if !s.admit(datagram, true) {
                    s.counters.loops_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if n > max_payload {
                    s.counters.oversize_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                match c.publish(subj.clone(), Bytes::copy_from_slice(datagram)).await {
                    Ok(()) => s.counters.relayed_to_nats.fetch_add(1, Ordering::Relaxed),
                    Err(_) => s.counters.send_errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut subscriber = subscriber;
            while let Some(m) = subscriber.next().await {
                s.counters.nats_received.fetch_add(1, Ordering::Relaxed);
                if m.payload.len() > NATS_MAX_DATAGRAM {
                    s.counters.oversize_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // A NATS node's burst arrives as a bundle; multicast carries each datagram alone.
                let Some(datagrams) = s.unpack(&m.payload) else { continue };
                for datagram in datagrams {
                    s.relay_to_lan(&lan_out, group, datagram).await;
                }
            }
        }));
        Ok(Bridge {
            shared,
            tasks,
            client,
            receive: Arc::new(receive),
            options: multicast,
            resolved,
            interface,
            subject: subject.to_string(),
        })
    }

    /// The NATS subject bridged.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The LAN interface the group was joined on and relays leave through.
    pub fn interface(&self) -> &InterfaceInUse {
        &self.interface
    }

    /// The counters so far.
    pub fn stats(&self) -> BridgeStats {
        self.shared.counters.snapshot()
    }

    /// Stops relaying, flushes what was published (up to 1 s), leaves the group.
    pub async fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
        socket::leave_multicast(&self.receive, &self.options, &self.resolved);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_crosses_once_per_direction_and_never_back() {
        let b = BridgeShared {
            counters: Counters::default(),
            state: Mutex::new(State { lan: Seen::default(), nats: Seen::default() }),
            hasher: Default::default(),
        };
        // From the LAN: crosses; the copy another bridge publishes does not come back.
        assert!(b.admit(b"lan datagram", true));
        assert!(!b.admit(b"lan datagram", false));
        // From NATS: crosses; another bridge's multicast copy does not go back.
        assert!(b.admit(b"nats datagram", false));
        assert!(!b.admit(b"nats datagram", true));
        // Memory stays bounded under a flood.
        for i in 0..(BRIDGE_SEEN_CAPACITY as u32 + 1000) {
            b.admit(&i.to_le_bytes(), true);
        }
        let st = b.state.lock().unwrap();
        assert!(st.lan.order.len() <= BRIDGE_SEEN_CAPACITY && st.nats.order.len() <= BRIDGE_SEEN_CAPACITY);
        assert!(st.lan.count.len() <= BRIDGE_SEEN_CAPACITY);
    }
}
