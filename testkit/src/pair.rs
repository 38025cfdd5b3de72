//! The [`Pair`] harness: two [`Host`]s (`PexState`s, or one-connection `Swarm`s) back to
//! back under virtual time (quinn's `Pair` idea), plus small helpers for scenario tests:
//! handshakes, a snapshot of a state's observable surface, draining frames and events, the
//! captures of `tests/data/`.

use std::collections::BTreeSet;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ut_pex::handshake::{HandshakeBuilder, UT_PEX};
use ut_pex::{Config, Event, Frame, MessageError, Peer, PexState, Stats};

use crate::addr::{v4, v6};
pub use crate::host::{Host, OneConnSwarm};
use crate::reference::{decode_frame, Decoded};
pub use crate::script::Side;

/// The default send interval (`Config::default()`).
pub const INTERVAL: Duration = Duration::from_secs(65);

/// The most steps [`Pair::drive_for`] takes before calling it a busy loop.
const STEP_GUARD: usize = 100_000;

/// Two hosts (by default `PexState`s) connected back to back, with virtual time.
///
/// Frames are delivered without latency: a frame polled from `a` at `now` is handed to
/// `b.handle_message(now, payload)` in the same step. Every frame, event and receive error
/// is recorded with the virtual instant it happened at.
#[derive(Debug)]
pub struct Pair<H = PexState> {
    /// The first state.
    pub a: H,
    /// The second state.
    pub b: H,
    /// The instant the pair was created: virtual time 0.
    pub start: Instant,
    /// The current virtual instant.
    pub now: Instant,
    /// Frames polled from `a`, not yet handed to `b`.
    pub a_to_b: VecDeque<Frame>,
    /// Frames polled from `b`, not yet handed to `a`.
    pub b_to_a: VecDeque<Frame>,
    /// Every frame `a` sent, with the instant it was polled.
    pub sent_a: Vec<(Instant, Frame)>,
    /// Every frame `b` sent.
    pub sent_b: Vec<(Instant, Frame)>,
    /// Every event `a` emitted, with the instant it was polled.
    pub events_a: Vec<(Instant, Event)>,
    /// Every event `b` emitted.
    pub events_b: Vec<(Instant, Event)>,
    /// Errors `a` returned for frames `b` sent.
    pub errors_a: Vec<(Instant, MessageError)>,
    /// Errors `b` returned for frames `a` sent.
    pub errors_b: Vec<(Instant, MessageError)>,
    /// The `ut_pex` id `a` last advertised to `b` (what `b`'s frames must carry).
    pub id_of_a: u8,
    /// The `ut_pex` id `b` last advertised to `a`.
    pub id_of_b: u8,
}

