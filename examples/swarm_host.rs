//! A `Swarm` host in one short loop: one torrent, three connections, no sockets, no sleeping.
//!
//! Run it with `cargo run --example swarm_host`. A hub holds one [`Swarm`] for the torrent and
//! is connected to three peers, each with a [`PexState`] of its own. The "network" is a pair
//! of byte queues per connection (read back with the probe's [`WireReader`]), and time is
//! ours to move: sans-IO means the host jumps straight to the next `poll_timeout`. The hub's
//! first frames tell each peer about the other two; then peer 3 leaves, and one send interval
//! (65 s) later the hub's next frames drop it.

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pex_probe::wire::{self, Incoming, Routed, WireReader};
use ut_pex::{
    BookConfig, Config, ConnectionId, Direction, DisconnectReason, Event, PeerBook, PeerFlags,
    PexState, Swarm,
};

const INFO_HASH: [u8; 20] = *b"swarm_host example!!";
/// The hub's address, as the peers know it (the source of what they learn by PEX).
const HUB: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(127, 0, 0, 1),
    6881,
));

/// One connection: the hub's end is `id` in its swarm, the far end is `peer`.
struct Link {
    id: ConnectionId,
    addr: SocketAddr,
    peer: PexState,
    /// Whom the peer would dial: what PEX teaches it, through its candidate pool.
    book: PeerBook,
    /// Bytes on their way to the hub, and to the peer.
    to_hub: WireReader,
    to_peer: WireReader,
}

fn main() -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let mut now = start;
    let mut hub = Swarm::new(Config::default());
    let mut links = Vec::new();
    for i in 1..=3u8 {
        let addr = SocketAddr::from(([127, 0, 0, 1 + i], 6881));
        // The hub dialled this peer (after the BitTorrent handshake): an outgoing connection
        // is live, so advertised to the others, from now on.
        let id = hub.connect(now, addr, Direction::Outgoing, PeerFlags::EMPTY);
        hub.start(now, id);
        let mut peer = PexState::new(Config::default());
        peer.start(now);
        let (mut to_hub, mut to_peer) = (WireReader::new(INFO_HASH), WireReader::new(INFO_HASH));
        // Each side opens with its BitTorrent handshake and its extended handshake.
        to_hub.feed(&wire::handshake(&INFO_HASH, &wire::peer_id(i.into())));
        to_hub.feed(&wire::extended_handshake_frame(
            peer.local_extension_id(),
            None,
            None,
        ));
        to_peer.feed(&wire::handshake(&INFO_HASH, &wire::peer_id(0)));
        to_peer.feed(&wire::extended_handshake_frame(
            hub.local_extension_id(),
            None,
            None,
        ));
        links.push(Link {
            id,
            addr,
            // The secret is the host's randomness (fixed here, so the example repeats).
            book: PeerBook::new(BookConfig::default(), [i; 16]),
            peer,
            to_hub,
            to_peer,
        });
    }
    let leaver = links[2].addr;
    let mut drops_heard = 0;

    loop {
        let t = now.duration_since(start).as_secs();
        // 1. Input: route what each side received. Extended id 0 is the extended handshake;
        //    the id we put in our own handshake's `m` is ut_pex.
        for link in &mut links {
            while let Some(item) = link.to_hub.next()? {
                match item {
                    Incoming::Extended { id: 0, payload } => {
                        hub.handle_extended_handshake(now, link.id, payload)?
                    }
                    Incoming::Extended { id, payload } if Some(id) == hub.local_extension_id() => {
                        hub.handle_message(now, link.id, payload)?
                    }
                    _ => {} // the BitTorrent handshake, keep-alives, the rest of the protocol
                }
            }
            while let Some(item) = link.to_peer.next()? {
                if let Incoming::Extended { id, payload } = item {
                    if let Routed::Pex(Err(e)) =
                        wire::route_extended(&mut link.peer, now, id, payload)?
                    {
                        return Err(e.into());
                    }
                }
            }
        }
        // 2. Output: drain the swarm (frames tagged by connection), then each peer.
        let mut sent = false;
        while let Some((id, frame)) = hub.poll_transmit() {
            if let Some(link) = links.iter_mut().find(|l| l.id == id) {
                println!(
                    "[{t:>3} s] hub -> {}: a ut_pex frame of {} bytes",
                    link.addr,
                    frame.len()
                );
                link.to_peer.feed(frame.as_bytes());
                sent = true;
            }
        }
        while let Some((id, event)) = hub.poll_event() {
            println!("[{t:>3} s] hub, connection {id:?}: {event:?}");
        }
        for link in &mut links {
            while let Some(frame) = link.peer.poll_transmit() {
                link.to_hub.feed(frame.as_bytes());
                sent = true;
            }
            while let Some(event) = link.peer.poll_event() {
                println!("[{t:>3} s] {} hears: {event:?}", link.addr);
                drops_heard += usize::from(event == Event::PeerDropped(leaver));
                link.book.on_event(now, HUB, &event);
            }
            while let Some(candidate) = link.book.poll_dial(now) {
                // A real host dials it now and answers `connected` or `dial_failed`; here
                // the dial is taken as made.
                println!("[{t:>3} s] {} dials {candidate}", link.addr);
                link.book.connected(now, candidate);
            }
        }
        if drops_heard == 2 {
            break;
        }
        // 3. A host decision: once everyone has heard of everyone, peer 3 leaves.
        if links.len() == 3 && links.iter().all(|l| l.peer.stats().messages_received > 0) {
            println!("[{t:>3} s] {leaver} disconnects");
            hub.disconnect(now, links[2].id, DisconnectReason::Other);
            links.pop();
            continue;
        }
        if sent {
            continue; // deliver it first: it is "now" until the queues are empty
        }
        // 4. Time: jump to the earliest deadline, and fire what is due.
        let next = links.iter().filter_map(|l| l.peer.poll_timeout());
        let Some(at) = next.chain(hub.poll_timeout()).min() else {
            return Err("nothing left to wait for".into());
        };
        now = now.max(at);
        if now - start > Duration::from_secs(600) {
            return Err("the drop never arrived".into());
        }
        hub.handle_timeout(now);
        for link in &mut links {
            link.peer.handle_timeout(now);
        }
    }
    println!("both remaining peers heard that {leaver} left");
    Ok(())
}
