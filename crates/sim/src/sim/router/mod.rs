//! The gateway's endpoint picker: plain policies, or the llm-d plugin pipeline (filters → weighted
//! scorers → picker per scheduling profile, a profile handler for P/D).
//!
//! Signals and their freshness: the router's own in-flight counts, the approximate prefix index and
//! session affinities are exact (updated at each decision and completion). Replica metrics (queue
//! length, running batch, KV utilisation) come from a per-replica snapshot re-read when a decision
//! needs it and the copy is at least `refresh_interval_us` old (a demand-driven scrape; 0 = live).
//! The precise prefix scorer reads the replicas' real KV cache (KV events are near-live).

pub mod pipeline;
pub mod prefix;

use std::collections::HashMap;

use rand::Rng;

pub use pipeline::{
    Decider, Detector, EppConfig, Filter, FlowControl, Handler, Picker, PluginNote, PrefixIndexConfig,
    Profile, Scorer, GATEWAY_US_PER_PROMPT_TOKEN,
};
use prefix::{ApproxIndex, SLOTS};

use super::pool::{PoolConfig, Replica, Role};
use super::request::PrefixChains;
use crate::rng::SimRng;
use crate::workload::Request;

/// A pool load signal the router reports (what probabilistic admission at the gateway reacts to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadSignal {
    /// The saturation detector's pool saturation (1.0 = at the limit).
    #[default]
    Saturation,
    /// Mean waiting requests per replica, as the router's metric snapshots show them.
    QueueDepth,
    /// Mean KV cache utilisation (0..1) per replica, from the same snapshots.
    KvUtilization,
    /// Router-owned in-flight prompt tokens per replica (exact, no staleness).
    InFlightTokens,
}

/// How the gateway picks replicas.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterPolicy {
    /// Cycle through replicas.
    RoundRobin,
    /// Fewest requests in flight (router's own exact count), ties broken at random.
    LeastRequests,
    /// A routable replica drawn uniformly per request (a Kubernetes Service's kube-proxy, one connection
    /// per request), from the router's seeded stream.
    Random,
    /// The endpoint picker's plugin pipeline.
    EndpointPicker(Box<EppConfig>),
}

/// Router settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    /// The policy.
    pub policy: RouterPolicy,
    /// Metric snapshot refresh interval (µs); 0 = live.
    pub refresh_interval_us: i64,
}

#[derive(Debug, Clone, Copy)]
struct Snap {
    at: i64,
    queue: u32,
    running: u32,
    kv: f64,
}

impl Snap {
    /// Re-reads replica `r`'s metrics at `now` when the copy is at least `interval` old (0 = always).
    fn refresh(&mut self, interval: i64, now: i64, r: &Replica) {
        if interval == 0 || now - self.at >= interval {
            self.read(now, r);
        }
    }

    /// Reads replica `r`'s metrics at `now` (out of line: most decisions find every copy fresh).
    #[inline(never)]
    fn read(&mut self, now: i64, r: &Replica) {
        let inst = &r.inst;
        self.at = now;
        self.queue = inst.queue_len() as u32;
        self.running = inst.batch_len() as u32;
        let total = inst.kv.total().max(1);
        self.kv = f64::from(inst.kv_used_at(now)) / f64::from(total);
    }
}

/// The candidates' metrics for the decision under way, one array per metric (read once, shared by
/// every scorer; flat arrays keep the scorers' passes tight).
#[derive(Debug, Default)]
struct CandMetrics {
    /// Whether the arrays hold the current candidates' metrics.
    ready: bool,
    queue: Vec<u32>,
    running: Vec<u32>,
    kv: Vec<f64>,
}

/// The summed scores of a profile's leading snapshot-only scorers (see
/// [`Scorer::reads_only_snapshots`]), kept from one decision to the next: they change only when the
/// candidates change or one of their snapshots is re-read, which at a scrape interval of tens of
/// milliseconds is once in several decisions. Reusing the sums adds nothing in a different order, so
/// the totals are the same to the bit.
#[derive(Debug)]
struct LeadScores {
    /// The profile (index in the config) the sums are for.
    profile: usize,
    /// The candidates the sums are for, in order.
    cand: Vec<u32>,
    /// Per candidate, the sum of the leading scorers' weighted scores.
    total: Vec<f64>,
    /// When the first of the candidates' snapshots is due for a re-read (the sums hold before it).
    until: i64,
}

