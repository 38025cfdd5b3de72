//! Replays the fuzz corpora on the stable toolchain: every file under
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` of every target goes through
//! the same checks as the cargo-fuzz target (`testkit::replay::TARGETS`), so a bug the
//! fuzzer found stays fixed where nightly and cargo-fuzz are absent. Also: the checks
//! themselves catch violations, hand-written scripts pass, and the fuzz findings as plain
//! API tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::addr::Addr;
use testkit::interp::run_script;
use testkit::rules::{HostView, Limits, WireRules};
use testkit::script::{ConfigChoice, Op, Script, Side, TimeStep};
use testkit::Check;
use ut_pex::message::encode_frame;
use ut_pex::{Frame, Peer, PeerFlags};

#[test]
fn every_target_replays_its_corpus_and_regressions() {
    for (target, check) in testkit::replay::TARGETS {
        let ran =
            testkit::replay::replay(target, check).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(ran > 0, "no seed corpus for {target}");
    }
}

/// The corpora must exercise the state machines, not just be present: most files make a
/// script with operations.
#[test]
fn op_corpora_make_scripts() {
    let scripts = testkit::replay::inputs("state_ops")
        .iter()
        .filter_map(|p| testkit::script::script_from_bytes(&std::fs::read(p).unwrap()))
        .filter(|s| !s.ops.is_empty())
        .count();
    assert!(scripts > 0, "no state_ops input makes a script");
    let swarm = testkit::replay::inputs("swarm_ops")
        .iter()
        .filter_map(|p| testkit::swarm_ops::script_from_bytes(&std::fs::read(p).unwrap()))
        .filter(|s| !s.ops.is_empty())
        .count();
    assert!(swarm > 0, "no swarm_ops input makes a script");
}

// ---- the checks themselves catch violations ---------------------------------------------

fn limits() -> Limits {
    Limits {
        interval: Duration::from_secs(65),
        initial_max: 2,
        per_frame: 1,
        remote_cap: 200,
        max_message: 64 * 1024,
        private: false,
    }
}

/// The wire rules of a started, enabled connection (remote id 3) at some instant, with its
/// live peers.
struct Ready {
    wire: WireRules,
    live: BTreeMap<SocketAddr, PeerFlags>,
}

impl Ready {
    /// `WireRules::check_frame` while the remote claims `claims`.
    fn check_frame(&mut self, frame: &Frame, claims: &[Peer]) -> Check {
        let live = &self.live;
        self.wire.check_frame(
            frame,
            |a| live.get(&a).copied(),
            |a| claims.iter().any(|p| p.addr == a),
        )
    }
}

/// A started, enabled connection (remote id 3) at `now` with these live peers.
fn ready(now: Instant, live: &[Peer]) -> Ready {
    let mut wire = WireRules::new(limits());
    wire.started = true;
    wire.remote_id = 3;
    wire.seen = Some(now);
    let live = live.iter().map(|p| (p.addr, p.flags)).collect();
    Ready { wire, live }
}

fn peer(addr: &str) -> Peer {
    Peer::new(addr.parse().unwrap(), PeerFlags::SEED)
}

fn rejects(result: Check, why: &str) {
    let err = result.expect_err(why);
    assert!(err.contains(why), "expected {why:?}, got {err:?}");
}

#[test]
fn frame_check_accepts_a_good_stream() {
    let t0 = Instant::now();
    let (a, b, c) = (
        peer("1.2.3.4:5"),
        peer("[2001:db8::1]:7"),
        peer("5.6.7.8:9"),
    );
    let mut model = ready(t0, &[a, b, c]);
    assert_eq!(
        model.check_frame(&encode_frame(3, &[a, b], &[]), &[]),
        Ok(())
    );
    model.wire.seen = Some(t0 + Duration::from_secs(65));
    model.live.remove(&a.addr);
    assert_eq!(
        model.check_frame(&encode_frame(3, &[c], &[a.addr]), &[]),
        Ok(())
    );
    assert_eq!(model.wire.frames, 2);
}

#[test]
fn frame_check_catches_violations() {
    let t0 = Instant::now();
    let (a, b, c) = (
        peer("1.2.3.4:5"),
        peer("[2001:db8::1]:7"),
        peer("5.6.7.8:9"),
    );
    let first = || encode_frame(3, &[a], &[]);

    let mut model = ready(t0, &[a, b]);
    model.check_frame(&first(), &[]).unwrap();
    model.wire.seen = Some(t0 + Duration::from_secs(64));
    rejects(model.check_frame(&encode_frame(3, &[b], &[]), &[]), "apart");

    rejects(
        ready(t0, &[a]).check_frame(&encode_frame(3, &[a, a], &[]), &[]),
        "twice",
    );
    rejects(
        ready(t0, &[a]).check_frame(&encode_frame(3, &[a], &[a.addr]), &[]),
        "twice",
    );
    rejects(
        ready(t0, &[a]).check_frame(&encode_frame(4, &[a], &[]), &[]),
        "extension id",
    );
    rejects(
        ready(t0, &[a, b, c]).check_frame(&encode_frame(3, &[a, b, c], &[]), &[]),
        "limit",
    );
    rejects(ready(t0, &[]).check_frame(&first(), &[]), "live");
    rejects(ready(t0, &[a]).check_frame(&first(), &[a]), "echoed");
    rejects(
        ready(t0, &[]).check_frame(&encode_frame(3, &[], &[a.addr]), &[]),
        "never advertised",
    );
    rejects(
        ready(t0, &[]).check_frame(&encode_frame(3, &[], &[]), &[]),
        "empty",
    );

    let mut stopped = ready(t0, &[a]);
    stopped.wire.started = false;
    rejects(stopped.check_frame(&first(), &[]), "stopped");
    let mut own = ready(t0, &[a]);
    own.wire.remote_addr = Some(a.addr);
    rejects(own.check_frame(&first(), &[]), "own address");

    let mut second = ready(t0, &[a, b, c]);
    second.check_frame(&first(), &[]).unwrap();
    second.wire.seen = Some(t0 + Duration::from_secs(65));
    rejects(
        second.check_frame(&encode_frame(3, &[b, c], &[]), &[]),
        "limit",
    );
}

#[test]
fn event_check_catches_violations() {
    let a = peer("1.2.3.4:5");
    let mut model = HostView::default();
    rejects(
        model.check_event(ut_pex::Event::Disabled),
        "without Enabled",
    );
    rejects(
        model.check_event(ut_pex::Event::PeerDropped(a.addr)),
        "never added",
    );
    model.check_event(ut_pex::Event::PeerAdded(a)).unwrap();
    rejects(model.check_event(ut_pex::Event::PeerAdded(a)), "twice");
}

#[test]
fn decoder_checks_compare_with_the_reference() {
    // Accepting what the reference refuses, and the reverse, are both findings.
    rejects(
        testkit::reference::compare_verdict(&Ok(()), b"d1:ae"),
        "refuses",
    );
    rejects(
        testkit::reference::compare_verdict::<()>(&Err(ut_pex::DecodeError::UnexpectedEnd), b"de"),
        "accepts",
    );
    rejects(
        testkit::reference::compare_verdict::<()>(&Err(ut_pex::DecodeError::UnexpectedEnd), b"le"),
        "wrong error",
    );
    assert_eq!(
        testkit::reference::compare_verdict::<()>(&Err(ut_pex::DecodeError::NotADict), b"le"),
        Ok(())
    );
}

// ---- scenarios: scripts written by hand, run through the same harness --------------------

/// Config with a 60 s interval, 50 entries per frame, default caps.
fn plain() -> ConfigChoice {
    ConfigChoice {
        private: false,
        extra_interval: 0,
        initial_max_peers: 50,
        max_entries_per_frame: 49,
        max_remote_peers: None,
        max_message_size: None,
        flood: None,
        local_extension_id: 1,
    }
}

fn run(ops: Vec<Op>) -> Check {
    run_script(&Script {
        a: plain(),
        b: plain(),
        ops,
    })
}

#[test]
fn scenario_exchange_passes() {
    use Side::{A, B};
    let ops = vec![
        Op::HandshakeFromPeer(A),
        Op::HandshakeFromPeer(B),
        Op::Start(A),
        Op::Start(B),
        Op::AddPeer(A, Addr::Pool(0), 0x10),
        Op::AddMany(A, 0, 60, false),
        Op::PollTransmit(A),
        Op::Deliver(B, 1),
        Op::PollEvents(B, 0),
        Op::Time(TimeStep::ForwardSecs(60)),
        Op::RunDeadline(A),
        Op::Deliver(B, 1),
        Op::PollEvents(B, 0),
        Op::DropPeer(A, Addr::Pool(1)),
        Op::Time(TimeStep::ForwardSecs(60)),
        Op::Timeout(A),
        Op::PollTransmit(A),
        Op::Deliver(B, 1),
        Op::PollEvents(B, 0),
    ];
    assert_eq!(run(ops), Ok(()));
}

/// A frame decided at t0 but polled at t0 + 30 s goes out at t0 + 30 s: the next one may
/// not leave before t0 + 90 s.
#[test]
fn scenario_late_poll_keeps_spacing() {
    use Side::A;
    let ops = vec![
        Op::SetRemoteId(A, 3),
        Op::Start(A),
        Op::AddPeer(A, Addr::Pool(0), 0),
        Op::Timeout(A),
        Op::Time(TimeStep::ForwardSecs(30)),
        Op::Timeout(A),
        Op::PollTransmit(A),
        Op::Time(TimeStep::ForwardSecs(40)),
        Op::AddPeer(A, Addr::Pool(2), 0),
        Op::Timeout(A),
        Op::PollTransmit(A),
    ];
    assert_eq!(run(ops), Ok(()));
}

/// The remote announcing and then dropping its own address must not make us advertise that
/// address back to it.
#[test]
fn scenario_remote_own_address_never_advertised() {
    use Side::A;
    let ops = vec![
        Op::SetRemoteAddress(A, Addr::Pool(0)),
        Op::AddPeer(A, Addr::Pool(0), 0),
        Op::MessageBuilt {
            to: A,
            added: vec![(Addr::Pool(0), 0)],
            dropped: vec![],
        },
        Op::Time(TimeStep::ForwardSecs(61)),
        Op::MessageBuilt {
            to: A,
            added: vec![],
            dropped: vec![Addr::Pool(0)],
        },
        Op::SetRemoteId(A, 3),
        Op::Start(A),
        Op::PollTransmit(A),
    ];
    assert_eq!(run(ops), Ok(()));
}

// ---- state_ops seeds: hand-written scripts, run through the same harness ----------------

/// The hand-written `state_ops` seeds, by file name (`fuzz/corpus/state_ops/seed-<name>`).
fn seed_scripts() -> Vec<(&'static str, Script)> {
    use Side::{A, B};
    let lt_handshake =
        b"d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e4:reqqi500e1:v18:libtorrent/2.0.8.0e";
    let exchange = |a: ConfigChoice, b: ConfigChoice, extra: Vec<Op>| {
        let mut ops = vec![
            Op::HandshakeFromPeer(A),
            Op::HandshakeFromPeer(B),
            Op::SetRemoteAddress(A, Addr::Pool(5)),
            Op::SetRemoteAddress(B, Addr::Pool(2)),
            Op::Start(A),
            Op::Start(B),
            Op::AddPeer(A, Addr::Pool(0), 0x10),
            Op::AddPeer(A, Addr::Pool(3), 0x02),
            Op::AddMany(A, 0, 60, false),
            Op::AddMany(B, 100, 20, true),
            Op::PollTransmit(A),
            Op::PollTransmit(B),
            Op::Deliver(A, 1),
            Op::Deliver(B, 1),
            Op::PollEvents(A, 0),
            Op::PollEvents(B, 0),
        ];
        ops.extend(extra);
        Script { a, b, ops }
    };
    let tiny = ConfigChoice {
        initial_max_peers: 3,
        max_entries_per_frame: 1,
        max_remote_peers: Some(4),
        max_message_size: Some(300),
        flood: Some((1, 60)),
        extra_interval: 50,
        ..plain()
    };
    let private = ConfigChoice {
        private: true,
        ..plain()
    };
    vec![
        (
            "exchange",
            exchange(
                plain(),
                plain(),
                vec![
                    Op::Time(TimeStep::ForwardSecs(60)),
                    Op::RunDeadline(A),
                    Op::DropMany(A, 0, 10, false),
                    Op::Time(TimeStep::ForwardSecs(61)),
                    Op::Timeout(A),
                    Op::PollTransmit(A),
                    Op::Deliver(B, 2),
                    Op::PollEvents(B, 0),
                ],
            ),
        ),
        (
            "tiny-limits",
            exchange(
                tiny,
                tiny,
                vec![
                    Op::MessageMany {
                        to: A,
                        start: 0,
                        added: 10,
                        dropped: 10,
                        v6: false,
                    },
                    Op::MessageMany {
                        to: B,
                        start: 5,
                        added: 60,
                        dropped: 0,
                        v6: true,
                    },
                    Op::Time(TimeStep::ForwardSecs(65)),
                    Op::RunDeadline(A),
                    Op::RunDeadline(B),
                    Op::Deliver(A, 3),
                    Op::Deliver(B, 3),
                    Op::PollEvents(A, 1),
                ],
            ),
        ),
        (
            "private",
            exchange(
                private,
                plain(),
                vec![
                    Op::Time(TimeStep::ForwardSecs(70)),
                    Op::RunDeadline(B),
                    Op::Deliver(A, 1),
                ],
            ),
        ),
        (
            "time-backwards-and-far",
            exchange(
                plain(),
                plain(),
                vec![
                    Op::Time(TimeStep::BackSecs(3600)),
                    Op::AddPeer(A, Addr::Pool(2), 0),
                    Op::Timeout(A),
                    Op::PollTransmit(A),
                    Op::Time(TimeStep::Huge(86_400 * 365)),
                    Op::RunDeadline(A),
                    Op::Time(TimeStep::FarFuture),
                    Op::AddPeer(A, Addr::Pool(15), 0),
                    Op::Timeout(A),
                    Op::PollTransmit(A),
                    Op::AddPeer(A, Addr::Pool(7), 0),
                    Op::Timeout(A),
                    Op::RunDeadline(A),
                    Op::Time(TimeStep::Base),
                    Op::Timeout(A),
                ],
            ),
        ),
        (
            "reset-and-readd",
            exchange(
                plain(),
                plain(),
                vec![
                    Op::Reset(A),
                    Op::AddPeer(A, Addr::Mapped([1, 2, 3, 4], 6881), 1),
                    Op::Start(A),
                    Op::Time(TimeStep::ForwardMillis(65_000)),
                    Op::RunDeadline(A),
                    Op::Deliver(B, 1),
                    Op::PollEvents(B, 0),
                    Op::Stop(A),
                    Op::DropPeer(A, Addr::Pool(1)),
                    Op::Start(A),
                ],
            ),
        ),
        (
            "handshakes-and-garbage",
            Script {
                a: plain(),
                b: plain(),
                ops: vec![
                    Op::HandshakeBytes(A, lt_handshake.to_vec()),
                    Op::HandshakeBuilt {
                        to: A,
                        id: Some(0),
                        other: 3,
                        port: Some(6881),
                    },
                    Op::HandshakeBuilt {
                        to: A,
                        id: None,
                        other: 3,
                        port: None,
                    },
                    Op::HandshakeBuilt {
                        to: A,
                        id: Some(9),
                        other: 0,
                        port: None,
                    },
                    Op::SetRemoteId(B, 0),
                    Op::HandshakeBytes(B, b"d1:md6:ut_pexi300eee".to_vec()),
                    Op::HandshakeBytes(B, b"d1:m".to_vec()),
                    Op::MessageBytes(A, b"de".to_vec()),
                    Op::MessageBytes(
                        A,
                        b"d5:added6:\x01\x02\x03\x04\x1a\xe17:dropped6:\x01\x02\x03\x04\x1a\xe1e"
                            .to_vec(),
                    ),
                    Op::MessageBytes(A, b"d5:addedi1e".to_vec()),
                    Op::MessageBuilt {
                        to: A,
                        added: vec![
                            (Addr::Pool(0), 2),
                            (Addr::Pool(1), 4),
                            (Addr::Pool(8), 0),
                            (Addr::Pool(11), 0),
                        ],
                        dropped: vec![Addr::Pool(3)],
                    },
                    Op::MessageBuilt {
                        to: A,
                        added: vec![],
                        dropped: vec![Addr::Pool(1)],
                    },
                    Op::PollEvents(A, 0),
                    Op::LoseInFlight(B),
                ],
            },
        ),
    ]
}

#[test]
fn state_ops_seed_scripts_pass() {
    for (name, script) in seed_scripts() {
        assert_eq!(run_script(&script), Ok(()), "seed {name}");
    }
}

// ---- the bugs the fuzzing found, as plain API tests --------------------------------------

/// Found by `state_ops` (fuzz/regressions/state_ops/remote-own-address-readvertised): the
/// remote announced its own address, we held our live peer of that address back, then the
/// remote dropped it and we advertised the remote's own address to it.
#[test]
fn remote_dropping_its_own_address_does_not_unsuppress_it() {
    let t0 = Instant::now();
    let own: std::net::SocketAddr = "1.2.3.4:6881".parse().unwrap();
    let mut state = ut_pex::PexState::new(ut_pex::Config::default());
    state.set_remote_address(own);
    state.add_peer(own, PeerFlags::EMPTY);
    let announce = ut_pex::message::encode_payload(&[Peer::new(own, PeerFlags::EMPTY)], &[]);
    state.handle_message(t0, &announce).unwrap();
    let drop = ut_pex::message::encode_payload(&[], &[own]);
    state
        .handle_message(t0 + Duration::from_secs(61), &drop)
        .unwrap();
    state.set_remote_extension_id(t0 + Duration::from_secs(61), 3);
    state.start(t0 + Duration::from_secs(61));
    assert!(
        state.poll_transmit().is_none(),
        "the remote's own address was advertised to it"
    );
    assert_eq!(state.poll_timeout(), None);
}

/// Found by the `state_ops` invariants: a frame decided at t0 but polled at t0 + 30 s
/// counted as sent at t0, so the next one left at t0 + 65 s, 35 s after it.
#[test]
fn late_polled_frame_counts_from_when_it_was_polled() {
    let t0 = Instant::now();
    let mut state = ut_pex::PexState::new(ut_pex::Config::default());
    state.set_remote_extension_id(t0, 3);
    state.start(t0);
    state.add_peer("1.2.3.4:5".parse().unwrap(), PeerFlags::EMPTY);
    state.handle_timeout(t0);
    state.handle_timeout(t0 + Duration::from_secs(30));
    assert!(state.poll_transmit().is_some());
    state.add_peer("1.2.3.5:5".parse().unwrap(), PeerFlags::EMPTY);
    assert_eq!(state.poll_timeout(), Some(t0 + Duration::from_secs(95)));
    state.handle_timeout(t0 + Duration::from_secs(65));
    assert!(
        state.poll_transmit().is_none(),
        "second frame 35 s after the first"
    );
    state.handle_timeout(t0 + Duration::from_secs(95));
    assert!(state.poll_transmit().is_some());
}

/// The kept `state_ops` regressions still run whole: none is longer than the interpreter's
/// operation cap, so the step that once broke a rule is still reached.
#[test]
fn regressions_fit_the_operation_cap() {
    let dir = testkit::replay::fuzz_dir().join("regressions/state_ops");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let script = testkit::script::script_from_bytes(&std::fs::read(&path).unwrap());
        let ops = script.map_or(0, |s| s.ops.len());
        assert!(
            ops <= testkit::interp::MAX_OPS,
            "{}: {ops} operations",
            path.display()
        );
    }
}
