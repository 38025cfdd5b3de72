//! Model-based properties of [`Swarm`]: random scripts of connects, disconnects, handshakes,
//! received messages, start/stop and time steps drive a swarm with several connections; after
//! every step every output is drained and checked against a model of what each connection
//! was told (BEP 11's wire rules, echo suppression, liveness of the live set).
//!
//! Run longer with `QUICKCHECK_TESTS=20000 QUICKCHECK_GENERATOR_SIZE=300 cargo test --test
//! swarm_properties` (longer scripts; about 90 s for the first property).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use ut_pex::handshake::HandshakeBuilder;
use ut_pex::message::encode_payload;
use ut_pex::{
    Config, ConnectionId, Direction, DisconnectReason, Event, Frame, Peer, PeerFlags, PexMessage,
    Swarm, MAX_PEERS_PER_MESSAGE,
};

// ---- address pools -------------------------------------------------------------------------

/// Remote IPs of connections: loopback and global (documentation ranges), both families.
const IPS: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
];
/// Listen ports: two per IP, so incoming and outgoing connections collide.
const PORTS: [u16; 2] = [6881, 6882];

/// A dial address from the connection pool (12 addresses).
fn conn_addr(ip: u8, port: u8) -> SocketAddr {
    SocketAddr::new(
        IPS[usize::from(ip) % IPS.len()],
        PORTS[usize::from(port) % 2],
    )
}

/// Peers the host adds with `add_peer` (never a connection's dial address).
fn host_addr(i: u8) -> SocketAddr {
    match i % 4 {
        0 => "192.0.2.1:6881".parse().unwrap(),
        1 => "192.0.2.2:6881".parse().unwrap(),
        2 => "127.0.0.9:7000".parse().unwrap(),
        _ => "[2001:db8::99]:6881".parse().unwrap(),
    }
}

/// An address a remote may announce: any pool address, or one the hygiene rules refuse.
fn any_addr(sel: u8) -> SocketAddr {
    match sel {
        0..=199 => {
            let i = sel % 16;
            if i < 12 {
                conn_addr(i / 2, i % 2)
            } else {
                host_addr(i - 12)
            }
        }
        200..=209 => "127.0.0.1:0".parse().unwrap(),
        210..=219 => "0.0.0.0:6881".parse().unwrap(),
        220..=229 => "224.0.0.1:6881".parse().unwrap(),
        _ => "[::ffff:127.0.0.2]:6881".parse().unwrap(),
    }
}

const EXT_IDS: [u8; 5] = [0, 1, 2, 3, 200];

// ---- operations ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Step {
    Zero,
    Secs(u8),
    Interval(i8),
    Large(u16),
    Back(u8),
}

#[derive(Clone, Debug)]
enum Op {
    Connect {
        outgoing: bool,
        ip: u8,
        port: u8,
        flags: u8,
    },
    Disconnect {
        conn: u8,
        reason: u8,
    },
    Handshake {
        conn: u8,
        ext: Option<u8>,
        port: Option<u8>,
    },
    BadHandshake {
        conn: u8,
        which: u8,
    },
    SetExt {
        conn: u8,
        ext: u8,
    },
    Message {
        conn: u8,
        added: Vec<u8>,
        dropped: Vec<u8>,
        flags: u8,
    },
    Garbage {
        conn: u8,
        bytes: Vec<u8>,
    },
    Start {
        conn: u8,
    },
    Stop {
        conn: u8,
    },
    AddPeer {
        addr: u8,
        flags: u8,
    },
    DropPeer {
        addr: u8,
    },
    /// A host peer comes and goes many times: dead pairs pile up and compaction runs while
    /// cursors sit everywhere in the log.
    Burst {
        addr: u8,
        times: u8,
    },
    Time(Step),
}

