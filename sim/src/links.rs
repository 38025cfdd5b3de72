//! Connections: tracker answers, dials and their outcomes, the static overlay, and churn.

use std::net::SocketAddr;

use ut_pex::{Direction, DisconnectReason, PeerFlags};

use crate::addr::{node_addr, pack, unpack, VICTIM};
use crate::node::{Kind, Link};
use crate::params::Topology;
#[cfg(doc)]
use crate::world::MAX_HALF_OPEN;
use crate::world::{Ev, World, CONNECT_TIMEOUT};

impl World {
    /// The joiner in `slot` hears of `bootstrap` random other nodes (honest or not), as a
    /// tracker would answer.
    pub(crate) fn bootstrap(&mut self, slot: usize) {
        self.tracker_answer(slot, self.p.bootstrap);
    }

    /// The node in `slot` hears of `count` random other nodes.
    pub(crate) fn tracker_answer(&mut self, slot: usize, count: u32) {
        let total = self.nodes.len() as u64;
        let now = self.instant();
        for _ in 0..count {
            let other = self.rng.below(total) as usize;
            if other == slot {
                continue;
            }
            let uid = self.nodes[other].uid;
            self.nodes[slot].dialer.tracker(now, node_addr(uid));
            self.learn(slot, uid);
        }
    }

    /// Sends what dials the node in `slot` may: up to `degree` connections, at most
    /// [`MAX_HALF_OPEN`] in flight (the crawler: [`World::dial_limits`]).
    pub(crate) fn try_dials(&mut self, slot: usize) {
        if self.p.topology == Topology::Static {
            return;
        }
        let now = self.instant();
        let (degree, half_open) = self.dial_limits(slot);
        loop {
            let node = &mut self.nodes[slot];
            if node.busy() >= degree || node.in_flight >= half_open {
                return;
            }
            let Some(addr) = node.dialer.next(now) else {
                return;
            };
            let target = World::node_uid(addr);
            if target.is_some_and(|t| t == node.uid || node.linked_to(t)) {
                // Already connected (it dialled us first): nothing to send.
                node.dialer.connected(now, addr);
                continue;
            }
            let Some(word) = pack(addr) else {
                // The simulation's network is IPv4 only: nothing answers anything else.
                node.dialer.failed(now, addr);
                continue;
            };
            node.in_flight += 1;
            let uid = node.uid;
            self.counts.dials += 1;
            if addr.ip() == VICTIM {
                self.counts.victim_dials += 1;
            }
            self.trace.dial(self.now, uid, addr);
            let rtt = 2 * self.latency(u64::from(uid), word);
            let dial = Ev::Dial {
                from: uid,
                addr: word,
            };
            self.queue.push(self.now + rtt, dial);
        }
    }

    /// A dial reaches its target: a live node with room connects; a full node or the victim
    /// refuses at once; nobody (a gone node, a fake address, a NAT) answers at all.
    pub(crate) fn dial_arrives(&mut self, from: u32, word: u64) {
        let addr = unpack(word);
        let Some(from_slot) = self.slot(from) else {
            return;
        };
        let target = World::node_uid(addr).and_then(|t| self.slot(t));
        let Some(to_slot) = target.filter(|&s| self.nodes[s].accepts()) else {
            if addr.ip() == VICTIM {
                return self.dial_failed(from, addr);
            }
            let at = self.now + CONNECT_TIMEOUT;
            let timeout = Ev::DialTimeout { from, addr: word };
            return self.queue.push(at, timeout);
        };
        let to = &self.nodes[to_slot];
        if to.links.len() >= self.accept_cap_of(to_slot) || self.nodes[from_slot].linked_to(to.uid)
        {
            return self.dial_failed(from, addr);
        }
        let node = &mut self.nodes[from_slot];
        node.in_flight = node.in_flight.saturating_sub(1);
        self.establish(from_slot, to_slot);
    }

    /// Node `from`'s dial to `addr` failed.
    pub(crate) fn dial_failed(&mut self, from: u32, addr: SocketAddr) {
        let Some(slot) = self.slot(from) else {
            return;
        };
        let now = self.instant();
        let node = &mut self.nodes[slot];
        node.in_flight = node.in_flight.saturating_sub(1);
        node.dialer.failed(now, addr);
        self.counts.dial_failures += 1;
        self.settle(slot);
    }

    /// Opens a connection from `a` (outgoing) to `b` (incoming) and settles both ends.
    pub(crate) fn establish(&mut self, a: usize, b: usize) {
        self.open_link(a, b);
        self.settle(a);
        self.settle(b);
    }

