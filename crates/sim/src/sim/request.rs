//! A request's life inside a replica: progress, KV blocks, token timestamps.

use super::memo::Memo;
use crate::rng::mix2;
use crate::workload::{PromptLayout, Request};

/// Content hash of block `index` (tokens `[index*bs, (index+1)*bs)`) of a sequence laid out as
/// `layout`, chained on the previous block's hash: equal hashes mean equal token prefixes. Never 0.
pub fn block_hash(prev: u64, layout: &PromptLayout, index: u32, block_size: u32) -> u64 {
    let start = u64::from(index) * u64::from(block_size);
    let end = start + u64::from(block_size);
    let plen = u64::from(layout.prefix_len);
    let content = if end <= plen {
        mix2(layout.prefix_key, u64::from(index))
    } else if start >= plen {
        mix2(layout.body_key, start - plen)
    } else {
        mix2(mix2(layout.prefix_key, plen), mix2(layout.body_key, u64::from(index)))
    };
    mix2(prev, content) | 1
}

/// Block hashes of shared system prompts, computed once per (prompt, block size): every request of
/// a prefix group starts with the same chain (a block wholly inside the system prompt hashes the
/// same whatever follows it), so its leading hashes are copied instead of recomputed.
#[derive(Debug, Default)]
pub struct PrefixChains {
    chains: Memo<(u64, u32), Vec<u64>>,
}

impl PrefixChains {
    /// Extends `hashes`, the leading block hashes of a sequence laid out as `layout`, to at least its
    /// first `n`; when it reaches into the system prompt it takes the prompt's whole chain, up to
    /// `limit` hashes at most.
    pub fn extend(&mut self, layout: &PromptLayout, bs: u32, hashes: &mut Vec<u64>, n: u32, limit: u32) {
        let have = hashes.len() as u32;
        if have >= n {
            return;
        }
        let shared = (layout.prefix_len / bs).min(limit.max(n));
        if have < shared {
            let chain = self.chains.entry((layout.prefix_key, bs), Vec::new);
            extend_chain(chain, layout, bs, shared);
            hashes.extend_from_slice(&chain[have as usize..shared as usize]);
        }
        extend_chain(hashes, layout, bs, n);
    }
}

/// Extends `hashes` (a chain's leading block hashes) to its first `n` by hashing.
fn extend_chain(hashes: &mut Vec<u64>, layout: &PromptLayout, bs: u32, n: u32) {
    while (hashes.len() as u32) < n {
        let i = hashes.len() as u32;
        let prev = hashes.last().copied().unwrap_or(0x5eed);
        hashes.push(block_hash(prev, layout, i, bs));
    }
}

/// Where a live request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// In a replica's waiting queue (new, or preempted and waiting to recompute).
    Waiting,
    /// In a replica's running batch.
    Running,
}

/// A request admitted to a replica, from enqueue to completion. Fields the per-step scheduler loop
/// reads and writes come first, in declaration order (`repr(C)`), so that loop touches one cache line.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct LiveRequest {
    /// Tokens whose KV is computed or being computed in the current step (prefix hits included).
    pub computed: u32,
    /// Output tokens sampled so far (kept across preemption: they were already streamed).
    pub generated: u32,
    /// Position in its replica's running batch: admissions are numbered in order, and the batch is
    /// always sorted by it (new requests join at the back, preemption takes from the back).
    pub batch_seq: u64,
    /// As a steady decoder: the decoders' tick its progress fields were last brought up to date at
    /// (see `sim::decoders`).
    pub synced_tick: u64,
    /// Prompt tokens (copy of `req.input_tokens`, kept here for the hot loop).
    input_tokens: u32,
    /// Output tokens to produce (copy of `req.output_tokens`, at least 1).
    output_target: u32,
    /// Waiting or running.
    pub phase: Phase,
    /// P/D: its prompt's KV was computed on a prefill replica and transferred here.
    pub remote_kv: bool,
    /// KV blocks held by id, in sequence order: the leading ones (with content, or shared).
    pub blocks: Vec<u32>,
    /// Blank KV blocks held after `blocks`, counted (see `sim::kv`).
    pub anon: u32,
    /// Blank blocks held for the sliding-window layers while running, counted (see
    /// `InstanceConfig::window_blocks`).
    pub window: u32,
    /// When its latest token reached the client (µs).
    pub last_token_us: i64,
    /// Sum of its inter-token gaps (µs).
    pub itl_sum_us: i64,
    /// When its first token reached the client (µs).
    pub first_token_us: Option<i64>,
    /// The request as the workload generated it.
    pub req: Request,
    /// Replica it was routed to.
    pub instance: u32,
    /// Chained hashes of the full blocks of the known tokens, computed lazily and kept across preemption.
    pub hashes: Vec<u64>,
    /// Leading blocks already registered in the prefix cache.
    pub registered: u32,
    /// When the replica queued it (µs).
    pub enqueue_us: i64,
    /// When it was first scheduled (µs).
    pub first_scheduled_us: Option<i64>,
    /// Times it was preempted.
    pub preemptions: u32,
    /// Prompt tokens served from the prefix cache at its first admission.
    pub cached_tokens: u32,
    /// P/D: this is the prefill part of a disaggregated request; (decode replica, real output length).
    pub pd_decode: Option<(u32, u32)>,
}

