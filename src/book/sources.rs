//! The source records: budgets, distrust and vouch counts, bounded by `max_sources`.

use std::collections::HashMap;
use std::time::Instant;

use super::entry::subnet;
use super::keyed::Key;
use super::rate::Bucket;
use super::{BookConfig, Refusal, Source};

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) source: Source,
    pub(crate) budget: Bucket,
    /// Distinct candidates it vouched for that failed a dial.
    pub(crate) failed: u16,
    /// One of its candidates connected: never distrusted again.
    pub(crate) connected: bool,
    /// Entries it vouches for; a record with vouches is never evicted.
    pub(crate) vouches: u32,
    pub(crate) last: Instant,
}

#[derive(Debug)]
pub(crate) struct Sources {
    slots: Vec<Option<Record>>,
    free: Vec<u16>,
    index: HashMap<Source, u16, Key>,
    /// Budgets shared by all PEX sources of one /24 or /48.
    groups: HashMap<[u8; 7], Bucket, Key>,
}

impl Sources {
    pub(crate) fn new(key: Key) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::with_hasher(key),
            groups: HashMap::with_hasher(key),
        }
    }

    pub(crate) fn get(&self, id: u16) -> Option<&Record> {
        self.slots.get(usize::from(id)).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, id: u16) -> Option<&mut Record> {
        self.slots.get_mut(usize::from(id)).and_then(Option::as_mut)
    }

    pub(crate) fn find(&self, source: Source) -> Option<u16> {
        self.index.get(&source.canonical()).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The record of `source`, made if needed, evicting the idlest record that vouches for
    /// nothing when full.
    pub(crate) fn id(&mut self, now: Instant, source: Source, max: usize) -> Result<u16, Refusal> {
        let source = source.canonical();
        if let Some(id) = self.find(source) {
            if let Some(r) = self.get_mut(id) {
                r.last = now;
            }
            return Ok(id);
        }
        if self.index.len() >= max.min(usize::from(u16::MAX)) && !self.evict_idlest() {
            return Err(Refusal::TooManySources);
        }
        let record = Record {
            source,
            budget: Bucket::default(),
            failed: 0,
            connected: false,
            vouches: 0,
            last: now,
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let id = u16::try_from(self.slots.len()).map_err(|_| Refusal::TooManySources)?;
                self.slots.push(None);
                id
            }
        };
        if let Some(slot) = self.slots.get_mut(usize::from(id)) {
            *slot = Some(record);
        }
        self.index.insert(source, id);
        Ok(id)
    }

    fn evict_idlest(&mut self) -> bool {
        let idlest = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().filter(|r| r.vouches == 0).map(|r| (r.last, i)))
            .min();
        let Some((_, i)) = idlest else { return false };
        if let Some(record) = self.slots.get_mut(i).and_then(Option::take) {
            self.index.remove(&record.source);
        }
        self.free.extend(u16::try_from(i).ok());
        true
    }

    /// Whether this PEX source is distrusted.
    pub(crate) fn distrusted(&self, id: u16, config: &BookConfig) -> bool {
        self.get(id).is_some_and(|r| {
            matches!(r.source, Source::Pex(_)) && !r.connected && r.failed >= config.distrust_after
        })
    }

    /// Checks and, if both allow, spends one new candidate of the source and its group.
    pub(crate) fn spend(
        &mut self,
        now: Instant,
        id: u16,
        config: &BookConfig,
    ) -> Result<(), Refusal> {
        let Some(Source::Pex(remote)) = self.get(id).map(|r| r.source) else {
            return Ok(());
        };
        let (interval, burst) = (config.budget_interval(), config.source_burst.max(1));
        let group = subnet(remote.ip());
        let own_ok = self
            .get(id)
            .is_some_and(|r| r.budget.allows(now, interval, burst));
        // One lookup for the usual case, a known group; a new one may first need room.
        let group_bucket = match self.groups.get_mut(&group) {
            Some(bucket) => bucket,
            None => {
                if self.groups.len() >= config.max_sources {
                    self.groups.retain(|_, b| !b.is_full(now));
                    if self.groups.len() >= config.max_sources {
                        return Err(Refusal::SourceOverBudget);
                    }
                }
                self.groups.entry(group).or_default()
            }
        };
        if !own_ok || !group_bucket.allows(now, interval, burst) {
            return Err(Refusal::SourceOverBudget);
        }
        group_bucket.take(now, interval);
        if let Some(r) = self.get_mut(id) {
            r.budget.take(now, interval);
        }
        Ok(())
    }
}
