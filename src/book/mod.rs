//! [`PeerBook`]: the torrent-level pool of candidates that PEX, trackers, the DHT and others
//! feed, and that tells the host whom to dial.
//!
//! BEP 11's security section: "PEX data is untrusted. It can be used to flood a swarm with
//! bogus peers, or to DDoS victim IP ranges", and its mitigations: do not take all
//! candidates from one PEX source, ignore one IP with many ports, and spread connections
//! across subnets with BEP 40. Each rule below cites the sentence it serves.

mod bep40;
mod compact;
mod config;
mod dial;
mod entry;
mod keyed;
mod policy;
mod rate;
mod sources;
mod types;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub use bep40::{bep40_priority, MIXED_FAMILY_PRIORITY};
pub use config::BookConfig;
pub use types::{Admission, Refusal, Source};

use crate::addr::canonical_addr;
use crate::event::Event;
use crate::peer::PeerFlags;
use compact::Stamp;
use entry::{ip_key, Dial, Entry, IpKey, Weakness};
use keyed::Key;
use rate::Window;
use sources::Sources;

/// The candidate pool of one torrent: sans-IO (no clock, no randomness), bounded, and built
/// for hostile input.
///
/// Decisions the rules leave open:
/// - **Subnet dials**: a sliding window (at most [`BookConfig::subnet_dials`] dials into one
///   /24 or /48 in any [`BookConfig::subnet_window`]), exact rather than a bucket's burst.
/// - **Source budget**: a token bucket of [`BookConfig::source_burst`] that refills the rest
///   of [`BookConfig::source_budget`] evenly over the hour, so a source's first 50 are always
///   admitted and no hour ever sees more than 200; the /24 (/48) group budget applies too.
/// - **Distrust**: a candidate counts as failed at its *first failed dial* (each counted
///   once, against every PEX source vouching for it then): the early reading, so a Sybil
///   source is cut off after ten dead dials, not fifty.
/// - **Ports**: only a non-PEX source changes the port of a known IP; PEX never does (stricter
///   than "not of a non-PEX or connected entry", so no PEX source can redirect a known IP).
/// - **Class** is the best any source ever gave the entry; vouches above 4 per entry are not
///   tracked (ranking saturates at 4).
/// - **Cost**: `poll_dial` and `poll_timeout` scan the entries (≤ `max_candidates`), `add`
///   is O(1) unless a full book must look for a weaker entry to evict.
///
/// ```
/// use std::time::Instant;
/// use ut_pex::{Admission, BookConfig, PeerBook, PeerFlags, Source};
/// let mut book = PeerBook::new(BookConfig::default(), [7; 16]);
/// let now = Instant::now();
/// let addr = "203.0.113.5:6881".parse().unwrap();
/// assert_eq!(book.add(now, addr, PeerFlags::EMPTY, Source::Tracker), Admission::Added);
/// assert_eq!(book.poll_dial(now), Some(addr));
/// book.connected(now, addr);
/// ```
#[derive(Debug)]
pub struct PeerBook {
    config: BookConfig,
    key: Key,
    entries: Vec<Entry>,
    index: HashMap<IpKey, u32, Key>,
    sources: Sources,
    /// IPs removed after repeated failures, oldest first, bounded by `max_removed`.
    removed: VecDeque<IpKey>,
    removed_set: HashSet<IpKey, Key>,
    windows: HashMap<[u8; 7], Window, Key>,
    in_flight: usize,
    local: [Option<IpAddr>; 2],
    local_addr: Option<SocketAddr>,
    last_now: Option<Instant>,
    /// The first instant the book saw: entries' retry times are kept relative to it.
    epoch: Option<Instant>,
    /// The weakest evictable non-class-0 entry found by the last scan (`None`: unknown), so a
    /// flood into a full book does not scan for every refused newcomer.
    pex_floor: Option<Weakness>,
}

impl PeerBook {
    /// A book with `config`; `secret` is the host's randomness, keying the tie-break and
    /// the maps' hash.
    pub fn new(config: BookConfig, secret: [u8; 16]) -> PeerBook {
        let key = Key::new(secret);
        PeerBook {
            config,
            key,
            entries: Vec::new(),
            index: HashMap::with_hasher(key),
            sources: Sources::new(key),
            removed: VecDeque::new(),
            removed_set: HashSet::with_hasher(key),
            windows: HashMap::with_hasher(key),
            in_flight: 0,
            local: [None, None],
            local_addr: None,
            last_now: None,
            epoch: None,
            pex_floor: None,
        }
    }

