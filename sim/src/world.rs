//! The simulated world: every node, the event queues, and the loop that runs them.
//!
//! Events are handled in key order ([`crate::sched`], [`crate::shard`]); after each, the nodes
//! it touched are *settled*: their frames are put on the wire (delivered after the link's
//! latency), their events fed to their dial policy and known sets, their dials sent, and
//! their next wake-up queued. That is the whole host loop a real client runs, with the
//! network and the clock simulated. The nodes are split into shards that run a window of
//! [`crate::shard::MIN_LATENCY`] at a time in parallel; events that touch two nodes at once are the
//! world's, between windows (`links.rs`).

use std::time::Instant;

use ut_pex::handshake::HandshakeBuilder;
use ut_pex::{BookConfig, Config, PeerBook, Swarm};

use crate::addr::{MAX_UIDS, PORT};
use crate::bits::Bits;
pub use crate::counts::Counts;
use crate::crawler::Crawler;
use crate::dialer::{Dialer, Naive};
use crate::node::{Kind, Node};
use crate::params::{Params, Policy, Topology};
use crate::rng::{mix, Rng};
use crate::sched::Queue;
use crate::shard::{seq, Env, Key, Shard, TraceEntry, WORLD};
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
/// What can happen.
#[derive(Clone, Copy, Debug)]
pub enum Ev {
    /// A node's `Swarm` or book asked to be woken now.
    Wake(u32),
    /// A ut_pex payload from node `from` reaches node `to`.
    Deliver {
        /// The receiving node.
        to: u32,
        /// The sending node (a pair of nodes has at most one connection over a run).
        from: u32,
        /// The payload's ticket in the receiving shard's [`crate::payloads::Payloads`].
        payload: u32,
    },
    /// Node `from`'s dial reaches `addr` (a round trip after it was sent): the world's.
    Dial {
        /// The dialling node.
        from: u32,
        /// Whom it dialled ([`crate::addr::pack`]ed).
        addr: u64,
    },
    /// Node `from`'s dial was refused, or nobody answered it.
    DialFailed {
        /// The dialling node.
        from: u32,
        /// Whom it dialled ([`crate::addr::pack`]ed).
        addr: u64,
    },
    /// A dial between `node` and `peer` was accepted: `node`'s end opens.
    Connected {
        /// The node whose end opens.
        node: u32,
        /// The other end.
        peer: u32,
        /// Whether `node` dialled.
        outgoing: bool,
    },
    /// A node's session ends.
    Leave(u32),
    /// Protocol minute `n` starts: measure.
    Minute(u32),
    /// An attacker's next forged announcement.
    Attack(u32),
}

/// The simulation.
#[derive(Debug)]
pub struct World {
    pub(crate) env: Env,
    /// The nodes (slots `0..nodes` are honest, the rest attackers; a leaver's slot goes to its
    /// joiner), split into shards.
    pub(crate) shards: Vec<Shard>,
    /// Slots filled.
    pub(crate) slots: usize,
    /// The world's own events: dials' arrivals, sessions' ends, attacks, minutes.
    pub(crate) main: Queue<Ev>,
    /// Events the world pushed, for their `seq`.
    pub(crate) pushes: u32,
    pub(crate) now: u64,
    /// The key of the world's event being handled.
    pub(crate) event: Key,
    /// Connections decided in this window and not yet opened: (dialler, acceptor).
    pub(crate) opening: Vec<(u32, u32)>,
    /// Honest live uids.
    pub(crate) live: Bits,
    pub(crate) live_count: u64,
    /// slot → whether its node's known set is tracked.
    sample_of_slot: Vec<bool>,
    sampled_count: u32,
    pub(crate) rng: Rng,
    pub(crate) trace: Trace,
    /// The shards' trace entries of one window, being put in key order.
    pub(crate) entries: Vec<TraceEntry>,
    pub(crate) attack_counter: u64,
    /// What the world's own events counted (the shards count the rest).
    pub(crate) own: Counts,
    pub(crate) pool: Option<rayon::ThreadPool>,
    /// The counters of the run (all of them once [`World::run`] returns).
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
    /// A world of `p`, with every node joined (and, for `static`, every link up) at time 0,
    /// run on one thread.
    pub fn new(p: Params) -> Self {
        World::with_threads(p, 1)
    }

