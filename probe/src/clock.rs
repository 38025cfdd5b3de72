//! Time and randomness for demos and tests: a time-warped clock and a tiny seeded generator.

use std::time::{Duration, Instant};

/// A clock that runs `warp` times faster than the wall clock, for demos and tests that want
/// to see several 65-second PEX intervals in a few seconds: protocol time is
/// `start + wall elapsed × warp`. Every `PexState` call gets protocol time; the state's
/// intervals stay the real protocol's.
#[derive(Clone, Copy, Debug)]
pub struct WarpClock {
    start: Instant,
    warp: f64,
}

impl WarpClock {
    /// A clock starting now; `warp` must be positive.
    pub fn new(warp: f64) -> Self {
        assert!(warp > 0.0 && warp.is_finite(), "warp must be positive");
        Self {
            start: Instant::now(),
            warp,
        }
    }

    /// Protocol time now.
    pub fn now(&self) -> Instant {
        self.start + self.start.elapsed().mul_f64(self.warp)
    }

    /// Protocol time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed().mul_f64(self.warp)
    }

    /// The wall-clock instant at which protocol time reaches `at`.
    pub fn wall_instant(&self, at: Instant) -> Instant {
        self.start + at.saturating_duration_since(self.start).div_f64(self.warp)
    }
}

/// A tiny xorshift64 generator: enough to shuffle dial orders reproducibly from a seed.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        // Mix the seed (splitmix64's constants) so that 0 and small seeds work too.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Shuffles a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}
