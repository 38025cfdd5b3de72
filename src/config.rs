//! [`Config`]: the knobs of PEX for a [`PexState`](crate::PexState) or a
//! [`Swarm`](crate::Swarm), with defaults that real clients accept.

use std::time::Duration;

use crate::error::ConfigError;

/// The most entries a non-initial message may carry in `added` (and, separately, `dropped`).
///
/// BEP 11: "Except for the initial PEX message the combined amount of added v4/v6 contacts
/// should not exceed 50 entries. The same applies to dropped entries."
pub const MAX_PEERS_PER_MESSAGE: usize = 50;

/// The most messages [`Config::flood_limit`] may allow per window: the flood window keeps one
/// timestamp per accepted message in a fixed array of this size.
pub(crate) const FLOOD_SLOTS: usize = 16;

/// The shortest send interval [`Config::send_interval`] accepts.
pub const MIN_SEND_INTERVAL: Duration = Duration::from_secs(60);

/// The smallest [`Config::max_message_size`]: `de`, the empty dictionary transmission 4.1
/// sends, must always fit.
const MIN_MESSAGE_SIZE: usize = 2;

/// Settings of PEX, shared by every connection of a [`Swarm`](crate::Swarm) or owned by one
/// [`PexState`](crate::PexState). `Config::default()` is what most hosts want.
///
/// Every field has a by-value setter named after it and a `get_` getter. Setters whose value
/// can be out of range return `Result`; the ranges are checked in one place, so a `Config`
/// that exists is always valid.
///
/// ```
/// use std::time::Duration;
/// use ut_pex::Config;
/// let config = Config::default()
///     .max_remote_peers(100)
///     .send_interval(Duration::from_secs(90))
///     .unwrap();
/// assert_eq!(config.get_send_interval(), Duration::from_secs(90));
/// assert_eq!(config.get_max_remote_peers(), 100);
/// assert!(Config::default().send_interval(Duration::from_secs(59)).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) send_interval: Duration,
    // Counts are stored in the smallest type their range allows (a `PexState` carries its
    // own `Config`): the setters take `usize` and saturate, the getters give `usize` back.
    pub(crate) initial_max_peers: u32,
    pub(crate) max_entries_per_frame: u8,
    pub(crate) max_remote_peers: u32,
    pub(crate) max_message_size: u32,
    pub(crate) flood_messages: u8,
    pub(crate) flood_window: Duration,
    pub(crate) private: bool,
    pub(crate) local_extension_id: u8,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // "just over one minute", as the JS module: receivers that enforce 60 s exactly
            // (the JS module itself) must never see two frames closer than that.
            send_interval: Duration::from_secs(65),
            initial_max_peers: MAX_PEERS_PER_MESSAGE as u32,
            max_entries_per_frame: MAX_PEERS_PER_MESSAGE as u8,
            max_remote_peers: 200,
            max_message_size: 64 * 1024,
            // libtorrent's rule: the 7th message within 60 s is a flood.
            flood_messages: 6,
            flood_window: Duration::from_secs(60),
            private: false,
            local_extension_id: 1,
        }
    }
}

