//! Quickcheck over the fuzz targets' own scripts: `state_ops` and `swarm_ops` scripts of
//! `testkit`'s operation types, read with their `Arbitrary` from random bytes, run by
//! `testkit`'s interpreters with every check they carry: the wire rules
//! (`testkit::rules::WireRules`), the host's view of the events (`HostView`), each
//! operation's documented contract, the claims, the no-busy-loop rule, and convergence once
//! the script is over (`testkit::converge`). The model lives in `testkit` alone; these tests
//! add stable-toolchain random search and shrinking on top of the fuzz targets' coverage
//! search, so a failure here is a fuzz finding too (and the other way round).
//!
//! Run longer with `QUICKCHECK_TESTS=5000 QUICKCHECK_GENERATOR_SIZE=600 cargo test --test
//! script_properties`.

use arbitrary::Unstructured;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use testkit::interp::{check_refusals_invisible, run_script};
use testkit::script::{ConfigChoice, Script};
use testkit::swarm_ops::{run_swarm_script, SwarmScript};

/// Script input: the configs' bytes, and one short byte string per operation, each read
/// by the fuzz targets' `Arbitrary` into one operation on its own. (One byte string for
/// the whole script, as libFuzzer hands it, makes a handful of operations from random
/// bytes: the first byte vector of an operation takes half of what is left.) Shrinking
/// drops whole operations first, then simplifies the bytes of each.
#[derive(Clone, Debug)]
struct ScriptInput {
    configs: Vec<u8>,
    ops: Vec<OpBytes>,
}

/// The bytes of one operation.
#[derive(Clone, Debug)]
struct OpBytes(Vec<u8>);

/// Bytes the configs are read from: more than two `ConfigChoice`s take.
const CONFIG_BYTES: usize = 64;

/// The most bytes one operation is read from: enough for every field of the largest
/// (`MessageBuilt` with a few peers), short enough that byte-vector payloads stay small.
const MAX_OP_BYTES: u8 = 40;

impl Arbitrary for OpBytes {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = 1 + u8::arbitrary(g) % MAX_OP_BYTES;
        Self((0..len).map(|_| u8::arbitrary(g)).collect())
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(Self))
    }
}

impl Arbitrary for ScriptInput {
    fn arbitrary(g: &mut Gen) -> Self {
        Self {
            configs: (0..CONFIG_BYTES).map(|_| u8::arbitrary(g)).collect(),
            ops: Vec::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let configs = self.configs.clone();
        let ops = self.ops.clone();
        let fewer_ops = self.ops.shrink().map(move |ops| Self {
            configs: configs.clone(),
            ops,
        });
        let simpler_configs = self.configs.shrink().map(move |configs| Self {
            configs,
            ops: ops.clone(),
        });
        Box::new(fewer_ops.chain(simpler_configs))
    }
}

/// One `T` as the fuzz targets read it.
fn read<'a, T: arbitrary::Arbitrary<'a>>(bytes: &mut Unstructured<'a>) -> arbitrary::Result<T> {
    T::arbitrary(bytes)
}

impl ScriptInput {
    /// The configs' reader.
    fn configs(&self) -> Unstructured<'_> {
        Unstructured::new(&self.configs)
    }

    /// The operations, each read from its own bytes (an exhausted reader gives zeros, so
    /// every byte string makes an operation).
    fn ops<T: for<'a> arbitrary::Arbitrary<'a>>(&self) -> Vec<T> {
        self.ops
            .iter()
            .filter_map(|op| read(&mut Unstructured::new(&op.0)).ok())
            .collect()
    }

    fn state_script(&self) -> Script {
        let mut configs = self.configs();
        Script {
            a: read::<ConfigChoice>(&mut configs).expect("a config reads from any bytes"),
            b: read::<ConfigChoice>(&mut configs).expect("a config reads from any bytes"),
            ops: self.ops(),
        }
    }

