//! [`PexState`]: the per-connection sans-IO PEX state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::error::{HandshakeError, MessageError};
use crate::event::{Event, EventQueue};
use crate::flags::{canonical_addr, Peer, PeerFlags};
use crate::handshake::{ExtendedHandshake, UT_PEX};
use crate::inbound::{Claim, Inbound};
use crate::message::{encode_frame, Frame};
use crate::stats::Stats;

/// PEX for one peer connection, as a pure state machine: inputs in, frames, events and a
/// deadline out. It never reads a clock, opens a socket, spawns or draws a random number.
///
/// Its methods come in four groups (as quinn-proto's `Connection`):
/// - getters taking `&self`: [`is_enabled`](Self::is_enabled),
///   [`remote_peers`](Self::remote_peers), [`stats`](Self::stats), …;
/// - handlers of what the remote sent or of time passing, named `handle_*`, with `now` first;
/// - commands from the host: [`start`](Self::start), [`stop`](Self::stop),
///   [`reset`](Self::reset), [`add_peer`](Self::add_peer), [`drop_peer`](Self::drop_peer);
/// - outputs, named `poll_*`.
///
/// After any input, drain in this order: [`poll_transmit`](Self::poll_transmit) until `None`
/// (write each frame to the peer), [`poll_event`](Self::poll_event) until `None`, then sleep
/// until [`poll_timeout`](Self::poll_timeout) and call
/// [`handle_timeout`](Self::handle_timeout) then. Instants should not go backwards; if they
/// do, the latest one seen counts (nothing panics, whatever instants are passed).
#[derive(Debug)]
pub struct PexState {
    config: Config,
    schedule: Schedule,
    outbox: Outbox,
    inbound: Inbound,
    events: EventQueue,
    stats: Stats,
    /// The remote's dial address, if the host told us: never advertised back to it.
    remote_addr: Option<SocketAddr>,
    /// Reused between frames so that steady state allocates only the frame itself.
    scratch_added: Vec<Peer>,
    scratch_dropped: Vec<SocketAddr>,
}

