//! [`Event`]s and the bounded queue that holds them until the host polls.

use std::collections::VecDeque;
use std::net::SocketAddr;

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
#[derive(Debug, Default)]
pub(crate) struct EventQueue(VecDeque<Event>);

impl EventQueue {
    pub(crate) fn push(&mut self, event: Event) {
        let undone = |queued: &Event| match (queued, &event) {
            (Event::PeerAdded(p), Event::PeerDropped(a)) => p.addr == *a,
            (Event::Enabled, Event::Disabled) | (Event::Disabled, Event::Enabled) => true,
            _ => false,
        };
        if let Some(i) = self.0.iter().rposition(undone) {
            self.0.remove(i);
        } else {
            self.0.push_back(event);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.0.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Forgets the peer events, keeping `Enabled`/`Disabled` (those describe the
    /// connection, not what the remote told us).
    pub(crate) fn clear_peers(&mut self) {
        self.0
            .retain(|e| matches!(e, Event::Enabled | Event::Disabled));
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Event>()
    }
}
