//! Memory and CPU of one torrent-wide [`Swarm`] against the fan-out it replaces (one
//! [`PexState`] per connection, every peer change told to each of them).
//!
//! Workload: a torrent with 500 live peers (`add_peer`), 10% of them replaced per protocol
//! minute (one change every 1.2 s), and N connections (1,000 and 10,000) all enabled and
//! started whose remotes send nothing (started over a 65 s warm-up, one second-slot each, so
//! their send times are spread as those of connections made at different times are); one
//! protocol hour of virtual time in 1 s steps, every frame drained (counted, then dropped). Wall time per protocol minute (median and total),
//! heap bytes from a counting global allocator (current at the end, peak), bytes per
//! connection.
//!
//! `cargo bench --bench swarm` runs it all (a few minutes). Knobs (environment):
//! `SWARM_BENCH_CONNS=1000,10000`, `SWARM_BENCH_MINUTES=60`, `SWARM_BENCH_PEERS=500`,
//! `SWARM_BENCH_CHURN` (replacements per protocol minute, default a tenth of the peers),
//! `SWARM_BENCH_STAGGER=1` (0: every connection starts at once, so all send in step),
//! `SWARM_BENCH_VERIFY=1` (decode every frame, follow every 97th connection, and check that
//! each knows exactly the live set once churn stops; timings are then not meaningful), and
//! `SWARM_BENCH_BASELINE_BUDGET_S=180` (a fan-out run that would take longer than this is
//! cut short after the minutes that fit, and the medians compared over those). Without
//! `--bench` (as `cargo test --benches` runs it) it does a short smoke run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::alloc as counting_alloc;
use ut_pex::{Config, ConnectionId, Direction, Frame, PeerFlags, PexMessage, PexState, Swarm};

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

/// Live peers and replacements per protocol minute.
#[derive(Clone, Copy)]
struct Workload {
    peers: usize,
    churn_per_minute: usize,
}
const STEP: Duration = Duration::from_secs(1);
const STEPS_PER_MINUTE: u64 = 60;

/// xorshift64*: a fixed sequence of victims, the same for both implementations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn peer_addr(k: u32) -> SocketAddr {
    SocketAddr::from(([10, (k >> 16) as u8, (k >> 8) as u8, k as u8], 6881))
}

fn conn_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([172, 16 + (i >> 16) as u8, (i >> 8) as u8, i as u8], 40_000))
}

/// The churn script: which peer leaves and which joins, step by step.
struct Churn {
    rng: Rng,
    live: Vec<SocketAddr>,
    next: u32,
    per_minute: usize,
}

impl Churn {
    fn new(w: Workload) -> Self {
        Churn {
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            live: (1..=w.peers as u32).map(peer_addr).collect(),
            next: w.peers as u32 + 1,
            per_minute: w.churn_per_minute,
        }
    }

    /// The replacements due in step `step` (0-based): spread evenly over the minute.
    fn due(&self, step: u64) -> usize {
        let per = self.per_minute as u64;
        ((step + 1) * per / STEPS_PER_MINUTE - step * per / STEPS_PER_MINUTE) as usize
    }

    /// One replacement: (leaving, joining).
    fn replace(&mut self) -> (SocketAddr, SocketAddr) {
        let i = (self.rng.next() % self.live.len() as u64) as usize;
        let joining = peer_addr(self.next);
        self.next += 1;
        let leaving = std::mem::replace(&mut self.live[i], joining);
        (leaving, joining)
    }
}

/// What one run measured.
#[derive(Default)]
struct Run {
    setup: Duration,
    /// Wall time of each protocol minute.
    minutes: Vec<Duration>,
    frames_per_minute: Vec<(u64, u64)>,
    heap_after_setup: usize,
    heap_end: usize,
    heap_peak: usize,
    /// Heap of the structure alone (its own estimate), at the end.
    self_reported: usize,
    /// Swarm only: `connection_heap_bytes` of one connection, and the marginal heap bytes
    /// per attached connection measured by the allocator.
    conn_heap_bytes: usize,
    marginal_per_conn: f64,
    cut_short: bool,
    verify: bool,
}

