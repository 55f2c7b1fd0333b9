//! One receive burst's buffers: datagrams read from a socket land in one
//! arena (no allocation per datagram), with our own multicast loopback
//! copies skipped on the way. Reading only: `receive` feeds what was read
//! to the engine.

use super::events::Notification;
use super::OwnDatagrams;
use crate::error::Error;
use std::io;
use std::net::SocketAddr;

/// Most datagrams the receive task takes from the socket per burst.
pub(super) const RECV_BATCH: usize = 512;
/// Receive arena: a burst stops when less than one maximal datagram fits.
const RECV_ARENA: usize = 512 * 1024;
/// Largest UDP datagram we may receive (64 KiB covers IPv4's 65,507).
const MAX_DATAGRAM: usize = 64 * 1024;

/// One burst's buffers, reused from burst to burst.
pub(super) struct Burst {
    arena: Vec<u8>,
    /// Where each datagram of the burst lies in `arena`, and its source.
    marks: Vec<(usize, usize, SocketAddr)>,
    /// Notifications of the burst, for the caller to hand on.
    pub(super) notes: Vec<Notification>,
}

impl Burst {
    pub(super) fn new() -> Self {
        Burst { arena: vec![0u8; RECV_ARENA], marks: Vec::with_capacity(RECV_BATCH), notes: Vec::new() }
    }

    /// Reads datagrams with `recv` (non-blocking) until it would block or the
    /// burst is full, skipping our own (`own`). A receive failure becomes a
    /// notification in `notes`. Returns how many own datagrams were skipped.
    pub(super) fn fill(
        &mut self,
        own: &OwnDatagrams,
        mut recv: impl FnMut(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    ) -> u64 {
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
        skipped
    }

    /// The datagrams of the last [`fill`](Self::fill), with their sources.
    pub(super) fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.marks.iter().map(|&(start, len, source)| (source, &self.arena[start..start + len]))
    }

    /// How many datagrams the last `fill` read (own ones not counted).
    pub(super) fn len(&self) -> usize {
        self.marks.len()
    }

    /// Whether the last `fill` stopped because the burst was full (more may wait).
    pub(super) fn was_full(&self) -> bool {
        self.marks.len() == RECV_BATCH
    }
}
