//! `pex-sim`: run one simulation, write `summary.json` and the plots. See the crate README.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use pex_sim::params::CrawlerParams;
use pex_sim::{report, Params, Policy, Summary, Topology, World};

// Counts heap bytes, so the summary can say where the memory goes.
#[global_allocator]
static ALLOC: testkit::alloc::Counting = testkit::alloc::Counting;

/// A deterministic BitTorrent swarm simulator: every node runs ut_pex's `Swarm` (and
/// `PeerBook`) on a virtual clock.
#[derive(Parser, Debug)]
#[command(name = "pex-sim", version)]
struct Args {
    /// Honest nodes (kept constant under churn: each leaver is replaced by a joiner).
    #[arg(long, default_value_t = 10_000)]
    nodes: u32,
    /// Protocol minutes to simulate.
    #[arg(long, default_value_t = 60)]
    minutes: u32,
    /// Seed of every random choice: the same arguments give the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Connections each node aims for (`dial`) or has (`static`).
    #[arg(long, default_value_t = 50)]
    degree: u32,
    /// `dial`: nodes start from a tracker answer and dial what they learn; `static`: a random
    /// regular overlay that never dials.
    #[arg(long, value_enum, default_value_t = Topology::Dial)]
    topology: Topology,
    /// Nodes in each joiner's tracker answer.
    #[arg(long, default_value_t = 5)]
    bootstrap: u32,
    /// Mean session length in protocol minutes (exponential); 0: no churn.
    #[arg(long, default_value_t = 0.0)]
    session_minutes: f64,
    /// Share of honest nodes that accept no incoming connection (NAT).
    #[arg(long, default_value_t = 0.0)]
    unreachable: f64,
    /// Hostile nodes, on top of `--nodes`: each minute each announces 50 forged addresses on
    /// every connection, half of them one victim IP under fresh ports.
    #[arg(long, default_value_t = 0)]
    attackers: u32,
    /// Whom honest nodes dial: `book` (the crate's PeerBook) or `naive` (in the order
    /// learned, one entry per address).
    #[arg(long, value_enum, default_value_t = Policy::Book)]
    policy: Policy,
    /// The PeerBook's `max_candidates`.
    #[arg(long, default_value_t = 4_000)]
    book_capacity: usize,
    /// Nodes whose known set is tracked (default: all up to 10,000 nodes, else 1,000).
    #[arg(long)]
    sample: Option<u32>,
    /// Add a measurement node: a PEX-only, connection-greedy crawler that joins late with only
    /// a tracker answer and dials every address it learns (see `docs/sim.md`, "Against the
    /// field measurements").
    #[arg(long)]
    crawler: bool,
    /// The protocol minute the crawler joins at.
    #[arg(long, default_value_t = 1)]
    crawler_join: u32,
    /// Nodes in the crawler's one tracker answer (a tracker's usual answer is 50).
    #[arg(long, default_value_t = 50)]
    crawler_bootstrap: u32,
    /// Threads (and shards of nodes) to run on; the run and its `trace_hash` are the same
    /// for any value. Default: the machine's cores, at most 8.
    #[arg(long)]
    threads: Option<usize>,
    /// Where `summary.json`, `convergence.svg`, `attack.svg` and `crawler.svg` go.
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.nodes < 2 || args.degree == 0 || !(0.0..=1.0).contains(&args.unreachable) {
        return Err("need --nodes ≥ 2, --degree ≥ 1 and --unreachable in [0, 1]".into());
    }
    if args.crawler && args.topology == Topology::Static {
        return Err("--crawler dials what it learns: it needs --topology dial".into());
    }
    let mut params = Params::new(args.nodes);
    params.minutes = args.minutes;
    params.seed = args.seed;
    params.degree = args.degree;
    params.topology = args.topology;
    params.bootstrap = args.bootstrap;
    params.session_minutes = args.session_minutes.max(0.0);
    params.unreachable = args.unreachable;
    params.attackers = args.attackers;
    params.policy = args.policy;
    params.book_capacity = args.book_capacity;
    if let Some(sample) = args.sample {
        params.sample = sample.clamp(1, args.nodes);
    }
    params.crawler = args.crawler.then_some(CrawlerParams {
        join_minute: args.crawler_join,
        bootstrap: args.crawler_bootstrap,
    });

    let bar = ProgressBar::new(u64::from(params.minutes));
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] minute {pos}/{len} {msg}",
    )?);
    let started = Instant::now();
    bar.set_message("building the swarm");
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)));
    let mut world = World::with_threads(params, threads);
    bar.set_message("");
    world.run(|m| bar.set_position(u64::from(m)));
    let wall = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let mut summary = Summary::of(
        &world,
        wall,
        peak_rss_bytes(),
        testkit::alloc::live_bytes() as u64,
    );
    summary.peak_heap_bytes = testkit::alloc::peak_bytes() as u64;
    // Before the world (and its pool's threads) goes.
    summary.thread_cpu_seconds = thread_cpu_seconds();
    let with_books = testkit::alloc::live_bytes();
    world.release_books();
    summary.book_heap_bytes = with_books.saturating_sub(testkit::alloc::live_bytes()) as u64;
    std::fs::create_dir_all(&args.out)?;
    let json = serde_json::to_string_pretty(&summary)?;
    std::fs::write(args.out.join("summary.json"), json + "\n")?;
    report::plot_convergence(&summary, &args.out.join("convergence.svg"))?;
    if summary.crawler.is_some() {
        report::plot_crawler(&summary, &args.out.join("crawler.svg"))?;
    }
    if summary.params.attackers > 0 {
        report::plot_attack(&world, &args.out.join("attack.svg"))?;
    }
    let last = summary.known_fraction.last().copied().unwrap_or(0.0);
    eprintln!(
        "{} nodes × {} min in {wall:.1} s ({:.0} node-minutes/s, {} threads, busiest {:.1} s of \
         CPU), peak RSS {:.0} MiB, known {:.1} %, {} frames, {} dials ({} to the victim), \
         trace {}",
        summary.nodes,
        summary.minutes,
        summary.node_minutes_per_second,
        summary.threads,
        summary.thread_cpu_seconds.first().copied().unwrap_or(0.0),
        summary.peak_rss_bytes as f64 / (1 << 20) as f64,
        100.0 * last,
        summary.frames,
        summary.dials,
        summary.victim_dials,
        summary.trace_hash,
    );
    if let Some(c) = &summary.crawler {
        let last = |v: &[f64]| 100.0 * v.last().copied().unwrap_or(0.0);
        eprintln!(
            "crawler (joined at minute {}): knows {:.1} %, connected to {:.1} %, \
             observer coverage {:.1} %, {} PEX sources",
            c.crawler_join_minute,
            last(&c.crawler_known_fraction),
            last(&c.crawler_connected_fraction),
            last(&c.observer_coverage),
            c.crawler_pex_sources.last().copied().unwrap_or(0),
        );
    }
    Ok(())
}

/// User + system CPU seconds of each thread of this process, busiest first (from
/// `/proc/self/task/*/stat`, at the kernel's 100 ticks a second; empty without procfs).
fn thread_cpu_seconds() -> Vec<f64> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut seconds: Vec<f64> = tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            // The fields after the command's closing parenthesis; utime and stime are the
            // 14th and 15th of the whole line.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .collect();
    seconds.sort_by(|a, b| b.total_cmp(a));
    seconds
}

/// `VmHWM` of `/proc/self/status` (0 where there is no procfs).
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