impl LiveRequest {
    /// A request just queued at replica `instance` at time `now`.
    pub fn new(req: Request, instance: u32, now: i64) -> Self {
        Self {
            input_tokens: req.input_tokens,
            output_target: req.output_tokens.max(1),
            req,
            instance,
            phase: Phase::Waiting,
            computed: 0,
            generated: 0,
            batch_seq: 0,
            synced_tick: 0,
            blocks: Vec::new(),
            anon: 0,
            window: 0,
            hashes: Vec::new(),
            registered: 0,
            enqueue_us: now,
            first_scheduled_us: None,
            first_token_us: None,
            last_token_us: now,
            itl_sum_us: 0,
            preemptions: 0,
            cached_tokens: 0,
            remote_kv: false,
            pd_decode: None,
        }
    }

    /// KV blocks held: by id and counted.
    pub fn held_blocks(&self) -> u32 {
        self.blocks.len() as u32 + self.anon
    }

    /// Tokens known so far: the prompt plus the output sampled so far.
    pub fn known_tokens(&self) -> u32 {
        self.input_tokens + self.generated
    }

    /// Output tokens to produce (at least 1).
    pub fn output_target(&self) -> u32 {
        self.output_target
    }

    /// Whether all the output has been produced.
    pub fn is_done(&self) -> bool {
        self.generated >= self.output_target
    }

    /// Whether the next step for it is a single-token decode.
    pub fn is_decoding(&self) -> bool {
        self.generated >= 1 && self.computed + 1 == self.known_tokens()
    }

    /// Makes sure the hashes of the first `n` full blocks are computed.
    pub fn ensure_hashes(&mut self, n: u32, block_size: u32, chains: &mut PrefixChains) {
        if (self.hashes.len() as u32) < n {
            chains.extend(&self.req.prompt, block_size, &mut self.hashes, n, self.input_tokens / block_size);
        }
    }
}

/// Slab of live requests, indexed by a stable slot number (no per-event allocation or hashing).
#[derive(Debug, Default)]
pub struct Slab {
    slots: Vec<Option<LiveRequest>>,
    free: Vec<u32>,
    live: usize,
    /// Emptied block and hash vectors of finished requests, reused by new ones (no allocation per
    /// request in steady state).
    spare: Vec<(Vec<u32>, Vec<u64>)>,
}

impl Slab {
    /// Stores the request `make` builds and returns its slot; the slot is chosen first, so the request
    /// can be built in place rather than moved in.
    #[inline]
    pub fn insert_with(&mut self, make: impl FnOnce() -> LiveRequest) -> u32 {
        self.live += 1;
        let s = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let r = self.slots[s as usize].insert(make());
        if r.blocks.capacity() == 0 && r.hashes.capacity() == 0 {
            if let Some((b, h)) = self.spare.pop() {
                r.blocks = b;
                r.hashes = h;
            }
        }
        s
    }

    /// Removes and returns the request in `slot`.
    pub fn remove(&mut self, slot: u32) -> LiveRequest {
        let r = self.slots[slot as usize].take().expect("slab slot is empty");
        self.free.push(slot);
        self.live -= 1;
        r
    }

    /// Removes a finished request in place (no move out of its slot), keeping its vectors for reuse.
    pub fn release(&mut self, slot: u32) {
        let r = self.slots[slot as usize].as_mut().expect("slab slot is empty");
        let (mut b, mut h) = (std::mem::take(&mut r.blocks), std::mem::take(&mut r.hashes));
        self.slots[slot as usize] = None;
        self.free.push(slot);
        self.live -= 1;
        if self.spare.len() < 1024 && (b.capacity() > 0 || h.capacity() > 0) {
            b.clear();
            h.clear();
            self.spare.push((b, h));
        }
    }

    /// Requests currently stored.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no request is stored.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = LiveRequest;
    fn index(&self, slot: u32) -> &LiveRequest {
        self.slots[slot as usize].as_ref().expect("slab slot is empty")
    }
}

impl std::ops::IndexMut<u32> for Slab {
    fn index_mut(&mut self, slot: u32) -> &mut LiveRequest {
        self.slots[slot as usize].as_mut().expect("slab slot is empty")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(prefix_key: u64, prefix_len: u32, body_key: u64) -> PromptLayout {
        PromptLayout { prefix_key, prefix_len, body_key, body_shared: false }
    }

    #[test]
    fn shared_prefix_blocks_hash_equal_and_bodies_differ() {
        let a = layout(1, 64, 100);
        let b = layout(1, 64, 200);
        let chain = |l: &PromptLayout| {
            let mut h = 0x5eed;
            (0..8)
                .map(|i| {
                    h = block_hash(h, l, i, 16);
                    h
                })
                .collect::<Vec<_>>()
        };
        let (ha, hb) = (chain(&a), chain(&b));
        assert_eq!(ha[..4], hb[..4]);
        assert!(ha[4..].iter().zip(&hb[4..]).all(|(x, y)| x != y));
        assert!(ha.iter().all(|h| *h != 0));
    }

    #[test]
    fn straddling_block_depends_on_both_streams() {
        let a = layout(1, 20, 100);
        let b = layout(1, 20, 200);
        assert_eq!(block_hash(0, &a, 0, 16), block_hash(0, &b, 0, 16));
        assert_ne!(block_hash(9, &a, 1, 16), block_hash(9, &b, 1, 16));
    }
}
