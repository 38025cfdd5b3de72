//! One scenario test per `PeerBook` rule of issue 14; each doc comment names its rule.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ut_pex::{bep40_priority, Admission, BookConfig, PeerBook, PeerFlags, Refusal, Source};

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn book() -> PeerBook {
    PeerBook::new(BookConfig::default(), [9; 16])
}

fn pex(s: &str) -> Source {
    Source::Pex(a(s))
}

const F: PeerFlags = PeerFlags::EMPTY;
const MIN: Duration = Duration::from_secs(60);

/// Rule: one entry per IP; a PEX source never changes the port of a non-PEX entry.
#[test]
fn one_entry_per_ip() {
    let (mut b, t) = (book(), Instant::now());
    assert_eq!(
        b.add(t, a("8.8.1.1:6881"), F, Source::Tracker),
        Admission::Added
    );
    assert_eq!(
        b.add(t, a("8.8.1.1:7000"), F, pex("9.9.9.9:5000")),
        Admission::Known
    );
    assert_eq!(b.len(), 1);
    assert!(b.contains(a("8.8.1.1:6881")));
    assert!(!b.contains(a("8.8.1.1:7000")));
    assert_eq!(
        b.add(t, a("[::ffff:8.8.1.1]:6881"), F, Source::Dht),
        Admission::Known
    );
    assert_eq!(b.len(), 1);
}

/// Rule: never two dials in flight to one IP; at most `max_half_open` in flight.
#[test]
fn half_open_limit() {
    let mut b = PeerBook::new(BookConfig::default().max_half_open(2), [1; 16]);
    let t = Instant::now();
    for i in 1..=5 {
        b.add(t, a(&format!("8.{i}.1.1:6881")), F, Source::Tracker);
    }
    let first = b.poll_dial(t).unwrap();
    assert!(b.poll_dial(t).is_some());
    assert_eq!(b.poll_dial(t), None);
    b.dial_failed(t, first);
    assert!(b.poll_dial(t).is_some());
    assert_eq!(b.poll_dial(t), None);
    assert_eq!(b.poll_timeout(), None, "only answers can free a slot");
}

/// Rule: at most 4 dials per minute into one /24 (sliding 60 s window).
#[test]
fn subnet_window() {
    let (mut b, t) = (book(), Instant::now());
    for i in 1..=6 {
        b.add(t, a(&format!("8.8.8.{i}:6881")), F, Source::Tracker);
    }
    let dialled: Vec<_> = std::iter::from_fn(|| b.poll_dial(t)).collect();
    assert_eq!(dialled.len(), 4);
    let next = b.poll_timeout().unwrap();
    assert_eq!(next, t + MIN);
    assert_eq!(b.poll_dial(t + Duration::from_secs(59)), None);
    assert!(b.poll_dial(next).is_some());
}

/// Rule: backoff 60·2^(k−1) s after the k-th failure; removal after 5; only non-PEX brings
/// it back.
#[test]
fn backoff_and_removal() {
    let (mut b, mut t) = (book(), Instant::now());
    let p = a("8.8.8.8:6881");
    b.add(t, p, F, Source::Tracker);
    for k in 1..=5u32 {
        assert_eq!(b.poll_dial(t), Some(p), "failure {k}");
        b.dial_failed(t, p);
        if k < 5 {
            let wait = MIN * 2u32.pow(k - 1);
            assert_eq!(b.poll_dial(t + wait - Duration::from_secs(1)), None);
            t += wait;
        }
    }
    assert!(!b.contains(p));
    assert_eq!(
        b.add(t, p, F, pex("9.9.9.9:5000")),
        Admission::Refused(Refusal::Removed)
    );
    assert_eq!(b.add(t, p, F, Source::Dht), Admission::Added);
}

