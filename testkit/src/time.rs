//! Virtual-time helpers.

use std::time::{Duration, Instant};

use crate::script::TimeStep;

/// The last instant `base + d` can reach: adding a send interval to it overflows.
pub fn far_future(base: Instant) -> Instant {
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if base.checked_add(Duration::from_secs(mid)).is_some() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let far = base + Duration::from_secs(lo);
    // Up to a second more in nanoseconds.
    far.checked_add(Duration::from_nanos(999_999_999))
        .unwrap_or(far)
}

/// The clock a script moves: a start instant, the last representable one, and now.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Where the script started.
    pub base: Instant,
    /// [`far_future`] of `base`.
    pub far: Instant,
    /// The current instant.
    pub now: Instant,
}

impl Clock {
    /// A clock at `base`.
    pub fn new(base: Instant) -> Self {
        Self {
            base,
            far: far_future(base),
            now: base,
        }
    }

    /// Moves the clock as `step` says; forward steps stop at `far`, backward ones at the
    /// platform's earliest instant.
    pub fn step(&mut self, step: TimeStep) {
        let clock = self.now;
        let forward = |d: Duration| clock.checked_add(d).unwrap_or(self.far);
        let back = |d: Duration| clock.checked_sub(d).unwrap_or(clock);
        self.now = match step {
            TimeStep::Stay => clock,
            TimeStep::ForwardMillis(ms) => forward(Duration::from_millis(u64::from(ms))),
            TimeStep::ForwardSecs(s) => forward(Duration::from_secs(u64::from(s))),
            TimeStep::BackMillis(ms) => back(Duration::from_millis(u64::from(ms))),
            TimeStep::BackSecs(s) => back(Duration::from_secs(u64::from(s))),
            TimeStep::Huge(s) => forward(Duration::from_secs(s)),
            TimeStep::FarFuture => self.far,
            TimeStep::Base => self.base,
        };
    }
}
