//! A map ordered by key like a `BTreeMap`, whose tree holds only a slot number: the values live
//! in a slab `Vec` beside it.
//!
//! Why: every `BTreeMap<K, V>` with a value type of its own carries its own insert, remove,
//! rebalancing and drop code, a few kilobytes each in the page. With the values moved out, all
//! the maps with one key type share one `BTreeMap<K, u32>`. A newtype key is a type of its own,
//! and so a tree of its own, although the optimizer merges some of its functions with the `u64`
//! tree's: the maps and sets by message, operation and timer are keyed by the id's `u64`
//! (`protocol::MsgMap`, `OpMap`, `service::TimerMap`, through `MsgId::key` and the like), 882 B
//! gzip, 1,286 brotli and 4,983 B of WebAssembly less than keyed by the ids. The order of
//! iteration is the order of the keys, as with the `BTreeMap` it replaces, and every operation
//! costs what the tree's costs plus one index into the slab.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::collections::{BTreeMap, btree_map};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, RangeBounds};

/// An ordered map from `K` to `V`; see the module's documentation.
#[derive(Clone)]
pub struct SlotMap<K, V> {
    index: BTreeMap<K, u32>,
    slots: Vec<Option<V>>,
    free: Vec<u32>,
}

impl<K, V> Default for SlotMap<K, V> {
    fn default() -> Self {
        SlotMap {
            index: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<K: Ord, V> SlotMap<K, V> {
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
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.index.contains_key(key)
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let slot = *self.index.get(key)?;
        self.slots[slot as usize].as_ref()
    }

    /// The value of `key`, to change.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let slot = *self.index.get(key)?;
        self.slots[slot as usize].as_mut()
    }

    /// Sets `key` to `value`, returning the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(&slot) = self.index.get(&key) {
            return self.slots[slot as usize].replace(value);
        }
        self.slot_of(key, || value);
        None
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let slot = self.index.remove(key)?;
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    /// The entry of `key`, to read, insert or change its value.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        Entry { map: self, key }
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let SlotMap { index, slots, free } = self;
        index.retain(|key, slot| {
            let Some(value) = slots[*slot as usize].as_mut() else {
                return false;
            };
            let kept = keep(key, value);
            if !kept {
                slots[*slot as usize] = None;
                free.push(*slot);
            }
            kept
        });
    }

    fn slot_of(&mut self, key: K, value: impl FnOnce() -> V) -> usize {
        if let Some(&slot) = self.index.get(&key) {
            return slot as usize;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(value());
                slot
            }
            None => {
                self.slots.push(Some(value()));
                u32::try_from(self.slots.len() - 1)
                    .expect("a SlotMap holds fewer than 2^32 entries")
            }
        };
        self.index.insert(key, slot);
        slot as usize
    }

    /// Moves the entries from `key` on into a new map, leaving those before it.
    pub fn split_off(&mut self, key: &K) -> Self
    where
        K: Clone,
    {
        let mut upper = SlotMap::new();
        for (key, slot) in self.index.split_off(key) {
            self.free.push(slot);
            if let Some(value) = self.slots[slot as usize].take() {
                upper.insert(key, value);
            }
        }
        upper
    }

    /// The entries in the order of their keys.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            index: self.index.range(..),
            slots: &self.slots,
        }
    }

    /// The entries whose keys are in `range`, in order.
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> Iter<'_, K, V> {
        Iter {
            index: self.index.range(range),
            slots: &self.slots,
        }
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