    /// Our own external address: refused as a candidate, and the other side of BEP 40.
    pub fn set_local_address(&mut self, addr: SocketAddr) {
        let addr = canonical_addr(addr);
        let slot = usize::from(addr.is_ipv6());
        if let Some(l) = self.local.get_mut(slot) {
            *l = Some(addr.ip());
        }
        self.local_addr = Some(addr);
        for e in &mut self.entries {
            e.priority = bep40_priority(addr, e.addr());
        }
        if let Some(i) = self.index.get(&ip_key(addr.ip())).copied() {
            self.remove_at(i as usize);
        }
    }

    /// Offers a candidate. `flags` are hints only and buy no rank (a forged `REACHABLE`
    /// would otherwise raise a fake, as in transmission).
    pub fn add(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        flags: PeerFlags,
        source: Source,
    ) -> Admission {
        let _ = flags;
        self.last_now = Some(now);
        let (addr, source) = (canonical_addr(addr), source.canonical());
        if let Err(r) = policy::check(addr, source, &self.local, &self.config) {
            return Admission::Refused(r);
        }
        let id = match self.sources.id(now, source, self.config.max_sources) {
            Ok(id) => id,
            Err(r) => return Admission::Refused(r),
        };
        let is_pex = matches!(source, Source::Pex(_));
        if is_pex && self.sources.distrusted(id, &self.config) {
            return Admission::Refused(Refusal::DistrustedSource);
        }
        let key = ip_key(addr.ip());
        if let Some(&i) = self.index.get(&key) {
            self.vouch(i as usize, id, addr.port(), source);
            return Admission::Known;
        }
        if is_pex && self.removed_set.contains(&key) {
            return Admission::Refused(Refusal::Removed);
        }
        self.admit_new(now, addr, id, source)
    }

    /// `source` no longer vouches for the entry of `addr`'s IP (a PEX `dropped`).
    pub fn withdraw(&mut self, now: Instant, addr: SocketAddr, source: Source) {
        self.last_now = Some(now);
        let Some(id) = self.sources.find(source) else {
            return;
        };
        let Some(i) = self.find(addr) else { return };
        self.unvouch(i, id);
        if self.entries.get(i).is_some_and(Entry::orphan) {
            self.remove_at(i);
        }
    }

    /// The connection `source` names ended (or the tracker forgot us): everything it vouched
    /// for is withdrawn at once. Its record (budget, distrust) stays, so reconnecting does
    /// not reset them.
    pub fn source_closed(&mut self, now: Instant, source: Source) {
        self.last_now = Some(now);
        let Some(id) = self.sources.find(source) else {
            return;
        };
        for i in (0..self.entries.len()).rev() {
            self.unvouch(i, id);
            if self.entries.get(i).is_some_and(Entry::orphan) {
                self.remove_at(i);
            }
        }
    }

