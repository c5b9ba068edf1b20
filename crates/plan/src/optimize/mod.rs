//! Policy search: tune admission, flow-control, endpoint-picker and autoscaler knobs of a scenario
//! in the twin with a derivative-free optimiser, under constraints, on common random numbers, and
//! check the winner on seeds it was never tuned on so over-fitting shows.
//!
//! Flow: a [`spec::PolicySearchSpec`] -> candidates (the baseline plus the `policy` patch plus knob
//! values, through [`blis_sim::scenario::patch`]) -> [`evaluate`] (every candidate on the same tuning
//! seeds, in parallel) -> [`search::minimise`] -> [`SearchResult`] (before/after on tuning and
//! held-out seeds, the winning spec) -> [`emit`] (table, ready-to-apply YAML).

pub mod emit;
pub mod evaluate;
pub mod search;
pub mod spec;

use std::sync::Arc;

use serde::Serialize;

use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::{self, Edit};
use blis_sim::scenario::{RunError, ScenarioSpec};
use blis_sim::workload::Trace;
use evaluate::{Evaluator, SeedSet};
use search::{Score, SearchConfig};
use spec::{Goal, PolicySearchSpec};

/// One knob of the winner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnobValue {
    /// Path in the scenario spec.
    pub path: String,
    /// The value chosen.
    pub value: f64,
}

/// A constraint and whether the winner meets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConstraintCheck {
    /// Metric path.
    pub metric: String,
    /// Lower bound (absolute, from the baseline on the tuning seeds when relative).
    pub min: Option<f64>,
    /// Upper bound.
    pub max: Option<f64>,
    /// Met on the tuning seeds (mean).
    pub tuning_met: bool,
    /// Met on the held-out seeds (mean; bounds from the baseline on the same seeds when relative).
    pub check_met: bool,
}

/// The outcome of a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    /// Search name.
    pub name: String,
    /// Candidates evaluated.
    pub evaluations: usize,
    /// Candidates per generation.
    pub population: usize,
    /// Seed of the search's draws.
    pub search_seed: u64,
    /// Seeds candidates were tuned on.
    pub tuning_seeds: Vec<u64>,
    /// Held-out seeds.
    pub check_seeds: Vec<u64>,
    /// Objective metric.
    pub objective: String,
    /// `minimize` or `maximize`.
    pub goal: Goal,
    /// Candidates that met every constraint on the tuning seeds.
    pub feasible_candidates: usize,
    /// Candidates whose spec was invalid (e.g. a ramp whose end is below its start).
    pub invalid_candidates: usize,
    /// Whether the winner meets every constraint on the tuning seeds.
    pub winner_feasible: bool,
    /// The winner's knob values.
    pub knobs: Vec<KnobValue>,
    /// The constraints and the winner's verdicts.
    pub constraints: Vec<ConstraintCheck>,
    /// Baseline on the tuning seeds.
    pub baseline_tuning: SeedSet,
    /// Winner on the tuning seeds.
    pub winner_tuning: SeedSet,
    /// Baseline on the held-out seeds.
    pub baseline_check: SeedSet,
    /// Winner on the held-out seeds.
    pub winner_check: SeedSet,
    /// Best feasible objective after each evaluation (`null` before the first feasible one).
    pub best_by_evaluation: Vec<Option<f64>>,
    /// The winning scenario spec (baseline + policy + knobs), ready to run or apply.
    pub winner_spec: ScenarioSpec,
}