/// Serialized as a map in the order of its keys, as a `BTreeMap` is: the same bytes.
impl<K: Ord + Serialize, V: Serialize> Serialize for SlotMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Read from a map as a `BTreeMap` is: a key given twice keeps its last value.
impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for SlotMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for MapVisitor<K, V> {
            type Value = SlotMap<K, V>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = SlotMap::new();
                while let Some((key, value)) = access.next_entry()? {
                    map.insert(key, value);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// The entries of a [`SlotMap`] in the order of their keys, from [`SlotMap::iter`].
pub struct Iter<'a, K, V> {
    index: btree_map::Range<'a, K, u32>,
    slots: &'a [Option<V>],
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, &slot) = self.index.next()?;
        Some((key, self.slots[slot as usize].as_ref()?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.index.size_hint()
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SlotMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

/// The entries of a [`SlotMap`] in the order of their keys, taken out of it.
pub struct IntoIter<K, V> {
    index: btree_map::IntoIter<K, u32>,
    slots: Vec<Option<V>>,
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, slot) = self.index.next()?;
        Some((key, self.slots[slot as usize].take()?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.index.size_hint()
    }
}

impl<K, V> IntoIterator for SlotMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter {
            index: self.index.into_iter(),
            slots: self.slots,
        }
    }
}

/// A key of a [`SlotMap`] with the map, from [`SlotMap::entry`].
pub struct Entry<'a, K, V> {
    map: &'a mut SlotMap<K, V>,
    key: K,
}

impl<'a, K: Ord, V> Entry<'a, K, V> {
    /// The value, after inserting `value()` if the key had none.
    pub fn or_insert_with(self, value: impl FnOnce() -> V) -> &'a mut V {
        let slot = self.map.slot_of(self.key, value);
        self.map.slots[slot]
            .as_mut()
            .expect("SlotMap: a slot in the index holds a value")
    }

    /// The value, after inserting `value` if the key had none.
    pub fn or_insert(self, value: V) -> &'a mut V {
        self.or_insert_with(|| value)
    }

    /// The value, after inserting the default if the key had none.
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }
}

impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> Index<&Q> for SlotMap<K, V> {
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("SlotMap: no entry for the key")
    }
}

impl<K: Ord, V: PartialEq> PartialEq for SlotMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<K: Ord, V: Eq> Eq for SlotMap<K, V> {}

impl<K: Ord + fmt::Debug, V: fmt::Debug> fmt::Debug for SlotMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SlotMap<K, V> {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SlotMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut map = SlotMap::new();
        for (key, value) in pairs {
            map.insert(key, value);
        }
        map
    }
}

/// An ordered set kept as a `BTreeMap<T, u32>` (every value 0), so that it shares its tree's
/// code with the [`SlotMap`]s keyed by the same type instead of carrying a `BTreeSet<T>`'s own.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet<T> {
    items: BTreeMap<T, u32>,
}

impl<T> Default for SlotSet<T> {
    fn default() -> Self {
        SlotSet {
            items: BTreeMap::new(),
        }
    }
}

impl<T: Ord> SlotSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        SlotSet {
            items: BTreeMap::new(),
        }
    }

    /// How many items the set holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set holds no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the set holds `item`.
    pub fn contains<Q: Ord + ?Sized>(&self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.items.contains_key(item)
    }

    /// Adds `item`; true if it was not there.
    pub fn insert(&mut self, item: T) -> bool {
        self.items.insert(item, 0).is_none()
    }

    /// Removes `item`; true if it was there.
    pub fn remove<Q: Ord + ?Sized>(&mut self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.items.remove(item).is_some()
    }

    /// The items in order.
    pub fn iter(&self) -> btree_map::Keys<'_, T, u32> {
        self.items.keys()
    }

    /// The items in `range`, in order.
    pub fn range<R: RangeBounds<T>>(&self, range: R) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.items.range(range).map(|(item, _)| item)
    }

    /// Whether every item of the set is in `other`.
    pub fn is_subset(&self, other: &SlotSet<T>) -> bool {
        self.len() <= other.len() && self.iter().all(|item| other.contains(item))
    }
}

impl<T: Ord> Extend<T> for SlotSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.insert(item);
        }
    }
}

impl<T: Ord> FromIterator<T> for SlotSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut set = SlotSet::new();
        set.extend(items);
        set
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for SlotSet<T> {
    fn from(items: [T; N]) -> Self {
        items.into_iter().collect()
    }
}

impl<T> IntoIterator for SlotSet<T> {
    type Item = T;
    type IntoIter = btree_map::IntoKeys<T, u32>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_keys()
    }
}

