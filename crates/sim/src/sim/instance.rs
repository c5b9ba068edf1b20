//! One vLLM engine replica: continuous batching over a paged KV cache.
//!
//! Each step follows vLLM v1's scheduler: running requests first, in batch order (each gets its next
//! prefill chunk or one decode token out of the `max_num_batched_tokens` budget, preempting the
//! newest running request by recompute when KV blocks run out), then new requests from the head of
//! the waiting queue while slots, budget and blocks last. The step's duration comes from the latency
//! model; its tokens are produced when it ends.
//!
//! Decode fast-forward, two parts, both with results identical to stepping one request at a time (a
//! test checks it):
//! - steady decoders: the running requests at the front of the batch that decode one token in every
//!   step are held implicitly (`super::decoders`), so forming and ending a step costs O(1) in their
//!   number; the replica visits them one by one only when a step cannot be formed that way (not
//!   enough free KV blocks for their next tokens, or not enough token budget);
//! - decode runs: when nothing can be admitted and nobody finishes for a while after a step that is
//!   decode-only (or completes the prompts it computes, with nobody waiting), the next steps are
//!   decode-only steps of the same batch and fully determined, so their times are computed in one
//!   pass and their effects applied in bulk when the run ends. An enqueue cuts the run where
//!   stepping would first consider the request: at the end of the step in progress, or with async
//!   scheduling, of the step after it when the request came after that step started.

use std::collections::VecDeque;
use std::sync::Arc;

use super::decoders::SteadyDecoders;
use super::kv::{block_offset, KvCache};
use super::offload::CpuTier;
use super::request::{block_hash, LiveRequest, Phase, PrefixChains, Slab};
use crate::latency::{long_prompt_tokens, LatencyModel, RequestOverheads, StepBatch};

/// Serving knobs of a replica, as resolved from the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    /// Most requests in the running batch.
    pub max_num_seqs: u32,
    /// Token budget per step.
    pub max_num_batched_tokens: u32,
    /// Cap on one request's prefill chunk (0 = no cap).
    pub long_prefill_token_threshold: u32,
    /// Whether prompts may be split across steps.
    pub chunked_prefill: bool,
    /// Longest sequence (prompt + output) the replica accepts.
    pub max_model_len: u32,
    /// Tokens per KV block.
    pub block_size: u32,
    /// KV blocks of the replica.
    pub total_blocks: u32,
    /// Blocks a running sequence holds for its sliding-window layers (0 without them): vLLM's hybrid
    /// allocator keeps a window's worth of their KV per running sequence, freeing what slides out, so
    /// the twin takes the window's blocks at admission and returns them when the sequence stops running.
    pub window_blocks: u32,
    /// Automatic prefix caching.
    pub prefix_caching: bool,
    /// vLLM's async scheduling: the next batch is scheduled when the current step is launched, so a
    /// request queued while a step runs joins the batch after next (unless nothing else is running).
    pub async_scheduling: bool,
    /// Blocks of the CPU KV offload tier (0 = no offloading).
    pub cpu_offload_blocks: u32,
    /// Bytes of one KV block on one GPU (for offload transfer times).
    pub kv_block_bytes_per_gpu: f64,
}

/// Why a replica refuses a request outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    /// Prompt + output is longer than `max_model_len`.
    ExceedsMaxModelLen,
    /// The sequence needs more KV blocks than the replica has in total.
    ExceedsKvCapacity,
}

impl Rejection {
    /// Stable reason string for outputs.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::ExceedsMaxModelLen => "ExceedsMaxModelLen",
            Rejection::ExceedsKvCapacity => "ExceedsKvCapacity",
        }
    }
}

/// Several decode-only steps planned at once.
#[derive(Debug, Default)]
struct DecodeRun {
    /// End time of each step of the run; the first is the step formed normally.
    ends: Vec<i64>,
    /// KV blocks in use during the first step.
    used0: u32,
    /// The block size: the blocks the later steps take repeat with this period.
    period: usize,
    /// `cum[m]`: blocks the steps 1..=m after the first take between them (`cum[0] = 0`), for m up to
    /// the period, or fewer when the run cannot be longer; past the period any step's use is O(1).
    cum: Vec<u32>,
}

impl DecodeRun {
    /// Blocks the steps 1..=j after the first take between them (j within what was planned).
    fn taken_by(&self, j: usize) -> u64 {
        match self.cum.get(j) {
            Some(&c) => u64::from(c),
            None => {
                (j / self.period) as u64 * u64::from(self.cum[self.period])
                    + u64::from(self.cum[j % self.period])
            }
        }
    }

