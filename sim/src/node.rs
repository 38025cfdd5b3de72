//! One simulated node: a `Swarm` for its connections' PEX, a dial policy, and its links.

use std::net::SocketAddr;

use ut_pex::{ConnectionId, Peer, Swarm};

use crate::bits::Bits;
use crate::crawler::{Recorder, CRAWLER_HALF_OPEN};
use crate::dialer::Dialer;
use crate::world::MAX_HALF_OPEN;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Runs the crate as a client would; `reachable: false` accepts no incoming connection
    /// (behind a NAT).
    Honest {
        /// Whether it accepts incoming connections.
        reachable: bool,
    },
    /// Connects like an honest node, but its PEX frames are forged (see [`Node::attack`]).
    Attacker,
    /// The measurement node of `--crawler` ([`crate::crawler`]): not one of the swarm.
    Crawler,
}

impl Kind {
    /// Whether it is one of the swarm's honest nodes (live, counted, subject to churn).
    pub fn is_honest(self) -> bool {
        matches!(self, Kind::Honest { .. })
    }
}

/// A live node.
#[derive(Debug)]
pub struct Node {
    /// Its identity, from which its address follows ([`crate::addr::node_addr`]).
    pub uid: u32,
    /// Honest or not.
    pub kind: Kind,
    /// Its connections' PEX.
    pub swarm: Swarm,
    /// Whom it dials.
    pub dialer: Dialer,
    /// Its connections.
    pub links: Vec<Link>,
    /// Dials sent and not answered.
    pub in_flight: u32,
    /// The time of the earliest wake-up queued for it, if any (later queued ones are stale).
    pub wake: Option<u64>,
    /// An attacker's forged list of the last minute, dropped by the next.
    pub attack: Vec<Peer>,
    /// Events it pushed so far: with its uid, the `seq` of the next one's key, so the order
    /// of same-time events depends on who pushed them, never on which thread ran first.
    pub pushes: u32,
    /// Who it knows of, if it is in the sample.
    pub known: Option<Bits>,
    /// What it heard, if it is the `--crawler` node.
    pub crawler: Option<Box<Recorder>>,
}

/// One connection, seen from one end.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// This end's id in this node's `Swarm`.
    pub conn: ConnectionId,
    /// The node at the other end (a pair of uids has at most one connection over a run:
    /// uids are never reused, so frames are addressed by it).
    pub peer: u32,
}

impl Node {
    /// The link whose local end is `conn`.
    pub fn link(&self, conn: ConnectionId) -> Option<&Link> {
        self.links.iter().find(|l| l.conn == conn)
    }

    /// Whether it has a connection to node `uid`.
    pub fn linked_to(&self, uid: u32) -> bool {
        self.link_to(uid).is_some()
    }

    /// Its end of the connection to node `uid`.
    pub fn link_to(&self, uid: u32) -> Option<ConnectionId> {
        self.links.iter().find(|l| l.peer == uid).map(|l| l.conn)
    }

    /// Connections, open or being opened.
    pub fn busy(&self) -> usize {
        self.links.len() + self.in_flight as usize
    }

    /// `(connections, dials in flight)` it may reach, a node's `degree` and
    /// [`MAX_HALF_OPEN`]: the crawler has no connection limit.
    pub fn dial_limits(&self, degree: u32) -> (usize, u32) {
        if self.kind == Kind::Crawler {
            (usize::MAX, CRAWLER_HALF_OPEN)
        } else {
            (degree as usize, MAX_HALF_OPEN)
        }
    }

    /// Whether it is an attacker.
    pub fn is_attacker(&self) -> bool {
        self.kind == Kind::Attacker
    }

    /// Whether it takes incoming connections.
    pub fn accepts(&self) -> bool {
        self.kind != Kind::Honest { reachable: false }
    }
}

/// The listen address of node `uid`, re-exported for the world's call sites.
pub fn addr(uid: u32) -> SocketAddr {
    crate::addr::node_addr(uid)
}
