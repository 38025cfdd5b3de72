//! A validating, allocation-free bencode scanner shared by the message and handshake decoders.
//!
//! Why not `bt_bencode` here: its `Value` builds a `BTreeMap` and a `Vec` per container, so a
//! decode costs 7–19 allocations (see `benches/`), and PEX decoding has to be zero-allocation
//! and bounded against hostile nesting. This scanner walks the payload once, borrows every
//! string, and tracks nesting with a counter instead of recursion, so a payload of a million
//! `l` bytes costs a counter, not a stack.

use crate::error::DecodeError;

/// Containers may nest at most this deep, the top-level dictionary counting as 1.
///
/// PEX and handshake payloads need 2 (the `m` dictionary inside the top-level one); the bound
/// leaves room for unknown keys carrying nested values while refusing the deeply nested
/// payloads that exist only to exhaust a recursive parser.
pub const MAX_NESTING: usize = 32;

/// Integers (`i…e`) and string length prefixes longer than this many digits are refused
/// as [`DecodeError::LengthOverflow`]: 20 digits already reach past `u64::MAX`, and nothing
/// legitimate comes close.
const MAX_DIGITS: usize = 20;

/// One value found under a key of a dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// A byte string, borrowed.
    Bytes(&'a [u8]),
    /// An integer; `None` when it does not fit an `i128` (well-formed but unusable). An
    /// `i128` holds every `u64` (BEP 10 values such as `reqq` and `metadata_size` are
    /// unsigned) and every negative `i64`.
    Int(Option<i128>),
    /// A list (already validated; its contents are never needed).
    List,
    /// A dictionary, as its raw encoding (`d…e`), already validated.
    Dict(&'a [u8]),
}

/// A cursor over the `(key, value)` entries of the dictionary that makes up all of an input.
///
/// One pass: entries come out before a later structural error is found, so callers only
/// record what they see and drop it on `Err`. Keys out of order and duplicate keys are
/// accepted (liberal in what we accept) and come out in wire order.
///
/// A cursor rather than a callback, so a caller can try the keys it expects before reading a
/// key generically ([`skip_key`](Self::skip_key)), and keeps what it records in its own
/// locals.
pub(crate) struct Entries<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Entries<'a> {
    /// Starts at the dictionary that must make up all of `input`.
    #[inline]
    pub(crate) fn new(input: &'a [u8]) -> Result<Self, DecodeError> {
        if input.first() != Some(&b'd') {
            return Err(not_a_dict(input));
        }
        Ok(Self { input, pos: 1 })
    }

    /// The next entry; `Ok(None)` at the dictionary's `e` when nothing follows it.
    #[inline]
    pub(crate) fn next_entry(&mut self) -> Result<Option<(&'a [u8], Item<'a>)>, DecodeError> {
        let Some(key) = self.next_key()? else {
            return Ok(None);
        };
        Ok(Some((key, self.value()?)))
    }

    /// The next key; `Ok(None)` at the dictionary's `e` when nothing follows it. Read its
    /// value with [`value`](Self::value) before the next key.
    #[inline]
    pub(crate) fn next_key(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let pos = self.pos;
        match self.input.get(pos) {
            Some(b'0'..=b'9') => {}
            Some(b'e') if pos + 1 == self.input.len() => return Ok(None),
            Some(b'e') => return Err(DecodeError::TrailingBytes { offset: pos + 1 }),
            Some(_) => return Err(DecodeError::Invalid { offset: pos }),
            None => return Err(DecodeError::UnexpectedEnd),
        }
        let (key, after_key) = read_bytes(self.input, pos)?;
        self.pos = after_key;
        Ok(Some(key))
    }

    /// Steps past the next key if it is `encoded` (the key with its length prefix, such as
    /// `b"5:added"`); then read its value with [`value`](Self::value).
    ///
    /// For callers that know which keys to expect. One comparison of the whole encoding, and
    /// the value's offset follows from the branch taken rather than from the length digits
    /// just loaded: the CPU runs ahead on its prediction instead of waiting for the load.
    #[inline]
    pub(crate) fn skip_key(&mut self, encoded: &[u8]) -> bool {
        let found = self
            .input
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(encoded));
        if found {
            self.pos += encoded.len();
        }
        found
    }

    /// The value after the key just read. Byte strings, the only kind a ut_pex payload
    /// carries, take the short path; other values go through [`other_value`].
    #[inline]
    pub(crate) fn value(&mut self) -> Result<Item<'a>, DecodeError> {
        let (item, end) = match self.input.get(self.pos) {
            Some(b'0'..=b'9') => {
                let (bytes, end) = read_bytes(self.input, self.pos)?;
                (Item::Bytes(bytes), end)
            }
            _ => other_value(self.input, self.pos)?,
        };
        self.pos = end;
        Ok(item)
    }
}