    /// Feeds an [`Event`] from the connection to `remote`: `PeerAdded` is an `add` from
    /// `Source::Pex(remote)`, `PeerDropped` a `withdraw`. Returns the admission of an add.
    pub fn on_event(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        event: &Event,
    ) -> Option<Admission> {
        match event {
            Event::PeerAdded(peer) => {
                Some(self.add(now, peer.addr, peer.flags, Source::Pex(remote)))
            }
            Event::PeerDropped(addr) => {
                self.withdraw(now, *addr, Source::Pex(remote));
                None
            }
            _ => None,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the book holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the book holds exactly this `ip:port`.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        let addr = canonical_addr(addr);
        self.find(addr)
            .and_then(|i| self.entries.get(i))
            .is_some_and(|e| e.port == addr.port())
    }

    /// Source records held (at most [`BookConfig::max_sources`]).
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// The epoch of the entries' retry times, fixed at the first instant asked for.
    fn epoch(&mut self, now: Instant) -> Instant {
        *self.epoch.get_or_insert(now)
    }

    fn find(&self, addr: SocketAddr) -> Option<usize> {
        let ip = canonical_addr(addr).ip();
        self.index.get(&ip_key(ip)).map(|&i| i as usize)
    }

    /// A known IP offered again: one entry per IP (BEP 11: "ignore duplicate IPs that differ
    /// only by port"), so only the vouch and, from a non-PEX source, the port change.
    fn vouch(&mut self, i: usize, id: u16, port: u16, source: Source) {
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        e.class = e.class.min(source.class());
        // The priority is a function of our address and the entry's: only a port change can
        // change it (and `set_local_address` redoes every entry), so a PEX vouch, which
        // never changes the port, skips the CRC.
        let port_changed = !matches!(source, Source::Pex(_)) && e.port != port;
        if !matches!(source, Source::Pex(_)) {
            e.port = port;
            e.sticky = true;
        }
        if !e.vouchers.contains(id) && e.vouchers.push(id) {
            if let Some(r) = self.sources.get_mut(id) {
                r.vouches = r.vouches.saturating_add(1);
            }
        }
        if let Some(local) = self.local_addr.filter(|_| port_changed) {
            e.priority = bep40_priority(local, e.addr());
        }
    }

    fn unvouch(&mut self, i: usize, id: u16) {
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        let before = e.vouchers.len();
        e.vouchers.retain(|v| v != id);
        if e.vouchers.len() < before {
            self.pex_floor = None;
            if let Some(r) = self.sources.get_mut(id) {
                r.vouches = r.vouches.saturating_sub(1);
            }
        }
    }

    fn admit_new(&mut self, now: Instant, addr: SocketAddr, id: u16, source: Source) -> Admission {
        let mut entry = self.fresh_entry(addr, source);
        if !entry.vouchers.push(id) {
            return Admission::Refused(Refusal::BookFull);
        }
        if self.entries.len() >= self.config.max_candidates.max(1)
            && !self.make_room(&entry, source)
        {
            return Admission::Refused(Refusal::BookFull);
        }
        // BEP 11: "don't take all connection candidates from one PEX source".
        if let Err(r) = self.sources.spend(now, id, &self.config) {
            return Admission::Refused(r);
        }
        if let Some(r) = self.sources.get_mut(id) {
            r.vouches = r.vouches.saturating_add(1);
        }
        let key = entry.key;
        self.insert(entry);
        if !matches!(source, Source::Pex(_)) {
            self.forget_removed(key);
        }
        Admission::Added
    }

    fn fresh_entry(&self, addr: SocketAddr, source: Source) -> Entry {
        let key = ip_key(addr.ip());
        Entry {
            key,
            retry_at: Stamp::NONE,
            port: addr.port(),
            class: source.class(),
            failures: 0,
            dial: Dial::Idle,
            sticky: !matches!(source, Source::Pex(_)),
            ever_connected: false,
            priority: self.local_addr.map_or(0, |l| bep40_priority(l, addr)),
            tie: self.key.tie(&key),
            vouchers: Default::default(),
        }
    }

    fn insert(&mut self, entry: Entry) {
        if let Some(floor) = self.pex_floor {
            if entry.class != 0 {
                self.pex_floor = Some(floor.max(entry.weakness()));
            }
        }
        let Ok(i) = u32::try_from(self.entries.len()) else {
            return;
        };
        self.index.insert(entry.key, i);
        self.entries.push(entry);
    }

    /// Evicts the weakest evictable entry if `newcomer` is strictly stronger than it (never
    /// by tie-break alone); a PEX newcomer never evicts a class-0 entry.
    fn make_room(&mut self, newcomer: &Entry, source: Source) -> bool {
        let pex = matches!(source, Source::Pex(_));
        let need = newcomer.weakness();
        if pex && self.pex_floor.is_some_and(|floor| floor <= need) {
            return false;
        }
        let weakest = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.evictable() && !(pex && e.class == 0))
            .max_by_key(|(_, e)| e.weakness())
            .map(|(i, e)| (i, e.weakness()));
        match weakest {
            Some((i, w)) if w > need => {
                self.remove_at(i);
                self.pex_floor = None;
                true
            }
            other => {
                if pex {
                    self.pex_floor = Some(other.map_or((0, 0, 0), |(_, w)| w));
                }
                false
            }
        }
    }

    /// Removes entry `i`, releasing its vouches and its dial slot.
    fn remove_at(&mut self, i: usize) {
        if i >= self.entries.len() {
            return;
        }
        let e = self.entries.swap_remove(i);
        self.index.remove(&e.key);
        if let Some(moved) = self.entries.get(i) {
            self.index.insert(moved.key, i as u32);
        }
        for id in e.vouchers.iter() {
            if let Some(r) = self.sources.get_mut(id) {
                r.vouches = r.vouches.saturating_sub(1);
            }
        }
        if e.dial == Dial::InFlight {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
    }

    fn remember_removed(&mut self, key: IpKey) {
        if self.config.max_removed == 0 || !self.removed_set.insert(key) {
            return;
        }
        self.removed.push_back(key);
        while self.removed.len() > self.config.max_removed {
            if let Some(old) = self.removed.pop_front() {
                self.removed_set.remove(&old);
            }
        }
    }

    fn forget_removed(&mut self, key: IpKey) {
        if self.removed_set.remove(&key) {
            self.removed.retain(|k| *k != key);
        }
    }
}
