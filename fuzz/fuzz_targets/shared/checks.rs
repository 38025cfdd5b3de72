//! The checks behind the fuzz targets, in one place: the cargo-fuzz targets under
//! `fuzz/fuzz_targets/` and the stable-toolchain replay test `tests/fuzz_regressions.rs`
//! both include this file with `#[path]`, so an input that once broke an invariant is
//! checked the same way whether or not nightly is around.
//!
//! Every check returns `Err(description)` instead of panicking, so the replay test can name
//! the file that failed and the self-tests can show that a check does catch a violation.
//! The fuzz targets turn an `Err` into a panic, which is what libFuzzer reports.
//!
//! - [`check_message`]: `PexMessage::decode` against a small recursive reference parser,
//!   then a re-encode / decode round trip.
//! - [`check_handshake`]: `ExtendedHandshake::decode` and every accessor against the same
//!   reference parser, then a rebuild with `HandshakeBuilder`.
//! - [`run_script`]: a [`Script`] of operations against two `PexState`s wired together,
//!   with the state machine's invariants asserted after every step.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder, UT_PEX};
use ut_pex::message::MAX_NESTING;
use ut_pex::message::{encode_frame, encode_payload, encoded_len, write_payload};
use ut_pex::{
    canonical_addr, Config, DecodeError, Event, Frame, MessageError, Peer, PeerFlags, PexMessage,
    PexState, Stats, MAX_PEERS_PER_MESSAGE,
};

/// The result of one check: `Err` describes the broken invariant.
pub(crate) type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// =======================================================================================
// A reference bencode parser: recursive, allocating, written for obviousness, not speed.
// It applies the crate's documented limits (nesting, digit counts) so that it accepts
// exactly what the crate's scanner should.
// =======================================================================================

/// Length prefixes and integers may have at most this many digits (the crate's rule).
const MAX_DIGITS: usize = 20;

#[derive(Debug)]
enum RefValue<'a> {
    Bytes(&'a [u8]),
    Int(Option<i64>),
    List,
    Dict(Vec<(&'a [u8], RefValue<'a>)>),
}

struct RefParser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> RefParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// One value; `depth` is the nesting level a container starting here would have.
    fn value(&mut self, depth: usize) -> Option<RefValue<'a>> {
        match self.peek()? {
            b'0'..=b'9' => self.bytes().map(RefValue::Bytes),
            b'i' => self.int().map(RefValue::Int),
            b'l' => {
                if depth > MAX_NESTING {
                    return None;
                }
                self.pos += 1;
                while self.peek()? != b'e' {
                    self.value(depth + 1)?;
                }
                self.pos += 1;
                Some(RefValue::List)
            }
            b'd' => {
                if depth > MAX_NESTING {
                    return None;
                }
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    match self.peek()? {
                        b'e' => break,
                        b'0'..=b'9' => {}
                        _ => return None,
                    }
                    let key = self.bytes()?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                self.pos += 1;
                Some(RefValue::Dict(entries))
            }
            _ => None,
        }
    }

    fn digits(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.input[start..self.pos];
        (!digits.is_empty() && digits.len() <= MAX_DIGITS).then_some(digits)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let digits = self.digits()?;
        if self.peek()? != b':' {
            return None;
        }
        self.pos += 1;
        let len = digits
            .iter()
            .fold(0u128, |n, d| n * 10 + u128::from(d - b'0'));
        let remaining = (self.input.len() - self.pos) as u128;
        if len > remaining {
            return None;
        }
        let start = self.pos;
        self.pos += len as usize;
        Some(&self.input[start..self.pos])
    }

    fn int(&mut self) -> Option<Option<i64>> {
        self.pos += 1; // the `i`
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits = self.digits()?;
        if self.peek()? != b'e' {
            return None;
        }
        self.pos += 1;
        let magnitude = digits
            .iter()
            .fold(0i128, |n, d| n * 10 + i128::from(d - b'0'));
        let value = if negative { -magnitude } else { magnitude };
        Some(i64::try_from(value).ok())
    }
}

/// What the reference parser makes of a whole payload.
enum RefTop<'a> {
    /// A dictionary covering the whole input.
    Dict(Vec<(&'a [u8], RefValue<'a>)>),
    /// A valid value of another type first (the rest is not looked at).
    NotADict,
    /// Anything else.
    Invalid,
}

fn reference_top(input: &[u8]) -> RefTop<'_> {
    let mut parser = RefParser { input, pos: 0 };
    match parser.value(1) {
        Some(RefValue::Dict(entries)) if parser.pos == input.len() => RefTop::Dict(entries),
        Some(RefValue::Dict(_)) | None => RefTop::Invalid,
        Some(_) => RefTop::NotADict,
    }
}

/// Compares a decoder's `Result` on `input` with the reference parser's verdict.
pub(crate) fn compare_verdict<T>(decoded: &Result<T, DecodeError>, input: &[u8]) -> Check {
    match (decoded, &reference_top(input)) {
        (Ok(_), RefTop::Dict(_)) => Ok(()),
        (Err(DecodeError::NotADict), RefTop::NotADict) => Ok(()),
        (Err(e), RefTop::Invalid) if *e != DecodeError::NotADict => Ok(()),
        (Ok(_), _) => Err("decoded a payload the reference parser refuses".into()),
        (Err(e), RefTop::Dict(_)) => Err(format!(
            "refused ({e:?}) a payload the reference parser accepts"
        )),
        (Err(e), _) => Err(format!("wrong error {e:?} for a non-dictionary payload")),
    }
}

// =======================================================================================
// message_decode
// =======================================================================================

fn read_peers(compact: &[u8], flags: &[u8], entry: usize) -> Vec<Peer> {
    compact
        .chunks_exact(entry)
        .enumerate()
        .map(|(i, e)| {
            Peer::new(
                addr_from_compact(e),
                PeerFlags::from_bits(flags.get(i).copied().unwrap_or(0)),
            )
        })
        .collect()
}

fn addr_from_compact(entry: &[u8]) -> SocketAddr {
    let port = u16::from_be_bytes([entry[entry.len() - 2], entry[entry.len() - 1]]);
    let ip: IpAddr = if entry.len() == 6 {
        Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]).into()
    } else {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&entry[..16]);
        Ipv6Addr::from(octets).into()
    };
    SocketAddr::new(ip, port)
}

