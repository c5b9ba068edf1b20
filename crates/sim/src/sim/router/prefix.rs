//! The endpoint picker's approximate prefix index: which prompt blocks the router sent where.
//!
//! One map from block hash to a 128-bit mask of index slots (one slot per live replica), plus one
//! bounded LRU per slot (`lruCapacityPerServer` blocks). Matching a prompt against every endpoint
//! costs one map lookup per prompt block, however many endpoints there are.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;

use crate::sim::kv::PrehashedKey;

/// Most replicas the index tracks at once.
pub const SLOTS: usize = 128;

type Map<V> = HashMap<u64, V, BuildHasherDefault<PrehashedKey>>;

#[derive(Default)]
struct Lru {
    /// Hash → stamp of its latest touch.
    stamp: Map<u64>,
    /// Touches in order (stale entries skipped lazily). `(0, n)` is a batch of `n` phantom blocks.
    order: VecDeque<(u64, u64)>,
    clock: u64,
    /// Blocks held that no other request can match (unique content): they only take capacity, and
    /// since nothing touches them again they leave in insertion order.
    phantoms: usize,
}

/// The index.
pub struct ApproxIndex {
    owners: Map<u128>,
    lru: Vec<Lru>,
    capacity: usize,
}

impl ApproxIndex {
    /// An empty index remembering `capacity` blocks per slot.
    pub fn new(capacity: u32) -> Self {
        Self {
            owners: Map::default(),
            lru: (0..SLOTS).map(|_| Lru::default()).collect(),
            capacity: capacity as usize,
        }
    }

    /// Records that the blocks `hashes`, followed by `phantoms` blocks of content no other request
    /// can share, were sent to `slot`. Phantoms cost no map updates but take LRU capacity exactly as
    /// recorded blocks would, so eviction (and every later match) is the same as recording them.
    pub fn record(&mut self, slot: usize, hashes: &[u64], phantoms: usize) {
        let bit = 1u128 << slot;
        let lru = &mut self.lru[slot];
        for &h in hashes {
            lru.clock += 1;
            let c = lru.clock;
            if lru.stamp.insert(h, c).is_none() {
                *self.owners.entry(h).or_insert(0) |= bit;
            }
            lru.order.push_back((h, c));
        }
        if phantoms > 0 {
            lru.phantoms += phantoms;
            lru.order.push_back((0, phantoms as u64));
        }
        while lru.stamp.len() + lru.phantoms > self.capacity {
            let (h, c) = lru.order.pop_front().expect("order covers every entry");
            if h == 0 {
                let excess = (lru.stamp.len() + lru.phantoms - self.capacity) as u64;
                if c > excess {
                    lru.phantoms -= excess as usize;
                    lru.order.push_front((0, c - excess));
                } else {
                    lru.phantoms -= c as usize;
                }
                continue;
            }
            if lru.stamp.get(&h) == Some(&c) {
                lru.stamp.remove(&h);
                if let Some(m) = self.owners.get_mut(&h) {
                    *m &= !bit;
                    if *m == 0 {
                        self.owners.remove(&h);
                    }
                }
            }
        }
        if lru.order.len() > 4 * self.capacity.max(1024) {
            let stamp = &lru.stamp;
            lru.order.retain(|(h, c)| *h == 0 || stamp.get(h) == Some(c));
        }
    }

    /// Forgets everything recorded for `slot` (its replica is gone).
    pub fn clear_slot(&mut self, slot: usize) {
        let bit = 1u128 << slot;
        let lru = std::mem::take(&mut self.lru[slot]);
        for h in lru.stamp.keys() {
            if let Some(m) = self.owners.get_mut(h) {
                *m &= !bit;
                if *m == 0 {
                    self.owners.remove(h);
                }
            }
        }
    }

    /// For each slot in `slots`, the number of leading blocks of an `n`-block prompt recorded for it,
    /// written to `matched[slot]`. `hash_at(i)` gives block `i`'s hash; it is asked for blocks in
    /// order, and only while some slot still matches.
    pub fn match_prefix(
        &self,
        n: u32,
        mut hash_at: impl FnMut(u32) -> u64,
        slots: u128,
        matched: &mut [u32; SLOTS],
    ) {
        let mut cur = slots;
        let mut i = 0u32;
        while i < n && cur != 0 {
            let m = self.owners.get(&hash_at(i)).copied().unwrap_or(0) & cur;
            let mut dropped = cur & !m;
            while dropped != 0 {
                let s = dropped.trailing_zeros() as usize;
                matched[s] = i;
                dropped &= dropped - 1;
            }
            cur = m;
            i += 1;
        }
        while cur != 0 {
            let s = cur.trailing_zeros() as usize;
            matched[s] = i;
            cur &= cur - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_leading_blocks_and_evicts_lru() {
        let mut ix = ApproxIndex::new(3);
        ix.record(0, &[1, 2, 3], 0);
        ix.record(1, &[1, 5], 0);
        let mut m = [0u32; SLOTS];
        ix.match_prefix(4, |i| [1, 2, 3, 4][i as usize], 0b111, &mut m);
        assert_eq!(&m[..3], &[3, 1, 0]);
        ix.record(0, &[9], 0); // evicts 1 from slot 0
        ix.match_prefix(3, |i| [1, 2, 3][i as usize], 0b1, &mut m);
        assert_eq!(m[0], 0);
        ix.clear_slot(1);
        // Phantoms take capacity in insertion order, like recorded blocks nobody touches again.
        let mut ix = ApproxIndex::new(3);
        ix.record(0, &[1], 2);
        ix.record(0, &[1], 0); // touch 1: the phantoms are now the oldest
        ix.record(0, &[7], 1); // two over capacity: both old phantoms go, 1 stays
        ix.match_prefix(1, |i| [1][i as usize], 0b1, &mut m);
        assert_eq!(m[0], 1);
        ix.record(0, &[8], 0); // over again: the oldest is 1
        ix.match_prefix(1, |i| [1][i as usize], 0b1, &mut m);
        assert_eq!(m[0], 0);
        ix.match_prefix(2, |i| [1, 5][i as usize], 0b10, &mut m);
        assert_eq!(m[1], 0);
    }
}
