//! Evaluating many scenario specs in parallel on all cores (rayon), with a progress bar: the one
//! engine behind sweeps, searches and the optimiser. Results come back in input order, so they do
//! not depend on the number of threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::expand::Candidate;
use super::spec::{Figures, Objective};
use blis_import::resolve;
use blis_sim::metrics::{gates, Summary};
use blis_sim::scenario::limits::{LimitObserver, RunLimits};
use blis_sim::scenario::{simulate, RunError, ScenarioSpec};
use blis_sim::sim::{SimError, SimOptions};
use blis_sim::workload::Trace;

/// Worker threads: the given number, else every core; capped by the sweep's `maxParallel`.
pub fn threads(requested: Option<usize>, max_parallel: Option<i64>) -> usize {
    let n = requested.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cap = max_parallel.filter(|m| *m > 0).map_or(usize::MAX, |m| m as usize);
    n.clamp(1, cap.max(1))
}

/// A bar with ETA on stderr when `visible` (and stderr is a terminal); otherwise hidden.
pub fn progress_bar(total: usize, label: &str, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total as u64),
        if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ETA {eta}")
            .expect("valid template"),
    );
    bar.set_message(label.to_string());
    bar
}

/// Runs `f` on a pool of `threads` threads (the global pool if one cannot be made).
pub fn on_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    match rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// How a batch of runs shows progress and learns that it should stop.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Show a progress bar on stderr.
    pub visible: bool,
    /// Once set, runs not yet started are skipped (they fail as cancelled).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Deadline of the batch and request cap of each run (the controller's limits).
    pub limits: Option<RunLimits>,
    /// The first limit a run exceeded; the batch stops there.
    exceeded: Arc<Mutex<Option<String>>>,
}

impl RunControl {
    /// Progress bar when `visible`, never cancelled, no limits.
    pub fn visible(visible: bool) -> Self {
        Self { visible, ..Self::default() }
    }

    /// Hidden, stopped by `cancel`, within `limits`.
    pub fn limited(cancel: Arc<AtomicBool>, limits: Option<RunLimits>) -> Self {
        Self { cancel: Some(cancel), limits, ..Self::default() }
    }

    /// Whether the batch was cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// The limit that stopped the batch, if one did.
    pub fn exceeded(&self) -> Option<String> {
        self.exceeded.lock().expect("lock").clone()
    }

    /// Runs `spec`; a cancellation or an exceeded limit stops it within a few thousand events (or
    /// before it starts).
    pub fn run(
        &self,
        name: &str,
        spec: &ScenarioSpec,
        trace: Option<&Arc<Trace>>,
    ) -> Result<Summary, RunError> {
        if self.cancelled() || self.exceeded().is_some() {
            return Err(RunError::Sim(SimError::Cancelled { at_ms: 0.0 }));
        }
        let resolved = resolve(name, spec)?;
        let mut observer = LimitObserver::new(self.cancel.as_deref(), self.limits);
        // Candidates run side by side on every core: none generates its workload on another thread.
        let opts = SimOptions { helper_threads: false, ..SimOptions::default() };
        let out = simulate(&resolved, trace.cloned(), &opts, &mut observer);
        if let Some(why) = observer.exceeded() {
            self.exceeded.lock().expect("lock").get_or_insert(format!("{name}: {why}"));
        }
        out.map(|o| o.summary)
    }
}

/// Validates and simulates every spec on `threads` threads, advancing `bar` once per finished run;
/// after `control` is cancelled the rest fail at once. `trace` is the trace of a trace-replaying
/// base. Summaries are in input order.
pub fn evaluate(
    specs: &[ScenarioSpec],
    trace: Option<&Arc<Trace>>,
    threads: usize,
    bar: &ProgressBar,
    control: &RunControl,
) -> Vec<Result<Summary, RunError>> {
    on_pool(threads, || {
        specs
            .par_iter()
            .enumerate()
            .map(|(i, spec)| {
                let out = control.run(&format!("candidate-{i}"), spec, trace);
                bar.inc(1);
                out
            })
            .collect()
    })
}

