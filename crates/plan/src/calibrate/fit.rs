//! Fitting a GPU profile's coefficients to measured experiments.
//!
//! Method (deterministic): step time is linear in the coefficients, so for a fixed batch trajectory every
//! experiment's mean TTFT and mean E2E are linear in them too. Each outer iteration
//! 1. simulates every fitting experiment with the current coefficients, with a recording wrapper around
//!    the step-time model that accumulates the basis terms of every step, weighted three ways: by decoding
//!    requests (→ the inter-token time each request accumulates), by prefilling requests (→ the prefill
//!    steps on the way to the first token) and by step duration (→ the residual step an arrival waits for);
//! 2. builds, per experiment, linear rows for mean TTFT and mean E2E (the TTFT row rescaled so that it
//!    reproduces the simulated TTFT exactly at the current point: queueing and idle time are carried by
//!    the scale);
//! 3. solves a non-negative, ridge-regularised least-squares problem on relative errors (APE², i.e. each
//!    row divided by its measurement), the ridge pulling each coefficient towards [`Coefficients::prior`]
//!    in units of the prior;
//! 4. moves part of the way to the solution (damping the feedback of step times on batch sizes; smaller
//!    moves in the second half of the iterations).
//!
//! The result is the visited point with the lowest simulated loss (Σ APE² of mean E2E plus the weighted
//! Σ APE² of mean TTFT).

#![allow(clippy::needless_range_loop)] // Small fixed-size linear algebra reads best with indices.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::score;
use blis_import::experiment::Experiment;
use blis_sim::catalog::calibration::{
    Calibration, Coefficients, NUM_BASIS, NUM_PARAMS, PARAM_NAMES, STEP_FITTED,
};
use blis_sim::latency::calibrated::{Basis, Calibrated};
use blis_sim::latency::{LatencyModel, RequestOverheads, StepBatch};
use blis_sim::scenario::RunError;
use blis_sim::sim::SimOptions;

/// Fit settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Outer iterations (simulate, linearise, solve).
    pub iterations: usize,
    /// Ridge weight towards the prior, per coefficient.
    pub ridge: f64,
    /// Weight of TTFT rows relative to E2E rows.
    pub ttft_weight: f64,
    /// Fraction of the way to each solution the iterate moves.
    pub step: f64,
    /// Relative error beyond which a row's weight decays (Huber).
    pub huber: f64,
    /// Worker threads.
    pub threads: usize,
    /// Values of the step-fitted coefficients ([`STEP_FITTED`], in that order: fitted to cluster step
    /// observations) to write into the result; `None`: `prefillAttention` = `prefillCompute`,
    /// `longContextKv` = `longPromptCompute` = 0, i.e. the model the fit itself used.
    pub step_fitted: Option<[f64; STEP_FITTED.len()]>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            iterations: 10,
            ridge: 1e-3,
            ttft_weight: 0.5,
            step: 0.6,
            huber: 0.1,
            threads: super::default_threads(),
            step_fitted: None,
        }
    }
}

/// Per-parameter multipliers of the ridge: prompts of the measured workloads are almost entirely prefix
/// cache hits, so compute hardly shows in them and is held near a physical efficiency (50 % of peak); and after-last-token overheads only shift
/// timestamps (they never change batching), so the means alone cannot tell them from step time; they are
/// held close to typical vLLM streaming costs.
const RIDGE_SCALE: [f64; NUM_PARAMS] =
    [1.0, 1.0, 1.0, 30.0, 30.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 100.0, 10.0];

/// Index of `prefillCompute` in [`PARAM_NAMES`].
const PREFILL_COMPUTE: usize = 3;
/// Index of `prefillAttention` in [`PARAM_NAMES`].
const PREFILL_ATTENTION: usize = 11;
/// Index of `longContextKv` in [`PARAM_NAMES`].
const LONG_CONTEXT_KV: usize = 12;
/// Index of `longPromptCompute` in [`PARAM_NAMES`].
const LONG_PROMPT_COMPUTE: usize = 13;
/// Indices of [`STEP_FITTED`] in [`PARAM_NAMES`], in its order.
const STEP_FITTED_INDEX: [usize; STEP_FITTED.len()] =
    [PREFILL_ATTENTION, LONG_CONTEXT_KV, LONG_PROMPT_COMPUTE];

