//! BEP 10 scenarios: the handshake's `m` dictionary maps extension names to ids ("Setting
//! an extension number to zero means that the extension is not supported/disabled"), later
//! handshakes update them, and sending starts only once the remote enables `ut_pex`.
//!
//! Every scenario runs twice (`for_each_host!`): against a `PexState` and against a
//! one-connection `Swarm`.

use testkit::addr::v4;
use testkit::pair::*;
use ut_pex::{Config, Event, PeerFlags};

// ---- sending: when ---------------------------------------------------------------------

/// Nothing is sent before the extension is negotiated (BEP 10: a message "as specified by
/// the handshake") and before the host calls `start`.
fn nothing_sent_before_start<H: Host>() {
    let mut p = Pair::<H>::new(Config::default(), Config::default());
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

/// BEP 10: "Setting an extension number to zero means that the extension is not
/// supported/disabled"; a remote that never names `ut_pex` is never sent a frame.
fn nothing_sent_before_remote_enables<H: Host>() {
    let mut p = Pair::<H>::new(Config::default(), Config::default());
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

/// BEP 10: "the m dictionary is additive. It's enough that it contains the actual CHANGES
/// to the extension list": a later handshake without `ut_pex` leaves PEX as it was.
fn later_handshake_without_ut_pex_changes_nothing<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// BEP 10: "The extension message IDs are the IDs used to send the extension messages to
/// the peer sending this handshake": a new id is used from the next frame on.
fn new_remote_id_used_from_next_frame<H: Host>() {
    let mut p = Pair::<H>::connected();
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
    let (mut s, t0) = solo::<H>(Config::default());
    s.handle_extended_handshake(t0, &handshake_with(3)).unwrap();
    s.add_peer(v4(1), PeerFlags::EMPTY);
    s.handle_timeout(t0);
    s.handle_extended_handshake(t0, &handshake_with(7)).unwrap();
    let frame = s.poll_transmit().expect("the decided frame");
    assert_eq!(frame.extension_id(), 7);
}

/// BEP 10: "Setting an extension number to zero means that the extension is not
/// supported/disabled": a later `ut_pex: 0` turns sending off, with `Event::Disabled`.
fn ut_pex_zero_disables_and_emits_disabled<H: Host>() {
    let mut p = Pair::<H>::connected();
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

/// BEP 10 (0 disables): a disable and an enable polled together are no change, so no
/// events.
fn disable_then_enable_before_polling_cancels_events<H: Host>() {
    let (mut s, t0) = solo::<H>(Config::default());
    s.handle_extended_handshake(t0, &handshake_with(0)).unwrap();
    s.handle_extended_handshake(t0, &handshake_with(2)).unwrap();
    assert_eq!(s.pending_events(), 0);
    assert!(s.is_enabled());
}

testkit::for_each_host!(
    nothing_sent_before_start,
    nothing_sent_before_remote_enables,
    later_handshake_without_ut_pex_changes_nothing,
    new_remote_id_used_from_next_frame,
    ut_pex_zero_disables_and_emits_disabled,
    disable_then_enable_before_polling_cancels_events,
);
