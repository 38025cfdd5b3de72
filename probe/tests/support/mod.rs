//! Support for the probe's process tests: child processes that print JSON lines, killed by
//! PID when dropped, typed reads of those lines, and locating the `pex-probe` binary and the
//! real clients.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// ---- JSON ---------------------------------------------------------------------------------

pub(crate) use serde_json::Value as Json;

/// Typed reads of one JSON line's members.
pub(crate) trait Fields {
    /// The member `key` as a string.
    fn str(&self, key: &str) -> Option<&str>;
    /// The member `key` as a number.
    fn num(&self, key: &str) -> Option<f64>;
    /// The member `key` as a boolean.
    fn bool(&self, key: &str) -> Option<bool>;
    /// The `"event"` member, `""` if there is none.
    fn event(&self) -> &str;
}

impl Fields for Json {
    fn str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    fn bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    fn event(&self) -> &str {
        self.str("event").unwrap_or("")
    }
}

// ---- processes ----------------------------------------------------------------------------

/// One line a child printed on stdout, with the instant the test read it.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub(crate) at: Instant,
    pub(crate) json: Json,
}

/// A child process printing JSON lines. Dropping it kills the child by its PID and reaps it,
/// so nothing outlives a test, whether it passed or panicked.
pub(crate) struct Proc {
    pub(crate) name: String,
    child: Child,
    lines: Receiver<Line>,
    /// Every JSON line so far, in order.
    pub(crate) seen: Vec<Line>,
    /// Raw stdout lines that were not JSON, and all of stderr (for failure messages).
    other: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `command` with piped stdin/stdout/stderr.
    pub(crate) fn spawn(name: &str, mut command: Command) -> Proc {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let (tx, lines) = mpsc::channel();
        let other = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let raw = Arc::clone(&other);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                match serde_json::from_str::<Json>(&line) {
                    Ok(json) if json.is_object() => {
                        if tx.send(Line { at, json }).is_err() {
                            break;
                        }
                    }
                    _ => raw.lock().unwrap().push(format!("stdout: {line}")),
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let errs = Arc::clone(&other);
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let mut errs = errs.lock().unwrap();
            for line in text.lines() {
                errs.push(format!("stderr: {line}"));
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            other,
        }
    }

    /// Writes one command line to the child's stdin.
    pub(crate) fn send(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot write {command:?}: {e}", self.name));
    }

    /// Reads every line available now (without waiting).
    pub(crate) fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// The first line so far, or arriving before `deadline`, that `pred` accepts; panics
    /// with the child's whole output otherwise.
    pub(crate) fn wait_for(
        &mut self,
        what: &str,
        deadline: Instant,
        pred: impl Fn(&Json) -> bool,
    ) -> Line {
        self.drain();
        if let Some(line) = self.seen.iter().find(|l| pred(&l.json)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line.json);
                    self.seen.push(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out waiting for {what}
{}",
                    self.transcript()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    // The child closed stdout (exited): let stderr's reader finish.
                    thread::sleep(Duration::from_millis(200));
                    panic!(
                        "ended before {what}
{}",
                        self.transcript()
                    )
                }
            }
        }
    }

    /// Waits for the child to close stdout (it exited), at most until `deadline`.
    pub(crate) fn wait_exit(&mut self, deadline: Instant) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "did not exit in time
{}",
                        self.transcript()
                    )
                }
            }
        }
    }

    /// Every line seen that `pred` accepts.
    pub(crate) fn all(&mut self, pred: impl Fn(&Json) -> bool) -> Vec<Line> {
        self.drain();
        self.seen
            .iter()
            .filter(|l| pred(&l.json))
            .cloned()
            .collect()
    }

    /// Everything the child printed so far, for failure messages.
    pub(crate) fn transcript(&mut self) -> String {
        self.drain();
        let mut out = format!("---- {} (pid {}) stdout:\n", self.name, self.child.id());
        for line in &self.seen {
            out.push_str(&format!("{:?}\n", line.json));
        }
        for line in self.other.lock().unwrap().iter() {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if thread::panicking() {
            // A failing test: show what this child said (the panic shows the other one).
            eprintln!("{}", self.transcript());
        }
        // `Child::kill` sends SIGKILL to this child's PID only; `wait` reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- locating things ----------------------------------------------------------------------

/// The `pex-probe` package root (`probe/`).
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `pex-probe` binary, which cargo builds before this package's integration tests.
pub(crate) fn probe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pex-probe"))
}

/// Whether a missing client fails the test: `UT_PEX_INTEROP=require` (what CI sets).
pub(crate) fn required() -> bool {
    std::env::var_os("UT_PEX_INTEROP").is_some_and(|v| v == "require")
}

/// A client is missing: fails under `UT_PEX_INTEROP=require`, otherwise says that the test
/// is skipped and returns `None`.
fn missing<T>(what: &str) -> Option<T> {
    let message = format!(
        "{what}. Install the clients with `bash probe/tests/interop/setup.sh` (as root, see \
         CONTRIBUTING.md)."
    );
    assert!(!required(), "{message} (UT_PEX_INTEROP=require)");
    // Straight to stderr, past the test harness's capture of `eprintln!`, so that the skip
    // shows in a plain `cargo test` run.
    let _ = writeln!(
        std::io::stderr(),
        "interop test skipped: {message} Set UT_PEX_INTEROP=require to fail instead."
    );
    None
}

/// Debian's Python, the only one with `import libtorrent`, or `None` (skip) if it is missing.
pub(crate) fn python_with_libtorrent() -> Option<PathBuf> {
    let python = PathBuf::from("/usr/bin/python3");
    let ok = Command::new(&python)
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return missing("libtorrent is missing: `/usr/bin/python3 -c 'import libtorrent'` failed");
    }
    Some(python)
}

/// `node` with the JS side's modules installed, and their folder, or `None` (skip) if either
/// is missing.
pub(crate) fn node_with_modules() -> Option<(PathBuf, PathBuf)> {
    let js = root().join("tests").join("interop").join("js");
    let node = PathBuf::from("node");
    let ok = Command::new(&node)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return missing("node is missing (node 20 is needed for the JS interop tests)");
    }
    for module in ["ut_pex", "bittorrent-protocol"] {
        let dir = js.join("node_modules").join(module);
        if !dir.is_dir() {
            return missing(&format!("{} is missing", dir.display()));
        }
    }
    Some((node, js))
}

/// Seconds between two instants, for the timing report.
pub(crate) fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}
