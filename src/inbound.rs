//! The receiving side of one connection: what the remote claims, flood detection, and the
//! rules that decide which announced entries count.
//!
//! A message goes through two steps. [`Inbound::admit`] decides whether it is taken at all
//! (private torrent, size, flood window, decoding), and changes nothing on refusal.
//! [`Inbound::apply`] then updates the claimed set entry by entry, drops first, and reports
//! every accepted change as a [`Claim`].

use std::net::SocketAddr;
use std::time::Instant;

use crate::addr::{canonical_addr, is_dialable_ip, is_local_scope};
use crate::claims::{Claims, Inserted};
use crate::codec::PexMessage;
use crate::config::Config;
use crate::error::MessageError;
use crate::flood::FloodWindow;
use crate::peer::{Peer, PeerFlags};
use crate::stats::Counters;

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
    /// Peers the remote claims to be connected to, at most `Config::max_remote_peers`.
    claims: Claims,
    /// When the last accepted messages arrived.
    arrivals: FloodWindow,
}

/// What a connection that left gives back for the next one to connect, so that a host
/// replacing connections all day (a seedbox) does not allocate for each newcomer's first
/// message: one claims list (at most about twice `Config::max_remote_peers` entries,
/// host-bounded) and one flood window. One of each, like the event spill buffer.
#[derive(Debug, Default)]
pub(crate) struct Recycled {
    claims: Vec<u64>,
    arrivals: FloodWindow,
}

impl Recycled {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.claims.capacity() * std::mem::size_of::<u64>() + self.arrivals.heap_bytes()
    }
}

impl Inbound {
    /// Gives this (departing) remote's storage to `into`, where it has none of its kind.
    pub(crate) fn recycle(self, into: &mut Recycled) {
        if into.claims.capacity() == 0 {
            into.claims = self.claims.into_v4_storage();
        }
        if !into.arrivals.is_allocated() {
            into.arrivals = self.arrivals.cleared();
        }
    }

    /// Takes storage from `from` where this remote has none yet.
    pub(crate) fn adopt(&mut self, from: &mut Recycled) {
        self.claims.adopt_v4_storage(&mut from.claims);
        if !self.arrivals.is_allocated() {
            self.arrivals = std::mem::take(&mut from.arrivals);
        }
    }

    pub(crate) fn claims(&self) -> impl Iterator<Item = Peer> + '_ {
        self.claims.iter()
    }

    pub(crate) fn claimed(&self, addr: SocketAddr) -> bool {
        self.claims.contains(addr)
    }

    pub(crate) fn claimed_flags(&self, addr: SocketAddr) -> Option<PeerFlags> {
        self.claims.flags(addr)
    }

    /// Forgets what the remote claimed (the flood window stays: a reset by the host must not
    /// let a remote flood).
    pub(crate) fn forget(&mut self) {
        self.claims = Claims::default();
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.claims.heap_bytes() + self.arrivals.heap_bytes()
    }

    /// Decides whether a message is taken: `Ok(None)` when it is ignored (a private
    /// torrent), the decoded message when accepted (its arrival then counts in the flood
    /// window). On `Err` nothing changed but the error counter.
    pub(crate) fn admit<'p>(
        &mut self,
        now: Instant,
        payload: &'p [u8],
        config: &Config,
        stats: &mut Counters,
    ) -> Result<Option<PexMessage<'p>>, MessageError> {
        if config.private {
            // BEP 27: a private torrent's peers come from its tracker only.
            stats.ignored_private += 1;
            return Ok(None);
        }
        if payload.len() > config.get_max_message_size() {
            stats.errors_too_large += 1;
            return Err(MessageError::TooLarge {
                size: payload.len(),
                limit: config.get_max_message_size(),
            });
        }
        // Like libtorrent, the flood check comes before decoding, but unlike it a refused
        // message does not count: an `Err` leaves the state as it was.
        let recent = self.arrivals.recent(now, config.flood_window);
        if recent >= usize::from(config.flood_messages) {
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
        self.arrivals
            .record(now, usize::from(config.flood_messages));
        stats.messages_received += 1;
        Ok(Some(message))
    }

    /// Applies an admitted message to the claimed set: drops first, like libtorrent (they
    /// make room for the adds), then adds. Every entry ignored is counted in `stats`.
    ///
    /// Only the first `rules.cap` entries of each list are looked at: the claimed set cannot
    /// hold more, and it bounds the added-vs-dropped comparison (see [`Overlap`]).
    pub(crate) fn apply(
        &mut self,
        message: &PexMessage<'_>,
        rules: AddRules,
        stats: &mut Counters,
        mut on_claim: impl FnMut(Claim),
    ) {
        let examine = rules.cap;
        stats.ignored_over_cap += message.added_len().saturating_sub(examine);
        stats.ignored_over_cap += message.dropped_len().saturating_sub(examine);
        let lists = Lists { message, examine };
        let overlap = Overlap::of(lists);
        self.apply_drops(lists, &overlap, stats, &mut on_claim);
        self.apply_adds(lists, &overlap, rules, stats, &mut on_claim);
    }

    fn apply_drops(
        &mut self,
        lists: Lists<'_, '_>,
        overlap: &Overlap,
        stats: &mut Counters,
        mut on_claim: impl FnMut(Claim),
    ) {
        for addr in lists.dropped() {
            if overlap.dropped_is_added(lists, addr) {
                // BEP 11: "An added contact must not be dropped in the same message."
                stats.ignored_added_and_dropped += 1;
                continue;
            }
            if self.claims.remove(addr) {
                stats.peers_dropped_received += 1;
                on_claim(Claim::Dropped(addr));
            } else {
                stats.ignored_unknown_drop += 1;
            }
        }
    }

    fn apply_adds(
        &mut self,
        lists: Lists<'_, '_>,
        overlap: &Overlap,
        rules: AddRules,
        stats: &mut Counters,
        mut on_claim: impl FnMut(Claim),
    ) {
        let cap = rules.cap;
        let (v4, v6) = lists.message.added_lens();
        self.claims
            .reserve_first(v4.min(cap), v6.min(cap.saturating_sub(v4)));
        for peer in lists.added() {
            if overlap.added_is_dropped(lists, peer.addr) {
                stats.ignored_added_and_dropped += 1;
                continue;
            }
            if let Some(rule) = hygiene(peer.addr, rules.remote_is_global) {
                rule(stats);
                continue;
            }
            match self.claims.insert_within(peer, cap) {
                Inserted::Duplicate => stats.ignored_duplicate += 1,
                Inserted::Full => stats.ignored_over_cap += 1,
                Inserted::New => {
                    stats.peers_added_received += 1;
                    on_claim(Claim::Added(peer));
                }
            }
        }
    }
}

