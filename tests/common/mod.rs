//! Shared test helpers: a two-peer [`Pair`] harness under virtual time (quinn's `Pair`
//! idea), an independent frame decoder built on `bt_bencode`, address helpers, and a
//! snapshot of a state's observable surface.
//!
//! Every test binary compiles its own copy and uses a different subset of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use bt_bencode::Value;
use ut_pex::handshake::HandshakeBuilder;
use ut_pex::message::encode_payload;
use ut_pex::{Config, Event, Frame, MessageError, Peer, PeerFlags, PexState, Stats};

/// The default send interval (`Config::default()`).
pub(crate) const INTERVAL: Duration = Duration::from_secs(65);

/// The most steps [`Pair::drive_for`] takes before calling it a busy loop.
const STEP_GUARD: usize = 100_000;

/// Which side of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The first state.
    A,
    /// The second state.
    B,
}

/// Two `PexState`s connected back to back, with virtual time.
///
/// Frames are delivered without latency: a frame polled from `a` at `now` is handed to
/// `b.handle_message(now, payload)` in the same step. Every frame, event and receive error
/// is recorded with the virtual instant it happened at.
pub(crate) struct Pair {
    /// The first state.
    pub(crate) a: PexState,
    /// The second state.
    pub(crate) b: PexState,
    /// The instant the pair was created: virtual time 0.
    pub(crate) start: Instant,
    /// The current virtual instant.
    pub(crate) now: Instant,
    /// Frames polled from `a`, not yet handed to `b`.
    pub(crate) a_to_b: VecDeque<Frame>,
    /// Frames polled from `b`, not yet handed to `a`.
    pub(crate) b_to_a: VecDeque<Frame>,
    /// Every frame `a` sent, with the instant it was polled.
    pub(crate) sent_a: Vec<(Instant, Frame)>,
    /// Every frame `b` sent.
    pub(crate) sent_b: Vec<(Instant, Frame)>,
    /// Every event `a` emitted, with the instant it was polled.
    pub(crate) events_a: Vec<(Instant, Event)>,
    /// Every event `b` emitted.
    pub(crate) events_b: Vec<(Instant, Event)>,
    /// Errors `a` returned for frames `b` sent.
    pub(crate) errors_a: Vec<(Instant, MessageError)>,
    /// Errors `b` returned for frames `a` sent.
    pub(crate) errors_b: Vec<(Instant, MessageError)>,
    /// The `ut_pex` id `a` last advertised to `b` (what `b`'s frames must carry).
    pub(crate) id_of_a: u8,
    /// The `ut_pex` id `b` last advertised to `a`.
    pub(crate) id_of_b: u8,
}

impl Pair {
    /// Two states with these configs; no handshake yet, neither started.
    pub(crate) fn new(config_a: Config, config_b: Config) -> Self {
        let now = Instant::now();
        Self {
            a: PexState::new(config_a),
            b: PexState::new(config_b),
            start: now,
            now,
            a_to_b: VecDeque::new(),
            b_to_a: VecDeque::new(),
            sent_a: Vec::new(),
            sent_b: Vec::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            errors_a: Vec::new(),
            errors_b: Vec::new(),
            id_of_a: 0,
            id_of_b: 0,
        }
    }

    /// Two default states, handshakes exchanged and both started.
    pub(crate) fn connected() -> Self {
        let mut pair = Self::new(Config::default(), Config::default());
        pair.connect();
        pair
    }

