//! [`Conn`]: the PEX engine of one connection, hosted by [`PexState`](crate::PexState)
//! (which owns one) and by [`Swarm`](crate::Swarm) (which keeps many in its arena).
//!
//! A `Conn` holds everything that belongs to one remote: its cursor into the shared
//! [`Timeline`], the send spacing, the receiving side, the events for the host and the
//! counters. It owns no clock and no timer: [`Conn::next`] says what it wants next, and the
//! host keeps the timer (one `Option` for a `PexState`, a heap for a `Swarm`). What is
//! torrent-wide (the log, the live set, lingering contacts) is passed in by the host.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::addr::is_local_scope;
use crate::codec::{encode_frame, Frame, FrameChunk};
use crate::config::Config;
use crate::error::MessageError;
use crate::event::{Event, EventQueue, Spare};
use crate::inbound::{AddRules, Claim, Inbound, Recycled};
use crate::peer::{Peer, PeerFlags};
use crate::stats::{Counters, Stats};
use crate::timeline::{Batch, Cursor, Timeline};

/// What a connection wants next from its host's timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// It cannot send (not started, PEX off on the remote, or a private torrent).
    Never,
    /// It can send but has nothing to say: wake it when the log grows.
    Waiting,
    /// It has news: its next frame is due at this instant (maybe in the past).
    At(Instant),
}

/// The PEX engine of one connection.
#[derive(Debug)]
pub(crate) struct Conn {
    cursor: Cursor,
    /// When the last frame was handed out.
    last_send: Option<Instant>,
    /// The remote's `ut_pex` id (0: not advertised or turned off).
    remote_id: u8,
    /// Whether the host started sending.
    started: bool,
    /// Whether the remote's IP is global (see [`AddRules`]).
    remote_is_global: bool,
    inbound: Inbound,
    events: EventQueue,
    stats: Counters,
}

impl Conn {
    /// A connection attaching now: its first frame will carry the live set.
    pub(crate) fn new(timeline: &Timeline) -> Self {
        Self {
            cursor: Cursor::attach(timeline),
            last_send: None,
            remote_id: 0,
            started: false,
            remote_is_global: false,
            inbound: Inbound::default(),
            events: EventQueue::default(),
            stats: Counters::default(),
        }
    }

    // ---- the one send predicate and the one scheduling decision ---------------------------

    /// Whether PEX is on for this remote: a non-zero `ut_pex` id (BEP 10: "0 is used to turn
    /// off an extension"), and not a private torrent (BEP 27 names PEX among the ways that
    /// subvert "the tracker's access control").
    #[inline]
    pub(crate) fn is_enabled(&self, config: &Config) -> bool {
        self.remote_id != 0 && !config.private
    }

    /// Whether this connection may send frames now: enabled and started.
    #[inline]
    pub(crate) fn can_send(&self, config: &Config) -> bool {
        self.started && self.is_enabled(config)
    }

    /// What this connection wants next, given the latest instant its host has seen.
    ///
    /// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute":
    /// news waits for `last_send + send_interval`; the first frame goes out at once.
    #[inline]
    pub(crate) fn next(&self, timeline: &Timeline, config: &Config, now: Instant) -> Next {
        if !self.can_send(config) {
            return Next::Never;
        }
        if !self.cursor.has_pending(timeline) {
            return Next::Waiting;
        }
        match self.last_send {
            // Past the representable range: never due.
            Some(last) => last
                .checked_add(config.send_interval)
                .map_or(Next::Never, Next::At),
            None => Next::At(now),
        }
    }

    /// Builds the frame that is due, walking the cursor; `None` if it cannot send now or if
    /// everything walked cancelled out (BEP 11: a message carries at least one entry; the
    /// send slot then stays free). With a `chunk`, the frame is split off it (see
    /// [`FrameChunk`]); without, it has an allocation of its own.
    pub(crate) fn build_frame(
        &mut self,
        timeline: &Timeline,
        batch: &mut Batch,
        config: &Config,
        now: Instant,
        chunk: Option<&mut FrameChunk>,
    ) -> Option<Frame> {
        if !self.can_send(config) {
            return None;
        }
        let max_added = if self.stats.frames_sent.is_zero() {
            config.get_initial_max_peers()
        } else {
            config.get_max_entries_per_frame()
        };
        batch.reset(max_added, config.get_max_entries_per_frame());
        let own = self.cursor.own();
        let inbound = &self.inbound;
        // BEP 11 sends peers the remote does not already have: never the remote itself, nor
        // what it told us.
        timeline.walk(&mut self.cursor, batch, |addr| {
            Some(addr) == own || inbound.claimed(addr)
        });
        if batch.is_empty() {
            return None;
        }
        let frame = match chunk {
            Some(chunk) => chunk.encode(self.remote_id, &batch.added, &batch.dropped),
            None => encode_frame(self.remote_id, &batch.added, &batch.dropped),
        };
        self.last_send = Some(now);
        self.stats.record_sent(&frame, batch);
        Some(frame)
    }

