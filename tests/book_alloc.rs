//! Heap accounting of `PeerBook` under a hostile flood, with a counting global allocator:
//! 1,000,000 PEX candidates from 1,000 sources leave the book within its bounds, and 50
//! tracker candidates added afterwards are all dialled within the next 50 dials. One
//! `#[test]`, so no other test thread allocates meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ut_pex::{Admission, BookConfig, PeerBook, PeerFlags, Source};

use testkit::alloc as counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// Heap bytes per entry at capacity the book aims for (issue 14).
const ENTRY_BOUND: usize = 128;
/// Heap bytes per source record allowed on top (record, index and group budget).
const SOURCE_BOUND: usize = 192;

use testkit::book_flood::{candidate, source};

#[test]
fn hostile_flood_stays_bounded() {
    let config = BookConfig::default();
    let (max_entries, max_sources) = (config.get_max_candidates(), config.get_max_sources());
    let t0 = Instant::now();
    let before = counting_alloc::live_bytes();
    let mut book = PeerBook::new(config, [0x5a; 16]);
    let mut added = 0usize;
    let mut peak = 0usize;
    for i in 0..1_000_000u64 {
        // One hour of flood, 1,000 candidates per source.
        let now = t0 + Duration::from_micros(i * 3_600);
        let admission = book.add(now, candidate(i), PeerFlags::REACHABLE, source(i % 1_000));
        added += usize::from(admission == Admission::Added);
        if i % 10_000 == 0 {
            peak = peak.max(counting_alloc::live_bytes().saturating_sub(before));
        }
    }
    let heap = counting_alloc::live_bytes().saturating_sub(before);
    let peak = peak.max(heap);
    let per_entry = heap / book.len().max(1);
    println!(
        "flood: {added} added, {} entries, {} sources, {heap} heap bytes ({per_entry} per entry), peak {peak}",
        book.len(),
        book.source_count()
    );
    assert!(added >= max_entries, "the flood filled the book ({added})");
    assert!(book.len() <= max_entries);
    assert!(book.source_count() <= max_sources);
    let bound = ENTRY_BOUND * max_entries + SOURCE_BOUND * book.source_count();
    assert!(peak <= bound, "peak heap {peak} over {bound}");

    // 50 honest tracker candidates, each in its own /24, outrank the whole flood.
    let now = t0 + Duration::from_secs(3_601);
    let honest: Vec<SocketAddr> = (0..50u8)
        .map(|k| SocketAddr::from(([31, 7, k, 9], 6881)))
        .collect();
    for h in &honest {
        assert_eq!(
            book.add(now, *h, PeerFlags::EMPTY, Source::Tracker),
            Admission::Added
        );
    }
    let mut dialled = Vec::new();
    for _ in 0..50 {
        let Some(d) = book.poll_dial(now) else { break };
        dialled.push(d);
        book.dial_failed(now, d);
    }
    dialled.sort();
    let mut want = honest.clone();
    want.sort();
    assert_eq!(dialled, want);
    assert!(counting_alloc::live_bytes().saturating_sub(before) <= bound);
    drop(book);

    // The entries alone: a full book of tracker candidates (one source record).
    let before = counting_alloc::live_bytes();
    let mut book = PeerBook::new(BookConfig::default(), [0x5a; 16]);
    for i in 0..max_entries as u32 {
        let addr = SocketAddr::from(((0x1f00_0000 + i * 7).to_be_bytes(), 6881));
        book.add(t0, addr, PeerFlags::EMPTY, Source::Tracker);
    }
    let heap = counting_alloc::live_bytes().saturating_sub(before);
    println!(
        "entries only: {} entries, {} heap bytes per entry",
        book.len(),
        heap / book.len().max(1)
    );
    assert_eq!(book.len(), max_entries);
    assert!(
        heap <= ENTRY_BOUND * max_entries + SOURCE_BOUND,
        "{heap} heap bytes"
    );
}
