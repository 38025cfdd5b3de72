//! One connection as the checks see it, whether a `PexState` hosts it or a `Swarm` does:
//! [`ConnView`] reads it, and [`check_conn`] / [`check_claims`] hold it to the model.

use ut_pex::{ConnectionId, Peer, PeerFlags, PexState, Stats, Swarm};

use std::net::SocketAddr;

use crate::ensure;
use crate::rules::{check_counters_grow, HostView, WireRules};
use crate::Check;

/// The per-connection surface `PexState` and `Swarm` share.
pub trait ConnView {
    /// `remote_extension_id`.
    fn remote_extension_id(&self) -> u8;
    /// `is_enabled`.
    fn is_enabled(&self) -> bool;
    /// `is_started`.
    fn is_started(&self) -> bool;
    /// `stats` (a closed connection has none).
    fn stats(&self) -> Option<Stats>;
    /// `pending_events`.
    fn pending_events(&self) -> usize;
    /// `remote_peers`, collected.
    fn claims(&self) -> Vec<Peer>;
    /// `remote_claims`.
    fn claim(&self, addr: SocketAddr) -> Option<PeerFlags>;
}

impl ConnView for PexState {
    fn remote_extension_id(&self) -> u8 {
        PexState::remote_extension_id(self)
    }
    fn is_enabled(&self) -> bool {
        PexState::is_enabled(self)
    }
    fn is_started(&self) -> bool {
        PexState::is_started(self)
    }
    fn stats(&self) -> Option<Stats> {
        Some(PexState::stats(self))
    }
    fn pending_events(&self) -> usize {
        PexState::pending_events(self)
    }
    fn claims(&self) -> Vec<Peer> {
        self.remote_peers().collect()
    }
    fn claim(&self, addr: SocketAddr) -> Option<PeerFlags> {
        self.remote_claims(addr)
    }
}

/// One connection of a `Swarm`.
#[derive(Debug, Clone, Copy)]
pub struct SwarmConn<'a>(pub &'a Swarm, pub ConnectionId);

impl ConnView for SwarmConn<'_> {
    fn remote_extension_id(&self) -> u8 {
        self.0.remote_extension_id(self.1)
    }
    fn is_enabled(&self) -> bool {
        self.0.is_enabled(self.1)
    }
    fn is_started(&self) -> bool {
        self.0.is_started(self.1)
    }
    fn stats(&self) -> Option<Stats> {
        self.0.stats(self.1)
    }
    fn pending_events(&self) -> usize {
        self.0.pending_events(self.1)
    }
    fn claims(&self) -> Vec<Peer> {
        self.0.remote_peers(self.1).collect()
    }
    fn claim(&self, addr: SocketAddr) -> Option<PeerFlags> {
        self.0.remote_claims(self.1, addr)
    }
}

/// The O(1) invariants of an open connection: its remote id, enabled and started flags and
/// frame count as the model says, no counter going down since `stats` (which it updates),
/// and the event bound: each address has at most one add and one drop queued, adds only
/// for claimed addresses, drops only for ones the host was told of (at most the cap: the
/// host polls in order, so it learns of a new peer only after the drops that made room
/// for it), plus at most one of Enabled / Disabled.
pub fn check_conn(wire: &WireRules, stats: &mut Stats, conn: &impl ConnView) -> Check {
    ensure!(
        conn.remote_extension_id() == wire.remote_id,
        "remote id {} != {}",
        conn.remote_extension_id(),
        wire.remote_id
    );
    ensure!(
        conn.is_enabled() == (wire.remote_id != 0 && !wire.limits.private),
        "is_enabled() wrong"
    );
    ensure!(conn.is_started() == wire.started, "is_started() wrong");
    let now = conn.stats().ok_or("an open connection has no stats")?;
    ensure!(
        now.frames_sent == wire.frames,
        "stats.frames_sent {} != {}",
        now.frames_sent,
        wire.frames
    );
    check_counters_grow(stats, &now)?;
    *stats = now;
    let bound = 2 * wire.limits.remote_cap + 1;
    ensure!(
        conn.pending_events() <= bound,
        "{} events pending (bound {bound})",
        conn.pending_events()
    );
    Ok(())
}

/// The invariants over the remote's claims, O(claims): capped, sorted, usable, readable one
/// by one, and, once every event is polled, what the host believes.
pub fn check_claims(wire: &WireRules, host: &HostView, conn: &impl ConnView) -> Check {
    let claims = conn.claims();
    let cap = wire.limits.remote_cap;
    ensure!(
        claims.len() <= cap,
        "{} remote peers over the cap {cap}",
        claims.len(),
    );
    ensure!(
        claims.windows(2).all(|w| w[0].addr < w[1].addr),
        "remote_peers() not sorted or duplicated"
    );
    for peer in &claims {
        ensure!(
            !crate::addr::is_mapped(peer.addr) && crate::addr::usable(peer.addr),
            "remote peer {} kept",
            peer.addr
        );
        ensure!(
            conn.claim(peer.addr) == Some(peer.flags),
            "remote_claims({}) wrong",
            peer.addr
        );
    }
    if conn.pending_events() == 0 {
        host.check_settled(&claims, conn.is_enabled())?;
    }
    Ok(())
}
