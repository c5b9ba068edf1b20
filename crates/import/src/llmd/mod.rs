//! Importers: the real objects an llm-d operator has (InferencePool, model-server Deployments /
//! LeaderWorkerSets, llm-d-modelservice values, the endpoint-picker ConfigMap, InferenceObjectives /
//! InferenceModels) turned into scenario inputs. Pure functions over parsed objects: the CLI (the
//! other documents of its files) and the controller (objects fetched from the namespace) both call
//! [`apply`], so they predict the same for the same objects.

pub mod inference_pool;
pub mod modelservice;
pub mod objective;
pub mod vllm_args;
pub mod workload;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::merge_patch;
use blis_sim::scenario::spec::{ImportSpec, ObjectRef, PoolRole, ScenarioSpec};
use workload::ModelServer;

/// Kubernetes objects that references resolve against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Objects {
    items: Vec<Value>,
}

impl Objects {
    /// Objects as parsed (JSON form of the manifests or API objects).
    pub fn new(items: Vec<Value>) -> Self {
        let mut out = Self::default();
        out.extend(items);
        out
    }

    /// Adds one object; it replaces an earlier one of the same kind and name (a later file wins).
    pub fn push(&mut self, obj: Value) {
        let name = obj.pointer("/metadata/name").cloned();
        self.items.retain(|o| kind_of(o) != kind_of(&obj) || o.pointer("/metadata/name").cloned() != name);
        self.items.push(obj);
    }

    /// The object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.items.iter().find(|o| kind_of(o) == kind && o.pointer("/metadata/name") == Some(&json!(name)))
    }

    /// The objects of `kind`, sorted by name (as the API lists them).
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        let mut v: Vec<&Value> = self.items.iter().filter(|o| kind_of(o) == kind).collect();
        v.sort_by_key(|o| o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string());
        v
    }
}

impl Extend<Value> for Objects {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, iter: I) {
        iter.into_iter().for_each(|o| self.push(o));
    }
}

fn kind_of(o: &Value) -> &str {
    o.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// Reads a (multi-document) YAML text into JSON values, skipping empty documents.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, InvalidInput> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc).map_err(|e| {
            InvalidInput::new(
                format!("document {}", i + 1),
                format!("is not valid YAML: {e}"),
                "fix the YAML",
            )
        })?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// An inline input: an object as is, or a pasted YAML string.
fn inline(v: &Value, field: &str) -> Result<Value, InvalidInput> {
    match v {
        Value::String(s) => serde_yaml::from_str(s).map_err(|e| {
            InvalidInput::new(field, format!("is not valid YAML: {e}"), "paste the manifest as YAML")
        }),
        other => Ok(other.clone()),
    }
}

/// A scenario spec with its `import` applied, and what the importers noticed.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The effective spec: the imported inputs with the scenario's own fields merged on top.
    pub spec: ScenarioSpec,
    /// What was approximated or ignored, for `normalizedInputs.warnings` and the CLI.
    pub warnings: Vec<String>,
}

/// The referenced object, with the reference's merge patch applied.
fn fetch_ref(
    objects: &Objects,
    r: &ObjectRef,
    kind: &str,
    field: &str,
    extra: Option<&Value>,
) -> Result<Value, InvalidInput> {
    let mut obj = objects.get(kind, &r.name).cloned().ok_or_else(|| {
        InvalidInput::new(
            format!("{field}.name"),
            format!("{kind} {:?} not found in the scenario's namespace (or the files read)", r.name),
            format!("create the {kind} or fix the name"),
        )
    })?;
    if let (Some(p), None) = (&r.patch, extra) {
        merge_patch(&mut obj, p);
    }
    Ok(obj)
}

/// The EndpointPickerConfig text under a ConfigMap key (patched when the reference says so).
fn epp_config(objects: &Objects, r: &ObjectRef) -> Result<Value, InvalidInput> {
    let field = "spec.import.endpointPickerConfigRef";
    let cm = fetch_ref(objects, r, "ConfigMap", field, r.patch.as_ref())?;
    let data = cm.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    let key = match &r.key {
        Some(k) => k.clone(),
        None if data.len() == 1 => data.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(InvalidInput::new(
                format!("{field}.key"),
                // The keys are not listed: the author may not be allowed to read the ConfigMap.
                format!("is needed: ConfigMap {:?} has {} keys", r.name, data.len()),
                "name the key that holds the EndpointPickerConfig",
            ));
        }
    };
    let text = data.get(&key).and_then(Value::as_str).ok_or_else(|| {
        InvalidInput::new(
            format!("{field}.key"),
            format!("ConfigMap {:?} has no data key {key:?}", r.name),
            "name a key of the ConfigMap's data that holds the EndpointPickerConfig",
        )
    })?;
    match &r.patch {
        None => Ok(Value::String(text.to_string())),
        Some(p) => {
            let mut doc =
                inline(&Value::String(text.to_string()), &format!("ConfigMap {}: data.{key}", r.name))?;
            merge_patch(&mut doc, p);
            Ok(doc)
        }
    }
}