/// The router's state.
pub struct Router {
    cfg: RouterConfig,
    rng: SimRng,
    rr_next: u64,
    snaps: Vec<Snap>,
    /// Router-owned in-flight requests per replica.
    pub in_flight: Vec<u32>,
    /// Router-owned in-flight prompt tokens per replica.
    pub in_flight_tokens: Vec<u64>,
    index: Option<ApproxIndex>,
    slot_of: Vec<Option<u8>>,
    /// The prefix-index slots held by live replicas (the union of `slot_of`).
    live_slots: u128,
    free_slots: Vec<u8>,
    lru_used: Vec<u64>,
    lru_clock: u64,
    sessions: HashMap<u64, u32>,
    // Scratch (no per-decision allocation).
    /// Whether each pool passes the profile's per-pool filters.
    pool_ok: Vec<bool>,
    /// Per replica, its pool while the router may send it requests, else [`NOT_ROUTABLE`]: the
    /// candidates of a decision are read from here, not from the replicas.
    routable_pool: Vec<u32>,
    /// Bumped whenever `routable_pool` changes.
    routable_epoch: u64,
    /// Per profile, the candidates its per-pool filters leave, as of a `routable_epoch`.
    profile_cand: Vec<(u64, Vec<u32>)>,
    cand: Vec<u32>,
    total: Vec<f64>,
    raw: Vec<f64>,
    /// The candidates' metrics for the decision under way.
    cm: CandMetrics,
    /// The last decision's leading snapshot-only scores.
    lead: LeadScores,
    /// The router's block hashes of the request being routed, computed as far as needed.
    rhash: Vec<u64>,
    /// Prompt blocks the router hashes for that request (`rhash` grows towards it).
    rhash_n: u32,
    rhash_for: u64,
    chains: PrefixChains,
    vhash: Vec<u64>,
    vhash_key: (u64, u32),
    matched: Box<[u32; SLOTS]>,
    matched_for: u64,
}

/// What the endpoint picker decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Replica that serves the request (or its decode part).
    pub target: u32,
    /// P/D: replica that runs the prompt pass first.
    pub prefill: Option<u32>,
}

const NEVER: i64 = i64::MIN / 2;

/// The `routable_pool` of a replica the router may not send requests to.
const NOT_ROUTABLE: u32 = u32::MAX;

impl Router {
    /// A router for the given policy.
    pub fn new(cfg: RouterConfig, rng: SimRng) -> Self {
        let index = match &cfg.policy {
            RouterPolicy::EndpointPicker(e) => {
                let needs = e.uses_approx_index()
                    || matches!(e.handler, Handler::Disagg { decider: Decider::PrefixBased { .. }, .. })
                        && e.uses_approx_index();
                needs.then(|| ApproxIndex::new(e.prefix.lru_capacity_per_server))
            }
            _ => None,
        };
        Self {
            cfg,
            rng,
            rr_next: 0,
            snaps: Vec::new(),
            in_flight: Vec::new(),
            in_flight_tokens: Vec::new(),
            index,
            slot_of: Vec::new(),
            routable_pool: Vec::new(),
            routable_epoch: 0,
            profile_cand: Vec::new(),
            live_slots: 0,
            free_slots: (0..SLOTS as u8).rev().collect(),
            lru_used: Vec::new(),
            lru_clock: 0,
            sessions: HashMap::new(),
            pool_ok: Vec::new(),
            cand: Vec::new(),
            total: Vec::new(),
            raw: Vec::new(),
            cm: CandMetrics::default(),
            lead: LeadScores { profile: usize::MAX, cand: Vec::new(), total: Vec::new(), until: NEVER },
            rhash: Vec::new(),
            rhash_n: 0,
            rhash_for: u64::MAX,
            chains: PrefixChains::default(),
            vhash: Vec::new(),
            vhash_key: (u64::MAX, 0),
            matched: Box::new([0; SLOTS]),
            matched_for: u64::MAX,
        }
    }

    /// The endpoint picker config, if that is the policy.
    pub fn epp(&self) -> Option<&EppConfig> {
        match &self.cfg.policy {
            RouterPolicy::EndpointPicker(e) => Some(e),
            _ => None,
        }
    }

    /// Registers a new replica (index = current count), not routable until [`Router::set_routable`].
    pub fn add_replica(&mut self) {
        self.routable_pool.push(NOT_ROUTABLE);
        self.routable_epoch += 1;
        self.snaps.push(Snap { at: NEVER, queue: 0, running: 0, kv: 0.0 });
        self.in_flight.push(0);
        self.in_flight_tokens.push(0);
        self.lru_used.push(0);
        let slot = self.free_slots.pop();
        if let Some(s) = slot {
            self.live_slots |= 1u128 << s;
        }
        self.slot_of.push(slot);
    }

