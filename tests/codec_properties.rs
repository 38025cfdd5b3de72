//! Property tests (quickcheck) of the pure codec layer, on structure-aware generators
//! (host-side peer lists, bencode-like noise, mutations of real payloads, ut_pex-shaped
//! dictionaries) that the fuzz targets' byte inputs rarely reach. The checks are the fuzz
//! targets' own, from `testkit::codec`:
//!
//! - decode ∘ encode is the identity on arbitrary peer sets, up to what the wire keeps (an
//!   IPv4-mapped IPv6 address travels as IPv4, IPv6 flow info and scope id are not sent, the
//!   lists come back IPv4 first, then IPv6, each in input order), and `encoded_len`,
//!   `write_payload`, `encode_payload` and `encode_frame` agree (`check_round_trip`);
//! - the decoder agrees with `testkit::oracle`, which reads `bt_bencode::Value`s;
//! - decoding never panics, on arbitrary bytes, bencode-like noise and mutated valid
//!   payloads, agrees with the reference parser, and its errors point inside the input
//!   (`check_message`);
//! - the same for the extended-handshake decoder (`check_handshake`), and
//!   `HandshakeBuilder` output round-trips.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use bt_bencode::{ByteString, Value};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult, Testable};
use testkit::codec::{check_handshake, check_message, check_round_trip};
use testkit::oracle::PEX_KEYS;
use testkit::reference::compare_verdict;
use testkit::Check;
use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder};
use ut_pex::message::encode_payload;
use ut_pex::{DecodeError, Peer, PeerFlags, PexMessage};

/// Runs a property on `tests` random cases.
fn check<A: Testable>(tests: u64, property: A) {
    QuickCheck::new().tests(tests).quickcheck(property);
}

/// A `testkit` check as a quickcheck result, its message kept.
fn verdict(check: Check) -> TestResult {
    match check {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
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
            // The checks' pool: unspecified, broadcast, loopback, mapped, port 0, ...
            _ => testkit::addr::pool(below(g, testkit::addr::POOL.len())),
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

/// decode ∘ encode is the identity up to the wire form, and every encoder agrees
/// (`encoded_len`, `write_payload` into an empty and a used buffer, `encode_payload`,
/// `encode_frame` and its header): `testkit::codec::check_round_trip`.
#[test]
fn decode_of_encode_is_identity_up_to_the_wire_form() {
    fn property(lists: Lists, extension_id: u8) -> TestResult {
        verdict(check_round_trip(&lists.added, &lists.dropped, extension_id))
    }
    check(1000, property as fn(Lists, u8) -> TestResult);
}

/// The decoder reads a ut_pex-shaped dictionary as `testkit::oracle` reads its
/// `bt_bencode::Value`, and passes every `check_message` check on its bencoding.
#[test]
fn decode_agrees_with_a_model_reading_bt_bencode_values() {
    fn property(dict: PexDict) -> TestResult {
        let payload = bt_bencode::to_vec(&Value::Dict(dict.0.clone())).unwrap();
        let decoded = PexMessage::decode(&payload).map(|m| {
            (
                m.added().collect::<Vec<_>>(),
                m.dropped().collect::<Vec<_>>(),
            )
        });
        if decoded != Ok(testkit::oracle::lists_of(&dict.0)) {
            return TestResult::error(format!("decoded {decoded:?}"));
        }
        verdict(check_message(&payload))
    }
    check(1000, property as fn(PexDict) -> TestResult);
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
        (|bytes: Vec<u8>| check_message(&bytes).is_ok()) as fn(Vec<u8>) -> bool,
    );
}

#[test]
fn decode_never_panics_on_bencode_like_noise() {
    check(
        5000,
        (|noise: Noise| check_message(&noise.0).is_ok()) as fn(Noise) -> bool,
    );
}

/// Applies `mutations` in turn: after each, the decoder's verdict must be the reference
/// parser's (`compare_verdict`, which also wants an error inside the input); the payload
/// the last one leaves gets every `check_message` check. (The full check after every
/// mutation, as many as a hundred per case, would triple the test's time for little: the
/// intermediate payloads are as random as the last.)
fn check_mutations(mut payload: Vec<u8>, mutations: &[Mutation]) -> Check {
    for mutation in mutations {
        mutation.apply(&mut payload);
        compare_verdict(&PexMessage::decode(&payload), &payload)?;
    }
    check_message(&payload)
}

#[test]
fn decode_never_panics_on_mutated_encoder_output() {
    fn property(lists: Lists, mutations: Vec<Mutation>) -> TestResult {
        verdict(check_mutations(
            encode_payload(&lists.added, &lists.dropped),
            &mutations,
        ))
    }
    check(1000, property as fn(Lists, Vec<Mutation>) -> TestResult);
}

#[test]
fn decode_never_panics_on_mutated_real_payloads() {
    fn property(which: usize, mutations: Vec<Mutation>) -> TestResult {
        verdict(check_mutations(
            FIXTURES[which % FIXTURES.len()].to_vec(),
            &mutations,
        ))
    }
    check(3000, property as fn(usize, Vec<Mutation>) -> TestResult);
    // Every single-byte flip of every fixture, to every byte value that means something
    // to bencode, exhaustively: each against the reference's verdict, and one flip per
    // position (the byte chosen by the position) through every check. (Every flip through
    // every check is 18 s of a debug build; nine in ten still decode, as flips inside the
    // compact strings, and cost a re-encoding and the second oracle each.)
    for fixture in FIXTURES {
        for at in 0..fixture.len() {
            for (k, &byte) in BENCODE_BYTES.iter().enumerate() {
                let mut payload = fixture.to_vec();
                payload[at] = byte;
                let check = if k == at % BENCODE_BYTES.len() {
                    check_message(&payload)
                } else {
                    compare_verdict(&PexMessage::decode(&payload), &payload)
                };
                assert_eq!(check, Ok(()), "{payload:?}");
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
        (|bytes: Vec<u8>| check_handshake(&bytes).is_ok()) as fn(Vec<u8>) -> bool,
    );
    check(
        3000,
        (|noise: Noise| check_handshake(&noise.0).is_ok()) as fn(Noise) -> bool,
    );
    fn mutated(mutations: Vec<Mutation>) -> bool {
        let mut payload = LIBTORRENT_HANDSHAKE.to_vec();
        mutations.iter().all(|m| {
            m.apply(&mut payload);
            check_handshake(&payload).is_ok()
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
