//! The simulator's promises: a run is a function of its arguments, and the static overlay
//! matches the model of `pex-scale.md` §3.2.

use pex_sim::params::CrawlerParams;
use pex_sim::{model, Params, Topology, World};

fn run(p: Params) -> World {
    let mut world = World::new(p);
    world.run(|_| {});
    world
}

fn small(seed: u64) -> Params {
    let mut p = Params::new(300);
    p.minutes = 8;
    p.degree = 20;
    p.seed = seed;
    p.session_minutes = 10.0;
    p.unreachable = 0.2;
    p.attackers = 3;
    p
}

/// The same arguments give the same trace, frame for frame and dial for dial; another seed
/// gives another.
#[test]
fn same_arguments_same_trace() {
    let (a, b, c) = (run(small(1)), run(small(1)), run(small(2)));
    assert!(a.counts.frames > 0 && a.counts.dials > 0 && a.counts.joins > 0);
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(a.known_fraction, b.known_fraction);
    assert_ne!(a.trace_hash(), c.trace_hash());
}

/// The nodes split into shards on threads make the same run, event for event: the trace, the
/// counters and the known fractions do not depend on the thread count, with the `--crawler`
/// node (whose state lives in its shard) or without.
#[test]
fn threads_do_not_change_the_run() {
    let mut crawled = small(1);
    crawled.crawler = Some(CrawlerParams::at(1));
    for p in [small(1), crawled] {
        let one = run(p.clone());
        for threads in [2, 3] {
            let mut world = World::with_threads(p.clone(), threads);
            world.run(|_| {});
            assert_eq!(world.trace_hash(), one.trace_hash(), "{threads} threads");
            assert_eq!(world.known_fraction, one.known_fraction);
            assert_eq!(world.counts.frames, one.counts.frames);
            assert_eq!(world.counts.dials, one.counts.dials);
            assert_eq!(world.counts.joins, one.counts.joins);
            let curves = |w: &World| {
                w.crawler
                    .as_ref()
                    .map(|c| (c.known_fraction.clone(), c.observer_coverage.clone()))
            };
            assert_eq!(curves(&world), curves(&one));
        }
    }
}

/// A static overlay knows, from its first minute on, what the model says one interval
/// teaches: K₁/N within 5 %.
#[test]
fn static_overlay_matches_the_first_interval_model() {
    let mut p = Params::new(2_000);
    p.topology = Topology::Static;
    p.degree = 20;
    p.minutes = 3;
    let world = run(p);
    let expected = model::first_interval_fraction(2_000.0, 20.0, 50.0);
    for &known in &world.known_fraction[1..] {
        let gap = (known - expected).abs() / expected;
        assert!(gap < 0.05, "known {known:.4}, model {expected:.4}");
    }
    assert_eq!(world.counts.dials, 0, "a static overlay never dials");
}

fn with_crawler() -> Params {
    let mut p = Params::new(300);
    p.minutes = 6;
    p.degree = 20;
    p.session_minutes = 20.0;
    p.unreachable = 0.1;
    p.crawler = Some(CrawlerParams::at(1));
    p
}

/// The crawler's curves are a function of the arguments; being connection greedy, it ends up
/// knowing more of the swarm than the mean node, connected to more nodes than any node may
/// accept, and what its partners' lists name is a part of what it knows.
#[test]
fn crawler_is_deterministic_and_greedy() {
    let (a, b) = (run(with_crawler()), run(with_crawler()));
    assert_eq!(a.trace_hash(), b.trace_hash());
    let (ca, cb) = (a.crawler.as_ref().unwrap(), b.crawler.as_ref().unwrap());
    assert_eq!(ca.known_fraction, cb.known_fraction);
    assert_eq!(ca.observer_coverage, cb.observer_coverage);
    let minutes = a.known_fraction.len();
    for curve in [
        &ca.known_fraction,
        &ca.connected_fraction,
        &ca.observer_coverage,
    ] {
        assert_eq!(curve.len(), minutes);
        assert!(curve.iter().all(|f| (0.0..=1.0).contains(f)), "{curve:?}");
    }
    assert_eq!(ca.known_fraction[0], 0.0, "it has not joined at minute 0");
    let last = minutes - 1;
    let (known, node_known) = (ca.known_fraction[last], a.known_fraction[last]);
    assert!(
        known > node_known,
        "crawler {known:.3}, a node {node_known:.3}"
    );
    let connected = ca.connected_fraction[last] * 300.0;
    let cap = with_crawler().accept_cap() as f64;
    assert!(
        connected > cap,
        "crawler connected to {connected}, a node at most {cap}"
    );
    for (o, k) in ca.observer_coverage.iter().zip(&ca.known_fraction) {
        assert!(o <= k, "observer {o} above known {k}");
    }
    assert!(ca.observer_coverage[last] > 0.5 * known);
    assert!(*ca.pex_sources.last().unwrap() > 0);
}

/// Without `--crawler` the summary says nothing of one.
#[test]
fn no_crawler_no_crawler_fields() {
    let mut p = small(1);
    p.minutes = 2;
    let world = run(p);
    assert!(world.crawler.is_none());
    let json = serde_json::to_string(&pex_sim::Summary::of(&world, 1.0, 0, 0)).unwrap();
    assert!(!json.contains("crawler") && !json.contains("observer_coverage"));
}
