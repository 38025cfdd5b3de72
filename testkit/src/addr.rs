//! Address pools and the address rules the checks hold the crate to.
//!
//! - [`Addr`]: an address as fuzz input names it (a pool entry, a generated one, any).
//! - [`POOL`]: sixteen addresses that make operations collide, unusable ones included.
//! - [`gen_addr`]: distinct generated global addresses (100.64.x.y, 2001:db8:7::n).
//! - [`v4`], [`v6`]: distinct global addresses for scenario tests (45.1.x.y, 2a01:4f8::i).
//! - [`lan_v4`], [`lan_v6`]: distinct addresses of another range (10.0.x.y, fd00::i), for
//!   tests that need two disjoint sets.
//! - [`usable`], [`is_local_scope`], [`is_mapped`]: the documented address rules, written
//!   independently of the crate's.
//! - [`AddrMap`], [`AddrSet`]: hash containers keyed by address, for the models.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use ut_pex::message::encode_payload;
use ut_pex::{Peer, PeerFlags};

/// An address: from a small pool (so operations collide), generated (to get past 50 per
/// frame), or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Addr {
    /// One of [`POOL`], index taken modulo its length.
    Pool(u8),
    /// A generated global address, IPv4 or IPv6.
    Gen(u16, bool),
    /// Any IPv4 address.
    V4([u8; 4], u16),
    /// Any IPv6 address.
    V6([u8; 16], u16),
    /// An IPv4-mapped IPv6 address.
    Mapped([u8; 4], u16),
}

/// A small pool of addresses: global and local-scope, both families, mapped twins of IPv4
/// entries, and the unusable ones (port 0, unspecified, multicast, broadcast).
pub const POOL: [&str; 16] = [
    "1.2.3.4:6881",
    "[::ffff:1.2.3.4]:6881",
    "5.6.7.8:51413",
    "10.0.0.1:6881",
    "127.0.0.1:6881",
    "[2001:db8::1]:6881",
    "[fe80::1]:6881",
    "[fd00::1]:6881",
    "1.2.3.4:0",
    "0.0.0.0:6881",
    "224.0.0.1:6881",
    "255.255.255.255:6881",
    "[::]:6881",
    "[ff02::1]:6881",
    "[::ffff:10.0.0.1]:6881",
    "[2001:db8::2]:1",
];

/// [`POOL`] parsed once.
pub fn pool(i: usize) -> SocketAddr {
    static PARSED: OnceLock<Vec<SocketAddr>> = OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        POOL.iter()
            .map(|s| s.parse().expect("pool literal"))
            .collect()
    });
    parsed[i % parsed.len()]
}

/// A generated global address, distinct for each `n` within a family.
pub fn gen_addr(n: u16, v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, n).into(), 6881)
    } else {
        let [hi, lo] = n.to_be_bytes();
        SocketAddr::new(Ipv4Addr::new(100, 64, hi, lo).into(), 6881)
    }
}

impl Addr {
    /// The address this names.
    pub fn resolve(self) -> SocketAddr {
        match self {
            Addr::Pool(i) => pool(usize::from(i)),
            Addr::Gen(n, v6) => gen_addr(n, v6),
            Addr::V4(ip, port) => SocketAddr::new(Ipv4Addr::from(ip).into(), port),
            Addr::V6(ip, port) => SocketAddr::new(Ipv6Addr::from(ip).into(), port),
            Addr::Mapped(ip, port) => {
                SocketAddr::new(Ipv4Addr::from(ip).to_ipv6_mapped().into(), port)
            }
        }
    }
}

/// A global IPv4 address, distinct for each `i` (45.1.x.y:6881).
pub fn v4(i: usize) -> SocketAddr {
    SocketAddr::from(([45, 1, (i >> 8) as u8, i as u8], 6881))
}

/// A global IPv6 address, distinct for each `i` (2a01:4f8::i, port 6881).
pub fn v6(i: usize) -> SocketAddr {
    let ip = Ipv6Addr::new(0x2a01, 0x4f8, 0, 0, 0, 0, (i >> 16) as u16, i as u16);
    SocketAddr::new(IpAddr::V6(ip), 6881)
}

/// A private-range IPv4 address, distinct for each `i` (10.0.x.y:6881).
pub fn lan_v4(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881))
}

