//! A reference bencode parser: recursive, allocating, written for obviousness, not speed.
//! It applies the crate's documented limits (nesting, digit counts) so that it accepts
//! exactly what the crate's scanner should. It is the one independent decoder of this
//! repository: the fuzz checks, the property tests and the scenario tests' frame decoder
//! ([`decode_frame`]) all read through it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ut_pex::message::MAX_NESTING;
use ut_pex::{DecodeError, Frame, Peer, PeerFlags};

use crate::ensure;
use crate::Check;

/// Length prefixes and integers may have at most this many digits (the crate's rule).
const MAX_DIGITS: usize = 20;

/// A bencode value as the reference reads it.
#[derive(Debug)]
pub enum RefValue<'a> {
    /// A byte string.
    Bytes(&'a [u8]),
    /// An integer (at most 20 digits, so it always fits; `Option` for the callers' sake:
    /// the crate takes `e: 99999999999999999999` as a non-zero integer, not as absent).
    Int(Option<i128>),
    /// A list (its items are checked, not kept).
    List,
    /// A dictionary, its entries in input order.
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

    fn int(&mut self) -> Option<Option<i128>> {
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
        Some(Some(value))
    }
}

/// What the reference parser makes of a whole payload.
#[derive(Debug)]
pub enum RefTop<'a> {
    /// A dictionary covering the whole input.
    Dict(Vec<(&'a [u8], RefValue<'a>)>),
    /// A valid value of another type first (the rest is not looked at).
    NotADict,
    /// Anything else.
    Invalid,
}

/// Parses a whole payload.
pub fn reference_top(input: &[u8]) -> RefTop<'_> {
    let mut parser = RefParser { input, pos: 0 };
    match parser.value(1) {
        Some(RefValue::Dict(entries)) if parser.pos == input.len() => RefTop::Dict(entries),
        Some(RefValue::Dict(_)) | None => RefTop::Invalid,
        Some(_) => RefTop::NotADict,
    }
}

/// Compares a decoder's `Result` on `input` with the reference parser's verdict; an error
/// must also point inside the input and say something.
pub fn compare_verdict<T>(decoded: &Result<T, DecodeError>, input: &[u8]) -> Check {
    if let Err(error) = decoded {
        check_error_offset(error, input)?;
    }
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

/// An error's offset, where it has one, is inside the input; its message is not empty.
fn check_error_offset(error: &DecodeError, input: &[u8]) -> Check {
    let offset = match *error {
        DecodeError::Invalid { offset }
        | DecodeError::TrailingBytes { offset }
        | DecodeError::TooDeep { offset }
        | DecodeError::LengthOverflow { offset } => Some(offset),
        _ => None,
    };
    ensure!(
        offset.map_or(true, |offset| offset < input.len()),
        "{error:?} points past the {}-byte input",
        input.len()
    );
    ensure!(!error.to_string().is_empty(), "{error:?} has no message");
    Ok(())
}

/// The compact entries of one string, with their flag bytes (0 past the flag string).
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

/// One compact entry (6 bytes: IPv4, 18: IPv6) as an address.
pub fn addr_from_compact(entry: &[u8]) -> SocketAddr {
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
pub fn reference_pex_lists(entries: &[(&[u8], RefValue<'_>)]) -> (Vec<Peer>, Vec<SocketAddr>) {
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

/// A frame decoded by the reference: header checked, payload parsed by [`reference_top`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The extension id in the header.
    pub ext_id: u8,
    /// The payload's keys, sorted.
    pub keys: Vec<String>,
    /// `added` then `added6`, each with its flag byte (`None` if its flag string is short).
    pub added: Vec<(SocketAddr, Option<u8>)>,
    /// `dropped` then `dropped6`.
    pub dropped: Vec<SocketAddr>,
    /// Byte lengths: `added`, `added.f`, `added6`, `added6.f` (0 when absent).
    pub lens: [usize; 4],
}

impl Decoded {
    /// The added addresses.
    pub fn added_addrs(&self) -> Vec<SocketAddr> {
        self.added.iter().map(|(a, _)| *a).collect()
    }
}

/// Decodes a whole frame with the reference parser; panics on anything a sender must not
/// produce (bad header, not a dictionary, a ut_pex key that is not a string, a partial
/// entry).
pub fn decode_frame(frame: &Frame) -> Decoded {
    let bytes = frame.as_bytes();
    assert!(
        bytes.len() >= Frame::HEADER_LEN,
        "frame shorter than its header"
    );
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    assert_eq!(len, bytes.len() - 4, "length prefix");
    assert_eq!(bytes[4], 20, "extended message id");
    let RefTop::Dict(entries) = reference_top(&bytes[Frame::HEADER_LEN..]) else {
        panic!("payload is not a bencoded dictionary")
    };
    let mut dict: BTreeMap<&[u8], &RefValue<'_>> = BTreeMap::new();
    for (key, value) in &entries {
        dict.insert(key, value);
    }
    let get = |key: &str| -> &[u8] {
        match dict.get(key.as_bytes()) {
            Some(RefValue::Bytes(s)) => s,
            Some(_) => panic!("{key} is not a byte string"),
            None => &[],
        }
    };
    let keys = dict
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let (added, added_f, added6, added6_f) =
        (get("added"), get("added.f"), get("added6"), get("added6.f"));
    let (dropped, dropped6) = (get("dropped"), get("dropped6"));
    for (key, s, unit) in [
        ("added", added, 6),
        ("added6", added6, 18),
        ("dropped", dropped, 6),
        ("dropped6", dropped6, 18),
    ] {
        assert_eq!(s.len() % unit, 0, "{key} has a partial entry");
    }
    let mut out = Vec::new();
    for (i, e) in added.chunks(6).enumerate() {
        out.push((addr_from_compact(e), added_f.get(i).copied()));
    }
    for (i, e) in added6.chunks(18).enumerate() {
        out.push((addr_from_compact(e), added6_f.get(i).copied()));
    }
    let mut gone: Vec<SocketAddr> = dropped.chunks(6).map(addr_from_compact).collect();
    gone.extend(dropped6.chunks(18).map(addr_from_compact));
    Decoded {
        ext_id: bytes[5],
        keys,
        added: out,
        dropped: gone,
        lens: [added.len(), added_f.len(), added6.len(), added6_f.len()],
    }
}