    // ---- inputs ---------------------------------------------------------------------------

    /// Sets the remote's `ut_pex` id; a change between off and on becomes an event.
    pub(crate) fn set_remote_id(&mut self, id: u8, config: &Config, spare: &mut Spare) {
        let was = self.is_enabled(config);
        self.remote_id = id;
        match (was, self.is_enabled(config)) {
            (false, true) => self.events.push(Event::Enabled, spare),
            (true, false) => self.events.push(Event::Disabled, spare),
            _ => {}
        }
    }

    pub(crate) fn set_started(&mut self, started: bool) {
        self.started = started;
    }

    /// The remote's own address: never advertised back to it.
    pub(crate) fn set_echo_addr(&mut self, addr: SocketAddr) {
        self.cursor.set_own(addr);
    }

    /// The remote's IP: its scope decides whether local-scope addresses it sends are kept.
    pub(crate) fn set_remote_ip(&mut self, ip: IpAddr) {
        self.remote_is_global = !is_local_scope(ip);
    }

    /// Handles a received ut_pex payload. On `Err` nothing changed but an error counter.
    pub(crate) fn handle_message(
        &mut self,
        now: Instant,
        payload: &[u8],
        config: &Config,
        timeline: &Timeline,
        spare: &mut Spare,
    ) -> Result<(), MessageError> {
        let Some(message) = self.inbound.admit(now, payload, config, &mut self.stats)? else {
            return Ok(());
        };
        let (cursor, events) = (&mut self.cursor, &mut self.events);
        self.inbound.apply(
            &message,
            AddRules {
                cap: config.get_max_remote_peers(),
                remote_is_global: self.remote_is_global,
            },
            &mut self.stats,
            |claim| match claim {
                Claim::Added(peer) => {
                    cursor.claimed(peer.addr);
                    events.push(Event::PeerAdded(peer), spare);
                }
                Claim::Dropped(addr) => {
                    cursor.unclaimed(addr, timeline);
                    events.push(Event::PeerDropped(addr), spare);
                }
            },
        );
        Ok(())
    }

    /// Forgets what the remote claimed and the queued events about it.
    pub(crate) fn forget_claims(&mut self, spare: &mut Spare) {
        self.inbound.forget();
        self.events.clear_peers(spare);
    }

    // ---- outputs and getters --------------------------------------------------------------

    pub(crate) fn poll_event(&mut self, spare: &mut Spare) -> Option<Event> {
        self.events.pop(spare)
    }

    pub(crate) fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// The remote's own address, as far as known (see [`set_echo_addr`](Self::set_echo_addr)).
    pub(crate) fn remote_addr(&self) -> Option<SocketAddr> {
        self.cursor.own()
    }

    pub(crate) fn remote_id(&self) -> u8 {
        self.remote_id
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started
    }

    pub(crate) fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    pub(crate) fn cursor_mut(&mut self) -> &mut Cursor {
        &mut self.cursor
    }

    pub(crate) fn claims(&self) -> impl Iterator<Item = Peer> + '_ {
        self.inbound.claims()
    }

    pub(crate) fn claimed_flags(&self, addr: SocketAddr) -> Option<PeerFlags> {
        self.inbound.claimed_flags(addr)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    pub(crate) fn stats_mut(&mut self) -> &mut Counters {
        &mut self.stats
    }

    /// Takes recycled receiving storage where this remote has none yet.
    pub(crate) fn adopt_inbound(&mut self, from: &mut Recycled) {
        self.inbound.adopt(from);
    }

    /// The connection is leaving: its receiving storage goes to `into` for a newcomer.
    pub(crate) fn recycle_inbound(self, into: &mut Recycled) {
        self.inbound.recycle(into);
    }

    /// Heap bytes this connection holds beyond its own size: echo table, claims, events.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cursor.heap_bytes() + self.inbound.heap_bytes() + self.events.heap_bytes()
    }
}
