//! How [`Swarm`]'s inputs reach its parts: the latest instant, dial addresses into the live
//! set, the log's growth into the schedule, frames out of the engines, compaction.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Direction, Hosted, Swarm};
use crate::addr::canonical_addr;
use crate::codec::Frame;
use crate::config::Config;
use crate::conn::Conn;
use crate::live::Added;
use crate::peer::PeerFlags;
use crate::schedule::Schedule;
use crate::slots::ConnectionId;
use crate::timeline::Timeline;

impl Swarm {
    pub(super) fn conn(&self, id: ConnectionId) -> Option<&Conn> {
        self.slots.get(id).map(|h| &h.conn)
    }

    /// Records `now`, keeping the latest instant if time went backwards.
    pub(super) fn observe(&mut self, now: Instant) -> Instant {
        let latest = self.now.map_or(now, |seen| seen.max(now));
        self.now = Some(latest);
        latest
    }

    /// Records `dial` as the connection's endpoint and makes it live.
    pub(super) fn set_dial(&mut self, id: ConnectionId, dial: SocketAddr) {
        let dial = canonical_addr(dial);
        let Some(hosted) = self.slots.get_mut(id) else {
            return;
        };
        let mut flags = hosted.flags;
        if hosted.direction == Direction::Outgoing {
            flags |= PeerFlags::REACHABLE;
        }
        hosted.dial_known = true;
        hosted.conn.set_echo_addr(dial);
        if self.live.add_dial(dial, flags) == Added::New {
            self.log_grew();
        }
    }

    /// The log grew: every connection waiting for news has some now.
    pub(super) fn log_grew(&mut self) {
        let waiting = self.schedule.take_waiting();
        let now = self.now;
        for &id in &waiting {
            if let Some(hosted) = self.slots.get_mut(id) {
                Schedule::woken(&mut hosted.ticket);
                if let Some(now) = now {
                    let at = Place::new(&self.config, now, None);
                    at.place(&mut self.schedule, self.live.timeline(), id, hosted);
                }
            }
        }
        self.schedule.recycle_waiting(waiting);
        // Once for the whole torrent, not once per woken connection.
        self.prune();
        self.compact();
    }

    /// Puts `id` where its engine says it belongs; `due_by` is the `now` of an input on `id`
    /// itself (see the time convention in the type docs).
    pub(super) fn reschedule(&mut self, id: ConnectionId, due_by: Option<Instant>) {
        // Pushing a live deadline keeps the heap's top live; only superseding one may not
        // (a frame just built had none: it was ready).
        if self.place(id, due_by) {
            self.prune();
        }
    }

    /// [`reschedule`](Self::reschedule) without the pruning, for callers that place many
    /// connections and prune once. Returns whether a live deadline was superseded.
    fn place(&mut self, id: ConnectionId, due_by: Option<Instant>) -> bool {
        let Some(now) = self.now else {
            return false; // no instant seen yet: nothing can have started
        };
        let Some(hosted) = self.slots.get_mut(id) else {
            return false;
        };
        let at = Place::new(&self.config, now, due_by);
        at.place(&mut self.schedule, self.live.timeline(), id, hosted)
    }

    /// Keeps the heap's top a live deadline, so that `poll_timeout` is exact.
    pub(super) fn prune(&mut self) {
        let slots = &self.slots;
        self.schedule
            .prune(|id, timer| slots.get(id).is_some_and(|h| h.ticket.holds(timer)));
    }

    pub(super) fn compact(&mut self) {
        let slots = &self.slots;
        self.compactor
            .run(self.live.timeline_mut(), slots.len(), || {
                slots.values().map(|h| h.conn.cursor())
            });
    }

    pub(super) fn build_frame(&mut self, id: ConnectionId) -> Option<Frame> {
        let now = self.now?;
        let hosted = self.slots.get_mut(id)?;
        if !hosted.ticket.take_ready() {
            return None; // stopped or disabled since the frame was decided
        }
        // A burst shares a chunk (two allocations: the buffer and its share count); a lone
        // frame, the usual case when frames are made due by inputs one at a time, gets one
        // allocation of its own instead.
        let in_burst = self.schedule.has_ready() || self.chunk.is_open();
        let frame = hosted.conn.build_frame(
            self.live.timeline(),
            &mut self.batch,
            &self.config,
            now,
            in_burst.then_some(&mut self.chunk),
        );
        // Placed with the slot in hand (no second lookup); see `reschedule`.
        let at = Place::new(&self.config, now, None);
        if at.place(&mut self.schedule, self.live.timeline(), id, hosted) {
            self.prune();
        }
        self.compact();
        frame
    }

    pub(super) fn note_events(&mut self, id: ConnectionId) {
        let Some(hosted) = self.slots.get_mut(id) else {
            return;
        };
        if hosted.conn.pending_events() > 0 {
            self.schedule.note_events(id, &mut hosted.ticket);
        }
    }
}

/// What placing a connection needs besides the connection: the swarm's fields it reads, so
/// that a caller already holding the connection's slot places it without looking it up again
/// (the woken connections of a torrent, a connection that just sent).
struct Place<'a> {
    config: &'a Config,
    now: Instant,
    due_by: Option<Instant>,
}

impl<'a> Place<'a> {
    fn new(config: &'a Config, now: Instant, due_by: Option<Instant>) -> Self {
        Self {
            config,
            now,
            due_by,
        }
    }

    /// Puts `hosted` (connection `id`) where its engine says it belongs; returns whether a
    /// live deadline was superseded.
    fn place(
        &self,
        schedule: &mut Schedule,
        timeline: &Timeline,
        id: ConnectionId,
        hosted: &mut Hosted,
    ) -> bool {
        let next = hosted.conn.next(timeline, self.config, self.now);
        schedule.place(id, &mut hosted.ticket, next, self.due_by)
    }
}
