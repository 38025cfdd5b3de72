//! Property tests (quickcheck) of the pure codec layer.
//!
//! - decode ∘ encode is the identity on arbitrary peer sets, up to what the wire keeps: an
//!   IPv4-mapped IPv6 address travels as IPv4, IPv6 flow info and scope id are not sent, and
//!   the lists come back IPv4 first, then IPv6, each in input order;
//! - `encoded_len`, `write_payload`, `encode_payload` and `encode_frame` agree;
//! - the decoder agrees with a model reading `bt_bencode::Value` dictionaries;
//! - decoding never panics, on arbitrary bytes, bencode-like noise and mutated valid
//!   payloads, and its errors point inside the input;
//! - the same for the extended-handshake decoder, and `HandshakeBuilder` output round-trips.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use bt_bencode::{ByteString, Value};
use quickcheck::{Arbitrary, Gen, QuickCheck, Testable};
use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder};
use ut_pex::message::{encode_frame, encode_payload, encoded_len, write_payload};
use ut_pex::{canonical_addr, DecodeError, Frame, Peer, PeerFlags, PexMessage};

/// Runs a property on `tests` random cases.
fn check<A: Testable>(tests: u64, property: A) {
    QuickCheck::new().tests(tests).quickcheck(property);
}

/// A uniform index below `n` (> 0).
fn below(g: &mut Gen, n: usize) -> usize {
    usize::arbitrary(g) % n
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// Any socket address a host may hand the encoder: IPv4, IPv6 (with flow info and scope id,
/// which the wire drops), IPv4-mapped IPv6, and a few special addresses.
#[derive(Clone, Debug)]
struct AnyAddr(SocketAddr);

impl Arbitrary for AnyAddr {
    fn arbitrary(g: &mut Gen) -> Self {
        let port = u16::arbitrary(g);
        let addr = match below(g, 8) {
            0..=2 => SocketAddr::new(Ipv4Addr::from(u32::arbitrary(g)).into(), port),
            3..=4 => SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(u128::arbitrary(g)),
                port,
                u32::arbitrary(g),
                u32::arbitrary(g),
            )),
            5 => SocketAddr::new(
                Ipv4Addr::from(u32::arbitrary(g)).to_ipv6_mapped().into(),
                port,
            ),
            6 => SocketAddr::new(
                // IPv4-compatible (deprecated), which is *not* mapped: stays IPv6.
                Ipv4Addr::from(u32::arbitrary(g))
                    .to_ipv6_compatible()
                    .into(),
                port,
            ),
            _ => {
                let specials: [IpAddr; 6] = [
                    Ipv4Addr::UNSPECIFIED.into(),
                    Ipv4Addr::BROADCAST.into(),
                    Ipv4Addr::LOCALHOST.into(),
                    Ipv6Addr::UNSPECIFIED.into(),
                    Ipv6Addr::LOCALHOST.into(),
                    Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().into(),
                ];
                SocketAddr::new(*g.choose(&specials).unwrap(), port)
            }
        };
        Self(addr)
    }
}

/// An added peer with any flag byte, reserved bits included.
#[derive(Clone, Debug)]
struct AnyPeer(Peer);

impl Arbitrary for AnyPeer {
    fn arbitrary(g: &mut Gen) -> Self {
        Self(Peer::new(
            AnyAddr::arbitrary(g).0,
            PeerFlags::from_bits(u8::arbitrary(g)),
        ))
    }
}

/// Peer lists as a host would hand them to the encoder.
#[derive(Clone, Debug)]
struct Lists {
    added: Vec<Peer>,
    dropped: Vec<SocketAddr>,
}