fn small_vec(g: &mut Gen, max: u8) -> Vec<u8> {
    let len = u8::arbitrary(g) % (max + 1);
    (0..len).map(|_| u8::arbitrary(g)).collect()
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let conn = u8::arbitrary(g);
        match u8::arbitrary(g) % 100 {
            0..=13 => Op::Connect {
                outgoing: bool::arbitrary(g),
                ip: u8::arbitrary(g),
                port: u8::arbitrary(g),
                flags: u8::arbitrary(g),
            },
            14..=21 => Op::Disconnect {
                conn,
                reason: u8::arbitrary(g),
            },
            22..=31 => Op::Handshake {
                conn,
                ext: Option::<u8>::arbitrary(g),
                port: Option::<u8>::arbitrary(g),
            },
            32..=33 => Op::BadHandshake {
                conn,
                which: u8::arbitrary(g),
            },
            34..=38 => Op::SetExt {
                conn,
                ext: *g.choose(&EXT_IDS).unwrap(),
            },
            39..=52 => Op::Message {
                conn,
                added: small_vec(g, 4),
                dropped: small_vec(g, 3),
                flags: u8::arbitrary(g),
            },
            53..=54 => Op::Garbage {
                conn,
                bytes: small_vec(g, 24),
            },
            55..=63 => Op::Start { conn },
            64..=66 => Op::Stop { conn },
            67..=71 => Op::AddPeer {
                addr: u8::arbitrary(g),
                flags: u8::arbitrary(g),
            },
            72..=73 => Op::DropPeer {
                addr: u8::arbitrary(g),
            },
            74 => Op::Burst {
                addr: u8::arbitrary(g),
                times: u8::arbitrary(g) % 48,
            },
            _ => Op::Time(match u8::arbitrary(g) % 10 {
                0 => Step::Zero,
                1..=3 => Step::Secs(u8::arbitrary(g) % 20),
                4..=7 => Step::Interval(i8::arbitrary(g) % 10),
                8 => Step::Large(u16::arbitrary(g)),
                _ => Step::Back(u8::arbitrary(g)),
            }),
        }
    }
}

fn reason(r: u8) -> DisconnectReason {
    match r % 4 {
        0 => DisconnectReason::DuplicatePeerOtherFamily,
        1 => DisconnectReason::NoMutualInterest,
        2 => DisconnectReason::LocalResourceLimits,
        _ => DisconnectReason::Other,
    }
}

/// Test configurations: the default, and small frame caps so FIFO overflow happens with a
/// small pool of addresses.
#[derive(Clone, Debug)]
struct Setup {
    per_frame: usize,
    initial: usize,
    interval: u64,
    private: bool,
}

impl Setup {
    fn config(&self) -> Config {
        Config::default()
            .max_entries_per_frame(self.per_frame)
            .unwrap()
            .initial_max_peers(self.initial)
            .send_interval(Duration::from_secs(self.interval))
            .unwrap()
            .private(self.private)
    }
}

impl Arbitrary for Setup {
    fn arbitrary(g: &mut Gen) -> Self {
        let caps = *g
            .choose(&[(50, 50), (50, 50), (3, 2), (1, 1), (2, 5)])
            .unwrap();
        Setup {
            per_frame: caps.0,
            initial: caps.1,
            interval: *g.choose(&[65, 60, 65, 300]).unwrap(),
            private: u8::arbitrary(g) % 16 == 0,
        }
    }
}

// ---- the model -----------------------------------------------------------------------------

#[derive(Debug)]
struct ConnModel {
    id: ConnectionId,
    attached: bool,
    outgoing: bool,
    ip: IpAddr,
    /// The dial address: the remote for outgoing, `ip:p` from the first handshake with a
    /// non-zero `p` for incoming.
    dial: Option<SocketAddr>,
    ext: u8,
    started: bool,
    /// What this connection was told: added minus dropped.
    advertised: BTreeSet<SocketAddr>,
    /// What its remote claims, from its `PeerAdded`/`PeerDropped` events.
    claims: BTreeSet<SocketAddr>,
    last_frame: Option<Instant>,
    frames: u64,
    /// Enabled/Disabled events seen in the current step.
    toggles: Vec<bool>,
}

struct Harness {
    swarm: Swarm,
    setup: Setup,
    interval: Duration,
    conns: Vec<ConnModel>,
    t0: Instant,
    /// The instant passed to the swarm (may go backwards).
    t: Instant,
    /// The latest instant passed so far: the swarm's "now".
    seen: Instant,
    host_peers: BTreeSet<SocketAddr>,
    /// Dial addresses of connections that ended for a reason allowing a hold, with when.
    held_candidates: BTreeMap<SocketAddr, Instant>,
    /// Frames sent (for the report of a failure).
    log: Vec<String>,
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}

/// A frame's added peers, dropped addresses and raw payload.
type Decoded = (Vec<Peer>, Vec<SocketAddr>, Vec<u8>);

