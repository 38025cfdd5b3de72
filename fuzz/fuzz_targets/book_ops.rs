//! Fuzz target `book_ops`: an `Arbitrary` script of `PeerBook` calls, with the invariants
//! checked after every step. Script, interpreter and checks live in `testkit/src/book.rs`,
//! shared with `tests/book_fuzz_replay.rs` and `tests/book_properties.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../testkit/src/book.rs"]
#[allow(dead_code)]
mod book_script;

fuzz_target!(|script: book_script::Script| {
    book_script::run(&script);
});
