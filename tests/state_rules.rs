//! Scenario tests for the per-connection state machine `PexState`: one test per rule it
//! must follow, named after the rule, driven under virtual time (no sleeping).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::addr::{addr, pex, v4, v6};
use testkit::pair::*;
use testkit::reference::{decode_frame, Decoded};
use ut_pex::{
    Config, ConfigError, Event, MessageError, Peer, PeerFlags, PexMessage, PexState,
    MIN_SEND_INTERVAL,
};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// A state that is enabled (remote id 1) and started at the returned instant, events drained.
fn solo(config: Config) -> (PexState, Instant) {
    let t0 = Instant::now();
    let mut state = PexState::new(config);
    state
        .handle_extended_handshake(t0, &handshake_with(1))
        .unwrap();
    state.start(t0);
    assert_eq!(events(&mut state), [Event::Enabled]);
    (state, t0)
}

/// The 120 peers used by the batching tests, IPv4 and IPv6 interleaved.
fn many(n: usize, offset: usize) -> Vec<SocketAddr> {
    (offset..offset + n)
        .map(|i| if i % 2 == 0 { v4(i) } else { v6(i) })
        .collect()
}

fn set(addrs: impl IntoIterator<Item = SocketAddr>) -> BTreeSet<SocketAddr> {
    addrs.into_iter().collect()
}

fn added_events(events: &[Event]) -> Vec<SocketAddr> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PeerAdded(p) => Some(p.addr),
            _ => None,
        })
        .collect()
}

fn dropped_events(events: &[Event]) -> Vec<SocketAddr> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PeerDropped(a) => Some(*a),
            _ => None,
        })
        .collect()
}

// ---- sending: when -------------------------------------------------------------------------

#[test]
fn nothing_sent_before_start() {
    let mut p = Pair::new(Config::default(), Config::default());
    p.handshake();
    p.a.add_peer(v4(1), PeerFlags::SEED);
    assert!(p.a.is_enabled() && !p.a.is_started());
    assert_eq!(p.a.poll_timeout(), None);
    p.drive_for(30 * MINUTE);
    assert!(p.sent_a.is_empty());

    p.a.start(p.now);
    p.settle();
    let sent = p.decoded(Side::A);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 30 * MINUTE, "sent right at start");
    assert_eq!(sent[0].1.added_addrs(), [v4(1)]);
}

#[test]
fn nothing_sent_before_remote_enables() {
    let mut p = Pair::new(Config::default(), Config::default());
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.a.start(p.now);
    p.settle();
    p.drive_for(5 * MINUTE);
    // A handshake without ut_pex (the remote does not support it) enables nothing.
    p.rehandshake(Side::B, None);
    p.drive_for(5 * MINUTE);
    assert!(p.sent_a.is_empty());
    assert!(!p.a.is_enabled());
    assert_eq!(p.a.poll_timeout(), None);
    assert!(p.events(Side::A).is_empty());

    p.rehandshake(Side::B, Some(5));
    assert_eq!(p.events(Side::A), [Event::Enabled]);
    let sent = p.decoded(Side::A);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 10 * MINUTE);
    assert_eq!(sent[0].1.ext_id, 5);
}

#[test]
fn later_handshake_without_ut_pex_changes_nothing() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.settle();
    p.rehandshake(Side::B, None);
    assert!(p.a.is_enabled());
    assert_eq!(p.a.remote_extension_id(), 1);
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.drive_for(2 * MINUTE);
    assert_eq!(p.sent_a.len(), 2);
    assert_eq!(p.events(Side::A), [Event::Enabled]);
}

#[test]
fn new_remote_id_used_from_next_frame() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.settle();
    p.rehandshake(Side::B, Some(9));
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.drive_for(2 * MINUTE);
    let ids: Vec<u8> = p.decoded(Side::A).iter().map(|(_, d)| d.ext_id).collect();
    assert_eq!(ids, [1, 9]);
    // The frame arrived under b's new id and was understood.
    assert_eq!(p.b.remote_peers().count(), 2);

    // A frame already decided but not yet polled is built with the id current at poll time.
    let (mut s, t0) = solo(Config::default());
    s.handle_extended_handshake(t0, &handshake_with(3)).unwrap();
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    s.handle_extended_handshake(t0, &handshake_with(7)).unwrap();
    let frame = s.poll_transmit().expect("the decided frame");
    assert_eq!(frame.extension_id(), 7);
}

#[test]
fn ut_pex_zero_disables_and_emits_disabled() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.settle();
    assert_eq!(p.sent_a.len(), 1);

    p.rehandshake(Side::B, Some(0));
    assert_eq!(p.events(Side::A), [Event::Enabled, Event::Disabled]);
    assert!(!p.a.is_enabled());
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.a.drop_peer(v4(1));
    assert_eq!(p.a.poll_timeout(), None);
    p.drive_for(10 * MINUTE);
    assert_eq!(p.sent_a.len(), 1, "nothing sent while disabled");

    // A second `ut_pex: 0` is no change: no second event.
    p.rehandshake(Side::B, Some(0));
    assert_eq!(p.events(Side::A).len(), 2);

    p.rehandshake(Side::B, Some(4));
    assert_eq!(
        p.events(Side::A),
        [Event::Enabled, Event::Disabled, Event::Enabled]
    );
    let sent = p.decoded(Side::A);
    assert_eq!(sent.len(), 2, "what queued while disabled goes at once");
    assert_eq!(sent[1].1.ext_id, 4);
    assert_eq!(sent[1].1.added_addrs(), [v4(2)]);
    assert_eq!(sent[1].1.dropped, [v4(1)]);
}

#[test]
fn disable_then_enable_before_polling_cancels_events() {
    let (mut s, t0) = solo(Config::default());
    s.handle_extended_handshake(t0, &handshake_with(0)).unwrap();
    s.handle_extended_handshake(t0, &handshake_with(2)).unwrap();
    assert_eq!(s.pending_events(), 0);
    assert!(s.is_enabled());
}

// ---- sending: what ------------------------------------------------------------------------

