//! The steady decoders of one replica: running requests that produce one token in every step, held
//! implicitly so that a step costs O(1) in their number instead of a visit to each.
//!
//! Between steps a decoding request has computed every known token but the last sampled one, so its
//! progress is one counter: after `d` more steps it has `d` more tokens generated and `d` more
//! computed. The set keeps a tick (steps all its members decoded in) and each member remembers the
//! tick its own fields were last brought up to date at (`LiveRequest::synced_tick`); its real state
//! is derived when it is needed (when it finishes, or when the replica falls back to visiting every
//! request). Aggregates give the step shape without visiting anyone:
//! - the decode context (Σ tokens in KV before the step) is `ctx_base + len × tick`;
//! - a member needs a new KV block in the step formed at tick `T` exactly when its computed tokens
//!   before the step are a multiple of the block size, i.e. when `T ≡ key (mod block size)` for a
//!   key fixed when it joins, so `need[T mod block size]` members need one;
//! - the first member to finish is the top of a min-heap of finish ticks.
//!
//! Blocks for members are popped from the KV free queue when their step is formed (so free and used
//! counts, evictions and every prefix lookup are exactly as when visiting each request), and handed
//! to the members from a pool when they are brought up to date; they are blank, so both are counts.
//!
//! Inter-token latencies telescope (their sum is the last token time minus the first), so a member
//! brought up to date after `d` steps adds `last - its previous last token time` to its ITL sum.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::kv::KvCache;
use super::request::{LiveRequest, Slab};

/// The implicit set of steady decoders (see the module docs). Members precede every other running
/// request of the replica in batch order, and decode in every step formed while they are members.
#[derive(Debug)]
pub(super) struct SteadyDecoders {
    block_size: u64,
    /// Members.
    len: u32,
    /// Steps every member decoded in, since the replica started.
    tick: u64,
    /// `tick % block_size`, kept as the tick advances (the hot paths divide by nothing).
    phase: usize,
    /// Σ over members of (computed tokens - tick) when they joined.
    ctx_base: i64,
    /// `need[k]`: members needing a new block in the step formed at a tick ≡ k (mod block size).
    need: Vec<u32>,
    /// (finish tick, batch position, slot) of every member.
    finish: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// Blocks popped for members and not yet handed to them (blank, counted).
    pool: u64,
    /// Time of the latest token every member got (µs).
    last_token_us: i64,
    /// Whether the members are in the step in flight.
    in_step: bool,
    /// Scratch for bringing every member up to date.
    scratch: Vec<(u64, u32)>,
}

impl SteadyDecoders {
    /// An empty set for a replica with `block_size`-token KV blocks.
    pub(super) fn new(block_size: u32) -> Self {
        Self {
            block_size: u64::from(block_size.max(1)),
            len: 0,
            tick: 0,
            phase: 0,
            ctx_base: 0,
            need: vec![0; block_size.max(1) as usize],
            finish: BinaryHeap::new(),
            pool: 0,
            last_token_us: 0,
            in_step: false,
            scratch: Vec::new(),
        }
    }

    /// Members.
    pub(super) fn len(&self) -> u32 {
        self.len
    }

    /// Whether the members are in the step in flight (they all decode in it).
    pub(super) fn in_step(&self) -> bool {
        self.in_step
    }

