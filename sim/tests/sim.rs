//! The simulator's promises: a run is a function of its arguments, and the static overlay
//! matches the model of `pex-scale.md` §3.2.

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
/// counters and the known fractions do not depend on the thread count.
#[test]
fn threads_do_not_change_the_run() {
    let one = run(small(1));
    for threads in [2, 3] {
        let mut world = World::with_threads(small(1), threads);
        world.run(|_| {});
        assert_eq!(world.trace_hash(), one.trace_hash(), "{threads} threads");
        assert_eq!(world.known_fraction, one.known_fraction);
        assert_eq!(world.counts.frames, one.counts.frames);
        assert_eq!(world.counts.dials, one.counts.dials);
        assert_eq!(world.counts.joins, one.counts.joins);
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