#[test]
fn first_frame_carries_live_set_up_to_initial_cap() {
    let peers = many(120, 0);
    for (initial, expected) in [(None, vec![50, 50, 20]), (Some(100), vec![100, 20])] {
        let mut config = Config::default();
        if let Some(n) = initial {
            config = config.initial_max_peers(n);
        }
        let mut p = Pair::new(config, Config::default());
        for &a in &peers {
            p.a.add_peer(a, PeerFlags::EMPTY);
        }
        p.connect();
        p.drive_bounded(10);
        let sent = p.decoded(Side::A);
        let sizes: Vec<usize> = sent.iter().map(|(_, d)| d.added.len()).collect();
        assert_eq!(sizes, expected);
        assert_eq!(sent[0].0, Duration::ZERO, "first frame at once");
        // First in, first out: each frame holds the next chunk of the live set.
        let mut offset = 0;
        for (i, (at, d)) in sent.iter().enumerate() {
            assert_eq!(*at, INTERVAL * i as u32);
            let n = d.added.len();
            assert_eq!(
                set(d.added_addrs()),
                set(peers[offset..offset + n].to_vec())
            );
            offset += n;
        }
        assert_eq!(set(p.b.remote_peers().map(|x| x.addr)), set(peers.clone()));
    }
}

#[test]
fn frames_spaced_by_send_interval() {
    let mut p = Pair::connected();
    // One new peer every 10 s for 20 minutes.
    for i in 0..120 {
        p.a.add_peer(v4(i), PeerFlags::EMPTY);
        p.drive_for(10 * SECOND);
    }
    p.drive_bounded(10);
    let times: Vec<Duration> = p.sent_a.iter().map(|(t, _)| *t - p.start).collect();
    assert!(times.len() >= 18, "{times:?}");
    for w in times.windows(2) {
        assert_eq!(w[1] - w[0], INTERVAL, "{times:?}");
    }
    assert_eq!(p.b.remote_peers().count(), 120);
}

#[test]
fn frames_spaced_even_when_polled_late() {
    // The host decides a frame at t0 (handle_timeout) but only polls it at t0 + 30 s, after
    // another input: the frame leaves at t0 + 30 s, so the next may not leave before
    // t0 + 30 s + interval.
    let (mut s, t0) = solo(Config::default());
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    assert!(s.poll_transmit().is_some(), "first frame");
    s.add_peer(v4(2), PeerFlags::EMPTY);
    let due = t0 + INTERVAL;
    s.handle_timeout(due);
    let late = due + 30 * SECOND;
    s.handle_message(late, b"de").unwrap();
    let sent_at = late;
    assert!(s.poll_transmit().is_some());
    s.add_peer(v4(3), PeerFlags::EMPTY);
    let next = s.poll_timeout().expect("a deadline for v4(3)");
    assert!(
        next >= sent_at + INTERVAL,
        "next frame {:?} after the late one",
        next - sent_at
    );
    s.handle_timeout(sent_at + INTERVAL - SECOND);
    assert!(s.poll_transmit().is_none());
    s.handle_timeout(sent_at + INTERVAL);
    assert!(s.poll_transmit().is_some());
}

#[test]
fn never_an_empty_frame() {
    let mut p = Pair::connected();
    // Connected with nothing to say: no frame, no deadline.
    p.drive_for(10 * MINUTE);
    assert!(p.sent_a.is_empty());
    assert_eq!(p.a.poll_timeout(), None);

    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.settle();
    // Nothing changed for an hour: nothing sent.
    p.drive_for(60 * MINUTE);
    // A change that cancels out before the next frame: nothing sent either.
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.a.drop_peer(v4(2));
    p.drive_for(10 * MINUTE);
    assert_eq!(p.sent_a.len(), 1);
    for (_, d) in p.decoded(Side::A) {
        assert!(!d.added.is_empty() || !d.dropped.is_empty());
    }

    // A frame decided at its deadline whose content is cancelled before the poll.
    let (mut s, t0) = solo(Config::default());
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    assert!(s.poll_transmit().is_some());
    s.add_peer(v4(2), PeerFlags::EMPTY);
    s.handle_timeout(t0 + INTERVAL);
    s.drop_peer(v4(2));
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn at_most_50_added_and_50_dropped_fifo() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(1000), PeerFlags::EMPTY);
    p.settle(); // the initial frame
    let xs = many(120, 0);
    for &x in &xs {
        p.a.add_peer(x, PeerFlags::EMPTY);
    }
    p.drive_bounded(10);
    // Drop them in reverse order, and add 60 new ones.
    let drops: Vec<SocketAddr> = xs.iter().rev().copied().collect();
    for &x in &drops {
        p.a.drop_peer(x);
    }
    let ys = many(60, 500);
    for &y in &ys {
        p.a.add_peer(y, PeerFlags::EMPTY);
    }
    p.drive_bounded(10);

    let sent = p.decoded(Side::A);
    let non_initial = &sent[1..];
    for (_, d) in non_initial {
        assert!(d.added.len() <= 50 && d.dropped.len() <= 50, "{d:?}");
    }
    let added: Vec<usize> = non_initial.iter().map(|(_, d)| d.added.len()).collect();
    let dropped: Vec<usize> = non_initial.iter().map(|(_, d)| d.dropped.len()).collect();
    // Each frame is the next stretch of the log in call order: the 120 drops come before
    // the 60 adds, so the adds start once the drops leave room.
    assert_eq!(added, [50, 50, 20, 0, 0, 50, 10]);
    assert_eq!(dropped, [0, 0, 0, 50, 50, 20, 0]);
    // FIFO: frame by frame, the next chunk in call order.
    let mut expected_adds = xs.chunks(50).chain(ys.chunks(50));
    let mut expected_drops = drops.chunks(50);
    for (_, d) in non_initial {
        if !d.added.is_empty() {
            let chunk = expected_adds.next().unwrap();
            assert_eq!(set(d.added_addrs()), set(chunk.to_vec()));
        }
        if !d.dropped.is_empty() {
            let chunk = expected_drops.next().unwrap();
            assert_eq!(set(d.dropped.clone()), set(chunk.to_vec()));
        }
    }
    let seen_by_b = set(p.b.remote_peers().map(|x| x.addr));
    let mut expected = set(ys);
    expected.insert(v4(1000));
    assert_eq!(seen_by_b, expected);
}

