//! Bounded memos of facts per prompt (a system prompt's block hashes, where its blocks sit): the
//! shortcuts that let the router and the replicas skip work every request of a prefix group repeats.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};

use super::kv::PrehashedKey;

/// Most keys a memo holds before it forgets them all.
pub const MEMO_KEYS: usize = 4096;

/// Facts per prompt key, all forgotten when a new key would pass [`MEMO_KEYS`]: with a prefix of
/// its own per request a memo would otherwise grow with the run, and whatever it forgets is found
/// again the slow way. Keys are already well mixed hashes.
#[derive(Debug, Clone)]
pub struct Memo<K, V> {
    map: HashMap<K, V, BuildHasherDefault<PrehashedKey>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self { map: HashMap::default() }
    }
}

impl<K: Hash + Eq, V> Memo<K, V> {
    /// The fact kept for `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// The fact kept for `key`, made by `new` when there is none.
    pub fn entry(&mut self, key: K, new: impl FnOnce() -> V) -> &mut V {
        self.make_room(&key);
        self.map.entry(key).or_insert_with(new)
    }

    /// Keeps `value` for `key`.
    pub fn insert(&mut self, key: K, value: V) {
        self.make_room(&key);
        self.map.insert(key, value);
    }

    /// Forgets every key when `key` is new and the memo is full.
    fn make_room(&mut self, key: &K) {
        if self.map.len() >= MEMO_KEYS && !self.map.contains_key(key) {
            self.map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_every_key_only_when_a_new_one_would_pass_the_bound() {
        let mut m: Memo<u64, u64> = Memo::default();
        for k in 0..MEMO_KEYS as u64 {
            m.insert(crate::rng::mix2(k, 1), k);
        }
        // A key already kept is updated in place.
        m.insert(crate::rng::mix2(0, 1), 7);
        assert_eq!(m.get(&crate::rng::mix2(0, 1)), Some(&7));
        assert_eq!(m.get(&crate::rng::mix2(5, 1)), Some(&5));
        // One more key: everything else is forgotten.
        *m.entry(99, || 0) += 1;
        assert_eq!(m.get(&99), Some(&1));
        assert_eq!(m.get(&crate::rng::mix2(5, 1)), None);
    }
}
