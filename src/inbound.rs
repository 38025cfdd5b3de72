//! The receiving side of one connection: what the remote claims, flood detection, and the
//! rules that decide which announced entries count.
//!
//! A message goes through two steps. [`Inbound::admit`] decides whether it is taken at all
//! (private torrent, size, flood window, decoding), and changes nothing on refusal.
//! [`Inbound::apply`] then updates the claimed set entry by entry, drops first, and reports
//! every accepted change as a [`Claim`].

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use arrayvec::ArrayVec;

use crate::addr::{canonical_addr, is_dialable_ip, is_local_scope};
use crate::codec::PexMessage;
use crate::config::{Config, FLOOD_SLOTS};
use crate::error::MessageError;
use crate::peer::{Peer, PeerFlags};
use crate::stats::Stats;

/// An accepted change to the remote's claimed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The remote now claims this peer (a candidate for the host; never echoed back).
    Added(Peer),
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

    /// Decides whether a message is taken: `Ok(None)` when it is ignored (a private
    /// torrent), the decoded message when accepted (its arrival then counts in the flood
    /// window). On `Err` nothing changed but the error counter.
    pub(crate) fn admit<'p>(
        &mut self,
        now: Instant,
        payload: &'p [u8],
        config: &Config,
        stats: &mut Stats,
    ) -> Result<Option<PexMessage<'p>>, MessageError> {
        if config.private {
            // BEP 27: a private torrent's peers come from its tracker only.
            stats.ignored_private += 1;
            return Ok(None);
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
        Ok(Some(message))
    }

    /// Applies an admitted message to the claimed set: drops first, like libtorrent (they
    /// make room for the adds), then adds. Every entry ignored is counted in `stats`.
    ///
    /// Only the first `max_remote_peers` entries of each list are looked at: the claimed set
    /// cannot hold more, and it bounds the added-vs-dropped comparison to a fixed cost.
    pub(crate) fn apply(
        &mut self,
        message: &PexMessage<'_>,
        max_remote_peers: usize,
        stats: &mut Stats,
        mut on_claim: impl FnMut(Claim),
    ) {
        let examine = max_remote_peers;
        stats.ignored_over_cap += message.added_len().saturating_sub(examine) as u64;
        stats.ignored_over_cap += message.dropped_len().saturating_sub(examine) as u64;
        let lists = Lists { message, examine };
        self.apply_drops(lists, stats, &mut on_claim);
        self.apply_adds(lists, max_remote_peers, stats, &mut on_claim);
    }

    fn apply_drops(
        &mut self,
        lists: Lists<'_, '_>,
        stats: &mut Stats,
        mut on_claim: impl FnMut(Claim),
    ) {
        for addr in lists.dropped() {
            if lists.added().any(|p| p.addr == addr) {
                // BEP 11: "An added contact must not be dropped in the same message."
                stats.ignored_added_and_dropped += 1;
                continue;
            }
            match self.find(addr) {
                Ok(i) => {
                    self.claims.remove(i);
                    stats.peers_dropped_received += 1;
                    on_claim(Claim::Dropped(addr));
                }
                Err(_) => stats.ignored_unknown_drop += 1,
            }
        }
    }

    fn apply_adds(
        &mut self,
        lists: Lists<'_, '_>,
        cap: usize,
        stats: &mut Stats,
        mut on_claim: impl FnMut(Claim),
    ) {
        for peer in lists.added() {
            if lists.dropped().any(|a| a == peer.addr) {
                stats.ignored_added_and_dropped += 1;
                continue;
            }
            if let Some(rule) = self.hygiene(peer.addr) {
                rule(stats);
                continue;
            }
            match self.find(peer.addr) {
                Ok(_) => stats.ignored_duplicate += 1,
                Err(_) if self.claims.len() >= cap => stats.ignored_over_cap += 1,
                Err(i) => {
                    if self.claims.capacity() == 0 {
                        // One allocation up to the cap, so steady state never reallocates.
                        self.claims.reserve_exact(cap.min(256));
                    }
                    self.claims.insert(i, peer);
                    stats.peers_added_received += 1;
                    on_claim(Claim::Added(peer));
                }
            }
        }
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

/// The examined part of a message's lists, in canonical form.
#[derive(Clone, Copy)]
struct Lists<'m, 'p> {
    message: &'m PexMessage<'p>,
    examine: usize,
}

impl<'p> Lists<'_, 'p> {
    fn added(self) -> impl Iterator<Item = Peer> + 'p {
        let examine = self.examine;
        self.message
            .added()
            .take(examine)
            .map(|p| Peer::new(canonical_addr(p.addr), p.flags))
    }

    fn dropped(self) -> impl Iterator<Item = SocketAddr> + 'p {
        self.message
            .dropped()
            .take(self.examine)
            .map(canonical_addr)
    }
}
