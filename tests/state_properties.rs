//! Model-based quickcheck properties of `PexState`: random scripts over every input (handshakes
//! with any id including 0, valid and invalid messages, time steps including zero, backwards
//! and huge ones, host adds and drops from small address pools so collisions happen,
//! start/stop/reset, polls) are replayed against a state and checked against a simple model
//! of what the host and the remote were told.
//!
//! Each `#[test]` checks one property over the same kind of scripts.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use testkit::pair::{observe, Observed};
use testkit::reference::{decode_frame, Decoded};
use ut_pex::handshake::HandshakeBuilder;
use ut_pex::message::encode_payload;
use ut_pex::{Config, Event, Peer, PeerFlags, PexState, MAX_PEERS_PER_MESSAGE};

// ---- the address pools ------------------------------------------------------------------------

/// Addresses shared by the host's adds and the remote's messages, so that they collide:
/// duplicates, an IPv4-mapped twin, local-scope ones, and every kind the hygiene rules ignore.
fn small_pool() -> [SocketAddr; 16] {
    let a = |s: &str| s.parse::<SocketAddr>().unwrap();
    [
        a("45.1.0.1:6881"),
        a("45.1.0.2:6881"),
        a("45.1.0.1:6882"),
        a("[2a01:4f8::1]:6881"),
        a("[::ffff:45.1.0.2]:6881"), // the same peer as #1
        a("10.0.0.1:6881"),
        a("127.0.0.1:7000"),
        a("45.1.0.3:0"),
        a("0.0.0.0:6881"),
        a("224.0.0.1:6881"),
        a("255.255.255.255:6881"),
        a("[fe80::1]:6881"),
        a("45.1.0.4:1000"),
        a("45.1.0.5:1000"),
        a("[2a01:4f8::5]:1000"),
        a("45.1.0.6:1000"),
    ]
}

/// How many addresses the bulk pool holds.
const BULK: usize = 150;

/// Many distinct global addresses, for lists longer than 50.
fn bulk(i: usize) -> SocketAddr {
    if i % 2 == 0 {
        SocketAddr::from(([45, 2, (i >> 8) as u8, i as u8], 2000))
    } else {
        let ip = Ipv6Addr::new(0x2a01, 0x4f8, 1, 0, 0, 0, 0, i as u16);
        SocketAddr::new(IpAddr::V6(ip), 2000)
    }
}

fn small(i: u8) -> SocketAddr {
    small_pool()[usize::from(i) % 16]
}

/// IPv4-mapped IPv6 as IPv4, computed here rather than with the crate's helper.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// What `add_peer` accepts (its documented rule).
fn host_usable(addr: SocketAddr) -> bool {
    let broadcast = matches!(addr, SocketAddr::V4(v4) if v4.ip().is_broadcast());
    addr.port() != 0 && !addr.ip().is_unspecified() && !addr.ip().is_multicast() && !broadcast
}

/// What a received add may become: not port 0, unspecified, multicast or broadcast.
fn remote_usable(addr: SocketAddr) -> bool {
    host_usable(addr) && addr.ip() != IpAddr::V4(Ipv4Addr::BROADCAST)
}

// ---- scripts ----------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Step {
    Zero,
    Millis(u32),
    Interval,
    Back(u32),
    Huge,
}

#[derive(Clone, Debug)]
enum Msg {
    /// Adds and drops from the small pool (flags per add); duplicates and add+drop happen.
    Entries(Vec<(u8, u8)>, Vec<u8>),
    /// A run of the bulk pool, added or dropped.
    Bulk { start: u8, len: u8, drop: bool },
    /// A real capture.
    Capture(u8),
    /// Random bytes (almost always undecodable).
    Garbage(Vec<u8>),
    /// A valid message cut short.
    Truncated(Vec<u8>, u8),
    /// Over `max_message_size`.
    TooLarge,
    /// `de`.
    Empty,
}

#[derive(Clone, Debug)]
enum Op {
    /// A handshake whose `m` has `ut_pex` = id (`None`: no `ut_pex` key).
    Handshake(Option<u8>),
    BadHandshake,
    Message(Msg),
    Time(Step),
    Timeout,
    Add(u8, u8),
    Drop(u8),
    AddBulk(u8, u8),
    DropBulk(u8, u8),
    RemoteAddress(u8),
    Start,
    Stop,
    Reset,
    PollTransmit,
    PollEvent,
    PollAll,
}

