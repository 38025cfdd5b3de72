//! One candidate: an IP, its port, and what the book knows about dialling it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

pub(crate) use super::compact::MAX_VOUCHERS;
use super::compact::{Stamp, Vouchers};

/// An IP as 16 bytes (IPv4 as `::ffff:a.b.c.d`): a compact map key, one per peer.
pub(crate) type IpKey = [u8; 16];

pub(crate) fn ip_key(ip: IpAddr) -> IpKey {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

pub(crate) fn key_ip(key: IpKey) -> IpAddr {
    let v6 = Ipv6Addr::from(key);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

/// The /24 (IPv4) or /48 (IPv6) of an IP, with the family in the first byte.
pub(crate) fn subnet(ip: IpAddr) -> [u8; 7] {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            [4, a, b, c, 0, 0, 0]
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, ..] = v6.octets();
            [6, a, b, c, d, e, f]
        }
    }
}

/// Where a dial to the entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dial {
    Idle,
    InFlight,
    Connected,
}

/// How weak an entry is for eviction (larger is weaker): class, missing vouches, failures.
/// The tie-break is deliberately absent: nothing is evicted by tie-break alone.
pub(crate) type Weakness = (u8, u8, u8);

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) key: IpKey,
    /// Not returned by `poll_dial` before this (backoff or reconnect delay); `NONE`: at once.
    pub(crate) retry_at: Stamp,
    pub(crate) port: u16,
    /// The best class any source gave it (see `Source::class`).
    pub(crate) class: u8,
    pub(crate) failures: u8,
    pub(crate) dial: Dial,
    /// Port learned from a non-PEX source or confirmed by `connected`: PEX cannot change it.
    pub(crate) sticky: bool,
    pub(crate) ever_connected: bool,
    /// BEP 40 priority against our address, 0 while it is unknown.
    pub(crate) priority: u32,
    /// The keyed tie-break.
    pub(crate) tie: u32,
    /// Source ids (`Sources` slots) vouching for it.
    pub(crate) vouchers: Vouchers,
}

impl Entry {
    pub(crate) fn ip(&self) -> IpAddr {
        key_ip(self.key)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.port)
    }

    pub(crate) fn weakness(&self) -> Weakness {
        let vouches = u8::try_from(self.vouchers.len()).unwrap_or(u8::MAX);
        (
            self.class,
            (MAX_VOUCHERS as u8).saturating_sub(vouches),
            self.failures,
        )
    }

    /// Never connected and not in flight: the only entries eviction may take.
    pub(crate) fn evictable(&self) -> bool {
        !self.ever_connected && self.dial == Dial::Idle
    }

    /// Nobody vouches, never connected, not in flight: goes at once.
    pub(crate) fn orphan(&self) -> bool {
        self.vouchers.is_empty() && !self.ever_connected && self.dial != Dial::InFlight
    }

    /// Idle and past its retry time (`NONE` is before every instant).
    pub(crate) fn ready(&self, now: Stamp) -> bool {
        self.dial == Dial::Idle && self.retry_at <= now
    }
}

#[cfg(test)]
mod tests {
    /// Entries are the bulk of a book's memory (and of a simulated swarm's).
    #[test]
    fn an_entry_is_48_bytes() {
        assert!(std::mem::size_of::<super::Entry>() <= 48);
    }
}