    /// KV blocks in use during step `j` of the run (0: the first), for time-weighted utilisation.
    fn used_at(&self, j: usize) -> u32 {
        // At most the cache's free blocks more (checked when planned), so it fits.
        self.used0 + self.taken_by(j) as u32
    }

    /// Most steps after the first, up to the `cap` the table was built for, whose blocks fit in `free`.
    fn steps_fitting(&self, free: u32, cap: u32) -> u32 {
        let free = u64::from(free);
        // `cum` never decreases: the last entry that still fits.
        let within = |left: u64| self.cum.partition_point(|&c| u64::from(c) <= left) - 1;
        if self.cum.len() <= self.period {
            // The table covers every step the run may have.
            return within(free) as u32;
        }
        let per_period = u64::from(self.cum[self.period]);
        if per_period == 0 {
            return cap;
        }
        let whole = free / per_period;
        let fit =
            whole.saturating_mul(self.period as u64).saturating_add(within(free - whole * per_period) as u64);
        fit.min(u64::from(cap)) as u32
    }
}

/// Time-integrated and peak figures of a replica.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InstanceStats {
    /// Engine steps run.
    pub steps: u64,
    /// Time spent stepping (µs).
    pub busy_us: i64,
    /// Σ over steps of blocks in use × step duration (block·µs).
    pub kv_block_us: f64,
    /// Most blocks in use at once.
    pub peak_used_blocks: u32,
    /// Σ over steps of running batch size × step duration (request·µs).
    pub batch_us: f64,
    /// Preemptions.
    pub preemptions: u64,
}

/// A replica.
pub struct Instance {
    /// Index in the cluster.
    pub id: u32,
    cfg: InstanceConfig,
    /// The KV cache.
    pub kv: KvCache,
    waiting: VecDeque<u32>,
    /// The front of the running batch: requests decoding in lockstep, held implicitly.
    decoders: SteadyDecoders,
    /// The rest of the running batch, in batch order (after every steady decoder).
    running: Vec<u32>,
    /// Batch position of the next admitted request.
    next_batch_seq: u64,
    latency: Arc<dyn LatencyModel>,
    overheads: RequestOverheads,
    /// Slots scheduled in the step in flight, besides the steady decoders.
    sched: Vec<u32>,
    /// Whether a step is in flight.
    busy: bool,
    step_start: i64,
    step_end: i64,
    /// Start of the step that ended last (async scheduling: requests queued after it wait one more step).
    prev_step_start: Option<i64>,
    run: DecodeRun,
    run_active: bool,
    fast_forward: bool,
    /// Earliest time something external may reach this replica; a decode run ends with the first
    /// step starting at or after it (an optimisation only: a run cut short or planned short gives
    /// the same results).
    plan_horizon: i64,
    scratch: Vec<u32>,
    residue: Vec<u32>,
    /// System-prompt hash chains of the requests seen.
    chains: PrefixChains,
    /// Statistics.
    pub stats: InstanceStats,
    /// CPU KV offload tier, if configured.
    pub cpu: Option<CpuTier>,
    /// Load time (µs) of CPU blocks admitted into the batch being formed, added to its step.
    pending_load_us: f64,
}

impl Instance {
    /// A replica with an empty cache.
    pub fn new(id: u32, cfg: InstanceConfig, latency: Arc<dyn LatencyModel>, fast_forward: bool) -> Self {
        let overheads = latency.request_overheads();
        let cpu = (cfg.cpu_offload_blocks > 0)
            .then(|| CpuTier::new(cfg.cpu_offload_blocks, cfg.kv_block_bytes_per_gpu));
        let block_size = cfg.block_size;
        Self {
            id,
            kv: KvCache::new(cfg.total_blocks, cfg.block_size, cfg.prefix_caching),
            cfg,
            waiting: VecDeque::new(),
            decoders: SteadyDecoders::new(block_size),
            running: Vec::new(),
            next_batch_seq: 0,
            latency,
            overheads,
            sched: Vec::new(),
            busy: false,
            step_start: 0,
            step_end: 0,
            prev_step_start: None,
            run: DecodeRun::default(),
            run_active: false,
            fast_forward,
            plan_horizon: i64::MAX,
            scratch: Vec::new(),
            residue: Vec::new(),
            chains: PrefixChains::default(),
            stats: InstanceStats::default(),
            cpu,
            pending_load_us: 0.0,
        }
    }

    /// Requests waiting in the queue.
    pub fn queue_len(&self) -> usize {
        self.waiting.len()
    }

    /// Requests in the running batch.
    pub fn batch_len(&self) -> usize {
        self.decoders.len() as usize + self.running.len()
    }

