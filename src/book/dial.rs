//! Dialling: ranking, the in-flight and subnet limits, backoff and the dial outcomes.

use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::compact::Stamp;
use super::entry::{subnet, Dial, Entry};
use super::{PeerBook, Source};
use crate::addr::canonical_addr;

/// The rank of a dialable entry: smaller dials first. BEP 40's priority sits after class,
/// vouches and failures (libtorrent's order) because BEP 40 is a tie-break among equals: "a
/// DDoS attack is only as affective as the proportion of attackers to legitimate peers". Distrusted last, then class, more
/// vouches, fewer failures, higher BEP 40 priority, the keyed tie-break, and the IP so the
/// order is total (and so deterministic whatever the entries' order in memory).
type Rank = (bool, u8, Reverse<usize>, u8, Reverse<u32>, u32, [u8; 16]);

impl PeerBook {
    /// The best candidate to dial now, if any is dialable under the rules. The caller must
    /// answer it with [`PeerBook::connected`] or [`PeerBook::dial_failed`].
    pub fn poll_dial(&mut self, now: Instant) -> Option<SocketAddr> {
        self.last_now = Some(now);
        if self.in_flight >= self.config.max_half_open {
            return None;
        }
        let at = Stamp::clamped(self.epoch(now), now);
        // The subnet window is a map lookup: check it only for entries that would beat the
        // best so far, which in practice is a handful per scan.
        let mut best: Option<(Rank, usize)> = None;
        for (i, e) in self.entries.iter().enumerate().filter(|(_, e)| e.ready(at)) {
            let rank = self.rank(e);
            if best.as_ref().map_or(true, |(b, _)| rank < *b) && self.subnet_allows(now, e) {
                best = Some((rank, i));
            }
        }
        let (_, best) = best?;
        let e = self.entries.get_mut(best)?;
        e.dial = Dial::InFlight;
        let (addr, net) = (e.addr(), subnet(e.ip()));
        self.in_flight += 1;
        self.record_dial(now, net);
        Some(addr)
    }

    /// The dial to `addr`'s IP failed: back off 60·2^(k−1) s after the k-th failure in a row,
    /// remove after [`BookConfig::max_failures`](crate::BookConfig::max_failures).
    pub fn dial_failed(&mut self, now: Instant, addr: SocketAddr) {
        self.last_now = Some(now);
        let epoch = self.epoch(now);
        let Some(i) = self.find(addr) else { return };
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        if e.dial != Dial::InFlight {
            return; // Spurious: nothing was asked, nothing counts.
        }
        e.dial = Dial::Idle;
        e.failures = e.failures.saturating_add(1);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.pex_floor = None;
        let (k, first, key) = (e.failures, e.failures == 1 && !e.ever_connected, e.key);
        let backoff = 1u32
            .checked_shl(u32::from(k.saturating_sub(1)))
            .and_then(|m| self.config.backoff_base.checked_mul(m));
        let retry = backoff
            .and_then(|b| now.checked_add(b))
            .and_then(|t| Stamp::of(epoch, t));
        e.retry_at = retry.unwrap_or(Stamp::NONE);
        if first {
            let vouchers = e.vouchers;
            for id in vouchers.iter() {
                if let Some(r) = self
                    .sources
                    .get_mut(id)
                    .filter(|r| matches!(r.source, Source::Pex(_)))
                {
                    r.failed = r.failed.saturating_add(1);
                }
            }
        }
        let gone = k >= self.config.max_failures || retry.is_none();
        if gone {
            self.remove_at(i);
            self.remember_removed(key);
        } else if self.entries.get(i).is_some_and(Entry::orphan) {
            self.remove_at(i);
        }
    }

