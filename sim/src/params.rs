//! What a run simulates: the command line's values, as a plain struct tests can build.

/// How nodes find each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Each node starts with a tracker answer and dials what it learns.
    Dial,
    /// A random regular overlay, fixed at the start; nobody dials.
    Static,
}

/// Whom honest nodes dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// The crate's `PeerBook`.
    Book,
    /// In the order learned, one entry per address.
    Naive,
}

/// One run's parameters (see the `pex-sim` command line for each one's meaning).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Params {
    /// Honest nodes alive at any time.
    pub nodes: u32,
    /// Protocol minutes simulated.
    pub minutes: u32,
    /// The seed of every random choice.
    pub seed: u64,
    /// Connections each node aims for.
    pub degree: u32,
    /// Dialled or static overlay.
    pub topology: Topology,
    /// Nodes in a joiner's tracker answer.
    pub bootstrap: u32,
    /// Mean session length in minutes; 0 means no churn.
    pub session_minutes: f64,
    /// Share of honest nodes that accept no incoming connection.
    pub unreachable: f64,
    /// Hostile nodes, on top of the honest ones.
    pub attackers: u32,
    /// Honest nodes' dial policy.
    pub policy: Policy,
    /// The `PeerBook`'s `max_candidates`.
    pub book_capacity: usize,
    /// Nodes whose known set is tracked for `known_fraction` (all of them at most).
    pub sample: u32,
    /// The `--crawler` measurement node; `None`: no crawler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crawler: Option<CrawlerParams>,
}

/// The `--crawler` measurement node's parameters ([`crate::crawler`]).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct CrawlerParams {
    /// The protocol minute it joins at.
    pub join_minute: u32,
    /// Nodes in its one tracker answer (a crawler asks for as many as a tracker gives).
    pub bootstrap: u32,
}

impl CrawlerParams {
    /// Joining at `join_minute` with a tracker's usual answer of 50.
    pub fn at(join_minute: u32) -> Self {
        CrawlerParams {
            join_minute,
            bootstrap: 50,
        }
    }
}

impl Params {
    /// The defaults of the command line.
    pub fn new(nodes: u32) -> Self {
        Params {
            nodes,
            minutes: 60,
            seed: 1,
            degree: 50,
            topology: Topology::Dial,
            bootstrap: 5,
            session_minutes: 0.0,
            unreachable: 0.0,
            attackers: 0,
            policy: Policy::Book,
            book_capacity: 4_000,
            sample: if nodes <= DEFAULT_SAMPLE_ALL_UP_TO {
                nodes
            } else {
                DEFAULT_SAMPLE
            },
            crawler: None,
        }
    }

    /// Connections a node accepts in all: a quarter above `degree`, so that joiners find
    /// room in a swarm where everyone reached its target.
    pub fn accept_cap(&self) -> usize {
        self.degree as usize + (self.degree as usize).div_ceil(4)
    }
}

/// Up to this many nodes every node's known set is tracked; above it, a fixed sample of
/// 1,000 (1,000 bit sets of the swarm's size stay small at any N, and the mean of 1,000
/// shares has a standard error well under 0.5 %).
pub const DEFAULT_SAMPLE_ALL_UP_TO: u32 = 10_000;

/// The sample above [`DEFAULT_SAMPLE_ALL_UP_TO`].
pub const DEFAULT_SAMPLE: u32 = 1_000;
