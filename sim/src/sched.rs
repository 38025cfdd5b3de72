//! The event scheduler: a virtual clock in nanoseconds and a queue that pops events in the
//! order of their key `(time, seq)`. The caller chooses `seq` (the world derives it from who
//! pushed the event and how many that pusher pushed before), so the order never depends on
//! which thread pushed first, only on the run's inputs.
//!
//! A calendar queue rather than one binary heap: almost every event lands 5 ms to 65 s ahead
//! (a link's latency, a dial's round trip, a timer), so a ring of 1-ms buckets takes a push in
//! O(1) and sorts each bucket once, when the clock reaches it; a heap of millions of events
//! paid a cache miss per level on every pop. Events beyond the ring's horizon (churn's
//! sessions) wait in a small heap. The pop order is exactly a heap's: by `(at, seq)`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// log2 of a bucket's width in ns (about 1 ms).
const BUCKET_SHIFT: u32 = 20;
/// Buckets in the ring (about 137 s of protocol time ahead).
const RING: usize = 1 << 17;

/// Largest bucket buffer worth keeping, in events.
const MAX_RECYCLED_CAPACITY: usize = 1 << 10;
/// Most buffers kept for reuse.
const MAX_SPARE: usize = 1 << 12;

/// Pending events of type `E`.
#[derive(Debug)]
pub struct Queue<E> {
    /// Bucket `b` of the horizon lives in slot `b % RING`; each slot unsorted.
    ring: Vec<Vec<Item<E>>>,
    /// Events of the bucket being popped, sorted so that the next one is last.
    current: Vec<Item<E>>,
    /// The bucket `current` holds.
    cursor: u64,
    /// Events in `ring` (not counting `current`).
    in_ring: usize,
    /// Events at or beyond `cursor + RING` when pushed.
    far: BinaryHeap<Reverse<Item<E>>>,
    /// Emptied buckets' buffers, handed to the next slots that fill: buckets come and go by
    /// the hundred thousand, and reusing their buffers keeps them from fragmenting the heap
    /// the nodes' books grow in.
    spare: Vec<Vec<Item<E>>>,
}

#[derive(Debug)]
struct Item<E> {
    at: u64,
    seq: u64,
    event: E,
}

impl<E> Item<E> {
    fn key(&self) -> (u64, u64) {
        (self.at, self.seq)
    }

    fn bucket(&self) -> u64 {
        self.at >> BUCKET_SHIFT
    }
}

impl<E> PartialEq for Item<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<E> Eq for Item<E> {}

