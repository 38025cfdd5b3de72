//! The interpreter of [`Script`]: two `PexState`s wired together through a lossy in-flight
//! queue, every operation's documented contract checked as it runs, and the per-state
//! invariants checked after each step (cheaply: what an operation cannot change is checked
//! when it can, and everything once more at the end).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder, UT_PEX};
use ut_pex::{
    canonical_addr, DecodeError, Frame, MessageError, Peer, PeerFlags, PexMessage, PexState, Stats,
};

use crate::addr::{
    built_payload, gen_addr, is_local_scope, many_payload, usable, AddrMap, AddrSet,
};
use crate::ensure;
use crate::host::{check_claims, check_claims_since, check_conn};
use crate::rules::{check_only_errors_moved, HostView, Limits, WireRules};
use crate::script::{poll_limit, Bulk, Op, Script, Side};
use crate::time::Clock;
use crate::Check;

/// What the checks know about one `PexState`: the wire rules of its connection, the live
/// peers its host added, what its host learned, and its counters at the last check.
#[derive(Debug)]
pub struct Model {
    /// What it may send.
    pub wire: WireRules,
    /// Live peers the host added, with their latest flags.
    pub live: AddrMap<PeerFlags>,
    /// What its host learned from events.
    pub host: HostView,
    /// The counters at the previous check.
    pub stats: Stats,
    /// `remote_peers()` at the previous claims check.
    pub claims: Vec<Peer>,
}

impl Model {
    /// A model of a new state with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            wire: WireRules::new(limits),
            live: AddrMap::default(),
            host: HostView::default(),
            stats: Stats::default(),
            claims: Vec::new(),
        }
    }

    /// Checks a frame just polled from `state` and records it.
    pub fn check_frame(&mut self, frame: &Frame, state: &PexState) -> Check {
        let live = &self.live;
        self.wire.check_frame(
            frame,
            |a| live.get(&a).copied(),
            |a| state.remote_claims(a).is_some(),
        )
    }

    /// The invariants that hold after every step and cost O(1): [`check_conn`], the live
    /// count, no deadline while the connection cannot send.
    pub fn check_cheap(&mut self, state: &PexState) -> Check {
        check_conn(&self.wire, &mut self.stats, state)?;
        ensure!(
            state.live_count() == self.live.len(),
            "live_count() {} != {}",
            state.live_count(),
            self.live.len()
        );
        if !self.wire.can_send() {
            ensure!(
                state.poll_timeout().is_none(),
                "a deadline while stopped or disabled"
            );
        }
        Ok(())
    }

    /// [`check_claims_since`] the previous claims check, and the heap accounting does not
    /// panic.
    pub fn check_claims(&mut self, state: &PexState) -> Check {
        check_claims_since(&self.wire, &self.host, state, &mut self.claims)?;
        let _ = state.heap_bytes();
        Ok(())
    }

    /// [`check_claims`] in full, whatever was checked before.
    pub fn check_claims_all(&self, state: &PexState) -> Check {
        check_claims(&self.wire, &self.host, state)?;
        let _ = state.heap_bytes();
        Ok(())
    }
}

/// Frames kept in flight per direction; older ones are lost.
const IN_FLIGHT: usize = 64;

/// Operations of one script that are run; the rest is ignored. Long scripts cost time per
/// execution (libFuzzer's per-run cost grows with the code a run touches) without reaching
/// states that 256 operations, each of up to 80 peers, cannot (the longest kept regression
/// has 223).
pub const MAX_OPS: usize = 256;

struct Harness {
    states: [PexState; 2],
    models: [Model; 2],
    /// Frames on their way to state `i`.
    in_flight: [VecDeque<Frame>; 2],
    clock: Clock,
    bulk: Bulk,
}

/// Whether `op` can change a state's claims or its host's view of them (and so needs the
/// O(claims) check after it).
fn touches_claims(op: &Op) -> bool {
    matches!(
        op,
        Op::MessageBytes(..)
            | Op::MessageBuilt { .. }
            | Op::MessageMany { .. }
            | Op::Deliver(..)
            | Op::Reset(..)
            | Op::PollEvents(..)
            | Op::HandshakeBytes(..)
            | Op::HandshakeBuilt { .. }
            | Op::HandshakeFromPeer(..)
            | Op::SetRemoteId(..)
    )
}

