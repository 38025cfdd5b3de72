//! The simulated world: every node, the event queue, and the loop that runs them.
//!
//! Events are handled one at a time in time order ([`crate::sched`]); after each, the nodes it
//! touched are *settled*: their frames are put on the wire (delivered after the link's
//! latency), their events fed to their dial policy and known sets, their dials sent, and
//! their next wake-up queued. That is the whole host loop a real client runs, with the
//! network and the clock simulated.

use std::time::{Duration, Instant};

use ut_pex::handshake::HandshakeBuilder;
use ut_pex::{BookConfig, Config, ConnectionId, PeerBook, Swarm};

use crate::addr::{node_of, unpack, MAX_UIDS, PORT};
use crate::bits::Bits;
use crate::crawler::Crawler;
use crate::dialer::{Dialer, Naive};
use crate::node::{Kind, Node};
use crate::params::{Params, Policy, Topology};
use crate::payloads::Payloads;
use crate::rng::{mix, Rng};
use crate::sched::Queue;
use crate::trace::Trace;

/// Nanoseconds per protocol second and minute.
pub const SECOND: u64 = 1_000_000_000;
/// Nanoseconds per protocol minute.
pub const MINUTE: u64 = 60 * SECOND;
/// A dial nobody answers fails after this long.
pub const CONNECT_TIMEOUT: u64 = 5 * SECOND;
/// Dials in flight per node (the book's default `max_half_open`, for both policies).
pub const MAX_HALF_OPEN: u32 = 16;
/// An attacker sends its forged list on every connection this often (just over BEP 11's
/// minute, so receivers' flood limits never cut it off).
pub const ATTACK_INTERVAL: u64 = 65 * SECOND;
const NONE: u32 = u32::MAX;

/// What can happen.
#[derive(Debug)]
pub enum Ev {
    /// A node's `Swarm` or book asked to be woken now.
    Wake(u32),
    /// A ut_pex payload reaches node `to` on its connection `conn`.
    Deliver {
        /// The receiving node.
        to: u32,
        /// Its end of the connection.
        conn: ConnectionId,
        /// The payload's ticket in the world's [`Payloads`].
        payload: u32,
    },
    /// Node `from`'s dial reaches `addr` (a round trip after it was sent).
    Dial {
        /// The dialling node.
        from: u32,
        /// Whom it dialled ([`crate::addr::pack`]ed).
        addr: u64,
    },
    /// Nobody answered node `from`'s dial.
    DialTimeout {
        /// The dialling node.
        from: u32,
        /// Whom it dialled ([`crate::addr::pack`]ed).
        addr: u64,
    },
    /// A node's session ends.
    Leave(u32),
    /// Protocol minute `n` starts: measure.
    Minute(u32),
    /// An attacker's next forged announcement.
    Attack(u32),
}

/// What a run counts.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counts {
    /// ut_pex frames the honest nodes' `Swarm`s sent.
    pub frames: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// The largest of them.
    pub max_frame_bytes: u64,
    /// Dials sent.
    pub dials: u64,
    /// Dials to the victim's IP.
    pub victim_dials: u64,
    /// Dials that failed (refused, timed out).
    pub dial_failures: u64,
    /// Connections opened.
    pub connections: u64,
    /// Connections closed (by churn).
    pub disconnections: u64,
    /// Forged messages the attackers sent (one per connection per announcement).
    pub attacker_messages: u64,
    /// Messages a receiving `Swarm` refused.
    pub message_errors: u64,
    /// Nodes that joined after the start.
    pub joins: u64,
}

/// The simulation.
#[derive(Debug)]
pub struct World {
    pub(crate) p: Params,
    pub(crate) base: Instant,
    pub(crate) now: u64,
    pub(crate) queue: Queue<Ev>,
    /// The payloads of queued `Deliver`s.
    pub(crate) payloads: Payloads,
    /// Slots `0..nodes` are honest, the rest attackers; a leaver's slot goes to its joiner.
    pub(crate) nodes: Vec<Node>,
    /// uid → slot, `NONE` once the node left.
    slot_of: Vec<u32>,
    /// Honest live uids.
    pub(crate) live: Bits,
    pub(crate) live_count: u64,
    /// slot → index into `known`, `NONE` if not sampled.
    sample_of_slot: Vec<u32>,
    /// The known sets of the sampled slots' current nodes.
    pub(crate) known: Vec<Bits>,
    pub(crate) rng: Rng,
    pub(crate) trace: Trace,
    pub(crate) handshake: Vec<u8>,
    config: Config,
    pub(crate) attack_counter: u64,
    /// The counters of the run.
    pub counts: Counts,
    /// Known fraction at each minute so far.
    pub known_fraction: Vec<f64>,
    /// Victim dials at each minute so far (cumulative).
    pub victim_curve: Vec<u64>,
    /// Links open at each minute so far.
    pub links_curve: Vec<u64>,
    /// The measurement node of `--crawler`, if on.
    pub crawler: Option<Crawler>,
}

