//! The cluster's discrete-event loop: one clock, three sources of events (the workload's next
//! arrival, the event queue, each busy replica's pending step end), requests flowing from the
//! workload through the router into replicas.
//!
//! Ordering contract: events are ordered by (time, kind priority, sequence number). At equal time a
//! replica becoming ready comes first, then an arrival, then enqueues, flow-control dispatch attempts
//! and autoscaler ticks, then replica step ends (by replica index), otherwise in the order
//! scheduled; heap or hash order never decides anything. Everything that reads replica state (the
//! router, the saturation detector, the autoscaler) runs before step ends at the same time, so a
//! decode run fast-forwarded in one go is read exactly as stepping one step at a time would show it.
//!
//! Request conservation: generated = completed + rejected + shed + timed out + unfinished (in a
//! replica, in a KV transfer, or queued at the gateway), checked at the end of every run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::Rng;

use super::gateway::{Bucket, FlowQueue, GatewayConfig};
use super::instance::Instance;
use super::pool::{PoolConfig, Replica, ReplicaState, ScalePolicy};
use super::request::{LiveRequest, Slab};
use super::router::{Detector, Router, RouterConfig};
use super::wakes::Wakes;
use crate::metrics::stream::RecordSink;
use crate::metrics::{
    InstanceReport, PoolReport, PoolSample, Rejected, RequestRecord, Series, SimOutput, SummaryMode,
    TimelinePoint,
};
use crate::rng::{self, SimRng};
use crate::workload::source::RequestSource;
use crate::workload::Request;

/// KV transfer between prefill and decode replicas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PdConfig {
    /// Link bandwidth (bytes per µs = MB/s).
    pub bytes_per_us: f64,
    /// Fixed latency per transfer (µs).
    pub latency_us: i64,
    /// Whether overlapping transfers share the bandwidth (fair share fixed at start).
    pub contention: bool,
}

impl Default for PdConfig {
    fn default() -> Self {
        Self { bytes_per_us: 25_000.0, latency_us: 50, contention: true }
    }
}

/// Everything the loop needs about the deployment.
#[derive(Clone)]
pub struct ClusterConfig {
    /// Pools of replicas (at least one).
    pub pools: Vec<PoolConfig>,
    /// Routing.
    pub router: RouterConfig,
    /// Admission.
    pub gateway: GatewayConfig,
    /// KV transfers (P/D).
    pub pd: PdConfig,
    /// Stop at this simulated time (µs); `None` = run until drained.
    pub horizon_us: Option<i64>,
    /// Master seed.
    pub seed: u64,
}

/// Knobs of the run itself (not of the modelled system).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOptions {
    /// Advance decode-only stretches in one computation (identical results, much faster).
    pub decode_fast_forward: bool,
    /// Check KV and clock invariants at every event (slow; for tests).
    pub check_invariants: bool,
    /// Stop with an error after this many events (a guard against runaway runs).
    pub max_events: Option<u64>,
    /// Exact or streaming summary, overriding the scenario's `simulation.summary` (`None`: as the
    /// scenario says).
    pub summary: Option<SummaryMode>,
    /// Use helper threads for the work around the engine (identical results): generate an
    /// open-loop workload ahead, summarise streamed records behind. Off where runs already fill
    /// every core (sweeps, validation of many runs at once).
    pub helper_threads: bool,
}