impl<'a, T: Ord> IntoIterator for &'a SlotSet<T> {
    type Item = &'a T;
    type IntoIter = btree_map::Keys<'a, T, u32>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: Ord + fmt::Debug> fmt::Debug for SlotSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A key that is a small number, so a [`DenseMap`] can keep its values in a `Vec` by number.
pub trait DenseKey: Copy + Ord {
    /// The key's number, the index of its value.
    fn number(self) -> usize;
}

/// An ordered map from keys that are small dense numbers (services) to `V`, kept as a `Vec` of
/// slots by number: no tree at all, so a map by service costs the page no tree code of its own,
/// and a map by a pair of services is a `DenseMap` of `DenseMap`s. Iterates in the order of its
/// keys and serializes as a `SlotMap` (and a `BTreeMap`) does: the same bytes.
#[derive(Clone)]
pub struct DenseMap<K, V> {
    slots: Vec<Option<(K, V)>>,
}

impl<K, V> Default for DenseMap<K, V> {
    fn default() -> Self {
        DenseMap { slots: Vec::new() }
    }
}

impl<K: DenseKey, V> DenseMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries the map holds.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count()
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|slot| slot.is_none())
    }

    /// Whether the map holds `key`.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.slots
            .get(key.number())?
            .as_ref()
            .map(|(_, value)| value)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.slots
            .get_mut(key.number())?
            .as_mut()
            .map(|(_, value)| value)
    }

    /// Sets `key` to `value`, returning the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.slot(key).replace((key, value)).map(|(_, value)| value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.slots
            .get_mut(key.number())?
            .take()
            .map(|(_, value)| value)
    }

    /// The entry of `key`, to read, insert or change its value.
    pub fn entry(&mut self, key: K) -> DenseEntry<'_, K, V> {
        DenseEntry { map: self, key }
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for slot in &mut self.slots {
            if let Some((key, value)) = slot
                && !keep(key, value)
            {
                *slot = None;
            }
        }
    }

    fn slot(&mut self, key: K) -> &mut Option<(K, V)> {
        let number = key.number();
        if number >= self.slots.len() {
            self.slots.resize_with(number + 1, || None);
        }
        &mut self.slots[number]
    }

    /// The entries in the order of their keys.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.slots
            .iter()
            .filter_map(|slot| slot.as_ref().map(|(key, value)| (key, value)))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(key, _)| key)
    }

    /// The values in the order of their keys.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, value)| value)
    }
}

/// A key of a [`DenseMap`] with the map, from [`DenseMap::entry`].
pub struct DenseEntry<'a, K, V> {
    map: &'a mut DenseMap<K, V>,
    key: K,
}

impl<'a, K: DenseKey, V> DenseEntry<'a, K, V> {
    /// The value, after inserting `value()` if the key had none.
    pub fn or_insert_with(self, value: impl FnOnce() -> V) -> &'a mut V {
        let key = self.key;
        &mut self.map.slot(key).get_or_insert_with(|| (key, value())).1
    }

    /// The value, after inserting the default if the key had none.
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }
}

impl<K: DenseKey, V> Index<&K> for DenseMap<K, V> {
    type Output = V;

    fn index(&self, key: &K) -> &V {
        self.get(key).expect("DenseMap: no entry for the key")
    }
}

impl<K: DenseKey, V: PartialEq> PartialEq for DenseMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<K: DenseKey, V: Eq> Eq for DenseMap<K, V> {}

impl<K: DenseKey + fmt::Debug, V: fmt::Debug> fmt::Debug for DenseMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Serialized as a map in the order of its keys, as a `SlotMap` is: the same bytes.
impl<K: DenseKey + Serialize, V: Serialize> Serialize for DenseMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// An ordered set of keys that are small dense numbers, as a [`DenseMap`] to `()`.
#[derive(Clone)]
pub struct DenseSet<T> {
    items: DenseMap<T, ()>,
}

impl<T> Default for DenseSet<T> {
    fn default() -> Self {
        DenseSet {
            items: DenseMap::default(),
        }
    }
}

