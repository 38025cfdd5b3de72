//! Encoding: peer lists into a ut_pex payload or a whole [`Frame`], in one pass.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BytesMut;

use super::{Frame, EXTENDED_MESSAGE_ID, V4_ENTRY_LEN, V6_ENTRY_LEN};
use crate::addr::{canonical_addr, Family};
use crate::peer::Peer;

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
        match canonical_addr(*addr) {
            SocketAddr::V4(v4) => Self::V4(*v4.ip(), v4.port()),
            SocketAddr::V6(v6) => Self::V6(*v6.ip(), v6.port()),
        }
    }

    #[inline(always)]
    fn is_v4(addr: &SocketAddr) -> bool {
        Family::of(addr) == Family::V4
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
    Frame::from_vec(out)
}

/// Appends the frame [`encode_frame`] builds for these lists to `out`, the same bytes. When
/// `out` lacks the room, it reserves at least `min_room` bytes (a chunk's worth), so that
/// the next frames fit too.
pub(super) fn encode_frame_into(
    out: &mut BytesMut,
    min_room: usize,
    extension_id: u8,
    added: &[Peer],
    dropped: &[SocketAddr],
) {
    let counts = Counts::of(added, dropped);
    let len = counts.payload_len();
    let need = Frame::HEADER_LEN + len;
    if out.capacity() - out.len() < need {
        out.reserve(need.max(min_room));
    }
    let body_len = u32::try_from(len + 2).expect("a PEX payload fits a u32 length");
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&[EXTENDED_MESSAGE_ID, extension_id]);
    let start = out.len();
    out.resize(start + len, 0);
    fill(&mut out[start..], added, dropped, counts);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::PeerFlags;

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
}
