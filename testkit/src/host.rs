//! One connection as the checks see it, whether a `PexState` hosts it or a `Swarm` does:
//! [`Host`] drives it (the scenario tests and the [`Pair`](crate::pair::Pair) harness run
//! against either), [`ConnView`] reads it, and [`check_conn`] / [`check_claims`] hold it to
//! the model.

use ut_pex::{
    Config, ConnectionId, Direction, Event, Frame, HandshakeError, MessageError, Peer, PeerFlags,
    PexState, Stats, Swarm,
};

use std::net::SocketAddr;
use std::time::Instant;

use crate::ensure;
use crate::rules::{check_counters_grow, HostView, WireRules};
use crate::Check;

/// One PEX connection driven through `PexState`'s methods, so that a scenario is written
/// once and runs against a `PexState` and against a one-connection `Swarm`.
pub trait Host: Sized {
    /// A new connection at `now`, stopped and disabled; `remote` is the remote's address
    /// if the host knows it (`PexState::set_remote_address`).
    fn open(config: Config, now: Instant, remote: Option<SocketAddr>) -> Self;
    /// `local_extension_id`.
    fn local_extension_id(&self) -> Option<u8>;
    /// `remote_extension_id`.
    fn remote_extension_id(&self) -> u8;
    /// `is_enabled`.
    fn is_enabled(&self) -> bool;
    /// `is_started`.
    fn is_started(&self) -> bool;
    /// `remote_peers`, collected.
    fn remote_peers(&self) -> std::vec::IntoIter<Peer>;
    /// `remote_claims`.
    fn remote_claims(&self, addr: SocketAddr) -> Option<PeerFlags>;
    /// `stats`.
    fn stats(&self) -> Stats;
    /// `pending_events`.
    fn pending_events(&self) -> usize;
    /// `live_peers`.
    fn live_peers(&self) -> usize;
    /// `heap_bytes`.
    fn heap_bytes(&self) -> usize;
    /// `handle_extended_handshake`.
    fn handle_extended_handshake(
        &mut self,
        now: Instant,
        payload: &[u8],
    ) -> Result<(), HandshakeError>;
    /// `handle_message`.
    fn handle_message(&mut self, now: Instant, payload: &[u8]) -> Result<(), MessageError>;
    /// `handle_timeout`.
    fn handle_timeout(&mut self, now: Instant);
    /// `start`.
    fn start(&mut self, now: Instant);
    /// `stop`.
    fn stop(&mut self);
    /// `add_peer`.
    fn add_peer(&mut self, addr: SocketAddr, flags: PeerFlags);
    /// `drop_peer`.
    fn drop_peer(&mut self, addr: SocketAddr);
    /// `poll_transmit`.
    fn poll_transmit(&mut self) -> Option<Frame>;
    /// `poll_event`.
    fn poll_event(&mut self) -> Option<Event>;
    /// `poll_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
}

impl Host for PexState {
    fn open(config: Config, _now: Instant, remote: Option<SocketAddr>) -> Self {
        let mut state = PexState::new(config);
        if let Some(remote) = remote {
            state.set_remote_address(remote);
        }
        state
    }
    fn local_extension_id(&self) -> Option<u8> {
        PexState::local_extension_id(self)
    }
    fn remote_extension_id(&self) -> u8 {
        PexState::remote_extension_id(self)
    }
    fn is_enabled(&self) -> bool {
        PexState::is_enabled(self)
    }
    fn is_started(&self) -> bool {
        PexState::is_started(self)
    }
    fn remote_peers(&self) -> std::vec::IntoIter<Peer> {
        PexState::remote_peers(self).collect::<Vec<_>>().into_iter()
    }
    fn remote_claims(&self, addr: SocketAddr) -> Option<PeerFlags> {
        PexState::remote_claims(self, addr)
    }
    fn stats(&self) -> Stats {
        PexState::stats(self)
    }
    fn pending_events(&self) -> usize {
        PexState::pending_events(self)
    }
    fn live_peers(&self) -> usize {
        PexState::live_peers(self)
    }
    fn heap_bytes(&self) -> usize {
        PexState::heap_bytes(self)
    }
    fn handle_extended_handshake(
        &mut self,
        now: Instant,
        payload: &[u8],
    ) -> Result<(), HandshakeError> {
        PexState::handle_extended_handshake(self, now, payload)
    }
    fn handle_message(&mut self, now: Instant, payload: &[u8]) -> Result<(), MessageError> {
        PexState::handle_message(self, now, payload)
    }
    fn handle_timeout(&mut self, now: Instant) {
        PexState::handle_timeout(self, now);
    }
    fn start(&mut self, now: Instant) {
        PexState::start(self, now);
    }
    fn stop(&mut self) {
        PexState::stop(self);
    }
    fn add_peer(&mut self, addr: SocketAddr, flags: PeerFlags) {
        PexState::add_peer(self, addr, flags);
    }
    fn drop_peer(&mut self, addr: SocketAddr) {
        PexState::drop_peer(self, addr);
    }
    fn poll_transmit(&mut self) -> Option<Frame> {
        PexState::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        PexState::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        PexState::poll_timeout(self)
    }
}

