//! The seedbox scenario (issue 12): 5,000 torrents, one `Swarm` each with
//! `Config::default()`, 50 outgoing connections each (250,000 in all), measured with a
//! counting allocator in one process. Prints:
//! - heap bytes per connection once every connection is handshaken and started, and again
//!   after every remote announced 50 distinct peers (with the bytes per claimed peer);
//! - wake-ups while nothing changes for 10 protocol minutes;
//! - churn (each torrent replaces one connection per protocol minute, every other remote
//!   sends one message adding one peer and dropping one): allocations per frame sent and per
//!   message received, CPU per protocol minute (median), and, side by side in the same run,
//!   the CPU of encoding the very same frames alone, with the ratio.
//!
//! `cargo bench --bench seedbox`. Knobs (environment): `SEEDBOX_TORRENTS=5000`,
//! `SEEDBOX_CONNS=50`, `SEEDBOX_CLAIMS=50`, `SEEDBOX_CHURN_MINUTES=5`. Without `--bench`
//! (as `cargo test --benches` runs it) it does a small smoke run.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::alloc as counting_alloc;
use testkit::seedbox::{ChurnPlan, Drained, Seedbox};
use ut_pex::{message, Peer, PexMessage, Swarm};

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

fn knob(name: &str, default: usize, smoke: usize) -> usize {
    let bench = std::env::args().any(|a| a == "--bench");
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { default } else { smoke })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Frames recorded during one churn minute: their bytes back to back, and where each ends.
struct Recorded {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Recorded {
    fn with_capacity(frames: usize) -> Self {
        Self {
            // Room for every frame of a minute, so that recording allocates nothing there.
            bytes: Vec::with_capacity(frames * 128),
            ends: Vec::with_capacity(frames),
        }
    }

    /// The frames as the lists an encoder needs.
    fn lists(&self) -> Vec<(u8, Vec<Peer>, Vec<SocketAddr>)> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let frame = &self.bytes[start..end];
                start = end;
                let message = PexMessage::decode(&frame[6..]).expect("our own frame decodes");
                (
                    frame[5],
                    message.added().collect(),
                    message.dropped().collect(),
                )
            })
            .collect()
    }
}

/// One churn minute, every frame recorded. Not inlined, so that `valgrind --tool=callgrind`
/// reports its inclusive instruction count beside [`encode_only`]'s.
#[inline(never)]
fn churn_only(seedbox: &mut Seedbox, plan: &ChurnPlan, recorded: &mut Recorded) -> Drained {
    seedbox.churn_minute(
        plan,
        &mut |frame| {
            recorded.bytes.extend_from_slice(frame);
            recorded.ends.push(recorded.bytes.len());
        },
        &mut |f| f(),
    )
}

/// Encodes the very frames a churn minute sent, and nothing else: the floor.
#[inline(never)]
fn encode_only(lists: &[(u8, Vec<Peer>, Vec<SocketAddr>)]) {
    for (id, added, dropped) in lists {
        let _ = black_box(message::encode_frame(*id, added, dropped));
    }
}

/// The same frames written into one reused buffer (header and payload, no allocation): a
/// stricter floor than [`encode_only`], for hosts that frame messages themselves.
#[inline(never)]
fn write_only(lists: &[(u8, Vec<Peer>, Vec<SocketAddr>)], out: &mut Vec<u8>) {
    for (id, added, dropped) in lists {
        out.clear();
        let len = message::encoded_len(added, dropped) as u32 + 2;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[message::EXTENDED_MESSAGE_ID, *id]);
        message::write_payload(added, dropped, out);
        black_box(&out);
    }
}

