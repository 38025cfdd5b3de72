//! The command line as a user meets it: `--help`, usage errors, a peer that is not there.

use std::net::TcpListener;
use std::process::{Command, Output};

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pex-probe"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run pex-probe: {e}"))
}

const HASH: &str = "00112233445566778899aabbccddeeff00112233";

#[test]
fn help_lists_every_option() {
    let out = probe(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "<HOST:PORT>",
        "<INFO_HASH_HEX>",
        "--bind",
        "--listen-port",
        "--advertise",
        "--drop",
        "--seconds",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    // The test-only knob stays out of the user's way.
    assert!(!help.contains("keep-alive-after"), "{help}");
}

#[test]
fn usage_errors_exit_with_2_and_print_nothing_on_stdout() {
    for args in [
        &["127.0.0.1:1"][..],
        &["127.0.0.1:1", "xyz"],
        &["127.0.0.1:1", HASH, "--seconds", "-3"],
        &["127.0.0.1:1", HASH, "--advertise", "nowhere"],
        &["127.0.0.1:1", HASH, "--nonsense"],
    ] {
        let out = probe(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn a_refused_connection_exits_with_1() {
    // A port that was just free: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let out = probe(&[&format!("127.0.0.1:{port}"), HASH, "--seconds", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}
