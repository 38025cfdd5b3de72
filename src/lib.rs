#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

mod bencode;
mod config;
mod error;
mod event;
mod flags;
pub mod handshake;
mod inbound;
pub mod message;
mod state;
mod stats;
mod swarm;
mod timeline;

pub use bencode::MAX_NESTING;
pub use config::{Config, FLOOD_SLOTS, MAX_DELTA, MIN_SEND_INTERVAL};
pub use error::{ConfigError, DecodeError, HandshakeError, MessageError};
pub use event::Event;
pub use flags::{canonical_addr, Peer, PeerFlags};
pub use message::{Frame, PexMessage};
pub use state::PexState;
pub use stats::Stats;
pub use swarm::{ConnectionId, Direction, DisconnectReason, Swarm, MAX_HELD, UNDERPOPULATED};
