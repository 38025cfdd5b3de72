//! Error types: [`DecodeError`] from the codecs, [`MessageError`] and [`HandshakeError`]
//! from the handlers of [`PexState`](crate::PexState) and [`Swarm`](crate::Swarm), and
//! [`ConfigError`] from [`Config`](crate::Config).

use std::fmt;

/// Why a payload could not be used at all.
///
/// Only payloads that are not usable produce one: the decoders accept everything real
/// clients send (see [`PexMessage::decode`](crate::PexMessage::decode) for the liberal rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload ended inside a value (or was empty).
    UnexpectedEnd,
    /// A byte that cannot start or continue a bencode value at this offset, including a
    /// dictionary key that is not a byte string.
    Invalid {
        /// Offset of the offending byte in the payload.
        offset: usize,
    },
    /// Valid bencode whose top level is not a dictionary (BEP 11: "The PEX message payload
    /// is a bencoded dictionary").
    NotADict,
    /// Bytes follow the top-level dictionary.
    TrailingBytes {
        /// Offset of the first byte after the dictionary.
        offset: usize,
    },
    /// Containers nest deeper than [`MAX_NESTING`](crate::message::MAX_NESTING).
    TooDeep {
        /// Offset of the container that went one level too deep.
        offset: usize,
    },
    /// A string length or integer with more digits than any real payload needs, or one
    /// that overflows the address space.
    LengthOverflow {
        /// Offset of the length prefix or integer.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd => f.write_str("bencode ended unexpectedly"),
            Self::Invalid { offset } => write!(f, "invalid bencode at byte {offset}"),
            Self::NotADict => f.write_str("top level is not a bencoded dictionary"),
            Self::TrailingBytes { offset } => {
                write!(f, "trailing bytes after the dictionary at byte {offset}")
            }
            Self::TooDeep { offset } => write!(
                f,
                "bencode nested deeper than {} levels at byte {offset}",
                crate::bencode::MAX_NESTING
            ),
            Self::LengthOverflow { offset } => {
                write!(f, "length or integer too large at byte {offset}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why `handle_message` of [`PexState`](crate::PexState::handle_message) or
/// [`Swarm`](crate::Swarm::handle_message) refused a ut_pex message. The state is left
/// exactly as it was (only the error counter in
/// [`Stats`](crate::Stats) moves); whether to disconnect is the host's decision — BEP 11:
/// "Clients may disconnect peers that egregiously violate these constraints."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageError {
    /// The payload is larger than [`Config::max_message_size`](crate::Config::max_message_size).
    TooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The payload is not a usable bencoded dictionary.
    Decode(DecodeError),
    /// A flood: more than [`Config::flood_limit`](crate::Config::flood_limit) messages
    /// arrived within its window (libtorrent's rule: the 7th message within 60 s).
    ///
    /// Senders are held to one message per minute, but the receiving threshold is looser on
    /// purpose: the PEX conventions BEP 11 grew from ask that "there should be some tolerance
    /// to clients that send a PEX message just under a minute since the last", and BEP 11
    /// only allows acting on egregious cases: "Clients may disconnect peers that egregiously
    /// violate these constraints."
    TooFrequent {
        /// Messages accepted within the window before this one.
        accepted: usize,
        /// The window.
        window: std::time::Duration,
    },
}

impl MessageError {
    /// A stable snake_case name for logs and metrics (`too_large`, `decode`, `too_frequent`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Decode(_) => "decode",
            Self::TooFrequent { .. } => "too_frequent",
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, limit } => {
                write!(
                    f,
                    "ut_pex message of {size} bytes exceeds the {limit}-byte limit"
                )
            }
            Self::Decode(e) => write!(f, "invalid ut_pex message: {e}"),
            Self::TooFrequent { accepted, window } => write!(
                f,
                "ut_pex messages too frequent: {accepted} already accepted within {window:?}"
            ),
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Decode(e) => Some(e),
            _ => None,
        }
    }
}

/// Why `handle_extended_handshake` of
/// [`PexState`](crate::PexState::handle_extended_handshake) or
/// [`Swarm`](crate::Swarm::handle_extended_handshake) refused a handshake payload; the state
/// is left as it was, but for [`Stats::errors_handshake`](crate::Stats::errors_handshake).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The payload is not a usable bencoded dictionary.
    Decode(DecodeError),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "invalid extended handshake: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Decode(e) => Some(e),
        }
    }
}

/// A [`Config`](crate::Config) setting that was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// A send interval under 60 s: BEP 11 allows at most one message per minute, and the JS
    /// module disconnects peers whose messages arrive less than 60.000 s apart.
    SendIntervalTooShort,
    /// A flood limit of 0 messages, or more than 16.
    FloodLimitOutOfRange,
    /// A per-frame entry limit of 0 or above BEP 11's 50.
    FrameLimitOutOfRange,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SendIntervalTooShort => "send interval must be at least 60 s",
            Self::FloodLimitOutOfRange => "flood limit must be between 1 and 16 messages",
            Self::FrameLimitOutOfRange => "per-frame entry limit must be between 1 and 50",
        })
    }
}

impl std::error::Error for ConfigError {}