impl Arbitrary for Lists {
    fn arbitrary(g: &mut Gen) -> Self {
        Self {
            added: Vec::<AnyPeer>::arbitrary(g)
                .into_iter()
                .map(|p| p.0)
                .collect(),
            dropped: Vec::<AnyAddr>::arbitrary(g)
                .into_iter()
                .map(|a| a.0)
                .collect(),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let dropped = self.dropped.clone();
        let by_added = smaller(&self.added).into_iter().map(move |added| Self {
            added,
            dropped: dropped.clone(),
        });
        let added = self.added.clone();
        let by_dropped = smaller(&self.dropped).into_iter().map(move |dropped| Self {
            added: added.clone(),
            dropped,
        });
        Box::new(by_added.chain(by_dropped))
    }
}

/// Shrink candidates for a list: each half, then the list without one element.
fn smaller<T: Clone>(list: &[T]) -> Vec<Vec<T>> {
    let mut candidates = Vec::new();
    if list.len() > 1 {
        let (front, back) = list.split_at(list.len() / 2);
        candidates.push(front.to_vec());
        candidates.push(back.to_vec());
    }
    for i in 0..list.len() {
        let mut without = list.to_vec();
        without.remove(i);
        candidates.push(without);
    }
    candidates
}

/// One edit of a payload.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR the byte at `at` (modulo the length) with a non-zero mask.
    Flip { at: usize, mask: u8 },
    /// Keep only the first `len` (modulo length + 1) bytes.
    Truncate { len: usize },
    /// Insert `byte` before `at` (modulo length + 1).
    Insert { at: usize, byte: u8 },
    /// Remove the byte at `at` (modulo the length).
    Remove { at: usize },
}

/// Bytes that mean something to a bencode parser, so mutations hit structure often.
const BENCODE_BYTES: &[u8] = b"deil-0123456789:";

fn interesting_byte(g: &mut Gen) -> u8 {
    if bool::arbitrary(g) {
        *g.choose(BENCODE_BYTES).unwrap()
    } else {
        u8::arbitrary(g)
    }
}

impl Arbitrary for Mutation {
    fn arbitrary(g: &mut Gen) -> Self {
        match below(g, 4) {
            0 => Self::Flip {
                at: usize::arbitrary(g),
                mask: u8::arbitrary(g).max(1),
            },
            1 => Self::Truncate {
                len: usize::arbitrary(g),
            },
            2 => Self::Insert {
                at: usize::arbitrary(g),
                byte: interesting_byte(g),
            },
            _ => Self::Remove {
                at: usize::arbitrary(g),
            },
        }
    }
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match *self {
            Self::Flip { at, mask } if len > 0 => bytes[at % len] ^= mask,
            Self::Truncate { len: keep } => bytes.truncate(keep % (len + 1)),
            Self::Insert { at, byte } => bytes.insert(at % (len + 1), byte),
            Self::Remove { at } if len > 0 => {
                bytes.remove(at % len);
            }
            _ => {}
        }
    }
}

/// Bencode-like noise: a concatenation of tokens that often form valid or nearly valid
/// structure (known keys, lengths, containers, integers) plus random bytes.
#[derive(Clone, Debug)]
struct Noise(Vec<u8>);

impl Arbitrary for Noise {
    fn arbitrary(g: &mut Gen) -> Self {
        const TOKENS: &[&[u8]] = &[
            b"d",
            b"e",
            b"l",
            b"i",
            b"-",
            b"0",
            b"1",
            b"9",
            b":",
            b"0:",
            b"i0e",
            b"i-1e",
            b"1:a",
            b"1:m",
            b"1:p",
            b"5:added",
            b"7:added.f",
            b"6:added6",
            b"7:dropped",
            b"8:dropped6",
            b"6:ut_pex",
            b"6:\x01\x02\x03\x04\x00\x05",
            b"18:\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\x1a\xe1",
            b"99999999999999999999:",
            b"i99999999999999999999e",
        ];
        let count = below(g, g.size() + 1);
        let mut bytes = vec![b'd'];
        for _ in 0..count {
            if below(g, 5) == 0 {
                bytes.push(u8::arbitrary(g));
            } else {
                bytes.extend_from_slice(g.choose(TOKENS).unwrap());
            }
        }
        if bool::arbitrary(g) {
            bytes.push(b'e');
        }
        Self(bytes)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(Self))
    }
}

// ---------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------

/// The address as it comes back from the wire: canonical, without flow info or scope id.
fn on_the_wire(addr: SocketAddr) -> SocketAddr {
    match canonical_addr(addr) {
        SocketAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
        v4 => v4,
    }
}

