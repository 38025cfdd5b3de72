//! Replays the fuzz corpora on the stable toolchain: every file under
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the same checks as
//! the cargo-fuzz target (`fuzz/fuzz_targets/shared/checks.rs`, included below), so a bug
//! the fuzzer found stays fixed where nightly and cargo-fuzz are absent.
//!
//! `state_ops` files are turned into operation scripts with `arbitrary::Unstructured`, as
//! libFuzzer's `fuzz_target!(|script: Script| …)` does; that is why `arbitrary` is a
//! dev-dependency.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../fuzz/fuzz_targets/shared/checks.rs"]
mod checks;

use checks::{Addr, Check, ConfigChoice, Limits, Model, Op, Script, Side, TimeStep};
use ut_pex::message::encode_frame;
use ut_pex::{Peer, PeerFlags};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` on every corpus and regression file of `target`; returns how many ran.
fn replay(target: &str, mut check: impl FnMut(&[u8]) -> Check) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files(&root.join("corpus").join(target));
    assert!(!corpus.is_empty(), "no seed corpus for {target}");
    let all: Vec<PathBuf> = corpus
        .into_iter()
        .chain(files(&root.join("regressions").join(target)))
        .collect();
    let failures: Vec<String> = all
        .iter()
        .filter_map(|path| {
            let data = fs::read(path).expect("corpus file readable");
            check(&data)
                .err()
                .map(|e| format!("{}: {e}", path.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing inputs:\n{}",
        failures.len(),
        failures.join("\n")
    );
    all.len()
}

#[test]
fn message_decode_corpus() {
    replay("message_decode", checks::check_message);
}

#[test]
fn handshake_decode_corpus() {
    replay("handshake_decode", checks::check_handshake);
}

#[test]
fn state_ops_corpus() {
    let mut steps = 0;
    let files = replay("state_ops", |data| match checks::script_from_bytes(data) {
        Some(script) => {
            steps += script.ops.len();
            checks::run_script(&script)
        }
        None => Ok(()),
    });
    // The corpus must exercise the state machine, not just be present.
    assert!(
        steps >= files,
        "{files} state_ops files gave only {steps} operations"
    );
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

/// A model of a started, enabled state (remote id 3) at `now` with these live peers.
fn ready(now: Instant, live: &[Peer]) -> Model {
    let mut model = Model::new(limits());
    model.started = true;
    model.remote_id = 3;
    model.seen = Some(now);
    model.live.extend(live.iter().map(|p| (p.addr, p.flags)));
    model
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
    model.seen = Some(t0 + Duration::from_secs(65));
    model.live.remove(&a.addr);
    assert_eq!(
        model.check_frame(&encode_frame(3, &[c], &[a.addr]), &[]),
        Ok(())
    );
    assert_eq!(model.frames, 2);
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
    model.seen = Some(t0 + Duration::from_secs(64));
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
    stopped.started = false;
    rejects(stopped.check_frame(&first(), &[]), "stopped");
    let mut own = ready(t0, &[a]);
    own.remote_addr = Some(a.addr);
    rejects(own.check_frame(&first(), &[]), "own address");

    let mut second = ready(t0, &[a, b, c]);
    second.check_frame(&first(), &[]).unwrap();
    second.seen = Some(t0 + Duration::from_secs(65));
    rejects(
        second.check_frame(&encode_frame(3, &[b, c], &[]), &[]),
        "limit",
    );
}

#[test]
fn event_check_catches_violations() {
    let a = peer("1.2.3.4:5");
    let mut model = Model::new(limits());
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
    rejects(checks::compare_verdict(&Ok(()), b"d1:ae"), "refuses");
    rejects(
        checks::compare_verdict::<()>(&Err(ut_pex::DecodeError::UnexpectedEnd), b"de"),
        "accepts",
    );
    rejects(
        checks::compare_verdict::<()>(&Err(ut_pex::DecodeError::UnexpectedEnd), b"le"),
        "wrong error",
    );
    assert_eq!(
        checks::compare_verdict::<()>(&Err(ut_pex::DecodeError::NotADict), b"le"),
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
    checks::run_script(&Script {
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

// ---- state_ops seeds: hand-written scripts, encoded the way `arbitrary` reads them -------

/// Writes values in the byte layout `arbitrary` 1.x reads them in: integers little-endian,
/// `bool` as one byte, `Option` as a bool then the value, a `Vec` as (true, element)… then
/// false, an enum variant as a `u32` scaled onto the variant count.
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    /// `arbitrary`'s derive picks variant `(u32 * count) >> 32`.
    fn variant(&mut self, index: u64, count: u64) {
        let x = (index << 32).div_ceil(count);
        self.u32(u32::try_from(x).expect("variant index in range"));
    }
    fn vec<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        for item in items {
            self.bool(true);
            each(self, item);
        }
        self.bool(false);
    }
    fn opt<T: Copy>(&mut self, v: Option<T>, each: impl FnOnce(&mut Self, T)) {
        self.bool(v.is_some());
        if let Some(v) = v {
            each(self, v);
        }
    }
    fn side(&mut self, side: Side) {
        self.variant(if side == Side::A { 0 } else { 1 }, 2);
    }
    fn addr(&mut self, addr: Addr) {
        match addr {
            Addr::Pool(i) => {
                self.variant(0, 5);
                self.u8(i);
            }
            Addr::Gen(n, v6) => {
                self.variant(1, 5);
                self.u16(n);
                self.bool(v6);
            }
            Addr::V4(ip, port) => {
                self.variant(2, 5);
                self.0.extend_from_slice(&ip);
                self.u16(port);
            }
            Addr::V6(ip, port) => {
                self.variant(3, 5);
                self.0.extend_from_slice(&ip);
                self.u16(port);
            }
            Addr::Mapped(ip, port) => {
                self.variant(4, 5);
                self.0.extend_from_slice(&ip);
                self.u16(port);
            }
        }
    }
    fn time(&mut self, step: TimeStep) {
        let n = 8;
        match step {
            TimeStep::Stay => self.variant(0, n),
            TimeStep::ForwardMillis(ms) => {
                self.variant(1, n);
                self.u32(ms);
            }
            TimeStep::ForwardSecs(s) => {
                self.variant(2, n);
                self.u16(s);
            }
            TimeStep::BackMillis(ms) => {
                self.variant(3, n);
                self.u32(ms);
            }
            TimeStep::BackSecs(s) => {
                self.variant(4, n);
                self.u16(s);
            }
            TimeStep::Huge(s) => {
                self.variant(5, n);
                self.u64(s);
            }
            TimeStep::FarFuture => self.variant(6, n),
            TimeStep::Base => self.variant(7, n),
        }
    }
    fn config(&mut self, c: &ConfigChoice) {
        self.bool(c.private);
        self.u16(c.extra_interval);
        self.u8(c.initial_max_peers);
        self.u8(c.max_entries_per_frame);
        self.opt(c.max_remote_peers, Self::u8);
        self.opt(c.max_message_size, Self::u16);
        self.opt(c.flood, |e, (m, w)| {
            e.u8(m);
            e.u16(w);
        });
        self.u8(c.local_extension_id);
    }
    fn side_u8(&mut self, index: u64, side: Side, v: u8) {
        self.variant(index, OPS);
        self.side(side);
        self.u8(v);
    }
    fn side_only(&mut self, index: u64, side: Side) {
        self.variant(index, OPS);
        self.side(side);
    }
    fn many(&mut self, index: u64, side: Side, start: u16, count: u8, v6: bool) {
        self.variant(index, OPS);
        self.side(side);
        self.u16(start);
        self.u8(count);
        self.bool(v6);
    }
    fn op(&mut self, op: &Op) {
        match op {
            Op::Time(step) => {
                self.variant(0, OPS);
                self.time(*step);
            }
            Op::HandshakeBytes(side, bytes) => {
                self.variant(1, OPS);
                self.side(*side);
                self.vec(bytes, |e, b| e.u8(*b));
            }
            Op::HandshakeBuilt {
                to,
                id,
                other,
                port,
            } => {
                self.variant(2, OPS);
                self.side(*to);
                self.opt(*id, Self::u8);
                self.u8(*other);
                self.opt(*port, Self::u16);
            }
            Op::HandshakeFromPeer(side) => self.side_only(3, *side),
            Op::SetRemoteId(side, id) => self.side_u8(4, *side, *id),
            Op::MessageBytes(side, bytes) => {
                self.variant(5, OPS);
                self.side(*side);
                self.vec(bytes, |e, b| e.u8(*b));
            }
            Op::MessageBuilt { to, added, dropped } => {
                self.variant(6, OPS);
                self.side(*to);
                self.vec(added, |e, (a, f)| {
                    e.addr(*a);
                    e.u8(*f);
                });
                self.vec(dropped, |e, a| e.addr(*a));
            }
            Op::MessageMany {
                to,
                start,
                added,
                dropped,
                v6,
            } => {
                self.variant(7, OPS);
                self.side(*to);
                self.u16(*start);
                self.u8(*added);
                self.u8(*dropped);
                self.bool(*v6);
            }
            Op::AddPeer(side, addr, flags) => {
                self.variant(8, OPS);
                self.side(*side);
                self.addr(*addr);
                self.u8(*flags);
            }
            Op::AddMany(side, start, count, v6) => self.many(9, *side, *start, *count, *v6),
            Op::DropPeer(side, addr) => {
                self.variant(10, OPS);
                self.side(*side);
                self.addr(*addr);
            }
            Op::DropMany(side, start, count, v6) => self.many(11, *side, *start, *count, *v6),
            Op::Start(side) => self.side_only(12, *side),
            Op::Stop(side) => self.side_only(13, *side),
            Op::Reset(side) => self.side_only(14, *side),
            Op::SetRemoteAddress(side, addr) => {
                self.variant(15, OPS);
                self.side(*side);
                self.addr(*addr);
            }
            Op::Timeout(side) => self.side_only(16, *side),
            Op::RunDeadline(side) => self.side_only(17, *side),
            Op::PollTransmit(side) => self.side_only(18, *side),
            Op::PollEvents(side, max) => self.side_u8(19, *side, *max),
            Op::Deliver(side, count) => self.side_u8(20, *side, *count),
            Op::LoseInFlight(side) => self.side_only(21, *side),
        }
    }
}

/// How many variants `Op` has.
const OPS: u64 = 22;

/// A script as the bytes `Script::arbitrary_take_rest` turns back into it.
fn encode(script: &Script) -> Vec<u8> {
    let mut e = Enc::default();
    e.config(&script.a);
    e.config(&script.b);
    // The last field is read with `arbitrary_take_rest`: elements until the bytes run out.
    for op in &script.ops {
        e.bool(true);
        e.op(op);
    }
    e.0
}

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
fn state_ops_seeds_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/state_ops");
    let write = std::env::var_os("UT_PEX_WRITE_SEEDS").is_some();
    for (name, script) in seed_scripts() {
        assert_eq!(checks::run_script(&script), Ok(()), "seed {name}");
        let bytes = encode(&script);
        // The encoder agrees with `arbitrary`: the bytes read back as the same script.
        let back = checks::script_from_bytes(&bytes).expect("seed bytes make a script");
        assert_eq!(
            format!("{back:?}"),
            format!("{script:?}"),
            "seed {name} does not round-trip"
        );
        let path = dir.join(format!("seed-{name}"));
        if write {
            fs::write(&path, &bytes).expect("seed written");
        }
        let stored = fs::read(&path).unwrap_or_default();
        assert!(
            stored == bytes,
            "{} is stale: rerun with UT_PEX_WRITE_SEEDS=1 to rewrite it",
            path.display()
        );
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
