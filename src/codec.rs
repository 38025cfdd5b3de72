//! The ut_pex message codec: decode a payload into a borrowed [`PexMessage`], encode peer
//! lists into a payload or a whole peer-wire [`Frame`].
//!
//! BEP 11: "The PEX message payload is a bencoded dictionary with the following keys:
//! `added`, `added.f`, `added6`, `added6.f`, `dropped`, `dropped6`" — IPv4 entries in compact
//! form (4 address bytes, 2 port bytes, big-endian), IPv6 entries 16 + 2 bytes, and one flag
//! byte per added entry. (The BEP says `dropped` is "IPv6 compact format"; that is a typo:
//! every client reads and writes it as IPv4, and so does this crate.)

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::slice::{self, ChunksExact};

use bytes::Bytes;

use crate::bencode::{Entries, Item};
use crate::error::DecodeError;
use crate::peer::{Peer, PeerFlags};

/// Bytes of one compact IPv4 entry.
pub const V4_ENTRY_LEN: usize = 6;
/// Bytes of one compact IPv6 entry.
pub const V6_ENTRY_LEN: usize = 18;

/// The BEP 10 message id of extended messages.
pub const EXTENDED_MESSAGE_ID: u8 = 20;

/// The six ut_pex keys with their bencode length prefix, in sorted order (the order
/// senders write them in), indexed as in [`PexMessage::decode`].
const KEYS: [&[u8]; 6] = [
    b"5:added",
    b"7:added.f",
    b"6:added6",
    b"8:added6.f",
    b"7:dropped",
    b"8:dropped6",
];

/// A decoded ut_pex payload: a borrowed view, no allocation.
///
/// Built by [`PexMessage::decode`]; read with [`added`](Self::added) and
/// [`dropped`](Self::dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PexMessage<'a> {
    added: &'a [u8],
    added_f: &'a [u8],
    added6: &'a [u8],
    added6_f: &'a [u8],
    dropped: &'a [u8],
    dropped6: &'a [u8],
}

impl<'a> PexMessage<'a> {
    /// Decodes a ut_pex payload (the bencoded dictionary, without the peer-wire header).
    ///
    /// Liberal in what it accepts, because real clients send all of these:
    /// - every key is optional; empty strings and an empty dictionary (`de`) are valid
    ///   (webtorrent sends six empty keys every 65 s, transmission 4.1 sends `de`);
    /// - `added.f` / `added6.f` missing or of the wrong length: an entry without a flag byte
    ///   gets flags 0, and the peers are kept (BEP 11 calls the flags optional);
    /// - a trailing partial entry in a compact string is ignored;
    /// - unknown keys are skipped whatever their value, nested lists and dicts included;
    /// - a known key whose value is not a byte string is treated as absent;
    /// - keys out of sorted order are accepted; of a repeated key the last string counts.
    ///
    /// Errors only when the payload is unusable: see [`DecodeError`]. Never panics.
    #[inline]
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut message = Self::default();
        let mut entries = Entries::new(payload)?;
        loop {
            // The six keys are tried whole, length prefix included, before a generic read:
            // the value's offset then comes from the branch taken, which the CPU predicts,
            // instead of from the key's length digit (measured against the generic read:
            // 8% off decoding the `empty` bench payload, 6% off `typical`).
            let field = match KEYS.iter().position(|key| entries.skip_key(key)) {
                Some(field) => Some(field),
                None => match entries.next_key()? {
                    Some(key) => KEYS.iter().position(|known| &known[2..] == key),
                    None => break,
                },
            };
            let Item::Bytes(value) = entries.value()? else {
                continue;
            };
            // Each arm assigns its field by name, so the message can stay in registers
            // (through a `&mut` to the chosen field it had to live in memory).
            match field {
                Some(0) => message.added = value,
                Some(1) => message.added_f = value,
                Some(2) => message.added6 = value,
                Some(3) => message.added6_f = value,
                Some(4) => message.dropped = value,
                Some(5) => message.dropped6 = value,
                _ => {}
            }
        }
        Ok(message)
    }

    /// The added peers with their flags: `added` (IPv4) first, then `added6` (IPv6).
    #[inline]
    pub fn added(&self) -> impl Iterator<Item = Peer> + 'a {
        Added {
            v4: self.added.chunks_exact(V4_ENTRY_LEN),
            flags_v4: self.added_f.iter(),
            v6: self.added6.chunks_exact(V6_ENTRY_LEN),
            flags_v6: self.added6_f.iter(),
        }
    }

    /// The dropped addresses: `dropped` (IPv4) first, then `dropped6` (IPv6).
    #[inline]
    pub fn dropped(&self) -> impl Iterator<Item = SocketAddr> + 'a {
        Dropped {
            v4: self.dropped.chunks_exact(V4_ENTRY_LEN),
            v6: self.dropped6.chunks_exact(V6_ENTRY_LEN),
        }
    }

    /// How many added entries [`added`](Self::added) yields.
    #[inline]
    pub fn added_len(&self) -> usize {
        entry_count(self.added, self.added6)
    }

    /// How many dropped entries [`dropped`](Self::dropped) yields.
    #[inline]
    pub fn dropped_len(&self) -> usize {
        entry_count(self.dropped, self.dropped6)
    }

    /// Whether the message names no peer at all (BEP 11 asks senders not to send these;
    /// receivers accept them).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.added_len() == 0 && self.dropped_len() == 0
    }
}

