//! [`Swarm`]: torrent-wide PEX — one shared event log, O(1) outgoing state per connection.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::codec::{encode_frame, Frame};
use crate::config::Config;
use crate::error::{HandshakeError, MessageError};
use crate::event::{Event, EventQueue};
use crate::flags::{canonical_addr, Peer, PeerFlags};
use crate::handshake::ExtendedHandshake;
use crate::inbound::{is_dialable_ip, Claim, Inbound};
use crate::stats::Stats;
use crate::timeline::{Batch, Cursor, Timeline};

/// BEP 11 "filling underpopulated lists": an address family with fewer live connections than
/// this is underpopulated, and contacts that left it for one of the reasons of
/// [`DisconnectReason`] may linger (stay advertised) for one more send interval.
pub const UNDERPOPULATED_BELOW: usize = 25;
/// BEP 11 "filling underpopulated lists": the most lingering contacts per address family
/// ("up to 25"); one more makes the oldest leave.
pub const MAX_LINGERING: usize = 25;

/// Which side opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We dialled the remote: its address is its dial address, and BEP 11 flag 0x10
    /// ("outgoing connection, peer is reachable") is set for it.
    Outgoing,
    /// The remote dialled us: its source port is ephemeral, so it is advertised only once its
    /// extended handshake gives its listen port (`p`), as libtorrent does.
    Incoming,
}

/// Why a connection ended, for BEP 11's "filling underpopulated lists": only contacts
/// disconnected "locally and for one of these reasons" may stay advertised for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// "the same peer ID is already connected on the other address family".
    DuplicatePeerOtherFamily,
    /// "permanent lack of mutual interest (e.g. both are seeds)".
    NoMutualInterest,
    /// "local resource limits (e.g. too many connections)".
    LocalResourceLimits,
    /// Anything else (remote closed, errors, …): the peer is dropped in the next frame.
    Other,
}

impl DisconnectReason {
    fn allows_hold(self) -> bool {
        !matches!(self, Self::Other)
    }
}

/// A handle to one connection of a [`Swarm`]. Stale handles (of a disconnected connection)
/// are ignored by every method, never confused with a newer connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    index: u32,
    generation: u32,
}

