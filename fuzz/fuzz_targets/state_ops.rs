//! Fuzz target `state_ops`: a shim over `testkit::interp::check_bytes`, which `tests/fuzz_regressions.rs` replays on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = testkit::interp::check_bytes(data) {
        panic!("{e}");
    }
});