/// The model servers the import names: workloads (referenced, inline), modelservice values, else
/// the Deployments / LeaderWorkerSets / DisaggregatedSets the pool selects.
fn model_servers(
    imp: &ImportSpec,
    objects: &Objects,
    pool: Option<&inference_pool::InferencePool>,
    warnings: &mut Vec<String>,
) -> Result<Vec<ModelServer>, InvalidInput> {
    let mut out = Vec::new();
    for (i, r) in imp.workload_refs.iter().flatten().enumerate() {
        let field = format!("spec.import.workloadRefs[{i}]");
        let kind = r.kind.as_deref().unwrap_or("Deployment");
        let obj = fetch_ref(objects, r, kind, &field, None)?;
        out.extend(workload::import_all(&obj).map_err(|e| e.under(&field))?);
    }
    for (i, w) in imp.workloads.iter().flatten().enumerate() {
        let field = format!("spec.import.workloads[{i}]");
        out.extend(workload::import_all(&inline(w, &field)?).map_err(|e| e.under(&field))?);
    }
    if let Some(v) = &imp.model_service_values {
        let field = "spec.import.modelServiceValues";
        out.extend(modelservice::import(&inline(v, field)?).map_err(|e| e.under(field))?);
    }
    match pool {
        Some(p) if out.is_empty() => {
            for kind in workload::KINDS {
                for obj in objects.of_kind(kind) {
                    if workload::template_labels(obj).iter().any(|l| p.selects(l)) {
                        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                        let field = format!("spec.import.inferencePoolRef: {kind} {name}");
                        let servers = workload::import_all(obj).map_err(|e| e.under(&field))?;
                        out.extend(servers.into_iter().filter(|m| p.selects(&m.labels)));
                    }
                }
            }
            if out.is_empty() {
                return Err(InvalidInput::new(
                    "spec.import.inferencePoolRef",
                    format!(
                        "InferencePool {:?} selects no Deployment, LeaderWorkerSet or DisaggregatedSet {:?}",
                        p.name, p.selector
                    ),
                    "create the model-server Deployment, or name it in spec.import.workloadRefs",
                ));
            }
        }
        Some(p) => {
            for m in out.iter().filter(|m| !p.selects(&m.labels)) {
                warnings
                    .push(format!("model server {:?} is not selected by InferencePool {:?}", m.name, p.name));
            }
        }
        None => {}
    }
    // Decode (or aggregated) servers first: the first one gives the top-level hardware and knobs.
    out.sort_by_key(|m| m.role == Some(PoolRole::Prefill));
    Ok(out)
}

/// The spec fields (JSON) the model servers give.
fn servers_json(servers: &[ModelServer], warnings: &mut Vec<String>) -> Value {
    let mut base = Map::new();
    let Some(first) = servers.first() else { return Value::Object(base) };
    let mut models: Vec<&str> = servers.iter().filter_map(|m| m.args.model.as_deref()).collect();
    models.dedup();
    if let Some(m) = models.first() {
        base.insert("model".into(), json!({"name": m}));
    }
    if models.len() > 1 {
        warnings.push(format!("model servers serve different models {models:?}; simulating {:?}", models[0]));
    }
    let hardware = |m: &ModelServer| {
        let mut h = json!({"tensorParallelism": m.tensor_parallel()});
        if let Some(g) = &m.gpu {
            h["gpu"] = json!(g);
        }
        h
    };
    for m in servers {
        let what = format!("model server {:?}", m.name);
        warnings.extend(m.args.warnings.iter().map(|w| format!("{what}: {w}")));
        let want = m.tensor_parallel() * m.data_parallel();
        if let Some(g) = m.gpus_per_replica.filter(|g| *g != want) {
            warnings.push(format!(
                "{what} requests {g} GPUs per replica but runs TP {} x DP {}; simulating TP x DP",
                m.tensor_parallel(),
                m.data_parallel()
            ));
        }
    }
    base.insert("hardware".into(), hardware(first));
    base.insert("vllm".into(), serde_json::to_value(&first.args.vllm).unwrap_or_default());
    let aggregated =
        servers.len() == 1 && first.role != Some(PoolRole::Prefill) && first.data_parallel() == 1;
    if aggregated {
        base.insert("replicas".into(), json!(first.replicas));
    } else {
        let pools: Vec<Value> = servers
            .iter()
            .map(|m| {
                let mut p = json!({
                    "name": m.name,
                    "role": m.role.unwrap_or(PoolRole::Both),
                    "replicas": m.replicas,
                    "hardware": hardware(m),
                    "vllm": m.args.vllm,
                    "labels": m.labels,
                });
                if m.data_parallel() > 1 {
                    p["dataParallelism"] = json!(m.data_parallel());
                }
                p
            })
            .collect();
        base.insert("pools".into(), Value::Array(pools));
    }
    Value::Object(base)
}

