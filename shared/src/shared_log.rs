//! A list that grows at its end and whose clones share what they have in common.
//!
//! Some of the world's state is a history per row that grows with every version (each source
//! row's versions, the versions confirmed to clients). The page keeps copies of the world for
//! seeking (`crate::shared_map`): a copy of a [`crate::shared_map::SharedMap`] chunk holding such
//! histories would copy every history in it whole, so a long history was paid once per
//! snapshot. A [`SharedLog`] keeps its entries in full chunks of [`LOG_CHUNK`] behind an [`Arc`],
//! plus a short tail of its own: a clone copies the tail and the list of chunks, and shares the
//! chunks. Its chunking depends on its length alone, so two logs with the same entries are
//! equal, chunk for chunk.

use std::sync::Arc;

/// Entries in each full chunk.
pub const LOG_CHUNK: usize = 32;

/// A list of entries, appended to at its end (and sometimes cut back from it); see the module's
/// documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedLog<T> {
    /// Every entry but the last `tail.len()`, in chunks of [`LOG_CHUNK`].
    full: Box<[Arc<[T]>]>,
    /// The last entries, fewer than [`LOG_CHUNK`].
    tail: Vec<T>,
}

impl<T> Default for SharedLog<T> {
    fn default() -> SharedLog<T> {
        SharedLog {
            full: Box::new([]),
            tail: Vec::new(),
        }
    }
}

impl<T: Clone> SharedLog<T> {
    /// An empty log.
    pub fn new() -> SharedLog<T> {
        SharedLog::default()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.full.len() * LOG_CHUNK + self.tail.len()
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&T> {
        match self.full.get(i / LOG_CHUNK) {
            Some(chunk) => chunk.get(i % LOG_CHUNK),
            None => self.tail.get(i - self.full.len() * LOG_CHUNK),
        }
    }

    /// The last entry.
    pub fn last(&self) -> Option<&T> {
        self.tail
            .last()
            .or_else(|| self.full.last().and_then(|chunk| chunk.last()))
    }

    /// Adds `entry` at the end. The tail grows 1, 2, 4, … entries at a time, not from 4 as a
    /// vector does: most of a run's rows have one or two versions.
    pub fn push(&mut self, entry: T) {
        if self.tail.len() == self.tail.capacity() {
            let room = self.tail.len().max(1).min(LOG_CHUNK - self.tail.len());
            self.tail.reserve_exact(room);
        }
        self.tail.push(entry);
        if self.tail.len() == LOG_CHUNK {
            let chunk: Arc<[T]> = std::mem::take(&mut self.tail).into();
            let mut full = std::mem::take(&mut self.full).into_vec();
            full.push(chunk);
            self.full = full.into_boxed_slice();
        }
    }

    /// Removes the last entry and returns it.
    pub fn pop(&mut self) -> Option<T> {
        if self.tail.is_empty() {
            let mut full = std::mem::take(&mut self.full).into_vec();
            let chunk = full.pop()?;
            self.full = full.into_boxed_slice();
            self.tail = chunk.to_vec();
        }
        self.tail.pop()
    }

    /// How many entries come before the first for which `is_before` is false, assuming it
    /// holds for a prefix of the entries and not for the rest (as [`slice::partition_point`]).
    pub fn partition_point(&self, mut is_before: impl FnMut(&T) -> bool) -> usize {
        let whole = self
            .full
            .partition_point(|chunk| chunk.last().is_some_and(&mut is_before));
        match self.full.get(whole) {
            Some(chunk) => whole * LOG_CHUNK + chunk.partition_point(is_before),
            None => whole * LOG_CHUNK + self.tail.partition_point(is_before),
        }
    }

    /// Every entry, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.full
            .iter()
            .flat_map(|chunk| chunk.iter())
            .chain(self.tail.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;

    #[test]
    fn a_log_reads_as_the_vector_it_mirrors_and_its_clones_share_full_chunks() {
        let seed = 0x05ee_d106;
        println!("seed {seed:#x}");
        let mut rng = SimRng::new(seed);
        let mut log = SharedLog::new();
        let mut mirror: Vec<u64> = Vec::new();
        let mut copies: Vec<(SharedLog<u64>, Vec<u64>)> = Vec::new();
        for step in 0..5_000u64 {
            // Mostly growing, sometimes cut back by a few, as a source row's history is.
            if rng.below(40) == 0 {
                for _ in 0..rng.below(70) {
                    assert_eq!(log.pop(), mirror.pop());
                }
            } else {
                let next = mirror.last().map_or(0, |last| last + 1 + rng.below(3));
                log.push(next);
                mirror.push(next);
            }
            if step % 97 == 0 {
                copies.push((log.clone(), mirror.clone()));
            }
            assert_eq!(log.len(), mirror.len());
            assert_eq!(log.last(), mirror.last());
            let probe = rng.below(mirror.last().map_or(1, |l| l + 2));
            assert_eq!(
                log.partition_point(|v| *v <= probe),
                mirror.partition_point(|v| *v <= probe),
                "step {step}"
            );
            let i = rng.below(mirror.len() as u64 + 2) as usize;
            assert_eq!(log.get(i), mirror.get(i));
        }
        assert!(!log.is_empty());
        for (copy, mirrored) in &copies {
            assert!(
                copy.iter().eq(mirrored.iter()),
                "a clone keeps what it held"
            );
        }
        let mut rebuilt = SharedLog::new();
        for v in &mirror {
            rebuilt.push(*v);
        }
        assert_eq!(rebuilt, log, "equal entries, equal logs");
        let clone = log.clone();
        assert!(
            clone
                .full
                .iter()
                .zip(log.full.iter())
                .all(|(a, b)| Arc::ptr_eq(a, b)),
            "a clone shares the full chunks"
        );
    }
}
