//! One connection to the remote: the blocking loop, the handshakes, the polite-leecher
//! duties and the drain of the `PexState`.

use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use pex_probe::wire::{self, Incoming, Routed, WireError, WireReader};
use socket2::{Domain, Protocol, Socket, Type};
use ut_pex::{Config, Event, MessageError, PexMessage, PexState};

use crate::output::{Line, Output};
use crate::Args;

/// How long the TCP connect and then the two handshakes may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to ask for a block, so that the remote sees an active leecher.
const REQUEST_EVERY: Duration = Duration::from_secs(20);
const BLOCK_LEN: u32 = 16 * 1024;
/// The longest single blocking read. Long socket timeouts are coarse (Linux lets a 20 s
/// `SO_RCVTIMEO` fire a second late), so the loop wakes at least this often to recheck.
const MAX_BLOCK: Duration = Duration::from_millis(250);
/// `have` indices above this are ignored (no torrent has that many pieces).
const MAX_PIECES: u32 = 1 << 24;

const INTERESTED: u8 = 2;
const REQUEST: u8 = 6;

/// Connects, from `--bind` if given.
pub(crate) fn connect(args: &Args) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(args.target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if let Some(ip) = args.bind {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    socket.connect_timeout(&args.target.into(), HANDSHAKE_TIMEOUT)?;
    let stream = TcpStream::from(socket);
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    Ok(stream)
}

/// What one item read from the remote asks the probe to do (owned, so that the reader's
/// buffer is free again).
enum Step {
    Nothing,
    SendExtendedHandshake,
    ExtendedHandshake {
        client: Option<String>,
        ut_pex: u8,
        your_ip: Option<IpAddr>,
    },
    Have(u32),
    Bitfield(Vec<u8>),
    PexError(MessageError),
}

/// One connection to the remote.
#[derive(Debug)]
pub(crate) struct Probe<'a> {
    args: &'a Args,
    out: &'a Output,
    stream: TcpStream,
    reader: WireReader,
    pex: PexState,
    /// Both handshakes done and the state started.
    started: bool,
    /// The `--drop`s were applied (right after the first frame).
    drops_applied: bool,
    /// The remote's pieces as a bitfield, from `bitfield` and `have`.
    pieces: Vec<u8>,
    next_request: Instant,
    /// When we last wrote anything: a keep-alive goes out `keep_alive_after` later unless
    /// something else does first.
    last_write: Instant,
    keep_alive_after: Duration,
}

impl<'a> Probe<'a> {
    pub(crate) fn new(args: &'a Args, out: &'a Output, stream: TcpStream) -> Self {
        let mut pex = PexState::new(Config::default());
        // The remote's own address is never advertised back to it.
        pex.set_remote_address(args.target);
        // Added before `start`, so they all go out in the first frame.
        for peer in &args.advertise {
            pex.add_peer(peer.addr, peer.flags);
        }
        let now = Instant::now();
        Self {
            args,
            out,
            stream,
            reader: WireReader::new(args.info_hash),
            pex,
            started: false,
            drops_applied: false,
            pieces: Vec::new(),
            next_request: now,
            last_write: now,
            keep_alive_after: args.keep_alive_after(),
        }
    }

