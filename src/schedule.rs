//! [`Schedule`]: when each connection of a [`Swarm`](crate::Swarm) sends: the send
//! deadlines ([`Timers`], O(1) per deadline that comes in order), the connections waiting
//! for news, the frames due to be built when polled, and the connections with events for
//! the host.
//!
//! Each connection keeps a [`Ticket`] beside it: its place in these queues. A queue entry
//! whose ticket no longer agrees (superseded deadline, connection gone) is skipped when it
//! surfaces, so nothing is ever searched for and removed.

use std::collections::VecDeque;
use std::time::Instant;

use crate::conn::Next;
use crate::grow::GrowByEighth;
use crate::slots::ConnectionId;
use crate::timers::Timers;

/// One connection's place in the [`Schedule`].
#[derive(Debug, Default)]
pub(crate) struct Ticket {
    /// The generation of this connection's live deadline in the heap; bumped to supersede it.
    timer: u32,
    /// Whether the heap holds a live deadline (of generation `timer`).
    timer_live: bool,
    /// In the waiting list.
    waiting: bool,
    /// In the ready queue: a frame is due, to be built when polled.
    ready: bool,
    /// In the queue of connections with events.
    has_events: bool,
}

impl Ticket {
    /// Forgets a decided frame (the connection stopped).
    pub(crate) fn cancel_ready(&mut self) {
        self.ready = false;
    }

    /// Takes the decided frame, if there is one.
    #[inline]
    pub(crate) fn take_ready(&mut self) -> bool {
        std::mem::take(&mut self.ready)
    }

    /// Whether `timer` is this connection's live deadline.
    #[inline]
    pub(crate) fn holds(&self, timer: u32) -> bool {
        self.timer_live && self.timer == timer
    }
}

/// The send schedule of every connection of a swarm. The id queues grow by an eighth (see
/// [`GrowByEighth`]): each holds up to one entry per connection.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// Send deadlines, earliest first, with the timer generation they were pushed under.
    timers: Timers,
    /// Connections able to send but with nothing to say: woken when the log grows.
    waiting: Vec<ConnectionId>,
    /// Connections whose frame is due, built when polled.
    ready: VecDeque<ConnectionId>,
    /// Connections with queued events, in the order they got them.
    with_events: VecDeque<ConnectionId>,
}

impl Schedule {
    /// Places connection `id` as `next` says, superseding where it was. A deadline no later
    /// than `due_by` (the `now` of an input on this very connection) makes its frame ready at
    /// once; other deadlines wait in the heap for `handle_timeout`. Returns whether a live
    /// deadline was superseded (only then may the heap's top need pruning).
    #[inline]
    pub(crate) fn place(
        &mut self,
        id: ConnectionId,
        ticket: &mut Ticket,
        next: Next,
        due_by: Option<Instant>,
    ) -> bool {
        let superseded = std::mem::take(&mut ticket.timer_live);
        ticket.timer = ticket.timer.wrapping_add(1);
        if ticket.ready {
            return superseded; // decided: built with what is pending when polled
        }
        match next {
            Next::Never => {}
            Next::Waiting => {
                if !ticket.waiting {
                    ticket.waiting = true;
                    self.waiting.reserve_one();
                    self.waiting.push(id);
                }
            }
            Next::At(t) if due_by.is_some_and(|now| t <= now) => self.make_ready(id, ticket),
            Next::At(t) => {
                ticket.timer_live = true;
                self.timers.push((t, id, ticket.timer));
            }
        }
        superseded
    }

    /// Marks `id`'s frame due.
    #[inline]
    pub(crate) fn make_ready(&mut self, id: ConnectionId, ticket: &mut Ticket) {
        ticket.timer_live = false;
        if !ticket.ready {
            ticket.ready = true;
            self.ready.reserve_one();
            self.ready.push_back(id);
        }
    }

    /// The earliest deadline at or before `now`, as the connection and the timer generation
    /// it was pushed under (the caller checks it against the ticket with [`Ticket::holds`]).
    #[inline]
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(ConnectionId, u32)> {
        let (_, id, timer) = self.timers.pop_due(now)?;
        Some((id, timer))
    }

    /// Pops superseded deadlines off the top of the heap, so that its top is a real one
    /// (deeper superseded entries are skipped when they surface).
    pub(crate) fn prune(&mut self, holds: impl Fn(ConnectionId, u32) -> bool) {
        while let Some((_, id, timer)) = self.timers.peek() {
            if holds(id, timer) {
                break;
            }
            self.timers.pop();
        }
    }

    /// The earliest live deadline (exact after [`prune`](Self::prune)).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|(t, _, _)| t)
    }

    /// Takes the waiting list (the log grew); give the vector back with
    /// [`recycle_waiting`](Self::recycle_waiting) to keep its allocation. Each of them will
    /// want a send deadline: the timers make room for all at once (one allocation the first
    /// time a whole torrent wakes, instead of one per growth step).
    pub(crate) fn take_waiting(&mut self) -> Vec<ConnectionId> {
        self.timers.reserve(self.waiting.len());
        std::mem::take(&mut self.waiting)
    }

    pub(crate) fn recycle_waiting(&mut self, mut list: Vec<ConnectionId>) {
        list.clear();
        if self.waiting.is_empty() && list.capacity() > self.waiting.capacity() {
            self.waiting = list;
        }
    }

    /// A connection taken off the waiting list.
    pub(crate) fn woken(ticket: &mut Ticket) {
        ticket.waiting = false;
    }

    /// Whether more frames are due to be built.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub(crate) fn pop_ready(&mut self) -> Option<ConnectionId> {
        self.ready.pop_front()
    }

    /// Queues `id` for [`poll_event`](crate::Swarm::poll_event) if it is not queued yet.
    pub(crate) fn note_events(&mut self, id: ConnectionId, ticket: &mut Ticket) {
        if !ticket.has_events {
            ticket.has_events = true;
            self.with_events.reserve_one();
            self.with_events.push_back(id);
        }
    }

    /// The connection whose events come next.
    pub(crate) fn events_front(&self) -> Option<ConnectionId> {
        self.with_events.front().copied()
    }

    /// `id` has no events left (or is gone): off the queue.
    pub(crate) fn events_done(&mut self, ticket: Option<&mut Ticket>) {
        self.with_events.pop_front();
        if let Some(ticket) = ticket {
            ticket.has_events = false;
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.timers.heap_bytes()
            + (self.waiting.capacity() + self.ready.capacity() + self.with_events.capacity())
                * std::mem::size_of::<ConnectionId>()
    }
}
