//! Deterministic scenarios for [`Swarm`]: BEP 11's "filling underpopulated lists" hold,
//! incoming connections and their dial address, flags, stale handles, compaction under
//! churn, the swarm-wide deadline, and regressions found by `tests/swarm_properties.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ut_pex::message::encode_payload;
use ut_pex::{
    Config, ConnectionId, Direction, DisconnectReason, Event, Peer, PeerFlags, PexMessage, Swarm,
    MAX_LINGERING, UNDERPOPULATED_BELOW,
};

const ALLOWED: [DisconnectReason; 3] = [
    DisconnectReason::DuplicatePeerOtherFamily,
    DisconnectReason::NoMutualInterest,
    DisconnectReason::LocalResourceLimits,
];

fn v4(i: u32) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881))
}

fn v6(i: u16) -> SocketAddr {
    SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, i], 6881))
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

/// One decoded frame: to whom, added (with flags) and dropped.
#[derive(Debug, PartialEq)]
struct Sent {
    to: ConnectionId,
    added: Vec<Peer>,
    dropped: Vec<SocketAddr>,
}

impl Sent {
    fn added_addrs(&self) -> Vec<SocketAddr> {
        self.added.iter().map(|p| p.addr).collect()
    }
}

/// Drains every frame and event; returns the frames, decoded.
fn drain(swarm: &mut Swarm) -> Vec<Sent> {
    let mut sent = Vec::new();
    while let Some((to, frame)) = swarm.poll_transmit() {
        let payload = frame.payload();
        let m = PexMessage::decode(&payload).expect("frames decode");
        sent.push(Sent {
            to,
            added: m.added().collect(),
            dropped: m.dropped().collect(),
        });
    }
    while swarm.poll_event().is_some() {}
    sent
}

/// Frames for `id` only.
fn to(sent: &[Sent], id: ConnectionId) -> Vec<&Sent> {
    sent.iter().filter(|s| s.to == id).collect()
}

/// An outgoing connection with `ut_pex` on, started: one that listens to what we advertise.
fn observer(swarm: &mut Swarm, now: Instant, addr: SocketAddr) -> ConnectionId {
    let id = swarm.connect(now, addr, Direction::Outgoing, PeerFlags::EMPTY);
    swarm.set_remote_extension_id(now, id, 1);
    swarm.start(now, id);
    id
}

// ---- BEP 11 "filling underpopulated lists" ----------------------------------------------------

#[test]
fn allowed_reason_keeps_the_peer_advertised_for_one_interval() {
    for reason in ALLOWED {
        let t0 = Instant::now();
        let mut swarm = Swarm::new(Config::default());
        let peer = swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
        let obs = observer(&mut swarm, t0, v4(1));
        let sent = drain(&mut swarm);
        assert_eq!(to(&sent, obs)[0].added_addrs(), vec![v4(2)]);

        swarm.disconnect(secs(t0, 10), peer, reason);
        assert!(swarm.is_live(v4(2)), "{reason:?}: held, still advertised");
        // The held contact's deadline is the earliest one.
        assert_eq!(swarm.poll_timeout(), Some(secs(t0, 75)));
        swarm.handle_timeout(secs(t0, 65));
        assert!(
            drain(&mut swarm).is_empty(),
            "{reason:?}: nothing new at 65 s"
        );
        swarm.handle_timeout(secs(t0, 74));
        assert!(swarm.is_live(v4(2)));
        assert!(drain(&mut swarm).is_empty());
        // One interval after the disconnect, it is dropped in the next message.
        swarm.handle_timeout(secs(t0, 75));
        assert!(!swarm.is_live(v4(2)));
        let sent = drain(&mut swarm);
        assert_eq!(
            sent,
            vec![Sent {
                to: obs,
                added: vec![],
                dropped: vec![v4(2)]
            }],
            "{reason:?}"
        );
        assert_eq!(swarm.poll_timeout(), None);
    }
}

#[test]
fn other_reason_drops_in_the_next_frame() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let peer = swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    let obs = observer(&mut swarm, t0, v4(1));
    drain(&mut swarm);
    swarm.disconnect(secs(t0, 10), peer, DisconnectReason::Other);
    assert!(!swarm.is_live(v4(2)));
    assert_eq!(swarm.poll_timeout(), Some(secs(t0, 65)));
    swarm.handle_timeout(secs(t0, 65));
    let sent = drain(&mut swarm);
    assert_eq!(
        sent,
        vec![Sent {
            to: obs,
            added: vec![],
            dropped: vec![v4(2)]
        }]
    );
}