    /// Virtual time elapsed since the pair was created.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The state on `side`.
    pub(crate) fn state(&mut self, side: Side) -> &mut PexState {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Each side sends its real extended handshake (built with `HandshakeBuilder` from its
    /// `local_extension_id()`, so a private side leaves `ut_pex` out) to the other.
    pub(crate) fn handshake(&mut self) {
        let hs_a = own_handshake(&self.a);
        let hs_b = own_handshake(&self.b);
        self.id_of_a = self.a.local_extension_id().unwrap_or(0);
        self.id_of_b = self.b.local_extension_id().unwrap_or(0);
        self.b
            .handle_extended_handshake(self.now, &hs_a)
            .expect("a's handshake decodes");
        self.a
            .handle_extended_handshake(self.now, &hs_b)
            .expect("b's handshake decodes");
        self.settle();
    }

    /// Handshakes, then both sides start.
    pub(crate) fn connect(&mut self) {
        self.handshake();
        self.a.start(self.now);
        self.b.start(self.now);
        self.settle();
    }

    /// `side` sends a later handshake whose `m` gives `ut_pex` this id (`None`: a handshake
    /// that does not mention `ut_pex`, which BEP 10 says changes nothing).
    pub(crate) fn rehandshake(&mut self, from: Side, ut_pex: Option<u8>) {
        let mut builder = HandshakeBuilder::new().extension("ut_metadata", 2);
        if let Some(id) = ut_pex {
            builder = builder.extension("ut_pex", id);
        }
        let payload = builder.build();
        let now = self.now;
        match from {
            Side::A => {
                if let Some(id) = ut_pex {
                    self.id_of_a = id;
                }
                self.b.handle_extended_handshake(now, &payload).unwrap();
            }
            Side::B => {
                if let Some(id) = ut_pex {
                    self.id_of_b = id;
                }
                self.a.handle_extended_handshake(now, &payload).unwrap();
            }
        }
        self.settle();
    }

    /// Runs everything due at `now`, as a host's event loop would: `handle_timeout` for a
    /// side whose deadline has come (commands such as `add_peer` take no instant, so their
    /// deadline may be `now` itself), drains both sides' outputs (frames go in flight,
    /// events are recorded) and delivers every frame in flight, until nothing moves. Checks
    /// that each frame carries the id the receiver advertised last, and the no-busy-loop
    /// rule.
    pub(crate) fn settle(&mut self) {
        for _ in 0..STEP_GUARD {
            self.fire_due();
            self.drain();
            let mut moved = false;
            while let Some(frame) = self.a_to_b.pop_front() {
                moved = true;
                if let Err(e) = self.b.handle_message(self.now, &frame.payload()) {
                    self.errors_b.push((self.now, e));
                }
            }
            while let Some(frame) = self.b_to_a.pop_front() {
                moved = true;
                if let Err(e) = self.a.handle_message(self.now, &frame.payload()) {
                    self.errors_a.push((self.now, e));
                }
            }
            if !moved {
                return;
            }
        }
        panic!("frames still flowing after {STEP_GUARD} rounds at one instant");
    }

    /// `handle_timeout(now)` on each side whose deadline is `now` or earlier; asserts that
    /// the deadline then moves past `now` (or goes away).
    fn fire_due(&mut self) {
        let now = self.now;
        for side in [Side::A, Side::B] {
            let state = self.state(side);
            if state.poll_timeout().is_some_and(|t| t <= now) {
                state.handle_timeout(now);
                let after = state.poll_timeout();
                assert!(
                    after.map_or(true, |t| t > now),
                    "busy loop: {side:?} still due at {after:?} after handle_timeout({now:?})"
                );
            }
        }
    }

    fn drain(&mut self) {
        while let Some(frame) = self.a.poll_transmit() {
            assert_ne!(self.id_of_b, 0, "a sent to a remote that has ut_pex off");
            assert_eq!(frame.extension_id(), self.id_of_b, "a used a stale id");
            self.sent_a.push((self.now, frame.clone()));
            self.a_to_b.push_back(frame);
        }
        while let Some(frame) = self.b.poll_transmit() {
            assert_ne!(self.id_of_a, 0, "b sent to a remote that has ut_pex off");
            assert_eq!(frame.extension_id(), self.id_of_a, "b used a stale id");
            self.sent_b.push((self.now, frame.clone()));
            self.b_to_a.push_back(frame);
        }
        while let Some(event) = self.a.poll_event() {
            self.events_a.push((self.now, event));
        }
        while let Some(event) = self.b.poll_event() {
            self.events_b.push((self.now, event));
        }
    }

    /// The earliest deadline of either side.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match (self.a.poll_timeout(), self.b.poll_timeout()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    /// One step: delivers what is in flight, jumps time to the earliest deadline (never
    /// backwards), calls `handle_timeout` on the sides that are due, drains and delivers.
    /// Returns `false` when nothing is scheduled. Asserts the no-busy-loop rule: after
    /// `handle_timeout(now)`, a side's `poll_timeout()` is `None` or later than `now`.
    pub(crate) fn step(&mut self) -> bool {
        self.settle();
        let Some(next) = self.next_timeout() else {
            return false;
        };
        self.now = self.now.max(next);
        self.settle();
        true
    }

    /// Steps until nothing is scheduled; panics after `max_steps` (a busy loop or a state
    /// that never goes idle). Returns the number of steps taken.
    pub(crate) fn drive_bounded(&mut self, max_steps: usize) -> usize {
        for steps in 0..=max_steps {
            if !self.step() {
                return steps;
            }
        }
        panic!("still busy after {max_steps} steps");
    }

    /// Runs every deadline up to `now + duration`, then sets `now` to that instant.
    pub(crate) fn drive_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        for _ in 0..STEP_GUARD {
            self.settle();
            match self.next_timeout() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("more than {STEP_GUARD} steps within {duration:?}: busy loop");
    }

    /// Moves virtual time forward without running anything.
    pub(crate) fn advance(&mut self, duration: Duration) {
        self.now += duration;
    }

    /// The frames `side` sent, decoded independently, with their virtual time.
    pub(crate) fn decoded(&self, side: Side) -> Vec<(Duration, Decoded)> {
        let sent = match side {
            Side::A => &self.sent_a,
            Side::B => &self.sent_b,
        };
        sent.iter()
            .map(|(t, f)| (*t - self.start, decode_frame(f)))
            .collect()
    }

    /// The events `side` emitted, without times.
    pub(crate) fn events(&self, side: Side) -> Vec<Event> {
        let events = match side {
            Side::A => &self.events_a,
            Side::B => &self.events_b,
        };
        events.iter().map(|(_, e)| *e).collect()
    }
}

/// The extended handshake a host would send for this state.
pub(crate) fn own_handshake(state: &PexState) -> Vec<u8> {
    let mut builder = HandshakeBuilder::new()
        .extension("ut_metadata", 2)
        .listen_port(6881);
    if let Some(id) = state.local_extension_id() {
        builder = builder.extension(state.extension_name(), id);
    }
    builder.build()
}

/// A handshake payload with `m.ut_pex` = `id`.
pub(crate) fn handshake_with(id: u8) -> Vec<u8> {
    HandshakeBuilder::new().extension("ut_pex", id).build()
}

/// A frame decoded without the crate's decoder: header checked, payload parsed with
/// `bt_bencode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The extension id in the header.
    pub(crate) ext_id: u8,
    /// The payload's keys.
    pub(crate) keys: Vec<String>,
    /// `added` then `added6`, each with its flag byte (`None` if its flag string is short).
    pub(crate) added: Vec<(SocketAddr, Option<u8>)>,
    /// `dropped` then `dropped6`.
    pub(crate) dropped: Vec<SocketAddr>,
    /// Byte lengths: `added`, `added.f`, `added6`, `added6.f` (0 when absent).
    pub(crate) lens: [usize; 4],
}

impl Decoded {
    /// The added addresses.
    pub(crate) fn added_addrs(&self) -> Vec<SocketAddr> {
        self.added.iter().map(|(a, _)| *a).collect()
    }
}

/// Decodes a whole frame independently of the crate.
pub(crate) fn decode_frame(frame: &Frame) -> Decoded {
    let bytes = frame.as_bytes();
    assert!(bytes.len() >= 6, "frame shorter than its header");
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    assert_eq!(len, bytes.len() - 4, "length prefix");
    assert_eq!(bytes[4], 20, "extended message id");
    let value: Value = bt_bencode::from_slice(&bytes[6..]).expect("payload is bencode");
    let Value::Dict(dict) = value else {
        panic!("payload is not a dict")
    };
    let get = |key: &str| -> &[u8] {
        match dict.get(key.as_bytes()) {
            Some(Value::ByteStr(s)) => s,
            Some(_) => panic!("{key} is not a byte string"),
            None => &[],
        }
    };
    let keys = dict
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let (added, added_f, added6, added6_f) =
        (get("added"), get("added.f"), get("added6"), get("added6.f"));
    let (dropped, dropped6) = (get("dropped"), get("dropped6"));
    for (key, s, unit) in [
        ("added", added, 6),
        ("added6", added6, 18),
        ("dropped", dropped, 6),
        ("dropped6", dropped6, 18),
    ] {
        assert_eq!(s.len() % unit, 0, "{key} has a partial entry");
    }
    let mut out = Vec::new();
    for (i, e) in added.chunks(6).enumerate() {
        out.push((v4_entry(e), added_f.get(i).copied()));
    }
    for (i, e) in added6.chunks(18).enumerate() {
        out.push((v6_entry(e), added6_f.get(i).copied()));
    }
    let mut gone: Vec<SocketAddr> = dropped.chunks(6).map(v4_entry).collect();
    gone.extend(dropped6.chunks(18).map(v6_entry));
    Decoded {
        ext_id: bytes[5],
        keys,
        added: out,
        dropped: gone,
        lens: [added.len(), added_f.len(), added6.len(), added6_f.len()],
    }
}

fn v4_entry(e: &[u8]) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(e[0], e[1], e[2], e[3])),
        u16::from_be_bytes([e[4], e[5]]),
    )
}

