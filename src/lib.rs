#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

mod bencode;
mod book;
mod codec;
mod config;
mod error;
mod event;
mod flags;
pub mod handshake;
mod inbound;
mod state;
mod stats;
mod swarm;
mod timeline;

/// The ut_pex wire format for hosts with their own framer: encoders, entry sizes, limits.
///
/// BEP 11: "The PEX message payload is a bencoded dictionary with the following keys:
/// `added`, `added.f`, `added6`, `added6.f`, `dropped`, `dropped6`". Decoding is
/// [`PexMessage::decode`](crate::PexMessage::decode); a whole peer-wire message is a
/// [`Frame`] (both at the crate root).
pub mod message {
    pub use crate::bencode::MAX_NESTING;
    pub use crate::codec::{
        encode_frame, encode_payload, encoded_len, write_payload, EXTENDED_MESSAGE_ID,
        V4_ENTRY_LEN, V6_ENTRY_LEN,
    };
}

pub use book::{
    bep40_priority, Admission, BookConfig, PeerBook, Refusal, Source, MIXED_FAMILY_PRIORITY,
};
pub use codec::{Frame, PexMessage};
pub use config::{Config, MAX_PEERS_PER_MESSAGE, MIN_SEND_INTERVAL};
pub use error::{ConfigError, DecodeError, HandshakeError, MessageError};
pub use event::Event;
pub use flags::{canonical_addr, Peer, PeerFlags};
pub use state::PexState;
pub use stats::Stats;
pub use swarm::{
    ConnectionId, Direction, DisconnectReason, Swarm, MAX_LINGERING, UNDERPOPULATED_BELOW,
};
