//! [`Claims`]: the peers one remote says it is connected to, kept compact.
//!
//! A seedbox holds one of these per connection, each with up to
//! [`Config::max_remote_peers`](crate::Config::max_remote_peers) entries, so the layout is
//! what the memory budget turns on: an IPv4 claim is one `u64` (address, port and flags
//! packed so that integer order is address order), an IPv6 claim 19 bytes. A
//! [`Peer`] is 36 bytes; the set serves event dedupe, the no-echo rule and relay lookups
//! by binary search either way.

// A boxed list is deliberate here: the box is 8 bytes where an empty `Vec` is 24, and most
// remotes claim no IPv6 peer at all.
#![allow(clippy::box_collection)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::peer::{Peer, PeerFlags};

/// An IPv6 claim: 16 address bytes, 2 port bytes (big-endian), the flag byte. Byte order is
/// address order, so the first 18 bytes sort like the `SocketAddr`.
type V6Claim = [u8; 19];

/// The claimed set of one remote, sorted by address: IPv4 first, as `SocketAddr` sorts.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    /// `ip << 24 | port << 8 | flags`.
    v4: Vec<u64>,
    /// Boxed: most remotes claim no IPv6 peer, and then this costs 8 bytes, not 24.
    v6: Option<Box<Vec<V6Claim>>>,
}

/// What [`Claims::insert_within`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The peer is claimed now.
    New,
    /// Its address was claimed already (its flags stay).
    Duplicate,
    /// The set was full.
    Full,
}

/// Where an address is, or would go, in its list.
enum Slot {
    V4(Result<usize, usize>, u64),
    V6(Result<usize, usize>, [u8; 18]),
}

impl Claims {
    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6().len()
    }

    /// Asked of every add a connection walks (the no-echo rule): IPv4 is searched directly,
    /// without building a [`Slot`].
    #[inline]
    pub(crate) fn contains(&self, addr: SocketAddr) -> bool {
        if let SocketAddr::V4(a) = addr {
            let key = v4_key(a);
            return self.v4.binary_search_by_key(&key, |c| c >> 8).is_ok();
        }
        match self.find(addr) {
            Slot::V4(found, _) | Slot::V6(found, _) => found.is_ok(),
        }
    }

    pub(crate) fn flags(&self, addr: SocketAddr) -> Option<PeerFlags> {
        let bits = match self.find(addr) {
            Slot::V4(found, _) => self.v4[found.ok()?] as u8,
            Slot::V6(found, _) => self.v6()[found.ok()?][18],
        };
        Some(PeerFlags::from_bits(bits))
    }

    /// Adds a canonical peer; false if its address is claimed already.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, peer: Peer) -> bool {
        self.insert_within(peer, usize::MAX) == Inserted::New
    }

    /// Adds a canonical peer unless its address is claimed already or `cap` claims are held
    /// (checked in that order), with one search.
    pub(crate) fn insert_within(&mut self, peer: Peer, cap: usize) -> Inserted {
        let flags = peer.flags.bits();
        let slot = self.find(peer.addr);
        if let Slot::V4(Ok(_), _) | Slot::V6(Ok(_), _) = slot {
            return Inserted::Duplicate;
        }
        if self.len() >= cap {
            return Inserted::Full;
        }
        match slot {
            Slot::V4(Err(i), key) => self.v4.insert(i, key << 8 | u64::from(flags)),
            Slot::V6(Err(i), key) => {
                let mut claim = [0; 19];
                claim[..18].copy_from_slice(&key);
                claim[18] = flags;
                self.v6.get_or_insert_with(Box::default).insert(i, claim);
            }
            Slot::V4(Ok(_), _) | Slot::V6(Ok(_), _) => unreachable!("returned above"),
        }
        Inserted::New
    }

    /// Removes a canonical address; false if it was not claimed.
    pub(crate) fn remove(&mut self, addr: SocketAddr) -> bool {
        match self.find(addr) {
            Slot::V4(Ok(i), _) => {
                self.v4.remove(i);
            }
            Slot::V6(Ok(i), _) => {
                if let Some(v6) = self.v6.as_deref_mut() {
                    v6.remove(i);
                }
            }
            Slot::V4(Err(_), _) | Slot::V6(Err(_), _) => return false,
        }
        true
    }

    /// The IPv4 list's allocation, emptied, for another remote's claims.
    pub(crate) fn into_v4_storage(self) -> Vec<u64> {
        let mut v4 = self.v4;
        v4.clear();
        v4
    }

    /// Takes `storage` (empty) as the IPv4 list, if this set has no allocation of its own.
    pub(crate) fn adopt_v4_storage(&mut self, storage: &mut Vec<u64>) {
        if self.v4.capacity() == 0 {
            std::mem::swap(&mut self.v4, storage);
        }
    }

    /// Room for a first fill of `v4` and `v6` entries, exactly (a first message usually
    /// brings most of what a remote will claim; later growth doubles as usual).
    pub(crate) fn reserve_first(&mut self, v4: usize, v6: usize) {
        if self.v4.capacity() == 0 {
            self.v4.reserve_exact(v4);
        }
        if v6 > 0 && self.v6.is_none() {
            let mut list = Vec::new();
            list.reserve_exact(v6);
            self.v6 = Some(Box::new(list));
        }
    }

    /// Every claim, in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Peer> + '_ {
        let v4 = self.v4.iter().map(|&claim| {
            let key = claim >> 8;
            let ip = Ipv4Addr::from((key >> 16) as u32);
            Peer::new(
                SocketAddr::from((ip, key as u16)),
                PeerFlags::from_bits(claim as u8),
            )
        });
        let v6 = self.v6().iter().map(|claim| {
            let mut ip = [0; 16];
            ip.copy_from_slice(&claim[..16]);
            let port = u16::from_be_bytes([claim[16], claim[17]]);
            Peer::new(
                SocketAddr::from((Ipv6Addr::from(ip), port)),
                PeerFlags::from_bits(claim[18]),
            )
        });
        v4.chain(v6)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.v4.capacity() * std::mem::size_of::<u64>()
            + self.v6.as_ref().map_or(0, |v6| {
                std::mem::size_of::<Vec<V6Claim>>() + v6.capacity() * std::mem::size_of::<V6Claim>()
            })
    }

    fn v6(&self) -> &[V6Claim] {
        self.v6.as_deref().map_or(&[], Vec::as_slice)
    }

    fn find(&self, addr: SocketAddr) -> Slot {
        match addr {
            SocketAddr::V4(a) => {
                let key = v4_key(a);
                Slot::V4(self.v4.binary_search_by_key(&key, |c| c >> 8), key)
            }
            SocketAddr::V6(a) => {
                let mut key = [0; 18];
                key[..16].copy_from_slice(&a.ip().octets());
                key[16..].copy_from_slice(&a.port().to_be_bytes());
                // As integers, not `c[..18].cmp(&key)`: big-endian bytes order like the
                // integers they spell, and the slice comparison is a `memcmp` call, which a
                // fuzzing build intercepts on every probe (a twentieth of `state_ops`).
                let wanted = v6_key_order(&key);
                Slot::V6(
                    self.v6().binary_search_by(|c| v6_key_order(c).cmp(&wanted)),
                    key,
                )
            }
        }
    }
}