    /// Whether it has no member.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn key(&self, tick: u64, computed: u32) -> usize {
        let bs = self.block_size;
        ((tick % bs + bs - u64::from(computed) % bs) % bs) as usize
    }

    /// Members needing a new KV block in the step formed `ahead` steps after the next one.
    pub(super) fn blocks_needed(&self, ahead: u64) -> u32 {
        if ahead == 0 {
            return self.need[self.phase];
        }
        self.need[((self.tick + ahead) % self.block_size) as usize]
    }

    /// Members needing a new KV block in each step formed from `ahead` steps after the next one on,
    /// one value per step (for a planning loop; the same values as [`SteadyDecoders::blocks_needed`]
    /// at `ahead`, `ahead + 1`, ...).
    pub(super) fn blocks_needed_from(&self, ahead: u64) -> NeedCycle<'_> {
        NeedCycle { need: &self.need, at: ((self.tick + ahead) % self.block_size) as usize }
    }

    /// Σ over members of their tokens in KV before the next step.
    pub(super) fn context(&self) -> u64 {
        (self.ctx_base + i64::from(self.len) * self.tick as i64) as u64
    }

    /// Steps until the first member finishes, counting the next step as one (`u32::MAX` when empty).
    pub(super) fn steps_to_first_finish(&self) -> u32 {
        self.finish.peek().map_or(u32::MAX, |Reverse((f, ..))| (f - self.tick) as u32)
    }

    /// Makes a running request that decodes between steps (generated ≥ 1, all known tokens but the
    /// last computed) a member. It must come after every member in batch order.
    pub(super) fn join(&mut self, slot: u32, r: &mut LiveRequest) {
        debug_assert!(r.generated >= 1 && r.computed + 1 == r.known_tokens() && !r.is_done());
        debug_assert!(!self.in_step, "members join between steps");
        r.synced_tick = self.tick;
        let bs = self.block_size as usize;
        let key = (self.phase + bs - r.computed as usize % bs) % bs;
        debug_assert_eq!(key, self.key(self.tick, r.computed));
        self.need[key] += 1;
        self.ctx_base += i64::from(r.computed) - self.tick as i64;
        self.len += 1;
        let finish = self.tick + u64::from(r.output_target() - r.generated);
        self.finish.push(Reverse((finish, r.batch_seq, slot)));
    }

    /// Schedules every member for one decode token in the step being formed: pops the blocks the
    /// step needs. The caller checked that enough blocks are free.
    pub(super) fn schedule(&mut self, kv: &mut KvCache) {
        debug_assert!(!self.in_step);
        let need = self.blocks_needed(0);
        kv.pop_anon(need);
        self.pool += u64::from(need);
        self.in_step = !self.is_empty();
    }

    /// The scheduled step and `extra` further decode-only steps have been planned as one run; applies
    /// the further steps' allocations and the tokens of every step but the last, whose token time was
    /// `token_us`.
    pub(super) fn advance_run(&mut self, extra: u64, kv: &mut KvCache, token_us: i64) {
        if !self.in_step {
            return;
        }
        let need: u32 = self.blocks_needed_from(1).take(extra as usize).sum();
        kv.pop_anon(need);
        self.pool += u64::from(need);
        self.tick += extra;
        self.phase = (self.tick % self.block_size) as usize;
        self.last_token_us = token_us;
    }

    /// Ends the step in flight: every member got a token at `token_us`. Members that finished are then
    /// taken out with [`SteadyDecoders::pop_finished`].
    pub(super) fn end_step(&mut self, token_us: i64) {
        if self.in_step {
            self.in_step = false;
            self.tick += 1;
            self.phase += 1;
            if self.phase == self.need.len() {
                self.phase = 0;
            }
            self.last_token_us = token_us;
        }
    }

    /// Takes out the next member (in batch order) that produced its last token in the step that just
    /// ended, brought up to date with that token at `final_token_us`.
    pub(super) fn pop_finished(&mut self, slab: &mut Slab, final_token_us: i64) -> Option<u32> {
        let &Reverse((f, _, slot)) = self.finish.peek()?;
        if f > self.tick {
            return None;
        }
        self.finish.pop();
        self.leave(slot, slab, final_token_us);
        Some(slot)
    }

    /// Takes every member out, brought up to date, and returns their slots in batch order (in
    /// `out`, which is cleared first).
    pub(super) fn take_all(&mut self, slab: &mut Slab, out: &mut Vec<u32>) {
        debug_assert!(!self.in_step);
        out.clear();
        self.scratch.clear();
        self.scratch.extend(self.finish.drain().map(|Reverse((_, seq, slot))| (seq, slot)));
        self.scratch.sort_unstable();
        let members = std::mem::take(&mut self.scratch);
        let last = self.last_token_us;
        for &(_, slot) in &members {
            self.leave(slot, slab, last);
            out.push(slot);
        }
        self.scratch = members;
        debug_assert!(self.len == 0 && self.pool == 0 && self.ctx_base == 0);
    }

    /// Brings member `slot` up to date (its latest token at `last_token_us` if it got any since it
    /// was last synced), hands it its blocks and removes it from the aggregates.
    fn leave(&mut self, slot: u32, slab: &mut Slab, last_token_us: i64) {
        let bs = self.block_size;
        let r = &mut slab[slot];
        let synced = r.synced_tick;
        let key = self.key(synced, r.computed);
        self.need[key] -= 1;
        self.ctx_base -= i64::from(r.computed) - synced as i64;
        self.len -= 1;
        let steps = (self.tick - synced) as u32;
        if steps > 0 {
            r.generated += steps;
            r.computed += steps;
            r.itl_sum_us += last_token_us - r.last_token_us;
            r.last_token_us = last_token_us;
            r.synced_tick = self.tick;
        }
        let take = u64::from(r.computed).div_ceil(bs) - u64::from(r.held_blocks());
        self.pool -= take;
        r.anon += take as u32;
    }

    /// Slab slots of the members (in no particular order).
    pub(super) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.finish.iter().map(|Reverse((_, _, slot))| *slot)
    }

    /// Checks the aggregates against the members' own state (for tests): member count, context,
    /// block needs and the pool size.
    pub(super) fn check(&self, slab: &Slab) -> Result<(), String> {
        if self.finish.len() != self.len as usize {
            return Err(format!("{} steady decoders but {} finish entries", self.len, self.finish.len()));
        }
        let (mut ctx, mut pool) = (0u64, 0u64);
        let mut need = vec![0u32; self.need.len()];
        for Reverse((f, _, slot)) in &self.finish {
            let r = &slab[*slot];
            let steps = self.tick - r.synced_tick;
            if r.synced_tick + u64::from(r.output_target() - r.generated) != *f {
                return Err(format!("steady decoder in slot {slot} has a wrong finish tick"));
            }
            ctx += u64::from(r.computed) + steps;
            need[self.key(r.synced_tick, r.computed)] += 1;
            let computed = u64::from(r.computed) + steps + u64::from(self.in_step);
            pool += computed.div_ceil(self.block_size) - u64::from(r.held_blocks());
        }
        if ctx != self.context() {
            return Err(format!("steady decoders' context {} but members hold {ctx}", self.context()));
        }
        if need != self.need {
            return Err("steady decoders' block-need counts disagree with their members".into());
        }
        if pool != self.pool {
            return Err(format!("{} pooled blocks but members are owed {pool}", self.pool));
        }
        Ok(())
    }
}

/// The block needs of the steady decoders in consecutive steps (see
/// [`SteadyDecoders::blocks_needed_from`]): a walk around `need` without a division per step.
pub(super) struct NeedCycle<'a> {
    need: &'a [u32],
    at: usize,
}

impl Iterator for NeedCycle<'_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        let v = self.need[self.at];
        self.at += 1;
        if self.at == self.need.len() {
            self.at = 0;
        }
        Some(v)
    }
}
