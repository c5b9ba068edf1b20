//! The cluster's discrete-event loop: one clock, one event queue, requests flowing from the workload
//! through the router into replicas.
//!
//! Ordering contract: events are ordered by (time, kind priority, sequence number). At equal time an
//! arrival comes first, then enqueues, then replica step ends, each in the order they were scheduled;
//! heap or hash order never decides anything.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rand::Rng;

use super::instance::{Instance, InstanceConfig};
use super::request::{LiveRequest, Slab};
use crate::latency::LatencyModel;
use crate::metrics::{InstanceReport, Rejected, RequestRecord, SimOutput};
use crate::rng::{self, SimRng};
use crate::workload::WorkloadGen;

/// How the gateway picks a replica (the endpoint-picker pipeline extends this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterPolicy {
    /// Cycle through replicas.
    RoundRobin,
    /// Fewest requests in flight (router's own exact count), ties broken at random.
    LeastRequests,
}

/// Everything the loop needs about the deployment.
#[derive(Clone)]
pub struct ClusterConfig {
    /// Number of identical replicas.
    pub replicas: u32,
    /// Their serving knobs.
    pub instance: InstanceConfig,
    /// Their step-time model.
    pub latency: Arc<dyn LatencyModel>,
    /// Routing.
    pub router: RouterPolicy,
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
}

impl Default for SimOptions {
    fn default() -> Self {
        Self { decode_fast_forward: true, check_invariants: false, max_events: None }
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
    /// A routed request reaches its replica's queue (slot).
    Enqueue(u32),
    /// A replica's step or decode run ends (instance, generation).
    Wake(u32, u64),
}

impl Kind {
    fn priority(self) -> u8 {
        match self {
            Kind::Enqueue(_) => 1,
            Kind::Wake(..) => 2,
        }
    }
}

type Event = Reverse<(i64, u8, u64, Kind)>;

struct Queue {
    heap: BinaryHeap<Event>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, t: i64, k: Kind) {
        self.seq += 1;
        self.heap.push(Reverse((t, k.priority(), self.seq, k)));
    }
    fn peek_time(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((t, ..))| *t)
    }
}

