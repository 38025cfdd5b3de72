//! The `Swarm` time convention: an input on one connection may make that connection's frame
//! due, never another's; what else is due waits for `handle_timeout`, and `poll_timeout`
//! says when.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ut_pex::{Config, ConnectionId, Direction, PeerFlags, Swarm};

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([203, 0, 113, i], 6881))
}

fn open(swarm: &mut Swarm, now: Instant, i: u8) -> ConnectionId {
    let id = swarm.connect(now, addr(i), Direction::Outgoing, PeerFlags::EMPTY);
    swarm
        .handle_extended_handshake(now, id, b"d1:md6:ut_pexi1eee")
        .unwrap();
    swarm.start(now, id);
    id
}

fn frames(swarm: &mut Swarm) -> Vec<ConnectionId> {
    std::iter::from_fn(|| swarm.poll_transmit().map(|(id, _)| id)).collect()
}

#[test]
fn a_message_on_one_connection_never_sends_on_another() {
    let t0 = Instant::now();
    let mut swarm = Swarm::new(Config::default());
    let a = open(&mut swarm, t0, 1);
    let b = open(&mut swarm, t0, 2);
    swarm.handle_timeout(t0);
    let first = frames(&mut swarm);
    assert!(first.contains(&a) && first.contains(&b), "{first:?}");

    // A third peer connects after the send interval: news for both, due at once.
    let t1 = t0 + swarm.config().get_send_interval() + Duration::from_secs(1);
    let _c = swarm.connect(t1, addr(3), Direction::Outgoing, PeerFlags::EMPTY);
    assert!(swarm.poll_timeout().is_some_and(|t| t <= t1));
    assert!(frames(&mut swarm).is_empty(), "connect fired a timer");

    // A message on `a` makes a's frame due, not b's.
    swarm.handle_message(t1, a, b"de").unwrap();
    assert_eq!(frames(&mut swarm), [a]);
    assert!(
        swarm.poll_timeout().is_some_and(|t| t <= t1),
        "b is still due"
    );

    // `handle_timeout` fires the rest.
    swarm.handle_timeout(t1);
    assert_eq!(frames(&mut swarm), [b]);
    assert!(swarm.poll_timeout().is_none_or(|t| t > t1));
}
