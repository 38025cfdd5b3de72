//! Simulated addresses: node `uid` listens on `20.0.0.1:6881` + uid (one /24 per node, so
//! BEP 40 and the book's subnet limits see a realistic spread), fakes and the victim live in
//! ranges no node uses.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The port every node listens on (and puts in its extended handshake's `p`).
pub const PORT: u16 = 6881;

const FIRST_OCTET: u32 = 20;
/// Node addresses stop before the victim's and the fakes' ranges.
pub const MAX_UIDS: u32 = (99 - FIRST_OCTET) << 16;

/// The attackers' victim: not a node, so every dial to it is an attack's success.
pub const VICTIM: Ipv4Addr = Ipv4Addr::new(99, 1, 2, 3);

/// The address node `uid` listens on. `uid < MAX_UIDS`.
pub fn node_addr(uid: u32) -> SocketAddr {
    let o = uid.to_be_bytes();
    let ip = Ipv4Addr::new((FIRST_OCTET + (uid >> 16)) as u8, o[2], o[3], 1);
    SocketAddr::V4(SocketAddrV4::new(ip, PORT))
}

/// The node listening on `addr`, if any ever could.
pub fn node_of(addr: SocketAddr) -> Option<u32> {
    let SocketAddr::V4(v4) = addr else {
        return None;
    };
    let [a, b, c, d] = v4.ip().octets();
    let first = u32::from(a).checked_sub(FIRST_OCTET)?;
    let uid = (first << 16) | (u32::from(b) << 8) | u32::from(c);
    (d == 1 && v4.port() == PORT && uid < MAX_UIDS).then_some(uid)
}

/// An IPv4 address as one word (`ip << 16 | port`): the simulation is IPv4 only, and a word
/// is a quarter of a `SocketAddr` (queued dials and the naive policy's lists hold millions).
pub fn pack(addr: SocketAddr) -> Option<u64> {
    match addr {
        SocketAddr::V4(v4) => Some(u64::from(u32::from(*v4.ip())) << 16 | u64::from(v4.port())),
        SocketAddr::V6(_) => None,
    }
}

/// The address [`pack`] made `word` of.
pub fn unpack(word: u64) -> SocketAddr {
    let ip = Ipv4Addr::from((word >> 16) as u32);
    SocketAddr::V4(SocketAddrV4::new(ip, word as u16))
}

/// The `n`-th fake address an attacker announces: public-looking IPs (120.0.0.0–126.255.255.255)
/// where nothing listens.
pub fn fake_addr(n: u64) -> SocketAddr {
    let ip = 0x7800_0000 + (n % (7 << 24)) as u32;
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(ip),
        1024 + (n % 60_000) as u16,
    ))
}

/// The victim under its `n`-th port (all at or above 1024, which the book would refuse below).
pub fn victim_addr(n: u64) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(VICTIM, 1024 + (n % 64_000) as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_round_trip_and_nothing_else_is_a_node() {
        for uid in [0, 1, 255, 256, 65_535, 65_536, 1_000_000, MAX_UIDS - 1] {
            assert_eq!(node_of(node_addr(uid)), Some(uid), "{uid}");
        }
        for n in [0, 1, 99, 1 << 30] {
            assert_eq!(node_of(fake_addr(n)), None);
            assert_eq!(node_of(victim_addr(n)), None);
        }
        let other_port = SocketAddr::new(node_addr(5).ip(), PORT + 1);
        assert_eq!(node_of(other_port), None);
        for addr in [node_addr(7), fake_addr(3), victim_addr(9)] {
            assert_eq!(pack(addr).map(unpack), Some(addr));
        }
    }
}
