//! Fuzz target `handshake_decode`: a shim over `testkit::codec::check_handshake`, which `tests/fuzz_regressions.rs` replays on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = testkit::codec::check_handshake(data) {
        panic!("{e}");
    }
});
