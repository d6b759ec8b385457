//! A sorted map whose clones share what they have in common.
//!
//! The page keeps many copies of the folded world (the playhead's, the charts', and snapshots
//! for seeking), and the world's big tables only grow: every order adds rows and versions. A
//! [`SharedMap`] holds its entries in sorted chunks of at most [`CHUNK_MAX`], each behind an
//! [`Arc`]: a clone copies only the list of chunks, and a write copies only the chunk it changes,
//! and only if another copy still holds it. Copies taken one after another while a run is
//! folded thus share every chunk written before the earlier one was taken.
//!
//! Keys are kept in [`ChunkOrder`]: strings shorter first, then as text, so keys numbered one
//! after another (`OrderCreated#999`, `OrderCreated#1000`) land side by side and a run's new
//! rows fill the last chunks instead of every chunk. Text order would put `#10000` between
//! `#1000` and `#1001`, and each copy would then own every chunk. Two maps are equal when they
//! hold the same entries, however they are chunked.

use crate::protocol::{OpId, ServiceId};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// The most entries in a chunk; a fuller one splits in two halves.
pub const CHUNK_MAX: usize = 64;

/// The order in which a [`SharedMap`] keeps its keys: a total order, like [`Ord`]'s except
/// that strings compare shorter first.
pub trait ChunkOrder {
    /// Compares two keys.
    fn chunk_cmp(&self, other: &Self) -> Ordering;
}

impl ChunkOrder for str {
    fn chunk_cmp(&self, other: &Self) -> Ordering {
        self.len().cmp(&other.len()).then_with(|| self.cmp(other))
    }
}

impl ChunkOrder for String {
    fn chunk_cmp(&self, other: &Self) -> Ordering {
        self.as_str().chunk_cmp(other.as_str())
    }
}

impl ChunkOrder for (ServiceId, String) {
    fn chunk_cmp(&self, other: &Self) -> Ordering {
        (self.0.cmp(&other.0)).then_with(|| self.1.chunk_cmp(&other.1))
    }
}

impl ChunkOrder for (ServiceId, String, String) {
    fn chunk_cmp(&self, other: &Self) -> Ordering {
        (self.0.cmp(&other.0))
            .then_with(|| self.1.chunk_cmp(&other.1))
            .then_with(|| self.2.chunk_cmp(&other.2))
    }
}

