//! Replays what the fuzzers keep: every file under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`, through the same checks as the cargo-fuzz target, so a
//! bug the fuzzer found stays fixed where nightly and cargo-fuzz are absent.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Check;

/// The check of one fuzz input.
pub type Target = fn(&[u8]) -> Check;

/// Every fuzz target, with its check of one input.
pub const TARGETS: [(&str, Target); 5] = [
    ("message_decode", crate::codec::check_message),
    ("handshake_decode", crate::codec::check_handshake),
    ("state_ops", crate::interp::check_bytes),
    ("swarm_ops", crate::swarm_ops::check_bytes),
    ("book_ops", crate::book::check_bytes),
];

/// The `fuzz/` directory of the repository.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// The seed corpus and the kept regressions of `target`, in that order.
pub fn inputs(target: &str) -> Vec<PathBuf> {
    let root = fuzz_dir();
    let mut all = files(&root.join("corpus").join(target));
    all.extend(files(&root.join("regressions").join(target)));
    all
}

/// Runs `check` on every input of `target`; returns how many ran, or every failure, each
/// named by its file.
pub fn replay(target: &str, check: impl Fn(&[u8]) -> Check) -> Result<usize, String> {
    let all = inputs(target);
    let failures: Vec<String> = all
        .iter()
        .filter_map(|path| {
            let data = fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
            data.and_then(|d| check(&d))
                .err()
                .map(|e| format!("{}: {e}", path.display()))
        })
        .collect();
    if failures.is_empty() {
        Ok(all.len())
    } else {
        Err(format!(
            "{} failing inputs:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}
