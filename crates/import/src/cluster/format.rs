//! The `kind: ClusterExperiment` file: a cluster benchmark written down for `blis validate`.
//!
//! ```yaml
//! kind: ClusterExperiment
//! name: my-benchmark
//! stacks:
//! - name: llm-d
//!   deployment: [manifests/]          # scenario files or manifest files / folders, relative to this file
//!   spec: {router: {policy: roundRobin}}   # optional merge patch on the deployment's scenario
//!   notes: [what the deployment could not say]
//!   runs:
//!   - label: ladder
//!     workload: {profile: {inferencePerf: {...}}}   # a scenario workload; trace.path relative to this file
//!     measured:
//!     - {stage: 1, rate: 3, ttft_mean_ms: 133, ttft_p90_ms: 162, output_tokens_per_s: 1777, n: 60}
//! ```
//!
//! Or, for a published folder converted as it is: `from: {folder: PATH, deployment: PATH, spec: PATCH,
//! stacks: {NAME: {spec: PATCH, notes: [...]}}}` (`deployment` only where the folder holds none; `spec`
//! patches every stack with what the folder does not record, `stacks` one stack, or every scenario of
//! a stack folder, with what only it lacks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use blis_sim::workload::Trace;
use serde::Deserialize;
use serde_json::Value;

use super::{ClusterExperiment, Figures, Point, Run, Stack};
use crate::folder::read_file;
use blis_sim::error::InvalidInput;
use blis_sim::workload::WorkloadSpec;

/// The `kind` value.
pub const KIND: &str = "ClusterExperiment";

