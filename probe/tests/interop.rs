//! Interop tests against real clients: libtorrent 2.0.8 (Debian's python3-libtorrent, driven
//! by `interop/lt_hub.py`) and npm `ut_pex` 5.0.2 on `bittorrent-protocol` 5.0.9
//! (`interop/js/pex_peer.mjs`), both directions, on loopback only. Our side is the
//! `pex-probe` binary.
//!
//! They run with the rest of `cargo test --workspace` and take about 80 s (two of them wait
//! for a real 60-65 s PEX cadence). Install the clients with
//! `bash probe/tests/interop/setup.sh` (see CONTRIBUTING.md). Without them each test says it
//! is skipped and passes, unless `UT_PEX_INTEROP=require` is set (CI sets it): then a missing
//! client fails the test. Every child process is killed by PID when its guard drops, pass or
//! fail, and each one also stops by itself after a bounded time.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{node_with_modules, probe, python_with_libtorrent, root, secs, Fields, Json, Proc};

/// How long a real client may take to react to a message (the brief's bound).
const REACT: Duration = Duration::from_secs(5);
/// Our send interval: a `--drop` goes out this long after the first frame.
const OUR_INTERVAL: Duration = Duration::from_secs(65);
/// libtorrent's: its next message comes about this long after the previous one.
const LT_INTERVAL: Duration = Duration::from_secs(60);
/// Slack on top of a client's interval before the test gives up.
const SLACK: Duration = Duration::from_secs(15);

/// The probe's `--bind` address in the libtorrent scenarios (one IP per participant).
const PROBE_IP: &str = "127.0.0.6";
/// The `p` the probe announces (nothing listens there; libtorrent peers may try it).
const PROBE_LISTEN_PORT: u16 = 6881;

fn addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("not a socket address: {text:?}: {e}"))
}

