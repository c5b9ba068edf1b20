//! Cluster experiments: whole llm-d deployments measured under a benchmark, to replay and score with
//! `blis validate`. One experiment has stacks (e.g. llm-d routing and a plain Service over the same
//! pods); each stack has a deployment (a scenario file, or manifest files / folders imported as
//! `blis run` imports them), and runs: one simulated load each (a workload profile or a per-request
//! trace) with the measured figures of its stages or of the whole run.
//!
//! Read from a `kind: ClusterExperiment` YAML file ([`mod@format`]) or converted from the published
//! folders of `validation/cluster/` ([`guide_table`], [`lmbench`], [`serving_runs`]).

pub mod format;
pub mod guide_table;
pub mod lmbench;
pub mod serving_runs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::folder;
use crate::load;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::merge_patch;
use blis_sim::scenario::spec::ImportSpec;
use blis_sim::scenario::ScenarioSpec;
use blis_sim::workload::Trace;
use blis_sim::workload::WorkloadSpec;

/// A measured point: one load stage of a run, or the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// What the point is (`rate 3`, `qps 0.5`, the file name).
    pub label: String,
    /// Nominal request rate (req/s): the x axis of the knee.
    pub rate: f64,
    /// Index of the run's load stage the figures are for; `None` = the whole run.
    pub stage: Option<u32>,
    /// The measured figures.
    pub measured: Figures,
    /// Why the point is not scored (e.g. a censored file); `None` = scored.
    pub unscored: Option<String>,
    /// Only the requests that finished before a cut-off were logged, so the measured latencies
    /// are lower bounds: a TTFT mean already past the knee still places the measured knee.
    pub censored: bool,
}

/// The figures a cluster benchmark reports for one stage or run (latencies in ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Figures {
    /// Mean time to first token.
    pub ttft_mean_ms: Option<f64>,
    /// 90th percentile time to first token.
    pub ttft_p90_ms: Option<f64>,
    /// Output tokens per second.
    pub output_tokens_per_s: Option<f64>,
    /// Mean inter-token latency.
    pub itl_mean_ms: Option<f64>,
    /// Requests the figures are over.
    pub n: Option<u64>,
}

/// One simulated load and the figures measured under it.
#[derive(Debug, Clone)]
pub struct Run {
    /// Name of the run.
    pub label: String,
    /// The load (a profile, generated classes, or a trace, read into `trace`).
    pub workload: WorkloadSpec,
    /// The trace the workload replays, read once (shared by the runs that replay the same file).
    pub trace: Option<Arc<Trace>>,
    /// Measured points.
    pub points: Vec<Point>,
}

/// One stack: a deployment and its runs.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Stack name (`llm-d`, `k8s service`).
    pub name: String,
    /// Scenario files, or manifest files / folders (imported as `blis run` imports them).
    pub deployment: Vec<PathBuf>,
    /// A JSON merge patch on the deployment's scenario spec (router override, replicas, ...).
    pub patch: Value,
    /// The runs.
    pub runs: Vec<Run>,
    /// What the conversion approximated or could not represent.
    pub notes: Vec<String>,
    /// Why the stack cannot be simulated at all; `None` = it can.
    pub unrunnable: Option<String>,
    /// Placeholders in the deployment's objects and what the harness filled them with.
    pub substitutions: Vec<(String, String)>,
}

/// A cluster experiment.
#[derive(Debug, Clone)]
pub struct ClusterExperiment {
    /// Name.
    pub name: String,
    /// Where it was read from.
    pub source: PathBuf,
    /// The stacks.
    pub stacks: Vec<Stack>,
    /// What the conversion approximated (for every stack).
    pub notes: Vec<String>,
}

/// What a path holds, as far as cluster validation is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A `kind: ClusterExperiment` YAML file.
    File,
    /// An llm-d guide's benchmark-results table with its workload profile.
    GuideTable,
    /// LMBench per-request CSVs (llm-d-benchmark 2025 exp-2).
    Lmbench,
    /// vLLM benchmark_serving result JSONs with the commands (llm-d-benchmark 2025 exp-7).
    ServingRuns,
}

/// What `path` holds, or `None` when it is not a cluster-experiment source (single-replica
/// experiments, for instance).
pub fn kind_of(path: &Path) -> Option<SourceKind> {
    if path.is_file() {
        let text = std::fs::read_to_string(path).ok()?;
        return format::is_cluster_experiment(&text).then_some(SourceKind::File);
    }
    if guide_table::table_file(path).is_some() {
        Some(SourceKind::GuideTable)
    } else if lmbench::data_dir(path).is_some() {
        Some(SourceKind::Lmbench)
    } else if serving_runs::data_dir(path).is_some() {
        Some(SourceKind::ServingRuns)
    } else {
        None
    }
}

