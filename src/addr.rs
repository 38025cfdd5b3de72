//! The address policy of the crate, in one place: which form of an address is its key,
//! which addresses can be dialled at all, which only mean something near their announcer,
//! and which family an address belongs to.
//!
//! The receiving side ([`Inbound`](crate::inbound)), the send side (the live set) and the
//! codec all ask these functions, so a rule changes here or nowhere.

use std::net::{IpAddr, SocketAddr};

/// The canonical form of an address for PEX: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// becomes plain IPv4, so one peer has one key whichever family a client used for it.
///
/// ```
/// use std::net::SocketAddr;
/// let mapped: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
/// assert_eq!(ut_pex::canonical_addr(mapped), "10.0.0.1:80".parse::<SocketAddr>().unwrap());
/// ```
#[inline]
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Whether an address can be dialled at all: a non-zero port and an IP that is not
/// unspecified, multicast or broadcast. The one rule for received adds and for the host's
/// own `add_peer`.
pub(crate) fn is_usable(addr: SocketAddr) -> bool {
    addr.port() != 0 && is_dialable_ip(addr.ip())
}

/// Whether an IP can be dialled at all: not unspecified, multicast or broadcast.
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

/// The two address families, as BEP 11 splits its lists (`added` / `added6`). An
/// IPv4-mapped IPv6 address is IPv4 (see [`canonical_addr`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    V4 = 0,
    V6 = 1,
}

impl Family {
    #[inline(always)]
    pub(crate) fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Self::V4,
            SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => Self::V4,
            SocketAddr::V6(_) => Self::V6,
        }
    }

    /// An index for per-family arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v6_is_v4() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        assert_eq!(
            canonical_addr(mapped),
            "10.0.0.1:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(Family::of(&mapped), Family::V4);
        let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        assert_eq!(canonical_addr(v6), v6);
        assert_eq!(Family::of(&v6), Family::V6);
    }

    #[test]
    fn usable_needs_a_port_and_a_unicast_ip() {
        assert!(is_usable("1.2.3.4:1".parse().unwrap()));
        assert!(!is_usable("1.2.3.4:0".parse().unwrap()));
        assert!(!is_usable("0.0.0.0:1".parse().unwrap()));
        assert!(!is_usable("224.0.0.1:1".parse().unwrap()));
        assert!(!is_usable("255.255.255.255:1".parse().unwrap()));
        assert!(!is_usable("[ff02::1]:1".parse().unwrap()));
    }

    #[test]
    fn local_scope_covers_both_families() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.1.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_local_scope(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2001:db8::1"] {
            assert!(!is_local_scope(ip.parse().unwrap()), "{ip}");
        }
    }
}
