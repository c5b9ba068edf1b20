//! Evaluating candidates: build each candidate's spec, run it on every seed (the same seeds for all
//! candidates: common random numbers) in parallel through the sweep engine ([`eval::evaluate`]), and
//! read the metrics out of the run's JSON summary.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::spec::PolicySearchSpec;
use crate::sweep::eval::{self, RunControl};
use blis_sim::metrics::Summary;
use blis_sim::scenario::patch::{self, Edit};
use blis_sim::scenario::{RunError, ScenarioSpec};
use blis_sim::workload::Trace;

/// Metric values of one spec on a set of seeds, in the order of [`Evaluator::metrics`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedSet {
    /// Seeds, in order.
    pub seeds: Vec<u64>,
    /// Metric paths: the objective, the constraints' metrics, then the extra report metrics.
    pub metrics: Vec<String>,
    /// `values[m][s]`: metric `m` on seed `s` (`null` when the run has no such value).
    pub values: Vec<Vec<f64>>,
}

impl SeedSet {
    /// Mean of metric `m` over the seeds (NaN when some seed lacks it).
    pub fn mean(&self, m: usize) -> f64 {
        let v = &self.values[m];
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }
}

/// Reads the value at `path` of a run's JSON summary as a number.
pub fn metric(summary: &Value, path: &str) -> f64 {
    patch::get_path(summary, path).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// Runs candidates of one search.
pub struct Evaluator<'a> {
    name: &'a str,
    search: &'a PolicySearchSpec,
    trace: Option<Arc<Trace>>,
    /// Metric paths read from each run.
    pub metrics: Vec<String>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator for search `search` of scenario `name`.
    pub fn new(name: &'a str, search: &'a PolicySearchSpec, trace: Option<Arc<Trace>>) -> Self {
        let mut metrics = vec![search.objective.metric.clone()];
        metrics.extend(search.constraints.iter().map(|c| c.metric.clone()));
        for m in &search.report {
            if !metrics.contains(m) {
                metrics.push(m.clone());
            }
        }
        Self { name, search, trace, metrics }
    }

    /// The spec of the candidate at `x` (unit cube) on top of `family`.
    pub fn candidate(&self, family: &ScenarioSpec, x: &[f64]) -> Result<ScenarioSpec, RunError> {
        let edits: Vec<Edit> = self
            .search
            .knobs
            .iter()
            .zip(x)
            .map(|(k, &u)| Edit::Set { path: k.path.clone(), value: k.json(k.value_at(u)) })
            .collect();
        let spec = patch::apply(family, &edits, "spec.knobs")?;
        blis_import::resolve(self.name, &spec).map_err(|e| e.under("spec.knobs (candidate)"))?;
        Ok(spec)
    }

    fn metrics_of(&self, summary: &Summary) -> Vec<f64> {
        let v = serde_json::to_value(summary).unwrap_or(Value::Null);
        self.metrics.iter().map(|m| metric(&v, m)).collect()
    }

    /// Every `(spec, seed)` run on every core; metric values in input order.
    fn run_all(&self, runs: &[(&ScenarioSpec, u64)]) -> Vec<Result<Vec<f64>, RunError>> {
        let specs: Vec<ScenarioSpec> =
            runs.iter().map(|&(spec, seed)| ScenarioSpec { seed: Some(seed), ..spec.clone() }).collect();
        let bar = eval::progress_bar(0, "", false);
        eval::evaluate(&specs, self.trace.as_ref(), eval::threads(None, None), &bar, &RunControl::default())
            .into_iter()
            .map(|r| r.map(|summary| self.metrics_of(&summary)))
            .collect()
    }

    fn collect(&self, seeds: &[u64], runs: Vec<Vec<f64>>) -> SeedSet {
        let values = (0..self.metrics.len()).map(|m| runs.iter().map(|r| r[m]).collect()).collect();
        SeedSet { seeds: seeds.to_vec(), metrics: self.metrics.clone(), values }
    }

    /// `spec` on every seed, in parallel.
    pub fn seed_set(&self, spec: &ScenarioSpec, seeds: &[u64]) -> Result<SeedSet, RunError> {
        let jobs: Vec<(&ScenarioSpec, u64)> = seeds.iter().map(|&s| (spec, s)).collect();
        let runs: Result<Vec<Vec<f64>>, RunError> = self.run_all(&jobs).into_iter().collect();
        Ok(self.collect(seeds, runs?))
    }

    /// Every candidate of a generation on every seed, all runs in parallel; results in order.
    pub fn evaluate_all(
        &self,
        family: &ScenarioSpec,
        xs: &[Vec<f64>],
        seeds: &[u64],
    ) -> Vec<Result<SeedSet, RunError>> {
        let specs: Vec<Result<ScenarioSpec, RunError>> =
            xs.iter().map(|x| self.candidate(family, x)).collect();
        let jobs: Vec<(&ScenarioSpec, u64)> = specs
            .iter()
            .filter_map(|s| s.as_ref().ok())
            .flat_map(|spec| seeds.iter().map(move |&s| (spec, s)))
            .collect();
        let runs = self.run_all(&jobs);
        let mut out = Vec::with_capacity(xs.len());
        let mut it = runs.into_iter();
        for spec in specs {
            out.push(match spec {
                Err(e) => Err(e),
                Ok(_) => {
                    let r: Vec<Result<Vec<f64>, RunError>> = it.by_ref().take(seeds.len()).collect();
                    r.into_iter().collect::<Result<Vec<_>, _>>().map(|r| self.collect(seeds, r))
                }
            });
        }
        out
    }
}
