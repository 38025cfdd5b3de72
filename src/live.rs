//! [`LiveSet`]: the peers a [`Swarm`](crate::Swarm) advertises as live, over the shared
//! [`Timeline`]: who is connected, which recently disconnected contacts linger (BEP 11's
//! "filling underpopulated lists"), and which dial addresses more than one connection has.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::addr::{is_usable, Family};
use crate::peer::PeerFlags;
use crate::timeline::Timeline;

/// BEP 11 "filling underpopulated lists": an address family with fewer live connections than
/// this is underpopulated, and contacts that left it for one of the reasons of
/// [`DisconnectReason`] may linger (stay advertised) for one more send interval.
pub const UNDERPOPULATED_BELOW: usize = 25;
/// BEP 11 "filling underpopulated lists": the most lingering contacts per address family
/// ("up to 25"); one more makes the oldest leave.
pub const MAX_LINGERING: usize = 25;

/// Why a connection ended, for BEP 11's "filling underpopulated lists": only contacts
/// disconnected "locally and for one of these reasons" may stay advertised for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// "the same peer ID is already connected on the other address family".
    DuplicatePeerOtherFamily,
    /// "permanent lack of mutual interest (e.g. both are seeds)".
    NoMutualInterest,
    /// "local resource limits (e.g. too many connections)".
    LocalResourceLimits,
    /// Anything else (remote closed, errors, …): the peer is dropped in the next frame.
    Other,
}

impl DisconnectReason {
    fn allows_lingering(self) -> bool {
        !matches!(self, Self::Other)
    }
}

/// What [`LiveSet::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// A new live peer: the log grew.
    New,
    /// A lingering contact is connected again: live for real, nothing new to send.
    Returned,
    /// Unusable, or already live (then only its flags changed, for connections not yet
    /// told about it).
    Ignored,
}

/// The live peers of one torrent.
#[derive(Debug, Default)]
pub(crate) struct LiveSet {
    timeline: Timeline,
    /// Recently disconnected contacts still advertised, oldest first, per family, with when
    /// they left.
    lingering: [VecDeque<(SocketAddr, Instant)>; 2],
    /// Live peers per family, lingering ones included.
    live_by_family: [usize; 2],
    /// Dial addresses that more than one connection has (a duplicate connection to a live
    /// peer), with how many connections beyond the first: the peer stays live until the last
    /// of them ends. Empty unless the host keeps duplicate connections.
    duplicate_dials: BTreeMap<SocketAddr, u32>,
}

impl LiveSet {
    pub(crate) fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    pub(crate) fn timeline_mut(&mut self) -> &mut Timeline {
        &mut self.timeline
    }

    /// Makes a canonical `addr` live.
    pub(crate) fn add(&mut self, addr: SocketAddr, flags: PeerFlags) -> Added {
        if !is_usable(addr) {
            return Added::Ignored;
        }
        let family = Family::of(&addr).index();
        if let Some(i) = self.lingering_index(addr) {
            self.lingering[family].remove(i);
            return Added::Returned;
        }
        if !self.timeline.connected(addr, flags) {
            return Added::Ignored;
        }
        self.live_by_family[family] += 1;
        self.release_if_populated(family);
        Added::New
    }

    /// Records a connection's dial address: live, or counted as a duplicate if another
    /// connection already has it (whose end must not drop a peer we are still connected to).
    pub(crate) fn add_dial(&mut self, dial: SocketAddr, flags: PeerFlags) -> Added {
        if self.timeline.is_live(dial) && self.lingering_index(dial).is_none() {
            *self.duplicate_dials.entry(dial).or_insert(0) += 1;
            return Added::Ignored;
        }
        self.add(dial, flags)
    }

    /// A connection with dial address `dial` ended; returns whether the log grew.
    pub(crate) fn release_dial(
        &mut self,
        dial: SocketAddr,
        reason: DisconnectReason,
        now: Option<Instant>,
    ) -> bool {
        if let Some(extra) = self.duplicate_dials.get_mut(&dial) {
            *extra -= 1;
            if *extra == 0 {
                self.duplicate_dials.remove(&dial);
            }
            return false;
        }
        self.remove(dial, reason, now)
    }

    /// Makes a canonical `addr` leave: at once, or after lingering if `reason` and the
    /// family's population allow. Returns whether the log grew.
    pub(crate) fn remove(
        &mut self,
        addr: SocketAddr,
        reason: DisconnectReason,
        now: Option<Instant>,
    ) -> bool {
        if !self.timeline.is_live(addr) || self.lingering_index(addr).is_some() {
            return false;
        }
        let family = Family::of(&addr).index();
        // `addr` is live and not lingering, so it is counted in `live_by_family` beside the
        // lingering ones: the subtraction cannot underflow.
        let others_connected = self.live_by_family[family] - self.lingering[family].len() - 1;
        if let (true, Some(now)) = (
            reason.allows_lingering() && others_connected < UNDERPOPULATED_BELOW,
            now,
        ) {
            // One more than the BEP's "up to 25" makes the oldest leave (the log grows).
            let grew = self.lingering[family].len() >= MAX_LINGERING && self.release_oldest(family);
            // `addr` itself stays live: nothing new to send about it yet.
            self.lingering[family].push_back((addr, now));
            return grew;
        }
        self.timeline.disconnected(addr);
        self.live_by_family[family] -= 1;
        true
    }

    /// BEP 11: lingering contacts "must be dropped in the next message" once sent; after a
    /// whole send interval every connection has had its chance to send them. Returns
    /// whether the log grew.
    pub(crate) fn expire(&mut self, now: Instant, interval: Duration) -> bool {
        let mut grew = false;
        for family in 0..2 {
            while let Some(&(_, since)) = self.lingering[family].front() {
                let expired = since.checked_add(interval).is_some_and(|t| t <= now);
                if !expired {
                    break;
                }
                grew |= self.release_oldest(family);
            }
        }
        grew
    }

    /// When the oldest lingering contact expires.
    pub(crate) fn next_expiry(&self, interval: Duration) -> Option<Instant> {
        self.lingering
            .iter()
            .filter_map(|l| l.front())
            .filter_map(|&(_, since)| since.checked_add(interval))
            .min()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.timeline.heap_bytes()
            + self
                .lingering
                .iter()
                .map(|l| l.capacity() * std::mem::size_of::<(SocketAddr, Instant)>())
                .sum::<usize>()
            + self.duplicate_dials.len() * (std::mem::size_of::<(SocketAddr, u32)>() + 8)
    }

    fn lingering_index(&self, addr: SocketAddr) -> Option<usize> {
        self.lingering[Family::of(&addr).index()]
            .iter()
            .position(|&(a, _)| a == addr)
    }

    fn release_oldest(&mut self, family: usize) -> bool {
        let Some((addr, _)) = self.lingering[family].pop_front() else {
            return false;
        };
        self.timeline.disconnected(addr);
        self.live_by_family[family] -= 1;
        true
    }

    /// A family with enough connections again needs no lingering contacts.
    fn release_if_populated(&mut self, family: usize) {
        while self.live_by_family[family] - self.lingering[family].len() >= UNDERPOPULATED_BELOW
            && self.release_oldest(family)
        {}
    }
}
