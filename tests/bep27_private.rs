//! BEP 27: a private torrent exchanges no peers via PEX.
//!
//! The scenario runs twice (`for_each_host!`): against a `PexState` and against a
//! one-connection `Swarm`.

use testkit::addr::v4;
use testkit::pair::*;
use ut_pex::{Config, PeerFlags};

/// BEP 27: peer exchange "subverts the tracker's access control" of a private torrent: our
/// handshake leaves `ut_pex` out, nothing is ever sent, and incoming messages are ignored
/// and counted.
fn private_never_sends_ignores_incoming<H: Host>() {
    let private = Config::default().private(true);
    let mut p = Pair::<H>::new(private, Config::default());
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

testkit::for_each_host!(private_never_sends_ignores_incoming,);