#[test]
fn no_duplicates_within_or_across_frames() {
    let mut p = Pair::connected();
    let mapped: SocketAddr = "[::ffff:45.1.0.7]:6881".parse().unwrap();
    assert_eq!(ut_pex::canonical_addr(mapped), v4(7));
    p.a.add_peer(v4(7), PeerFlags::EMPTY);
    p.a.add_peer(v4(7), PeerFlags::UTP);
    p.a.add_peer(mapped, PeerFlags::SEED);
    p.settle();
    p.a.add_peer(v4(7), PeerFlags::EMPTY); // already advertised
    p.a.add_peer(v4(8), PeerFlags::EMPTY);
    p.drive_bounded(5);
    let all: Vec<SocketAddr> = p
        .decoded(Side::A)
        .iter()
        .flat_map(|(_, d)| d.added_addrs())
        .collect();
    assert_eq!(all, [v4(7), v4(8)]);
    // Adding a queued peer again updated its flags (the last add counts).
    assert_eq!(p.decoded(Side::A)[0].1.added, [(v4(7), Some(0x02))]);
    assert!(p.errors_b.is_empty());
}

#[test]
fn add_then_drop_before_send_cancels() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(0), PeerFlags::EMPTY);
    p.settle();
    // Unsent add then drop: neither is sent. Advertised peer dropped then re-added: neither.
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.a.drop_peer(v4(1));
    p.a.drop_peer(v4(0));
    p.a.add_peer(v4(0), PeerFlags::EMPTY);
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.drive_bounded(5);
    let sent = p.decoded(Side::A);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1.added_addrs(), [v4(2)]);
    assert!(sent[1].1.dropped.is_empty());
    assert_eq!(set(p.b.remote_peers().map(|x| x.addr)), set([v4(0), v4(2)]));
}

#[test]
fn dropped_only_for_advertised() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.settle();
    // b announces v4(9); a's host connects to it too, then loses it: never advertised by a.
    p.b.add_peer(v4(9), PeerFlags::EMPTY);
    p.settle();
    p.a.add_peer(v4(9), PeerFlags::EMPTY);
    p.a.drop_peer(v4(9));
    // Never added; added and cancelled before sending.
    p.a.drop_peer(v4(5));
    p.a.add_peer(v4(6), PeerFlags::EMPTY);
    p.a.drop_peer(v4(6));
    // Advertised: its drop is sent.
    p.a.drop_peer(v4(1));
    p.drive_bounded(5);
    let sent = p.decoded(Side::A);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1.dropped, [v4(1)]);
    assert!(sent[1].1.added.is_empty());
    // Over the whole log, every drop names a peer advertised before.
    let mut advertised = BTreeSet::new();
    for (_, d) in &sent {
        for a in &d.dropped {
            assert!(advertised.remove(a), "{a} dropped but not advertised");
        }
        advertised.extend(d.added_addrs());
    }
    assert_eq!(p.b.stats().ignored_unknown_drop, 0);
}

#[test]
fn remote_peers_not_echoed() {
    let mut p = Pair::connected();
    let x = v4(1);
    p.b.add_peer(x, PeerFlags::EMPTY);
    p.settle();
    assert!(p.a.remote_claims(x).is_some());
    // a's host connects to x (learned from b) and to y: only y goes to b.
    p.a.add_peer(x, PeerFlags::EMPTY);
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.drive_for(10 * MINUTE);
    let added: Vec<SocketAddr> = p
        .decoded(Side::A)
        .iter()
        .flat_map(|(_, d)| d.added_addrs())
        .collect();
    assert_eq!(added, [v4(2)]);
    // Also when b announces z after a queued it but before a's frame goes out.
    p.a.add_peer(v4(4), PeerFlags::EMPTY);
    p.settle(); // a's frame goes now: the next may only go 65 s later
    let z = v4(3);
    p.a.add_peer(z, PeerFlags::EMPTY);
    p.b.add_peer(z, PeerFlags::EMPTY);
    p.settle(); // b's frame announcing z reaches a
    assert!(p.a.remote_claims(z).is_some());
    p.drive_for(10 * MINUTE);
    let added: Vec<Vec<SocketAddr>> = p
        .decoded(Side::A)
        .iter()
        .map(|(_, d)| d.added_addrs())
        .collect();
    assert_eq!(added, [[v4(2)], [v4(4)]]);

    // b loses x while a is still connected to it: now x is news for b.
    p.b.drop_peer(x);
    p.drive_for(10 * MINUTE);
    let last = p.decoded(Side::A).pop().unwrap().1;
    assert_eq!(last.added_addrs(), [x]);
    assert!(p.b.remote_claims(x).is_some());
}

#[test]
fn remote_own_address_never_advertised() {
    let (mut s, t0) = solo(Config::default());
    let remote = v4(50);
    s.set_remote_address(remote);
    s.add_peer(remote, PeerFlags::EMPTY);
    s.add_peer(v4(51), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    let first = decode_frame(&s.poll_transmit().unwrap());
    assert_eq!(first.added_addrs(), [v4(51)]);
    // The remote claims, then drops, its own address: still not news for it.
    let mut t = t0;
    for payload in [pex(&[remote], &[]), pex(&[], &[remote])] {
        t += MINUTE;
        s.handle_message(t, &payload).unwrap();
    }
    for _ in 0..5 {
        t += INTERVAL;
        s.handle_timeout(t);
        while let Some(frame) = s.poll_transmit() {
            let d = decode_frame(&frame);
            assert!(!d.added_addrs().contains(&remote), "echoed {d:?}");
        }
    }
}

#[test]
fn added_f_always_one_byte_per_entry() {
    let mut p = Pair::connected();
    let flags = [0x00, 0x02, 0x0c, 0x10, 0x1f, 0x81];
    let peers = many(70, 0);
    for (i, &a) in peers.iter().enumerate() {
        p.a.add_peer(a, PeerFlags::from_bits(flags[i % flags.len()]));
    }
    p.drive_bounded(5);
    for &a in &peers[..30] {
        p.a.drop_peer(a);
    }
    p.drive_bounded(5);
    let sent = p.decoded(Side::A);
    assert_eq!(sent.len(), 3, "two with adds, one drop-only");
    for (_, d) in &sent {
        let [added, added_f, added6, added6_f] = d.lens;
        assert_eq!(added_f, added / 6, "{d:?}");
        assert_eq!(added6_f, added6 / 18, "{d:?}");
        assert_eq!(d.keys.contains(&"added".into()), added > 0, "no empty keys");
        assert_eq!(d.keys.contains(&"added.f".into()), added > 0);
        assert_eq!(d.keys.contains(&"added6.f".into()), added6 > 0);
    }
    // The flag bytes are the host's, per peer.
    for (_, d) in &sent {
        for (a, f) in &d.added {
            let i = peers.iter().position(|x| x == a).unwrap();
            assert_eq!(*f, Some(flags[i % flags.len()]));
        }
    }
}

// ---- commands -------------------------------------------------------------------------------

#[test]
fn stop_stops_sending_not_receiving() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.settle();
    p.a.stop();
    assert!(!p.a.is_started());
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.a.drop_peer(v4(1));
    assert_eq!(p.a.poll_timeout(), None);
    p.b.add_peer(v4(3), PeerFlags::EMPTY);
    p.drive_for(10 * MINUTE);
    assert_eq!(p.sent_a.len(), 1, "nothing sent while stopped");
    assert_eq!(added_events(&p.events(Side::A)), [v4(3)], "still receiving");

    p.a.start(p.now);
    p.settle();
    let last = p.decoded(Side::A).pop().unwrap().1;
    assert_eq!(last.added_addrs(), [v4(2)]);
    assert_eq!(last.dropped, [v4(1)]);
}