    /// Opens a connection from `a` (outgoing) to `b` (incoming): the BitTorrent and extended
    /// handshakes are taken as exchanged, both ends start PEX. Nothing is sent yet.
    fn open_link(&mut self, a: usize, b: usize) {
        let now = self.instant();
        let (ua, ub) = (self.nodes[a].uid, self.nodes[b].uid);
        let (addr_a, addr_b) = (node_addr(ua), node_addr(ub));
        // The acceptor sees the dialler's ephemeral port; the handshake's `p` gives the dial
        // address, as in the wild.
        let ephemeral = SocketAddr::new(addr_a.ip(), 49_152 + (ub % 16_000) as u16);
        let ends = [
            (a, addr_b, Direction::Outgoing, addr_b),
            (b, ephemeral, Direction::Incoming, addr_a),
        ];
        let mut conns = [None, None];
        for (i, &(slot, remote, direction, listen)) in ends.iter().enumerate() {
            let node = &mut self.nodes[slot];
            let conn = node.swarm.connect(now, remote, direction, PeerFlags::EMPTY);
            let hs = node
                .swarm
                .handle_extended_handshake(now, conn, &self.handshake);
            debug_assert!(hs.is_ok());
            node.swarm.start(now, conn);
            node.dialer.connected(now, listen);
            conns[i] = Some(conn);
        }
        let (Some(ca), Some(cb)) = (conns[0], conns[1]) else {
            return;
        };
        self.nodes[a].links.push(Link {
            conn: ca,
            peer: ub,
            peer_conn: cb,
        });
        self.nodes[b].links.push(Link {
            conn: cb,
            peer: ua,
            peer_conn: ca,
        });
        self.counts.connections += 1;
        self.learn(a, ub);
        self.learn(b, ua);
    }

    /// A random `degree`-regular overlay by the configuration model, every link up at time 0
    /// before anyone speaks (so every first message names all of a neighbour's others, as
    /// the model assumes). Self-loops and repeated pairs go back into the pool and are paired
    /// again; the few left after 20 rounds are dropped.
    pub(crate) fn build_static_overlay(&mut self) {
        let n = self.p.nodes as usize;
        let mut stubs: Vec<u32> = (0..n as u32)
            .flat_map(|s| std::iter::repeat_n(s, self.p.degree as usize))
            .collect();
        for _ in 0..20 {
            for i in (1..stubs.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                stubs.swap(i, j);
            }
            let mut left = Vec::new();
            for pair in stubs.chunks_exact(2) {
                let (a, b) = (pair[0] as usize, pair[1] as usize);
                if a != b && !self.nodes[a].linked_to(self.nodes[b].uid) {
                    self.open_link(a, b);
                } else {
                    left.extend_from_slice(pair);
                }
            }
            if left.len() < 2 {
                break;
            }
            stubs = left;
        }
    }

    /// A session ends: every connection closes, and a joiner takes the slot.
    pub(crate) fn leave(&mut self, uid: u32) {
        let Some(slot) = self.slot(uid) else {
            return;
        };
        self.forget(uid);
        let now = self.instant();
        let links = std::mem::take(&mut self.nodes[slot].links);
        for link in links {
            let Some(peer) = self.slot(link.peer) else {
                continue;
            };
            let node = &mut self.nodes[peer];
            node.swarm
                .disconnect(now, link.peer_conn, DisconnectReason::Other);
            node.links.retain(|l| l.conn != link.peer_conn);
            node.dialer.disconnected(now, node_addr(uid));
            self.counts.disconnections += 1;
            self.settle(peer);
        }
        let reachable = self.rng.unit() >= self.p.unreachable;
        self.spawn(slot, Kind::Honest { reachable });
        self.counts.joins += 1;
        match self.p.topology {
            Topology::Dial => self.bootstrap(slot),
            Topology::Static => self.rewire(slot),
        }
        self.settle(slot);
    }

    /// A joiner of the static overlay takes `degree` random live neighbours directly.
    fn rewire(&mut self, slot: usize) {
        let n = self.p.nodes as u64;
        let mut tries = 0;
        while self.nodes[slot].links.len() < self.p.degree as usize && tries < 4 * n {
            tries += 1;
            let other = self.rng.below(n) as usize;
            if other != slot && !self.nodes[slot].linked_to(self.nodes[other].uid) {
                self.establish(slot, other);
            }
        }
    }
}