/// Runs the search `s` named `name` on `base` (the baseline spec; `trace` when it replays a
/// trace file). `progress(done, total)` is called after each generation.
pub fn run(
    name: &str,
    s: &PolicySearchSpec,
    base: &ScenarioSpec,
    trace: Option<Arc<Trace>>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SearchResult, RunError> {
    s.validate()?;
    let budget = s.budget()?;
    let population = s.population()?;
    let family = match &s.policy {
        Some(p) => patch::apply(base, &[Edit::Merge(p.clone())], "spec.policy")?,
        None => base.clone(),
    };
    let ev = Evaluator::new(name, s, trace);
    let baseline_tuning = ev.seed_set(base, &s.tuning_seeds)?;
    let objective_base = baseline_tuning.mean(0);
    if !objective_base.is_finite() {
        return Err(InvalidInput::new(
            "spec.objective.metric",
            format!("`{}` has no numeric value in the baseline's summary", s.objective.metric),
            "use a path into `blis run --output json` output, e.g. classes[name=critical].ttft_ms.p90",
        )
        .into());
    }
    // The midpoint candidate must be a valid scenario, so a wrong path fails fast.
    ev.candidate(&family, &vec![0.5; s.knobs.len()])?;

    let sign = if s.objective.goal == Some(Goal::Maximize) { -1.0 } else { 1.0 };
    let score = |set: &Result<SeedSet, RunError>| -> Score {
        match set {
            Err(_) => Score { objective: f64::INFINITY, violation: 1e12 },
            Ok(set) => {
                let o = set.mean(0);
                let violation = s
                    .constraints
                    .iter()
                    .enumerate()
                    .map(|(i, c)| c.violation(set.mean(1 + i), baseline_tuning.mean(1 + i)))
                    .sum();
                Score { objective: if o.is_finite() { sign * o } else { f64::INFINITY }, violation }
            }
        }
    };
    // Start from the operator's current values where the family has them.
    let x0: Option<Vec<f64>> = {
        let v = serde_json::to_value(&family).unwrap_or_default();
        let pos: Vec<Option<f64>> = s
            .knobs
            .iter()
            .map(|k| {
                patch::get_path(&v, &k.path).and_then(serde_json::Value::as_f64).map(|x| k.position_of(x))
            })
            .collect();
        pos.iter().all(Option::is_some).then(|| pos.into_iter().flatten().collect())
    };
    let cfg = SearchConfig { dim: s.knobs.len(), budget, population, seed: s.seed.unwrap_or(1) };
    let (mut invalid, mut done) = (0usize, 0usize);
    let trials = search::minimise(cfg, x0, |xs| {
        let sets = ev.evaluate_all(&family, xs, &s.tuning_seeds);
        invalid += sets.iter().filter(|r| r.is_err()).count();
        done += xs.len();
        progress(done, budget);
        sets.iter().map(score).collect()
    });
    let best = search::best(&trials).expect("budget >= 1");
    let mut bests = Vec::with_capacity(trials.len());
    let mut so_far: Option<f64> = None;
    for t in &trials {
        if t.score.feasible() && so_far.is_none_or(|b| t.score.objective < b) {
            so_far = Some(t.score.objective);
        }
        bests.push(so_far.map(|b| sign * b));
    }
    let winner_spec = ev.candidate(&family, &best.x)?;
    let winner_tuning = ev.seed_set(&winner_spec, &s.tuning_seeds)?;
    let baseline_check = ev.seed_set(base, &s.check_seeds)?;
    let winner_check = ev.seed_set(&winner_spec, &s.check_seeds)?;
    let constraints = s
        .constraints
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (min, max) = c.bounds(baseline_tuning.mean(1 + i));
            ConstraintCheck {
                metric: c.metric.clone(),
                min,
                max,
                tuning_met: c.violation(winner_tuning.mean(1 + i), baseline_tuning.mean(1 + i)) == 0.0,
                check_met: c.violation(winner_check.mean(1 + i), baseline_check.mean(1 + i)) == 0.0,
            }
        })
        .collect();
    Ok(SearchResult {
        name: name.to_string(),
        evaluations: trials.len(),
        population,
        search_seed: cfg.seed,
        tuning_seeds: s.tuning_seeds.clone(),
        check_seeds: s.check_seeds.clone(),
        objective: s.objective.metric.clone(),
        goal: s.objective.goal.unwrap_or(Goal::Minimize),
        feasible_candidates: trials.iter().filter(|t| t.score.feasible()).count(),
        invalid_candidates: invalid,
        winner_feasible: best.score.feasible(),
        knobs: s
            .knobs
            .iter()
            .zip(&best.x)
            .map(|(k, &u)| KnobValue { path: k.path.clone(), value: k.value_at(u) })
            .collect(),
        constraints,
        baseline_tuning,
        winner_tuning,
        baseline_check,
        winner_check,
        best_by_evaluation: bests,
        winner_spec,
    })
}
