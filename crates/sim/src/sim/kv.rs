//! Paged KV cache of one vLLM replica, with automatic prefix caching.
//!
//! Blocks are physical slots of `block_size` tokens. Free blocks sit in one LRU queue: allocation pops
//! the head, release appends to the tail, and a freed block keeps its content hash until it is popped
//! again, so a later request with the same prefix can claim it back (a prefix-cache hit). This is the
//! behaviour of vLLM's `FreeKVCacheBlockQueue` + `BlockPool`.
//!
//! Representation: blocks without content ("blank") are interchangeable, so they are counted, not
//! named. The free queue stores a run of consecutive blank entries as one entry with a count, and a
//! free block with content as an entry of its own. Claiming a cached block back from the middle of
//! the queue leaves its entry in place, stale (its block is in use again, or was freed again under a
//! newer stamp); stale entries are skipped where they are met and swept out when they pile up, so a
//! claim and a release each cost O(1) with no links to mend. A request holds its leading blocks by
//! id (those with content, or shared) and the blank blocks after them as a count ("anonymous"
//! blocks: one owner, no content); an anonymous block gets an id from the spare ids only when it
//! gets content ([`KvCache::mint`]), and ids are given out on first use, so the block table grows
//! with the blocks a run touches. So allocating and releasing a blank run costs O(1), not O(blocks).
//! Which physical block holds blank tokens cannot change any result; the order of blank and cached
//! entries, which decides what gets evicted, is kept exactly.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::memo::Memo;

/// Sentinel for "no block": a queue entry of blank blocks.
const NIL: u32 = u32::MAX;

/// Stale free-queue entries allowed per live one before a release sweeps them out. A sweep visits
/// every entry, the live ones included, and reads each one's block: the more stale entries one
/// sweep removes, the fewer visits per removed entry (at 3, 4/3 of a visit; at 1, 2 visits), for a
/// queue of at most 4 entries per live one (plus [`MIN_SWEEP`]). Sweeping cannot change a result:
/// a stale entry is skipped wherever it is met.
const STALE_PER_LIVE: usize = 3;
/// Stale entries always allowed (a sweep of a short queue is not worth its setup).
const MIN_SWEEP: usize = 64;

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

/// How many of `tokens` tokens spill past the last whole block of `block_size`: `tokens %
/// block_size`, without a division for the usual power-of-two block sizes (batch planning takes
/// one per running request).
#[inline]
pub fn block_offset(tokens: u32, block_size: u32) -> u32 {
    if block_size.is_power_of_two() {
        tokens & (block_size - 1)
    } else {
        tokens % block_size
    }
}

/// Whether free queue entry `e` still stands for free blocks: a blank run always does; a block's
/// entry does while the block is free under the entry's stamp (a claim or a later release makes it
/// stale).
fn live(blk: &[Block], e: &Entry) -> bool {
    e.block == NIL || {
        let b = &blk[e.block as usize];
        b.refcount == 0 && b.stamp == e.stamp
    }
}

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
    /// For a free block with content: its queue position stamp (entry order into the free queue),
    /// which names its one live entry there.
    stamp: u64,
    /// Requests holding the block.
    refcount: u32,
    /// The block found after this one the last time a prompt's blocks were looked up through it, or
    /// [`NIL`]: a hint, checked against the hash looked for before it is used.
    next: u32,
}

/// An entry of the free queue: `count` blank blocks with stamps `stamp..stamp + count`, or one block
/// with content (`block != NIL`, `count == 1`), live while that block is free under this stamp.
#[derive(Debug, Clone, Copy)]
struct Entry {
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
    /// The free queue, head (next to pop) first, stale entries included.
    queue: VecDeque<Entry>,
    /// Stale entries in `queue`.
    stale: usize,
    /// Ids given back that no block in use or cached holds; with the ids never given out (`blk.len()`
    /// up to `total`), one per blank free block and per anonymous block in use.
    spare: Vec<u32>,
    /// Blocks of the replica; `blk` holds only the ids given out so far (untouched memory costs
    /// nothing until a run needs it: most runs use a fraction of a GPU's blocks).
    total: u32,
    /// Anonymous blocks in use (blank, one owner, no id).
    anon_used: u32,
    free: u32,
    index: HashIndex,
    next_stamp: u64,
    /// Cache counters.
    pub stats: KvStats,
    /// System prompts' leading blocks as admissions found them all cached, by prompt key.
    chains: Memo<u64, ChainBlocks>,
}