/// The six ut_pex strings as the reference reads them: the last byte-string value of each
/// key wins, values of other types are ignored.
fn reference_pex_lists(entries: &[(&[u8], RefValue<'_>)]) -> (Vec<Peer>, Vec<SocketAddr>) {
    let mut slots: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
    for (key, value) in entries {
        if let RefValue::Bytes(bytes) = value {
            slots.insert(key, bytes);
        }
    }
    let get = |k: &str| slots.get(k.as_bytes()).copied().unwrap_or(&[]);
    let mut added = read_peers(get("added"), get("added.f"), 6);
    added.extend(read_peers(get("added6"), get("added6.f"), 18));
    let mut dropped: Vec<SocketAddr> = read_peers(get("dropped"), &[], 6)
        .into_iter()
        .map(|p| p.addr)
        .collect();
    dropped.extend(
        read_peers(get("dropped6"), &[], 18)
            .into_iter()
            .map(|p| p.addr),
    );
    (added, dropped)
}

fn is_mapped(addr: SocketAddr) -> bool {
    matches!(addr, SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some())
}

/// What a re-encoded list decodes to: every address canonical, IPv4 first, each family in
/// its original order.
pub(crate) fn canonical_order<T: Copy>(
    items: &[T],
    addr: impl Fn(&T) -> SocketAddr,
    with: impl Fn(&T, SocketAddr) -> T,
) -> Vec<T> {
    let canonical: Vec<T> = items
        .iter()
        .map(|i| with(i, canonical_addr(addr(i))))
        .collect();
    let v4 = canonical.iter().filter(|i| addr(i).is_ipv4());
    let v6 = canonical.iter().filter(|i| addr(i).is_ipv6());
    v4.chain(v6).copied().collect()
}

/// `message_decode`: decode raw bytes; compare with the reference parser; on success,
/// re-encode what was decoded and check the same peers come back.
pub(crate) fn check_message(data: &[u8]) -> Check {
    let decoded = PexMessage::decode(data);
    compare_verdict(&decoded, data)?;
    let reference = reference_top(data);
    let (Ok(message), RefTop::Dict(entries)) = (decoded, reference) else {
        return Ok(());
    };
    let added: Vec<Peer> = message.added().collect();
    let dropped: Vec<SocketAddr> = message.dropped().collect();
    let (ref_added, ref_dropped) = reference_pex_lists(&entries);
    ensure!(
        added == ref_added,
        "added {added:?} != reference {ref_added:?}"
    );
    ensure!(
        dropped == ref_dropped,
        "dropped {dropped:?} != reference {ref_dropped:?}"
    );
    ensure!(
        message.added_len() == added.len(),
        "added_len {} != {}",
        message.added_len(),
        added.len()
    );
    ensure!(
        message.dropped_len() == dropped.len(),
        "dropped_len {} != {}",
        message.dropped_len(),
        dropped.len()
    );
    ensure!(
        message.is_empty() == (added.is_empty() && dropped.is_empty()),
        "is_empty() is {} with {} added, {} dropped",
        message.is_empty(),
        added.len(),
        dropped.len()
    );
    check_round_trip(&added, &dropped, data.len() as u8)
}

/// Encodes `added` / `dropped` every way the crate offers, decodes the result, and checks
/// the canonical form of the same lists comes back.
pub(crate) fn check_round_trip(added: &[Peer], dropped: &[SocketAddr], extension_id: u8) -> Check {
    let payload = encode_payload(added, dropped);
    ensure!(
        payload.len() == encoded_len(added, dropped),
        "encoded_len {} but encode_payload wrote {}",
        encoded_len(added, dropped),
        payload.len()
    );
    let mut written = Vec::new();
    write_payload(added, dropped, &mut written);
    ensure!(
        written == payload,
        "write_payload differs from encode_payload"
    );
    let frame = encode_frame(extension_id, added, dropped);
    check_frame_header(&frame, extension_id)?;
    ensure!(
        frame.payload()[..] == payload[..],
        "encode_frame payload differs from encode_payload"
    );

    let again = PexMessage::decode(&payload)
        .map_err(|e| format!("re-encoded payload does not decode: {e:?}"))?;
    let added_back: Vec<Peer> = again.added().collect();
    let dropped_back: Vec<SocketAddr> = again.dropped().collect();
    let want_added = canonical_order(added, |p| p.addr, |p, a| Peer::new(a, p.flags));
    let want_dropped = canonical_order(dropped, |a| *a, |_, a| a);
    ensure!(
        added_back == want_added,
        "added after round trip {added_back:?} != {want_added:?}"
    );
    ensure!(
        dropped_back == want_dropped,
        "dropped after round trip {dropped_back:?} != {want_dropped:?}"
    );
    ensure!(
        !added_back
            .iter()
            .map(|p| p.addr)
            .chain(dropped_back.iter().copied())
            .any(is_mapped),
        "an IPv4-mapped IPv6 address went out as IPv6"
    );
    // Encoding is a fixpoint once canonical.
    ensure!(
        encode_payload(&added_back, &dropped_back) == payload,
        "re-encoding the decoded payload changed its bytes"
    );
    Ok(())
}

fn check_frame_header(frame: &Frame, extension_id: u8) -> Check {
    let bytes = frame.as_bytes();
    ensure!(
        bytes.len() >= Frame::HEADER_LEN,
        "frame shorter than its header"
    );
    ensure!(
        frame.len() == bytes.len() && !frame.is_empty(),
        "Frame::len disagrees"
    );
    let body = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    ensure!(
        body + 4 == bytes.len(),
        "length prefix {body} for a {}-byte frame",
        bytes.len()
    );
    ensure!(
        bytes[4] == 20,
        "extended message id {} instead of 20",
        bytes[4]
    );
    ensure!(
        bytes[5] == extension_id && frame.extension_id() == extension_id,
        "frame carries extension id {} instead of {extension_id}",
        bytes[5]
    );
    ensure!(
        frame.payload()[..] == bytes[Frame::HEADER_LEN..],
        "payload() is not the bytes after the header"
    );
    Ok(())
}

// =======================================================================================
// handshake_decode
// =======================================================================================

#[derive(Debug, Default, PartialEq)]
struct RefHandshake<'a> {
    m: Option<Vec<(&'a [u8], u8)>>,
    listen_port: Option<u16>,
    client: Option<&'a [u8]>,
    your_ip: Option<IpAddr>,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    reqq: Option<u64>,
    prefers_encryption: Option<bool>,
    upload_only: Option<bool>,
    metadata_size: Option<u64>,
}

fn reference_handshake<'a>(entries: &[(&'a [u8], RefValue<'a>)]) -> RefHandshake<'a> {
    let mut hs = RefHandshake::default();
    for (key, value) in entries {
        match (*key, value) {
            (b"m", RefValue::Dict(m)) => {
                let ids = m
                    .iter()
                    .filter_map(|(name, v)| match v {
                        RefValue::Int(Some(id)) => u8::try_from(*id).ok().map(|id| (*name, id)),
                        _ => None,
                    })
                    .collect();
                hs.m = Some(ids);
            }
            (b"p", RefValue::Int(n)) => hs.listen_port = n.and_then(|n| u16::try_from(n).ok()),
            (b"v", RefValue::Bytes(v)) => hs.client = Some(v),
            (b"yourip", RefValue::Bytes(ip)) => {
                hs.your_ip = match ip.len() {
                    4 => Some(IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default())),
                    16 => Some(IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default())),
                    _ => None,
                }
            }
            (b"ipv4", RefValue::Bytes(ip)) => {
                hs.ipv4 = <[u8; 4]>::try_from(*ip).ok().map(Ipv4Addr::from)
            }
            (b"ipv6", RefValue::Bytes(ip)) => {
                hs.ipv6 = <[u8; 16]>::try_from(*ip).ok().map(Ipv6Addr::from)
            }
            (b"reqq", RefValue::Int(n)) => hs.reqq = n.and_then(|n| u64::try_from(n).ok()),
            (b"e", RefValue::Int(n)) => hs.prefers_encryption = n.map(|n| n != 0),
            (b"upload_only", RefValue::Int(n)) => hs.upload_only = n.map(|n| n != 0),
            (b"metadata_size", RefValue::Int(n)) => {
                hs.metadata_size = n.and_then(|n| u64::try_from(n).ok())
            }
            _ => {}
        }
    }
    hs
}

