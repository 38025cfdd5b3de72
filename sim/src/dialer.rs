//! Whom a node dials: the crate's [`PeerBook`] (`--policy book`), or the naive policy of
//! clients without one (`--policy naive`): every address learned, in the order learned, one
//! entry per `ip:port`, never ranked, never distrusted.

use std::collections::VecDeque;
use std::net::SocketAddr;

use rustc_hash::FxHashSet;
use std::time::Instant;

use ut_pex::{Event, PeerBook, PeerFlags, Source};

use crate::addr::{pack, unpack};

/// A node's dial policy.
#[derive(Debug)]
pub enum Dialer {
    /// The crate's peer book.
    Book(Box<PeerBook>),
    /// First learned, first dialled.
    Naive(Naive),
}

/// The naive policy's state. `seen` only grows: like the clients it models, it never forgets
/// an address (bounded here by the simulation's length).
#[derive(Debug, Default)]
pub struct Naive {
    queue: VecDeque<u64>,
    seen: FxHashSet<u64>,
}

impl Dialer {
    /// A candidate from a tracker answer.
    pub fn tracker(&mut self, now: Instant, addr: SocketAddr) {
        self.add(now, addr, Source::Tracker);
    }

    /// What a connection's PEX event teaches, `remote` being that connection's peer.
    pub fn on_event(&mut self, now: Instant, remote: SocketAddr, event: &Event) {
        match self {
            Dialer::Book(book) => {
                book.on_event(now, remote, event);
            }
            Dialer::Naive(_) => {
                if let Event::PeerAdded(peer) = event {
                    self.add(now, peer.addr, Source::Pex(remote));
                }
            }
        }
    }

    fn add(&mut self, now: Instant, addr: SocketAddr, source: Source) {
        match self {
            Dialer::Book(book) => {
                book.add(now, addr, PeerFlags::EMPTY, source);
            }
            Dialer::Naive(naive) => {
                if let Some(k) = pack(addr).filter(|&k| naive.seen.insert(k)) {
                    naive.queue.push_back(k);
                }
            }
        }
    }

    /// The next address to dial, if the policy has one now.
    pub fn next(&mut self, now: Instant) -> Option<SocketAddr> {
        match self {
            Dialer::Book(book) => book.poll_dial(now),
            Dialer::Naive(naive) => naive.queue.pop_front().map(unpack),
        }
    }

    /// When [`Dialer::next`] may have something without new input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Dialer::Book(book) => book.poll_timeout(),
            Dialer::Naive(_) => None,
        }
    }

    /// A connection to `addr` is up (dialled by this node or not).
    pub fn connected(&mut self, now: Instant, addr: SocketAddr) {
        if let Dialer::Book(book) = self {
            book.connected(now, addr);
        }
    }

    /// The dial to `addr` failed.
    pub fn failed(&mut self, now: Instant, addr: SocketAddr) {
        if let Dialer::Book(book) = self {
            book.dial_failed(now, addr);
        }
    }

    /// The connection to `addr` ended: it no longer vouches for anything either.
    pub fn disconnected(&mut self, now: Instant, addr: SocketAddr) {
        if let Dialer::Book(book) = self {
            book.disconnected(now, addr);
            book.source_closed(now, Source::Pex(addr));
        }
    }
}
