//! Smoke tests of `Swarm`: late attach gets the live set; drops only for advertised peers.
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use ut_pex::{Config, Direction, DisconnectReason, Event, PeerFlags, PexMessage, Swarm};

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881))
}

fn decode(frame: &ut_pex::Frame) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let payload = frame.payload();
    let m = PexMessage::decode(&payload).unwrap();
    (m.added().map(|p| p.addr).collect(), m.dropped().collect())
}

#[test]
fn late_connection_gets_live_set_then_deltas() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let mut ids = Vec::new();
    for i in 1..=60 {
        ids.push(swarm.connect(t0, addr(i), Direction::Outgoing, PeerFlags::EMPTY));
    }
    // 5 peers leave for good.
    for id in ids.drain(..5) {
        swarm.disconnect(t0, id, DisconnectReason::Other);
    }
    let late = swarm.connect(t0, addr(1000), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.set_remote_extension_id(t0, late, 3);
    swarm.start(t0, late);
    while swarm.poll_event().is_some() {}
    let (id, frame) = swarm.poll_transmit().expect("first frame");
    assert_eq!(id, late);
    assert_eq!(frame.extension_id(), 3);
    let (added, dropped) = decode(&frame);
    // The live set, in connection order, capped at 50, never the remote itself.
    let expected: Vec<_> = (6..=55).map(addr).collect();
    assert_eq!(added, expected);
    assert!(dropped.is_empty());
    assert!(swarm.poll_transmit().is_none());
    // One interval later: the rest of the live set.
    let t1 = t0 + Duration::from_secs(65);
    assert_eq!(swarm.poll_timeout(), Some(t1));
    swarm.handle_timeout(t1);
    let (_, frame) = swarm.poll_transmit().expect("second frame");
    let (added, dropped) = decode(&frame);
    assert_eq!(added, (56..=60).map(addr).collect::<Vec<_>>());
    assert!(dropped.is_empty());
    // A peer sent leaves, one not... all were sent now; drop one.
    swarm.disconnect(t1, ids[0], DisconnectReason::Other);
    let t2 = t1 + Duration::from_secs(65);
    swarm.handle_timeout(t2);
    let (_, frame) = swarm.poll_transmit().expect("third frame");
    assert_eq!(decode(&frame), (vec![], vec![addr(6)]));
    assert_eq!(swarm.poll_timeout(), None);
}

#[test]
fn remote_claimed_peers_are_not_echoed() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let a = swarm.connect(t0, addr(1), Direction::Outgoing, PeerFlags::EMPTY);
    let msg = ut_pex::message::encode_payload(&[ut_pex::Peer::new(addr(2), PeerFlags::SEED)], &[]);
    swarm.handle_message(t0, a, &msg).unwrap();
    assert_eq!(
        swarm.poll_event(),
        Some((
            a,
            Event::PeerAdded(ut_pex::Peer::new(addr(2), PeerFlags::SEED))
        ))
    );
    // We connect to 2 and 3; remote a announced 2, so only 3 goes to a.
    let _b = swarm.connect(t0, addr(2), Direction::Outgoing, PeerFlags::EMPTY);
    let _c = swarm.connect(t0, addr(3), Direction::Outgoing, PeerFlags::EMPTY);
    swarm.set_remote_extension_id(t0, a, 1);
    swarm.start(t0, a);
    let (id, frame) = swarm.poll_transmit().unwrap();
    assert_eq!(id, a);
    assert_eq!(decode(&frame).0, vec![addr(3)]);
    // The remote stops claiming 2: it is news for a again.
    let t1 = t0 + Duration::from_secs(65);
    let msg = ut_pex::message::encode_payload(&[], &[addr(2)]);
    swarm.handle_message(t1, a, &msg).unwrap();
    swarm.handle_timeout(t1);
    let (_, frame) = swarm.poll_transmit().unwrap();
    assert_eq!(decode(&frame).0, vec![addr(2)]);
}
