//! The receiving side of one connection: what the remote claims, flood detection, and the
//! address hygiene rules. Shared by [`PexState`](crate::PexState) and the swarm type.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use arrayvec::ArrayVec;

use crate::codec::PexMessage;
use crate::config::{Config, FLOOD_SLOTS};
use crate::error::MessageError;
use crate::event::{Event, EventQueue};
use crate::flags::{canonical_addr, Peer, PeerFlags};
use crate::stats::Stats;

/// What a received message changed in the remote's claimed set, for the sending side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The remote now claims this address (so we must not echo it back).
    Added(SocketAddr),
    /// The remote no longer claims this address.
    Dropped(SocketAddr),
}

/// The receiving side of one connection.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    /// Peers the remote claims to be connected to, sorted by address, at most
    /// `Config::max_remote_peers` of them.
    claims: Vec<Peer>,
    /// Arrival times of the last accepted messages, oldest first.
    arrivals: ArrayVec<Instant, FLOOD_SLOTS>,
    /// Whether the host said the remote has a global address (libtorrent's rule: then
    /// local-scope addresses it sends are ignored).
    remote_is_global: bool,
}

impl Inbound {
    pub(crate) fn set_remote_ip(&mut self, ip: IpAddr) {
        self.remote_is_global = !is_local_scope(ip);
    }

    pub(crate) fn claims(&self) -> &[Peer] {
        &self.claims
    }

    pub(crate) fn claimed(&self, addr: SocketAddr) -> bool {
        self.find(addr).is_ok()
    }

    pub(crate) fn claimed_flags(&self, addr: SocketAddr) -> Option<PeerFlags> {
        self.find(addr).ok().map(|i| self.claims[i].flags)
    }

    fn find(&self, addr: SocketAddr) -> Result<usize, usize> {
        self.claims.binary_search_by(|p| p.addr.cmp(&addr))
    }

    /// Forgets what the remote claimed (the flood window stays: a reset by the host must not
    /// let a remote flood).
    pub(crate) fn forget(&mut self) {
        self.claims = Vec::new();
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.claims.capacity() * std::mem::size_of::<Peer>()
    }

    /// Checks and applies one message. On `Err` nothing changed but the error counter.
    pub(crate) fn handle(
        &mut self,
        now: Instant,
        payload: &[u8],
        config: &Config,
        events: &mut EventQueue,
        stats: &mut Stats,
        mut on_claim: impl FnMut(Claim),
    ) -> Result<(), MessageError> {
        if config.private {
            stats.ignored_private += 1;
            return Ok(());
        }
        if payload.len() > config.max_message_size {
            stats.errors_too_large += 1;
            return Err(MessageError::TooLarge {
                size: payload.len(),
                limit: config.max_message_size,
            });
        }
        // Like libtorrent, the flood check comes before decoding, but unlike it a refused
        // message does not count: an `Err` leaves the state as it was.
        let window_start = now.checked_sub(config.flood_window);
        let recent = self
            .arrivals
            .iter()
            .filter(|&&t| window_start.map_or(true, |start| t > start))
            .count();
        if recent >= config.flood_messages {
            stats.errors_too_frequent += 1;
            return Err(MessageError::TooFrequent {
                accepted: recent,
                window: config.flood_window,
            });
        }
        let message = PexMessage::decode(payload).map_err(|e| {
            stats.errors_decode += 1;
            MessageError::Decode(e)
        })?;

        if self.arrivals.len() >= config.flood_messages {
            self.arrivals.remove(0);
        }
        // `flood_messages <= FLOOD_SLOTS`, so there is room after the removal above.
        let _ = self.arrivals.try_push(now);
        stats.messages_received += 1;

        // Only this many entries of each list are looked at: the claimed set cannot hold
        // more, and it bounds the added-vs-dropped comparison below to a fixed cost.
        let examine = config.max_remote_peers;
        let dropped = || message.dropped().take(examine).map(canonical_addr);
        let added = || {
            message
                .added()
                .take(examine)
                .map(|p| (canonical_addr(p.addr), p.flags))
        };
        stats.ignored_over_cap += message.added_len().saturating_sub(examine) as u64;
        stats.ignored_over_cap += message.dropped_len().saturating_sub(examine) as u64;

        // Drops first, like libtorrent: they make room for the adds.
        for addr in dropped() {
            if added().any(|(a, _)| a == addr) {
                // BEP 11: "An added contact must not be dropped in the same message."
                stats.ignored_added_and_dropped += 1;
                continue;
            }
            match self.find(addr) {
                Ok(i) => {
                    self.claims.remove(i);
                    stats.peers_dropped_received += 1;
                    events.push(Event::PeerDropped(addr));
                    on_claim(Claim::Dropped(addr));
                }
                Err(_) => stats.ignored_unknown_drop += 1,
            }
        }
        for (addr, flags) in added() {
            if dropped().any(|a| a == addr) {
                stats.ignored_added_and_dropped += 1;
                continue;
            }
            if let Some(rule) = self.hygiene(addr) {
                rule(stats);
                continue;
            }
            match self.find(addr) {
                Ok(_) => stats.ignored_duplicate += 1,
                Err(_) if self.claims.len() >= config.max_remote_peers => {
                    stats.ignored_over_cap += 1;
                }
                Err(i) => {
                    if self.claims.capacity() == 0 {
                        // One allocation up to the cap, so steady state never reallocates.
                        self.claims.reserve_exact(config.max_remote_peers.min(256));
                    }
                    let peer = Peer::new(addr, flags);
                    self.claims.insert(i, peer);
                    stats.peers_added_received += 1;
                    events.push(Event::PeerAdded(peer));
                    on_claim(Claim::Added(addr));
                }
            }
        }
        Ok(())
    }

    /// The hygiene rule an added address breaks, as the counter to bump; `None` if usable.
    fn hygiene(&self, addr: SocketAddr) -> Option<fn(&mut Stats)> {
        if addr.port() == 0 {
            return Some(|s| s.ignored_port_zero += 1);
        }
        if !is_dialable_ip(addr.ip()) {
            return Some(|s| s.ignored_unusable_address += 1);
        }
        if self.remote_is_global && is_local_scope(addr.ip()) {
            return Some(|s| s.ignored_local_address += 1);
        }
        None
    }
}

/// Whether an IP can be dialled at all: not unspecified, multicast or broadcast. The one
/// rule for received adds and for the host's own `add_peer`.
pub(crate) fn is_dialable_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast()),
        IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

/// Loopback, private (RFC 1918), link-local, or unique-local (fc00::/7): addresses that only
/// mean something near the host that announces them.
pub(crate) fn is_local_scope(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_local_scope(IpAddr::V4(v4)),
            None => {
                let first = ip.segments()[0];
                ip.is_loopback() || (first & 0xffc0) == 0xfe80 || (first & 0xfe00) == 0xfc00
            }
        },
    }
}