// The iterators are hand-written rather than `chunks_exact().map().chain()`: with every step
// `#[inline]` the whole walk compiles into the caller's loop, which the adaptor chain did
// not (its closures stayed out-of-line calls in other crates, about 3x slower per entry).
// `ChunksExact` rather than re-slicing by hand: it hands out whole entries only (a trailing
// partial entry is its remainder, never yielded), and its fixed chunk length lets the
// compiler drop the per-byte bounds checks (about 15% faster per entry than re-slicing).

/// Whole entries in an IPv4 and an IPv6 compact string (a trailing partial entry is ignored).
#[inline]
fn entry_count(v4: &[u8], v6: &[u8]) -> usize {
    v4.len() / V4_ENTRY_LEN + v6.len() / V6_ENTRY_LEN
}

/// The iterator behind [`PexMessage::added`]: the unread entries and flags of each list.
#[derive(Clone, Debug)]
struct Added<'a> {
    v4: ChunksExact<'a, u8>,
    flags_v4: slice::Iter<'a, u8>,
    v6: ChunksExact<'a, u8>,
    flags_v6: slice::Iter<'a, u8>,
}

impl Iterator for Added<'_> {
    type Item = Peer;

    #[inline]
    fn next(&mut self) -> Option<Peer> {
        // The `?` after `try_into` never fires (`ChunksExact` yields whole entries only);
        // it keeps the conversion free of a panic path.
        if let Some(entry) = self.v4.next() {
            let flags = next_flags(&mut self.flags_v4);
            return Some(Peer::new(v4_entry(entry.try_into().ok()?), flags));
        }
        let entry = self.v6.next()?;
        let flags = next_flags(&mut self.flags_v6);
        Some(Peer::new(v6_entry(entry.try_into().ok()?), flags))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.v4.len() + self.v6.len();
        (len, Some(len))
    }
}

/// The iterator behind [`PexMessage::dropped`].
#[derive(Clone, Debug)]
struct Dropped<'a> {
    v4: ChunksExact<'a, u8>,
    v6: ChunksExact<'a, u8>,
}

impl Iterator for Dropped<'_> {
    type Item = SocketAddr;

    #[inline]
    fn next(&mut self) -> Option<SocketAddr> {
        if let Some(entry) = self.v4.next() {
            return Some(v4_entry(entry.try_into().ok()?));
        }
        Some(v6_entry(self.v6.next()?.try_into().ok()?))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.v4.len() + self.v6.len();
        (len, Some(len))
    }
}

/// The next flag byte, or 0 once the flags run out (an entry without a flag byte).
#[inline]
fn next_flags(flags: &mut slice::Iter<'_, u8>) -> PeerFlags {
    PeerFlags::from_bits(flags.next().copied().unwrap_or(0))
}

