//! The world's events, each touching more than one node: dials' arrivals, the static overlay,
//! churn and attacks. They run between windows, on one thread.

use bytes::Bytes;
use ut_pex::{message, DisconnectReason, Peer, PeerFlags};

use crate::addr::{fake_addr, node_addr, node_of, unpack, victim_addr, VICTIM};
use crate::node::Kind;
use crate::params::Topology;
use crate::settle::latency_of;
use crate::shard::Key;
use crate::world::{Ev, World, ATTACK_INTERVAL, CONNECT_TIMEOUT};

/// Forged entries per announcement, half of them the victim under fresh ports.
const FORGED: usize = 50;

impl World {
    /// The joiner in `slot` hears of `bootstrap` random other nodes (honest or not), as a
    /// tracker would answer.
    pub(crate) fn bootstrap(&mut self, slot: usize) {
        self.tracker_answer(slot, self.env.p.bootstrap);
    }

    /// The node in `slot` hears of `count` random other nodes.
    pub(crate) fn tracker_answer(&mut self, slot: usize, count: u32) {
        let total = self.slots as u64;
        let now = self.env.instant(self.now);
        for _ in 0..count {
            let other = self.rng.below(total) as usize;
            if other == slot {
                continue;
            }
            let uid = self.node(other).uid;
            let (shard, local) = self.env.place(slot);
            let shard = &mut self.shards[shard];
            shard.nodes[local].dialer.tracker(now, node_addr(uid));
            shard.learn(local, uid);
        }
    }

    /// Node `from`'s dial (key `key`) reaches `word`: a live node with room connects; a full
    /// node or the victim refuses at once; nobody (a gone node, a fake address, a NAT) answers
    /// at all. Decided now, at the start of the window that holds `key`, from the links as
    /// they will be at `key` (only dials and churn change links); each end then opens in its
    /// own shard under the dial's key.
    pub(crate) fn dial_arrives(&mut self, key: Key, from: u32, word: u64) {
        let addr = unpack(word);
        let Some(from_slot) = self.env.slot(from) else {
            return;
        };
        let failed = Ev::DialFailed { from, addr: word };
        let target = node_of(addr).and_then(|t| self.env.slot(t));
        let Some(to_slot) = target.filter(|&s| self.node(s).accepts()) else {
            if addr.ip() == VICTIM {
                return self.push_to(from_slot, key, failed);
            }
            let seq = self.next_seq();
            return self.push_to(from_slot, (key.0 + CONNECT_TIMEOUT, seq), failed);
        };
        let to = self.node(to_slot).uid;
        let opening = |uid: u32| {
            self.opening
                .iter()
                .filter(move |&&(a, b)| a == uid || b == uid)
        };
        // The crawler takes every connection offered.
        let cap = match self.node(to_slot).kind {
            Kind::Crawler => usize::MAX,
            _ => self.env.p.accept_cap(),
        };
        let full = self.node(to_slot).links.len() + opening(to).count() >= cap;
        let linked =
            self.node(from_slot).linked_to(to) || opening(to).any(|&(a, b)| a == from || b == from);
        if full || linked {
            return self.push_to(from_slot, key, failed);
        }
        self.opening.push((from, to));
        self.own.connections += 1;
        let (ours, theirs) = (
            Ev::Connected {
                node: from,
                peer: to,
                outgoing: true,
            },
            Ev::Connected {
                node: to,
                peer: from,
                outgoing: false,
            },
        );
        self.push_to(from_slot, key, ours);
        self.push_to(to_slot, (key.0, key.1 | 1), theirs);
    }

    /// Opens a connection from `a` (outgoing) to `b` (incoming) at once, nothing sent yet.
    fn open_link(&mut self, a: usize, b: usize) {
        let (ua, ub) = (self.node(a).uid, self.node(b).uid);
        for (slot, peer, outgoing) in [(a, ub, true), (b, ua, false)] {
            let (shard, local) = self.env.place(slot);
            self.shards[shard].open_end(&self.env, local, peer, outgoing);
        }
        self.own.connections += 1;
    }