/// The remote of a [`OneConnSwarm`] whose address the scenario does not give: a private
/// address (so, as for a `PexState` that was told none, local-scope peers it sends are
/// kept) with an ephemeral port, far from the scenario tests' addresses.
pub const UNNAMED_REMOTE: &str = "10.255.0.1:50000";

/// A `Swarm` with one connection: `PexState`'s methods mapped onto `Swarm`'s for that
/// connection, its outputs checked to name it.
///
/// The connection is incoming (`Direction::Incoming`), so, as for a `PexState`, the live set
/// holds only what the host adds, until the remote's handshake gives its listen port: then
/// the remote itself is live too (a `Swarm` advertises it to its other connections), never
/// sent to it, which [`Host::live_peers`] and [`Host::heap_bytes`] show.
#[derive(Debug)]
pub struct OneConnSwarm {
    /// The swarm.
    pub swarm: Swarm,
    /// Its one connection.
    pub id: ConnectionId,
}

impl Host for OneConnSwarm {
    fn open(config: Config, now: Instant, remote: Option<SocketAddr>) -> Self {
        let mut swarm = Swarm::new(config);
        let remote = remote.unwrap_or_else(|| UNNAMED_REMOTE.parse().unwrap());
        let id = swarm.connect(now, remote, Direction::Incoming, PeerFlags::EMPTY);
        Self { swarm, id }
    }
    fn local_extension_id(&self) -> Option<u8> {
        self.swarm.local_extension_id()
    }
    fn remote_extension_id(&self) -> u8 {
        self.swarm.remote_extension_id(self.id)
    }
    fn is_enabled(&self) -> bool {
        self.swarm.is_enabled(self.id)
    }
    fn is_started(&self) -> bool {
        self.swarm.is_started(self.id)
    }
    fn remote_peers(&self) -> std::vec::IntoIter<Peer> {
        let peers: Vec<Peer> = self.swarm.remote_peers(self.id).collect();
        peers.into_iter()
    }
    fn remote_claims(&self, addr: SocketAddr) -> Option<PeerFlags> {
        self.swarm.remote_claims(self.id, addr)
    }
    fn stats(&self) -> Stats {
        self.swarm.stats(self.id).expect("the connection is open")
    }
    fn pending_events(&self) -> usize {
        self.swarm.pending_events(self.id)
    }
    fn live_peers(&self) -> usize {
        self.swarm.live_peers()
    }
    fn heap_bytes(&self) -> usize {
        self.swarm.heap_bytes()
    }
    fn handle_extended_handshake(
        &mut self,
        now: Instant,
        payload: &[u8],
    ) -> Result<(), HandshakeError> {
        self.swarm.handle_extended_handshake(now, self.id, payload)
    }
    fn handle_message(&mut self, now: Instant, payload: &[u8]) -> Result<(), MessageError> {
        self.swarm.handle_message(now, self.id, payload)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.swarm.handle_timeout(now);
    }
    fn start(&mut self, now: Instant) {
        self.swarm.start(now, self.id);
    }
    fn stop(&mut self) {
        self.swarm.stop(self.id);
    }
    fn add_peer(&mut self, addr: SocketAddr, flags: PeerFlags) {
        self.swarm.add_peer(addr, flags);
    }
    fn drop_peer(&mut self, addr: SocketAddr) {
        self.swarm.drop_peer(addr);
    }
    fn poll_transmit(&mut self) -> Option<Frame> {
        let (id, frame) = self.swarm.poll_transmit()?;
        assert_eq!(
            id, self.id,
            "a frame for a connection the swarm does not have"
        );
        Some(frame)
    }
    fn poll_event(&mut self) -> Option<Event> {
        let (id, event) = self.swarm.poll_event()?;
        assert_eq!(
            id, self.id,
            "an event for a connection the swarm does not have"
        );
        Some(event)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.swarm.poll_timeout()
    }
}

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

