//! The ut_pex demo: a swarm of peers on loopback that find each other through PEX alone.
//!
//! ```text
//! cargo run --release --example swarm [-- --nodes 30 --warp 60 --seed 1]
//! ```
//!
//! N peers listen on 127.0.0.1 (ephemeral ports). Peer i is told only about peer i−1 (peer 0
//! knows nobody). They speak the BitTorrent handshake, BEP 10 and ut_pex over real loopback
//! TCP, with one [`Swarm`] per peer (the torrent-wide PEX state: one shared log, a cursor per
//! connection), and dial every peer PEX tells them about, until every peer knows every other.
//! Then a `converged:` line goes to stdout.
//!
//! Everything runs in one thread: mio readiness polling for the sockets and one timer queue
//! fed by every peer's [`Swarm::poll_timeout`]. Time is warped (`--warp 60`: one protocol
//! minute per wall second): every `Swarm` call gets protocol time, so the real 65-second send
//! interval of the default `Config` passes in about a second.
//!
//! Every peer ends up connected to every other, so N peers need about N² sockets (30: ~900
//! file descriptors).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use ut_pex::{
    Config, ConnectionId, Direction, DisconnectReason, Event, MessageError, PeerFlags, Swarm,
};

use pex_probe::clock::{WarpClock, XorShift};
use pex_probe::wire::{self, Incoming, WireError, WireReader};

/// Every peer of the demo shares this torrent.
const INFO_HASH: [u8; 20] = *b"ut_pex-swarm-demo-ih";

/// Give up after this much protocol time…
const MAX_PROTOCOL_TIME: Duration = Duration::from_secs(60 * 60);
/// …or this much wall time.
const MAX_WALL_TIME: Duration = Duration::from_secs(120);