fn main() {
    let torrents = knob("SEEDBOX_TORRENTS", 5_000, 50);
    let per_torrent = knob("SEEDBOX_CONNS", 50, 50);
    let claims = knob("SEEDBOX_CLAIMS", 50, 50);
    let churn_minutes = knob("SEEDBOX_CHURN_MINUTES", 5, 2);
    let conns = (torrents * per_torrent) as f64;
    println!("seedbox: {torrents} torrents × {per_torrent} connections, {claims} claims each");

    let mut seedbox = Seedbox::reserve(torrents, per_torrent, Instant::now());
    let inline = (torrents * std::mem::size_of::<Swarm>()) as f64;
    let l0 = counting_alloc::live_bytes();
    let setup = Instant::now();
    seedbox.build(per_torrent);
    let l1 = counting_alloc::live_bytes();
    let idle_per_conn = ((l1 - l0) as f64 + inline) / conns;
    println!(
        "  started, nothing claimed: {idle_per_conn:>8.0} B per connection ({:.1} MiB; built in {:.1} s)",
        ((l1 - l0) as f64 + inline) / 1048576.0,
        setup.elapsed().as_secs_f64()
    );

    let mut receive_allocs = 0;
    let claimed = seedbox.claim_all(claims, &mut |f| {
        receive_allocs += counting_alloc::count(f).1.calls;
    });
    let l2 = counting_alloc::live_bytes();
    let with_claims = ((l2 - l0) as f64 + inline) / conns;
    println!(
        "  {claims} claims each:          {with_claims:>8.0} B per connection ({:.1} MiB), {:.1} B per claimed peer, {:.2} allocations per message",
        ((l2 - l0) as f64 + inline) / 1048576.0,
        (l2 - l1) as f64 / (conns * claims as f64),
        receive_allocs as f64 / conns
    );
    assert_eq!(claimed.events, (conns as u64) * claims as u64);

    let wakeups = seedbox.idle(10);
    println!("  idle 10 protocol minutes:  {wakeups} wake-ups");

    // Churn, timed per minute; the frames are kept for the encode-only floor.
    let mut minutes = Vec::new();
    let mut floors = Vec::new();
    let mut written = Vec::new();
    let (mut frames, mut allocs) = (0u64, 0usize);
    // Every churn frame's bytes, summed and hashed in order: equal figures before and after
    // a change mean the very same frames went out.
    let (mut churn_bytes, mut checksum) = (0u64, 0xcbf2_9ce4_8422_2325u64);
    for _ in 0..churn_minutes {
        let plan = seedbox.churn_plan(true, false);
        let mut recorded = Recorded::with_capacity(torrents * (per_torrent + 1));
        let calls_before = counting_alloc::calls();
        let started = Instant::now();
        let drained = churn_only(&mut seedbox, &plan, &mut recorded);
        minutes.push(started.elapsed());
        allocs += counting_alloc::calls() - calls_before;
        frames += drained.frames;

        churn_bytes += recorded.bytes.len() as u64;
        checksum = recorded.bytes.iter().fold(checksum, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3) // FNV-1a
        });
        let lists = recorded.lists();
        let started = Instant::now();
        encode_only(&lists);
        floors.push(started.elapsed());
        let mut out = Vec::with_capacity(4096);
        let started = Instant::now();
        write_only(&lists, &mut out);
        written.push(started.elapsed());
    }
    let cpu = median(minutes);
    let floor = median(floors);
    println!(
        "  churn: {:.0} frames per minute, {:.2} allocations per frame ({frames} frames, {churn_bytes} bytes, FNV-1a {checksum:016x})",
        frames as f64 / churn_minutes as f64,
        allocs as f64 / frames as f64,
    );
    println!(
        "  churn CPU per protocol minute: {:.1} ms (median); encoding the same frames alone: {:.1} ms; ratio {:.2}",
        cpu.as_secs_f64() * 1e3,
        floor.as_secs_f64() * 1e3,
        cpu.as_secs_f64() / floor.as_secs_f64()
    );
    let written = median(written);
    println!(
        "  … writing them into one reused buffer instead: {:.1} ms; ratio {:.2}",
        written.as_secs_f64() * 1e3,
        cpu.as_secs_f64() / written.as_secs_f64()
    );

    // Receiving: every remote sends one message a minute (one peer added, one dropped).
    if std::env::var_os("SEEDBOX_NO_RECEIVE").is_some() {
        return;
    }
    let mut receive_minutes = Vec::new();
    let (mut messages, mut receive_allocs) = (0usize, 0usize);
    for _ in 0..churn_minutes {
        let plan = seedbox.churn_plan(false, true);
        let mut calls = 0;
        let started = Instant::now();
        seedbox.churn_minute(&plan, &mut |_| {}, &mut |f| {
            calls += counting_alloc::count(f).1.calls;
        });
        receive_minutes.push(started.elapsed());
        messages += plan.messages();
        receive_allocs += calls;
    }
    println!(
        "  receiving {:.0} messages per minute: {:.2} allocations per message, {:.1} ms CPU per protocol minute (median)",
        messages as f64 / churn_minutes as f64,
        receive_allocs as f64 / messages as f64,
        median(receive_minutes).as_secs_f64() * 1e3
    );
}
