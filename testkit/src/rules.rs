//! The rules, written once: [`WireRules`] (what a connection may send) and [`HostView`]
//! (what its host learned from events), used for `PexState` and for every connection of a
//! `Swarm` alike.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ut_pex::{Config, Event, Frame, Peer, PeerFlags, PexMessage, Stats, MAX_PEERS_PER_MESSAGE};

use crate::addr::{is_mapped, usable, AddrSet};
use crate::codec::check_frame_header;
use crate::ensure;
use crate::reference::{reference_top, RefTop, RefValue};
use crate::Check;

/// The limits of a config the checks need.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `send_interval`.
    pub interval: Duration,
    /// `initial_max_peers`.
    pub initial_max: usize,
    /// `max_entries_per_frame`.
    pub per_frame: usize,
    /// `max_remote_peers`.
    pub remote_cap: usize,
    /// `max_message_size`.
    pub max_message: usize,
    /// `private`.
    pub private: bool,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &Config) -> Self {
        Self {
            interval: config.get_send_interval(),
            initial_max: config.get_initial_max_peers(),
            per_frame: config.get_max_entries_per_frame(),
            remote_cap: config.get_max_remote_peers(),
            max_message: config.get_max_message_size(),
            private: config.is_private(),
        }
    }
}

/// Every rule a frame sent on one connection must obey, with what the checks must remember
/// between frames: BEP 11's spacing, its 50-entry limit, no duplicates, no add and drop of
/// one contact in one message, drops only of what was advertised, nothing sent while the
/// remote has `ut_pex` off, stopped, or on a private torrent (BEP 27), no echo of the
/// remote's own claims or address, nothing unusable or IPv4-mapped.
#[derive(Debug)]
pub struct WireRules {
    /// The connection's config limits.
    pub limits: Limits,
    /// The latest instant the connection accepted (it keeps the maximum it has seen; calls
    /// that return `Err` leave it alone).
    pub seen: Option<Instant>,
    /// The remote's `ut_pex` id as last set.
    pub remote_id: u8,
    /// Whether started.
    pub started: bool,
    /// The remote's address, canonical.
    pub remote_addr: Option<SocketAddr>,
    /// What the frames so far told the remote it has (added and not dropped since).
    pub advertised: AddrSet,
    /// Frames sent so far.
    pub frames: u64,
    /// The protocol time of the last frame: the latest instant seen when it was polled.
    pub last_frame_at: Option<Instant>,
}

