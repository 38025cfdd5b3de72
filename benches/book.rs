//! `PeerBook` costs: adds per second under a hostile PEX flood (1,000 sources, random IPs,
//! the book filling and then refusing), and `poll_dial` on a full book (4,000 entries).
//! Medians of 11 runs. `cargo bench --bench book`; without `--bench` (as
//! `cargo test --benches` runs it) a short smoke run.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ut_pex::{BookConfig, PeerBook, PeerFlags, Source};

use testkit::book_flood::{candidate, source};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Seconds for `n` flood adds into a fresh book.
fn flood(n: u64, t0: Instant) -> f64 {
    let mut book = PeerBook::new(BookConfig::default(), [1; 16]);
    let start = Instant::now();
    for i in 0..n {
        let now = t0 + Duration::from_micros(i * 3_600);
        black_box(book.add(now, candidate(i), PeerFlags::EMPTY, source(i % 1_000)));
    }
    start.elapsed().as_secs_f64()
}

/// A full book of tracker candidates in distinct /24s, so every poll dials.
fn full_book(t0: Instant) -> PeerBook {
    let mut book = PeerBook::new(BookConfig::default().max_half_open(usize::MAX), [2; 16]);
    for i in 0..4_000u32 {
        let ip = Ipv4Addr::from(0x1f00_0000 + (i << 8) + 9);
        book.add(
            t0,
            SocketAddr::new(ip.into(), 6881),
            PeerFlags::EMPTY,
            Source::Tracker,
        );
    }
    book
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, n, polls) = if full {
        (11, 1_000_000, 1_000)
    } else {
        (1, 10_000, 10)
    };
    let t0 = Instant::now();
    let adds: Vec<f64> = (0..runs).map(|_| n as f64 / flood(n, t0)).collect();
    let mut poll_ns = Vec::new();
    for _ in 0..runs {
        let mut book = full_book(t0);
        let start = Instant::now();
        for _ in 0..polls {
            black_box(book.poll_dial(t0));
        }
        poll_ns.push(start.elapsed().as_nanos() as f64 / polls as f64);
    }
    println!(
        "book flood: median {:.0} adds/s ({n} adds, 1,000 sources)",
        median(adds)
    );
    println!(
        "book poll_dial, 4,000 entries: median {:.0} ns",
        median(poll_ns)
    );
}
