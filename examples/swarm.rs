//! The ut_pex demo: peers on loopback that find each other through PEX alone.
//!
//! ```text
//! cargo run --release --example swarm [-- --nodes 30]
//! ```
//!
//! N peers listen on 127.0.0.1 (ephemeral ports). Peer i is told only about peer i−1 (peer 0
//! knows nobody) and dials it. They speak the BitTorrent handshake, BEP 10 and ut_pex over
//! real TCP, each with one [`Swarm`] (one torrent's PEX: a shared log of who it is connected
//! to, a cursor per connection), and dial the peers PEX tells them about (of each pair, the
//! higher listen address dials), until every peer knows every other. A progress line goes
//! to stderr every second, then `converged:` to stdout.
//!
//! Plain threads and blocking sockets: one thread per peer owns its `Swarm` and writes its
//! frames; one thread per connection reads, and passes what PEX needs to its peer's thread
//! over a channel. Time is warped (one protocol minute per wall second): every `Swarm` call
//! gets protocol time, so the real 65-second send interval passes in about a second.
//! A thread per connection keeps the demo readable; a client with thousands of connections
//! drives its `Swarm`s from one event loop instead (see `examples/tokio_peer.rs`).

use std::collections::{BTreeSet, HashMap};
use std::error::Error;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pex_probe::clock::WarpClock;
use pex_probe::wire::{self, Incoming, WireReader};
use ut_pex::{
    Config, ConnectionId, Direction, DisconnectReason, Event, MessageError, PeerFlags, Swarm,
};

/// Every peer of the demo shares this torrent.
const INFO_HASH: [u8; 20] = *b"ut_pex-swarm-demo-ih";
/// Protocol seconds per wall second: the 65-second send interval passes in about a second.
const WARP: f64 = 60.0;
/// Give up (and fail) after this much wall time; 30 peers converge in well under a second.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// What `main` watches; the peers' threads keep it up to date.
#[derive(Default)]
struct Tally {
    /// Per peer, how many others it has heard of: at start, through PEX, or dialled by them.
    known: Vec<AtomicUsize>,
    /// Connections attached to a swarm, counted at both ends.
    attached: AtomicUsize,
    frames: AtomicUsize,
    bytes: AtomicUsize,
}

/// What a connection's thread tells its peer's thread.
enum ToPeer {
    /// The BitTorrent handshakes are done: attach the connection to the swarm, write its
    /// frames to `writer`, and send its id back on `reply`.
    Connected {
        remote: SocketAddr,
        direction: Direction,
        writer: Arc<TcpStream>,
        reply: Sender<ConnectionId>,
    },
    /// An extended message (peer-wire id 20) with its extended id: 0 is the handshake.
    Extended {
        id: ConnectionId,
        ext: u8,
        payload: Vec<u8>,
    },
    /// The connection is gone.
    Closed(ConnectionId),
}

