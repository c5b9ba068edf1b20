//! Capacity planning: a `SimulationSweep` expands a base scenario into candidates (grid, ranges,
//! random samples, explicit patches), simulates them in parallel with common random numbers, and
//! ranks the ones passing the gates by an objective, with the Pareto set of cost vs latency. Also the
//! rate searches (saturation, cheapest configuration for a rate) and sharding across processes.

pub mod eval;
pub mod expand;
pub mod rank;
pub mod search;
pub mod shard;
pub mod spec;

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::sweep::spec::SweepSpec;
use blis_import::manifest::Metadata;
use blis_import::manifest::API_VERSION;
use blis_sim::error::InvalidInput;
use blis_sim::workload::Trace;
use eval::CandidateResult;
use expand::Candidate;
use rank::Ranked;
use shard::Shard;
use spec::{Figures, Objective, SearchMode, DEFAULT_RATE_PATH};

/// Kind of a sweep manifest.
pub const KIND: &str = "SimulationSweep";

/// A sweep read from a file.
#[derive(Debug, Clone)]
pub struct SweepFile {
    /// `metadata.name`.
    pub name: String,
    /// The spec.
    pub spec: SweepSpec,
    /// The trace of the base, when it replays one from a path (relative to the file).
    pub trace: Option<Arc<Trace>>,
}

/// Reads the one `SimulationSweep` document of `text`. Errors name the field under `spec.`.
pub fn parse_sweep(text: &str) -> Result<(String, SweepSpec), InvalidInput> {
    let mut found = None;
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| {
            InvalidInput::new("document", format!("is not valid YAML: {e}"), "fix the YAML syntax")
        })?;
        if value.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
            continue;
        }
        if found.is_some() {
            return Err(InvalidInput::new("kind", "more than one SimulationSweep", "put one sweep per file"));
        }
        let api = value.get("apiVersion").and_then(|k| k.as_str()).unwrap_or("");
        if api != API_VERSION {
            return Err(InvalidInput::new(
                "apiVersion",
                format!("is {api:?}"),
                format!("set apiVersion: {API_VERSION}"),
            ));
        }
        let metadata: Metadata = value
            .get("metadata")
            .map(|m| serde_yaml::from_value(m.clone()))
            .transpose()
            .map_err(|e| InvalidInput::new("metadata", e.to_string(), "give metadata.name"))?
            .unwrap_or_default();
        let spec_value = value
            .get("spec")
            .cloned()
            .ok_or_else(|| InvalidInput::new("spec", "is missing", "add a spec section"))?;
        let spec: SweepSpec = serde_path_to_error::deserialize(spec_value).map_err(|e| {
            let path = e.path().to_string();
            let field = match path.as_str() {
                "." => "spec".to_string(),
                p if p.starts_with('[') => format!("spec{p}"),
                p => format!("spec.{p}"),
            };
            InvalidInput::new(field, e.into_inner().to_string(), "fix the value (see `blis sweep --help`)")
        })?;
        let name = if metadata.name.is_empty() { "sweep".to_string() } else { metadata.name };
        found = Some((name, spec));
    }
    found.ok_or_else(|| {
        InvalidInput::new(
            "kind",
            "no SimulationSweep document",
            format!("add a document with apiVersion: {API_VERSION} and kind: {KIND}"),
        )
    })
}

/// Reads a sweep file and the trace its base replays, if any.
pub fn load_sweep(file: &Path) -> Result<SweepFile, InvalidInput> {
    let in_file = |mut e: InvalidInput| {
        e.field = format!("{}: {}", file.display(), e.field);
        e
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        InvalidInput::new(
            file.display().to_string(),
            format!("cannot be read: {e}"),
            "give a SimulationSweep YAML file",
        )
    })?;
    let (name, spec) = parse_sweep(&text).map_err(in_file)?;
    let trace = match spec.base.workload.trace.as_ref().and_then(|t| t.path.as_ref()) {
        Some(p) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(p);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                in_file(InvalidInput::new(
                    "spec.base.workload.trace.path",
                    format!("cannot read {}: {e}", path.display()),
                    "give a path to a CSV file, relative to the sweep file",
                ))
            })?;
            Some(Arc::new(Trace::parse_csv(&text)))
        }
        None => None,
    };
    Ok(SweepFile { name, spec, trace })
}

/// The objective of a sweep (default $ per million tokens).
pub fn objective(spec: &SweepSpec) -> Objective {
    spec.objective.unwrap_or_default()
}

fn is_saturation(spec: &SweepSpec) -> bool {
    spec.search.as_ref().is_some_and(|s| s.mode == SearchMode::Saturation)
}

