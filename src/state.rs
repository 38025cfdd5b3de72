//! [`PexState`]: the per-connection sans-IO PEX state machine.

use std::net::SocketAddr;
use std::time::Instant;

use crate::addr::{canonical_addr, is_usable};
use crate::codec::Frame;
use crate::config::Config;
use crate::conn::{Conn, Next};
use crate::error::{HandshakeError, MessageError};
use crate::event::{Event, Spare};
use crate::handshake::{ExtendedHandshake, UT_PEX};
use crate::peer::{Peer, PeerFlags};
use crate::stats::Stats;
use crate::timeline::{Batch, Compactor, Timeline};

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
    /// The peers the host added, as a log the connection walks: the same engine a
    /// [`Swarm`](crate::Swarm) shares between its connections, here with one reader.
    timeline: Timeline,
    conn: Conn,
    /// The latest instant seen (commands without `now` schedule from it).
    now: Option<Instant>,
    /// Whether a frame is due, to be built when polled (with the remote id of that moment).
    due: bool,
    /// One frame's entries, allocated with the first frame.
    batch: Option<Box<Batch>>,
    /// The event spill buffer, kept between bursts (see `EventQueue`).
    spare: Spare,
}

impl PexState {
    /// A new state: stopped, and disabled until the remote's handshake advertises `ut_pex`.
    pub fn new(config: Config) -> Self {
        let timeline = Timeline::default();
        let conn = Conn::new(&timeline);
        Self {
            config,
            timeline,
            conn,
            now: None,
            due: false,
            batch: None,
            spare: Spare::default(),
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
        self.conn.remote_id()
    }

    /// Whether the remote has `ut_pex` on (a non-zero id) and the torrent is not private.
    pub fn is_enabled(&self) -> bool {
        self.conn.is_enabled(&self.config)
    }

    /// Whether the host called [`start`](Self::start) (and not [`stop`](Self::stop) since).
    pub fn is_started(&self) -> bool {
        self.conn.is_started()
    }

    /// The peers the remote currently claims to be connected to, sorted by address. The
    /// connection that announced a peer is the one to ask for a BEP 55 holepunch rendezvous.
    pub fn remote_peers(&self) -> impl Iterator<Item = Peer> + '_ {
        self.conn.claims()
    }

    /// Whether the remote currently claims `addr`, and with which flags.
    pub fn remote_claims(&self, addr: SocketAddr) -> Option<PeerFlags> {
        self.conn.claimed_flags(canonical_addr(addr))
    }

    /// How many peers the host added that are live now.
    pub fn live_count(&self) -> usize {
        self.timeline.live_len()
    }