/// The cluster sources under `path`: the path itself when it is one, else its entries that are
/// (sorted by name, one level down: the parent folder of the published benchmarks).
pub fn sources_in(path: &Path) -> Vec<(PathBuf, SourceKind)> {
    if let Some(k) = kind_of(path) {
        return vec![(path.to_path_buf(), k)];
    }
    let Ok(rd) = std::fs::read_dir(path) else { return Vec::new() };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    entries.into_iter().filter_map(|p| kind_of(&p).map(|k| (p, k))).collect()
}

/// Whether any of `paths` holds cluster experiments (then `blis validate` scores clusters).
pub fn any_cluster(paths: &[PathBuf]) -> bool {
    paths.iter().any(|p| !sources_in(p).is_empty())
}

/// Reads every cluster experiment under `paths`. `deployment` is the manifests folder for a
/// published benchmark folder that holds none (the guide's); it is an error to need one and not
/// have it.
pub fn load_paths(
    paths: &[PathBuf],
    deployment: Option<&Path>,
) -> Result<Vec<ClusterExperiment>, InvalidInput> {
    let mut out = Vec::new();
    for p in paths {
        let p = &absolute(p);
        let found = sources_in(p);
        if found.is_empty() {
            return Err(InvalidInput::new(
                p.display().to_string(),
                "holds no cluster experiment",
                "give a kind: ClusterExperiment file, a folder of validation/cluster/, or their parent",
            ));
        }
        for (path, kind) in found {
            out.extend(convert(&path, kind, deployment)?);
        }
    }
    Ok(out)
}

/// The measured points of one stack of a cluster source, to draw beside a `blis run` prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredStack {
    /// Stack name (`llm-d`, `k8s`), telling the series apart when a source has several.
    pub stack: String,
    /// Its points, every run's, in input order.
    pub points: Vec<Point>,
}

/// Reads a measurement for `blis run --measured` with the converters `blis validate` uses (a
/// guide's benchmark-results folder, LMBench per-request CSVs, benchmark_serving results with their
/// commands, or a ClusterExperiment file): its points per stack, without simulating. The scenario
/// being run (`scenario`) stands for the deployment a guide's folder does not hold: only the
/// measured figures are read.
pub fn measured(path: &Path, scenario: Option<&Path>) -> Result<Vec<MeasuredStack>, InvalidInput> {
    let path = &absolute(path);
    let Some(kind) = kind_of(path) else {
        return Err(InvalidInput::new(
            "--measured",
            format!("{} is not a measurement blis reads", path.display()),
            "give a guide's benchmark-results folder, an LMBench folder (data/openshift/<exp>/<stack>/LMBench_*.csv), a benchmark_serving results folder (data/openshift/<exp>/<GPU>/<stack>/benchmark_*.json with yamls/<exp>/cmds.txt) or a kind: ClusterExperiment file",
        ));
    };
    let scenario = scenario.map(absolute);
    let exps = convert(path, kind, scenario.as_deref())
        .map_err(|e| InvalidInput { field: format!("--measured: {}", e.field), ..e })?;
    let stacks: Vec<MeasuredStack> = exps
        .into_iter()
        .flat_map(|x| x.stacks)
        .map(|s| MeasuredStack { stack: s.name, points: s.runs.into_iter().flat_map(|r| r.points).collect() })
        .filter(|s| !s.points.is_empty())
        .collect();
    if stacks.is_empty() {
        return Err(InvalidInput::new(
            "--measured",
            format!("{} holds no measured point", path.display()),
            "give a measurement with at least one rate's figures",
        ));
    }
    Ok(stacks)
}

/// Converts one source.
pub fn convert(
    path: &Path,
    kind: SourceKind,
    deployment: Option<&Path>,
) -> Result<Vec<ClusterExperiment>, InvalidInput> {
    match kind {
        SourceKind::File => format::load_file(path, deployment),
        SourceKind::GuideTable => Ok(vec![guide_table::convert(path, deployment)?]),
        SourceKind::Lmbench => Ok(vec![lmbench::convert(path)?]),
        SourceKind::ServingRuns => Ok(vec![serving_runs::convert(path)?]),
    }
}

