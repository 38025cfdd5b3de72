//! `pex-sim`: a deterministic swarm simulator for `ut_pex`. Every node runs the crate's
//! [`Swarm`](ut_pex::Swarm) and, with `--policy book`, its [`PeerBook`](ut_pex::PeerBook);
//! the network is a virtual clock and an event queue. See the README beside this crate for
//! what it models and what it does not.

pub mod addr;
pub mod bits;
mod counts;
pub mod crawler;
pub mod dialer;
mod links;
pub mod model;
pub mod node;
pub mod params;
pub mod payloads;
pub mod report;
pub mod rng;
mod run;
pub mod sched;
mod settle;
pub mod shard;
pub mod trace;
pub mod world;

pub use params::{Params, Policy, Topology};
pub use report::Summary;
pub use world::World;
