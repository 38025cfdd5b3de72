//! Fuzz target `book_ops`: an `Arbitrary` script of `PeerBook` calls, with the invariants
//! checked after every step. Script, interpreter and checks live in `testkit::book`,
//! shared with `tests/book_fuzz_replay.rs` and `tests/book_properties.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

use testkit::book as book_script;

fuzz_target!(|script: book_script::Script| {
    book_script::run(&script);
});
