//! [`LastFrame`]: the last small frame a [`FrameChunk`](super::FrameChunk) encoded, handed
//! out again when the next frame has the very same lists.
//!
//! The connections of a torrent that are caught up with its log hear the same news at the
//! same time: after one connection left and one came, each of them sends "added the newcomer,
//! dropped the leaver". Encoding is deterministic, so equal inputs (extension id, added peers
//! with their flags, dropped addresses, in order) give equal bytes, and the frame can be
//! shared (a reference count) instead of encoded again.

use std::net::SocketAddr;

use arrayvec::ArrayVec;

use super::Frame;
use crate::peer::Peer;

/// Lists up to this long are remembered: the one-change-per-interval frames that connections
/// in step share. Kept small because the lists live inline in every `Swarm`.
const SMALL: usize = 2;

/// The last small frame and the lists it was encoded from.
#[derive(Debug, Default)]
pub(crate) struct LastFrame {
    frame: Option<Frame>,
    extension_id: u8,
    added: ArrayVec<Peer, SMALL>,
    dropped: ArrayVec<SocketAddr, SMALL>,
}

impl LastFrame {
    /// The remembered frame, if it was encoded from exactly these inputs.
    #[inline]
    pub(crate) fn get(
        &self,
        extension_id: u8,
        added: &[Peer],
        dropped: &[SocketAddr],
    ) -> Option<Frame> {
        let frame = self.frame.as_ref()?;
        let same = self.extension_id == extension_id
            && self.added.as_slice() == added
            && self.dropped.as_slice() == dropped;
        same.then(|| frame.clone())
    }

    /// Remembers `frame` as encoded from these inputs, if the lists are small; otherwise
    /// forgets the previous one.
    pub(crate) fn remember(
        &mut self,
        frame: &Frame,
        extension_id: u8,
        added: &[Peer],
        dropped: &[SocketAddr],
    ) {
        self.forget();
        if added.len() <= SMALL && dropped.len() <= SMALL {
            self.added.extend(added.iter().copied());
            self.dropped.extend(dropped.iter().copied());
            self.extension_id = extension_id;
            self.frame = Some(frame.clone());
        }
    }

    /// Lets go of the frame (its buffer is freed once the host drops its copies too).
    pub(crate) fn forget(&mut self) {
        self.frame = None;
        self.added.clear();
        self.dropped.clear();
    }
}