/// Runs the cluster on the workload until it drains (or the horizon), returning every record.
pub fn run(
    cfg: &ClusterConfig,
    workload: &mut WorkloadGen,
    opts: &SimOptions,
    obs: &mut dyn Observer,
) -> Result<SimOutput, SimError> {
    let n = cfg.replicas.max(1);
    let mut instances: Vec<Instance> = (0..n)
        .map(|i| Instance::new(i, cfg.instance.clone(), cfg.latency.clone(), opts.decode_fast_forward))
        .collect();
    let pre = cfg.latency.request_overheads().before_first_token_us;
    let mut router_rng: SimRng = rng::stream(cfg.seed, "router");
    let mut rr_next = 0u32;
    let mut in_flight = vec![0u32; n as usize];
    let mut slab = Slab::default();
    let mut q = Queue { heap: BinaryHeap::new(), seq: 0 };
    let mut out =
        SimOutput { generated_per_class: vec![0; workload.class_names().len()], ..SimOutput::default() };
    let mut done: Vec<u32> = Vec::new();
    // Enqueue times of routed requests not yet queued (non-decreasing), for the plan horizon.
    let mut pending_enqueues: std::collections::VecDeque<i64> = std::collections::VecDeque::new();
    let mut clock = i64::MIN;
    let mut finished = 0u64;

    loop {
        let ta = workload.peek_time();
        let te = q.peek_time();
        let (t, arrival) = match (ta, te) {
            (None, None) => break,
            (Some(a), None) => (a, true),
            (None, Some(e)) => (e, false),
            (Some(a), Some(e)) => {
                if a <= e {
                    (a, true)
                } else {
                    (e, false)
                }
            }
        };
        if cfg.horizon_us.is_some_and(|h| t > h) {
            break;
        }
        if t < clock {
            return Err(SimError::Invariant(format!("clock moved back from {clock} to {t} µs")));
        }
        clock = t;
        out.events += 1;
        if opts.max_events.is_some_and(|m| out.events > m) {
            return Err(SimError::TooManyEvents(opts.max_events.unwrap_or(0)));
        }
        if out.events % 4096 == 0 {
            obs.on_progress(t, finished);
            if obs.should_stop() {
                return Err(SimError::Cancelled { at_ms: t as f64 / 1000.0 });
            }
        }

        let touched = if arrival {
            let req = workload.pop().expect("peeked arrival");
            out.generated += 1;
            if let Some(c) = out.generated_per_class.get_mut(req.class as usize) {
                *c += 1;
            }
            let i = match cfg.router {
                RouterPolicy::RoundRobin => {
                    let i = rr_next % n;
                    rr_next = rr_next.wrapping_add(1);
                    i
                }
                RouterPolicy::LeastRequests => least_loaded(&in_flight, &mut router_rng),
            };
            if let Err(why) = instances[i as usize].admissible(req.input_tokens, req.output_tokens) {
                out.rejected.push(Rejected { id: req.id, class: req.class, reason: why.reason() });
                workload.on_request_done(&req, t, false);
                finished += 1;
                continue;
            }
            in_flight[i as usize] += 1;
            let slot = slab.insert(LiveRequest::new(req, i, t + pre));
            q.push(t + pre, Kind::Enqueue(slot));
            pending_enqueues.push_back(t + pre);
            continue;
        } else {
            let Reverse((_, _, _, kind)) = q.heap.pop().expect("peeked event");
            if matches!(kind, Kind::Enqueue(_)) {
                pending_enqueues.pop_front();
            }
            let horizon = workload
                .peek_time()
                .map_or(i64::MAX, |a| a + pre)
                .min(pending_enqueues.front().copied().unwrap_or(i64::MAX));
            match kind {
                Kind::Enqueue(slot) => {
                    let i = slab[slot].instance;
                    let inst = &mut instances[i as usize];
                    inst.set_plan_horizon(horizon);
                    if inst.enqueue(slot, t, &mut slab) {
                        if let Some(w) = inst.wake_time() {
                            q.push(w, Kind::Wake(i, inst.generation));
                        }
                    }
                    i
                }
                Kind::Wake(i, gen) => {
                    let inst = &mut instances[i as usize];
                    if gen != inst.generation {
                        continue;
                    }
                    done.clear();
                    inst.set_plan_horizon(horizon);
                    inst.finish_step(t, &mut slab, &mut done);
                    if let Some(w) = inst.wake_time() {
                        q.push(w, Kind::Wake(i, inst.generation));
                    }
                    for &s in &done {
                        let r = slab.remove(s);
                        in_flight[i as usize] -= 1;
                        finished += 1;
                        out.completed.push(record(&r));
                        workload.on_request_done(&r.req, r.last_token_us, true);
                    }
                    i
                }
            }
        };
        if opts.check_invariants {
            instances[touched as usize].kv.check_invariants().map_err(SimError::Invariant)?;
        }
    }

    out.end_us = clock.max(0);
    out.unfinished = slab.len() as u64;
    out.instances = instances
        .iter()
        .map(|inst| InstanceReport {
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
        })
        .collect();
    let accounted = out.completed.len() as u64 + out.rejected.len() as u64 + out.unfinished;
    if accounted != out.generated {
        return Err(SimError::Invariant(format!(
            "{} requests generated but {accounted} accounted for",
            out.generated
        )));
    }
    Ok(out)
}

fn least_loaded(in_flight: &[u32], rng: &mut SimRng) -> u32 {
    let min = *in_flight.iter().min().expect("at least one replica");
    let ties = in_flight.iter().filter(|&&x| x == min).count();
    let pick = if ties == 1 { 0 } else { rng.random_range(0..ties) };
    in_flight
        .iter()
        .enumerate()
        .filter(|(_, &x)| x == min)
        .nth(pick)
        .map(|(i, _)| i as u32)
        .expect("pick < ties")
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
