//! A map from an id (a message, an operation, a timer, a cache key) to a value, ordered by id
//! like a `BTreeMap`, whose tree holds only a slot number.
//!
//! Why: every `BTreeMap<K, V>` with a value type of its own carries its own insert, remove,
//! rebalancing and drop code, a few kilobytes each in the page. The ids are all one `u64`, so
//! `BTreeMap<MsgId, u32>`, `BTreeMap<TimerId, u32>` and `BTreeMap<u64, u32>` compile to the same
//! code, which the page's optimizer keeps once; the values live in a slab `Vec` beside it. The
//! order of iteration is the order of the ids, as with the `BTreeMap` it replaces, and every
//! operation costs what the tree's costs plus one index into the slab.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;

/// An ordered map from `K` to `V`; see the module's documentation.
#[derive(Clone)]
pub struct IdMap<K, V> {
    index: BTreeMap<K, u32>,
    slots: Vec<Option<V>>,
    free: Vec<u32>,
}

impl<K, V> Default for IdMap<K, V> {
    fn default() -> Self {
        IdMap {
            index: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<K: Ord + Copy, V> IdMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries the map holds.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Whether the map holds `key`.
    pub fn contains_key(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        let slot = *self.index.get(key)?;
        self.slots[slot as usize].as_ref()
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let slot = *self.index.get(key)?;
        self.slots[slot as usize].as_mut()
    }

    /// Sets `key` to `value`, returning the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(&slot) = self.index.get(&key) {
            return self.slots[slot as usize].replace(value);
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(value);
                slot
            }
            None => {
                self.slots.push(Some(value));
                u32::try_from(self.slots.len() - 1).expect("an IdMap holds fewer than 2^32 entries")
            }
        };
        self.index.insert(key, slot);
        None
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.index.remove(key)?;
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
    }

    /// The entries in the order of their keys.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.index
            .iter()
            .filter_map(|(key, &slot)| Some((key, self.slots[slot as usize].as_ref()?)))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.index.keys()
    }

    /// The values in the order of their keys.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, value)| value)
    }
}

impl<K: Ord + Copy, V> Index<&K> for IdMap<K, V> {
    type Output = V;

    fn index(&self, key: &K) -> &V {
        self.get(key).expect("IdMap: no entry for the key")
    }
}

impl<K: Ord + Copy, V: PartialEq> PartialEq for IdMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Copy + fmt::Debug, V: fmt::Debug> fmt::Debug for IdMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord + Copy, V> FromIterator<(K, V)> for IdMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut map = IdMap::new();
        for (key, value) in pairs {
            map.insert(key, value);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::IdMap;
    use std::collections::BTreeMap;

    /// Replays `ops` (key, Some(value) to insert, None to remove) on an IdMap and a BTreeMap
    /// and checks they agree after each step, in content and in order.
    fn check(ops: &[(u64, Option<&str>)]) {
        let mut ids: IdMap<u64, String> = IdMap::new();
        let mut tree: BTreeMap<u64, String> = BTreeMap::new();
        for &(key, value) in ops {
            match value {
                Some(value) => {
                    assert_eq!(
                        ids.insert(key, value.to_string()),
                        tree.insert(key, value.to_string())
                    );
                }
                None => assert_eq!(ids.remove(&key), tree.remove(&key)),
            }
            assert_eq!(ids.len(), tree.len());
            assert_eq!(ids.is_empty(), tree.is_empty());
            assert!(ids.iter().eq(tree.iter()));
            assert!(ids.keys().eq(tree.keys()));
            assert!(ids.values().eq(tree.values()));
            for key in 0..8 {
                assert_eq!(ids.get(&key), tree.get(&key));
                assert_eq!(ids.contains_key(&key), tree.contains_key(&key));
            }
        }
        assert_eq!(format!("{ids:?}"), format!("{tree:?}"));
    }

    #[test]
    fn agrees_with_a_btree_map() {
        check(&[]);
        check(&[(3, Some("c")), (1, Some("a")), (2, Some("b"))]);
        check(&[(3, Some("c")), (3, Some("C")), (3, None), (3, None)]);
        check(&[
            (5, Some("e")),
            (1, Some("a")),
            (5, None),
            (4, Some("d")),
            (7, Some("g")),
            (1, None),
            (0, Some("z")),
            (4, Some("D")),
        ]);
    }

    #[test]
    fn equal_maps_compare_equal_whatever_their_slots() {
        let mut left: IdMap<u64, u32> = IdMap::new();
        left.insert(1, 10);
        left.insert(2, 20);
        left.remove(&1);
        left.insert(3, 30);
        let right: IdMap<u64, u32> = [(3, 30), (2, 20)].into_iter().collect();
        assert_eq!(left, right);
        let mut changed = right.clone();
        *changed.get_mut(&3).unwrap() = 31;
        assert_ne!(left, changed);
        assert_eq!(left[&2], 20);
    }
}
