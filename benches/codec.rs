//! Codec benchmarks: this crate's ut_pex decoder and encoder against `bt_bencode` 0.8's
//! `Value`, side by side, on the four payloads of `benches/data/` (each `.bin` with a
//! `.txt` description beside it: `max` 50+50 added and 50+50 dropped, `typical` 10 added and 2 dropped,
//! `empty` six empty keys, `unknown` typical plus an unknown nested key).
//!
//! Groups (criterion ids, also the directories under `target/criterion/`):
//! - `decode/ours/<payload>`: `PexMessage::decode`, then every added peer and dropped address
//!   walked and `black_box`ed;
//! - `decode/bt_bencode/<payload>`: `bt_bencode::from_slice::<Value>`, then the six keys read
//!   and the same peers and addresses built and `black_box`ed;
//! - `encode/ours/<payload>`: `encode_payload` from `Vec<Peer>` / `Vec<SocketAddr>`;
//! - `encode/ours_frame/<payload>`: `encode_frame` (header included), what `PexState` sends;
//! - `encode/bt_bencode/<payload>`: a `Value::Dict` built from the same lists with the keys
//!   the corpus payload carries, then `bt_bencode::to_vec`: it writes the payload itself byte
//!   for byte (asserted), all six keys for `empty`, as the reference table's baseline did;
//! - `encode/bt_bencode_omit_empty/<payload>`: the same with the empty keys left out, which
//!   writes exactly the bytes ours writes (asserted): the strictest comparison.
//!
//! Run: `cargo bench --bench codec`; read the medians from
//! `target/criterion/<group>/<impl>/<payload>/new/estimates.json` (`median.point_estimate`,
//! nanoseconds).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bt_bencode::{ByteString, Value};
use criterion::{BenchmarkId, Criterion};
use ut_pex::message::{encode_frame, encode_payload};
use ut_pex::{Peer, PeerFlags, PexMessage};

const PAYLOADS: [(&str, &[u8]); 4] = [
    ("max", include_bytes!("data/max.bin")),
    ("typical", include_bytes!("data/typical.bin")),
    ("empty", include_bytes!("data/empty.bin")),
    ("unknown", include_bytes!("data/unknown.bin")),
];

/// Ours: decode, then walk every entry.
fn decode_ours(payload: &[u8]) {
    let message = PexMessage::decode(payload).expect("a valid payload");
    for peer in message.added() {
        black_box(peer);
    }
    for addr in message.dropped() {
        black_box(addr);
    }
}

/// Compact entries of one family, as socket addresses.
fn compact(bytes: &[u8], entry_len: usize) -> impl Iterator<Item = SocketAddr> + '_ {
    bytes.chunks_exact(entry_len).map(move |entry| {
        let (ip, port) = entry.split_at(entry_len - 2);
        let port = u16::from_be_bytes([port[0], port[1]]);
        let ip: IpAddr = if entry_len == 6 {
            <[u8; 4]>::try_from(ip).expect("4 bytes").into()
        } else {
            <[u8; 16]>::try_from(ip).expect("16 bytes").into()
        };
        SocketAddr::new(ip, port)
    })
}

/// Baseline: a `bt_bencode::Value`, then the six keys read and the same entries built.
fn decode_bt_bencode(payload: &[u8]) {
    let value: Value = bt_bencode::from_slice(payload).expect("a valid payload");
    let dict = value.as_dict().expect("a dictionary");
    let bytes = |key: &str| -> &[u8] {
        match dict.get(key.as_bytes()) {
            Some(Value::ByteStr(b)) => b,
            _ => &[],
        }
    };
    for (list, flags, entry_len) in [("added", "added.f", 6), ("added6", "added6.f", 18)] {
        let flags = bytes(flags);
        for (i, addr) in compact(bytes(list), entry_len).enumerate() {
            let flags = PeerFlags::from_bits(flags.get(i).copied().unwrap_or(0));
            black_box(Peer::new(addr, flags));
        }
    }
    for (list, entry_len) in [("dropped", 6), ("dropped6", 18)] {
        for addr in compact(bytes(list), entry_len) {
            black_box(addr);
        }
    }
}

