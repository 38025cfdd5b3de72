//! A `Swarm`'s live set, modelled from the host's calls alone: what the host added and has
//! not dropped, the dial address of every open connection, and the contacts BEP 11 lets
//! linger ("filling underpopulated lists": a connection that ended locally for one of
//! `DisconnectReason`'s reasons other than `Other` may stay advertised for one send
//! interval). The model is a bound, not a copy: the swarm's live set must lie within it,
//! and hold every peer the host added and every open connection's usable dial address.
//! (Whether a contact that may linger does is not checked: that depends on how many of its
//! family are live, which the bound does not follow.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ut_pex::{canonical_addr, DisconnectReason, Swarm};

use crate::addr::{usable, AddrMap, AddrSet};
use crate::ensure;
use crate::Check;

/// What the live set may hold.
#[derive(Debug)]
pub struct LiveBound {
    /// Usable peers the host added and has not dropped, canonical.
    host: AddrSet,
    /// Dial addresses of connections that ended for a reason that lets them linger, with
    /// the latest instant one ended.
    lingering: AddrMap<Instant>,
    /// Addresses the host dropped. `drop_peer` says a peer is gone; if a connection has it
    /// as its dial address too, which of the two the swarm believes is not documented, so
    /// the check that a dial is live skips these.
    host_dropped: AddrSet,
    /// Every dial address a connection had.
    dialled: AddrSet,
    /// `send_interval`: how long a contact lingers at most.
    interval: Duration,
}

impl LiveBound {
    /// An empty live set for a swarm with this send interval.
    pub fn new(interval: Duration) -> Self {
        Self {
            host: AddrSet::default(),
            lingering: AddrMap::default(),
            host_dropped: AddrSet::default(),
            dialled: AddrSet::default(),
            interval,
        }
    }

    /// `add_peer(addr)`.
    pub fn added(&mut self, addr: SocketAddr) {
        let addr = canonical_addr(addr);
        if usable(addr) {
            self.host.insert(addr);
        }
    }

    /// `drop_peer(addr)`.
    pub fn dropped(&mut self, addr: SocketAddr) {
        let addr = canonical_addr(addr);
        self.host.remove(&addr);
        self.host_dropped.insert(addr);
    }

    /// `disconnect(…, reason)` of a connection whose dial address was `dial`, `latest` the
    /// swarm's latest instant then. Stamped with `latest`, not the call's instant: the swarm
    /// lets contacts go in the order they left, so after the clock went backwards one may
    /// outlive its own interval, but not the latest instant's.
    pub fn closed(&mut self, dial: Option<SocketAddr>, reason: DisconnectReason, latest: Instant) {
        let at = latest;
        if let (Some(dial), false) = (dial, reason == DisconnectReason::Other) {
            let since = self.lingering.entry(dial).or_insert(at);
            *since = (*since).max(at);
        }
    }

    /// `handle_timeout`, the swarm's latest instant now `seen`: contacts whose interval is
    /// up are gone.
    pub fn expire(&mut self, seen: Instant) {
        let interval = self.interval;
        self.lingering
            .retain(|_, since| since.checked_add(interval).map_or(true, |end| end > seen));
    }

    /// A connection's dial address became known.
    pub fn dialled(&mut self, dial: SocketAddr) {
        self.dialled.insert(dial);
    }

    /// The swarm's live set against the bound; `dials` are the open connections' dial
    /// addresses.
    pub fn check(&self, swarm: &Swarm, dials: &[SocketAddr]) -> Check {
        for &dial in dials
            .iter()
            .filter(|&&d| usable(d) && !self.host_dropped.contains(&d))
        {
            ensure!(
                swarm.is_live(dial),
                "{dial} is an open connection's dial address but not live"
            );
        }
        // A host peer that is also some connection's dial address is one entry of the live
        // set to the swarm, which either side may end: only the others must stay live.
        for &addr in self.host.iter().filter(|a| !self.dialled.contains(a)) {
            ensure!(
                swarm.is_live(addr),
                "{addr} added by the host, never dropped, but not live"
            );
        }
        let mut count = 0;
        for peer in swarm.live() {
            count += 1;
            let addr = peer.addr;
            ensure!(
                self.host.contains(&addr)
                    || dials.contains(&addr)
                    || self.lingering.contains_key(&addr),
                "{addr} live, but neither added, connected nor lingering"
            );
        }
        ensure!(
            swarm.live_peers() == count,
            "live_peers() {} but live() has {count}",
            swarm.live_peers()
        );
        Ok(())
    }
}
