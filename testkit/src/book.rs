//! `PeerBook` op scripts: their definition (`Arbitrary`), an interpreter, and the invariant
//! checks against a simple model. Shared by the `book_ops` fuzz target, the corpus replay
//! test and the quickcheck properties.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use ut_pex::{canonical_addr, Admission, BookConfig, PeerBook, PeerFlags, Source};

/// A small address space, so scripts hit the same IPs, /24s and sources often.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Addr {
    pub net: u8,
    pub host: u8,
    pub port: u16,
    pub v6: bool,
}

impl Addr {
    pub fn socket(self) -> SocketAddr {
        let ip: IpAddr = if self.v6 {
            Ipv6Addr::new(
                0x2001,
                0xdb8,
                u16::from(self.net % 8),
                0,
                0,
                0,
                0,
                u16::from(self.host),
            )
            .into()
        } else {
            Ipv4Addr::new(8 + self.net % 4, 8, self.net % 8, self.host).into()
        };
        SocketAddr::new(ip, self.port % 4 + 6880)
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Src {
    Tracker,
    Dht,
    Lsd,
    Incoming,
    Resume,
    Manual,
    Pex(u8),
}

impl Src {
    pub fn source(self) -> Source {
        match self {
            Src::Tracker => Source::Tracker,
            Src::Dht => Source::Dht,
            Src::Lsd => Source::Lsd,
            Src::Incoming => Source::Incoming,
            Src::Resume => Source::Resume,
            Src::Manual => Source::Manual,
            Src::Pex(k) => Source::Pex(SocketAddr::from(([9, 9, k % 4, k], 5000))),
        }
    }
}

/// One call on the book; `Advance` moves the clock (backwards too).
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Op {
    Add(Addr, Src, u8),
    Withdraw(Addr, Src),
    SourceClosed(Src),
    PollDial,
    FailOldest,
    ConnectOldest,
    Connected(Addr),
    Disconnected(Addr),
    Local(Addr),
    Advance(u16),
    Rewind(u8),
}

/// A script: the book's knobs (kept small so limits are reached) and the ops.
#[derive(Arbitrary, Clone, Debug)]
pub struct Script {
    pub max_candidates: u8,
    pub max_half_open: u8,
    pub private: bool,
    pub secret: [u8; 16],
    pub ops: Vec<Op>,
}

/// What the model knows: the dials the host still has to answer.
struct Model {
    in_flight: Vec<SocketAddr>,
}

/// Turns fuzz bytes into a script exactly as `fuzz_target!(|script: Script| …)` does.
pub fn script_from_bytes(data: &[u8]) -> Option<Script> {
    Script::arbitrary_take_rest(arbitrary::Unstructured::new(data)).ok()
}

/// The `book_ops` check of one fuzz input, for the corpus replay: a broken invariant panics
/// (inside [`run`]), as in the fuzz target.
pub fn check_bytes(data: &[u8]) -> crate::Check {
    if let Some(script) = script_from_bytes(data) {
        run(&script);
    }
    Ok(())
}

/// Runs `script`, panicking on a broken invariant; returns the dials made, in order.
pub fn run(script: &Script) -> Vec<SocketAddr> {
    let config = BookConfig::default()
        .max_candidates(usize::from(script.max_candidates % 32) + 1)
        .max_half_open(usize::from(script.max_half_open % 8) + 1)
        .private(script.private);
    let (cap, half_open) = (config.get_max_candidates(), config.get_max_half_open());
    let mut book = PeerBook::new(config, script.secret);
    let base = Instant::now() + Duration::from_secs(1 << 20);
    let mut now = base;
    let mut model = Model {
        in_flight: Vec::new(),
    };
    let mut dials = Vec::new();
    for op in script.ops.iter().take(4096) {
        step(&mut book, &mut model, &mut now, *op, &mut dials, half_open);
        assert!(book.len() <= cap, "{} entries over {cap}", book.len());
        assert!(model.in_flight.len() <= half_open);
    }
    dials
}

fn step(
    book: &mut PeerBook,
    model: &mut Model,
    now: &mut Instant,
    op: Op,
    dials: &mut Vec<SocketAddr>,
    half_open: usize,
) {
    match op {
        Op::Add(a, s, f) => {
            let before = book.len();
            let admission = book.add(*now, a.socket(), PeerFlags::from_bits(f), s.source());
            if admission == Admission::Added {
                assert!(book.contains(a.socket()));
                assert!(book.len() <= before + 1);
            }
        }
        Op::Withdraw(a, s) => book.withdraw(*now, a.socket(), s.source()),
        Op::SourceClosed(s) => book.source_closed(*now, s.source()),
        Op::PollDial => poll(book, model, *now, dials, half_open),
        Op::FailOldest => {
            if !model.in_flight.is_empty() {
                let a = model.in_flight.remove(0);
                book.dial_failed(*now, a);
            }
        }
        Op::ConnectOldest => {
            if !model.in_flight.is_empty() {
                let a = model.in_flight.remove(0);
                book.connected(*now, a);
            }
        }
        Op::Connected(a) => {
            let ip = canonical_addr(a.socket()).ip();
            model.in_flight.retain(|d| d.ip() != ip);
            book.connected(*now, a.socket());
        }
        Op::Disconnected(a) => {
            let ip = canonical_addr(a.socket()).ip();
            model.in_flight.retain(|d| d.ip() != ip);
            book.disconnected(*now, a.socket());
        }
        Op::Local(a) => {
            // Our own IP leaves the book, with any dial to it: the host's answer is then a no-op.
            let ip = canonical_addr(a.socket()).ip();
            model.in_flight.retain(|d| d.ip() != ip);
            book.set_local_address(a.socket());
        }
        Op::Advance(s) => {
            *now = now
                .checked_add(Duration::from_secs(u64::from(s)))
                .unwrap_or(*now)
        }
        Op::Rewind(s) => {
            *now = now
                .checked_sub(Duration::from_secs(u64::from(s)))
                .unwrap_or(*now)
        }
    }
}

fn poll(
    book: &mut PeerBook,
    model: &mut Model,
    now: Instant,
    dials: &mut Vec<SocketAddr>,
    half_open: usize,
) {
    match book.poll_dial(now) {
        Some(a) => {
            let ips: HashSet<IpAddr> = model.in_flight.iter().map(|d| d.ip()).collect();
            assert!(!ips.contains(&a.ip()), "second dial in flight to {a}");
            assert!(model.in_flight.len() < half_open, "over max_half_open");
            assert!(book.contains(a), "dialled {a} the book does not hold");
            model.in_flight.push(a);
            dials.push(a);
        }
        None => {
            if let Some(t) = book.poll_timeout() {
                assert!(t > now, "poll_timeout {t:?} not after now after a None");
            }
        }
    }
}