    /// The same as [`live_count`](Self::live_count) (an older name that read like a list).
    pub fn live_peers(&self) -> usize {
        self.live_count()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> Stats {
        self.conn.stats()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    #[doc(hidden)]
    /// Heap bytes held by the state's collections (capacity, not length): for memory
    /// accounting and the bounded-memory tests. Approximate for the B-tree collections.
    pub fn heap_bytes(&self) -> usize {
        self.timeline.heap_bytes()
            + self.conn.heap_bytes()
            + self
                .batch
                .as_ref()
                .map_or(0, |b| std::mem::size_of::<Batch>() + b.heap_bytes())
            + self.spare.heap_bytes()
    }

    #[doc(hidden)]
    /// How many events wait to be polled (bounded: see [`Event`]).
    pub fn pending_events(&self) -> usize {
        self.conn.pending_events()
    }

    // ---- handlers -------------------------------------------------------------------------

    /// Handles the remote's BEP 10 extended handshake payload (the dictionary after
    /// `<20><0>`). Only `m.ut_pex` matters here; it may come again later (BEP 10: "the `m`
    /// dictionary is additive": a handshake without `ut_pex` leaves PEX as it was, `ut_pex: 0`
    /// turns it off). Like every handler, it also does what [`handle_timeout`](Self::handle_timeout)
    /// would at `now`. On `Err` the state is exactly as before (only the error counter moves).
    pub fn handle_extended_handshake(
        &mut self,
        now: Instant,
        payload: &[u8],
    ) -> Result<(), HandshakeError> {
        let handshake = ExtendedHandshake::decode(payload).map_err(|e| {
            self.conn.stats_mut().errors_handshake += 1;
            HandshakeError::Decode(e)
        })?;
        match handshake.ut_pex() {
            Some(ext) => self.set_remote_extension_id(now, ext),
            None => self.handle_timeout(now),
        }
        Ok(())
    }

    /// Sets the remote's `ut_pex` id, for hosts that parse the handshake themselves; 0
    /// disables. Emits [`Event::Enabled`] / [`Event::Disabled`] on a change between zero and
    /// non-zero. A new id is used from the next frame on: frames are built when polled.
    pub fn set_remote_extension_id(&mut self, now: Instant, id: u8) {
        self.conn.set_remote_id(id, &self.config, &mut self.spare);
        self.handle_timeout(now);
    }

    /// Tells the state the remote's dial address (its IP, and its listen port if known).
    /// That address is never advertised back to it, and if its IP is global, local-scope
    /// addresses it sends (loopback, private, link-local, unique-local) are ignored, as
    /// libtorrent does; they are kept otherwise.
    pub fn set_remote_address(&mut self, addr: SocketAddr) {
        let addr = canonical_addr(addr);
        self.conn.set_echo_addr(addr);
        self.conn.set_remote_ip(addr.ip());
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
    /// [`Config::max_remote_peers`] are ignored. Only the first `max_remote_peers` entries of
    /// each list are looked at (the set cannot hold more); the rest are counted in
    /// [`Stats::ignored_over_cap`].
    ///
    /// `Err` for a payload over [`Config::max_message_size`], one that does not decode, or a
    /// flood ([`Config::flood_limit`]); the state is then exactly as before (only the error
    /// counter moves). The crate never disconnects anyone: the host decides.
    pub fn handle_message(&mut self, now: Instant, payload: &[u8]) -> Result<(), MessageError> {
        self.conn
            .handle_message(now, payload, &self.config, &self.timeline, &mut self.spare)?;
        self.handle_timeout(now);
        Ok(())
    }

    /// Handles time passing: sends what is due. Spurious or early calls are harmless, and
    /// afterwards [`poll_timeout`](Self::poll_timeout) is `None` or later than `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.observe(now);
        if !self.due {
            self.due = matches!(self.next(), Some(t) if t <= now);
        }
    }

    // ---- commands -------------------------------------------------------------------------

    /// Starts sending (the JS module's `start()`). The first frame goes out as soon as the
    /// remote has `ut_pex` on and there is a peer to announce.
    pub fn start(&mut self, now: Instant) {
        self.conn.set_started(true);
        self.handle_timeout(now);
    }

    /// Stops sending; receiving goes on. Peers added meanwhile are sent after `start`.
    pub fn stop(&mut self) {
        self.conn.set_started(false);
        self.due = false;
    }

    /// Forgets everything learned and queued, and stops (the JS module's `reset()`): the
    /// live set, the peers the remote claimed and the events about them.
    ///
    /// One difference from the JS module: peers already advertised to the remote are dropped
    /// in the next frame after `start`, so the remote's view is truthful again (BEP 11:
    /// "only signaling added peers without ever dropping them is non-compliant"). The send
    /// spacing and flood window are kept too, so a reset never lets a frame out early.
    pub fn reset(&mut self) {
        self.stop();
        let live: Vec<SocketAddr> = self.timeline.live_peers().map(|p| p.addr).collect();
        for addr in live {
            self.drop_peer(addr);
        }
        self.conn.forget_claims(&mut self.spare);
    }

    /// Announces that we are connected to a peer (the JS module's `addPeer`): its dial
    /// address and flags. BEP 11: "a peer should only be added once it has been connected
    /// to". Queued for the next frame (a drop of it still queued cancels instead), but never
    /// sent to a remote that announced it to us or that is it. Ignored (and counted in
    /// [`Stats::ignored_local_unusable`]) for port 0 or an unspecified, multicast or broadcast
    /// address.
    /// Adding a live peer again only updates its flags, for a frame not yet sent.
    pub fn add_peer(&mut self, addr: SocketAddr, flags: PeerFlags) {
        let addr = canonical_addr(addr);
        if is_usable(addr) {
            self.timeline.connected(addr, flags);
        } else {
            self.conn.stats_mut().ignored_local_unusable += 1;
        }
    }

    /// Announces that a connection ended (the JS module's `dropPeer`). Sent as `dropped` in a
    /// later frame only if the peer was advertised to this remote; a peer not yet sent is
    /// simply never sent.
    pub fn drop_peer(&mut self, addr: SocketAddr) {
        if self.timeline.disconnected(canonical_addr(addr)) {
            self.compact();
        }
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
        let now = self.now?;
        if !std::mem::take(&mut self.due) {
            return None;
        }
        let batch = self.batch.get_or_insert_with(Box::default);
        let frame = self
            .conn
            .build_frame(&self.timeline, batch, &self.config, now, None);
        self.compact();
        frame
    }

    /// The next fact for the host: PEX turned on or off, a peer the remote announced or
    /// dropped. Poll after every input until `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.conn.poll_event(&mut self.spare)
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None` when nothing is
    /// scheduled. May be in the past (call it right away).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.due {
            // A frame is waiting for `poll_transmit`: nothing to time until it is taken.
            return None;
        }
        self.next()
    }

    // ---- internals ------------------------------------------------------------------------

    /// Records `now`, keeping the latest instant if time went backwards.
    fn observe(&mut self, now: Instant) -> Instant {
        let latest = self.now.map_or(now, |seen| seen.max(now));
        self.now = Some(latest);
        latest
    }

    /// When the connection's next frame is due, if it has news and may send.
    fn next(&self) -> Option<Instant> {
        let now = self.now?;
        match self.conn.next(&self.timeline, &self.config, now) {
            Next::At(t) => Some(t),
            Next::Never | Next::Waiting => None,
        }
    }

    fn compact(&mut self) {
        Compactor::run_one(&mut self.timeline, self.conn.cursor_mut());
    }
}