impl Run {
    fn median(&self, minutes: usize) -> Duration {
        let mut m: Vec<Duration> = self.minutes.iter().take(minutes).copied().collect();
        m.sort();
        m[m.len() / 2]
    }

    fn total(&self) -> Duration {
        self.minutes.iter().sum()
    }

    fn frames(&self, minutes: usize) -> (u64, u64) {
        self.frames_per_minute
            .iter()
            .take(minutes)
            .fold((0, 0), |(f, b), &(f2, b2)| (f + f2, b + b2))
    }
}

/// Where frames go: (connection index, or `usize::MAX` when not tracked, frame).
type Sink<'a> = &'a mut dyn FnMut(usize, &Frame);

trait Host {
    fn add(&mut self, addr: SocketAddr);
    fn drop_peer(&mut self, addr: SocketAddr);
    /// Time passes; every frame sent goes to `sink`.
    fn tick(&mut self, now: Instant, sink: Sink<'_>);
    fn self_reported(&self) -> usize;
}

struct SwarmHost {
    swarm: Swarm,
    /// Connection indexes, only when verifying (a lookup per frame otherwise skews timing).
    index: Option<HashMap<ConnectionId, usize>>,
}

impl SwarmHost {
    fn drain(&mut self, sink: Sink<'_>) {
        while let Some((id, frame)) = self.swarm.poll_transmit() {
            let i = self
                .index
                .as_ref()
                .and_then(|m| m.get(&id).copied())
                .unwrap_or(usize::MAX);
            sink(i, &frame);
        }
    }
}

impl Host for SwarmHost {
    fn add(&mut self, addr: SocketAddr) {
        self.swarm.add_peer(addr, PeerFlags::UTP);
    }
    fn drop_peer(&mut self, addr: SocketAddr) {
        self.swarm.drop_peer(addr);
    }
    fn tick(&mut self, now: Instant, sink: Sink<'_>) {
        self.swarm.handle_timeout(now);
        self.drain(sink);
    }
    fn self_reported(&self) -> usize {
        self.swarm.heap_bytes()
    }
}

struct FanOut {
    states: Vec<PexState>,
}

impl Host for FanOut {
    fn add(&mut self, addr: SocketAddr) {
        for s in &mut self.states {
            s.add_peer(addr, PeerFlags::UTP);
        }
    }
    fn drop_peer(&mut self, addr: SocketAddr) {
        for s in &mut self.states {
            s.drop_peer(addr);
        }
    }
    fn tick(&mut self, now: Instant, sink: Sink<'_>) {
        for (i, s) in self.states.iter_mut().enumerate() {
            // A host sleeps on each state's deadline; only due states are woken.
            if s.poll_timeout().is_some_and(|d| d <= now) {
                s.handle_timeout(now);
                while let Some(frame) = s.poll_transmit() {
                    sink(i, &frame);
                }
            }
        }
    }
    fn self_reported(&self) -> usize {
        self.states.iter().map(PexState::heap_bytes).sum()
    }
}

/// When connection `i` starts, relative to the warm-up's start: spread over one send
/// interval (as connections attached at different times are), or all at once.
fn start_offset(i: usize, stagger: bool) -> Duration {
    if stagger {
        Duration::from_secs((i % WARM_UP_SECS as usize) as u64)
    } else {
        Duration::ZERO
    }
}

/// Setup runs over this much protocol time before the measured hour, so that staggered
/// connections have all sent their first frame.
const WARM_UP_SECS: u64 = 65;

fn build_swarm(
    w: Workload,
    tw: Instant,
    conns: usize,
    stagger: bool,
    run: &mut Run,
    sink: Sink<'_>,
) -> SwarmHost {
    let mut swarm = Swarm::new(Config::default());
    for k in 1..=w.peers as u32 {
        swarm.add_peer(peer_addr(k), PeerFlags::UTP);
    }
    let before = counting_alloc::live_bytes();
    // Incoming connections whose remotes never send `p`: attached, but not live peers
    // themselves, so the live set is the swarm's peers, as in the fan-out.
    let ids: Vec<ConnectionId> = (0..conns)
        .map(|i| swarm.connect(tw, conn_addr(i), Direction::Incoming, PeerFlags::EMPTY))
        .collect();
    let ids_bytes = ids.capacity() * std::mem::size_of::<ConnectionId>();
    run.marginal_per_conn =
        (counting_alloc::live_bytes() - before).saturating_sub(ids_bytes) as f64 / conns as f64;
    for &id in &ids {
        swarm.set_remote_extension_id(tw, id, 1);
    }
    run.conn_heap_bytes = swarm.connection_heap_bytes(ids[0]);
    let index = run
        .verify
        .then(|| ids.iter().enumerate().map(|(i, &id)| (id, i)).collect());
    let mut host = SwarmHost { swarm, index };
    for s in 0..WARM_UP_SECS {
        let now = tw + Duration::from_secs(s);
        for (i, &id) in ids.iter().enumerate() {
            if start_offset(i, stagger).as_secs() == s {
                host.swarm.start(now, id);
            }
        }
        host.swarm.handle_timeout(now);
        while host.swarm.poll_event().is_some() {}
        host.drain(sink);
    }
    host
}

fn build_fan_out(w: Workload, tw: Instant, conns: usize, stagger: bool, sink: Sink<'_>) -> FanOut {
    let states = (0..conns)
        .map(|i| {
            let mut s = PexState::new(Config::default());
            for k in 1..=w.peers as u32 {
                s.add_peer(peer_addr(k), PeerFlags::UTP);
            }
            s.set_remote_extension_id(tw, 1);
            s.start(tw + start_offset(i, stagger));
            while s.poll_event().is_some() {}
            while let Some(frame) = s.poll_transmit() {
                sink(i, &frame);
            }
            s
        })
        .collect();
    FanOut { states }
}

/// Runs the churn for `minutes` protocol minutes (or until `budget` of wall time would be
/// exceeded by the next minute).
fn drive(
    w: Workload,
    host: &mut dyn Host,
    t0: Instant,
    minutes: u64,
    budget: Duration,
    run: &mut Run,
    mut verifier: Option<&mut Verifier>,
) {
    let mut churn = Churn::new(w);
    let mut step = 0u64;
    for minute in 0..minutes {
        let started = Instant::now();
        let (mut frames, mut bytes) = (0u64, 0u64);
        for _ in 0..STEPS_PER_MINUTE {
            for _ in 0..churn.due(step) {
                let (leaving, joining) = churn.replace();
                host.drop_peer(leaving);
                host.add(joining);
                if let Some(v) = verifier.as_deref_mut() {
                    v.live.remove(&leaving);
                    v.live.insert(joining);
                }
            }
            step += 1;
            host.tick(t0 + STEP * step as u32, &mut |i, frame| {
                frames += 1;
                bytes += frame.len() as u64;
                if let Some(v) = verifier.as_deref_mut() {
                    v.frame(i, frame);
                }
            });
        }
        run.minutes.push(started.elapsed());
        run.frames_per_minute.push((frames, bytes));
        let spent = run.total();
        let per_minute = spent / (minute as u32 + 1);
        if minute + 1 < minutes && spent + per_minute > budget {
            run.cut_short = true;
            break;
        }
    }
    if let Some(v) = verifier {
        // Churn stops: every connection catches up within a few send intervals.
        let end = t0 + STEP * step as u32;
        for k in 1..=40 {
            host.tick(end + Duration::from_secs(65 * k), &mut |i, frame| {
                v.frame(i, frame)
            });
        }
    }
}

/// Verification mode: decodes every frame, follows what a sample of connections was told,
/// and checks that after churn stops each knows exactly the live set.
#[derive(Default)]
struct Verifier {
    live: HashSet<SocketAddr>,
    /// Follow connections whose index is a multiple of this.
    every: usize,
    advertised: BTreeMap<usize, BTreeSet<SocketAddr>>,
    added: u64,
    dropped: u64,
    /// Added entries naming a peer no longer live when the frame was built.
    stale_added: u64,
    /// Dropped entries naming a peer the (followed) connection was not told about.
    bad_drops: u64,
}

impl Verifier {
    fn frame(&mut self, i: usize, frame: &Frame) {
        let payload = frame.payload();
        let m = PexMessage::decode(&payload).expect("frames decode");
        self.added += m.added_len() as u64;
        self.dropped += m.dropped_len() as u64;
        self.stale_added += m.added().filter(|p| !self.live.contains(&p.addr)).count() as u64;
        if i != usize::MAX && i % self.every == 0 {
            let set = self.advertised.entry(i).or_default();
            for a in m.dropped() {
                if !set.remove(&a) {
                    self.bad_drops += 1;
                }
            }
            set.extend(m.added().map(|p| p.addr));
        }
    }

