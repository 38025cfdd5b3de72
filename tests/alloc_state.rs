//! Allocation accounting of `PexState` with a counting global allocator: steady-state
//! receiving allocates nothing, and the heap a connection holds, idle and with 200 remote
//! peers. Everything runs in one `#[test]` so no other test thread allocates meanwhile; the
//! steady state is counted on the test's own thread.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ut_pex::message::encode_payload;
use ut_pex::{Config, Peer, PeerFlags, PexState};

use testkit::alloc as counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// (allocation calls, live bytes) now.
fn counters() -> (usize, usize) {
    (counting_alloc::calls(), counting_alloc::live_bytes())
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([45, 1, (i >> 8) as u8, i as u8], 6881))
}

fn adds(range: std::ops::Range<usize>, drops: std::ops::Range<usize>) -> Vec<u8> {
    let peers: Vec<Peer> = range.map(|i| Peer::new(addr(i), PeerFlags::UTP)).collect();
    let dropped: Vec<SocketAddr> = drops.map(addr).collect();
    encode_payload(&peers, &dropped)
}

fn drain(state: &mut PexState) -> usize {
    std::iter::from_fn(|| state.poll_event()).count()
}

#[test]
fn allocations() {
    let t0 = Instant::now();
    let gap = Duration::from_secs(11); // under the flood limit (6 per 60 s)
    let handshake = b"d1:md6:ut_pexi1eee";
    // Every payload is built before counting starts.
    let fills: Vec<Vec<u8>> = (0..4).map(|k| adds(k * 50..k * 50 + 50, 0..0)).collect();
    let same = adds(0..50, 0..0);
    let swap_out = adds(200..250, 0..50); // replace 0..50 by 200..250
    let swap_back = adds(0..50, 200..250);

    // An idle connection: handshake done, started, nothing learned or queued.
    let (a0, l0) = counters();
    let mut state = PexState::new(Config::default());
    state.handle_extended_handshake(t0, handshake).unwrap();
    state.start(t0);
    drain(&mut state);
    let (a1, l1) = counters();
    let idle = (a1 - a0, l1 - l0, state.heap_bytes());

    // 200 remote peers, in four 50-peer messages; events drained.
    let mut t = t0;
    for fill in &fills {
        t += gap;
        state.handle_message(t, fill).unwrap();
        assert_eq!(drain(&mut state), 50);
    }
    assert_eq!(state.remote_peers().count(), 200);
    let (a2, l2) = counters();
    let full = (a2 - a1, l2 - l0, state.heap_bytes());

    // Warm-up of the alternating pair (the event queue reaches its working size).
    for payload in [&swap_out, &swap_back, &swap_out, &swap_back] {
        t += gap;
        state.handle_message(t, payload).unwrap();
        assert_eq!(drain(&mut state), 100);
    }

    // Steady state: the same 50-peer message (all known), and the alternating pair
    // (50 dropped + 50 added each, events drained in between).
    // Counted on this thread only: libtest's main thread may still be allocating for its
    // own bookkeeping (a loaded machine can delay it past the spawn of this test).
    let heap_before = state.heap_bytes();
    let ((), steady) = counting_alloc::count(|| {
        for _ in 0..100 {
            t += gap;
            state.handle_message(t, &same).unwrap();
            assert_eq!(drain(&mut state), 0);
        }
        for _ in 0..50 {
            for payload in [&swap_out, &swap_back] {
                t += gap;
                state.handle_message(t, payload).unwrap();
                assert_eq!(drain(&mut state), 100);
            }
        }
    });
    assert_eq!(state.remote_peers().count(), 200);

    eprintln!(
        "size_of::<PexState>() = {}",
        std::mem::size_of::<PexState>()
    );
    eprintln!(
        "idle: {} allocations, {} live bytes, heap_bytes() = {}",
        idle.0, idle.1, idle.2
    );
    eprintln!(
        "200 remote peers: {} allocations, {} live bytes, heap_bytes() = {}",
        full.0, full.1, full.2
    );
    eprintln!(
        "steady state: {} allocations ({} bytes) over 200 messages",
        steady.calls, steady.bytes
    );
    assert_eq!(steady.calls, 0, "steady-state receiving allocated");
    assert_eq!(state.heap_bytes(), heap_before);
}