const USAGE: &str = "usage: swarm [--nodes N] [--warp X] [--seed S]";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("swarm: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("swarm: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    nodes: usize,
    warp: f64,
    seed: u64,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Self {
            nodes: 30,
            warp: 60.0,
            seed: 1,
        };
        while let Some(flag) = args.next() {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            let bad = || format!("bad value for {flag}: {value:?}");
            match flag.as_str() {
                "--nodes" => parsed.nodes = value.parse().map_err(|_| bad())?,
                "--warp" => parsed.warp = value.parse().map_err(|_| bad())?,
                "--seed" => parsed.seed = value.parse().map_err(|_| bad())?,
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if parsed.nodes < 2 {
            return Err("--nodes must be at least 2".into());
        }
        if !(parsed.warp > 0.0 && parsed.warp.is_finite()) {
            return Err("--warp must be positive".into());
        }
        Ok(parsed)
    }
}

fn run(args: &Args) -> io::Result<bool> {
    let wall_start = Instant::now();
    let mut demo = Demo::new(args)?;

    // Peer i is told about peer i−1 only, and dials it (in an order drawn from the seed).
    let mut order: Vec<usize> = (1..args.nodes).collect();
    demo.rng.shuffle(&mut order);
    for i in order {
        let addr = demo.nodes[i - 1].addr;
        demo.nodes[i].known.insert(addr);
        demo.dial(i, addr);
    }

    let mut events = Events::with_capacity(1024);
    let mut progress = Progress::new();
    loop {
        // Sleep until a socket is ready, the next Swarm deadline, or the next report.
        let wake = demo.next_wake().min(progress.next);
        let timeout = wake.saturating_duration_since(Instant::now());
        match demo.poll.poll(&mut events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => result?,
        }
        let now = demo.clock.now();
        for event in &events {
            demo.ready(event.token(), now);
        }
        demo.fire_timers(now);
        demo.settle();

        let view = demo.view();
        let protocol_time = demo.clock.elapsed();
        if view.min_known == args.nodes - 1 {
            progress.finish(&view, protocol_time);
            println!(
                "converged: {} nodes, {} peers known by each, after {:.1} protocol minutes \
                 ({:.2} s wall); {} connections, {} ut_pex frames ({} bytes)",
                args.nodes,
                args.nodes - 1,
                protocol_time.as_secs_f64() / 60.0,
                wall_start.elapsed().as_secs_f64(),
                view.connections,
                view.frames,
                view.bytes,
            );
            return Ok(true);
        }
        if protocol_time > MAX_PROTOCOL_TIME || wall_start.elapsed() > MAX_WALL_TIME {
            progress.finish(&view, protocol_time);
            eprintln!(
                "swarm: did not converge within {:.0} protocol minutes or {} s wall: \
                 peers known per node min/avg/max {}/{:.1}/{} of {}",
                MAX_PROTOCOL_TIME.as_secs_f64() / 60.0,
                MAX_WALL_TIME.as_secs(),
                view.min_known,
                view.avg_known,
                view.max_known,
                args.nodes - 1,
            );
            return Ok(false);
        }
        progress.tick(&view, protocol_time);
    }
}

/// One BitTorrent peer of the demo.
struct Node {
    listener: TcpListener,
    /// Its listen address: what other peers dial and advertise.
    addr: SocketAddr,
    peer_id: [u8; 20],
    /// Every peer address it has heard of (initially, through PEX, or from an incoming
    /// connection): the demo's measure of progress.
    known: BTreeSet<SocketAddr>,
    /// Addresses it is dialling.
    dialling: BTreeSet<SocketAddr>,
    /// Its established connections, by the remote's listen address.
    peers: BTreeMap<SocketAddr, Token>,
    /// Its PEX state: every connection of this peer, one shared log of who it is connected to.
    swarm: Swarm,
    /// Which socket each of the swarm's connections is.
    tokens: BTreeMap<ConnectionId, Token>,
    /// The `swarm.poll_timeout()` queued in the timer heap for this node.
    timer: Option<Instant>,
    /// Frames and bytes sent by connections already closed.
    closed_frames: u64,
    closed_bytes: u64,
}

/// One end of a TCP connection between two nodes.
struct Conn {
    /// The node this end belongs to.
    node: usize,
    stream: TcpStream,
    /// For a connection this end dialled: the address dialled (the remote's listen address).
    dialled: Option<SocketAddr>,
    /// Whether the TCP connect finished (accepted connections: always).
    connected: bool,
    reader: WireReader,
    /// Bytes waiting for the socket to take them.
    out: Vec<u8>,
    /// This connection in its node's swarm, from the BitTorrent handshake on.
    pex: Option<ConnectionId>,
    /// The remote's listen address, once the handshakes told it.
    remote: Option<SocketAddr>,
}

/// The whole swarm and its event loop's state.
struct Demo {
    poll: Poll,
    clock: WarpClock,
    rng: XorShift,
    /// Node i's listener has token i; connections have tokens from `nodes.len()` on.
    nodes: Vec<Node>,
    conns: BTreeMap<Token, Conn>,
    next_token: usize,
    /// Every node's next Swarm deadline (protocol time), earliest first. An entry that no
    /// longer matches its node's `timer` is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Nodes whose swarm got input or commands: their outputs must be drained.
    dirty: Vec<usize>,
    /// Connections with bytes queued for their socket.
    unflushed: BTreeSet<Token>,
    /// Peers that PEX announced, to dial once the current batch of input is handled.
    to_dial: Vec<(usize, SocketAddr)>,
}

impl Demo {
    fn new(args: &Args) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut rng = XorShift::new(args.seed);
        let mut nodes = Vec::with_capacity(args.nodes);
        for i in 0..args.nodes {
            let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            poll.registry()
                .register(&mut listener, Token(i), Interest::READABLE)?;
            nodes.push(Node {
                addr: listener.local_addr()?,
                listener,
                peer_id: wire::peer_id(rng.next_u64()),
                known: BTreeSet::new(),
                dialling: BTreeSet::new(),
                peers: BTreeMap::new(),
                swarm: Swarm::new(Config::default()),
                tokens: BTreeMap::new(),
                timer: None,
                closed_frames: 0,
                closed_bytes: 0,
            });
        }
        Ok(Self {
            poll,
            clock: WarpClock::new(args.warp),
            rng,
            next_token: nodes.len(),
            nodes,
            conns: BTreeMap::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            unflushed: BTreeSet::new(),
            to_dial: Vec::new(),
        })
    }

    // ---- sockets ---------------------------------------------------------------------------

    fn dial(&mut self, node: usize, addr: SocketAddr) {
        match TcpStream::connect(addr) {
            Ok(stream) => self.add_conn(node, stream, Some(addr)),
            Err(e) => eprintln!("node {node}: cannot dial {addr}: {e}"),
        }
    }

    fn accept(&mut self, node: usize) {
        loop {
            match self.nodes[node].listener.accept() {
                Ok((stream, _)) => self.add_conn(node, stream, None),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return eprintln!("node {node}: accept: {e}"),
            }
        }
    }

    fn add_conn(&mut self, node: usize, mut stream: TcpStream, dialled: Option<SocketAddr>) {
        let token = Token(self.next_token);
        self.next_token += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
            return eprintln!("node {node}: register: {e}");
        }
        if let Some(addr) = dialled {
            self.nodes[node].dialling.insert(addr);
        }
        self.conns.insert(
            token,
            Conn {
                node,
                stream,
                dialled,
                connected: dialled.is_none(),
                reader: WireReader::new(INFO_HASH),
                out: Vec::new(),
                pex: None,
                remote: None,
            },
        );
    }

    /// A listener or a connection is ready.
    fn ready(&mut self, token: Token, now: Instant) {
        if token.0 < self.nodes.len() {
            return self.accept(token.0);
        }
        let Some(conn) = self.conns.get_mut(&token) else {
            return; // closed earlier in this batch of events
        };
        if !conn.connected {
            match connect_result(&conn.stream) {
                Ok(false) => return,
                Ok(true) => {
                    conn.connected = true;
                    let _ = conn.stream.set_nodelay(true);
                    let peer_id = &self.nodes[conn.node].peer_id;
                    conn.out
                        .extend_from_slice(&wire::handshake(&INFO_HASH, peer_id));
                }
                Err(e) => return self.close(token, Some(e.into())),
            }
        }
        self.unflushed.insert(token); // writable: flush what waits
        self.read(token, now);
    }

    /// Reads until the socket has nothing more, handling every message.
    fn read(&mut self, token: Token, now: Instant) {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            match conn.reader.read_from(&mut conn.stream) {
                Ok(0) => return self.close(token, None),
                Ok(_) => {
                    if let Err(e) = self.handle_input(token, now) {
                        return self.close(token, Some(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close(token, Some(e.into())),
            }
        }
    }

    /// Handles every complete message received on a connection.
    fn handle_input(&mut self, token: Token, now: Instant) -> Result<(), WireError> {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return Ok(()); // closed as a duplicate
            };
            let node = &mut self.nodes[conn.node];
            let mut established = None;
            match conn.reader.next()? {
                None => return Ok(()),
                Some(Incoming::Handshake { .. }) => {
                    if conn.dialled.is_none() {
                        // We were dialled: answer the handshake.
                        let handshake = wire::handshake(&INFO_HASH, &node.peer_id);
                        conn.out.extend_from_slice(&handshake);
                    }
                    // The reader checked that the remote speaks BEP 10: attach the connection
                    // to the node's swarm. An outgoing one is live (under the address we
                    // dialled) right away; an incoming one once its `p` arrives.
                    let remote = conn.stream.peer_addr()?;
                    let (remote, direction) = match conn.dialled {
                        Some(dialled) => (dialled, Direction::Outgoing),
                        None => (remote, Direction::Incoming),
                    };
                    let id = node.swarm.connect(now, remote, direction, PeerFlags::EMPTY);
                    node.swarm.start(now, id);
                    node.tokens.insert(id, token);
                    conn.pex = Some(id);
                    let local_id = node.swarm.local_extension_id();
                    let port = node.addr.port();
                    let frame =
                        wire::extended_handshake_frame(local_id, Some(port), Some(remote.ip()));
                    conn.out.extend_from_slice(&frame);
                }
                Some(Incoming::Extended { id: 0, payload }) => {
                    let Some(pex) = conn.pex else { continue };
                    node.swarm
                        .handle_extended_handshake(now, pex, payload)
                        .map_err(WireError::ExtendedHandshake)?;
                    if conn.remote.is_none() {
                        // The remote's listen address, as the swarm recorded it: the one we
                        // dialled, or its IP with the `p` of its extended handshake.
                        established = Some(node.swarm.dial_address(pex));
                    }
                }
                Some(Incoming::Extended { id, payload }) => {
                    let Some(pex) = conn.pex else { continue };
                    if Some(id) == node.swarm.local_extension_id() {
                        if let Err(e) = node.swarm.handle_message(now, pex, payload) {
                            eprintln!("node {}: {e}", conn.node);
                            if let MessageError::TooFrequent { .. } = e {
                                return Err(WireError::Pex(e)); // a flood: disconnect
                            }
                        }
                    }
                }
                Some(_) => {} // keep-alives and the rest of the peer-wire protocol
            }
            self.dirty.push(self.conns[&token].node);
            self.unflushed.insert(token);
            if let Some(remote) = established {
                self.established(token, remote);
            }
        }
    }

    /// Both handshakes are done on `token`; `remote` is the remote's listen address.
    fn established(&mut self, token: Token, remote: Option<SocketAddr>) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Some(addr) = remote else {
            // No listen port: we cannot advertise it, but PEX still flows both ways.
            return;
        };
        conn.remote = Some(addr);
        let node = &mut self.nodes[conn.node];
        if conn.dialled == Some(addr) {
            node.dialling.remove(&addr);
        }
        node.known.insert(addr);
        let node_index = conn.node;
        // Two nodes that dial each other at once end up with two connections: both keep the
        // one dialled by the lower listen address.
        if let Some(&old) = node.peers.get(&addr) {
            if self.dialler(old) <= self.dialler(token) {
                return self.close(token, None);
            }
        }
        self.peer_connected(node_index, token, addr);
    }

    /// The listen address of the node that dialled an established connection.
    fn dialler(&self, token: Token) -> Option<SocketAddr> {
        let conn = self.conns.get(&token)?;
        match conn.dialled {
            Some(_) => Some(self.nodes[conn.node].addr),
            None => conn.remote,
        }
    }

    /// Writes what waits for a connection's socket, as much as it takes now.
    fn flush(conn: &mut Conn) -> io::Result<()> {
        while !conn.out.is_empty() {
            match conn.stream.write(&conn.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    conn.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn close(&mut self, token: Token, error: Option<WireError>) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let now = self.clock.now();
        let node = &mut self.nodes[conn.node];
        if let Some(id) = conn.pex {
            let stats = node.swarm.stats(id).unwrap_or_default();
            node.closed_frames += stats.frames_sent;
            node.closed_bytes += stats.bytes_sent;
            // The swarm drops the peer from every other connection's next frame.
            node.swarm.disconnect(now, id, DisconnectReason::Other);
            node.tokens.remove(&id);
            self.dirty.push(conn.node);
        }
        if let Some(addr) = conn.dialled {
            node.dialling.remove(&addr);
        }
        if let Some(e) = error {
            let remote = conn.remote.or(conn.dialled);
            eprintln!("node {}: connection to {remote:?} closed: {e}", conn.node);
        }
        if let Some(addr) = conn.remote {
            if node.peers.get(&addr) == Some(&token) {
                self.peer_disconnected(conn.node, addr);
            }
        }
    }

    // ---- peer bookkeeping ----------------------------------------------------------------
    //
    // PEX needs none here: each connection is attached to its node's swarm once, and the
    // swarm shares it with every other connection. The node only keeps which connection is
    // its link to which peer, for the demo's progress and to close duplicates.

    /// `node` is now connected to `addr` through `token` (maybe replacing a duplicate).
    fn peer_connected(&mut self, node: usize, token: Token, addr: SocketAddr) {
        if let Some(old) = self.nodes[node].peers.insert(addr, token) {
            // A duplicate: `addr` stays connected through `token`. The swarm counts both
            // connections to `addr`, so closing the old one drops nothing.
            self.close(old, None);
        }
    }

    /// `node` lost its connection to `addr`.
    fn peer_disconnected(&mut self, node: usize, addr: SocketAddr) {
        self.nodes[node].peers.remove(&addr);
    }

    /// Whether `node` should dial `addr`: not itself, not connected, not being dialled.
    fn should_dial(&self, node: usize, addr: SocketAddr) -> bool {
        let n = &self.nodes[node];
        addr != n.addr && !n.peers.contains_key(&addr) && !n.dialling.contains(&addr)
    }

    // ---- draining the states and time ----------------------------------------------------

    /// Drains every node that got input, writes what waits, then dials the peers PEX
    /// announced.
    fn settle(&mut self) {
        loop {
            while let Some(node) = self.dirty.pop() {
                self.drain(node);
            }
            for token in std::mem::take(&mut self.unflushed) {
                let Some(conn) = self.conns.get_mut(&token) else {
                    continue;
                };
                if conn.connected {
                    if let Err(e) = Self::flush(conn) {
                        self.close(token, Some(e.into()));
                    }
                }
            }
            if self.to_dial.is_empty() {
                return;
            }
            let mut batch = std::mem::take(&mut self.to_dial);
            self.rng.shuffle(&mut batch);
            for (node, addr) in batch {
                if self.should_dial(node, addr) {
                    self.dial(node, addr);
                }
            }
        }
    }

    /// The drain loop: frames to their sockets, events to the node, the deadline to the heap.
    fn drain(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        while let Some((id, frame)) = node.swarm.poll_transmit() {
            let Some(&token) = node.tokens.get(&id) else {
                continue;
            };
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.out.extend_from_slice(frame.as_bytes());
                self.unflushed.insert(token);
            }
        }
        while let Some((_, event)) = node.swarm.poll_event() {
            if let Event::PeerAdded(peer) = event {
                if peer.addr != node.addr {
                    node.known.insert(peer.addr);
                    self.to_dial.push((index, peer.addr));
                }
            }
        }
        let deadline = node.swarm.poll_timeout();
        if deadline != node.timer {
            node.timer = deadline;
            if let Some(at) = deadline {
                self.timers.push(Reverse((at, index)));
            }
        }
    }

    /// Calls `handle_timeout` on every node whose deadline has come.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, index))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            let node = &mut self.nodes[index];
            if node.timer == Some(at) {
                node.timer = None;
                node.swarm.handle_timeout(now);
                self.dirty.push(index);
            }
        }
    }

    /// The wall instant of the earliest Swarm deadline.
    fn next_wake(&self) -> Instant {
        match self.timers.peek() {
            Some(Reverse((at, _))) => self.clock.wall_instant(*at),
            None => Instant::now() + Duration::from_secs(1),
        }
    }

    // ---- reporting -------------------------------------------------------------------------

    fn view(&self) -> View {
        let known: Vec<usize> = self.nodes.iter().map(|n| n.known.len()).collect();
        let connections: usize = self.nodes.iter().map(|n| n.peers.len()).sum();
        let (frames, bytes) = self.nodes.iter().fold((0, 0), |(frames, bytes), node| {
            let open = node.tokens.keys().filter_map(|&id| node.swarm.stats(id));
            open.fold(
                (frames + node.closed_frames, bytes + node.closed_bytes),
                |(f, b), stats| (f + stats.frames_sent, b + stats.bytes_sent),
            )
        });
        View {
            min_known: known.iter().copied().min().unwrap_or(0),
            max_known: known.iter().copied().max().unwrap_or(0),
            avg_known: known.iter().sum::<usize>() as f64 / known.len() as f64,
            avg_connected: connections as f64 / self.nodes.len() as f64,
            others: self.nodes.len() - 1,
            // Each connection is counted by both of its nodes.
            connections: connections / 2,
            frames,
            bytes,
        }
    }
}

