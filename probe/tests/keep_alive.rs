//! The probe against a peer that hangs up on silence, as rqbit does: it closes any
//! connection that sent it nothing for 10 s. The probe must stay connected for as long as
//! `--seconds` asks, and still do its PEX both ways.
//!
//! The fake peer is a thread on loopback speaking the BitTorrent handshake, BEP 10 and
//! ut_pex through a `PexState` of its own. It judges silence by its own clock, from the last
//! byte it received: nothing the probe prints is trusted for that.

mod support;

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use pex_probe::wire::{self, Incoming, Routed, WireReader};
use support::{probe, Fields, Proc};
use ut_pex::{Config, Event, Peer, PeerFlags, PexState};

const INFO_HASH: [u8; 20] = *b"keep-alive probe ih!";
/// The fake peer's rule: this long without a byte from the probe and it hangs up.
const SILENCE: Duration = Duration::from_secs(10);
/// The fake peer gives up on everything after this long, whatever happens.
const LIMIT: Duration = Duration::from_secs(60);

/// What the fake peer saw.
#[derive(Debug)]
struct Seen {
    /// It hung up because the probe was silent for [`SILENCE`].
    hung_up: bool,
    /// The longest time between two reads that returned bytes (from the accept on).
    longest_silence: Duration,
    /// From the accept to the end of the connection.
    lifetime: Duration,
    /// What its `PexState` emitted: the peers the probe advertised.
    events: Vec<Event>,
}

/// Accepts one connection and serves it until the probe closes it, [`SILENCE`] passes with
/// no byte from the probe, or [`LIMIT`] passes. It advertises `ours` in its first frame.
fn fake_peer(listener: TcpListener, ours: Peer) -> io::Result<Seen> {
    let (mut stream, _) = accept_within(&listener, Duration::from_secs(10))?;
    let accepted = Instant::now();
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut state = PexState::new(Config::default());
    state.add_peer(ours.addr, ours.flags);
    let mut reader = WireReader::new(INFO_HASH);
    let mut last_byte = accepted;
    let mut longest_silence = Duration::ZERO;
    let mut events = Vec::new();
    let mut hung_up = false;
    while accepted.elapsed() < LIMIT {
        match reader.read_from(&mut stream) {
            Ok(0) => break, // the probe closed
            Ok(_) => {
                let now = Instant::now();
                longest_silence = longest_silence.max(now - last_byte);
                last_byte = now;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last_byte.elapsed() >= SILENCE {
                    longest_silence = longest_silence.max(last_byte.elapsed());
                    hung_up = true;
                    break; // dropping the stream closes it
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
        while let Some(incoming) = reader.next().map_err(io::Error::other)? {
            match incoming {
                Incoming::Handshake { .. } => {
                    stream.write_all(&wire::handshake(&INFO_HASH, &wire::peer_id(3)))?;
                    let frame = wire::extended_handshake_frame(
                        state.local_extension_id(),
                        Some(7000),
                        None,
                    );
                    stream.write_all(&frame)?;
                    state.start(Instant::now());
                }
                Incoming::Extended { id, payload } => {
                    if let Routed::Pex(Err(e)) =
                        wire::route_extended(&mut state, Instant::now(), id, payload)
                            .map_err(io::Error::other)?
                    {
                        return Err(io::Error::other(e));
                    }
                }
                _ => {}
            }
        }
        while let Some(frame) = state.poll_transmit() {
            stream.write_all(frame.as_bytes())?;
        }
        events.extend(std::iter::from_fn(|| state.poll_event()));
    }
    Ok(Seen {
        hung_up,
        longest_silence,
        lifetime: accepted.elapsed(),
        events,
    })
}

fn accept_within(listener: &TcpListener, within: Duration) -> io::Result<(TcpStream, SocketAddr)> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + within;
    loop {
        match listener.accept() {
            Ok((stream, addr)) => {
                stream.set_nonblocking(false)?;
                return Ok((stream, addr));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs the probe against a fake peer for `seconds`, with `extra` arguments.
fn run(seconds: u64, extra: &[&str]) -> (Proc, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    let target = listener.local_addr().expect("local address");
    let theirs = Peer::new("127.0.0.8:7001".parse().expect("address"), PeerFlags::SEED);
    let peer = thread::spawn(move || fake_peer(listener, theirs));
    let mut command = Command::new(probe());
    command
        .arg(target.to_string())
        .arg(wire::hex(&INFO_HASH))
        .args(["--seconds", &seconds.to_string()])
        .args(extra);
    let mut us = Proc::spawn("pex-probe", command);
    us.wait_for(
        "the probe to finish",
        Instant::now() + Duration::from_secs(seconds) + Duration::from_secs(15),
        |l| l.event() == "closed",
    );
    let seen = peer
        .join()
        .expect("the fake peer panicked")
        .unwrap_or_else(|e| panic!("fake peer: {e}\n{}", us.transcript()));
    (us, seen)
}

/// With its defaults the probe writes often enough: connected for all of `--seconds` (25,
/// past the fake peer's 10 s rule twice over), PEX delivered both ways.
#[test]
fn probe_outlives_a_peer_that_hangs_up_on_silence() {
    let (mut us, seen) = run(25, &["--advertise", "127.0.0.9:7002/12"]);
    let transcript = us.transcript();
    assert!(
        !seen.hung_up,
        "the fake peer hung up: {seen:?}\n{transcript}"
    );
    assert!(seen.longest_silence < SILENCE, "{seen:?}");
    assert!(seen.lifetime > SILENCE, "{seen:?}");
    let closed = us.all(|l| l.event() == "closed");
    assert_eq!(closed[0].json.str("reason"), Some("done"), "{transcript}");

    // The probe heard the fake peer's peer and sent its own.
    let added = us.all(|l| l.event() == "added");
    assert_eq!(added.len(), 1, "{transcript}");
    assert_eq!(added[0].json.str("addr"), Some("127.0.0.8:7001"));
    assert_eq!(added[0].json.num("flags"), Some(2.0));
    let sent = us.all(|l| l.event() == "sent");
    assert_eq!(sent.len(), 1, "{transcript}");
    assert_eq!(sent[0].json.num("added"), Some(1.0));
    let probe_peer = Peer::new(
        "127.0.0.9:7002".parse().expect("address"),
        PeerFlags::from_bits(0x12),
    );
    assert!(
        seen.events.contains(&Event::PeerAdded(probe_peer)),
        "{seen:?}"
    );
    assert!(us.all(|l| l.event() == "error").is_empty(), "{transcript}");
}

/// The control: with keep-alives held back past the rule (the hidden `--keep-alive-after`),
/// the same fake peer does hang up, and the probe says the remote closed.
#[test]
fn a_silent_probe_is_hung_up_on() {
    let (mut us, seen) = run(25, &["--keep-alive-after", "60"]);
    let transcript = us.transcript();
    assert!(seen.hung_up, "{seen:?}\n{transcript}");
    let closed = us.all(|l| l.event() == "closed");
    assert_eq!(
        closed[0].json.str("reason"),
        Some("remote_closed"),
        "{transcript}"
    );
}