/// Rule: `connected` resets the failure count; a disconnected peer waits 60 s.
#[test]
fn connected_resets_and_reconnect_delay() {
    let (mut b, t) = (book(), Instant::now());
    let p = a("8.8.8.8:6881");
    b.add(t, p, F, Source::Tracker);
    b.poll_dial(t);
    b.dial_failed(t, p);
    let t = t + MIN;
    assert_eq!(b.poll_dial(t), Some(p));
    b.connected(t, p);
    b.disconnected(t, p);
    assert_eq!(b.poll_dial(t + Duration::from_secs(59)), None);
    assert_eq!(b.poll_timeout(), Some(t + MIN));
    assert_eq!(b.poll_dial(t + MIN), Some(p));
}

/// Rule: per-source budget: the first 50 always, at most 200 per hour.
#[test]
fn source_budget() {
    let (mut b, t) = (book(), Instant::now());
    let s = pex("9.9.9.9:5000");
    let added = |b: &mut PeerBook, t: Instant, base: u32, n: u32| {
        (0..n)
            .filter(|i| {
                let ip = std::net::Ipv4Addr::from(base + i);
                b.add(t, SocketAddr::new(ip.into(), 6881), F, s) == Admission::Added
            })
            .count()
    };
    assert_eq!(added(&mut b, t, 0x0808_0000, 60), 50);
    let hour: usize = (1..=60)
        .map(|m| added(&mut b, t + MIN * m, 0x0809_0000 + m * 256, 60))
        .sum();
    assert!(hour <= 150, "{hour} in the rest of the hour");
    assert!(hour >= 140);
}

/// Rule: all PEX sources of one /24 share one budget.
#[test]
fn group_budget() {
    let (mut b, t) = (book(), Instant::now());
    let mut n = 0;
    for s in 1..=3u32 {
        for i in 0..50u32 {
            let ip = std::net::Ipv4Addr::from(0x0808_0000 + s * 256 + i);
            let src = pex(&format!("9.9.9.{s}:5000"));
            n +=
                usize::from(b.add(t, SocketAddr::new(ip.into(), 6881), F, src) == Admission::Added);
        }
    }
    assert_eq!(n, 50);
}

/// Rule: withdrawal removes the vouch; an unvouched, never-connected, idle entry goes.
#[test]
fn withdraw_and_source_closed() {
    let (mut b, t) = (book(), Instant::now());
    let (s1, s2) = (pex("9.9.9.9:5000"), pex("7.7.7.7:5000"));
    b.add(t, a("8.8.8.8:6881"), F, s1);
    b.add(t, a("8.8.8.8:6881"), F, s2);
    b.add(t, a("8.8.4.4:6881"), F, s1);
    b.withdraw(t, a("8.8.8.8:1"), s1);
    assert_eq!(b.len(), 2);
    b.withdraw(t, a("8.8.8.8:6881"), s2);
    assert_eq!(b.len(), 1);
    b.source_closed(t, s1);
    assert!(b.is_empty());
    b.add(t, a("8.8.8.8:6881"), F, Source::Tracker);
    b.source_closed(t, Source::Tracker);
    assert!(b.is_empty());
}

/// Rule: distrust after 10 failed candidates with none connected; new ones refused, the
/// rest dialled last; a later `connected` lifts it.
#[test]
fn distrust() {
    let (mut b, t) = (book(), Instant::now());
    let bad = pex("6.6.6.6:5000");
    for i in 0..12 {
        b.add(t, a(&format!("{}.1.1.1:6881", 100 + i)), F, bad);
    }
    for _ in 0..10 {
        let d = b.poll_dial(t).unwrap();
        b.dial_failed(t, d);
    }
    assert_eq!(
        b.add(t, a("5.5.5.5:6881"), F, bad),
        Admission::Refused(Refusal::DistrustedSource)
    );
    b.add(t, a("4.4.4.4:6881"), F, pex("7.7.7.7:5000"));
    assert_eq!(
        b.poll_dial(t),
        Some(a("4.4.4.4:6881")),
        "the trusted one first"
    );
    let left = b.poll_dial(t).unwrap();
    b.connected(t, left);
    assert_eq!(b.add(t, a("5.5.5.5:6881"), F, bad), Admission::Added);
}

