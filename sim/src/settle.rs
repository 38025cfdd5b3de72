//! The host loop of one node after anything touched it, and the inputs that reach it.

use bytes::Bytes;
use ut_pex::{message, ConnectionId, Event, Peer, PeerFlags};

use crate::addr::{fake_addr, node_addr, victim_addr};
use crate::node::Link;
use crate::params::Topology;
use crate::world::{Ev, World, ATTACK_INTERVAL, MAX_HALF_OPEN, SECOND};

/// Forged entries per announcement, half of them the victim under fresh ports.
const FORGED: usize = 50;

impl World {
    /// Frames onto the wire, events to the dial policy and the known set, dials out, and the
    /// next wake-up queued.
    pub(crate) fn settle(&mut self, slot: usize) {
        self.flush_frames(slot);
        self.flush_events(slot);
        self.try_dials(slot);
        self.schedule_wake(slot);
    }

    fn flush_frames(&mut self, slot: usize) {
        let node = &mut self.nodes[slot];
        while let Some((conn, frame)) = node.swarm.poll_transmit() {
            // An attacker's own `Swarm` only keeps its connections looking honest; what it
            // says is forged in `attack`.
            let Some(link) = node.link(conn).copied().filter(|_| !node.is_attacker()) else {
                continue;
            };
            let len = frame.len() as u64;
            self.counts.frames += 1;
            self.counts.bytes += len;
            self.counts.max_frame_bytes = self.counts.max_frame_bytes.max(len);
            self.trace
                .frame(self.now, node.uid, link.peer, frame.as_bytes());
            let at = self.now + latency_of(self.p.seed, node.uid, link.peer);
            let payload = self.payloads.put(frame.payload());
            self.queue.push(
                at,
                Ev::Deliver {
                    to: link.peer,
                    conn: link.peer_conn,
                    payload,
                },
            );
        }
    }

    fn flush_events(&mut self, slot: usize) {
        let now = self.instant();
        let dials = self.p.topology == Topology::Dial;
        // A message's events come in a run on one connection: look its link up once per run.
        let mut last: Option<Link> = None;
        while let Some((conn, event)) = self.nodes[slot].swarm.poll_event() {
            let link = match last.filter(|l| l.conn == conn) {
                Some(link) => link,
                None => match self.nodes[slot].link(conn).copied() {
                    Some(link) => link,
                    None => continue,
                },
            };
            last = Some(link);
            if self.is_crawler(slot) {
                self.crawler_heard(link.peer, &event);
            }
            if let Event::PeerAdded(peer) = &event {
                if let Some(uid) = World::node_uid(peer.addr) {
                    self.learn(slot, uid);
                }
            }
            if dials {
                let remote = node_addr(link.peer);
                self.nodes[slot].dialer.on_event(now, remote, &event);
            }
        }
    }

    fn schedule_wake(&mut self, slot: usize) {
        let node = &self.nodes[slot];
        let mut next = node.swarm.poll_timeout().map(|t| self.ns(t));
        let wants_dials = self.p.topology == Topology::Dial
            && node.busy() < self.p.degree as usize
            && node.in_flight < MAX_HALF_OPEN;
        if wants_dials {
            // A book that has nothing dialable now says when it will; a second's floor keeps
            // a book that answers "now" from spinning the loop.
            if let Some(t) = node.dialer.poll_timeout() {
                let t = self.ns(t).max(self.now + SECOND);
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        let Some(at) = next else {
            return;
        };
        if node.wake.is_none_or(|w| at < w) {
            let uid = node.uid;
            self.nodes[slot].wake = Some(at);
            self.queue.push(at, Ev::Wake(uid));
        }
    }

    /// A queued wake-up: only the earliest one queued for the node is live.
    pub(crate) fn wake(&mut self, uid: u32) {
        let Some(slot) = self.slot(uid) else {
            return;
        };
        if self.nodes[slot].wake != Some(self.now) {
            return;
        }
        self.nodes[slot].wake = None;
        let now = self.instant();
        self.nodes[slot].swarm.handle_timeout(now);
        self.settle(slot);
    }

    /// A payload arrives; a connection closed meanwhile drops it (the id's generation tells).
    pub(crate) fn deliver(&mut self, to: u32, conn: ConnectionId, payload: &[u8]) {
        let Some(slot) = self.slot(to) else {
            return;
        };
        let now = self.instant();
        let swarm = &mut self.nodes[slot].swarm;
        if !swarm.contains(conn) {
            return;
        }
        if swarm.handle_message(now, conn, payload).is_err() {
            self.counts.message_errors += 1;
        }
        self.settle(slot);
    }

    /// An attacker announces 50 new forged addresses on every connection and drops the
    /// previous 50: half are the victim's IP under fresh ports, half fake IPs.
    pub(crate) fn attack(&mut self, uid: u32) {
        let Some(slot) = self.slot(uid) else {
            return;
        };
        let dropped: Vec<_> = self.nodes[slot].attack.iter().map(|p| p.addr).collect();
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
        let payload = Bytes::from(message::encode_payload(&added, &dropped));
        let links = self.nodes[slot].links.clone();
        for link in links {
            self.counts.attacker_messages += 1;
            self.trace.frame(self.now, uid, link.peer, &payload);
            let at = self.now + latency_of(self.p.seed, uid, link.peer);
            let payload = self.payloads.put(payload.clone());
            let (to, conn) = (link.peer, link.peer_conn);
            self.queue.push(at, Ev::Deliver { to, conn, payload });
        }
        self.nodes[slot].attack = added;
        self.queue.push(self.now + ATTACK_INTERVAL, Ev::Attack(uid));
    }
}

/// The one-way latency of the link between nodes `a` and `b`.
fn latency_of(seed: u64, a: u32, b: u32) -> u64 {
    crate::world::link_latency(seed, u64::from(a), u64::from(b))
}
