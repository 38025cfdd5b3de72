//! The interpreter of [`Script`]: two `PexState`s wired together through a lossy in-flight
//! queue, every operation's documented contract checked as it runs, and the per-state
//! invariants checked after each step (cheaply: what an operation cannot change is checked
//! when it can, and everything once more at the end, after the [`crate::converge`] phase).
//!
//! [`check_refusals_invisible`] runs a script twice, the second time without the inputs the
//! first refused: a refused input must leave no trace, now or later.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder, UT_PEX};
use ut_pex::{
    canonical_addr, DecodeError, Event, Frame, MessageError, Peer, PeerFlags, PexMessage, PexState,
    Stats,
};

use crate::addr::{
    built_payload, gen_addr, is_local_scope, many_payload, usable, AddrMap, AddrSet,
};
use crate::converge::{check_converged, has_room, round_limit, MAX_ROUNDS, SETTLE_REMOTE_ID};
use crate::ensure;
use crate::host::{check_claims, check_claims_since, check_conn};
use crate::pair::{observe, observe_except_claims, Observed};
use crate::rules::{HostView, Limits, WireRules};
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
    /// `add_peer` calls so far: with the cap, what the heap may grow with.
    pub adds: usize,
    /// Every address the host gave `set_remote_address`. A live peer passed over while it
    /// was the remote's own address need not be offered again once the address changes:
    /// the rules only forbid sending it, so convergence exempts every address it had.
    pub remote_addrs: AddrSet,
}

impl Model {
    /// A model of a new state with these limits.
    pub fn new(limits: Limits) -> Self {
        let mut wire = WireRules::new(limits);
        wire.advertised.reserve(PRESIZED);
        Self {
            wire,
            live: AddrMap::with_capacity_and_hasher(PRESIZED, Default::default()),
            host: HostView::default(),
            stats: Stats::default(),
            claims: Vec::new(),
            remote_addrs: AddrSet::default(),
            adds: 0,
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
        if self.wire.limits.private {
            // BEP 27: no PEX at all, so nothing for the host to hear either.
            ensure!(
                state.pending_events() == 0,
                "a private torrent queued events"
            );
        }
        Ok(())
    }

    /// The heap stays within what the inputs can account for: a fixed floor, plus a
    /// generous share per peer the host added and per claim the cap allows (a leak grows
    /// past it over a long script; the bound is loose so that no layout change trips it).
    fn check_heap(&self, state: &PexState) -> Check {
        let bound = HEAP_FLOOR + HEAP_PER_PEER * (self.adds + self.wire.limits.remote_cap);
        let heap = state.heap_bytes();
        ensure!(heap <= bound, "{heap} heap bytes, bound {bound}");
        Ok(())
    }

    /// [`check_claims_since`] the previous claims check, and the heap accounting does not
    /// panic.
    pub fn check_claims(&mut self, state: &PexState) -> Check {
        check_claims_since(&self.wire, &self.host, state, &mut self.claims)?;
        self.check_heap(state)
    }

    /// [`check_claims`] in full, whatever was checked before.
    pub fn check_claims_all(&self, state: &PexState) -> Check {
        check_claims(&self.wire, &self.host, state)?;
        self.check_heap(state)
    }
}

/// The heap a state may hold with no peers, and per peer it may hold (see
/// `Model::check_heap`).
const HEAP_FLOOR: usize = 16 * 1024;
/// See [`HEAP_FLOOR`].
const HEAP_PER_PEER: usize = 512;

/// The peers a model's live and advertised sets are sized for from the start: growing
/// them entry by entry from empty (rehashing at 3, 7, 14, 28, 56) was a tenth of the
/// harness's time in `state_ops`, whose scripts add a few dozen peers or more.
const PRESIZED: usize = 64;

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
    /// The step being run.
    step: usize,
    /// How many messages and handshakes the step being run has handed over so far.
    inputs_in_step: usize,
    /// Messages and handshakes withheld from the state (the twin run).
    skip: Vec<Input>,
    /// Messages and handshakes the state refused.
    refused: Vec<Input>,
    /// What each step showed, when tracing.
    trace: Option<Vec<StepTrace>>,
    /// The frames and events of the step being run, when tracing.
    outputs: (Vec<Vec<u8>>, Vec<Event>),
    /// The buffers `message` reads claims and message lists into, kept across calls for
    /// their allocations.
    scratch: Scratch,
}

/// See [`Harness::scratch`]: empty or stale between calls, never read before being filled.
#[derive(Default)]
struct Scratch {
    /// `remote_peers()` before and after the call.
    claims: (Vec<Peer>, Vec<Peer>),
    /// The message's added and dropped addresses that count.
    lists: (AddrSet, AddrSet),
}

/// What one step showed of both states: what `&self` observes afterwards, the frames sent
/// and the events polled.
#[derive(Debug, PartialEq)]
struct StepTrace {
    step: usize,
    observed: [Observed; 2],
    frames: Vec<Vec<u8>>,
    events: Vec<Event>,
}