impl<H: Host> Pair<H> {
    /// Two states with these configs; no handshake yet, neither started.
    pub fn new(config_a: Config, config_b: Config) -> Self {
        let now = Instant::now();
        Self {
            a: H::open(config_a, now, None),
            b: H::open(config_b, now, None),
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
    pub fn connected() -> Self {
        let mut pair = Self::new(Config::default(), Config::default());
        pair.connect();
        pair
    }

    /// Virtual time elapsed since the pair was created.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The state on `side`.
    pub fn state(&mut self, side: Side) -> &mut H {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Each side sends its real extended handshake (built with `HandshakeBuilder` from its
    /// `local_extension_id()`, so a private side leaves `ut_pex` out) to the other.
    pub fn handshake(&mut self) {
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
    pub fn connect(&mut self) {
        self.handshake();
        self.a.start(self.now);
        self.b.start(self.now);
        self.settle();
    }

    /// `side` sends a later handshake whose `m` gives `ut_pex` this id (`None`: a handshake
    /// that does not mention `ut_pex`, which BEP 10 says changes nothing).
    pub fn rehandshake(&mut self, from: Side, ut_pex: Option<u8>) {
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
    pub fn settle(&mut self) {
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
    pub fn next_timeout(&self) -> Option<Instant> {
        match (self.a.poll_timeout(), self.b.poll_timeout()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    /// One step: delivers what is in flight, jumps time to the earliest deadline (never
    /// backwards), calls `handle_timeout` on the sides that are due, drains and delivers.
    /// Returns `false` when nothing is scheduled. Asserts the no-busy-loop rule: after
    /// `handle_timeout(now)`, a side's `poll_timeout()` is `None` or later than `now`.
    pub fn step(&mut self) -> bool {
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
    pub fn drive_bounded(&mut self, max_steps: usize) -> usize {
        for steps in 0..=max_steps {
            if !self.step() {
                return steps;
            }
        }
        panic!("still busy after {max_steps} steps");
    }

    /// Runs every deadline up to `now + duration`, then sets `now` to that instant.
    pub fn drive_for(&mut self, duration: Duration) {
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
    pub fn advance(&mut self, duration: Duration) {
        self.now += duration;
    }

    /// The frames `side` sent, decoded independently, with their virtual time.
    pub fn decoded(&self, side: Side) -> Vec<(Duration, Decoded)> {
        let sent = match side {
            Side::A => &self.sent_a,
            Side::B => &self.sent_b,
        };
        sent.iter()
            .map(|(t, f)| (*t - self.start, decode_frame(f)))
            .collect()
    }

    /// The events `side` emitted, without times.
    pub fn events(&self, side: Side) -> Vec<Event> {
        let events = match side {
            Side::A => &self.events_a,
            Side::B => &self.events_b,
        };
        events.iter().map(|(_, e)| *e).collect()
    }
}

/// The extended handshake a host would send for this state.
pub fn own_handshake(state: &impl Host) -> Vec<u8> {
    let mut builder = HandshakeBuilder::new()
        .extension("ut_metadata", 2)
        .listen_port(6881);
    if let Some(id) = state.local_extension_id() {
        builder = builder.extension(UT_PEX, id);
    }
    builder.build()
}

/// A handshake payload with `m.ut_pex` = `id`.
pub fn handshake_with(id: u8) -> Vec<u8> {
    HandshakeBuilder::new().extension("ut_pex", id).build()
}

/// A capture from `tests/data/`.
pub fn capture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Stats with the error counters zeroed: what an `Err` may change.
pub fn stats_sans_errors(mut stats: Stats) -> Stats {
    stats.errors_too_large = 0;
    stats.errors_decode = 0;
    stats.errors_too_frequent = 0;
    stats.errors_handshake = 0;
    stats
}

/// Everything observable about a state through `&self`, error counters left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// `remote_peers()`.
    pub remote_peers: Vec<Peer>,
    /// `is_enabled()`.
    pub enabled: bool,
    /// `is_started()`.
    pub started: bool,
    /// `remote_extension_id()`.
    pub remote_id: u8,
    /// `poll_timeout()`.
    pub timeout: Option<Instant>,
    /// `pending_events()`.
    pub pending_events: usize,
    /// `live_peers()`.
    pub live_peers: usize,
    /// `heap_bytes()`.
    pub heap_bytes: usize,
    /// `stats()` without the error counters.
    pub stats: Stats,
}

/// Snapshots a state.
pub fn observe(state: &impl Host) -> Observed {
    Observed {
        remote_peers: state.remote_peers().collect(),
        ..observe_except_claims(state)
    }
}

/// [`observe`] with `remote_peers` left empty, for a caller that reads the claims into a
/// buffer of its own (no allocation).
pub fn observe_except_claims(state: &impl Host) -> Observed {
    Observed {
        remote_peers: Vec::new(),
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
pub fn frames(state: &mut impl Host) -> Vec<Decoded> {
    std::iter::from_fn(|| state.poll_transmit())
        .map(|f| decode_frame(&f))
        .collect()
}

/// Polls every event.
pub fn events(state: &mut impl Host) -> Vec<Event> {
    std::iter::from_fn(|| state.poll_event()).collect()
}

/// One second.
pub const SECOND: Duration = Duration::from_secs(1);
/// One minute.
pub const MINUTE: Duration = Duration::from_secs(60);

/// A state that is enabled (remote id 1) and started at the returned instant, events drained.
pub fn solo<H: Host>(config: Config) -> (H, Instant) {
    solo_with_remote(config, None)
}

/// [`solo`], the host told the remote's address first (`PexState::set_remote_address`; a
/// `Swarm` connection's remote).
pub fn solo_with_remote<H: Host>(config: Config, remote: Option<SocketAddr>) -> (H, Instant) {
    let t0 = Instant::now();
    let mut state = H::open(config, t0, remote);
    state
        .handle_extended_handshake(t0, &handshake_with(1))
        .unwrap();
    state.start(t0);
    assert_eq!(events(&mut state), [Event::Enabled]);
    (state, t0)
}

/// The 120 peers used by the batching tests, IPv4 and IPv6 interleaved.
pub fn many(n: usize, offset: usize) -> Vec<SocketAddr> {
    (offset..offset + n)
        .map(|i| if i % 2 == 0 { v4(i) } else { v6(i) })
        .collect()
}

/// The addresses as a set.
pub fn set(addrs: impl IntoIterator<Item = SocketAddr>) -> BTreeSet<SocketAddr> {
    addrs.into_iter().collect()
}

/// The addresses of the `PeerAdded` events.
pub fn added_events(events: &[Event]) -> Vec<SocketAddr> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PeerAdded(p) => Some(p.addr),
            _ => None,
        })
        .collect()
}

/// The addresses of the `PeerDropped` events.
pub fn dropped_events(events: &[Event]) -> Vec<SocketAddr> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PeerDropped(a) => Some(*a),
            _ => None,
        })
        .collect()
}

/// Runs scenarios against both hosts. Each scenario is a plain generic function
/// `fn name<H: Host>()` (so rustfmt and the compiler see it as ordinary code), and
/// `for_each_host!(name, ...)` instantiates it as the tests `pex_state::name` (`H` is
/// `PexState`) and `one_conn_swarm::name` (`H` is [`OneConnSwarm`]). Inside a scenario,
/// `Pair::<H>::new` and [`solo::<H>`](solo) make the host. A scenario left out of the list
/// is an unused function, which the workspace's `-D warnings` turns into an error.
#[macro_export]
macro_rules! for_each_host {
    ($($scenario:ident),+ $(,)?) => {
        mod pex_state {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario::<::ut_pex::PexState>()
                }
            )+
        }
        mod one_conn_swarm {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario::<$crate::host::OneConnSwarm>()
                }
            )+
        }
    };
}
