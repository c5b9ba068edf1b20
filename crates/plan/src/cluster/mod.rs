//! `blis validate` on cluster experiments: every run of every stack simulated (in parallel, results
//! in input order so the report is reproducible byte for byte), its predicted figures set beside
//! the measured ones, and each stack scored ([`score`]).

pub mod score;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use blis_import::cluster::{self, ClusterExperiment, Figures, MeasuredStack, Run, Stack};
use blis_sim::catalog::calibration::Calibration;
use blis_sim::error::InvalidInput;
use blis_sim::metrics::summary::percentile;
use blis_sim::scenario::Outcome;
use blis_sim::sim::{NoObserver, SimOptions};
use score::{KneePoint, ScoredPoint, Scores};

/// One measured point beside its prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointResult {
    /// What the point is.
    pub label: String,
    /// Nominal rate (req/s).
    pub rate: f64,
    /// The run's stage, when the point is one.
    pub stage: Option<u32>,
    /// Measured.
    pub measured: Figures,
    /// Predicted (`None` when the run failed).
    pub predicted: Option<Figures>,
    /// APE % per metric ([`score::METRICS`] order; `None` = not measured or not scored).
    pub ape: [Option<f64>; 4],
    /// Why the point is not scored.
    pub unscored: Option<String>,
}

/// One stack's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackResult {
    /// Experiment name.
    pub experiment: String,
    /// Stack name.
    pub stack: String,
    /// Why the stack is not scored at all (it could not be simulated).
    pub not_scored: Option<String>,
    /// What the conversion and the import approximated or could not represent.
    pub notes: Vec<String>,
    /// Points in input order.
    pub points: Vec<PointResult>,
    /// The scores.
    pub scores: Scores,
}

/// Every stack's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterReport {
    /// Stacks in input order.
    pub stacks: Vec<StackResult>,
}

/// What one run gave: the outcome, or why it could not run; plus the import's warnings.
type RunResult = (Result<Outcome, String>, Vec<String>);

/// Seeds every run is simulated with; its predicted figures are their mean. A measured benchmark is
/// one sample of a random process (exp-7's runs hold 200-250 requests, and a stack near saturation
/// moves by about 10 % from one seed to the next), so one simulated sample would add its own noise to
/// the comparison; the mean over seeds estimates what the benchmark measures on average.
pub const PREDICTION_SEEDS: u64 = 5;

/// Simulates one run with the `k`-th seed derived from the scenario's own (seed + k), one of
/// `runs_at_once` runs sharing the machine.
fn simulate(
    stack: &Stack,
    run: &Run,
    profile: Option<&Calibration>,
    k: u64,
    runs_at_once: usize,
) -> RunResult {
    let (mut spec, warnings) = match cluster::scenario_for(stack, run) {
        Ok(x) => x,
        Err(e) => return (Err(e.to_string()), Vec::new()),
    };
    if let Some(p) = profile {
        crate::calibrate::apply_profile(&mut spec, p);
    }
    spec.seed = Some(spec.seed.unwrap_or(blis_sim::scenario::spec::DEFAULT_SEED).wrapping_add(k));
    let name = format!("{} {}", stack.name, run.label);
    let resolved = match blis_import::resolve(&name, &spec) {
        Ok(r) => r,
        Err(e) => return (Err(e.to_string()), warnings),
    };
    let mut all = warnings;
    all.extend(resolved.warnings.iter().cloned());
    let opts = SimOptions::sharing(runs_at_once);
    let out = blis_sim::scenario::simulate(&resolved, run.trace.clone(), &opts, &mut NoObserver)
        .map_err(|e| e.to_string());
    (out, all)
}