#[test]
fn no_hold_once_the_family_has_25_connections_left() {
    // 25 live, one leaves: 24 remain, under the threshold: held.
    // 26 live, one leaves: 25 remain: dropped at once.
    for (live, held) in [
        (UNDERPOPULATED_BELOW, true),
        (UNDERPOPULATED_BELOW + 1, false),
    ] {
        let t0 = Instant::now();
        let mut swarm = Swarm::new(Config::default());
        let obs = observer(&mut swarm, t0, v4(1));
        let peers: Vec<_> = (2..=live as u32)
            .map(|i| swarm.connect(t0, v4(i), Direction::Outgoing, PeerFlags::EMPTY))
            .collect();
        // The IPv6 family does not count.
        for i in 1..=20 {
            swarm.connect(t0, v6(i), Direction::Outgoing, PeerFlags::EMPTY);
        }
        drain(&mut swarm);
        swarm.disconnect(secs(t0, 1), peers[0], DisconnectReason::NoMutualInterest);
        assert_eq!(swarm.is_live(v4(2)), held, "{live} live");
        swarm.handle_timeout(secs(t0, 65));
        let sent = drain(&mut swarm);
        let frames = to(&sent, obs);
        if held {
            assert!(frames.is_empty(), "{frames:?}");
        } else {
            assert_eq!(frames[0].dropped, vec![v4(2)]);
        }
    }
}

#[test]
fn a_26th_held_contact_flushes_the_oldest() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let obs = observer(&mut swarm, t0, v4(1));
    // One at a time: connect, then leave for an allowed reason; each stays held.
    for i in 0..MAX_LINGERING as u32 {
        let c = swarm.connect(t0, v4(100 + i), Direction::Outgoing, PeerFlags::EMPTY);
        swarm.disconnect(t0, c, DisconnectReason::LocalResourceLimits);
    }
    assert!((0..MAX_LINGERING as u32).all(|i| swarm.is_live(v4(100 + i))));
    assert_eq!(swarm.live_peers(), MAX_LINGERING + 1);
    let first = drain(&mut swarm);
    assert_eq!(to(&first, obs)[0].added.len(), MAX_LINGERING);
    let c = swarm.connect(secs(t0, 1), v4(200), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.disconnect(secs(t0, 1), c, DisconnectReason::LocalResourceLimits);
    assert!(
        !swarm.is_live(v4(100)),
        "the oldest held contact is dropped"
    );
    assert!((1..MAX_LINGERING as u32).all(|i| swarm.is_live(v4(100 + i))));
    assert!(swarm.is_live(v4(200)));
    // A connection attached now hears the held contacts but 100.
    let late = observer(&mut swarm, secs(t0, 2), v4(2));
    let sent = drain(&mut swarm);
    let mut expected: Vec<_> = (1..MAX_LINGERING as u32).map(|i| v4(100 + i)).collect();
    expected.insert(0, v4(1));
    expected.push(v4(200));
    assert_eq!(to(&sent, late)[0].added_addrs(), expected);
    // At 65 s the first 25 are dropped (100 flushed, the rest expired); 200 is held still.
    swarm.handle_timeout(secs(t0, 65));
    let sent = drain(&mut swarm);
    let expected: Vec<_> = (0..MAX_LINGERING as u32).map(|i| v4(100 + i)).collect();
    assert_eq!(to(&sent, obs)[0].dropped, expected);
    assert_eq!(to(&sent, obs)[0].added_addrs(), vec![v4(200), v4(2)]);
}

#[test]
fn held_contacts_are_flushed_when_the_family_reaches_25() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let _obs = observer(&mut swarm, t0, v4(1));
    let c = swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.disconnect(t0, c, DisconnectReason::NoMutualInterest);
    assert!(swarm.is_live(v4(2)));
    // Observer + 23 = 24 connected: still underpopulated.
    for i in 0..23 {
        swarm.connect(t0, v4(10 + i), Direction::Outgoing, PeerFlags::EMPTY);
    }
    assert!(swarm.is_live(v4(2)));
    // The 25th connection: no longer underpopulated, the held contact goes.
    swarm.connect(t0, v4(50), Direction::Outgoing, PeerFlags::EMPTY);
    assert!(!swarm.is_live(v4(2)));
    assert_eq!(swarm.live_peers(), 25);
}