/// One message or handshake of a run: its step and its place among the step's inputs (a
/// `Deliver` step hands over several frames, and the state may refuse only some of them).
type Input = (usize, usize);

/// What a traced run leaves for the twin comparison.
struct Outcome {
    refused: Vec<Input>,
    trace: Vec<StepTrace>,
}

/// The one state `op` calls into (`None`: neither; no operation touches both). A state the
/// step did not touch is as the previous step left it, and so is its model: every check
/// of it would repeat a check that passed, so the checks after a step skip it.
fn touched(op: &Op) -> Option<Side> {
    match *op {
        Op::Time(_) | Op::LoseInFlight(_) => None,
        Op::HandshakeBytes(side, _)
        | Op::HandshakeBuilt { to: side, .. }
        | Op::HandshakeFromPeer(side)
        | Op::SetRemoteId(side, _)
        | Op::MessageBytes(side, _)
        | Op::MessageBuilt { to: side, .. }
        | Op::MessageMany { to: side, .. }
        | Op::AddPeer(side, ..)
        | Op::AddMany(side, ..)
        | Op::DropPeer(side, _)
        | Op::DropMany(side, ..)
        | Op::Start(side)
        | Op::Stop(side)
        | Op::Reset(side)
        | Op::SetRemoteAddress(side, _)
        | Op::Timeout(side)
        | Op::RunDeadline(side)
        | Op::PollTransmit(side)
        | Op::PollEvents(side, _)
        | Op::Deliver(side, _) => Some(side),
    }
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

/// Runs a script against two fresh states and checks the invariants after every step,
/// then lets both connections settle and checks that they converged.
pub fn run_script(script: &Script) -> Check {
    run(script, Instant::now(), Vec::new(), false).map(|_| ())
}

/// Runs `script` twice from the same instant, the second time withholding every message
/// and handshake the first run refused: each step must show the same in both (what both
/// states observe, the frames they send, the events they queue). A refusal that left a
/// trace anywhere, a counter or a flood window included, shows up as a difference.
/// Returns how many refused inputs were withheld (0: the script had none to compare), so a
/// test can tell that its scripts reach refusals.
pub fn check_refusals_invisible(script: &Script) -> Result<usize, String> {
    let base = Instant::now();
    let first = run(script, base, Vec::new(), true)?;
    if first.refused.is_empty() {
        return Ok(0);
    }
    let twin = run(script, base, first.refused.clone(), true)?;
    ensure!(
        first.trace.len() == twin.trace.len(),
        "the twin ran {} steps, the first run {}",
        twin.trace.len(),
        first.trace.len()
    );
    for (seen, twin) in first.trace.iter().zip(&twin.trace) {
        ensure!(
            seen == twin,
            "after refusing inputs (step, nth) {:?}, step {} differs:\n{seen:?}\n{twin:?}",
            first.refused,
            seen.step
        );
    }
    Ok(first.refused.len())
}

/// One run: from `base`, withholding the `skip` inputs, tracing if asked.
fn run(script: &Script, base: Instant, skip: Vec<Input>, trace: bool) -> Result<Outcome, String> {
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
        clock: Clock::new(base),
        bulk: Bulk::default(),
        step: 0,
        inputs_in_step: 0,
        skip,
        refused: Vec::new(),
        trace: trace.then(Vec::new),
        outputs: (Vec::new(), Vec::new()),
        scratch: Scratch::default(),
    };
    for (step, op) in script.ops.iter().take(MAX_OPS).enumerate() {
        (h.step, h.inputs_in_step) = (step, 0);
        h.apply(op)
            .map_err(|e| format!("step {step} {op:?}: {e}"))?;
        // Both once at the start, then only the state the step touched.
        let touched = touched(op);
        for i in 0..2 {
            if step > 0 && touched.map(Side::index) != Some(i) {
                continue;
            }
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
        h.record();
    }
    (h.step, h.inputs_in_step) = (usize::MAX, 0);
    for side in [Side::A, Side::B] {
        h.settle(side)
            .map_err(|e| format!("settling state {}: {e}", side.index()))?;
    }
    for i in 0..2 {
        h.models[i]
            .check_claims_all(&h.states[i])
            .map_err(|e| format!("at the end, state {i}: {e}"))?;
    }
    h.record();
    Ok(Outcome {
        refused: h.refused,
        trace: h.trace.unwrap_or_default(),
    })
}

impl Harness {
    /// Ends a step of a traced run.
    fn record(&mut self) {
        if let Some(trace) = &mut self.trace {
            let (frames, events) = std::mem::take(&mut self.outputs);
            trace.push(StepTrace {
                step: self.step,
                observed: [observe(&self.states[0]), observe(&self.states[1])],
                frames,
                events,
            });
        }
    }

    /// Numbers the next message or handshake; `None` if the twin run withholds it.
    fn next_input(&mut self) -> Option<Input> {
        let input = (self.step, self.inputs_in_step);
        self.inputs_in_step += 1;
        (!self.skip.contains(&input)).then_some(input)
    }

    /// The [`crate::converge`] phase for one state: `ut_pex` on, started, every deadline
    /// run and every frame polled and checked until none is scheduled; then the remote was
    /// told the live set, less its own addresses and what it claims. A private torrent
    /// sends nothing however long it runs ([`WireRules`] refuses any frame).
    fn settle(&mut self, side: Side) -> Check {
        let i = side.index();
        let wire = &self.models[i].wire;
        let rounds = round_limit(wire, self.models[i].live.len());
        self.clock.now = wire
            .seen
            .map_or(self.clock.now, |seen| seen.max(self.clock.now));
        if rounds > MAX_ROUNDS || !has_room(self.clock.now, wire.limits.interval, rounds) {
            return Ok(());
        }
        if self.models[i].wire.remote_id == 0 {
            self.apply(&Op::SetRemoteId(side, SETTLE_REMOTE_ID))?;
        }
        if !self.models[i].wire.started {
            self.apply(&Op::Start(side))?;
        }
        // A frame already due is taken first: while one waits, there is no deadline.
        for _ in 0..rounds {
            self.apply(&Op::PollTransmit(side))?;
            let Some(deadline) = self.states[i].poll_timeout() else {
                break;
            };
            self.timeout(side, deadline)?;
        }
        let (state, model) = (&self.states[i], &self.models[i]);
        ensure!(
            state.poll_timeout().is_none(),
            "still scheduled after {rounds} deadlines"
        );
        if model.wire.limits.private {
            return Ok(());
        }
        check_converged(&model.wire, model.live.keys().copied(), |addr| {
            model.remote_addrs.contains(&addr) || state.remote_claims(addr).is_some()
        })
    }

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
                self.models[i].remote_addrs.insert(canonical_addr(addr));
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
                    if self.trace.is_some() {
                        self.outputs.1.push(event);
                    }
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
        let Some(input) = self.next_input() else {
            return Ok(());
        };
        let i = side.index();
        let (state, model) = (&mut self.states[i], &mut self.models[i]);
        let before = observe(&*state);
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
                    observe(&*state) == before,
                    "a refused handshake changed the state"
                );
                self.refused.push(input);
            }
            (got, want) => return Err(format!("handshake result {got:?}, decode says {want:?}")),
        }
        Ok(())
    }

    /// `handle_message` with its documented contract checked; `honest`: a frame the other
    /// state sent.
    fn message(&mut self, side: Side, payload: &[u8], honest: bool) -> Check {
        let Some(input) = self.next_input() else {
            return Ok(());
        };
        let i = side.index();
        let (state, model) = (&mut self.states[i], &mut self.models[i]);
        let limits = model.wire.limits;
        // The snapshot in two parts, so that no call allocates: the claims into a buffer
        // that stays, the rest (counters, flags, lengths) by value.
        let (claims_before, claims_after) = &mut self.scratch.claims;
        claims_before.clear();
        claims_before.extend(state.remote_peers());
        let before = observe_except_claims(&*state);
        let decodes = PexMessage::decode(payload);
        let result = state.handle_message(self.clock.now, payload);
        claims_after.clear();
        claims_after.extend(state.remote_peers());
        let (claims_before, claims_after) = (&*claims_before, &*claims_after);
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
                let (new, gone) = claim_changes(claims_before, claims_after)?;
                if new.is_empty() && gone.is_empty() {
                    return Ok(());
                }
                // Only the first `max_remote_peers` entries of each list count: the rest is
                // ignored and counted in `Stats::ignored_over_cap`.
                let examine = limits.remote_cap;
                let (added, dropped) = &mut self.scratch.lists;
                added.clear();
                added.extend(
                    message
                        .added()
                        .take(examine)
                        .map(|p| canonical_addr(p.addr)),
                );
                dropped.clear();
                dropped.extend(message.dropped().take(examine).map(canonical_addr));
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
                // Claims, events, deadline, live set, heap, every counter but the errors:
                // `observe` before and after, compared in its two parts.
                let after = observe_except_claims(&*state);
                if after != before || claims_after != claims_before {
                    let before = Observed {
                        remote_peers: claims_before.clone(),
                        ..before
                    };
                    let after = Observed {
                        remote_peers: claims_after.clone(),
                        ..after
                    };
                    return Err(format!(
                        "refused message ({error:?}) changed the state:\n{before:?}\n{after:?}"
                    ));
                }
                self.refused.push(input);
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
        self.models[i].adds += 1;
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
        if self.trace.is_some() {
            self.outputs.0.push(frame.as_bytes().to_vec());
        }
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
