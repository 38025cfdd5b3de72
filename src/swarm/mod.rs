//! [`Swarm`]: torrent-wide PEX, one shared event log and, per connection, one [`Conn`]
//! engine whose outgoing side is a cursor into that log.
//!
//! The jobs are split: [`Slots`] keeps the connections, [`Schedule`] decides when each
//! sends, [`LiveSet`] keeps who is advertised as live; this file wires them to the public
//! API.

use std::net::SocketAddr;
use std::time::Instant;

use crate::addr::canonical_addr;
use crate::codec::{Frame, FrameChunk};
use crate::config::Config;
use crate::conn::Conn;
use crate::error::{HandshakeError, MessageError};
use crate::event::{Event, Spare};
use crate::handshake::ExtendedHandshake;
use crate::inbound::Recycled;
use crate::live::{Added, DisconnectReason, LiveSet};
use crate::peer::PeerFlags;
use crate::schedule::{Schedule, Ticket};
use crate::slots::{ConnectionId, Slots};
use crate::timeline::{Batch, Compactor};

mod queries;
mod wiring;

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
/// # Driving it
///
/// After any input, drain in this order: [`poll_transmit`](Self::poll_transmit) until
/// `None` (write each frame to the connection it names), [`poll_event`](Self::poll_event)
/// until `None`, then sleep until [`poll_timeout`](Self::poll_timeout) and call
/// [`handle_timeout`](Self::handle_timeout) then.
///
/// One time convention: an input that takes `now` and names a connection (a handshake, a
/// message, [`start`](Self::start)) may make *that* connection's frame due at once; it
/// never fires the timers of the others, nor expires lingering contacts. Everything else
/// that is due — other connections' frames, news from [`connect`](Self::connect),
/// [`disconnect`](Self::disconnect) or [`add_peer`](Self::add_peer), lingering contacts
/// whose time is up — is fired by `handle_timeout`, and `poll_timeout` says when (commands
/// without `now` schedule from the latest instant seen, so it may be in the past: call
/// `handle_timeout` right away). Instants should not go backwards; if they do, the latest
/// one seen counts.
///
/// A peer is added and dropped under the same endpoint: the dial address recorded at
/// [`connect`](Self::connect) (libtorrent adds incoming peers by listen port but drops them by
/// ephemeral port).
#[derive(Debug)]
pub struct Swarm {
    config: Config,
    live: LiveSet,
    slots: Slots<Hosted>,
    schedule: Schedule,
    /// The latest instant seen (commands without `now` schedule from it).
    now: Option<Instant>,
    /// One frame's entries, reused by every connection.
    batch: Batch,
    /// The buffer frames are encoded into and split off (a burst of frames shares one
    /// allocation); let go once `poll_transmit` has nothing more.
    chunk: FrameChunk,
    compactor: Compactor,
    /// The event spill buffer the connections share (see `EventQueue`).
    spare: Spare,
    /// Receiving storage of the last connection that left, for the next one to connect.
    recycled: Recycled,
}

/// A connection as the swarm hosts it: the engine, its place in the schedule, and what the
/// swarm needs to keep its peer in the live set.
#[derive(Debug)]
struct Hosted {
    conn: Conn,
    ticket: Ticket,
    /// Whether the engine's remote address (`Conn::remote_addr`) is where the remote can be
    /// dialled, advertised to the other connections: from the start for an outgoing
    /// connection; for an incoming one, once its handshake gave its listen port (until
    /// then the address has the remote's ephemeral source port).
    dial_known: bool,
    direction: Direction,
    flags: PeerFlags,
}