/// The blocks holding a system prompt's leading blocks, as an admission found them all cached. A
/// block loses its content only by eviction, and content cached in one block is never given to a
/// second, so until the cache evicts anything the same lookups find the same blocks.
#[derive(Debug, Clone)]
struct ChainBlocks {
    /// The cache's evictions (`KvStats::evictions`, the only way a block loses content) when they
    /// were found.
    evictions: u64,
    blocks: Vec<u32>,
    /// The hash of the chain's last block (the next block's hash is chained to it).
    last_hash: u64,
}

impl KvCache {
    /// A cache of `total_blocks` empty blocks. `caching` turns prefix caching on.
    pub fn new(total_blocks: u32, block_size: u32, caching: bool) -> Self {
        let blk = Vec::new();
        let mut kv = Self {
            block_size,
            caching,
            blk,
            queue: VecDeque::new(),
            stale: 0,
            spare: Vec::new(),
            total: total_blocks,
            anon_used: 0,
            free: total_blocks,
            index: HashIndex::default(),
            next_stamp: u64::from(total_blocks),
            stats: KvStats::default(),
            chains: Memo::default(),
        };
        if total_blocks > 0 {
            kv.queue.push_back(Entry { block: NIL, count: total_blocks, stamp: 0 });
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
        self.total
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

    /// [`KvCache::lookup`] of the block that follows `prev` (the block found for the previous hash
    /// of the same prompt, or [`None`] for its first): tries the block found after `prev` last time
    /// before the map, and remembers what it finds. A block holds a hash only while the map points
    /// to it (a hash already cached elsewhere is not given to a second block), so a hint whose block
    /// holds the hash is exactly what the map would give.
    pub fn lookup_after(&mut self, prev: Option<u32>, hash: u64) -> Option<u32> {
        if let Some(p) = prev {
            let hint = self.blk[p as usize].next;
            if hint != NIL && self.blk[hint as usize].hash == hash {
                return Some(hint);
            }
        }
        let found = self.lookup(hash);
        if let (Some(p), Some(b)) = (prev, found) {
            self.blk[p as usize].next = b;
        }
        found
    }

    /// The blocks holding the first `len` blocks of system prompt `key`, and the last one's hash, if
    /// an admission found them all cached and nothing was evicted since (so [`KvCache::lookup`]
    /// would find each of them).
    pub fn cached_chain(&self, key: u64, len: usize) -> Option<(&[u32], u64)> {
        self.chains
            .get(&key)
            .filter(|c| c.evictions == self.stats.evictions && c.blocks.len() == len)
            .map(|c| (&c.blocks[..], c.last_hash))
    }

    /// Remembers that system prompt `key`'s leading blocks are cached in `blocks` (just looked up),
    /// the last of them holding `last_hash`.
    pub fn remember_chain(&mut self, key: u64, blocks: &[u32], last_hash: u64) {
        let c = self.chains.entry(key, || ChainBlocks { evictions: 0, blocks: Vec::new(), last_hash });
        c.evictions = self.stats.evictions;
        c.blocks.clear();
        c.blocks.extend_from_slice(blocks);
        c.last_hash = last_hash;
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
        for e in self.queue.iter().filter(|e| self.live(e)) {
            if k < e.count {
                return e.stamp + u64::from(k);
            }
            k -= e.count;
        }
        u64::MAX
    }

    /// Whether `new` blank blocks can be taken after claiming the cached `blocks`: each of those
    /// that is free is one fewer left to take. Counted only when the cached ones could matter.
    pub fn fits_with(&self, new: u32, blocks: &[u32]) -> bool {
        if u64::from(new) + blocks.len() as u64 <= u64::from(self.free) {
            return true;
        }
        let free_among = blocks.iter().filter(|&&b| self.blk[b as usize].refcount == 0).count() as u32;
        new + free_among <= self.free
    }

    /// Takes a reference on each of the cached `blocks` (taking the free ones off the free queue:
    /// their entries go stale), the free ones counted once at the end.
    pub fn claim_all(&mut self, blocks: &[u32]) {
        let mut was_free = 0;
        for &b in blocks {
            let rc = &mut self.blk[b as usize].refcount;
            was_free += u32::from(*rc == 0);
            *rc += 1;
        }
        self.free -= was_free;
        self.stale += was_free as usize;
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
            let e = self.queue.front_mut().expect("the free queue holds every free block");
            if e.block == NIL {
                let m = n.min(e.count);
                if m == e.count {
                    self.queue.pop_front();
                } else {
                    e.count -= m;
                    e.stamp += u64::from(m);
                }
                n -= m;
                continue;
            }
            let e = *e;
            self.queue.pop_front();
            if !self.live(&e) {
                self.stale -= 1;
                continue;
            }
            // The index entry goes stale (lazy deletion): lookups check the block still holds it.
            self.blk[e.block as usize].hash = 0;
            self.stats.evictions += 1;
            self.spare.push(e.block);
            n -= 1;
        }
    }

    /// Gives one anonymous block in use an id (held by one request, no content yet), so that content
    /// can be registered in it.
    pub fn mint(&mut self) -> u32 {
        debug_assert!(self.anon_used > 0, "mint without an anonymous block");
        self.anon_used -= 1;
        // Ids given back first (last in, first out), then the lowest never given out.
        let b = self.spare.pop().unwrap_or_else(|| {
            debug_assert!(self.blk.len() < self.total as usize, "every anonymous block has a spare id");
            self.blk.push(Block { hash: 0, stamp: 0, refcount: 0, next: NIL });
            (self.blk.len() - 1) as u32
        });
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
        if self.index.len() > 2 * self.total as usize + 1024 {
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
                self.queue.push_back(Entry { block: b, count: 1, stamp });
            }
        }
        // Sweep stale entries out once they outnumber the live ones `STALE_PER_LIVE` times over
        // (amortised O(1) per claim).
        if self.stale > MIN_SWEEP && self.stale > (self.queue.len() - self.stale) * STALE_PER_LIVE {
            let blk = &self.blk;
            self.queue.retain(|e| live(blk, e));
            self.stale = 0;
        }
    }

