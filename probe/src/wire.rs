//! Peer-wire plumbing: the BitTorrent handshake, an incremental reader of length-prefixed
//! messages, and the routing of BEP 10 extended messages to a [`PexState`].
//!
//! None of this is part of the `ut_pex` API: a real client has its own peer-wire code. What
//! it takes from here is the routing in [`route_extended`] and the `m` entry built in
//! [`extended_handshake_frame`].

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder};
use ut_pex::message::EXTENDED_MESSAGE_ID;
use ut_pex::{HandshakeError, MessageError, PexState};

/// The `v` the probe and the examples put in their extended handshake.
pub const CLIENT: &str = concat!("pex-probe/", env!("CARGO_PKG_VERSION"));

/// The largest peer-wire message the reader accepts (a `piece` is 16 KiB plus a header; a
/// bitfield of a million pieces is 128 KiB). Larger ones are a [`WireError::TooLarge`].
pub const MAX_MESSAGE_LEN: usize = 1 << 20;

// ---- the BitTorrent handshake --------------------------------------------------------------

const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Bytes of the BitTorrent handshake: `<19>"BitTorrent protocol"<8 reserved><info-hash><peer id>`.
pub const HANDSHAKE_LEN: usize = 68;

/// Our BitTorrent handshake, with the BEP 10 bit set (reserved byte 5, bit 0x10).
pub fn handshake(info_hash: &[u8; 20], peer_id: &[u8; 20]) -> [u8; HANDSHAKE_LEN] {
    let mut out = [0u8; HANDSHAKE_LEN];
    out[0] = 19;
    out[1..20].copy_from_slice(PROTOCOL);
    out[20 + 5] = 0x10; // reserved byte 5: "supports the extension protocol"
    out[28..48].copy_from_slice(info_hash);
    out[48..68].copy_from_slice(peer_id);
    out
}

/// Checks the remote's handshake; returns its peer id.
fn parse_handshake(bytes: &[u8], info_hash: &[u8; 20]) -> Result<[u8; 20], WireError> {
    if bytes[0] != 19 || &bytes[1..20] != PROTOCOL {
        return Err(WireError::BadHandshake);
    }
    if &bytes[28..48] != info_hash {
        let mut got = [0u8; 20];
        got.copy_from_slice(&bytes[28..48]);
        return Err(WireError::WrongInfoHash(got));
    }
    if bytes[20 + 5] & 0x10 == 0 {
        return Err(WireError::NoExtensionProtocol);
    }
    let mut peer_id = [0u8; 20];
    peer_id.copy_from_slice(&bytes[48..68]);
    Ok(peer_id)
}

/// A peer id for the probe and the examples: `-UX0001-` and 12 digits from `seed`.
pub fn peer_id(seed: u64) -> [u8; 20] {
    let mut id = *b"-UX0001-000000000000";
    let mut rng = crate::clock::XorShift::new(seed);
    for byte in &mut id[8..] {
        *byte = b'0' + (rng.below(10) as u8);
    }
    id
}

// ---- peer-wire messages ------------------------------------------------------------------

/// A keep-alive: a message of length zero.
pub const KEEP_ALIVE: [u8; 4] = [0; 4];

/// A whole peer-wire message: `<u32 length><id><payload>`.
pub fn message(id: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 1).expect("our messages are small");
    let mut out = Vec::with_capacity(5 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.push(id);
    out.extend_from_slice(payload);
    out
}

/// An extended message (BEP 10): `<u32 length><20><extended id><payload>`.
pub fn extended_message(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 + payload.len());
    body.push(id);
    body.extend_from_slice(payload);
    message(EXTENDED_MESSAGE_ID, &body)
}

/// Our BEP 10 extended handshake, framed: `ut_pex` under the id we want to receive it on
/// (`local_extension_id()`; `None` for a private torrent leaves it out), `p` if we listen,
/// `yourip` if given, and `v`.
pub fn extended_handshake_frame(
    local_ut_pex_id: Option<u8>,
    listen_port: Option<u16>,
    your_ip: Option<IpAddr>,
) -> Vec<u8> {
    let mut builder = HandshakeBuilder::new().client(CLIENT);
    if let Some(id) = local_ut_pex_id {
        builder = builder.extension(ut_pex::handshake::UT_PEX, id);
    }
    if let Some(port) = listen_port {
        builder = builder.listen_port(port);
    }
    if let Some(ip) = your_ip {
        builder = builder.your_ip(ip);
    }
    extended_message(0, &builder.build())
}

/// One thing read from the remote.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// Its BitTorrent handshake (always first), already checked: the right info-hash and
    /// the BEP 10 bit set.
    Handshake {
        /// The remote's peer id.
        peer_id: [u8; 20],
    },
    /// A zero-length message.
    KeepAlive,
    /// `have` (id 4): the remote has this piece.
    Have(u32),
    /// `bitfield` (id 5): the pieces the remote has, high bit first.
    Bitfield(&'a [u8]),
    /// An extended message (id 20), by extended id: 0 is the extended handshake.
    Extended {
        /// The extended id: 0, or one of the ids *we* registered in our handshake.
        id: u8,
        /// The bencoded payload.
        payload: &'a [u8],
    },
    /// Any other message (choke, unchoke, piece, …).
    Other {
        /// The message id.
        id: u8,
    },
}