/// PEX for a whole torrent: every connection of one torrent, one shared log of who connected
/// and disconnected, and per connection only a cursor into that log.
///
/// BEP 11 suggests this design in its implementation note: "a per-torrent timeline of
/// connect/disconnect events and, per peer, a pointer to the last event sent". The host
/// reports each change once — [`connect`](Self::connect) and
/// [`disconnect`](Self::disconnect) — instead of fanning it out to every connection, so memory
/// and work per change do not grow with the number of connections.
///
/// The per-connection methods mirror [`PexState`](crate::PexState)'s and take a
/// [`ConnectionId`]; outputs come with the id of the connection they belong to. The wire
/// guarantees are the same: a first frame with the live set (in connection order, up to
/// [`Config::initial_max_peers`]), then at most one frame per [`Config::send_interval`] with
/// at most 50 added and 50 dropped, never empty, add and drop of one address cancelling,
/// `dropped` only for peers that connection was told about, and never echoing to a remote
/// its own address or the peers it announced.
///
/// A peer is added and dropped under the same endpoint: the dial address recorded at
/// [`connect`](Self::connect) (libtorrent adds incoming peers by listen port but drops them by
/// ephemeral port).
#[derive(Debug)]
pub struct Swarm {
    config: Config,
    timeline: Timeline,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Send deadlines, earliest first, as (deadline, slot index, slot generation, timer
    /// generation); superseded entries are recognised by their timer generation.
    timers: BinaryHeap<Reverse<(Instant, u32, u32, u32)>>,
    /// Connections able to send but with nothing to say: woken when the log grows.
    waiting: Vec<(u32, u32)>,
    /// Connections whose frame is due, built when polled.
    ready: VecDeque<(u32, u32)>,
    /// Connections with queued events, in the order they got them.
    with_events: VecDeque<(u32, u32)>,
    /// Recently disconnected contacts kept advertised, per family (0: IPv4, 1: IPv6).
    held: [VecDeque<(SocketAddr, Instant)>; 2],
    /// Live peers per family, held ones included.
    live_by_family: [usize; 2],
    /// Dial addresses that more than one connection has (a duplicate connection to a live
    /// peer), with how many connections beyond the first: the peer stays live until the last
    /// of them ends. Empty unless the host keeps duplicate connections.
    extra_dials: BTreeMap<SocketAddr, u32>,
    /// Peers added with [`add_peer`](Self::add_peer) (not tied to a connection).
    now: Option<Instant>,
    batch: Batch,
    /// Reused by compaction.
    cursor_scratch: Vec<u64>,
    kept_scratch: Vec<SocketAddr>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Box<Conn>>,
}

/// The outgoing side of one connection: all a connection costs the swarm for sending.
#[derive(Debug, Default)]
struct Outgoing {
    cursor: Cursor,
    /// When the last frame was handed out (the latest instant seen then).
    last_send: Option<Instant>,
    /// The generation of this connection's live entry in `timers`; bumped to supersede it.
    timer: u32,
    /// The remote's `ut_pex` id.
    remote_id: u8,
    started: bool,
    /// Whether `timers` holds a live entry (of generation `timer`).
    timer_live: bool,
    /// In `waiting`.
    waiting: bool,
    /// In `ready`: a frame is decided, to be built when polled.
    ready: bool,
}

#[derive(Debug)]
struct Conn {
    /// Where the remote can be dialled, once known: advertised to others.
    dial: Option<SocketAddr>,
    /// The remote's own address as far as PEX is concerned: never advertised back to it.
    echo_addr: Option<SocketAddr>,
    /// The remote's IP, if known (from `connect`).
    remote_ip: Option<IpAddr>,
    /// Whether the swarm keeps this connection's peer in the live set itself (connections
    /// from [`Swarm::connect`]); a [`PexState`](crate::PexState)'s host does that itself.
    tracked: bool,
    direction: Direction,
    flags: PeerFlags,
    out: Outgoing,
    /// Whether this connection is in `with_events`.
    has_event_entry: bool,
    inbound: Inbound,
    events: EventQueue,
    stats: Stats,
}

impl Swarm {
    /// An empty swarm.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            timeline: Timeline::default(),
            slots: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            waiting: Vec::new(),
            ready: VecDeque::new(),
            with_events: VecDeque::new(),
            held: [VecDeque::new(), VecDeque::new()],
            live_by_family: [0, 0],
            extra_dials: BTreeMap::new(),
            now: None,
            batch: Batch::default(),
            cursor_scratch: Vec::new(),
            kept_scratch: Vec::new(),
        }
    }

    // ---- torrent-wide ---------------------------------------------------------------------

    /// The configuration shared by every connection.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The id to register `ut_pex` under in our extended handshakes' `m`, or `None` for a
    /// private torrent (BEP 27), whose handshakes must not advertise it.
    pub fn local_extension_id(&self) -> Option<u8> {
        (!self.config.private).then_some(self.config.local_extension_id)
    }

    /// How many peers are advertised as live (connected, plus lingering contacts).
    pub fn live_count(&self) -> usize {
        self.timeline.live().len()
    }

    /// The same as [`live_count`](Self::live_count) (an older name that read like a list).
    pub fn live_peers(&self) -> usize {
        self.live_count()
    }

    /// Every live peer, in address order.
    pub fn live(&self) -> impl Iterator<Item = Peer> + '_ {
        self.timeline
            .live()
            .iter()
            .map(|(&addr, &(_, flags))| Peer::new(addr, flags))
    }

    /// Whether `addr` is advertised as live.
    pub fn is_live(&self, addr: SocketAddr) -> bool {
        self.timeline.is_live(canonical_addr(addr))
    }

    /// How many connections are attached.
    pub fn connections(&self) -> usize {
        self.slots.iter().filter(|s| s.conn.is_some()).count()
    }

    #[doc(hidden)]
    /// Approximate heap bytes of the whole swarm.
    pub fn heap_bytes(&self) -> usize {
        let conns: usize = self
            .slots
            .iter()
            .filter_map(|s| s.conn.as_deref())
            .map(|c| {
                std::mem::size_of::<Conn>()
                    + c.out.cursor.heap_bytes()
                    + c.inbound.heap_bytes()
                    + c.events.heap_bytes()
            })
            .sum();
        conns
            + self.timeline.heap_bytes()
            + self.extra_dials.len() * (std::mem::size_of::<(SocketAddr, u32)>() + 8)
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.timers.capacity() * std::mem::size_of::<Reverse<(Instant, u32, u32, u32)>>()
            + (self.waiting.capacity() + self.ready.capacity() + self.with_events.capacity()) * 8
    }

    /// Announces a live peer that has no connection in this swarm (a host keeping its own
    /// bookkeeping, or a single-connection [`PexState`](crate::PexState)). Returns false if
    /// ignored: port 0, an unspecified, multicast or broadcast address, or an address already live
    /// (then only its flags change, for connections not yet told about it).
    pub fn add_peer(&mut self, addr: SocketAddr, flags: PeerFlags) -> bool {
        let addr = canonical_addr(addr);
        if addr.port() == 0 || !is_dialable_ip(addr.ip()) {
            return false;
        }
        if let Some(i) = self.held_index(addr) {
            // A held contact came back: it is live for real again.
            self.held[family(addr)].remove(i);
            return true;
        }
        if !self.timeline.connected(addr, flags) {
            return false;
        }
        self.live_by_family[family(addr)] += 1;
        self.flush_held_if_populated(family(addr));
        self.log_grew();
        true
    }

    /// Announces that a peer added with [`add_peer`](Self::add_peer) is gone: dropped in the
    /// next frames of the connections that were told about it.
    pub fn drop_peer(&mut self, addr: SocketAddr) {
        self.remove_live(canonical_addr(addr), DisconnectReason::Other);
    }

    // ---- connections ----------------------------------------------------------------------

    /// Attaches a new connection to `remote` (its socket address), once the BitTorrent
    /// handshake is done. An outgoing connection's peer is live from now on (with
    /// [`PeerFlags::REACHABLE`] added to `flags`); an incoming one once its extended
    /// handshake gives its listen port.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        direction: Direction,
        flags: PeerFlags,
    ) -> ConnectionId {
        self.observe(now);
        let remote = canonical_addr(remote);
        let id = self.attach(direction, flags);
        if let Some(conn) = self.conn_mut(id) {
            conn.tracked = true;
            conn.remote_ip = Some(remote.ip());
            conn.inbound.set_remote_ip(remote.ip());
        }
        if direction == Direction::Outgoing {
            self.set_dial(id, remote);
        }
        id
    }

    /// A connection with nothing known about the remote yet.
    pub(crate) fn attach(&mut self, direction: Direction, flags: PeerFlags) -> ConnectionId {
        let conn = Box::new(Conn {
            dial: None,
            echo_addr: None,
            remote_ip: None,
            tracked: false,
            direction,
            flags,
            out: Outgoing {
                cursor: Cursor::attach(&self.timeline),
                ..Outgoing::default()
            },
            has_event_entry: false,
            inbound: Inbound::default(),
            events: EventQueue::default(),
            stats: Stats::default(),
        });
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.conn = Some(conn);
        ConnectionId {
            index,
            generation: slot.generation,
        }
    }

    /// Detaches a connection that ended. Its peer is dropped in the next frames of the other
    /// connections — or, for the reasons BEP 11 allows and while its family has fewer than
    /// [`UNDERPOPULATED_BELOW`] live connections, kept advertised for one more send interval first.
    /// Its pending events are discarded.
    pub fn disconnect(&mut self, now: Instant, id: ConnectionId, reason: DisconnectReason) {
        self.observe(now);
        let Some(conn) = self.take(id) else { return };
        self.prune_timers();
        // Its place in `waiting`/`ready`/`with_events` is skipped as stale later.
        if let Some(dial) = conn.dial {
            if !self.release_extra_dial(dial) {
                self.remove_live(dial, reason);
            }
        }
        self.compact_if_needed();
    }

    /// Handles the remote's extended handshake on `id` (see
    /// [`PexState::handle_extended_handshake`](crate::PexState::handle_extended_handshake)).
    /// For an incoming connection, `p` gives the remote's dial address.
    pub fn handle_extended_handshake(
        &mut self,
        now: Instant,
        id: ConnectionId,
        payload: &[u8],
    ) -> Result<(), HandshakeError> {
        let Some(conn) = self.conn_mut(id) else {
            return Ok(());
        };
        let handshake = ExtendedHandshake::decode(payload).map_err(|e| {
            conn.stats.errors_handshake += 1;
            HandshakeError::Decode(e)
        })?;
        if conn.tracked && conn.direction == Direction::Incoming && conn.dial.is_none() {
            let port = handshake.listen_port.filter(|&p| p != 0);
            if let (Some(ip), Some(port)) = (conn.remote_ip, port) {
                self.set_dial(id, SocketAddr::new(ip, port));
            }
        }
        match handshake.ut_pex() {
            Some(ext) => self.set_remote_extension_id(now, id, ext),
            None => self.handle_timeout(now),
        }
        Ok(())
    }

    /// Sets the remote's `ut_pex` id on `id`; 0 disables (see
    /// [`PexState::set_remote_extension_id`](crate::PexState::set_remote_extension_id)).
    pub fn set_remote_extension_id(&mut self, now: Instant, id: ConnectionId, ext: u8) {
        self.observe(now);
        let private = self.config.private;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let was = conn.out.remote_id != 0 && !private;
        conn.out.remote_id = ext;
        let is = conn.out.remote_id != 0 && !private;
        match (was, is) {
            (false, true) => conn.events.push(Event::Enabled),
            (true, false) => conn.events.push(Event::Disabled),
            _ => {}
        }
        self.note_events(id);
        self.reschedule(id);
        self.handle_timeout(now);
    }

    /// Handles a received ut_pex payload on `id` (see
    /// [`PexState::handle_message`](crate::PexState::handle_message)).
    pub fn handle_message(
        &mut self,
        now: Instant,
        id: ConnectionId,
        payload: &[u8],
    ) -> Result<(), MessageError> {
        let Some(conn) = Self::slot_conn(&mut self.slots, id) else {
            return Ok(());
        };
        let timeline = &self.timeline;
        let cursor = &mut conn.out.cursor;
        conn.inbound.handle(
            now,
            payload,
            &self.config,
            &mut conn.events,
            &mut conn.stats,
            |claim| match claim {
                Claim::Added(addr) => cursor.claimed(addr),
                Claim::Dropped(addr) => cursor.unclaimed(addr, timeline),
            },
        )?;
        self.observe(now);
        self.note_events(id);
        self.reschedule(id);
        self.handle_timeout(now);
        Ok(())
    }

    /// Starts sending on `id`.
    pub fn start(&mut self, now: Instant, id: ConnectionId) {
        self.observe(now);
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.out.started = true;
        self.reschedule(id);
        self.handle_timeout(now);
    }

    /// Stops sending on `id`; receiving goes on.
    pub fn stop(&mut self, id: ConnectionId) {
        if let Some(conn) = self.conn_mut(id) {
            conn.out.started = false;
            conn.out.ready = false;
        }
        self.reschedule(id);
    }

    /// Handles time passing for every connection: frames that are due become available from
    /// [`poll_transmit`](Self::poll_transmit), and held contacts whose time is up are
    /// dropped. Spurious calls are harmless; afterwards
    /// [`poll_timeout`](Self::poll_timeout) is `None` or later than `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.observe(now);
        self.expire_held(now);
        while let Some(&Reverse((deadline, index, generation, timer))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let id = ConnectionId { index, generation };
            let Some(conn) = self.conn_mut(id) else {
                continue;
            };
            if !conn.out.timer_live || conn.out.timer != timer {
                continue; // superseded
            }
            conn.out.timer_live = false;
            // The frame is due: built when polled, with the remote id of that moment.
            if !conn.out.ready {
                conn.out.ready = true;
                self.ready.push_back((index, generation));
            }
            self.reschedule(id);
        }
    }

    // ---- outputs --------------------------------------------------------------------------

    /// The next frame to write, with the connection to write it to. Poll until `None` after
    /// every input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(ConnectionId, Frame)> {
        while let Some((index, generation)) = self.ready.pop_front() {
            let id = ConnectionId { index, generation };
            if let Some(frame) = self.build_frame(id) {
                return Some((id, frame));
            }
        }
        None
    }

    /// The next event, with the connection it concerns. Poll until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(ConnectionId, Event)> {
        while let Some(&(index, generation)) = self.with_events.front() {
            let id = ConnectionId { index, generation };
            let Some(conn) = self.conn_mut(id) else {
                self.with_events.pop_front();
                continue;
            };
            match conn.events.pop() {
                Some(event) => return Some((id, event)),
                None => {
                    conn.has_event_entry = false;
                    self.with_events.pop_front();
                }
            }
        }
        None
    }

    /// The earliest deadline over every connection and held contact (O(log n): the heap's
    /// top, once stale entries are discounted); `None` when nothing is scheduled.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let held = self
            .held
            .iter()
            .filter_map(|h| h.front())
            .filter_map(|&(_, since)| since.checked_add(self.config.send_interval))
            .min();
        // Superseded entries are pruned from the top after every change, so the top is exact.
        let timer = self.timers.peek().map(|Reverse((t, _, _, _))| *t);
        match (held, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- per-connection getters -----------------------------------------------------------

    /// Whether `id` is attached.
    pub fn contains(&self, id: ConnectionId) -> bool {
        self.conn(id).is_some()
    }

    /// Whether the remote on `id` has `ut_pex` on (and the torrent is not private).
    pub fn is_enabled(&self, id: ConnectionId) -> bool {
        self.conn(id)
            .is_some_and(|c| c.out.remote_id != 0 && !self.config.private)
    }

    /// Whether sending was started on `id` (and not stopped since).
    pub fn is_started(&self, id: ConnectionId) -> bool {
        self.conn(id).is_some_and(|c| c.out.started)
    }

    /// The id the remote on `id` gave `ut_pex` (0: none or off).
    pub fn remote_extension_id(&self, id: ConnectionId) -> u8 {
        self.conn(id).map_or(0, |c| c.out.remote_id)
    }

    /// The dial address recorded for `id`, once known.
    pub fn dial_address(&self, id: ConnectionId) -> Option<SocketAddr> {
        self.conn(id).and_then(|c| c.dial)
    }

    /// The peers the remote on `id` claims to be connected to, sorted by address.
    pub fn remote_peers(&self, id: ConnectionId) -> impl Iterator<Item = Peer> + '_ {
        self.conn(id)
            .map(|c| c.inbound.claims())
            .unwrap_or(&[])
            .iter()
            .copied()
    }

    /// Whether the remote on `id` claims `addr`, and with which flags: the connection to
    /// ask for a BEP 55 holepunch rendezvous with `addr`.
    pub fn remote_claims(&self, id: ConnectionId, addr: SocketAddr) -> Option<PeerFlags> {
        self.conn(id)?.inbound.claimed_flags(canonical_addr(addr))
    }

    /// Counters of connection `id`.
    pub fn stats(&self, id: ConnectionId) -> Option<Stats> {
        self.conn(id).map(|c| c.stats)
    }

    #[doc(hidden)]
    /// How many events wait on `id`.
    pub fn pending_events(&self, id: ConnectionId) -> usize {
        self.conn(id).map_or(0, |c| c.events.len())
    }

    #[doc(hidden)]
    /// Heap bytes held for connection `id` alone (its box, echo table, claims, events).
    pub fn connection_heap_bytes(&self, id: ConnectionId) -> usize {
        self.conn(id).map_or(0, |c| {
            std::mem::size_of::<Conn>()
                + c.out.cursor.heap_bytes()
                + c.inbound.heap_bytes()
                + c.events.heap_bytes()
        })
    }

    // ---- internals ------------------------------------------------------------------------

    fn observe(&mut self, now: Instant) -> Instant {
        let latest = self.now.map_or(now, |seen| seen.max(now));
        self.now = Some(latest);
        latest
    }

    fn conn(&self, id: ConnectionId) -> Option<&Conn> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation).then_some(())?;
        slot.conn.as_deref()
    }

    fn conn_mut(&mut self, id: ConnectionId) -> Option<&mut Conn> {
        Self::slot_conn(&mut self.slots, id)
    }

    fn slot_conn(slots: &mut [Slot], id: ConnectionId) -> Option<&mut Conn> {
        let slot = slots.get_mut(id.index as usize)?;
        (slot.generation == id.generation).then_some(())?;
        slot.conn.as_deref_mut()
    }

    fn take(&mut self, id: ConnectionId) -> Option<Box<Conn>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let conn = slot.conn.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        Some(conn)
    }

    /// Records `dial` as the connection's endpoint and makes it live.
    fn set_dial(&mut self, id: ConnectionId, dial: SocketAddr) {
        let dial = canonical_addr(dial);
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let mut flags = conn.flags;
        if conn.direction == Direction::Outgoing {
            flags |= PeerFlags::REACHABLE;
        }
        conn.dial = Some(dial);
        conn.echo_addr = Some(dial);
        if self.timeline.is_live(dial) && self.held_index(dial).is_none() {
            // Already live through another connection: this one is a duplicate, and its end
            // must not drop a peer we are still connected to.
            *self.extra_dials.entry(dial).or_insert(0) += 1;
            return;
        }
        self.add_peer(dial, flags);
    }

    /// If `dial` is shared by another connection, counts one fewer and returns true.
    fn release_extra_dial(&mut self, dial: SocketAddr) -> bool {
        let Some(extra) = self.extra_dials.get_mut(&dial) else {
            return false;
        };
        *extra -= 1;
        if *extra == 0 {
            self.extra_dials.remove(&dial);
        }
        true
    }

    /// Tells connection `id` the remote's own address: never advertised back to it, and its
    /// scope decides whether local-scope addresses it sends are kept (see
    /// [`PexState::set_remote_address`](crate::PexState::set_remote_address)).
    pub(crate) fn set_remote_address(&mut self, id: ConnectionId, addr: SocketAddr) {
        let addr = canonical_addr(addr);
        if let Some(conn) = self.conn_mut(id) {
            conn.echo_addr = Some(addr);
            conn.remote_ip = Some(addr.ip());
            conn.inbound.set_remote_ip(addr.ip());
        }
    }

    /// Drops every live peer, and forgets what the remote on `id` claimed and the events
    /// about it: [`PexState::reset`](crate::PexState::reset).
    pub(crate) fn reset_connection(&mut self, id: ConnectionId) {
        let live: Vec<SocketAddr> = self.timeline.live().keys().copied().collect();
        for addr in live {
            self.drop_peer(addr);
        }
        if let Some(conn) = self.conn_mut(id) {
            conn.inbound.forget();
            conn.events.clear_peers();
        }
    }

    pub(crate) fn stats_mut(&mut self, id: ConnectionId) -> Option<&mut Stats> {
        self.conn_mut(id).map(|c| &mut c.stats)
    }

    fn held_index(&self, addr: SocketAddr) -> Option<usize> {
        self.held[family(addr)].iter().position(|&(a, _)| a == addr)
    }

    fn remove_live(&mut self, addr: SocketAddr, reason: DisconnectReason) {
        if !self.timeline.is_live(addr) || self.held_index(addr).is_some() {
            return;
        }
        let fam = family(addr);
        let connected = self.live_by_family[fam] - self.held[fam].len() - 1;
        let now = self.now;
        if let (true, Some(now)) = (
            reason.allows_hold() && connected < UNDERPOPULATED_BELOW,
            now,
        ) {
            if self.held[fam].len() >= MAX_LINGERING {
                self.release_oldest_held(fam);
            }
            self.held[fam].push_back((addr, now));
            return;
        }
        self.timeline.disconnected(addr);
        self.live_by_family[fam] -= 1;
        self.log_grew();
    }

    fn release_oldest_held(&mut self, fam: usize) {
        if let Some((addr, _)) = self.held[fam].pop_front() {
            self.timeline.disconnected(addr);
            self.live_by_family[fam] -= 1;
            self.log_grew();
        }
    }

    /// BEP 11: held contacts "must be dropped in the next message" once sent; after a whole
    /// send interval every connection has had its chance to send them.
    fn expire_held(&mut self, now: Instant) {
        for fam in 0..2 {
            while let Some(&(_, since)) = self.held[fam].front() {
                let expired = since
                    .checked_add(self.config.send_interval)
                    .is_some_and(|t| t <= now);
                if !expired {
                    break;
                }
                self.release_oldest_held(fam);
            }
        }
    }

    fn flush_held_if_populated(&mut self, fam: usize) {
        while self.live_by_family[fam] - self.held[fam].len() >= UNDERPOPULATED_BELOW
            && !self.held[fam].is_empty()
        {
            self.release_oldest_held(fam);
        }
    }

    /// The log grew: every connection waiting for news has some now.
    fn log_grew(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for &(index, generation) in &waiting {
            let id = ConnectionId { index, generation };
            if let Some(conn) = self.conn_mut(id) {
                conn.out.waiting = false;
                self.reschedule(id);
            }
        }
        // Keep the allocation for next time.
        let mut waiting = waiting;
        waiting.clear();
        if self.waiting.is_empty() {
            self.waiting = waiting;
        }
        self.compact_if_needed();
    }

    fn compact_if_needed(&mut self) {
        let cursors = self.slots.len() - self.free.len();
        if !self.timeline.wants_compaction(cursors) {
            return;
        }
        self.cursor_scratch.clear();
        self.kept_scratch.clear();
        for conn in self.slots.iter().filter_map(|s| s.conn.as_deref()) {
            self.cursor_scratch.push(conn.out.cursor.position());
            self.kept_scratch.extend_from_slice(conn.out.cursor.kept());
        }
        self.cursor_scratch.sort_unstable();
        self.kept_scratch.sort_unstable();
        self.timeline
            .compact(&self.cursor_scratch, &self.kept_scratch);
    }

    /// Puts `id` where it belongs: in the timer heap if it can send and has something to
    /// say (or a decided frame waiting to be polled), in the waiting list if it can send but
    /// has nothing to say, nowhere otherwise.
    fn reschedule(&mut self, id: ConnectionId) {
        let interval = self.config.send_interval;
        let private = self.config.private;
        let now = self.now;
        let timeline = &self.timeline;
        let Some(conn) = Self::slot_conn(&mut self.slots, id) else {
            return;
        };
        let out = &mut conn.out;
        // Any live timer entry is superseded by what follows.
        out.timer = out.timer.wrapping_add(1);
        out.timer_live = false;
        let can_send = out.started && out.remote_id != 0 && !private;
        let next = if !can_send || out.ready {
            // Nothing to time: disabled, or a frame is due and waits for `poll_transmit`.
            None
        } else if out.cursor.has_pending(timeline) {
            match out.last_send {
                Some(last) => last.checked_add(interval),
                None => now,
            }
        } else {
            if !out.waiting {
                out.waiting = true;
                self.waiting.push((id.index, id.generation));
            }
            None
        };
        if let Some(t) = next {
            out.timer_live = true;
            self.timers
                .push(Reverse((t, id.index, id.generation, out.timer)));
        }
        self.prune_timers();
    }

    /// Pops superseded deadlines off the top of the heap, so that its top is a real one
    /// (deeper superseded entries are skipped when they surface).
    fn prune_timers(&mut self) {
        while let Some(&Reverse((_, index, generation, timer))) = self.timers.peek() {
            let id = ConnectionId { index, generation };
            if self
                .conn(id)
                .is_some_and(|c| c.out.timer_live && c.out.timer == timer)
            {
                break;
            }
            self.timers.pop();
        }
    }

    fn build_frame(&mut self, id: ConnectionId) -> Option<Frame> {
        let initial = self.config.initial_max_peers;
        let per_frame = self.config.max_entries_per_frame;
        let private = self.config.private;
        let now = self.now;
        let timeline = &self.timeline;
        let batch = &mut self.batch;
        let conn = Self::slot_conn(&mut self.slots, id)?;
        if !std::mem::take(&mut conn.out.ready) {
            return None; // stopped or disabled since the frame was decided
        }
        let out = &mut conn.out;
        if !(out.started && out.remote_id != 0 && !private) {
            return None;
        }
        let max_added = if conn.stats.frames_sent == 0 {
            initial
        } else {
            per_frame
        };
        batch.reset(max_added, per_frame);
        let echo_addr = conn.echo_addr;
        let inbound = &conn.inbound;
        timeline.walk(&mut out.cursor, batch, |addr| {
            Some(addr) == echo_addr || inbound.claimed(addr)
        });
        // Everything walked may have cancelled out: then nothing is sent (BEP 11: a message
        // must contain at least one entry) and the send slot stays free.
        let frame = (!batch.is_empty()).then(|| {
            let frame = encode_frame(out.remote_id, &batch.added, &batch.dropped);
            // The frame leaves now: the latest instant seen is the best "now" we have.
            out.last_send = now;
            conn.stats.frames_sent += 1;
            conn.stats.bytes_sent += frame.len() as u64;
            conn.stats.peers_added_sent += batch.added.len() as u64;
            conn.stats.peers_dropped_sent += batch.dropped.len() as u64;
            frame
        });
        self.reschedule(id);
        self.compact_if_needed();
        frame
    }

    fn note_events(&mut self, id: ConnectionId) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.events.len() > 0 && !conn.has_event_entry {
            conn.has_event_entry = true;
            self.with_events.push_back((id.index, id.generation));
        }
    }
}

fn family(addr: SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 0,
        SocketAddr::V6(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 6's budget: the outgoing state of one connection stays under 64 bytes.
    #[test]
    fn outgoing_state_is_small() {
        assert!(
            std::mem::size_of::<Outgoing>() < 64,
            "{}",
            std::mem::size_of::<Outgoing>()
        );
    }
}