impl<E> PartialOrd for Item<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Item<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            ring: std::iter::repeat_with(Vec::new).take(RING).collect(),
            current: Vec::new(),
            cursor: 0,
            in_ring: 0,
            far: BinaryHeap::new(),
            spare: Vec::new(),
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `event` at virtual time `at` (ns), after every pending event of the same
    /// time with a smaller `seq`. Keys must be unique.
    pub fn push(&mut self, at: u64, seq: u64, event: E) {
        let item = Item { at, seq, event };
        let bucket = item.bucket();
        if bucket <= self.cursor {
            // The bucket being popped (or the past, which pops next, as from a heap), kept in
            // descending key order.
            let key = item.key();
            let at = self.current.partition_point(|i| i.key() > key);
            self.current.insert(at, item);
        } else if bucket - self.cursor < RING as u64 {
            let bucket = &mut self.ring[slot(bucket)];
            if bucket.capacity() == 0 {
                if let Some(buffer) = self.spare.pop() {
                    *bucket = buffer;
                }
            }
            bucket.push(item);
            self.in_ring += 1;
        } else {
            self.far.push(Reverse(item));
        }
    }

    /// The earliest event and its time; among equal times, the smallest `seq`.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        if self.current.is_empty() && !self.advance() {
            return None;
        }
        self.current.pop().map(|i| (i.at, i.event))
    }

    /// The key `(at, seq)` of the event [`Queue::pop`] would return, and the event.
    pub fn peek(&mut self) -> Option<((u64, u64), &E)> {
        if self.current.is_empty() && !self.advance() {
            return None;
        }
        self.current.last().map(|i| (i.key(), &i.event))
    }

    /// Moves the clock's cursor to the next bucket holding anything and sorts it into
    /// `current`; false if nothing is pending.
    fn advance(&mut self) -> bool {
        loop {
            if self.in_ring == 0 {
                // Nothing within the horizon: jump to the far heap's first bucket.
                let Some(Reverse(first)) = self.far.peek() else {
                    return false;
                };
                self.cursor = first.bucket();
            } else {
                self.cursor += 1;
            }
            let mut bucket = std::mem::take(&mut self.ring[slot(self.cursor)]);
            self.in_ring -= bucket.len();
            while self
                .far
                .peek()
                .is_some_and(|Reverse(i)| i.bucket() <= self.cursor)
            {
                if let Some(Reverse(item)) = self.far.pop() {
                    bucket.push(item);
                }
            }
            if !bucket.is_empty() {
                // Keys are unique (seq), so an unstable sort is deterministic.
                bucket.sort_unstable_by_key(|i| Reverse(i.key()));
                let done = std::mem::replace(&mut self.current, bucket);
                self.recycle(done);
                return true;
            }
            self.recycle(bucket);
        }
    }

    /// Keeps an emptied bucket's buffer for reuse, unless it is outsized (the burst of the
    /// first instant) or enough are kept already: buffers only grow, so an unbounded pool
    /// would end up holding the busiest bucket's size in every slot.
    fn recycle(&mut self, buffer: Vec<Item<E>>) {
        let cap = buffer.capacity();
        if cap > 0 && cap <= MAX_RECYCLED_CAPACITY && self.spare.len() < MAX_SPARE {
            self.spare.push(buffer);
        }
    }

    /// Events pending in the buckets up to `at`'s (an upper bound on those before `at`).
    pub fn len_before(&self, at: u64) -> usize {
        let mut n = self.current.len();
        if self.in_ring == 0 {
            return n;
        }
        let last = (at >> BUCKET_SHIFT).min(self.cursor + RING as u64 - 1);
        for bucket in self.cursor + 1..=last {
            n += self.ring[slot(bucket)].len();
        }
        n
    }

    /// Events pending.
    pub fn len(&self) -> usize {
        self.current.len() + self.in_ring + self.far.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn slot(bucket: u64) -> usize {
    (bucket % RING as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_by_push_order() {
        let mut q = Queue::default();
        for (seq, (at, name)) in [(5, "c"), (1, "a"), (5, "d"), (3, "b"), (5, "e")]
            .into_iter()
            .enumerate()
        {
            q.push(at, seq as u64, name);
        }
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(1, "a"), (3, "b"), (5, "c"), (5, "d"), (5, "e")]);
    }

    /// The calendar pops exactly what a binary heap of `(at, seq)` pops, with pushes between
    /// pops, in the current bucket, across buckets and beyond the ring's horizon.
    #[test]
    fn same_order_as_a_heap() {
        let mut rng = crate::rng::Rng::new(3, 0);
        let mut q = Queue::default();
        let mut heap = BinaryHeap::new();
        let (mut now, mut seq) = (0u64, 0u64);
        for round in 0..20_000u64 {
            for _ in 0..rng.below(3) {
                let ahead = match rng.below(4) {
                    0 => rng.below(1 << BUCKET_SHIFT),
                    1 => rng.below(100_000_000),
                    2 => 0,
                    _ => rng.below(400_000_000_000),
                };
                seq += 1;
                q.push(now + ahead, seq, round);
                heap.push(Reverse((now + ahead, seq, round)));
            }
            if rng.below(2) == 0 {
                let peeked = q.peek().map(|((at, _), &r)| (at, r));
                let want = heap.pop().map(|Reverse((at, _, r))| (at, r));
                let got = q.pop();
                assert_eq!(got, want);
                assert_eq!(peeked, want);
                now = got.map_or(now, |(at, _)| at);
            }
            assert_eq!(q.len(), heap.len());
        }
        while let Some(Reverse((at, _, r))) = heap.pop() {
            assert_eq!(q.pop(), Some((at, r)));
        }
        assert!(q.is_empty() && q.pop().is_none());
    }
}