impl PexState {
    /// A new state: stopped, and disabled until the remote's handshake advertises `ut_pex`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            schedule: Schedule::default(),
            outbox: Outbox::default(),
            inbound: Inbound::default(),
            events: EventQueue::default(),
            stats: Stats::default(),
            remote_addr: None,
            scratch_added: Vec::new(),
            scratch_dropped: Vec::new(),
        }
    }

    // ---- getters --------------------------------------------------------------------------

    /// The id to register `ut_pex` under in our own extended handshake's `m`, or `None` for a
    /// private torrent, whose handshake must not advertise it (BEP 27).
    pub fn local_extension_id(&self) -> Option<u8> {
        (!self.config.private).then_some(self.config.local_extension_id)
    }

    /// The extension name, `"ut_pex"`.
    pub fn extension_name(&self) -> &'static str {
        UT_PEX
    }

    /// The id the remote gave `ut_pex` (0: not advertised or turned off).
    pub fn remote_extension_id(&self) -> u8 {
        self.schedule.remote_id
    }

    /// Whether the remote has `ut_pex` on (a non-zero id) and the torrent is not private.
    pub fn is_enabled(&self) -> bool {
        self.schedule.remote_id != 0 && !self.config.private
    }

    /// Whether the host called [`start`](Self::start) (and not [`stop`](Self::stop) since).
    pub fn is_started(&self) -> bool {
        self.schedule.started
    }

    /// The peers the remote currently claims to be connected to, sorted by address. The
    /// connection that announced a peer is the one to ask for a BEP 55 holepunch rendezvous.
    pub fn remote_peers(&self) -> impl Iterator<Item = Peer> + '_ {
        self.inbound.claims().iter().copied()
    }

    /// Whether the remote currently claims `addr`, and with which flags.
    pub fn remote_claims(&self, addr: SocketAddr) -> Option<PeerFlags> {
        self.inbound.claimed_flags(canonical_addr(addr))
    }

    /// How many peers the host added that are live now.
    pub fn live_peers(&self) -> usize {
        self.outbox.live.len()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Heap bytes held by the state's collections (capacity, not length): for memory
    /// accounting and the bounded-memory tests. Approximate for the B-tree collections.
    pub fn heap_bytes(&self) -> usize {
        self.outbox.heap_bytes()
            + self.inbound.heap_bytes()
            + self.events.heap_bytes()
            + self.scratch_added.capacity() * std::mem::size_of::<Peer>()
            + self.scratch_dropped.capacity() * std::mem::size_of::<SocketAddr>()
    }

    /// How many events wait to be polled (bounded: see [`Event`]).
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    // ---- handlers -------------------------------------------------------------------------

    /// Handles the remote's BEP 10 extended handshake payload (the dictionary after
    /// `<20><0>`). Only `m.ut_pex` matters here; it may come again later (BEP 10: "the `m`
    /// dictionary is additive": a handshake without `ut_pex` changes nothing, `ut_pex: 0`
    /// turns it off). On `Err` the state is unchanged.
    pub fn handle_extended_handshake(
        &mut self,
        now: Instant,
        payload: &[u8],
    ) -> Result<(), HandshakeError> {
        let handshake = ExtendedHandshake::decode(payload).map_err(|e| {
            self.stats.errors_handshake += 1;
            HandshakeError::Decode(e)
        })?;
        match handshake.ut_pex() {
            Some(id) => self.set_remote_extension_id(now, id),
            None => self.advance(now),
        }
        Ok(())
    }

    /// Sets the remote's `ut_pex` id, for hosts that parse the handshake themselves; 0
    /// disables. Emits [`Event::Enabled`] / [`Event::Disabled`] on a change between zero and
    /// non-zero. A new id is used from the next frame on: frames are built when polled.
    pub fn set_remote_extension_id(&mut self, now: Instant, id: u8) {
        let was_enabled = self.is_enabled();
        self.schedule.remote_id = id;
        match (was_enabled, self.is_enabled()) {
            (false, true) => self.events.push(Event::Enabled),
            (true, false) => {
                self.schedule.due_at = None;
                self.events.push(Event::Disabled);
            }
            _ => {}
        }
        self.advance(now);
    }

    /// Tells the state the remote's dial address (its IP, and its listen port if known).
    /// That address is never advertised back to it, and if its IP is global, local-scope
    /// addresses it sends (loopback, private, link-local, unique-local) are ignored, as
    /// libtorrent does; they are kept otherwise.
    pub fn set_remote_address(&mut self, addr: SocketAddr) {
        let addr = canonical_addr(addr);
        self.remote_addr = Some(addr);
        self.inbound.set_remote_ip(addr.ip());
        self.outbox.suppress(addr);
    }

    /// Handles a received ut_pex payload (the host routed it here by *our* local extension
    /// id). Accepted peers come out as [`Event::PeerAdded`] / [`Event::PeerDropped`].
    ///
    /// Liberal (see [`PexMessage::decode`](crate::PexMessage::decode)); entries are then
    /// filtered by documented rules, each counted in [`Stats`]: port 0, unspecified,
    /// multicast and broadcast addresses are ignored; IPv4-mapped IPv6 becomes IPv4; an
    /// address both added and dropped in one message is ignored (BEP 11: "An added contact
    /// must not be dropped in the same message"); local-scope addresses from a global remote
    /// are ignored (see [`set_remote_address`](Self::set_remote_address)); an add of an
    /// address already claimed, a drop of one never claimed, and adds beyond
    /// [`Config::max_remote_peers`] are ignored.
    ///
    /// `Err` for a payload over [`Config::max_message_size`], one that does not decode, or a
    /// flood ([`Config::flood_limit`]); the state is then exactly as before (only the error
    /// counter moves). The crate never disconnects anyone: the host decides.
    pub fn handle_message(&mut self, now: Instant, payload: &[u8]) -> Result<(), MessageError> {
        let outbox = &mut self.outbox;
        let remote_addr = self.remote_addr;
        self.inbound.handle(
            now,
            payload,
            &self.config,
            &mut self.events,
            &mut self.stats,
            |claim| match claim {
                // The remote's own address stays held back when the remote stops claiming it.
                Claim::Dropped(addr) if Some(addr) == remote_addr => {}
                claim => outbox.on_claim(claim),
            },
        )?;
        self.advance(now);
        Ok(())
    }

    /// Handles time passing: sends what is due. Spurious or early calls are harmless, and
    /// afterwards [`poll_timeout`](Self::poll_timeout) is `None` or later than `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    // ---- commands -------------------------------------------------------------------------

    /// Starts sending (the JS module's `start()`). The first frame goes out as soon as the
    /// remote has `ut_pex` on and there is a peer to announce.
    pub fn start(&mut self, now: Instant) {
        self.schedule.started = true;
        self.advance(now);
    }

    /// Stops sending; receiving goes on. Peers added meanwhile are sent after `start`.
    pub fn stop(&mut self) {
        self.schedule.started = false;
        self.schedule.due_at = None;
    }

    /// Forgets everything learned and queued, and stops (the JS module's `reset()`): the
    /// live set, the queues, the peers the remote claimed and the events about them.
    ///
    /// One difference from the JS module: peers already advertised to the remote are queued
    /// as drops, so that after the next `start` the remote's view is truthful again (BEP 11:
    /// "only signaling added peers without ever dropping them is non-compliant"). The send
    /// spacing and flood window are kept too, so a reset never lets a frame out early.
    pub fn reset(&mut self) {
        self.stop();
        self.outbox.reset();
        self.inbound.forget();
        self.events.clear_peers();
    }

    /// Announces that we are connected to a peer (the JS module's `addPeer`): its dial
    /// address and flags. BEP 11: "a peer should only be added once it has been connected
    /// to". Queued for the next frame unless a drop of it is still queued (then both cancel),
    /// unless the remote itself announced it to us (never echoed back), or it is the remote's
    /// own address. Ignored (and counted) for port 0 or an unspecified or multicast address.
    /// Adding a live peer again only updates its flags for peers not yet sent.
    pub fn add_peer(&mut self, addr: SocketAddr, flags: PeerFlags) {
        let addr = canonical_addr(addr);
        let unusable = addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast();
        if unusable {
            self.stats.ignored_local_unusable += 1;
            return;
        }
        let suppressed = Some(addr) == self.remote_addr || self.inbound.claimed(addr);
        self.outbox.add(addr, flags, suppressed);
    }

    /// Announces that a connection ended (the JS module's `dropPeer`). Sent as `dropped` in a
    /// later frame only if the peer was advertised to this remote; a peer still queued is
    /// simply unqueued.
    pub fn drop_peer(&mut self, addr: SocketAddr) {
        self.outbox.drop(canonical_addr(addr));
    }

    // ---- outputs --------------------------------------------------------------------------

    /// The next frame to write to the peer, whole (`<len><20><remote id><payload>`).
    ///
    /// Poll after every input and command until `None`. Never returns an empty frame, never
    /// two within [`Config::send_interval`], and at most [`Config::max_entries_per_frame`]
    /// added and dropped entries each (the first frame: up to
    /// [`Config::initial_max_peers`] added); the rest waits for later frames, first in,
    /// first out.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        let due_at = self.schedule.due_at.take()?;
        if !self.can_send() {
            return None;
        }
        let max_added = if self.stats.frames_sent == 0 {
            self.config.initial_max_peers
        } else {
            self.config.max_entries_per_frame
        };
        self.scratch_added.clear();
        self.scratch_dropped.clear();
        self.outbox.take_batch(
            max_added,
            self.config.max_entries_per_frame,
            &mut self.scratch_added,
            &mut self.scratch_dropped,
        );
        if self.scratch_added.is_empty() && self.scratch_dropped.is_empty() {
            // Everything queued was cancelled since the frame was decided: send nothing.
            return None;
        }
        let frame = encode_frame(
            self.schedule.remote_id,
            &self.scratch_added,
            &self.scratch_dropped,
        );
        // The frame leaves now, not when it was decided: a host that polls late must not
        // get the next frame less than an interval after this one.
        self.schedule.last_send = Some(self.schedule.now.map_or(due_at, |now| now.max(due_at)));
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += frame.len() as u64;
        self.stats.peers_added_sent += self.scratch_added.len() as u64;
        self.stats.peers_dropped_sent += self.scratch_dropped.len() as u64;
        Some(frame)
    }

    /// The next fact for the host: PEX turned on or off, a peer the remote announced or
    /// dropped. Poll after every input until `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None` when nothing is
    /// scheduled. May be in the past (call it right away).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.can_send() || !self.outbox.has_pending() {
            return None;
        }
        let interval = self.config.send_interval;
        match self.schedule.due_at {
            // A frame is decided but not yet polled: the one after it.
            Some(due) => due.checked_add(interval),
            None => match self.schedule.last_send {
                Some(last) => last.checked_add(interval),
                None => self.schedule.now,
            },
        }
    }

    // ---- internals ------------------------------------------------------------------------

    fn can_send(&self) -> bool {
        self.schedule.started && self.is_enabled()
    }

    /// Takes a new instant into account and decides whether a frame is due.
    fn advance(&mut self, now: Instant) {
        let now = self.schedule.observe(now);
        if !self.can_send() || !self.outbox.has_pending() {
            return;
        }
        let interval = self.config.send_interval;
        let allowed = |since: Option<Instant>| match since {
            None => true,
            // An instant so far in the future that adding the interval overflows: never.
            Some(t) => t.checked_add(interval).is_some_and(|next| now >= next),
        };
        match self.schedule.due_at {
            None if allowed(self.schedule.last_send) => self.schedule.due_at = Some(now),
            // The host let a decided frame wait a whole interval: re-decide it now, so the
            // deadline moves past `now` (no busy loop) and spacing counts from the real send.
            Some(due) if allowed(Some(due)) => self.schedule.due_at = Some(now),
            _ => {}
        }
    }
}

