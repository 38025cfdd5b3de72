//! The small public types of the book: who vouches, and what `add` answered.

use std::net::SocketAddr;

use crate::addr::canonical_addr;

/// Where a candidate came from.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// A tracker announce.
    Tracker,
    /// The DHT.
    Dht,
    /// Local service discovery.
    Lsd,
    /// The peer dialled us.
    Incoming,
    /// Resume data.
    Resume,
    /// Added by the user.
    Manual,
    /// A PEX message on the connection to this remote address.
    Pex(SocketAddr),
}

impl Source {
    /// The rank class: lower dials first (tracker, incoming, resume, manual; then DHT and
    /// LSD; then PEX).
    pub(crate) fn class(self) -> u8 {
        match self {
            Source::Tracker | Source::Incoming | Source::Resume | Source::Manual => 0,
            Source::Dht | Source::Lsd => 1,
            Source::Pex(_) => 2,
        }
    }

    /// One key per source: IPv4-mapped remotes count as IPv4.
    pub(crate) fn canonical(self) -> Self {
        match self {
            Source::Pex(a) => Source::Pex(canonical_addr(a)),
            s => s,
        }
    }
}

/// What [`PeerBook::add`](crate::PeerBook::add) did.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new entry.
    Added,
    /// The IP is already an entry (whatever the port); the source now vouches for it.
    Known,
    /// Not taken.
    Refused(Refusal),
}

/// Why a candidate was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Port 0, unspecified, multicast, broadcast, 0/8 or 240/4.
    UnusableAddress,
    /// Our own address (see [`PeerBook::set_local_address`](crate::PeerBook::set_local_address)).
    OwnAddress,
    /// From PEX: a port below 1024.
    LowPort,
    /// From PEX: a loopback, private or link-local address from a source outside that class.
    LocalScope,
    /// A PEX, DHT or LSD source on a private torrent (BEP 27).
    PrivateTorrent,
    /// The source (or its /24, /48) used its budget of new candidates.
    SourceOverBudget,
    /// Too many of the source's candidates failed and none connected.
    DistrustedSource,
    /// Removed after repeated failures; only a non-PEX source brings it back.
    Removed,
    /// The book is full and the newcomer is not stronger than any evictable entry.
    BookFull,
    /// Every source record vouches for something: no room to track a new source.
    TooManySources,
}
