//! Fuzz target `handshake_decode`: raw bytes into the decoder; the checks live in
//! `shared/checks.rs` (`check_handshake`), shared with `tests/fuzz_regressions.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "shared/checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = checks::check_handshake(data) {
        panic!("{e}");
    }
});
