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
use crate::sim::memo::Memo;

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
    /// System prompts' runs of entries by prompt key (see [`ChainRun`]).
    runs: Memo<u64, ChainRun>,
    /// Events that may have split or freed a remembered run: evictions of blocks, and moves of runs
    /// other than a whole system prompt's.
    breaks: u64,
}

/// Where a system prompt's leading blocks sit in a slot's list: one run of linked entries, in
/// order, as the last record of that prompt left them. A run stays whole until a block of it is
/// evicted or moved apart from the others, and both count as [`Lru::breaks`]; moving another
/// prompt's whole run cannot split it (different system prompts have different block hashes).
#[derive(Debug, Clone, Copy)]
struct ChainRun {
    /// [`Lru::breaks`] when the run was found.
    breaks: u64,
    /// The prompt's blocks in the run.
    len: u32,
    first: u32,
    last: u32,
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

/// A remembered match of a shared system prompt's leading blocks (every request of a prefix group
/// starts with the same block hashes), valid while no block changed hands since: which slots it
/// left behind and where, and where the walk stood at its end.
#[derive(Debug)]
struct ChainWalk {
    /// [`ApproxIndex::changes`] when the walk was taken.
    changes: u64,
    /// The slots matched.
    slots: u128,
    /// The chain's blocks walked.
    len: u32,
    /// Slots that stopped matching within the chain after its first block, with the number of
    /// blocks they held (the others held none).
    drops: Vec<(u8, u32)>,
    /// Slots holding all `len` blocks.
    cur: u128,
    /// The entry of the chain's last block (where the successor hints go on), or [`NIL`].
    last: u32,
}

/// The index.
pub struct ApproxIndex {
    /// Block hash → its entry in `owners`.
    at: Map<u32>,
    owners: Vec<Owner>,
    free: Vec<u32>,
    lru: Vec<Lru>,
    capacity: usize,
    /// Changes to which slots hold which blocks so far (a chain walk taken before the last one may
    /// be out of date).
    changes: u64,
    /// Chain walks by system prompt key.
    walks: Memo<u64, ChainWalk>,
    /// Scratch for a walk's drops.
    drops: Vec<(u8, u32)>,
    /// Records that moved a remembered run (for tests).
    #[cfg(test)]
    runs_reused: u64,
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
            changes: 0,
            walks: Memo::default(),
            drops: Vec::new(),
            #[cfg(test)]
            runs_reused: 0,
        }
    }

    /// Records that the blocks `hashes`, followed by `phantoms` blocks of content no other request
    /// can share, were sent to `slot`. Phantoms cost no map updates but take LRU capacity exactly as
    /// recorded blocks would, so eviction (and every later match) is the same as recording them.
    /// `chain` names the prompt's system prompt and how many leading blocks lie wholly inside it:
    /// where those sit in the slot's list is remembered, so the next record of that prompt moves
    /// them without walking them.
    pub fn record(&mut self, slot: usize, hashes: &[u64], phantoms: usize, chain: Option<(u64, u32)>) {
        let bit = 1u128 << slot;
        let lru = &mut self.lru[slot];
        let chain = chain.filter(|&(_, len)| len > 0 && len as usize <= hashes.len());
        let mut k = 0;
        if let Some((key, len)) = chain {
            if let Some(r) = lru.runs.get(&key).filter(|r| r.breaks == lru.breaks && r.len == len) {
                let (first, last) = (r.first, r.last);
                lru.move_run_back(first, last);
                k = len as usize;
                #[cfg(test)]
                {
                    self.runs_reused += 1;
                }
            }
        }
        while k < hashes.len() {
            let h = hashes[k];
            let start = k;
            k += 1;
            if let Some(&first) = lru.at.get(&h) {
                // The blocks that follow `h` in the list and in `hashes` alike (a prompt recorded
                // here before) move to the back together, as touching them one by one would. A run
                // from the system prompt's first block ends with its last (the rest moves next, so
                // the list ends in the same order).
                let end = match chain {
                    Some((_, len)) if start == 0 => len as usize,
                    _ => hashes.len(),
                };
                let mut last = first;
                while k < end {
                    let next = lru.nodes[last as usize].next;
                    if next == NIL || lru.nodes[next as usize].hash != hashes[k] {
                        break;
                    }
                    last = next;
                    k += 1;
                }
                lru.move_run_back(first, last);
                match chain {
                    Some((key, len)) if start == 0 && k == len as usize => {
                        lru.runs.insert(key, ChainRun { breaks: lru.breaks, len, first, last });
                    }
                    _ => lru.breaks += 1,
                }
            } else {
                let i = lru.push_back(h, 1);
                lru.at.insert(h, i);
                self.changes += 1;
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
                lru.breaks += 1;
                self.changes += 1;
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
        self.changes += 1;
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
    /// written to `matched[slot]` (0 for every other slot up to the highest in `slots`; the slots
    /// above it are not touched, as nobody reads them). `hash_at(i)` gives block `i`'s hash; it
    /// is asked for blocks in order (from the end of a remembered chain walk), and only while some
    /// slot still matches.
    /// `chain` names the prompt's shared system prompt and how many leading blocks lie wholly inside
    /// it (so they hash the same for every request that carries it): their walk is remembered and
    /// reused until a block changes hands. Learns the chain's successor hints on the way.
    pub fn match_prefix(
        &mut self,
        n: u32,
        mut hash_at: impl FnMut(u32) -> u64,
        slots: u128,
        matched: &mut [u32; SLOTS],
        chain: Option<(u64, u32)>,
    ) {
        // Slots that hold not even the first block stay at 0 (most, for a prompt held by a few).
        matched[..(u128::BITS - slots.leading_zeros()) as usize].fill(0);
        let mut cur = slots;
        let mut i = 0u32;
        // The entry of the previous block (NIL: none or not held) and its successor hint.
        let (mut prev, mut hint) = (NIL, NIL);
        // The chain walk to remember once its blocks are walked, if any.
        let mut remember = chain.filter(|&(_, len)| len > 0 && len <= n);
        if let Some((key, len)) = remember {
            let changes = self.changes;
            if let Some(w) =
                self.walks.get(&key).filter(|w| w.changes == changes && w.slots == slots && w.len == len)
            {
                for &(s, held) in &w.drops {
                    matched[s as usize] = held;
                }
                (cur, i, prev) = (w.cur, len, w.last);
                hint = self.owners.get(prev as usize).map_or(NIL, |e| e.next);
                remember = None;
            }
        }
        let mut drops = std::mem::take(&mut self.drops);
        drops.clear();
        loop {
            if let Some((key, len)) = remember.filter(|&(_, len)| i == len || cur == 0) {
                self.walks.insert(
                    key,
                    ChainWalk { changes: self.changes, slots, len, drops: drops.clone(), cur, last: prev },
                );
                remember = None;
            }
            if i >= n || cur == 0 {
                break;
            }
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
            let mut dropped = if i == 0 { 0 } else { cur & !m };
            while dropped != 0 {
                let s = dropped.trailing_zeros() as usize;
                matched[s] = i;
                if remember.is_some() {
                    drops.push((s as u8, i));
                }
                dropped &= dropped - 1;
            }
            cur = m;
            i += 1;
        }
        self.drops = drops;
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
        ix.record(0, &[1, 2, 3], 0, None);
        ix.record(1, &[1, 5], 0, None);
        let mut m = [0u32; SLOTS];
        ix.match_prefix(4, |i| [1, 2, 3, 4][i as usize], 0b111, &mut m, None);
        assert_eq!(&m[..3], &[3, 1, 0]);
        ix.record(0, &[9], 0, None); // evicts 1 from slot 0
        ix.match_prefix(3, |i| [1, 2, 3][i as usize], 0b1, &mut m, None);
        assert_eq!(m[0], 0);
        ix.clear_slot(1);
        // Phantoms take capacity in insertion order, like recorded blocks nobody touches again.
        let mut ix = ApproxIndex::new(3);
        ix.record(0, &[1], 2, None);
        ix.record(0, &[1], 0, None); // touch 1: the phantoms are now the oldest
        ix.record(0, &[7], 1, None); // two over capacity: both old phantoms go, 1 stays
        ix.match_prefix(1, |i| [1][i as usize], 0b1, &mut m, None);
        assert_eq!(m[0], 1);
        ix.record(0, &[8], 0, None); // over again: the oldest is 1
        ix.match_prefix(1, |i| [1][i as usize], 0b1, &mut m, None);
        assert_eq!(m[0], 0);
        ix.match_prefix(2, |i| [1, 5][i as usize], 0b10, &mut m, None);
        assert_eq!(m[1], 0);
    }

    /// Random records against a list kept in LRU order entry by entry: every slot holds exactly the
    /// blocks the list says, phantoms included in the capacity (records of two system prompts move
    /// their remembered runs), and remembered chain walks give what walking gives (reusing a walk
    /// or a run after a block changed hands or moved apart fails it).
    #[test]
    fn linked_lru_matches_a_plain_list() {
        let cap = 12usize;
        let mut ix = ApproxIndex::new(cap as u32);
        // Per slot: entries from least to most recent; `Err(n)` is a batch of n phantoms.
        let mut model: Vec<Vec<Result<u64, usize>>> = vec![Vec::new(); 3];
        let mut x = 3u64;
        let mut reused = 0;
        let mut reused_got = [7u32; SLOTS];
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
            // The two prompts' first 4 blocks as system prompts (1 and 2), their runs remembered.
            let chain = match x % 4 {
                0 | 1 if hashes.len() >= 4 => Some((x % 4 + 1, 4)),
                _ => None,
            };
            // Half the time the system prompt alone comes again right after.
            let again = chain.filter(|_| x >> 24 & 1 == 0).map(|c| (hashes[..4].to_vec(), 0, c));
            for (hashes, phantoms, chain) in
                [(hashes, phantoms, chain)].into_iter().chain(again.map(|(h, p, c)| (h, p, Some(c))))
            {
                ix.record(slot, &hashes, phantoms, chain);
                let m = &mut model[slot];
                for &h in &hashes {
                    m.retain(|e| *e != Ok(h));
                    m.push(Ok(h));
                }
                if phantoms > 0 {
                    m.push(Err(phantoms));
                }
                let size = |m: &Vec<Result<u64, usize>>| {
                    m.iter().map(|e| e.map_or_else(|n| n, |_| 1)).sum::<usize>()
                };
                while size(m) > cap {
                    let excess = size(m) - cap;
                    match m[0] {
                        Err(n) if n > excess => m[0] = Err(n - excess),
                        _ => {
                            let _ = m.remove(0);
                        }
                    }
                }
            }
            for h in 1..=20u64 {
                let mut got = [0u32; SLOTS];
                ix.match_prefix(1, |_| h, 0b111, &mut got, None);
                for (s, held) in model.iter().enumerate() {
                    assert_eq!(got[s] == 1, held.contains(&Ok(h)), "round {round}: slot {s}, block {h}");
                }
            }
            // Whole prompts (walked through the successor hints): leading blocks each slot holds;
            // also as chains (their first 4 or all blocks named by a key), walked or remembered.
            let prompts: [Vec<u64>; 3] =
                [(1..=9).collect(), (5..=13).map(|h| h % 20 + 1).collect(), vec![3, 1, 4, 1, 5, 9, 2, 6]];
            for (k, p) in prompts.iter().enumerate() {
                let n = p.len() as u32;
                let chains =
                    [None, Some((k as u64 + 1, 4)), Some((k as u64 + 11, n)), Some((k as u64 + 1, 4))];
                for (chain, slots) in chains.into_iter().zip([0b111, 0b011, 0b111, 0b111]) {
                    // One array for every match, as the router keeps it.
                    let got = &mut reused_got;
                    let mut first_asked = u32::MAX;
                    let hash_at = |i: u32| {
                        first_asked = first_asked.min(i);
                        p[i as usize]
                    };
                    ix.match_prefix(n, hash_at, slots, got, chain);
                    for (s, held) in model.iter().enumerate().filter(|(s, _)| slots >> s & 1 == 1) {
                        let want = p.iter().take_while(|&&h| held.contains(&Ok(h))).count() as u32;
                        assert_eq!(got[s], want, "round {round}: slot {s}, prompt {p:?}, chain {chain:?}");
                    }
                    if chain.is_some_and(|(_, len)| first_asked >= len) {
                        reused += 1;
                    }
                }
            }
            // Now and then a replica goes away.
            if x % 97 == 0 {
                ix.clear_slot(slot);
                model[slot].clear();
            }
        }
        assert!(reused > 1000, "chain walks were reused {reused} times");
        assert!(ix.runs_reused > 50, "remembered runs were moved {} times", ix.runs_reused);
    }
}
