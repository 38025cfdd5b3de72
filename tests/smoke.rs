//! Smoke test: two states exchange a frame.
use std::time::{Duration, Instant};
use ut_pex::{Config, Event, PeerFlags, PexMessage, PexState};

#[test]
fn first_frame_then_spacing() {
    let t0 = Instant::now();
    let mut a = PexState::new(Config::default());
    let mut b = PexState::new(Config::default());
    a.add_peer("1.2.3.4:5".parse().unwrap(), PeerFlags::SEED);
    a.start(t0);
    assert!(a.poll_transmit().is_none());
    a.handle_extended_handshake(t0, b"d1:md6:ut_pexi7eee")
        .unwrap();
    assert_eq!(a.poll_event(), Some(Event::Enabled));
    let frame = a.poll_transmit().expect("first frame");
    assert_eq!(frame.extension_id(), 7);
    b.handle_message(t0, &frame.payload()).unwrap();
    let ev = b.poll_event().unwrap();
    assert!(matches!(ev, Event::PeerAdded(p) if p.flags == PeerFlags::SEED));
    a.add_peer("1.2.3.5:5".parse().unwrap(), PeerFlags::EMPTY);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(65)));
    a.handle_timeout(t0 + Duration::from_secs(64));
    assert!(a.poll_transmit().is_none());
    a.handle_timeout(t0 + Duration::from_secs(65));
    let f2 = a.poll_transmit().unwrap();
    let m = PexMessage::decode(&f2.as_bytes()[6..]).unwrap();
    assert_eq!(m.added_len(), 1);
    assert_eq!(a.poll_timeout(), None);
}