impl SimOptions {
    /// The options of one of `runs_at_once` runs sharing the machine: helper threads only for a run
    /// that has it to itself (side by side, the other runs already fill every core).
    pub fn sharing(runs_at_once: usize) -> Self {
        Self { helper_threads: runs_at_once <= 1, ..Self::default() }
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            decode_fast_forward: true,
            check_invariants: false,
            max_events: None,
            summary: None,
            helper_threads: true,
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// An internal invariant failed (a bug): the message says which.
    #[error("simulator invariant violated: {0}")]
    Invariant(String),
    /// The observer asked to stop (cancellation or time limit).
    #[error("simulation cancelled at simulated time {at_ms:.1} ms")]
    Cancelled {
        /// Simulated time reached.
        at_ms: f64,
    },
    /// More events than `max_events`.
    #[error("simulation exceeded its limit of {0} events")]
    TooManyEvents(u64),
}

/// Hooks for the shell around the core: progress display and cancellation.
pub trait Observer {
    /// Called every few thousand events with the simulated time and requests finished so far.
    fn on_progress(&mut self, _sim_us: i64, _finished: u64) {}
    /// Polled with progress; returning true stops the run with [`SimError::Cancelled`].
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that does nothing.
pub struct NoObserver;
impl Observer for NoObserver {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A starting replica becomes routable.
    Ready(u32),
    /// A routed request (or a transferred decode) reaches its replica's queue (slot).
    Enqueue(u32),
    /// A flow-control dispatch attempt.
    Dispatch,
    /// An autoscaler evaluation of a pool.
    Scale(u32),
    /// A replica's step or decode run ends. Never queued: pending step ends live in [`Wakes`], one
    /// per replica, ordered by (time, replica index), so a decode run (scheduled once) and the same
    /// steps taken one by one finish in the same order.
    Wake(u32),
}

impl Kind {
    fn priority(self) -> u8 {
        match self {
            Kind::Ready(_) => 0,
            Kind::Enqueue(_) => 2,
            Kind::Dispatch => 3,
            Kind::Scale(_) => 4,
            Kind::Wake(_) => WAKE_PRIORITY,
        }
    }
}

/// Fraction of the saturation limit up to which sheddable flow-control bands may dispatch.
const SHEDDABLE_CEILING: f64 = 0.8;

/// Arrivals sit between replica readiness (0) and enqueues (2).
const ARRIVAL_PRIORITY: u8 = 1;
/// Step ends come after everything else at their time.
const WAKE_PRIORITY: u8 = 5;

/// Which source the next event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Arrival,
    Queued,
    Wake,
}

/// Bits of the sequence number in the packed key.
const SEQ_BITS: u32 = 64 - 3;

/// A queued event: its order is the packed key alone, (time, kind priority, sequence) compared as one
/// 128-bit integer. Sequence numbers are unique, so no two keys are equal and the kind never takes
/// part in the order.
#[derive(Clone, Copy)]
struct Event {
    key: u128,
    kind: Kind,
}

impl Event {
    fn time(&self) -> i64 {
        ((self.key >> 64) as u64 ^ (1 << 63)) as i64
    }
    fn priority(&self) -> u8 {
        ((self.key >> SEQ_BITS) & 0b111) as u8
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// The packed key of (time, kind priority, sequence): the time with its sign bit flipped (so signed
/// order is unsigned order) in the top 64 bits, then 3 bits of priority and [`SEQ_BITS`] of sequence
/// number (2^61 pushes: beyond any run).
fn pack(t: i64, priority: u8, seq: u64) -> u128 {
    debug_assert!(priority < 8 && seq < 1 << SEQ_BITS);
    (u128::from(t as u64 ^ (1 << 63)) << 64) | (u128::from(priority) << SEQ_BITS) | u128::from(seq)
}

/// Everything scheduled but step ends (those are in [`Wakes`]).
#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Event>>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, t: i64, k: Kind) {
        debug_assert!(!matches!(k, Kind::Wake(_)), "step ends are kept in `Wakes`");
        self.seq += 1;
        self.heap.push(Reverse(Event { key: pack(t, k.priority(), self.seq), kind: k }));
    }
    fn peek(&self) -> Option<(i64, u8)> {
        self.heap.peek().map(|Reverse(e)| (e.time(), e.priority()))
    }
}

/// Per-pool autoscaler state.
#[derive(Default, Clone, Copy)]
struct ScaleState {
    last_change: i64,
    down_since: Option<i64>,
    ups: u32,
    downs: u32,
    peak: u32,
}

struct Sim<'a> {
    cfg: &'a ClusterConfig,
    opts: &'a SimOptions,
    replicas: Vec<Replica>,
    router: Router,
    slab: Slab,
    q: Queue,
    /// Pending step ends, one per busy replica.
    wakes: Wakes,
    out: SimOutput,
    /// Streaming mode: where completed requests go instead of `out.completed`.
    stream: Option<&'a mut dyn RecordSink>,
    /// Completed requests handed to `stream`.
    streamed: u64,
    done: Vec<u32>,
    min_pre: i64,
    finished: u64,
    bucket: Option<Bucket>,
    flow: Option<FlowQueue>,
    dispatch_pending: bool,
    admit_rng: SimRng,
    expired: Vec<Request>,
    transfers: Vec<i64>,
    scale: Vec<ScaleState>,
    /// Time of the last event that was not an autoscaler tick.
    work_end: i64,
    /// Scratch for one sample of every pool.
    pool_samples: Vec<PoolSample>,
}