#[test]
fn stop_and_start_keep_spacing() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.settle();
    p.a.stop();
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.advance(10 * SECOND);
    p.a.start(p.now);
    p.drive_bounded(5);
    let times: Vec<Duration> = p.decoded(Side::A).iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [Duration::ZERO, INTERVAL]);
}

#[test]
fn reset_forgets_and_stops() {
    let mut p = Pair::connected();
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.b.add_peer(v4(8), PeerFlags::EMPTY);
    p.settle();
    assert_eq!(p.a.remote_peers().count(), 1);
    // Unpolled: a message from b (an event) and a queued add.
    let now = p.now;
    p.a.handle_message(now + SECOND, &pex(&[v4(9)], &[]))
        .unwrap();
    p.a.add_peer(v4(3), PeerFlags::EMPTY);
    assert_eq!(p.a.pending_events(), 1);

    p.a.reset();
    assert!(!p.a.is_started());
    assert!(p.a.is_enabled(), "the remote's handshake is not forgotten");
    assert_eq!(p.a.remote_peers().count(), 0);
    assert_eq!(p.a.remote_claims(v4(8)), None);
    assert_eq!(p.a.live_peers(), 0);
    assert_eq!(p.a.pending_events(), 0);
    assert_eq!(p.a.poll_timeout(), None);
    p.drive_for(10 * MINUTE);
    assert_eq!(p.sent_a.len(), 1, "stopped");

    // Documented difference from the JS module: after the next start, peers already
    // advertised are dropped; the queued add is forgotten.
    p.a.start(p.now);
    p.drive_bounded(5);
    let last = p.decoded(Side::A).pop().unwrap().1;
    assert!(last.added.is_empty());
    assert_eq!(set(last.dropped), set([v4(1), v4(2)]));
    assert_eq!(p.b.remote_peers().count(), 0);
    // What b says later is learned afresh, as new.
    p.b.add_peer(v4(10), PeerFlags::EMPTY);
    p.drive_bounded(5);
    assert_eq!(added_events(&p.events(Side::A)), [v4(8), v4(10)]);
}

#[test]
fn private_never_sends_ignores_incoming() {
    let private = Config::default().private(true);
    let mut p = Pair::new(private, Config::default());
    assert_eq!(p.a.local_extension_id(), None);
    assert!(!String::from_utf8_lossy(&own_handshake(&p.a)).contains("ut_pex"));
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.connect();
    assert!(
        !p.a.is_enabled(),
        "b advertised ut_pex, but the torrent is private"
    );
    assert!(!p.b.is_enabled(), "a did not advertise ut_pex");
    p.drive_for(10 * MINUTE);
    assert!(p.sent_a.is_empty());
    assert!(p.events(Side::A).is_empty());

    // Incoming messages (a host that routes them anyway) are ignored and counted.
    let before = observe(&p.a);
    let t = p.now;
    p.a.handle_message(t, &capture("libtorrent-2.0.8_1-first-full.bin"))
        .unwrap();
    p.a.handle_message(t, &[0xff; 70_000]).unwrap();
    assert_eq!(p.a.stats().ignored_private, 2);
    assert_eq!(p.a.remote_peers().count(), 0);
    assert_eq!(p.a.poll_event(), None);
    assert_eq!(observe(&p.a).heap_bytes, before.heap_bytes);
    assert!(p.a.poll_transmit().is_none());
}

#[test]
fn config_refuses_interval_under_60s() {
    assert_eq!(MIN_SEND_INTERVAL, MINUTE);
    assert_eq!(Config::default().get_send_interval(), INTERVAL);
    for bad in [Duration::ZERO, SECOND, MINUTE - Duration::from_nanos(1)] {
        assert_eq!(
            Config::default().send_interval(bad).unwrap_err(),
            ConfigError::SendIntervalTooShort
        );
    }
    // 60 s is allowed, and then frames are exactly 60 s apart.
    let config = Config::default().send_interval(MINUTE).unwrap();
    let mut p = Pair::new(config, Config::default());
    p.connect();
    p.a.add_peer(v4(0), PeerFlags::EMPTY);
    p.drive_for(SECOND);
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.drive_for(MINUTE);
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.drive_bounded(5);
    let times: Vec<Duration> = p.decoded(Side::A).iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [Duration::ZERO, MINUTE, 2 * MINUTE]);
}

// ---- receiving ------------------------------------------------------------------------------