impl<H: Host> ConnView for H {
    fn remote_extension_id(&self) -> u8 {
        Host::remote_extension_id(self)
    }
    fn is_enabled(&self) -> bool {
        Host::is_enabled(self)
    }
    fn is_started(&self) -> bool {
        Host::is_started(self)
    }
    fn stats(&self) -> Option<Stats> {
        Some(Host::stats(self))
    }
    fn pending_events(&self) -> usize {
        Host::pending_events(self)
    }
    fn claims(&self) -> Vec<Peer> {
        Host::remote_peers(self).collect()
    }
    fn claim(&self, addr: SocketAddr) -> Option<PeerFlags> {
        Host::remote_claims(self, addr)
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
    check_claim_list(wire, &claims, conn)?;
    if conn.pending_events() == 0 {
        host.check_settled(&claims, conn.is_enabled())?;
    }
    Ok(())
}

/// [`check_claims`] for a connection whose claims were `last` at the previous check (which
/// this updates). Nothing about the list is checked again while `remote_peers()` is what it
/// was (a list that passed passes again); when it changed, the list is checked whole (capped,
/// sorted, usable) and read back one by one where it changed: each new or re-flagged claim
/// through `remote_claims`, and each claim that left must read back as none. The host's view
/// is compared whenever every event is polled.
pub fn check_claims_since(
    wire: &WireRules,
    host: &HostView,
    conn: &impl ConnView,
    last: &mut Vec<Peer>,
) -> Check {
    let claims = conn.claims();
    if claims != *last {
        check_claim_shape(wire, &claims)?;
        // A merge walk of the two sorted lists.
        let (mut i, mut j) = (0, 0);
        while i < last.len() || j < claims.len() {
            let order = match (last.get(i), claims.get(j)) {
                (Some(old), Some(new)) => old.addr.cmp(&new.addr),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            if order.is_lt() {
                let gone = last[i].addr;
                ensure!(
                    conn.claim(gone).is_none(),
                    "remote_claims({gone}) after it left remote_peers()"
                );
                i += 1;
                continue;
            }
            let peer = claims[j];
            if order.is_gt() || last[i].flags != peer.flags {
                ensure!(
                    conn.claim(peer.addr) == Some(peer.flags),
                    "remote_claims({}) wrong",
                    peer.addr
                );
            }
            if order.is_eq() {
                i += 1;
            }
            j += 1;
        }
        *last = claims;
    }
    if conn.pending_events() == 0 {
        host.check_settled(last, conn.is_enabled())?;
    }
    Ok(())
}

/// The invariants of a list of claims that need no lookup: capped, sorted, usable.
pub fn check_claim_shape(wire: &WireRules, claims: &[Peer]) -> Check {
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
    for peer in claims {
        ensure!(
            !crate::addr::is_mapped(peer.addr) && crate::addr::usable(peer.addr),
            "remote peer {} kept",
            peer.addr
        );
    }
    Ok(())
}

/// The invariants of one list of claims: [`check_claim_shape`], and each claim readable
/// one by one through `remote_claims`.
pub fn check_claim_list(wire: &WireRules, claims: &[Peer], conn: &impl ConnView) -> Check {
    check_claim_shape(wire, claims)?;
    for peer in claims {
        ensure!(
            conn.claim(peer.addr) == Some(peer.flags),
            "remote_claims({}) wrong",
            peer.addr
        );
    }
    Ok(())
}