/// The predicted figures of a whole run, as the measuring client defines them: TTFT over the
/// completed requests, output tok/s over the first arrival .. last completion, ITL as the mean of
/// per-request means for a replayed trace (LMBench) and over all gaps otherwise (benchmark_serving).
fn whole_run(o: &Outcome, per_request_itl: bool) -> Figures {
    let done = &o.output.completed;
    if done.is_empty() {
        return Figures::default();
    }
    let mut ttft: Vec<f64> = done.iter().map(|r| r.ttft_us as f64 / 1e3).collect();
    let mean = ttft.iter().sum::<f64>() / ttft.len() as f64;
    ttft.sort_by(f64::total_cmp);
    let first = done.iter().map(|r| r.arrival_us).min().unwrap_or(0);
    let last = done.iter().map(|r| r.arrival_us + r.e2e_us).max().unwrap_or(0);
    let tokens: f64 = done.iter().map(|r| f64::from(r.output_tokens)).sum();
    let itl = if per_request_itl {
        let v: Vec<f64> = done.iter().filter_map(|r| r.itl_mean_us()).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64 / 1e3)
    } else {
        Some(o.summary.overall.itl_ms.mean)
    };
    Figures {
        ttft_mean_ms: Some(mean),
        ttft_p90_ms: Some(percentile(&ttft, 90.0)),
        output_tokens_per_s: (last > first).then(|| tokens / ((last - first) as f64 / 1e6)),
        itl_mean_ms: itl,
        n: Some(done.len() as u64),
    }
}

/// The mean of each figure over the seeds' predictions (a figure missing from any seed is missing).
fn mean_figures(all: &[Figures]) -> Figures {
    let n = all.len().max(1) as f64;
    let mean = |f: fn(&Figures) -> Option<f64>| -> Option<f64> {
        all.iter().map(f).sum::<Option<f64>>().map(|s| s / n)
    };
    Figures {
        ttft_mean_ms: mean(|f| f.ttft_mean_ms),
        ttft_p90_ms: mean(|f| f.ttft_p90_ms),
        output_tokens_per_s: mean(|f| f.output_tokens_per_s),
        itl_mean_ms: mean(|f| f.itl_mean_ms),
        n: mean(|f| f.n.map(|v| v as f64)).map(|v| v.round() as u64),
    }
}

/// The predicted figures of one stage of a run.
fn stage_figures(o: &Outcome, stage: u32) -> Option<Figures> {
    let s = o.summary.stages.iter().find(|s| s.stage == stage)?;
    Some(Figures {
        ttft_mean_ms: Some(s.stats.ttft_ms.mean),
        ttft_p90_ms: Some(s.stats.ttft_ms.p90),
        output_tokens_per_s: Some(s.stats.throughput.output_tokens_per_s),
        itl_mean_ms: Some(s.stats.itl_ms.mean),
        n: Some(s.stats.requests.completed),
    })
}

