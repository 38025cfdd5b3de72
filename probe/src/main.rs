//! `pex-probe`: ask any BitTorrent peer who it knows. It connects, does the BitTorrent and
//! BEP 10 handshakes, and prints every ut_pex event as one JSON object per line.
//!
//! ```text
//! pex-probe <HOST:PORT> <INFO_HASH_HEX> [--bind IP] [--listen-port N]
//!       [--advertise ADDR[/FLAGS]]... [--drop ADDR]... [--seconds N]
//! ```
//!
//! A blocking driver: one thread, `std::net`, and a read timeout computed from
//! `PexState::poll_timeout` and the other periodic duties. To stay connected for minutes it
//! behaves as a polite leecher: `interested`, a block request every 20 s when the remote has
//! a piece, and a keep-alive whenever it wrote nothing for 5 s (some clients, rqbit among
//! them, close a connection that is silent for 10 s).
//!
//! Output (stdout, one line each, flushed; diagnostics go to stderr), each with `t`, the
//! seconds since the probe started: `connected`, `handshake`, `added` / `dropped` (exactly as
//! the state emits them), `sent` (each frame we send), `error` (each refused ut_pex message)
//! and last `closed`. See the package's README for the fields.

mod output;
mod session;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ut_pex::{Peer, PeerFlags};

use output::{Line, Output};

/// Ask any BitTorrent peer who it knows, over ut_pex (BEP 11); print JSON lines.
///
/// Connects to the peer, does the BitTorrent and extension (BEP 10) handshakes and prints one
/// JSON object per line on stdout: connected, handshake, added, dropped, sent, error, closed,
/// each with "t" (seconds since start). Diagnostics go to stderr.
#[derive(Debug, Parser)]
#[command(name = "pex-probe", version)]
pub(crate) struct Args {
    /// The peer to ask (a host name is resolved; its first address is used).
    #[arg(value_name = "HOST:PORT", value_parser = parse_target)]
    pub(crate) target: SocketAddr,
    /// The torrent's info-hash: 40 hex digits.
    #[arg(value_name = "INFO_HASH_HEX", value_parser = parse_info_hash)]
    pub(crate) info_hash: [u8; 20],
    /// Connect from this local IP.
    #[arg(long, value_name = "IP")]
    pub(crate) bind: Option<IpAddr>,
    /// The listen port to announce (`p` in our extended handshake).
    #[arg(long, value_name = "N")]
    pub(crate) listen_port: Option<u16>,
    /// A peer to advertise in our first ut_pex frame; FLAGS is the BEP 11 flag byte in hex
    /// (`12` or `0x12`). Repeatable.
    #[arg(long, value_name = "ADDR[/FLAGS]", value_parser = parse_peer)]
    pub(crate) advertise: Vec<Peer>,
    /// A peer to drop right after our first frame (it goes out one send interval, 65 s,
    /// later). Repeatable.
    #[arg(long = "drop", value_name = "ADDR")]
    pub(crate) drop: Vec<SocketAddr>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "N", default_value_t = 90.0, value_parser = parse_seconds)]
    pub(crate) seconds: f64,
    /// Send a keep-alive after this many seconds without writing anything (tests shorten or
    /// lengthen it; 5 s keeps a margin under the 10 s silence some clients tolerate).
    #[arg(long, value_name = "N", default_value_t = 5.0, value_parser = parse_seconds, hide = true)]
    pub(crate) keep_alive_after: f64,
}

impl Args {
    /// `--keep-alive-after` as a duration, never zero (a zero would write in a busy loop).
    pub(crate) fn keep_alive_after(&self) -> Duration {
        Duration::from_secs_f64(self.keep_alive_after).max(Duration::from_millis(10))
    }
}

fn main() -> ExitCode {
    let out = Output {
        start: Instant::now(),
    };
    // Usage errors print the usage and exit with 2, `--help` prints it and exits with 0.
    let args = Args::parse();
    let stream = match session::connect(&args) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("pex-probe: cannot connect to {}: {e}", args.target);
            return ExitCode::FAILURE;
        }
    };
    out.emit(Line::Connected {
        peer: pex_probe::wire::show(args.target),
    });

    let mut probe = session::Probe::new(&args, &out, stream);
    let (reason, code) = match probe.run() {
        Ok(reason) => (reason, ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("pex-probe: {e}");
            ("error", ExitCode::FAILURE)
        }
    };
    out.emit(Line::Closed { reason });
    code
}

fn parse_target(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("bad HOST:PORT {s:?}: {e}"))?
        .next()
        .ok_or(format!("{s:?} resolves to no address"))
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let seconds: f64 = s.parse().map_err(|_| format!("not a number: {s:?}"))?;
    // `Duration::from_secs_f64` needs a finite, non-negative value; a billion seconds is
    // "forever" for a probe.
    if !(0.0..1e9).contains(&seconds) {
        return Err(format!("{seconds} is not in 0..1e9"));
    }
    Ok(seconds)
}

/// `ADDR[/FLAGS]`, FLAGS in hex with or without `0x`.
fn parse_peer(s: &str) -> Result<Peer, String> {
    let (addr, flags) = match s.split_once('/') {
        Some((addr, flags)) => {
            let hex = flags.trim_start_matches("0x").trim_start_matches("0X");
            let bits = u8::from_str_radix(hex, 16).map_err(|_| format!("bad flags {flags:?}"))?;
            (addr, PeerFlags::from_bits(bits))
        }
        None => (s, PeerFlags::EMPTY),
    };
    let addr = addr.parse().map_err(|_| format!("bad address {addr:?}"))?;
    Ok(Peer::new(addr, flags))
}

fn parse_info_hash(s: &str) -> Result<[u8; 20], String> {
    let bad = || format!("{s:?} is not 40 hex digits");
    if s.len() != 40 || !s.is_ascii() {
        return Err(bad());
    }
    let mut hash = [0u8; 20];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_command_line() {
        let args = Args::try_parse_from([
            "pex-probe",
            "127.0.0.1:6881",
            "00112233445566778899aabbccddeeff00112233",
            "--bind",
            "127.0.0.6",
            "--listen-port",
            "6881",
            "--advertise",
            "127.0.0.7:1/12",
            "--advertise",
            "[::1]:2",
            "--drop",
            "127.0.0.7:1",
            "--seconds",
            "2.5",
        ])
        .map_err(|e| e.to_string());
        let args = args.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.info_hash[19], 0x33);
        assert_eq!(args.advertise.len(), 2);
        assert_eq!(args.advertise[0].flags.bits(), 0x12);
        assert_eq!(args.advertise[1].flags, PeerFlags::EMPTY);
        assert_eq!(args.drop.len(), 1);
        assert_eq!(args.seconds, 2.5);
        assert_eq!(args.keep_alive_after(), Duration::from_secs(5));
    }

    #[test]
    fn refuses_bad_values() {
        let hash = "00112233445566778899aabbccddeeff00112233";
        for bad in [
            vec!["127.0.0.1:1", "00"],
            vec!["127.0.0.1:1", hash, "--seconds", "-1"],
            vec!["127.0.0.1:1", hash, "--seconds", "NaN"],
            vec!["127.0.0.1:1", hash, "--advertise", "127.0.0.1:1/zz"],
            vec!["127.0.0.1:1", hash, "--unknown"],
            vec!["127.0.0.1:1"],
        ] {
            let argv = std::iter::once("pex-probe").chain(bad.iter().copied());
            assert!(Args::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }
}
