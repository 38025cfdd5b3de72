//! Fuzz target `state_ops`: an `Arbitrary` script of operations against two `PexState`s
//! wired together, with the invariants checked after every step. The operations, the
//! model and the checks live in `shared/checks.rs`, shared with
//! `tests/fuzz_regressions.rs`, which turns corpus files into scripts the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "shared/checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|script: checks::Script| {
    if let Err(e) = checks::run_script(&script) {
        panic!("{e}");
    }
});
