//! Ask any BitTorrent peer who it knows: connect, do the BitTorrent and BEP 10 handshakes,
//! and print every ut_pex event as one JSON object per line.
//!
//! ```text
//! cargo run --release --example probe -- <HOST:PORT> <INFO_HASH_HEX> [--bind IP]
//!       [--listen-port N] [--advertise ADDR[/FLAGS]]... [--drop ADDR]... [--seconds N]
//! ```
//!
//! It is also the blocking-driver example: one thread, `std::net`, and a read timeout
//! computed from [`PexState::poll_timeout`] and the other periodic duties. To stay connected
//! for minutes it behaves as a polite leecher: `interested`, a block request every 20 s when
//! the remote has a piece, a keep-alive every minute.
//!
//! Output (stdout, one line each, flushed; diagnostics go to stderr), each with `t`, the
//! seconds since the probe started:
//! `connected`, `handshake`, `added` / `dropped` (exactly as the state emits them), `sent`
//! (each frame we send), `error` (each refused ut_pex message) and last `closed`.

mod common;

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};
use ut_pex::{Config, Event, MessageError, Peer, PeerFlags, PexMessage, PexState};

use common::{Incoming, Routed, WireError, WireReader};

const USAGE: &str = "usage: probe <HOST:PORT> <INFO_HASH_HEX> [--bind IP] [--listen-port N] \
                     [--advertise ADDR[/FLAGS]]... [--drop ADDR]... [--seconds N]";

/// How long the TCP connect and then the two handshakes may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to ask for a block, so that the remote sees an active leecher.
const REQUEST_EVERY: Duration = Duration::from_secs(20);
/// A keep-alive goes out when nothing else was written for this long.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(60);
const BLOCK_LEN: u32 = 16 * 1024;
/// The longest single blocking read. Long socket timeouts are coarse (Linux lets a 20 s
/// `SO_RCVTIMEO` fire a second late), so the loop wakes at least this often to recheck.
const MAX_BLOCK: Duration = Duration::from_millis(250);
/// `have` indices above this are ignored (no torrent has that many pieces).
const MAX_PIECES: u32 = 1 << 24;

const INTERESTED: u8 = 2;
const REQUEST: u8 = 6;

fn main() -> ExitCode {
    let out = Output {
        start: Instant::now(),
    };
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("probe: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stream = match connect(&args) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("probe: cannot connect to {}: {e}", args.target);
            return ExitCode::FAILURE;
        }
    };
    out.emit(format_args!(
        r#""event":"connected","peer":{}"#,
        json_str(&common::show(args.target))
    ));

    let mut probe = Probe::new(&args, &out, stream);
    let (reason, code) = match probe.run() {
        Ok(reason) => (reason, ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("probe: {e}");
            ("error", ExitCode::FAILURE)
        }
    };
    out.emit(format_args!(r#""event":"closed","reason":"{reason}""#));
    code
}

/// The command line.
#[derive(Debug)]
struct Args {
    target: SocketAddr,
    info_hash: [u8; 20],
    bind: Option<IpAddr>,
    listen_port: Option<u16>,
    advertise: Vec<Peer>,
    drop: Vec<SocketAddr>,
    seconds: f64,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut positional = Vec::new();
        let mut bind = None;
        let mut listen_port = None;
        let mut advertise = Vec::new();
        let mut drop = Vec::new();
        let mut seconds = 90.0;
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--bind" => bind = Some(parse(&value()?, "IP")?),
                "--listen-port" => listen_port = Some(parse(&value()?, "port")?),
                "--advertise" => advertise.push(parse_peer(&value()?)?),
                "--drop" => drop.push(parse(&value()?, "address")?),
                "--seconds" => {
                    seconds = parse(&value()?, "number of seconds")?;
                    if !(0.0..1e9).contains(&seconds) {
                        return Err(format!("bad --seconds {seconds}"));
                    }
                }
                "-h" | "--help" => {
                    eprintln!("{USAGE}");
                    std::process::exit(0);
                }
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                _ => positional.push(arg),
            }
        }
        let [target, info_hash] = <[String; 2]>::try_from(positional)
            .map_err(|_| "expected HOST:PORT and INFO_HASH_HEX".to_string())?;
        let target = target
            .to_socket_addrs()
            .map_err(|e| format!("bad HOST:PORT {target:?}: {e}"))?
            .next()
            .ok_or(format!("{target:?} resolves to no address"))?;
        Ok(Self {
            target,
            info_hash: parse_info_hash(&info_hash)?,
            bind,
            listen_port,
            advertise,
            drop,
            seconds,
        })
    }
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad {what}: {s:?}"))
}

/// `ADDR[/FLAGS]`, FLAGS in hex with or without `0x`.
fn parse_peer(s: &str) -> Result<Peer, String> {
    let (addr, flags) = match s.split_once('/') {
        Some((addr, flags)) => {
            let hex = flags.trim_start_matches("0x").trim_start_matches("0X");
            let bits = u8::from_str_radix(hex, 16).map_err(|_| format!("bad flags {flags:?}"))?;
            (addr, PeerFlags::from_bits(bits))
        }
        None => (s, PeerFlags::EMPTY),
    };
    Ok(Peer::new(parse(addr, "address")?, flags))
}

