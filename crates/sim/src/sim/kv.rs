//! Paged KV cache of one vLLM replica, with automatic prefix caching.
//!
//! Blocks are physical slots of `block_size` tokens. Free blocks sit in one LRU queue: allocation pops
//! the head, release appends to the tail, and a freed block keeps its content hash until it is popped
//! again, so a later request with the same prefix can claim it back (a prefix-cache hit). This is the
//! behaviour of vLLM's `FreeKVCacheBlockQueue` + `BlockPool`.
//!
//! Representation: free blocks without content ("blank") are interchangeable, so the queue stores a
//! run of consecutive blank entries as one segment with a count, and the blank blocks themselves on a
//! stack (recently freed first, so allocation touches memory that is still in cache). A free block
//! with content is a segment of its own, so it can be claimed back from the middle in O(1). Which
//! blank block an allocation gets cannot change any result; the order of blank and cached entries,
//! which decides what gets evicted, is kept exactly.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Sentinel for "none" in the segment list.
const NIL: u32 = u32::MAX;

/// Hasher for keys that are already well-mixed 64-bit hashes: identity, deterministic, fast.
#[derive(Default, Clone, Copy)]
pub struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Map from block content hash to the block holding it.
type HashIndex = HashMap<u64, u32, BuildHasherDefault<PrehashedKey>>;

/// Counters a replica reports about its cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvStats {
    /// Prompt tokens looked up in the prefix cache at admission.
    pub query_tokens: u64,
    /// Of those, tokens found cached.
    pub hit_tokens: u64,
    /// Cached blocks evicted (their hash dropped) to make room.
    pub evictions: u64,
}

/// One physical block.
#[derive(Debug, Clone, Copy)]
struct Block {
    /// Content hash; 0 = none (real hashes are forced odd, so never 0).
    hash: u64,
    /// For a free block with content: its queue position stamp (entry order into the free queue).
    stamp: u64,
    /// For a free block with content: its segment.
    seg: u32,
    /// Requests holding the block.
    refcount: u32,
}

/// A run of the free queue: `count` blank entries with stamps `stamp..stamp + count`, or one block
/// with content (`block != NIL`, `count == 1`).
#[derive(Debug, Clone, Copy)]
struct Seg {
    prev: u32,
    next: u32,
    block: u32,
    count: u32,
    stamp: u64,
}

/// The block pool of one replica.
#[derive(Debug, Clone)]
pub struct KvCache {
    block_size: u32,
    caching: bool,
    blk: Vec<Block>,
    segs: Vec<Seg>,
    free_segs: Vec<u32>,
    head: u32,
    tail: u32,
    /// Blank free blocks, most recently freed on top.
    blank: Vec<u32>,
    free: u32,
    index: HashIndex,
    next_stamp: u64,
    /// Cache counters.
    pub stats: KvStats,
}

impl KvCache {
    /// A cache of `total_blocks` empty blocks. `caching` turns prefix caching on.
    pub fn new(total_blocks: u32, block_size: u32, caching: bool) -> Self {
        let blk = vec![Block { hash: 0, stamp: 0, seg: NIL, refcount: 0 }; total_blocks as usize];
        let mut kv = Self {
            block_size,
            caching,
            blk,
            segs: Vec::new(),
            free_segs: Vec::new(),
            head: NIL,
            tail: NIL,
            blank: (0..total_blocks).rev().collect(),
            free: total_blocks,
            index: HashIndex::default(),
            next_stamp: u64::from(total_blocks),
            stats: KvStats::default(),
        };
        if total_blocks > 0 {
            let s = kv.new_seg(Seg { prev: NIL, next: NIL, block: NIL, count: total_blocks, stamp: 0 });
            kv.head = s;
            kv.tail = s;
        }
        kv
    }

    /// Tokens per block.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Whether prefix caching is on.
    pub fn caching(&self) -> bool {
        self.caching
    }

    /// Total blocks.
    pub fn total(&self) -> u32 {
        self.blk.len() as u32
    }

    /// Free blocks (including free blocks that still hold cached content).
    pub fn free(&self) -> u32 {
        self.free
    }

    /// Blocks in use by at least one request.
    pub fn used(&self) -> u32 {
        self.total() - self.free
    }

    /// Blocks needed to hold `tokens` tokens.
    pub fn blocks_for(&self, tokens: u64) -> u64 {
        tokens.div_ceil(u64::from(self.block_size))
    }

    /// Number of leading `hashes` whose content is cached (in use or free), stopping at the first miss.
    pub fn cached_prefix_len(&self, hashes: &[u64]) -> usize {
        if !self.caching {
            return 0;
        }
        hashes.iter().take_while(|&&h| self.lookup(h).is_some()).count()
    }