    /// Whether replica `i` of `pool` may be sent requests from now on (see [`Replica::routable`]).
    pub fn set_routable(&mut self, i: u32, pool: usize, routable: bool) {
        self.routable_pool[i as usize] = if routable { pool as u32 } else { NOT_ROUTABLE };
        self.routable_epoch += 1;
    }

    /// Checks that the router's view of which replicas it may send requests to is theirs.
    pub fn check_routable(&self, replicas: &[Replica]) -> Result<(), String> {
        let want = |r: &Replica| if r.routable() { r.pool as u32 } else { NOT_ROUTABLE };
        match replicas.iter().zip(&self.routable_pool).position(|(r, &seen)| want(r) != seen) {
            None if replicas.len() == self.routable_pool.len() => Ok(()),
            None => Err(format!(
                "the router knows {} replicas, the cluster has {}",
                self.routable_pool.len(),
                replicas.len()
            )),
            Some(i) => Err(format!(
                "the router sees replica {i} as {}, it is {:?}",
                if self.routable_pool[i] == NOT_ROUTABLE { "not routable" } else { "routable" },
                replicas[i].state
            )),
        }
    }

    /// Forgets a replica that has terminated (frees its prefix-index slot).
    pub fn remove_replica(&mut self, i: u32) {
        if let Some(s) = self.slot_of[i as usize].take() {
            self.live_slots &= !(1u128 << s);
            if let Some(ix) = &mut self.index {
                ix.clear_slot(s as usize);
            }
            self.free_slots.push(s);
        }
    }

    /// Queue length, running batch and KV utilisation of replica `i` as the router sees them at `now`.
    pub fn metrics(&mut self, i: u32, now: i64, replicas: &[Replica]) -> (u32, u32, f64) {
        let s = &mut self.snaps[i as usize];
        s.refresh(self.cfg.refresh_interval_us, now, &replicas[i as usize]);
        (s.queue, s.running, s.kv)
    }

    /// Saturation of the pool serving `role`-routable replicas per the detector: for the utilization
    /// detector the mean over replicas of `max(queue/queueThr, kv/kvThr)`, for the concurrency
    /// detector in-flight requests over capacity. 1.0 when there is no replica. Saturated when
    /// `>= 1 + headroom`.
    pub fn saturation(
        &mut self,
        detector: &Detector,
        now: i64,
        replicas: &[Replica],
        pools: &[PoolConfig],
    ) -> (f64, f64) {
        let mut sum = 0.0;
        let mut n = 0u32;
        let mut inflight = 0u64;
        for (i, r) in replicas.iter().enumerate() {
            if !r.routable() || pools[r.pool].role == Role::Prefill {
                continue;
            }
            n += 1;
            match detector {
                Detector::Utilization { queue_depth, kv_util, .. } => {
                    let (q, _, kv) = self.metrics(i as u32, now, replicas);
                    sum += (f64::from(q) / queue_depth).max(kv / kv_util);
                }
                Detector::Concurrency { .. } => inflight += u64::from(self.in_flight[i]),
            }
        }
        if n == 0 {
            return (1.0, 0.0);
        }
        match detector {
            Detector::Utilization { headroom, .. } => (sum / f64::from(n), *headroom),
            Detector::Concurrency { max_concurrency, headroom } => {
                (inflight as f64 / (f64::from(n) * max_concurrency), *headroom)
            }
        }
    }

    /// The value of an admission load `signal` at `now` over the replicas that serve decodes:
    /// the detector's saturation, or the mean per replica of the waiting queue, KV utilisation or
    /// router-owned in-flight prompt tokens. With no such replica the pool counts as fully loaded.
    pub fn load_signal(
        &mut self,
        signal: LoadSignal,
        detector: &Detector,
        now: i64,
        replicas: &[Replica],
        pools: &[PoolConfig],
    ) -> f64 {
        if signal == LoadSignal::Saturation {
            return self.saturation(detector, now, replicas, pools).0;
        }
        let (mut sum, mut n) = (0.0, 0u32);
        for (i, r) in replicas.iter().enumerate() {
            if !r.routable() || pools[r.pool].role == Role::Prefill {
                continue;
            }
            n += 1;
            sum += match signal {
                LoadSignal::QueueDepth => f64::from(self.metrics(i as u32, now, replicas).0),
                LoadSignal::KvUtilization => self.metrics(i as u32, now, replicas).2,
                _ => self.in_flight_tokens[i] as f64,
            };
        }
        if n == 0 {
            f64::INFINITY
        } else {
            sum / f64::from(n)
        }
    }

