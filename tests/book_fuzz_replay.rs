//! Replays `fuzz/corpus/book_ops/*` (if present) through the shared `book_ops` script, so a
//! stable `cargo test` runs every checked-in fuzz input and its invariant checks.

use std::path::Path;

#[path = "../testkit/src/book.rs"]
#[allow(dead_code, unreachable_pub)]
mod book_script;

#[test]
fn replay_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/book_ops");
    let Ok(files) = std::fs::read_dir(&dir) else {
        return;
    };
    for file in files.flatten() {
        let data = std::fs::read(file.path()).unwrap();
        let mut u = arbitrary::Unstructured::new(&data);
        if let Ok(script) = <book_script::Script as arbitrary::Arbitrary>::arbitrary(&mut u) {
            book_script::run(&script);
        }
    }
}
