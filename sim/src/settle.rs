//! The host loop of one node after anything touched it, and the inputs that reach it.

use ut_pex::{Direction, Event, PeerFlags};

use crate::addr::{node_addr, node_of, pack, unpack, VICTIM};
use crate::node::Link;
use crate::params::Topology;
use crate::shard::{Env, Shard};
use crate::world::{link_latency, Ev, SECOND};

impl Shard {
    /// Frames onto the wire, events to the dial policy and the known set, dials out, and the
    /// next wake-up queued.
    pub(crate) fn settle(&mut self, env: &Env, local: usize) {
        self.flush_frames(env, local);
        self.flush_events(env, local);
        self.try_dials(env, local);
        self.schedule_wake(env, local);
    }

    fn flush_frames(&mut self, env: &Env, local: usize) {
        while let Some((conn, frame)) = self.nodes[local].swarm.poll_transmit() {
            let node = &self.nodes[local];
            // An attacker's own `Swarm` only keeps its connections looking honest; what it
            // says is forged in `attack`.
            let Some(link) = node.link(conn).copied().filter(|_| !node.is_attacker()) else {
                continue;
            };
            let uid = node.uid;
            let len = frame.len() as u64;
            self.counts.frames += 1;
            self.counts.bytes += len;
            self.counts.max_frame_bytes = self.counts.max_frame_bytes.max(len);
            let now = self.now;
            self.trace_of(uid)
                .frame(now, uid, link.peer, frame.as_bytes());
            let at = now + latency_of(env.p.seed, uid, link.peer);
            self.send(env, local, link.peer, at, frame.payload());
        }
    }

    fn flush_events(&mut self, env: &Env, local: usize) {
        let now = env.instant(self.now);
        let dials = env.p.topology == Topology::Dial;
        let node = &mut self.nodes[local];
        // A message's events come in a run on one connection: look its link up once per run.
        let mut last: Option<Link> = None;
        while let Some((conn, event)) = node.swarm.poll_event() {
            let link = match last.filter(|l| l.conn == conn) {
                Some(link) => link,
                None => match node.link(conn).copied() {
                    Some(link) => link,
                    None => continue,
                },
            };
            last = Some(link);
            if let Some(recorder) = node.crawler.as_deref_mut() {
                recorder.heard(link.peer, &event);
            }
            if let Event::PeerAdded(peer) = &event {
                if let (Some(uid), Some(known)) = (node_of(peer.addr), node.known.as_mut()) {
                    if uid != node.uid {
                        known.insert(uid);
                    }
                }
            }
            if dials {
                node.dialer.on_event(now, node_addr(link.peer), &event);
            }
        }
    }

    /// Sends what dials the node at `local` may: up to `degree` connections, at most
    /// [`MAX_HALF_OPEN`](crate::world::MAX_HALF_OPEN) in flight (the crawler more:
    /// [`crate::node::Node::dial_limits`]).
    fn try_dials(&mut self, env: &Env, local: usize) {
        if env.p.topology == Topology::Static {
            return;
        }
        let now = env.instant(self.now);
        let (degree, half_open) = self.nodes[local].dial_limits(env.p.degree);
        loop {
            let node = &mut self.nodes[local];
            if node.busy() >= degree || node.in_flight >= half_open {
                return;
            }
            let Some(addr) = node.dialer.next(now) else {
                return;
            };
            let target = node_of(addr);
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
            let at = self.now;
            self.trace_of(uid).dial(at, uid, addr);
            let rtt = 2 * link_latency(env.p.seed, u64::from(uid), word);
            self.send_world(
                local,
                at + rtt,
                Ev::Dial {
                    from: uid,
                    addr: word,
                },
            );
        }
    }