    fn report(&self, name: &str) {
        let converged = self
            .advertised
            .values()
            .filter(|set| set.len() == self.live.len() && set.iter().all(|a| self.live.contains(a)))
            .count();
        println!(
            "verify {name}: {} added / {} dropped entries, {} added already gone ({:.2}%), {} \
             drops of unknown peers; after churn stops {converged}/{} followed connections \
             know exactly the live set",
            self.added,
            self.dropped,
            self.stale_added,
            self.stale_added as f64 * 100.0 / self.added.max(1) as f64,
            self.bad_drops,
            self.advertised.len()
        );
    }
}

fn measure(
    w: Workload,
    minutes: u64,
    budget: Duration,
    verify: bool,
    build: &dyn Fn(Instant, &mut Run, Sink<'_>) -> Box<dyn Host>,
) -> (Run, Option<Verifier>) {
    let tw = Instant::now();
    let t0 = tw + Duration::from_secs(WARM_UP_SECS);
    let mut run = Run {
        verify,
        ..Run::default()
    };
    let mut verifier = verify.then(|| Verifier {
        live: (1..=w.peers as u32).map(peer_addr).collect(),
        every: 97,
        ..Verifier::default()
    });
    let base = counting_alloc::live_bytes();
    counting_alloc::reset_peak();
    let started = Instant::now();
    let mut host = build(tw, &mut run, &mut |i, frame| {
        if let Some(v) = verifier.as_mut() {
            v.frame(i, frame);
        }
    });
    run.setup = started.elapsed();
    run.heap_after_setup = counting_alloc::live_bytes() - base;
    drive(
        w,
        host.as_mut(),
        t0,
        minutes,
        budget,
        &mut run,
        verifier.as_mut(),
    );
    run.heap_end = counting_alloc::live_bytes().saturating_sub(base);
    run.heap_peak = counting_alloc::peak_bytes().saturating_sub(base);
    run.self_reported = host.self_reported();
    drop(host);
    (run, verifier)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |key: &str| std::env::var(key).ok();
    let conn_counts: Vec<usize> = env("SWARM_BENCH_CONNS")
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| if full { vec![1_000, 10_000] } else { vec![50] });
    let minutes: u64 = env("SWARM_BENCH_MINUTES")
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 60 } else { 2 });
    let peers: usize = env("SWARM_BENCH_PEERS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let w = Workload {
        peers,
        churn_per_minute: env("SWARM_BENCH_CHURN")
            .and_then(|s| s.parse().ok())
            .unwrap_or(peers / 10),
    };
    let stagger = env("SWARM_BENCH_STAGGER").map_or(true, |s| s != "0");
    let verify = env("SWARM_BENCH_VERIFY").is_some_and(|s| s != "0");
    let budget = Duration::from_secs(
        env("SWARM_BENCH_BASELINE_BUDGET_S")
            .and_then(|s| s.parse().ok())
            .unwrap_or(180),
    );

    println!(
        "swarm bench: {} live peers, {} replaced per protocol minute, {minutes} protocol \
         minutes in {}-s steps; remotes send nothing; connections started {}",
        w.peers,
        w.churn_per_minute,
        STEP.as_secs(),
        if stagger {
            "one per second-slot over 65 s (staggered send times)"
        } else {
            "all at once"
        }
    );
    let mut summary = Vec::new();
    for &conns in &conn_counts {
        let (swarm, swarm_check) = measure(w, minutes, Duration::MAX, verify, &|tw, run, sink| {
            Box::new(build_swarm(w, tw, conns, stagger, run, sink))
        });
        let (fan, fan_check) = measure(w, minutes, budget, verify, &|tw, _, sink| {
            Box::new(build_fan_out(w, tw, conns, stagger, sink))
        });
        let common = fan.minutes.len().min(swarm.minutes.len());
        let (sf, sb) = swarm.frames(common);
        let (ff, fb) = fan.frames(common);
        println!();
        println!("== {conns} connections ==");
        if fan.cut_short {
            println!(
                "fan-out cut short after {} protocol minutes (budget {} s); medians compared \
                 over those minutes",
                fan.minutes.len(),
                budget.as_secs()
            );
        }
        println!(
            "{:<8} {:>9} {:>13} {:>11} {:>9} {:>12} {:>13} {:>13} {:>10} {:>9}",
            "impl",
            "setup ms",
            "median ms/min",
            "total s",
            "minutes",
            "heap end MiB",
            "heap peak MiB",
            "est. heap MiB",
            "frames",
            "MiB sent"
        );
        for (name, run) in [("swarm", &swarm), ("fan-out", &fan)] {
            let (f, b) = run.frames(run.minutes.len());
            println!(
                "{:<8} {:>9.1} {:>13.3} {:>11.3} {:>9} {:>12.2} {:>13.2} {:>13.2} {:>10} {:>9.2}",
                name,
                ms(run.setup),
                ms(run.median(common)),
                run.total().as_secs_f64(),
                run.minutes.len(),
                mib(run.heap_end),
                mib(run.heap_peak),
                mib(run.self_reported),
                f,
                b as f64 / (1024.0 * 1024.0)
            );
        }
        let cpu = ms(fan.median(common)) / ms(swarm.median(common));
        let mem_end = fan.heap_end as f64 / swarm.heap_end as f64;
        let mem_peak = fan.heap_peak as f64 / swarm.heap_peak as f64;
        println!(
            "per connection: swarm {} B (connection_heap_bytes) / {:.0} B (allocator, marginal \
             per attached connection) / {:.0} B (whole swarm heap at end / N); fan-out {:.0} B \
             (heap at end / N)",
            swarm.conn_heap_bytes,
            swarm.marginal_per_conn,
            swarm.heap_end as f64 / conns as f64,
            fan.heap_end as f64 / conns as f64
        );
        println!(
            "ratios fan-out / swarm: CPU per protocol minute (median) {cpu:.1}x, heap at end \
             {mem_end:.1}x, peak heap {mem_peak:.1}x"
        );
        // Both follow the same rules, but may legally differ in detail: when a frame is
        // full (the 500-peer live set goes out 50 per frame; 10% churn is 54 adds per 65 s),
        // a peer that came and went after the cut is sent and then dropped if its add/drop
        // pair is still in the log, or never mentioned if compaction removed the pair, and
        // one shared log compacts at other times than N private ones.
        println!(
            "traffic over the first {common} minutes: swarm {sf} frames / {sb} B, fan-out {ff} \
             frames / {fb} B ({})",
            if (sf, sb) == (ff, fb) {
                "identical".to_string()
            } else {
                format!(
                    "bytes differ by {:+.2}%: full frames, compaction timing",
                    (sb as f64 - fb as f64) / fb as f64 * 100.0
                )
            }
        );
        if let (Some(a), Some(b)) = (swarm_check, fan_check) {
            a.report("swarm");
            b.report("fan-out");
        }
        summary.push((conns, cpu, mem_end, mem_peak));
    }
    println!();
    println!("targets at 10,000 connections: >= 10x less memory, >= 5x less CPU per minute");
    for (conns, cpu, mem_end, mem_peak) in summary {
        println!(
            "  {conns:>6} connections: CPU {cpu:.1}x, memory {mem_end:.1}x (end) / \
             {mem_peak:.1}x (peak)"
        );
    }
}