    /// KV blocks in use at `now` as stepping one step at a time would show them, also in the middle
    /// of a decode run (whose allocations are applied in bulk when it ends). At a step boundary the
    /// step ending then has not ended yet (step ends are processed after everything else at a time).
    pub fn kv_used_at(&self, now: i64) -> u32 {
        if self.run_active {
            let j = self.run.ends.partition_point(|&e| e < now).min(self.run.ends.len() - 1);
            self.run.used_at(j)
        } else {
            self.kv.used()
        }
    }

    /// Leading blocks of `hashes` cached in this replica's KV at `now` (as stepping would show it),
    /// stopping at the first miss.
    pub fn cached_prefix_blocks_at(&self, hashes: &[u64], now: i64) -> u32 {
        if !self.kv.caching() {
            return 0;
        }
        let popped = self.kv_used_at(now) - self.kv.used();
        if popped == 0 {
            return hashes.iter().take_while(|&&h| self.kv.lookup(h).is_some()).count() as u32;
        }
        let stamp = self.kv.nth_free_stamp(popped);
        hashes.iter().take_while(|&&h| self.kv.lookup_after_pops(h, stamp).is_some()).count() as u32
    }

    /// Whether it holds no request at all.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.batch_len() == 0 && !self.busy
    }

    /// Serving knobs.
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Whether a step is in flight.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// When the step (or decode run) in flight ends.
    pub fn wake_time(&self) -> Option<i64> {
        self.busy.then_some(self.step_end)
    }

    /// Whether the replica can ever serve a request of this size.
    pub fn admissible(&self, input: u32, output: u32) -> Result<(), Rejection> {
        let seq = u64::from(input) + u64::from(output.max(1));
        if seq > u64::from(self.cfg.max_model_len) {
            return Err(Rejection::ExceedsMaxModelLen);
        }
        // The last output token is never written to the cache.
        if self.kv.blocks_for(seq - 1) + u64::from(self.cfg.window_blocks) > u64::from(self.kv.total()) {
            return Err(Rejection::ExceedsKvCapacity);
        }
        Ok(())
    }

    /// Tells the replica when the next external event (an enqueue) may come at the earliest.
    pub fn set_plan_horizon(&mut self, t: i64) {
        self.plan_horizon = t;
    }

    /// Queues a request at `now`. If the replica is in a decode run, the run is cut where the request
    /// is first considered for a batch, as it would be when stepping one by one: at the end of the
    /// step in progress at `now`, or with async scheduling, of the step after it when the request
    /// came after the step in progress started (the batch formed when that step ends was scheduled
    /// without it, and is the run's next step anyway). Returns true when the wake-up time changed.
    pub fn enqueue(&mut self, slot: u32, now: i64, slab: &mut Slab) -> bool {
        debug_assert_eq!(slab[slot].phase, Phase::Waiting);
        self.waiting.push_back(slot);
        if self.run_active {
            let mut j = self.run.ends.partition_point(|&e| e < now);
            let started = if j == 0 { self.step_start } else { self.run.ends[j - 1] };
            if self.cfg.async_scheduling && slab[slot].enqueue_us > started {
                j += 1;
            }
            if j + 1 < self.run.ends.len() {
                self.run.ends.truncate(j + 1);
                self.step_end = self.run.ends[j];
                return true;
            }
            false
        } else if !self.busy {
            // Idle engine: nothing was scheduled ahead, the request joins the next batch.
            self.prev_step_start = None;
            self.start_step(now, slab);
            true
        } else {
            false
        }
    }

    /// Ends the step (or decode run) in flight at `now` = its end time, puts finished requests into
    /// `done`, and starts the next step if there is work.
    pub fn finish_step(&mut self, now: i64, slab: &mut Slab, done: &mut Vec<u32>) {
        debug_assert!(self.busy && now == self.step_end);
        // The step ending now started at the previous run step's end (decode run) or at step_start.
        self.prev_step_start = Some(if self.run_active && self.run.ends.len() > 1 {
            self.run.ends[self.run.ends.len() - 2]
        } else {
            self.step_start
        });
        if self.run_active {
            self.apply_run(slab);
        }
        let tok = self.overheads.per_output_token_us;
        let post = self.overheads.after_last_token_us;
        // The steady decoders come first in batch order.
        self.decoders.end_step(now + tok);
        while let Some(s) = self.decoders.pop_finished(slab, now + tok + post) {
            done.push(s);
        }
        for &s in &self.sched {
            let r = &mut slab[s];
            if r.phase != Phase::Running || r.computed < r.known_tokens() {
                continue;
            }
            r.generated += 1;
            let last = r.generated >= r.output_target();
            let t = now + tok + if last { post } else { 0 };
            if r.first_token_us.is_none() {
                r.first_token_us = Some(t);
            } else {
                r.itl_sum_us += t - r.last_token_us;
            }
            r.last_token_us = t;
            if last {
                done.push(s);
            }
        }
        if !done.is_empty() {
            for &s in done.iter() {
                let follow_up = slab[s].req.session.is_some_and(|x| !x.last_turn);
                self.release(s, follow_up, slab);
            }
            self.running.retain(|s| !slab[*s].is_done());
        }
        self.promote_decoders(slab);
        self.busy = false;
        self.sched.clear();
        if self.batch_len() > 0 || !self.waiting.is_empty() {
            self.start_step(now, slab);
        }
    }

    /// With fast-forward on, moves the leading running requests that decode between steps into the
    /// steady decoders. Not under KV pressure (fewer free blocks than running requests): there a
    /// step may preempt, so the replica keeps visiting requests one by one instead of moving them in
    /// and out of the set at every step.
    fn promote_decoders(&mut self, slab: &mut Slab) {
        if !self.fast_forward || self.kv.free() < self.batch_len() as u32 {
            return;
        }
        let mut k = 0;
        while let Some(&s) = self.running.get(k) {
            let r = &mut slab[s];
            if !(r.generated >= 1 && r.computed + 1 == r.known_tokens()) {
                break;
            }
            self.decoders.join(s, r);
            k += 1;
        }
        self.running.drain(..k);
    }

    /// Forms the next batch at `now` and schedules its end.
    fn start_step(&mut self, now: i64, slab: &mut Slab) {
        let (batch, admission_blocked) = self.form_batch(now, slab);
        self.stats.steps += 1;
        let load = std::mem::take(&mut self.pending_load_us).ceil() as i64;
        let dt = self.latency.step_time_us(&batch).max(1) + load;
        self.busy = true;
        self.step_start = now;
        self.step_end = now + dt;
        self.account(dt, self.kv.used(), self.batch_len());
        self.run_active = false;
        // A step that completes prompts (and starts no partial one) is followed by decode-only steps
        // of the same batch while no one can be admitted: with nobody waiting, a run can start with
        // it (a request queued meanwhile cuts the run, as it would any other).
        let plannable = if batch.prefill_seqs > 0 {
            self.waiting.is_empty()
                && self.running.iter().all(|&s| slab[s].computed == slab[s].known_tokens())
        } else {
            admission_blocked
        };
        if self.fast_forward && plannable && self.sched.len() == self.running.len() {
            self.plan_run(slab);
        }
    }

    /// Checks the replica's KV cache and its steady decoders' aggregates (for tests).
    pub fn check_invariants(&self, slab: &Slab) -> Result<(), String> {
        self.kv.check_invariants()?;
        self.decoders.check(slab)?;
        // Sliding-window blocks: a window's worth per running sequence, none while waiting.
        let w = self.cfg.window_blocks;
        if let Some(s) =
            self.running.iter().copied().chain(self.decoders.slots()).find(|&s| slab[s].window != w)
        {
            return Err(format!(
                "running request in slot {s} holds {} window blocks, not {w}",
                slab[s].window
            ));
        }
        if let Some(&s) = self.waiting.iter().find(|&&s| slab[s].window != 0) {
            return Err(format!("waiting request in slot {s} holds {} window blocks", slab[s].window));
        }
        Ok(())
    }

    fn account(&mut self, dt: i64, used: u32, batch: usize) {
        self.stats.busy_us += dt;
        self.stats.kv_block_us += f64::from(used) * dt as f64;
        self.stats.batch_us += batch as f64 * dt as f64;
        self.stats.peak_used_blocks = self.stats.peak_used_blocks.max(used);
    }

    /// vLLM's `schedule()`: returns the step's shape and whether admission from the waiting queue is
    /// blocked for a reason that cannot clear without a completion or an arrival.
    fn form_batch(&mut self, now: i64, slab: &mut Slab) -> (StepBatch, bool) {
        let bs = self.cfg.block_size;
        let mut budget = self.cfg.max_num_batched_tokens;
        let mut batch = StepBatch::default();
        let mut preempted = false;
        self.sched.clear();

        // Phase 1: running requests in batch order, the steady decoders first. They all decode when
        // the budget covers them and the free blocks cover their new blocks (then nobody among them
        // can be preempted); otherwise each is visited as stepping one by one would.
        let n = self.decoders.len();
        if n > 0 {
            if n <= budget && self.decoders.blocks_needed(0) <= self.kv.free() {
                batch.decode_seqs = n;
                batch.decode_context = self.decoders.context();
                budget -= n;
                self.decoders.schedule(&mut self.kv);
            } else {
                let mut members = std::mem::take(&mut self.scratch);
                self.decoders.take_all(slab, &mut members);
                self.running.splice(0..0, members.iter().copied());
                self.scratch = members;
            }
        }
        let mut i = 0;
        'running: while i < self.running.len() && budget > 0 {
            let s = self.running[i];
            // Fast path: a decode whose token fits in its last block needs no allocation.
            {
                let r = &mut slab[s];
                let before = r.computed;
                if r.generated >= 1 && before + 1 == r.known_tokens() && before < r.held_blocks() * bs {
                    r.computed = before + 1;
                    batch.decode_seqs += 1;
                    batch.decode_context += u64::from(before);
                    budget -= 1;
                    self.sched.push(s);
                    i += 1;
                    continue;
                }
            }
            let before = slab[s].computed;
            let pending = slab[s].known_tokens() - before;
            let mut chunk = pending.min(budget);
            if pending > 1 && self.cfg.long_prefill_token_threshold > 0 {
                chunk = chunk.min(self.cfg.long_prefill_token_threshold);
            }
            loop {
                let need = self.kv.blocks_for(u64::from(before + chunk)) as u32 - slab[s].held_blocks();
                if need <= self.kv.free() {
                    break;
                }
                let victim = self.running.pop().expect("running batch holds s");
                self.preempt(victim, slab);
                preempted = true;
                if victim == s {
                    break 'running;
                }
            }
            let decode = slab[s].is_decoding_before(before);
            self.grow(s, before + chunk, !decode, slab);
            add_to_batch(&mut batch, decode, before, chunk);
            budget -= chunk;
            self.sched.push(s);
            i += 1;
        }

        // Phase 2: new requests from the head of the waiting queue (skipped after a preemption).
        let mut blocked = true;
        let mut deferred = false;
        // Async scheduling: this batch was scheduled when the step that just ended was launched, so it
        // only sees requests queued by then (when requests were running; an idle engine waits for none).
        let cutoff = match self.prev_step_start {
            Some(t) if self.cfg.async_scheduling && self.batch_len() > 0 => t,
            _ => i64::MAX,
        };
        if !preempted {
            while (self.batch_len() as u32) < self.cfg.max_num_seqs && budget > 0 {
                let Some(&s) = self.waiting.front() else {
                    break;
                };
                if slab[s].enqueue_us > cutoff {
                    deferred = true;
                    break;
                }
                let known = slab[s].known_tokens();
                // At least one token must be computed, so at most (known - 1) tokens can be hits.
                let max_hit_blocks = (known - 1) / bs;
                let mut cached = 0u32;
                self.scratch.clear();
                if slab[s].remote_kv {
                    // P/D decode side: the prompt's KV arrived from a prefill replica; it needs fresh
                    // blocks, and the step computes only the position of the first output token.
                    let start = known - 1;
                    let new_blocks = self.kv.blocks_for(u64::from(known)) as u32 + self.cfg.window_blocks;
                    if new_blocks > self.kv.free() {
                        break;
                    }
                    self.waiting.pop_front();
                    let r = &mut slab[s];
                    r.remote_kv = false;
                    r.blocks.clear();
                    r.anon = 0;
                    r.registered = 0;
                    r.computed = 0;
                    r.first_scheduled_us.get_or_insert(now);
                    r.phase = Phase::Running;
                    self.kv.pop_anon(self.cfg.window_blocks);
                    r.window = self.cfg.window_blocks;
                    r.batch_seq = self.next_batch_seq;
                    self.next_batch_seq += 1;
                    self.grow(s, known, true, slab);
                    add_to_batch(&mut batch, false, start, 1);
                    budget -= 1;
                    self.running.push(s);
                    self.sched.push(s);
                    continue;
                }
                if self.kv.caching() {
                    cached = self.find_cached(&mut slab[s], max_hit_blocks);
                }
                // CPU offload tier: continue the prefix past the GPU miss; hits are loaded, not recomputed.
                let mut cpu_hits = 0u32;
                if let Some(cpu) = self.cpu.as_ref().filter(|_| self.kv.caching()) {
                    let r = &mut slab[s];
                    while cached + cpu_hits < max_hit_blocks {
                        r.ensure_hashes(cached + cpu_hits + 1, bs, &mut self.chains);
                        if !cpu.contains(r.hashes[(cached + cpu_hits) as usize]) {
                            break;
                        }
                        cpu_hits += 1;
                    }
                }
                let mut start = (cached + cpu_hits) * bs;
                // A warm prefix (cached by traffic before the run) is a hit at the first admission;
                // after a preemption its blocks are found in the cache like any others.
                if slab[s].first_scheduled_us.is_none() {
                    start = start.max(slab[s].req.warm_tokens.min(known - 1) / bs * bs);
                }
                let pending = known - start;
                let mut chunk = pending.min(budget);
                if pending > 1 && self.cfg.long_prefill_token_threshold > 0 {
                    chunk = chunk.min(self.cfg.long_prefill_token_threshold);
                }
                if !self.cfg.chunked_prefill && chunk < pending {
                    break;
                }
                let new_blocks =
                    self.kv.blocks_for(u64::from(start + chunk)) as u32 - cached + self.cfg.window_blocks;
                if !self.kv.fits_with(new_blocks, &self.scratch) {
                    break;
                }
                // Admit.
                self.waiting.pop_front();
                let r = &mut slab[s];
                self.kv.claim_all(&self.scratch);
                r.blocks.clear();
                r.blocks.extend_from_slice(&self.scratch);
                r.anon = 0;
                r.registered = cached;
                r.computed = start;
                if r.first_scheduled_us.is_none() {
                    r.first_scheduled_us = Some(now);
                    r.cached_tokens = start;
                }
                r.phase = Phase::Running;
                self.kv.pop_anon(self.cfg.window_blocks);
                r.window = self.cfg.window_blocks;
                r.batch_seq = self.next_batch_seq;
                self.next_batch_seq += 1;
                self.kv.record_query(u64::from(known), u64::from(cached * bs));
                if let Some(cpu) = self.cpu.as_mut() {
                    self.pending_load_us += cpu.load_us(cpu_hits);
                }
                self.grow(s, start + chunk, true, slab);
                add_to_batch(&mut batch, false, start, chunk);
                budget -= chunk;
                self.running.push(s);
                self.sched.push(s);
            }
            // Blocked for good only if the queue was empty or its head failed on slots/budget/blocks
            // with nothing admitted this step (admitting changes the batch shape).
            let admitted = self.sched.len() > i;
            // A deferred head is admissible at the next step: not blocked.
            blocked = !admitted && !deferred;
        }
        (batch, blocked && !preempted)
    }

    /// Finds the leading blocks of `r`'s prompt that are cached, up to `max_hit_blocks`, into
    /// `scratch`, and returns how many: a walk until the first miss, hashing only what is looked up.
    /// The system prompt's blocks are taken as the last admission found them while nothing was
    /// evicted since.
    fn find_cached(&mut self, r: &mut LiveRequest, max_hit_blocks: u32) -> u32 {
        let bs = self.cfg.block_size;
        let mut cached = 0;
        let (key, len) = (r.req.prompt.prefix_key, (r.req.prompt.prefix_len / bs).min(max_hit_blocks));
        let mut walking_chain = len > 0;
        if let Some((blocks, last_hash)) = self.kv.cached_chain(key, len as usize).filter(|_| len > 0) {
            self.scratch.extend_from_slice(blocks);
            cached = len;
            walking_chain = false;
            // The block after the chain, hashed from the chain's last hash without the prompt's
            // leading hashes: most prompts miss here and need no more.
            if cached < max_hit_blocks
                && self.kv.lookup(block_hash(last_hash, &r.req.prompt, cached, bs)).is_none()
            {
                return cached;
            }
        }
        loop {
            if walking_chain && cached == len {
                self.kv.remember_chain(key, &self.scratch, r.hashes[len as usize - 1]);
                walking_chain = false;
            }
            if cached >= max_hit_blocks {
                return cached;
            }
            r.ensure_hashes(cached + 1, bs, &mut self.chains);
            match self.kv.lookup_after(self.scratch.last().copied(), r.hashes[cached as usize]) {
                Some(b) => self.scratch.push(b),
                None => return cached,
            }
            cached += 1;
        }
    }

    /// Allocates blocks so request `s` holds `target` tokens; with `register`, blocks that became full
    /// are entered in the prefix cache. Decode steps pass `false`: blocks filled by generated tokens
    /// can only be looked up by the same conversation later, so they are registered when released
    /// (see [`Instance::release`]), which saves a hash-index update per generated block.
    fn grow(&mut self, s: u32, target: u32, register: bool, slab: &mut Slab) {
        let bs = self.cfg.block_size;
        let r = &mut slab[s];
        let need = self.kv.blocks_for(u64::from(target)) as u32;
        let held = r.held_blocks();
        if held < need {
            self.kv.pop_anon(need - held);
            r.anon += need - held;
        }
        r.computed = target;
        if register && self.kv.caching() {
            // Content no other request can hold (a unique question) is indexed only when released.
            let mut full = target / bs;
            if !r.req.prompt.body_shared {
                full = full.min(r.req.prompt.prefix_len / bs);
            }
            self.register_leading(r, full);
        }
    }

    /// Enters the request's first `full` blocks in the prefix cache (and the CPU tier), from the first
    /// one not entered yet.
    fn register_leading(&mut self, r: &mut LiveRequest, full: u32) {
        if full <= r.registered {
            return;
        }
        r.ensure_hashes(full, self.cfg.block_size, &mut self.chains);
        // Blocks that get content get an id.
        while (r.blocks.len() as u32) < full {
            r.blocks.push(self.kv.mint());
            r.anon -= 1;
        }
        for j in r.registered..full {
            self.kv.register(r.blocks[j as usize], r.hashes[j as usize]);
            if let Some(cpu) = self.cpu.as_mut() {
                cpu.store(r.hashes[j as usize]);
            }
        }
        r.registered = full;
    }

    /// Preemption by recompute: frees the request's blocks (their content stays cached) and puts it at
    /// the head of the waiting queue; tokens already streamed stay streamed.
    fn preempt(&mut self, s: u32, slab: &mut Slab) {
        self.release(s, true, slab);
        let r = &mut slab[s];
        r.registered = 0;
        r.computed = 0;
        r.preemptions += 1;
        r.phase = Phase::Waiting;
        self.waiting.push_front(s);
        self.stats.preemptions += 1;
    }

    /// Returns a request's blocks to the free queue. With `keep_content`, full blocks not yet in the
    /// prefix cache are registered first, so a recompute or the conversation's next turn can hit them.
    fn release(&mut self, s: u32, keep_content: bool, slab: &mut Slab) {
        let bs = self.cfg.block_size;
        let r = &mut slab[s];
        if keep_content && self.kv.caching() {
            let full = r.computed / bs;
            self.register_leading(r, full);
        }
        self.kv.release(&r.blocks, r.anon);
        r.blocks.clear();
        r.anon = 0;
        self.kv.release(&[], r.window);
        r.window = 0;
    }

    /// After a step formed with admission blocked (see `start_step`), plans the following identical
    /// decode steps up to the first one in which a request finishes or a block allocation could fail.
    fn plan_run(&mut self, slab: &Slab) {
        let n = self.batch_len() as u32;
        if n == 0 {
            return;
        }
        let bs = self.cfg.block_size;
        // One pass over the batch for the steps until the first completion (the step formed now
        // counts as one), the tokens in KV and the blocks the later steps take.
        // due[i] = requests needing a new block at the start of later step i + 1: those whose token
        // count after the formed step is ≡ -i (mod block size); it repeats every block size steps.
        let due = &mut self.residue;
        due.clear();
        due.resize(bs as usize, 0);
        let mut k_max = self.decoders.steps_to_first_finish();
        let mut running_context = 0u64;
        for &s in &self.running {
            let r = &slab[s];
            k_max = k_max.min(r.output_target() - r.generated);
            running_context += u64::from(r.computed);
            let m = block_offset(r.computed, bs);
            due[if m == 0 { 0 } else { (bs - m) as usize }] += 1;
        }
        if k_max < 2 {
            return;
        }
        // Blocks each later step j = 1, 2, .. takes: due[j - 1] plus the steady decoders' need; both
        // repeat every block size steps. A table as long as the run may be, up to one period.
        let cap = k_max - 1;
        let len = (bs as usize).min(cap as usize);
        let run = &mut self.run;
        run.period = bs as usize;
        run.cum.clear();
        run.cum.resize(len + 1, 0);
        let mut total = 0u32;
        for ((c, &d), decoders) in
            run.cum[1..].iter_mut().zip(&due[..len]).zip(self.decoders.blocks_needed_from(1))
        {
            total += d + decoders;
            *c = total;
        }
        run.used0 = self.kv.used();
        run.ends.clear();
        run.ends.push(self.step_end);
        let steps = run.steps_fitting(self.kv.free(), cap) as usize;
        // Tokens in KV before the first later step: every member's after the formed one.
        let decoders = if self.decoders.in_step() {
            self.decoders.context() + u64::from(self.decoders.len())
        } else {
            0
        };
        let context = decoders + running_context;
        // A request queued at the horizon or later is considered at the end of the step in progress
        // then at the earliest: the first step starting at or after the horizon is part of the run
        // (an enqueue into that step cuts the run after it).
        self.latency.decode_run(n, context, self.step_end, self.plan_horizon, steps, &mut run.ends);
        if self.run.ends.len() > 1 {
            self.run_active = true;
            self.step_end = self.run.ends[self.run.ends.len() - 1];
        }
    }

    /// Applies the effects of a decode run's steps after the first (which `finish_step` handles as a
    /// normal step): allocations in batch order per step, statistics, token times.
    fn apply_run(&mut self, slab: &mut Slab) {
        self.run_active = false;
        let extra = self.run.ends.len() - 1;
        if extra == 0 {
            return;
        }
        let tok = self.overheads.per_output_token_us;
        // Token times: every request emits one token at the end of each step; the first step's
        // token is emitted by `finish_step` (with the final step's end as `now`), so here we emit the
        // tokens of steps 0..extra, i.e. `extra` tokens, the last at the end of step extra-1.
        let last_bulk_end = self.run.ends[extra - 1];
        for j in 1..=extra {
            let dt = self.run.ends[j] - self.run.ends[j - 1];
            self.stats.steps += 1;
            self.account(dt, self.run.used_at(j), self.batch_len());
        }
        self.decoders.advance_run(extra as u64, &mut self.kv, last_bulk_end + tok);
        // Each request takes all its blocks at once (blank, counted).
        for idx in 0..self.running.len() {
            let s = self.running[idx];
            let target = slab[s].computed + extra as u32;
            self.grow(s, target, false, slab);
        }
        debug_assert_eq!(self.kv.used(), self.run.used_at(extra));
        let step0_end = self.run.ends[0];
        for &s in &self.running {
            let r = &mut slab[s];
            // Tokens at the ends of steps 0..extra-1 (all but the run's last step); a request whose
            // prompt completed in step 0 got its first token then.
            let first_t = step0_end + tok;
            let last_t = last_bulk_end + tok;
            let prev = if r.generated == 0 {
                r.first_token_us = Some(first_t);
                first_t
            } else {
                r.last_token_us
            };
            r.generated += extra as u32;
            r.itl_sum_us += last_t - prev;
            debug_assert!(first_t <= last_t);
            r.last_token_us = last_t;
        }
    }
}