#[test]
fn empty_messages_accepted() {
    let (mut s, t0) = solo(Config::default());
    let six_empty = capture("js-ut_pex-5.0.2_timer-empty.bin");
    assert_eq!(six_empty.len(), 67);
    let before = observe(&s);
    for (i, payload) in [&b"de"[..], &six_empty, b"d5:added0:7:added.f0:e"]
        .into_iter()
        .enumerate()
    {
        s.handle_message(t0 + MINUTE * i as u32, payload).unwrap();
    }
    assert_eq!(s.stats().messages_received, 3);
    assert_eq!(s.poll_event(), None);
    let after = observe(&s);
    assert_eq!(after.remote_peers, before.remote_peers);
    assert_eq!(after.heap_bytes, before.heap_bytes);
}

#[test]
fn more_than_50_entries_accepted_up_to_cap() {
    let (mut s, t0) = solo(Config::default());
    let first = many(120, 0);
    s.handle_message(t0, &pex(&first, &[])).unwrap();
    assert_eq!(added_events(&events(&mut s)).len(), 120);
    let second = many(150, 1000);
    s.handle_message(t0 + MINUTE, &pex(&second, &[])).unwrap();
    assert_eq!(added_events(&events(&mut s)).len(), 80);
    assert_eq!(s.remote_peers().count(), 200);
    assert_eq!(s.stats().ignored_over_cap, 70);
}

#[test]
fn dedupe_remote_adds() {
    // libtorrent's second message repeats every peer of its first plus one new one.
    let (mut s, t0) = solo(Config::default());
    s.handle_message(t0, &capture("libtorrent-2.0.8_1-first-full.bin"))
        .unwrap();
    assert_eq!(added_events(&events(&mut s)).len(), 3);
    s.handle_message(
        t0 + 60 * SECOND,
        &capture("libtorrent-2.0.8_2-diff-after-60s.bin"),
    )
    .unwrap();
    assert_eq!(
        added_events(&events(&mut s)),
        [addr("127.0.0.5:46805")],
        "only the new one"
    );
    assert_eq!(s.stats().ignored_duplicate, 3);
    // The same message again, and a duplicate within one message: nothing new.
    s.handle_message(
        t0 + 120 * SECOND,
        &capture("libtorrent-2.0.8_2-diff-after-60s.bin"),
    )
    .unwrap();
    s.handle_message(t0 + 180 * SECOND, &pex(&[v4(1), v4(1)], &[]))
        .unwrap();
    assert_eq!(added_events(&events(&mut s)), [v4(1)]);
    assert_eq!(s.stats().ignored_duplicate, 3 + 4 + 1);
    assert_eq!(s.remote_peers().count(), 5);
}

#[test]
fn drop_of_unclaimed_ignored() {
    let (mut s, t0) = solo(Config::default());
    let dropped_only = capture("transmission-3.00_2-dropped-only.bin");
    s.handle_message(t0, &dropped_only).unwrap();
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.stats().ignored_unknown_drop, 1);
    s.handle_message(t0 + MINUTE, &capture("transmission-3.00_1-first.bin"))
        .unwrap();
    assert_eq!(added_events(&events(&mut s)).len(), 3);
    s.handle_message(t0 + 2 * MINUTE, &dropped_only).unwrap();
    assert_eq!(dropped_events(&events(&mut s)), [addr("127.0.0.5:47005")]);
    // Dropped twice: the second is unclaimed again.
    s.handle_message(t0 + 3 * MINUTE, &dropped_only).unwrap();
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.stats().ignored_unknown_drop, 2);
    assert_eq!(s.stats().peers_dropped_received, 1);
}

#[test]
fn remote_set_capped() {
    let (mut s, t0) = solo(Config::default().max_remote_peers(10));
    let peers = many(25, 0);
    s.handle_message(t0, &pex(&peers, &[])).unwrap();
    assert_eq!(added_events(&events(&mut s)).len(), 10);
    assert_eq!(s.remote_peers().count(), 10);
    assert_eq!(s.stats().ignored_over_cap, 15);
    // Drops make room; adds beyond the cap are ignored again.
    let claimed: Vec<SocketAddr> = s.remote_peers().map(|p| p.addr).take(3).collect();
    let unclaimed: Vec<SocketAddr> = peers
        .iter()
        .copied()
        .filter(|&a| s.remote_claims(a).is_none())
        .take(5)
        .collect();
    s.handle_message(t0 + MINUTE, &pex(&unclaimed, &claimed))
        .unwrap();
    let ev = events(&mut s);
    assert_eq!(dropped_events(&ev).len(), 3);
    assert_eq!(added_events(&ev).len(), 3);
    assert_eq!(s.remote_peers().count(), 10);
    assert_eq!(s.stats().ignored_over_cap, 17);
}

#[test]
fn remote_memory_bounded_events_coalesce() {
    // A remote that churns forever while the host never polls events.
    let cap = 200;
    let (mut s, t0) = solo(Config::default());
    let mut t = t0;
    let mut heap_after_warmup = None;
    for round in 0..300usize {
        t += 11 * SECOND; // 6 per 66 s: under the flood limit
        let adds = many(50, round * 50);
        let drops = if round >= 4 {
            many(50, (round - 4) * 50)
        } else {
            Vec::new()
        };
        s.handle_message(t, &pex(&adds, &drops)).unwrap();
        assert!(s.remote_peers().count() <= cap);
        assert!(s.pending_events() <= 2 * cap + 1, "{}", s.pending_events());
        if round == 20 {
            heap_after_warmup = Some(s.heap_bytes());
        }
        if round > 20 {
            assert_eq!(Some(s.heap_bytes()), heap_after_warmup, "round {round}");
        }
    }
    // The coalesced queue tells the host exactly the final claimed set.
    let ev = events(&mut s);
    assert!(
        dropped_events(&ev).is_empty(),
        "the host saw none of the drops"
    );
    let claimed = set(s.remote_peers().map(|p| p.addr));
    assert_eq!(set(added_events(&ev)), claimed);
    assert_eq!(claimed.len(), 200);
}

// ---- receiving: hygiene --------------------------------------------------------------------

fn received(payload: &[u8], remote: Option<SocketAddr>) -> (PexState, Vec<SocketAddr>) {
    let (mut s, t0) = solo(Config::default());
    if let Some(r) = remote {
        s.set_remote_address(r);
    }
    s.handle_message(t0, payload).unwrap();
    let added = added_events(&events(&mut s));
    (s, added)
}