/// What decoding the encoding of these lists must give: IPv4 entries first, then IPv6,
/// each in input order, addresses as on the wire, flags untouched.
fn round_trip_model(lists: &Lists) -> (Vec<Peer>, Vec<SocketAddr>) {
    let peers = lists
        .added
        .iter()
        .map(|p| Peer::new(on_the_wire(p.addr), p.flags));
    let (mut added, added6): (Vec<Peer>, Vec<Peer>) = peers.partition(|p| p.addr.is_ipv4());
    added.extend(added6);
    let addrs = lists.dropped.iter().map(|a| on_the_wire(*a));
    let (mut dropped, dropped6): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.partition(SocketAddr::is_ipv4);
    dropped.extend(dropped6);
    (added, dropped)
}

fn decoded(message: &PexMessage<'_>) -> (Vec<Peer>, Vec<SocketAddr>) {
    (message.added().collect(), message.dropped().collect())
}

/// Reads compact entries the way BEP 11 describes them, by index arithmetic.
fn compact_entries(bytes: &[u8], entry_len: usize) -> Vec<SocketAddr> {
    (0..bytes.len() / entry_len)
        .map(|i| {
            let entry = &bytes[i * entry_len..(i + 1) * entry_len];
            let (ip, port) = entry.split_at(entry_len - 2);
            let port = u16::from_be_bytes([port[0], port[1]]);
            let ip: IpAddr = match ip.len() {
                4 => <[u8; 4]>::try_from(ip).unwrap().into(),
                _ => <[u8; 16]>::try_from(ip).unwrap().into(),
            };
            SocketAddr::new(ip, port)
        })
        .collect()
}