/// Simulates and scores every stack of `exps` on `threads` worker threads; stacks on `profile`'s GPU
/// (when given) use its coefficients instead of the built-in ones, as `blis run --profile` does.
pub fn validate(exps: &[ClusterExperiment], profile: Option<&Calibration>, threads: usize) -> ClusterReport {
    let jobs: Vec<(usize, usize, usize, u64)> = exps
        .iter()
        .enumerate()
        .flat_map(|(e, x)| {
            x.stacks.iter().enumerate().filter(|(_, s)| s.unrunnable.is_none()).flat_map(move |(s, st)| {
                (0..st.runs.len()).flat_map(move |r| (0..PREDICTION_SEEDS).map(move |k| (e, s, r, k)))
            })
        })
        .collect();
    let at_once = threads.min(jobs.len());
    let run = |&(e, s, r, k): &(usize, usize, usize, u64)| {
        let st = &exps[e].stacks[s];
        simulate(st, &st.runs[r], profile, k, at_once)
    };
    let results: Vec<RunResult> = match rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build() {
        Ok(pool) => pool.install(|| jobs.par_iter().map(run).collect()),
        Err(_) => jobs.iter().map(run).collect(),
    };
    let mut by_job: BTreeMap<(usize, usize, usize), Vec<RunResult>> = BTreeMap::new();
    for ((e, s, r, _), result) in jobs.into_iter().zip(results) {
        by_job.entry((e, s, r)).or_default().push(result);
    }
    let mut stacks = Vec::new();
    for (e, x) in exps.iter().enumerate() {
        for (s, st) in x.stacks.iter().enumerate() {
            let mut notes: Vec<String> = x.notes.iter().chain(&st.notes).cloned().collect();
            let mut not_scored = st.unrunnable.clone();
            let mut points = Vec::new();
            let mut knee_points = Vec::new();
            for (r, run) in st.runs.iter().enumerate() {
                let mut outcomes = Vec::new();
                let mut failed = None;
                for (outcome, warnings) in by_job.remove(&(e, s, r)).unwrap_or_default() {
                    for w in warnings {
                        if !notes.contains(&w) {
                            notes.push(w);
                        }
                    }
                    match outcome {
                        Ok(o) => outcomes.push(o),
                        Err(msg) => failed = failed.or(Some(msg)),
                    }
                }
                if outcomes.is_empty() && failed.is_none() {
                    failed = Some(String::new());
                }
                if let Some(msg) = failed {
                    if not_scored.is_none() && !msg.is_empty() {
                        not_scored = Some(format!("{}: {msg}", run.label));
                    }
                    outcomes.clear();
                }
                for p in &run.points {
                    let seeds: Option<Vec<Figures>> = outcomes
                        .iter()
                        .map(|o| match p.stage {
                            Some(k) => stage_figures(o, k),
                            None => Some(whole_run(o, run.trace.is_some())),
                        })
                        .collect();
                    let predicted = seeds.filter(|v| !v.is_empty()).map(|v| mean_figures(&v));
                    let m = score::values(&p.measured);
                    let ape = match (&predicted, &p.unscored) {
                        (Some(pr), None) => {
                            let v = score::values(pr);
                            [0, 1, 2, 3].map(|k| score::ape(v[k], m[k]))
                        }
                        _ => [None; 4],
                    };
                    let ttft = (p.measured.ttft_mean_ms, predicted.as_ref().and_then(|f| f.ttft_mean_ms));
                    if let (Some(measured), Some(predicted)) = ttft {
                        if p.unscored.is_none() || p.censored {
                            knee_points.push(KneePoint {
                                rate: p.rate,
                                measured,
                                predicted,
                                censored: p.censored,
                            });
                        }
                    }
                    points.push(PointResult {
                        label: p.label.clone(),
                        rate: p.rate,
                        stage: p.stage,
                        measured: p.measured,
                        predicted,
                        ape,
                        unscored: p.unscored.clone(),
                    });
                }
            }
            let scored: Vec<&PointResult> =
                points.iter().filter(|p| p.unscored.is_none() && p.predicted.is_some()).collect();
            let scores = if not_scored.is_some() {
                Scores::default()
            } else {
                let sp: Vec<ScoredPoint> =
                    scored.iter().map(|p| ScoredPoint { rate: p.rate, ape: p.ape }).collect();
                score::score(&sp, &knee_points)
            };
            stacks.push(StackResult {
                experiment: x.name.clone(),
                stack: st.name.clone(),
                not_scored,
                notes,
                points,
                scores,
            });
        }
    }
    ClusterReport { stacks }
}

/// The medians a cluster ratchet tracks: `<experiment>/<stack>.<below|above>.<metric>` → median APE %.
pub fn ratchet_medians(r: &ClusterReport) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in &r.stacks {
        for (side, map) in [("below", &s.scores.median_below), ("above", &s.scores.median_above)] {
            for (k, v) in map {
                m.insert(format!("{}/{}.{side}.{k}", s.experiment, s.stack), (v * 1e4).round() / 1e4);
            }
        }
    }
    m
}