impl WireRules {
    /// A new connection with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            seen: None,
            remote_id: 0,
            started: false,
            remote_addr: None,
            advertised: AddrSet::default(),
            frames: 0,
            last_frame_at: None,
        }
    }

    /// Records that the connection was handed `now`.
    pub fn observe(&mut self, now: Instant) {
        self.seen = Some(self.seen.map_or(now, |seen| seen.max(now)));
    }

    /// Whether the connection may send at all.
    pub fn can_send(&self) -> bool {
        self.started && self.remote_id != 0 && !self.limits.private
    }

    /// Checks a frame just polled, and records it. `live(addr)` is the flags of a live
    /// peer (`None`: not live); `claimed(addr)`: the remote currently claims `addr`.
    pub fn check_frame(
        &mut self,
        frame: &Frame,
        live: impl Fn(SocketAddr) -> Option<PeerFlags>,
        claimed: impl Fn(SocketAddr) -> bool,
    ) -> Check {
        ensure!(self.started, "a frame was sent while stopped");
        ensure!(
            self.remote_id != 0,
            "a frame was sent while the remote has ut_pex off"
        );
        ensure!(
            !self.limits.private,
            "a frame was sent for a private torrent"
        );
        check_frame_header(frame, self.remote_id)?;
        let now = self.seen.ok_or("a frame before any instant was seen")?;
        if let Some(last) = self.last_frame_at {
            let next = last.checked_add(self.limits.interval);
            ensure!(
                next.is_some_and(|next| now >= next),
                "frames {:?} apart, the send interval is {:?}",
                now.checked_duration_since(last),
                self.limits.interval
            );
        }
        let payload = frame.payload();
        let message = PexMessage::decode(&payload)
            .map_err(|e| format!("sent frame does not decode: {e:?}"))?;
        check_sent_strings(&payload)?;
        let (added, dropped) = (message.added_len(), message.dropped_len());
        ensure!(added + dropped > 0, "an empty frame was sent");
        let max_added = if self.frames == 0 {
            self.limits.initial_max
        } else {
            self.limits.per_frame
        };
        ensure!(
            added <= max_added,
            "{added} added in frame {} (limit {max_added})",
            self.frames
        );
        ensure!(
            dropped <= self.limits.per_frame,
            "{dropped} dropped in one frame (limit {})",
            self.limits.per_frame
        );
        ensure!(
            self.limits.per_frame <= MAX_PEERS_PER_MESSAGE,
            "per-frame limit above BEP 11's 50"
        );
        // No address twice in one frame, with no set of the frame's own: an address added
        // twice fails `advertised.insert` the second time, one dropped twice fails
        // `advertised.remove`, and one added and dropped must be live for the add and not
        // live for the drop. The frames refused are exactly those a per-frame set refuses.
        for peer in message.added() {
            let addr = peer.addr;
            ensure!(!is_mapped(addr), "{addr} sent as IPv4-mapped IPv6");
            ensure!(usable(addr), "unusable {addr} advertised");
            let flags = live(addr);
            ensure!(
                flags == Some(peer.flags),
                "{addr} advertised with {:?}, live: {flags:?}",
                peer.flags,
            );
            ensure!(
                self.advertised.insert(addr),
                "{addr} advertised again without a drop in between, or twice in one frame"
            );
            ensure!(
                Some(addr) != self.remote_addr,
                "the remote's own address {addr} advertised to it"
            );
            ensure!(
                !claimed(addr),
                "{addr} echoed back to the remote that announced it"
            );
        }
        for addr in message.dropped() {
            ensure!(!is_mapped(addr), "{addr} dropped as IPv4-mapped IPv6");
            ensure!(
                live(addr).is_none(),
                "live {addr} dropped, or {addr} twice (added and dropped) in one frame"
            );
            ensure!(
                self.advertised.remove(&addr),
                "{addr} dropped but never advertised, or twice in one frame"
            );
        }
        self.frames += 1;
        self.last_frame_at = Some(now);
        Ok(())
    }

    /// The no-busy-loop rule after `handle_timeout`: a deadline is later than the latest
    /// instant the connection has seen (a deadline in its past would make a host that
    /// sleeps until it spin).
    pub fn check_deadline(&self, deadline: Option<Instant>) -> Check {
        if let (Some(deadline), Some(seen)) = (deadline, self.seen) {
            ensure!(
                deadline > seen,
                "busy loop: deadline {deadline:?} not after {seen:?}"
            );
        }
        Ok(())
    }
}

/// The strings of a sent payload, as the reference parser reads them: whole entries only,
/// and one flag byte per added entry (BEP 11 pairs `added.f` with `added`, `added6.f` with
/// `added6`; a receiver reads a missing flag as 0, a sender must not leave it out).
fn check_sent_strings(payload: &[u8]) -> Check {
    let RefTop::Dict(entries) = reference_top(payload) else {
        return Err("a sent payload the reference parser refuses".into());
    };
    let len = |key: &str| {
        entries.iter().rev().find_map(|(k, v)| match v {
            RefValue::Bytes(b) if *k == key.as_bytes() => Some(b.len()),
            _ => None,
        })
    };
    for (list, unit, flags) in [
        ("added", 6, Some("added.f")),
        ("added6", 18, Some("added6.f")),
        ("dropped", 6, None),
        ("dropped6", 18, None),
    ] {
        let bytes = len(list).unwrap_or(0);
        ensure!(bytes % unit == 0, "{list} holds a partial entry");
        if let Some(flags) = flags {
            let flag_bytes = len(flags).unwrap_or(0);
            ensure!(
                flag_bytes * unit == bytes,
                "{flags} has {flag_bytes} bytes for {} entries",
                bytes / unit
            );
        }
    }
    Ok(())
}