impl Swarm {
    /// An empty swarm.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            live: LiveSet::default(),
            slots: Slots::default(),
            schedule: Schedule::default(),
            now: None,
            batch: Batch::default(),
            chunk: FrameChunk::default(),
            compactor: Compactor::default(),
            spare: Spare::default(),
            recycled: Recycled::default(),
        }
    }

    // ---- torrent-wide ---------------------------------------------------------------------

    /// Announces a live peer that has no connection in this swarm (a host keeping its own
    /// bookkeeping). Returns false if ignored: port 0, an unspecified, multicast or broadcast
    /// address, or an address already live (then only its flags change, for connections not
    /// yet told about it).
    pub fn add_peer(&mut self, addr: SocketAddr, flags: PeerFlags) -> bool {
        match self.live.add(canonical_addr(addr), flags) {
            Added::New => {
                self.log_grew();
                true
            }
            Added::Returned => true,
            Added::Ignored => false,
        }
    }

    /// Announces that a peer added with [`add_peer`](Self::add_peer) is gone: dropped in the
    /// next frames of the connections that were told about it.
    pub fn drop_peer(&mut self, addr: SocketAddr) {
        let now = self.now;
        if self
            .live
            .remove(canonical_addr(addr), DisconnectReason::Other, now)
        {
            self.log_grew();
        }
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
        let mut conn = Conn::new(self.live.timeline());
        // Taken now, not at its first message: a host replaces a connection by ending one
        // and opening another, and the spare would not wait for a message if two left first.
        conn.adopt_inbound(&mut self.recycled);
        conn.set_remote_ip(remote.ip());
        conn.set_echo_addr(remote);
        let id = self.slots.insert(Hosted {
            conn,
            ticket: Ticket::default(),
            dial_known: false,
            direction,
            flags,
        });
        if direction == Direction::Outgoing {
            self.set_dial(id, remote);
        }
        id
    }

    /// Detaches a connection that ended. Its peer is dropped in the next frames of the other
    /// connections — or, for the reasons BEP 11 allows and while its family has fewer than
    /// [`UNDERPOPULATED_BELOW`](crate::UNDERPOPULATED_BELOW) live connections, kept advertised for one more send interval first.
    /// Its pending events are discarded.
    pub fn disconnect(&mut self, now: Instant, id: ConnectionId, reason: DisconnectReason) {
        self.observe(now);
        let Some(hosted) = self.slots.remove(id) else {
            return;
        };
        // Its entries in the schedule's queues are skipped as stale when they surface.
        self.prune();
        if let (true, Some(dial)) = (hosted.dial_known, hosted.conn.remote_addr()) {
            if self.live.release_dial(dial, reason, Some(now)) {
                self.log_grew();
            }
        }
        hosted.conn.recycle_inbound(&mut self.recycled);
        self.compact();
    }

    /// Handles the remote's extended handshake on `id`: its `m.ut_pex` as
    /// [`set_remote_extension_id`](Self::set_remote_extension_id) (a handshake without it
    /// changes nothing: BEP 10's `m` "is additive"), and for an incoming connection its `p`,
    /// which gives the remote's dial address. On `Err` nothing changed but the error counter.
    pub fn handle_extended_handshake(
        &mut self,
        now: Instant,
        id: ConnectionId,
        payload: &[u8],
    ) -> Result<(), HandshakeError> {
        let Some(hosted) = self.slots.get_mut(id) else {
            return Ok(());
        };
        let handshake = ExtendedHandshake::decode(payload).map_err(|e| {
            hosted.conn.stats_mut().errors_handshake += 1;
            HandshakeError::Decode(e)
        })?;
        if hosted.direction == Direction::Incoming && !hosted.dial_known {
            let port = handshake.listen_port.filter(|&p| p != 0);
            if let (Some(port), Some(remote)) = (port, hosted.conn.remote_addr()) {
                self.set_dial(id, SocketAddr::new(remote.ip(), port));
            }
        }
        match handshake.ut_pex() {
            Some(ext) => self.set_remote_extension_id(now, id, ext),
            None => {
                self.observe(now);
                self.reschedule(id, Some(now));
            }
        }
        Ok(())
    }

    /// Sets the remote's `ut_pex` id on `id` (for hosts that parse the handshake themselves);
    /// 0 disables. Emits [`Event::Enabled`] / [`Event::Disabled`] on a change between zero
    /// and non-zero; a new id is used from the next frame on.
    pub fn set_remote_extension_id(&mut self, now: Instant, id: ConnectionId, ext: u8) {
        self.observe(now);
        let Some(hosted) = self.slots.get_mut(id) else {
            return;
        };
        hosted
            .conn
            .set_remote_id(ext, &self.config, &mut self.spare);
        self.note_events(id);
        self.reschedule(id, Some(now));
    }

    /// Handles a received ut_pex payload on `id`, under the rules of
    /// [`PexState::handle_message`](crate::PexState::handle_message); accepted peers come out
    /// of [`poll_event`](Self::poll_event) with `id`. On `Err` nothing changed but the error
    /// counter.
    pub fn handle_message(
        &mut self,
        now: Instant,
        id: ConnectionId,
        payload: &[u8],
    ) -> Result<(), MessageError> {
        let Some(hosted) = self.slots.get_mut(id) else {
            return Ok(());
        };
        hosted.conn.handle_message(
            now,
            payload,
            &self.config,
            self.live.timeline(),
            &mut self.spare,
        )?;
        self.observe(now);
        self.note_events(id);
        self.reschedule(id, Some(now));
        Ok(())
    }

    /// Starts sending on `id`: its first frame, with the live set, is due at once.
    pub fn start(&mut self, now: Instant, id: ConnectionId) {
        self.observe(now);
        let Some(hosted) = self.slots.get_mut(id) else {
            return;
        };
        hosted.conn.set_started(true);
        self.reschedule(id, Some(now));
    }

    /// Stops sending on `id`; receiving goes on.
    pub fn stop(&mut self, id: ConnectionId) {
        let Some(hosted) = self.slots.get_mut(id) else {
            return;
        };
        hosted.conn.set_started(false);
        hosted.ticket.cancel_ready();
        self.reschedule(id, None);
    }

    /// Handles time passing for every connection: frames that are due become available from
    /// [`poll_transmit`](Self::poll_transmit), and lingering contacts whose time is up are
    /// dropped. Spurious calls are harmless; afterwards
    /// [`poll_timeout`](Self::poll_timeout) is `None` or later than `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.observe(now);
        if self.live.expire(now, self.config.send_interval) {
            self.log_grew();
        }
        while let Some((id, timer)) = self.schedule.pop_due(now) {
            if let Some(hosted) = self.slots.get_mut(id) {
                if hosted.ticket.holds(timer) {
                    // Due: built when polled, with the remote id of that moment.
                    self.schedule.make_ready(id, &mut hosted.ticket);
                }
            }
        }
        self.prune();
    }

    // ---- outputs --------------------------------------------------------------------------

    /// The next frame to write, with the connection to write it to. Poll until `None` after
    /// every input.
    ///
    /// The frames of one burst (several due at once, as after `handle_timeout`) share one
    /// buffer of 4 KiB (a larger frame gets one of its own size), so a burst costs two
    /// allocations, not one per frame; a frame due alone has an allocation of its own. The
    /// buffer is freed when the last frame split off it is dropped: a frame kept for long
    /// (a slow peer's write queue) pins up to 4 KiB; copy its bytes to keep only them. In a
    /// burst, a frame with the same small lists as the one before (one change that several
    /// connections hear together) is that frame again, shared, not encoded twice.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(ConnectionId, Frame)> {
        while let Some(id) = self.schedule.pop_ready() {
            if let Some(frame) = self.build_frame(id) {
                return Some((id, frame));
            }
        }
        // Drained: the frames handed out keep their bytes, and an idle swarm holds no buffer.
        self.chunk.release();
        None
    }

    /// The next event, with the connection it concerns. Poll until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(ConnectionId, Event)> {
        while let Some(id) = self.schedule.events_front() {
            let Some(hosted) = self.slots.get_mut(id) else {
                self.schedule.events_done(None);
                continue;
            };
            match hosted.conn.poll_event(&mut self.spare) {
                Some(event) => return Some((id, event)),
                None => self.schedule.events_done(Some(&mut hosted.ticket)),
            }
        }
        None
    }

    /// The earliest deadline over every connection and lingering contact (O(1): the heap's
    /// top, kept exact by pruning superseded entries after every change); `None` when
    /// nothing is scheduled.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let lingering = self.live.next_expiry(self.config.send_interval);
        match (lingering, self.schedule.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