/// Whether a YAML text is a cluster-experiment file. A text without the kind's name is not one
/// (spelling it with YAML escapes is not supported), and is not parsed: `blis validate` asks this of
/// every single-replica experiment it is given.
pub fn is_cluster_experiment(text: &str) -> bool {
    text.contains(KIND)
        && serde_yaml::from_str::<Value>(text).ok().and_then(|v| v.get("kind").cloned())
            == Some(Value::from(KIND))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    kind: String,
    name: Option<String>,
    #[serde(default)]
    from: Option<FromDoc>,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    stacks: Vec<StackDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FromDoc {
    folder: PathBuf,
    #[serde(default)]
    deployment: Option<PathBuf>,
    /// A merge patch for every converted stack: what the folder does not record (e.g. the vLLM
    /// release behind an image tagged `latest`).
    #[serde(default)]
    spec: Option<Value>,
    /// Per converted stack (by its name, or by the stack folder that names several): a merge patch
    /// and notes, for what the folder does not record about that stack alone.
    #[serde(default)]
    stacks: BTreeMap<String, StackOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StackOverride {
    #[serde(default)]
    spec: Option<Value>,
    #[serde(default)]
    notes: Vec<String>,
}

/// Whether the override keyed `key` is for the converted stack `name`: its whole name, or the stack
/// folder it starts with (`llm-d-70b-2replicas` for `llm-d-70b-2replicas sharegpt`).
fn override_applies(key: &str, name: &str) -> bool {
    name == key || name.strip_prefix(key).is_some_and(|rest| rest.starts_with(' '))
}

/// Merges `patch` into a stack's patch (which may still be null).
fn merge_into(stack: &mut Stack, patch: &Value) {
    if stack.patch.is_null() {
        stack.patch = Value::Object(Default::default());
    }
    blis_sim::scenario::patch::merge_patch(&mut stack.patch, patch);
}

/// Says so in the stack's notes when `patch` (from `at`) sets the router: the conversion's own notes
/// describe the router it chose, which the patch replaces.
fn note_router_override(stack: &mut Stack, patch: &Value, at: &str) {
    if patch.get("router").is_some() {
        stack
            .notes
            .push(format!("router as {at}.router gives it (notes on the converted router no longer apply)"));
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StackDoc {
    name: String,
    deployment: Vec<PathBuf>,
    #[serde(default)]
    spec: Option<Value>,
    #[serde(default)]
    notes: Vec<String>,
    runs: Vec<RunDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunDoc {
    label: Option<String>,
    workload: WorkloadSpec,
    measured: Vec<PointDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointDoc {
    rate: f64,
    #[serde(default)]
    stage: Option<u32>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    ttft_mean_ms: Option<f64>,
    #[serde(default)]
    ttft_p90_ms: Option<f64>,
    #[serde(default)]
    output_tokens_per_s: Option<f64>,
    #[serde(default)]
    itl_mean_ms: Option<f64>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    unscored: Option<String>,
    #[serde(default)]
    censored: bool,
}

/// Reads a cluster-experiment file; `deployment` (the command line's) overrides a `from` entry's.
pub fn load_file(path: &Path, deployment: Option<&Path>) -> Result<Vec<ClusterExperiment>, InvalidInput> {
    let text = read_file(path)?;
    parse(&text, path, deployment)
}

/// Parses a cluster-experiment file's text (`path` names it in errors and anchors relative paths).
pub fn parse(
    text: &str,
    path: &Path,
    deployment: Option<&Path>,
) -> Result<Vec<ClusterExperiment>, InvalidInput> {
    let file = path.display().to_string();
    let doc: FileDoc = serde_yaml::from_str(text).map_err(|e| {
        InvalidInput::new(
            file.clone(),
            format!("is not a valid cluster experiment: {e}"),
            "see docs/validation.md for the ClusterExperiment fields",
        )
    })?;
    if doc.kind != KIND {
        return Err(InvalidInput::new(
            format!("{file}: kind"),
            format!("is {:?}", doc.kind),
            "use kind: ClusterExperiment",
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Some(from) = doc.from {
        if !doc.stacks.is_empty() {
            return Err(InvalidInput::new(
                format!("{file}: from"),
                "is given together with stacks",
                "give either from (a published folder to convert) or stacks",
            ));
        }
        let folder = super::absolute(&dir.join(&from.folder));
        let Some(kind) = super::kind_of(&folder) else {
            return Err(InvalidInput::new(
                format!("{file}: from.folder"),
                format!(
                    "{} is not a published cluster benchmark folder (or does not exist)",
                    folder.display()
                ),
                "name a folder of validation/cluster/ (the path is relative to this file)",
            ));
        };
        let dep = deployment
            .map(Path::to_path_buf)
            .or_else(|| from.deployment.map(|d| super::absolute(&dir.join(d))));
        let mut exps = super::convert(&folder, kind, dep.as_deref())?;
        let names: Vec<&str> = exps.iter().flat_map(|e| &e.stacks).map(|s| s.name.as_str()).collect();
        for (key, o) in &from.stacks {
            if !names.iter().any(|n| override_applies(key, n)) {
                return Err(InvalidInput::new(
                    format!("{file}: from.stacks.{key}"),
                    "names no stack of the folder",
                    format!("use a stack's name or its folder: {}", names.join(", ")),
                ));
            }
            if o.spec.as_ref().is_some_and(|p| !p.is_object()) {
                return Err(InvalidInput::new(
                    format!("{file}: from.stacks.{key}.spec"),
                    "is not a mapping",
                    "give a merge patch on the stack's scenario spec, e.g. {replicas: 2}",
                ));
            }
        }
        for e in &mut exps {
            e.source = path.to_path_buf();
            e.notes.extend(doc.notes.iter().cloned());
            for s in &mut e.stacks {
                if let Some(patch) = &from.spec {
                    merge_into(s, patch);
                    note_router_override(s, patch, "from.spec");
                }
                let mine: Vec<(&String, &StackOverride)> =
                    from.stacks.iter().filter(|(k, _)| override_applies(k, &s.name)).collect();
                for (key, o) in mine {
                    if let Some(patch) = &o.spec {
                        merge_into(s, patch);
                        note_router_override(s, patch, &format!("from.stacks.{key}.spec"));
                    }
                    s.notes.extend(o.notes.iter().cloned());
                }
            }
        }
        return Ok(exps);
    }
    let name = doc
        .name
        .ok_or_else(|| InvalidInput::new(format!("{file}: name"), "is missing", "name the experiment"))?;
    if doc.stacks.is_empty() {
        return Err(InvalidInput::new(
            format!("{file}: stacks"),
            "is empty",
            "give at least one stack (deployment, runs with measured figures), or from: {folder: ...}",
        ));
    }
    let mut stacks = Vec::new();
    for (i, s) in doc.stacks.into_iter().enumerate() {
        let at = format!("{file}: stacks[{i}]");
        if s.deployment.is_empty() {
            return Err(InvalidInput::new(
                format!("{at}.deployment"),
                "is empty",
                "name the scenario file or the manifests the stack deploys",
            ));
        }
        let deployment: Vec<PathBuf> = s.deployment.iter().map(|d| super::absolute(&dir.join(d))).collect();
        for d in &deployment {
            if !d.exists() {
                return Err(super::missing_deployment(
                    path,
                    d,
                    "fix the path (relative to the experiment file)",
                ));
            }
        }
        let mut runs = Vec::new();
        for (j, r) in s.runs.into_iter().enumerate() {
            runs.push(run(r, dir, &format!("{at}.runs[{j}]"))?);
        }
        if runs.is_empty() {
            return Err(InvalidInput::new(
                format!("{at}.runs"),
                "is empty",
                "give at least one run with measured figures",
            ));
        }
        stacks.push(Stack {
            name: s.name,
            deployment,
            patch: s.spec.unwrap_or(Value::Null),
            runs,
            notes: s.notes,
            unrunnable: None,
            substitutions: Vec::new(),
        });
    }
    Ok(vec![ClusterExperiment { name, source: path.to_path_buf(), stacks, notes: doc.notes }])
}

fn run(r: RunDoc, dir: &Path, at: &str) -> Result<Run, InvalidInput> {
    let trace = match r.workload.trace.as_ref().and_then(|t| t.path.as_ref()) {
        Some(p) => Some(Arc::new(Trace::parse_csv(
            &read_file(&dir.join(p)).map_err(|e| e.under(&format!("{at}.workload.trace.path")))?,
        ))),
        None => None,
    };
    let mut points = Vec::new();
    for (k, p) in r.measured.into_iter().enumerate() {
        let f = format!("{at}.measured[{k}]");
        if !(p.rate.is_finite() && p.rate > 0.0) {
            return Err(InvalidInput::new(
                format!("{f}.rate"),
                "must be a positive number",
                "give the nominal request rate (req/s)",
            ));
        }
        let figures = Figures {
            ttft_mean_ms: p.ttft_mean_ms,
            ttft_p90_ms: p.ttft_p90_ms,
            output_tokens_per_s: p.output_tokens_per_s,
            itl_mean_ms: p.itl_mean_ms,
            n: p.n,
        };
        for (name, v) in [
            ("ttft_mean_ms", figures.ttft_mean_ms),
            ("ttft_p90_ms", figures.ttft_p90_ms),
            ("output_tokens_per_s", figures.output_tokens_per_s),
            ("itl_mean_ms", figures.itl_mean_ms),
        ] {
            if v.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
                return Err(InvalidInput::new(
                    format!("{f}.{name}"),
                    "must be a positive number",
                    "give the measured value or leave it out",
                ));
            }
        }
        if figures.ttft_mean_ms.is_none() {
            return Err(InvalidInput::new(
                format!("{f}.ttft_mean_ms"),
                "is missing",
                "give the measured TTFT mean: the knee and the scores need it",
            ));
        }
        points.push(Point {
            label: p.label.unwrap_or_else(|| format!("rate {}", p.rate)),
            rate: p.rate,
            stage: p.stage,
            measured: figures,
            unscored: p.unscored.or_else(|| {
                p.censored
                    .then(|| "censored: only the requests that finished before a cut-off were logged".into())
            }),
            censored: p.censored,
        });
    }
    Ok(Run { label: r.label.unwrap_or_else(|| "run".into()), workload: r.workload, trace, points })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `from.stacks` key names a whole stack, or the stack folder before the scenario: never a
    /// shorter prefix, another stack, or a scenario the stack does not have.
    #[test]
    fn an_override_key_is_a_stack_name_or_the_folder_it_starts_with() {
        assert!(override_applies("llm-d-70b-2replicas", "llm-d-70b-2replicas sharegpt"));
        assert!(override_applies("llm-d-70b-2replicas sharegpt", "llm-d-70b-2replicas sharegpt"));
        assert!(override_applies("A100 vllm-2replicas", "A100 vllm-2replicas"));
        assert!(
            !override_applies("llm-d", "llm-d-70b-2replicas sharegpt"),
            "a prefix of the folder is not it"
        );
        assert!(!override_applies("A100 vllm-2replicas", "A100 vllm-3replicas"));
        assert!(!override_applies("llm-d-70b-2replicas sharegpt", "llm-d-70b-2replicas"));
    }

    /// Only a YAML document whose `kind` is the cluster kind is one: mentioning the name elsewhere,
    /// another kind, or no kind (a single-replica experiment) is not.
    #[test]
    fn the_kind_decides_what_a_cluster_experiment_is() {
        assert!(is_cluster_experiment("kind: ClusterExperiment\nname: x\n"));
        assert!(is_cluster_experiment("{name: x, kind: 'ClusterExperiment'}"));
        assert!(!is_cluster_experiment("kind: Scenario\nname: ClusterExperiment\n"));
        assert!(!is_cluster_experiment("id: eval-02\nmodel: m\n"));
        assert!(!is_cluster_experiment("kind: ClusterExperiment: [\n"), "not YAML");
    }
}