/// Runs a script against two fresh states and checks the invariants after every step.
pub fn run_script(script: &Script) -> Check {
    let config_a = script.a.build();
    let config_b = script.b.build();
    let models = [
        Model::new(Limits::of(&config_a)),
        Model::new(Limits::of(&config_b)),
    ];
    let mut h = Harness {
        states: [PexState::new(config_a), PexState::new(config_b)],
        models,
        in_flight: [VecDeque::new(), VecDeque::new()],
        clock: Clock::new(Instant::now()),
        bulk: Bulk::default(),
    };
    for (step, op) in script.ops.iter().take(MAX_OPS).enumerate() {
        h.apply(op)
            .map_err(|e| format!("step {step} {op:?}: {e}"))?;
        for i in 0..2 {
            let (model, state) = (&mut h.models[i], &h.states[i]);
            model
                .check_cheap(state)
                .and_then(|()| {
                    if touches_claims(op) {
                        model.check_claims(state)
                    } else {
                        Ok(())
                    }
                })
                .map_err(|e| format!("after step {step} {op:?}, state {i}: {e}"))?;
        }
    }
    for i in 0..2 {
        h.models[i]
            .check_claims_all(&h.states[i])
            .map_err(|e| format!("at the end, state {i}: {e}"))?;
    }
    Ok(())
}

impl Harness {
    fn apply(&mut self, op: &Op) -> Check {
        let now = self.clock.now;
        match *op {
            Op::Time(step) => self.clock.step(step),
            Op::HandshakeBytes(side, ref bytes) => {
                let expected = ExtendedHandshake::decode(bytes).map(|hs| hs.ut_pex());
                self.handshake(side, bytes, expected)?;
            }
            Op::HandshakeBuilt {
                to,
                id,
                other,
                port,
            } => {
                let mut builder = HandshakeBuilder::new().extension("ut_metadata", other);
                if let Some(id) = id {
                    builder = builder.extension(UT_PEX, id);
                }
                if let Some(port) = port {
                    builder = builder.listen_port(port);
                }
                self.handshake(to, &builder.build(), Ok(id))?;
            }
            Op::HandshakeFromPeer(to) => {
                let from = &self.states[1 - to.index()];
                let mut builder = HandshakeBuilder::new().extension("ut_metadata", 2);
                let id = from.local_extension_id();
                if let Some(id) = id {
                    builder = builder.extension(from.extension_name(), id);
                }
                self.handshake(to, &builder.build(), Ok(id))?;
            }
            Op::SetRemoteId(side, id) => {
                let i = side.index();
                self.states[i].set_remote_extension_id(now, id);
                self.models[i].wire.observe(now);
                self.models[i].wire.remote_id = id;
            }
            Op::MessageBytes(side, ref bytes) => self.message(side, bytes, false)?,
            Op::MessageBuilt {
                to,
                ref added,
                ref dropped,
            } => {
                self.message(to, &built_payload(added, dropped), false)?;
            }
            Op::MessageMany {
                to,
                start,
                added,
                dropped,
                v6,
            } => {
                let (added, dropped) = (self.bulk.take(added), self.bulk.take(dropped));
                self.message(to, &many_payload(start, added, dropped, v6), false)?;
            }
            Op::AddPeer(side, addr, flags) => {
                self.add_peer(side, addr.resolve(), PeerFlags::from_bits(flags))
            }
            Op::AddMany(side, start, count, v6) => {
                for k in 0..u16::from(self.bulk.take(count)) {
                    self.add_peer(
                        side,
                        gen_addr(start.wrapping_add(k), v6),
                        PeerFlags::from_bits(k as u8),
                    );
                }
            }
            Op::DropPeer(side, addr) => self.drop_peer(side, addr.resolve()),
            Op::DropMany(side, start, count, v6) => {
                for k in 0..u16::from(self.bulk.take(count)) {
                    self.drop_peer(side, gen_addr(start.wrapping_add(k), v6));
                }
            }
            Op::Start(side) => {
                let i = side.index();
                self.states[i].start(now);
                self.models[i].wire.observe(now);
                self.models[i].wire.started = true;
            }
            Op::Stop(side) => {
                let i = side.index();
                self.states[i].stop();
                self.models[i].wire.started = false;
            }
            Op::Reset(side) => {
                let i = side.index();
                self.states[i].reset();
                let model = &mut self.models[i];
                model.wire.started = false;
                model.live.clear();
                // The state forgets the remote's claims and the queued events about them;
                // the host, told so by the docs, forgets what it learned.
                model.host.peers.clear();
            }
            Op::SetRemoteAddress(side, addr) => {
                let i = side.index();
                let addr = addr.resolve();
                self.states[i].set_remote_address(addr);
                self.models[i].wire.remote_addr = Some(canonical_addr(addr));
            }
            Op::Timeout(side) => self.timeout(side, now)?,
            Op::RunDeadline(side) => {
                let i = side.index();
                if let Some(deadline) = self.states[i].poll_timeout() {
                    self.timeout(side, deadline)?;
                    // The deadline announces that the log has entries this connection has not
                    // walked; they may all cancel out (an add and its drop, a peer held back),
                    // and then no frame comes. Such a wake-up must not repeat: no deadline at
                    // or before this one may remain.
                    match self.states[i].poll_transmit() {
                        Some(frame) => self.sent(side, frame)?,
                        None => {
                            let next = self.states[i].poll_timeout();
                            ensure!(
                                next.map_or(true, |t| t > deadline),
                                "woken at {deadline:?} for nothing, and due again at {next:?}"
                            );
                        }
                    }
                }
            }
            Op::PollTransmit(side) => {
                // Poll until None: at most one frame can be due at once, the loop guard only
                // turns a runaway state into a finding.
                for _ in 0..4 {
                    match self.states[side.index()].poll_transmit() {
                        Some(frame) => self.sent(side, frame)?,
                        None => return Ok(()),
                    }
                }
                return Err("poll_transmit keeps returning frames".into());
            }
            Op::PollEvents(side, max) => {
                let i = side.index();
                for polled in 1..=poll_limit(max) {
                    let Some(event) = self.states[i].poll_event() else {
                        break;
                    };
                    self.models[i].host.check_event(event)?;
                    ensure!(
                        polled <= 2 * self.models[i].wire.limits.remote_cap + 2,
                        "more events than the bound"
                    );
                }
            }
            Op::Deliver(to, count) => {
                for _ in 0..count.max(1) {
                    let Some(frame) = self.in_flight[to.index()].pop_front() else {
                        break;
                    };
                    self.message(to, &frame.payload(), true)?;
                }
            }
            Op::LoseInFlight(to) => self.in_flight[to.index()].clear(),
        }
        Ok(())
    }