/// A compact IPv4 entry: 4 address bytes, then the port, big-endian.
#[inline]
fn v4_entry(entry: &[u8; V4_ENTRY_LEN]) -> SocketAddr {
    let [a, b, c, d, p0, p1] = *entry;
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(a, b, c, d),
        u16::from_be_bytes([p0, p1]),
    ))
}

/// A compact IPv6 entry: 16 address bytes, then the port, big-endian.
#[inline]
fn v6_entry(entry: &[u8; V6_ENTRY_LEN]) -> SocketAddr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&entry[..16]);
    let port = u16::from_be_bytes([entry[16], entry[17]]);
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(octets), port, 0, 0))
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// An address as the list it goes to sees it: IPv4 for IPv4 and IPv4-mapped IPv6 (what
/// [`canonical_addr`](crate::canonical_addr) turns into IPv4), IPv6 otherwise. The one place
/// that decides an address's list, for counting and for writing.
enum Compact {
    V4(Ipv4Addr, u16),
    V6(Ipv6Addr, u16),
}

impl Compact {
    #[inline(always)]
    fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(v4) => Self::V4(*v4.ip(), v4.port()),
            SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
                Some(v4) => Self::V4(v4, v6.port()),
                None => Self::V6(*v6.ip(), v6.port()),
            },
        }
    }

    #[inline(always)]
    fn is_v4(addr: &SocketAddr) -> bool {
        matches!(Self::of(addr), Self::V4(..))
    }

    /// Writes the entry into its slot, `V4_ENTRY_LEN` or `V6_ENTRY_LEN` bytes. Straight into
    /// the slot: an entry assembled in a local array first was copied out through a stall.
    #[inline(always)]
    fn write(&self, slot: &mut [u8]) {
        match self {
            Self::V4(ip, port) => {
                slot[..4].copy_from_slice(&ip.octets());
                slot[4..V4_ENTRY_LEN].copy_from_slice(&port.to_be_bytes());
            }
            Self::V6(ip, port) => {
                slot[..16].copy_from_slice(&ip.octets());
                slot[16..V6_ENTRY_LEN].copy_from_slice(&port.to_be_bytes());
            }
        }
    }
}

/// How many entries each of the four lists gets, counted once per encode.
#[derive(Clone, Copy)]
struct Counts {
    added4: usize,
    added6: usize,
    dropped4: usize,
    dropped6: usize,
}

impl Counts {
    fn of(added: &[Peer], dropped: &[SocketAddr]) -> Self {
        let added4 = added.iter().filter(|p| Compact::is_v4(&p.addr)).count();
        let dropped4 = dropped.iter().filter(|a| Compact::is_v4(a)).count();
        Self {
            added4,
            added6: added.len() - added4,
            dropped4,
            dropped6: dropped.len() - dropped4,
        }
    }