/// When frames may go out: the remote's id, start/stop, and the send times.
#[derive(Debug, Default)]
struct Schedule {
    /// The latest instant seen.
    now: Option<Instant>,
    remote_id: u8,
    started: bool,
    /// When the last frame was polled (the latest instant seen then).
    last_send: Option<Instant>,
    /// A frame decided at this instant, built when polled.
    due_at: Option<Instant>,
}

impl Schedule {
    /// Records `now`, ignoring instants earlier than one already seen; returns the latest.
    fn observe(&mut self, now: Instant) -> Instant {
        let latest = self.now.map_or(now, |seen| seen.max(now));
        self.now = Some(latest);
        latest
    }
}

/// The sending side of one connection: the live set and what is queued for the remote.
///
/// Invariants: `pending_add` ⊆ live ∖ advertised, `pending_drop` ⊆ advertised ∖ live, no
/// duplicates in either; so no frame can add and drop one address, and `dropped` only
/// names peers advertised to this remote.
#[derive(Debug, Default)]
struct Outbox {
    live: BTreeMap<SocketAddr, PeerFlags>,
    advertised: BTreeSet<SocketAddr>,
    pending_add: VecDeque<SocketAddr>,
    pending_drop: VecDeque<SocketAddr>,
    /// Live peers held back because the remote announced them or is them.
    suppressed: BTreeSet<SocketAddr>,
}