    /// The block holding the content `hash`, if cached.
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        self.index.get(&hash).copied().filter(|&b| self.blk[b as usize].hash == hash)
    }

    /// Like [`KvCache::lookup`], but as if the first `popped` blocks of the free queue had already
    /// been taken for new content (their cached content evicted). `popped_stamp` is
    /// [`KvCache::nth_free_stamp`]`(popped)`. Used to read the cache in the middle of a decode run,
    /// whose allocations are applied in bulk at its end.
    pub fn lookup_after_pops(&self, hash: u64, popped_stamp: u64) -> Option<u32> {
        self.lookup(hash)
            .filter(|&b| self.blk[b as usize].refcount > 0 || self.blk[b as usize].stamp >= popped_stamp)
    }

    /// The free-queue stamp of the `k`-th free block from the head (0-based): blocks with a smaller
    /// stamp are the first `k` to be popped. `u64::MAX` when fewer than `k + 1` blocks are free.
    pub fn nth_free_stamp(&self, k: u32) -> u64 {
        if k == 0 {
            return 0;
        }
        let mut k = k;
        let mut s = self.head;
        while s != NIL {
            let seg = &self.segs[s as usize];
            if k < seg.count {
                return seg.stamp + u64::from(k);
            }
            k -= seg.count;
            s = seg.next;
        }
        u64::MAX
    }

    /// How many free blocks claiming these cached blocks would take off the free queue.
    pub fn free_among(&self, blocks: &[u32]) -> u32 {
        blocks.iter().filter(|&&b| self.blk[b as usize].refcount == 0).count() as u32
    }

    /// Takes a reference on a cached block (removing it from the free queue if it was free).
    pub fn claim(&mut self, block: u32) {
        let b = block as usize;
        if self.blk[b].refcount == 0 {
            let s = self.blk[b].seg;
            debug_assert!(s != NIL, "a free block with content has its own segment");
            self.remove_seg(s);
            self.blk[b].seg = NIL;
            self.free -= 1;
        }
        self.blk[b].refcount += 1;
    }

    /// Pops the least recently freed block for new content, dropping any cached content it held.
    /// Returns `None` when no block is free.
    pub fn pop_free(&mut self) -> Option<u32> {
        let s = self.head;
        if s == NIL {
            return None;
        }
        self.free -= 1;
        let seg = self.segs[s as usize];
        let b = if seg.block == NIL {
            let b = self.blank.pop().expect("blank segments count blank blocks");
            if seg.count == 1 {
                self.remove_seg(s);
            } else {
                let g = &mut self.segs[s as usize];
                g.count -= 1;
                g.stamp += 1;
            }
            b
        } else {
            self.remove_seg(s);
            let b = seg.block;
            // The index entry goes stale (lazy deletion): lookups check the block still holds it.
            self.blk[b as usize].hash = 0;
            self.blk[b as usize].seg = NIL;
            self.stats.evictions += 1;
            b
        };
        self.blk[b as usize].refcount = 1;
        Some(b)
    }

    /// Pops `n` blocks as [`KvCache::pop_free`] would one by one, appending them to `out`; a run of
    /// blank entries at the head is taken in one step. Panics if fewer than `n` blocks are free
    /// (callers check first).
    pub fn pop_free_into(&mut self, out: &mut Vec<u32>, mut n: usize) {
        while n > 0 {
            let s = self.head;
            assert!(s != NIL, "allocation was checked");
            let seg = self.segs[s as usize];
            if seg.block == NIL {
                // `pop_free` takes the top of the blank stack each time: the top `m`, top first.
                let m = n.min(seg.count as usize);
                let from = self.blank.len() - m;
                out.extend(self.blank[from..].iter().rev());
                for &b in &self.blank[from..] {
                    self.blk[b as usize].refcount = 1;
                }
                self.blank.truncate(from);
                self.free -= m as u32;
                if m == seg.count as usize {
                    self.remove_seg(s);
                } else {
                    let g = &mut self.segs[s as usize];
                    g.count -= m as u32;
                    g.stamp += m as u64;
                }
                n -= m;
            } else {
                let b = self.pop_free().expect("head segment exists");
                out.push(b);
                n -= 1;
            }
        }
    }

    /// Records that `block` (now full) holds content `hash`, so later prompts can hit it. A hash that is
    /// already cached in another block is left pointing there (first writer wins, as in vLLM).
    pub fn register(&mut self, block: u32, hash: u64) {
        if !self.caching || self.blk[block as usize].hash != 0 {
            return;
        }
        debug_assert!(self.blk[block as usize].refcount > 0, "register on a free block");
        match self.index.entry(hash) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                if self.blk[*e.get() as usize].hash == hash {
                    return;
                }
                e.insert(block);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(block);
            }
        }
        self.blk[block as usize].hash = hash;
        if self.index.len() > 2 * self.blk.len() + 1024 {
            let blk = &self.blk;
            self.index.retain(|h, b| blk[*b as usize].hash == *h);
        }
    }

    /// Drops one reference on each block, last block first, so that the tail of a sequence (the least
    /// shareable content) is evicted before its prefix.
    pub fn release(&mut self, blocks: &[u32]) {
        for &b in blocks.iter().rev() {
            let blk = &mut self.blk[b as usize];
            debug_assert!(blk.refcount > 0, "release of a free block");
            blk.refcount -= 1;
            if blk.refcount != 0 {
                continue;
            }
            self.free += 1;
            if blk.hash == 0 && self.tail != NIL {
                // Blank block after a blank run: extend the tail segment (what `push_tail` does).
                let t = &mut self.segs[self.tail as usize];
                if t.block == NIL && t.stamp + u64::from(t.count) == self.next_stamp {
                    self.next_stamp += 1;
                    t.count += 1;
                    self.blank.push(b);
                    continue;
                }
            }
            self.push_tail(b);
        }
    }

    /// Records a prefix-cache query of `query` tokens of which `hit` were cached.
    pub fn record_query(&mut self, query: u64, hit: u64) {
        self.stats.query_tokens += query;
        self.stats.hit_tokens += hit;
    }

    fn new_seg(&mut self, seg: Seg) -> u32 {
        if let Some(s) = self.free_segs.pop() {
            self.segs[s as usize] = seg;
            s
        } else {
            self.segs.push(seg);
            (self.segs.len() - 1) as u32
        }
    }

    fn remove_seg(&mut self, s: u32) {
        let Seg { prev: p, next: n, .. } = self.segs[s as usize];
        if p == NIL {
            self.head = n;
        } else {
            self.segs[p as usize].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.segs[n as usize].prev = p;
        }
        self.free_segs.push(s);
    }

    fn push_tail(&mut self, b: u32) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if self.blk[b as usize].hash == 0 {
            self.blank.push(b);
            if self.tail != NIL {
                let t = &mut self.segs[self.tail as usize];
                if t.block == NIL && t.stamp + u64::from(t.count) == stamp {
                    t.count += 1;
                    return;
                }
            }
            self.append_seg(Seg { prev: NIL, next: NIL, block: NIL, count: 1, stamp });
        } else {
            self.blk[b as usize].stamp = stamp;
            let s = self.append_seg(Seg { prev: NIL, next: NIL, block: b, count: 1, stamp });
            self.blk[b as usize].seg = s;
        }
    }

    fn append_seg(&mut self, mut seg: Seg) -> u32 {
        seg.prev = self.tail;
        let s = self.new_seg(seg);
        if self.tail == NIL {
            self.head = s;
        } else {
            self.segs[self.tail as usize].next = s;
        }
        self.tail = s;
        s
    }

    /// Checks the internal invariants (free queue length = free count, blank stack = blank entries,
    /// refcounts consistent, stamps increasing, every hashed block indexed). For tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let (mut n, mut blanks) = (0u64, 0u64);
        let mut s = self.head;
        let mut last = NIL;
        let mut last_stamp = None::<u64>;
        let mut hops = 0usize;
        while s != NIL {
            let g = &self.segs[s as usize];
            if g.prev != last {
                return Err(format!("broken back link at segment {s}"));
            }
            if g.count == 0 {
                return Err(format!("empty segment {s}"));
            }
            if last_stamp.is_some_and(|x| g.stamp <= x) {
                return Err(format!("stamps do not increase at segment {s}"));
            }
            last_stamp = Some(g.stamp + u64::from(g.count) - 1);
            if g.block == NIL {
                blanks += u64::from(g.count);
            } else {
                let b = &self.blk[g.block as usize];
                if g.count != 1 || b.refcount != 0 || b.hash == 0 || b.seg != s || b.stamp != g.stamp {
                    return Err(format!("segment {s} and its block {} disagree", g.block));
                }
            }
            n += u64::from(g.count);
            last = s;
            s = g.next;
            hops += 1;
            if hops > self.blk.len() + 1 {
                return Err("free queue has a cycle".into());
            }
        }
        if last != self.tail {
            return Err("tail does not end the free queue".into());
        }
        if n != u64::from(self.free) {
            return Err(format!("free queue holds {n} blocks but free count is {}", self.free));
        }
        if blanks != self.blank.len() as u64 {
            return Err(format!("{blanks} blank entries but {} blank blocks", self.blank.len()));
        }
        if let Some(b) =
            self.blank.iter().find(|&&b| self.blk[b as usize].refcount != 0 || self.blk[b as usize].hash != 0)
        {
            return Err(format!("block {b} is on the blank stack but in use or holding content"));
        }
        let zero = self.blk.iter().filter(|b| b.refcount == 0).count() as u32;
        if zero != self.free {
            return Err(format!("{zero} blocks have refcount 0 but free count is {}", self.free));
        }
        for (b, h) in self.blk.iter().map(|x| x.hash).enumerate() {
            if h != 0 && self.index.get(&h) != Some(&(b as u32)) {
                return Err(format!("block {b} holds a hash the index does not map to it"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_claim_release_keep_counts() {
        let mut kv = KvCache::new(4, 16, true);
        let a = kv.pop_free().unwrap();
        let b = kv.pop_free().unwrap();
        assert_eq!(kv.free(), 2);
        kv.register(a, 11);
        kv.register(b, 13);
        kv.release(&[a, b]);
        assert_eq!(kv.free(), 4);
        kv.check_invariants().unwrap();
        // Content survives release and can be claimed back.
        assert_eq!(kv.cached_prefix_len(&[11, 13, 15]), 2);
        let blk = kv.lookup(11).unwrap();
        kv.claim(blk);
        assert_eq!(kv.free(), 3);
        kv.check_invariants().unwrap();
    }

    #[test]
    fn lru_evicts_oldest_freed_first_and_tail_of_sequence_first() {
        let mut kv = KvCache::new(3, 16, true);
        let blocks: Vec<u32> = (0..3).map(|_| kv.pop_free().unwrap()).collect();
        for (i, &b) in blocks.iter().enumerate() {
            kv.register(b, 101 + 2 * i as u64);
        }
        kv.release(&blocks); // released in reverse: last block is the oldest free
        let popped = kv.pop_free().unwrap();
        assert_eq!(popped, blocks[2]);
        assert_eq!(kv.cached_prefix_len(&[101, 103, 105]), 2);
        assert_eq!(kv.stats.evictions, 1);
        kv.check_invariants().unwrap();
    }

    #[test]
    fn caching_off_never_hits() {
        let mut kv = KvCache::new(2, 16, false);
        let a = kv.pop_free().unwrap();
        kv.register(a, 7);
        kv.release(&[a]);
        assert_eq!(kv.cached_prefix_len(&[7]), 0);
    }

    /// Pops in bulk and the bulk blank-tail release leave the cache exactly as one at a time does.
    #[test]
    fn bulk_pop_and_release_match_one_at_a_time() {
        let (mut a, mut b) = (KvCache::new(64, 16, true), KvCache::new(64, 16, true));
        let (mut held_a, mut held_b) = (Vec::new(), Vec::new());
        let mut x = 7u64;
        for round in 0..400u64 {
            x = crate::rng::mix2(x, round);
            let n = (x % 9) as usize;
            if x % 3 != 0 && a.free() as usize >= n {
                let from = held_a.len();
                a.pop_free_into(&mut held_a, n);
                for _ in 0..n {
                    held_b.push(b.pop_free().unwrap());
                }
                assert_eq!(held_a[from..], held_b[from..], "bulk pop took other blocks");
                // Some new blocks get content, as prompt blocks do.
                if x % 5 == 0 {
                    if let Some(&blk) = held_a.last() {
                        a.register(blk, x | 1);
                        b.register(blk, x | 1);
                    }
                }
            } else if !held_a.is_empty() {
                let k = held_a.len() - (x as usize % held_a.len()).min(held_a.len());
                a.release(&held_a[k..]);
                for &blk in held_b[k..].iter().rev() {
                    b.blk[blk as usize].refcount -= 1;
                    if b.blk[blk as usize].refcount == 0 {
                        b.push_tail(blk);
                        b.free += 1;
                    }
                }
                held_a.truncate(k);
                held_b.truncate(k);
            }
            a.check_invariants().unwrap();
            b.check_invariants().unwrap();
            assert_eq!((a.free(), a.next_stamp, &a.blank), (b.free(), b.next_stamp, &b.blank));
        }
    }

    #[test]
    fn duplicate_content_keeps_first_block() {
        let mut kv = KvCache::new(2, 16, true);
        let a = kv.pop_free().unwrap();
        let b = kv.pop_free().unwrap();
        kv.register(a, 9);
        kv.register(b, 9);
        assert_eq!(kv.lookup(9), Some(a));
        kv.release(&[b]);
        kv.release(&[a]);
        kv.check_invariants().unwrap();
    }
}
