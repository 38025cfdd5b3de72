//! [`Event`]s and the bounded queue that holds them until the host polls.

// A boxed queue is deliberate here: the box is 8 bytes where an empty `VecDeque` is 32, in
// every connection, and the spill buffer moves between queues as one pointer.
#![allow(clippy::box_collection)]

use std::collections::VecDeque;
use std::net::SocketAddr;

use arrayvec::ArrayVec;

use crate::peer::Peer;

/// A fact for the host, from [`PexState::poll_event`](crate::PexState::poll_event) or
/// [`Swarm::poll_event`](crate::Swarm::poll_event) (with the connection it concerns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// The remote advertised a non-zero `ut_pex` id: frames may be sent once started.
    Enabled,
    /// The remote set `ut_pex` to 0 in a later handshake (BEP 10: "0 is used to turn off an
    /// extension"): nothing is sent until it enables it again.
    Disabled,
    /// The remote says it is connected to this peer: a candidate to dial. Emitted once per
    /// address until the remote drops it. Flags are hints (see [`PeerFlags`](crate::PeerFlags)).
    PeerAdded(Peer),
    /// The remote says it is no longer connected to a peer it announced before. Only ever
    /// emitted for an address a `PeerAdded` announced, so a remote cannot make the host
    /// forget peers it learned elsewhere.
    PeerDropped(SocketAddr),
}

/// Events waiting for the host, coalesced so the queue stays bounded however long the host
/// waits to poll: an event that undoes one still queued removes both (the host never saw
/// either), so each address has at most a drop and an add queued, and `Enabled`/`Disabled`
/// at most one between them.
///
/// The first event lives inline ([`NEAR`]), so `Enabled` and the usual one-peer message queue
/// and drain without allocating. A burst spills into `far`, a buffer
/// borrowed from the host's [`Spare`] and handed back once drained: a `Swarm` of many
/// connections keeps one buffer for all of them, not room for 200 events in each.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    /// The oldest events. Invariant: every event here is older than every event in `far`,
    /// so `far` takes new events as long as it exists (it is handed back once empty).
    near: ArrayVec<Event, NEAR>,
    /// Boxed, so that a queue with nothing spilled costs a pointer.
    far: Option<Box<VecDeque<Event>>>,
}

/// Events kept inline per connection.
const NEAR: usize = 1;

/// The spill buffer a host lends its connections' event queues (one per `PexState` or
/// `Swarm`): the largest one drained so far, kept so that bursts do not allocate.
#[derive(Debug, Default)]
pub(crate) struct Spare(Option<Box<VecDeque<Event>>>);

impl Spare {
    fn lend(&mut self) -> Box<VecDeque<Event>> {
        self.0.take().unwrap_or_default()
    }

    /// Takes an empty buffer back, keeping the larger of the two.
    fn give_back(&mut self, buffer: Box<VecDeque<Event>>) {
        if buffer.capacity() > self.0.as_ref().map_or(0, |b| b.capacity()) {
            self.0 = Some(buffer);
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.as_deref().map_or(0, buffer_bytes)
    }
}

fn buffer_bytes(buffer: &VecDeque<Event>) -> usize {
    std::mem::size_of::<VecDeque<Event>>() + buffer.capacity() * std::mem::size_of::<Event>()
}

impl EventQueue {
    pub(crate) fn push(&mut self, event: Event, spare: &mut Spare) {
        let undone = |queued: &Event| match (queued, &event) {
            (Event::PeerAdded(p), Event::PeerDropped(a)) => p.addr == *a,
            (Event::Enabled, Event::Disabled) | (Event::Disabled, Event::Enabled) => true,
            _ => false,
        };
        if let Some(far) = self.far.as_deref_mut() {
            if let Some(i) = far.iter().rposition(undone) {
                far.remove(i);
                self.return_if_drained(spare);
                return;
            }
        }
        if let Some(i) = self.near.iter().rposition(undone) {
            self.near.remove(i);
        } else if self.far.is_none() && !self.near.is_full() {
            self.near.push(event);
        } else {
            self.far
                .get_or_insert_with(|| spare.lend())
                .push_back(event);
        }
    }

    pub(crate) fn pop(&mut self, spare: &mut Spare) -> Option<Event> {
        if !self.near.is_empty() {
            return Some(self.near.remove(0));
        }
        let event = self.far.as_deref_mut()?.pop_front();
        self.return_if_drained(spare);
        event
    }

    pub(crate) fn len(&self) -> usize {
        self.near.len() + self.far.as_ref().map_or(0, |f| f.len())
    }

    /// Forgets the peer events, keeping `Enabled`/`Disabled` (those describe the
    /// connection, not what the remote told us).
    pub(crate) fn clear_peers(&mut self, spare: &mut Spare) {
        let keep = |e: &Event| matches!(e, Event::Enabled | Event::Disabled);
        self.near.retain(|e| keep(e));
        if let Some(far) = self.far.as_deref_mut() {
            far.retain(keep);
        }
        self.return_if_drained(spare);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.far.as_deref().map_or(0, buffer_bytes)
    }

    fn return_if_drained(&mut self, spare: &mut Spare) {
        if self.far.as_ref().is_some_and(|f| f.is_empty()) {
            if let Some(far) = self.far.take() {
                spare.give_back(far);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::PeerFlags;

    fn added(i: u16) -> Event {
        Event::PeerAdded(Peer::new(
            SocketAddr::from(([10, 0, 0, 1], i)),
            PeerFlags::EMPTY,
        ))
    }

    fn dropped(i: u16) -> Event {
        Event::PeerDropped(SocketAddr::from(([10, 0, 0, 1], i)))
    }

    /// Order holds across the inline part and the spill, undoing works in both, and the
    /// spill is freed once drained.
    #[test]
    fn fifo_across_near_and_far() {
        let (mut q, mut spare) = (EventQueue::default(), Spare::default());
        for i in 1..=5 {
            q.push(added(i), &mut spare);
        }
        q.push(dropped(1), &mut spare); // undoes one inline
        q.push(dropped(4), &mut spare); // undoes one spilled
        q.push(added(6), &mut spare); // `far` is not empty: goes behind it
        let drained: Vec<Event> = std::iter::from_fn(|| q.pop(&mut spare)).collect();
        assert_eq!(drained, [added(2), added(3), added(5), added(6)]);
        assert_eq!(q.heap_bytes(), 0, "the spill went back");
        let kept = spare.heap_bytes();
        assert!(kept > 0);
        q.push(Event::Enabled, &mut spare);
        assert_eq!(q.heap_bytes(), 0, "one event fits inline");
        // A second queue borrows the same buffer: no new allocation.
        let mut other = EventQueue::default();
        for i in 1..=3 {
            other.push(added(i), &mut spare);
        }
        assert_eq!(other.heap_bytes(), kept);
        assert_eq!(spare.heap_bytes(), 0);
    }
}