fn put_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Baseline: the same lists into a `Value::Dict` holding the keys in `keys`, then serialised.
///
/// `keys` says which of the six keys the message carries: for `encode/bt_bencode`, the keys
/// of the corpus payload, so bt_bencode writes that payload byte for byte (`empty` carries all
/// six keys, empty, as the JS module sends it and as the reference table's baseline encoded
/// it); for `encode/bt_bencode_omit_empty`, the non-empty ones, the same bytes ours writes.
///
/// The lists are sized up front, as a careful user of bt_bencode would, so the baseline pays
/// for bt_bencode itself rather than for growing vectors.
fn encode_bt_bencode(keys: &[&str], added: &[Peer], dropped: &[SocketAddr]) -> Vec<u8> {
    let added_v4 = added.iter().filter(|p| p.addr.is_ipv4()).count();
    let added_v6 = added.len() - added_v4;
    let dropped_v4 = dropped.iter().filter(|a| a.is_ipv4()).count();
    let dropped_v6 = dropped.len() - dropped_v4;
    let (mut added4, mut flags4, mut added6, mut flags6) = (
        Vec::with_capacity(added_v4 * 6),
        Vec::with_capacity(added_v4),
        Vec::with_capacity(added_v6 * 18),
        Vec::with_capacity(added_v6),
    );
    for peer in added {
        if peer.addr.is_ipv4() {
            put_addr(&mut added4, peer.addr);
            flags4.push(peer.flags.bits());
        } else {
            put_addr(&mut added6, peer.addr);
            flags6.push(peer.flags.bits());
        }
    }
    let (mut dropped4, mut dropped6) = (
        Vec::with_capacity(dropped_v4 * 6),
        Vec::with_capacity(dropped_v6 * 18),
    );
    for &addr in dropped {
        put_addr(
            if addr.is_ipv4() {
                &mut dropped4
            } else {
                &mut dropped6
            },
            addr,
        );
    }
    let mut dict = BTreeMap::new();
    for (key, value) in [
        ("added", added4),
        ("added.f", flags4),
        ("added6", added6),
        ("added6.f", flags6),
        ("dropped", dropped4),
        ("dropped6", dropped6),
    ] {
        if keys.contains(&key) {
            dict.insert(
                ByteString::from(key),
                Value::ByteStr(ByteString::from(value)),
            );
        }
    }
    bt_bencode::to_vec(&Value::Dict(dict)).expect("a Value serialises")
}

const PEX_KEYS: [&str; 6] = [
    "added", "added.f", "added6", "added6.f", "dropped", "dropped6",
];

/// Which of the six keys the payload carries.
fn keys_of(payload: &[u8]) -> Vec<&'static str> {
    let value: Value = bt_bencode::from_slice(payload).expect("a valid payload");
    let dict = value.as_dict().expect("a dictionary");
    PEX_KEYS
        .into_iter()
        .filter(|key| dict.contains_key(key.as_bytes()))
        .collect()
}

/// The keys whose lists are not empty.
fn non_empty_keys(added: &[Peer], dropped: &[SocketAddr]) -> Vec<&'static str> {
    let v4 = |addr: &SocketAddr| addr.is_ipv4();
    let lens = [
        added.iter().filter(|p| v4(&p.addr)).count(),
        added.iter().filter(|p| v4(&p.addr)).count(),
        added.iter().filter(|p| !v4(&p.addr)).count(),
        added.iter().filter(|p| !v4(&p.addr)).count(),
        dropped.iter().filter(|a| v4(a)).count(),
        dropped.iter().filter(|a| !v4(a)).count(),
    ];
    PEX_KEYS
        .into_iter()
        .zip(lens)
        .filter(|&(_, len)| len > 0)
        .map(|(key, _)| key)
        .collect()
}

fn lists(payload: &[u8]) -> (Vec<Peer>, Vec<SocketAddr>) {
    let message = PexMessage::decode(payload).expect("a valid payload");
    (message.added().collect(), message.dropped().collect())
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, payload) in PAYLOADS {
        group.bench_with_input(BenchmarkId::new("ours", name), payload, |b, p| {
            b.iter(|| decode_ours(black_box(p)));
        });
        group.bench_with_input(BenchmarkId::new("bt_bencode", name), payload, |b, p| {
            b.iter(|| decode_bt_bencode(black_box(p)));
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, payload) in PAYLOADS {
        let (added, dropped) = lists(payload);
        let same_keys = keys_of(payload);
        let omit_empty = non_empty_keys(&added, &dropped);
        let ours = encode_payload(&added, &dropped);
        // The baseline writes the corpus payload itself (for `unknown`, without its unknown
        // key, which no encoder of peer lists writes: that is `typical`); with the empty keys
        // left out it writes what ours writes.
        let theirs = encode_bt_bencode(&same_keys, &added, &dropped);
        let expected: &[u8] = if name == "unknown" {
            PAYLOADS[1].1
        } else {
            payload
        };
        assert_eq!(theirs, expected, "{name}");
        assert_eq!(
            encode_bt_bencode(&omit_empty, &added, &dropped),
            ours,
            "{name}"
        );
        let input = (added, dropped);
        group.bench_with_input(BenchmarkId::new("ours", name), &input, |b, (a, d)| {
            b.iter(|| encode_payload(black_box(a), black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("ours_frame", name), &input, |b, (a, d)| {
            b.iter(|| encode_frame(1, black_box(a), black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("bt_bencode", name), &input, |b, (a, d)| {
            b.iter(|| encode_bt_bencode(&same_keys, black_box(a), black_box(d)));
        });
        group.bench_with_input(
            BenchmarkId::new("bt_bencode_omit_empty", name),
            &input,
            |b, (a, d)| b.iter(|| encode_bt_bencode(&omit_empty, black_box(a), black_box(d))),
        );
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

// What `criterion_group!` / `criterion_main!` expand to, written out: the macros define an
// undocumented `pub fn`, which the crate's `missing_docs = "deny"` refuses.
fn main() {
    let mut criterion = config().configure_from_args();
    decode(&mut criterion);
    encode(&mut criterion);
    criterion.final_summary();
}
