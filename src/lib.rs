#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]
#![doc = include_str!("../docs/spec-compliance.md")]

mod addr;
mod bencode;
mod book;
mod claims;
mod codec;
mod config;
mod conn;
mod error;
mod event;
mod flood;
mod grow;
pub mod handshake;
mod inbound;
mod live;
mod peer;
mod schedule;
mod slots;
mod state;
mod stats;
mod swarm;
mod timeline;
mod timers;

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

pub use addr::canonical_addr;
pub use book::{
    bep40_priority, Admission, BookConfig, PeerBook, Refusal, Source, MIXED_FAMILY_PRIORITY,
};
pub use codec::{Frame, PexMessage};
pub use config::{Config, MAX_PEERS_PER_MESSAGE, MIN_SEND_INTERVAL};
pub use error::{ConfigError, DecodeError, HandshakeError, MessageError};
pub use event::Event;
pub use live::{DisconnectReason, MAX_LINGERING, UNDERPOPULATED_BELOW};
pub use peer::{Peer, PeerFlags};
pub use slots::ConnectionId;
pub use state::PexState;
pub use stats::Stats;
pub use swarm::{Direction, Swarm};