/// Why a connection cannot go on.
#[derive(Debug)]
pub enum WireError {
    /// The first bytes are not a BitTorrent handshake.
    BadHandshake,
    /// The remote's handshake is for another torrent.
    WrongInfoHash([u8; 20]),
    /// The remote does not support the extension protocol, so it cannot speak `ut_pex`.
    NoExtensionProtocol,
    /// A message longer than [`MAX_MESSAGE_LEN`].
    TooLarge {
        /// Its announced length.
        len: usize,
    },
    /// A message too short for its id.
    Malformed {
        /// The message id.
        id: u8,
    },
    /// An extended handshake that does not decode.
    ExtendedHandshake(HandshakeError),
    /// A ut_pex message refused in a way that ends the connection (a flood).
    Pex(MessageError),
    /// The socket failed.
    Io(io::Error),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHandshake => f.write_str("not a BitTorrent handshake"),
            Self::WrongInfoHash(got) => write!(f, "handshake for another torrent ({})", hex(got)),
            Self::NoExtensionProtocol => {
                f.write_str("the remote does not support the extension protocol (BEP 10)")
            }
            Self::TooLarge { len } => write!(
                f,
                "message of {len} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit"
            ),
            Self::Malformed { id } => write!(f, "malformed message (id {id})"),
            Self::ExtendedHandshake(e) => e.fmt(f),
            Self::Pex(e) => e.fmt(f),
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WireError {}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the remote's handshake and then its length-prefixed messages from a byte stream,
/// incrementally: feed it whatever arrived, then call [`next`](Self::next) until `None`.
/// (Clients often send their extended handshake, even a bitfield, in the same TCP segment as
/// the BitTorrent handshake.)
#[derive(Debug)]
pub struct WireReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already returned.
    pos: usize,
    info_hash: [u8; 20],
    handshake_done: bool,
}

impl WireReader {
    /// A reader expecting a handshake for this torrent.
    pub fn new(info_hash: [u8; 20]) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            info_hash,
            handshake_done: false,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// One `read` from `src` into the buffer; `Ok(0)` means the remote closed.
    pub fn read_from(&mut self, src: &mut impl Read) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = src.read(&mut chunk)?;
        self.feed(&chunk[..n]);
        Ok(n)
    }

    /// The next complete item, `None` if more bytes are needed.
    // Not `Iterator::next`: each item borrows the reader's buffer until the next call, which
    // `Iterator` cannot express.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Incoming<'_>>, WireError> {
        let available = &self.buf[self.pos..];
        if !self.handshake_done {
            // Fail early on garbage rather than waiting for 68 bytes that may never come.
            if available.first().is_some_and(|&b| b != 19) {
                return Err(WireError::BadHandshake);
            }
            if available.len() < HANDSHAKE_LEN {
                return Ok(None);
            }
            let peer_id = parse_handshake(&available[..HANDSHAKE_LEN], &self.info_hash)?;
            self.pos += HANDSHAKE_LEN;
            self.handshake_done = true;
            return Ok(Some(Incoming::Handshake { peer_id }));
        }
        let Some(len) = available.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_MESSAGE_LEN {
            return Err(WireError::TooLarge { len });
        }
        if available.len() < 4 + len {
            return Ok(None);
        }
        let start = self.pos + 4;
        self.pos = start + len;
        let Some((&id, payload)) = self.buf[start..start + len].split_first() else {
            return Ok(Some(Incoming::KeepAlive));
        };
        Ok(Some(match id {
            4 => {
                let index: [u8; 4] = payload
                    .try_into()
                    .map_err(|_| WireError::Malformed { id })?;
                Incoming::Have(u32::from_be_bytes(index))
            }
            5 => Incoming::Bitfield(payload),
            EXTENDED_MESSAGE_ID => {
                let (&id, payload) = payload.split_first().ok_or(WireError::Malformed { id })?;
                Incoming::Extended { id, payload }
            }
            id => Incoming::Other { id },
        }))
    }
}

// ---- routing extended messages to the PexState ---------------------------------------------

/// What an extended message turned out to be.
#[derive(Debug)]
pub enum Routed<'a> {
    /// The remote's extended handshake, already given to the state; parsed here too for the
    /// fields the host needs (`p`, `v`, `yourip`).
    Handshake(ExtendedHandshake<'a>),
    /// A ut_pex message, given to the state: its outcome. The state is unchanged on `Err`.
    Pex(Result<(), MessageError>),
    /// Another extension's message: not ours to handle.
    Other,
}

/// Routes an extended message by its extended id: 0 is the remote's extended handshake,
/// *our* `ut_pex` id (the one we put in our handshake's `m`) is a ut_pex message.
///
/// After this, drain the state: `poll_transmit` and `poll_event` until `None`.
pub fn route_extended<'a>(
    state: &mut PexState,
    now: Instant,
    id: u8,
    payload: &'a [u8],
) -> Result<Routed<'a>, WireError> {
    if id == 0 {
        state
            .handle_extended_handshake(now, payload)
            .map_err(WireError::ExtendedHandshake)?;
        let handshake = ExtendedHandshake::decode(payload)
            .map_err(|e| WireError::ExtendedHandshake(HandshakeError::Decode(e)))?;
        Ok(Routed::Handshake(handshake))
    } else if Some(id) == state.local_extension_id() {
        Ok(Routed::Pex(state.handle_message(now, payload)))
    } else {
        Ok(Routed::Other)
    }
}

/// Formats an address for output: IPv6 as `[ip]:port`, IPv4-mapped IPv6 as IPv4.
pub fn show(addr: SocketAddr) -> String {
    ut_pex::canonical_addr(addr).to_string()
}