    /// Picks where `req` goes at `now`; `None` when no replica can take it.
    pub fn decide(
        &mut self,
        req: &Request,
        now: i64,
        replicas: &[Replica],
        pools: &[PoolConfig],
    ) -> Option<Decision> {
        self.matched_for = u64::MAX;
        let policy = std::mem::replace(&mut self.cfg.policy, RouterPolicy::RoundRobin);
        let out = self.decide_with(&policy, req, now, replicas, pools);
        self.cfg.policy = policy;
        if let Some(d) = out {
            // Observers: prefix index, session affinity.
            if self.index.is_some() {
                let bs = self.epp().map_or(16, |e| e.prefix.block_size_tokens);
                let max = self.epp().map_or(u32::MAX, |e| e.prefix.max_blocks);
                self.router_hashes(req, bs, max);
                // Blocks only this request (or its own later turns) can carry are phantoms.
                let reusable = req.prompt.body_shared || req.session.is_some_and(|s| !s.last_turn);
                let n = self.rhash_n;
                let shared = if reusable { n } else { n.min(req.prompt.prefix_len / bs) };
                self.chains.extend(&req.prompt, bs, &mut self.rhash, shared, n);
                let chain = system_prompt_chain(req, bs, shared);
                let (n, shared) = (n as usize, shared as usize);
                for t in [Some(d.target), d.prefill].into_iter().flatten() {
                    if let (Some(slot), Some(ix)) = (self.slot_of[t as usize], self.index.as_mut()) {
                        ix.record(slot as usize, &self.rhash[..shared], n - shared, Some(chain));
                    }
                }
            }
            if let Some(s) = req.session {
                if s.last_turn {
                    self.sessions.remove(&s.session);
                } else {
                    self.sessions.insert(s.session, d.target);
                }
            }
        }
        out
    }

    fn decide_with(
        &mut self,
        policy: &RouterPolicy,
        req: &Request,
        now: i64,
        replicas: &[Replica],
        pools: &[PoolConfig],
    ) -> Option<Decision> {
        match policy {
            RouterPolicy::RoundRobin | RouterPolicy::LeastRequests | RouterPolicy::Random => {
                self.cand.clear();
                for (i, r) in replicas.iter().enumerate() {
                    if r.routable() && pools[r.pool].role != Role::Prefill {
                        self.cand.push(i as u32);
                    }
                }
                if self.cand.is_empty() {
                    return None;
                }
                let target = if *policy == RouterPolicy::RoundRobin {
                    let i = self.cand[(self.rr_next % self.cand.len() as u64) as usize];
                    self.rr_next += 1;
                    i
                } else if *policy == RouterPolicy::Random {
                    self.cand[self.rng.random_range(0..self.cand.len())]
                } else {
                    let min = self.cand.iter().map(|&i| self.in_flight[i as usize]).min().unwrap_or(0);
                    let ties = self.cand.iter().filter(|&&i| self.in_flight[i as usize] == min).count();
                    let pick = if ties == 1 { 0 } else { self.rng.random_range(0..ties) };
                    *self
                        .cand
                        .iter()
                        .filter(|&&i| self.in_flight[i as usize] == min)
                        .nth(pick)
                        .expect("pick < ties")
                };
                Some(Decision { target, prefill: None })
            }
            RouterPolicy::EndpointPicker(e) => match e.handler {
                Handler::Single => {
                    let t = self.run_profile(e, 0, req, now, replicas, pools)?;
                    Some(Decision { target: t, prefill: None })
                }
                Handler::Disagg { decode, prefill, decider } => {
                    let d = self.run_profile(e, decode, req, now, replicas, pools)?;
                    let split = match decider {
                        Decider::Always => true,
                        Decider::Never => false,
                        Decider::PrefixBased { non_cached_tokens, prompt_tokens } => {
                            req.input_tokens >= prompt_tokens.max(non_cached_tokens) && {
                                let cached = self.cached_tokens_on(e, d, req, now, replicas);
                                req.input_tokens.saturating_sub(cached) >= non_cached_tokens
                            }
                        }
                    };
                    let p =
                        if split { self.run_profile(e, prefill, req, now, replicas, pools) } else { None };
                    Some(Decision { target: d, prefill: p.filter(|&p| p != d) })
                }
            },
        }
    }

    /// Prompt tokens the router believes are cached on replica `d`: from the approximate index when
    /// the config keeps one, else from the replica's real KV cache.
    fn cached_tokens_on(
        &mut self,
        e: &EppConfig,
        d: u32,
        req: &Request,
        now: i64,
        replicas: &[Replica],
    ) -> u32 {
        if self.index.is_some() {
            if let Some(slot) = self.slot_of[d as usize] {
                self.ensure_matched(e, req);
                return self.matched[slot as usize] * e.prefix.block_size_tokens;
            }
            return 0;
        }
        let inst = &replicas[d as usize].inst;
        let bs = inst.config().block_size;
        self.replica_hashes(req, bs);
        inst.cached_prefix_blocks_at(&self.vhash, now) * bs
    }

