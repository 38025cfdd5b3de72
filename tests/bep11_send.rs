//! BEP 11 sending rules, one scenario per rule, under virtual time: at most
//! one message per minute, at most 50 added and 50 dropped per message (except the
//! initial one), no duplicates, "An added contact must not be dropped in the same message",
//! and the commands and timers that drive sending.
//!
//! Every scenario runs twice (`for_each_host!`): against a `PexState` and against a
//! one-connection `Swarm`; the two tests after it say why they are not.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::addr::{addr, pex, v4, v6};
use testkit::pair::*;
use testkit::reference::decode_frame;
use ut_pex::{Config, ConfigError, Peer, PeerFlags, MIN_SEND_INTERVAL};

// ---- sending: what --------------------------------------------------------------------------

/// BEP 11: "Except for the initial PEX message the combined amount of added v4/v6 contacts
/// should not exceed 50 entries. The same applies to dropped entries."
/// The initial message carries the live set up to `Config::initial_max_peers`, then the
/// rest follows, 50 per message, first in, first out.
fn first_frame_carries_live_set_up_to_initial_cap<H: Host>() {
    let peers = many(120, 0);
    for (initial, expected) in [(None, vec![50, 50, 20]), (Some(100), vec![100, 20])] {
        let mut config = Config::default();
        if let Some(n) = initial {
            config = config.initial_max_peers(n);
        }
        let mut p = Pair::<H>::new(config, Config::default());
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

/// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
/// Frames are exactly `Config::send_interval` apart under a steady trickle of news.
fn frames_spaced_by_send_interval<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
/// Spacing counts from when a frame is polled, not from when it was decided.
fn frames_spaced_even_when_polled_late<H: Host>() {
    // The host decides a frame at t0 (handle_timeout) but only polls it at t0 + 30 s, after
    // another input: the frame leaves at t0 + 30 s, so the next may not leave before
    // t0 + 30 s + interval.
    let (mut s, t0) = solo::<H>(Config::default());
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

/// BEP 11: `added: <one or more contacts in IPv4 compact format (string)>`: no frame is
/// ever empty, also when its content cancels out before it is polled.
fn never_an_empty_frame<H: Host>() {
    let mut p = Pair::<H>::connected();
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
    let (mut s, t0) = solo::<H>(Config::default());
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    assert!(s.poll_transmit().is_some());
    s.add_peer(v4(2), PeerFlags::EMPTY);
    s.handle_timeout(t0 + INTERVAL);
    s.drop_peer(v4(2));
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.poll_timeout(), None);
}

/// BEP 11: "Except for the initial PEX message the combined amount of added v4/v6 contacts
/// should not exceed 50 entries. The same applies to dropped entries."
/// After the initial message, at most 50 added and 50 dropped per frame, in call order.
fn at_most_50_added_and_50_dropped_fifo<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// BEP 11: "A peer must only be included in an added field once a connection is
/// successfully established": one entry per address (the mapped form included), never sent
/// again while the remote has it; the last flags count.
fn no_duplicates_within_or_across_frames<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// BEP 11: "A peer must only be included in an added field once a connection is
/// successfully established": an address no connection can have (port 0, unspecified,
/// multicast, broadcast) is never sent, whatever the host adds.
fn unusable_local_peers_never_sent<H: Host>() {
    let (mut s, t0) = solo::<H>(Config::default());
    for bad in [
        "1.2.3.4:0",
        "0.0.0.0:1",
        "224.0.0.1:1",
        "255.255.255.255:1",
        "[::]:1",
    ] {
        s.add_peer(addr(bad), PeerFlags::EMPTY);
    }
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    let sent = frames(&mut s);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].added_addrs(), [v4(1)]);
    assert_eq!(s.poll_timeout(), None, "nothing else to say");
}