    /// The same world, its nodes split into `threads` shards run on as many threads: the
    /// run, and its `trace_hash`, are the same for any `threads`.
    pub fn with_threads(p: Params, threads: usize) -> Self {
        let threads = threads.max(1);
        let config = Config::default();
        let handshake = HandshakeBuilder::new()
            .extension("ut_pex", config.get_local_extension_id())
            .listen_port(PORT)
            .build();
        let sample_of_slot = sample_slots(&p);
        let sampled_count = sample_of_slot.iter().filter(|&&s| s).count() as u32;
        let shards = (0..threads)
            .map(|index| Shard {
                index,
                ..Shard::default()
            })
            .collect();
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .ok()
            })
            .flatten();
        let crawler = p.crawler.map(|c| Crawler::new(c.join_minute));
        let mut world = World {
            rng: Rng::new(p.seed, 1),
            env: Env {
                p,
                base: Instant::now(),
                handshake,
                config,
                slot_of: Vec::new(),
                shards: threads,
            },
            shards,
            slots: 0,
            main: Queue::default(),
            pushes: 0,
            now: 0,
            event: (0, seq(WORLD, 0)),
            opening: Vec::new(),
            live: Bits::default(),
            live_count: 0,
            sample_of_slot,
            sampled_count,
            trace: Trace::default(),
            entries: Vec::new(),
            attack_counter: 0,
            own: Counts::default(),
            pool,
            counts: Counts::default(),
            known_fraction: Vec::new(),
            victim_curve: Vec::new(),
            links_curve: Vec::new(),
            crawler,
        };
        world.populate();
        world
    }

    /// The run's parameters.
    pub fn params(&self) -> &Params {
        &self.env.p
    }

    /// The run's fingerprint so far (see [`Trace`]).
    pub fn trace_hash(&self) -> String {
        self.trace.hex()
    }

    /// Threads (and shards) it runs on.
    pub fn threads(&self) -> usize {
        self.shards.len()
    }

    /// Honest nodes whose known set is tracked.
    pub fn sampled_nodes(&self) -> u32 {
        self.sampled_count
    }

    /// Every node, in slot order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        (0..self.slots).map(|s| self.node(s))
    }

    /// The next `seq` of the world's own pushes.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.pushes = self.pushes.wrapping_add(1);
        seq(WORLD, self.pushes)
    }

    /// Queues `event` with `key` in the shard of `slot`.
    pub(crate) fn push_to(&mut self, slot: usize, key: Key, event: Ev) {
        let shard = self.env.place(slot).0;
        self.shards[shard].queue.push(key.0, key.1, event);
    }

    /// The node in `slot`.
    pub(crate) fn node(&self, slot: usize) -> &Node {
        let (shard, local) = self.env.place(slot);
        &self.shards[shard].nodes[local]
    }

    /// Settles the node in `slot` now, within the world's event.
    pub(crate) fn settle(&mut self, slot: usize) {
        let (shard, local) = self.env.place(slot);
        let shard = &mut self.shards[shard];
        shard.now = self.now;
        shard.event = self.event;
        shard.settle(&self.env, local);
    }

    pub(crate) fn total_counts(&self) -> Counts {
        let mut total = self.own;
        for shard in &self.shards {
            total.add(&shard.counts);
        }
        total
    }

    /// Every node joins at time 0; attackers start announcing within their first interval.
    fn populate(&mut self) {
        for slot in 0..self.env.p.nodes {
            let kind = Kind::Honest {
                reachable: self.rng.unit() >= self.env.p.unreachable,
            };
            self.spawn(slot as usize, kind);
        }
        for slot in self.env.p.nodes..self.env.p.nodes + self.env.p.attackers {
            let uid = self.spawn(slot as usize, Kind::Attacker);
            let first = self.rng.below(ATTACK_INTERVAL);
            let seq = self.next_seq();
            self.main.push(first, seq, Ev::Attack(uid));
        }
        if self.env.p.topology == Topology::Static {
            self.build_static_overlay();
        }
        for slot in 0..self.slots {
            if self.env.p.topology == Topology::Dial {
                self.bootstrap(slot);
            }
            self.settle(slot);
        }
        self.end_of_step();
        let seq = self.next_seq();
        self.main.push(0, seq, Ev::Minute(0));
    }

    /// A new node in `slot` (pushed if the slot is new), with a fresh uid.
    pub(crate) fn spawn(&mut self, slot: usize, kind: Kind) -> u32 {
        let uid = self.env.slot_of.len() as u32;
        assert!(uid < MAX_UIDS, "more nodes over the run than addresses");
        self.env.slot_of.push(slot as u32);
        let p = &self.env.p;
        let dialer = match p.policy {
            Policy::Book if kind.is_honest() => {
                let config = BookConfig::default().max_candidates(p.book_capacity);
                let secret = mix(p.seed ^ u64::from(uid).rotate_left(32)).to_le_bytes();
                let mut secret16 = [0u8; 16];
                secret16[..8].copy_from_slice(&secret);
                let mut book = PeerBook::new(config, secret16);
                book.set_local_address(crate::addr::node_addr(uid));
                Dialer::Book(Box::new(book))
            }
            _ => Dialer::Naive(Naive::default()),
        };
        let sampled = self.sample_of_slot.get(slot).copied().unwrap_or(false);
        let node = Node {
            uid,
            kind,
            swarm: Swarm::new(self.env.config.clone()),
            dialer,
            links: Vec::new(),
            in_flight: 0,
            wake: None,
            attack: Vec::new(),
            pushes: 0,
            known: sampled.then(Bits::default),
            crawler: None,
        };
        let (shard, local) = self.env.place(slot);
        if slot < self.slots {
            self.shards[shard].nodes[local] = node;
        } else {
            debug_assert_eq!(slot, self.slots);
            self.shards[shard].nodes.push(node);
            self.slots += 1;
        }
        if kind.is_honest() {
            self.live.insert(uid);
            self.live_count += 1;
        }
        if self.env.p.session_minutes > 0.0 && kind.is_honest() {
            let session = self
                .rng
                .exponential(self.env.p.session_minutes * MINUTE as f64);
            let seq = self.next_seq();
            self.main
                .push(self.now + (session as u64).max(1), seq, Ev::Leave(uid));
        }
        uid
    }

    /// The node `uid` is gone.
    pub(crate) fn forget(&mut self, uid: u32) {
        self.env.forget(uid);
        if self.live.contains(uid) {
            self.live.remove(uid);
            self.live_count -= 1;
        }
    }

    /// Drops every node's `PeerBook` (the run is over), so the caller can measure the heap
    /// they held; a node keeps an empty naive dialer.
    pub fn release_books(&mut self) {
        for shard in &mut self.shards {
            for node in &mut shard.nodes {
                node.dialer = Dialer::Naive(Naive::default());
            }
        }
    }

    /// The mean over sampled live honest nodes of the share of the other live honest nodes
    /// they know, summed in slot order (so the same on any number of shards).
    pub(crate) fn measure(&mut self) {
        let others = self.live_count.saturating_sub(1).max(1) as f64;
        let mut sum = 0.0;
        let mut n = 0u64;
        for slot in 0..self.slots {
            let Some(known) = self.node(slot).known.as_ref() else {
                continue;
            };
            sum += known.count_common(&self.live) as f64 / others;
            n += 1;
        }
        self.known_fraction
            .push(if n == 0 { 0.0 } else { sum / n as f64 });
        self.victim_curve.push(self.total_counts().victim_dials);
        let ends: usize = self.nodes().map(|n| n.links.len()).sum();
        self.links_curve.push(ends as u64 / 2);
    }
}

/// slot → whether its node's known set is tracked: every `step`-th honest slot, `sample` of
/// them.
fn sample_slots(p: &Params) -> Vec<bool> {
    let mut sampled = vec![false; (p.nodes + p.attackers) as usize];
    let step = (p.nodes / p.sample.clamp(1, p.nodes.max(1))).max(1);
    for s in (0..p.nodes as usize)
        .step_by(step as usize)
        .take(p.sample as usize)
    {
        sampled[s] = true;
    }
    sampled
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

    /// The shards' windows are only independent if no link is faster than their length.
    #[test]
    fn no_link_is_faster_than_a_window() {
        let fastest = (0..100_000u64)
            .map(|i| super::link_latency(7, i, i.wrapping_mul(2_654_435_761) % 1_000_003))
            .min();
        assert!(fastest >= Some(crate::shard::MIN_LATENCY));
    }
}