fn decode(frame: &Frame) -> Result<Decoded, String> {
    let payload = frame.payload().to_vec();
    let m = PexMessage::decode(&payload).map_err(|e| format!("frame does not decode: {e}"))?;
    let added = m.added().collect();
    let dropped = m.dropped().collect();
    Ok((added, dropped, payload))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Harness {
    fn new(setup: Setup) -> Self {
        // A day after now, so that stepping backwards never goes before the clock's origin.
        let t0 = Instant::now() + Duration::from_secs(86_400);
        Harness {
            swarm: Swarm::new(setup.config()),
            interval: Duration::from_secs(setup.interval),
            setup,
            conns: Vec::new(),
            t0,
            t: t0,
            seen: t0,
            host_peers: BTreeSet::new(),
            held_candidates: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn enabled(&self, c: &ConnModel) -> bool {
        c.ext != 0 && !self.setup.private
    }

    fn pick(&self, sel: u8) -> Option<usize> {
        let attached: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.conns[i].attached)
            .collect();
        if sel % 8 == 7 || attached.is_empty() {
            // Sometimes a stale handle: every method must ignore it.
            (!self.conns.is_empty()).then(|| usize::from(sel) % self.conns.len())
        } else {
            Some(attached[usize::from(sel) % attached.len()])
        }
    }

    fn set_time(&mut self, t: Instant) {
        self.t = t;
        self.seen = self.seen.max(t);
    }

    fn index_of(&self, id: ConnectionId) -> Result<usize, String> {
        let i = self
            .conns
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| format!("output for unknown connection {id:?}"))?;
        ensure!(
            self.conns[i].attached,
            "output for disconnected connection #{i}"
        );
        Ok(i)
    }

    /// Applies one operation and checks the effects particular to it.
    fn apply(&mut self, op: &Op) -> Check {
        let t = self.t;
        match *op {
            Op::Connect {
                outgoing,
                ip,
                port,
                flags,
            } => {
                let (remote, direction) = if outgoing {
                    (conn_addr(ip, port), Direction::Outgoing)
                } else {
                    let remote = SocketAddr::new(conn_addr(ip, 0).ip(), 40_000 + u16::from(port));
                    (remote, Direction::Incoming)
                };
                let id =
                    self.swarm
                        .connect(t, remote, direction, PeerFlags::from_bits(flags & 0x0f));
                ensure!(
                    self.conns.iter().all(|c| c.id != id),
                    "connect reused a handle: {id:?}"
                );
                if outgoing {
                    self.held_candidates.remove(&remote);
                    ensure!(self.swarm.is_live(remote), "outgoing {remote} not live");
                }
                self.conns.push(ConnModel {
                    id,
                    attached: true,
                    outgoing,
                    ip: remote.ip(),
                    dial: outgoing.then_some(remote),
                    ext: 0,
                    started: false,
                    advertised: BTreeSet::new(),
                    claims: BTreeSet::new(),
                    last_frame: None,
                    frames: 0,
                    toggles: Vec::new(),
                });
            }
            Op::Disconnect { conn, reason: r } => {
                let Some(i) = self.pick(conn) else {
                    return Ok(());
                };
                let id = self.conns[i].id;
                let was_attached = self.conns[i].attached;
                let dial = self.conns[i].dial;
                let was_live = dial.is_some_and(|d| self.swarm.is_live(d));
                self.swarm.disconnect(t, id, reason(r));
                ensure!(!self.swarm.contains(id), "still attached after disconnect");
                self.conns[i].attached = false;
                if let (true, Some(dial)) = (was_attached, dial) {
                    let shared = self
                        .conns
                        .iter()
                        .any(|c| c.attached && c.dial == Some(dial));
                    if shared {
                        ensure!(
                            self.swarm.is_live(dial),
                            "{dial} dropped while another connection to it is open"
                        );
                    } else if reason(r) == DisconnectReason::Other {
                        ensure!(
                            !self.swarm.is_live(dial),
                            "{dial} still live after a disconnect for reason Other"
                        );
                        self.held_candidates.remove(&dial);
                    } else {
                        // Fewer than 25 live per family here: an allowed reason holds it.
                        if was_live {
                            ensure!(
                                self.swarm.is_live(dial),
                                "{dial} not held after {:?}",
                                reason(r)
                            );
                        }
                        self.held_candidates.insert(dial, self.seen);
                    }
                }
            }
            Op::Handshake { conn, ext, port } => {
                let Some(i) = self.pick(conn) else {
                    return Ok(());
                };
                let mut builder = HandshakeBuilder::new().extension("ut_metadata", 2);
                let ext = ext.map(|e| EXT_IDS[usize::from(e) % EXT_IDS.len()]);
                if let Some(e) = ext {
                    builder = builder.extension("ut_pex", e);
                }
                let port = port.map(|p| match p % 4 {
                    0 => 0,
                    1 => 7000,
                    _ => PORTS[usize::from(p) % 2],
                });
                if let Some(p) = port {
                    builder = builder.listen_port(p);
                }
                let id = self.conns[i].id;
                self.swarm
                    .handle_extended_handshake(t, id, &builder.build())
                    .map_err(|e| format!("valid handshake refused: {e}"))?;
                let c = &mut self.conns[i];
                if c.attached {
                    if let Some(e) = ext {
                        c.ext = e;
                    }
                    if let (false, None, Some(p)) = (c.outgoing, c.dial, port) {
                        if p != 0 {
                            let dial = SocketAddr::new(c.ip, p);
                            c.dial = Some(dial);
                            self.held_candidates.remove(&dial);
                            ensure!(self.swarm.is_live(dial), "incoming {dial} not live");
                        }
                    }
                    ensure!(
                        self.swarm.dial_address(id) == c.dial,
                        "dial address {:?}, model {:?}",
                        self.swarm.dial_address(id),
                        c.dial
                    );
                }
            }
            Op::BadHandshake { conn, which } => {
                let Some(i) = self.pick(conn) else {
                    return Ok(());
                };
                let payload: &[u8] = match which % 4 {
                    0 => b"",
                    1 => b"d1:md6:ut_pexi1e",
                    2 => b"li1ee",
                    _ => b"d1:pi6881ee trailing",
                };
                let id = self.conns[i].id;
                let result = self.swarm.handle_extended_handshake(t, id, payload);
                ensure!(
                    result.is_err() || !self.conns[i].attached,
                    "bad handshake {payload:?} accepted"
                );
            }
            Op::SetExt { conn, ext } => {
                let Some(i) = self.pick(conn) else {
                    return Ok(());
                };
                self.swarm.set_remote_extension_id(t, self.conns[i].id, ext);
                if self.conns[i].attached {
                    self.conns[i].ext = ext;
                }
            }
            Op::Message {
                conn,
                ref added,
                ref dropped,
                flags,
            } => {
                let Some(i) = self.pick(conn) else {
                    return Ok(());
                };
                let added: Vec<Peer> = added
                    .iter()
                    .map(|&a| Peer::new(any_addr(a), PeerFlags::from_bits(flags)))
                    .collect();
                let dropped: Vec<SocketAddr> = dropped.iter().map(|&a| any_addr(a)).collect();
                let payload = encode_payload(&added, &dropped);
                // Err only for a flood here; the model learns claims from events either way.
                let _ = self.swarm.handle_message(t, self.conns[i].id, &payload);
            }
            Op::Garbage { conn, ref bytes } => {
                let Some(i) = self.pick(conn) else {
                    return Ok(());
                };
                let _ = self.swarm.handle_message(t, self.conns[i].id, bytes);
            }
            Op::Start { conn } => {
                let Some(i) = self.pick(conn) else {
                    return Ok(());
                };
                self.swarm.start(t, self.conns[i].id);
                if self.conns[i].attached {
                    self.conns[i].started = true;
                }
            }
            Op::Stop { conn } => {
                let Some(i) = self.pick(conn) else {
                    return Ok(());
                };
                self.swarm.stop(self.conns[i].id);
                self.conns[i].started = false;
            }
            Op::AddPeer { addr, flags } => {
                let addr = host_addr(addr);
                self.swarm.add_peer(addr, PeerFlags::from_bits(flags));
                self.host_peers.insert(addr);
                ensure!(self.swarm.is_live(addr), "added host peer {addr} not live");
            }
            Op::DropPeer { addr } => {
                let addr = host_addr(addr);
                self.swarm.drop_peer(addr);
                self.host_peers.remove(&addr);
                ensure!(!self.swarm.is_live(addr), "dropped host peer {addr} live");
            }
            Op::Burst { addr, times } => {
                let addr = host_addr(addr);
                let was_live = self.swarm.is_live(addr);
                for _ in 0..times {
                    self.swarm.add_peer(addr, PeerFlags::EMPTY);
                    self.swarm.drop_peer(addr);
                }
                if was_live && times > 0 {
                    self.swarm.add_peer(addr, PeerFlags::EMPTY);
                }
                ensure!(self.swarm.is_live(addr) == was_live, "{addr} after a burst");
            }
            Op::Time(step) => {
                let t = match step {
                    Step::Zero => self.t,
                    Step::Secs(s) => self.t + Duration::from_secs(u64::from(s)),
                    Step::Interval(d) => {
                        let base = self.t + self.interval;
                        if d >= 0 {
                            base + Duration::from_secs(d as u64)
                        } else {
                            base - Duration::from_secs(u64::from(d.unsigned_abs()))
                        }
                    }
                    Step::Large(s) => self.t + Duration::from_secs(600 + u64::from(s) * 4),
                    Step::Back(s) => self
                        .t
                        .checked_sub(Duration::from_secs(u64::from(s)))
                        .unwrap_or(self.t0)
                        .max(self.t0),
                };
                self.set_time(t);
                self.swarm.handle_timeout(t);
                self.check_no_busy_loop("handle_timeout")?;
                // Held contacts are gone once their interval is up.
                let seen = self.seen;
                let interval = self.interval;
                let expired: Vec<SocketAddr> = self
                    .held_candidates
                    .iter()
                    .filter(|&(_, &since)| since + interval <= seen)
                    .map(|(&a, _)| a)
                    .collect();
                for addr in expired {
                    self.held_candidates.remove(&addr);
                    let connected = self
                        .conns
                        .iter()
                        .any(|c| c.attached && c.dial == Some(addr));
                    ensure!(
                        connected || !self.swarm.is_live(addr),
                        "{addr} still held after its interval"
                    );
                }
            }
        }
        Ok(())
    }

    fn check_no_busy_loop(&self, after: &str) -> Check {
        if let Some(deadline) = self.swarm.poll_timeout() {
            ensure!(
                deadline > self.seen,
                "after {after}: poll_timeout {:?} not after now",
                deadline.duration_since(self.t0)
            );
        }
        Ok(())
    }

    /// Drains events then frames, checking each against the model.
    fn enabled_now(&self) -> Vec<bool> {
        self.conns.iter().map(|c| self.enabled(c)).collect()
    }

    /// Drains events then frames, checking each against the model; `before` is whether each
    /// connection was enabled before the step.
    fn drain(&mut self, before: &[bool]) -> Check {
        for c in &mut self.conns {
            c.toggles.clear();
        }
        while let Some((id, event)) = self.swarm.poll_event() {
            let i = self.index_of(id)?;
            let c = &mut self.conns[i];
            match event {
                Event::PeerAdded(p) => {
                    ensure!(c.claims.insert(p.addr), "#{i}: PeerAdded twice {}", p.addr)
                }
                Event::PeerDropped(a) => {
                    ensure!(c.claims.remove(&a), "#{i}: PeerDropped unclaimed {a}")
                }
                Event::Enabled => c.toggles.push(true),
                Event::Disabled => c.toggles.push(false),
                other => return Err(format!("unexpected event {other:?}")),
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            if !c.attached {
                continue;
            }
            let was = before.get(i).copied().unwrap_or(false);
            let expected: Vec<bool> = if was != self.enabled(c) {
                vec![self.enabled(c)]
            } else {
                vec![]
            };
            ensure!(
                c.toggles == expected,
                "#{i}: Enabled/Disabled events {:?}, expected {expected:?}",
                c.toggles
            );
            let claims: BTreeSet<SocketAddr> =
                self.swarm.remote_peers(c.id).map(|p| p.addr).collect();
            ensure!(
                claims == c.claims,
                "#{i}: remote_peers {claims:?} but events say {:?}",
                c.claims
            );
        }
        while let Some((id, frame)) = self.swarm.poll_transmit() {
            self.check_frame(id, &frame)?;
        }
        self.check_live_set()
    }

    fn check_frame(&mut self, id: ConnectionId, frame: &Frame) -> Check {
        let i = self.index_of(id)?;
        let enabled = self.enabled(&self.conns[i]);
        let seen = self.seen;
        let interval = self.interval;
        let setup = self.setup.clone();
        let c = &mut self.conns[i];
        ensure!(enabled, "#{i}: frame while disabled");
        ensure!(c.started, "#{i}: frame while stopped");
        ensure!(
            frame.extension_id() == c.ext,
            "#{i}: frame for id {} but the remote's id is {}",
            frame.extension_id(),
            c.ext
        );
        if let Some(last) = c.last_frame {
            ensure!(
                seen.duration_since(last) >= interval,
                "#{i}: frames {:?} apart",
                seen.duration_since(last)
            );
        }
        let (added, dropped, payload) = decode(frame)?;
        self.log.push(format!(
            "#{i} at {:?}: +{:?} -{:?}",
            seen.duration_since(self.t0),
            added.iter().map(|p| p.addr).collect::<Vec<_>>(),
            dropped
        ));
        ensure!(
            !added.is_empty() || !dropped.is_empty(),
            "#{i}: empty frame"
        );
        let max_added = if c.frames == 0 {
            setup.initial
        } else {
            setup.per_frame
        };
        ensure!(
            added.len() <= max_added && added.len() <= MAX_PEERS_PER_MESSAGE.max(setup.initial),
            "#{i}: {} added",
            added.len()
        );
        ensure!(
            dropped.len() <= setup.per_frame,
            "#{i}: {} dropped",
            dropped.len()
        );
        if added.iter().any(|p| p.addr.is_ipv4()) {
            ensure!(contains(&payload, b"7:added.f"), "#{i}: added without .f");
        }
        if added.iter().any(|p| p.addr.is_ipv6()) {
            ensure!(contains(&payload, b"8:added6.f"), "#{i}: added6 without .f");
        }
        let added_set: BTreeSet<SocketAddr> = added.iter().map(|p| p.addr).collect();
        let dropped_set: BTreeSet<SocketAddr> = dropped.iter().copied().collect();
        ensure!(added_set.len() == added.len(), "#{i}: duplicate in added");
        ensure!(
            dropped_set.len() == dropped.len(),
            "#{i}: duplicate in dropped"
        );
        ensure!(
            added_set.is_disjoint(&dropped_set),
            "#{i}: added and dropped in one frame: {:?}",
            added_set.intersection(&dropped_set).collect::<Vec<_>>()
        );
        for a in &dropped {
            ensure!(
                c.advertised.contains(a),
                "#{i}: dropped {a}, never advertised to it (advertised: {:?})",
                c.advertised
            );
        }
        for a in &added_set {
            ensure!(
                !c.advertised.contains(a),
                "#{i}: added {a} again while advertised"
            );
            ensure!(Some(*a) != c.dial, "#{i}: echoed its own address {a}");
            ensure!(!c.claims.contains(a), "#{i}: echoed {a}, which it claims");
        }
        for a in &dropped {
            c.advertised.remove(a);
        }
        c.advertised.extend(added_set);
        c.last_frame = Some(seen);
        c.frames += 1;
        Ok(())
    }

    /// The swarm's live set against the model: every attached connection's dial address is
    /// live, and every live address is a connection's, a host peer, or a held contact.
    fn check_live_set(&self) -> Check {
        let dials: BTreeSet<SocketAddr> = self
            .conns
            .iter()
            .filter(|c| c.attached)
            .filter_map(|c| c.dial)
            .collect();
        for d in &dials {
            ensure!(
                self.swarm.is_live(*d),
                "{d} is a connected peer's address but not live"
            );
        }
        for p in self.swarm.live() {
            ensure!(
                dials.contains(&p.addr)
                    || self.host_peers.contains(&p.addr)
                    || self.held_candidates.contains_key(&p.addr),
                "{} live but neither connected, added nor held",
                p.addr
            );
        }
        ensure!(
            self.swarm.live_peers() == self.swarm.live().count(),
            "live_peers disagrees with live()"
        );
        Ok(())
    }

    /// After the script: every connection enabled and started, time runs until nothing is
    /// scheduled; then each connection knows exactly the live set, up to echo suppression.
    fn settle(&mut self) -> Check {
        for i in 0..self.conns.len() {
            if !self.conns[i].attached {
                continue;
            }
            let id = self.conns[i].id;
            let before = self.enabled_now();
            if self.conns[i].ext == 0 {
                self.swarm.set_remote_extension_id(self.t, id, 1);
                self.conns[i].ext = 1;
            }
            self.swarm.start(self.t, id);
            self.conns[i].started = true;
            self.drain(&before)?;
        }
        let mut rounds = 0;
        while let Some(deadline) = self.swarm.poll_timeout() {
            rounds += 1;
            ensure!(rounds < 1000, "still busy after 1000 timeouts");
            let t = deadline.max(self.seen);
            self.set_time(t);
            let before = self.enabled_now();
            self.swarm.handle_timeout(t);
            self.check_no_busy_loop("handle_timeout (settling)")?;
            self.drain(&before)?;
        }
        if self.setup.private {
            return Ok(());
        }
        let live: BTreeSet<SocketAddr> = self.swarm.live().map(|p| p.addr).collect();
        for (i, c) in self.conns.iter().enumerate() {
            if !c.attached {
                continue;
            }
            let extra: Vec<_> = c.advertised.difference(&live).collect();
            ensure!(
                extra.is_empty(),
                "#{i}: still advertised, not live: {extra:?}"
            );
            let missing: Vec<_> = live
                .iter()
                .filter(|a| !c.advertised.contains(a))
                .filter(|a| Some(**a) != c.dial && !c.claims.contains(a))
                .collect();
            ensure!(
                missing.is_empty(),
                "#{i}: live, never advertised: {missing:?}"
            );
        }
        Ok(())
    }
}

fn run_script(setup: Setup, ops: &[Op]) -> Result<(), String> {
    let mut h = Harness::new(setup);
    for (n, op) in ops.iter().enumerate() {
        let before = h.enabled_now();
        h.apply(op)
            .and_then(|()| h.drain(&before))
            .map_err(|e| format!("step {n} ({op:?}): {e}\nframes:\n{}", h.log.join("\n")))?;
    }
    h.settle()
        .map_err(|e| format!("settling: {e}\nframes:\n{}", h.log.join("\n")))
}

/// `QuickCheck` with `default_tests` and `default_size`, unless `QUICKCHECK_TESTS` or
/// `QUICKCHECK_GENERATOR_SIZE` say otherwise.
fn quickcheck(default_tests: u64, default_size: usize) -> QuickCheck {
    let mut qc = QuickCheck::new();
    if std::env::var_os("QUICKCHECK_TESTS").is_none() {
        qc = qc.tests(default_tests);
    }
    if std::env::var_os("QUICKCHECK_GENERATOR_SIZE").is_none() {
        qc = qc.rng(Gen::new(default_size));
    }
    qc
}

#[test]
fn swarm_keeps_the_wire_rules_and_converges() {
    fn prop(setup: Setup, ops: Vec<Op>) -> TestResult {
        match run_script(setup, &ops) {
            Ok(()) => TestResult::passed(),
            Err(e) => TestResult::error(e),
        }
    }
    quickcheck(500, 80).quickcheck(prop as fn(Setup, Vec<Op>) -> TestResult);
}

// ---- late attach -----------------------------------------------------------------------------

/// Churn on the swarm's peers only, over a pool large enough to exceed the initial cap.
#[derive(Clone, Debug)]
enum Churn {
    Connect(u8),
    Disconnect(u8, u8),
    AddPeer(u8),
    DropPeer(u8),
    Time(u8),
}

impl Arbitrary for Churn {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 10 {
            0..=4 => Churn::Connect(u8::arbitrary(g)),
            5..=6 => Churn::Disconnect(u8::arbitrary(g), u8::arbitrary(g)),
            7 => Churn::AddPeer(u8::arbitrary(g)),
            8 => Churn::DropPeer(u8::arbitrary(g)),
            _ => Churn::Time(u8::arbitrary(g)),
        }
    }
}

#[derive(Clone, Debug)]
struct ChurnScript(Vec<Churn>);

impl Arbitrary for ChurnScript {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = usize::from(u8::arbitrary(g)) + usize::from(u8::arbitrary(g) % 64);
        ChurnScript((0..len).map(|_| Churn::arbitrary(g)).collect())
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(ChurnScript))
    }
}

