//! The `swarm_ops` script: many connections of one `Swarm`, with every wire rule
//! ([`WireRules`]) and the host view ([`HostView`]) checked per connection, stale handles
//! included.
//!
//! The remote ends are not modelled as states: what a connection receives is built by the
//! script (well-formed payloads, raw bytes, or a frame the swarm sent on another
//! connection, relayed as a third peer would).

use std::net::SocketAddr;
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder, UT_PEX};
use ut_pex::{
    canonical_addr, ConnectionId, Direction, DisconnectReason, Frame, Peer, PeerFlags, Stats, Swarm,
};

use crate::addr::{built_payload, gen_addr, many_payload, Addr};
use crate::converge::{check_converged, has_room, round_limit, MAX_ROUNDS, SETTLE_REMOTE_ID};
use crate::ensure;
use crate::host::{check_claims, check_conn, SwarmConn};
use crate::interp::MAX_OPS;
use crate::rules::{check_only_errors_moved, HostView, Limits, WireRules};
use crate::script::{poll_limit, Bulk, ConfigChoice, TimeStep};
use crate::swarm_live::LiveBound;
use crate::time::Clock;
use crate::Check;

/// Connections one script may open; later `Connect`s are ignored.
pub const MAX_CONNECTIONS: usize = 24;

/// A connection, by the order it was opened (modulo how many were): disconnected ones
/// stay addressable, so stale handles are exercised.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Conn(pub u8);

/// One operation of a [`SwarmScript`].
#[derive(Arbitrary, Debug)]
pub enum SwarmOp {
    /// Move the clock.
    Time(TimeStep),
    /// `connect` to an address.
    Connect {
        /// `Direction::Outgoing` if set.
        outgoing: bool,
        /// The remote's socket address.
        addr: Addr,
        /// Its flags.
        flags: u8,
    },
    /// `disconnect` for a reason (modulo the four).
    Disconnect(Conn, u8),
    /// A handshake built with `HandshakeBuilder`: `ut_pex` under `id` (`None`: not
    /// mentioned), and a listen port.
    Handshake {
        /// The connection.
        on: Conn,
        /// The `ut_pex` id, 0 included.
        id: Option<u8>,
        /// `p`.
        port: Option<u16>,
    },
    /// An arbitrary extended handshake payload.
    HandshakeBytes(Conn, Vec<u8>),
    /// `set_remote_extension_id`.
    SetRemoteId(Conn, u8),
    /// `start`.
    Start(Conn),
    /// `stop`.
    Stop(Conn),
    /// `add_peer`.
    AddPeer(Addr, u8),
    /// `add_peer` for many generated addresses.
    AddMany(u16, u8, bool),
    /// `drop_peer`.
    DropPeer(Addr),
    /// `drop_peer` for many generated addresses.
    DropMany(u16, u8, bool),
    /// A well-formed payload from `encode_payload`.
    MessageBuilt {
        /// The receiving connection.
        on: Conn,
        /// Added peers with their flag bytes.
        added: Vec<(Addr, u8)>,
        /// Dropped addresses.
        dropped: Vec<Addr>,
    },
    /// A well-formed payload with many generated addresses.
    MessageMany {
        /// The receiving connection.
        on: Conn,
        /// First generated address.
        start: u16,
        /// How many added (modulo 81).
        added: u8,
        /// How many dropped (modulo 81, from the same range).
        dropped: u8,
        /// IPv6 instead of IPv4.
        v6: bool,
    },
    /// An arbitrary ut_pex payload.
    MessageBytes(Conn, Vec<u8>),
    /// The last frame the swarm sent, relayed to a connection as its remote's message.
    Relay(Conn),
    /// `handle_timeout` at the clock.
    Timeout,
    /// `handle_timeout` at `poll_timeout`, then poll every frame.
    RunDeadline,
    /// `poll_transmit` until `None`.
    PollTransmit,
    /// `poll_event`, at most this many times (0: until `None`).
    PollEvents(u8),
}

/// Whether the live set is checked after `op`, O(live): after the operations that let a
/// contact linger or expire (a disconnect, time running) or make a dial address known. The
/// host's own adds and drops, which change it too, are checked at the next of these and
/// at the end (after each of the bulk ones it would cost more than the operation).
fn changes_live(op: &SwarmOp) -> bool {
    matches!(
        op,
        SwarmOp::Connect { .. }
            | SwarmOp::Disconnect(..)
            | SwarmOp::Handshake { .. }
            | SwarmOp::HandshakeBytes(..)
            | SwarmOp::Timeout
            | SwarmOp::RunDeadline
    )
}
/// The fuzz input of `swarm_ops`: a config and the operations.
#[derive(Arbitrary, Debug)]
pub struct SwarmScript {
    /// The swarm's config.
    pub config: ConfigChoice,
    /// The operations, in order.
    pub ops: Vec<SwarmOp>,
}