/// The error for an input that does not start a dictionary: valid bencode of another type is
/// "not a dict"; anything else is not bencode.
#[cold]
#[inline(never)]
fn not_a_dict(input: &[u8]) -> DecodeError {
    match skip_value(input, 0, MAX_NESTING) {
        Ok(_) => DecodeError::NotADict,
        Err(error) => error,
    }
}

/// A dictionary value that is not a byte string, starting at `pos`: `(item, offset past it)`.
///
/// Inlined: returned through memory, its result (an `i128` inside) was read back with a
/// stall that cost more than the call.
#[inline]
fn other_value(input: &[u8], pos: usize) -> Result<(Item<'_>, usize), DecodeError> {
    match input.get(pos) {
        None => Err(DecodeError::UnexpectedEnd),
        Some(b'i') => {
            let end = skip_int(input, pos)?;
            Ok((Item::Int(parse_int(&input[pos + 1..end - 1])), end))
        }
        Some(b'l') => Ok((Item::List, skip_value(input, pos, MAX_NESTING - 1)?)),
        Some(b'd') => {
            let end = skip_value(input, pos, MAX_NESTING - 1)?;
            Ok((Item::Dict(&input[pos..end]), end))
        }
        Some(_) => Err(DecodeError::Invalid { offset: pos }),
    }
}

/// Returns the offset just past the bencoded value starting at `start`.
///
/// Iterative: `depth` counts the open containers, refused past `limit`, so hostile nesting
/// is bounded by [`MAX_NESTING`], never by the call stack. Which open containers are
/// dictionaries is one bit each in `dicts` (bit `n` for depth `n + 1`).
fn skip_value(input: &[u8], start: usize, limit: usize) -> Result<usize, DecodeError> {
    const _: () = assert!(MAX_NESTING <= u64::BITS as usize);
    let mut dicts: u64 = 0;
    let mut depth = 0usize;
    // Whether the innermost open container is a dictionary waiting for a key (or its `e`).
    let mut want_key = false;
    let mut pos = start;
    // Tests in order of frequency rather than one `match` on the byte, which compiled to a
    // jump table indexed by the byte just loaded (measured: decoding the `unknown` bench
    // payload, whose nested dictionary this skips, 5% faster).
    loop {
        let byte = *input.get(pos).ok_or(DecodeError::UnexpectedEnd)?;
        if byte.is_ascii_digit() {
            // One-byte strings (single-letter keys) are the commonest token in skipped values.
            // Taking them on a branch of their own lets the CPU move on to `pos + 3` as soon as
            // it predicts the branch, instead of waiting for the length digit to load.
            pos = if byte == b'1' && input.get(pos + 1) == Some(&b':') && pos + 3 <= input.len() {
                pos + 3
            } else {
                read_bytes(input, pos)?.1
            };
            if want_key {
                // A key was read; its value comes next.
                want_key = false;
                continue;
            }
        } else if byte == b'e' {
            // `e` closes a list, or a dictionary between entries (`want_key`).
            if depth == 0 || !(want_key || dicts & (1 << (depth - 1)) == 0) {
                return Err(DecodeError::Invalid { offset: pos });
            }
            depth -= 1;
            dicts &= !(1 << depth);
            pos += 1;
        } else if want_key {
            // Dictionary keys must be byte strings.
            return Err(DecodeError::Invalid { offset: pos });
        } else if byte == b'l' || byte == b'd' {
            if depth == limit {
                return Err(DecodeError::TooDeep { offset: pos });
            }
            let is_dict = byte == b'd';
            dicts |= u64::from(is_dict) << depth;
            depth += 1;
            want_key = is_dict;
            pos += 1;
            continue;
        } else if byte == b'i' {
            pos = skip_int(input, pos)?;
        } else {
            return Err(DecodeError::Invalid { offset: pos });
        }
        // A value (scalar or whole container) just ended.
        if depth == 0 {
            return Ok(pos);
        }
        want_key = dicts & (1 << (depth - 1)) != 0;
    }
}

