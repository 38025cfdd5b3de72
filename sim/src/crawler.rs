//! The measurement node of `--crawler`: a PEX-only client that joins late, knows only its
//! tracker answer (`--crawler-bootstrap` nodes, once), and is *connection greedy* like the crawlers of `pex-scale.md` §1.2–1.3:
//! it dials every address it learns, once, in the order learned (the naive policy), with no
//! limit on its connections, and accepts every incoming one. It runs the crate's own `Swarm`
//! like any node (it sends PEX too), but it is not one of the swarm's honest nodes: it never
//! leaves and no fraction counts it.
//!
//! Each protocol minute it records what a field crawler reports: the share of the live honest
//! nodes it has heard of, the share it is connected to, the distinct nodes that sent it PEX,
//! and the *observer coverage*: the share of live honest nodes named in its partners' current
//! PEX lists (each partner's announced neighbours, less what it dropped since). That last one
//! is the topology a Fauzie-style observer infers from PEX alone.

use rustc_hash::{FxHashMap, FxHashSet};
use ut_pex::Event;

use crate::bits::Bits;
use crate::node::Kind;
use crate::world::{World, MAX_HALF_OPEN};

/// Dials the crawler keeps in flight: a crawler opens connections far faster than a client,
/// but a bounded number at once, like any socket-limited host.
pub const CRAWLER_HALF_OPEN: u32 = 64;

/// The crawler's state and its curves.
#[derive(Debug, Default)]
pub struct Crawler {
    /// The protocol minute it joins at.
    pub join_minute: u32,
    /// Its slot, once it joined.
    slot: Option<usize>,
    /// Every node it has heard of: its tracker answer, its partners, every `PeerAdded`.
    known: Bits,
    /// The nodes that sent it at least one PEX entry.
    sources: Bits,
    /// Per partner (by uid), the nodes its PEX says it is connected to now.
    lists: FxHashMap<u32, FxHashSet<u32>>,
    /// Per minute: share of live honest nodes known.
    pub known_fraction: Vec<f64>,
    /// Per minute: share of live honest nodes connected to.
    pub connected_fraction: Vec<f64>,
    /// Per minute: share of live honest nodes named by the partners' current PEX lists.
    pub observer_coverage: Vec<f64>,
    /// Per minute: distinct nodes that sent it PEX so far (Tribler's "PEX sources").
    pub pex_sources: Vec<u64>,
}

/// The crawler's part of `summary.json` (flattened into it; absent without `--crawler`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct CrawlerSummary {
    /// The protocol minute it joined at.
    pub crawler_join_minute: u32,
    /// Entry i: at minute i, the share of live honest nodes it knows (0 before it joins).
    pub crawler_known_fraction: Vec<f64>,
    /// Entry i: the share of live honest nodes it is connected to.
    pub crawler_connected_fraction: Vec<f64>,
    /// Entry i: the share of live honest nodes its partners' current PEX lists name.
    pub observer_coverage: Vec<f64>,
    /// Entry i: distinct nodes that have sent it PEX entries by minute i.
    pub crawler_pex_sources: Vec<u64>,
}

impl Crawler {
    /// A crawler that will join at `join_minute`.
    pub fn new(join_minute: u32) -> Self {
        Crawler {
            join_minute,
            ..Crawler::default()
        }
    }

    /// Its curves, for the summary.
    pub fn summary(&self) -> CrawlerSummary {
        CrawlerSummary {
            crawler_join_minute: self.join_minute,
            crawler_known_fraction: self.known_fraction.clone(),
            crawler_connected_fraction: self.connected_fraction.clone(),
            observer_coverage: self.observer_coverage.clone(),
            crawler_pex_sources: self.pex_sources.clone(),
        }
    }
}

impl World {
    /// Whether `slot` is the crawler's.
    pub(crate) fn is_crawler(&self, slot: usize) -> bool {
        self.crawler.as_ref().is_some_and(|c| c.slot == Some(slot))
    }

    /// `(connections, dials in flight)` the node in `slot` may reach: the crawler has no
    /// connection limit.
    pub(crate) fn dial_limits(&self, slot: usize) -> (usize, u32) {
        if self.is_crawler(slot) {
            (usize::MAX, CRAWLER_HALF_OPEN)
        } else {
            (self.p.degree as usize, MAX_HALF_OPEN)
        }
    }

    /// Incoming connections the node in `slot` accepts in all: the crawler takes every one.
    pub(crate) fn accept_cap_of(&self, slot: usize) -> usize {
        if self.is_crawler(slot) {
            usize::MAX
        } else {
            self.p.accept_cap()
        }
    }

    /// The crawler (if any) heard of node `uid` while in `slot`.
    pub(crate) fn crawler_learns(&mut self, slot: usize, uid: u32) {
        if let Some(c) = self.crawler.as_mut().filter(|c| c.slot == Some(slot)) {
            c.known.insert(uid);
        }
    }

    /// A PEX event reached the crawler from its partner `from`.
    pub(crate) fn crawler_heard(&mut self, from: u32, event: &Event) {
        let Some(c) = self.crawler.as_mut() else {
            return;
        };
        let list = c.lists.entry(from).or_default();
        match event {
            Event::PeerAdded(peer) => {
                c.sources.insert(from);
                if let Some(uid) = World::node_uid(peer.addr) {
                    list.insert(uid);
                }
            }
            Event::PeerDropped(addr) => {
                if let Some(uid) = World::node_uid(*addr) {
                    list.remove(&uid);
                }
            }
            _ => {}
        }
    }

    /// Protocol minute `m`: measure the crawler, then let it join if its minute has come.
    pub(crate) fn crawler_minute(&mut self, m: u32) {
        let Some(mut c) = self.crawler.take() else {
            return;
        };
        let live = self.live_count.max(1) as f64;
        let (mut connected, mut named) = (0u64, Bits::default());
        if let Some(slot) = c.slot {
            let links = &self.nodes[slot].links;
            connected = links.iter().filter(|l| self.live.contains(l.peer)).count() as u64;
            // Lists of partners no longer connected say nothing about the present.
            c.lists.retain(|p, _| links.iter().any(|l| l.peer == *p));
            for uid in c.lists.values().flatten() {
                named.insert(*uid);
            }
        }
        c.known_fraction
            .push(c.known.count_common(&self.live) as f64 / live);
        c.connected_fraction.push(connected as f64 / live);
        c.observer_coverage
            .push(named.count_common(&self.live) as f64 / live);
        // A set's members are those it has in common with itself.
        c.pex_sources.push(c.sources.count_common(&c.sources));
        let joins = c.slot.is_none() && m >= c.join_minute;
        self.crawler = Some(c);
        if joins {
            self.crawler_join();
        }
    }

    /// The crawler takes a new slot after every other node's and asks the tracker once.
    fn crawler_join(&mut self) {
        let slot = self.nodes.len();
        if let Some(c) = self.crawler.as_mut() {
            c.slot = Some(slot);
        }
        self.spawn(slot, Kind::Crawler);
        let count = self.p.crawler.map_or(0, |c| c.bootstrap);
        self.tracker_answer(slot, count);
        self.settle(slot);
    }
}
