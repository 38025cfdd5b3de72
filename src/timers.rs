//! [`Timers`]: the send deadlines of a [`Swarm`](crate::Swarm)'s connections, earliest
//! first, in O(1) per deadline that comes in order.
//!
//! A connection's next deadline is its last send plus the send interval, one interval for
//! the whole torrent, and the connections a change wakes are woken together, in the order
//! they last sent. So deadlines mostly arrive in order: those go to the back of a queue
//! (O(1) to push and to pop); the rest go to a heap (O(log n)). The earliest of the two
//! fronts comes first, so the order is exactly a single heap's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use crate::slots::ConnectionId;

/// A deadline, the connection it belongs to and the timer generation it was pushed under.
pub(crate) type Timer = (Instant, ConnectionId, u32);

/// Deadlines, earliest first (ties by connection, then generation).
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Deadlines pushed no earlier than the one before: sorted by construction.
    in_order: VecDeque<Timer>,
    /// Deadlines that came earlier than the queue's last.
    out_of_order: BinaryHeap<Reverse<Timer>>,
}

impl Timers {
    #[inline]
    pub(crate) fn push(&mut self, timer: Timer) {
        if self.in_order.back().map_or(true, |last| *last <= timer) {
            // Grows by doubling, as the heap does, not by an eighth: superseded deadlines
            // stay until they surface, so a torrent whose connections are all placed again
            // (every remote sent a message) briefly holds two deadlines per connection, and
            // doubling makes that one allocation, not several.
            self.in_order.push_back(timer);
        } else {
            // Out-of-order deadlines come in runs (a torrent's remotes all sending while a
            // later deadline sits at the back of the queue): room for as many as the queue
            // holds at once, one allocation instead of one per doubling.
            if self.out_of_order.len() == self.out_of_order.capacity() {
                self.out_of_order.reserve(self.in_order.len());
            }
            self.out_of_order.push(Reverse(timer));
        }
    }

    /// Whether the earliest deadline comes from the queue (else from the heap).
    #[inline]
    fn front_is_queued(&self) -> Option<bool> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(queued), Some(Reverse(heaped))) => Some(queued <= heaped),
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (None, None) => None,
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<Timer> {
        match self.front_is_queued()? {
            true => self.in_order.front().copied(),
            false => self.out_of_order.peek().map(|Reverse(t)| *t),
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Timer> {
        match self.front_is_queued()? {
            true => self.in_order.pop_front(),
            false => self.out_of_order.pop().map(|Reverse(t)| t),
        }
    }

    /// Pops the earliest deadline if it is at or before `now` (one look at the two fronts,
    /// where a peek and a pop took two: a torrent's timers fire one after another).
    #[inline]
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let queued = self.front_is_queued()?;
        let earliest = match queued {
            true => self.in_order.front(),
            false => self.out_of_order.peek().map(|Reverse(t)| t),
        };
        if earliest?.0 > now {
            return None;
        }
        match queued {
            true => self.in_order.pop_front(),
            false => self.out_of_order.pop().map(|Reverse(t)| t),
        }
    }

    /// Room for `more` deadlines in order (a torrent's woken connections) at once.
    pub(crate) fn reserve(&mut self, more: usize) {
        self.in_order.reserve(more);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.in_order.capacity() + self.out_of_order.capacity()) * std::mem::size_of::<Timer>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Pops come in the order one heap would give, whatever the order of pushes.
    #[test]
    fn pops_in_heap_order() {
        let t0 = Instant::now();
        let ids: Vec<ConnectionId> = {
            let mut slots = crate::slots::Slots::default();
            (0..8).map(|i| slots.insert(i)).collect()
        };
        let mut timers = Timers::default();
        let mut heap = BinaryHeap::new();
        // In order, out of order, ties in both directions.
        for (k, secs) in [5u64, 5, 7, 3, 9, 9, 1, 9, 4, 12, 12, 2]
            .into_iter()
            .enumerate()
        {
            let timer = (t0 + Duration::from_secs(secs), ids[(k * 5) % 8], k as u32);
            timers.push(timer);
            heap.push(Reverse(timer));
            if k % 4 == 3 {
                assert_eq!(timers.pop(), heap.pop().map(|Reverse(t)| t));
            }
        }
        while let Some(Reverse(expected)) = heap.pop() {
            assert_eq!(timers.peek(), Some(expected));
            assert_eq!(timers.pop(), Some(expected));
        }
        assert_eq!(timers.pop(), None);
    }
}
