//! Support for the interop tests: child processes that print JSON lines, killed by PID when
//! dropped, a minimal JSON reader (the crate has no JSON dependency), and locating or
//! building the `probe` example and the real clients.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

// ---- JSON ---------------------------------------------------------------------------------

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    /// Parses one JSON text; `None` if it is not valid JSON.
    pub(crate) fn parse(text: &str) -> Option<Json> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        (p.i == p.s.len()).then_some(v)
    }

    /// The member `key` of an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(map) => map.get(key),
            _ => None,
        }
    }

    /// The member `key` as a string.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The member `key` as a number.
    pub(crate) fn num(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// The member `key` as a boolean.
    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The `"event"` member.
    pub(crate) fn event(&self) -> &str {
        self.str("event").unwrap_or("")
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if self.eat("}") {
                    return Some(Json::Obj(map));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return None;
                    }
                    let v = self.value()?;
                    map.insert(key, v);
                    self.ws();
                    if self.eat("}") {
                        return Some(Json::Obj(map));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Some(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    if self.eat("]") {
                        return Some(Json::Arr(items));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.eat("true").then_some(Json::Bool(true)),
            b'f' => self.eat("false").then_some(Json::Bool(false)),
            b'n' => self.eat("null").then_some(Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-.eE0123456789".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()?
                    .parse()
                    .ok()
                    .map(Json::Num)
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat("\"") {
            return None;
        }
        let mut out = String::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(out),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            let unit = u32::from_str_radix(hex, 16).ok()?;
                            // Surrogate pairs never occur in what the harnesses print.
                            out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                        }
                        _ => return None,
                    }
                }
                _ => {
                    // Copy one UTF-8 sequence whole.
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.s.len() && (self.s[end] & 0xc0) == 0x80 {
                        end += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..end]).ok()?);
                    self.i = end;
                }
            }
        }
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
                match Json::parse(&line) {
                    Some(json) => {
                        if tx.send(Line { at, json }).is_err() {
                            break;
                        }
                    }
                    None => raw.lock().unwrap().push(format!("stdout: {line}")),
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
        use std::io::Write;
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

/// The crate root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `probe` example, built once per test run in the profile this test was built with.
pub(crate) fn probe() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            // <target>/<profile>/deps/interop-<hash>
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("test executable under <target>/<profile>/deps");
            let release = profile_dir.file_name().is_some_and(|n| n == "release");
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .current_dir(root())
                .args(["build", "--quiet", "--example", "probe"]);
            if release {
                cargo.arg("--release");
            }
            let status = cargo
                .status()
                .expect("cannot run cargo to build the probe example");
            assert!(status.success(), "building the probe example failed");
            let probe = profile_dir.join("examples").join("probe");
            assert!(probe.exists(), "no probe binary at {}", probe.display());
            probe
        })
        .clone()
}

/// Debian's Python, the only one with `import libtorrent`; fails loudly if it is missing.
pub(crate) fn python_with_libtorrent() -> PathBuf {
    let python = PathBuf::from("/usr/bin/python3");
    let ok = Command::new(&python)
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "libtorrent is missing: `/usr/bin/python3 -c 'import libtorrent'` failed. \
         Install it with `bash tests/interop/setup.sh` (as root)."
    );
    python
}

/// `node` with the JS side's modules installed; fails loudly if either is missing.
pub(crate) fn node_with_modules() -> (PathBuf, PathBuf) {
    let js = root().join("tests").join("interop").join("js");
    let node = PathBuf::from("node");
    let ok = Command::new(&node)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "node is missing (node 20 is needed for the JS interop tests)"
    );
    for module in ["ut_pex", "bittorrent-protocol"] {
        let dir = js.join("node_modules").join(module);
        assert!(
            dir.is_dir(),
            "{} is missing: run `bash tests/interop/setup.sh` (or `npm ci` in tests/interop/js)",
            dir.display()
        );
    }
    (node, js)
}

/// Seconds between two instants, for the timing report.
pub(crate) fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::Json;

    #[test]
    fn json_reader() {
        let v = Json::parse(r#"{"t": 1.5, "event":"added","addr":"[::1]:7","ok":true,"m":{"a":[1,null]},"s":"\u00e9\n"}"#)
            .unwrap();
        assert_eq!(v.num("t"), Some(1.5));
        assert_eq!(v.event(), "added");
        assert_eq!(v.str("addr"), Some("[::1]:7"));
        assert_eq!(v.bool("ok"), Some(true));
        assert_eq!(
            v.get("m").and_then(|m| m.get("a")),
            Some(&Json::Arr(vec![Json::Num(1.0), Json::Null]))
        );
        assert_eq!(v.str("s"), Some("é\n"));
        assert!(Json::parse("{\"a\":}").is_none());
        assert!(Json::parse("{} x").is_none());
    }
}
