//! The JSON lines on stdout: one object per event, each with `t` (seconds since the probe
//! started, to the millisecond) and `event`.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::time::Instant;

use serde::Serialize;

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
    t: f64,
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
        // Milliseconds are what the probe can promise: its loop wakes every 250 ms at most.
        let t = (self.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        let mut stdout = io::stdout().lock();
        // A closed stdout must not kill the connection loop: ignore write errors.
        let _ = serde_json::to_writer(&mut stdout, &Stamped { t, line: &line });
        let _ = stdout.write_all(b"\n");
        let _ = stdout.flush();
    }
}