    /// The six keys in the order they are written (sorted), each with its value's length;
    /// a key whose list is empty is left out.
    fn sections(self) -> [(&'static [u8], usize); 6] {
        [
            (b"added", self.added4 * V4_ENTRY_LEN),
            (b"added.f", self.added4),
            (b"added6", self.added6 * V6_ENTRY_LEN),
            (b"added6.f", self.added6),
            (b"dropped", self.dropped4 * V4_ENTRY_LEN),
            (b"dropped6", self.dropped6 * V6_ENTRY_LEN),
        ]
    }

    fn payload_len(self) -> usize {
        let strings: usize = self
            .sections()
            .iter()
            .filter(|(_, len)| *len > 0)
            .map(|&(key, len)| string_len(key.len()) + string_len(len))
            .sum();
        strings + 2 // "d" … "e"
    }
}

/// Bytes of `<decimal len>:` plus the string itself.
fn string_len(len: usize) -> usize {
    decimal_digits(len) + 1 + len
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// The exact size of the payload [`encode_payload`] writes for these lists.
pub fn encoded_len(added: &[Peer], dropped: &[SocketAddr]) -> usize {
    Counts::of(added, dropped).payload_len()
}

/// Appends the bencoded ut_pex payload for these lists to `out`: exactly [`encoded_len`]
/// bytes, with at most one reallocation (none when `out` has the room).
///
/// Strict in what it sends: keys in sorted order; `added` always with `added.f` (one byte per
/// entry; libtorrent ignores `added` without it), the same for `added6`; empty lists omitted;
/// each address goes to the list of its family, an IPv4-mapped IPv6 address as IPv4. The
/// lists are written as given: deduplication and the 50-entry limit are the caller's
/// (see [`PexState`](crate::PexState)).
pub fn write_payload(added: &[Peer], dropped: &[SocketAddr], out: &mut Vec<u8>) {
    let counts = Counts::of(added, dropped);
    append(out, added, dropped, counts, counts.payload_len());
}

/// The bencoded ut_pex payload for these lists, in one exactly sized allocation.
///
/// See [`write_payload`] for the rules it follows.
pub fn encode_payload(added: &[Peer], dropped: &[SocketAddr]) -> Vec<u8> {
    let counts = Counts::of(added, dropped);
    let len = counts.payload_len();
    let mut out = Vec::with_capacity(len);
    append(&mut out, added, dropped, counts, len);
    out
}

/// A complete peer-wire frame for these lists, header included, in one allocation:
/// `<u32 big-endian length><20><extension_id><payload>`.
///
/// `extension_id` is the id the *remote* gave `ut_pex` in its extended handshake (BEP 10:
/// "the IDs … are local to this particular peer").
///
/// # Panics
/// If the payload would exceed `u32::MAX - 2` bytes (about 700 million peers), which no
/// caller respecting BEP 11's limits comes near.
pub fn encode_frame(extension_id: u8, added: &[Peer], dropped: &[SocketAddr]) -> Frame {
    let counts = Counts::of(added, dropped);
    let len = counts.payload_len();
    let body_len = u32::try_from(len + 2).expect("a PEX payload fits a u32 length");
    let mut out = Vec::with_capacity(Frame::HEADER_LEN + len);
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&[EXTENDED_MESSAGE_ID, extension_id]);
    append(&mut out, added, dropped, counts, len);
    Frame(Bytes::from(out))
}

/// Appends the payload, `len` (= `counts.payload_len()`) bytes, to `out`.
///
/// Zero-fills the room first and then writes into it: safe code has no other way to write
/// into a `Vec` out of order, and a `memset` of a frame costs a few nanoseconds (the
/// `calloc` behind `vec![0; len]` cost more than the whole encode of a small frame).
#[inline]
fn append(out: &mut Vec<u8>, added: &[Peer], dropped: &[SocketAddr], counts: Counts, len: usize) {
    let start = out.len();
    out.resize(start + len, 0);
    fill(&mut out[start..], added, dropped, counts);
}

/// Writes the payload into `out`, which is exactly `counts.payload_len()` bytes long.
///
/// One pass over each list: the key headers go first, which fixes where every section's
/// value starts, then each entry is written straight into its section. (Writing in wire
/// order instead takes a pass per section, six in all, each re-deciding every address's
/// family; measured about twice as slow on the `max` bench payload.)
fn fill(out: &mut [u8], added: &[Peer], dropped: &[SocketAddr], counts: Counts) {
    let mut rest = out;
    take(&mut rest, 1)[0] = b'd';
    // Six plain calls: `sections().map(..)` left a closure call per section out of line,
    // which cost more than the whole rest of encoding an empty message.
    let [s0, s1, s2, s3, s4, s5] = counts.sections();
    let added4 = section(&mut rest, s0);
    let flags4 = section(&mut rest, s1);
    let added6 = section(&mut rest, s2);
    let flags6 = section(&mut rest, s3);
    let dropped4 = section(&mut rest, s4);
    let dropped6 = section(&mut rest, s5);
    if let [end] = rest {
        *end = b'e';
    }

    let mut added4 = added4.chunks_exact_mut(V4_ENTRY_LEN).zip(flags4);
    let mut added6 = added6.chunks_exact_mut(V6_ENTRY_LEN).zip(flags6);
    for peer in added {
        // The sections were sized by the same `Compact::of`, so `next` always has room.
        let compact = Compact::of(&peer.addr);
        let next = match compact {
            Compact::V4(..) => added4.next(),
            Compact::V6(..) => added6.next(),
        };
        if let Some((slot, flags)) = next {
            compact.write(slot);
            *flags = peer.flags.bits();
        }
    }
    let mut dropped4 = dropped4.chunks_exact_mut(V4_ENTRY_LEN);
    let mut dropped6 = dropped6.chunks_exact_mut(V6_ENTRY_LEN);
    for addr in dropped {
        let compact = Compact::of(addr);
        let next = match compact {
            Compact::V4(..) => dropped4.next(),
            Compact::V6(..) => dropped6.next(),
        };
        if let Some(slot) = next {
            compact.write(slot);
        }
    }
}

/// Splits the first `len` bytes off `rest`.
#[inline(always)]
fn take<'o>(rest: &mut &'o mut [u8], len: usize) -> &'o mut [u8] {
    let (head, tail) = std::mem::take(rest).split_at_mut(len);
    *rest = tail;
    head
}