/// Runs the cluster on the workload until it drains (or the horizon), returning every record, or with
/// `stream` given, handing completed requests to it instead of keeping their records.
pub fn run<'a>(
    cfg: &'a ClusterConfig,
    workload: &mut impl RequestSource,
    opts: &'a SimOptions,
    obs: &mut dyn Observer,
    stream: Option<&'a mut dyn RecordSink>,
) -> Result<SimOutput, SimError> {
    let epp_flow = match &cfg.router.policy {
        super::router::RouterPolicy::EndpointPicker(e) if e.flow.enabled => {
            Some(FlowQueue::new(e.flow.clone()))
        }
        _ => None,
    };
    let mut sim = Sim {
        cfg,
        opts,
        replicas: Vec::new(),
        router: Router::new(cfg.router.clone(), rng::stream(cfg.seed, "router")),
        slab: Slab::default(),
        q: Queue::default(),
        wakes: Wakes::default(),
        out: SimOutput {
            generated_per_class: vec![0; workload.class_count()],
            series: Series::new(cfg.pools.len()),
            // Room for the records up front when their number is known (none kept when streaming).
            completed: Vec::with_capacity(if stream.is_none() { workload.expected_requests() } else { 0 }),
            ..SimOutput::default()
        },
        stream,
        streamed: 0,
        done: Vec::new(),
        min_pre: cfg
            .pools
            .iter()
            .map(|p| p.latency.request_overheads().before_first_token_us)
            .min()
            .unwrap_or(0),
        finished: 0,
        bucket: cfg.gateway.token_bucket.map(Bucket::new),
        flow: epp_flow,
        dispatch_pending: false,
        admit_rng: rng::stream(cfg.seed, "gateway.admission"),
        expired: Vec::new(),
        transfers: Vec::new(),
        scale: vec![ScaleState::default(); cfg.pools.len()],
        work_end: 0,
        pool_samples: Vec::with_capacity(cfg.pools.len()),
    };
    for (p, pool) in cfg.pools.iter().enumerate() {
        for _ in 0..pool.replicas {
            sim.add_replica(p, ReplicaState::Active, 0);
        }
        sim.scale[p].peak = pool.replicas;
        sim.timeline_point(p, 0);
        if let Some(a) = &pool.autoscaling {
            sim.q.push(a.interval_us, Kind::Scale(p as u32));
        }
    }
    let mut clock = i64::MIN;

    loop {
        let ta = workload.peek_time();
        let te = sim.q.peek();
        let tw = sim.wakes.peek();
        // The earliest of the next arrival, the next queued event and the next step end, by (time,
        // kind priority); step ends have the highest priority number, so they come last at a time.
        let mut next = None;
        for (cand, key) in [
            (Next::Arrival, ta.map(|a| (a, ARRIVAL_PRIORITY))),
            (Next::Queued, te),
            (Next::Wake, tw.map(|(w, _)| (w, WAKE_PRIORITY))),
        ] {
            if let Some(key) = key {
                if next.is_none_or(|(_, best)| key < best) {
                    next = Some((cand, key));
                }
            }
        }
        let Some((next, (t, p))) = next else {
            break;
        };
        let arrival = next == Next::Arrival;
        if cfg.horizon_us.is_some_and(|h| t > h) {
            break;
        }
        if t < clock {
            return Err(SimError::Invariant(format!("clock moved back from {clock} to {t} µs")));
        }
        // Autoscaler ticks alone keep nothing alive: stop once all work is done.
        if !arrival && ta.is_none() && sim.slab.is_empty() && sim.flow.as_ref().is_none_or(|f| f.is_empty()) {
            // (An hour of idle ticks is a safety stop.)
            if p == Kind::Scale(0).priority()
                && (!sim.scaling_may_continue() || t - sim.work_end > 3_600_000_000)
            {
                break;
            }
        }
        clock = t;
        // Samples due by now see the state after every earlier event, as they would at their time.
        while sim.out.series.next_due() <= t {
            sim.sample();
        }
        sim.out.events += 1;
        if opts.max_events.is_some_and(|m| sim.out.events > m) {
            return Err(SimError::TooManyEvents(opts.max_events.unwrap_or(0)));
        }
        if sim.out.events % 4096 == 0 {
            obs.on_progress(t, sim.finished);
            if obs.should_stop() {
                return Err(SimError::Cancelled { at_ms: t as f64 / 1000.0 });
            }
        }

        if arrival {
            let req = workload.pop().expect("peeked arrival");
            sim.work_end = t;
            sim.on_arrival(req, t, workload);
            continue;
        }
        let kind = if next == Next::Wake {
            Kind::Wake(tw.map_or(0, |(_, i)| i))
        } else {
            let Reverse(Event { kind, .. }) = sim.q.heap.pop().expect("peeked event");
            kind
        };
        if !matches!(kind, Kind::Scale(_)) {
            sim.work_end = t;
        }
        // Plan horizon for decode runs: with a single replica every arrival lands on it, so runs need
        // not be planned past the step in progress when the next one can be queued. With several, an
        // arrival cuts only the run of the replica it is routed to, so the others plan until their
        // next completion.
        let horizon = if sim.replicas.len() == 1 {
            // `ta` is still the next arrival: nothing was taken from the workload since.
            ta.map_or(i64::MAX, |a| a + sim.min_pre)
        } else {
            i64::MAX
        };
        let touched = match kind {
            Kind::Ready(i) => {
                if let ReplicaState::Starting(_) = sim.replicas[i as usize].state {
                    sim.set_state(i, ReplicaState::Active);
                    let p = sim.replicas[i as usize].pool;
                    sim.timeline_point(p, t);
                }
                if sim.flow.as_ref().is_some_and(|f| !f.is_empty()) {
                    sim.schedule_dispatch(t);
                }
                None
            }
            Kind::Enqueue(slot) => {
                let i = sim.slab[slot].instance;
                let inst = &mut sim.replicas[i as usize].inst;
                inst.set_plan_horizon(horizon);
                if inst.enqueue(slot, t, &mut sim.slab) {
                    sim.wakes.set(i, inst.wake_time());
                }
                Some(i)
            }
            Kind::Dispatch => {
                sim.dispatch_pending = false;
                sim.try_dispatch(t, workload);
                None
            }
            Kind::Scale(p) => {
                sim.autoscale(p as usize, t);
                if let Some(a) = &cfg.pools[p as usize].autoscaling {
                    sim.q.push(t + a.interval_us, Kind::Scale(p));
                }
                None
            }
            Kind::Wake(i) => {
                let inst = &mut sim.replicas[i as usize].inst;
                sim.done.clear();
                inst.set_plan_horizon(horizon);
                inst.finish_step(t, &mut sim.slab, &mut sim.done);
                sim.wakes.set(i, inst.wake_time());
                let done = std::mem::take(&mut sim.done);
                for &s in &done {
                    sim.on_done(i, s, t, workload);
                }
                sim.done = done;
                sim.maybe_terminate(i, t);
                Some(i)
            }
        };
        if opts.check_invariants {
            if let Some(i) = touched {
                sim.replicas[i as usize].inst.check_invariants(&sim.slab).map_err(SimError::Invariant)?;
            }
            sim.router.check_routable(&sim.replicas).map_err(SimError::Invariant)?;
        }
    }
    sim.finish(clock)
}

