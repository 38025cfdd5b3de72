//! The `state_ops` operation language: a [`Script`] of [`Op`]s against two `PexState`s
//! (`A` and `B`) wired together, read from fuzz bytes with `Arbitrary`. [`crate::interp`]
//! runs it.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use ut_pex::{Config, MAX_PEERS_PER_MESSAGE};

use crate::addr::Addr;

/// One of the two connected states.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first state.
    A,
    /// The second state.
    B,
}

impl Side {
    /// 0 for `A`, 1 for `B`.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}
/// A way to move the clock the operations use.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TimeStep {
    /// Not at all.
    Stay,
    /// Forward by milliseconds.
    ForwardMillis(u32),
    /// Forward by seconds (send intervals are 60 s and more).
    ForwardSecs(u16),
    /// Backwards by milliseconds (a misbehaving host).
    BackMillis(u32),
    /// Backwards by seconds.
    BackSecs(u16),
    /// Forward by any number of seconds, up to the last representable instant.
    Huge(u64),
    /// To the last representable instant: adding a send interval to it overflows.
    FarFuture,
    /// Back to the start instant.
    Base,
}

/// One operation of a [`Script`].
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// Move the clock.
    Time(TimeStep),
    /// An arbitrary extended handshake payload.
    HandshakeBytes(Side, Vec<u8>),
    /// A handshake built with `HandshakeBuilder`: `ut_pex` under `id` (`None`: not
    /// mentioned), plus another extension and a port.
    HandshakeBuilt {
        /// The receiving state.
        to: Side,
        /// The `ut_pex` id, 0 included.
        id: Option<u8>,
        /// The id of an unrelated extension.
        other: u8,
        /// `p`.
        port: Option<u16>,
    },
    /// The other state's own handshake, as its host would build it.
    HandshakeFromPeer(Side),
    /// `set_remote_extension_id`.
    SetRemoteId(Side, u8),
    /// An arbitrary ut_pex payload.
    MessageBytes(Side, Vec<u8>),
    /// A well-formed payload from `encode_payload`.
    MessageBuilt {
        /// The receiving state.
        to: Side,
        /// Added peers with their flag bytes.
        added: Vec<(Addr, u8)>,
        /// Dropped addresses.
        dropped: Vec<Addr>,
    },
    /// A well-formed payload with many generated addresses.
    MessageMany {
        /// The receiving state.
        to: Side,
        /// First generated address.
        start: u16,
        /// How many added.
        added: u8,
        /// How many dropped (from the same range).
        dropped: u8,
        /// IPv6 instead of IPv4.
        v6: bool,
    },
    /// `add_peer`.
    AddPeer(Side, Addr, u8),
    /// `add_peer` for many generated addresses.
    AddMany(Side, u16, u8, bool),
    /// `drop_peer`.
    DropPeer(Side, Addr),
    /// `drop_peer` for many generated addresses.
    DropMany(Side, u16, u8, bool),
    /// `start`.
    Start(Side),
    /// `stop`.
    Stop(Side),
    /// `reset`.
    Reset(Side),
    /// `set_remote_address`.
    SetRemoteAddress(Side, Addr),
    /// `handle_timeout` at the clock.
    Timeout(Side),
    /// Sleep until `poll_timeout` (`handle_timeout` at the deadline), then poll a frame.
    RunDeadline(Side),
    /// `poll_transmit` until `None`; frames go in flight to the other state.
    PollTransmit(Side),
    /// `poll_event`, at most this many times (0: until `None`).
    PollEvents(Side, u8),
    /// Deliver this many frames in flight to the state (`handle_message` at the clock).
    Deliver(Side, u8),
    /// Lose the frames in flight to the state.
    LoseInFlight(Side),
}

/// A config from fuzz input; every value is mapped into what `Config` accepts.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ConfigChoice {
    /// `private`.
    pub private: bool,
    /// Send interval = 60 s + this many tenths of a second.
    pub extra_interval: u16,
    /// `initial_max_peers` (0 means 1).
    pub initial_max_peers: u8,
    /// `max_entries_per_frame`, modulo 50, plus 1.
    pub max_entries_per_frame: u8,
    /// `max_remote_peers`, or the default.
    pub max_remote_peers: Option<u8>,
    /// `max_message_size`, or the default.
    pub max_message_size: Option<u16>,
    /// `flood_limit` (messages modulo 32, plus 1; window in seconds), or the default.
    pub flood: Option<(u8, u16)>,
    /// `local_extension_id` (0 keeps the default).
    pub local_extension_id: u8,
}

impl ConfigChoice {
    /// The config this chooses.
    /// The config this chooses.
    pub fn build(self) -> Config {
        let interval =
            Duration::from_secs(60) + Duration::from_millis(u64::from(self.extra_interval) * 100);
        let mut config = Config::default()
            .private(self.private)
            .initial_max_peers(usize::from(self.initial_max_peers))
            .local_extension_id(self.local_extension_id);
        config = config.clone().send_interval(interval).unwrap_or(config);
        let entries = usize::from(self.max_entries_per_frame) % MAX_PEERS_PER_MESSAGE + 1;
        config = config
            .clone()
            .max_entries_per_frame(entries)
            .unwrap_or(config);
        if let Some(cap) = self.max_remote_peers {
            config = config.max_remote_peers(usize::from(cap));
        }
        if let Some(size) = self.max_message_size {
            config = config.max_message_size(usize::from(size));
        }
        if let Some((messages, window)) = self.flood {
            let messages = usize::from(messages) % 16 + 1;
            let window = Duration::from_secs(u64::from(window));
            config = config
                .clone()
                .flood_limit(messages, window)
                .unwrap_or(config);
        }
        config
    }
}

/// The fuzz input of `state_ops`: two configs and the operations.
#[derive(Arbitrary, Debug)]
pub struct Script {
    /// Config of state A.
    pub a: ConfigChoice,
    /// Config of state B.
    pub b: ConfigChoice,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// Turns fuzz bytes into a script exactly as `fuzz_target!(|script: Script| …)` does.
pub fn script_from_bytes(data: &[u8]) -> Option<Script> {
    Script::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// Generated addresses one script may use in all, over its `AddMany`, `DropMany` and
/// `MessageMany` operations (of `state_ops` and `swarm_ops` alike): twice every bound of
/// the crate that a count of peers reaches (255 remote peers, 50 per frame, the log's
/// compaction floor of 64), and about 6 operations of 80. Without it the corpus of a long
/// run drifts to scripts of thousands of generated peers (libFuzzer keeps inputs that run
/// a loop more often), each execution then costs milliseconds, and a run never reaches
/// depth; past the bounds, more peers only repeat the same paths.
pub const BULK_BUDGET: usize = 512;

/// What is left of a script's [`BULK_BUDGET`].
#[derive(Debug, Clone, Copy)]
pub struct Bulk(usize);

impl Default for Bulk {
    fn default() -> Self {
        Self(BULK_BUDGET)
    }
}

impl Bulk {
    /// How many of the `count % 81` generated addresses an operation asks for it gets: as
    /// many as are left.
    pub fn take(&mut self, count: u8) -> u8 {
        let got = usize::from(count % 81).min(self.0);
        self.0 -= got;
        got as u8
    }
}

/// How many events a `PollEvents(max)` polls at most: `max`, or all of them for 0.
pub fn poll_limit(max: u8) -> usize {
    if max == 0 {
        usize::MAX
    } else {
        usize::from(max)
    }
}
