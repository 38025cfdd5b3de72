//! [`Batch`]: one frame's worth of entries, reused between frames, and [`Shared`]: what one
//! walk learned from the log alone, for the next walk over the same entries.

use std::net::SocketAddr;

use super::Seq;
use crate::peer::Peer;

/// One frame's worth of entries, with its limits; reused between frames. A batch serves one
/// [`Timeline`](super::Timeline) (its [`Shared`] part describes that log).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) added: Vec<Peer>,
    pub(crate) dropped: Vec<SocketAddr>,
    pub(crate) max_added: usize,
    pub(crate) max_dropped: usize,
    /// Kept from walk to walk, whichever connection walks.
    pub(super) shared: Shared,
}

impl Batch {
    #[inline]
    pub(crate) fn reset(&mut self, max_added: usize, max_dropped: usize) {
        self.added.clear();
        self.dropped.clear();
        // Exactly the room a frame may need, not the next power of two: a `Swarm` keeps
        // this between frames.
        self.added.reserve_exact(max_added);
        self.max_added = max_added;
        self.max_dropped = max_dropped;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.added.capacity() * std::mem::size_of::<Peer>()
            + self.dropped.capacity() * std::mem::size_of::<SocketAddr>()
    }
}

/// What a walk found that depends on the log alone, not on the cursor: where the entries
/// after a position start, and that a dropped peer has not connected again. The connections
/// of a torrent that are in step walk the very same entries one after another (after one
/// connection left and one came, each of them walks that drop and that add), so the next
/// of them asks the same two questions of the same log.
///
/// Valid while the log has the head and length it was learned at: an append moves the head
/// (and a connect or disconnect, the only changes to who is live, append), a compaction
/// shortens the log; a change of flags alone moves neither, and neither answer depends on
/// flags. 32 bytes, once per `Swarm`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Shared {
    head: Seq,
    /// The log's length (`u32::MAX`: too long to remember anything about).
    len: u32,
    /// The index of the first entry after `position` (a position of 0 is always index 0, so
    /// the zeroed default holds).
    start: u32,
    position: Seq,
    /// The seq of the last drop whose peer was found not live again (0: none; seqs start
    /// at 1). A peer found live again is not remembered: that is rare, and asked again.
    gone_for_good: Seq,
}

impl Shared {
    /// Forgets everything unless the log still has this head and length.
    #[inline]
    pub(super) fn sync(&mut self, head: Seq, len: usize) {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        if self.head != head || self.len != len {
            *self = Self {
                head,
                len,
                ..Self::default()
            };
        }
    }

    #[inline]
    pub(super) fn start(&self, position: Seq) -> Option<usize> {
        (self.position == position && self.len != u32::MAX).then_some(self.start as usize)
    }

    pub(super) fn remember_start(&mut self, position: Seq, start: usize) {
        // `start` is at most the length, which fits unless it is `u32::MAX` (then `start`
        // is never read).
        if let Ok(start) = u32::try_from(start) {
            self.position = position;
            self.start = start;
        }
    }

    /// `Some(false)` if the peer dropped at `drop_seq` is known not to be live again.
    #[inline]
    pub(super) fn back(&self, drop_seq: Seq) -> Option<bool> {
        (self.gone_for_good == drop_seq).then_some(false)
    }

    pub(super) fn remember_back(&mut self, drop_seq: Seq, back: bool) {
        if !back {
            self.gone_for_good = drop_seq;
        }
    }
}
