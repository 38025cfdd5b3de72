//! The one model of `ut_pex`'s rules, shared by the crate's tests, fuzz targets and benches.
//!
//! - [`reference`](mod@reference): an independent, obvious bencode / ut_pex parser, the oracle every
//!   decoder check compares with, and [`reference::decode_frame`] for scenario tests.
//! - [`oracle`]: the same lists read through `bt_bencode`, the one alternative oracle.
//! - [`codec`]: the `message_decode` and `handshake_decode` checks.
//! - [`rules`]: `WireRules` (every rule a sent frame must obey, per connection) and
//!   `HostView` (what the host was told through events matches the state).
//! - [`script`]: the `state_ops` operation language ([`script::Op`], [`script::Script`],
//!   `Arbitrary`), and [`interp::run_script`], its interpreter over two `PexState`s.
//! - [`swarm_ops`]: the `swarm_ops` script, many connections of one `Swarm`;
//!   [`swarm_live`]: the bound its live set is held to.
//! - [`converge`]: the end of every script run: each connection settles, then its remote
//!   was told exactly the live set.
//! - [`pair`]: the [`pair::Pair`] harness, two hosts back to back under virtual time, and
//!   [`for_each_host!`], which runs the rule scenarios of `tests/` against both hosts.
//! - [`host`]: the [`host::Host`] trait, one connection of a `PexState` or of a `Swarm`
//!   ([`host::OneConnSwarm`]), so the rule scenarios run against both; [`host::ConnView`]
//!   and the per-connection checks.
//! - [`alloc`]: a counting allocator to install with `#[global_allocator]`.
//! - [`book`]: the `book_ops` script of `PeerBook` calls, its interpreter and model checks;
//!   [`book_flood`]: the hostile PEX flood of the book's heap test and bench.
//! - [`addr`]: address pools and the address rules the checks use.
//! - [`seedbox`]: the seedbox scenario (many torrents of many connections) the memory
//!   bench and byte-bound tests build.
//! - [`replay`]: replays `fuzz/corpus/<target>` and `fuzz/regressions/<target>`.
//! - [`time`]: the last representable instant.
//!
//! Every check returns [`Check`]: `Err(description)` rather than a panic, so a replay can
//! name the file that failed and the self-tests can show that a check catches a violation.

pub mod addr;
pub mod alloc;
// The script types' fields are what the `Arbitrary` fuzz input chooses; their names say it.
#[allow(missing_docs)]
pub mod book;
pub mod book_flood;
pub mod codec;
pub mod converge;
pub mod host;
pub mod interp;
pub mod oracle;
pub mod pair;
pub mod reference;
pub mod replay;
pub mod rules;
pub mod script;
pub mod seedbox;
pub mod swarm_live;
pub mod swarm_ops;
pub mod time;

/// The result of one check: `Err` describes the broken invariant.
pub type Check = Result<(), String>;

/// `ensure!(cond, "format", args…)`: returns `Err(format!(…))` from the enclosing
/// function unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}