#[test]
fn a_held_contact_that_reconnects_is_live_for_good() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let obs = observer(&mut swarm, t0, v4(1));
    let c = swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    drain(&mut swarm);
    swarm.disconnect(secs(t0, 5), c, DisconnectReason::NoMutualInterest);
    let _again = swarm.connect(secs(t0, 6), v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.handle_timeout(secs(t0, 200));
    assert!(swarm.is_live(v4(2)));
    assert!(to(&drain(&mut swarm), obs).is_empty(), "no drop, no re-add");
    assert_eq!(swarm.poll_timeout(), None);
}

// ---- endpoints and flags ----------------------------------------------------------------------

#[test]
fn incoming_is_live_once_its_handshake_gives_p_and_dropped_under_the_same_endpoint() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let obs = observer(&mut swarm, t0, v4(1));
    let ephemeral: SocketAddr = "10.0.0.5:50123".parse().unwrap();
    let listen: SocketAddr = "10.0.0.5:6889".parse().unwrap();
    let inc = swarm.connect(t0, ephemeral, Direction::Incoming, PeerFlags::UTP);
    assert!(!swarm.is_live(ephemeral) && !swarm.is_live(listen));
    assert_eq!(swarm.dial_address(inc), None);
    // A handshake without `p`, and one with `p` = 0: still no dial address.
    swarm
        .handle_extended_handshake(t0, inc, b"d1:md6:ut_pexi2eee")
        .unwrap();
    swarm
        .handle_extended_handshake(t0, inc, b"d1:md6:ut_pexi2ee1:pi0ee")
        .unwrap();
    assert_eq!(swarm.live_peers(), 1);
    assert!(
        drain(&mut swarm).is_empty(),
        "nothing to tell the observer yet"
    );
    swarm
        .handle_extended_handshake(secs(t0, 1), inc, b"d1:md6:ut_pexi2ee1:pi6889ee")
        .unwrap();
    assert_eq!(swarm.dial_address(inc), Some(listen));
    assert!(swarm.is_live(listen) && !swarm.is_live(ephemeral));
    // A later handshake with another port does not move the endpoint.
    swarm
        .handle_extended_handshake(secs(t0, 2), inc, b"d1:md6:ut_pexi2ee1:pi7000ee")
        .unwrap();
    assert_eq!(swarm.dial_address(inc), Some(listen));

    swarm.handle_timeout(secs(t0, 65));
    let sent = drain(&mut swarm);
    let obs_frames = to(&sent, obs);
    // Incoming: no REACHABLE flag, the host's flags as given.
    assert_eq!(obs_frames[0].added, vec![Peer::new(listen, PeerFlags::UTP)]);

    swarm.disconnect(secs(t0, 70), inc, DisconnectReason::Other);
    swarm.handle_timeout(secs(t0, 130));
    let sent = drain(&mut swarm);
    assert_eq!(
        sent,
        vec![Sent {
            to: obs,
            added: vec![],
            dropped: vec![listen]
        }]
    );
}

#[test]
fn incoming_without_p_is_never_advertised() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let obs = observer(&mut swarm, t0, v4(1));
    let inc = swarm.connect(t0, v4(7), Direction::Incoming, PeerFlags::EMPTY);
    swarm
        .handle_extended_handshake(t0, inc, b"d1:md6:ut_pexi1eee")
        .unwrap();
    swarm.start(t0, inc);
    let sent = drain(&mut swarm);
    // The incoming remote hears of the observer; the observer hears of nobody.
    assert!(to(&sent, obs).is_empty());
    assert_eq!(to(&sent, inc)[0].added_addrs(), vec![v4(1)]);
    swarm.disconnect(secs(t0, 1), inc, DisconnectReason::Other);
    swarm.handle_timeout(secs(t0, 100));
    assert!(drain(&mut swarm).is_empty());
}

