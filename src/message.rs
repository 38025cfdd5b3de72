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

use bytes::{BufMut, Bytes};

use crate::bencode::{for_each_entry, Item};
use crate::error::DecodeError;
use crate::flags::{Peer, PeerFlags};

/// Bytes of one compact IPv4 entry.
pub const V4_ENTRY_LEN: usize = 6;
/// Bytes of one compact IPv6 entry.
pub const V6_ENTRY_LEN: usize = 18;

/// The BEP 10 message id of extended messages.
pub const EXTENDED_MESSAGE_ID: u8 = 20;

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
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut message = Self::default();
        for_each_entry(payload, |key, item| {
            let Item::Bytes(value) = item else { return };
            // Dispatch on the length first: one jump, then at most two short comparisons
            // (a plain `match key` tests the six names one after the other).
            let slot = match key.len() {
                5 if key == b"added" => &mut message.added,
                6 if key == b"added6" => &mut message.added6,
                7 if key == b"added.f" => &mut message.added_f,
                7 if key == b"dropped" => &mut message.dropped,
                8 if key == b"added6.f" => &mut message.added6_f,
                8 if key == b"dropped6" => &mut message.dropped6,
                _ => return,
            };
            *slot = value;
        })?;
        Ok(message)
    }

    /// The added peers with their flags: `added` (IPv4) first, then `added6` (IPv6).
    pub fn added(&self) -> impl Iterator<Item = Peer> + 'a {
        Added {
            v4: self.added,
            flags_v4: self.added_f,
            v6: self.added6,
            flags_v6: self.added6_f,
        }
    }

    /// The dropped addresses: `dropped` (IPv4) first, then `dropped6` (IPv6).
    pub fn dropped(&self) -> impl Iterator<Item = SocketAddr> + 'a {
        Dropped {
            v4: self.dropped,
            v6: self.dropped6,
        }
    }

    /// How many added entries [`added`](Self::added) yields.
    pub fn added_len(&self) -> usize {
        entry_count(self.added, self.added6)
    }

    /// How many dropped entries [`dropped`](Self::dropped) yields.
    pub fn dropped_len(&self) -> usize {
        entry_count(self.dropped, self.dropped6)
    }

    /// Whether the message names no peer at all (BEP 11 asks senders not to send these;
    /// receivers accept them).
    pub fn is_empty(&self) -> bool {
        self.added_len() == 0 && self.dropped_len() == 0
    }
}

// The iterators are hand-written rather than `chunks_exact().map().chain()`: with every step
// `#[inline]` the whole walk compiles into the caller's loop, which the adaptor chain did
// not (its closures stayed out-of-line calls in other crates, about 3x slower per entry).

/// Whole entries in an IPv4 and an IPv6 compact string (a trailing partial entry is ignored).
#[inline]
fn entry_count(v4: &[u8], v6: &[u8]) -> usize {
    v4.len() / V4_ENTRY_LEN + v6.len() / V6_ENTRY_LEN
}

/// The iterator behind [`PexMessage::added`]: the unread rest of each list.
#[derive(Clone, Debug)]
struct Added<'a> {
    v4: &'a [u8],
    flags_v4: &'a [u8],
    v6: &'a [u8],
    flags_v6: &'a [u8],
}

impl Iterator for Added<'_> {
    type Item = Peer;

    #[inline]
    fn next(&mut self) -> Option<Peer> {
        if let Some(addr) = take_v4(&mut self.v4) {
            return Some(Peer::new(addr, take_flag(&mut self.flags_v4)));
        }
        let addr = take_v6(&mut self.v6)?;
        Some(Peer::new(addr, take_flag(&mut self.flags_v6)))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = entry_count(self.v4, self.v6);
        (len, Some(len))
    }
}

/// The iterator behind [`PexMessage::dropped`].
#[derive(Clone, Debug)]
struct Dropped<'a> {
    v4: &'a [u8],
    v6: &'a [u8],
}

