//! Rate limits on checked `Instant` arithmetic: any sequence of instants, including one that
//! goes backwards, is accepted without panic.

use std::time::{Duration, Instant};

use arrayvec::ArrayVec;

/// A token bucket as a theoretical arrival time (GCRA): one `Instant` per bucket, no rounding.
/// `burst` events at once, then one per `interval`; so at most `burst + w / interval` in any
/// window `w`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Bucket {
    /// When the bucket is full again; `None` means full.
    tat: Option<Instant>,
}

impl Bucket {
    /// Whether one more event fits at `now`.
    pub(crate) fn allows(&self, now: Instant, interval: Duration, burst: u32) -> bool {
        let Some(tat) = self.tat else { return true };
        let tolerance = interval.saturating_mul(burst.saturating_sub(1));
        match tat.checked_sub(tolerance) {
            Some(earliest) => now >= earliest,
            None => true,
        }
    }

    /// Counts one event (call only after [`Bucket::allows`]).
    pub(crate) fn take(&mut self, now: Instant, interval: Duration) {
        let base = self.tat.map_or(now, |tat| tat.max(now));
        // An overflowing instant saturates at `base`: the bucket just stays as used as it is.
        self.tat = Some(base.checked_add(interval).unwrap_or(base));
    }

    /// Whether the bucket is full at `now`, i.e. indistinguishable from a new one.
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        self.tat.map_or(true, |tat| tat <= now)
    }
}

/// The most events a [`Window`] can hold.
pub(crate) const WINDOW_SLOTS: usize = 8;

/// A sliding window: the instants of the last events, at most `limit` inside `span`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Window {
    times: ArrayVec<Instant, WINDOW_SLOTS>,
}

impl Window {
    /// Whether `t` still counts at `now`; an instant later than `now` (time went backwards)
    /// counts, which errs on the side of fewer dials.
    fn live(t: Instant, now: Instant, span: Duration) -> bool {
        now.checked_duration_since(t).map_or(true, |age| age < span)
    }

    /// Forgets events older than `span`.
    pub(crate) fn prune(&mut self, now: Instant, span: Duration) {
        self.times.retain(|t| Self::live(*t, now, span));
    }

    /// Whether one more event fits at `now`.
    pub(crate) fn allows(&self, now: Instant, span: Duration, limit: usize) -> bool {
        self.times
            .iter()
            .filter(|t| Self::live(**t, now, span))
            .count()
            < limit
    }

    /// Records an event, dropping the oldest if all slots are used.
    pub(crate) fn push(&mut self, now: Instant, span: Duration) {
        self.prune(now, span);
        if self.times.is_full() {
            self.times.remove(0);
        }
        self.times.push(now);
    }

    /// When one more event fits (`None`: now, as far as the window knows).
    pub(crate) fn free_at(&self, now: Instant, span: Duration, limit: usize) -> Option<Instant> {
        let mut live: ArrayVec<Instant, WINDOW_SLOTS> = self
            .times
            .iter()
            .copied()
            .filter(|t| Self::live(*t, now, span))
            .collect();
        if live.len() < limit {
            return None;
        }
        live.sort_unstable();
        // The window frees up when the oldest event that keeps it full ages out.
        let idx = live.len().saturating_sub(limit);
        live.get(idx).and_then(|t| t.checked_add(span))
    }

    /// Whether nothing counts any more at `now`.
    pub(crate) fn is_idle(&self, now: Instant, span: Duration) -> bool {
        !self.times.iter().any(|t| Self::live(*t, now, span))
    }

    /// The newest event, for evicting the stalest window when the map is full.
    pub(crate) fn newest(&self) -> Option<Instant> {
        self.times.iter().max().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_burst_then_rate() {
        let t0 = Instant::now();
        let i = Duration::from_secs(10);
        let mut b = Bucket::default();
        for _ in 0..3 {
            assert!(b.allows(t0, i, 3));
            b.take(t0, i);
        }
        assert!(!b.allows(t0, i, 3));
        assert!(b.allows(t0 + i, i, 3));
        assert!(!b.is_full(t0 + i));
        assert!(b.is_full(t0 + 3 * i));
    }

    #[test]
    fn window_slides_and_survives_backwards_time() {
        let t0 = Instant::now() + Duration::from_secs(1000);
        let s = Duration::from_secs(60);
        let mut w = Window::default();
        for k in 0..4 {
            w.push(t0 + Duration::from_secs(k), s);
        }
        assert!(!w.allows(t0 + Duration::from_secs(59), s, 4));
        assert_eq!(w.free_at(t0, s, 4), Some(t0 + s));
        assert!(w.allows(t0 + s, s, 4));
        assert!(!w.allows(t0 - s, s, 4));
    }
}