/// `handshake_decode`: decode raw bytes; compare every accessor with the reference parser;
/// rebuild the handshake with `HandshakeBuilder` and check it reads back the same.
pub(crate) fn check_handshake(data: &[u8]) -> Check {
    let decoded = ExtendedHandshake::decode(data);
    compare_verdict(&decoded, data)?;
    let reference = reference_top(data);
    let (Ok(hs), RefTop::Dict(entries)) = (decoded, reference) else {
        return Ok(());
    };
    let want = reference_handshake(&entries);
    let extensions: Vec<(&[u8], u8)> = hs.extensions().collect();
    let got = RefHandshake {
        m: hs.has_extensions().then(|| extensions.clone()),
        listen_port: hs.listen_port,
        client: hs.client,
        your_ip: hs.your_ip,
        ipv4: hs.ipv4,
        ipv6: hs.ipv6,
        reqq: hs.reqq,
        prefers_encryption: hs.prefers_encryption,
        upload_only: hs.upload_only,
        metadata_size: hs.metadata_size,
    };
    ensure!(got == want, "handshake {got:?} != reference {want:?}");

    // extension_id(name) is the last id given to name; names not in `m` are None.
    let last_id = |name: &[u8]| {
        extensions
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
    };
    for (name, _) in &extensions {
        if let Ok(name) = std::str::from_utf8(name) {
            ensure!(
                hs.extension_id(name) == last_id(name.as_bytes()),
                "extension_id({name:?}) is wrong"
            );
        }
    }
    for name in [UT_PEX, "ut_metadata", "", "ut_pex\0", "UT_PEX"] {
        ensure!(
            hs.extension_id(name) == last_id(name.as_bytes()),
            "extension_id({name:?}) is wrong"
        );
    }
    ensure!(
        hs.ut_pex() == last_id(UT_PEX.as_bytes()),
        "ut_pex() {:?} is wrong",
        hs.ut_pex()
    );

    // Rebuild what the builder can express and read it back.
    let mut builder = HandshakeBuilder::new();
    let mut names = Vec::new();
    for (name, id) in &extensions {
        if let Ok(name) = std::str::from_utf8(name) {
            builder = builder.extension(name, *id);
            names.push(name);
        }
    }
    if let Some(port) = hs.listen_port {
        builder = builder.listen_port(port);
    }
    let client = hs.client.and_then(|c| std::str::from_utf8(c).ok());
    if let Some(client) = client {
        builder = builder.client(client);
    }
    if let Some(ip) = hs.your_ip {
        builder = builder.your_ip(ip);
    }
    if let Some(reqq) = hs.reqq {
        builder = builder.reqq(reqq);
    }
    let built = builder.build();
    let back = ExtendedHandshake::decode(&built)
        .map_err(|e| format!("built handshake does not decode: {e:?}"))?;
    for name in names {
        ensure!(
            back.extension_id(name) == hs.extension_id(name),
            "rebuilt extension_id({name:?}) differs"
        );
    }
    ensure!(back.has_extensions(), "rebuilt handshake has no m");
    ensure!(
        back.listen_port == hs.listen_port,
        "rebuilt listen_port differs"
    );
    ensure!(
        back.client == client.map(str::as_bytes),
        "rebuilt client differs"
    );
    ensure!(back.your_ip == hs.your_ip, "rebuilt your_ip differs");
    ensure!(back.reqq == hs.reqq, "rebuilt reqq differs");
    Ok(())
}

// =======================================================================================
// state_ops
// =======================================================================================

/// One of the two connected states.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The first state.
    A,
    /// The second state.
    B,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// An address: from a small pool (so operations collide), generated (to get past 50 per
/// frame), or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum Addr {
    /// One of [`POOL`], index taken modulo its length.
    Pool(u8),
    /// A generated global address, IPv4 or IPv6.
    Gen(u16, bool),
    /// Any IPv4 address.
    V4([u8; 4], u16),
    /// Any IPv6 address.
    V6([u8; 16], u16),
    /// An IPv4-mapped IPv6 address.
    Mapped([u8; 4], u16),
}

/// A small pool of addresses: global and local-scope, both families, mapped twins of IPv4
/// entries, and the unusable ones (port 0, unspecified, multicast, broadcast).
pub(crate) const POOL: [&str; 16] = [
    "1.2.3.4:6881",
    "[::ffff:1.2.3.4]:6881",
    "5.6.7.8:51413",
    "10.0.0.1:6881",
    "127.0.0.1:6881",
    "[2001:db8::1]:6881",
    "[fe80::1]:6881",
    "[fd00::1]:6881",
    "1.2.3.4:0",
    "0.0.0.0:6881",
    "224.0.0.1:6881",
    "255.255.255.255:6881",
    "[::]:6881",
    "[ff02::1]:6881",
    "[::ffff:10.0.0.1]:6881",
    "[2001:db8::2]:1",
];

fn gen_addr(n: u16, v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, n).into(), 6881)
    } else {
        let [hi, lo] = n.to_be_bytes();
        SocketAddr::new(Ipv4Addr::new(100, 64, hi, lo).into(), 6881)
    }
}