fn v6_entry(e: &[u8]) -> SocketAddr {
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&e[..16]);
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::from(ip)),
        u16::from_be_bytes([e[16], e[17]]),
    )
}

/// A global IPv4 address, distinct for each `i` (45.1.x.y:6881).
pub(crate) fn v4(i: usize) -> SocketAddr {
    SocketAddr::from(([45, 1, (i >> 8) as u8, i as u8], 6881))
}

/// A global IPv6 address, distinct for each `i` (2a01:4f8::i, port 6881).
pub(crate) fn v6(i: usize) -> SocketAddr {
    let ip = Ipv6Addr::new(0x2a01, 0x4f8, 0, 0, 0, 0, (i >> 16) as u16, i as u16);
    SocketAddr::new(IpAddr::V6(ip), 6881)
}

/// Parses an address literal.
pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address literal")
}

/// A peer with no flags.
pub(crate) fn bare(addr: SocketAddr) -> Peer {
    Peer::new(addr, PeerFlags::EMPTY)
}

/// A ut_pex payload adding these addresses (flags 0) and dropping those.
pub(crate) fn pex(added: &[SocketAddr], dropped: &[SocketAddr]) -> Vec<u8> {
    let added: Vec<Peer> = added.iter().copied().map(bare).collect();
    encode_payload(&added, dropped)
}

