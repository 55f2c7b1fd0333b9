//! A set that remembers at most a fixed number of entries, forgetting the
//! oldest first: the engine's memory of ids and requests keyed by what the
//! network sent, which must stay bounded however much of it arrives.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// At most `cap` entries; inserting a new one past that forgets the oldest.
pub(crate) struct FifoSet<T> {
    cap: usize,
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: Hash + Eq + Clone> FifoSet<T> {
    /// An empty set that keeps at most `cap` (≥ 1) entries.
    pub fn new(cap: usize) -> Self {
        FifoSet { cap: cap.max(1), set: HashSet::new(), order: VecDeque::new() }
    }

    /// Remembers `item`; false when it was remembered already (then nothing changes).
    pub fn insert(&mut self, item: T) -> bool {
        if self.set.contains(&item) {
            return false;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(item.clone());
        self.order.push_back(item);
        true
    }

    /// Whether `item` is remembered.
    pub fn contains<Q: Hash + Eq + ?Sized>(&self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.set.contains(item)
    }

    /// How many entries are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.set.len(), self.order.len());
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_past_its_cap() {
        let mut s = FifoSet::new(3);
        assert!(s.insert(1) && !s.insert(1));
        for i in 2..=4 {
            assert!(s.insert(i));
        }
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&1) && s.contains(&2) && s.contains(&4));
        // Inserting a remembered entry again does not make it younger.
        assert!(!s.insert(2));
        s.insert(5);
        assert!(!s.contains(&2) && s.contains(&3));
    }
}