    fn handshake(
        &mut self,
        side: Side,
        payload: &[u8],
        expected: Result<Option<u8>, DecodeError>,
    ) -> Check {
        let i = side.index();
        let (state, model) = (&mut self.states[i], &mut self.models[i]);
        let events_before = state.pending_events();
        let result = state.handle_extended_handshake(self.clock.now, payload);
        match (result, expected) {
            (Ok(()), Ok(id)) => {
                model.wire.observe(self.clock.now);
                if let Some(id) = id {
                    model.wire.remote_id = id;
                }
            }
            (Err(ut_pex::HandshakeError::Decode(e)), Err(want)) => {
                ensure!(e == want, "handshake error {e:?}, decode says {want:?}");
                ensure!(
                    state.pending_events() == events_before,
                    "a refused handshake queued an event"
                );
            }
            (got, want) => return Err(format!("handshake result {got:?}, decode says {want:?}")),
        }
        Ok(())
    }

    /// `handle_message` with its documented contract checked; `honest`: a frame the other
    /// state sent.
    fn message(&mut self, side: Side, payload: &[u8], honest: bool) -> Check {
        let i = side.index();
        let (state, model) = (&mut self.states[i], &mut self.models[i]);
        let limits = model.wire.limits;
        let claims_before: Vec<Peer> = state.remote_peers().collect();
        let events_before = state.pending_events();
        let stats_before = state.stats();
        let decodes = PexMessage::decode(payload);
        let result = state.handle_message(self.clock.now, payload);
        let claims_after: Vec<Peer> = state.remote_peers().collect();
        if limits.private {
            ensure!(
                result.is_ok(),
                "private torrent refused a message: {result:?}"
            );
            ensure!(
                claims_after == claims_before,
                "private torrent learned peers"
            );
            model.wire.observe(self.clock.now);
            return Ok(());
        }
        match result {
            Ok(()) => {
                model.wire.observe(self.clock.now);
                ensure!(
                    payload.len() <= limits.max_message,
                    "accepted {} bytes over the limit",
                    payload.len()
                );
                let message = decodes
                    .map_err(|e| format!("accepted a payload that does not decode: {e:?}"))?;
                let (new, gone) = claim_changes(&claims_before, &claims_after)?;
                if new.is_empty() && gone.is_empty() {
                    return Ok(());
                }
                // Only the first `max_remote_peers` entries of each list count: the rest is
                // ignored and counted in `Stats::ignored_over_cap`.
                let examine = limits.remote_cap;
                let added: AddrSet = message
                    .added()
                    .take(examine)
                    .map(|p| canonical_addr(p.addr))
                    .collect();
                let dropped: AddrSet = message
                    .dropped()
                    .take(examine)
                    .map(canonical_addr)
                    .collect();
                let remote_is_global = model
                    .wire
                    .remote_addr
                    .is_some_and(|a| !is_local_scope(a.ip()));
                for peer in &new {
                    ensure!(
                        added.contains(&peer.addr),
                        "{} claimed without being added",
                        peer.addr
                    );
                    ensure!(
                        !dropped.contains(&peer.addr),
                        "{} added and dropped in one message, kept",
                        peer.addr
                    );
                    ensure!(
                        !(remote_is_global && is_local_scope(peer.addr.ip())),
                        "local-scope {} kept from a global remote",
                        peer.addr
                    );
                }
                for addr in &gone {
                    ensure!(dropped.contains(addr), "{addr} forgotten without a drop");
                }
            }
            Err(error) => {
                ensure!(
                    claims_after == claims_before,
                    "refused message ({error:?}) changed the claims"
                );
                ensure!(
                    state.pending_events() == events_before,
                    "refused message queued events"
                );
                check_only_errors_moved(&stats_before, &state.stats())?;
                match error {
                    MessageError::TooLarge { size, limit } => {
                        ensure!(
                            size == payload.len() && size > limit && limit == limits.max_message,
                            "bad TooLarge {error:?}"
                        );
                    }
                    MessageError::Decode(e) => {
                        ensure!(
                            decodes == Err(e),
                            "Decode({e:?}) but decode gives {decodes:?}"
                        );
                        ensure!(
                            !honest,
                            "a frame from the other state does not decode: {e:?}"
                        );
                    }
                    MessageError::TooFrequent { .. } => {}
                    _ => return Err(format!("unknown error {error:?}")),
                }
                if payload.len() > limits.max_message {
                    ensure!(
                        matches!(error, MessageError::TooLarge { .. }),
                        "oversized payload gave {error:?}"
                    );
                }
            }
        }
        Ok(())
    }