impl ChunkOrder for OpId {
    fn chunk_cmp(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

impl ChunkOrder for u32 {
    fn chunk_cmp(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

/// A map from `K` to `V`, kept in [`ChunkOrder`], whose clones share unchanged chunks.
#[derive(Clone)]
pub struct SharedMap<K, V> {
    /// Non-empty chunks, each sorted by key, every key of one below every key of the next.
    chunks: Vec<Arc<Vec<(K, V)>>>,
    len: usize,
}

impl<K, V> Default for SharedMap<K, V> {
    fn default() -> Self {
        SharedMap {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<K: ChunkOrder + Clone, V: Clone> SharedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk that holds `key` if any entry does, or else where it would go: the first
    /// chunk whose last key is not below it (the last chunk for a key beyond them all).
    fn chunk_for<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: ChunkOrder + ?Sized,
    {
        let i = self
            .chunks
            .partition_point(|chunk| chunk[chunk.len() - 1].0.borrow().chunk_cmp(key).is_lt());
        i.min(self.chunks.len().saturating_sub(1))
    }

    /// Where `key` is: its chunk, and its place in that chunk (found, or where it would go).
    fn find<Q>(&self, key: &Q) -> Option<(usize, Result<usize, usize>)>
    where
        K: Borrow<Q>,
        Q: ChunkOrder + ?Sized,
    {
        if self.chunks.is_empty() {
            return None;
        }
        let i = self.chunk_for(key);
        let place = self.chunks[i].binary_search_by(|(k, _)| k.borrow().chunk_cmp(key));
        Some((i, place))
    }

    /// The value at `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ChunkOrder + ?Sized,
    {
        match self.find(key)? {
            (i, Ok(j)) => Some(&self.chunks[i][j].1),
            (_, Err(_)) => None,
        }
    }

    /// The value at `key`, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let (i, j) = match self.find(&key) {
            Some((i, Ok(j))) => (i, j),
            Some((i, Err(j))) => self.insert_at(i, j, key, make()),
            None => {
                self.chunks.push(Arc::new(vec![(key, make())]));
                self.len = 1;
                (0, 0)
            }
        };
        &mut Arc::make_mut(&mut self.chunks[i])[j].1
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Some((i, Ok(j))) => {
                let slot = &mut Arc::make_mut(&mut self.chunks[i])[j].1;
                Some(std::mem::replace(slot, value))
            }
            Some((i, Err(j))) => {
                self.insert_at(i, j, key, value);
                None
            }
            None => {
                self.chunks.push(Arc::new(vec![(key, value)]));
                self.len = 1;
                None
            }
        }
    }

    /// Inserts a new entry at place `j` of chunk `i`, splitting the chunk once it is over
    /// [`CHUNK_MAX`]; returns where the entry ended up.
    fn insert_at(&mut self, i: usize, j: usize, key: K, value: V) -> (usize, usize) {
        let chunk = Arc::make_mut(&mut self.chunks[i]);
        chunk.insert(j, (key, value));
        self.len += 1;
        if chunk.len() <= CHUNK_MAX {
            return (i, j);
        }
        let half = chunk.len() / 2;
        let upper = chunk.split_off(half);
        // The insert doubled the chunk's buffer: a chunk left behind keeps only what it holds.
        chunk.shrink_to_fit();
        self.chunks.insert(i + 1, Arc::new(upper));
        if j < half { (i, j) } else { (i + 1, j - half) }
    }
}

impl<K, V> SharedMap<K, V> {
    /// Every entry, in [`ChunkOrder`].
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + '_ {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter().map(|(k, v)| (k, v)))
    }

    /// Every key, in [`ChunkOrder`].
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Every value, in [`ChunkOrder`] of their keys.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

impl<'a, K, V> IntoIterator for &'a SharedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Box<dyn DoubleEndedIterator<Item = (&'a K, &'a V)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for SharedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Eq, V: Eq> Eq for SharedMap<K, V> {}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SharedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: ChunkOrder + Clone, V: Clone> FromIterator<(K, V)> for SharedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = SharedMap::new();
        for (k, v) in entries {
            map.insert(k, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;
    use std::collections::BTreeMap;

    #[test]
    fn it_behaves_as_a_btreemap_and_its_clones_stay_apart() {
        let seed = 42;
        println!("seed {seed}");
        let mut rng = SimRng::new(seed);
        let mut map = SharedMap::new();
        let mut expected = BTreeMap::new();
        let mut copies: Vec<(SharedMap<u32, u32>, BTreeMap<u32, u32>)> = Vec::new();
        for step in 0..20_000u32 {
            let key = rng.below(3_000) as u32;
            match rng.below(10) {
                0..=5 => assert_eq!(map.insert(key, step), expected.insert(key, step)),
                6 => {
                    *map.get_or_insert_with(key, || 0) += 1;
                    *expected.entry(key).or_insert(0) += 1;
                }
                _ => assert_eq!(map.get(&key), expected.get(&key)),
            }
            if step % 997 == 0 {
                copies.push((map.clone(), expected.clone()));
            }
            assert_eq!(map.len(), expected.len());
        }
        let entries = |m: &SharedMap<u32, u32>| m.iter().map(|(k, v)| (*k, *v)).collect();
        let got: BTreeMap<u32, u32> = entries(&map);
        assert_eq!(got, expected);
        assert!(map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b));
        let numbered: SharedMap<String, ()> = [10, 9, 100, 11]
            .map(|n| (format!("o{n}"), ()))
            .into_iter()
            .collect();
        let order: Vec<&str> = numbered.keys().map(String::as_str).collect();
        assert_eq!(order, ["o9", "o10", "o11", "o100"], "shorter first");
        // Every copy still holds what it held when it was taken.
        for (copy, then) in &copies {
            assert_eq!(&entries(copy), then);
        }
        let rebuilt: SharedMap<u32, u32> = expected.into_iter().collect();
        assert_eq!(rebuilt, map, "equal whatever the chunking");
    }

    #[test]
    fn a_clone_shares_the_chunks_it_does_not_change() {
        let mut map: SharedMap<u32, u32> = (0..10 * CHUNK_MAX as u32).map(|k| (k, k)).collect();
        let copy = map.clone();
        map.insert(3, 0);
        let shared = map
            .chunks
            .iter()
            .zip(&copy.chunks)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(
            shared,
            map.chunks.len() - 1,
            "only the written chunk is copied"
        );
        assert_eq!(copy.get(&3), Some(&3));
    }
}
