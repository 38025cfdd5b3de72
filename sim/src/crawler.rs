//! The measurement node of `--crawler`: a PEX-only client that joins late, knows only its
//! tracker answer (`--crawler-bootstrap` nodes, once), and is *connection greedy* like the
//! crawlers of `pex-scale.md` §1.2–1.3: it dials every address it learns, once, in the order
//! learned (the naive policy), with no limit on its connections, and accepts every incoming
//! one. It runs the crate's own `Swarm` like any node (it sends PEX too), but it is not one of
//! the swarm's honest nodes: it never leaves and no fraction counts it.
//!
//! Each protocol minute it records what a field crawler reports: the share of the live honest
//! nodes it has heard of, the share it is connected to, the distinct nodes that sent it PEX,
//! and the *observer coverage*: the share of live honest nodes named in its partners' current
//! PEX lists (each partner's announced neighbours, less what it dropped since). That last one
//! is the topology a Fauzie-style observer infers from PEX alone.
//!
//! What it hears is recorded in its own [`Node`] ([`Recorder`]), in its shard, as its events
//! are handled; the world joins it and reads its curves off it between windows, at each
//! minute.

use rustc_hash::{FxHashMap, FxHashSet};
use ut_pex::Event;

use crate::addr::node_of;
use crate::bits::Bits;
use crate::node::{Kind, Node};
use crate::world::World;

/// Dials the crawler keeps in flight: a crawler opens connections far faster than a client,
/// but a bounded number at once, like any socket-limited host.
pub const CRAWLER_HALF_OPEN: u32 = 64;

/// What the crawler heard, kept in its node and updated in its shard.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every node it has heard of: its tracker answer, its partners, every `PeerAdded`.
    known: Bits,
    /// The nodes that sent it at least one PEX entry.
    sources: Bits,
    /// Per partner (by uid), the nodes its PEX says it is connected to now.
    lists: FxHashMap<u32, FxHashSet<u32>>,
}

impl Recorder {
    /// It heard of node `uid`.
    pub(crate) fn learns(&mut self, uid: u32) {
        self.known.insert(uid);
    }

    /// A PEX event reached it from its partner `from`.
    pub(crate) fn heard(&mut self, from: u32, event: &Event) {
        let list = self.lists.entry(from).or_default();
        match event {
            Event::PeerAdded(peer) => {
                self.sources.insert(from);
                if let Some(uid) = node_of(peer.addr) {
                    list.insert(uid);
                    self.known.insert(uid);
                }
            }
            Event::PeerDropped(addr) => {
                if let Some(uid) = node_of(*addr) {
                    list.remove(&uid);
                }
            }
            _ => {}
        }
    }
}

/// The crawler's schedule and its curves (the world's).
#[derive(Debug, Default)]
pub struct Crawler {
    /// The protocol minute it joins at.
    pub join_minute: u32,
    /// Its slot, once it joined.
    slot: Option<usize>,
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

    /// One minute's point of each curve, from its node (`None` before it joined).
    fn record(&mut self, node: Option<&mut Node>, live: &Bits, live_count: u64) {
        let live_count = live_count.max(1) as f64;
        let (mut known, mut connected, mut named, mut sources) = (0, 0, 0, 0);
        if let Some(node) = node {
            let links = &node.links;
            if let Some(r) = node.crawler.as_deref_mut() {
                // Lists of partners no longer connected say nothing about the present.
                r.lists.retain(|p, _| links.iter().any(|l| l.peer == *p));
                let mut names = Bits::default();
                for uid in r.lists.values().flatten() {
                    names.insert(*uid);
                }
                known = r.known.count_common(live);
                named = names.count_common(live);
                // A set's members are those it has in common with itself.
                sources = r.sources.count_common(&r.sources);
            }
            connected = links.iter().filter(|l| live.contains(l.peer)).count() as u64;
        }
        self.known_fraction.push(known as f64 / live_count);
        self.connected_fraction.push(connected as f64 / live_count);
        self.observer_coverage.push(named as f64 / live_count);
        self.pex_sources.push(sources);
    }
}

impl World {
    /// Protocol minute `m`, between windows: measure the crawler, then let it join if its
    /// minute has come.
    pub(crate) fn crawler_minute(&mut self, m: u32) {
        let Some(mut c) = self.crawler.take() else {
            return;
        };
        let node = c.slot.map(|slot| {
            let (shard, local) = self.env.place(slot);
            &mut self.shards[shard].nodes[local]
        });
        c.record(node, &self.live, self.live_count);
        let joins = c.slot.is_none() && m >= c.join_minute;
        if joins {
            c.slot = Some(self.crawler_join());
        }
        self.crawler = Some(c);
    }

    /// The crawler takes a new slot after every other node's, asks the tracker once and
    /// settles; returns its slot.
    fn crawler_join(&mut self) -> usize {
        let slot = self.slots;
        self.spawn(slot, Kind::Crawler);
        let (shard, local) = self.env.place(slot);
        self.shards[shard].nodes[local].crawler = Some(Box::default());
        let count = self.env.p.crawler.map_or(0, |c| c.bootstrap);
        self.tracker_answer(slot, count);
        self.settle(slot);
        slot
    }
}