    /// Appends `n` blank entries to the free queue's tail (extending a blank tail entry).
    fn push_blanks(&mut self, n: u32) {
        let stamp = self.next_stamp;
        self.next_stamp += u64::from(n);
        if let Some(t) = self.queue.back_mut() {
            if t.block == NIL && t.stamp + u64::from(t.count) == stamp {
                t.count += n;
                return;
            }
        }
        self.queue.push_back(Entry { block: NIL, count: n, stamp });
    }

    /// Whether queue entry `e` still stands for free blocks.
    fn live(&self, e: &Entry) -> bool {
        live(&self.blk, e)
    }

    /// Records a prefix-cache query of `query` tokens of which `hit` were cached.
    pub fn record_query(&mut self, query: u64, hit: u64) {
        self.stats.query_tokens += query;
        self.stats.hit_tokens += hit;
    }

    /// Checks the internal invariants (live free queue entries = free count, stale entries counted, a
    /// spare id per blank entry and anonymous block in use, refcounts consistent, stamps increasing,
    /// every hashed block indexed). For tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let (mut n, mut blanks, mut stale) = (0u64, 0u64, 0usize);
        let mut last_stamp = None::<u64>;
        for (k, e) in self.queue.iter().enumerate() {
            if e.count == 0 {
                return Err(format!("empty queue entry {k}"));
            }
            if last_stamp.is_some_and(|x| e.stamp <= x) {
                return Err(format!("stamps do not increase at queue entry {k}"));
            }
            last_stamp = Some(e.stamp + u64::from(e.count) - 1);
            if e.block == NIL {
                blanks += u64::from(e.count);
            } else if e.count != 1 {
                return Err(format!("queue entry {k} of block {} counts {} blocks", e.block, e.count));
            } else if !self.live(e) {
                stale += 1;
                continue;
            } else if self.blk[e.block as usize].hash == 0 {
                return Err(format!("queue entry {k}: free block {} without content", e.block));
            }
            n += u64::from(e.count);
        }
        if stale != self.stale {
            return Err(format!("{stale} stale queue entries but {} counted", self.stale));
        }
        if n != u64::from(self.free) {
            return Err(format!("free queue holds {n} blocks but free count is {}", self.free));
        }
        let never = u64::from(self.total) - self.blk.len() as u64;
        if blanks + u64::from(self.anon_used) != self.spare.len() as u64 + never {
            return Err(format!(
                "{blanks} blank entries and {} anonymous blocks in use but {} spare ids",
                self.anon_used,
                self.spare.len() as u64 + never
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
        for e in kv.queue.iter().filter(|e| kv.live(e)) {
            if e.block == NIL {
                out.extend(std::iter::repeat_n(None, e.count as usize));
            } else {
                out.push(Some(kv.blk[e.block as usize].hash));
            }
        }
        out
    }

    /// The spill past whole blocks is the remainder, for power-of-two block sizes and others.
    #[test]
    fn block_offset_is_the_remainder() {
        for bs in [1u32, 2, 3, 7, 16, 24, 64, 1000, 1 << 31] {
            for tokens in [0u32, 1, 15, 16, 17, 1023, 1024, 123_457, u32::MAX - 1, u32::MAX] {
                assert_eq!(block_offset(tokens, bs), tokens % bs, "{tokens} tokens, block size {bs}");
            }
        }
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
        kv.claim_all(&[blk]);
        assert_eq!(kv.free(), 3);
        kv.check_invariants().unwrap();
    }

    /// Whether blank blocks fit beside cached ones is the count of the free ones among them, however
    /// many are free or in use, and claiming them all takes exactly those off the free queue.
    #[test]
    fn fits_with_counts_the_free_cached_blocks() {
        let mut kv = KvCache::new(8, 16, true);
        let blocks: Vec<u32> = (0..6).map(|_| pop_one(&mut kv)).collect();
        for (i, &b) in blocks.iter().enumerate() {
            kv.register(b, 500 + i as u64);
        }
        // Four free (cached) blocks and two in use, two blank ones free.
        kv.release(&blocks[..4], 0);
        assert_eq!(kv.free(), 6);
        let mut checked = 0;
        for take in [&blocks[..0], &blocks[..2], &blocks[2..6], &blocks[..], &blocks[4..]] {
            let free_among = take.iter().filter(|&&b| kv.blk[b as usize].refcount == 0).count() as u32;
            for new in 0..=9 {
                assert_eq!(kv.fits_with(new, take), new + free_among <= kv.free(), "{new} new, {take:?}");
                checked += 1;
            }
            let mut copy = kv.clone();
            copy.claim_all(take);
            assert_eq!(copy.free(), kv.free() - free_among);
            copy.check_invariants().unwrap();
        }
        assert_eq!(checked, 50);
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
        // A small cache (the head soon meets stale entries) and a large one with many prefix hits
        // (stale entries pile up; `repeated_hits_leave_bounded_stale_entries` drives them to a
        // sweep).
        assert_eq!(match_model(64, 4, 1, 2000), 0);
        match_model(2048, 1, 8, 3000);
    }

    /// Drives a cache of `total` blocks and an entry-by-entry model with the same random requests
    /// (one in `claim_every` allocations starting with a prefix hit of up to `max_hits` blocks),
    /// checking they agree after every step; returns how often stale entries were swept.
    fn match_model(total: u32, claim_every: u64, max_hits: usize, rounds: u64) -> u64 {
        let mut kv = KvCache::new(total, 16, true);
        let mut sweeps = 0;
        // Model: the free queue entry by entry, references per cached hash, hashes cached.
        let mut model: VecDeque<Option<u64>> = (0..total).map(|_| None).collect();
        let mut refs: HashMap<u64, u32> = HashMap::new();
        let mut cached: HashSet<u64> = HashSet::new();
        let mut evictions = 0u64;
        let mut held: Vec<(Vec<u32>, Vec<u64>, u32)> = Vec::new();
        let (mut x, mut next_hash) = (7u64, 1u64);
        for round in 0..rounds {
            x = crate::rng::mix2(x, round);
            let n = (x % 9) as u32;
            if x % 3 != 0 && kv.free() > n {
                let (mut ids, mut hashes) = (Vec::new(), Vec::new());
                // Sometimes claim back cached blocks first (a prefix hit).
                let mut picks: Vec<u64> = cached.iter().copied().collect();
                picks.sort_unstable_by_key(|&h| crate::rng::mix2(h, x));
                let hits = if (x >> 4) % claim_every == 0 { 1 + (x >> 12) as usize % max_hits } else { 0 };
                for h in picks.into_iter().take(hits) {
                    let b = kv.lookup(h).expect("model and cache agree on what is cached");
                    kv.claim_all(&[b]);
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
                let stale = kv.stale;
                kv.release(&ids, anon);
                sweeps += u64::from(kv.stale < stale);
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
        sweeps
    }

    /// A hot prefix claimed back and released again and again leaves a stale entry each time; the
    /// sweep bounds them (at most `STALE_PER_LIVE` per live entry, or `MIN_SWEEP`) and runs.
    #[test]
    fn repeated_hits_leave_bounded_stale_entries() {
        let mut kv = KvCache::new(1024, 16, true);
        let hot: Vec<u32> = (0..8).map(|_| pop_one(&mut kv)).collect();
        for (i, &b) in hot.iter().enumerate() {
            kv.register(b, 2 * i as u64 + 1);
        }
        kv.release(&hot, 0);
        let mut sweeps = 0;
        for round in 0..2_000u64 {
            let b = kv.lookup(2 * (round % 8) + 1).expect("the hot blocks stay cached");
            kv.claim_all(&[b]);
            let stale = kv.stale;
            kv.release(&[b], 0);
            sweeps += usize::from(kv.stale < stale);
            kv.check_invariants().unwrap();
            let live = kv.queue.len() - kv.stale;
            assert!(kv.stale <= MIN_SWEEP.max(live * STALE_PER_LIVE), "round {round}: {} stale", kv.stale);
        }
        assert!(sweeps > 10, "{sweeps} sweeps");
    }

    /// Walking prompts' blocks through successor hints finds exactly what the map finds, and so do
    /// remembered chains, while blocks are evicted, reused for other content, and given content
    /// already cached elsewhere.
    #[test]
    fn hinted_lookups_match_the_map() {
        let mut kv = KvCache::new(24, 16, true);
        // Prompts of 6 blocks over 5 contents per position: prompts share leading blocks.
        let prompt = |p: u64| -> Vec<u64> {
            let mut h = 0x5eed;
            (0..6)
                .map(|i| {
                    h = crate::rng::mix2(h, (p >> (2 * i)) % 5) | 1;
                    h
                })
                .collect()
        };
        let mut held: Vec<Vec<u32>> = Vec::new();
        let (mut x, mut hinted, mut chains) = (5u64, 0, 0);
        for round in 0..4000u64 {
            x = crate::rng::mix2(x, round);
            let hashes = prompt(x >> 8);
            // The first 3 blocks as a system prompt (named by its last hash): a remembered chain
            // holds what the map finds (checked before the round's changes and after them).
            let check_chain = |kv: &KvCache, chains: &mut usize| {
                if let Some((chain, last_hash)) = kv.cached_chain(hashes[2], 3) {
                    let looked: Vec<_> = hashes[..3].iter().map(|&h| kv.lookup(h)).collect();
                    assert_eq!(looked, chain.iter().map(|&b| Some(b)).collect::<Vec<_>>(), "round {round}");
                    assert_eq!(last_hash, hashes[2]);
                    *chains += 1;
                }
            };
            check_chain(&kv, &mut chains);
            // Walk as admission does, checking every step against the map.
            let mut prev = None;
            let mut blocks = Vec::new();
            for &h in &hashes {
                let hint = prev.map(|p: u32| kv.blk[p as usize].next);
                let got = kv.lookup_after(prev, h);
                assert_eq!(got, kv.lookup(h), "round {round}");
                hinted += usize::from(got.is_some() && got == hint);
                let Some(b) = got else { break };
                blocks.push(b);
                prev = Some(b);
            }
            if blocks.len() >= 3 {
                kv.remember_chain(hashes[2], &blocks[..3], hashes[2]);
            }
            if x % 3 != 0 && kv.free() >= 6 {
                for &b in &blocks {
                    kv.claim_all(&[b]);
                }
                let fresh = 6 - blocks.len() as u32;
                kv.pop_anon(fresh);
                for &h in &hashes[blocks.len()..] {
                    let b = kv.mint();
                    kv.register(b, h);
                    blocks.push(b);
                }
                // Now and then a second copy of cached content (it stays unindexed).
                if x % 7 == 0 && kv.free() > 0 {
                    kv.pop_anon(1);
                    let b = kv.mint();
                    kv.register(b, hashes[0]);
                    blocks.push(b);
                }
                held.push(blocks);
            } else if !held.is_empty() {
                let blocks = held.swap_remove(x as usize % held.len());
                kv.release(&blocks, 0);
            }
            check_chain(&kv, &mut chains);
            kv.check_invariants().unwrap();
        }
        assert!(hinted > 100, "hints were used {hinted} times");
        assert!(chains > 100, "chains were remembered {chains} times");
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