    /// A connection to `addr`'s IP is up (dialled by us or not): failures reset, the port is
    /// confirmed, and the PEX sources that vouched for it are trusted from now on. An address
    /// the book does not hold is recorded as a connected entry if there is room.
    pub fn connected(&mut self, now: Instant, addr: SocketAddr) {
        self.last_now = Some(now);
        let addr = canonical_addr(addr);
        let i = match self.find(addr) {
            Some(i) => i,
            None => match self.record_incoming(addr) {
                Some(i) => i,
                None => return,
            },
        };
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        if e.dial == Dial::InFlight {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        e.dial = Dial::Connected;
        e.failures = 0;
        e.retry_at = Stamp::NONE;
        e.sticky = true;
        e.ever_connected = true;
        let (vouchers, key) = (e.vouchers, e.key);
        for id in vouchers.iter() {
            if let Some(r) = self.sources.get_mut(id) {
                r.connected = true;
            }
        }
        self.forget_removed(key);
    }

    /// The connection to `addr`'s IP ended: it may be dialled again after
    /// [`BookConfig::reconnect_delay`](crate::BookConfig::reconnect_delay).
    pub fn disconnected(&mut self, now: Instant, addr: SocketAddr) {
        self.last_now = Some(now);
        let epoch = self.epoch(now);
        let Some(i) = self.find(addr) else { return };
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        match e.dial {
            Dial::Idle => return,
            Dial::InFlight => self.in_flight = self.in_flight.saturating_sub(1),
            Dial::Connected => {}
        }
        e.dial = Dial::Idle;
        let retry = now
            .checked_add(self.config.reconnect_delay)
            .and_then(|t| Stamp::of(epoch, t));
        e.retry_at = retry.unwrap_or(Stamp::NONE);
        // A dial that ends this way makes a never-connected entry evictable again.
        self.pex_floor = None;
        if retry.is_none() {
            // No representable instant to wait for: it can never be redialled.
            self.remove_at(i);
        } else if self.entries.get(i).is_some_and(Entry::orphan) {
            self.remove_at(i);
        }
    }

    /// When [`PeerBook::poll_dial`] may next return something without any other input,
    /// relative to the last `now` the book saw; `None` if only input can change that.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let now = self.last_now?;
        if self.in_flight >= self.config.max_half_open {
            return None;
        }
        self.entries
            .iter()
            .filter(|e| e.dial == Dial::Idle)
            .filter_map(|e| {
                let free = self.subnet_free_at(now, e);
                let retry = self.epoch.and_then(|epoch| e.retry_at.instant(epoch));
                match (retry, free) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b).or(Some(now)),
                }
            })
            .map(|t| t.max(now))
            .min()
    }

    fn rank(&self, e: &Entry) -> Rank {
        let distrusted = !e.vouchers.is_empty()
            && e.vouchers
                .iter()
                .all(|id| self.sources.distrusted(id, &self.config));
        (
            distrusted,
            e.class,
            Reverse(e.vouchers.len()),
            e.failures,
            Reverse(e.priority),
            e.tie,
            e.key,
        )
    }

    fn span(&self) -> Duration {
        self.config.subnet_window
    }

    /// BEP 11: "use BEP 40 priority to spread connects across subnets"; the window also keeps
    /// a victim /24 from being dialled by a swarm a Sybil source aimed at it.
    fn subnet_allows(&self, now: Instant, e: &Entry) -> bool {
        self.windows.get(&subnet(e.ip())).map_or(true, |w| {
            w.allows(now, self.span(), self.config.subnet_dials)
        })
    }

    fn subnet_free_at(&self, now: Instant, e: &Entry) -> Option<Instant> {
        self.windows
            .get(&subnet(e.ip()))
            .and_then(|w| w.free_at(now, self.span(), self.config.subnet_dials))
    }

    /// Records a dial into `net`; the window map stays bounded by forgetting idle windows,
    /// then the stalest one.
    fn record_dial(&mut self, now: Instant, net: [u8; 7]) {
        let span = self.span();
        let cap = self
            .config
            .max_candidates
            .saturating_add(self.config.max_half_open)
            .max(1);
        let new_window = !self.windows.contains_key(&net);
        if new_window && self.windows.len() == self.windows.capacity() {
            // An idle window allows and frees exactly as an absent one does: drop them
            // before the map would grow, so it holds about a window's span of dials, not
            // every subnet ever dialled (136 bytes each).
            self.windows.retain(|_, w| !w.is_idle(now, span));
        }
        if new_window && self.windows.len() >= cap {
            self.windows.retain(|_, w| !w.is_idle(now, span));
            if self.windows.len() >= cap {
                let stalest = self
                    .windows
                    .iter()
                    .min_by_key(|(_, w)| w.newest())
                    .map(|(k, _)| *k);
                if let Some(k) = stalest {
                    self.windows.remove(&k);
                }
            }
        }
        self.windows.entry(net).or_default().push(now, span);
    }

    /// Makes room for a connection the book did not know (an incoming peer).
    fn record_incoming(&mut self, addr: SocketAddr) -> Option<usize> {
        let entry = self.fresh_entry(addr, Source::Incoming);
        if self.entries.len() >= self.config.max_candidates.max(1)
            && !self.make_room(&entry, Source::Incoming)
        {
            return None;
        }
        self.insert(entry);
        self.entries.len().checked_sub(1)
    }
}