/// Reads the measurement at `path` for `blis run --measured` ([`cluster::measured`]; the scenario
/// file stands for the deployment) and checks it is of the resolved scenario's load ladder
/// ([`check_beside_stages`]), before anything is simulated.
pub fn measured_beside(
    path: &std::path::Path,
    scenario_file: &std::path::Path,
    scenario: &blis_sim::scenario::Resolved,
) -> Result<Vec<MeasuredStack>, InvalidInput> {
    let measured = cluster::measured(path, Some(scenario_file))?;
    let stages = scenario.workload.arrival.as_ref().and_then(|a| a.stages.as_deref()).unwrap_or(&[]);
    let rates: Vec<f64> = stages.iter().map(|s| s.rate_per_second).collect();
    check_beside_stages(&rates, &measured)?;
    Ok(measured)
}

/// Checks that a measurement drawn beside a `blis run` prediction (`--measured`) is of the same
/// load ladder: every measured rate is one of the predicted stages' `stage_rates` (within 0.1 %);
/// the error names the first point that is not and the rates the scenario has.
pub fn check_beside_stages(stage_rates: &[f64], measured: &[MeasuredStack]) -> Result<(), InvalidInput> {
    let listed = || stage_rates.iter().map(|r| format!("{r}")).collect::<Vec<_>>().join(", ");
    if stage_rates.is_empty() {
        return Err(InvalidInput::new(
            "--measured",
            "the scenario has no stages with a request rate to set the measurement beside",
            "give the scenario its load ladder (spec.workload.arrival.stages with ratePerSecond, or --workload-profile with the benchmark's profile)",
        ));
    }
    for s in measured {
        for p in &s.points {
            if !stage_rates.iter().any(|r| (r - p.rate).abs() <= 1e-3 * r.abs().max(1e-9)) {
                return Err(InvalidInput::new(
                    format!("--measured: {} {}", s.stack, p.label),
                    format!("was measured at {} req/s, a rate no stage of the scenario has (its stages: {})", p.rate, listed()),
                    "give the measurement of this scenario's load ladder, or set the scenario's stage rates to the measured ones",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use blis_import::cluster::Point;

    /// Each figure is the mean over the seeds; one missing from any seed is missing from the mean.
    #[test]
    fn seed_means_average_each_figure_and_keep_gaps() {
        let f = |ttft: f64, itl: Option<f64>, n: u64| Figures {
            ttft_mean_ms: Some(ttft),
            ttft_p90_ms: Some(2.0 * ttft),
            output_tokens_per_s: Some(100.0 - ttft),
            itl_mean_ms: itl,
            n: Some(n),
        };
        let m = mean_figures(&[f(10.0, Some(1.0), 200), f(20.0, Some(3.0), 201), f(60.0, None, 203)]);
        assert_eq!(m.ttft_mean_ms, Some(30.0));
        assert_eq!(m.ttft_p90_ms, Some(60.0));
        assert_eq!(m.output_tokens_per_s, Some(70.0));
        assert_eq!(m.itl_mean_ms, None);
        assert_eq!(m.n, Some(201));
        let one = f(7.0, Some(2.0), 9);
        assert_eq!(mean_figures(std::slice::from_ref(&one)), one);
    }

    fn stack(rates: &[f64]) -> MeasuredStack {
        let points = rates
            .iter()
            .map(|&rate| Point {
                label: format!("rate {rate}"),
                rate,
                stage: None,
                measured: Figures::default(),
                unscored: None,
                censored: false,
            })
            .collect();
        MeasuredStack { stack: "llm-d".into(), points }
    }

    #[test]
    fn a_measurement_must_be_of_the_scenarios_ladder() {
        assert!(check_beside_stages(&[1.0, 2.0, 4.0], &[stack(&[1.0, 4.0])]).is_ok());
        let e = check_beside_stages(&[1.0, 2.0, 4.0], &[stack(&[1.0, 3.0])]).unwrap_err();
        assert_eq!(e.field, "--measured: llm-d rate 3");
        assert!(e.problem.contains("stages: 1, 2, 4"), "{e}");
        assert_eq!(check_beside_stages(&[], &[stack(&[1.0])]).unwrap_err().field, "--measured");
    }
}