#[test]
fn outgoing_peers_carry_reachable() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    swarm.connect(
        t0,
        v4(2),
        Direction::Outgoing,
        PeerFlags::UTP | PeerFlags::SEED,
    );
    let obs = observer(&mut swarm, t0, v4(1));
    let sent = drain(&mut swarm);
    let frame = to(&sent, obs)[0];
    assert_eq!(frame.added.len(), 1);
    assert_eq!(frame.added[0].flags.bits(), 0x10 | 0x04 | 0x02);
    assert!(frame.added[0].flags.contains(PeerFlags::REACHABLE));
}

// ---- handles ------------------------------------------------------------------------------------

#[test]
fn a_stale_handle_is_ignored_even_when_its_slot_is_reused() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let old = swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.disconnect(t0, old, DisconnectReason::Other);
    let new = swarm.connect(t0, v4(3), Direction::Outgoing, PeerFlags::EMPTY);
    let _other = swarm.connect(t0, v4(4), Direction::Outgoing, PeerFlags::EMPTY);
    assert_ne!(old, new);
    assert!(!swarm.contains(old) && swarm.contains(new));

    // Every method given the stale handle does nothing.
    swarm.set_remote_extension_id(t0, old, 5);
    swarm.start(t0, old);
    swarm
        .handle_extended_handshake(t0, old, b"d1:md6:ut_pexi5eee")
        .unwrap();
    let msg = encode_payload(&[Peer::new(v4(9), PeerFlags::EMPTY)], &[]);
    swarm.handle_message(t0, old, &msg).unwrap();
    swarm.disconnect(t0, old, DisconnectReason::Other);
    swarm.stop(old);
    assert!(swarm.contains(new), "the new connection survives");
    assert!(swarm.is_live(v4(3)));
    assert_eq!(swarm.remote_extension_id(new), 0);
    assert!(!swarm.is_enabled(new));
    assert_eq!(swarm.remote_peers(new).count(), 0);
    assert_eq!(swarm.stats(old), None);
    assert_eq!(swarm.dial_address(old), None);
    assert_eq!(swarm.connection_heap_bytes(old), 0);
    assert_eq!(swarm.poll_event(), None);
    assert!(swarm.poll_transmit().is_none());
    assert_eq!(swarm.connections(), 2);

    // The new connection still works normally.
    swarm.set_remote_extension_id(t0, new, 1);
    swarm.start(t0, new);
    let sent = drain(&mut swarm);
    assert_eq!(to(&sent, new)[0].added_addrs(), vec![v4(4)]);
}

// ---- memory -------------------------------------------------------------------------------------

#[test]
fn compaction_bounds_memory_under_churn() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    // Three listeners sending at different times, one stopped and one never enabled: none
    // of them may pin the log.
    let a = observer(&mut swarm, t0, v4(1));
    let b = observer(&mut swarm, secs(t0, 20), v4(2));
    let c = observer(&mut swarm, secs(t0, 40), v4(3));
    let stopped = observer(&mut swarm, t0, v4(4));
    swarm.stop(stopped);
    let _disabled = swarm.connect(t0, v4(5), Direction::Outgoing, PeerFlags::EMPTY);
    drain(&mut swarm);

    let mut now = secs(t0, 60);
    let mut early_max = 0;
    let mut max = 0;
    let mut frames = 0;
    for cycle in 0..1000u32 {
        let id = swarm.connect(
            now,
            v4(1000 + cycle % 7),
            Direction::Outgoing,
            PeerFlags::EMPTY,
        );
        now += Duration::from_secs(3);
        swarm.handle_timeout(now);
        frames += drain(&mut swarm).len();
        swarm.disconnect(now, id, DisconnectReason::Other);
        now += Duration::from_secs(4);
        swarm.handle_timeout(now);
        frames += drain(&mut swarm).len();
        let bytes = swarm.heap_bytes();
        if cycle < 100 {
            early_max = early_max.max(bytes);
        }
        max = max.max(bytes);
    }
    // 7000 s: each listener sent about a frame per interval.
    assert!(frames > 3 * 90, "{frames} frames");
    for id in [a, b, c] {
        assert!(swarm.stats(id).unwrap().frames_sent > 90);
    }
    // 2000 log entries were written; without compaction they would take ~100 KiB.
    assert!(
        max <= early_max * 2 && max < 16 * 1024,
        "heap {max} bytes (first 100 cycles: {early_max})"
    );
    for id in [a, b, c] {
        let bytes = swarm.connection_heap_bytes(id);
        assert!(bytes < 2048, "{bytes} bytes for one connection");
    }
}