/// Rule: ranking: tracker before DHT before PEX; more vouches first; a forged REACHABLE
/// buys no rank.
#[test]
fn ranking() {
    let (mut b, t) = (book(), Instant::now());
    b.add(
        t,
        a("8.1.1.1:6881"),
        PeerFlags::REACHABLE,
        pex("9.9.9.9:5000"),
    );
    b.add(t, a("8.2.1.1:6881"), F, pex("9.9.9.9:5000"));
    b.add(t, a("8.2.1.1:6881"), F, pex("7.7.7.7:5000"));
    b.add(t, a("8.3.1.1:6881"), F, Source::Dht);
    b.add(t, a("8.4.1.1:6881"), F, Source::Tracker);
    let order: Vec<_> = std::iter::from_fn(|| b.poll_dial(t)).collect();
    assert_eq!(
        order,
        [
            a("8.4.1.1:6881"),
            a("8.3.1.1:6881"),
            a("8.2.1.1:6881"),
            a("8.1.1.1:6881")
        ]
    );
}

/// Rule: among equals, higher BEP 40 priority first; then the keyed tie-break, which the
/// secret changes.
#[test]
fn bep40_then_tie_break() {
    let t = Instant::now();
    let local = a("123.213.32.10:6881");
    let peers: Vec<_> = (1..=20).map(|i| a(&format!("8.{i}.{i}.1:6881"))).collect();
    let order = |secret: [u8; 16], with_local: bool| {
        let mut b = PeerBook::new(BookConfig::default().max_half_open(100), secret);
        if with_local {
            b.set_local_address(local);
        }
        for p in &peers {
            assert_eq!(b.add(t, *p, F, Source::Tracker), Admission::Added);
        }
        std::iter::from_fn(|| b.poll_dial(t)).collect::<Vec<_>>()
    };
    let by_prio = order([1; 16], true);
    let prios: Vec<_> = by_prio.iter().map(|p| bep40_priority(local, *p)).collect();
    assert!(prios.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(by_prio, order([2; 16], true));
    assert_eq!(order([1; 16], false), order([1; 16], false));
    assert_ne!(order([1; 16], false), order([2; 16], false));
}

/// Rule: bounded; when full, only a strictly stronger newcomer evicts, and PEX never evicts
/// a tracker entry.
#[test]
fn bounded_eviction() {
    let mut b = PeerBook::new(BookConfig::default().max_candidates(2), [3; 16]);
    let t = Instant::now();
    b.add(t, a("8.1.1.1:6881"), F, Source::Tracker);
    b.add(t, a("8.2.1.1:6881"), F, pex("9.9.9.9:5000"));
    assert_eq!(
        b.add(t, a("8.3.1.1:6881"), F, pex("9.9.9.9:5000")),
        Admission::Refused(Refusal::BookFull)
    );
    assert_eq!(
        b.add(t, a("8.3.1.1:6881"), F, Source::Tracker),
        Admission::Added
    );
    assert!(!b.contains(a("8.2.1.1:6881")));
    assert_eq!(
        b.add(t, a("8.4.1.1:6881"), F, pex("9.9.9.9:5000")),
        Admission::Refused(Refusal::BookFull)
    );
    assert_eq!(b.len(), 2);
}

/// Rule: address policy: unusable, own, low ports and local scope from PEX.
#[test]
fn address_policy() {
    let (mut b, t) = (book(), Instant::now());
    b.set_local_address(a("8.8.8.8:6881"));
    let s = pex("9.9.9.9:5000");
    let r = |x| Admission::Refused(x);
    for bad in [
        "8.8.4.4:0",
        "0.0.0.0:6881",
        "224.0.0.1:6881",
        "255.255.255.255:6881",
        "0.1.2.3:6881",
        "240.1.1.1:6881",
    ] {
        assert_eq!(
            b.add(t, a(bad), F, Source::Tracker),
            r(Refusal::UnusableAddress),
            "{bad}"
        );
    }
    assert_eq!(
        b.add(t, a("8.8.8.8:1"), F, Source::Tracker),
        r(Refusal::OwnAddress)
    );
    assert_eq!(b.add(t, a("8.8.4.4:80"), F, s), r(Refusal::LowPort));
    assert_eq!(
        b.add(t, a("192.168.1.2:6881"), F, s),
        r(Refusal::LocalScope)
    );
    assert_eq!(
        b.add(t, a("192.168.1.2:6881"), F, pex("192.168.1.1:5000")),
        Admission::Added
    );
    assert_eq!(
        b.add(t, a("8.8.4.4:80"), F, Source::Tracker),
        Admission::Added
    );
}

/// Rule: private torrents refuse PEX, DHT and LSD.
#[test]
fn private_torrent() {
    let mut b = PeerBook::new(BookConfig::default().private(true), [0; 16]);
    let t = Instant::now();
    for s in [pex("9.9.9.9:5000"), Source::Dht, Source::Lsd] {
        assert_eq!(
            b.add(t, a("8.8.4.4:6881"), F, s),
            Admission::Refused(Refusal::PrivateTorrent)
        );
    }
    assert_eq!(
        b.add(t, a("8.8.4.4:6881"), F, Source::Tracker),
        Admission::Added
    );
}

/// Rule: any `Instant` sequence, including backwards, without panic; `poll_timeout` later
/// than `now` when `poll_dial` returned `None`.
#[test]
fn backwards_time() {
    let (mut b, t) = (book(), Instant::now() + Duration::from_secs(10_000));
    let p = a("8.8.8.8:6881");
    b.add(t, p, F, Source::Tracker);
    assert_eq!(b.poll_dial(t), Some(p));
    b.dial_failed(t, p);
    let back = t - Duration::from_secs(5_000);
    assert_eq!(b.poll_dial(back), None);
    assert!(b.poll_timeout().unwrap() > back);
    b.connected(back, p);
    b.disconnected(t, p);
    b.dial_failed(back, p);
}

/// Rule: `connected` for an unknown address records it; events feed straight in.
#[test]
fn incoming_and_events() {
    let (mut b, t) = (book(), Instant::now());
    b.connected(t, a("8.8.8.8:40000"));
    assert!(b.contains(a("8.8.8.8:40000")));
    let remote = a("9.9.9.9:5000");
    let peer = ut_pex::Peer {
        addr: a("8.8.4.4:6881"),
        flags: F,
    };
    assert_eq!(
        b.on_event(t, remote, &ut_pex::Event::PeerAdded(peer)),
        Some(Admission::Added)
    );
    b.on_event(t, remote, &ut_pex::Event::PeerDropped(peer.addr));
    assert!(!b.contains(peer.addr));
}

/// Rule: bounded; an entry whose dial ended by `disconnected` is evictable again, so a
/// stronger newcomer (fewer failures) takes its place in a full book.
#[test]
fn eviction_after_disconnected_dial() {
    let mut b = PeerBook::new(BookConfig::default().max_candidates(1), [4; 16]);
    let (t, s) = (Instant::now(), pex("9.9.9.9:5000"));
    let old = a("8.1.1.1:6881");
    b.add(t, old, F, s);
    assert_eq!(b.poll_dial(t), Some(old));
    b.dial_failed(t, old);
    assert_eq!(b.poll_dial(t + MIN), Some(old));
    let new = a("8.2.1.1:6881");
    assert_eq!(
        b.add(t + MIN, new, F, s),
        Admission::Refused(Refusal::BookFull),
        "in flight"
    );
    b.disconnected(t + MIN, old);
    assert_eq!(b.add(t + MIN, new, F, s), Admission::Added);
    assert!(!b.contains(old));
}