    fn add_peer(&mut self, side: Side, addr: SocketAddr, flags: PeerFlags) {
        let i = side.index();
        self.states[i].add_peer(addr, flags);
        let addr = canonical_addr(addr);
        if usable(addr) {
            self.models[i].live.insert(addr, flags);
        }
    }

    fn drop_peer(&mut self, side: Side, addr: SocketAddr) {
        let i = side.index();
        self.states[i].drop_peer(addr);
        self.models[i].live.remove(&canonical_addr(addr));
    }

    /// `handle_timeout(at)`, then the no-busy-loop rule.
    ///
    /// The state keeps the latest instant it has seen, so after a backwards `at` its clock
    /// is still that latest instant: the deadline must then be later than that, not merely
    /// later than `at` (a deadline between the two would be in the state's past, and a host
    /// that sleeps until it and calls again would spin).
    fn timeout(&mut self, side: Side, at: Instant) -> Check {
        let i = side.index();
        self.states[i].handle_timeout(at);
        self.models[i].wire.observe(at);
        self.models[i]
            .wire
            .check_deadline(self.states[i].poll_timeout())
    }

    fn sent(&mut self, from: Side, frame: Frame) -> Check {
        let i = from.index();
        self.models[i].check_frame(&frame, &self.states[i])?;
        let queue = &mut self.in_flight[1 - i];
        if queue.len() == IN_FLIGHT {
            queue.pop_front();
        }
        queue.push_back(frame);
        Ok(())
    }
}

/// How the claims went from `before` to `after` (each sorted by address, which this
/// checks): the peers of `after` that `before` does not hold with those flags, and the
/// addresses of `before` that `after` lacks. One merge walk, no search.
fn claim_changes(before: &[Peer], after: &[Peer]) -> Result<(Vec<Peer>, Vec<SocketAddr>), String> {
    for list in [before, after] {
        ensure!(
            list.windows(2).all(|w| w[0].addr < w[1].addr),
            "remote_peers() not sorted or duplicated"
        );
    }
    let (mut new, mut gone) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < before.len() && j < after.len() {
        let (b, a) = (before[i], after[j]);
        match b.addr.cmp(&a.addr) {
            std::cmp::Ordering::Less => {
                gone.push(b.addr);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                new.push(a);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if b.flags != a.flags {
                    new.push(a);
                }
                i += 1;
                j += 1;
            }
        }
    }
    gone.extend(before[i..].iter().map(|p| p.addr));
    new.extend_from_slice(&after[j..]);
    Ok((new, gone))
}

/// The `state_ops` target: fuzz bytes read as a [`Script`] exactly as
/// `fuzz_target!(|script: Script| …)` does (inputs that make no script pass), then run.
pub fn check_bytes(data: &[u8]) -> Check {
    match crate::script::script_from_bytes(data) {
        Some(script) => run_script(&script),
        None => Ok(()),
    }
}