fn below(g: &mut Gen, n: u32) -> u32 {
    u32::arbitrary(g) % n
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        match below(g, 100) {
            0..=14 => Step::Zero,
            15..=44 => Step::Millis(below(g, 70_000)),
            45..=59 => Step::Millis(below(g, 5_000)),
            60..=89 => Step::Interval,
            90..=97 => Step::Back(below(g, 600)),
            _ => Step::Huge,
        }
    }
}

impl Arbitrary for Msg {
    fn arbitrary(g: &mut Gen) -> Self {
        let idx = |g: &mut Gen| (below(g, 16) as u8, u8::arbitrary(g));
        match below(g, 100) {
            0..=44 => {
                let adds = (0..below(g, 6)).map(|_| idx(g)).collect();
                let drops = (0..below(g, 5)).map(|_| below(g, 16) as u8).collect();
                Msg::Entries(adds, drops)
            }
            45..=59 => Msg::Bulk {
                start: below(g, BULK as u32) as u8,
                len: below(g, 120) as u8,
                drop: bool::arbitrary(g),
            },
            60..=69 => Msg::Capture(u8::arbitrary(g)),
            70..=79 => Msg::Garbage(Vec::arbitrary(g)),
            80..=89 => {
                let adds: Vec<u8> = (0..below(g, 4) + 1).map(|_| below(g, 16) as u8).collect();
                Msg::Truncated(adds, u8::arbitrary(g))
            }
            90..=93 => Msg::TooLarge,
            _ => Msg::Empty,
        }
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        match below(g, 100) {
            0..=4 => Op::Handshake(
                *g.choose(&[None, Some(0), Some(1), Some(2), Some(200)])
                    .unwrap(),
            ),
            5 => Op::BadHandshake,
            6..=25 => Op::Message(Msg::arbitrary(g)),
            26..=40 => Op::Time(Step::arbitrary(g)),
            41..=48 => Op::Timeout,
            49..=58 => Op::Add(below(g, 16) as u8, u8::arbitrary(g)),
            59..=65 => Op::Drop(below(g, 16) as u8),
            66..=67 => Op::AddBulk(below(g, BULK as u32) as u8, below(g, 120) as u8),
            68..=69 => Op::DropBulk(below(g, BULK as u32) as u8, below(g, 120) as u8),
            70 => Op::RemoteAddress(u8::arbitrary(g)),
            71..=74 => Op::Start,
            75..=76 => Op::Stop,
            77 => Op::Reset,
            78..=85 => Op::PollTransmit,
            86..=89 => Op::PollEvent,
            _ => Op::PollAll,
        }
    }
}

/// Configuration knobs the scripts vary.
#[derive(Clone, Debug)]
struct Knobs {
    interval_secs: u64,
    initial_max: usize,
    max_remote: usize,
    private: bool,
}

impl Knobs {
    fn config(&self) -> Config {
        Config::default()
            .send_interval(Duration::from_secs(self.interval_secs))
            .unwrap()
            .initial_max_peers(self.initial_max)
            .max_remote_peers(self.max_remote)
            .private(self.private)
    }
}

#[derive(Clone, Debug)]
struct Script {
    knobs: Knobs,
    ops: Vec<Op>,
}

impl Arbitrary for Script {
    fn arbitrary(g: &mut Gen) -> Self {
        let knobs = Knobs {
            interval_secs: *g.choose(&[60, 65, 65, 90]).unwrap(),
            initial_max: *g.choose(&[50, 80]).unwrap(),
            max_remote: *g.choose(&[0, 3, 10, 200]).unwrap(),
            private: below(g, 10) == 0,
        };
        // Most scripts begin connected, so that frames flow.
        let mut ops = Vec::new();
        if below(g, 4) != 0 {
            ops.push(Op::Handshake(Some(1)));
            ops.push(Op::Start);
        }
        ops.extend(Vec::<Op>::arbitrary(g));
        Script { knobs, ops }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let knobs = self.knobs.clone();
        Box::new(self.ops.shrink().map(move |ops| Script {
            knobs: knobs.clone(),
            ops,
        }))
    }
}

// ---- properties -------------------------------------------------------------------------------

/// The properties, checked one per `#[test]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Property {
    Spacing,
    FrameLimits,
    FrameContents,
    AddThenDrop,
    NothingWhileOff,
    LatestId,
    ErrUnchanged,
    Memory,
    NoBusyLoop,
    EventsMatchClaims,
}

