//! Quickcheck properties of `PeerBook` against the simple model in `testkit/src/book.rs`:
//! bounds, one dial in flight per IP, `max_half_open`, dials only of held entries,
//! `poll_timeout` after a `None`, and determinism under one secret.

use quickcheck::{quickcheck, TestResult};

#[path = "../testkit/src/book.rs"]
#[allow(dead_code, unreachable_pub)]
mod book_script;

fn script(data: &[u8]) -> Option<book_script::Script> {
    let mut u = arbitrary::Unstructured::new(data);
    <book_script::Script as arbitrary::Arbitrary>::arbitrary(&mut u).ok()
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