impl Config {
    /// The least time between two frames sent to one peer (default 65 s). Refuses anything
    /// under [`MIN_SEND_INTERVAL`] (60 s). BEP 11: "Clients must batch updates to send no
    /// more than 1 PEX message per minute."
    pub fn send_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        self.send_interval = interval;
        self.checked()
    }

    /// The most peers in the first frame (default 50; at least 1: 0 counts as 1). BEP 11
    /// exempts the initial message from the 50-entry limit; peers beyond the cap follow in
    /// later frames.
    pub fn initial_max_peers(mut self, peers: usize) -> Self {
        self.initial_max_peers = saturate(peers.max(1));
        self
    }

    /// The most `added` and the most `dropped` entries in a non-initial frame, counting IPv4
    /// and IPv6 together: 1 ..= [`MAX_PEERS_PER_MESSAGE`] (default 50).
    pub fn max_entries_per_frame(mut self, entries: usize) -> Result<Self, ConfigError> {
        self.max_entries_per_frame = u8::try_from(entries).unwrap_or(u8::MAX);
        self.checked()
    }

    /// The most peers remembered as claimed by the remote of one connection (default 200, as
    /// uTorrent stores; libtorrent keeps 50). Entries beyond it are ignored and counted in
    /// [`Stats::ignored_over_cap`](crate::Stats::ignored_over_cap).
    pub fn max_remote_peers(mut self, peers: usize) -> Self {
        self.max_remote_peers = saturate(peers);
        self
    }

    /// The largest ut_pex payload accepted, in bytes (default 64 KiB; libtorrent disconnects
    /// over 500 KiB; at least 2 bytes, `de`: smaller values count as 2). A full message of
    /// 50 added and 50 dropped entries is 694 bytes in IPv4 and 1,897 in IPv6.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = saturate(bytes.max(MIN_MESSAGE_SIZE));
        self
    }

    /// Flood detection: more than `messages` accepted messages within `window` makes the next
    /// one a [`MessageError::TooFrequent`](crate::MessageError::TooFrequent). The default,
    /// 6 per 60 s, is libtorrent's, and tolerates honest senders: libtorrent's own gaps
    /// measure 59.97 s, and transmission and anacrolix send an extra message after a
    /// re-handshake. `messages` must be 1 ..= 16.
    pub fn flood_limit(mut self, messages: usize, window: Duration) -> Result<Self, ConfigError> {
        self.flood_messages = u8::try_from(messages).unwrap_or(u8::MAX);
        self.flood_window = window;
        self.checked()
    }

    /// A private torrent (BEP 27: PEX "subverts the tracker's access control"): nothing is
    /// ever sent, incoming messages are ignored (counted in
    /// [`Stats::ignored_private`](crate::Stats::ignored_private)), and
    /// `local_extension_id()` of [`PexState`](crate::PexState::local_extension_id) and
    /// [`Swarm`](crate::Swarm::local_extension_id) returns `None`, so the host leaves
    /// `ut_pex` out of its handshake.
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// The id under which *we* receive ut_pex messages, to put in our own handshake's `m`
    /// (default 1, as libtorrent and transmission). 0 means "turned off" in BEP 10, so it is
    /// refused by keeping the previous id.
    pub fn local_extension_id(mut self, id: u8) -> Self {
        if id != 0 {
            self.local_extension_id = id;
        }
        self
    }

    /// The one place the ranges are checked.
    fn checked(self) -> Result<Self, ConfigError> {
        if self.send_interval < MIN_SEND_INTERVAL {
            return Err(ConfigError::SendIntervalTooShort);
        }
        if !(1..=MAX_PEERS_PER_MESSAGE).contains(&usize::from(self.max_entries_per_frame)) {
            return Err(ConfigError::FrameLimitOutOfRange);
        }
        if !(1..=FLOOD_SLOTS).contains(&usize::from(self.flood_messages)) {
            return Err(ConfigError::FloodLimitOutOfRange);
        }
        Ok(self)
    }

    /// The least time between two frames to one peer.
    pub fn get_send_interval(&self) -> Duration {
        self.send_interval
    }

    /// The most peers in the first frame.
    pub fn get_initial_max_peers(&self) -> usize {
        self.initial_max_peers as usize
    }

    /// The most `added` (and the most `dropped`) entries in a non-initial frame.
    pub fn get_max_entries_per_frame(&self) -> usize {
        usize::from(self.max_entries_per_frame)
    }

    /// The most peers remembered as claimed by one remote.
    pub fn get_max_remote_peers(&self) -> usize {
        self.max_remote_peers as usize
    }

    /// The largest ut_pex payload accepted, in bytes.
    pub fn get_max_message_size(&self) -> usize {
        self.max_message_size as usize
    }

    /// The flood limit: at most this many accepted messages within this window.
    pub fn get_flood_limit(&self) -> (usize, Duration) {
        (usize::from(self.flood_messages), self.flood_window)
    }

    /// Whether the torrent is private.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The id under which we receive ut_pex messages (never 0).
    pub fn get_local_extension_id(&self) -> u8 {
        self.local_extension_id
    }
}

/// A count as `Config` stores it: values beyond `u32::MAX` mean "no limit" in practice.
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