/// How often the scripts reached the situations the properties are about, so that a property
/// cannot pass vacuously (each test checks its own counters after its run).
#[derive(Clone, Copy, Debug, Default)]
struct Coverage {
    frames: u64,
    full_frames: u64,
    frames_with_drops: u64,
    refused: u64,
    twins: u64,
    settled_with_drops: u64,
    peer_events: u64,
    deadlines_after_timeout: u64,
    id_changes_with_frames: u64,
    off_polls: u64,
}

thread_local! {
    static COVERAGE: std::cell::Cell<Coverage> = std::cell::Cell::new(Coverage::default());
}

fn cover(f: impl FnOnce(&mut Coverage)) {
    COVERAGE.with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

/// What one op produced, for comparing a run with its twin.
type TraceEntry = (Observed, Vec<Decoded>, Vec<Event>);

struct Runner {
    state: PexState,
    knobs: Knobs,
    want: Property,
    failure: Option<String>,
    /// The harness clock: may go backwards.
    now: Instant,
    /// The latest instant the state took in through a call that succeeded.
    seen: Option<Instant>,
    // ---- the model ----
    remote_id: u8,
    started: bool,
    /// What the host added and has not dropped (canonical, usable).
    live: BTreeSet<SocketAddr>,
    /// What our frames told the remote we are connected to.
    told: BTreeSet<SocketAddr>,
    /// The claimed peers the host has heard of through events.
    heard: BTreeSet<SocketAddr>,
    /// Whether the events told the host PEX is on.
    heard_enabled: bool,
    /// Every address given to `set_remote_address`.
    remote_addrs: BTreeSet<SocketAddr>,
    remote_addr: Option<SocketAddr>,
    last_frame: Option<Instant>,
    frames: u64,
    /// The remote id of the last frame.
    last_id: u8,
    /// Drops our frames carried.
    drops_told: u64,
    // ---- for the twin comparison ----
    trace: Vec<(usize, TraceEntry)>,
    refused: Vec<usize>,
}

macro_rules! check {
    ($runner:expr, $property:ident, $cond:expr, $($msg:tt)+) => {
        if $runner.want == Property::$property && $runner.failure.is_none() && !$cond {
            $runner.failure = Some(format!($($msg)+));
        }
    };
}

fn payload_for(msg: &Msg) -> Vec<u8> {
    match msg {
        Msg::Entries(adds, drops) => {
            let adds: Vec<Peer> = adds
                .iter()
                .map(|&(i, f)| Peer::new(small(i), PeerFlags::from_bits(f)))
                .collect();
            let drops: Vec<SocketAddr> = drops.iter().map(|&i| small(i)).collect();
            encode_payload(&adds, &drops)
        }
        Msg::Bulk { start, len, drop } => {
            let addrs: Vec<SocketAddr> = (usize::from(*start)..)
                .take(usize::from(*len))
                .map(|i| bulk(i % BULK))
                .collect();
            if *drop {
                encode_payload(&[], &addrs)
            } else {
                let peers: Vec<Peer> = addrs
                    .iter()
                    .map(|&a| Peer::new(a, PeerFlags::UTP))
                    .collect();
                encode_payload(&peers, &[])
            }
        }
        Msg::Capture(i) => {
            let names = [
                "js-ut_pex-5.0.2_forced-flags.bin",
                "js-ut_pex-5.0.2_timer-empty.bin",
                "js-ut_pex-5.0.2_v4-v6-dropped.bin",
                "libtorrent-2.0.8_1-first-full.bin",
                "libtorrent-2.0.8_2-diff-after-60s.bin",
                "libtorrent-2.0.8_3-dropped.bin",
                "libtorrent-2.0.8_ipv6-first.bin",
                "transmission-3.00_1-first.bin",
                "transmission-3.00_2-dropped-only.bin",
                "transmission-3.00_netns-2-added-flags.bin",
            ];
            testkit::pair::capture(names[usize::from(*i) % names.len()])
        }
        Msg::Garbage(bytes) => bytes.clone(),
        Msg::Truncated(adds, cut) => {
            let peers: Vec<Peer> = adds
                .iter()
                .map(|&i| Peer::new(small(i), PeerFlags::EMPTY))
                .collect();
            let mut p = encode_payload(&peers, &[]);
            let cut = 1 + usize::from(*cut) % (p.len() - 1);
            p.truncate(p.len() - cut);
            p
        }
        Msg::TooLarge => {
            // `d1:x65526:xx…xe`: 65537 bytes, one over the default limit.
            let body = 65_526;
            let mut p = format!("d1:x{body}:").into_bytes();
            p.resize(p.len() + body, b'x');
            p.push(b'e');
            assert_eq!(p.len(), 64 * 1024 + 1);
            p
        }
        Msg::Empty => b"de".to_vec(),
    }
}

impl Runner {
    fn new(knobs: &Knobs, want: Property, base: Instant) -> Self {
        Self {
            state: PexState::new(knobs.config()),
            knobs: knobs.clone(),
            want,
            failure: None,
            now: base,
            seen: None,
            remote_id: 0,
            started: false,
            live: BTreeSet::new(),
            told: BTreeSet::new(),
            heard: BTreeSet::new(),
            heard_enabled: false,
            remote_addrs: BTreeSet::new(),
            remote_addr: None,
            last_frame: None,
            frames: 0,
            last_id: 0,
            drops_told: 0,
            trace: Vec::new(),
            refused: Vec::new(),
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.knobs.interval_secs)
    }

    fn saw(&mut self, t: Instant) {
        self.seen = Some(self.seen.map_or(t, |s| s.max(t)));
    }

    fn cap(&self) -> usize {
        self.knobs.max_remote
    }

    /// Runs one op (skipped ops are the twin's refused ones) and records what it produced.
    fn apply(&mut self, index: usize, op: &Op) {
        let before = observe(&self.state);
        let mut frames = Vec::new();
        let mut events = Vec::new();
        let mut refused = false;
        match op {
            Op::Handshake(id) => {
                let mut b = HandshakeBuilder::new().extension("ut_metadata", 3);
                if let Some(id) = id {
                    b = b.extension("ut_pex", *id);
                }
                self.state
                    .handle_extended_handshake(self.now, &b.build())
                    .expect("a built handshake decodes");
                self.saw(self.now);
                if let Some(id) = id {
                    self.remote_id = *id;
                }
            }
            Op::BadHandshake => {
                refused = self
                    .state
                    .handle_extended_handshake(self.now, b"d1:md6:ut_pexi1e")
                    .is_err();
                check!(
                    self,
                    ErrUnchanged,
                    refused,
                    "a truncated handshake was accepted"
                );
            }
            Op::Message(msg) => {
                let payload = payload_for(msg);
                match self.state.handle_message(self.now, &payload) {
                    Ok(()) => self.saw(self.now),
                    Err(_) => refused = true,
                }
                if let Msg::TooLarge = msg {
                    check!(
                        self,
                        ErrUnchanged,
                        refused || self.knobs.private,
                        "too large accepted"
                    );
                }
            }
            Op::Time(step) => {
                let next = match step {
                    Step::Zero => Some(self.now),
                    Step::Millis(ms) => self.now.checked_add(Duration::from_millis(u64::from(*ms))),
                    Step::Interval => self.now.checked_add(self.interval()),
                    Step::Back(s) => self.now.checked_sub(Duration::from_secs(u64::from(*s))),
                    Step::Huge => self.now.checked_add(Duration::from_secs(1 << 40)),
                };
                self.now = next.unwrap_or(self.now);
            }
            Op::Timeout => {
                let t = self.now;
                self.state.handle_timeout(t);
                self.saw(t);
                let after = self.state.poll_timeout();
                if after.is_some() {
                    cover(|c| c.deadlines_after_timeout += 1);
                }
                check!(
                    self,
                    NoBusyLoop,
                    after.map_or(true, |x| x > t && Some(x) > self.seen),
                    "after handle_timeout(t), poll_timeout() is {:?} past t / {:?} past the \
                     latest instant",
                    after.map(|x| x.checked_duration_since(t)),
                    after.map(|x| x.checked_duration_since(self.seen.unwrap()))
                );
            }
            Op::Add(i, f) => self.add(small(*i), PeerFlags::from_bits(*f)),
            Op::Drop(i) => self.drop(small(*i)),
            Op::AddBulk(start, len) => {
                for i in (usize::from(*start)..).take(usize::from(*len)) {
                    self.add(bulk(i % BULK), PeerFlags::SEED);
                }
            }
            Op::DropBulk(start, len) => {
                for i in (usize::from(*start)..).take(usize::from(*len)) {
                    self.drop(bulk(i % BULK));
                }
            }
            Op::RemoteAddress(i) => {
                let addr = if i % 4 == 0 {
                    "10.9.9.9:1".parse().unwrap()
                } else {
                    small(*i)
                };
                self.state.set_remote_address(addr);
                self.remote_addr = Some(canonical(addr));
                self.remote_addrs.insert(canonical(addr));
            }
            Op::Start => {
                self.state.start(self.now);
                self.saw(self.now);
                self.started = true;
            }
            Op::Stop => {
                self.state.stop();
                self.started = false;
            }
            Op::Reset => {
                self.state.reset();
                self.started = false;
                self.live.clear();
                self.heard.clear();
            }
            Op::PollTransmit => frames.extend(self.poll_frame()),
            Op::PollEvent => events.extend(self.poll_event()),
            Op::PollAll => {
                while let Some(f) = self.poll_frame() {
                    frames.push(f);
                }
                while let Some(e) = self.poll_event() {
                    events.push(e);
                }
                check!(
                    self,
                    EventsMatchClaims,
                    self.heard == self.claimed_set()
                        && self.heard_enabled == self.state.is_enabled(),
                    "after draining events the host heard {:?} (enabled {}), the state claims \
                     {:?} (enabled {})",
                    self.heard,
                    self.heard_enabled,
                    self.claimed_set(),
                    self.state.is_enabled()
                );
            }
        }
        let after = observe(&self.state);
        if refused {
            self.refused.push(index);
            cover(|c| c.refused += 1);
            check!(
                self,
                ErrUnchanged,
                after == before,
                "op {index} {op:?} was refused but changed the state:\n{before:?}\n{after:?}"
            );
        }
        self.check_memory();
        self.trace.push((index, (after, frames, events)));
    }

    fn claimed_set(&self) -> BTreeSet<SocketAddr> {
        self.state.remote_peers().map(|p| p.addr).collect()
    }

    fn add(&mut self, addr: SocketAddr, flags: PeerFlags) {
        self.state.add_peer(addr, flags);
        if host_usable(addr) {
            self.live.insert(canonical(addr));
        }
    }

    fn drop(&mut self, addr: SocketAddr) {
        self.state.drop_peer(addr);
        self.live.remove(&canonical(addr));
    }

    fn poll_frame(&mut self) -> Option<Decoded> {
        let off = !self.started || self.remote_id == 0;
        let Some(frame) = self.state.poll_transmit() else {
            if off {
                cover(|c| c.off_polls += 1);
            }
            return None;
        };
        let d = decode_frame(&frame);
        let at = self.seen.expect("a frame needs an instant");
        check!(
            self,
            NothingWhileOff,
            self.started && self.remote_id != 0 && !self.knobs.private,
            "frame sent while started={} remote id={} private={}",
            self.started,
            self.remote_id,
            self.knobs.private
        );
        check!(
            self,
            LatestId,
            d.ext_id == self.remote_id,
            "frame with id {} while the remote's latest is {}",
            d.ext_id,
            self.remote_id
        );
        if let Some(last) = self.last_frame {
            let gap = at.checked_duration_since(last);
            check!(
                self,
                Spacing,
                gap.is_some_and(|g| g >= self.interval()),
                "frames {gap:?} apart, interval {:?}",
                self.interval()
            );
        }
        self.last_frame = Some(at);
        let max_added = if self.frames == 0 {
            self.knobs.initial_max
        } else {
            MAX_PEERS_PER_MESSAGE
        };
        check!(
            self,
            FrameLimits,
            d.added.len() <= max_added && d.dropped.len() <= MAX_PEERS_PER_MESSAGE,
            "frame #{} with {} added and {} dropped",
            self.frames,
            d.added.len(),
            d.dropped.len()
        );
        self.frames += 1;
        cover(|c| {
            c.frames += 1;
            c.full_frames += u64::from(
                d.added.len() == MAX_PEERS_PER_MESSAGE || d.dropped.len() == MAX_PEERS_PER_MESSAGE,
            );
            c.frames_with_drops += u64::from(!d.dropped.is_empty());
            c.id_changes_with_frames += u64::from(self.last_id != 0 && self.last_id != d.ext_id);
        });
        self.last_id = d.ext_id;
        self.drops_told += d.dropped.len() as u64;

        let added = d.added_addrs();
        let all: BTreeSet<SocketAddr> = added.iter().chain(&d.dropped).copied().collect();
        check!(
            self,
            FrameContents,
            all.len() == added.len() + d.dropped.len(),
            "duplicate, or added and dropped, in one frame: {d:?}"
        );
        check!(self, FrameContents, !all.is_empty(), "empty frame");
        check!(
            self,
            FrameContents,
            d.lens[1] * 6 == d.lens[0] && d.lens[3] * 18 == d.lens[2],
            "flag strings do not match: {:?}",
            d.lens
        );
        for a in &added {
            check!(
                self,
                FrameContents,
                *a == canonical(*a) && self.live.contains(a),
                "added {a}, not live"
            );
            check!(
                self,
                FrameContents,
                !self.told.contains(a),
                "added {a}, already told"
            );
            check!(
                self,
                FrameContents,
                self.state.remote_claims(*a).is_none(),
                "echoed {a} the remote claims"
            );
            check!(
                self,
                FrameContents,
                self.remote_addr != Some(*a),
                "advertised the remote's own address {a}"
            );
        }
        for a in &d.dropped {
            check!(
                self,
                FrameContents,
                self.told.contains(a),
                "dropped {a}, never told"
            );
            check!(
                self,
                FrameContents,
                !self.live.contains(a),
                "dropped {a}, still live"
            );
            self.told.remove(a);
        }
        self.told.extend(added);
        Some(d)
    }

    fn poll_event(&mut self) -> Option<Event> {
        let event = self.state.poll_event()?;
        match event {
            Event::Enabled | Event::Disabled => {
                let on = event == Event::Enabled;
                check!(
                    self,
                    EventsMatchClaims,
                    self.heard_enabled != on && !self.knobs.private,
                    "{event:?} while the host already heard enabled={}",
                    self.heard_enabled
                );
                self.heard_enabled = on;
            }
            Event::PeerAdded(p) => {
                cover(|c| c.peer_events += 1);
                check!(
                    self,
                    EventsMatchClaims,
                    !self.heard.contains(&p.addr)
                        && self.state.remote_claims(p.addr).is_some()
                        && p.addr == canonical(p.addr)
                        && remote_usable(p.addr),
                    "{event:?}: heard before {}, claimed {:?}",
                    self.heard.contains(&p.addr),
                    self.state.remote_claims(p.addr)
                );
                self.heard.insert(p.addr);
            }
            Event::PeerDropped(a) => {
                // (It may be claimed again already: a `PeerAdded` for it is then queued.)
                check!(
                    self,
                    EventsMatchClaims,
                    self.heard.remove(&a),
                    "{event:?} of a peer not heard of"
                );
            }
            _ => {}
        }
        Some(event)
    }

    fn check_memory(&mut self) {
        let cap = self.cap();
        let claimed = self.state.remote_peers().count();
        let pending = self.state.pending_events();
        let heap = self.state.heap_bytes();
        check!(self, Memory, claimed <= cap, "{claimed} claimed, cap {cap}");
        check!(
            self,
            Memory,
            pending <= 2 * cap + 2,
            "{pending} events pending, cap {cap}"
        );
        // The host's pools hold 166 addresses; the remote's set is capped.
        check!(self, Memory, heap <= 64 * 1024, "{heap} heap bytes");
        if self.knobs.private {
            check!(
                self,
                Memory,
                claimed == 0 && pending == 0,
                "private state holds data"
            );
        }
    }

    /// After the script: PEX on and started, time runs, frames are polled, until the queues
    /// drain. Then the remote must have been told exactly the live set (minus what it told
    /// us, and its own address).
    fn settle(&mut self) {
        let n = 10_000;
        // Time may have gone backwards in the script: resume from the latest instant.
        self.now = self.seen.map_or(self.now, |s| s.max(self.now));
        self.apply(n, &Op::Handshake(Some(1)));
        self.apply(n, &Op::Start);
        for _ in 0..20 {
            self.apply(n, &Op::Time(Step::Interval));
            self.apply(n, &Op::Timeout);
            self.apply(n, &Op::PollAll);
        }
        if self.knobs.private {
            check!(
                self,
                NothingWhileOff,
                self.frames == 0,
                "private state sent frames"
            );
            return;
        }
        check!(
            self,
            NoBusyLoop,
            self.state.poll_timeout().is_none(),
            "still scheduled after 20 intervals: {:?}",
            self.state.poll_timeout()
        );
        if self.drops_told > 0 {
            cover(|c| c.settled_with_drops += 1);
        }
        let stale: Vec<_> = self.told.difference(&self.live).collect();
        check!(
            self,
            AddThenDrop,
            stale.is_empty(),
            "told the remote of {stale:?}, no longer live"
        );
        let claimed = self.claimed_set();
        let untold: Vec<_> = self
            .live
            .iter()
            .filter(|a| {
                !self.told.contains(a) && !claimed.contains(a) && !self.remote_addrs.contains(a)
            })
            .collect();
        check!(
            self,
            AddThenDrop,
            untold.is_empty(),
            "live peers never told: {untold:?}"
        );
    }
}

fn run(script: &Script, want: Property, skip: &[usize], base: Instant) -> Runner {
    let mut r = Runner::new(&script.knobs, want, base);
    for (i, op) in script.ops.iter().enumerate() {
        if !skip.contains(&i) {
            r.apply(i, op);
        }
    }
    r.settle();
    r
}

fn property(want: Property, script: Script) -> TestResult {
    let base = Instant::now();
    let first = run(&script, want, &[], base);
    if let Some(failure) = first.failure {
        return TestResult::error(failure);
    }
    if want == Property::ErrUnchanged && !first.refused.is_empty() {
        // The twin never sees the refused inputs: everything else must come out the same.
        let twin = run(&script, want, &first.refused, base);
        cover(|c| c.twins += 1);
        let kept: Vec<_> = first
            .trace
            .iter()
            .filter(|(i, _)| !first.refused.contains(i))
            .collect();
        if kept.len() != twin.trace.len() {
            return TestResult::error("twin traces differ in length");
        }
        for (x, y) in kept.iter().zip(&twin.trace) {
            if *x != y {
                return TestResult::error(format!(
                    "after refusing ops {:?}, op {} differs from the twin:\n{:?}\n{:?}",
                    first.refused, x.0, x.1, y.1
                ));
            }
        }
    }
    TestResult::passed()
}

/// Scripts per property; each takes well under a second in a debug build.
const TESTS: u64 = 500;
/// Ops per script (before the settling phase).
const SCRIPT_LEN: usize = 200;

/// `QUICKCHECK_TESTS` if set, else [`TESTS`].
fn tests() -> u64 {
    std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TESTS)
}