/// The scenario a stack runs for one of its runs: the deployment (a scenario file's spec, or the
/// imported manifests), the run's workload, the stack's patch on top. Returns the spec and what
/// the import approximated.
pub fn scenario_for(stack: &Stack, run: &Run) -> Result<(ScenarioSpec, Vec<String>), InvalidInput> {
    let field = format!("{}: deployment", stack.name);
    let under = |e: InvalidInput| InvalidInput { field: format!("{field}: {}", e.field), ..e };
    let mut deployed = folder::read(&stack.deployment).map_err(under)?;
    if !stack.substitutions.is_empty() {
        let mut items = deployed.objects.into_items();
        items.iter_mut().for_each(|o| substitute(o, &stack.substitutions));
        deployed.objects = crate::llmd::Objects::new(items);
    }
    let workload = serde_json::to_value(&run.workload).unwrap_or(Value::Null);
    if !deployed.scenario_files.is_empty() {
        let loaded = load::load_paths(&stack.deployment).map_err(under)?;
        let Some(first) = loaded.into_iter().next() else {
            return Err(InvalidInput::new(field, "holds no scenario", "name a scenario file or manifests"));
        };
        let mut doc = serde_json::to_value(&first.manifest.spec).unwrap_or(Value::Null);
        doc["workload"] = workload;
        if !stack.patch.is_null() {
            merge_patch(&mut doc, &stack.patch);
        }
        let spec = from_value(doc, &field)?;
        return Ok((spec, first.import_warnings));
    }
    let mut spec = from_value(serde_json::json!({ "workload": workload }), &field)?;
    spec.import = Some(ImportSpec::default());
    // The import reads the release the patch names, so it does not warn that a default applies.
    if let Some(v) = stack.patch.pointer("/vllm/version").and_then(Value::as_str) {
        spec.vllm.version = Some(v.to_string());
    }
    let imported = crate::llmd::apply(&spec, &deployed.objects).map_err(under)?;
    // The patch goes on what the import gives, so its nulls remove imported fields (a Service
    // stack drops the endpoint picker's config).
    let mut doc = serde_json::to_value(&imported.spec).unwrap_or(Value::Null);
    if !stack.patch.is_null() {
        merge_patch(&mut doc, &stack.patch);
    }
    let mut warnings = deployed.warnings;
    warnings.extend(imported.warnings);
    Ok((from_value(doc, &field)?, warnings))
}

/// How a plain Kubernetes Service spreads requests over the pods, as the benchmark's client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceSpread {
    /// Round robin (what a guide states its Service stack did).
    RoundRobin,
    /// kube-proxy picks a backend at random per connection; a client that opens a connection per
    /// request (vLLM's benchmark_serving) sees a random pick per request.
    RandomPerRequest,
}

/// The spec patch of a stack that reaches the pods through a plain Kubernetes Service: `spread`, no
/// endpoint picker, no objectives or flow control.
pub fn service_patch(spread: ServiceSpread) -> Value {
    let policy = match spread {
        ServiceSpread::RoundRobin => "roundRobin",
        ServiceSpread::RandomPerRequest => "random",
    };
    serde_json::json!({"router": {
        "policy": policy,
        "endpointPickerConfig": null,
        "objectives": null,
        "admission": null,
        "dispatchIntervalMs": null,
        "refreshIntervalMs": null,
        "allowUnregisteredPlugins": null
    }})
}

/// Replaces every placeholder in the strings of an object.
fn substitute(v: &mut Value, subs: &[(String, String)]) {
    match v {
        Value::String(s) => {
            for (from, to) in subs {
                if s.contains(from.as_str()) {
                    *s = s.replace(from.as_str(), to);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, subs)),
        Value::Object(m) => m.values_mut().for_each(|x| substitute(x, subs)),
        _ => {}
    }
}

fn from_value(doc: Value, field: &str) -> Result<ScenarioSpec, InvalidInput> {
    serde_json::from_value(doc).map_err(|e| {
        InvalidInput::new(
            format!("{field}: spec"),
            format!("the deployment, the run's workload and the stack's spec patch do not combine: {e}"),
            "fix the stack's spec patch",
        )
    })
}

/// The entries of a folder, sorted by path (none when it cannot be read).
pub(crate) fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    v
}

/// The last component of a path, as text.
pub(crate) fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The path with `..` and links resolved (the manifest readers resolve Kustomize and chart paths
/// from it); as given when it does not exist.
pub(crate) fn absolute(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// The error for a deployment path that does not exist.
pub(crate) fn missing_deployment(source: &Path, path: &Path, how: &str) -> InvalidInput {
    InvalidInput::new(
        format!("{}: deployment", source.display()),
        format!("{} does not exist", path.display()),
        how.to_string(),
    )
}