    fn swarm_script(&self) -> SwarmScript {
        SwarmScript {
            config: read::<ConfigChoice>(&mut self.configs())
                .expect("a config reads from any bytes"),
            ops: self.ops(),
        }
    }
}

/// Scripts per property in a default run: the three together take about as long as the
/// hand-written models they replaced did.
const TESTS: u64 = 300;

/// Operations per script, at most, in a default run (quickcheck's size: a script has
/// between none and this many).
const SIZE: usize = 200;

/// `QuickCheck` with [`TESTS`] cases of scripts up to [`SIZE`] operations, unless
/// `QUICKCHECK_TESTS` or `QUICKCHECK_GENERATOR_SIZE` say otherwise.
fn quickcheck() -> QuickCheck {
    let mut qc = QuickCheck::new();
    if std::env::var_os("QUICKCHECK_TESTS").is_none() {
        qc = qc.tests(TESTS);
    }
    if std::env::var_os("QUICKCHECK_GENERATOR_SIZE").is_none() {
        qc = qc.rng(Gen::new(SIZE));
    }
    qc
}

fn verdict(check: Result<(), String>) -> TestResult {
    match check {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
}

/// Two connected `PexState`s under a `state_ops` script keep every rule at every step, and
/// once the script is over each remote is told exactly the live set (BEP 11).
#[test]
fn state_scripts_keep_every_rule_and_converge() {
    fn prop(input: ScriptInput) -> TestResult {
        verdict(run_script(&input.state_script()))
    }
    quickcheck().quickcheck(prop as fn(ScriptInput) -> TestResult);
}

/// A message or handshake a `PexState` refuses leaves no trace: the same script with the
/// refused inputs withheld shows the same state, frames and events at every step. The
/// scripts must reach refusals for this to say anything, which the test checks.
#[test]
fn refused_inputs_leave_no_trace() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static REFUSED: AtomicUsize = AtomicUsize::new(0);
    fn prop(input: ScriptInput) -> TestResult {
        verdict(
            check_refusals_invisible(&input.state_script()).map(|refused| {
                REFUSED.fetch_add(refused, Ordering::Relaxed);
            }),
        )
    }
    quickcheck().quickcheck(prop as fn(ScriptInput) -> TestResult);
    assert!(
        REFUSED.load(Ordering::Relaxed) > 0,
        "no script reached a refused input"
    );
}

/// Many connections of one `Swarm` under a `swarm_ops` script keep every wire rule per
/// connection, stale handles answer nothing, and once the script is over each connection
/// was told exactly the live set, less its remote's own address and claims.
#[test]
fn swarm_scripts_keep_every_rule_and_converge() {
    fn prop(input: ScriptInput) -> TestResult {
        verdict(run_swarm_script(&input.swarm_script()))
    }
    quickcheck().quickcheck(prop as fn(ScriptInput) -> TestResult);
}

/// A quickcheck find: B takes three frames in one `Deliver` step and refuses only the
/// third (too frequent). The twin run must withhold that frame alone, not the step's two
/// accepted ones, or it reports a trace the refusal never left.
#[test]
fn a_step_refused_in_part_is_withheld_in_part() {
    let ops: [&[u8]; 11] = [
        &[0, 0, 0, 70, 0, 0, 0, 128],
        &[0, 0, 0, 70, 0, 0, 0, 128],
        &[0, 0, 0, 105, 0, 0, 0, 0, 0, 0, 3],
        &[0, 0, 0, 70, 0, 0, 0, 128],
        &[0, 0, 0, 35],
        &[0, 0, 0, 140],
        &[0, 0, 0, 210],
        &[0, 0, 0, 198],
        &[0, 0, 0, 70, 0, 0, 0, 128],
        &[0, 0, 0, 198],
        &[0, 0, 0, 233, 0, 0, 0, 128, 3],
    ];
    let input = ScriptInput {
        configs: Vec::new(),
        ops: ops.iter().map(|op| OpBytes(op.to_vec())).collect(),
    };
    assert_eq!(check_refusals_invisible(&input.state_script()), Ok(1));
}