/// An IPv4 claim's search key: `ip << 16 | port`.
#[inline]
fn v4_key(a: SocketAddrV4) -> u64 {
    u64::from(u32::from(*a.ip())) << 16 | u64::from(a.port())
}

/// The address and port bytes of an IPv6 key (the first 18 bytes of a claim) as integers
/// that compare like the bytes.
fn v6_key_order(key: &[u8]) -> (u128, u16) {
    let mut ip = [0; 16];
    ip.copy_from_slice(&key[..16]);
    (
        u128::from_be_bytes(ip),
        u16::from_be_bytes([key[16], key[17]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str, flags: u8) -> Peer {
        Peer::new(s.parse().unwrap(), PeerFlags::from_bits(flags))
    }

    /// The packed order must be `SocketAddr`'s order, or lookups miss.
    #[test]
    fn iterates_in_address_order_with_flags() {
        let mut claims = Claims::default();
        let mut peers = vec![
            peer("[2001:db8::1]:1", 0x10),
            peer("10.0.0.2:1", 0x02),
            peer("10.0.0.1:65535", 0xff),
            peer("10.0.0.1:2", 0x00),
            peer("[2001:db8::1]:0", 0x01),
            peer("255.255.255.254:9", 0x04),
            peer("[::2]:7", 0x08),
        ];
        for &p in &peers {
            assert!(claims.insert(p));
            assert!(!claims.insert(p), "a second insert of {p:?}");
        }
        peers.sort();
        assert_eq!(claims.iter().collect::<Vec<_>>(), peers);
        for p in &peers {
            assert_eq!(claims.flags(p.addr), Some(p.flags));
        }
        assert!(claims.remove(peers[3].addr));
        assert!(!claims.contains(peers[3].addr));
        assert!(!claims.remove(peers[3].addr));
        assert_eq!(claims.len(), peers.len() - 1);
    }
}