impl Sim<'_> {
    fn add_replica(&mut self, pool: usize, state: ReplicaState, now: i64) -> u32 {
        let id = self.replicas.len() as u32;
        let p = &self.cfg.pools[pool];
        let inst = Instance::new(id, p.instance.clone(), p.latency.clone(), self.opts.decode_fast_forward);
        self.replicas.push(Replica { inst, pool, state, billed_from: now, billed_to: None, routed: 0 });
        self.router.add_replica();
        self.set_state(id, state);
        self.wakes.add(id);
        id
    }

    fn timeline_point(&mut self, pool: usize, t: i64) {
        let (mut active, mut starting) = (0, 0);
        for r in self.replicas.iter().filter(|r| r.pool == pool) {
            match r.state {
                ReplicaState::Active => active += 1,
                ReplicaState::Starting(_) => starting += 1,
                _ => {}
            }
        }
        let s = &mut self.scale[pool];
        s.peak = s.peak.max(active + starting);
        self.out.timeline.push(TimelinePoint { t_us: t, pool: pool as u32, active, starting });
    }

    /// Records the state of every pool at the series' next sampling time. KV usage is read as stepping
    /// one step at a time would show it, so decode fast-forward gives the same series.
    fn sample(&mut self) {
        let at = self.out.series.next_due();
        self.pool_samples.clear();
        self.pool_samples.resize(self.cfg.pools.len(), PoolSample::default());
        for r in &self.replicas {
            let active = match r.state {
                ReplicaState::Active => true,
                ReplicaState::Draining => false,
                ReplicaState::Starting(_) | ReplicaState::Terminated => continue,
            };
            let p = &mut self.pool_samples[r.pool];
            p.waiting += r.inst.queue_len() as u32;
            p.running += r.inst.batch_len() as u32;
            p.kv_used += u64::from(r.inst.kv_used_at(at));
            p.kv_total += u64::from(r.inst.kv.total());
            p.active += u32::from(active);
        }
        let gateway = self.flow.as_ref().map_or(0, |f| f.len());
        self.out.series.record(gateway, &self.pool_samples);
    }

    fn priority_of(&self, req: &Request) -> i32 {
        self.cfg.gateway.class_priority.get(req.class as usize).copied().unwrap_or(0)
    }

    fn shed(&mut self, req: Request, reason: &'static str, t: i64, workload: &mut impl RequestSource) {
        self.out.shed.push(Rejected { id: req.id, class: req.class, reason });
        workload.on_request_done(&req, t, false);
        self.finished += 1;
    }

    fn detector(&self) -> Option<Detector> {
        self.router.epp().map(|e| e.detector)
    }

    fn saturated(&mut self, t: i64) -> bool {
        match self.detector() {
            Some(d) => {
                let (s, headroom) = self.router.saturation(&d, t, &self.replicas, &self.cfg.pools);
                s >= 1.0 + headroom
            }
            None => false,
        }
    }

    fn on_arrival(&mut self, req: Request, t: i64, workload: &mut impl RequestSource) {
        self.out.generated += 1;
        if let Some(c) = self.out.generated_per_class.get_mut(req.class as usize) {
            *c += 1;
        }
        let priority = self.priority_of(&req);
        if let Some(b) = &mut self.bucket {
            if !b.try_take(t, f64::from(req.input_tokens)) {
                return self.shed(req, "TokenBucket", t, workload);
            }
        }
        if let Some(p) = &self.cfg.gateway.probabilistic {
            if priority < p.exempt_priority {
                let d = self.detector().unwrap_or_default();
                let s = self.router.load_signal(p.signal, &d, t, &self.replicas, &self.cfg.pools);
                let admit = p.admit_probability(priority, s);
                if admit < 1.0 && self.admit_rng.random::<f64>() >= admit {
                    return self.shed(req, "Probabilistic", t, workload);
                }
            }
        }
        if let Some(f) = &mut self.flow {
            if let Err(req) = f.push(req, priority, t) {
                return self.shed(req, "QueueFull", t, workload);
            }
            self.try_dispatch(t, workload);
            return;
        }
        if priority < 0 && self.saturated(t) {
            return self.shed(req, "Saturated", t, workload);
        }
        if let Err(req) = self.route(req, t, workload) {
            self.shed(req, "NoEndpoint", t, workload);
        }
    }

    fn schedule_dispatch(&mut self, t: i64) {
        if !self.dispatch_pending {
            self.dispatch_pending = true;
            self.q.push(t + self.cfg.gateway.dispatch_interval_us.max(1), Kind::Dispatch);
        }
    }

    /// One flow-control dispatch attempt: expire, then send the head request if not saturated.
    fn try_dispatch(&mut self, t: i64, workload: &mut impl RequestSource) {
        let Some(f) = &mut self.flow else {
            return;
        };
        f.expire(t, &mut self.expired);
        for req in std::mem::take(&mut self.expired) {
            self.out.timed_out.push(Rejected { id: req.id, class: req.class, reason: "QueueTimeout" });
            workload.on_request_done(&req, t, false);
            self.finished += 1;
        }
        // Usage limit (priority hold-back): sheddable bands (priority < 0) dispatch only below
        // SHEDDABLE_CEILING of the saturation limit, keeping headroom for higher bands.
        let head = self.flow.as_ref().and_then(|f| f.head_priority());
        let open = head.is_some_and(|prio| match self.detector() {
            Some(d) => {
                let (s, headroom) = self.router.saturation(&d, t, &self.replicas, &self.cfg.pools);
                let ceiling = if prio < 0 { SHEDDABLE_CEILING } else { 1.0 };
                s < ceiling * (1.0 + headroom)
            }
            None => true,
        });
        if open {
            let req = self.flow.as_mut().and_then(|f| f.pop()).expect("not empty");
            let prio = self.priority_of(&req);
            if let Err(req) = self.route(req, t, workload) {
                if let Some(f) = &mut self.flow {
                    let at = t;
                    f.push_front(req, prio, at);
                }
            }
        }
        if self.flow.as_ref().is_some_and(|f| !f.is_empty()) {
            self.schedule_dispatch(t);
        }
    }

    /// Sends a request through the endpoint picker into replicas; gives it back if no replica can
    /// take it now.
    fn route(&mut self, req: Request, t: i64, workload: &mut impl RequestSource) -> Result<(), Request> {
        let Some(d) = self.router.decide(&req, t, &self.replicas, &self.cfg.pools) else {
            return Err(req);
        };
        let first = d.prefill.unwrap_or(d.target);
        for i in [Some(d.target), d.prefill].into_iter().flatten() {
            if let Err(why) = self.replicas[i as usize].inst.admissible(req.input_tokens, req.output_tokens) {
                self.out.rejected.push(Rejected { id: req.id, class: req.class, reason: why.reason() });
                workload.on_request_done(&req, t, false);
                self.finished += 1;
                return Ok(());
            }
        }
        let pre = self.cfg.pools[self.replicas[first as usize].pool]
            .latency
            .request_overheads()
            .before_first_token_us
            + match &self.cfg.router.policy {
                super::router::RouterPolicy::EndpointPicker(e) => e.gateway_us(req.input_tokens),
                _ => 0,
            };
        self.router.on_sent(d.target, req.input_tokens);
        self.replicas[d.target as usize].routed += 1;
        let slot = if let Some(p) = d.prefill {
            self.router.on_sent(p, req.input_tokens);
            self.replicas[p as usize].routed += 1;
            self.out.disaggregated += 1;
            let output = req.output_tokens;
            let mut pre_req = req;
            pre_req.output_tokens = 1;
            let mut l = LiveRequest::new(pre_req, p, t + pre);
            l.pd_decode = Some((d.target, output));
            self.slab.insert_with(|| l)
        } else {
            self.slab.insert_with(|| LiveRequest::new(req, d.target, t + pre))
        };
        self.q.push(t + pre, Kind::Enqueue(slot));
        Ok(())
    }

    fn on_done(&mut self, i: u32, s: u32, t: i64, workload: &mut impl RequestSource) {
        self.router.on_done(i, self.slab[s].req.input_tokens);
        if self.slab[s].pd_decode.is_some() {
            self.on_prefill_done(i, s, t);
            return;
        }
        self.finished += 1;
        let r = &self.slab[s];
        match &mut self.stream {
            Some(st) => {
                st.add(record(r));
                self.streamed += 1;
            }
            None => self.out.completed.push(record(r)),
        }
        workload.on_request_done(&r.req, r.last_token_us, true);
        self.slab.release(s);
    }

    /// P/D: the prefill part of request `s` finished on replica `i` at `t`; its prompt's KV goes to the
    /// decode replica.
    fn on_prefill_done(&mut self, i: u32, s: u32, t: i64) {
        let r = self.slab.remove(s);
        if let Some((d, output)) = r.pd_decode {
            // Prefill finished: transfer the prompt's KV to the decode replica.
            let dpool = &self.cfg.pools[self.replicas[d as usize].pool];
            let ppool = &self.cfg.pools[self.replicas[i as usize].pool];
            let bs = u64::from(dpool.instance.block_size);
            let tokens = u64::from(r.req.input_tokens).div_ceil(bs) * bs;
            let bytes = tokens as f64 * ppool.kv_bytes_per_token * f64::from(ppool.gpus_per_replica);
            self.transfers.retain(|&e| e > t);
            let share = if self.cfg.pd.contention { (self.transfers.len() + 1) as f64 } else { 1.0 };
            let dur = (self.cfg.pd.latency_us as f64 + bytes * share / self.cfg.pd.bytes_per_us)
                .ceil()
                .max(1.0) as i64;
            self.transfers.push(t + dur);
            self.out.transfer_us += dur;
            let mut req = r.req;
            req.output_tokens = output;
            let mut live = LiveRequest::new(req, d, t + dur);
            live.remote_kv = true;
            live.first_scheduled_us = r.first_scheduled_us;
            live.cached_tokens = r.cached_tokens;
            live.preemptions = r.preemptions;
            let slot = self.slab.insert_with(|| live);
            self.q.push(t + dur, Kind::Enqueue(slot));
        }
    }

    /// Moves replica `i` to `state`, and the router's view of whether it may be sent requests with it.
    fn set_state(&mut self, i: u32, state: ReplicaState) {
        let r = &mut self.replicas[i as usize];
        r.state = state;
        self.router.set_routable(i, r.pool, r.routable());
    }

    fn maybe_terminate(&mut self, i: u32, t: i64) {
        let r = &self.replicas[i as usize];
        if r.state == ReplicaState::Draining && r.inst.is_idle() && self.router.in_flight[i as usize] == 0 {
            self.set_state(i, ReplicaState::Terminated);
            let r = &mut self.replicas[i as usize];
            r.billed_to = Some(t);
            let p = r.pool;
            self.router.remove_replica(i);
            self.timeline_point(p, t);
        }
    }

    /// Whether an autoscaler could still scale some pool down (ticks continue after the work ends).
    fn scaling_may_continue(&self) -> bool {
        self.cfg.pools.iter().enumerate().any(|(p, pool)| {
            pool.autoscaling.is_some_and(|a| {
                let live = self
                    .replicas
                    .iter()
                    .filter(|r| {
                        r.pool == p && matches!(r.state, ReplicaState::Active | ReplicaState::Starting(_))
                    })
                    .count() as u32;
                live > a.min_replicas
            })
        })
    }

    fn autoscale(&mut self, p: usize, t: i64) {
        let Some(a) = self.cfg.pools[p].autoscaling else {
            return;
        };
        let mut active: Vec<u32> = Vec::new();
        let mut starting = 0u32;
        for (i, r) in self.replicas.iter().enumerate() {
            if r.pool != p {
                continue;
            }
            match r.state {
                ReplicaState::Active => active.push(i as u32),
                ReplicaState::Starting(_) => starting += 1,
                _ => {}
            }
        }
        let n = active.len() as u32;
        let (want_up, want_down) = match a.policy {
            ScalePolicy::Saturation { kv_threshold, queue_threshold, kv_spare, queue_spare } => {
                let (mut sat, mut kv_sum, mut q_sum, mut spare_kv, mut spare_q, mut unsat) =
                    (0, 0.0, 0.0, 0.0, 0.0, 0);
                for &i in &active {
                    let (q, _, kv) = self.router.metrics(i, t, &self.replicas);
                    let q = f64::from(q);
                    kv_sum += kv;
                    q_sum += q;
                    if kv >= kv_threshold || q >= queue_threshold {
                        sat += 1;
                    } else {
                        unsat += 1;
                        spare_kv += kv_threshold - kv;
                        spare_q += queue_threshold - q;
                    }
                }
                let up = n == 0
                    || unsat == 0
                    || spare_kv / f64::from(unsat.max(1)) < kv_spare
                    || spare_q / f64::from(unsat.max(1)) < queue_spare;
                let down = n > 1
                    && sat == 0
                    && kv_sum / f64::from(n - 1) <= (kv_threshold - kv_spare).max(0.0)
                    && q_sum / f64::from(n - 1) <= (queue_threshold - queue_spare).max(0.0);
                (up && sat > 0 || n == 0 && self.router.in_flight.iter().any(|&x| x > 0), down)
            }
            ScalePolicy::Hpa { target_in_flight } => {
                let cur: u32 = active.iter().map(|&i| self.router.in_flight[i as usize]).sum();
                let desired = (f64::from(cur) / target_in_flight).ceil() as u32;
                (desired > n + starting, desired < n)
            }
        };
        let s = self.scale[p];
        if want_up && starting == 0 && n + starting < a.max_replicas {
            let id = self.add_replica(p, ReplicaState::Starting(t + a.startup_us), t);
            self.q.push(t + a.startup_us, Kind::Ready(id));
            let st = &mut self.scale[p];
            st.ups += 1;
            st.last_change = t;
            st.down_since = None;
            self.timeline_point(p, t);
            return;
        }
        if !(want_down && starting == 0 && n > a.min_replicas) {
            self.scale[p].down_since = None;
            return;
        }
        let since = *self.scale[p].down_since.get_or_insert(t);
        if t - since < a.cooldown_us || t - s.last_change < a.cooldown_us {
            return;
        }
        // Drain the replica with the fewest requests in flight (newest on ties).
        let victim = *active
            .iter()
            .rev()
            .min_by_key(|&&i| self.router.in_flight[i as usize])
            .expect("n > min >= 0 means some replica");
        self.set_state(victim, ReplicaState::Draining);
        let st = &mut self.scale[p];
        st.downs += 1;
        st.last_change = t;
        st.down_since = None;
        self.timeline_point(p, t);
        self.maybe_terminate(victim, t);
    }

    fn finish(mut self, clock: i64) -> Result<SimOutput, SimError> {
        let end = self.work_end.max(0);
        let mut out = std::mem::take(&mut self.out);
        out.end_us = end;
        out.series.truncate_after(end);
        out.queued_at_end = self.flow.as_ref().map_or(0, |f| f.len());
        out.unfinished = self.slab.len() as u64 + out.queued_at_end;
        let _ = clock;
        out.instances = self
            .replicas
            .iter()
            .map(|r| {
                let inst = &r.inst;
                InstanceReport {
                    steps: inst.stats.steps,
                    busy_us: inst.stats.busy_us,
                    kv_block_us: inst.stats.kv_block_us,
                    total_blocks: inst.kv.total(),
                    peak_used_blocks: inst.stats.peak_used_blocks,
                    used_blocks_at_end: inst.kv.used(),
                    batch_us: inst.stats.batch_us,
                    preemptions: inst.stats.preemptions,
                    prefix_query_tokens: inst.kv.stats.query_tokens,
                    prefix_hit_tokens: inst.kv.stats.hit_tokens,
                    pool: r.pool as u32,
                    routed: r.routed,
                }
            })
            .collect();
        out.pools = self
            .cfg
            .pools
            .iter()
            .enumerate()
            .map(|(p, pool)| {
                let mut gpu_us = 0.0;
                let mut end_count = 0;
                for r in self.replicas.iter().filter(|r| r.pool == p) {
                    let to = r.billed_to.unwrap_or(end).min(end);
                    gpu_us += (to - r.billed_from).max(0) as f64 * f64::from(pool.gpus_per_replica);
                    if r.billed_to.is_none_or(|b| b > end) {
                        end_count += 1;
                    }
                }
                let s = self.scale[p];
                PoolReport {
                    name: pool.name.clone(),
                    role: pool.role.label(),
                    gpus_per_replica: pool.gpus_per_replica,
                    dollars_per_gpu_hour: pool.dollars_per_gpu_hour,
                    gpu_hours: gpu_us / 3.6e9,
                    replicas_start: pool.replicas,
                    replicas_peak: s.peak.max(pool.replicas),
                    replicas_end: end_count,
                    scale_ups: s.ups,
                    scale_downs: s.downs,
                }
            })
            .collect();
        let accounted = out.completed.len() as u64
            + self.streamed
            + out.rejected.len() as u64
            + out.shed.len() as u64
            + out.timed_out.len() as u64
            + out.unfinished;
        if accounted != out.generated {
            return Err(SimError::Invariant(format!(
                "{} requests generated but {accounted} accounted for",
                out.generated
            )));
        }
        Ok(out)
    }
}

