//! The event scheduler: a virtual clock in nanoseconds and a queue that pops events in time
//! order, and events of the same time in the order they were pushed, so a run never depends
//! on anything but its inputs.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Pending events of type `E`.
#[derive(Debug)]
pub struct Queue<E> {
    heap: BinaryHeap<Item<E>>,
    pushed: u64,
}

#[derive(Debug)]
struct Item<E> {
    at: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Item<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Item<E> {}

impl<E> PartialOrd for Item<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Item<E> {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest event must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            heap: BinaryHeap::new(),
            pushed: 0,
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `event` at virtual time `at` (ns).
    pub fn push(&mut self, at: u64, event: E) {
        self.pushed += 1;
        self.heap.push(Item {
            at,
            seq: self.pushed,
            event,
        });
    }

    /// The earliest event and its time; among equal times, the first pushed.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|i| (i.at, i.event))
    }

    /// Events pending.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_by_push_order() {
        let mut q = Queue::default();
        for (at, name) in [(5, "c"), (1, "a"), (5, "d"), (3, "b"), (5, "e")] {
            q.push(at, name);
        }
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(1, "a"), (3, "b"), (5, "c"), (5, "d"), (5, "e")]);
    }
}