impl World {
    /// A world of `p`, with every node joined (and, for `static`, every link up) at time 0.
    pub fn new(p: Params) -> Self {
        let config = Config::default();
        let handshake = HandshakeBuilder::new()
            .extension("ut_pex", config.get_local_extension_id())
            .listen_port(PORT)
            .build();
        let total = (p.nodes + p.attackers) as usize;
        let mut sample_of_slot = vec![NONE; total];
        let step = (p.nodes / p.sample.clamp(1, p.nodes.max(1))).max(1);
        let sampled: Vec<usize> = (0..p.nodes as usize)
            .step_by(step as usize)
            .take(p.sample as usize)
            .collect();
        for (i, &s) in sampled.iter().enumerate() {
            sample_of_slot[s] = i as u32;
        }
        let p_crawler = p.crawler.map(|c| c.join_minute);
        let mut world = World {
            rng: Rng::new(p.seed, 1),
            known: vec![Bits::default(); sampled.len()],
            p,
            base: Instant::now(),
            now: 0,
            queue: Queue::default(),
            payloads: Payloads::default(),
            nodes: Vec::with_capacity(total),
            slot_of: Vec::new(),
            live: Bits::default(),
            live_count: 0,
            sample_of_slot,
            trace: Trace::default(),
            handshake,
            config,
            attack_counter: 0,
            counts: Counts::default(),
            known_fraction: Vec::new(),
            victim_curve: Vec::new(),
            links_curve: Vec::new(),
            crawler: p_crawler.map(Crawler::new),
        };
        world.populate();
        world
    }

    /// The run's fingerprint so far (see [`Trace`]).
    pub fn trace_hash(&self) -> String {
        self.trace.hex()
    }

    /// Runs every event up to the last protocol minute; `progress` hears each minute.
    pub fn run(&mut self, mut progress: impl FnMut(u32)) {
        while let Some((at, event)) = self.queue.pop() {
            self.now = at;
            if let Ev::Minute(m) = event {
                self.measure();
                self.crawler_minute(m);
                progress(m);
                if m >= self.p.minutes {
                    break;
                }
                self.queue.push(at + MINUTE, Ev::Minute(m + 1));
                continue;
            }
            self.handle(event);
        }
    }

    fn handle(&mut self, event: Ev) {
        match event {
            Ev::Wake(uid) => self.wake(uid),
            Ev::Deliver { to, conn, payload } => {
                if let Some(payload) = self.payloads.take(payload) {
                    self.deliver(to, conn, &payload);
                }
            }
            Ev::Dial { from, addr } => self.dial_arrives(from, addr),
            Ev::DialTimeout { from, addr } => self.dial_failed(from, unpack(addr)),
            Ev::Leave(uid) => self.leave(uid),
            Ev::Attack(uid) => self.attack(uid),
            Ev::Minute(_) => {}
        }
    }

    /// Every node joins at time 0; attackers start announcing within their first interval.
    fn populate(&mut self) {
        for slot in 0..self.p.nodes {
            let kind = Kind::Honest {
                reachable: self.rng.unit() >= self.p.unreachable,
            };
            self.spawn(slot as usize, kind);
        }
        for slot in self.p.nodes..self.p.nodes + self.p.attackers {
            let uid = self.spawn(slot as usize, Kind::Attacker);
            let first = self.rng.below(ATTACK_INTERVAL);
            self.queue.push(first, Ev::Attack(uid));
        }
        if self.p.topology == Topology::Static {
            self.build_static_overlay();
        }
        for slot in 0..self.nodes.len() {
            if self.p.topology == Topology::Dial {
                self.bootstrap(slot);
            }
            self.settle(slot);
        }
        self.queue.push(0, Ev::Minute(0));
    }

