//! The seedbox scenario, shared by `benches/seedbox.rs` (full size) and
//! `tests/alloc_seedbox.rs` (a smaller one with the same per-connection shape): many
//! torrents, one `Swarm` each with `Config::default()`, each with the same number of
//! outgoing connections to distinct global addresses, every one handshaken (`ut_pex` on) and
//! started, every frame and event drained.
//!
//! Then, in order: every remote sends one ut_pex message adding distinct peers; nothing
//! changes for a while (wake-ups are counted); and churn: each torrent replaces one
//! connection per protocol minute while every other remote sends one message (one peer
//! added, one dropped) in that minute.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ut_pex::{message, Config, ConnectionId, Direction, DisconnectReason, Peer, PeerFlags, Swarm};

const HANDSHAKE: &[u8] = b"d1:md6:ut_pexi1eee";
/// One protocol minute.
pub const MINUTE: Duration = Duration::from_secs(60);

/// A global IPv4 address for connection or claimed peer number `n` of its kind.
fn global(base: u32, n: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(base.wrapping_add(n)), 6881))
}

fn remote_addr(n: u32) -> SocketAddr {
    global(0x1400_0000, n) // 20.0.0.0 on
}

fn claimed_addr(n: u32) -> SocketAddr {
    global(0x3000_0000, n) // 48.0.0.0 on
}

/// What the host drained: frames (count, bytes) and events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Frames polled.
    pub frames: u64,
    /// Their bytes, headers included.
    pub bytes: u64,
    /// Events polled.
    pub events: u64,
}

impl Drained {
    fn add(&mut self, other: Drained) {
        self.frames += other.frames;
        self.bytes += other.bytes;
        self.events += other.events;
    }
}

/// Drains `swarm` completely; each frame also goes to `sink`.
pub fn drain(swarm: &mut Swarm, sink: &mut dyn FnMut(&[u8])) -> Drained {
    let mut d = Drained::default();
    while let Some((_, frame)) = swarm.poll_transmit() {
        d.frames += 1;
        d.bytes += frame.len() as u64;
        sink(frame.as_bytes());
    }
    while swarm.poll_event().is_some() {
        d.events += 1;
    }
    d
}

/// The seedbox: its torrents and, per torrent, its connections (host bookkeeping, allocated
/// up front so that it does not count as the crate's memory).
#[derive(Debug)]
pub struct Seedbox {
    /// One swarm per torrent.
    pub swarms: Vec<Swarm>,
    /// Per torrent, its connections.
    pub conns: Vec<Vec<ConnectionId>>,
    /// The protocol time reached.
    pub now: Instant,
    next_remote: u32,
    next_claim: u32,
    /// Per connection (same layout as `conns`): the claimed peers its remote announced
    /// last, oldest first, as claim numbers (host bookkeeping of the scenario).
    claims: Vec<Vec<std::collections::VecDeque<u32>>>,
    churn_round: usize,
}

impl Seedbox {
    /// Host bookkeeping for `torrents` × `per_torrent`, allocated before anything is
    /// measured.
    pub fn reserve(torrents: usize, per_torrent: usize, now: Instant) -> Self {
        Self {
            swarms: Vec::with_capacity(torrents),
            conns: (0..torrents)
                .map(|_| Vec::with_capacity(per_torrent))
                .collect(),
            now,
            next_remote: 0,
            next_claim: 0,
            claims: (0..torrents)
                .map(|_| {
                    (0..per_torrent)
                        .map(|_| std::collections::VecDeque::with_capacity(64))
                        .collect()
                })
                .collect(),
            churn_round: 0,
        }
    }

    /// How many connections the seedbox holds.
    pub fn connections(&self) -> usize {
        self.conns.iter().map(Vec::len).sum()
    }

    /// Builds every torrent and connection; every first frame and event drained.
    pub fn build(&mut self, per_torrent: usize) -> Drained {
        let mut total = Drained::default();
        let now = self.now;
        for t in 0..self.conns.len() {
            let mut swarm = Swarm::new(Config::default());
            for _ in 0..per_torrent {
                let id = self.open(&mut swarm, now);
                self.conns[t].push(id);
            }
            swarm.handle_timeout(now);
            total.add(drain(&mut swarm, &mut |_| {}));
            self.swarms.push(swarm);
        }
        total
    }

    fn open(&mut self, swarm: &mut Swarm, now: Instant) -> ConnectionId {
        let remote = remote_addr(self.next_remote);
        self.next_remote += 1;
        open(swarm, now, remote)
    }