    /// Runs until `--seconds` passed or the connection ends; returns the closing reason.
    pub(crate) fn run(&mut self) -> Result<&'static str, WireError> {
        match self.run_loop() {
            // A reset or broken pipe on a write is the remote leaving too.
            Err(WireError::Io(e)) if self.started && is_remote_close(&e) => Ok("remote_closed"),
            result => result,
        }
    }

    fn run_loop(&mut self) -> Result<&'static str, WireError> {
        let end = self.out.start + Duration::from_secs_f64(self.args.seconds);
        let handshake_deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let seed = u64::from(std::process::id())
            ^ SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        self.send(&wire::handshake(&self.args.info_hash, &wire::peer_id(seed)))?;
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok("done");
            }
            if !self.started && now >= handshake_deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timed out").into());
            }
            self.periodic(now)?;

            // Block in `read` until bytes arrive or the next duty is due.
            let wake = self.next_wake(end, handshake_deadline);
            let timeout = wake.saturating_duration_since(Instant::now());
            let timeout = timeout.clamp(Duration::from_millis(1), MAX_BLOCK);
            self.stream.set_read_timeout(Some(timeout))?;
            match self.reader.read_from(&mut self.stream) {
                Ok(0) if self.started => return Ok("remote_closed"),
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the remote closed the connection during the handshake",
                    );
                    return Err(e.into());
                }
                Ok(_) => self.handle_input(Instant::now())?,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The earliest of: the end, the handshake deadline (until started), the next
    /// keep-alive, and once started the state's timeout and the next request.
    fn next_wake(&self, end: Instant, handshake_deadline: Instant) -> Instant {
        let mut wake = end.min(self.last_write + self.keep_alive_after);
        if !self.started {
            return wake.min(handshake_deadline);
        }
        if let Some(at) = self.pex.poll_timeout() {
            wake = wake.min(at);
        }
        if self.first_piece().is_some() {
            wake = wake.min(self.next_request);
        }
        wake
    }

    /// The duties that come with time: keep-alives from our handshake on, and once started
    /// the state's timeout and requests.
    fn periodic(&mut self, now: Instant) -> Result<(), WireError> {
        if self.started {
            if self.pex.poll_timeout().is_some_and(|at| at <= now) {
                self.pex.handle_timeout(now);
            }
            if now >= self.next_request {
                if let Some(piece) = self.first_piece() {
                    let mut payload = Vec::with_capacity(12);
                    payload.extend_from_slice(&piece.to_be_bytes());
                    payload.extend_from_slice(&0u32.to_be_bytes());
                    payload.extend_from_slice(&BLOCK_LEN.to_be_bytes());
                    self.send(&wire::message(REQUEST, &payload))?;
                    self.next_request = now + REQUEST_EVERY;
                }
            }
            self.drain()?;
        }
        // Last, so that it goes out only when nothing above wrote: a silent connection is
        // what some clients hang up on.
        if now >= self.last_write + self.keep_alive_after {
            self.send(&wire::KEEP_ALIVE)?;
        }
        Ok(())
    }

    /// Handles every complete item received so far.
    fn handle_input(&mut self, now: Instant) -> Result<(), WireError> {
        loop {
            let step = match self.reader.next()? {
                None => return Ok(()),
                Some(Incoming::Handshake { .. }) => Step::SendExtendedHandshake,
                Some(Incoming::Have(piece)) => Step::Have(piece),
                Some(Incoming::Bitfield(bits)) => Step::Bitfield(bits.to_vec()),
                Some(Incoming::Extended { id, payload }) => {
                    match wire::route_extended(&mut self.pex, now, id, payload)? {
                        Routed::Handshake(hs) => Step::ExtendedHandshake {
                            client: hs.client.map(|v| String::from_utf8_lossy(v).into_owned()),
                            ut_pex: hs.ut_pex().unwrap_or(0),
                            your_ip: hs.your_ip,
                        },
                        Routed::Pex(Err(e)) => Step::PexError(e),
                        Routed::Pex(Ok(())) | Routed::Other => Step::Nothing,
                    }
                }
                Some(Incoming::KeepAlive | Incoming::Other { .. }) => Step::Nothing,
            };
            self.step(step, now)?;
            self.drain()?;
        }
    }

    fn step(&mut self, step: Step, now: Instant) -> Result<(), WireError> {
        match step {
            Step::Nothing => {}
            Step::SendExtendedHandshake => {
                let frame = wire::extended_handshake_frame(
                    self.pex.local_extension_id(),
                    self.args.listen_port,
                    Some(self.args.target.ip()),
                );
                self.send(&frame)?;
            }
            Step::ExtendedHandshake {
                client,
                ut_pex,
                your_ip,
            } => {
                self.out.emit(Line::Handshake {
                    client,
                    ut_pex,
                    yourip: your_ip.map(|ip| ip.to_string()),
                });
                if !self.started {
                    self.started = true;
                    self.pex.start(now);
                    self.send(&wire::message(INTERESTED, &[]))?;
                }
            }
            Step::Have(piece) => self.set_piece(piece),
            Step::Bitfield(bits) => self.pieces = bits,
            Step::PexError(e) => {
                self.out.emit(Line::Error {
                    kind: e.kind(),
                    message: e.to_string(),
                });
                // Decode and size errors are the remote's bugs; a flood is abuse.
                if let MessageError::TooFrequent { .. } = e {
                    return Err(WireError::Pex(e));
                }
            }
        }
        Ok(())
    }

    /// Drains the state: frames to the socket, events to stdout.
    fn drain(&mut self) -> Result<(), WireError> {
        while let Some(frame) = self.pex.poll_transmit() {
            self.send(frame.as_bytes())?;
            let (added, dropped) = PexMessage::decode(&frame.payload())
                .map_or((0, 0), |m| (m.added_len(), m.dropped_len()));
            self.out.emit(Line::Sent {
                added,
                dropped,
                bytes: frame.len(),
            });
            if !self.drops_applied {
                // Applied after the first frame, so the drops go out one interval later.
                self.drops_applied = true;
                for &addr in &self.args.drop {
                    self.pex.drop_peer(addr);
                }
            }
        }
        while let Some(event) = self.pex.poll_event() {
            match event {
                Event::PeerAdded(peer) => self.out.emit(Line::added(peer.addr, peer.flags.bits())),
                Event::PeerDropped(addr) => self.out.emit(Line::Dropped {
                    addr: wire::show(addr),
                }),
                other => eprintln!("pex-probe: {other:?}"),
            }
        }
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.last_write = Instant::now();
        Ok(())
    }

    fn set_piece(&mut self, piece: u32) {
        if piece < MAX_PIECES {
            let byte = (piece / 8) as usize;
            if self.pieces.len() <= byte {
                self.pieces.resize(byte + 1, 0);
            }
            self.pieces[byte] |= 0x80 >> (piece % 8);
        }
    }

    /// The lowest piece the remote has.
    fn first_piece(&self) -> Option<u32> {
        let (i, byte) = self.pieces.iter().enumerate().find(|(_, &b)| b != 0)?;
        Some(i as u32 * 8 + byte.leading_zeros())
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn is_remote_close(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}
