//! Ordered collections built with less code in the page.
//!
//! Every `collect()` into a `BTreeMap` or `BTreeSet`, and every `sort_by*`, compiles its own copy
//! of the standard library's stable sort (about 5 KB of WebAssembly each) for its element type and
//! even its iterator type. These helpers give the same results with one shared sort, or none:
//! `map` and `set` insert in turn (a later pair with an equal key wins, as with `collect()`), and
//! `sort_by` / `sort_by_key` sort positions with the one comparator type compiled once, then
//! move the elements — the same order as the standard stable sort, ties keeping their order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// The map of `pairs`, as `collect()` builds it.
pub fn map<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        map.insert(key, value);
    }
    map
}

/// The set of `items`, as `collect()` builds it.
pub fn set<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut set = BTreeSet::new();
    for item in items {
        set.insert(item);
    }
    set
}

/// `map` and `set` as methods, to write `.collect_map()` where `.collect()` would build a map.
pub trait CollectOrdered: Iterator + Sized {
    /// The map of the pairs, as `collect()` builds it.
    fn collect_map<K: Ord, V>(self) -> BTreeMap<K, V>
    where
        Self: Iterator<Item = (K, V)>,
    {
        map(self)
    }

    /// The set of the items, as `collect()` builds it.
    fn collect_set(self) -> BTreeSet<Self::Item>
    where
        Self::Item: Ord,
    {
        set(self)
    }
}

impl<I: Iterator> CollectOrdered for I {}

/// Sorts `items` stably by `compare`, as `slice::sort_by` does.
pub fn sort_by<T>(items: &mut Vec<T>, mut compare: impl FnMut(&T, &T) -> Ordering) {
    let order = stable_order(items.len(), &mut |a, b| compare(&items[a], &items[b]));
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

/// Sorts `items` stably by `key`, as `slice::sort_by_key` does.
pub fn sort_by_key<T, K: Ord>(items: &mut Vec<T>, mut key: impl FnMut(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

/// The positions `0..len` in the stable order of `compare`: the only sort these helpers compile.
#[inline(never)]
fn stable_order(len: usize, compare: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| compare(a, b));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_matches_the_standard_stable_sort_ties_included() {
        let mut rng = crate::rng::SimRng::new(7);
        println!("seed 7");
        for len in [0, 1, 2, 5, 20, 33, 200, 1000] {
            let items: Vec<(u64, usize)> = (0..len).map(|i| (rng.next_u64() % 7, i)).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|item| item.0);
            let mut ours = items.clone();
            sort_by_key(&mut ours, |item| item.0);
            assert_eq!(ours, expected, "{len} items");
            let mut ours = items;
            sort_by(&mut ours, |a, b| b.0.cmp(&a.0));
            expected.sort_by_key(|b| std::cmp::Reverse(b.0));
            assert_eq!(ours, expected, "{len} items, descending");
        }
    }

    #[test]
    fn maps_and_sets_match_collect_a_later_value_winning() {
        let pairs = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)];
        assert_eq!(map(pairs), pairs.into_iter().collect::<BTreeMap<_, _>>());
        assert_eq!(map(pairs)["b"], 3);
        let items = [5, 1, 5, 3, 1];
        assert_eq!(set(items), items.into_iter().collect::<BTreeSet<_>>());
    }
}