impl Outbox {
    fn has_pending(&self) -> bool {
        !self.pending_add.is_empty() || !self.pending_drop.is_empty()
    }

    fn add(&mut self, addr: SocketAddr, flags: PeerFlags, suppressed: bool) {
        if self.live.insert(addr, flags).is_some() {
            return; // already live: flags updated, nothing to queue
        }
        if self.advertised.contains(&addr) {
            // Dropped and re-added before the drop went out: the remote's view is right.
            remove_item(&mut self.pending_drop, addr);
        } else if suppressed {
            self.suppressed.insert(addr);
        } else {
            self.pending_add.push_back(addr);
        }
    }

    fn drop(&mut self, addr: SocketAddr) {
        if self.live.remove(&addr).is_none() {
            return;
        }
        self.suppressed.remove(&addr);
        if self.advertised.contains(&addr) {
            self.pending_drop.push_back(addr);
        } else {
            remove_item(&mut self.pending_add, addr);
        }
    }

    /// Holds `addr` back from the remote (it announced it to us, or it is the remote).
    fn suppress(&mut self, addr: SocketAddr) {
        if self.live.contains_key(&addr) && !self.advertised.contains(&addr) {
            remove_item(&mut self.pending_add, addr);
            self.suppressed.insert(addr);
        }
    }

    fn on_claim(&mut self, claim: Claim) {
        match claim {
            Claim::Added(addr) => self.suppress(addr),
            // The remote lost it; if we are still connected to it, it is news again.
            Claim::Dropped(addr) => {
                if self.suppressed.remove(&addr) {
                    self.pending_add.push_back(addr);
                }
            }
        }
    }

    fn take_batch(
        &mut self,
        max_added: usize,
        max_dropped: usize,
        added: &mut Vec<Peer>,
        dropped: &mut Vec<SocketAddr>,
    ) {
        while added.len() < max_added {
            let Some(addr) = self.pending_add.pop_front() else {
                break;
            };
            // The invariant says it is live; skip rather than panic if that ever breaks.
            if let Some(&flags) = self.live.get(&addr) {
                self.advertised.insert(addr);
                added.push(Peer::new(addr, flags));
            }
        }
        while dropped.len() < max_dropped {
            let Some(addr) = self.pending_drop.pop_front() else {
                break;
            };
            self.advertised.remove(&addr);
            dropped.push(addr);
        }
    }

    /// Forgets the live set and the queues; what the remote was told is dropped next.
    fn reset(&mut self) {
        self.live.clear();
        self.pending_add.clear();
        self.suppressed.clear();
        let already_queued: BTreeSet<_> = self.pending_drop.iter().copied().collect();
        let to_drop: Vec<_> = self
            .advertised
            .iter()
            .copied()
            .filter(|a| !already_queued.contains(a))
            .collect();
        self.pending_drop.extend(to_drop);
    }

    fn heap_bytes(&self) -> usize {
        // B-tree nodes hold up to 11 entries; count entries plus a node overhead share.
        let entry = std::mem::size_of::<SocketAddr>();
        self.live.len() * (entry + std::mem::size_of::<PeerFlags>() + 8)
            + (self.advertised.len() + self.suppressed.len()) * (entry + 8)
            + (self.pending_add.capacity() + self.pending_drop.capacity()) * entry
    }
}

fn remove_item(queue: &mut VecDeque<SocketAddr>, addr: SocketAddr) {
    if let Some(i) = queue.iter().position(|&a| a == addr) {
        queue.remove(i);
    }
}
