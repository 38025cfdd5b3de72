//! A peer as PEX names it: [`Peer`], an address with its BEP 11 [`PeerFlags`].

use std::fmt;
use std::net::SocketAddr;
use std::ops::{BitOr, BitOrAssign};

/// The flag byte BEP 11 attaches to every added peer (`added.f`, `added6.f`).
///
/// BEP 11: "All other bits are reserved. To use a new bit, submit an amendment to the BEP."
/// Unknown bits are therefore kept as received ([`PeerFlags::from_bits`] never masks), so a
/// host that relays flags does not silently lose a future amendment.
///
/// Received flags are hints: peers lie about being seeds (libtorrent #6225) and about
/// holepunch support (transmission #8884). Do not trust them for anything that matters.
///
/// ```
/// use ut_pex::PeerFlags;
/// let f = PeerFlags::SEED | PeerFlags::UTP;
/// assert_eq!(f.bits(), 0x06);
/// assert!(f.contains(PeerFlags::SEED));
/// assert_eq!(format!("{f:?}"), "PeerFlags(SEED | UTP)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerFlags(u8);

impl PeerFlags {
    /// No flag set.
    pub const EMPTY: Self = Self(0);
    /// 0x01: "prefers encryption, as indicated by e field in extension handshake".
    pub const PREFERS_ENCRYPTION: Self = Self(0x01);
    /// 0x02: "seed/upload_only".
    pub const SEED: Self = Self(0x02);
    /// 0x04: "supports uTP".
    pub const UTP: Self = Self(0x04);
    /// 0x08: "peer indicated ut_holepunch support in extension handshake".
    pub const HOLEPUNCH: Self = Self(0x08);
    /// 0x10: "outgoing connection, peer is reachable".
    pub const REACHABLE: Self = Self(0x10);

    /// The named bits, in bit order, for `Debug`.
    const NAMES: [(Self, &'static str); 5] = [
        (Self::PREFERS_ENCRYPTION, "PREFERS_ENCRYPTION"),
        (Self::SEED, "SEED"),
        (Self::UTP, "UTP"),
        (Self::HOLEPUNCH, "HOLEPUNCH"),
        (Self::REACHABLE, "REACHABLE"),
    ];

    /// The raw flag byte, as it goes on the wire.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Flags from a raw byte; reserved bits are kept, not dropped.
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for PeerFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for PeerFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for PeerFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerFlags(")?;
        let mut rest = self.0;
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{rest:#04x}")?;
        } else if first {
            f.write_str("EMPTY")?;
        }
        f.write_str(")")
    }
}

/// A peer as PEX carries it: a dial address and its BEP 11 flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Peer {
    /// The address to dial (IPv4 in `added`, IPv6 in `added6`).
    pub addr: SocketAddr,
    /// The flag byte sent along with the address.
    pub flags: PeerFlags,
}

impl Peer {
    /// A peer with the given address and flags.
    pub const fn new(addr: SocketAddr, flags: PeerFlags) -> Self {
        Self { addr, flags }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_known_and_unknown_bits() {
        assert_eq!(format!("{:?}", PeerFlags::EMPTY), "PeerFlags(EMPTY)");
        assert_eq!(
            format!("{:?}", PeerFlags::from_bits(0x1f)),
            "PeerFlags(PREFERS_ENCRYPTION | SEED | UTP | HOLEPUNCH | REACHABLE)"
        );
        assert_eq!(
            format!("{:?}", PeerFlags::from_bits(0x82)),
            "PeerFlags(SEED | 0x80)"
        );
        assert_eq!(
            format!("{:?}", PeerFlags::from_bits(0x40)),
            "PeerFlags(0x40)"
        );
    }

    #[test]
    fn from_bits_keeps_reserved_bits() {
        assert_eq!(PeerFlags::from_bits(0xff).bits(), 0xff);
    }
}
