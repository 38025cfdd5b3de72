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
    /// A list, as its raw encoding (`l…e`), already validated.
    List,
    /// A dictionary, as its raw encoding (`d…e`), already validated.
    Dict(&'a [u8]),
}

/// Calls `f` with every `(key, value)` of the dictionary that makes up all of `input`.
///
/// One pass: `f` may see entries before a later structural error is found, so callers only
/// record what they see and drop it on `Err`. Keys out of order and duplicate keys are
/// accepted (liberal in what we accept); `f` sees them in wire order.
pub(crate) fn for_each_entry<'a>(
    input: &'a [u8],
    mut f: impl FnMut(&'a [u8], Item<'a>),
) -> Result<(), DecodeError> {
    if input.first() != Some(&b'd') {
        // Valid bencode of another type is "not a dict"; anything else is not bencode.
        skip_value(input, 0, MAX_NESTING)?;
        return Err(DecodeError::NotADict);
    }
    let mut pos = 1;
    loop {
        match input.get(pos) {
            None => return Err(DecodeError::UnexpectedEnd),
            Some(b'e') => break,
            Some(b'0'..=b'9') => {}
            Some(_) => return Err(DecodeError::Invalid { offset: pos }),
        }
        let (key, after_key) = read_bytes(input, pos)?;
        let (item, value_end) = match input.get(after_key) {
            None => return Err(DecodeError::UnexpectedEnd),
            Some(b'0'..=b'9') => {
                let (bytes, end) = read_bytes(input, after_key)?;
                (Item::Bytes(bytes), end)
            }
            Some(b'i') => {
                let end = skip_int(input, after_key)?;
                (Item::Int(parse_int(&input[after_key + 1..end - 1])), end)
            }
            Some(b'l') => (Item::List, skip_value(input, after_key, MAX_NESTING - 1)?),
            Some(b'd') => {
                let end = skip_value(input, after_key, MAX_NESTING - 1)?;
                (Item::Dict(&input[after_key..end]), end)
            }
            Some(_) => return Err(DecodeError::Invalid { offset: after_key }),
        };
        f(key, item);
        pos = value_end;
    }
    let end = pos + 1;
    if end != input.len() {
        return Err(DecodeError::TrailingBytes { offset: end });
    }
    Ok(())
}

/// Returns the offset just past the bencoded value starting at `start`.
///
/// Iterative: `depth` counts the open containers, refused past `limit`, so hostile nesting
/// is bounded by [`MAX_NESTING`], never by the call stack.
fn skip_value(input: &[u8], start: usize, limit: usize) -> Result<usize, DecodeError> {
    let mut is_dict = [false; MAX_NESTING];
    // For each open dict: whether a key (or the closing `e`) comes next.
    let mut want_key = [false; MAX_NESTING];
    let mut depth = 0usize;
    let mut pos = start;
    loop {
        let byte = *input.get(pos).ok_or(DecodeError::UnexpectedEnd)?;
        if depth > 0 && want_key[depth - 1] {
            match byte {
                b'e' => {
                    depth -= 1;
                    pos += 1;
                }
                b'0'..=b'9' => {
                    pos = read_bytes(input, pos)?.1;
                    want_key[depth - 1] = false;
                    continue;
                }
                // Dictionary keys must be byte strings.
                _ => return Err(DecodeError::Invalid { offset: pos }),
            }
        } else {
            match byte {
                b'i' => pos = skip_int(input, pos)?,
                b'0'..=b'9' => pos = read_bytes(input, pos)?.1,
                b'l' | b'd' => {
                    if depth == limit {
                        return Err(DecodeError::TooDeep { offset: pos });
                    }
                    is_dict[depth] = byte == b'd';
                    want_key[depth] = byte == b'd';
                    depth += 1;
                    pos += 1;
                    continue;
                }
                b'e' if depth > 0 && !is_dict[depth - 1] => {
                    depth -= 1;
                    pos += 1;
                }
                _ => return Err(DecodeError::Invalid { offset: pos }),
            }
        }
        // A value (scalar or whole container) just ended.
        if depth == 0 {
            return Ok(pos);
        }
        if is_dict[depth - 1] {
            want_key[depth - 1] = true;
        }
    }
}

/// Returns `(string, offset past it)` for the byte string starting at `pos`.
#[inline]
fn read_bytes(input: &[u8], pos: usize) -> Result<(&[u8], usize), DecodeError> {
    // Fast path for the most common case, a one-digit length (every ut_pex and handshake
    // key, every empty value): no loop.
    if let Some(&[digit @ b'0'..=b'9', b':']) = input.get(pos..pos.wrapping_add(2)) {
        let data_start = pos + 2;
        let data_end = data_start + usize::from(digit - b'0');
        let data = input
            .get(data_start..data_end)
            .ok_or(DecodeError::UnexpectedEnd)?;
        return Ok((data, data_end));
    }
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
