//! [`Config`]: the knobs of a [`PexState`](crate::PexState), with defaults that real clients
//! accept.

use std::time::Duration;

use crate::error::ConfigError;

/// The most entries a non-initial frame may carry in `added` (and, separately, `dropped`).
///
/// BEP 11: "Except for the initial PEX message the combined amount of added v4/v6 contacts
/// should not exceed 50 entries. The same applies to dropped entries."
pub const MAX_DELTA: usize = 50;

/// The largest flood limit [`Config::flood_limit`] accepts: the flood window keeps one
/// timestamp per accepted message in a fixed array of this size.
pub const FLOOD_SLOTS: usize = 16;

/// The shortest send interval [`Config::send_interval`] accepts.
pub const MIN_SEND_INTERVAL: Duration = Duration::from_secs(60);

/// Settings of a [`PexState`](crate::PexState). `Config::default()` is what most hosts want.
///
/// ```
/// use std::time::Duration;
/// use ut_pex::Config;
/// let config = Config::default()
///     .max_remote_peers(100)
///     .send_interval(Duration::from_secs(90))
///     .unwrap();
/// assert_eq!(config.get_send_interval(), Duration::from_secs(90));
/// assert!(Config::default().send_interval(Duration::from_secs(59)).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) send_interval: Duration,
    pub(crate) initial_max_peers: usize,
    pub(crate) max_entries_per_frame: usize,
    pub(crate) max_remote_peers: usize,
    pub(crate) max_message_size: usize,
    pub(crate) flood_messages: usize,
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
            initial_max_peers: MAX_DELTA,
            max_entries_per_frame: MAX_DELTA,
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
    /// under 60 s. BEP 11: "Clients must batch updates to send no more than 1 PEX message
    /// per minute."
    pub fn send_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval < MIN_SEND_INTERVAL {
            return Err(ConfigError::SendIntervalTooShort);
        }
        self.send_interval = interval;
        Ok(self)
    }

    /// The most peers in the first frame (default 50). BEP 11 exempts the initial message
    /// from the 50-entry limit; peers beyond the cap follow in later frames.
    pub fn initial_max_peers(mut self, peers: usize) -> Self {
        self.initial_max_peers = peers.max(1);
        self
    }

    /// The most `added` and the most `dropped` entries in a non-initial frame, counting IPv4
    /// and IPv6 together (default and maximum [`MAX_DELTA`] = 50).
    pub fn max_entries_per_frame(mut self, entries: usize) -> Result<Self, ConfigError> {
        if entries == 0 || entries > MAX_DELTA {
            return Err(ConfigError::FrameLimitOutOfRange);
        }
        self.max_entries_per_frame = entries;
        Ok(self)
    }

    /// The most peers remembered as claimed by the remote (default 200, as uTorrent stores;
    /// libtorrent keeps 50). Entries beyond it are ignored and counted.
    pub fn max_remote_peers(mut self, peers: usize) -> Self {
        self.max_remote_peers = peers;
        self
    }

    /// The largest ut_pex payload accepted, in bytes (default 64 KiB; libtorrent
    /// disconnects over 500 KiB). A full 50 + 50 message is about 2.6 KiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Flood detection: more than `messages` accepted messages within `window` makes the next
    /// one a [`MessageError::TooFrequent`](crate::MessageError::TooFrequent). The default,
    /// 6 per 60 s, is libtorrent's, and tolerates honest senders: libtorrent's own gaps
    /// measure 59.97 s, and transmission and anacrolix send an extra message after a
    /// re-handshake. `messages` must be 1 ..= [`FLOOD_SLOTS`].
    pub fn flood_limit(mut self, messages: usize, window: Duration) -> Result<Self, ConfigError> {
        if messages == 0 || messages > FLOOD_SLOTS {
            return Err(ConfigError::FloodLimitOutOfRange);
        }
        self.flood_messages = messages;
        self.flood_window = window;
        Ok(self)
    }

    /// A private torrent (BEP 27: PEX "subverts the tracker's access control"): the state
    /// never sends, ignores incoming messages (counted in
    /// [`Stats::ignored_private`](crate::Stats::ignored_private)), and
    /// [`PexState::local_extension_id`](crate::PexState::local_extension_id) returns `None`
    /// so the host leaves `ut_pex` out of its handshake.
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// The id under which *we* receive ut_pex messages, to put in our own handshake's `m`
    /// (default 1, as libtorrent and transmission). 0 is refused by keeping the old id.
    pub fn local_extension_id(mut self, id: u8) -> Self {
        if id != 0 {
            self.local_extension_id = id;
        }
        self
    }

    /// The configured send interval.
    pub fn get_send_interval(&self) -> Duration {
        self.send_interval
    }

    /// The configured cap on remembered remote peers.
    pub fn get_max_remote_peers(&self) -> usize {
        self.max_remote_peers
    }

    /// Whether the torrent is private.
    pub fn is_private(&self) -> bool {
        self.private
    }
}
