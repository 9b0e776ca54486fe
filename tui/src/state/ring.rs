//! A fixed-capacity buffer that keeps the newest values: the backing store of every
//! history chart and of the decision log.

use std::collections::VecDeque;

/// Holds at most `capacity` values; pushing past that drops the oldest.
#[derive(Clone, Debug)]
pub(crate) struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    /// An empty ring holding at most `capacity` values (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            items: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
        }
    }

    /// Adds `value` as the newest, dropping the oldest when full.
    pub(crate) fn push(&mut self, value: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(value);
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    /// How many values it holds.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

impl<T: Copy> Ring<T> {
    /// The newest `n` values (fewer if it holds fewer), oldest first.
    pub(crate) fn last(&self, n: usize) -> Vec<T> {
        let skip = self.items.len().saturating_sub(n);
        self.items.iter().skip(skip).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest() {
        let mut ring = Ring::new(3);
        for v in 1..=5 {
            ring.push(v);
        }
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(ring.last(2), [4, 5]);
        assert_eq!(ring.last(10), [3, 4, 5]);
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn zero_capacity_still_holds_one() {
        let mut ring = Ring::new(0);
        ring.push('a');
        ring.push('b');
        assert_eq!(ring.last(5), ['b']);
    }
}