/// The step-fitted coefficients of `c`, in [`STEP_FITTED`] order (for [`FitOptions::step_fitted`]).
pub fn step_fitted_of(c: &Coefficients) -> [f64; STEP_FITTED.len()] {
    let v = c.to_vec();
    STEP_FITTED_INDEX.map(|k| v[k])
}

/// The coefficients the fit simulates with: the step-fitted ones
/// ([`blis_sim::catalog::calibration::STEP_FITTED`]) are not identifiable from single-replica means, so
/// prompt attention is priced with `prefillCompute` (as one prefill-compute term), long-context KV and
/// long-prompt compute at zero (no fitting experiment decodes beyond the threshold, and long prompts
/// cannot be told from the other prefill costs).
fn fit_point(theta: &[f64; NUM_PARAMS]) -> [f64; NUM_PARAMS] {
    let mut t = *theta;
    t[PREFILL_ATTENTION] = t[PREFILL_COMPUTE];
    t[LONG_CONTEXT_KV] = 0.0;
    t[LONG_PROMPT_COMPUTE] = 0.0;
    t
}

#[derive(Debug, Clone, Default)]
struct Acc {
    /// Σ over steps of decoding requests × basis.
    dec: [f64; NUM_BASIS],
    /// Σ over steps of prefilling requests × basis.
    pf: [f64; NUM_BASIS],
    /// Σ over steps of duration × basis.
    dur: [f64; NUM_BASIS],
    /// Σ durations.
    dur_sum: f64,
}

/// A step-time model that records the basis terms of every step it times.
struct Recorder {
    model: Calibrated,
    acc: Mutex<Acc>,
}

impl LatencyModel for Recorder {
    fn step_time_us(&self, batch: &StepBatch) -> i64 {
        let dt = self.model.step_time_us(batch);
        let x = self.model.basis().features(batch);
        let mut a = self.acc.lock().unwrap_or_else(|p| p.into_inner());
        let (d, p, t) = (f64::from(batch.decode_seqs), f64::from(batch.prefill_seqs), dt as f64);
        for k in 0..NUM_BASIS {
            a.dec[k] += d * x[k];
            a.pf[k] += p * x[k];
            a.dur[k] += t * x[k];
        }
        a.dur_sum += t;
        dt
    }
    fn request_overheads(&self) -> RequestOverheads {
        self.model.request_overheads()
    }
    fn name(&self) -> &str {
        "calibrated-recording"
    }
}

/// One experiment's linearisation at the current point.
#[derive(Debug, Clone)]
struct Rows {
    ttft: [f64; NUM_PARAMS],
    e2e: [f64; NUM_PARAMS],
    meas_ttft: f64,
    meas_e2e: f64,
    pred: score::Metrics,
}