    /// Every remote sends one message adding `peers` distinct peers (distinct across the
    /// whole seedbox); events drained. The payloads are built outside `during`, which wraps
    /// each `handle_message` call (to count its allocations).
    pub fn claim_all(&mut self, peers: usize, during: &mut dyn FnMut(&mut dyn FnMut())) -> Drained {
        self.now += Duration::from_secs(1);
        let now = self.now;
        let mut total = Drained::default();
        for t in 0..self.swarms.len() {
            for c in 0..self.conns[t].len() {
                let first = self.next_claim;
                self.next_claim += peers as u32;
                let added: Vec<Peer> = (first..first + peers as u32)
                    .map(|n| Peer::new(claimed_addr(n), PeerFlags::UTP))
                    .collect();
                self.claims[t][c].extend(first..first + peers as u32);
                let payload = message::encode_payload(&added, &[]);
                let id = self.conns[t][c];
                let swarm = &mut self.swarms[t];
                during(&mut || {
                    swarm
                        .handle_message(now, id, &payload)
                        .expect("an honest message");
                });
                // The documented drain order: after every input.
                total.add(drain(swarm, &mut |_| {}));
            }
        }
        total
    }

    /// Lets `minutes` protocol minutes pass with no input but time; returns how many times a
    /// host sleeping on `poll_timeout` would have been woken.
    pub fn idle(&mut self, minutes: u32) -> u64 {
        let end = self.now + MINUTE * minutes;
        let mut wakeups = 0;
        for swarm in &mut self.swarms {
            while let Some(t) = swarm.poll_timeout().filter(|&t| t <= end) {
                wakeups += 1;
                swarm.handle_timeout(t);
                drain(swarm, &mut |_| {});
            }
        }
        self.now = end;
        wakeups
    }

    /// Prepares one protocol minute: with `replace`, each torrent replaces one connection
    /// (round robin); with `messages`, every other remote sends one message
    /// adding one new peer and dropping its oldest claim. The payloads are built here,
    /// outside what is measured.
    pub fn churn_plan(&mut self, replace: bool, messages: bool) -> ChurnPlan {
        let round = self.churn_round;
        self.churn_round += 1;
        let mut torrents = Vec::with_capacity(self.swarms.len());
        for t in 0..self.swarms.len() {
            let n = self.conns[t].len();
            let leaving = if replace {
                round % n.max(1)
            } else {
                usize::MAX
            };
            let mut payloads = Vec::with_capacity(n);
            for c in (0..n).filter(|&c| messages && c != leaving) {
                let fresh = self.next_claim;
                self.next_claim += 1;
                let gone = self.claims[t][c].pop_front();
                self.claims[t][c].push_back(fresh);
                let added = [Peer::new(claimed_addr(fresh), PeerFlags::UTP)];
                let dropped: Vec<SocketAddr> = gone.map(claimed_addr).into_iter().collect();
                payloads.push((c, message::encode_payload(&added, &dropped)));
            }
            if let Some(claims) = self.claims[t].get_mut(leaving) {
                claims.clear();
            }
            torrents.push((leaving, payloads));
        }
        ChurnPlan { torrents }
    }

    /// Plays one prepared minute: the replacements, the messages, then the hosts sleep on
    /// `poll_timeout` to the end of the minute. Every frame goes to `sink`; `receive` wraps
    /// each `handle_message` call.
    pub fn churn_minute(
        &mut self,
        plan: &ChurnPlan,
        sink: &mut dyn FnMut(&[u8]),
        receive: &mut dyn FnMut(&mut dyn FnMut()),
    ) -> Drained {
        let start = self.now;
        let end = start + MINUTE;
        let mut total = Drained::default();
        for (t, (leaving, messages)) in plan.torrents.iter().enumerate() {
            let swarm = &mut self.swarms[t];
            if let Some(&old) = self.conns[t].get(*leaving) {
                let remote = remote_addr(self.next_remote);
                self.next_remote += 1;
                swarm.disconnect(start, old, DisconnectReason::Other);
                self.conns[t][*leaving] = open(swarm, start, remote);
            }
            for (c, payload) in messages {
                let id = self.conns[t][*c];
                receive(&mut || {
                    swarm
                        .handle_message(start, id, payload)
                        .expect("an honest message");
                });
                total.add(drain(swarm, sink));
            }
            total.add(drain(swarm, sink));
            while let Some(due) = swarm.poll_timeout().filter(|&d| d < end) {
                swarm.handle_timeout(due);
                total.add(drain(swarm, sink));
            }
        }
        self.now = end;
        total
    }
}

/// One minute of churn, prepared by [`Seedbox::churn_plan`]: per torrent, the connection
/// that leaves and the messages of the others.
#[derive(Debug)]
pub struct ChurnPlan {
    torrents: Vec<(usize, Vec<Payload>)>,
}

/// A message for connection number `.0` of its torrent.
type Payload = (usize, Vec<u8>);

impl ChurnPlan {
    /// How many messages the minute delivers.
    pub fn messages(&self) -> usize {
        self.torrents.iter().map(|(_, m)| m.len()).sum()
    }
}

fn open(swarm: &mut Swarm, now: Instant, remote: SocketAddr) -> ConnectionId {
    let id = swarm.connect(now, remote, Direction::Outgoing, PeerFlags::EMPTY);
    swarm
        .handle_extended_handshake(now, id, HANDSHAKE)
        .expect("a valid handshake");
    swarm.start(now, id);
    id
}