/// 100 connection addresses (both families) and 20 host peers.
fn churn_addr(i: u8) -> SocketAddr {
    let i = i % 100;
    if i % 3 == 0 {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, u16::from(i))),
            6881,
        )
    } else {
        SocketAddr::from(([10, 1, 0, i], 6881))
    }
}

fn churn_host_addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 2, 0, i % 20], 51413))
}

/// The churn side of the late-attach property: the swarm, its clock, its connections, and
/// when each address last became live (observed after every operation).
struct ChurnModel {
    swarm: Swarm,
    t: Instant,
    conns: Vec<ConnectionId>,
    order: BTreeMap<SocketAddr, u64>,
    clock: u64,
    all: Vec<SocketAddr>,
}

impl ChurnModel {
    fn apply(&mut self, op: &Churn) {
        let t = self.t;
        match *op {
            Churn::Connect(a) => {
                let id = self
                    .swarm
                    .connect(t, churn_addr(a), Direction::Outgoing, PeerFlags::UTP);
                self.conns.push(id);
            }
            Churn::Disconnect(c, r) => {
                if !self.conns.is_empty() {
                    let id = self.conns.swap_remove(usize::from(c) % self.conns.len());
                    self.swarm.disconnect(t, id, reason(r));
                }
            }
            Churn::AddPeer(a) => {
                self.swarm.add_peer(churn_host_addr(a), PeerFlags::SEED);
            }
            Churn::DropPeer(a) => self.swarm.drop_peer(churn_host_addr(a)),
            Churn::Time(s) => {
                self.t += Duration::from_secs(u64::from(s));
                self.swarm.handle_timeout(self.t);
            }
        }
        self.observe();
    }