fn linearise(e: &Experiment, cal: &Calibration, runs_at_once: usize) -> Result<Rows, RunError> {
    let built = e.scenario(Some(cal))?;
    let resolved = blis_import::resolve(&e.id, &built.spec)?;
    let c = cal.coefficients;
    let rec = Arc::new(Recorder {
        model: Calibrated::new(&resolved.model, &resolved.gpu, resolved.tensor_parallelism, &c),
        acc: Mutex::new(Acc::default()),
    });
    // Stepping one by one: every timed step is a step that ran.
    let opts = SimOptions { decode_fast_forward: false, ..SimOptions::sharing(runs_at_once) };
    let sim = super::simulate(e, Some(cal), Some(rec.clone()), &opts)?;
    let pred = score::predicted(&sim.output);
    let acc = rec.acc.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let n = sim.output.completed.len().max(1) as f64;
    let outputs = sim.output.completed.iter().map(|r| f64::from(r.output_tokens)).sum::<f64>() / n;
    let ov = rec.model.request_overheads();
    let beta = &c.to_vec()[..NUM_BASIS];
    // TTFT engine part: prefill steps + the residual of the step in flight at arrival.
    let mut g = [0.0; NUM_BASIS];
    for k in 0..NUM_BASIS {
        g[k] = acc.pf[k] / n + acc.dur[k] / (2.0 * acc.dur_sum.max(1.0));
    }
    let est: f64 = (0..NUM_BASIS).map(|k| beta[k] * g[k]).sum();
    let ttft_sim_us = pred[3].unwrap_or(0.0) * 1e3;
    let engine = ttft_sim_us - (ov.before_first_token_us + ov.per_output_token_us) as f64;
    let scale = if est > 0.0 && engine > 0.0 { engine / est } else { 1.0 };
    let mut ttft = [0.0; NUM_PARAMS];
    let mut e2e = [0.0; NUM_PARAMS];
    for k in 0..NUM_BASIS {
        ttft[k] = scale * g[k];
        e2e[k] = ttft[k] + acc.dec[k] / n;
    }
    // The step-fitted terms: attention rides on prefillCompute, the long-context terms are not fitted.
    for row in [&mut ttft, &mut e2e] {
        row[PREFILL_COMPUTE] += row[PREFILL_ATTENTION];
        row[PREFILL_ATTENTION] = 0.0;
        row[LONG_CONTEXT_KV] = 0.0;
        row[LONG_PROMPT_COMPUTE] = 0.0;
    }
    ttft[NUM_BASIS] = 1.0;
    ttft[NUM_BASIS + 1] = 1.0;
    e2e[NUM_BASIS] = 1.0;
    e2e[NUM_BASIS + 1] = outputs;
    e2e[NUM_BASIS + 2] = 1.0;
    let s = &e.measured.summary;
    Ok(Rows { ttft, e2e, meas_ttft: s.ttft_ms.mean * 1e3, meas_e2e: s.e2e_ms.mean * 1e3, pred })
}

/// Minimises ½ xᵀQx − cᵀx subject to x ≥ 0 by cyclic coordinate descent (Q positive definite).
fn nnqp(
    q: &[[f64; NUM_PARAMS]; NUM_PARAMS],
    c: &[f64; NUM_PARAMS],
    x0: &[f64; NUM_PARAMS],
) -> [f64; NUM_PARAMS] {
    let mut x = *x0;
    for _ in 0..20_000 {
        let mut moved = 0.0f64;
        for k in 0..NUM_PARAMS {
            let mut r = c[k];
            for j in 0..NUM_PARAMS {
                if j != k {
                    r -= q[k][j] * x[j];
                }
            }
            let new = (r / q[k][k]).max(0.0);
            moved = moved.max((new - x[k]).abs());
            x[k] = new;
        }
        if moved < 1e-12 {
            break;
        }
    }
    x
}

/// Progress of one outer iteration.
#[derive(Debug, Clone)]
pub struct IterationReport {
    /// Iteration number (0-based).
    pub iteration: usize,
    /// Median APE of mean E2E over the fitting experiments at the start of the iteration.
    pub median_e2e_ape: f64,
    /// Median APE of mean TTFT.
    pub median_ttft_ape: f64,
    /// The least-squares objective at the start of the iteration.
    pub loss: f64,
}

/// The result of a fit.
#[derive(Debug, Clone)]
pub struct FitResult {
    /// The calibration (coefficients and provenance).
    pub calibration: Calibration,
    /// Per-iteration progress.
    pub iterations: Vec<IterationReport>,
}