impl Iterator for Dropped<'_> {
    type Item = SocketAddr;

    #[inline]
    fn next(&mut self) -> Option<SocketAddr> {
        take_v4(&mut self.v4).or_else(|| take_v6(&mut self.v6))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = entry_count(self.v4, self.v6);
        (len, Some(len))
    }
}

/// The next flag byte, or 0 once the flags run out (an entry without a flag byte).
#[inline]
fn take_flag(flags: &mut &[u8]) -> PeerFlags {
    match flags.split_first() {
        Some((&bits, rest)) => {
            *flags = rest;
            PeerFlags::from_bits(bits)
        }
        None => PeerFlags::EMPTY,
    }
}

/// Reads the next compact IPv4 entry; `None` when less than a whole entry is left.
#[inline]
fn take_v4(bytes: &mut &[u8]) -> Option<SocketAddr> {
    if bytes.len() < V4_ENTRY_LEN {
        return None;
    }
    let (entry, rest) = bytes.split_at(V4_ENTRY_LEN);
    *bytes = rest;
    let ip = Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]);
    let port = u16::from_be_bytes([entry[4], entry[5]]);
    Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}

/// Reads the next compact IPv6 entry; `None` when less than a whole entry is left.
#[inline]
fn take_v6(bytes: &mut &[u8]) -> Option<SocketAddr> {
    if bytes.len() < V6_ENTRY_LEN {
        return None;
    }
    let (entry, rest) = bytes.split_at(V6_ENTRY_LEN);
    *bytes = rest;
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&entry[..16]);
    let port = u16::from_be_bytes([entry[16], entry[17]]);
    Some(SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::from(octets),
        port,
        0,
        0,
    )))
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// Whether an address goes to an IPv4 list: IPv4, or IPv4-mapped IPv6 (what
/// [`canonical_addr`](crate::canonical_addr) turns into IPv4), checked without copying the address.
#[inline]
fn is_v4(addr: &SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped().is_some(),
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
        let added4 = added.iter().filter(|p| is_v4(&p.addr)).count();
        let dropped4 = dropped.iter().filter(|a| is_v4(a)).count();
        Self {
            added4,
            added6: added.len() - added4,
            dropped4,
            dropped6: dropped.len() - dropped4,
        }
    }

    fn payload_len(self) -> usize {
        let Self {
            added4: a4,
            added6: a6,
            dropped4: d4,
            dropped6: d6,
        } = self;
        let mut len = 2; // "d" … "e"
        if a4 > 0 {
            len += string_len(5) + string_len(a4 * V4_ENTRY_LEN) + string_len(7) + string_len(a4);
        }
        if a6 > 0 {
            len += string_len(6) + string_len(a6 * V6_ENTRY_LEN) + string_len(8) + string_len(a6);
        }
        if d4 > 0 {
            len += string_len(7) + string_len(d4 * V4_ENTRY_LEN);
        }
        if d6 > 0 {
            len += string_len(8) + string_len(d6 * V6_ENTRY_LEN);
        }
        len
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

/// Writes the bencoded ut_pex payload for these lists into `out`.
///
/// Strict in what it sends: keys in sorted order; `added` always with `added.f` (one byte per
/// entry; libtorrent ignores `added` without it), the same for `added6`; empty lists omitted;
/// each address goes to the list of its family, an IPv4-mapped IPv6 address as IPv4. The
/// lists are written as given: deduplication and the 50-entry limit are the caller's
/// (see [`PexState`](crate::PexState)). Writes exactly [`encoded_len`] bytes.
pub fn write_payload<B: BufMut + ?Sized>(added: &[Peer], dropped: &[SocketAddr], out: &mut B) {
    write_counted(added, dropped, Counts::of(added, dropped), out);
}

/// [`write_payload`] with the counts already known.
fn write_counted<B: BufMut + ?Sized>(
    added: &[Peer],
    dropped: &[SocketAddr],
    counts: Counts,
    out: &mut B,
) {
    let Counts {
        added4: a4,
        added6: a6,
        dropped4: d4,
        dropped6: d6,
    } = counts;
    out.put_u8(b'd');
    if a4 > 0 {
        put_string(out, b"added");
        put_len(out, a4 * V4_ENTRY_LEN);
        added
            .iter()
            .filter(|p| is_v4(&p.addr))
            .for_each(|p| put_addr(out, &p.addr));
        put_string(out, b"added.f");
        put_len(out, a4);
        added
            .iter()
            .filter(|p| is_v4(&p.addr))
            .for_each(|p| out.put_u8(p.flags.bits()));
    }
    if a6 > 0 {
        put_string(out, b"added6");
        put_len(out, a6 * V6_ENTRY_LEN);
        added
            .iter()
            .filter(|p| !is_v4(&p.addr))
            .for_each(|p| put_addr(out, &p.addr));
        put_string(out, b"added6.f");
        put_len(out, a6);
        added
            .iter()
            .filter(|p| !is_v4(&p.addr))
            .for_each(|p| out.put_u8(p.flags.bits()));
    }
    if d4 > 0 {
        put_string(out, b"dropped");
        put_len(out, d4 * V4_ENTRY_LEN);
        dropped
            .iter()
            .filter(|a| is_v4(a))
            .for_each(|a| put_addr(out, a));
    }
    if d6 > 0 {
        put_string(out, b"dropped6");
        put_len(out, d6 * V6_ENTRY_LEN);
        dropped
            .iter()
            .filter(|a| !is_v4(a))
            .for_each(|a| put_addr(out, a));
    }
    out.put_u8(b'e');
}

/// The bencoded ut_pex payload for these lists, in one exactly sized allocation.
///
/// See [`write_payload`] for the rules it follows.
pub fn encode_payload(added: &[Peer], dropped: &[SocketAddr]) -> Vec<u8> {
    let counts = Counts::of(added, dropped);
    let mut out = Vec::with_capacity(counts.payload_len());
    write_counted(added, dropped, counts, &mut out);
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
    let payload_len = counts.payload_len();
    let body_len = u32::try_from(payload_len + 2).expect("a PEX payload fits a u32 length");
    let mut out = Vec::with_capacity(Frame::HEADER_LEN + payload_len);
    out.put_u32(body_len);
    out.put_u8(EXTENDED_MESSAGE_ID);
    out.put_u8(extension_id);
    write_counted(added, dropped, counts, &mut out);
    Frame(Bytes::from(out))
}

fn put_len<B: BufMut + ?Sized>(out: &mut B, len: usize) {
    let mut digits = [0u8; 20];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
    out.put_u8(b':');
}

fn put_string<B: BufMut + ?Sized>(out: &mut B, s: &[u8]) {
    put_len(out, s.len());
    out.put_slice(s);
}

/// Writes a compact entry; an IPv4-mapped IPv6 address as IPv4, like
/// [`canonical_addr`](crate::canonical_addr). Each entry goes out in one `put_slice` (one
/// capacity check, one copy). Always inlined: out of line, the call and its register saves
/// cost as much as the copy.
#[inline(always)]
fn put_addr<B: BufMut + ?Sized>(out: &mut B, addr: &SocketAddr) {
    let [p0, p1] = addr.port().to_be_bytes();
    let v4 = match addr {
        SocketAddr::V4(v4) => *v4.ip(),
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => v4,
            None => {
                let mut entry = [0u8; V6_ENTRY_LEN];
                entry[..16].copy_from_slice(&v6.ip().octets());
                entry[16..].copy_from_slice(&[p0, p1]);
                out.put_slice(&entry);
                return;
            }
        },
    };
    let [a, b, c, d] = v4.octets();
    out.put_slice(&[a, b, c, d, p0, p1]);
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
        ok.extend(std::iter::repeat(b'l').take(crate::MAX_NESTING - 1));
        ok.extend(std::iter::repeat(b'e').take(crate::MAX_NESTING));
        assert_eq!(PexMessage::decode(&ok), Ok(PexMessage::default()));
    }
}