    fn observe(&mut self) {
        for &a in &self.all {
            match (self.swarm.is_live(a), self.order.contains_key(&a)) {
                (true, false) => {
                    self.clock += 1;
                    self.order.insert(a, self.clock);
                }
                (false, true) => {
                    self.order.remove(&a);
                }
                _ => {}
            }
        }
    }

    /// The first `cap` live peers in connection order, as they go on the wire: IPv4
    /// (`added`) before IPv6 (`added6`), each in connection order.
    fn first_live(&self, cap: usize) -> Vec<SocketAddr> {
        let mut live: Vec<(u64, SocketAddr)> = self.order.iter().map(|(&a, &n)| (n, a)).collect();
        live.sort();
        let first: Vec<SocketAddr> = live.into_iter().map(|(_, a)| a).take(cap).collect();
        first
            .iter()
            .filter(|a| a.is_ipv4())
            .chain(first.iter().filter(|a| a.is_ipv6()))
            .copied()
            .collect()
    }
}

#[test]
fn late_connection_gets_the_live_set_in_connection_order() {
    /// `script` builds the swarm; a connection attaches; `between` churns on while its
    /// remote has not enabled `ut_pex` yet; then its first frame must be the live set of
    /// that moment (the first 50 in connection order), never a peer that already left.
    fn prop(script: ChurnScript, between: Vec<Churn>, ext: u8) -> TestResult {
        let mut m = ChurnModel {
            swarm: Swarm::new(Config::default()),
            t: Instant::now(),
            conns: Vec::new(),
            order: BTreeMap::new(),
            clock: 0,
            all: (0..100)
                .map(churn_addr)
                .chain((0..20).map(churn_host_addr))
                .collect(),
        };
        for op in &script.0 {
            m.apply(op);
        }
        // The late connection, to an address outside the pool (it may flush held contacts:
        // its family reaches 25 live). Its own address is never sent to it.
        let me: SocketAddr = "198.51.100.7:6881".parse().unwrap();
        let late = m
            .swarm
            .connect(m.t, me, Direction::Outgoing, PeerFlags::EMPTY);
        m.observe();
        for op in &between {
            m.apply(op);
        }
        m.order.remove(&me);
        let expected = m.first_live(50);
        let ext = ext.max(1);
        m.swarm.set_remote_extension_id(m.t, late, ext);
        m.swarm.start(m.t, late);
        let mut first = None;
        while let Some((id, frame)) = m.swarm.poll_transmit() {
            if id == late && first.is_none() {
                first = Some(frame);
            }
        }
        let Some(frame) = first else {
            return TestResult::from_bool(expected.is_empty());
        };
        let (added, dropped, _) = match decode(&frame) {
            Ok(d) => d,
            Err(e) => return TestResult::error(e),
        };
        let added: Vec<SocketAddr> = added.iter().map(|p| p.addr).collect();
        if added != expected || !dropped.is_empty() || frame.extension_id() != ext {
            return TestResult::error(format!(
                "first frame +{added:?} -{dropped:?}, expected +{expected:?}"
            ));
        }
        TestResult::passed()
    }
    quickcheck(300, 100).quickcheck(prop as fn(ChurnScript, Vec<Churn>, u8) -> TestResult);
}
