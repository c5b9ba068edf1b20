//! The endpoint picker's approximate prefix index: which prompt blocks the router sent where.
//!
//! One table of blocks, each with a 128-bit mask of index slots (one slot per live replica), plus one
//! bounded LRU per slot (`lruCapacityPerServer` blocks). Each block also remembers the block that
//! followed it the last time a prompt was matched through it, so matching a prompt against every
//! endpoint walks a known chain of blocks without map lookups (one lookup where the chain is new),
//! however many endpoints there are.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::sim::kv::PrehashedKey;

/// Most replicas the index tracks at once.
pub const SLOTS: usize = 128;

type Map<V> = HashMap<u64, V, BuildHasherDefault<PrehashedKey>>;

/// Sentinel for "none" in an LRU list.
const NIL: u32 = u32::MAX;

/// An entry of a slot's LRU list: one block (`hash != 0`), or a batch of `count` phantom blocks
/// (`hash == 0`).
#[derive(Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    hash: u64,
    count: usize,
}

/// One slot's blocks from least to most recently recorded, as a doubly linked list (a touch moves
/// a block to the back in O(1)).
#[derive(Default)]
struct Lru {
    /// Hash → its node.
    at: Map<u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: Option<u32>,
    tail: Option<u32>,
    /// Blocks held that no other request can match (unique content): they only take capacity, and
    /// since nothing touches them again they leave in insertion order.
    phantoms: usize,
}

impl Lru {
    fn push_back(&mut self, hash: u64, count: usize) -> u32 {
        let node = Node { prev: NIL, next: NIL, hash, count };
        let i = if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = node;
            i
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        self.link_back(i);
        i
    }

    fn link_back(&mut self, i: u32) {
        self.nodes[i as usize].prev = self.tail.unwrap_or(NIL);
        self.nodes[i as usize].next = NIL;
        match self.tail {
            Some(t) => self.nodes[t as usize].next = i,
            None => self.head = Some(i),
        }
        self.tail = Some(i);
    }

    /// Moves the run of linked entries `first..=last` to the back, keeping its order.
    fn move_run_back(&mut self, first: u32, last: u32) {
        if self.tail == Some(last) {
            return;
        }
        let prev = self.nodes[first as usize].prev;
        let next = self.nodes[last as usize].next;
        // Not the tail, so `next` is an entry.
        self.nodes[next as usize].prev = prev;
        if prev == NIL {
            self.head = Some(next);
        } else {
            self.nodes[prev as usize].next = next;
        }
        let tail = self.tail.expect("a list holding `last` has a tail");
        self.nodes[tail as usize].next = first;
        self.nodes[first as usize].prev = tail;
        self.nodes[last as usize].next = NIL;
        self.tail = Some(last);
    }

    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        if prev == NIL {
            self.head = (next != NIL).then_some(next);
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = (prev != NIL).then_some(prev);
        } else {
            self.nodes[next as usize].prev = prev;
        }
    }
}

/// A block some slot holds: its hash, the slots holding it, and a hint at its successor.
#[derive(Clone, Copy)]
struct Owner {
    /// Slots holding the block (0 once the entry is free).
    mask: u128,
    /// The block's hash (0 once the entry is free, so no hint can lead to it).
    hash: u64,
    /// The entry of the block that followed this one in the last prompt matched through it, or
    /// [`NIL`]: a hint, checked against the hash looked for before it is used.
    next: u32,
}

/// The index.
pub struct ApproxIndex {
    /// Block hash → its entry in `owners`.
    at: Map<u32>,
    owners: Vec<Owner>,
    free: Vec<u32>,
    lru: Vec<Lru>,
    capacity: usize,
}