fn parse_info_hash(s: &str) -> Result<[u8; 20], String> {
    let bad = || format!("bad INFO_HASH_HEX {s:?}: expected 40 hex digits");
    if s.len() != 40 || !s.is_ascii() {
        return Err(bad());
    }
    let mut hash = [0u8; 20];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(hash)
}

/// Connects, from `--bind` if given.
fn connect(args: &Args) -> io::Result<TcpStream> {
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

/// The JSON lines on stdout.
struct Output {
    start: Instant,
}

impl Output {
    /// Prints `{"t":…,<fields>}` and flushes.
    fn emit(&self, fields: std::fmt::Arguments<'_>) {
        let t = self.start.elapsed().as_secs_f64();
        let mut stdout = io::stdout().lock();
        // A closed stdout must not kill the connection loop: ignore write errors.
        let _ = writeln!(stdout, r#"{{"t":{t:.3},{fields}}}"#);
        let _ = stdout.flush();
    }
}

/// A JSON string literal, quotes included.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `"…"` or `null`.
fn json_opt(s: Option<String>) -> String {
    s.map_or("null".into(), |s| json_str(&s))
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
struct Probe<'a> {
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
    last_write: Instant,
}

impl<'a> Probe<'a> {
    fn new(args: &'a Args, out: &'a Output, stream: TcpStream) -> Self {
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
        }
    }

    /// Runs until `--seconds` passed or the connection ends; returns the closing reason.
    fn run(&mut self) -> Result<&'static str, WireError> {
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
        self.send(&common::handshake(
            &self.args.info_hash,
            &common::peer_id(seed),
        ))?;
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok("done");
            }
            if !self.started && now >= handshake_deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timed out").into());
            }
            if self.started {
                self.periodic(now)?;
            }

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

    /// The earliest of: the end, the handshake deadline, the state's timeout, the next
    /// keep-alive and the next request.
    fn next_wake(&self, end: Instant, handshake_deadline: Instant) -> Instant {
        if !self.started {
            return end.min(handshake_deadline);
        }
        let mut wake = end.min(self.last_write + KEEP_ALIVE_EVERY);
        if let Some(at) = self.pex.poll_timeout() {
            wake = wake.min(at);
        }
        if self.first_piece().is_some() {
            wake = wake.min(self.next_request);
        }
        wake
    }

    /// The duties that come with time: the state's timeout, requests, keep-alives.
    fn periodic(&mut self, now: Instant) -> Result<(), WireError> {
        if self.pex.poll_timeout().is_some_and(|at| at <= now) {
            self.pex.handle_timeout(now);
        }
        if now >= self.next_request {
            if let Some(piece) = self.first_piece() {
                let mut payload = Vec::with_capacity(12);
                payload.extend_from_slice(&piece.to_be_bytes());
                payload.extend_from_slice(&0u32.to_be_bytes());
                payload.extend_from_slice(&BLOCK_LEN.to_be_bytes());
                self.send(&common::message(REQUEST, &payload))?;
                self.next_request = now + REQUEST_EVERY;
            }
        }
        if now >= self.last_write + KEEP_ALIVE_EVERY {
            self.send(&common::KEEP_ALIVE)?;
        }
        self.drain()
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
                    match common::route_extended(&mut self.pex, now, id, payload)? {
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
            match step {
                Step::Nothing => {}
                Step::SendExtendedHandshake => {
                    let frame = common::extended_handshake_frame(
                        &self.pex,
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
                    self.out.emit(format_args!(
                        r#""event":"handshake","client":{},"ut_pex":{ut_pex},"yourip":{}"#,
                        json_opt(client),
                        json_opt(your_ip.map(|ip| ip.to_string())),
                    ));
                    if !self.started {
                        self.started = true;
                        self.pex.start(now);
                        self.send(&common::message(INTERESTED, &[]))?;
                    }
                }
                Step::Have(piece) => self.set_piece(piece),
                Step::Bitfield(bits) => self.pieces = bits,
                Step::PexError(e) => {
                    self.out.emit(format_args!(
                        r#""event":"error","kind":"{}","message":{}"#,
                        e.kind(),
                        json_str(&e.to_string())
                    ));
                    // Decode and size errors are the remote's bugs; a flood is abuse.
                    if let MessageError::TooFrequent { .. } = e {
                        return Err(WireError::Pex(e));
                    }
                }
            }
            self.drain()?;
        }
    }

    /// Drains the state: frames to the socket, events to stdout.
    fn drain(&mut self) -> Result<(), WireError> {
        while let Some(frame) = self.pex.poll_transmit() {
            self.send(frame.as_bytes())?;
            let (added, dropped) = PexMessage::decode(&frame.payload())
                .map_or((0, 0), |m| (m.added_len(), m.dropped_len()));
            self.out.emit(format_args!(
                r#""event":"sent","added":{added},"dropped":{dropped},"bytes":{}"#,
                frame.len()
            ));
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
                Event::PeerAdded(peer) => self.out.emit(format_args!(
                    r#""event":"added","addr":{},"flags":{}"#,
                    json_str(&common::show(peer.addr)),
                    peer.flags.bits()
                )),
                Event::PeerDropped(addr) => self.out.emit(format_args!(
                    r#""event":"dropped","addr":{}"#,
                    json_str(&common::show(addr))
                )),
                other => eprintln!("probe: {other:?}"),
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
