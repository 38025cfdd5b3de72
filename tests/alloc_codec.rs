//! Allocation counts of the codec, measured with a counting global allocator.
//!
//! - `PexMessage::decode` plus walking every added and dropped entry: 0 allocations, on the
//!   four benchmark payloads, on every real capture, and on malformed input;
//! - `encode_payload`: exactly 1 allocation, of exactly `encoded_len` bytes;
//! - `encode_frame`: exactly 1 allocation, of exactly header + `encoded_len` bytes.
//!
//! The allocator counts only calls made by a thread that is inside [`count`], so the test
//! harness's other threads (running the other tests in parallel) cannot disturb a count.
use std::hint::black_box;
use std::net::SocketAddr;

use ut_pex::handshake::ExtendedHandshake;
use ut_pex::message::{encode_frame, encode_payload, encoded_len, write_payload};
use ut_pex::{DecodeError, Frame, Peer, PexMessage};

use testkit::alloc::{count, Allocs, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The four benchmark payloads and the ten real captures.
const PAYLOADS: [(&str, &[u8]); 14] = [
    ("max", include_bytes!("../benches/data/max.bin")),
    ("typical", include_bytes!("../benches/data/typical.bin")),
    ("empty", include_bytes!("../benches/data/empty.bin")),
    ("unknown", include_bytes!("../benches/data/unknown.bin")),
    (
        "js forced-flags",
        include_bytes!("data/js-ut_pex-5.0.2_forced-flags.bin"),
    ),
    (
        "js timer-empty",
        include_bytes!("data/js-ut_pex-5.0.2_timer-empty.bin"),
    ),
    (
        "js v4-v6-dropped",
        include_bytes!("data/js-ut_pex-5.0.2_v4-v6-dropped.bin"),
    ),
    (
        "libtorrent first-full",
        include_bytes!("data/libtorrent-2.0.8_1-first-full.bin"),
    ),
    (
        "libtorrent diff-after-60s",
        include_bytes!("data/libtorrent-2.0.8_2-diff-after-60s.bin"),
    ),
    (
        "libtorrent dropped",
        include_bytes!("data/libtorrent-2.0.8_3-dropped.bin"),
    ),
    (
        "libtorrent ipv6-first",
        include_bytes!("data/libtorrent-2.0.8_ipv6-first.bin"),
    ),
    (
        "transmission first",
        include_bytes!("data/transmission-3.00_1-first.bin"),
    ),
    (
        "transmission dropped-only",
        include_bytes!("data/transmission-3.00_2-dropped-only.bin"),
    ),
    (
        "transmission netns-2-added-flags",
        include_bytes!("data/transmission-3.00_netns-2-added-flags.bin"),
    ),
];

/// Decodes and walks every entry, as a host does; returns (added, dropped) walked.
fn decode_and_walk(payload: &[u8]) -> Result<(usize, usize), DecodeError> {
    let message = PexMessage::decode(black_box(payload))?;
    let mut added = 0;
    for peer in message.added() {
        black_box(peer);
        added += 1;
    }
    let mut dropped = 0;
    for addr in message.dropped() {
        black_box(addr);
        dropped += 1;
    }
    Ok((added, dropped))
}

fn lists(payload: &[u8]) -> (Vec<Peer>, Vec<SocketAddr>) {
    let message = PexMessage::decode(payload).unwrap();
    (message.added().collect(), message.dropped().collect())
}

#[test]
fn decode_and_walk_allocate_nothing() {
    let mut walked = Vec::new();
    for (name, payload) in PAYLOADS {
        let (result, allocs) = count(|| decode_and_walk(payload));
        assert_eq!(allocs, Allocs { calls: 0, bytes: 0 }, "{name}");
        walked.push(result.unwrap_or_else(|e| panic!("{name}: {e}")));
    }
    // The walks really went over the entries (max: 100 + 100; typical, unknown: 10 + 2).
    assert_eq!(&walked[..4], [(100, 100), (10, 2), (0, 0), (10, 2)]);
    let total: (usize, usize) = walked
        .iter()
        .fold((0, 0), |(a, d), (wa, wd)| (a + wa, d + wd));
    assert_eq!(total, (100 + 10 + 10 + 20, 100 + 2 + 2 + 3));
}

#[test]
fn failed_decodes_allocate_nothing() {
    let mut deep = b"d1:a".to_vec();
    deep.resize(100_000, b'l');
    let mut truncated = PAYLOADS[0].1.to_vec();
    truncated.pop();
    let inputs: [&[u8]; 6] = [
        &deep,
        &truncated,
        b"",
        b"le",
        b"d1:a99999999999999999999999:e",
        b"dex",
    ];
    for input in inputs {
        let (result, allocs) = count(|| decode_and_walk(input));
        assert!(result.is_err());
        assert_eq!(allocs, Allocs { calls: 0, bytes: 0 }, "{input:?}");
    }
}

#[test]
fn handshake_decode_allocates_nothing() {
    let payload = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei123e4:reqqi500e11:upload_onlyi3e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e";
    let (ids, allocs) = count(|| {
        let hs = ExtendedHandshake::decode(black_box(payload)).unwrap();
        (hs.ut_pex(), hs.extensions().count())
    });
    assert_eq!(ids, (Some(1), 6));
    assert_eq!(allocs, Allocs { calls: 0, bytes: 0 });
}

#[test]
fn encode_payload_allocates_once_exactly_sized() {
    for (name, payload) in PAYLOADS {
        let (added, dropped) = lists(payload);
        let len = encoded_len(&added, &dropped);
        let (encoded, allocs) = count(|| encode_payload(black_box(&added), black_box(&dropped)));
        assert_eq!(
            allocs,
            Allocs {
                calls: 1,
                bytes: len
            },
            "{name}"
        );
        assert_eq!(encoded.len(), len, "{name}");
    }
}

#[test]
fn encode_frame_allocates_once_exactly_sized() {
    for (name, payload) in PAYLOADS {
        let (added, dropped) = lists(payload);
        let len = Frame::HEADER_LEN + encoded_len(&added, &dropped);
        let (frame, allocs) = count(|| encode_frame(7, black_box(&added), black_box(&dropped)));
        assert_eq!(
            allocs,
            Allocs {
                calls: 1,
                bytes: len
            },
            "{name}"
        );
        assert_eq!(frame.len(), len, "{name}");
        // Reading the frame back costs nothing more.
        let (first, allocs) = count(|| frame.as_bytes()[0]);
        assert_eq!(allocs.calls, 0, "{name}: as_bytes");
        black_box(first);
        // `payload()` shares the buffer: the first call turns the frame's buffer into a
        // shared one (one small header allocation), but the payload is never copied.
        let (shared, allocs) = count(|| frame.payload());
        assert!(
            allocs.calls <= 1 && allocs.bytes < 64,
            "{name}: payload: {allocs:?}"
        );
        assert_eq!(shared.len(), len - Frame::HEADER_LEN, "{name}");
    }
}

#[test]
fn encoded_len_and_write_payload_into_a_sized_buffer_allocate_nothing() {
    for (name, payload) in PAYLOADS {
        let (added, dropped) = lists(payload);
        let mut out = Vec::with_capacity(encoded_len(&added, &dropped));
        let (_, allocs) = count(|| {
            let len = encoded_len(black_box(&added), black_box(&dropped));
            write_payload(&added, &dropped, &mut out);
            len
        });
        assert_eq!(allocs, Allocs { calls: 0, bytes: 0 }, "{name}");
        assert_eq!(out, encode_payload(&added, &dropped), "{name}");
    }
}
