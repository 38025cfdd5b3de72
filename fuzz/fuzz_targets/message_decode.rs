//! Fuzz target `message_decode`: a shim over `testkit::codec::check_message`, which `tests/fuzz_regressions.rs` replays on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = testkit::codec::check_message(data) {
        panic!("{e}");
    }
});