/// What one candidate achieved: its figures, whether it passes the gates, and why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateResult {
    /// Index in the expansion order.
    pub index: usize,
    /// Candidate name.
    pub name: String,
    /// Swept settings, by path.
    pub settings: std::collections::BTreeMap<String, serde_json::Value>,
    /// Passes every gate (in every replication).
    pub feasible: bool,
    /// Messages of the failed gates (first failing replication), or why it could not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// Mean figures over replications (absent when it could not run).
    pub figures: Option<Figures>,
    /// Half-width of the objective's 95% confidence interval (with two or more replications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective_ci95: Option<f64>,
    /// Saturation search: the highest rate found to pass the gates (requests/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
}

/// Gate messages a run fails (the spec's `gates`, class SLOs included).
pub fn failed_gates(spec: &ScenarioSpec, s: &Summary) -> Vec<String> {
    gates::evaluate(&spec.gates.clone().unwrap_or_default(), s)
        .into_iter()
        .filter(|g| !g.passed)
        .map(|g| g.message)
        .collect()
}

/// Seeds of a candidate's replications: the sweep seed, then the next ones (the same for every
/// candidate, so comparisons are paired).
pub fn replication_seeds(seed: u64, replications: u32) -> Vec<u64> {
    (0..u64::from(replications.max(1))).map(|k| seed.wrapping_add(k)).collect()
}

/// Two-sided 95% Student t quantile for `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const T: [f64; 10] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
    match df {
        0 => f64::NAN,
        1..=10 => T[df - 1],
        11..=20 => 2.086 + (20 - df) as f64 * (2.228 - 2.086) / 10.0,
        21..=30 => 2.042 + (30 - df) as f64 * (2.086 - 2.042) / 10.0,
        _ => 1.96,
    }
}

/// Half-width of the 95% confidence interval of the mean of `xs` (None for fewer than two values or
/// non-finite ones).
pub fn ci95(xs: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n < 2 || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some((t95(n - 1) * (var / n as f64).sqrt() * 1e6).round() / 1e6)
}

impl CandidateResult {
    /// A candidate's result from its replications' runs (in seed order).
    pub fn new(c: &Candidate, runs: &[Result<Summary, RunError>], objective: Objective) -> Self {
        let mut failed = Vec::new();
        let mut figures = Vec::with_capacity(runs.len());
        for run in runs {
            match run {
                Ok(s) => {
                    if failed.is_empty() {
                        failed = failed_gates(&c.spec, s);
                    }
                    figures.push(Figures::of(s));
                }
                Err(e) => {
                    failed = vec![format!("cannot run: {e}")];
                    figures.clear();
                    break;
                }
            }
        }
        let objective_ci95 = ci95(&figures.iter().map(|f| objective.value(f)).collect::<Vec<_>>());
        Self {
            index: c.index,
            name: c.name.clone(),
            settings: c.settings.clone(),
            feasible: failed.is_empty() && !figures.is_empty(),
            failed,
            figures: (!figures.is_empty()).then(|| Figures::mean(&figures)),
            objective_ci95,
            max_rate: None,
        }
    }
}

/// Simulates `candidates` (each `replications` times with the common seeds) on `threads` threads and
/// returns their results in input order.
pub fn run_candidates(
    candidates: &[Candidate],
    replications: u32,
    objective: Objective,
    trace: Option<&Arc<Trace>>,
    threads: usize,
    bar: &ProgressBar,
    control: &RunControl,
) -> Vec<CandidateResult> {
    let reps = replications.max(1) as usize;
    let specs: Vec<ScenarioSpec> = candidates
        .iter()
        .flat_map(|c| {
            let seed = c.spec.seed.unwrap_or(super::expand::DEFAULT_SEED);
            replication_seeds(seed, replications)
                .into_iter()
                .map(move |s| ScenarioSpec { seed: Some(s), ..c.spec.clone() })
        })
        .collect();
    let runs = evaluate(&specs, trace, threads, bar, control);
    candidates.iter().zip(runs.chunks(reps)).map(|(c, r)| CandidateResult::new(c, r, objective)).collect()
}