impl Addr {
    fn resolve(self) -> SocketAddr {
        match self {
            Addr::Pool(i) => POOL[usize::from(i) % POOL.len()]
                .parse()
                .unwrap_or_else(|_| gen_addr(0, false)),
            Addr::Gen(n, v6) => gen_addr(n, v6),
            Addr::V4(ip, port) => SocketAddr::new(Ipv4Addr::from(ip).into(), port),
            Addr::V6(ip, port) => SocketAddr::new(Ipv6Addr::from(ip).into(), port),
            Addr::Mapped(ip, port) => {
                SocketAddr::new(Ipv4Addr::from(ip).to_ipv6_mapped().into(), port)
            }
        }
    }
}

/// A way to move the clock the operations use.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum TimeStep {
    /// Not at all.
    Stay,
    /// Forward by milliseconds.
    ForwardMillis(u32),
    /// Forward by seconds (send intervals are 60 s and more).
    ForwardSecs(u16),
    /// Backwards by milliseconds (a misbehaving host).
    BackMillis(u32),
    /// Backwards by seconds.
    BackSecs(u16),
    /// Forward by any number of seconds, up to the last representable instant.
    Huge(u64),
    /// To the last representable instant: adding a send interval to it overflows.
    FarFuture,
    /// Back to the start instant.
    Base,
}

/// One operation of a [`Script`].
#[derive(Arbitrary, Debug)]
pub(crate) enum Op {
    /// Move the clock.
    Time(TimeStep),
    /// An arbitrary extended handshake payload.
    HandshakeBytes(Side, Vec<u8>),
    /// A handshake built with `HandshakeBuilder`: `ut_pex` under `id` (`None`: not
    /// mentioned), plus another extension and a port.
    HandshakeBuilt {
        /// The receiving state.
        to: Side,
        /// The `ut_pex` id, 0 included.
        id: Option<u8>,
        /// The id of an unrelated extension.
        other: u8,
        /// `p`.
        port: Option<u16>,
    },
    /// The other state's own handshake, as its host would build it.
    HandshakeFromPeer(Side),
    /// `set_remote_extension_id`.
    SetRemoteId(Side, u8),
    /// An arbitrary ut_pex payload.
    MessageBytes(Side, Vec<u8>),
    /// A well-formed payload from `encode_payload`.
    MessageBuilt {
        /// The receiving state.
        to: Side,
        /// Added peers with their flag bytes.
        added: Vec<(Addr, u8)>,
        /// Dropped addresses.
        dropped: Vec<Addr>,
    },
    /// A well-formed payload with many generated addresses.
    MessageMany {
        /// The receiving state.
        to: Side,
        /// First generated address.
        start: u16,
        /// How many added.
        added: u8,
        /// How many dropped (from the same range).
        dropped: u8,
        /// IPv6 instead of IPv4.
        v6: bool,
    },
    /// `add_peer`.
    AddPeer(Side, Addr, u8),
    /// `add_peer` for many generated addresses.
    AddMany(Side, u16, u8, bool),
    /// `drop_peer`.
    DropPeer(Side, Addr),
    /// `drop_peer` for many generated addresses.
    DropMany(Side, u16, u8, bool),
    /// `start`.
    Start(Side),
    /// `stop`.
    Stop(Side),
    /// `reset`.
    Reset(Side),
    /// `set_remote_address`.
    SetRemoteAddress(Side, Addr),
    /// `handle_timeout` at the clock.
    Timeout(Side),
    /// Sleep until `poll_timeout` (`handle_timeout` at the deadline), then poll a frame.
    RunDeadline(Side),
    /// `poll_transmit` until `None`; frames go in flight to the other state.
    PollTransmit(Side),
    /// `poll_event`, at most this many times (0: until `None`).
    PollEvents(Side, u8),
    /// Deliver this many frames in flight to the state (`handle_message` at the clock).
    Deliver(Side, u8),
    /// Lose the frames in flight to the state.
    LoseInFlight(Side),
}

/// A config from fuzz input; every value is mapped into what `Config` accepts.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) struct ConfigChoice {
    /// `private`.
    pub(crate) private: bool,
    /// Send interval = 60 s + this many tenths of a second.
    pub(crate) extra_interval: u16,
    /// `initial_max_peers` (0 means 1).
    pub(crate) initial_max_peers: u8,
    /// `max_entries_per_frame`, modulo 50, plus 1.
    pub(crate) max_entries_per_frame: u8,
    /// `max_remote_peers`, or the default.
    pub(crate) max_remote_peers: Option<u8>,
    /// `max_message_size`, or the default.
    pub(crate) max_message_size: Option<u16>,
    /// `flood_limit` (messages modulo 32, plus 1; window in seconds), or the default.
    pub(crate) flood: Option<(u8, u16)>,
    /// `local_extension_id` (0 keeps the default).
    pub(crate) local_extension_id: u8,
}

impl ConfigChoice {
    fn build(self) -> Config {
        let interval =
            Duration::from_secs(60) + Duration::from_millis(u64::from(self.extra_interval) * 100);
        let mut config = Config::default()
            .private(self.private)
            .initial_max_peers(usize::from(self.initial_max_peers))
            .local_extension_id(self.local_extension_id);
        config = config.clone().send_interval(interval).unwrap_or(config);
        let entries = usize::from(self.max_entries_per_frame) % MAX_PEERS_PER_MESSAGE + 1;
        config = config
            .clone()
            .max_entries_per_frame(entries)
            .unwrap_or(config);
        if let Some(cap) = self.max_remote_peers {
            config = config.max_remote_peers(usize::from(cap));
        }
        if let Some(size) = self.max_message_size {
            config = config.max_message_size(usize::from(size));
        }
        if let Some((messages, window)) = self.flood {
            let messages = usize::from(messages) % 16 + 1;
            let window = Duration::from_secs(u64::from(window));
            config = config
                .clone()
                .flood_limit(messages, window)
                .unwrap_or(config);
        }
        config
    }
}

/// The fuzz input of `state_ops`: two configs and the operations.
#[derive(Arbitrary, Debug)]
pub(crate) struct Script {
    /// Config of state A.
    pub(crate) a: ConfigChoice,
    /// Config of state B.
    pub(crate) b: ConfigChoice,
    /// The operations, in order.
    pub(crate) ops: Vec<Op>,
}

/// Turns fuzz bytes into a script exactly as `fuzz_target!(|script: Script| …)` does.
pub(crate) fn script_from_bytes(data: &[u8]) -> Option<Script> {
    Script::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// The limits of a config that the checks need (`Config`'s other fields are private).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// `send_interval`.
    pub(crate) interval: Duration,
    /// `initial_max_peers`.
    pub(crate) initial_max: usize,
    /// `max_entries_per_frame`.
    pub(crate) per_frame: usize,
    /// `max_remote_peers`.
    pub(crate) remote_cap: usize,
    /// `max_message_size`.
    pub(crate) max_message: usize,
    /// `private`.
    pub(crate) private: bool,
}