#[test]
fn port_zero_ignored() {
    let (s, added) = received(
        &pex(&[addr("1.2.3.4:0"), addr("[2a01::1]:0"), v4(1)], &[]),
        None,
    );
    assert_eq!(added, [v4(1)]);
    assert_eq!(s.stats().ignored_port_zero, 2);
}

#[test]
fn unspecified_ignored() {
    let (s, added) = received(&pex(&[addr("0.0.0.0:1"), addr("[::]:1"), v4(1)], &[]), None);
    assert_eq!(added, [v4(1)]);
    assert_eq!(s.stats().ignored_unusable_address, 2);
}

#[test]
fn multicast_ignored() {
    let (s, added) = received(
        &pex(
            &[
                addr("224.0.0.1:1"),
                addr("239.1.2.3:1"),
                addr("[ff02::1]:1"),
                v4(1),
            ],
            &[],
        ),
        None,
    );
    assert_eq!(added, [v4(1)]);
    assert_eq!(s.stats().ignored_unusable_address, 3);
}

#[test]
fn broadcast_ignored() {
    let (s, added) = received(&pex(&[addr("255.255.255.255:1"), v4(1)], &[]), None);
    assert_eq!(added, [v4(1)]);
    assert_eq!(s.stats().ignored_unusable_address, 1);
}

#[test]
fn ipv4_mapped_normalised_to_ipv4() {
    let mapped = addr("[::ffff:45.1.0.1]:6881");
    let (mut s, added) = received(&pex(&[mapped], &[]), None);
    assert_eq!(added, [v4(1)]);
    assert_eq!(s.remote_claims(v4(1)), Some(PeerFlags::EMPTY));
    assert_eq!(s.remote_claims(mapped), Some(PeerFlags::EMPTY));
    let t = Instant::now() + MINUTE;
    // The plain IPv4 form is the same peer; a drop in either form drops it.
    s.handle_message(t, &pex(&[v4(1)], &[])).unwrap();
    assert_eq!(s.stats().ignored_duplicate, 1);
    s.handle_message(t + MINUTE, &pex(&[], &[mapped])).unwrap();
    assert_eq!(events(&mut s), [Event::PeerDropped(v4(1))]);
}

#[test]
fn added_and_dropped_in_one_message_ignored() {
    let (mut s, added) = received(&pex(&[v4(1), v4(2)], &[v4(2)]), None);
    assert_eq!(added, [v4(1)]);
    assert_eq!(
        s.stats().ignored_added_and_dropped,
        2,
        "both entries counted"
    );
    // For an already claimed address: it stays claimed, no event.
    let t = Instant::now() + MINUTE;
    s.handle_message(t, &pex(&[v4(1)], &[v4(1)])).unwrap();
    assert_eq!(s.poll_event(), None);
    assert!(s.remote_claims(v4(1)).is_some());
    // Across families: the mapped form counts as the same address.
    s.handle_message(
        t + MINUTE,
        &pex(&[addr("[::ffff:45.1.0.3]:6881")], &[v4(3)]),
    )
    .unwrap();
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.stats().ignored_added_and_dropped, 6);
}

#[test]
fn local_scope_ignored_from_global_remote() {
    let locals = [
        addr("127.0.0.3:1"),
        addr("10.1.2.3:1"),
        addr("172.16.0.1:1"),
        addr("192.168.1.1:1"),
        addr("169.254.1.1:1"),
        addr("[::1]:1"),
        addr("[fe80::1]:1"),
        addr("[fd00::1]:1"),
        addr("[::ffff:10.0.0.1]:1"),
    ];
    let mut all = locals.to_vec();
    all.push(v4(1));
    all.push(v6(1));
    let (s, added) = received(&pex(&all, &[]), Some(v4(200)));
    assert_eq!(added, [v4(1), v6(1)]);
    assert_eq!(s.stats().ignored_local_address, locals.len() as u64);
    // The libtorrent capture (loopback peers) from a global remote: all ignored.
    let (s, added) = received(&capture("libtorrent-2.0.8_1-first-full.bin"), Some(v6(9)));
    assert!(added.is_empty());
    assert_eq!(s.stats().ignored_local_address, 3);
}

#[test]
fn local_scope_kept_otherwise() {
    let capture = capture("libtorrent-2.0.8_ipv6-first.bin");
    for remote in [
        None,
        Some(addr("127.0.0.2:7000")),
        Some(addr("192.168.0.2:1")),
    ] {
        let (s, added) = received(&capture, remote);
        assert_eq!(added.len(), 3, "{remote:?}");
        assert_eq!(s.stats().ignored_local_address, 0);
    }
}

// ---- receiving: errors leave the state as it was --------------------------------------------

/// A script run on both twins after the refused input: messages, host commands, timeouts,
/// with what each step produced.
fn follow_up(s: &mut PexState, t0: Instant) -> Vec<(Observed, Vec<Decoded>, Vec<Event>)> {
    let mut trace = Vec::new();
    let mut record = |s: &mut PexState| {
        let f = frames(s);
        let e = events(s);
        trace.push((observe(s), f, e));
    };
    for i in 0..8u32 {
        let t = t0 + 20 * SECOND * i;
        let _ = s.handle_message(t, &pex(&[v4(100 + i as usize)], &[v4(99 + i as usize)]));
        record(s);
        s.add_peer(v4(300 + i as usize), PeerFlags::EMPTY);
        s.handle_timeout(t);
        record(s);
    }
    trace
}

/// Two identical states with history; only the first receives `bad`, which must be refused.
/// Then both must look the same and behave the same.
fn assert_refusal_changes_nothing(
    config: Config,
    history: impl Fn(&mut PexState, Instant),
    bad: impl FnOnce(&mut PexState, Instant) -> Result<(), MessageError>,
) -> (MessageError, PexState) {
    let t0 = Instant::now();
    let twin = |_: ()| {
        let mut s = PexState::new(config.clone());
        s.handle_extended_handshake(t0, &handshake_with(1)).unwrap();
        s.start(t0);
        history(&mut s, t0);
        s
    };
    let mut x = twin(());
    let mut y = twin(());
    let before = observe(&x);
    let err = bad(&mut x, t0).expect_err("the input is refused");
    assert_eq!(observe(&x), before);
    assert_eq!(observe(&x), observe(&y));
    let later = t0 + 30 * SECOND;
    assert_eq!(follow_up(&mut x, later), follow_up(&mut y, later));
    (err, x)
}

