//! Compact fields of an [`Entry`](super::entry::Entry): a book holds thousands of entries per
//! torrent, and a swarm simulation millions, so each field is as small as it can be without
//! losing anything: a retry time in 8 bytes instead of `Option<Instant>`'s 16, and the
//! vouching source ids in 8 instead of `ArrayVec`'s 12. Together they take an entry from 64
//! bytes to 48.

use std::time::{Duration, Instant};

/// An instant as signed nanoseconds from the book's epoch (the first instant it saw), or
/// [`Stamp::NONE`]. Exact: nanoseconds are the finest an `Instant` resolves. Orders as the
/// instants do, with `NONE` before every instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(i64);

impl Stamp {
    /// No instant (for a retry time: dialable at once).
    pub(crate) const NONE: Stamp = Stamp(i64::MIN);

    /// `t` relative to `epoch`; `None` beyond ±292 years of it.
    pub(crate) fn of(epoch: Instant, t: Instant) -> Option<Stamp> {
        let ns = match t.checked_duration_since(epoch) {
            Some(after) => i64::try_from(after.as_nanos()).ok()?,
            None => -i64::try_from(epoch.duration_since(t).as_nanos()).ok()?,
        };
        Some(Stamp(ns))
    }

    /// `t` relative to `epoch`, clamped to the representable range (for comparing a `now`
    /// with stored stamps, which are all within it).
    pub(crate) fn clamped(epoch: Instant, t: Instant) -> Stamp {
        Stamp::of(epoch, t).unwrap_or(if t >= epoch {
            Stamp(i64::MAX)
        } else {
            Stamp(i64::MIN + 1)
        })
    }

    /// The instant, `None` for [`Stamp::NONE`].
    pub(crate) fn instant(self, epoch: Instant) -> Option<Instant> {
        if self == Stamp::NONE {
            return None;
        }
        let offset = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            epoch.checked_add(offset)
        } else {
            epoch.checked_sub(offset)
        }
    }
}

/// Most vouching sources remembered per entry; more still answer `Known`, and the vouch count
/// used for ranking saturates here.
pub(crate) const MAX_VOUCHERS: usize = 4;

/// No id: `Sources` holds at most `u16::MAX` records, so its ids stay below this.
const EMPTY: u16 = u16::MAX;

/// Up to [`MAX_VOUCHERS`] source ids, packed at the front, [`EMPTY`] after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Vouchers([u16; MAX_VOUCHERS]);

impl Default for Vouchers {
    fn default() -> Self {
        Vouchers([EMPTY; MAX_VOUCHERS])
    }
}

impl Vouchers {
    /// The ids, in the order they were added.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().copied().take_while(|&id| id != EMPTY)
    }

    pub(crate) fn len(&self) -> usize {
        self.iter().count()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0[0] == EMPTY
    }

    pub(crate) fn contains(&self, id: u16) -> bool {
        id != EMPTY && self.0.contains(&id)
    }

    /// Adds `id`; false if all slots are taken (or `id` is not an id).
    pub(crate) fn push(&mut self, id: u16) -> bool {
        if id == EMPTY {
            return false;
        }
        match self.0.iter_mut().find(|slot| **slot == EMPTY) {
            Some(slot) => {
                *slot = id;
                true
            }
            None => false,
        }
    }

    /// Keeps the ids `keep` accepts, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u16) -> bool) {
        let mut kept = Vouchers::default();
        for id in self.iter().filter(|&id| keep(id)) {
            kept.push(id);
        }
        *self = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_order_like_instants() {
        let epoch = Instant::now() + Duration::from_secs(1_000);
        for t in [
            epoch,
            epoch + Duration::from_nanos(1),
            epoch + Duration::from_secs(3_600),
            epoch - Duration::from_millis(5),
        ] {
            let s = Stamp::of(epoch, t).expect("within range");
            assert_eq!(s.instant(epoch), Some(t));
            assert!(Stamp::NONE < s);
        }
        let (a, b) = (
            epoch - Duration::from_secs(1),
            epoch + Duration::from_secs(1),
        );
        assert!(Stamp::clamped(epoch, a) < Stamp::clamped(epoch, b));
        assert_eq!(Stamp::NONE.instant(epoch), None);
    }

    #[test]
    fn vouchers_push_retain_and_fill_up() {
        let mut v = Vouchers::default();
        assert!(v.is_empty() && v.iter().next().is_none() && !v.contains(EMPTY));
        for id in [3, 0, 9, 4] {
            assert!(v.push(id));
        }
        assert!(!v.push(5), "four at most");
        assert!(!Vouchers::default().push(EMPTY));
        assert_eq!(v.iter().collect::<Vec<_>>(), [3, 0, 9, 4]);
        v.retain(|id| id != 0);
        assert_eq!(v.iter().collect::<Vec<_>>(), [3, 9, 4]);
        assert!(v.contains(9) && !v.contains(0) && v.len() == 3);
        v.retain(|_| false);
        assert!(v.is_empty());
    }
}