impl Limits {
    fn from_choice(choice: ConfigChoice, config: &Config) -> Self {
        let per_frame = usize::from(choice.max_entries_per_frame) % MAX_PEERS_PER_MESSAGE + 1;
        Self {
            interval: config.get_send_interval(),
            initial_max: usize::from(choice.initial_max_peers).max(1),
            per_frame,
            remote_cap: config.get_max_remote_peers(),
            max_message: config.get_max_message_size(),
            private: config.is_private(),
        }
    }
}

/// What the checks know about one state: a model of what it was told, what it sent and
/// what its host has seen.
#[derive(Debug)]
pub(crate) struct Model {
    /// The state's config limits.
    pub(crate) limits: Limits,
    /// The latest instant the state accepted (it keeps the maximum it has seen; calls that
    /// return `Err` leave it alone).
    pub(crate) seen: Option<Instant>,
    /// The remote's `ut_pex` id as last set.
    pub(crate) remote_id: u8,
    /// Whether started.
    pub(crate) started: bool,
    /// The remote's address, canonical.
    pub(crate) remote_addr: Option<SocketAddr>,
    /// Live peers the host added, with their latest flags.
    pub(crate) live: BTreeMap<SocketAddr, PeerFlags>,
    /// What the frames so far told the remote it has (added and not dropped since).
    pub(crate) advertised: BTreeSet<SocketAddr>,
    /// Frames polled so far.
    pub(crate) frames: u64,
    /// The protocol time of the last frame: the latest instant seen when it was polled.
    pub(crate) last_frame_at: Option<Instant>,
    /// What the host believes from the events it polled.
    pub(crate) host_peers: BTreeMap<SocketAddr, PeerFlags>,
    /// Whether the host believes PEX is enabled, from `Enabled` / `Disabled`.
    pub(crate) host_enabled: bool,
    /// The counters at the previous check.
    pub(crate) stats: Stats,
}

impl Model {
    /// A model of a new state with these limits.
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            seen: None,
            remote_id: 0,
            started: false,
            remote_addr: None,
            live: BTreeMap::new(),
            advertised: BTreeSet::new(),
            frames: 0,
            last_frame_at: None,
            host_peers: BTreeMap::new(),
            host_enabled: false,
            stats: Stats::default(),
        }
    }

    fn observe(&mut self, now: Instant) {
        self.seen = Some(self.seen.map_or(now, |seen| seen.max(now)));
    }

    fn can_send(&self) -> bool {
        self.started && self.remote_id != 0 && !self.limits.private
    }

    /// Checks a frame just polled from the state, whose remote currently claims `claims`,
    /// and records it.
    pub(crate) fn check_frame(&mut self, frame: &Frame, claims: &[Peer]) -> Check {
        ensure!(self.started, "a frame was sent while stopped");
        ensure!(
            self.remote_id != 0,
            "a frame was sent while the remote has ut_pex off"
        );
        ensure!(
            !self.limits.private,
            "a frame was sent for a private torrent"
        );
        check_frame_header(frame, self.remote_id)?;
        let now = self.seen.ok_or("a frame before any instant was seen")?;
        if let Some(last) = self.last_frame_at {
            let next = last.checked_add(self.limits.interval);
            ensure!(
                next.is_some_and(|next| now >= next),
                "frames {:?} apart, the send interval is {:?}",
                now.checked_duration_since(last),
                self.limits.interval
            );
        }
        let payload = frame.payload();
        let message = PexMessage::decode(&payload)
            .map_err(|e| format!("sent frame does not decode: {e:?}"))?;
        let added: Vec<Peer> = message.added().collect();
        let dropped: Vec<SocketAddr> = message.dropped().collect();
        ensure!(
            !added.is_empty() || !dropped.is_empty(),
            "an empty frame was sent"
        );
        let max_added = if self.frames == 0 {
            self.limits.initial_max
        } else {
            self.limits.per_frame
        };
        ensure!(
            added.len() <= max_added,
            "{} added in frame {} (limit {max_added})",
            added.len(),
            self.frames
        );
        ensure!(
            dropped.len() <= self.limits.per_frame,
            "{} dropped in one frame (limit {})",
            dropped.len(),
            self.limits.per_frame
        );
        ensure!(
            self.limits.per_frame <= MAX_PEERS_PER_MESSAGE,
            "per-frame limit above BEP 11's 50"
        );
        let mut in_frame = BTreeSet::new();
        for peer in &added {
            let addr = peer.addr;
            ensure!(!is_mapped(addr), "{addr} sent as IPv4-mapped IPv6");
            ensure!(in_frame.insert(addr), "{addr} twice in one frame");
            ensure!(usable(addr), "unusable {addr} advertised");
            ensure!(
                self.live.get(&addr) == Some(&peer.flags),
                "{addr} advertised with {:?}, live: {:?}",
                peer.flags,
                self.live.get(&addr)
            );
            ensure!(
                self.advertised.insert(addr),
                "{addr} advertised again without a drop in between"
            );
            ensure!(
                Some(addr) != self.remote_addr,
                "the remote's own address {addr} advertised to it"
            );
            ensure!(
                !claims.iter().any(|p| p.addr == addr),
                "{addr} echoed back to the remote that announced it"
            );
        }
        for &addr in &dropped {
            ensure!(!is_mapped(addr), "{addr} dropped as IPv4-mapped IPv6");
            ensure!(
                in_frame.insert(addr),
                "{addr} twice (or added and dropped) in one frame"
            );
            ensure!(!self.live.contains_key(&addr), "live {addr} dropped");
            ensure!(
                self.advertised.remove(&addr),
                "{addr} dropped but never advertised"
            );
        }
        self.frames += 1;
        self.last_frame_at = Some(now);
        Ok(())
    }

    /// Checks an event just polled and records what the host learned.
    pub(crate) fn check_event(&mut self, event: Event) -> Check {
        match event {
            Event::Enabled => {
                ensure!(!self.host_enabled, "Enabled twice without Disabled");
                self.host_enabled = true;
            }
            Event::Disabled => {
                ensure!(self.host_enabled, "Disabled without Enabled");
                self.host_enabled = false;
            }
            Event::PeerAdded(peer) => {
                ensure!(!is_mapped(peer.addr), "PeerAdded with a mapped address");
                ensure!(
                    self.host_peers.insert(peer.addr, peer.flags).is_none(),
                    "PeerAdded({}) twice without PeerDropped",
                    peer.addr
                );
            }
            Event::PeerDropped(addr) => {
                ensure!(
                    self.host_peers.remove(&addr).is_some(),
                    "PeerDropped({addr}) never added"
                );
            }
            _ => return Err(format!("unknown event {event:?}")),
        }
        Ok(())
    }

    /// The invariants that hold after every step.
    pub(crate) fn check_state(&mut self, state: &PexState) -> Check {
        let limits = self.limits;
        ensure!(
            state.remote_extension_id() == self.remote_id,
            "remote id {} != {}",
            state.remote_extension_id(),
            self.remote_id
        );
        ensure!(
            state.is_enabled() == (self.remote_id != 0 && !limits.private),
            "is_enabled() wrong"
        );
        ensure!(state.is_started() == self.started, "is_started() wrong");
        ensure!(
            state.live_peers() == self.live.len(),
            "live_peers() {} != {}",
            state.live_peers(),
            self.live.len()
        );
        let stats = state.stats();
        ensure!(
            stats.frames_sent == self.frames,
            "stats.frames_sent {} != {}",
            stats.frames_sent,
            self.frames
        );
        let (now, before) = (stats_fields(&stats), stats_fields(&self.stats));
        ensure!(
            now.iter().zip(before.iter()).all(|(n, b)| n >= b),
            "a counter went down: {:?} -> {stats:?}",
            self.stats
        );
        self.stats = stats;

        let claims: Vec<Peer> = state.remote_peers().collect();
        ensure!(
            claims.len() <= limits.remote_cap,
            "{} remote peers over the cap {}",
            claims.len(),
            limits.remote_cap
        );
        ensure!(
            claims.windows(2).all(|w| w[0].addr < w[1].addr),
            "remote_peers() not sorted or duplicated"
        );
        for peer in &claims {
            ensure!(
                !is_mapped(peer.addr) && usable(peer.addr),
                "remote peer {} kept",
                peer.addr
            );
            ensure!(
                !matches!(peer.addr.ip(), IpAddr::V4(ip) if ip.is_broadcast()),
                "broadcast kept"
            );
            ensure!(
                state.remote_claims(peer.addr) == Some(peer.flags),
                "remote_claims({}) wrong",
                peer.addr
            );
        }
        // Each address has at most one add and one drop queued, adds only for claimed
        // addresses, drops only for ones the host was told of (at most the cap: the host
        // polls in order, so it learns of a new peer only after the drops that made room
        // for it), plus at most one of Enabled / Disabled.
        let bound = 2 * limits.remote_cap + 1;
        ensure!(
            state.pending_events() <= bound,
            "{} events pending (bound {bound})",
            state.pending_events()
        );
        if state.pending_events() == 0 {
            let claimed: BTreeMap<SocketAddr, PeerFlags> =
                claims.iter().map(|p| (p.addr, p.flags)).collect();
            ensure!(
                self.host_peers == claimed,
                "after all events the host believes {:?}, the state has {claimed:?}",
                self.host_peers
            );
            ensure!(
                self.host_enabled == state.is_enabled(),
                "after all events the host believes enabled={}",
                self.host_enabled
            );
        }
        let deadline = state.poll_timeout();
        if !self.can_send() {
            ensure!(deadline.is_none(), "a deadline while stopped or disabled");
        }
        let _ = state.heap_bytes();
        Ok(())
    }
}

