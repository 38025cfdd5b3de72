//! A growable bit set over node uids: who a sampled node knows, and who is live.

/// A set of `u32`s as bits, grown on demand.
#[derive(Clone, Debug, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    /// Adds `i`.
    pub fn insert(&mut self, i: u32) {
        let (w, b) = ((i / 64) as usize, i % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        if let Some(word) = self.0.get_mut(w) {
            *word |= 1 << b;
        }
    }

    /// Removes `i`.
    pub fn remove(&mut self, i: u32) {
        if let Some(word) = self.0.get_mut((i / 64) as usize) {
            *word &= !(1 << (i % 64));
        }
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: u32) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// How many members both sets have.
    pub fn count_common(&self, other: &Bits) -> u64 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_and_intersect() {
        let (mut a, mut b) = (Bits::default(), Bits::default());
        for i in [0, 63, 64, 1_000] {
            a.insert(i);
        }
        b.insert(64);
        b.insert(1_000);
        b.insert(5_000);
        assert!(a.contains(63) && !a.contains(62) && !a.contains(9_999));
        assert_eq!(a.count_common(&b), 2);
        a.remove(64);
        assert_eq!(a.count_common(&b), 1);
    }
}