// ---- deadlines ----------------------------------------------------------------------------------

#[test]
fn poll_timeout_is_the_earliest_deadline_of_all_connections() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    swarm.connect(t0, v4(9), Direction::Outgoing, PeerFlags::EMPTY);
    // Three listeners, each sending its first frame at another time.
    let [a, b, c] =
        [1, 2, 3].map(|i| swarm.connect(t0, v4(i), Direction::Outgoing, PeerFlags::EMPTY));
    for (id, at) in [(a, 0), (b, 10), (c, 20)] {
        swarm.set_remote_extension_id(secs(t0, at), id, 1);
        swarm.start(secs(t0, at), id);
        assert_eq!(to(&drain(&mut swarm), id)[0].added.len(), 3);
    }
    assert_eq!(swarm.poll_timeout(), None, "nothing to say");
    // News for all at 30 s: each may send one interval after its last frame.
    swarm.connect(secs(t0, 30), v4(10), Direction::Outgoing, PeerFlags::EMPTY);
    assert_eq!(swarm.poll_timeout(), Some(secs(t0, 65)));
    swarm.stop(a);
    assert_eq!(
        swarm.poll_timeout(),
        Some(secs(t0, 75)),
        "a stopped: b next"
    );
    swarm.start(secs(t0, 31), a);
    assert_eq!(swarm.poll_timeout(), Some(secs(t0, 65)));

    let mut order = Vec::new();
    while let Some(deadline) = swarm.poll_timeout() {
        swarm.handle_timeout(deadline);
        for sent in drain(&mut swarm) {
            order.push((sent.to, deadline));
        }
        assert!(swarm.poll_timeout().map_or(true, |d| d > deadline));
    }
    assert_eq!(
        order,
        vec![(a, secs(t0, 65)), (b, secs(t0, 75)), (c, secs(t0, 85)),]
    );
    // A held contact's expiry is a deadline too, when it is the earliest.
    let held = swarm.connect(secs(t0, 100), v4(11), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.handle_timeout(secs(t0, 200));
    drain(&mut swarm);
    swarm.disconnect(secs(t0, 201), held, DisconnectReason::NoMutualInterest);
    assert_eq!(swarm.poll_timeout(), Some(secs(t0, 266)));
}

// ---- regressions found by the properties --------------------------------------------------------

/// Two connections with one dial address (a duplicate connection, incoming `p` equal to an
/// outgoing peer's address): the peer stays live until the last of them ends.
#[test]
fn a_duplicate_connection_ending_does_not_drop_a_connected_peer() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let obs = observer(&mut swarm, t0, v4(1));
    let first = swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    let dup = swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    let inc = swarm.connect(
        t0,
        "10.0.0.2:50000".parse().unwrap(),
        Direction::Incoming,
        PeerFlags::EMPTY,
    );
    swarm
        .handle_extended_handshake(t0, inc, b"d1:md6:ut_pexi1ee1:pi6881ee")
        .unwrap();
    assert_eq!(swarm.dial_address(inc), Some(v4(2)));
    let sent = drain(&mut swarm);
    assert_eq!(to(&sent, obs)[0].added_addrs(), vec![v4(2)]);

    swarm.disconnect(secs(t0, 1), dup, DisconnectReason::Other);
    swarm.disconnect(secs(t0, 2), first, DisconnectReason::Other);
    assert!(swarm.is_live(v4(2)), "still connected through `inc`");
    swarm.handle_timeout(secs(t0, 65));
    assert!(to(&drain(&mut swarm), obs).is_empty());

    swarm.disconnect(secs(t0, 70), inc, DisconnectReason::Other);
    assert!(!swarm.is_live(v4(2)));
    swarm.handle_timeout(secs(t0, 130));
    let sent = drain(&mut swarm);
    assert_eq!(to(&sent, obs)[0].dropped, vec![v4(2)]);
}

