//! The hostile PEX flood shared by `tests/book_alloc.rs` and `benches/book.rs`: random
//! IPv4 candidates (some of them junk the policy refuses) on random ports, from 1,000
//! sources each in its own /24.

use std::net::{Ipv4Addr, SocketAddr};

use ut_pex::Source;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `i`-th hostile candidate.
pub fn candidate(i: u64) -> SocketAddr {
    let r = mix(i);
    SocketAddr::new(
        Ipv4Addr::from(r as u32).into(),
        1024 + (r >> 48) as u16 % 60_000,
    )
}

/// The `s`-th flooding PEX source.
pub fn source(s: u64) -> Source {
    Source::Pex(SocketAddr::from(([20, (s >> 8) as u8, s as u8, 1], 5000)))
}