macro_rules! properties {
    ($($test:ident => $property:ident, $covered:expr;)+) => {$(
        #[test]
        fn $test() {
            fn prop(script: Script) -> TestResult {
                property(Property::$property, script)
            }
            QuickCheck::new()
                .rng(Gen::new(SCRIPT_LEN))
                .tests(tests())
                .quickcheck(prop as fn(Script) -> TestResult);
            let coverage = COVERAGE.with(|c| c.get());
            let covered: fn(&Coverage) -> bool = $covered;
            assert!(covered(&coverage), "scripts too weak: {coverage:?}");
        }
    )+};
}

// Each property, with the situations its scripts must have reached (counted over the run;
// the thresholds are far below what `TESTS` scripts reach, and hold for small
// `QUICKCHECK_TESTS` too).
properties! {
    frames_spaced_by_at_least_send_interval => Spacing, |c| c.frames > 10;
    non_initial_frames_at_most_50_added_and_50_dropped => FrameLimits, |c| c.full_frames > 0;
    frames_have_no_duplicate_and_no_added_and_dropped => FrameContents,
        |c| c.frames_with_drops > 0;
    advertised_adds_followed_by_drops => AddThenDrop, |c| c.settled_with_drops > 0;
    nothing_sent_while_disabled_or_stopped => NothingWhileOff, |c| c.off_polls > 0;
    frames_carry_latest_remote_id => LatestId, |c| c.id_changes_with_frames > 0;
    err_leaves_observable_state_unchanged => ErrUnchanged, |c| c.twins > 0 && c.refused > 0;
    memory_stays_under_caps => Memory, |c| c.peer_events > 0;
    no_busy_loop => NoBusyLoop, |c| c.deadlines_after_timeout > 0;
    events_match_remote_claims => EventsMatchClaims, |c| c.peer_events > 0;
}