/// The `flags` of a probe or JS line: a number, or a hex string (`"12"`, `"0x12"`).
fn flags(line: &Json) -> u8 {
    match line.get("flags") {
        Some(Json::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .unwrap_or_else(|| panic!("bad flags {n}")),
        Some(Json::String(s)) => {
            let hex = s.trim_start_matches("0x");
            u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad flags {s:?}"))
        }
        other => panic!("no flags in {line:?}: {other:?}"),
    }
}

/// Seconds between the probe's first two `sent` lines, by the probe's own clock (`t`).
fn probe_gap(frames: &[support::Line]) -> f64 {
    let t = |i: usize| frames[i].json.num("t").expect("t");
    t(1) - t(0)
}

fn is_event(line: &Json, event: &str) -> bool {
    line.event() == event
}

fn has_addr(line: &Json, event: &str, want: SocketAddr) -> bool {
    is_event(line, event) && line.str("addr").map(addr) == Some(want)
}

/// Waits (until `by`) for the probe's `closed` line and checks that it ended on its own timer:
/// `done`, not `remote_closed` (the client hung up) or `error`.
fn wait_done(us: &mut Proc, by: Instant) -> support::Line {
    let closed = us.wait_for("the probe to finish", by, |l| is_event(l, "closed"));
    assert_eq!(
        closed.json.str("reason"),
        Some("done"),
        "{}",
        us.transcript()
    );
    closed
}

fn start_probe(target: &str, info_hash: &str, extra: &[String]) -> Proc {
    let mut command = Command::new(probe());
    command.arg(target).arg(info_hash).args(extra);
    Proc::spawn("probe", command)
}

fn random_info_hash() -> String {
    // Unique per run without a random-number dependency: the clock and the PID, hashed by
    // std's SipHash with its per-process random keys.
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..3u8 {
        let mut h = RandomState::new().build_hasher();
        h.write_u8(i);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

/// libtorrent's own messages for its three PEX disconnect reasons (src/error_code.cpp).
fn is_pex_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("pex message") || m.contains("too frequent") || m.contains("possible attack")
}

// ---- libtorrent ---------------------------------------------------------------------------

/// Scenarios 1-3: a libtorrent hub with a seed and a leecher connected; the probe joins.
///
/// 1. The hub's first PEX lists both sessions (seed flag on the seed only); when the seed
///    leaves, its next message (one 60 s tick later) drops it.
/// 2. The probe advertises an idle session the hub does not know: the hub dials it, and
///    its peer list says it learnt it by PEX.
/// 3. The hub never disconnects us for a PEX reason over our two frames (the add, and a drop
///    of the idle session 65 s later), and the probe ends on its own timer.
#[test]
fn libtorrent_hub() {
    let Some(python) = python_with_libtorrent() else {
        return;
    };
    let script = root().join("tests").join("interop").join("lt_hub.py");
    let mut command = Command::new(python);
    command.arg(script).args(["--max-seconds", "200"]);
    let mut hub = Proc::spawn("lt_hub.py", command);
    let ready = hub.wait_for("the swarm", Instant::now() + Duration::from_secs(60), |l| {
        is_event(l, "ready")
    });
    let field = |name: &str| ready.json.str(name).expect(name).to_owned();
    let (hub_addr, info_hash) = (field("hub"), field("info_hash"));
    let (seed, leecher, idle) = (
        addr(&field("seed")),
        addr(&field("leecher")),
        addr(&field("idle")),
    );
    println!("libtorrent: hub {hub_addr}, seed {seed}, leecher {leecher}, idle {idle}");

    // The probe stays long enough to see libtorrent's second message (about 61 s after its
    // handshake) and then ends on its own timer ("done").
    let probe_seconds = (LT_INTERVAL + SLACK).as_secs();
    let mut us = start_probe(
        &hub_addr,
        &info_hash,
        &[
            "--bind".into(),
            PROBE_IP.into(),
            "--listen-port".into(),
            PROBE_LISTEN_PORT.to_string(),
            "--advertise".into(),
            format!("{idle}/10"),
            // A second frame 65 s later, so libtorrent's flood rule sees our real cadence.
            "--drop".into(),
            idle.to_string(),
            "--seconds".into(),
            probe_seconds.to_string(),
        ],
    );
    let handshake = us.wait_for("the handshake", Instant::now() + REACT * 2, |l| {
        is_event(l, "handshake")
    });
    assert!(
        handshake
            .json
            .get("ut_pex")
            .is_some_and(|v| *v != Json::Null),
        "libtorrent did not advertise ut_pex: {:?}",
        handshake.json
    );

    // Scenario 1a: the first message lists both sessions, within 5 s.
    let seed_added = us.wait_for("seed added", handshake.at + REACT, |l| {
        has_addr(l, "added", seed)
    });
    let leecher_added = us.wait_for("leecher added", handshake.at + REACT, |l| {
        has_addr(l, "added", leecher)
    });
    assert_eq!(
        flags(&seed_added.json) & 0x02,
        0x02,
        "seed flag missing: {:?}",
        seed_added.json
    );
    assert_eq!(
        flags(&leecher_added.json) & 0x02,
        0,
        "leecher marked seed: {:?}",
        leecher_added.json
    );
    let first_added = seed_added.at.min(leecher_added.at);
    println!(
        "libtorrent -> us: first added {:.3} s after our handshake line (seed flags {:#04x}, leecher flags {:#04x})",
        secs(handshake.at, first_added),
        flags(&seed_added.json),
        flags(&leecher_added.json)
    );

    // Scenario 2: our first frame makes the hub dial the idle session, by PEX.
    let sent = us.wait_for("our first frame", handshake.at + REACT, |l| {
        is_event(l, "sent")
    });
    let dial = hub.wait_for(
        "the hub to dial the advertised peer",
        sent.at + REACT,
        |l| is_event(l, "pex_dial"),
    );
    assert_eq!(
        dial.json.str("addr").map(addr),
        Some(idle),
        "{:?}",
        dial.json
    );
    assert_eq!(
        dial.json.bool("pex"),
        Some(true),
        "source lacks the pex bit: {:?}",
        dial.json
    );
    assert_eq!(dial.json.bool("outgoing"), Some(true), "{:?}", dial.json);
    println!(
        "us -> libtorrent: hub dialled the advertised peer {:.3} s after our frame (source {})",
        secs(sent.at, dial.at),
        dial.json.num("source").unwrap_or(-1.0)
    );

    // Scenario 1b: the seed leaves; libtorrent's next message drops it.
    hub.send("leave seed");
    let left = hub.wait_for("the seed to leave", Instant::now() + REACT, |l| {
        is_event(l, "left")
    });
    let dropped = us.wait_for(
        "the seed dropped",
        handshake.at + LT_INTERVAL + SLACK,
        |l| has_addr(l, "dropped", seed),
    );
    println!(
        "libtorrent -> us: drop seen {:.3} s after the seed left ({:.3} s after the first added)",
        secs(left.at, dropped.at),
        secs(first_added, dropped.at)
    );
    assert!(
        us.all(|l| has_addr(l, "dropped", leecher)).is_empty(),
        "the leecher never left but was dropped"
    );

    // Scenario 3: the probe ends by itself ("done": had libtorrent disconnected us, it would
    // say "remote_closed"), and no disconnect or error libtorrent logged for us is a PEX one.
    wait_done(
        &mut us,
        handshake.at + Duration::from_secs(probe_seconds) + SLACK,
    );
    let errors = us.all(|l| is_event(l, "error"));
    assert!(errors.is_empty(), "probe errors: {errors:?}");
    hub.send("quit");
    hub.wait_exit(Instant::now() + Duration::from_secs(10));
    let pex_cuts = hub.all(|l| {
        matches!(l.event(), "disconnected" | "peer_error")
            && l.str("addr")
                .is_some_and(|a| addr(a).ip().to_string() == PROBE_IP)
            && (is_pex_error(l.str("error").unwrap_or(""))
                || is_pex_error(l.str("message").unwrap_or("")))
    });
    assert!(
        pex_cuts.is_empty(),
        "libtorrent cut us for PEX: {pex_cuts:?}"
    );
    let peers: Vec<String> = us
        .all(|l| matches!(l.event(), "added" | "dropped"))
        .iter()
        .map(|l| {
            let (a, t) = (
                l.json.str("addr").unwrap_or("?"),
                l.json.num("t").unwrap_or(0.0),
            );
            match l.json.event() {
                "added" => format!("{t:.1}s +{a}/{:#04x}", flags(&l.json)),
                _ => format!("{t:.1}s -{a}"),
            }
        })
        .collect();
    println!(
        "libtorrent -> us, whole run (probe time): {}",
        peers.join(", ")
    );
    let frames = us.all(|l| is_event(l, "sent"));
    assert_eq!(
        frames.len(),
        2,
        "expected our add frame and our drop frame: {frames:?}"
    );
    println!(
        "libtorrent: probe ran {probe_seconds} s, sent 2 frames {:.3} s apart, closed: done, no PEX disconnect",
        probe_gap(&frames)
    );
}

// ---- JS -----------------------------------------------------------------------------------

/// Starts the JS peer (`node` and its folder from [`node_with_modules`]); returns it and
/// the address it listens on.
fn start_js((node, js): (PathBuf, PathBuf), extra: &[&str], info_hash: &str) -> (Proc, String) {
    let script: PathBuf = js.join("pex_peer.mjs");
    let mut command = Command::new(node);
    command
        .current_dir(&js)
        .arg(script)
        .args(["--info-hash", info_hash, "--max-seconds", "200"])
        .args(extra);
    let mut proc = Proc::spawn("pex_peer.mjs", command);
    let listening = proc.wait_for("listening", Instant::now() + Duration::from_secs(20), |l| {
        is_event(l, "listening")
    });
    let port = listening.json.num("port").expect("port") as u16;
    let host = listening.json.str("host").expect("host").to_owned();
    (proc, format!("{host}:{port}"))
}

/// Scenario 4: our frames reach the JS module: v4 and v6 peers with their flag bits, and a
/// drop one interval (65 s) later, which its strict "< 60 s is a flood" rule must let pass.
/// About 75 s.
#[test]
fn js_receives_our_pex() {
    let Some(node_js) = node_with_modules() else {
        return;
    };
    let info_hash = random_info_hash();
    let (mut js, target) = start_js(node_js, &[], &info_hash);
    let advertised: [(&str, u8); 3] = [
        ("127.0.0.7:6881", 0x12),
        ("127.0.0.8:6882", 0x00),
        ("[::1]:6883", 0x05),
    ];
    let dropped = addr(advertised[0].0);
    let probe_seconds = (OUR_INTERVAL + SLACK).as_secs();
    let mut args: Vec<String> = Vec::new();
    for (a, f) in advertised {
        args.push("--advertise".into());
        args.push(format!("{a}/{f:02x}"));
    }
    args.extend(["--drop".into(), dropped.to_string()]);
    args.extend(["--seconds".into(), probe_seconds.to_string()]);
    let mut us = start_probe(&target, &info_hash, &args);
    let handshake = us.wait_for("the handshake", Instant::now() + REACT * 2, |l| {
        is_event(l, "handshake")
    });
    let sent = us.wait_for("our first frame", handshake.at + REACT, |l| {
        is_event(l, "sent")
    });
    let mut last = sent.at;
    for (a, f) in advertised {
        let want = addr(a);
        let peer = js.wait_for(&format!("peer {a}"), sent.at + REACT, |l| {
            has_addr(l, "peer", want)
        });
        assert_eq!(flags(&peer.json), f, "flags of {a}: {:?}", peer.json);
        last = last.max(peer.at);
    }
    println!(
        "us -> JS: {} peers (v4 + v6) with their flags seen {:.3} s after our frame",
        advertised.len(),
        secs(sent.at, last)
    );
    let drop_seen = js.wait_for("the drop", sent.at + OUR_INTERVAL + SLACK, |l| {
        has_addr(l, "dropped", dropped)
    });
    let closed = wait_done(
        &mut us,
        handshake.at + Duration::from_secs(probe_seconds) + SLACK,
    );
    // Every line before "closed" has been read by now.
    let frames = us.all(|l| is_event(l, "sent"));
    assert_eq!(frames.len(), 2, "expected two frames: {frames:?}");
    println!(
        "us -> JS: drop seen {:.3} s after our drop frame (our frames {:.3} s apart)",
        secs(frames[1].at, drop_seen.at),
        probe_gap(&frames)
    );
    let warnings = js.all(|l| is_event(l, "warning"));
    assert!(warnings.is_empty(), "JS warned: {warnings:?}");
    let others = js.all(|l| {
        l.event() == "peer"
            && !advertised
                .iter()
                .any(|(a, _)| l.str("addr").map(addr) == Some(addr(a)))
    });
    assert!(others.is_empty(), "JS saw peers we never sent: {others:?}");
    let early_close: Vec<_> = js
        .all(|l| is_event(l, "closed"))
        .into_iter()
        .filter(|l| l.at < closed.at)
        .collect();
    assert!(
        early_close.is_empty(),
        "JS closed the connection early: {early_close:?}"
    );
    assert!(
        us.all(|l| is_event(l, "error")).is_empty(),
        "{}",
        us.transcript()
    );
}

/// Scenario 5: the JS module's messages reach us: v4 + v6 peers with flags, then an
/// all-empty message right after (two messages within a second: within our flood rule).
/// About 5 s.
#[test]
fn js_sends_us_pex() {
    let Some(node_js) = node_with_modules() else {
        return;
    };
    let info_hash = random_info_hash();
    let peers: [(&str, u8); 3] = [
        ("127.0.0.9:7001", 0x02),
        ("[::1]:7002", 0x11),
        ("127.0.0.10:7003", 0x0c),
    ];
    let specs: Vec<String> = peers.iter().map(|(a, f)| format!("{a}/{f:02x}")).collect();
    let mut js_args: Vec<&str> = Vec::new();
    for spec in &specs {
        js_args.extend(["--add", spec.as_str()]);
    }
    js_args.push("--send-empty");
    let (mut js, target) = start_js(node_js, &js_args, &info_hash);
    let mut us = start_probe(&target, &info_hash, &["--seconds".into(), "5".into()]);
    let handshake = us.wait_for("the handshake", Instant::now() + REACT * 2, |l| {
        is_event(l, "handshake")
    });
    let mut last = handshake.at;
    for (a, f) in peers {
        let want = addr(a);
        let added = us.wait_for(&format!("added {a}"), handshake.at + REACT, |l| {
            has_addr(l, "added", want)
        });
        assert_eq!(flags(&added.json), f, "flags of {a}: {:?}", added.json);
        last = last.max(added.at);
    }
    let first_sent = js.wait_for("the JS peers message", handshake.at + REACT, |l| {
        is_event(l, "sent") && l.num("message") == Some(1.0)
    });
    js.wait_for("the JS empty message", handshake.at + REACT, |l| {
        is_event(l, "sent") && l.num("message") == Some(2.0)
    });
    println!(
        "JS -> us: {} peers seen {:.3} s after the JS side sent them",
        peers.len(),
        secs(first_sent.at, last)
    );
    wait_done(&mut us, handshake.at + Duration::from_secs(5) + SLACK);
    let added = us.all(|l| is_event(l, "added"));
    assert_eq!(added.len(), peers.len(), "exactly the JS peers: {added:?}");
    assert!(
        us.all(|l| is_event(l, "dropped")).is_empty(),
        "{}",
        us.transcript()
    );
    assert!(
        us.all(|l| is_event(l, "error")).is_empty(),
        "{}",
        us.transcript()
    );
}
