//! The getters of [`Swarm`]: what a host may ask about the torrent and about one connection.

use std::net::SocketAddr;

use super::{Hosted, Swarm};
use crate::addr::canonical_addr;
use crate::config::Config;
use crate::conn::Conn;
use crate::peer::{Peer, PeerFlags};
use crate::slots::ConnectionId;
use crate::stats::Stats;

impl Swarm {
    // ---- torrent-wide ---------------------------------------------------------------------

    /// The configuration shared by every connection.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The id to register `ut_pex` under in our extended handshakes' `m`, or `None` for a
    /// private torrent (BEP 27), whose handshakes must not advertise it.
    pub fn local_extension_id(&self) -> Option<u8> {
        (!self.config.private).then_some(self.config.local_extension_id)
    }

    /// How many peers are advertised as live (connected, plus lingering contacts).
    pub fn live_count(&self) -> usize {
        self.live.timeline().live_len()
    }

    /// The same as [`live_count`](Self::live_count) (an older name that read like a list).
    pub fn live_peers(&self) -> usize {
        self.live_count()
    }

    /// Every live peer, in address order.
    pub fn live(&self) -> impl Iterator<Item = Peer> + '_ {
        self.live.timeline().live_peers()
    }

    /// Whether `addr` is advertised as live.
    pub fn is_live(&self, addr: SocketAddr) -> bool {
        self.live.timeline().is_live(canonical_addr(addr))
    }

    /// How many connections are attached.
    pub fn connections(&self) -> usize {
        self.slots.len()
    }

    #[doc(hidden)]
    /// Approximate heap bytes of the whole swarm.
    pub fn heap_bytes(&self) -> usize {
        let conns: usize = self.slots.values().map(|h| h.conn.heap_bytes()).sum();
        conns
            + self.slots.heap_bytes()
            + self.live.heap_bytes()
            + self.schedule.heap_bytes()
            + self.batch.heap_bytes()
            + self.chunk.heap_bytes()
            + self.compactor.heap_bytes()
            + self.spare.heap_bytes()
            + self.recycled.heap_bytes()
    }

    // ---- per connection -------------------------------------------------------------------

    /// Whether `id` is attached.
    pub fn contains(&self, id: ConnectionId) -> bool {
        self.slots.get(id).is_some()
    }

    /// Whether the remote on `id` has `ut_pex` on (and the torrent is not private).
    pub fn is_enabled(&self, id: ConnectionId) -> bool {
        self.conn(id).is_some_and(|c| c.is_enabled(&self.config))
    }

    /// Whether sending was started on `id` (and not stopped since).
    pub fn is_started(&self, id: ConnectionId) -> bool {
        self.conn(id).is_some_and(Conn::is_started)
    }

    /// The id the remote on `id` gave `ut_pex` (0: none or off).
    pub fn remote_extension_id(&self, id: ConnectionId) -> u8 {
        self.conn(id).map_or(0, Conn::remote_id)
    }

    /// The dial address recorded for `id`, once known.
    pub fn dial_address(&self, id: ConnectionId) -> Option<SocketAddr> {
        let hosted = self.slots.get(id)?;
        hosted.conn.remote_addr().filter(|_| hosted.dial_known)
    }

    /// The peers the remote on `id` claims to be connected to, sorted by address.
    pub fn remote_peers(&self, id: ConnectionId) -> impl Iterator<Item = Peer> + '_ {
        self.conn(id).into_iter().flat_map(Conn::claims)
    }

    /// Whether the remote on `id` claims `addr`, and with which flags: the connection to
    /// ask for a BEP 55 holepunch rendezvous with `addr`.
    pub fn remote_claims(&self, id: ConnectionId, addr: SocketAddr) -> Option<PeerFlags> {
        self.conn(id)?.claimed_flags(canonical_addr(addr))
    }

    /// Counters of connection `id`.
    pub fn stats(&self, id: ConnectionId) -> Option<Stats> {
        self.conn(id).map(Conn::stats)
    }

    #[doc(hidden)]
    /// How many events wait on `id`.
    pub fn pending_events(&self, id: ConnectionId) -> usize {
        self.conn(id).map_or(0, Conn::pending_events)
    }

    #[doc(hidden)]
    /// Heap bytes held for connection `id` alone (its box, echo table, claims, events).
    pub fn connection_heap_bytes(&self, id: ConnectionId) -> usize {
        self.conn(id)
            .map_or(0, |c| std::mem::size_of::<Hosted>() + c.heap_bytes())
    }
}
