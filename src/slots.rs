//! [`Slots`]: the generational arena a [`Swarm`](crate::Swarm) keeps its connections in,
//! and the [`ConnectionId`] handles into it.

use crate::grow::GrowByEighth;

/// A handle to one connection of a [`Swarm`](crate::Swarm). Stale handles (of a
/// disconnected connection) are ignored by every method, never confused with a newer
/// connection: a slot's generation moves on when its connection leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    index: u32,
    generation: u32,
}

/// A generational arena. Values are stored inline, so attaching a connection allocates
/// nothing once a slot is free (a seedbox replaces connections all day); the vector grows by
/// an eighth at a time, so unused slots stay under an eighth of the used ones.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    /// Stores `value`, reusing a free slot if there is one.
    pub(crate) fn insert(&mut self, value: T) -> ConnectionId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                // More than 4 billion slots at once would need 4 billion connections.
                let i = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.reserve_one();
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.value = Some(value);
        ConnectionId {
            index,
            generation: slot.generation,
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: ConnectionId) -> Option<&T> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation).then_some(())?;
        slot.value.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: ConnectionId) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        (slot.generation == id.generation).then_some(())?;
        slot.value.as_mut()
    }

    /// Takes the value out; the handle and every copy of it go stale.
    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        Some(value)
    }

    /// How many values are stored.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }

    /// Heap bytes of the arena itself (not of the values' own heap).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<T>>()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_handle_never_reaches_the_slot_reused_after_it() {
        let mut slots = Slots::default();
        let old = slots.insert("first");
        assert_eq!(slots.remove(old), Some("first"));
        let new = slots.insert("second");
        assert_ne!(old, new);
        assert_eq!(slots.get(old), None);
        assert!(slots.remove(old).is_none());
        assert_eq!(slots.get(new), Some(&"second"));
        assert_eq!(slots.len(), 1);
    }
}