/// Loopback, RFC 1918, link-local, unique-local: the crate's documented local scope.
fn is_local_scope(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local_scope(v4.into()),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback() || first & 0xffc0 == 0xfe80 || first & 0xfe00 == 0xfc00
            }
        },
    }
}

fn usable(addr: SocketAddr) -> bool {
    let broadcast = matches!(addr, SocketAddr::V4(v4) if v4.ip().is_broadcast());
    addr.port() != 0 && !addr.ip().is_unspecified() && !addr.ip().is_multicast() && !broadcast
}

fn stats_fields(s: &Stats) -> [u64; 20] {
    [
        s.frames_sent,
        s.bytes_sent,
        s.peers_added_sent,
        s.peers_dropped_sent,
        s.messages_received,
        s.peers_added_received,
        s.peers_dropped_received,
        s.ignored_port_zero,
        s.ignored_unusable_address,
        s.ignored_local_address,
        s.ignored_added_and_dropped,
        s.ignored_duplicate,
        s.ignored_unknown_drop,
        s.ignored_over_cap,
        s.ignored_private,
        s.ignored_local_unusable,
        s.errors_too_large,
        s.errors_decode,
        s.errors_too_frequent,
        s.errors_handshake,
    ]
}

/// The counters that must not move when a call returns `Err`.
fn non_error_fields(s: &Stats) -> [u64; 16] {
    let all = stats_fields(s);
    let mut out = [0; 16];
    out.copy_from_slice(&all[..16]);
    out
}

/// The last instant `base + d` can reach (adding a send interval to it overflows).
fn far_future(base: Instant) -> Instant {
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if base.checked_add(Duration::from_secs(mid)).is_some() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let far = base + Duration::from_secs(lo);
    // Up to a second more in nanoseconds.
    far.checked_add(Duration::from_nanos(999_999_999))
        .unwrap_or(far)
}

struct Harness {
    states: [PexState; 2],
    models: [Model; 2],
    /// Frames on their way to state `i`.
    in_flight: [VecDeque<Frame>; 2],
    base: Instant,
    far: Instant,
    clock: Instant,
}

/// Frames kept in flight per direction; older ones are lost.
const IN_FLIGHT: usize = 64;

/// Runs a script against two fresh states and checks the invariants after every step.
pub(crate) fn run_script(script: &Script) -> Check {
    let base = Instant::now();
    let config_a = script.a.build();
    let config_b = script.b.build();
    let models = [
        Model::new(Limits::from_choice(script.a, &config_a)),
        Model::new(Limits::from_choice(script.b, &config_b)),
    ];
    let mut h = Harness {
        states: [PexState::new(config_a), PexState::new(config_b)],
        models,
        in_flight: [VecDeque::new(), VecDeque::new()],
        base,
        far: far_future(base),
        clock: base,
    };
    for (step, op) in script.ops.iter().enumerate() {
        h.apply(op)
            .map_err(|e| format!("step {step} {op:?}: {e}"))?;
        for i in 0..2 {
            h.models[i]
                .check_state(&h.states[i])
                .map_err(|e| format!("after step {step} {op:?}, state {i}: {e}"))?;
        }
    }
    Ok(())
}

