//! The transport seam: how the driver's datagrams leave for the group.
//!
//! The engine hands the driver datagrams for the group (or a peer); a
//! [`Link`] carries them. It is an enum, not a trait object: the multicast
//! path stays one `sendto` per datagram with no dynamic dispatch, lock or
//! allocation added. Receiving differs more (a socket read in bursts, or a
//! NATS subscription stream) and stays with each transport's receive task;
//! both feed the same `Endpoint::handle_datagram`.

use super::nats::Publisher;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// The sending half of the node's transport; cheap to clone (the timer task holds one).
#[derive(Clone)]
pub(super) enum Link {
    /// Multicast UDP: the send socket (non-blocking, not in the reactor).
    Udp(Arc<std::net::UdpSocket>),
    /// NATS: every datagram is published on the group's subject; `dest` is
    /// ignored (NATS has no unicast: peers drop what is not theirs).
    Nats(Publisher),
}

impl Link {
    /// Sends one datagram without waiting: `WouldBlock` when the socket
    /// buffer (UDP) or the client's command queue (NATS) is full.
    #[inline]
    pub(super) fn send_to(&self, datagram: &[u8], dest: SocketAddr) -> io::Result<()> {
        match self {
            Link::Udp(socket) => socket.send_to(datagram, dest).map(|_| ()),
            Link::Nats(publisher) => publisher.try_send(datagram),
        }
    }
}