/// Returns `(string, offset past it)` for the byte string starting at `pos`.
///
/// Inlined for its fast path, a length of one or two digits (every ut_pex and handshake key,
/// every empty value, lists of up to 16 IPv4 peers); longer prefixes go to [`read_long_bytes`].
#[inline(always)]
fn read_bytes(input: &[u8], pos: usize) -> Result<(&[u8], usize), DecodeError> {
    let (len, data_start) = match input.get(pos..pos.wrapping_add(3)) {
        Some(&[d @ b'0'..=b'9', b':', _]) => (usize::from(d - b'0'), pos + 2),
        Some(&[d0 @ b'1'..=b'9', d1 @ b'0'..=b'9', b':']) => (
            usize::from(d0 - b'0') * 10 + usize::from(d1 - b'0'),
            pos + 3,
        ),
        _ => return read_long_bytes(input, pos),
    };
    let data_end = data_start + len;
    let data = input
        .get(data_start..data_end)
        .ok_or(DecodeError::UnexpectedEnd)?;
    Ok((data, data_end))
}

/// [`read_bytes`] for any length prefix, with every check.
#[inline(never)]
fn read_long_bytes(input: &[u8], pos: usize) -> Result<(&[u8], usize), DecodeError> {
    let prefix = input.get(pos..).unwrap_or_default();
    // Up to 19 digits cannot overflow a u64 (10^19 - 1 < 2^64), so the loop needs no
    // overflow check; only a 20th digit takes the checked path.
    let mut len: u64 = 0;
    let mut digits = 0;
    loop {
        match prefix.get(digits) {
            Some(&byte @ b'0'..=b'9') => {
                let digit = u64::from(byte - b'0');
                len = if digits < MAX_DIGITS - 1 {
                    len * 10 + digit
                } else if digits == MAX_DIGITS - 1 {
                    len.checked_mul(10)
                        .and_then(|l| l.checked_add(digit))
                        .ok_or(DecodeError::LengthOverflow { offset: pos })?
                } else {
                    return Err(DecodeError::LengthOverflow { offset: pos });
                };
                digits += 1;
            }
            Some(b':') if digits > 0 => break,
            Some(_) => {
                return Err(DecodeError::Invalid {
                    offset: pos + digits,
                })
            }
            None => return Err(DecodeError::UnexpectedEnd),
        }
    }
    let len = usize::try_from(len).map_err(|_| DecodeError::LengthOverflow { offset: pos })?;
    let data_start = pos + digits + 1;
    let data_end = data_start
        .checked_add(len)
        .ok_or(DecodeError::LengthOverflow { offset: pos })?;
    let data = input
        .get(data_start..data_end)
        .ok_or(DecodeError::UnexpectedEnd)?;
    Ok((data, data_end))
}

/// Returns the offset past the integer `i…e` starting at `pos`.
#[inline]
fn skip_int(input: &[u8], pos: usize) -> Result<usize, DecodeError> {
    let mut i = pos + 1;
    if input.get(i) == Some(&b'-') {
        i += 1;
    }
    let digits_start = i;
    while let Some(byte) = input.get(i) {
        match byte {
            b'0'..=b'9' => {
                if i - digits_start >= MAX_DIGITS {
                    return Err(DecodeError::LengthOverflow { offset: pos });
                }
                i += 1;
            }
            b'e' if i > digits_start => return Ok(i + 1),
            _ => return Err(DecodeError::Invalid { offset: i }),
        }
    }
    Err(DecodeError::UnexpectedEnd)
}

/// Parses the digits of an already validated integer; `None` if it does not fit an `i128`.
fn parse_int(digits: &[u8]) -> Option<i128> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    let mut value: i128 = 0;
    for &d in digits {
        let d = i128::from(d - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(d)?
        } else {
            value.checked_add(d)?
        };
    }
    Some(value)
}
