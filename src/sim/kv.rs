//! Paged KV cache of one vLLM replica, with automatic prefix caching.
//!
//! Blocks are physical slots of `block_size` tokens. Free blocks sit in one LRU queue: allocation pops
//! the head, release appends to the tail, and a freed block keeps its content hash until it is popped
//! again, so a later request with the same prefix can claim it back (a prefix-cache hit). This is the
//! behaviour of vLLM's `FreeKVCacheBlockQueue` + `BlockPool`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Sentinel for "no block" in the intrusive free list.
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
    /// Order of entry into the free queue (the queue is sorted by it), for mid-run eviction checks.
    stamp: u64,
    /// Free-queue neighbours (NIL at the ends or when in use).
    prev: u32,
    next: u32,
    /// Requests holding the block.
    refcount: u32,
}

/// The block pool of one replica.
#[derive(Debug, Clone)]
pub struct KvCache {
    block_size: u32,
    caching: bool,
    /// Per-block state, one record per block so a pop or release touches one cache line.
    blk: Vec<Block>,
    head: u32,
    tail: u32,
    free: u32,
    index: HashIndex,
    next_stamp: u64,
    /// Cache counters.
    pub stats: KvStats,
}

impl KvCache {
    /// A cache of `total_blocks` empty blocks. `caching` turns prefix caching on.
    pub fn new(total_blocks: u32, block_size: u32, caching: bool) -> Self {
        let n = total_blocks as usize;
        let blk = (0..total_blocks)
            .map(|i| Block {
                hash: 0,
                stamp: u64::from(i),
                prev: if i == 0 { NIL } else { i - 1 },
                next: if i + 1 == total_blocks { NIL } else { i + 1 },
                refcount: 0,
            })
            .collect();
        Self {
            block_size,
            caching,
            blk,
            head: if n == 0 { NIL } else { 0 },
            tail: if n == 0 { NIL } else { total_blocks - 1 },
            free: total_blocks,
            index: HashIndex::default(),
            next_stamp: u64::from(total_blocks),
            stats: KvStats::default(),
        }
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
        let mut b = self.head;
        for _ in 0..k {
            if b == NIL {
                return u64::MAX;
            }
            b = self.blk[b as usize].next;
        }
        if b == NIL {
            u64::MAX
        } else {
            self.blk[b as usize].stamp
        }
    }

    /// How many free blocks claiming these cached blocks would take off the free queue.
    pub fn free_among(&self, blocks: &[u32]) -> u32 {
        blocks.iter().filter(|&&b| self.blk[b as usize].refcount == 0).count() as u32
    }

    /// Takes a reference on a cached block (removing it from the free queue if it was free).
    pub fn claim(&mut self, block: u32) {
        let b = block as usize;
        if self.blk[b].refcount == 0 {
            self.unlink(block);
            self.free -= 1;
        }
        self.blk[b].refcount += 1;
    }

    /// Pops the least recently freed block for new content, dropping any cached content it held.
    /// Returns `None` when no block is free.
    pub fn pop_free(&mut self) -> Option<u32> {
        let b = self.head;
        if b == NIL {
            return None;
        }
        self.unlink(b);
        self.free -= 1;
        if self.blk[b as usize].hash != 0 {
            // The index entry goes stale (lazy deletion): lookups check the block still holds it.
            self.blk[b as usize].hash = 0;
            self.stats.evictions += 1;
        }
        self.blk[b as usize].refcount = 1;
        Some(b)
    }

    /// Records that `block` (now full) holds content `hash`, so later prompts can hit it. A hash that is
    /// already cached in another block is left pointing there (first writer wins, as in vLLM).
    pub fn register(&mut self, block: u32, hash: u64) {
        if !self.caching || self.blk[block as usize].hash != 0 {
            return;
        }
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
            let r = &mut self.blk[b as usize].refcount;
            debug_assert!(*r > 0, "release of a free block");
            *r -= 1;
            if *r == 0 {
                self.push_tail(b);
                self.free += 1;
            }
        }
    }

    /// Records a prefix-cache query of `query` tokens of which `hit` were cached.
    pub fn record_query(&mut self, query: u64, hit: u64) {
        self.stats.query_tokens += query;
        self.stats.hit_tokens += hit;
    }

    fn unlink(&mut self, b: u32) {
        let (p, n) = (self.blk[b as usize].prev, self.blk[b as usize].next);
        if p == NIL {
            self.head = n;
        } else {
            self.blk[p as usize].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.blk[n as usize].prev = p;
        }
        self.blk[b as usize].prev = NIL;
        self.blk[b as usize].next = NIL;
    }

    fn push_tail(&mut self, b: u32) {
        self.blk[b as usize].stamp = self.next_stamp;
        self.next_stamp += 1;
        self.blk[b as usize].prev = self.tail;
        self.blk[b as usize].next = NIL;
        if self.tail == NIL {
            self.head = b;
        } else {
            self.blk[self.tail as usize].next = b;
        }
        self.tail = b;
    }

    /// Checks the internal invariants (free queue length = free count, refcounts consistent, every
    /// hashed block is indexed). For tests and debug assertions.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut n = 0u32;
        let mut b = self.head;
        let mut last = NIL;
        while b != NIL {
            if self.blk[b as usize].refcount != 0 {
                return Err(format!("block {b} is on the free queue with refcount > 0"));
            }
            if self.blk[b as usize].prev != last {
                return Err(format!("broken back link at block {b}"));
            }
            last = b;
            b = self.blk[b as usize].next;
            n += 1;
            if n > self.total() {
                return Err("free queue has a cycle".into());
            }
        }
        if last != self.tail {
            return Err("tail does not end the free queue".into());
        }
        if n != self.free {
            return Err(format!("free queue holds {n} blocks but free count is {}", self.free));
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