/// A unique-local IPv6 address, distinct for each `i` (fd00::i, port 6881).
pub fn lan_v6(i: usize) -> SocketAddr {
    let ip = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16);
    SocketAddr::new(IpAddr::V6(ip), 6881)
}

/// Parses an address literal.
pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address literal")
}

/// A peer with no flags.
pub fn bare(addr: SocketAddr) -> Peer {
    Peer::new(addr, PeerFlags::EMPTY)
}

/// A ut_pex payload adding these addresses (flags 0) and dropping those.
pub fn pex(added: &[SocketAddr], dropped: &[SocketAddr]) -> Vec<u8> {
    let added: Vec<Peer> = added.iter().copied().map(bare).collect();
    encode_payload(&added, dropped)
}

/// An IPv4-mapped IPv6 address (which the crate always turns into IPv4).
pub fn is_mapped(addr: SocketAddr) -> bool {
    matches!(addr, SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some())
}

/// Loopback, RFC 1918, link-local, unique-local: the crate's documented local scope.
pub fn is_local_scope(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local_scope(v4.into()),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback() || first & 0xffc0 == 0xfe80 || first & 0xfe00 == 0xfc00
            }
        },
    }
}

/// An address a peer can be dialled at: a port, and not unspecified, multicast or
/// broadcast.
pub fn usable(addr: SocketAddr) -> bool {
    let broadcast = matches!(addr, SocketAddr::V4(v4) if v4.ip().is_broadcast());
    addr.port() != 0 && !addr.ip().is_unspecified() && !addr.ip().is_multicast() && !broadcast
}

/// The payload of a `MessageBuilt` operation: these peers (with flag bytes) added, those
/// dropped.
pub fn built_payload(added: &[(Addr, u8)], dropped: &[Addr]) -> Vec<u8> {
    let added: Vec<Peer> = added
        .iter()
        .map(|(a, f)| Peer::new(a.resolve(), PeerFlags::from_bits(*f)))
        .collect();
    let dropped: Vec<SocketAddr> = dropped.iter().map(|a| a.resolve()).collect();
    encode_payload(&added, &dropped)
}

/// The payload of a `MessageMany` operation: up to 80 generated addresses added and up to
/// 80 dropped (from the same range, shifted by 7): past the 50-entry limit and small caps,
/// while keeping the receiver's work (its added-vs-dropped comparison is bounded by the
/// cap) cheap enough for many executions per second.
pub fn many_payload(start: u16, added: u8, dropped: u8, v6: bool) -> Vec<u8> {
    let added: Vec<Peer> = (0..u16::from(added % 81))
        .map(|k| {
            Peer::new(
                gen_addr(start.wrapping_add(k), v6),
                PeerFlags::from_bits(k as u8),
            )
        })
        .collect();
    let dropped: Vec<SocketAddr> = (0..u16::from(dropped % 81))
        .map(|k| gen_addr(start.wrapping_add(k).wrapping_add(7), v6))
        .collect();
    encode_payload(&added, &dropped)
}

/// A map keyed by address, for the models' per-peer lookups. Not a `BTreeMap`: under the
/// fuzzer every comparison of its searches calls the comparison tracer, and the models'
/// live and advertised sets were a fifth of `state_ops`'s time. Order is never needed.
pub type AddrMap<V> = HashMap<SocketAddr, V, BuildHasherDefault<AddrHasher>>;

/// A set of addresses; see [`AddrMap`].
pub type AddrSet = HashSet<SocketAddr, BuildHasherDefault<AddrHasher>>;

/// A cheap multiply-rotate hash with no key: the models hash only fuzz input and test
/// addresses, where flooding a bucket costs time, never correctness.
#[derive(Debug, Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Addresses hash as 16 bytes (IPv6) or 4 (IPv4): whole words, then a 4-byte tail
        // read as one integer, without the copy into a padded word that a short tail needs.
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut full = [0u8; 8];
            full.copy_from_slice(word);
            self.write_u64(u64::from_le_bytes(full));
        }
        match *words.remainder() {
            [] => {}
            [a, b, c, d] => self.write_u32(u32::from_le_bytes([a, b, c, d])),
            ref tail => {
                let mut word = [0u8; 8];
                word[..tail.len()].copy_from_slice(tail);
                self.write_u64(u64::from_le_bytes(word));
            }
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(n.into());
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(n.into());
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n.into());
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}