/// Applies `spec.import`: reads the objects it names (inline or from `objects`), builds the spec
/// they describe, and merges the scenario's own fields on top. A spec without `import` is returned
/// as is.
pub fn apply(spec: &ScenarioSpec, objects: &Objects) -> Result<Imported, InvalidInput> {
    let Some(imp) = &spec.import else { return Ok(Imported { spec: spec.clone(), warnings: Vec::new() }) };
    let mut warnings = Vec::new();
    let pool = match (&imp.inference_pool_ref, &imp.inference_pool) {
        (Some(_), Some(_)) => {
            return Err(InvalidInput::new(
                "spec.import.inferencePool",
                "is given twice (inline and inferencePoolRef)",
                "keep one of inferencePool and inferencePoolRef",
            ))
        }
        (Some(r), None) => {
            let field = "spec.import.inferencePoolRef";
            let obj = fetch_ref(objects, r, "InferencePool", field, None)?;
            Some(
                inference_pool::import(&obj)
                    .map_err(|e| e.under(&format!("{field}: InferencePool {}", r.name)))?,
            )
        }
        (None, Some(v)) => {
            let field = "spec.import.inferencePool";
            Some(inference_pool::import(&inline(v, field)?).map_err(|e| e.under(field))?)
        }
        (None, None) => None,
    };
    let servers = model_servers(imp, objects, pool.as_ref(), &mut warnings)?;
    let mut base = servers_json(&servers, &mut warnings);
    if let Some(r) = &imp.endpoint_picker_config_ref {
        base["router"] = json!({"endpointPickerConfig": epp_config(objects, r)?});
    }
    // Objectives: inline ones, and those of the pool among the objects.
    let mut found: Vec<Value> = Vec::new();
    for (i, o) in imp.objectives.iter().flatten().enumerate() {
        found.push(inline(o, &format!("spec.import.objectives[{i}]"))?);
    }
    if let Some(p) = &pool {
        for kind in ["InferenceObjective", "InferenceModel"] {
            found.extend(
                objects
                    .of_kind(kind)
                    .into_iter()
                    .filter(|o| o.pointer("/spec/poolRef/name").and_then(Value::as_str) == Some(&p.name))
                    .cloned(),
            );
        }
    }
    let classes: Vec<&str> = spec.workload.classes.iter().map(|c| c.name.as_str()).collect();
    let mut objectives = Vec::new();
    for (i, o) in found.iter().enumerate() {
        let (obj, _) = objective::import(o).map_err(|e| e.under(&format!("spec.import.objectives[{i}]")))?;
        if classes.contains(&obj.class.as_str()) {
            objectives.push(obj);
        } else {
            warnings.push(format!(
                "objective {:?} matches no workload class; name a class {:?} to give its requests that priority",
                obj.class, obj.class
            ));
        }
    }
    if !objectives.is_empty() {
        merge_patch(&mut base, &json!({"router": {"objectives": objectives}}));
    }

    // The scenario's own fields win.
    let mut own = serde_json::to_value(spec).unwrap_or_default();
    if let Some(o) = own.as_object_mut() {
        o.remove("import");
    }
    merge_patch(&mut base, &own);
    let mut out: ScenarioSpec = serde_path_to_error::deserialize(base).map_err(|e| {
        InvalidInput::new(
            format!("spec.{}", e.path()),
            format!(
                "the imported objects plus the scenario's fields do not form a valid spec: {}",
                e.inner()
            ),
            "fix the scenario field or the imported object",
        )
    })?;
    let top_gpu = out.hardware.gpu.clone();
    for p in out.pools.iter_mut().flatten() {
        if let Some(h) = p.hardware.as_mut().filter(|h| h.gpu.is_empty()) {
            h.gpu = top_gpu.clone();
        }
    }
    if out.model.is_unset() {
        return Err(InvalidInput::new(
            "spec.model.name",
            "is not set and no imported model server names a model",
            "set spec.model.name, or import a Deployment running `vllm serve <model>`",
        ));
    }
    if top_gpu.is_empty() {
        return Err(InvalidInput::new(
            "spec.hardware.gpu",
            "is not set and no imported model server's node selector names a GPU product",
            "set spec.hardware.gpu (e.g. H100-SXM-80GB), or add a nodeSelector nvidia.com/gpu.product",
        ));
    }
    Ok(Imported { spec: out, warnings })
}

#[cfg(test)]
mod tests;