    /// A new node in `slot` (pushed if the slot is new), with a fresh uid.
    pub(crate) fn spawn(&mut self, slot: usize, kind: Kind) -> u32 {
        let uid = self.slot_of.len() as u32;
        assert!(uid < MAX_UIDS, "more nodes over the run than addresses");
        self.slot_of.push(slot as u32);
        let dialer = match self.p.policy {
            Policy::Book if kind.is_honest() => {
                let config = BookConfig::default().max_candidates(self.p.book_capacity);
                let secret = mix(self.p.seed ^ u64::from(uid).rotate_left(32)).to_le_bytes();
                let mut secret16 = [0u8; 16];
                secret16[..8].copy_from_slice(&secret);
                let mut book = PeerBook::new(config, secret16);
                book.set_local_address(crate::addr::node_addr(uid));
                Dialer::Book(Box::new(book))
            }
            _ => Dialer::Naive(Naive::default()),
        };
        let node = Node {
            uid,
            kind,
            swarm: Swarm::new(self.config.clone()),
            dialer,
            links: Vec::new(),
            in_flight: 0,
            wake: None,
            attack: Vec::new(),
        };
        if slot < self.nodes.len() {
            self.nodes[slot] = node;
        } else {
            self.nodes.push(node);
        }
        if kind.is_honest() {
            self.live.insert(uid);
            self.live_count += 1;
        }
        if let Some(k) = self.sampled(slot) {
            self.known[k] = Bits::default();
        }
        if self.p.session_minutes > 0.0 && kind.is_honest() {
            let session = self.rng.exponential(self.p.session_minutes * MINUTE as f64);
            self.queue.push(self.now + session as u64, Ev::Leave(uid));
        }
        uid
    }

    /// The slot of a live node.
    pub(crate) fn slot(&self, uid: u32) -> Option<usize> {
        let slot = *self.slot_of.get(uid as usize)?;
        (slot != NONE).then_some(slot as usize)
    }

    /// The node `uid` is gone.
    pub(crate) fn forget(&mut self, uid: u32) {
        if let Some(s) = self.slot_of.get_mut(uid as usize) {
            *s = NONE;
        }
        if self.live.contains(uid) {
            self.live.remove(uid);
            self.live_count -= 1;
        }
    }

    pub(crate) fn sampled(&self, slot: usize) -> Option<usize> {
        let k = *self.sample_of_slot.get(slot)?;
        (k != NONE).then_some(k as usize)
    }

    /// Slot `slot`'s node now knows of node `uid` (a neighbour, or an address learned).
    pub(crate) fn learn(&mut self, slot: usize, uid: u32) {
        if let Some(k) = self.sampled(slot) {
            if self.nodes[slot].uid != uid {
                self.known[k].insert(uid);
            }
        }
        if self.crawler.is_some() {
            self.crawler_learns(slot, uid);
        }
    }

    /// Whether `addr` is a node's (the only addresses a known set counts).
    pub(crate) fn node_uid(addr: std::net::SocketAddr) -> Option<u32> {
        node_of(addr)
    }

    /// The virtual time as the crate sees it.
    pub(crate) fn instant(&self) -> Instant {
        self.base + Duration::from_nanos(self.now)
    }

    /// An `Instant` the crate gave back, as virtual ns (never before now).
    pub(crate) fn ns(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.base).as_nanos();
        u64::try_from(ns).unwrap_or(u64::MAX).max(self.now)
    }

    /// One-way latency between two endpoints: 5–100 ms, fixed per pair.
    pub(crate) fn latency(&self, a: u64, b: u64) -> u64 {
        link_latency(self.p.seed, a, b)
    }

    /// Drops every node's `PeerBook` (the run is over), so the caller can measure the heap
    /// they held; a node keeps an empty naive dialer.
    pub fn release_books(&mut self) {
        for node in &mut self.nodes {
            node.dialer = Dialer::Naive(Naive::default());
        }
    }

    /// The mean over sampled live honest nodes of the share of the other live honest nodes
    /// they know.
    fn measure(&mut self) {
        let others = self.live_count.saturating_sub(1).max(1) as f64;
        let mut sum = 0.0;
        let mut n = 0u64;
        for slot in 0..self.nodes.len() {
            let Some(k) = self.sampled(slot) else {
                continue;
            };
            sum += self.known[k].count_common(&self.live) as f64 / others;
            n += 1;
        }
        self.known_fraction
            .push(if n == 0 { 0.0 } else { sum / n as f64 });
        self.victim_curve.push(self.counts.victim_dials);
        let ends: usize = self.nodes.iter().map(|n| n.links.len()).sum();
        self.links_curve.push(ends as u64 / 2);
    }
}

/// One-way latency between two endpoints: 5–100 ms, fixed per pair and seed.
pub(crate) fn link_latency(seed: u64, a: u64, b: u64) -> u64 {
    let (lo, hi) = (a.min(b), a.max(b));
    5_000_000 + mix(lo ^ hi.rotate_left(29) ^ seed) % 95_000_000
}

#[cfg(test)]
mod tests {
    /// Millions of events wait in the queue at once: each must stay small (a payload is a
    /// ticket, an address a word).
    #[test]
    fn events_stay_small() {
        assert!(std::mem::size_of::<super::Ev>() <= 24);
    }
}