/// What the host of one connection learned from its events: the remote's peers and
/// whether PEX is on. After every event is polled it must match the state.
#[derive(Debug, Default)]
pub struct HostView {
    /// What the host believes the remote claims.
    pub peers: BTreeMap<SocketAddr, PeerFlags>,
    /// Whether the host believes PEX is enabled, from `Enabled` / `Disabled`.
    pub enabled: bool,
}

impl HostView {
    /// Checks an event just polled and records what the host learned.
    pub fn check_event(&mut self, event: Event) -> Check {
        match event {
            Event::Enabled => {
                ensure!(!self.enabled, "Enabled twice without Disabled");
                self.enabled = true;
            }
            Event::Disabled => {
                ensure!(self.enabled, "Disabled without Enabled");
                self.enabled = false;
            }
            Event::PeerAdded(peer) => {
                ensure!(!is_mapped(peer.addr), "PeerAdded with a mapped address");
                ensure!(
                    self.peers.insert(peer.addr, peer.flags).is_none(),
                    "PeerAdded({}) twice without PeerDropped",
                    peer.addr
                );
            }
            Event::PeerDropped(addr) => {
                ensure!(
                    self.peers.remove(&addr).is_some(),
                    "PeerDropped({addr}) never added"
                );
            }
            _ => return Err(format!("unknown event {event:?}")),
        }
        Ok(())
    }

    /// Once no event is pending: the host's view is the state's (`claims`, sorted by
    /// address, and `enabled`).
    pub fn check_settled(&self, claims: &[Peer], enabled: bool) -> Check {
        ensure!(
            self.peers.len() == claims.len()
                && self
                    .peers
                    .iter()
                    .zip(claims)
                    .all(|((a, f), p)| *a == p.addr && *f == p.flags),
            "after all events the host believes {:?}, the state has {claims:?}",
            self.peers
        );
        ensure!(
            self.enabled == enabled,
            "after all events the host believes enabled={}",
            self.enabled
        );
        Ok(())
    }
}

/// The counters of `Stats`, in declaration order; the error counters are the last four.
pub fn stats_fields(s: &Stats) -> [u64; 20] {
    [
        s.frames_sent,
        s.bytes_sent,
        s.peers_added_sent,
        s.peers_dropped_sent,
        s.messages_received,
        s.peers_added_received,
        s.peers_dropped_received,
        s.ignored_port_zero,
        s.ignored_unusable_address,
        s.ignored_local_address,
        s.ignored_added_and_dropped,
        s.ignored_duplicate,
        s.ignored_unknown_drop,
        s.ignored_over_cap,
        s.ignored_private,
        s.ignored_local_unusable,
        s.errors_too_large,
        s.errors_decode,
        s.errors_too_frequent,
        s.errors_handshake,
    ]
}

/// Checks that no counter went down since `before`.
pub fn check_counters_grow(before: &Stats, now: &Stats) -> Check {
    let (b, n) = (stats_fields(before), stats_fields(now));
    ensure!(
        n.iter().zip(b.iter()).all(|(n, b)| n >= b),
        "a counter went down: {before:?} -> {now:?}"
    );
    Ok(())
}

/// Checks that a refused input moved no counter but the error ones.
pub fn check_only_errors_moved(before: &Stats, now: &Stats) -> Check {
    ensure!(
        stats_fields(before)[..16] == stats_fields(now)[..16],
        "refused input moved a non-error counter"
    );
    Ok(())
}
