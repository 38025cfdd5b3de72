//! Golden decoder tests on real payloads.
//!
//! - `tests/data/*.bin`: ut_pex payloads captured from libtorrent 2.0.8, npm ut_pex 5.0.2 and
//!   transmission 3.00. `tests/data/index.json` gives the decoded content of each; it was
//!   turned into one `tests/data/<capture>.expected` per capture by
//!   `python3 tests/data/index_to_expected.py` (no JSON parser in the crate's dependencies).
//! - `benches/data/*.bin`: the four benchmark payloads, expected decode in `*.txt`.
//!
//! Both expected formats are one entry a line, in decode order (added, added6, dropped,
//! dropped6): `A <addr> <flags as decimal>` for an added peer, `D <addr>` for a dropped one.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ut_pex::message::encode_payload;
use ut_pex::{Peer, PeerFlags, PexMessage};

/// What a payload decodes to, in iteration order.
#[derive(Debug, Default, PartialEq, Eq)]
struct Decoded {
    added: Vec<Peer>,
    dropped: Vec<SocketAddr>,
}

fn parse_expected(text: &str, source: &Path) -> Decoded {
    let mut expected = Decoded::default();
    for (number, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", source.display(), number + 1);
        let fields: Vec<&str> = line.split(' ').collect();
        let addr = |s: &str| -> SocketAddr {
            s.parse()
                .unwrap_or_else(|e| panic!("{}: bad address {s:?}: {e}", at()))
        };
        match fields.as_slice() {
            ["A", a, flags] => {
                let flags: u8 = flags
                    .parse()
                    .unwrap_or_else(|e| panic!("{}: bad flags {flags:?}: {e}", at()));
                expected
                    .added
                    .push(Peer::new(addr(a), PeerFlags::from_bits(flags)));
            }
            ["D", a] => expected.dropped.push(addr(a)),
            _ => panic!("{}: unreadable line {line:?}", at()),
        }
    }
    expected
}

fn decode(payload: &[u8]) -> Decoded {
    let message = PexMessage::decode(payload).expect("a real payload decodes");
    let decoded = Decoded {
        added: message.added().collect(),
        dropped: message.dropped().collect(),
    };
    assert_eq!(message.added_len(), decoded.added.len(), "added_len");
    assert_eq!(message.dropped_len(), decoded.dropped.len(), "dropped_len");
    assert_eq!(
        message.is_empty(),
        decoded.added.is_empty() && decoded.dropped.is_empty(),
        "is_empty"
    );
    decoded
}

/// Every `*.bin` in `dir` (sorted by name) with its expected decode from `<stem>.<ext>`.
fn corpus(dir: &str, ext: &str) -> Vec<(String, Vec<u8>, Decoded)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut bins: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "bin"))
        .collect();
    bins.sort();
    bins.into_iter()
        .map(|bin| {
            let expected_path = bin.with_extension(ext);
            let text = fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            let name = bin.file_stem().unwrap().to_string_lossy().into_owned();
            let payload = fs::read(&bin).unwrap();
            (name, payload, parse_expected(&text, &expected_path))
        })
        .collect()
}

fn captures() -> Vec<(String, Vec<u8>, Decoded)> {
    corpus("tests/data", "expected")
}

fn bench_payloads() -> Vec<(String, Vec<u8>, Decoded)> {
    corpus("benches/data", "txt")
}

/// The capture file names `index.json` lists, read without a JSON parser: every
/// `"file": "<name>"` pair.
fn index_files() -> Vec<String> {
    let index =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/index.json"))
            .expect("tests/data/index.json");
    let mut files: Vec<String> = index
        .split("\"file\"")
        .skip(1)
        .map(|rest| {
            let start = rest.find('"').expect("a quoted file name") + 1;
            let len = rest[start..].find('"').expect("a closing quote");
            rest[start..start + len].to_owned()
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_indexed_capture_has_a_payload_and_an_expected_file() {
    let indexed = index_files();
    assert_eq!(indexed.len(), 10, "index.json lists ten captures");
    let on_disk: Vec<String> = captures()
        .into_iter()
        .map(|(name, _, _)| format!("{name}.bin"))
        .collect();
    assert_eq!(on_disk, indexed);
}

#[test]
fn captures_decode_as_index_json_says() {
    let captures = captures();
    assert!(!captures.is_empty());
    for (name, payload, expected) in &captures {
        assert_eq!(&decode(payload), expected, "{name}");
    }
    // Not every capture is empty: the comparison above compared real content.
    let entries: usize = captures
        .iter()
        .map(|(_, _, e)| e.added.len() + e.dropped.len())
        .sum();
    assert_eq!(entries, 23);
}

#[test]
fn bench_payloads_decode_as_their_txt_says() {
    let payloads = bench_payloads();
    let names: Vec<&str> = payloads.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["empty", "max", "typical", "unknown"]);
    for (name, payload, expected) in &payloads {
        assert_eq!(&decode(payload), expected, "{name}");
    }
    let sizes: Vec<(usize, usize)> = payloads
        .iter()
        .map(|(_, _, e)| (e.added.len(), e.dropped.len()))
        .collect();
    assert_eq!(sizes, [(0, 0), (100, 100), (10, 2), (10, 2)]);
}

#[test]
fn re_encoding_a_decoded_payload_decodes_to_the_same_peers() {
    for (name, payload, expected) in captures().into_iter().chain(bench_payloads()) {
        let decoded = decode(&payload);
        let encoded = encode_payload(&decoded.added, &decoded.dropped);
        assert_eq!(decode(&encoded), expected, "{name}");
    }
}

/// Payloads whose sender wrote only non-empty keys, in sorted order, with one flag byte per
/// added entry: what this crate writes too, so re-encoding gives back the very same bytes.
#[test]
fn re_encoding_is_byte_identical_where_the_sender_wrote_only_non_empty_keys() {
    let same_form = [
        "transmission-3.00_1-first",
        "transmission-3.00_2-dropped-only",
        "transmission-3.00_netns-2-added-flags",
        "max",
        "typical",
    ];
    let mut checked = 0;
    for (name, payload, _) in captures().into_iter().chain(bench_payloads()) {
        if !same_form.contains(&name.as_str()) {
            continue;
        }
        let decoded = decode(&payload);
        let encoded = encode_payload(&decoded.added, &decoded.dropped);
        assert_eq!(encoded, payload, "{name}");
        checked += 1;
    }
    assert_eq!(checked, same_form.len());
}

/// Each of the six keys with an empty value, as a sender writing all six puts them.
const EMPTY_KEYS: [&[u8]; 6] = [
    b"5:added0:",
    b"7:added.f0:",
    b"6:added60:",
    b"8:added6.f0:",
    b"7:dropped0:",
    b"8:dropped60:",
];

/// Payloads with empty keys (libtorrent and the JS module always write all six) re-encode
/// to the shorter form without them; an all-empty one to `de`.
#[test]
fn empty_keys_are_not_re_encoded() {
    for (name, payload, expected) in captures().into_iter().chain(bench_payloads()) {
        let encoded = encode_payload(&expected.added, &expected.dropped);
        for empty_key in EMPTY_KEYS {
            assert!(
                !encoded.windows(empty_key.len()).any(|w| w == empty_key),
                "{name}: {:?} in {encoded:?}",
                String::from_utf8_lossy(empty_key)
            );
        }
        if expected.added.is_empty() && expected.dropped.is_empty() {
            assert_eq!(encoded, b"de", "{name}");
        } else {
            assert!(encoded.len() <= payload.len(), "{name}");
        }
    }
}