/// The saturation bracket of the spec, checked.
fn rate_search(spec: &SweepSpec, points: usize) -> Result<search::RateSearch, InvalidInput> {
    let s = spec.search.as_ref().expect("saturation mode has a search");
    let (lo, hi) = (s.min_rate.unwrap_or(0.0), s.max_rate.unwrap_or(0.0));
    if !(lo.is_finite() && lo > 0.0 && hi.is_finite() && hi > lo) {
        return Err(InvalidInput::new(
            "spec.search",
            format!("saturation needs 0 < minRate < maxRate (got {lo} and {hi})"),
            "set minRate and maxRate (requests per second) around the expected limit",
        ));
    }
    let tolerance = s.tolerance.unwrap_or(0.01);
    if !(tolerance.is_finite() && tolerance > 0.0) {
        return Err(InvalidInput::new(
            "spec.search.tolerance",
            format!("must be positive (got {tolerance})"),
            "use e.g. 0.01",
        ));
    }
    Ok(search::RateSearch {
        rate_path: s.rate_path.clone().unwrap_or_else(|| DEFAULT_RATE_PATH.to_string()),
        min_rate: lo,
        max_rate: hi,
        tolerance,
        points,
    })
}

/// Expands the sweep and checks everything that can be checked before simulating.
pub fn plan(spec: &SweepSpec) -> Result<Vec<Candidate>, InvalidInput> {
    if is_saturation(spec) {
        rate_search(spec, 1)?;
    }
    expand::expand(spec)
}

/// Simulates the candidates of `candidates` owned by `shard` (all without one) on `threads`
/// threads and returns their results by index. `control` shows a progress bar with ETA and can
/// cancel the runs not yet started.
pub fn run(
    spec: &SweepSpec,
    candidates: &[Candidate],
    shard: Option<Shard>,
    trace: Option<&Arc<Trace>>,
    threads: usize,
    control: &eval::RunControl,
) -> Result<Vec<CandidateResult>, InvalidInput> {
    let visible = control.visible;
    let mine: Vec<Candidate> =
        candidates.iter().filter(|c| shard.is_none_or(|s| s.owns(c.index))).cloned().collect();
    let objective = objective(spec);
    if !is_saturation(spec) {
        let reps = spec.replications.unwrap_or(1).max(1);
        let bar = eval::progress_bar(mine.len() * reps as usize, "simulating candidates", visible);
        let out = eval::run_candidates(&mine, reps, objective, trace, threads, &bar, control);
        bar.finish_and_clear();
        return Ok(out);
    }
    let search = rate_search(spec, (threads / mine.len().max(1)).max(1))?;
    let bar = eval::progress_bar(mine.len(), "searching saturation rates", visible);
    let eval_specs = |specs: &[blis_sim::scenario::ScenarioSpec]| {
        specs.par_iter().map(|s| control.run("probe", s, trace)).collect()
    };
    let out = eval::on_pool(threads, || {
        mine.par_iter()
            .map(|c| {
                let sat = search::saturation(&c.spec, &search, &eval_specs)?;
                bar.inc(1);
                let figures = sat.summary.as_ref().map(Figures::of);
                Ok(CandidateResult {
                    index: c.index,
                    name: c.name.clone(),
                    settings: c.settings.clone(),
                    feasible: sat.max_rate.is_some(),
                    failed: sat.failed,
                    figures,
                    objective_ci95: None,
                    max_rate: sat.max_rate.map(|r| (r * 1e6).round() / 1e6),
                })
            })
            .collect::<Result<Vec<_>, InvalidInput>>()
    });
    bar.finish_and_clear();
    out
}

/// A ranked sweep: what `blis sweep --output json` prints and the controller's status is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Sweep name.
    pub sweep: String,
    /// What was minimised.
    pub objective: Objective,
    /// The search mode, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchMode>,
    /// The seed every candidate ran with (common random numbers).
    pub seed: u64,
    /// Runs per candidate.
    pub replications: u32,
    /// Candidates ranked.
    pub candidates: usize,
    /// Candidates passing the gates.
    pub feasible: usize,
    /// The best feasible candidate.
    pub best: Option<String>,
    /// Names of the Pareto set (cost vs TTFT p90 vs ITL p90), best rank first.
    pub pareto: Vec<String>,
    /// Every candidate, best first.
    pub ranking: Vec<Ranked>,
}

impl SweepReport {
    /// Ranks `results` of the sweep `name`.
    pub fn new(name: &str, spec: &SweepSpec, results: &[CandidateResult]) -> Self {
        let ranking = rank::rank(results, objective(spec), is_saturation(spec));
        Self {
            sweep: name.to_string(),
            objective: objective(spec),
            search: spec.search.as_ref().map(|s| s.mode),
            seed: expand::sweep_seed(spec),
            replications: spec.replications.unwrap_or(1).max(1),
            candidates: results.len(),
            feasible: results.iter().filter(|r| r.feasible).count(),
            best: ranking.first().filter(|r| r.result.feasible).map(|r| r.result.name.clone()),
            pareto: ranking.iter().filter(|r| r.pareto).map(|r| r.result.name.clone()).collect(),
            ranking,
        }
    }
}