fn record(r: &LiveRequest) -> RequestRecord {
    let a = r.req.arrival_us;
    let first = r.first_token_us.unwrap_or(r.last_token_us);
    RequestRecord {
        id: r.req.id,
        class: r.req.class,
        instance: r.instance,
        arrival_us: a,
        ttft_us: first - a,
        e2e_us: r.last_token_us - a,
        itl_sum_us: r.itl_sum_us,
        queue_us: r.first_scheduled_us.unwrap_or(r.last_token_us) - a,
        input_tokens: r.req.input_tokens,
        output_tokens: r.req.output_tokens.max(1),
        cached_tokens: r.cached_tokens,
        preemptions: r.preemptions,
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    /// Events come out in (time, kind priority, push order) order.
    #[test]
    fn events_pop_in_key_order() {
        let mut q = Queue::default();
        let pushes = [
            (5, Kind::Enqueue(1)),
            (5, Kind::Scale(3)),
            (5, Kind::Enqueue(2)),
            (-2, Kind::Dispatch),
            (5, Kind::Dispatch),
            (5, Kind::Ready(7)),
            (5, Kind::Enqueue(0)),
            (i64::MAX, Kind::Scale(0)),
            (i64::MIN, Kind::Scale(1)),
        ];
        for (t, k) in pushes {
            q.push(t, k);
        }
        let mut order = Vec::new();
        while let Some((t, p)) = q.peek() {
            let Reverse(e) = q.heap.pop().expect("peeked");
            assert_eq!((t, p), (e.time(), e.kind.priority()));
            order.push((t, e.kind));
        }
        assert_eq!(
            order,
            [
                (i64::MIN, Kind::Scale(1)),
                (-2, Kind::Dispatch),
                (5, Kind::Ready(7)),
                (5, Kind::Enqueue(1)),
                (5, Kind::Enqueue(2)),
                (5, Kind::Enqueue(0)),
                (5, Kind::Dispatch),
                (5, Kind::Scale(3)),
                (i64::MAX, Kind::Scale(0)),
            ]
        );
    }
}
