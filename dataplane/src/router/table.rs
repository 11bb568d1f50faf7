//! Compact building blocks of the routing index: string-keyed maps that stay
//! a short list until they grow, and position lists that hold one position
//! without a heap allocation.
//!
//! A gateway with thousands of routes has thousands of virtual hosts, most
//! with one or two paths. Giving each of them hash maps (whose bucket count
//! rounds up to a power of two, plus a hasher) costs far more than the routes
//! themselves, so small maps are a list scanned in place and only switch to a
//! hash map above [`SMALL_MAX`] keys, which keeps lookups flat for big
//! fan-out (one `*` virtual host with every route, one listener with every
//! hostname).

use std::collections::HashMap;

/// Above this many keys a [`StrMap`] switches from a list to a hash map.
/// Comparing a handful of short strings costs less than hashing one.
pub(crate) const SMALL_MAX: usize = 8;

/// A map from strings to `V`: a list up to [`SMALL_MAX`] keys, a hash map
/// above.
#[derive(Debug)]
pub(crate) enum StrMap<V> {
    /// Few keys, in insertion order.
    Small(Vec<(Box<str>, V)>),
    /// Many keys; boxed so that the common small case stays three words
    /// (a bare `HashMap` with its hasher is six).
    #[allow(clippy::box_collection)]
    Large(Box<HashMap<Box<str>, V>>),
}

impl<V> Default for StrMap<V> {
    fn default() -> Self {
        StrMap::Small(Vec::new())
    }
}

impl<V> StrMap<V> {
    /// The value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        match self {
            StrMap::Small(list) => list.iter().find(|(k, _)| &**k == key).map(|(_, v)| v),
            StrMap::Large(map) => map.get(key),
        }
    }

    /// Whether the map has no key.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            StrMap::Small(list) => list.is_empty(),
            StrMap::Large(map) => map.is_empty(),
        }
    }

    /// The value of `key`, inserted with `make` when absent.
    pub(crate) fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        if let StrMap::Small(list) = self
            && list.len() >= SMALL_MAX
            && !list.iter().any(|(k, _)| &**k == key)
        {
            let map: HashMap<Box<str>, V> = std::mem::take(list).into_iter().collect();
            *self = StrMap::Large(Box::new(map));
        }
        match self {
            StrMap::Small(list) => {
                let at = match list.iter().position(|(k, _)| &**k == key) {
                    Some(at) => at,
                    None => {
                        list.push((key.into(), make()));
                        list.len() - 1
                    }
                };
                &mut list[at].1
            }
            StrMap::Large(map) => map.entry(key.into()).or_insert_with(make),
        }
    }

    /// Calls `f` on every value (in no particular order).
    pub(crate) fn values_mut(&mut self, mut f: impl FnMut(&mut V)) {
        match self {
            StrMap::Small(list) => list.iter_mut().for_each(|(_, v)| f(v)),
            StrMap::Large(map) => map.values_mut().for_each(f),
        }
    }

    /// Releases spare capacity once the map is built.
    pub(crate) fn shrink_to_fit(&mut self) {
        match self {
            StrMap::Small(list) => list.shrink_to_fit(),
            StrMap::Large(map) => map.shrink_to_fit(),
        }
    }
}

/// Match positions in ascending order; one position needs no allocation.
#[derive(Debug)]
pub(crate) enum Positions {
    /// The usual case: one match for a key.
    One(u32),
    /// Several matches share the key (they differ in their conditions).
    Many(Vec<u32>),
}

impl Positions {
    /// Appends `pos`, which must be above every position already held.
    pub(crate) fn push(&mut self, pos: u32) {
        match self {
            Positions::One(first) => *self = Positions::Many(vec![*first, pos]),
            Positions::Many(list) => list.push(pos),
        }
    }

    /// The positions, ascending.
    pub(crate) fn as_slice(&self) -> &[u32] {
        match self {
            Positions::One(pos) => std::slice::from_ref(pos),
            Positions::Many(list) => list,
        }
    }

    /// Releases spare capacity once the index is built.
    pub(crate) fn shrink_to_fit(&mut self) {
        if let Positions::Many(list) = self {
            list.shrink_to_fit();
        }
    }
}

/// Adds `pos` under `key`.
pub(crate) fn insert_position(map: &mut StrMap<Positions>, key: &str, pos: u32) {
    let mut fresh = false;
    let positions = map.get_or_insert_with(key, || {
        fresh = true;
        Positions::One(pos)
    });
    if !fresh {
        positions.push(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::{Positions, SMALL_MAX, StrMap, insert_position};

    /// A map answers the same whether it is still a list or has become a
    /// hash map, and keeps the first value of a key.
    #[test]
    fn small_and_large_maps_agree() {
        for n in [0, 1, SMALL_MAX, SMALL_MAX + 1, 100] {
            let mut map = StrMap::default();
            for i in 0..n {
                map.get_or_insert_with(&format!("k{i}"), || i);
                map.get_or_insert_with(&format!("k{i}"), || usize::MAX);
            }
            map.shrink_to_fit();
            assert_eq!(matches!(map, StrMap::Large(_)), n > SMALL_MAX, "{n}");
            assert_eq!(map.is_empty(), n == 0);
            for i in 0..n {
                assert_eq!(map.get(&format!("k{i}")), Some(&i), "{n}");
            }
            assert_eq!(map.get("absent"), None);
        }
    }

    /// Positions keep insertion (ascending) order, one or many.
    #[test]
    fn positions_keep_order() {
        let mut map = StrMap::default();
        insert_position(&mut map, "/a", 1);
        insert_position(&mut map, "/b", 2);
        insert_position(&mut map, "/a", 3);
        insert_position(&mut map, "/a", 7);
        map.values_mut(Positions::shrink_to_fit);
        assert_eq!(map.get("/a").map(Positions::as_slice), Some(&[1, 3, 7][..]));
        assert_eq!(map.get("/b").map(Positions::as_slice), Some(&[2][..]));
    }
}