/// A capture from `tests/data/`.
pub(crate) fn capture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Stats with the error counters zeroed: what an `Err` may change.
pub(crate) fn stats_sans_errors(mut stats: Stats) -> Stats {
    stats.errors_too_large = 0;
    stats.errors_decode = 0;
    stats.errors_too_frequent = 0;
    stats.errors_handshake = 0;
    stats
}

/// Everything observable about a state through `&self`, error counters left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Observed {
    /// `remote_peers()`.
    pub(crate) remote_peers: Vec<Peer>,
    /// `is_enabled()`.
    pub(crate) enabled: bool,
    /// `is_started()`.
    pub(crate) started: bool,
    /// `remote_extension_id()`.
    pub(crate) remote_id: u8,
    /// `poll_timeout()`.
    pub(crate) timeout: Option<Instant>,
    /// `pending_events()`.
    pub(crate) pending_events: usize,
    /// `live_peers()`.
    pub(crate) live_peers: usize,
    /// `heap_bytes()`.
    pub(crate) heap_bytes: usize,
    /// `stats()` without the error counters.
    pub(crate) stats: Stats,
}

/// Snapshots a state.
pub(crate) fn observe(state: &PexState) -> Observed {
    Observed {
        remote_peers: state.remote_peers().collect(),
        enabled: state.is_enabled(),
        started: state.is_started(),
        remote_id: state.remote_extension_id(),
        timeout: state.poll_timeout(),
        pending_events: state.pending_events(),
        live_peers: state.live_peers(),
        heap_bytes: state.heap_bytes(),
        stats: stats_sans_errors(state.stats()),
    }
}

/// Polls every frame, decoded.
pub(crate) fn frames(state: &mut PexState) -> Vec<Decoded> {
    std::iter::from_fn(|| state.poll_transmit())
        .map(|f| decode_frame(&f))
        .collect()
}

/// Polls every event.
pub(crate) fn events(state: &mut PexState) -> Vec<Event> {
    std::iter::from_fn(|| state.poll_event()).collect()
}