/// What [`PexMessage::decode`] must make of a bencoded dictionary, read from its
/// `bt_bencode::Value`: a key counts only when it holds a byte string, a partial trailing
/// entry is ignored, entry `i` gets flag byte `i` of the `.f` key or 0.
fn value_model(dict: &BTreeMap<ByteString, Value>) -> (Vec<Peer>, Vec<SocketAddr>) {
    let bytes = |key: &str| match dict.get(key.as_bytes()) {
        Some(Value::ByteStr(b)) => b.to_vec(),
        _ => Vec::new(),
    };
    let with_flags = |addrs: Vec<SocketAddr>, flags: Vec<u8>| {
        addrs
            .into_iter()
            .enumerate()
            .map(move |(i, addr)| {
                Peer::new(
                    addr,
                    PeerFlags::from_bits(flags.get(i).copied().unwrap_or(0)),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut added = with_flags(compact_entries(&bytes("added"), 6), bytes("added.f"));
    added.extend(with_flags(
        compact_entries(&bytes("added6"), 18),
        bytes("added6.f"),
    ));
    let mut dropped = compact_entries(&bytes("dropped"), 6);
    dropped.extend(compact_entries(&bytes("dropped6"), 18));
    (added, dropped)
}

const PEX_KEYS: [&str; 6] = [
    "added", "added.f", "added6", "added6.f", "dropped", "dropped6",
];

/// Any bencode value, nesting at most `depth` more containers.
fn any_value(g: &mut Gen, depth: usize) -> Value {
    let kinds = if depth == 0 { 2 } else { 4 };
    match below(g, kinds) {
        0 => Value::ByteStr(ByteString::from(Vec::<u8>::arbitrary(g))),
        1 => {
            if bool::arbitrary(g) {
                Value::from(i64::arbitrary(g))
            } else {
                Value::from(u64::arbitrary(g))
            }
        }
        2 => Value::List((0..below(g, 4)).map(|_| any_value(g, depth - 1)).collect()),
        _ => Value::Dict(
            (0..below(g, 4))
                .map(|_| {
                    let key = ByteString::from(Vec::<u8>::arbitrary(g));
                    (key, any_value(g, depth - 1))
                })
                .collect(),
        ),
    }
}

/// A ut_pex-shaped dictionary: each of the six keys maybe present, usually as a byte string
/// of whole entries, sometimes with a partial entry or of the wrong type; `.f` strings of
/// any length; plus unknown keys with nested values.
#[derive(Clone, Debug)]
struct PexDict(BTreeMap<ByteString, Value>);

impl Arbitrary for PexDict {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut dict = BTreeMap::new();
        for key in PEX_KEYS {
            if below(g, 4) == 0 {
                continue;
            }
            let entry_len = match key {
                "added" | "dropped" => 6,
                "added6" | "dropped6" => 18,
                _ => 1,
            };
            let entries = below(g, 60);
            let value = match below(g, 10) {
                0 => any_value(g, 3),
                1 => Value::ByteStr(ByteString::from(Vec::<u8>::arbitrary(g))),
                _ => Value::ByteStr(ByteString::from(
                    (0..entries * entry_len)
                        .map(|_| u8::arbitrary(g))
                        .collect::<Vec<u8>>(),
                )),
            };
            dict.insert(ByteString::from(key), value);
        }
        for _ in 0..below(g, 4) {
            let key = if bool::arbitrary(g) {
                // Near misses of the real keys.
                let mut key = g.choose(&PEX_KEYS).unwrap().as_bytes().to_vec();
                key.push(*g.choose(b"6.fxX\0").unwrap());
                key
            } else {
                Vec::<u8>::arbitrary(g)
            };
            let value = any_value(g, 5);
            dict.entry(ByteString::from(key)).or_insert(value);
        }
        Self(dict)
    }

    /// Removes one key at a time.
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let dict = self.0.clone();
        Box::new(self.0.clone().into_keys().map(move |key| {
            let mut smaller = dict.clone();
            smaller.remove(&key);
            Self(smaller)
        }))
    }
}

/// Checks what holds for every input: decoding does not panic, an error points inside the
/// input, a success is self-consistent and re-encodes to the same peers.
fn decode_is_total(bytes: &[u8]) -> bool {
    match PexMessage::decode(bytes) {
        Err(error) => error_points_inside(&error, bytes),
        Ok(message) => {
            let (added, dropped) = decoded(&message);
            let consistent = added.len() == message.added_len()
                && dropped.len() == message.dropped_len()
                && message.is_empty() == (added.is_empty() && dropped.is_empty());
            let lists = Lists { added, dropped };
            let encoded = encode_payload(&lists.added, &lists.dropped);
            consistent
                && PexMessage::decode(&encoded).map(|m| decoded(&m)) == Ok(round_trip_model(&lists))
        }
    }
}

fn error_points_inside(error: &DecodeError, bytes: &[u8]) -> bool {
    let in_bounds = match *error {
        DecodeError::UnexpectedEnd | DecodeError::NotADict => true,
        DecodeError::Invalid { offset }
        | DecodeError::TrailingBytes { offset }
        | DecodeError::TooDeep { offset }
        | DecodeError::LengthOverflow { offset } => offset < bytes.len(),
        _ => true,
    };
    in_bounds && !error.to_string().is_empty()
}

fn handshake_decode_is_total(bytes: &[u8]) -> bool {
    match ExtendedHandshake::decode(bytes) {
        Err(error) => error_points_inside(&error, bytes),
        Ok(hs) => {
            let extensions: Vec<(&[u8], u8)> = hs.extensions().collect();
            let last_ut_pex = extensions
                .iter()
                .rev()
                .find(|(name, _)| *name == b"ut_pex")
                .map(|&(_, id)| id);
            hs.ut_pex() == last_ut_pex && (hs.has_extensions() || extensions.is_empty())
        }
    }
}

/// The real payloads: captures from three clients and the four benchmark payloads.
const FIXTURES: [&[u8]; 14] = [
    include_bytes!("data/js-ut_pex-5.0.2_forced-flags.bin"),
    include_bytes!("data/js-ut_pex-5.0.2_timer-empty.bin"),
    include_bytes!("data/js-ut_pex-5.0.2_v4-v6-dropped.bin"),
    include_bytes!("data/libtorrent-2.0.8_1-first-full.bin"),
    include_bytes!("data/libtorrent-2.0.8_2-diff-after-60s.bin"),
    include_bytes!("data/libtorrent-2.0.8_3-dropped.bin"),
    include_bytes!("data/libtorrent-2.0.8_ipv6-first.bin"),
    include_bytes!("data/transmission-3.00_1-first.bin"),
    include_bytes!("data/transmission-3.00_2-dropped-only.bin"),
    include_bytes!("data/transmission-3.00_netns-2-added-flags.bin"),
    include_bytes!("../benches/data/max.bin"),
    include_bytes!("../benches/data/typical.bin"),
    include_bytes!("../benches/data/empty.bin"),
    include_bytes!("../benches/data/unknown.bin"),
];

/// libtorrent 2.0.8's extended handshake, as captured on the wire.
const LIBTORRENT_HANDSHAKE: &[u8] = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei123e4:reqqi500e11:upload_onlyi3e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e";

// ---------------------------------------------------------------------------------------
// Properties: encode and decode
// ---------------------------------------------------------------------------------------

#[test]
fn decode_of_encode_is_identity_up_to_the_wire_form() {
    fn property(lists: Lists) -> bool {
        let payload = encode_payload(&lists.added, &lists.dropped);
        let Ok(message) = PexMessage::decode(&payload) else {
            return false;
        };
        let (added, dropped) = round_trip_model(&lists);
        message.added_len() == added.len()
            && message.dropped_len() == dropped.len()
            && decoded(&message) == (added, dropped)
    }
    check(1000, property as fn(Lists) -> bool);
}

#[test]
fn encoded_len_write_payload_and_frame_agree() {
    fn property(lists: Lists, extension_id: u8) -> bool {
        let (added, dropped) = (&lists.added, &lists.dropped);
        let len = encoded_len(added, dropped);
        let payload = encode_payload(added, dropped);
        // Into an empty buffer, and appended after bytes already there.
        let mut grown = Vec::new();
        write_payload(added, dropped, &mut grown);
        let mut appended = b"before".to_vec();
        write_payload(added, dropped, &mut appended);
        let frame = encode_frame(extension_id, added, dropped);
        let bytes = frame.as_bytes();
        payload.len() == len
            && grown == payload
            && appended[..6] == *b"before"
            && appended[6..] == payload
            && frame.len() == Frame::HEADER_LEN + len
            && bytes[..4] == u32::try_from(len + 2).unwrap().to_be_bytes()
            && bytes[4] == 20
            && frame.extension_id() == extension_id
            && frame.payload() == payload
            && bytes[Frame::HEADER_LEN..] == payload[..]
    }
    check(500, property as fn(Lists, u8) -> bool);
}

#[test]
fn decode_agrees_with_a_model_reading_bt_bencode_values() {
    fn property(dict: PexDict) -> bool {
        let payload = bt_bencode::to_vec(&Value::Dict(dict.0.clone())).unwrap();
        PexMessage::decode(&payload).map(|m| decoded(&m)) == Ok(value_model(&dict.0))
    }
    check(1000, property as fn(PexDict) -> bool);
}

#[test]
fn every_strict_prefix_of_a_valid_payload_is_unexpected_end() {
    fn property(lists: Lists) -> bool {
        let payload = encode_payload(&lists.added, &lists.dropped);
        (0..payload.len())
            .all(|len| PexMessage::decode(&payload[..len]) == Err(DecodeError::UnexpectedEnd))
    }
    check(200, property as fn(Lists) -> bool);
    for fixture in FIXTURES {
        for len in 0..fixture.len() {
            assert_eq!(
                PexMessage::decode(&fixture[..len]),
                Err(DecodeError::UnexpectedEnd),
                "{fixture:?} cut at {len}"
            );
        }
    }
}

#[test]
fn decode_never_panics_on_arbitrary_bytes() {
    check(
        2000,
        (|bytes: Vec<u8>| decode_is_total(&bytes)) as fn(Vec<u8>) -> bool,
    );
}

#[test]
fn decode_never_panics_on_bencode_like_noise() {
    check(
        5000,
        (|noise: Noise| decode_is_total(&noise.0)) as fn(Noise) -> bool,
    );
}

#[test]
fn decode_never_panics_on_mutated_encoder_output() {
    fn property(lists: Lists, mutations: Vec<Mutation>) -> bool {
        let mut payload = encode_payload(&lists.added, &lists.dropped);
        mutations.iter().all(|m| {
            m.apply(&mut payload);
            decode_is_total(&payload)
        })
    }
    check(1000, property as fn(Lists, Vec<Mutation>) -> bool);
}

#[test]
fn decode_never_panics_on_mutated_real_payloads() {
    fn property(which: usize, mutations: Vec<Mutation>) -> bool {
        let mut payload = FIXTURES[which % FIXTURES.len()].to_vec();
        mutations.iter().all(|m| {
            m.apply(&mut payload);
            decode_is_total(&payload)
        })
    }
    check(3000, property as fn(usize, Vec<Mutation>) -> bool);
    // Every single-byte flip of every fixture, to every byte value that means something
    // to bencode, exhaustively.
    for fixture in FIXTURES {
        for at in 0..fixture.len() {
            for &byte in BENCODE_BYTES {
                let mut payload = fixture.to_vec();
                payload[at] = byte;
                assert!(decode_is_total(&payload), "{payload:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Properties: extended handshake
// ---------------------------------------------------------------------------------------

#[test]
fn handshake_decode_never_panics() {
    check(
        2000,
        (|bytes: Vec<u8>| handshake_decode_is_total(&bytes)) as fn(Vec<u8>) -> bool,
    );
    check(
        3000,
        (|noise: Noise| handshake_decode_is_total(&noise.0)) as fn(Noise) -> bool,
    );
    fn mutated(mutations: Vec<Mutation>) -> bool {
        let mut payload = LIBTORRENT_HANDSHAKE.to_vec();
        mutations.iter().all(|m| {
            m.apply(&mut payload);
            handshake_decode_is_total(&payload)
        })
    }
    check(2000, mutated as fn(Vec<Mutation>) -> bool);
}

/// Inputs for [`HandshakeBuilder`].
#[derive(Clone, Debug)]
struct BuilderInput {
    extensions: Vec<(String, u8)>,
    listen_port: Option<u16>,
    client: Option<String>,
    your_ip: Option<IpAddr>,
    reqq: Option<u64>,
}

impl Arbitrary for BuilderInput {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut extensions = Vec::<(String, u8)>::arbitrary(g);
        // Real names now and then, so repeats and `ut_pex` itself come up.
        for (name, _) in extensions.iter_mut() {
            if below(g, 3) == 0 {
                *name = g
                    .choose(&["ut_pex", "ut_metadata", "lt_donthave", ""])
                    .unwrap()
                    .to_string();
            }
        }
        Self {
            extensions,
            listen_port: Arbitrary::arbitrary(g),
            client: Arbitrary::arbitrary(g),
            your_ip: Arbitrary::arbitrary(g),
            reqq: Arbitrary::arbitrary(g),
        }
    }

    /// Drops one field or one extension at a time (quickcheck only prints a failing input
    /// that went through at least one shrink step).
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let mut candidates = Vec::new();
        for extensions in smaller(&self.extensions) {
            candidates.push(Self {
                extensions,
                ..self.clone()
            });
        }
        if self.listen_port.is_some() {
            candidates.push(Self {
                listen_port: None,
                ..self.clone()
            });
        }
        if self.client.is_some() {
            candidates.push(Self {
                client: None,
                ..self.clone()
            });
        }
        if self.your_ip.is_some() {
            candidates.push(Self {
                your_ip: None,
                ..self.clone()
            });
        }
        if self.reqq.is_some() {
            candidates.push(Self {
                reqq: None,
                ..self.clone()
            });
        }
        Box::new(candidates.into_iter())
    }
}

#[test]
fn handshake_builder_output_round_trips() {
    fn property(input: BuilderInput) -> bool {
        let mut builder = HandshakeBuilder::new();
        for (name, id) in &input.extensions {
            builder = builder.extension(name, *id);
        }
        if let Some(port) = input.listen_port {
            builder = builder.listen_port(port);
        }
        if let Some(client) = &input.client {
            builder = builder.client(client);
        }
        if let Some(ip) = input.your_ip {
            builder = builder.your_ip(ip);
        }
        if let Some(reqq) = input.reqq {
            builder = builder.reqq(reqq);
        }
        let payload = builder.build();
        let Ok(hs) = ExtendedHandshake::decode(&payload) else {
            return false;
        };
        // The model of `m`: the last id given to each name.
        let mut m: BTreeMap<&[u8], u8> = BTreeMap::new();
        for (name, id) in &input.extensions {
            m.insert(name.as_bytes(), *id);
        }
        let extensions: BTreeMap<&[u8], u8> = hs.extensions().collect();
        hs.has_extensions()
            && extensions == m
            && input
                .extensions
                .iter()
                .all(|(name, _)| hs.extension_id(name) == m.get(name.as_bytes()).copied())
            && hs.ut_pex() == m.get(&b"ut_pex"[..]).copied()
            && hs.listen_port == input.listen_port
            && hs.client == input.client.as_deref().map(str::as_bytes)
            && hs.your_ip == input.your_ip
            && hs.reqq == input.reqq
    }
    check(1000, property as fn(BuilderInput) -> bool);
}