/// Turns fuzz bytes into a script as `fuzz_target!(|script: SwarmScript| …)` would.
pub fn script_from_bytes(data: &[u8]) -> Option<SwarmScript> {
    SwarmScript::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// The `swarm_ops` target: bytes to a script (inputs that make none pass), then run.
pub fn check_bytes(data: &[u8]) -> Check {
    script_from_bytes(data).map_or(Ok(()), |script| run_swarm_script(&script))
}

/// What the checks know about one connection.
#[derive(Debug)]
struct Model {
    id: ConnectionId,
    open: bool,
    /// The address `connect` was given, canonical: the remote's own until its dial address
    /// is known (an incoming connection's remote port is ephemeral), never advertised to it.
    connected_from: SocketAddr,
    /// Its dial address as the model knows it: the address an outgoing connection dialled;
    /// for an incoming one, its IP with the first non-zero `p` a handshake gave.
    dial: Option<SocketAddr>,
    wire: WireRules,
    host: HostView,
    stats: Stats,
}

struct Harness {
    swarm: Swarm,
    limits: Limits,
    conns: Vec<Model>,
    clock: Clock,
    /// The latest instant the swarm was handed.
    seen: Option<Instant>,
    last_frame: Option<Frame>,
    bulk: Bulk,
    /// What the live set may hold.
    live: LiveBound,
}

/// Every `DisconnectReason`, for scripts that pick one by index.
pub const REASONS: [DisconnectReason; 4] = [
    DisconnectReason::DuplicatePeerOtherFamily,
    DisconnectReason::NoMutualInterest,
    DisconnectReason::LocalResourceLimits,
    DisconnectReason::Other,
];

/// Runs a script against a fresh `Swarm` and checks every connection after every step.
pub fn run_swarm_script(script: &SwarmScript) -> Check {
    let config = script.config.build();
    let config_interval = config.get_send_interval();
    let mut h = Harness {
        limits: Limits::of(&config),
        swarm: Swarm::new(config),
        conns: Vec::new(),
        clock: Clock::new(Instant::now()),
        seen: None,
        last_frame: None,
        bulk: Bulk::default(),
        live: LiveBound::new(config_interval),
    };
    for (step, op) in script.ops.iter().take(MAX_OPS).enumerate() {
        h.apply(op)
            .and_then(|()| h.check_all())
            .and_then(|()| {
                if changes_live(op) {
                    h.check_live()
                } else {
                    Ok(())
                }
            })
            .map_err(|e| format!("step {step} {op:?}: {e}"))?;
    }
    h.settle().map_err(|e| format!("settling: {e}"))?;
    h.check_live().map_err(|e| format!("at the end: {e}"))?;
    for k in 0..h.conns.len() {
        h.check_claims(k).map_err(|e| format!("at the end: {e}"))?;
    }
    Ok(())
}

impl Harness {
    /// The [`crate::converge`] phase: every open connection gets `ut_pex` on and is
    /// started, the swarm runs deadline by deadline (every frame checked) until none is
    /// scheduled; then each connection was told the live set, less its remote's own
    /// addresses (the one it connected from, its dial address) and what its remote claims. The connections share one clock, so the time
    /// needed is the longest connection's, the deadlines run all of theirs.
    fn settle(&mut self) -> Check {
        let live = self.swarm.live_peers();
        let open: Vec<usize> = (0..self.conns.len())
            .filter(|&k| self.conns[k].open)
            .collect();
        let rounds: Vec<usize> = open
            .iter()
            .map(|&k| round_limit(&self.conns[k].wire, live))
            .collect();
        let longest = rounds.iter().copied().max().unwrap_or(0);
        self.clock.now = self
            .seen
            .map_or(self.clock.now, |seen| seen.max(self.clock.now));
        if longest > MAX_ROUNDS || !has_room(self.clock.now, self.limits.interval, longest) {
            return Ok(());
        }
        for &k in &open {
            // `k` < MAX_CONNECTIONS, so `Conn(k)` names connection `k`.
            let conn = Conn(k as u8);
            if self.conns[k].wire.remote_id == 0 {
                self.apply(&SwarmOp::SetRemoteId(conn, SETTLE_REMOTE_ID))?;
            }
            if !self.conns[k].wire.started {
                self.apply(&SwarmOp::Start(conn))?;
            }
        }
        let total: usize = rounds.iter().sum::<usize>() + 8;
        // Frames already due are taken first: while one waits, its deadline is not shown.
        for _ in 0..total {
            self.poll_transmit()?;
            self.check_all()?;
            let Some(deadline) = self.swarm.poll_timeout() else {
                break;
            };
            self.timeout(deadline)?;
        }
        ensure!(
            self.swarm.poll_timeout().is_none(),
            "still scheduled after {total} deadlines"
        );
        if self.limits.private {
            return Ok(());
        }
        let live: Vec<SocketAddr> = self.swarm.live().map(|p| p.addr).collect();
        for &k in &open {
            let (id, from) = (self.conns[k].id, self.conns[k].connected_from);
            let dial = self.swarm.dial_address(id).map(canonical_addr);
            let swarm = &self.swarm;
            check_converged(&self.conns[k].wire, live.iter().copied(), |addr| {
                addr == from || Some(addr) == dial || swarm.remote_claims(id, addr).is_some()
            })
            .map_err(|e| format!("{id:?}: {e}"))?;
        }
        Ok(())
    }

    fn observe(&mut self, now: Instant) {
        self.seen = Some(self.seen.map_or(now, |s| s.max(now)));
        for conn in self.conns.iter_mut().filter(|c| c.open) {
            conn.wire.observe(now);
        }
    }

    fn conn(&self, c: Conn) -> Option<usize> {
        (!self.conns.is_empty()).then(|| usize::from(c.0) % self.conns.len())
    }

    fn apply(&mut self, op: &SwarmOp) -> Check {
        let now = self.clock.now;
        match *op {
            SwarmOp::Time(step) => self.clock.step(step),
            SwarmOp::Connect {
                outgoing,
                addr,
                flags,
            } => {
                if self.conns.len() < MAX_CONNECTIONS {
                    let direction = if outgoing {
                        Direction::Outgoing
                    } else {
                        Direction::Incoming
                    };
                    let id = self.swarm.connect(
                        now,
                        addr.resolve(),
                        direction,
                        PeerFlags::from_bits(flags),
                    );
                    ensure!(
                        self.conns.iter().all(|c| c.id != id),
                        "connect reused the handle {id:?}"
                    );
                    let mut wire = WireRules::new(self.limits);
                    wire.seen = self.seen;
                    self.conns.push(Model {
                        id,
                        open: true,
                        connected_from: canonical_addr(addr.resolve()),
                        dial: outgoing.then(|| canonical_addr(addr.resolve())),
                        wire,
                        host: HostView::default(),
                        stats: Stats::default(),
                    });
                    self.observe(now);
                }
            }
            SwarmOp::Disconnect(c, reason) => {
                if let Some(k) = self.conn(c) {
                    let id = self.conns[k].id;
                    let reason = REASONS[usize::from(reason) % REASONS.len()];
                    let dial = self.swarm.dial_address(id);
                    self.swarm.disconnect(now, id, reason);
                    self.observe(now);
                    self.live.closed(dial, reason, self.seen.unwrap_or(now));
                    self.conns[k].open = false;
                    ensure!(
                        !self.swarm.contains(id),
                        "{id:?} still there after disconnect"
                    );
                }
            }
            SwarmOp::Handshake { on, id, port } => {
                let mut builder = HandshakeBuilder::new().extension("ut_metadata", 2);
                if let Some(id) = id {
                    builder = builder.extension(UT_PEX, id);
                }
                if let Some(port) = port {
                    builder = builder.listen_port(port);
                }
                self.handshake(on, &builder.build())?;
            }
            SwarmOp::HandshakeBytes(on, ref bytes) => self.handshake(on, bytes)?,
            SwarmOp::SetRemoteId(c, ext) => {
                if let Some(k) = self.conn(c) {
                    self.swarm
                        .set_remote_extension_id(now, self.conns[k].id, ext);
                    self.observe(now);
                    if self.conns[k].open {
                        self.conns[k].wire.remote_id = ext;
                    }
                }
            }
            SwarmOp::Start(c) => {
                if let Some(k) = self.conn(c) {
                    self.swarm.start(now, self.conns[k].id);
                    self.observe(now);
                    if self.conns[k].open {
                        self.conns[k].wire.started = true;
                    }
                }
            }
            SwarmOp::Stop(c) => {
                if let Some(k) = self.conn(c) {
                    self.swarm.stop(self.conns[k].id);
                    self.conns[k].wire.started = false;
                }
            }
            SwarmOp::AddPeer(addr, flags) => self.add_peer(addr.resolve(), flags),
            SwarmOp::AddMany(start, count, v6) => {
                for k in 0..u16::from(self.bulk.take(count)) {
                    self.add_peer(gen_addr(start.wrapping_add(k), v6), k as u8);
                }
            }
            SwarmOp::DropPeer(addr) => self.drop_peer(addr.resolve()),
            SwarmOp::DropMany(start, count, v6) => {
                for k in 0..u16::from(self.bulk.take(count)) {
                    self.drop_peer(gen_addr(start.wrapping_add(k), v6));
                }
            }
            SwarmOp::MessageBuilt {
                on,
                ref added,
                ref dropped,
            } => {
                self.message(on, &built_payload(added, dropped))?;
            }
            SwarmOp::MessageMany {
                on,
                start,
                added,
                dropped,
                v6,
            } => {
                let (added, dropped) = (self.bulk.take(added), self.bulk.take(dropped));
                self.message(on, &many_payload(start, added, dropped, v6))?;
            }
            SwarmOp::MessageBytes(on, ref bytes) => self.message(on, bytes)?,
            SwarmOp::Relay(on) => {
                if let Some(frame) = self.last_frame.clone() {
                    self.message(on, &frame.payload())?;
                }
            }
            SwarmOp::Timeout => self.timeout(now)?,
            SwarmOp::RunDeadline => {
                if let Some(deadline) = self.swarm.poll_timeout() {
                    self.timeout(deadline)?;
                    self.poll_transmit()?;
                }
            }
            SwarmOp::PollTransmit => self.poll_transmit()?,
            SwarmOp::PollEvents(max) => {
                for _ in 0..poll_limit(max) {
                    let Some((id, event)) = self.swarm.poll_event() else {
                        break;
                    };
                    let conn = self.by_id(id)?;
                    ensure!(conn.open, "an event {event:?} for closed {id:?}");
                    conn.host.check_event(event)?;
                }
            }
        }
        Ok(())
    }

    fn by_id(&mut self, id: ConnectionId) -> Result<&mut Model, String> {
        self.conns
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| format!("output for unknown {id:?}"))
    }

    fn handshake(&mut self, on: Conn, payload: &[u8]) -> Check {
        let Some(k) = self.conn(on) else {
            return Ok(());
        };
        let now = self.clock.now;
        let id = self.conns[k].id;
        let before = self.swarm.stats(id);
        let result = self.swarm.handle_extended_handshake(now, id, payload);
        let conn = &mut self.conns[k];
        if !conn.open {
            return Ok(());
        }
        let decoded = ExtendedHandshake::decode(payload);
        ensure!(
            result.is_ok() == decoded.is_ok(),
            "handshake {result:?}, but it decodes as {:?}",
            decoded.map(|_| ())
        );
        match result {
            Ok(()) => {
                self.observe(now);
                let conn = &mut self.conns[k];
                conn.wire.remote_id = self.swarm.remote_extension_id(id);
                if conn.dial.is_none() {
                    // An incoming connection's dial address: its IP, the handshake's `p`.
                    let port = decoded
                        .ok()
                        .and_then(|hs| hs.listen_port)
                        .filter(|&p| p != 0);
                    conn.dial = port.map(|p| SocketAddr::new(conn.connected_from.ip(), p));
                }
            }
            Err(_) => {
                let after = self.swarm.stats(id);
                if let (Some(before), Some(after)) = (before, after) {
                    check_only_errors_moved(&before, &after)?;
                }
            }
        }
        Ok(())
    }

    fn message(&mut self, on: Conn, payload: &[u8]) -> Check {
        let Some(k) = self.conn(on) else {
            return Ok(());
        };
        let now = self.clock.now;
        let id = self.conns[k].id;
        let events_before = self.swarm.pending_events(id);
        let before = self.swarm.stats(id);
        let result = self.swarm.handle_message(now, id, payload);
        if !self.conns[k].open {
            return Ok(());
        }
        match result {
            Ok(()) => self.observe(now),
            Err(error) => {
                ensure!(
                    self.swarm.pending_events(id) == events_before,
                    "refused message ({error:?}) queued events"
                );
                if let (Some(before), Some(after)) = (before, self.swarm.stats(id)) {
                    check_only_errors_moved(&before, &after)?;
                }
            }
        }
        Ok(())
    }

    /// `add_peer`; the bound learns of it only if the swarm took it (an address already
    /// live, a connection's dial address say, is not the host's to drop).
    fn add_peer(&mut self, addr: SocketAddr, flags: u8) {
        if self.swarm.add_peer(addr, PeerFlags::from_bits(flags)) {
            self.live.added(addr);
        }
    }

    fn drop_peer(&mut self, addr: SocketAddr) {
        self.swarm.drop_peer(addr);
        self.live.dropped(addr);
    }

    fn timeout(&mut self, at: Instant) -> Check {
        self.swarm.handle_timeout(at);
        self.observe(at);
        if let Some(seen) = self.seen {
            self.live.expire(seen);
        }
        if let (Some(deadline), Some(seen)) = (self.swarm.poll_timeout(), self.seen) {
            ensure!(
                deadline > seen,
                "busy loop: deadline {deadline:?} not after {seen:?}"
            );
        }
        Ok(())
    }

    fn poll_transmit(&mut self) -> Check {
        // At most one frame per connection can be due at once.
        for _ in 0..=MAX_CONNECTIONS {
            let Some((id, frame)) = self.swarm.poll_transmit() else {
                return Ok(());
            };
            // `live()` comes in address order: searched as it is, not sorted into a map.
            let live: Vec<Peer> = self.swarm.live().collect();
            ensure!(
                live.windows(2).all(|w| w[0].addr < w[1].addr),
                "Swarm::live() not in address order"
            );
            let dial = self.swarm.dial_address(id).map(canonical_addr);
            let swarm = &self.swarm;
            let conn = self
                .conns
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or_else(|| format!("a frame for unknown {id:?}"))?;
            ensure!(conn.open, "a frame for closed {id:?}");
            conn.wire.remote_addr = dial;
            conn.wire
                .check_frame(
                    &frame,
                    |a| {
                        live.binary_search_by_key(&a, |p| p.addr)
                            .ok()
                            .map(|k| live[k].flags)
                    },
                    |a| swarm.remote_claims(id, a).is_some(),
                )
                .map_err(|e| format!("on {id:?}: {e}"))?;
            self.last_frame = Some(frame);
        }
        Err("poll_transmit keeps returning frames".into())
    }

    /// The O(1) checks of every connection.
    fn check_all(&mut self) -> Check {
        let swarm = &self.swarm;
        let open = self.conns.iter().filter(|c| c.open).count();
        ensure!(
            swarm.connections() == open,
            "{} connections, {open} open",
            swarm.connections()
        );
        for conn in &mut self.conns {
            let id = conn.id;
            if !conn.open {
                ensure!(
                    !swarm.contains(id)
                        && swarm.stats(id).is_none()
                        && !swarm.is_enabled(id)
                        && swarm.pending_events(id) == 0,
                    "stale {id:?} still answers"
                );
                continue;
            }
            check_conn(&conn.wire, &mut conn.stats, &SwarmConn(swarm, id))
                .map_err(|e| format!("{id:?}: {e}"))?;
            ensure!(
                swarm.dial_address(id) == conn.dial,
                "{id:?}: dial address {:?}, the model's {:?}",
                swarm.dial_address(id),
                conn.dial
            );
        }
        for dial in self.conns.iter().filter(|c| c.open).filter_map(|c| c.dial) {
            self.live.dialled(dial);
        }
        Ok(())
    }

    /// The live set against its bound, O(live): run after the operations that can change
    /// it ([`changes_live`]) and at the end.
    fn check_live(&self) -> Check {
        let dials: Vec<SocketAddr> = self
            .conns
            .iter()
            .filter(|c| c.open)
            .filter_map(|c| c.dial)
            .collect();
        self.live.check(&self.swarm, &dials)
    }

    /// The claims of connection `k`: capped, sorted, and what its host was told.
    fn check_claims(&self, k: usize) -> Check {
        let conn = &self.conns[k];
        if !conn.open {
            return Ok(());
        }
        let id = conn.id;
        check_claims(&conn.wire, &conn.host, &SwarmConn(&self.swarm, id))
            .map_err(|e| format!("{id:?}: {e}"))?;
        Ok(())
    }
}
