//! Quickcheck properties of `PeerBook` against the simple model in `testkit::book`:
//! bounds, one dial in flight per IP, `max_half_open`, dials only of held entries,
//! `poll_timeout` after a `None`, and determinism under one secret.

use quickcheck::{quickcheck, TestResult};

use testkit::book as book_script;

fn script(data: &[u8]) -> Option<book_script::Script> {
    book_script::script_from_bytes(data)
}

quickcheck! {
    /// Every invariant the interpreter checks holds for any script.
    fn invariants_hold(data: Vec<u8>) -> TestResult {
        let Some(s) = script(&data) else { return TestResult::discard() };
        book_script::run(&s);
        TestResult::passed()
    }

    /// The same secret and inputs give the same dial order.
    fn deterministic(data: Vec<u8>) -> TestResult {
        let Some(s) = script(&data) else { return TestResult::discard() };
        TestResult::from_bool(book_script::run(&s) == book_script::run(&s))
    }
}
