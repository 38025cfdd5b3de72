//! A `PexState` peer loop on tokio: one task per connection, `select!` over the socket, the
//! state's deadline and a channel of commands from the rest of the client.
//!
//! Run it with `cargo run --example tokio_peer`: it connects two peers on loopback, Alice
//! advertises three peers, and Bob prints what he hears and exits. Real time: the first frame
//! goes out as soon as both handshakes are done; later ones would follow 65 s apart.

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use ut_pex::{Config, Event, PeerFlags, PexState};

use pex_probe::wire::{self, Incoming, Routed, WireReader};

type BoxError = Box<dyn Error + Send + Sync>;

/// What the rest of the client tells a connection's task: peers it connected to or lost.
#[derive(Debug)]
enum Command {
    Add(SocketAddr, PeerFlags),
    Drop(SocketAddr),
}

const INFO_HASH: [u8; 20] = *b"tokio ut_pex example";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let alice_addr = listener.local_addr()?;

    // Alice accepts one connection. The client tells her about four peers it is connected
    // to, then loses one before her first frame: that add and drop cancel out in the state.
    let (to_alice, alice_commands) = mpsc::channel(16);
    let alice = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        peer_loop("alice", stream, alice_commands, usize::MAX).await
    });
    let peers = [6881, 6882, 6883, 6884].map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    for peer in peers {
        to_alice
            .send(Command::Add(peer, PeerFlags::REACHABLE))
            .await?;
    }
    to_alice.send(Command::Drop(peers[3])).await?;

    // Bob dials Alice and returns once he has heard of three peers.
    let (_to_bob, bob_commands) = mpsc::channel(16);
    let stream = TcpStream::connect(alice_addr).await?;
    let bob = peer_loop("bob", stream, bob_commands, 3);
    tokio::time::timeout(Duration::from_secs(10), bob)
        .await
        .map_err(|_| "bob heard nothing within 10 s")??;

    // Bob's socket is closed now, so Alice's loop ends too.
    tokio::time::timeout(Duration::from_secs(10), alice).await???;
    Ok(())
}

/// Drives one connection until the remote closes, or until `want` peers were announced.
async fn peer_loop(
    name: &str,
    mut stream: TcpStream,
    mut commands: mpsc::Receiver<Command>,
    want: usize,
) -> Result<(), BoxError> {
    let mut state = PexState::new(Config::default());
    let mut reader = WireReader::new(INFO_HASH);
    let mut buf = vec![0u8; 16 * 1024];
    let mut heard = 0;

    // Both handshakes at once: our two peers both speak BEP 10. (A client talking to
    // strangers sends the extended handshake once the remote's handshake has the BEP 10 bit.
    // One that knows the remote's listen address also calls `state.set_remote_address`.)
    let peer_id = wire::peer_id(u64::from(name.as_bytes()[0]));
    stream
        .write_all(&wire::handshake(&INFO_HASH, &peer_id))
        .await?;
    let extended_handshake = wire::extended_handshake_frame(state.local_extension_id(), None, None);
    stream.write_all(&extended_handshake).await?;
    // Started now, the state sends its first frame as soon as the remote enables ut_pex.
    state.start(Instant::now());

    loop {
        // The drain loop, after every input: frames to the socket, then events.
        while let Some(frame) = state.poll_transmit() {
            println!("{name}: sends a ut_pex frame of {} bytes", frame.len());
            stream.write_all(frame.as_bytes()).await?;
        }
        while let Some(event) = state.poll_event() {
            println!("{name}: {event:?}");
            if let Event::PeerAdded(_) = event {
                heard += 1;
            }
        }
        if heard >= want {
            return Ok(());
        }

        // Then wait for whichever comes first. Commands first: the peers the client queued
        // before the remote's handshake arrived all go out in the first frame.
        tokio::select! {
            biased;
            Some(command) = commands.recv() => match command {
                Command::Add(addr, flags) => state.add_peer(addr, flags),
                Command::Drop(addr) => state.drop_peer(addr),
            },
            read = stream.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    println!("{name}: the remote closed the connection");
                    return Ok(());
                }
                reader.feed(&buf[..n]);
                let now = Instant::now();
                while let Some(incoming) = reader.next()? {
                    // Extended messages go to the state: handshake (id 0) or ut_pex.
                    if let Incoming::Extended { id, payload } = incoming {
                        let routed = wire::route_extended(&mut state, now, id, payload)?;
                        if let Routed::Pex(Err(e)) = routed {
                            // The state is unchanged; whether to disconnect is ours to say.
                            eprintln!("{name}: {e}");
                        }
                    }
                }
            }
            () = sleep_until(state.poll_timeout()) => state.handle_timeout(Instant::now()),
        }
    }
}

/// Sleeps until the state's deadline; forever if it has none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