/// History for the error tests: peers claimed, a peer advertised, a frame decided but not
/// polled, events not polled.
fn history(s: &mut PexState, t0: Instant) {
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    assert!(s.poll_transmit().is_some());
    s.handle_message(t0, &capture("libtorrent-2.0.8_1-first-full.bin"))
        .unwrap();
    s.add_peer(v4(2), PeerFlags::EMPTY);
    s.handle_timeout(t0 + INTERVAL);
}

#[test]
fn too_large_is_error_state_unchanged() {
    let limit = 64 * 1024;
    // Valid bencode (an unknown key), one byte over the limit.
    let mut payload = b"d1:x".to_vec();
    let body = limit + 1 - 4 - 6 - 1;
    payload.extend_from_slice(format!("{body}:").as_bytes());
    payload.resize(payload.len() + body, b'a');
    payload.push(b'e');
    assert_eq!(payload.len(), limit + 1);
    let (err, s) = assert_refusal_changes_nothing(Config::default(), history, |s, t| {
        s.handle_message(t + 10 * SECOND, &payload)
    });
    assert_eq!(
        err,
        MessageError::TooLarge {
            size: limit + 1,
            limit
        }
    );
    assert_eq!(s.stats().errors_too_large, 1);
    // One byte less is accepted.
    let (mut t, t0) = solo(Config::default());
    let mut ok = b"d1:x".to_vec();
    ok.extend_from_slice(format!("{}:", body - 1).as_bytes());
    ok.resize(ok.len() + body - 1, b'a');
    ok.push(b'e');
    assert_eq!(ok.len(), limit);
    t.handle_message(t0, &ok).unwrap();
}

#[test]
fn decode_error_state_unchanged() {
    let good = capture("libtorrent-2.0.8_2-diff-after-60s.bin");
    let truncated = good[..good.len() - 1].to_vec();
    let mut trailing = good.clone();
    trailing.push(b'e');
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"le".to_vec(),
        b"i1e".to_vec(),
        b"d5:added".to_vec(),
        vec![b'd'; 100],
        vec![0xff; 10],
        truncated,
        trailing,
    ];
    for case in cases {
        let (err, s) = assert_refusal_changes_nothing(Config::default(), history, |s, t| {
            s.handle_message(t + 10 * SECOND, &case)
        });
        assert!(matches!(err, MessageError::Decode(_)), "{err:?}");
        assert_eq!(s.stats().errors_decode, 1);
        assert!(PexMessage::decode(&case).is_err());
    }
}

#[test]
fn flood_seventh_within_60s() {
    let msgs = |s: &mut PexState, t0: Instant| {
        for i in 0..6u32 {
            s.handle_message(t0 + 10 * SECOND * i, &pex(&[v4(i as usize)], &[]))
                .unwrap();
        }
    };
    // The 7th within 60 s of the 1st (at t0 + 59 s) is refused and changes nothing.
    let (err, s) = assert_refusal_changes_nothing(Config::default(), msgs, |s, t0| {
        s.handle_message(t0 + 59 * SECOND, &pex(&[v4(50)], &[]))
    });
    assert!(matches!(err, MessageError::TooFrequent { .. }), "{err:?}");
    assert_eq!(s.remote_claims(v4(50)), None);
    // The refused message did not count: the follow-up in `assert_refusal_changes_nothing`
    // (a message every 20 s from t0 + 30 s) was refused at 30 s and 50 s and accepted
    // from 70 s on exactly as on the twin.
    assert_eq!(s.stats().errors_too_frequent, 1 + 2);
}

#[test]
fn flood_window_slides() {
    let (mut s, t0) = solo(Config::default());
    for i in 0..6u32 {
        s.handle_message(t0 + 10 * SECOND * i, b"de").unwrap();
    }
    assert!(s.handle_message(t0 + 59 * SECOND, b"de").is_err());
    assert!(s.handle_message(t0 + 60 * SECOND, b"de").is_ok());
    assert!(s.handle_message(t0 + 69 * SECOND, b"de").is_err());
    assert!(s.handle_message(t0 + 70 * SECOND, b"de").is_ok());
    assert_eq!(s.stats().messages_received, 8);
    assert_eq!(s.stats().errors_too_frequent, 2);
}