/// What a connection needs from its peer to open the conversation.
#[derive(Clone, Copy)]
struct Local {
    index: usize,
    peer_id: [u8; 20],
    ut_pex_id: Option<u8>,
    listen_port: u16,
}

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nodes = match &args[..] {
        [] => Some(30),
        [flag, n] if flag == "--nodes" => n.parse().ok().filter(|&n: &usize| n >= 2),
        _ => None,
    };
    let Some(nodes) = nodes else {
        eprintln!("usage: swarm [--nodes N (at least 2, default 30)]");
        return Ok(ExitCode::from(2));
    };
    let clock = WarpClock::new(WARP);
    let started = Instant::now();
    let known = (0..nodes).map(|_| AtomicUsize::new(0)).collect();
    let tally = Arc::new(Tally {
        known,
        ..Tally::default()
    });
    let mut previous = None;
    for index in 0..nodes {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let first_contact = previous.replace(listener.local_addr()?);
        let tally = Arc::clone(&tally);
        thread::spawn(move || run_peer(index, listener, first_contact, clock, &tally));
    }

    let mut next_line = started;
    // Returning ends the process, and with it every thread and every socket.
    loop {
        let known: Vec<usize> = tally.known.iter().map(|k| k.load(Relaxed)).collect();
        let converged = known.iter().all(|&k| k == nodes - 1);
        let minutes = clock.elapsed().as_secs_f64() / 60.0;
        let frames = tally.frames.load(Relaxed);
        if converged || Instant::now() >= next_line {
            eprintln!(
                "[{minutes:5.1} protocol min] peers known per node min/avg/max {}/{:.1}/{} of {}, \
                 connected avg {:.1}, ut_pex frames {frames}",
                known.iter().min().unwrap_or(&0),
                known.iter().sum::<usize>() as f64 / nodes as f64,
                known.iter().max().unwrap_or(&0),
                nodes - 1,
                tally.attached.load(Relaxed) as f64 / nodes as f64,
            );
            next_line += Duration::from_secs(1);
        }
        if converged {
            println!(
                "converged: {nodes} nodes, {} peers known by each, after {minutes:.1} protocol \
                 minutes ({:.2} s wall); {} connections, {frames} ut_pex frames ({} bytes)",
                nodes - 1,
                started.elapsed().as_secs_f64(),
                tally.attached.load(Relaxed) / 2,
                tally.bytes.load(Relaxed),
            );
            return Ok(ExitCode::SUCCESS);
        }
        if started.elapsed() > GIVE_UP_AFTER {
            eprintln!("swarm: did not converge within {GIVE_UP_AFTER:?}");
            return Ok(ExitCode::FAILURE);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// One peer: the only owner of its `Swarm`. It feeds the swarm what its connections read,
/// drains it after every input, and waits for the next input or the swarm's next deadline.
fn run_peer(
    index: usize,
    listener: TcpListener,
    first_contact: Option<SocketAddr>,
    clock: WarpClock,
    tally: &Tally,
) {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let mut swarm = Swarm::new(Config::default());
    let local = Local {
        index,
        peer_id: wire::peer_id(index as u64),
        ut_pex_id: swarm.local_extension_id(),
        listen_port: addr.port(),
    };
    let (to_peer, inbox) = mpsc::channel();
    let accepted_to_peer = to_peer.clone();
    thread::spawn(move || {
        for accepted in listener.incoming() {
            match accepted {
                Ok(stream) => {
                    let to_peer = accepted_to_peer.clone();
                    thread::spawn(move || connection(stream, None, local, to_peer));
                }
                Err(e) => eprintln!("peer {index}: accept: {e}"),
            }
        }
    });
    // Where to write each connection's frames: the socket its thread reads (one file
    // descriptor, not a `try_clone`: 30 peers take some 900 of them already).
    let mut writers: HashMap<ConnectionId, Arc<TcpStream>> = HashMap::new();
    // Every peer heard of, so that none is dialled twice.
    let mut known = BTreeSet::new();
    if let Some(contact) = first_contact {
        known.insert(contact);
        dial(contact, local, &to_peer);
    }
    loop {
        let deadline = swarm.poll_timeout().map(|at| clock.wall_instant(at));
        let wait = deadline.map_or(Duration::MAX, |at| {
            at.saturating_duration_since(Instant::now())
        });
        let input = inbox.recv_timeout(wait);
        let now = clock.now();
        match input {
            Err(RecvTimeoutError::Timeout) => swarm.handle_timeout(now),
            Err(RecvTimeoutError::Disconnected) => return, // cannot happen: we hold `to_peer`
            Ok(ToPeer::Connected {
                remote,
                direction,
                writer,
                reply,
            }) => {
                let id = swarm.connect(now, remote, direction, PeerFlags::EMPTY);
                swarm.start(now, id);
                tally.attached.fetch_add(1, Relaxed);
                writers.insert(id, writer);
                let _ = reply.send(id); // its thread waits for it
            }
            Ok(ToPeer::Extended {
                id,
                ext: 0,
                payload,
            }) => {
                match swarm.handle_extended_handshake(now, id, &payload) {
                    // An incoming peer's listen address is known from its `p` on.
                    Ok(()) => known.extend(swarm.dial_address(id)),
                    Err(e) => hang_up(index, &writers, id, &e),
                }
            }
            Ok(ToPeer::Extended { id, ext, payload }) if Some(ext) == local.ut_pex_id => {
                // On `Err` the swarm is unchanged; only a flood is worth a disconnect.
                match swarm.handle_message(now, id, &payload) {
                    Err(e @ MessageError::TooFrequent { .. }) => hang_up(index, &writers, id, &e),
                    Err(e) => eprintln!("peer {index}: {e}"),
                    Ok(()) => {}
                }
            }
            Ok(ToPeer::Extended { .. }) => {} // another extension's: not ours
            Ok(ToPeer::Closed(id)) => {
                writers.remove(&id);
                swarm.disconnect(now, id, DisconnectReason::Other);
                tally.attached.fetch_sub(1, Relaxed);
            }
        }

        // The drain loop, after every input: frames to their connections, then events.
        while let Some((id, frame)) = swarm.poll_transmit() {
            let Some(writer) = writers.get(&id) else {
                continue;
            };
            tally.frames.fetch_add(1, Relaxed);
            tally.bytes.fetch_add(frame.len(), Relaxed);
            if let Err(e) = (&**writer).write_all(frame.as_bytes()) {
                hang_up(index, &writers, id, &e);
            }
        }
        while let Some((_, event)) = swarm.poll_event() {
            // PEX-learned peers are untrusted hints; a real client vets them (`PeerBook`).
            // Here each pair connects once: the higher listen address dials (two peers that
            // dial each other at once would connect twice).
            if let Event::PeerAdded(peer) = event {
                if peer.addr != addr && known.insert(peer.addr) && peer.addr < addr {
                    dial(peer.addr, local, &to_peer);
                }
            }
        }
        tally.known[index].store(known.len(), Relaxed);
    }
}

/// Ends a connection: its thread's read fails, and it reports the connection closed.
fn hang_up(
    peer: usize,
    writers: &HashMap<ConnectionId, Arc<TcpStream>>,
    id: ConnectionId,
    why: &dyn Error,
) {
    eprintln!("peer {peer}: hanging up: {why}");
    if let Some(writer) = writers.get(&id) {
        let _ = writer.shutdown(Shutdown::Both);
    }
}

/// Dials `remote` on a thread of its own, which then runs the connection.
fn dial(remote: SocketAddr, local: Local, to_peer: &Sender<ToPeer>) {
    let to_peer = to_peer.clone();
    thread::spawn(move || match TcpStream::connect(remote) {
        Ok(stream) => connection(stream, Some(remote), local, to_peer),
        Err(e) => eprintln!("peer {}: cannot dial {remote}: {e}", local.index),
    });
}

/// One connection's thread: the handshakes, then every extended message to the peer's
/// thread, until the remote closes or the peer hangs up. An error (a socket error, a
/// misbehaving remote) ends this connection only.
fn connection(
    stream: TcpStream,
    dialled: Option<SocketAddr>,
    local: Local,
    to_peer: Sender<ToPeer>,
) {
    // Shared with the peer's thread, which writes to it (`&TcpStream` reads and writes).
    let stream = Arc::new(stream);
    let mut attached = None;
    let mut run = || -> Result<(), Box<dyn Error>> {
        // The BitTorrent handshake both ways; the reader checks the remote's (19-byte
        // protocol string, our info hash, BEP 10's reserved bit) and yields nothing before it.
        (&*stream).write_all(&wire::handshake(&INFO_HASH, &local.peer_id))?;
        let mut reader = WireReader::new(INFO_HASH);
        while reader.next()?.is_none() {
            if reader.read_from(&mut &*stream)? == 0 {
                return Err("closed before its handshake".into());
            }
        }
        // `p`, our listen port, lets the remote advertise us where we can be dialled.
        let ours = wire::extended_handshake_frame(local.ut_pex_id, Some(local.listen_port), None);
        (&*stream).write_all(&ours)?;
        // A peer we dialled is advertised under the address we dialled; one that dialled us,
        // once its extended handshake gives its listen port.
        let (remote, direction) = match dialled {
            Some(addr) => (addr, Direction::Outgoing),
            None => (stream.peer_addr()?, Direction::Incoming),
        };
        // A remote that stops reading stalls its peer's thread for 5 s at most, then is dropped.
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let writer = Arc::clone(&stream);
        let (reply, reply_rx) = mpsc::channel();
        let connected = ToPeer::Connected {
            remote,
            direction,
            writer,
            reply,
        };
        to_peer.send(connected).map_err(|_| "peer gone")?;
        let id = *attached.insert(reply_rx.recv()?);
        loop {
            // First what is buffered: the extended handshake often comes with the handshake.
            while let Some(incoming) = reader.next()? {
                // The rest of the peer-wire protocol is not PEX's business.
                if let Incoming::Extended { id: ext, payload } = incoming {
                    let payload = payload.to_vec();
                    let extended = ToPeer::Extended { id, ext, payload };
                    to_peer.send(extended).map_err(|_| "peer gone")?;
                }
            }
            if reader.read_from(&mut &*stream)? == 0 {
                return Ok(()); // the remote closed, or the peer hung up
            }
        }
    };
    if let Err(e) = run() {
        eprintln!("peer {}: connection: {e}", local.index);
    }
    if let Some(id) = attached {
        let _ = to_peer.send(ToPeer::Closed(id));
    }
}
