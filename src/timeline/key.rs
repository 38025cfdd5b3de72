//! [`LiveKey`]: a socket address packed into four integers whose order is `SocketAddr`'s.
//!
//! The live map is searched on every drop a cursor walks and on every connect; comparing
//! `SocketAddr`s there (an enum, then per family the fields one by one) was most of the
//! search. Packed, an IPv4 key differs from another in its first word, so a comparison is
//! one or two integer compares. Nothing is lost: flow info and scope id are part of the
//! key, as they are of `SocketAddr`'s identity, and the order is exactly `SocketAddr`'s
//! (IPv4 first; then address, port, flow info, scope id), so the live set still iterates in
//! address order. 32 bytes, the size of a `SocketAddr`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The top bit of the first word: set for IPv6, so every IPv4 key sorts first.
const V6: u64 = 1 << 63;

/// IPv4: `ip << 16 | port`, then zeros. IPv6: the flag and the address's top 63 bits; its
/// next 64 bits; its last bit, the port and the flow info; the scope id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct LiveKey(u64, u64, u64, u64);

impl From<SocketAddr> for LiveKey {
    #[inline]
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => {
                let ip = u64::from(u32::from(*a.ip()));
                Self(ip << 16 | u64::from(a.port()), 0, 0, 0)
            }
            SocketAddr::V6(a) => {
                let ip = u128::from(*a.ip());
                let tail =
                    ((ip & 1) as u64) << 48 | u64::from(a.port()) << 32 | u64::from(a.flowinfo());
                Self(
                    V6 | (ip >> 65) as u64,
                    (ip >> 1) as u64,
                    tail,
                    u64::from(a.scope_id()),
                )
            }
        }
    }
}

impl From<LiveKey> for SocketAddr {
    #[inline]
    fn from(LiveKey(a, b, c, d): LiveKey) -> Self {
        if a & V6 == 0 {
            let ip = Ipv4Addr::from((a >> 16) as u32);
            return SocketAddrV4::new(ip, a as u16).into();
        }
        let ip = u128::from(a & !V6) << 65 | u128::from(b) << 1 | u128::from(c >> 48 & 1);
        SocketAddrV6::new(Ipv6Addr::from(ip), (c >> 32) as u16, c as u32, d as u32).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(ip: u128, port: u16, flowinfo: u32, scope: u32) -> SocketAddr {
        SocketAddrV6::new(Ipv6Addr::from(ip), port, flowinfo, scope).into()
    }

    /// Round trip, and the order of every pair is `SocketAddr`'s (the live set iterates in
    /// address order, and `reset` drops in it).
    #[test]
    fn orders_like_socket_addr_and_round_trips() {
        let mut addrs: Vec<SocketAddr> = vec![
            "0.0.0.0:0".parse().unwrap(),
            "0.0.0.1:65535".parse().unwrap(),
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.1:2".parse().unwrap(),
            "255.255.255.255:65535".parse().unwrap(),
            v6(0, 0, 0, 0),
            v6(1, 0, 0, 0),
            v6(1, 0, 0, 1),
            v6(1, 0, 1, 0),
            v6(1, 1, 0, 0),
            v6(2, 0, 0, 0),
            v6(3, 7, 0, 0),
            v6(1 << 64, 0, 0, 0),
            v6((1 << 65) - 1, 9, 0, 0),
            v6(1 << 127, 0, 0, 0),
            v6(u128::MAX, u16::MAX, u32::MAX, u32::MAX),
            v6(u128::MAX - 1, u16::MAX, u32::MAX, u32::MAX),
            v6(0xffff_0a00_0001, 6881, 0, 0),
        ];
        for &a in &addrs {
            assert_eq!(SocketAddr::from(LiveKey::from(a)), a);
        }
        for &a in &addrs {
            for &b in &addrs {
                assert_eq!(
                    LiveKey::from(a).cmp(&LiveKey::from(b)),
                    a.cmp(&b),
                    "{a} {b}"
                );
            }
        }
        addrs.reverse();
        let mut keys: Vec<LiveKey> = addrs.iter().map(|&a| a.into()).collect();
        keys.sort();
        addrs.sort();
        let back: Vec<SocketAddr> = keys.into_iter().map(SocketAddr::from).collect();
        assert_eq!(back, addrs);
    }
}
