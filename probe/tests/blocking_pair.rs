//! Two peers over loopback TCP, each driven by a blocking loop (one thread each, read
//! timeouts from `poll_timeout`), with a warped clock so that the second frame, 65 protocol
//! seconds after the first, arrives within a second of wall time. Also checks the peer-wire
//! reader that the probe and the examples share.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use pex_probe::clock::WarpClock;
use pex_probe::wire::{self, Incoming, Routed, WireError, WireReader};
use ut_pex::{Config, Event, Peer, PeerFlags, PexState};

const INFO_HASH: [u8; 20] = *b"blocking pair test!!";
/// One protocol minute is 0.6 wall seconds.
const WARP: f64 = 100.0;
/// Each peer gives up after this long.
const WALL_LIMIT: Duration = Duration::from_secs(20);

/// What one peer does and what it saw.
struct Outcome {
    events: Vec<Event>,
    frames_sent: u64,
}

/// The blocking driver: handshakes, then block in `read` until the state's next deadline,
/// and drain the state after every input. `drop_after_first` is dropped right after the
/// first frame goes out. Returns when `done(events)` holds or the remote closes.
fn drive(
    mut stream: TcpStream,
    mut state: PexState,
    clock: WarpClock,
    drop_after_first: Option<SocketAddr>,
    done: impl Fn(&[Event]) -> bool,
) -> Result<Outcome, String> {
    let deadline = Instant::now() + WALL_LIMIT;
    let mut reader = WireReader::new(INFO_HASH);
    let mut events = Vec::new();
    let send = |stream: &mut TcpStream, bytes: &[u8]| {
        stream.write_all(bytes).map_err(|e| format!("write: {e}"))
    };
    send(&mut stream, &wire::handshake(&INFO_HASH, &wire::peer_id(7)))?;
    state.start(clock.now());
    loop {
        while let Some(frame) = state.poll_transmit() {
            send(&mut stream, frame.as_bytes())?;
            if state.stats().frames_sent == 1 {
                if let Some(addr) = drop_after_first {
                    state.drop_peer(addr);
                }
            }
        }
        events.extend(std::iter::from_fn(|| state.poll_event()));
        if done(&events) {
            break;
        }

        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "no result within {WALL_LIMIT:?}; events: {events:?}"
            ));
        }
        let wake = state
            .poll_timeout()
            .map_or(deadline, |at| clock.wall_instant(at))
            .min(deadline);
        let timeout = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        match reader.read_from(&mut stream) {
            Ok(0) => break, // the remote closed
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                state.handle_timeout(clock.now());
                continue;
            }
            Err(e) => return Err(format!("read: {e}")),
        }
        let now = clock.now();
        while let Some(incoming) = reader.next().map_err(|e| e.to_string())? {
            match incoming {
                Incoming::Handshake { .. } => {
                    let frame =
                        wire::extended_handshake_frame(state.local_extension_id(), None, None);
                    send(&mut stream, &frame)?;
                }
                Incoming::Extended { id, payload } => {
                    match wire::route_extended(&mut state, now, id, payload) {
                        Ok(Routed::Pex(Err(e))) => return Err(format!("ut_pex refused: {e}")),
                        Err(e) => return Err(e.to_string()),
                        Ok(_) => {}
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Outcome {
        events,
        frames_sent: state.stats().frames_sent,
    })
}

#[test]
fn added_then_dropped_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bob_stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (alice_stream, _) = listener.accept().unwrap();
    drop(listener);

    let x: SocketAddr = "10.1.2.3:6881".parse().unwrap();
    let y: SocketAddr = "[2001:db8::7]:51413".parse().unwrap();
    let clock = WarpClock::new(WARP);

    // Alice advertises x and y, then drops x once the first frame is out.
    let mut alice_state = PexState::new(Config::default());
    alice_state.add_peer(x, PeerFlags::SEED);
    alice_state.add_peer(y, PeerFlags::REACHABLE | PeerFlags::UTP);
    let alice = thread::spawn(move || drive(alice_stream, alice_state, clock, Some(x), |_| false));

    // Bob listens until he hears that x is gone.
    let bob_done = move |events: &[Event]| events.contains(&Event::PeerDropped(x));
    let bob = thread::spawn(move || {
        drive(
            bob_stream,
            PexState::new(Config::default()),
            clock,
            None,
            bob_done,
        )
    });

    // Bob returns first; his socket closes, which ends Alice's loop.
    let bob = bob.join().unwrap().unwrap();
    let alice = alice.join().unwrap().unwrap();

    assert_eq!(
        bob.events,
        [
            Event::Enabled,
            Event::PeerAdded(Peer::new(x, PeerFlags::SEED)),
            Event::PeerAdded(Peer::new(y, PeerFlags::REACHABLE | PeerFlags::UTP)),
            Event::PeerDropped(x),
        ]
    );
    assert_eq!(bob.frames_sent, 0, "Bob had nothing to advertise");
    assert_eq!(alice.frames_sent, 2, "the add frame, then the drop frame");
    assert_eq!(alice.events, [Event::Enabled]);
    // The drop came an interval after the first frame: the warped clock moved past it.
    assert!(clock.elapsed() >= Config::default().get_send_interval());
}

/// A BitTorrent handshake followed by an extended handshake and a keep-alive.
fn opening_bytes(info_hash: &[u8; 20]) -> Vec<u8> {
    let state = PexState::new(Config::default());
    let mut bytes = wire::handshake(info_hash, &wire::peer_id(1)).to_vec();
    bytes.extend_from_slice(&wire::extended_handshake_frame(
        state.local_extension_id(),
        Some(6881),
        None,
    ));
    bytes.extend_from_slice(&wire::KEEP_ALIVE);
    bytes
}

#[test]
fn reader_parses_everything_in_one_segment() {
    let mut reader = WireReader::new(INFO_HASH);
    reader.feed(&opening_bytes(&INFO_HASH));
    assert!(matches!(
        reader.next(),
        Ok(Some(Incoming::Handshake { .. }))
    ));
    let mut state = PexState::new(Config::default());
    let Ok(Some(Incoming::Extended { id: 0, payload })) = reader.next() else {
        panic!("expected the extended handshake");
    };
    let Ok(Routed::Handshake(hs)) = wire::route_extended(&mut state, Instant::now(), 0, payload)
    else {
        panic!("expected the handshake to be routed");
    };
    assert_eq!(hs.listen_port, Some(6881));
    assert!(state.is_enabled());
    assert!(matches!(reader.next(), Ok(Some(Incoming::KeepAlive))));
    assert!(matches!(reader.next(), Ok(None)));
}

#[test]
fn reader_handles_bytes_one_at_a_time() {
    let mut reader = WireReader::new(INFO_HASH);
    let mut items = 0;
    for byte in opening_bytes(&INFO_HASH) {
        reader.feed(&[byte]);
        while reader.next().unwrap().is_some() {
            items += 1;
        }
    }
    assert_eq!(items, 3);
}

#[test]
fn reader_errors_are_clear() {
    let mut reader = WireReader::new(INFO_HASH);
    reader.feed(&opening_bytes(&[9; 20]));
    let err = reader.next().unwrap_err();
    assert!(matches!(err, WireError::WrongInfoHash(h) if h == [9; 20]));
    assert!(err.to_string().contains("another torrent"), "{err}");

    let mut reader = WireReader::new(INFO_HASH);
    reader.feed(b"GET / HTTP/1.1\r\n");
    assert!(matches!(reader.next(), Err(WireError::BadHandshake)));

    let mut reader = WireReader::new(INFO_HASH);
    let mut no_bep10 = wire::handshake(&INFO_HASH, &[0; 20]);
    no_bep10[25] = 0;
    reader.feed(&no_bep10);
    assert!(matches!(reader.next(), Err(WireError::NoExtensionProtocol)));

    let mut reader = WireReader::new(INFO_HASH);
    reader.feed(&wire::handshake(&INFO_HASH, &[0; 20]));
    reader.next().unwrap();
    let too_long = (wire::MAX_MESSAGE_LEN as u32 + 1).to_be_bytes();
    reader.feed(&too_long);
    let err = reader.next().unwrap_err();
    assert!(matches!(err, WireError::TooLarge { .. }));
    assert!(err.to_string().contains("exceeds"), "{err}");
}