/// What decides whether an announced peer is taken, besides the claimed set itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AddRules {
    /// `Config::max_remote_peers`.
    pub(crate) cap: usize,
    /// Whether the host said the remote has a global address (libtorrent's rule: then
    /// local-scope addresses it sends are ignored).
    pub(crate) remote_is_global: bool,
}

/// The hygiene rule an added address breaks, as the counter to bump; `None` if usable.
fn hygiene(addr: SocketAddr, remote_is_global: bool) -> Option<fn(&mut Counters)> {
    if addr.port() == 0 {
        return Some(|s| s.ignored_port_zero += 1);
    }
    if !is_dialable_ip(addr.ip()) {
        return Some(|s| s.ignored_unusable_address += 1);
    }
    if remote_is_global && is_local_scope(addr.ip()) {
        return Some(|s| s.ignored_local_address += 1);
    }
    None
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

/// The most examined dropped entries [`Overlap`] sorts on the stack (BEP 11 allows 50).
const SORTED_DROPS: usize = 128;

/// Which examined entries are on both lists of a message (BEP 11: "An added contact must
/// not be dropped in the same message"), found without allocating: the dropped list sorted
/// on the stack, each added entry looked up once, so the rule costs O((a + d) log d) rather
/// than a pass over one list per entry of the other. A dropped list longer than the table
/// (only a message over BEP 11's limit, with a cap above the table) is scanned instead.
// Large on purpose: it lives on the stack for one `apply`, so that receiving never allocates.
#[allow(clippy::large_enum_variant)]
enum Overlap {
    /// One list is empty: nothing is on both.
    None,
    /// The examined dropped addresses, sorted and deduplicated (the first `len`), each
    /// marked if some examined added entry has it.
    Sorted {
        dropped: [SocketAddr; SORTED_DROPS],
        added_too: [bool; SORTED_DROPS],
        len: usize,
    },
    /// Too many drops for the table: each lookup scans the other list.
    Scan,
}

impl Overlap {
    fn of(lists: Lists<'_, '_>) -> Self {
        let (added, dropped) = (lists.message.added_len(), lists.message.dropped_len());
        if added == 0 || dropped == 0 || lists.examine == 0 {
            return Self::None;
        }
        if dropped.min(lists.examine) > SORTED_DROPS {
            return Self::Scan;
        }
        let mut table = [SocketAddr::from(([0, 0, 0, 0], 0)); SORTED_DROPS];
        let mut len = 0;
        for addr in lists.dropped() {
            table[len] = addr;
            len += 1;
        }
        table[..len].sort_unstable();
        let mut unique = 0;
        for k in 0..len {
            if unique == 0 || table[unique - 1] != table[k] {
                table[unique] = table[k];
                unique += 1;
            }
        }
        let mut added_too = [false; SORTED_DROPS];
        for peer in lists.added() {
            if let Ok(k) = table[..unique].binary_search(&peer.addr) {
                added_too[k] = true;
            }
        }
        Self::Sorted {
            dropped: table,
            added_too,
            len: unique,
        }
    }

    /// Whether an examined dropped `addr` is also added.
    fn dropped_is_added(&self, lists: Lists<'_, '_>, addr: SocketAddr) -> bool {
        match self {
            Self::None => false,
            Self::Sorted {
                dropped,
                added_too,
                len,
            } => dropped[..*len]
                .binary_search(&addr)
                .is_ok_and(|k| added_too[k]),
            Self::Scan => lists.added().any(|p| p.addr == addr),
        }
    }

    /// Whether an examined added `addr` is also dropped.
    fn added_is_dropped(&self, lists: Lists<'_, '_>, addr: SocketAddr) -> bool {
        match self {
            Self::None => false,
            Self::Sorted { dropped, len, .. } => dropped[..*len].binary_search(&addr).is_ok(),
            Self::Scan => lists.dropped().any(|a| a == addr),
        }
    }
}