/// Whether a non-blocking connect finished (mio: after a writable event, check the error,
/// then whether the socket has a peer).
fn connect_result(stream: &TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// The swarm at a glance.
struct View {
    min_known: usize,
    max_known: usize,
    avg_known: f64,
    avg_connected: f64,
    others: usize,
    connections: usize,
    frames: u64,
    bytes: u64,
}

/// The progress line on stderr: redrawn in place on a terminal, one line a second otherwise.
struct Progress {
    terminal: bool,
    next: Instant,
}

impl Progress {
    fn new() -> Self {
        Self {
            terminal: io::stderr().is_terminal(),
            next: Instant::now(),
        }
    }

    fn tick(&mut self, view: &View, protocol_time: Duration) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.print(view, protocol_time);
        let every = if self.terminal { 100 } else { 1000 };
        self.next = now + Duration::from_millis(every);
    }

    fn finish(&mut self, view: &View, protocol_time: Duration) {
        self.print(view, protocol_time);
        if self.terminal {
            eprintln!();
        }
    }

    fn print(&self, view: &View, protocol_time: Duration) {
        let line = format!(
            "[{:5.1} protocol min] peers known per node min/avg/max {}/{:.1}/{} of {}, \
             connected avg {:.1}, ut_pex frames {}",
            protocol_time.as_secs_f64() / 60.0,
            view.min_known,
            view.avg_known,
            view.max_known,
            view.others,
            view.avg_connected,
            view.frames,
        );
        if self.terminal {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
}
