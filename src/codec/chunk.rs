//! [`FrameChunk`]: frames encoded back to back into one shared buffer, so that a burst of
//! frames costs a couple of allocations instead of one each.
//!
//! Each frame is split off the chunk as its own [`Frame`] (a `Bytes` sharing the chunk's
//! allocation). While any frame of a chunk is alive the chunk's memory stays allocated:
//! a frame the host keeps pins at most [`FrameChunk::CHUNK_LEN`] bytes (or its own length,
//! for a frame longer than that), and frames encoded after it go to a fresh chunk once the
//! rest of the old one is used up.

use std::net::SocketAddr;

use bytes::BytesMut;

use super::encode::encode_frame_into;
use super::repeat::LastFrame;
use super::Frame;
use crate::peer::Peer;

/// A buffer that frames are encoded into and split off.
#[derive(Debug, Default)]
pub(crate) struct FrameChunk {
    buf: BytesMut,
    /// The last small frame, shared again by the next connection with the same news.
    last: LastFrame,
}

impl FrameChunk {
    /// Bytes a chunk is allocated with: a few frames' worth (a full IPv4 frame is 694 B, a
    /// full IPv6 one 1,897 B, a churn frame about 50 B), and small enough that a frame a
    /// host keeps for long pins little.
    pub(crate) const CHUNK_LEN: usize = 4096;

    /// Encodes one frame (as [`encode_frame`](super::encode_frame), byte for byte) into
    /// the chunk and splits it off; or, when the lists are those of the last small frame,
    /// hands out that frame again (see [`LastFrame`]).
    pub(crate) fn encode(
        &mut self,
        extension_id: u8,
        added: &[Peer],
        dropped: &[SocketAddr],
    ) -> Frame {
        if let Some(frame) = self.last.get(extension_id, added, dropped) {
            return frame;
        }
        // When the chunk lacks the room, `reserve` takes the whole allocation back if every
        // frame split off it has been dropped; otherwise it leaves the old chunk to those
        // frames and allocates a new one.
        encode_frame_into(&mut self.buf, Self::CHUNK_LEN, extension_id, added, dropped);
        let frame = Frame::from_bytes(self.buf.split().freeze());
        self.last.remember(&frame, extension_id, added, dropped);
        frame
    }

    /// Lets go of the chunk (the frames split off it keep their bytes): a drained swarm
    /// holds no buffer while idle.
    pub(crate) fn release(&mut self) {
        self.last.forget();
        self.buf = BytesMut::new();
    }

    /// Whether the chunk has room left from earlier frames (not released since).
    pub(crate) fn is_open(&self) -> bool {
        self.buf.capacity() > 0
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_frame;
    use crate::peer::PeerFlags;

    fn lists(n: u8) -> (Vec<Peer>, Vec<SocketAddr>) {
        let added = (1..=n)
            .map(|i| Peer::new(SocketAddr::from(([10, 0, 0, i], 6881)), PeerFlags::SEED))
            .collect();
        let dropped = vec![SocketAddr::from(([192, 0, 2, n], 51413))];
        (added, dropped)
    }

    #[test]
    fn frames_are_byte_identical_to_encode_frame() {
        let mut chunk = FrameChunk::default();
        for n in [0, 1, 7, 50] {
            let (added, dropped) = lists(n);
            assert_eq!(
                chunk.encode(3, &added, &dropped),
                encode_frame(3, &added, &dropped)
            );
        }
    }

    #[test]
    fn the_same_small_lists_share_the_last_frame() {
        let mut chunk = FrameChunk::default();
        let (added, dropped) = lists(1);
        let first = chunk.encode(1, &added, &dropped);
        let again = chunk.encode(1, &added, &dropped);
        assert_eq!(again.as_bytes().as_ptr(), first.as_bytes().as_ptr());
        // Any difference in the inputs is a new frame: the extension id, a flag.
        let other_id = chunk.encode(2, &added, &dropped);
        assert_eq!(other_id, encode_frame(2, &added, &dropped));
        let mut flagged = added.clone();
        flagged[0].flags = PeerFlags::UTP;
        let other_flags = chunk.encode(2, &flagged, &dropped);
        assert_eq!(other_flags, encode_frame(2, &flagged, &dropped));
        assert_ne!(
            other_flags.as_bytes().as_ptr(),
            other_id.as_bytes().as_ptr()
        );
        // Released: nothing is shared across a drained swarm.
        chunk.release();
        let after = chunk.encode(2, &flagged, &dropped);
        assert_ne!(after.as_bytes().as_ptr(), other_flags.as_bytes().as_ptr());
    }

    #[test]
    fn a_chunk_is_taken_back_once_its_frames_are_dropped() {
        let mut chunk = FrameChunk::default();
        let (added, dropped) = lists(50);
        let first = chunk.encode(1, &added, &dropped);
        let start = first.as_bytes().as_ptr();
        let second = chunk.encode(1, &added, &dropped);
        // Back to back in one buffer.
        assert_eq!(second.as_bytes().as_ptr(), start.wrapping_add(first.len()));
        drop((first, second));
        // Fill the rest of the chunk; the frame that no longer fits goes to its start.
        let frames = FrameChunk::CHUNK_LEN / encode_frame(1, &added, &dropped).len();
        let mut kept = Vec::new();
        for _ in 2..frames {
            kept.push(chunk.encode(1, &added, &dropped));
        }
        drop(kept);
        assert_eq!(chunk.encode(1, &added, &dropped).as_bytes().as_ptr(), start);
    }

    #[test]
    fn a_kept_frame_pins_its_chunk_and_the_next_ones_go_elsewhere() {
        let mut chunk = FrameChunk::default();
        let (added, dropped) = lists(50);
        let kept = chunk.encode(1, &added, &dropped);
        let copy = kept.clone();
        let frames = FrameChunk::CHUNK_LEN / kept.len();
        for _ in 1..frames {
            let _ = chunk.encode(1, &added, &dropped);
        }
        let next = chunk.encode(1, &added, &dropped);
        let old = kept.as_bytes().as_ptr_range();
        assert!(!old.contains(&next.as_bytes().as_ptr()));
        assert_eq!(kept, copy, "the kept frame's bytes are untouched");
        assert!(chunk.heap_bytes() <= FrameChunk::CHUNK_LEN * 2);
    }
}