/// BEP 11: "An added contact must not be dropped in the same message." An add and a drop
/// of one address before a frame cancel.
fn add_then_drop_before_send_cancels<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// BEP 11: "Once a peer has been added a client must ensure to send the corresponding
/// dropped event when appropriate." And only then: `dropped` names only peers this remote
/// was told about.
fn dropped_only_for_advertised<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// No echo (the map's reading of BEP 11's "A peer must only be included in an added field
/// once a connection is successfully established"): a remote is never
/// sent the peers it announced, until it drops them.
fn remote_peers_not_echoed<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// No echo (the map's reading of BEP 11's "A peer must only be included in an added field
/// once a connection is successfully established"): a remote is never
/// sent its own address, even after it claims and drops it.
fn remote_own_address_never_advertised<H: Host>() {
    let remote = v4(50);
    let (mut s, t0) = solo_with_remote::<H>(Config::default(), Some(remote));
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

/// BEP 11: `added.f: <optional, bit-flags, 1 byte per added IPv4 peer (string)>`. We always
/// send it, one byte per entry, with the host's flag bits (unknown bits kept: "Other bits
/// are reserved for future use").
fn added_f_always_one_byte_per_entry<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// `stop` (the JS module's) pauses sending only; BEP 11's "A peer must only be included
/// in an added field once a connection is successfully established" still holds once
/// sending resumes: the queued news goes out then.
fn stop_stops_sending_not_receiving<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
/// A stop and start never lets a frame out early.
fn stop_and_start_keep_spacing<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
/// `Config::send_interval` refuses less than `MIN_SEND_INTERVAL` (60 s); at 60 s frames
/// are exactly a minute apart.
fn config_refuses_interval_under_60s<H: Host>() {
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
    let mut p = Pair::<H>::new(config, Config::default());
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

// ---- time -----------------------------------------------------------------------------------

/// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
/// The deadline is the next frame's: none while there is nothing to say.
fn poll_timeout_none_when_nothing_scheduled<H: Host>() {
    let t0 = Instant::now();
    let mut s = H::open(Config::default(), t0, None);
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

/// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
/// After `handle_timeout(now)` the deadline is past `now` or gone: no busy loop.
fn no_busy_loop_after_timeout<H: Host>() {
    let (mut s, t0) = solo::<H>(Config::default());
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
    let mut p = Pair::<H>::connected();
    for &a in &many(200, 0) {
        p.a.add_peer(a, PeerFlags::EMPTY);
    }
    assert_eq!(p.drive_bounded(10), 3, "one jump per frame after the first");
    assert_eq!(p.elapsed(), 3 * INTERVAL);
}

/// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
/// Whatever instants the host passes (backwards, far future), nothing panics and the
/// deadline is never due again at once.
fn time_backwards_and_far_future_no_panic<H: Host>() {
    let (mut s, t0) = solo::<H>(Config::default());
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

/// BEP 11: "Clients must batch updates to send no more than 1 PEX message per minute."
/// The latest instant seen counts; a deadline past the last representable instant is
/// never.
fn latest_instant_counts_and_overflow_means_never<H: Host>() {
    let (mut s, t0) = solo::<H>(Config::default());
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
    let end = testkit::time::far_future(t0);
    s.handle_timeout(end);
    assert!(s.poll_transmit().is_some());
    s.add_peer(v4(4), PeerFlags::EMPTY);
    s.handle_timeout(end);
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.poll_timeout(), None);
    s.handle_message(end, &pex(&[v4(9)], &[])).unwrap();
    assert_eq!(s.remote_peers().count(), 1);
}

// ---- both sides together --------------------------------------------------------------------

/// BEP 11: "A peer must only be included in an added field once a connection is
/// successfully established and included in the dropped field once it is disconnected."
/// Two sides exchanging both ways end with each other's live sets.
fn two_peers_converge<H: Host>() {
    let mut p = Pair::<H>::connected();
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

testkit::for_each_host!(
    first_frame_carries_live_set_up_to_initial_cap,
    frames_spaced_by_send_interval,
    frames_spaced_even_when_polled_late,
    never_an_empty_frame,
    at_most_50_added_and_50_dropped_fifo,
    no_duplicates_within_or_across_frames,
    unusable_local_peers_never_sent,
    add_then_drop_before_send_cancels,
    dropped_only_for_advertised,
    remote_peers_not_echoed,
    remote_own_address_never_advertised,
    added_f_always_one_byte_per_entry,
    stop_stops_sending_not_receiving,
    stop_and_start_keep_spacing,
    config_refuses_interval_under_60s,
    poll_timeout_none_when_nothing_scheduled,
    no_busy_loop_after_timeout,
    time_backwards_and_far_future_no_panic,
    latest_instant_counts_and_overflow_means_never,
    two_peers_converge,
);

// ---- not for both hosts ------------------------------------------------------------------

/// BEP 11: "Once a peer has been added a client must ensure to send the corresponding
/// dropped event when appropriate." After `reset`, what was advertised is dropped.
///
/// `PexState` only: `reset` (the JS module's) has no `Swarm` counterpart; a `Swarm` host
/// ends a connection with `disconnect` and opens a new one (`swarm.rs`).
#[test]
fn reset_forgets_and_stops() {
    let mut p: Pair = Pair::connected();
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

/// BEP 11: "Once a peer has been added a client must ensure to send the corresponding
/// dropped event when appropriate", also for a peer that left, came back and left again
/// while the cursor was more than a frame behind (two resets around a re-add).
///
/// Found by the old `state_properties` model: the drop owed for such a peer was forgotten
/// when the walk first reached it with a full batch, so the next frame skipped it as one
/// that had never been sent.
#[test]
fn drop_owed_across_a_full_frame_is_still_sent() {
    let bulk = |i: usize| {
        if i % 2 == 0 {
            v4(1000 + i)
        } else {
            v6(1000 + i)
        }
    };
    let config = Config::default()
        .send_interval(Duration::from_secs(65))
        .unwrap()
        .initial_max_peers(80);
    let mut p: Pair = Pair::new(config, Config::default());
    p.a.add_peer(v4(1), PeerFlags::EMPTY);
    p.a.add_peer(v4(2), PeerFlags::EMPTY);
    p.handshake();
    (1..118).for_each(|i| p.a.add_peer(bulk(i), PeerFlags::SEED));
    p.a.start(p.now);
    p.settle();
    p.a.reset();
    (80..150)
        .chain(0..42)
        .for_each(|i| p.a.add_peer(bulk(i), PeerFlags::SEED));
    p.drive_for(Duration::from_secs(65));
    (0..150).for_each(|i| p.a.add_peer(bulk(i), PeerFlags::SEED));
    p.a.start(p.now);
    p.settle();
    p.a.reset();
    p.a.start(p.now);
    p.drive_for(10 * MINUTE);

    let mut view = BTreeSet::new();
    for (_, frame) in p.decoded(Side::A) {
        view.extend(frame.added_addrs());
        for gone in &frame.dropped {
            assert!(view.remove(gone), "{gone} dropped but never added");
        }
    }
    assert_eq!(view, BTreeSet::new(), "advertised, left, and never dropped");
}

/// BEP 11: "A peer must only be included in an added field once a connection is
/// successfully established": the unusable addresses a host adds are refused, and the host
/// can tell.
///
/// Not a `for_each_host!` scenario: `PexState` counts them in
/// `Stats::ignored_local_unusable`, while `Swarm::add_peer` returns `false` (a `Swarm`'s
/// stats are per connection, and an added peer is the whole torrent's).
#[test]
fn unusable_local_peers_counted_or_refused() {
    let (mut s, _) = solo::<ut_pex::PexState>(Config::default());
    let mut swarm = ut_pex::Swarm::new(Config::default());
    for bad in ["1.2.3.4:0", "[::]:1", "239.1.2.3:1"] {
        s.add_peer(addr(bad), PeerFlags::EMPTY);
        assert!(!swarm.add_peer(addr(bad), PeerFlags::EMPTY), "{bad}");
    }
    assert_eq!(s.stats().ignored_local_unusable, 3);
    assert!(swarm.add_peer(v4(1), PeerFlags::EMPTY));
    assert_eq!(swarm.live_count(), 1);
}