#[test]
fn libtorrent_cadence_59_97s_accepted() {
    // libtorrent's measured gaps: 59.97 s. Its captures, replayed for two hours.
    let names = [
        "libtorrent-2.0.8_1-first-full.bin",
        "libtorrent-2.0.8_2-diff-after-60s.bin",
        "libtorrent-2.0.8_3-dropped.bin",
        "libtorrent-2.0.8_ipv6-first.bin",
    ];
    let payloads: Vec<Vec<u8>> = names.iter().map(|n| capture(n)).collect();
    let (mut s, t0) = solo(Config::default());
    let gap = Duration::from_millis(59_970);
    for i in 0..120u32 {
        let payload = &payloads[i as usize % payloads.len()];
        s.handle_message(t0 + gap * i, payload)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    assert_eq!(s.stats().messages_received, 120);
    assert_eq!(s.stats().errors_too_frequent, 0);
}

#[test]
fn rehandshake_burst_accepted() {
    // transmission and anacrolix send an extra message after a re-handshake: a message
    // every 60 s, then a re-handshake followed by a burst of 3 within a second.
    let (mut s, t0) = solo(Config::default());
    let mut t = t0;
    for _ in 0..5 {
        s.handle_message(t, &capture("transmission-3.00_1-first.bin"))
            .unwrap();
        t += MINUTE;
    }
    t -= 5 * SECOND;
    s.handle_extended_handshake(t, &handshake_with(1)).unwrap();
    for i in 0..3u32 {
        s.handle_message(
            t + Duration::from_millis(300) * i,
            &capture("transmission-3.00_1-first.bin"),
        )
        .unwrap_or_else(|e| panic!("burst message {i}: {e}"));
    }
    // And the regular cadence goes on.
    for i in 1..=5u32 {
        s.handle_message(
            t + MINUTE * i,
            &capture("transmission-3.00_2-dropped-only.bin"),
        )
        .unwrap();
    }
    assert_eq!(s.stats().errors_too_frequent, 0);
}

// ---- time ------------------------------------------------------------------------------------

#[test]
fn poll_timeout_none_when_nothing_scheduled() {
    let t0 = Instant::now();
    let mut s = PexState::new(Config::default());
    assert_eq!(s.poll_timeout(), None);
    s.handle_extended_handshake(t0, &handshake_with(1)).unwrap();
    s.start(t0);
    assert_eq!(s.poll_timeout(), None, "nothing to say");
    s.add_peer(v4(1), PeerFlags::EMPTY);
    assert_eq!(s.poll_timeout(), Some(t0), "due at once");
    s.handle_timeout(t0);
    assert!(s.poll_transmit().is_some());
    assert_eq!(s.poll_timeout(), None, "said it all");
    s.handle_message(t0, &pex(&[v4(2)], &[])).unwrap();
    assert_eq!(s.poll_timeout(), None, "receiving schedules nothing");
}

#[test]
fn no_busy_loop_after_timeout() {
    let (mut s, t0) = solo(Config::default());
    for &a in &many(200, 0) {
        s.add_peer(a, PeerFlags::EMPTY);
    }
    // Honour every deadline, polling only every other time, plus spurious calls.
    let mut t = t0;
    for i in 0..20u32 {
        let Some(due) = s.poll_timeout() else { break };
        for call in [due.max(t), due.max(t) + Duration::from_millis(1)] {
            t = call;
            s.handle_timeout(t);
            let after = s.poll_timeout();
            assert!(after.map_or(true, |x| x > t), "{i}: {after:?} <= {t:?}");
        }
        if i % 2 == 0 {
            while s.poll_transmit().is_some() {}
        }
    }
    assert_eq!(s.poll_timeout(), None);
    // The pair harness asserts the same rule on every step and bounds the steps.
    let mut p = Pair::connected();
    for &a in &many(200, 0) {
        p.a.add_peer(a, PeerFlags::EMPTY);
    }
    assert_eq!(p.drive_bounded(10), 3, "one jump per frame after the first");
    assert_eq!(p.elapsed(), 3 * INTERVAL);
}

#[test]
fn time_backwards_and_far_future_no_panic() {
    let (mut s, t0) = solo(Config::default());
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    assert!(s.poll_transmit().is_some());
    let past = t0.checked_sub(Duration::from_secs(3600)).unwrap_or(t0);
    let instants: Vec<Instant> = [
        Some(past),
        t0.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)),
        t0.checked_add(Duration::from_secs(1 << 40)),
        t0.checked_add(Duration::from_secs(u64::MAX / 4)),
        Some(t0),
        Some(past),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (i, &t) in instants.iter().enumerate() {
        s.add_peer(v4(10 + i), PeerFlags::EMPTY);
        s.handle_timeout(t);
        let after = s.poll_timeout();
        assert!(after.map_or(true, |x| x > t), "{i}");
        let _ = s.poll_transmit();
        let _ = s.handle_message(t, &pex(&[v4(100 + i)], &[v4(99 + i)]));
        s.start(t);
        let _ = s.handle_extended_handshake(t, &handshake_with(1 + i as u8));
        while s.poll_event().is_some() {}
    }
}

/// The latest representable `Instant` after `t` (to a second): adding any interval to it
/// overflows.
fn last_instant(t: Instant) -> Instant {
    let mut secs: u64 = 0;
    for bit in (0..64).rev() {
        let candidate = secs | (1 << bit);
        if t.checked_add(Duration::from_secs(candidate)).is_some() {
            secs = candidate;
        }
    }
    t + Duration::from_secs(secs)
}

#[test]
fn latest_instant_counts_and_overflow_means_never() {
    let (mut s, t0) = solo(Config::default());
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    assert!(s.poll_transmit().is_some());
    // Backwards: no time passed.
    s.add_peer(v4(2), PeerFlags::EMPTY);
    if let Some(past) = t0.checked_sub(Duration::from_secs(3600)) {
        s.handle_timeout(past);
        assert!(s.poll_transmit().is_none());
        assert_eq!(s.poll_timeout(), Some(t0 + INTERVAL));
    }
    // Far future, then back: the far instant is the latest seen, so the next frame waits
    // for it plus the interval.
    let far = t0 + Duration::from_secs(1 << 40);
    s.handle_timeout(far);
    assert!(s.poll_transmit().is_some());
    s.add_peer(v4(3), PeerFlags::EMPTY);
    s.handle_timeout(t0 + 2 * INTERVAL);
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.poll_timeout(), Some(far + INTERVAL));
    // The last representable instant: a frame may go, then the next deadline would
    // overflow: never, and no panic, no busy loop.
    let end = last_instant(t0);
    s.handle_timeout(end);
    assert!(s.poll_transmit().is_some());
    s.add_peer(v4(4), PeerFlags::EMPTY);
    s.handle_timeout(end);
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.poll_timeout(), None);
    s.handle_message(end, &pex(&[v4(9)], &[])).unwrap();
    assert_eq!(s.remote_peers().count(), 1);
}

// ---- both sides together ---------------------------------------------------------------------

#[test]
fn two_peers_converge() {
    let mut p = Pair::connected();
    let peers_a = many(30, 0);
    let peers_b = many(30, 100);
    for (&x, &y) in peers_a.iter().zip(&peers_b) {
        p.a.add_peer(x, PeerFlags::UTP);
        p.b.add_peer(y, PeerFlags::SEED);
        p.drive_for(7 * SECOND);
    }
    for &x in &peers_a[..10] {
        p.a.drop_peer(x);
    }
    p.drive_bounded(20);
    assert!(p.errors_a.is_empty() && p.errors_b.is_empty());
    let want_at_b: BTreeSet<Peer> = peers_a[10..]
        .iter()
        .map(|&a| Peer::new(a, PeerFlags::UTP))
        .collect();
    assert_eq!(p.b.remote_peers().collect::<BTreeSet<_>>(), want_at_b);
    assert_eq!(p.a.remote_peers().count(), 30);
}