    fn schedule_wake(&mut self, env: &Env, local: usize) {
        let node = &self.nodes[local];
        let now = self.now;
        let mut next = node.swarm.poll_timeout().map(|t| env.ns(now, t));
        let (degree, half_open) = node.dial_limits(env.p.degree);
        let wants_dials =
            env.p.topology == Topology::Dial && node.busy() < degree && node.in_flight < half_open;
        if wants_dials {
            // A book that has nothing dialable now says when it will; a second's floor keeps
            // a book that answers "now" from spinning the loop.
            if let Some(t) = node.dialer.poll_timeout() {
                let t = env.ns(now, t).max(now + SECOND);
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        // A nanosecond later at the earliest: a wake-up never lands before the event
        // handled, so every queue only ever gets keys after the ones it popped.
        let Some(at) = next.map(|at| at.max(now + 1)) else {
            return;
        };
        if node.wake.is_none_or(|w| at < w) {
            let uid = node.uid;
            self.nodes[local].wake = Some(at);
            let seq = self.next_seq(local);
            self.queue.push(at, seq, Ev::Wake(uid));
        }
    }

    /// A queued wake-up: only the earliest one queued for the node is live.
    pub(crate) fn wake(&mut self, env: &Env, uid: u32) {
        let Some(local) = self.local(env, uid) else {
            return;
        };
        if self.nodes[local].wake != Some(self.now) {
            return;
        }
        self.nodes[local].wake = None;
        let now = env.instant(self.now);
        self.nodes[local].swarm.handle_timeout(now);
        self.settle(env, local);
    }

    /// A payload from node `from` arrives; a connection closed meanwhile drops it.
    pub(crate) fn deliver(&mut self, env: &Env, to: u32, from: u32, payload: &[u8]) {
        let Some(local) = self.local(env, to) else {
            return;
        };
        let Some(conn) = self.nodes[local].link_to(from) else {
            return;
        };
        let now = env.instant(self.now);
        let swarm = &mut self.nodes[local].swarm;
        if swarm.handle_message(now, conn, payload).is_err() {
            self.counts.message_errors += 1;
        }
        self.settle(env, local);
    }

    /// Node `from`'s dial to `addr` failed (refused, or unanswered).
    pub(crate) fn dial_failed(&mut self, env: &Env, from: u32, addr: u64) {
        let Some(local) = self.local(env, from) else {
            return;
        };
        let now = env.instant(self.now);
        let node = &mut self.nodes[local];
        node.in_flight = node.in_flight.saturating_sub(1);
        node.dialer.failed(now, unpack(addr));
        self.counts.dial_failures += 1;
        self.settle(env, local);
    }

    /// A dial between `uid` and `peer` was accepted: this end opens and speaks.
    pub(crate) fn connected(&mut self, env: &Env, uid: u32, peer: u32, outgoing: bool) {
        let Some(local) = self.local(env, uid) else {
            return;
        };
        if outgoing {
            let node = &mut self.nodes[local];
            node.in_flight = node.in_flight.saturating_sub(1);
        }
        self.open_end(env, local, peer, outgoing);
        self.settle(env, local);
    }

    /// Opens the node at `local`'s end of a connection to node `peer`: the BitTorrent and
    /// extended handshakes are taken as exchanged, PEX starts. Nothing is sent yet.
    pub(crate) fn open_end(&mut self, env: &Env, local: usize, peer: u32, outgoing: bool) {
        let now = env.instant(self.now);
        let node = &mut self.nodes[local];
        let listen = node_addr(peer);
        let (remote, direction) = if outgoing {
            (listen, Direction::Outgoing)
        } else {
            // The acceptor sees the dialler's ephemeral port; the handshake's `p` gives the
            // dial address, as in the wild.
            let port = 49_152 + (node.uid % 16_000) as u16;
            (
                std::net::SocketAddr::new(listen.ip(), port),
                Direction::Incoming,
            )
        };
        let conn = node.swarm.connect(now, remote, direction, PeerFlags::EMPTY);
        let hs = node
            .swarm
            .handle_extended_handshake(now, conn, &env.handshake);
        debug_assert!(hs.is_ok());
        node.swarm.start(now, conn);
        node.dialer.connected(now, listen);
        node.links.push(Link { conn, peer });
        self.learn(local, peer);
    }

    /// The node at `local` now knows of node `uid` (a neighbour, or an address learned).
    pub(crate) fn learn(&mut self, local: usize, uid: u32) {
        let node = &mut self.nodes[local];
        if let Some(recorder) = node.crawler.as_deref_mut() {
            recorder.learns(uid);
        }
        if let Some(known) = node.known.as_mut() {
            if node.uid != uid {
                known.insert(uid);
            }
        }
    }
}

/// The one-way latency of the link between nodes `a` and `b`.
pub(crate) fn latency_of(seed: u64, a: u32, b: u32) -> u64 {
    link_latency(seed, u64::from(a), u64::from(b))
}
