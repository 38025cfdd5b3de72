//! Growth by an eighth: for the vectors a torrent keeps one element per connection or live
//! peer in, where doubling would leave up to half of them unused (a seedbox holds thousands
//! of such torrents, and bytes per connection are its budget).

use std::collections::VecDeque;

/// How many more elements to make room for when a collection of `len` is full: an eighth
/// (at least 4), so spare room stays under an eighth of what is used, and pushes stay
/// amortized O(1) (each element is moved at most about 8 times more than with doubling).
fn step(len: usize) -> usize {
    (len / 8).max(4)
}

/// Makes room for one more element, growing by an eighth when full.
pub(crate) trait GrowByEighth {
    /// Ensures the next push does not reallocate beyond an eighth more.
    fn reserve_one(&mut self);
}

impl<T> GrowByEighth for Vec<T> {
    #[inline]
    fn reserve_one(&mut self) {
        if self.len() == self.capacity() {
            self.reserve_exact(step(self.len()));
        }
    }
}

impl<T> GrowByEighth for VecDeque<T> {
    #[inline]
    fn reserve_one(&mut self) {
        if self.len() == self.capacity() {
            self.reserve_exact(step(self.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_pushes_leave_no_spare_room() {
        let mut v = Vec::new();
        let mut d = VecDeque::new();
        for i in 0..50u64 {
            v.reserve_one();
            v.push(i);
            d.reserve_one();
            d.push_back(i);
        }
        // 4, 8, ... 40, 45, 50: doubling would have reached 64.
        assert_eq!(v.capacity(), 50);
        assert_eq!(d.capacity(), 50);
    }
}