    /// A random `degree`-regular overlay by the configuration model, every link up at time 0
    /// before anyone speaks (so every first message names all of a neighbour's others, as
    /// the model assumes). Self-loops and repeated pairs go back into the pool and are paired
    /// again; the few left after 20 rounds are dropped.
    pub(crate) fn build_static_overlay(&mut self) {
        let n = self.env.p.nodes as usize;
        let mut stubs: Vec<u32> = (0..n as u32)
            .flat_map(|s| std::iter::repeat_n(s, self.env.p.degree as usize))
            .collect();
        for _ in 0..20 {
            for i in (1..stubs.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                stubs.swap(i, j);
            }
            let mut left = Vec::new();
            for pair in stubs.chunks_exact(2) {
                let (a, b) = (pair[0] as usize, pair[1] as usize);
                if a != b && !self.node(a).linked_to(self.node(b).uid) {
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
        let Some(slot) = self.env.slot(uid) else {
            return;
        };
        self.forget(uid);
        let now = self.env.instant(self.now);
        let (shard, local) = self.env.place(slot);
        let links = std::mem::take(&mut self.shards[shard].nodes[local].links);
        for link in links {
            let Some(peer) = self.env.slot(link.peer) else {
                continue;
            };
            let (shard, local) = self.env.place(peer);
            let shard = &mut self.shards[shard];
            let node = &mut shard.nodes[local];
            if let Some(conn) = node.link_to(uid) {
                node.swarm.disconnect(now, conn, DisconnectReason::Other);
                node.links.retain(|l| l.conn != conn);
            }
            node.dialer.disconnected(now, node_addr(uid));
            shard.counts.disconnections += 1;
            shard.settle(&self.env, local);
        }
        let reachable = self.rng.unit() >= self.env.p.unreachable;
        self.spawn(slot, Kind::Honest { reachable });
        self.own.joins += 1;
        match self.env.p.topology {
            Topology::Dial => self.bootstrap(slot),
            Topology::Static => self.rewire(slot),
        }
        self.settle(slot);
    }

    /// A joiner of the static overlay takes `degree` random live neighbours directly.
    fn rewire(&mut self, slot: usize) {
        let n = self.env.p.nodes as u64;
        let mut tries = 0;
        while self.node(slot).links.len() < self.env.p.degree as usize && tries < 4 * n {
            tries += 1;
            let other = self.rng.below(n) as usize;
            if other != slot && !self.node(slot).linked_to(self.node(other).uid) {
                self.open_link(slot, other);
                self.settle(slot);
                self.settle(other);
            }
        }
    }

    /// An attacker announces 50 new forged addresses on every connection and drops the
    /// previous 50: half are the victim's IP under fresh ports, half fake IPs.
    pub(crate) fn attack(&mut self, uid: u32) {
        let Some(slot) = self.env.slot(uid) else {
            return;
        };
        let (shard, local) = self.env.place(slot);
        let added: Vec<Peer> = (0..FORGED)
            .map(|k| {
                self.attack_counter += 1;
                let n = self.attack_counter;
                let addr = if k % 2 == 0 {
                    victim_addr(n)
                } else {
                    fake_addr(n.wrapping_mul(0x9E37_79B9))
                };
                Peer::new(addr, PeerFlags::EMPTY)
            })
            .collect();
        let shard = &mut self.shards[shard];
        let node = &mut shard.nodes[local];
        let dropped: Vec<_> = node.attack.iter().map(|p| p.addr).collect();
        let payload = Bytes::from(message::encode_payload(&added, &dropped));
        node.attack = added;
        let peers: Vec<u32> = node.links.iter().map(|l| l.peer).collect();
        for peer in peers {
            shard.counts.attacker_messages += 1;
            let now = shard.now;
            shard.trace_of(uid).frame(now, uid, peer, &payload);
            let at = now + latency_of(self.env.p.seed, uid, peer);
            shard.send(&self.env, local, peer, at, payload.clone());
        }
        let seq = self.next_seq();
        self.main
            .push(self.now + ATTACK_INTERVAL, seq, Ev::Attack(uid));
    }
}
