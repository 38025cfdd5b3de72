//! Convergence, checked once a script is over: every connection is made able to send
//! (`ut_pex` on, started), time runs deadline by deadline until nothing is scheduled, and
//! then each remote was told exactly the live set, up to echo suppression. The per-frame
//! rules say nothing wrong is sent; this says everything right eventually is (BEP 11:
//! added peers are announced, dropped ones withdrawn).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::ensure;
use crate::rules::WireRules;
use crate::Check;

/// The remote id the settling phase gives a connection whose remote has `ut_pex` off.
pub const SETTLE_REMOTE_ID: u8 = 1;

/// How many deadlines the settling phase may take for one connection that has `live`
/// peers to announce: enough frames for every add and every drop at the per-frame limit,
/// plus the wake-ups that find nothing to send. More means the connection never goes quiet.
pub fn round_limit(wire: &WireRules, live: usize) -> usize {
    let entries = live + wire.advertised.len();
    2 * (entries / wire.limits.per_frame.max(1)) + 8
}

/// The most deadlines a script is settled for. A script whose live set takes more frames
/// than that to announce at its per-frame limit (hundreds of peers at a few per frame) is
/// not settled: it would cost the fuzz targets many times the rest of the run, and smaller
/// scripts reach the same paths.
pub const MAX_ROUNDS: usize = 16;

/// Whether the clock has room to settle: `rounds` send intervals after `now` (the latest
/// instant of the script) are representable. A script that ran the clock to the far
/// future cannot send again (every next send time overflows), which is the crate's
/// documented limit, not a bug.
pub fn has_room(now: Instant, interval: Duration, rounds: usize) -> bool {
    let room = interval.checked_mul(rounds as u32 + 1);
    room.is_some_and(|room| now.checked_add(room).is_some())
}

/// After settling: nothing advertised that is no longer live, and every live peer
/// advertised unless `exempt` (the remote's own address, what it claims itself).
pub fn check_converged(
    wire: &WireRules,
    live: impl IntoIterator<Item = SocketAddr>,
    exempt: impl Fn(SocketAddr) -> bool,
) -> Check {
    let mut live_count = 0;
    let mut untold = Vec::new();
    let mut told_live = 0;
    for addr in live {
        live_count += 1;
        if wire.advertised.contains(&addr) {
            told_live += 1;
        } else if !exempt(addr) {
            untold.push(addr);
        }
    }
    ensure!(
        told_live == wire.advertised.len(),
        "after settling, {} advertised peers are no longer live ({live_count} live)",
        wire.advertised.len() - told_live
    );
    ensure!(
        untold.is_empty(),
        "after settling, live peers never advertised: {untold:?}"
    );
    Ok(())
}
