//! [`Frame`]: one whole peer-wire message carrying a ut_pex payload.

use std::fmt;

use bytes::Bytes;

/// One whole peer-wire message carrying a ut_pex payload, ready to write to the socket:
/// `<u32 big-endian length><20><remote's ut_pex id><bencoded payload>`.
///
/// A frame from [`encode_frame`](crate::message::encode_frame) or a
/// [`PexState`](crate::PexState) has a buffer of its own; frames from a
/// [`Swarm`](crate::Swarm) share a buffer of up to 4 KiB with the frames polled around them
/// (see [`Swarm::poll_transmit`](crate::Swarm::poll_transmit)).
#[must_use = "a frame does nothing until it is written to the peer"]
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// Wraps a whole message the encoder wrote.
    pub(super) fn from_vec(bytes: Vec<u8>) -> Self {
        Self(Bytes::from(bytes))
    }

    /// Wraps a whole message split off a [`FrameChunk`](super::FrameChunk).
    pub(super) fn from_bytes(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// Bytes before the payload: the 4-byte length, the extended message id 20 and the
    /// extension id.
    pub const HEADER_LEN: usize = 6;

    /// The whole frame, to write to the socket as is.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The whole frame as `Bytes`.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The bencoded payload alone, for hosts with their own message framer; shares the
    /// frame's buffer (no copy).
    pub fn payload(&self) -> Bytes {
        self.0.slice(Self::HEADER_LEN..)
    }

    /// The extended message id in the header: the remote's `ut_pex` id.
    pub fn extension_id(&self) -> u8 {
        self.0[Self::HEADER_LEN - 1]
    }

    /// The length of the whole frame in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a frame has at least its header. Present for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("extension_id", &self.extension_id())
            .field("len", &self.len())
            .finish()
    }
}