/// A remote that announces its own address and then drops it must still never hear it.
#[test]
fn a_remote_unclaiming_itself_is_not_told_about_itself() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let c = swarm.connect(t0, v4(1), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.set_remote_extension_id(t0, c, 3);
    let claim = encode_payload(&[Peer::new(v4(1), PeerFlags::EMPTY)], &[]);
    swarm.handle_message(t0, c, &claim).unwrap();
    swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.start(t0, c);
    let sent = drain(&mut swarm);
    assert_eq!(to(&sent, c)[0].added_addrs(), vec![v4(2)]);
    let unclaim = encode_payload(&[], &[v4(1)]);
    swarm.handle_message(secs(t0, 10), c, &unclaim).unwrap();
    assert_eq!(swarm.poll_event(), Some((c, Event::PeerDropped(v4(1)))));
    swarm.connect(secs(t0, 20), v4(3), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.handle_timeout(secs(t0, 65));
    let sent = drain(&mut swarm);
    assert_eq!(to(&sent, c)[0].added_addrs(), vec![v4(3)], "never itself");
}

/// A peer held back from a remote (it announced it), then no longer announced, then gone
/// before the next frame: the remote was never told about it, so it must not be told it left.
#[test]
fn a_released_echo_that_leaves_before_the_next_frame_is_not_dropped() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let c = swarm.connect(t0, v4(1), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.set_remote_extension_id(t0, c, 3);
    let claim = encode_payload(&[Peer::new(v4(2), PeerFlags::EMPTY)], &[]);
    swarm.handle_message(t0, c, &claim).unwrap();
    let x = swarm.connect(t0, v4(2), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.connect(t0, v4(3), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.start(t0, c);
    let sent = drain(&mut swarm);
    assert_eq!(
        to(&sent, c)[0].added_addrs(),
        vec![v4(3)],
        "v4(2) is an echo"
    );
    // The remote stops announcing 2 (news for it again), then 2 leaves.
    let unclaim = encode_payload(&[], &[v4(2)]);
    swarm.handle_message(secs(t0, 10), c, &unclaim).unwrap();
    swarm.disconnect(secs(t0, 20), x, DisconnectReason::Other);
    swarm.connect(secs(t0, 30), v4(4), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.handle_timeout(secs(t0, 65));
    let sent = drain(&mut swarm);
    let frames = to(&sent, c);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].added_addrs(), vec![v4(4)]);
    assert!(frames[0].dropped.is_empty(), "{:?}", frames[0].dropped);
}

/// BEP 11: "Except for the initial PEX message the combined amount of added v4/v6 contacts
/// should not exceed 50 entries." A connection that attached, then waited for its remote's
/// handshake while a peer left: its first frame is the live set of the moment it is built
/// (the first 50 in connection order), not a peer that left, to be dropped in the next
/// frame; the rest follows one interval later, then only the deltas.
#[test]
fn a_full_first_frame_never_names_a_peer_that_left_since_attaching() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let peers: Vec<_> = (1..=60)
        .map(|i| swarm.connect(t0, v4(i), Direction::Outgoing, PeerFlags::EMPTY))
        .collect();
    let late = swarm.connect(t0, v4(999), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.disconnect(secs(t0, 1), peers[0], DisconnectReason::Other);
    swarm.set_remote_extension_id(secs(t0, 2), late, 1);
    swarm.start(secs(t0, 2), late);
    let sent = drain(&mut swarm);
    let first = to(&sent, late)[0];
    assert_eq!(first.added_addrs(), (2..=51).map(v4).collect::<Vec<_>>());
    assert!(first.dropped.is_empty());
    swarm.handle_timeout(secs(t0, 67));
    let sent = drain(&mut swarm);
    let second = to(&sent, late)[0];
    assert_eq!(second.added_addrs(), (52..=60).map(v4).collect::<Vec<_>>());
    assert!(second.dropped.is_empty(), "{:?}", second.dropped);
    // Then the deltas: a peer it was told about leaves, and only that goes in the next.
    swarm.disconnect(secs(t0, 70), peers[1], DisconnectReason::Other);
    swarm.handle_timeout(secs(t0, 132));
    let sent = drain(&mut swarm);
    let third = to(&sent, late);
    assert_eq!(third.len(), 1);
    assert_eq!(
        (third[0].added_addrs(), &third[0].dropped),
        (vec![], &vec![v4(2)])
    );
}
