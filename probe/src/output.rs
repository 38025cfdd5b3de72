//! The JSON lines on stdout: one object per event, each with `t` (seconds since the probe
//! started, to the millisecond) and `event`.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::value::RawValue;

/// One event, serialized as `"event":"<name>"` plus its fields.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Line {
    /// The TCP connection is up.
    Connected {
        /// The address connected to, as [`show`](pex_probe::wire::show) prints it.
        peer: String,
    },
    /// The remote's extended handshake (every one, if it sends several).
    Handshake {
        /// Its `v`, if any.
        client: Option<String>,
        /// The extended id it receives ut_pex on; 0 if it does not speak ut_pex.
        ut_pex: u8,
        /// The `yourip` it told us, if any.
        yourip: Option<String>,
    },
    /// A peer the remote added, exactly as the state emits it.
    Added {
        /// Its address.
        addr: String,
        /// Its BEP 11 flag byte.
        flags: u8,
    },
    /// A peer the remote dropped.
    Dropped {
        /// Its address.
        addr: String,
    },
    /// A ut_pex frame we sent.
    Sent {
        /// Entries in `added` and `added6`.
        added: usize,
        /// Entries in `dropped` and `dropped6`.
        dropped: usize,
        /// The whole frame's length, peer-wire header included.
        bytes: usize,
    },
    /// A ut_pex message the state refused.
    Error {
        /// `MessageError::kind`.
        kind: &'static str,
        /// Its message.
        message: String,
    },
    /// The last line: `done`, `remote_closed` or `error`.
    Closed {
        /// Why the probe stopped.
        reason: &'static str,
    },
}

impl Line {
    /// `added` for an address and flag byte.
    pub(crate) fn added(addr: SocketAddr, flags: u8) -> Self {
        Self::Added {
            addr: pex_probe::wire::show(addr),
            flags,
        }
    }
}

/// `t` first, then the event's fields.
#[derive(Serialize)]
struct Stamped<'a> {
    /// Seconds with exactly three decimals, written as is.
    t: &'a RawValue,
    #[serde(flatten)]
    line: &'a Line,
}

/// Where the lines go.
#[derive(Debug)]
pub(crate) struct Output {
    /// `t` counts from here.
    pub(crate) start: Instant,
}

impl Output {
    /// Prints one line and flushes, so that a reader sees each event when it happens.
    pub(crate) fn emit(&self, line: Line) {
        let mut stdout = io::stdout().lock();
        // A closed stdout must not kill the connection loop: ignore write errors.
        let _ = stdout.write_all(stamp(self.start.elapsed(), &line).as_bytes());
        let _ = stdout.flush();
    }
}

/// One line, newline included: `{"t":<seconds, three decimals>,"event":…}`.
fn stamp(elapsed: Duration, line: &Line) -> String {
    // Milliseconds are what the probe can promise: its loop wakes every 250 ms at most.
    let t = format!("{:.3}", elapsed.as_secs_f64());
    // A formatted finite `f64` is always a valid JSON number, and the events hold only
    // strings and integers, so neither step can fail; an empty line would say if one did.
    let json = RawValue::from_string(t)
        .and_then(|t| serde_json::to_string(&Stamped { t: &t, line }))
        .unwrap_or_default();
    json + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    /// Each event's line, field for field and in order, as the probe example printed them.
    #[test]
    fn lines_keep_their_names_and_order() {
        let line = |line: Line| stamp(Duration::from_millis(1250), &line);
        let cases = [
            (
                Line::Connected {
                    peer: "[::1]:6881".into(),
                },
                r#"{"t":1.250,"event":"connected","peer":"[::1]:6881"}"#,
            ),
            (
                Line::Handshake {
                    client: Some("lt \"2\"".into()),
                    ut_pex: 1,
                    yourip: None,
                },
                r#"{"t":1.250,"event":"handshake","client":"lt \"2\"","ut_pex":1,"yourip":null}"#,
            ),
            (
                // IPv4-mapped IPv6 prints as IPv4.
                Line::added(
                    SocketAddr::from((Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1), 7)),
                    18,
                ),
                r#"{"t":1.250,"event":"added","addr":"127.0.0.1:7","flags":18}"#,
            ),
            (
                Line::Dropped {
                    addr: "127.0.0.1:7".into(),
                },
                r#"{"t":1.250,"event":"dropped","addr":"127.0.0.1:7"}"#,
            ),
            (
                Line::Sent {
                    added: 2,
                    dropped: 0,
                    bytes: 43,
                },
                r#"{"t":1.250,"event":"sent","added":2,"dropped":0,"bytes":43}"#,
            ),
            (
                Line::Error {
                    kind: "decode",
                    message: "bad\nvalue".into(),
                },
                r#"{"t":1.250,"event":"error","kind":"decode","message":"bad\nvalue"}"#,
            ),
            (
                Line::Closed { reason: "done" },
                r#"{"t":1.250,"event":"closed","reason":"done"}"#,
            ),
        ];
        for (event, want) in cases {
            assert_eq!(line(event), format!("{want}\n"));
        }
    }
}