impl LiveRequest {
    /// Whether a chunk starting at `before` computed tokens is a single-token decode.
    fn is_decoding_before(&self, before: u32) -> bool {
        self.generated >= 1 && before + 1 == self.known_tokens()
    }
}

/// Adds one request's share of the step to the batch shape.
fn add_to_batch(batch: &mut StepBatch, decode: bool, before: u32, chunk: u32) {
    if decode {
        batch.decode_seqs += 1;
        batch.decode_context += u64::from(before);
    } else {
        batch.prefill_seqs += 1;
        batch.prefill_tokens += u64::from(chunk);
        let t = f64::from(chunk);
        batch.prefill_attention += t * (f64::from(before) + (t + 1.0) / 2.0);
        batch.long_prompt_tokens += u64::from(long_prompt_tokens(before, chunk));
    }
}

#[cfg(test)]
mod tests {
    use super::DecodeRun;

    /// The run's block table, however short or long the run, gives every step's blocks and the
    /// longest run that fits as adding up each step's need one by one does.
    #[test]
    fn decode_run_blocks_match_a_step_by_step_sum() {
        let mut x = 0x5eedu64;
        let mut checked = 0;
        for period in [1usize, 2, 3, 16, 64] {
            for case in 0..200u64 {
                x = crate::rng::mix2(x, case);
                // One period of needs, some all zero; a cap below, at and above the period.
                let needs: Vec<u32> = (0..period)
                    .map(|k| if x % 5 == 0 { 0 } else { (crate::rng::mix2(x, k as u64) % 4) as u32 })
                    .collect();
                let cap = [1, period as u32, 3 * period as u32 + 1, u32::MAX][(x >> 8) as usize % 4];
                let free = ((x >> 16) % 200) as u32;
                let mut run = DecodeRun { ends: Vec::new(), used0: 7, period, cum: vec![0] };
                for &n in needs.iter().take(period.min(cap as usize)) {
                    let last = *run.cum.last().unwrap();
                    run.cum.push(last + n);
                }
                let (mut taken, mut fit) = (0u64, 0u32);
                for j in 1..=(4 * period + 3) {
                    taken += u64::from(needs[(j - 1) % period]);
                    if j as u32 <= cap && taken <= u64::from(free) && fit + 1 == j as u32 {
                        fit = j as u32;
                    }
                    if j as u32 <= cap {
                        assert_eq!(
                            run.used_at(j),
                            7 + taken as u32,
                            "period {period}, case {case}, step {j}"
                        );
                    }
                }
                let got = run.steps_fitting(free, cap);
                if fit < 4 * period as u32 + 3 {
                    assert_eq!(
                        got, fit,
                        "period {period}, case {case}: cap {cap}, free {free}, needs {needs:?}"
                    );
                } else {
                    assert!(got >= fit, "period {period}, case {case}");
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 1000);
    }
}