impl<T: DenseKey> DenseSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the set holds `item`.
    pub fn contains(&self, item: &T) -> bool {
        self.items.contains_key(item)
    }

    /// Adds `item`; true if it was not there.
    pub fn insert(&mut self, item: T) -> bool {
        self.items.insert(item, ()).is_none()
    }

    /// Removes `item`; true if it was there.
    pub fn remove(&mut self, item: &T) -> bool {
        self.items.remove(item).is_some()
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.items.keys()
    }
}

impl<T: DenseKey> PartialEq for DenseSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl<T: DenseKey> Eq for DenseSet<T> {}

impl<T: DenseKey> FromIterator<T> for DenseSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut set = DenseSet::new();
        for item in items {
            set.insert(item);
        }
        set
    }
}

impl<T: DenseKey + fmt::Debug> fmt::Debug for DenseSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::SlotMap;
    use std::collections::BTreeMap;

    /// Replays `ops` (key, Some(value) to insert, None to remove) on an SlotMap and a BTreeMap
    /// and checks they agree after each step, in content and in order.
    fn check(ops: &[(u64, Option<&str>)]) {
        let mut ids: SlotMap<u64, String> = SlotMap::new();
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

    /// A dense key for the tests: a number below 8.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
    struct Small(u8);

    impl super::DenseKey for Small {
        fn number(self) -> usize {
            usize::from(self.0)
        }
    }

    #[test]
    fn a_dense_map_agrees_with_a_btree_map() {
        use super::{DenseMap, DenseSet};
        let ops: &[(u8, Option<&str>)] = &[
            (5, Some("e")),
            (1, Some("a")),
            (5, None),
            (4, Some("d")),
            (7, Some("g")),
            (1, None),
            (0, Some("z")),
            (4, Some("D")),
            (7, None),
            (2, Some("b")),
        ];
        let mut dense: DenseMap<Small, String> = DenseMap::new();
        let mut tree: BTreeMap<Small, String> = BTreeMap::new();
        let mut set: DenseSet<Small> = DenseSet::new();
        for &(key, value) in ops {
            let key = Small(key);
            match value {
                Some(value) => {
                    assert_eq!(
                        dense.insert(key, value.to_string()),
                        tree.insert(key, value.to_string())
                    );
                    set.insert(key);
                }
                None => {
                    assert_eq!(dense.remove(&key), tree.remove(&key));
                    set.remove(&key);
                }
            }
            assert_eq!(dense.len(), tree.len());
            assert_eq!(dense.is_empty(), tree.is_empty());
            assert!(dense.iter().eq(tree.iter()));
            assert!(dense.values().eq(tree.values()));
            assert!(set.iter().eq(tree.keys()));
            for key in (0..10).map(Small) {
                assert_eq!(dense.get(&key), tree.get(&key));
                assert_eq!(set.contains(&key), tree.contains_key(&key));
            }
            assert_eq!(
                serde_json::to_string(&dense).unwrap(),
                serde_json::to_string(&tree).unwrap()
            );
        }
        assert_eq!(format!("{dense:?}"), format!("{tree:?}"));
        *dense.entry(Small(9)).or_default() += "i";
        *dense.entry(Small(9)).or_default() += "j";
        assert_eq!(dense[&Small(9)], "ij");
        dense.retain(|key, _| key.0 % 2 == 0);
        tree.retain(|key, _| key.0 % 2 == 0);
        assert!(dense.iter().eq(tree.iter()));
        // Equal whatever slots were used: a removed last key leaves an empty slot behind.
        let mut grown = dense.clone();
        grown.insert(Small(20), "t".into());
        grown.remove(&Small(20));
        assert_eq!(grown, dense);
        assert_ne!(
            DenseMap::<Small, u8>::new(),
            [(Small(0), 0)]
                .into_iter()
                .fold(DenseMap::new(), |mut m, (k, v)| {
                    m.insert(k, v);
                    m
                })
        );
        let empty: DenseSet<Small> = [Small(3)].into_iter().collect();
        let mut emptied = empty.clone();
        emptied.remove(&Small(3));
        assert!(emptied.is_empty() && emptied == DenseSet::new() && emptied != empty);
    }

    #[test]
    fn equal_maps_compare_equal_whatever_their_slots() {
        let mut left: SlotMap<u64, u32> = SlotMap::new();
        left.insert(1, 10);
        left.insert(2, 20);
        left.remove(&1);
        left.insert(3, 30);
        let right: SlotMap<u64, u32> = [(3, 30), (2, 20)].into_iter().collect();
        assert_eq!(left, right);
        let mut changed = right.clone();
        *changed.get_mut(&3).unwrap() = 31;
        assert_ne!(left, changed);
        assert_eq!(left[&2], 20);
    }

    #[test]
    fn entry_and_retain_agree_with_a_btree_map() {
        let mut slots: SlotMap<String, u32> = SlotMap::new();
        let mut tree: BTreeMap<String, u32> = BTreeMap::new();
        for (i, key) in ["b", "a", "b", "c", "a", "b"].into_iter().enumerate() {
            *slots.entry(key.to_string()).or_default() += 1;
            *tree.entry(key.to_string()).or_default() += 1;
            assert_eq!(
                *slots.entry(format!("{key}{i}")).or_insert(7),
                *tree.entry(format!("{key}{i}")).or_insert(7)
            );
        }
        assert!(slots.iter().eq(tree.iter()));
        slots.retain(|key, count| key.len() == 1 && *count > 1);
        tree.retain(|key, count| key.len() == 1 && *count > 1);
        assert!(slots.iter().eq(tree.iter()));
        assert_eq!(slots.get("b"), Some(&3));
        assert_eq!(slots["a"], 2);
        // The slots the retain freed are used again.
        slots.insert("d".to_string(), 4);
        tree.insert("d".to_string(), 4);
        assert!(slots.iter().eq(tree.iter()));
        assert!((&slots).into_iter().eq(tree.iter()));
        assert!(slots.into_iter().eq(tree.into_iter()));
    }

    #[test]
    fn a_slot_set_agrees_with_a_btree_set() {
        let mut slots = super::SlotSet::new();
        let mut tree = std::collections::BTreeSet::new();
        for (item, insert) in [
            (3, true),
            (1, true),
            (3, true),
            (2, true),
            (3, false),
            (9, false),
        ] {
            if insert {
                assert_eq!(slots.insert(item), tree.insert(item));
            } else {
                assert_eq!(slots.remove(&item), tree.remove(&item));
            }
            assert!(slots.iter().eq(tree.iter()));
            assert_eq!(slots.len(), tree.len());
            assert_eq!(slots.contains(&3), tree.contains(&3));
        }
        let more: super::SlotSet<u64> = [1, 2, 5].into_iter().collect();
        assert!(slots.is_subset(&more));
        assert!(more.range(..5).rev().eq([&2, &1]));
        assert!(!more.is_subset(&slots));
        assert_eq!(format!("{slots:?}"), format!("{tree:?}"));
        let mut ranged: SlotMap<u64, &str> = [(1, "a"), (2, "b"), (4, "d")].into_iter().collect();
        assert!(ranged.range(2..).eq([(&2, &"b"), (&4, &"d")]));
        let upper = ranged.split_off(&2);
        assert!(ranged.iter().eq([(&1, &"a")]));
        assert!(upper.iter().eq([(&2, &"b"), (&4, &"d")]));
    }

    #[test]
    fn serializes_and_reads_as_a_btree_map_does() {
        let pairs = [("b", 2.5), ("a", 1.0), ("c", -3.0)];
        let slots: SlotMap<String, f64> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let tree: BTreeMap<String, f64> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let json = serde_json::to_string(&slots).unwrap();
        assert_eq!(json, serde_json::to_string(&tree).unwrap());
        assert_eq!(json, r#"{"a":1.0,"b":2.5,"c":-3.0}"#);
        // A key given twice keeps its last value, as a BTreeMap's does.
        let text = r#"{"b":1,"a":2,"b":3}"#;
        let read: SlotMap<String, u64> = serde_json::from_str(text).unwrap();
        let expected: BTreeMap<String, u64> = serde_json::from_str(text).unwrap();
        assert!(read.iter().eq(expected.iter()));
        assert!(serde_json::from_str::<SlotMap<String, u64>>("[1]").is_err());
    }
}
