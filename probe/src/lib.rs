//! The library half of `pex-probe`: the peer-wire plumbing that the `pex-probe` tool, the
//! `ut_pex` examples and the interop tests share.
//!
//! - [`wire`]: the BitTorrent handshake, an incremental message reader ([`wire::WireReader`])
//!   and the routing of BEP 10 extended messages to a [`ut_pex::PexState`]
//!   ([`wire::route_extended`]).
//! - [`clock`]: a time-warped clock for demos and tests that want to see several 65-second
//!   PEX intervals in seconds, and a small seeded generator.
//!
//! The tool itself (`src/main.rs`) is documented in the package's README.

#![forbid(unsafe_code)]

pub mod clock;
pub mod wire;