/// Fits the coefficients of `gpu` to `exps` (all must be on that GPU), starting from the prior.
pub fn fit(exps: &[Experiment], gpu: &str, opts: &FitOptions) -> Result<FitResult, RunError> {
    let prior = Coefficients::prior().to_vec();
    let mut theta = prior;
    let mut iterations = Vec::new();
    let cal_of = |theta: &[f64; NUM_PARAMS]| Calibration {
        gpu: gpu.to_string(),
        transferred_from: None,
        coefficients: Coefficients::from_vec(&fit_point(theta)),
        provenance: None,
        refitted: Vec::new(),
    };
    let mut best: Option<(f64, [f64; NUM_PARAMS])> = None;
    // One pass per iteration plus a final one that only scores the last point.
    for it in 0..=opts.iterations {
        let cal = cal_of(&theta);
        let at_once = opts.threads.min(exps.len());
        let rows = super::par_map(exps, opts.threads, |e| linearise(e, &cal, at_once));
        let rows: Vec<Rows> = rows.into_iter().collect::<Result<_, _>>()?;
        // Normal equations in units of the prior (x = θ / prior).
        let mut q = [[0.0; NUM_PARAMS]; NUM_PARAMS];
        let mut c = [0.0; NUM_PARAMS];
        let mut loss = 0.0;
        let mut e2e_apes = Vec::new();
        let mut ttft_apes = Vec::new();
        for r in &rows {
            let sim_ttft = r.pred[3].unwrap_or(0.0) * 1e3;
            let sim_e2e = r.pred[0].unwrap_or(0.0) * 1e3;
            for (row, meas, sim, w) in
                [(&r.ttft, r.meas_ttft, sim_ttft, opts.ttft_weight), (&r.e2e, r.meas_e2e, sim_e2e, 1.0)]
            {
                // Huber weights: rows far off at the current point (e.g. an overloaded run, where the
                // linearisation is poor) count linearly, not quadratically.
                let res = ((sim - meas) / meas).abs();
                let w = w * if res > opts.huber { opts.huber / res } else { 1.0 };
                let a: Vec<f64> = (0..NUM_PARAMS).map(|k| row[k] * prior[k] / meas).collect();
                for i in 0..NUM_PARAMS {
                    c[i] += w * a[i];
                    for j in 0..NUM_PARAMS {
                        q[i][j] += w * a[i] * a[j];
                    }
                }
            }
            let pe = 100.0 * (r.pred[0].unwrap_or(0.0) * 1e3 - r.meas_e2e).abs() / r.meas_e2e;
            let pt = 100.0 * (r.pred[3].unwrap_or(0.0) * 1e3 - r.meas_ttft).abs() / r.meas_ttft;
            loss += (pe / 100.0).powi(2) + opts.ttft_weight * (pt / 100.0).powi(2);
            e2e_apes.push(Some(pe));
            ttft_apes.push(Some(pt));
        }
        let med = |v: &[Option<f64>]| {
            let a = score::aggregate(
                v.iter()
                    .map(|x| {
                        let mut m = [None; score::NUM_METRICS];
                        m[0] = *x;
                        m
                    })
                    .collect::<Vec<_>>()
                    .iter(),
            );
            a.median[0].unwrap_or(f64::NAN)
        };
        iterations.push(IterationReport {
            iteration: it,
            median_e2e_ape: med(&e2e_apes),
            median_ttft_ape: med(&ttft_apes),
            loss,
        });
        if best.as_ref().is_none_or(|(l, _)| loss < *l) {
            best = Some((loss, theta));
        }
        if it == opts.iterations {
            break;
        }
        for k in 0..NUM_PARAMS {
            let ridge = opts.ridge * RIDGE_SCALE[k];
            q[k][k] += ridge;
            c[k] += ridge;
        }
        let x0: [f64; NUM_PARAMS] = std::array::from_fn(|k| theta[k] / prior[k]);
        let x = nnqp(&q, &c, &x0);
        // Smaller moves in the second half, to settle rather than oscillate.
        let step = if 2 * it < opts.iterations { opts.step } else { opts.step / 2.0 };
        for k in 0..NUM_PARAMS {
            let target = x[k] * prior[k];
            theta[k] += step * (target - theta[k]);
            // Round to 6 significant digits so the shipped file and a re-run compare cleanly.
            theta[k] = round_sig(theta[k], 6);
        }
    }
    // The point with the lowest simulated loss.
    let theta = best.map_or(theta, |(_, t)| t);
    let ids: Vec<&str> = exps.iter().map(|e| e.id.as_str()).collect();
    let mut cal = cal_of(&theta);
    if let Some(held) = opts.step_fitted {
        let mut v = cal.coefficients.to_vec();
        for (k, value) in STEP_FITTED_INDEX.into_iter().zip(held) {
            v[k] = value;
        }
        cal.coefficients = Coefficients::from_vec(&v);
    }
    cal.provenance = Some(json!({
        "command": "blis calibrate",
        "method": "iterated non-negative ridge least squares on relative errors of mean TTFT and mean E2E, linearised over simulated step-level basis terms",
        "options": {"iterations": opts.iterations, "ridge": opts.ridge, "ttftWeight": opts.ttft_weight, "step": opts.step, "huber": opts.huber},
        "experiments": ids,
        "parameters": PARAM_NAMES,
        "stepFitted": {
            "parameters": STEP_FITTED,
            "method": "not identifiable from these experiments (prompt attention is fitted as part of prefillCompute, no decode beyond the long-context threshold, long prompts not separable from other prefill costs); the values are carried from the held profile, fitted to cluster per-step observations",
            "held": opts.step_fitted.is_some(),
        },
    }));
    Ok(FitResult { calibration: cal, iterations })
}

fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let p = digits - 1 - x.abs().log10().floor() as i32;
    let m = 10f64.powi(p);
    (x * m).round() / m
}

/// The largest relative difference between two coefficient sets (absolute below `floor`).
pub fn max_relative_difference(a: &Coefficients, b: &Coefficients, floor: f64) -> (f64, &'static str) {
    let (va, vb) = (a.to_vec(), b.to_vec());
    let mut worst = (0.0, PARAM_NAMES[0]);
    for k in 0..NUM_PARAMS {
        let d = (va[k] - vb[k]).abs() / va[k].abs().max(vb[k].abs()).max(floor);
        if d > worst.0 {
            worst = (d, PARAM_NAMES[k]);
        }
    }
    worst
}

/// Basis constants for tests and reports.
pub fn basis_of(e: &Experiment) -> Option<Basis> {
    let built = e.scenario(None).ok()?;
    let r = blis_import::resolve(&e.id, &built.spec).ok()?;
    Some(Basis::new(&r.model, &r.gpu, r.tensor_parallelism))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_fitted_indices_name_their_coefficients_and_ride_on_the_fit_point() {
        assert_eq!(PARAM_NAMES[PREFILL_COMPUTE], "prefillCompute");
        assert_eq!(PARAM_NAMES[PREFILL_ATTENTION], "prefillAttention");
        assert_eq!(PARAM_NAMES[LONG_CONTEXT_KV], "longContextKv");
        assert_eq!(PARAM_NAMES[LONG_PROMPT_COMPUTE], "longPromptCompute");
        for (i, k) in STEP_FITTED_INDEX.into_iter().enumerate() {
            assert_eq!(PARAM_NAMES[k], STEP_FITTED[i]);
        }
        let theta = Coefficients::prior().to_vec();
        let t = fit_point(&theta);
        assert_eq!(t[PREFILL_ATTENTION], theta[PREFILL_COMPUTE]);
        assert_eq!(t[LONG_CONTEXT_KV], 0.0);
        assert_eq!(t[LONG_PROMPT_COMPUTE], 0.0);
        let c = Coefficients {
            prefill_attention: 3.0,
            long_context_kv: 5.0,
            long_prompt_compute: 7.0,
            ..Coefficients::prior()
        };
        assert_eq!(step_fitted_of(&c), [3.0, 5.0, 7.0]);
    }

    #[test]
    fn nnqp_solves_a_small_problem_with_a_bound() {
        let mut q = [[0.0; NUM_PARAMS]; NUM_PARAMS];
        for (k, row) in q.iter_mut().enumerate() {
            row[k] = 1.0;
        }
        let mut c = [1.0; NUM_PARAMS];
        c[0] = -2.0;
        let x = nnqp(&q, &c, &[0.0; NUM_PARAMS]);
        assert_eq!(x[0], 0.0);
        assert!((x[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rounding_keeps_six_digits() {
        assert_eq!(round_sig(1.234_567_89, 6), 1.234_57);
        assert_eq!(round_sig(15_563.199, 6), 15_563.2);
        assert_eq!(round_sig(0.0, 6), 0.0);
    }
}
