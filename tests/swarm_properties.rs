//! The late-attach property of [`Swarm`]: a connection that attaches after churn gets, in
//! its first frame, the live set of that moment in connection order. (Every other
//! property of a `Swarm` under random scripts, wire rules, live set and convergence, is
//! `testkit::swarm_ops`'s, run by `tests/script_properties.rs` and the `swarm_ops` fuzz
//! target.)
//!
//! Run longer with `QUICKCHECK_TESTS=20000 QUICKCHECK_GENERATOR_SIZE=300 cargo test --test
//! swarm_properties`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use testkit::addr::{lan_v4, v4, v6};
use testkit::reference::decode_frame;
use testkit::swarm_ops::REASONS;
use ut_pex::{Config, ConnectionId, Direction, PeerFlags, Swarm};

/// `QuickCheck` with `default_tests` and `default_size`, unless `QUICKCHECK_TESTS` or
/// `QUICKCHECK_GENERATOR_SIZE` say otherwise.
fn quickcheck(default_tests: u64, default_size: usize) -> QuickCheck {
    let mut qc = QuickCheck::new();
    if std::env::var_os("QUICKCHECK_TESTS").is_none() {
        qc = qc.tests(default_tests);
    }
    if std::env::var_os("QUICKCHECK_GENERATOR_SIZE").is_none() {
        qc = qc.rng(Gen::new(default_size));
    }
    qc
}

// ---- late attach -----------------------------------------------------------------------------

/// Churn on the swarm's peers only, over a pool large enough to exceed the initial cap.
#[derive(Clone, Debug)]
enum Churn {
    Connect(u8),
    Disconnect(u8, u8),
    AddPeer(u8),
    DropPeer(u8),
    Time(u8),
}

impl Arbitrary for Churn {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 10 {
            0..=4 => Churn::Connect(u8::arbitrary(g)),
            5..=6 => Churn::Disconnect(u8::arbitrary(g), u8::arbitrary(g)),
            7 => Churn::AddPeer(u8::arbitrary(g)),
            8 => Churn::DropPeer(u8::arbitrary(g)),
            _ => Churn::Time(u8::arbitrary(g)),
        }
    }
}

#[derive(Clone, Debug)]
struct ChurnScript(Vec<Churn>);

impl Arbitrary for ChurnScript {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = usize::from(u8::arbitrary(g)) + usize::from(u8::arbitrary(g) % 64);
        ChurnScript((0..len).map(|_| Churn::arbitrary(g)).collect())
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(ChurnScript))
    }
}

/// 100 connection addresses (a third IPv6), from `testkit`'s scenario pools.
fn churn_addr(i: u8) -> SocketAddr {
    let i = usize::from(i % 100);
    if i % 3 == 0 {
        v6(i)
    } else {
        v4(i)
    }
}

/// 20 host peers, of another range than the connections'.
fn churn_host_addr(i: u8) -> SocketAddr {
    lan_v4(usize::from(i % 20))
}

/// The churn side of the late-attach property: the swarm, its clock, its connections, and
/// when each address last became live (observed after every operation).
struct ChurnModel {
    swarm: Swarm,
    t: Instant,
    conns: Vec<ConnectionId>,
    order: BTreeMap<SocketAddr, u64>,
    clock: u64,
    all: Vec<SocketAddr>,
}

impl ChurnModel {
    fn apply(&mut self, op: &Churn) {
        let t = self.t;
        match *op {
            Churn::Connect(a) => {
                let id = self
                    .swarm
                    .connect(t, churn_addr(a), Direction::Outgoing, PeerFlags::UTP);
                self.conns.push(id);
            }
            Churn::Disconnect(c, r) => {
                if !self.conns.is_empty() {
                    let id = self.conns.swap_remove(usize::from(c) % self.conns.len());
                    self.swarm
                        .disconnect(t, id, REASONS[usize::from(r) % REASONS.len()]);
                }
            }
            Churn::AddPeer(a) => {
                self.swarm.add_peer(churn_host_addr(a), PeerFlags::SEED);
            }
            Churn::DropPeer(a) => self.swarm.drop_peer(churn_host_addr(a)),
            Churn::Time(s) => {
                self.t += Duration::from_secs(u64::from(s));
                self.swarm.handle_timeout(self.t);
            }
        }
        self.observe();
    }

    fn observe(&mut self) {
        for &a in &self.all {
            match (self.swarm.is_live(a), self.order.contains_key(&a)) {
                (true, false) => {
                    self.clock += 1;
                    self.order.insert(a, self.clock);
                }
                (false, true) => {
                    self.order.remove(&a);
                }
                _ => {}
            }
        }
    }

    /// The first `cap` live peers in connection order, as they go on the wire: IPv4
    /// (`added`) before IPv6 (`added6`), each in connection order.
    fn first_live(&self, cap: usize) -> Vec<SocketAddr> {
        let mut live: Vec<(u64, SocketAddr)> = self.order.iter().map(|(&a, &n)| (n, a)).collect();
        live.sort();
        let first: Vec<SocketAddr> = live.into_iter().map(|(_, a)| a).take(cap).collect();
        first
            .iter()
            .filter(|a| a.is_ipv4())
            .chain(first.iter().filter(|a| a.is_ipv6()))
            .copied()
            .collect()
    }
}

#[test]
fn late_connection_gets_the_live_set_in_connection_order() {
    /// `script` builds the swarm; a connection attaches; `between` churns on while its
    /// remote has not enabled `ut_pex` yet; then its first frame must be the live set of
    /// that moment (the first 50 in connection order), never a peer that already left.
    fn prop(script: ChurnScript, between: Vec<Churn>, ext: u8) -> TestResult {
        let mut m = ChurnModel {
            swarm: Swarm::new(Config::default()),
            t: Instant::now(),
            conns: Vec::new(),
            order: BTreeMap::new(),
            clock: 0,
            all: (0..100)
                .map(churn_addr)
                .chain((0..20).map(churn_host_addr))
                .collect(),
        };
        for op in &script.0 {
            m.apply(op);
        }
        // The late connection, to an address outside the pool (it may flush held contacts:
        // its family reaches 25 live). Its own address is never sent to it.
        let me: SocketAddr = "198.51.100.7:6881".parse().unwrap();
        let late = m
            .swarm
            .connect(m.t, me, Direction::Outgoing, PeerFlags::EMPTY);
        m.observe();
        for op in &between {
            m.apply(op);
        }
        m.order.remove(&me);
        let expected = m.first_live(50);
        let ext = ext.max(1);
        m.swarm.set_remote_extension_id(m.t, late, ext);
        m.swarm.start(m.t, late);
        let mut first = None;
        while let Some((id, frame)) = m.swarm.poll_transmit() {
            if id == late && first.is_none() {
                first = Some(frame);
            }
        }
        let Some(frame) = first else {
            return TestResult::from_bool(expected.is_empty());
        };
        let decoded = decode_frame(&frame);
        let (added, dropped) = (decoded.added_addrs(), decoded.dropped);
        if added != expected || !dropped.is_empty() || decoded.ext_id != ext {
            return TestResult::error(format!(
                "first frame +{added:?} -{dropped:?}, expected +{expected:?}"
            ));
        }
        TestResult::passed()
    }
    quickcheck(300, 100).quickcheck(prop as fn(ChurnScript, Vec<Churn>, u8) -> TestResult);
}
