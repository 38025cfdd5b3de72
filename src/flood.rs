//! [`FloodWindow`]: when the last accepted messages of one remote arrived, to refuse a flood.

use std::time::{Duration, Instant};

use arrayvec::ArrayVec;

use crate::config::FLOOD_SLOTS;

/// Arrival times of the last accepted messages, oldest first, as nanoseconds after the first
/// one: 8 bytes an arrival instead of an `Instant`'s 16, exact, and good for 584 years.
/// Allocated once, at the first accepted message: a connection whose remote never sends
/// costs a pointer.
#[derive(Debug, Default)]
pub(crate) struct FloodWindow(Option<Box<Arrivals>>);

#[derive(Debug)]
struct Arrivals {
    /// The first accepted message's arrival.
    base: Instant,
    /// Nanoseconds after `base`, oldest first.
    after: ArrayVec<u64, FLOOD_SLOTS>,
}

impl FloodWindow {
    /// How many accepted messages arrived within `window` before `now`.
    pub(crate) fn recent(&self, now: Instant, window: Duration) -> usize {
        let Some(arrivals) = self.0.as_deref() else {
            return 0;
        };
        let (base, after) = (arrivals.base, &arrivals.after);
        match now.checked_sub(window) {
            // The window starts before the first arrival (or before time began): all count.
            None => after.len(),
            Some(start) if start < base => after.len(),
            Some(start) => {
                let start = nanos(start.duration_since(base));
                after.iter().filter(|&&t| t > start).count()
            }
        }
    }

    /// Records an accepted message, keeping the last `keep` arrivals (`keep <= FLOOD_SLOTS`).
    pub(crate) fn record(&mut self, now: Instant, keep: usize) {
        let arrivals = self.0.get_or_insert_with(|| {
            Box::new(Arrivals {
                base: now,
                after: ArrayVec::new(),
            })
        });
        if arrivals.after.is_empty() {
            arrivals.base = now; // a window cleared for reuse: this is its first arrival
        }
        let base = arrivals.base;
        // An instant before the first arrival (the host's clock went back) counts as the
        // first arrival's: nothing panics, and the window only errs towards accepting.
        let at = nanos(now.saturating_duration_since(base));
        let keep = keep.clamp(1, FLOOD_SLOTS);
        while arrivals.after.len() >= keep {
            arrivals.after.remove(0);
        }
        arrivals.after.push(at);
    }

    /// Whether the window has its allocation (made at the first accepted message).
    pub(crate) fn is_allocated(&self) -> bool {
        self.0.is_some()
    }

    /// The window with its arrivals forgotten and its allocation kept, for another remote.
    pub(crate) fn cleared(mut self) -> Self {
        if let Some(arrivals) = self.0.as_deref_mut() {
            arrivals.after.clear();
        }
        self
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<Arrivals>())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window recycled for another remote keeps its allocation, not the old arrivals; its
    /// next arrival is its first (the base moves to it, so a later instant is not cut short).
    #[test]
    fn a_cleared_window_starts_over() {
        let start = Instant::now();
        let window = Duration::from_secs(60);
        let mut flood = FloodWindow::default();
        for s in 0..3 {
            flood.record(start + Duration::from_secs(s), 16);
        }
        assert_eq!(flood.recent(start + Duration::from_secs(3), window), 3);
        let mut flood = flood.cleared();
        assert!(flood.is_allocated());
        assert_eq!(flood.recent(start + Duration::from_secs(3), window), 0);
        let later = start + Duration::from_secs(1000);
        flood.record(later, 16);
        assert_eq!(flood.recent(later, window), 1);
        assert_eq!(flood.0.as_ref().map(|a| a.base), Some(later));
    }
}
