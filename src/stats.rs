//! [`Stats`]: counters for metrics.

use std::ops::AddAssign;

use crate::codec::Frame;
use crate::timeline::Batch;

/// Counters of what one connection sent, received and ignored, for metrics: from
/// [`PexState::stats`](crate::PexState::stats) or [`Swarm::stats`](crate::Swarm::stats).
/// Every counter only grows (a [`reset`](crate::PexState::reset) keeps them). A connection
/// stores its counters in 32 bits and `bytes_sent` in 64, so they saturate at
/// 4,294,967,295: at the default flood limit that takes a remote centuries of messages, or
/// years of maximum-size messages full of ignored entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Frames handed out by `poll_transmit`.
    pub frames_sent: u64,
    /// Bytes of those frames, headers included.
    pub bytes_sent: u64,
    /// `added`/`added6` entries sent.
    pub peers_added_sent: u64,
    /// `dropped`/`dropped6` entries sent.
    pub peers_dropped_sent: u64,
    /// Messages accepted by `handle_message`.
    pub messages_received: u64,
    /// Received adds that produced [`Event::PeerAdded`](crate::Event::PeerAdded).
    pub peers_added_received: u64,
    /// Received drops that produced [`Event::PeerDropped`](crate::Event::PeerDropped).
    pub peers_dropped_received: u64,
    /// Received entries with port 0.
    pub ignored_port_zero: u64,
    /// Received entries with an unspecified, multicast or broadcast address.
    pub ignored_unusable_address: u64,
    /// Received local-scope entries from a remote the host said is global.
    pub ignored_local_address: u64,
    /// Received entries both added and dropped in one message.
    pub ignored_added_and_dropped: u64,
    /// Received adds of an address the remote already claimed.
    pub ignored_duplicate: u64,
    /// Received drops of an address the remote never claimed.
    pub ignored_unknown_drop: u64,
    /// Received entries beyond [`Config::max_remote_peers`](crate::Config::max_remote_peers).
    pub ignored_over_cap: u64,
    /// Messages ignored because the torrent is private.
    pub ignored_private: u64,
    /// Local `add_peer` calls ignored: port 0, or an unspecified, multicast or broadcast address.
    pub ignored_local_unusable: u64,
    /// [`MessageError::TooLarge`](crate::MessageError::TooLarge) errors.
    pub errors_too_large: u64,
    /// [`MessageError::Decode`](crate::MessageError::Decode) errors.
    pub errors_decode: u64,
    /// [`MessageError::TooFrequent`](crate::MessageError::TooFrequent) errors.
    pub errors_too_frequent: u64,
    /// [`HandshakeError`](crate::HandshakeError)s.
    pub errors_handshake: u64,
}

/// One counter as a connection stores it: 32 bits, saturating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Count(u32);

impl AddAssign<usize> for Count {
    fn add_assign(&mut self, n: usize) {
        self.0 = self.0.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }
}

impl Count {
    pub(crate) fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Declares [`Counters`] with a [`Count`] per named [`Stats`] field, and its snapshot.
macro_rules! counters {
    ($($field:ident),* $(,)?) => {
        /// The counters of one connection as stored (see [`Stats`] for each): 84 bytes
        /// where `Stats` takes 160.
        #[derive(Clone, Copy, Debug, Default)]
        pub(crate) struct Counters {
            pub(crate) bytes_sent: u64,
            $(pub(crate) $field: Count,)*
        }

        impl Counters {
            /// The counters as the public [`Stats`].
            pub(crate) fn snapshot(&self) -> Stats {
                Stats {
                    bytes_sent: self.bytes_sent,
                    $($field: u64::from(self.$field.0),)*
                }
            }
        }
    };
}

counters!(
    frames_sent,
    peers_added_sent,
    peers_dropped_sent,
    messages_received,
    peers_added_received,
    peers_dropped_received,
    ignored_port_zero,
    ignored_unusable_address,
    ignored_local_address,
    ignored_added_and_dropped,
    ignored_duplicate,
    ignored_unknown_drop,
    ignored_over_cap,
    ignored_private,
    ignored_local_unusable,
    errors_too_large,
    errors_decode,
    errors_too_frequent,
    errors_handshake,
);

impl Counters {
    /// Counts a frame handed out, with the entries it carries.
    #[inline]
    pub(crate) fn record_sent(&mut self, frame: &Frame, batch: &Batch) {
        self.frames_sent += 1;
        self.bytes_sent = self.bytes_sent.saturating_add(frame.len() as u64);
        self.peers_added_sent += batch.added.len();
        self.peers_dropped_sent += batch.dropped.len();
    }
}