    /// Starts the router's hashes of `req` (none computed yet, `rhash_n` of them to come).
    fn router_hashes(&mut self, req: &Request, bs: u32, max: u32) {
        if self.rhash_for == req.id {
            return;
        }
        self.rhash_for = req.id;
        self.rhash.clear();
        self.rhash_n = (req.input_tokens / bs).min(max);
    }

    fn replica_hashes(&mut self, req: &Request, bs: u32) {
        if self.vhash_key == (req.id, bs) {
            return;
        }
        self.vhash_key = (req.id, bs);
        self.vhash.clear();
        // Only blocks the replica could serve as hits (at least one token is always computed).
        let n = req.input_tokens.saturating_sub(1) / bs;
        self.chains.extend(&req.prompt, bs, &mut self.vhash, n, n);
    }

    /// Matches the request against the approximate index, hashing its blocks only as far as some
    /// endpoint still matches.
    fn ensure_matched(&mut self, e: &EppConfig, req: &Request) {
        if self.matched_for == req.id {
            return;
        }
        self.matched_for = req.id;
        let bs = e.prefix.block_size_tokens;
        self.router_hashes(req, bs, e.prefix.max_blocks);
        // Every live slot's count is written by the match (the others are never read).
        let mask = self.live_slots;
        let (chains, rhash, n) = (&mut self.chains, &mut self.rhash, self.rhash_n);
        if let Some(ix) = &mut self.index {
            let hash_at = |i: u32| {
                if rhash.len() <= i as usize {
                    chains.extend(&req.prompt, bs, rhash, i + 1, n);
                }
                rhash[i as usize]
            };
            let chain = system_prompt_chain(req, bs, n);
            ix.match_prefix(n, hash_at, mask, &mut self.matched, Some(chain));
        }
    }

