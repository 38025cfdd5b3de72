//! The ut_pex message codec: decode a payload into a borrowed [`PexMessage`], encode peer
//! lists into a payload or a whole peer-wire [`Frame`].
//!
//! BEP 11: "The PEX message payload is a bencoded dictionary with the following keys:
//! `added`, `added.f`, `added6`, `added6.f`, `dropped`, `dropped6`" — IPv4 entries in compact
//! form (4 address bytes, 2 port bytes, big-endian), IPv6 entries 16 + 2 bytes, and one flag
//! byte per added entry. (The BEP says `dropped` is "IPv6 compact format"; that is a typo:
//! every client reads and writes it as IPv4, and so does this crate.)

mod chunk;
mod decode;
mod encode;
mod frame;
mod repeat;

pub(crate) use chunk::FrameChunk;
pub use decode::PexMessage;
pub use encode::{encode_frame, encode_payload, encoded_len, write_payload};
pub use frame::Frame;

/// Bytes of one compact IPv4 entry.
pub const V4_ENTRY_LEN: usize = 6;
/// Bytes of one compact IPv6 entry.
pub const V6_ENTRY_LEN: usize = 18;

/// The BEP 10 message id of extended messages.
pub const EXTENDED_MESSAGE_ID: u8 = 20;