impl Harness {
    fn apply(&mut self, op: &Op) -> Check {
        let now = self.clock;
        match *op {
            Op::Time(step) => self.step_time(step),
            Op::HandshakeBytes(side, ref bytes) => {
                let expected = ExtendedHandshake::decode(bytes).map(|hs| hs.ut_pex());
                self.handshake(side, bytes, expected)?;
            }
            Op::HandshakeBuilt {
                to,
                id,
                other,
                port,
            } => {
                let mut builder = HandshakeBuilder::new().extension("ut_metadata", other);
                if let Some(id) = id {
                    builder = builder.extension(UT_PEX, id);
                }
                if let Some(port) = port {
                    builder = builder.listen_port(port);
                }
                self.handshake(to, &builder.build(), Ok(id))?;
            }
            Op::HandshakeFromPeer(to) => {
                let from = &self.states[1 - to.index()];
                let mut builder = HandshakeBuilder::new().extension("ut_metadata", 2);
                let id = from.local_extension_id();
                if let Some(id) = id {
                    builder = builder.extension(from.extension_name(), id);
                }
                self.handshake(to, &builder.build(), Ok(id))?;
            }
            Op::SetRemoteId(side, id) => {
                let i = side.index();
                self.states[i].set_remote_extension_id(now, id);
                self.models[i].observe(now);
                self.models[i].remote_id = id;
            }
            Op::MessageBytes(side, ref bytes) => self.message(side, bytes, false)?,
            Op::MessageBuilt {
                to,
                ref added,
                ref dropped,
            } => {
                let added: Vec<Peer> = added
                    .iter()
                    .map(|(a, f)| Peer::new(a.resolve(), PeerFlags::from_bits(*f)))
                    .collect();
                let dropped: Vec<SocketAddr> = dropped.iter().map(|a| a.resolve()).collect();
                self.message(to, &encode_payload(&added, &dropped), false)?;
            }
            Op::MessageMany {
                to,
                start,
                added,
                dropped,
                v6,
            } => {
                // Up to 80 each: past the 50-entry limit and small caps, while keeping the
                // receiver's added-vs-dropped comparison (quadratic by design, bounded by
                // the cap) cheap enough for many executions per second.
                let (added, dropped) = (added % 81, dropped % 81);
                let added: Vec<Peer> = (0..u16::from(added))
                    .map(|k| {
                        Peer::new(
                            gen_addr(start.wrapping_add(k), v6),
                            PeerFlags::from_bits(k as u8),
                        )
                    })
                    .collect();
                let dropped: Vec<SocketAddr> = (0..u16::from(dropped))
                    .map(|k| gen_addr(start.wrapping_add(k).wrapping_add(7), v6))
                    .collect();
                self.message(to, &encode_payload(&added, &dropped), false)?;
            }
            Op::AddPeer(side, addr, flags) => {
                self.add_peer(side, addr.resolve(), PeerFlags::from_bits(flags))
            }
            Op::AddMany(side, start, count, v6) => {
                for k in 0..u16::from(count % 81) {
                    self.add_peer(
                        side,
                        gen_addr(start.wrapping_add(k), v6),
                        PeerFlags::from_bits(k as u8),
                    );
                }
            }
            Op::DropPeer(side, addr) => self.drop_peer(side, addr.resolve()),
            Op::DropMany(side, start, count, v6) => {
                for k in 0..u16::from(count % 81) {
                    self.drop_peer(side, gen_addr(start.wrapping_add(k), v6));
                }
            }
            Op::Start(side) => {
                let i = side.index();
                self.states[i].start(now);
                self.models[i].observe(now);
                self.models[i].started = true;
            }
            Op::Stop(side) => {
                let i = side.index();
                self.states[i].stop();
                self.models[i].started = false;
            }
            Op::Reset(side) => {
                let i = side.index();
                self.states[i].reset();
                let model = &mut self.models[i];
                model.started = false;
                model.live.clear();
                // The state forgets the remote's claims and the queued events about them;
                // the host, told so by the docs, forgets what it learned.
                model.host_peers.clear();
            }
            Op::SetRemoteAddress(side, addr) => {
                let i = side.index();
                let addr = addr.resolve();
                self.states[i].set_remote_address(addr);
                self.models[i].remote_addr = Some(canonical_addr(addr));
            }
            Op::Timeout(side) => self.timeout(side, now)?,
            Op::RunDeadline(side) => {
                let i = side.index();
                if let Some(deadline) = self.states[i].poll_timeout() {
                    self.timeout(side, deadline)?;
                    // The deadline announces that the log has entries this connection has not
                    // walked; they may all cancel out (an add and its drop, a peer held back),
                    // and then no frame comes. Such a wake-up must not repeat: no deadline at
                    // or before this one may remain.
                    match self.states[i].poll_transmit() {
                        Some(frame) => self.sent(side, frame)?,
                        None => {
                            let next = self.states[i].poll_timeout();
                            ensure!(
                                next.map_or(true, |t| t > deadline),
                                "woken at {deadline:?} for nothing, and due again at {next:?}"
                            );
                        }
                    }
                }
            }
            Op::PollTransmit(side) => {
                // Poll until None: at most one frame can be due at once, the loop guard only
                // turns a runaway state into a finding.
                for _ in 0..4 {
                    match self.states[side.index()].poll_transmit() {
                        Some(frame) => self.sent(side, frame)?,
                        None => return Ok(()),
                    }
                }
                return Err("poll_transmit keeps returning frames".into());
            }
            Op::PollEvents(side, max) => {
                let i = side.index();
                let limit = if max == 0 {
                    usize::MAX
                } else {
                    usize::from(max)
                };
                let mut polled = 0;
                while polled < limit {
                    let Some(event) = self.states[i].poll_event() else {
                        break;
                    };
                    self.models[i].check_event(event)?;
                    polled += 1;
                    ensure!(
                        polled <= 2 * self.models[i].limits.remote_cap + 2,
                        "more events than the bound"
                    );
                }
            }
            Op::Deliver(to, count) => {
                for _ in 0..count.max(1) {
                    let Some(frame) = self.in_flight[to.index()].pop_front() else {
                        break;
                    };
                    self.message(to, &frame.payload(), true)?;
                }
            }
            Op::LoseInFlight(to) => self.in_flight[to.index()].clear(),
        }
        Ok(())
    }

    fn step_time(&mut self, step: TimeStep) {
        let clock = self.clock;
        self.clock = match step {
            TimeStep::Stay => clock,
            TimeStep::ForwardMillis(ms) => clock
                .checked_add(Duration::from_millis(u64::from(ms)))
                .unwrap_or(self.far),
            TimeStep::ForwardSecs(s) => clock
                .checked_add(Duration::from_secs(u64::from(s)))
                .unwrap_or(self.far),
            TimeStep::BackMillis(ms) => clock
                .checked_sub(Duration::from_millis(u64::from(ms)))
                .unwrap_or(clock),
            TimeStep::BackSecs(s) => clock
                .checked_sub(Duration::from_secs(u64::from(s)))
                .unwrap_or(clock),
            TimeStep::Huge(s) => clock
                .checked_add(Duration::from_secs(s))
                .unwrap_or(self.far),
            TimeStep::FarFuture => self.far,
            TimeStep::Base => self.base,
        };
    }