/// Writes `<key len>:<key><len>:` at the front of `rest` and splits off the value's `len`
/// bytes for the caller to fill; writes nothing for an empty list (its key is left out).
#[inline(always)]
fn section<'o>(rest: &mut &'o mut [u8], (key, len): (&[u8], usize)) -> &'o mut [u8] {
    if len == 0 {
        return &mut [];
    }
    put_decimal(rest, key.len());
    take(rest, key.len()).copy_from_slice(key);
    put_decimal(rest, len);
    take(rest, len)
}

/// Writes `<len>:`.
#[inline]
fn put_decimal(rest: &mut &mut [u8], len: usize) {
    let digits = decimal_digits(len);
    let (number, colon) = take(rest, digits + 1).split_at_mut(digits);
    colon[0] = b':';
    let mut n = len;
    for digit in number.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// One whole peer-wire message carrying a ut_pex payload, ready to write to the socket:
/// `<u32 big-endian length><20><remote's ut_pex id><bencoded payload>`.
#[must_use = "a frame does nothing until it is written to the peer"]
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// Bytes before the payload: the 4-byte length, the extended message id 20 and the
    /// extension id.
    pub const HEADER_LEN: usize = 6;

    /// The whole frame, to write to the socket as is.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The whole frame as `Bytes`.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The bencoded payload alone, for hosts with their own message framer; shares the
    /// frame's buffer (no copy).
    pub fn payload(&self) -> Bytes {
        self.0.slice(Self::HEADER_LEN..)
    }

    /// The extended message id in the header: the remote's `ut_pex` id.
    pub fn extension_id(&self) -> u8 {
        self.0[Self::HEADER_LEN - 1]
    }

    /// The length of the whole frame in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a frame has at least its header. Present for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("extension_id", &self.extension_id())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str, flags: u8) -> Peer {
        Peer::new(s.parse().unwrap(), PeerFlags::from_bits(flags))
    }

    /// The sizes `Config::max_message_size` quotes: a full frame (50 added and 50 dropped,
    /// one family) is 694 bytes in IPv4 and 1,897 in IPv6, header included.
    #[test]
    fn full_frame_sizes() {
        let full = |v6: bool| {
            let addr = |i: u16| -> SocketAddr {
                if v6 {
                    SocketAddr::new(std::net::Ipv6Addr::from(u128::from(i) + 1).into(), i + 1)
                } else {
                    SocketAddr::new(Ipv4Addr::from(u32::from(i) + 1).into(), i + 1)
                }
            };
            let added: Vec<Peer> = (0..50)
                .map(|i| Peer::new(addr(i), PeerFlags::SEED))
                .collect();
            let dropped: Vec<SocketAddr> = (50..100).map(addr).collect();
            encode_frame(1, &added, &dropped).len()
        };
        assert_eq!(full(false), 694);
        assert_eq!(full(true), 1_897);
    }

    #[test]
    fn encodes_keys_sorted_with_flags() {
        let added = [peer("1.2.3.4:5", 0x02), peer("[::1]:7", 0x10)];
        let dropped: [SocketAddr; 1] = ["5.6.7.8:9".parse().unwrap()];
        let payload = encode_payload(&added, &dropped);
        let mut expected = b"d5:added6:\x01\x02\x03\x04\x00\x057:added.f1:\x02".to_vec();
        expected.extend_from_slice(b"6:added618:");
        expected.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        expected.extend_from_slice(b"\x00\x078:added6.f1:\x107:dropped6:\x05\x06\x07\x08\x00\x09e");
        assert_eq!(payload, expected);
        assert_eq!(payload.len(), encoded_len(&added, &dropped));
    }

    #[test]
    fn empty_lists_encode_to_empty_dict() {
        assert_eq!(encode_payload(&[], &[]), b"de");
    }

    #[test]
    fn mapped_v6_goes_out_as_v4() {
        let payload = encode_payload(&[peer("[::ffff:1.2.3.4]:5", 1)], &[]);
        assert_eq!(
            payload,
            b"d5:added6:\x01\x02\x03\x04\x00\x057:added.f1:\x01e"
        );
    }

    #[test]
    fn frame_has_header() {
        let frame = encode_frame(3, &[], &[]);
        assert_eq!(frame.as_bytes(), b"\x00\x00\x00\x04\x14\x03de");
        assert_eq!(frame.extension_id(), 3);
        assert_eq!(&frame.payload()[..], b"de");
    }

    #[test]
    fn flags_missing_or_short_default_to_zero() {
        let msg = PexMessage::decode(
            b"d5:added12:\x01\x01\x01\x01\x00\x01\x02\x02\x02\x02\x00\x027:added.f1:\x04e",
        )
        .unwrap();
        let flags: Vec<u8> = msg.added().map(|p| p.flags.bits()).collect();
        assert_eq!(flags, [4, 0]);
    }

    #[test]
    fn partial_entry_is_ignored() {
        let msg = PexMessage::decode(b"d7:dropped8:\x01\x01\x01\x01\x00\x01\x02\x02e").unwrap();
        assert_eq!(msg.dropped().count(), 1);
    }

    #[test]
    fn wrong_type_is_absent_and_unknown_nested_skipped() {
        let msg = PexMessage::decode(b"d5:addedi3e1:xd1:ald1:bi1eeee7:dropped0:e").unwrap();
        assert!(msg.is_empty());
    }

    #[test]
    fn unsorted_keys_accepted() {
        let msg = PexMessage::decode(b"d7:dropped6:\x01\x01\x01\x01\x00\x015:added0:e").unwrap();
        assert_eq!(msg.dropped_len(), 1);
    }

    #[test]
    fn errors() {
        assert_eq!(PexMessage::decode(b""), Err(DecodeError::UnexpectedEnd));
        assert_eq!(PexMessage::decode(b"le"), Err(DecodeError::NotADict));
        assert_eq!(PexMessage::decode(b"i1e"), Err(DecodeError::NotADict));
        assert_eq!(
            PexMessage::decode(b"x"),
            Err(DecodeError::Invalid { offset: 0 })
        );
        assert_eq!(
            PexMessage::decode(b"dex"),
            Err(DecodeError::TrailingBytes { offset: 2 })
        );
        assert_eq!(
            PexMessage::decode(b"di1ei2ee"),
            Err(DecodeError::Invalid { offset: 1 })
        );
        assert_eq!(PexMessage::decode(b"d1:a"), Err(DecodeError::UnexpectedEnd));
        assert_eq!(
            PexMessage::decode(b"d1:a5:abce"),
            Err(DecodeError::UnexpectedEnd)
        );
        assert_eq!(
            PexMessage::decode(b"d1:a99999999999999999999999:e"),
            Err(DecodeError::LengthOverflow { offset: 4 })
        );
        let mut deep = b"d1:a".to_vec();
        deep.extend(std::iter::repeat(b'l').take(100_000));
        assert!(matches!(
            PexMessage::decode(&deep),
            Err(DecodeError::TooDeep { .. })
        ));
        let mut ok = b"d1:a".to_vec();
        ok.extend(std::iter::repeat(b'l').take(crate::bencode::MAX_NESTING - 1));
        ok.extend(std::iter::repeat(b'e').take(crate::bencode::MAX_NESTING));
        assert_eq!(PexMessage::decode(&ok), Ok(PexMessage::default()));
    }
}