impl ApproxIndex {
    /// An empty index remembering `capacity` blocks per slot.
    pub fn new(capacity: u32) -> Self {
        Self {
            at: Map::default(),
            owners: Vec::new(),
            free: Vec::new(),
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
        let mut k = 0;
        while k < hashes.len() {
            let h = hashes[k];
            k += 1;
            if let Some(&first) = lru.at.get(&h) {
                // The blocks that follow `h` in the list and in `hashes` alike (a prompt recorded
                // here before) move to the back together, as touching them one by one would.
                let mut last = first;
                while k < hashes.len() {
                    let next = lru.nodes[last as usize].next;
                    if next == NIL || lru.nodes[next as usize].hash != hashes[k] {
                        break;
                    }
                    last = next;
                    k += 1;
                }
                lru.move_run_back(first, last);
            } else {
                let i = lru.push_back(h, 1);
                lru.at.insert(h, i);
                match self.at.get(&h) {
                    Some(&o) => self.owners[o as usize].mask |= bit,
                    None => {
                        let entry = Owner { mask: bit, hash: h, next: NIL };
                        let o = match self.free.pop() {
                            Some(o) => {
                                self.owners[o as usize] = entry;
                                o
                            }
                            None => {
                                self.owners.push(entry);
                                (self.owners.len() - 1) as u32
                            }
                        };
                        self.at.insert(h, o);
                    }
                }
            }
        }
        if phantoms > 0 {
            lru.phantoms += phantoms;
            lru.push_back(0, phantoms);
        }
        while lru.at.len() + lru.phantoms > self.capacity {
            let i = lru.head.expect("the list holds every entry");
            let node = lru.nodes[i as usize];
            if node.hash == 0 {
                let excess = lru.at.len() + lru.phantoms - self.capacity;
                if node.count > excess {
                    lru.phantoms -= excess;
                    lru.nodes[i as usize].count -= excess;
                    continue;
                }
                lru.phantoms -= node.count;
            } else {
                lru.at.remove(&node.hash);
                Self::drop_owner(&mut self.at, &mut self.owners, &mut self.free, node.hash, bit);
            }
            lru.unlink(i);
            lru.free.push(i);
        }
    }

    /// Forgets everything recorded for `slot` (its replica is gone).
    pub fn clear_slot(&mut self, slot: usize) {
        let bit = 1u128 << slot;
        let lru = std::mem::take(&mut self.lru[slot]);
        for &h in lru.at.keys() {
            Self::drop_owner(&mut self.at, &mut self.owners, &mut self.free, h, bit);
        }
    }

    /// Takes `bit` off block `h`'s slots, freeing its entry when no slot holds it any more.
    fn drop_owner(at: &mut Map<u32>, owners: &mut [Owner], free: &mut Vec<u32>, h: u64, bit: u128) {
        if let Some(&o) = at.get(&h) {
            let e = &mut owners[o as usize];
            e.mask &= !bit;
            if e.mask == 0 {
                *e = Owner { mask: 0, hash: 0, next: NIL };
                at.remove(&h);
                free.push(o);
            }
        }
    }

    /// For each slot in `slots`, the number of leading blocks of an `n`-block prompt recorded for it,
    /// written to `matched[slot]`. `hash_at(i)` gives block `i`'s hash; it is asked for blocks in
    /// order, and only while some slot still matches. Learns the chain's successor hints on the way.
    pub fn match_prefix(
        &mut self,
        n: u32,
        mut hash_at: impl FnMut(u32) -> u64,
        slots: u128,
        matched: &mut [u32; SLOTS],
    ) {
        let mut cur = slots;
        let mut i = 0u32;
        // The entry of the previous block (NIL: none or not held) and its successor hint.
        let (mut prev, mut hint) = (NIL, NIL);
        while i < n && cur != 0 {
            let h = hash_at(i);
            let (o, mask, next) = match self.owners.get(hint as usize) {
                Some(e) if e.hash == h && e.mask != 0 => (hint, e.mask, e.next),
                _ => match self.at.get(&h) {
                    Some(&o) => {
                        if let Some(p) = self.owners.get_mut(prev as usize) {
                            p.next = o;
                        }
                        let e = self.owners[o as usize];
                        (o, e.mask, e.next)
                    }
                    None => (NIL, 0, NIL),
                },
            };
            (prev, hint) = (o, next);
            let m = mask & cur;
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

    /// Random records against a list kept in LRU order entry by entry: every slot holds exactly the
    /// blocks the list says, phantoms included in the capacity.
    #[test]
    fn linked_lru_matches_a_plain_list() {
        let cap = 12usize;
        let mut ix = ApproxIndex::new(cap as u32);
        // Per slot: entries from least to most recent; `Err(n)` is a batch of n phantoms.
        let mut model: Vec<Vec<Result<u64, usize>>> = vec![Vec::new(); 3];
        let mut x = 3u64;
        for round in 0..3000u64 {
            x = crate::rng::mix2(x, round);
            let slot = (x % 3) as usize;
            // Random blocks, or the leading blocks of one of two prompts sent again and again (runs of
            // entries that move to the back together).
            let hashes: Vec<u64> = match x % 4 {
                0 => (1..=1 + (x >> 8) % 8).collect(),
                1 => (5..=5 + (x >> 8) % 8).map(|h| h % 20 + 1).collect(),
                _ => (0..(x >> 8) % 6).map(|k| 1 + (crate::rng::mix2(x, k) % 20)).collect(),
            };
            let phantoms = ((x >> 16) % 5) as usize * usize::from(x % 7 < 3);
            ix.record(slot, &hashes, phantoms);
            let m = &mut model[slot];
            for &h in &hashes {
                m.retain(|e| *e != Ok(h));
                m.push(Ok(h));
            }
            if phantoms > 0 {
                m.push(Err(phantoms));
            }
            let size =
                |m: &Vec<Result<u64, usize>>| m.iter().map(|e| e.map_or_else(|n| n, |_| 1)).sum::<usize>();
            while size(m) > cap {
                let excess = size(m) - cap;
                match m[0] {
                    Err(n) if n > excess => m[0] = Err(n - excess),
                    _ => {
                        let _ = m.remove(0);
                    }
                }
            }
            for h in 1..=20u64 {
                let mut got = [0u32; SLOTS];
                ix.match_prefix(1, |_| h, 0b111, &mut got);
                for (s, held) in model.iter().enumerate() {
                    assert_eq!(got[s] == 1, held.contains(&Ok(h)), "round {round}: slot {s}, block {h}");
                }
            }
            // Whole prompts (walked through the successor hints): leading blocks each slot holds.
            let prompts: [Vec<u64>; 3] =
                [(1..=9).collect(), (5..=13).map(|h| h % 20 + 1).collect(), vec![3, 1, 4, 1, 5, 9, 2, 6]];
            for p in &prompts {
                let mut got = [0u32; SLOTS];
                ix.match_prefix(p.len() as u32, |i| p[i as usize], 0b111, &mut got);
                for (s, held) in model.iter().enumerate() {
                    let want = p.iter().take_while(|&&h| held.contains(&Ok(h))).count() as u32;
                    assert_eq!(got[s], want, "round {round}: slot {s}, prompt {p:?}");
                }
            }
        }
    }
}