    fn handshake(
        &mut self,
        side: Side,
        payload: &[u8],
        expected: Result<Option<u8>, DecodeError>,
    ) -> Check {
        let i = side.index();
        let (state, model) = (&mut self.states[i], &mut self.models[i]);
        let events_before = state.pending_events();
        let result = state.handle_extended_handshake(self.clock, payload);
        match (result, expected) {
            (Ok(()), Ok(id)) => {
                model.observe(self.clock);
                if let Some(id) = id {
                    model.remote_id = id;
                }
            }
            (Err(ut_pex::HandshakeError::Decode(e)), Err(want)) => {
                ensure!(e == want, "handshake error {e:?}, decode says {want:?}");
                ensure!(
                    state.pending_events() == events_before,
                    "a refused handshake queued an event"
                );
            }
            (got, want) => return Err(format!("handshake result {got:?}, decode says {want:?}")),
        }
        Ok(())
    }

    /// `handle_message` with its documented contract checked; `honest`: a frame the other
    /// state sent.
    fn message(&mut self, side: Side, payload: &[u8], honest: bool) -> Check {
        let i = side.index();
        let (state, model) = (&mut self.states[i], &mut self.models[i]);
        let limits = model.limits;
        let claims_before: Vec<Peer> = state.remote_peers().collect();
        let events_before = state.pending_events();
        let stats_before = state.stats();
        let decodes = PexMessage::decode(payload);
        let result = state.handle_message(self.clock, payload);
        let claims_after: Vec<Peer> = state.remote_peers().collect();
        if limits.private {
            ensure!(
                result.is_ok(),
                "private torrent refused a message: {result:?}"
            );
            ensure!(
                claims_after == claims_before,
                "private torrent learned peers"
            );
            model.observe(self.clock);
            return Ok(());
        }
        match result {
            Ok(()) => {
                model.observe(self.clock);
                ensure!(
                    payload.len() <= limits.max_message,
                    "accepted {} bytes over the limit",
                    payload.len()
                );
                let message = decodes
                    .map_err(|e| format!("accepted a payload that does not decode: {e:?}"))?;
                // Only the first `max_remote_peers` entries of each list count: the rest is
                // ignored and counted in `Stats::ignored_over_cap`.
                let examine = limits.remote_cap;
                let added: BTreeSet<SocketAddr> = message
                    .added()
                    .take(examine)
                    .map(|p| canonical_addr(p.addr))
                    .collect();
                let dropped: BTreeSet<SocketAddr> = message
                    .dropped()
                    .take(examine)
                    .map(canonical_addr)
                    .collect();
                let remote_is_global = model.remote_addr.is_some_and(|a| !is_local_scope(a.ip()));
                for peer in &claims_after {
                    if !claims_before.contains(peer) {
                        ensure!(
                            added.contains(&peer.addr),
                            "{} claimed without being added",
                            peer.addr
                        );
                        ensure!(
                            !dropped.contains(&peer.addr),
                            "{} added and dropped in one message, kept",
                            peer.addr
                        );
                        ensure!(
                            !(remote_is_global && is_local_scope(peer.addr.ip())),
                            "local-scope {} kept from a global remote",
                            peer.addr
                        );
                    }
                }
                for peer in &claims_before {
                    if !claims_after.iter().any(|p| p.addr == peer.addr) {
                        ensure!(
                            dropped.contains(&peer.addr),
                            "{} forgotten without a drop",
                            peer.addr
                        );
                    }
                }
            }
            Err(error) => {
                ensure!(
                    claims_after == claims_before,
                    "refused message ({error:?}) changed the claims"
                );
                ensure!(
                    state.pending_events() == events_before,
                    "refused message queued events"
                );
                ensure!(
                    non_error_fields(&state.stats()) == non_error_fields(&stats_before),
                    "refused message moved a non-error counter"
                );
                match error {
                    MessageError::TooLarge { size, limit } => {
                        ensure!(
                            size == payload.len() && size > limit && limit == limits.max_message,
                            "bad TooLarge {error:?}"
                        );
                    }
                    MessageError::Decode(e) => {
                        ensure!(
                            decodes == Err(e),
                            "Decode({e:?}) but decode gives {decodes:?}"
                        );
                        ensure!(
                            !honest,
                            "a frame from the other state does not decode: {e:?}"
                        );
                    }
                    MessageError::TooFrequent { .. } => {}
                    _ => return Err(format!("unknown error {error:?}")),
                }
                if payload.len() > limits.max_message {
                    ensure!(
                        matches!(error, MessageError::TooLarge { .. }),
                        "oversized payload gave {error:?}"
                    );
                }
            }
        }
        Ok(())
    }

    fn add_peer(&mut self, side: Side, addr: SocketAddr, flags: PeerFlags) {
        let i = side.index();
        self.states[i].add_peer(addr, flags);
        let addr = canonical_addr(addr);
        if usable(addr) {
            self.models[i].live.insert(addr, flags);
        }
    }

    fn drop_peer(&mut self, side: Side, addr: SocketAddr) {
        let i = side.index();
        self.states[i].drop_peer(addr);
        self.models[i].live.remove(&canonical_addr(addr));
    }

    /// `handle_timeout(at)`, then the no-busy-loop rule.
    ///
    /// The state keeps the latest instant it has seen, so after a backwards `at` its clock
    /// is still that latest instant: the deadline must then be later than that, not merely
    /// later than `at` (a deadline between the two would be in the state's past, and a host
    /// that sleeps until it and calls again would spin).
    fn timeout(&mut self, side: Side, at: Instant) -> Check {
        let i = side.index();
        self.states[i].handle_timeout(at);
        self.models[i].observe(at);
        let seen = self.models[i].seen.unwrap_or(at);
        if let Some(deadline) = self.states[i].poll_timeout() {
            ensure!(
                deadline > seen,
                "busy loop: deadline {deadline:?} not after {seen:?}"
            );
        }
        Ok(())
    }

    fn sent(&mut self, from: Side, frame: Frame) -> Check {
        let i = from.index();
        let claims: Vec<Peer> = self.states[i].remote_peers().collect();
        self.models[i].check_frame(&frame, &claims)?;
        let queue = &mut self.in_flight[1 - i];
        if queue.len() == IN_FLIGHT {
            queue.pop_front();
        }
        queue.push_back(frame);
        Ok(())
    }
}
