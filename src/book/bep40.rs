//! BEP 40 canonical peer priority, with the CRC32-C it is defined over.
//!
//! BEP 40: "priority = crc32-c(sort(masked_client_ip, masked_peer_ip))"; for equal IPs
//! "crc32-c(sort(client_port, peer_port))". CRC32-C is written here (a table generated at
//! compile time) because the crate's dependencies are fixed to `bytes`, `bt_bencode` and
//! `arrayvec`, and 20 lines of well-tested table code do not justify a new dependency for
//! every user; hashing at most 32 bytes per call, the byte-wise table is fast enough.

use std::net::{IpAddr, SocketAddr};

use crate::addr::canonical_addr;

/// The priority [`bep40_priority`] gives a pair of different address families. BEP 40 only
/// defines pairs of one family; 0 ranks such candidates last among equals, since no shared
/// prefix says anything about them.
pub const MIXED_FAMILY_PRIORITY: u32 = 0;

/// CRC32-C (Castagnoli): reflected polynomial 0x82F63B78, init and xorout 0xFFFFFFFF.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC32-C of `bytes`.
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    let crc = bytes.iter().fold(!0u32, |crc, &b| {
        // `as u8` keeps the low byte: the table index is always < 256.
        CRC32C_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    });
    !crc
}

/// BEP 40's canonical priority of the connection between `a` and `b` (symmetric: the lower
/// masked address is hashed first). Higher is better, as libtorrent, anacrolix and
/// transmission read it. IPv4-mapped IPv6 addresses count as IPv4; pairs of different
/// families get [`MIXED_FAMILY_PRIORITY`].
///
/// Masks: IPv4 `FF.FF.55.55`, `FF.FF.FF.55` in one /16, `FF.FF.FF.FF` in one /24; IPv6 keeps
/// 6 bytes (`FFFF:FFFF:FFFF:5555:…`) and one more for each further shared byte ("same /48:
/// `FFFF:FFFF:FFFF:FF55:…`, same /56: `FFFF:FFFF:FFFF:FFFF:5555:…`, etc.").
///
/// ```
/// use ut_pex::bep40_priority;
/// let p = |a: &str, b: &str| bep40_priority(a.parse().unwrap(), b.parse().unwrap());
/// // BEP 40's test vectors.
/// assert_eq!(p("123.213.32.10:1", "98.76.54.32:1"), 0xec2d7224);
/// assert_eq!(p("123.213.32.10:1", "123.213.32.234:1"), 0x99568189);
/// ```
pub fn bep40_priority(a: SocketAddr, b: SocketAddr) -> u32 {
    let (a, b) = (canonical_addr(a), canonical_addr(b));
    if a.ip() == b.ip() {
        let (lo, hi) = (a.port().min(b.port()), a.port().max(b.port()));
        let [l0, l1] = lo.to_be_bytes();
        let [h0, h1] = hi.to_be_bytes();
        return crc32c(&[l0, l1, h0, h1]);
    }
    match (a.ip(), b.ip()) {
        (IpAddr::V4(x), IpAddr::V4(y)) => masked_pair(&x.octets(), &y.octets(), 2),
        (IpAddr::V6(x), IpAddr::V6(y)) => masked_pair(&x.octets(), &y.octets(), 6),
        _ => MIXED_FAMILY_PRIORITY,
    }
}

/// Masks two different addresses of one family (`N` bytes, `base` bytes always kept), sorts
/// them and hashes the concatenation.
fn masked_pair<const N: usize>(x: &[u8; N], y: &[u8; N], base: usize) -> u32 {
    let shared = x.iter().zip(y).take_while(|(p, q)| p == q).count();
    // The first differing byte is kept too ("same /24: FF.FF.FF.FF" for IPv4).
    let kept = base.max(shared + 1);
    let mask = |ip: &[u8; N]| {
        let mut out = *ip;
        for byte in out.iter_mut().skip(kept) {
            *byte &= 0x55;
        }
        out
    };
    let (mx, my) = (mask(x), mask(y));
    let (lo, hi) = if mx <= my { (mx, my) } else { (my, mx) };
    let mut buf = [0u8; 32];
    let (first, rest) = buf.split_at_mut(N);
    first.copy_from_slice(&lo);
    rest.iter_mut().zip(hi.iter()).for_each(|(d, s)| *d = *s);
    crc32c(buf.get(..2 * N).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn libtorrent_and_anacrolix_vectors() {
        let p = |a: &str, b: &str| bep40_priority(a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(p("206.248.98.111:1", "142.147.89.224:1"), 0x2b41d456);
        assert_eq!(
            p("1.2.3.4:1234", "1.2.3.4:300"),
            crc32c(&[0x01, 0x2c, 0x04, 0xd2])
        );
        assert_eq!(
            p("230.12.123.1:1", "230.12.123.3:1"),
            crc32c(&[0xe6, 0x0c, 0x7b, 0x01, 0xe6, 0x0c, 0x7b, 0x03])
        );
        assert_eq!(
            p("230.12.23.1:1", "230.12.123.1:1"),
            crc32c(&[0xe6, 0x0c, 0x17, 0x01, 0xe6, 0x0c, 0x7b, 0x01])
        );
        assert_eq!(
            p("230.120.23.1:1", "230.12.123.1:1"),
            crc32c(&[0xe6, 0x0c, 0x51, 0x01, 0xe6, 0x78, 0x15, 0x01])
        );
        assert_eq!(
            p("[::ffff:1.2.3.4]:1", "1.2.3.4:1"),
            p("1.2.3.4:1", "1.2.3.4:1")
        );
        assert_eq!(p("[::1]:1", "1.2.3.4:1"), MIXED_FAMILY_PRIORITY);
    }

    #[test]
    fn ipv6_keeps_one_more_byte_per_shared_byte() {
        let a: SocketAddr = "[2001:db8:1:2ff::1]:1".parse().unwrap();
        let b: SocketAddr = "[2001:db8:1:2f0::1]:1".parse().unwrap();
        // 7 shared bytes: 8 kept, the rest masked.
        let mut x = [
            0x20,
            0x01,
            0x0d,
            0xb8,
            0x00,
            0x01,
            0x02,
            0xf0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0x01 & 0x55,
        ];
        let mut y = x;
        y[7] = 0xff;
        x[15] = 0x01;
        y[15] = 0x01;
        let mut input = x.to_vec();
        input.extend_from_slice(&y);
        assert_eq!(bep40_priority(a, b), crc32c(&input));
    }
}
