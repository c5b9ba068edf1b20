//! Paged KV cache of one vLLM replica, with automatic prefix caching.
//!
//! Blocks are physical slots of `block_size` tokens. Free blocks sit in one LRU queue: allocation pops
//! the head, release appends to the tail, and a freed block keeps its content hash until it is popped
//! again, so a later request with the same prefix can claim it back (a prefix-cache hit). This is the
//! behaviour of vLLM's `FreeKVCacheBlockQueue` + `BlockPool`.
//!
//! Representation: blocks without content ("blank") are interchangeable, so they are counted, not
//! named. The free queue stores a run of consecutive blank entries as one segment with a count, and a
//! free block with content as a segment of its own (so it can be claimed back from the middle in
//! O(1)). A request holds its leading blocks by id (those with content, or shared) and the blank
//! blocks after them as a count ("anonymous" blocks: one owner, no content); an anonymous block gets
//! an id from the spare ids only when it gets content ([`KvCache::mint`]). So allocating and
//! releasing a blank run costs O(1), not O(blocks). Which physical block holds blank tokens cannot
//! change any result; the order of blank and cached entries, which decides what gets evicted, is kept
//! exactly.

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
    /// Ids of no block in use or cached: one per blank free block and per anonymous block in use.
    spare: Vec<u32>,
    /// Anonymous blocks in use (blank, one owner, no id).
    anon_used: u32,
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
            spare: (0..total_blocks).rev().collect(),
            anon_used: 0,
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

    /// Pops `n` entries off the head of the free queue (least recently freed first) as anonymous
    /// blocks of one request: a blank run costs O(1); a cached block popped loses its content (an
    /// eviction) and its id becomes spare. Panics if fewer than `n` blocks are free (callers check).
    pub fn pop_anon(&mut self, n: u32) {
        assert!(n <= self.free, "allocation was checked");
        self.free -= n;
        self.anon_used += n;
        let mut n = n;
        while n > 0 {
            let s = self.head;
            let seg = &mut self.segs[s as usize];
            if seg.block == NIL {
                let m = n.min(seg.count);
                if m == seg.count {
                    self.remove_seg(s);
                } else {
                    seg.count -= m;
                    seg.stamp += u64::from(m);
                }
                n -= m;
            } else {
                let b = seg.block;
                self.remove_seg(s);
                // The index entry goes stale (lazy deletion): lookups check the block still holds it.
                let blk = &mut self.blk[b as usize];
                blk.hash = 0;
                blk.seg = NIL;
                self.stats.evictions += 1;
                self.spare.push(b);
                n -= 1;
            }
        }
    }

    /// Gives one anonymous block in use an id (held by one request, no content yet), so that content
    /// can be registered in it.
    pub fn mint(&mut self) -> u32 {
        debug_assert!(self.anon_used > 0, "mint without an anonymous block");
        self.anon_used -= 1;
        let b = self.spare.pop().expect("every anonymous block has a spare id");
        self.blk[b as usize].refcount = 1;
        b
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

    /// Releases one request's blocks, last block first (so that the tail of a sequence, the least
    /// shareable content, is evicted before its prefix): first its `anon` anonymous blocks (they
    /// follow `blocks`), then one reference on each of `blocks`.
    pub fn release(&mut self, blocks: &[u32], anon: u32) {
        if anon > 0 {
            debug_assert!(anon <= self.anon_used, "release of more anonymous blocks than in use");
            self.anon_used -= anon;
            self.free += anon;
            self.push_blanks(anon);
        }
        for &b in blocks.iter().rev() {
            let blk = &mut self.blk[b as usize];
            debug_assert!(blk.refcount > 0, "release of a free block");
            blk.refcount -= 1;
            if blk.refcount != 0 {
                continue;
            }
            self.free += 1;
            if blk.hash == 0 {
                self.spare.push(b);
                self.push_blanks(1);
            } else {
                let stamp = self.next_stamp;
                self.next_stamp += 1;
                blk.stamp = stamp;
                let s = self.append_seg(Seg { prev: NIL, next: NIL, block: b, count: 1, stamp });
                self.blk[b as usize].seg = s;
            }
        }
    }

    /// Appends `n` blank entries to the free queue's tail (extending a blank tail segment).
    fn push_blanks(&mut self, n: u32) {
        let stamp = self.next_stamp;
        self.next_stamp += u64::from(n);
        if self.tail != NIL {
            let t = &mut self.segs[self.tail as usize];
            if t.block == NIL && t.stamp + u64::from(t.count) == stamp {
                t.count += n;
                return;
            }
        }
        self.append_seg(Seg { prev: NIL, next: NIL, block: NIL, count: n, stamp });
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

    /// Checks the internal invariants (free queue length = free count, a spare id per blank entry and
    /// anonymous block in use, refcounts consistent, stamps increasing, every hashed block indexed). For tests.
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
        if blanks + u64::from(self.anon_used) != self.spare.len() as u64 {
            return Err(format!(
                "{blanks} blank entries and {} anonymous blocks in use but {} spare ids",
                self.anon_used,
                self.spare.len()
            ));
        }
        if let Some(b) =
            self.spare.iter().find(|&&b| self.blk[b as usize].refcount != 0 || self.blk[b as usize].hash != 0)
        {
            return Err(format!("block {b} is spare but in use or holding content"));
        }
        let zero = self.blk.iter().filter(|b| b.refcount == 0).count() as u64;
        if zero != self.spare.len() as u64 + u64::from(self.free) - blanks {
            return Err(format!("{zero} blocks have refcount 0 but spare ids and cached free blocks differ"));
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
    use std::collections::{HashMap, HashSet, VecDeque};

    use super::*;

    /// One block with an id, as a prompt block about to get content.
    fn pop_one(kv: &mut KvCache) -> u32 {
        kv.pop_anon(1);
        kv.mint()
    }

    /// The free queue head to tail: `None` for a blank entry, the content hash otherwise.
    fn queue(kv: &KvCache) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        let mut s = kv.head;
        while s != NIL {
            let g = &kv.segs[s as usize];
            if g.block == NIL {
                out.extend(std::iter::repeat_n(None, g.count as usize));
            } else {
                out.push(Some(kv.blk[g.block as usize].hash));
            }
            s = g.next;
        }
        out
    }

    #[test]
    fn pop_claim_release_keep_counts() {
        let mut kv = KvCache::new(4, 16, true);
        let a = pop_one(&mut kv);
        let b = pop_one(&mut kv);
        assert_eq!(kv.free(), 2);
        kv.register(a, 11);
        kv.register(b, 13);
        kv.release(&[a, b], 0);
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
        let blocks: Vec<u32> = (0..3).map(|_| pop_one(&mut kv)).collect();
        for (i, &b) in blocks.iter().enumerate() {
            kv.register(b, 101 + 2 * i as u64);
        }
        kv.release(&blocks, 0); // released in reverse: last block is the oldest free
        kv.pop_anon(1);
        assert_eq!(kv.cached_prefix_len(&[101, 103, 105]), 2);
        assert_eq!(kv.stats.evictions, 1);
        kv.check_invariants().unwrap();
    }

    #[test]
    fn caching_off_never_hits() {
        let mut kv = KvCache::new(2, 16, false);
        let a = pop_one(&mut kv);
        kv.register(a, 7);
        kv.release(&[a], 0);
        assert_eq!(kv.cached_prefix_len(&[7]), 0);
    }

    /// Anonymous blocks counted instead of named leave the free queue exactly as a model that keeps
    /// every entry does: same order of blank and cached entries, same evictions, same hits, under
    /// random allocation, content, sharing and release.
    #[test]
    fn counted_blank_blocks_match_an_entry_by_entry_model() {
        let mut kv = KvCache::new(64, 16, true);
        // Model: the free queue entry by entry, references per cached hash, hashes cached.
        let mut model: VecDeque<Option<u64>> = (0..64).map(|_| None).collect();
        let mut refs: HashMap<u64, u32> = HashMap::new();
        let mut cached: HashSet<u64> = HashSet::new();
        let mut evictions = 0u64;
        let mut held: Vec<(Vec<u32>, Vec<u64>, u32)> = Vec::new();
        let (mut x, mut next_hash) = (7u64, 1u64);
        for round in 0..2000u64 {
            x = crate::rng::mix2(x, round);
            let n = (x % 9) as u32;
            if x % 3 != 0 && kv.free() > n {
                let (mut ids, mut hashes) = (Vec::new(), Vec::new());
                // Sometimes claim back a cached block first (a prefix hit).
                let pick = cached.iter().min_by_key(|&&h| crate::rng::mix2(h, x)).copied();
                if let Some(h) = pick.filter(|_| x % 4 == 0) {
                    let b = kv.lookup(h).expect("model and cache agree on what is cached");
                    kv.claim(b);
                    let r = refs.entry(h).or_insert(0);
                    if *r == 0 {
                        let at = model.iter().position(|&e| e == Some(h)).expect("free cached block queued");
                        model.remove(at);
                    }
                    *r += 1;
                    ids.push(b);
                    hashes.push(h);
                }
                kv.pop_anon(n);
                for _ in 0..n {
                    if let Some(Some(h)) = model.pop_front() {
                        cached.remove(&h);
                        refs.remove(&h);
                        evictions += 1;
                    }
                }
                // Some of the new blocks get content, as prompt blocks do.
                let with_content = (x >> 8) as u32 % (n + 1);
                for _ in 0..with_content {
                    let b = kv.mint();
                    next_hash += 2;
                    kv.register(b, next_hash);
                    refs.insert(next_hash, 1);
                    cached.insert(next_hash);
                    ids.push(b);
                    hashes.push(next_hash);
                }
                held.push((ids, hashes, n - with_content));
            } else if !held.is_empty() {
                let (ids, hashes, anon) = held.swap_remove(x as usize % held.len());
                kv.release(&ids, anon);
                model.extend(std::iter::repeat_n(None, anon as usize));
                for &h in hashes.iter().rev() {
                    let r = refs.get_mut(&h).expect("held content is referenced");
                    *r -= 1;
                    if *r == 0 {
                        model.push_back(Some(h));
                    }
                }
            }
            kv.check_invariants().unwrap();
            assert_eq!(queue(&kv), Vec::from(model.clone()), "round {round}");
            assert_eq!((kv.free() as usize, kv.stats.evictions), (model.len(), evictions));
            for &h in &cached {
                assert!(kv.lookup(h).is_some(), "hash {h} should be cached");
            }
        }
    }

    #[test]
    fn duplicate_content_keeps_first_block() {
        let mut kv = KvCache::new(2, 16, true);
        let a = pop_one(&mut kv);
        let b = pop_one(&mut kv);
        kv.register(a, 9);
        kv.register(b, 9);
        assert_eq!(kv.lookup(9), Some(a));
        kv.release(&[b], 0);
        kv.release(&[a], 0);
        kv.check_invariants().unwrap();
    }
}