    fn run_profile(
        &mut self,
        e: &EppConfig,
        profile: usize,
        req: &Request,
        now: i64,
        replicas: &[Replica],
        pools: &[PoolConfig],
    ) -> Option<u32> {
        let p = &e.profiles[profile];
        debug_assert_eq!(self.check_routable(replicas), Ok(()));
        // The routable replicas of the pools passing the per-pool filters, kept per profile until a
        // replica's state changes.
        if self.profile_cand.len() <= profile {
            self.profile_cand.resize_with(profile + 1, || (u64::MAX, Vec::new()));
        }
        let (epoch, kept) = &mut self.profile_cand[profile];
        let due = *epoch != self.routable_epoch;
        // Test builds check every reuse against the candidates read afresh.
        if due || cfg!(debug_assertions) {
            self.pool_ok.clear();
            self.pool_ok.extend(pools.iter().map(|pool| p.filters.iter().all(|f| passes(f, pool))));
            self.cand.clear();
            for (i, &pool) in self.routable_pool.iter().enumerate() {
                if pool != NOT_ROUTABLE && self.pool_ok[pool as usize] {
                    self.cand.push(i as u32);
                }
            }
            if due {
                *epoch = self.routable_epoch;
                kept.clone_from(&self.cand);
            }
            assert_eq!(self.cand, *kept, "the kept candidates of profile {profile} are out of date");
        } else {
            self.cand.clone_from(kept);
        }
        for f in &p.filters {
            if let Filter::PrefixAffinity { threshold, exploration, max_ttft_penalty_ms, peak_prefill_tps } =
                *f
            {
                self.affinity_gate(e, req, threshold, exploration, max_ttft_penalty_ms, peak_prefill_tps);
            }
        }
        if self.cand.is_empty() {
            return None;
        }
        let n = self.cand.len();
        self.total.clear();
        self.cm.ready = false;
        let lead = p.scorers.iter().take_while(|(s, _)| s.reads_only_snapshots()).count();
        let reuse =
            lead > 0 && self.lead.profile == profile && now < self.lead.until && self.lead.cand == self.cand;
        if reuse {
            if cfg!(debug_assertions) {
                // Test builds check every reuse against scoring afresh (no snapshot is due, so
                // scoring afresh reads none).
                self.total.resize(n, 0.0);
                for (scorer, w) in p.scorers[..lead].iter().filter(|(_, w)| *w != 0.0) {
                    self.add_score(e, scorer, *w, req, now, replicas);
                }
                let same = self.total.iter().zip(&self.lead.total).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "reused scores {:?} differ from fresh ones {:?}", self.lead.total, self.total);
                self.total.clear();
            }
            self.total.extend_from_slice(&self.lead.total);
        } else {
            self.total.resize(n, 0.0);
        }
        // Score afresh from the first scorer not reused; the leading ones' sums are kept for the next
        // decisions as soon as they are complete.
        let from = if reuse { lead } else { 0 };
        for (k, (scorer, w)) in p.scorers.iter().enumerate().skip(from) {
            if *w != 0.0 {
                self.add_score(e, scorer, *w, req, now, replicas);
            }
            if k + 1 == lead {
                self.keep_lead(profile, now);
            }
        }
        let k = match p.picker {
            Picker::MaxScore => {
                // As `f64::max` folds from -inf: a NaN is passed over.
                let max = self.total.iter().fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m });
                let best = max - 1e-9;
                // The first tie, then a count from it: a single best needs no third pass.
                let first = self.total.iter().position(|&x| x >= best).unwrap_or(0);
                let ties = self.total[first..].iter().filter(|&&x| x >= best).count();
                if ties == 1 {
                    first
                } else {
                    let pick = self.rng.random_range(0..ties);
                    self.total.iter().enumerate().filter(|(_, &x)| x >= best).nth(pick).map(|(k, _)| k)?
                }
            }
            Picker::Random => self.rng.random_range(0..n),
            Picker::WeightedRandom => {
                let sum: f64 = self.total.iter().sum();
                if sum <= 0.0 {
                    self.rng.random_range(0..n)
                } else {
                    let mut x = self.rng.random::<f64>() * sum;
                    let mut chosen = n - 1;
                    for (k, &t) in self.total.iter().enumerate() {
                        if x < t {
                            chosen = k;
                            break;
                        }
                        x -= t;
                    }
                    chosen
                }
            }
        };
        let chosen = self.cand[k];
        if let Some(precise) = p.scorers.iter().find_map(|(s, _)| match s {
            Scorer::NoHitLru { precise } => Some(*precise),
            _ => None,
        }) {
            if !self.any_warm(e, precise, req, now, replicas) {
                self.lru_clock += 1;
                self.lru_used[chosen as usize] = self.lru_clock;
            }
        }
        Some(chosen)
    }

    /// Whether any candidate holds a prefix of the request: per the approximate index, or (`precise`)
    /// per the candidates' real KV caches.
    fn any_warm(
        &mut self,
        e: &EppConfig,
        precise: bool,
        req: &Request,
        now: i64,
        replicas: &[Replica],
    ) -> bool {
        if precise {
            let cand = std::mem::take(&mut self.cand);
            let warm = cand.iter().any(|&i| {
                let bs = replicas[i as usize].inst.config().block_size;
                self.replica_hashes(req, bs);
                replicas[i as usize].inst.cached_prefix_blocks_at(&self.vhash, now) > 0
            });
            self.cand = cand;
            return warm;
        }
        self.ensure_matched(e, req);
        self.cand.iter().any(|&i| self.slot_of[i as usize].is_some_and(|s| self.matched[s as usize] > 0))
    }

    /// `prefix-cache-affinity-filter` on the candidates: narrows them to the sticky ones (approximate
    /// prefix score >= `threshold`) unless none is sticky, or the best sticky endpoint's estimated TTFT
    /// (in-flight prompt tokens / `peak_tps`) is worse than the best other one's by more than `max_penalty_ms`.
    fn affinity_gate(
        &mut self,
        e: &EppConfig,
        req: &Request,
        threshold: f64,
        exploration: f64,
        max_penalty_ms: f64,
        peak_tps: f64,
    ) {
        if self.cand.len() <= 1 || threshold <= 0.0 {
            return;
        }
        if exploration > 0.0 && self.rng.random::<f64>() < exploration {
            return;
        }
        self.ensure_matched(e, req);
        let total = f64::from(self.rhash_n);
        let score = |r: &Router, i: u32| {
            let m = r.slot_of[i as usize].map_or(0, |s| r.matched[s as usize]);
            if total > 0.0 {
                f64::from(m) / total
            } else {
                0.0
            }
        };
        let ttft = |r: &Router, i: u32| r.in_flight_tokens[i as usize] as f64 / peak_tps.max(1e-9) * 1000.0;
        let (mut best_sticky, mut best_other, mut sticky) = (f64::INFINITY, f64::INFINITY, 0usize);
        for &i in &self.cand {
            if score(self, i) >= threshold {
                sticky += 1;
                best_sticky = best_sticky.min(ttft(self, i));
            } else {
                best_other = best_other.min(ttft(self, i));
            }
        }
        if sticky == 0 {
            return;
        }
        if max_penalty_ms > 0.0 && best_other.is_finite() && best_sticky - best_other > max_penalty_ms {
            return;
        }
        let keep: Vec<u32> = self.cand.iter().copied().filter(|&i| score(self, i) >= threshold).collect();
        self.cand = keep;
    }

    /// Keeps the running totals as the leading snapshot-only scores of `profile` for the current
    /// candidates, valid until the first of their snapshots is due for a re-read after `now`.
    fn keep_lead(&mut self, profile: usize, now: i64) {
        let interval = self.cfg.refresh_interval_us;
        let oldest = self.cand.iter().map(|&i| self.snaps[i as usize].at).min().unwrap_or(NEVER);
        // Live metrics (interval 0) are re-read at every decision: nothing holds.
        let until = if interval == 0 { NEVER } else { oldest.saturating_add(interval) };
        let lead = &mut self.lead;
        lead.profile = profile;
        lead.until = if until > now { until } else { NEVER };
        lead.cand.clone_from(&self.cand);
        lead.total.clone_from(&self.total);
    }

    /// Reads the candidates' metrics into `cm` unless this decision already did: every scorer that
    /// needs them reads all candidates at the same `now`, so one read serves them all.
    fn fill_cand_metrics(&mut self, now: i64, replicas: &[Replica]) {
        if self.cm.ready {
            return;
        }
        self.cm.ready = true;
        let (snaps, interval) = (&mut self.snaps[..], self.cfg.refresh_interval_us);
        let n = self.cand.len();
        let cm = &mut self.cm;
        cm.queue.resize(n, 0);
        cm.running.resize(n, 0);
        cm.kv.resize(n, 0.0);
        for (k, &i) in self.cand.iter().enumerate() {
            let s = &mut snaps[i as usize];
            if interval == 0 || now - s.at >= interval {
                s.read(now, &replicas[i as usize]);
            }
            cm.queue[k] = s.queue;
            cm.running[k] = s.running;
            cm.kv[k] = s.kv;
        }
    }

    /// Adds one scorer's score per candidate (in [0, 1], times its weight `w`) to `self.total`.
    fn add_score(
        &mut self,
        e: &EppConfig,
        s: &Scorer,
        w: f64,
        req: &Request,
        now: i64,
        replicas: &[Replica],
    ) {
        let n = self.cand.len();
        match s {
            Scorer::Queue | Scorer::RunningRequests | Scorer::KvUtilization | Scorer::LoadAware { .. } => {
                self.fill_cand_metrics(now, replicas);
            }
            Scorer::ApproxPrefix => self.ensure_matched(e, req),
            Scorer::PrecisePrefix => self.precise_prefix_raw(req, now, replicas),
            Scorer::NoHitLru { precise } => self.no_hit_lru_raw(e, *precise, req, now, replicas),
            _ => {}
        }
        let total = &mut self.total[..n];
        let add = |t: &mut f64, x: f64| *t += w * x.clamp(0.0, 1.0);
        match s {
            Scorer::Queue | Scorer::RunningRequests => {
                let xs = if *s == Scorer::Queue { &self.cm.queue[..n] } else { &self.cm.running[..n] };
                // `(max - x)/(max - min)`, all equal → 1 (the bounds of whole numbers are whole).
                let (lo, hi) = xs.iter().fold((u32::MAX, u32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                if hi > lo {
                    let (hi, span) = (f64::from(hi), f64::from(hi - lo));
                    for (t, &x) in total.iter_mut().zip(xs) {
                        add(t, (hi - f64::from(x)) / span);
                    }
                } else {
                    total.iter_mut().for_each(|t| add(t, 1.0));
                }
            }
            Scorer::KvUtilization => {
                for (t, &kv) in total.iter_mut().zip(&self.cm.kv[..n]) {
                    add(t, 1.0 - kv);
                }
            }
            Scorer::LoadAware { threshold } => {
                for (t, &q) in total.iter_mut().zip(&self.cm.queue[..n]) {
                    let q = f64::from(q);
                    add(t, if q == 0.0 { 0.5 } else { 0.5 * (1.0 - q.min(*threshold) / threshold) });
                }
            }
            Scorer::ActiveRequest { max_busy_score } => {
                let max = self.cand.iter().map(|&i| self.in_flight[i as usize]).max().unwrap_or(0);
                for (t, &i) in total.iter_mut().zip(&self.cand) {
                    let c = self.in_flight[i as usize];
                    add(t, if c == 0 { 1.0 } else { f64::from(max - c) / f64::from(max) * max_busy_score });
                }
            }
            Scorer::TokenLoad { threshold } => {
                for (t, &i) in total.iter_mut().zip(&self.cand) {
                    let x = self.in_flight_tokens[i as usize] as f64;
                    add(t, 1.0 - x.min(*threshold) / threshold);
                }
            }
            Scorer::ApproxPrefix => {
                // A candidate without a match scores 0, and adding `w * 0` leaves a total as it is (a
                // total is never -0: it starts at +0, and sums that cancel round to +0), so only the
                // candidates holding blocks are added to.
                let blocks = f64::from(self.rhash_n);
                for (t, &i) in total.iter_mut().zip(&self.cand) {
                    let m = self.slot_of[i as usize].map_or(0, |s| self.matched[s as usize]);
                    if m > 0 {
                        add(t, f64::from(m) / blocks);
                    }
                }
            }
            Scorer::SessionAffinity => {
                let home = req.session.and_then(|s| self.sessions.get(&s.session).copied());
                for (t, &i) in total.iter_mut().zip(&self.cand) {
                    add(t, if home == Some(i) { 1.0 } else { 0.0 });
                }
            }
            Scorer::Neutral => total.iter_mut().for_each(|t| add(t, 1.0)),
            Scorer::PrecisePrefix | Scorer::NoHitLru { .. } => {
                for (t, &x) in total.iter_mut().zip(&self.raw) {
                    add(t, x);
                }
            }
        }
    }

    /// `prefix-cache-scorer` on the replicas' real caches into `self.raw`: leading cached blocks per
    /// candidate, min-max normalised.
    fn precise_prefix_raw(&mut self, req: &Request, now: i64, replicas: &[Replica]) {
        self.raw.clear();
        for k in 0..self.cand.len() {
            let inst = &replicas[self.cand[k] as usize].inst;
            self.replica_hashes(req, inst.config().block_size);
            self.raw.push(f64::from(inst.cached_prefix_blocks_at(&self.vhash, now)));
        }
        min_max(&mut self.raw);
    }

    /// `no-hit-lru-scorer` into `self.raw`: 0.5 each when some candidate holds a prefix of the
    /// request, else least recently cold-routed first.
    fn no_hit_lru_raw(
        &mut self,
        e: &EppConfig,
        precise: bool,
        req: &Request,
        now: i64,
        replicas: &[Replica],
    ) {
        let n = self.cand.len();
        self.raw.clear();
        let warm = self.any_warm(e, precise, req, now, replicas);
        if warm || n == 1 {
            self.raw.resize(n, if warm { 0.5 } else { 1.0 });
        } else {
            // Rank: never used first, then least recently used; ties by index.
            for k in 0..n {
                let mine = (self.lru_used[self.cand[k] as usize], self.cand[k]);
                let rank = self.cand.iter().filter(|&&j| (self.lru_used[j as usize], j) < mine).count();
                self.raw.push(1.0 - rank as f64 / (n - 1) as f64);
            }
        }
    }

    /// Notes that replica `i` finished (or dropped) a request with `input` prompt tokens.
    pub fn on_done(&mut self, i: u32, input: u32) {
        self.in_flight[i as usize] -= 1;
        self.in_flight_tokens[i as usize] -= u64::from(input);
    }

    /// Notes that replica `i` got a request with `input` prompt tokens.
    pub fn on_sent(&mut self, i: u32, input: u32) {
        self.in_flight[i as usize] += 1;
        self.in_flight_tokens[i as usize] += u64::from(input);
    }
}

fn passes(f: &Filter, pool: &PoolConfig) -> bool {
    match f {
        Filter::Decode => matches!(pool.role, Role::Decode | Role::Both),
        Filter::Prefill => pool.role == Role::Prefill,
        Filter::Label { label, values, allows_no_label } => match pool.labels.get(label) {
            None => *allows_no_label,
            Some(v) => values.is_empty() || values.iter().any(|x| x == v),
        },
        Filter::Selector(m) => m.iter().all(|(k, v)| pool.labels.get(k) == Some(v)),
        // Needs the router's state: applied after the per-pool filters.
        Filter::PrefixAffinity { .. } | Filter::Neutral => true,
    }
}

/// The request's system prompt key and how many of its first `n` blocks of `bs` tokens lie wholly
/// inside that prompt: those hash the same for every request carrying it, which lets the prefix
/// index remember their walks and runs.
fn system_prompt_chain(req: &Request, bs: u32, n: u32) -> (u64, u32) {
    (req.prompt.prefix_key, (req.prompt.prefix_len / bs).min(n))
}

/// `(x - min)/(max - min)`; all equal → 1.
fn min_max(v: &mut [f64]) {
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    for x in v.iter_mut() {
        *x = if hi > lo { (*x - lo) / (hi - lo) } else { 1.0 };
    }
}
