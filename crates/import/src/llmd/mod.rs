//! Importers: the real objects an llm-d operator has (InferencePool, model-server Deployments /
//! LeaderWorkerSets, llm-d-modelservice values, the endpoint-picker ConfigMap, InferenceObjectives /
//! InferenceModels) turned into scenario inputs. Pure functions over parsed objects: the CLI (the
//! other documents of its files) and the controller (objects fetched from the namespace) both call
//! [`apply`], so they predict the same for the same objects.

pub mod autoscaling;
pub mod charts;
pub mod env_epp;
pub mod gotmpl;
pub mod gpu;
pub mod helmfile;
pub mod inference_pool;
pub mod modelservice;
pub mod objective;
pub mod shell;
pub mod vllm_args;
pub mod workload;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::merge_patch;
use blis_sim::scenario::spec::{ImportSpec, ObjectRef, PoolRole, ScenarioSpec};
use workload::ModelServer;

/// The GPU simulated when neither the scenario nor the imported model servers name one (the llm-d
/// guides' READMEs size their deployments for it), with a warning.
pub const DEFAULT_GPU: &str = "H100-SXM-80GB";

/// Annotation the folder reader puts on every object: the file (or the values files / kustomization)
/// it came from, so a refusal can name it.
pub const FILE_ANNOTATION: &str = "blis.dev/file";

/// The file an object came from (see [`FILE_ANNOTATION`]).
pub fn file_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations").and_then(|a| a.get(FILE_ANNOTATION)).and_then(Value::as_str)
}

/// Records the file an object came from.
pub fn set_file(obj: &mut Value, file: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.entry(FILE_ANNOTATION).or_insert_with(|| json!(file));
        }
    }
}

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

    /// The kinds held, each once, in order.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.items.iter().map(|o| kind_of(o).to_string()).collect();
        k.sort();
        k.dedup();
        k
    }

    /// Every object, in the order added.
    pub fn into_items(self) -> Vec<Value> {
        self.items
    }

    /// Every object.
    pub fn all(&self) -> &[Value] {
        &self.items
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
            InvalidInput::new(field, crate::yaml_error::problem(&e, s), "paste the manifest as YAML")
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
    /// The manifest each imported input came from, by inputs path (`pools[0].vllm.max_num_seqs`),
    /// for inputs the scenario's own fields did not override.
    pub sources: std::collections::BTreeMap<String, String>,
    /// No GPU was named by the scenario or the manifests: the import fell back to [`DEFAULT_GPU`].
    pub gpu_defaulted: bool,
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
    rendered: &[Value],
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
    for obj in rendered.iter().filter(|o| workload::KINDS.contains(&kind_of(o))) {
        out.extend(workload::import_all(obj).map_err(|e| e.under("spec.import.modelServiceValues"))?);
    }
    match pool {
        Some(p) if out.is_empty() => {
            for kind in workload::KINDS {
                for obj in objects.of_kind(kind) {
                    if workload::template_labels(obj).iter().any(|l| p.selects(l)) {
                        let servers = workload::import_all(obj).map_err(|mut e| {
                            e.field = format!("spec.import.inferencePoolRef selects {}", e.field);
                            e
                        })?;
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
                warnings.push(format!(
                    "model server {:?} (labels {:?}) is not selected by InferencePool {:?} (selector {:?}); the real pool would not route to it",
                    m.name, m.labels, p.name, p.selector
                ));
            }
        }
        None => {}
    }
    let dropped: Vec<String> = out.iter().filter(|m| m.replicas == 0).map(|m| m.name.clone()).collect();
    if !dropped.is_empty() {
        warnings.push(format!("model servers {dropped:?} have 0 replicas; left out"));
        out.retain(|m| m.replicas > 0);
    }
    // Decode (or aggregated) servers first: the first one gives the top-level hardware and knobs.
    out.sort_by_key(|m| m.role == Some(PoolRole::Prefill));
    Ok(out)
}

/// The vLLM knobs as the inputs name them, by their spec (camelCase) names.
const KNOBS: [(&str, &str, &str); 13] = [
    ("maxNumSeqs", "max_num_seqs", "--max-num-seqs"),
    ("maxNumBatchedTokens", "max_num_batched_tokens", "--max-num-batched-tokens"),
    ("blockSize", "block_size", "--block-size"),
    ("gpuMemoryUtilization", "gpu_memory_utilization", "--gpu-memory-utilization"),
    ("kvBlocks", "kv_blocks", "--num-gpu-blocks-override"),
    ("maxModelLen", "max_model_len", "--max-model-len"),
    ("enablePrefixCaching", "prefix_caching", "--enable-prefix-caching"),
    ("enableChunkedPrefill", "chunked_prefill", "--enable-chunked-prefill"),
    ("longPrefillTokenThreshold", "long_prefill_token_threshold", "--long-prefill-token-threshold"),
    ("asyncScheduling", "async_scheduling", "--async-scheduling"),
    ("cpuOffloadGib", "cpu_offload_gib", "--kv-transfer-config / --kv-offloading-size"),
    ("kvCacheDtype", "kv_cache_dtype", "--kv-cache-dtype"),
    ("enforceEager", "enforce_eager", "--enforce-eager"),
];

/// The manifest each imported input came from (inputs paths), leaving out what the scenario's own
/// fields set.
fn import_sources(
    servers: &[ModelServer],
    scaling: &[Option<Value>],
    base: &Value,
    epp_ref: &Option<ObjectRef>,
    pool: Option<&inference_pool::InferencePool>,
    spec: &ScenarioSpec,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let own = serde_json::to_value(spec).unwrap_or_default();
    let pooled = base.get("pools").is_some();
    for (i, (m, a)) in servers.iter().zip(scaling).enumerate() {
        let own_top = |f: &str| !pooled && own.pointer(f).is_some();
        let at = |k: &str| format!("pools[{i}].{k}");
        if i == 0 && m.args.model.is_some() && own.pointer("/model/name").is_none() {
            out.insert("model".to_string(), format!("manifest: {} (vllm serve)", m.source));
        }
        if !own_top("/replicas") {
            out.insert(at("replicas"), format!("manifest: {} (replicas)", m.source));
        }
        if !own_top("/hardware/tensorParallelism") {
            let said = if m.args.tensor_parallel.is_some() {
                format!("manifest: {} (--tensor-parallel-size)", m.source)
            } else if m.gpus_per_pod.is_some_and(|g| g > 0) {
                format!("manifest: {} (GPUs per pod / DP-local)", m.source)
            } else {
                "default: 1 (the pod requests no GPU)".to_string()
            };
            out.insert(at("tensor_parallelism"), said);
        }
        if m.args.data_parallel.is_some() {
            out.insert(at("data_parallelism"), format!("manifest: {} (--data-parallel-size)", m.source));
        }
        if let Some(g) = m.gpu.as_ref().filter(|_| !own_top("/hardware/gpu")) {
            out.insert(at("gpu"), format!("manifest: {} ({})", m.source, g.via));
        }
        let vllm = serde_json::to_value(&m.args.vllm).unwrap_or_default();
        for (camel, key, flag) in KNOBS {
            if vllm.get(camel).is_some() && !own_top(&format!("/vllm/{camel}")) {
                out.insert(at(&format!("vllm.{key}")), format!("manifest: {} ({flag})", m.source));
            }
        }
        if a.is_some() {
            out.insert(at("autoscaling"), format!("manifest: HorizontalPodAutoscaler on {}", m.source));
        }
    }
    if own.pointer("/router/endpointPickerConfig").is_none() {
        match (epp_ref, pool, base.pointer("/router/endpointPickerConfig").is_some()) {
            (Some(r), _, _) => {
                out.insert("router".to_string(), format!("manifest: ConfigMap {}", r.name));
            }
            (None, Some(p), true) => {
                out.insert(
                    "router".to_string(),
                    format!(
                        "manifest: endpoint picker {} of InferencePool {}",
                        p.endpoint_picker.as_deref().unwrap_or(""),
                        p.name
                    ),
                );
            }
            (None, Some(p), false) => {
                out.insert(
                    "router".to_string(),
                    format!("default: the EPP's built-in config (InferencePool {})", p.name),
                );
            }
            _ => {}
        }
    }
    if base.pointer("/router/objectives").is_some() && own.pointer("/router/objectives").is_none() {
        out.insert(
            "objectives".to_string(),
            "manifest: InferenceObjectives / InferenceModels of the pool".to_string(),
        );
    } else if let (Some(p), None) = (pool, own.pointer("/router/objectives")) {
        out.insert(
            "objectives".to_string(),
            format!(
                "default: priority 0 (no InferenceObjective or InferenceModel names InferencePool {})",
                p.name
            ),
        );
    }
    out
}

/// The one InferencePool among `objects` (an import that names nothing); an error when there are
/// several.
fn discovered_pool(objects: &Objects) -> Result<Option<inference_pool::InferencePool>, InvalidInput> {
    let pools = objects.of_kind("InferencePool");
    match pools.as_slice() {
        [] => Ok(None),
        [one] => {
            let name = one.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            inference_pool::import(one).map(Some).map_err(|e| e.within(&format!("InferencePool {name}")))
        }
        many => Err(InvalidInput::new(
            "spec.import.inferencePoolRef",
            format!(
                "is not set and the files deploy {} InferencePools ({})",
                many.len(),
                many.iter()
                    .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "name the pool to simulate in spec.import.inferencePoolRef",
        )),
    }
}

/// Every vLLM model server among `objects` (an import that names nothing, with no pool); objects
/// that run no vLLM container (EPPs, gateways, tokenizer services) are not model servers.
fn discovered_servers(objects: &Objects) -> Result<Vec<ModelServer>, InvalidInput> {
    let mut out = Vec::new();
    for kind in workload::KINDS {
        for obj in objects.of_kind(kind) {
            match workload::import_all(obj) {
                Ok(s) => out.extend(s),
                Err(e) if e.field.ends_with(".containers") => {}
                Err(e) => return Err(e),
            }
        }
    }
    if out.is_empty() {
        return Err(InvalidInput::new(
            "spec.import",
            "names nothing and the files deploy no InferencePool and no vLLM model server",
            "add the llm-d manifests (helmfile, chart values, Kustomize sources or objects) beside the scenario, or set spec.model and spec.hardware",
        ));
    }
    out.sort_by_key(|m| m.role == Some(PoolRole::Prefill));
    Ok(out)
}

/// The EPP config of a pool: the ConfigMap named as its endpoint picker (the key the chart selected,
/// or its only key), or the file the EPP Deployment of that name mounts (`-configFile`), or for an
/// environment-configured 0.0.x scheduler image the config equivalent to its environment.
fn pool_epp_config(
    objects: &Objects,
    p: &inference_pool::InferencePool,
    warnings: &mut Vec<String>,
) -> Result<Option<Value>, InvalidInput> {
    let Some(epp) = p.endpoint_picker.as_deref() else { return Ok(None) };
    let key_of = |cm: &Value, key: Option<&str>| -> Option<Value> {
        let data = cm.get("data")?.as_object()?;
        let key = key
            .map(str::to_string)
            .or_else(|| {
                cm.pointer(&format!(
                    "/metadata/annotations/{}",
                    crate::epp::CONFIG_FILE_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
                .map(str::to_string)
            })
            .or_else(|| (data.len() == 1).then(|| data.keys().next().cloned()).flatten())?;
        data.get(&key).cloned()
    };
    if let Some(cm) = objects.get("ConfigMap", epp) {
        if let Some(v) = key_of(cm, None) {
            return Ok(Some(v));
        }
    }
    // A raw EPP Deployment: `-configFile /config/<key>` with /config mounted from a ConfigMap.
    let Some(dep) = objects.get("Deployment", epp) else { return Ok(None) };
    let pod = dep.pointer("/spec/template/spec").cloned().unwrap_or(Value::Null);
    for c in pod.get("containers").and_then(Value::as_array).into_iter().flatten() {
        let args: Vec<String> = c
            .get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        let path = args.iter().enumerate().find_map(|(i, a)| {
            let flag = a.trim_start_matches('-');
            match flag.split_once('=') {
                Some((f, v)) if f == "configFile" || f == "config-file" => Some(v.to_string()),
                _ if flag == "configFile" || flag == "config-file" => args.get(i + 1).cloned(),
                _ => None,
            }
        });
        let Some(path) = path else {
            if let Some(cfg) = env_epp::config_of(c, warnings) {
                return Ok(Some(cfg));
            }
            continue;
        };
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        for m in c.get("volumeMounts").and_then(Value::as_array).into_iter().flatten() {
            let mount = m.get("mountPath").and_then(Value::as_str).unwrap_or("").trim_end_matches('/');
            if mount.trim_start_matches('/') != dir.trim_start_matches('/') {
                continue;
            }
            let vol = m.get("name").and_then(Value::as_str).unwrap_or("");
            let cm_name = pod
                .get("volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(vol))
                .and_then(|v| v.pointer("/configMap/name"))
                .and_then(Value::as_str);
            if let Some(cm) = cm_name.and_then(|n| objects.get("ConfigMap", n)) {
                return Ok(key_of(cm, Some(file)));
            }
        }
    }
    Ok(None)
}

/// The spec fields (JSON) the model servers give, checking their parallelism against their GPUs as
/// vLLM would (`allow` turns refusals into warnings) and their ranks against the pool's ports.
fn servers_json(
    servers: &[ModelServer],
    scaling: &[Option<Value>],
    pool: Option<&inference_pool::InferencePool>,
    allow: bool,
    warnings: &mut Vec<String>,
) -> Result<Value, InvalidInput> {
    let mut base = Map::new();
    let Some(first) = servers.first() else { return Ok(Value::Object(base)) };
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
            h["gpu"] = json!(g.name);
        }
        h
    };
    for m in servers {
        let what = format!("model server {:?}", m.name);
        warnings.extend(m.args.warnings.iter().map(|w| format!("{what}: {w}")));
        warnings.extend(m.check_parallelism(allow)?);
        if let Some(w) = m.gpu.as_ref().and_then(|g| g.warning.as_ref()) {
            warnings.push(format!("{what}: {w}"));
        }
        if m.simulator {
            warnings.push(format!(
                "{what} runs llm-d-inference-sim, a simulator of vLLM, not vLLM on GPUs: the twin simulates real vLLM servers of the model and GPU the scenario names"
            ));
        }
        if let Some(p) = pool {
            let ports = p.target_ports.len() as i64;
            let ranks = m.data_parallel_local();
            if ranks > 1 && ports < ranks {
                warnings.push(format!(
                    "{what} runs {ranks} DP ranks per pod but InferencePool {:?} exposes {ports} port(s) per pod: the EPP reaches the other ranks only through vLLM's own balancing, which the twin approximates by routing to every rank",
                    p.name
                ));
            } else if ports > ranks && ports > 1 {
                warnings.push(format!(
                    "InferencePool {:?} routes to {ports} ports per pod but {what} serves {ranks}; the twin routes to the served ranks only",
                    p.name
                ));
            }
        }
    }
    base.insert("hardware".into(), hardware(first));
    base.insert("vllm".into(), serde_json::to_value(&first.args.vllm).unwrap_or_default());
    let aggregated =
        servers.len() == 1 && first.role != Some(PoolRole::Prefill) && first.data_parallel() == 1;
    // An autoscaled server starts within its bounds.
    let start = |m: &ModelServer, a: &Option<Value>, warnings: &mut Vec<String>| {
        let Some(a) = a else { return m.replicas };
        let (lo, hi) =
            (a["minReplicas"].as_i64().unwrap_or(1), a["maxReplicas"].as_i64().unwrap_or(i64::MAX));
        let r = m.replicas.clamp(lo, hi.max(lo));
        if r != m.replicas {
            warnings.push(format!(
                "model server {:?}: {} replicas lie outside its autoscaler's {lo}..{hi}; starts at {r}",
                m.name, m.replicas
            ));
        }
        r
    };
    if aggregated {
        base.insert("replicas".into(), json!(start(first, &scaling[0], warnings)));
        if let Some(a) = &scaling[0] {
            base.insert("autoscaling".into(), a.clone());
        }
    } else {
        let starts: Vec<i64> = servers.iter().zip(scaling).map(|(m, a)| start(m, a, warnings)).collect();
        let pools: Vec<Value> = servers
            .iter()
            .zip(scaling)
            .zip(starts)
            .map(|((m, a), replicas)| {
                let mut p = json!({
                    "name": m.name,
                    "role": m.role.unwrap_or(PoolRole::Both),
                    "replicas": replicas,
                    "hardware": hardware(m),
                    "vllm": m.args.vllm,
                    "labels": m.labels,
                });
                if m.data_parallel() > 1 {
                    p["dataParallelism"] = json!(m.data_parallel());
                }
                if m.expert_parallel().is_some() {
                    p["expertParallel"] = json!(true);
                }
                if let Some(a) = a {
                    p["autoscaling"] = a.clone();
                }
                p
            })
            .collect();
        base.insert("pools".into(), Value::Array(pools));
    }
    Ok(Value::Object(base))
}

/// Applies `spec.import`: reads the objects it names (inline or from `objects`), builds the spec
/// they describe, and merges the scenario's own fields on top. A spec without `import` is returned
/// as is.
pub fn apply(spec: &ScenarioSpec, objects: &Objects) -> Result<Imported, InvalidInput> {
    let Some(imp) = &spec.import else {
        return Ok(Imported {
            spec: spec.clone(),
            warnings: Vec::new(),
            sources: Default::default(),
            gpu_defaulted: false,
        });
    };
    for (field, set) in [
        ("helmfile", imp.helmfile.is_some()),
        ("releases", imp.releases.is_some()),
        ("kustomize", imp.kustomize.is_some()),
    ] {
        if set {
            return Err(InvalidInput::new(
                format!("spec.import.{field}"),
                "names files, which only blis run / gate / sweep read",
                "in a cluster, apply what they render and reference the objects (inferencePoolRef, workloadRefs, endpointPickerConfigRef)",
            ));
        }
    }
    let mut warnings = Vec::new();
    let named = imp.inference_pool_ref.is_some()
        || imp.inference_pool.is_some()
        || imp.workload_refs.as_ref().is_some_and(|w| !w.is_empty())
        || imp.workloads.as_ref().is_some_and(|w| !w.is_empty())
        || imp.model_service_values.is_some();
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
                    .map_err(|e| e.within(&format!("{field}: InferencePool {}", r.name)))?,
            )
        }
        (None, Some(v)) => {
            let field = "spec.import.inferencePool";
            Some(inference_pool::import(&inline(v, field)?).map_err(|e| e.under(field))?)
        }
        (None, None) if !named => discovered_pool(objects)?,
        (None, None) => None,
    };
    let mut rendered = Vec::new();
    if let Some(v) = &imp.model_service_values {
        let field = "spec.import.modelServiceValues";
        let r = modelservice::render(&inline(v, field)?, "ms", None).map_err(|e| e.under(field))?;
        warnings.extend(r.warnings);
        rendered = r.objects;
    }
    let servers = if !named && pool.is_none() {
        discovered_servers(objects)?
    } else {
        model_servers(imp, objects, pool.as_ref(), &rendered, &mut warnings)?
    };
    // A node selector naming no GPU the twin knows fails the import, unless the scenario names the GPU.
    let gpu_given = !spec.hardware.gpu.is_empty() || spec.hardware.profile.is_some();
    for m in &servers {
        if let Some(e) = &m.gpu_error {
            if !gpu_given {
                return Err(e.clone());
            }
            warnings.push(format!(
                "model server {:?}: node selection {}: {}; ignored, the scenario's spec.hardware.gpu {:?} is simulated",
                m.name,
                e.field,
                e.problem,
                if spec.hardware.gpu.is_empty() { "profile" } else { spec.hardware.gpu.as_str() }
            ));
        }
    }
    let all: Vec<&Value> = objects.all().iter().chain(&rendered).collect();
    let mut scaling = Vec::new();
    for m in &servers {
        let kind = m.source.split(' ').next().unwrap_or("");
        let object = m.source.split_once(' ').map(|x| x.1).unwrap_or(&m.name);
        scaling.push(autoscaling::for_target(kind, object, &all, &mut warnings)?);
    }
    let allow = imp.allow_parallelism_mismatch.unwrap_or(false);
    let mut base = servers_json(&servers, &scaling, pool.as_ref(), allow, &mut warnings)?;
    if spec.vllm.version.is_none() {
        for m in servers.iter().filter(|m| !m.simulator && m.args.vllm.version.is_none()) {
            warnings.push(format!(
                "model server {:?}: its image names no vLLM release the twin knows (vllm/vllm-openai:vX tags and the llm-d / llm-d-cuda release tags v0.2.0 to v0.8.0 do); vLLM {}'s defaults are simulated: set spec.vllm.version to the release the image bundles",
                m.name,
                blis_sim::scenario::vllm_defaults::DEFAULT_VERSION
            ));
        }
    }
    match (&imp.endpoint_picker_config_ref, &pool) {
        (Some(r), _) => base["router"] = json!({"endpointPickerConfig": epp_config(objects, r)?}),
        (None, Some(p)) => match pool_epp_config(objects, p, &mut warnings)? {
            Some(cfg) => base["router"] = json!({"endpointPickerConfig": cfg}),
            None => {
                warnings.push(format!(
                    "no endpoint-picker config found for InferencePool {:?} (EPP {:?}): the EPP's built-in default is simulated (queue 2, kv-cache-utilization 2, prefix-cache 3)",
                    p.name,
                    p.endpoint_picker.as_deref().unwrap_or("")
                ));
                base["router"] = json!({"policy": "endpointPicker"});
            }
        },
        (None, None) => {}
    }
    // Objectives: inline ones, and those of the pool among the objects.
    let mut found: Vec<Value> = Vec::new();
    for (i, o) in imp.objectives.iter().flatten().enumerate() {
        found.push(inline(o, &format!("spec.import.objectives[{i}]"))?);
    }
    if let Some(p) = &pool {
        for kind in ["InferenceObjective", "InferenceModel"] {
            // An objective for a pool that is not deployed applies to nothing: say so.
            for o in objects.of_kind(kind) {
                let to = o.pointer("/spec/poolRef/name").and_then(Value::as_str).unwrap_or("");
                if to != p.name && objects.get("InferencePool", to).is_none() {
                    warnings.push(format!(
                        "{kind} {} names poolRef {to:?}, which is not deployed (the pool simulated is {:?}); it applies to no request",
                        o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""),
                        p.name
                    ));
                }
            }
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
    let served = base.pointer("/model/name").and_then(Value::as_str).map(str::to_string);
    let mut objectives: Vec<blis_sim::scenario::spec::ObjectiveSpec> = Vec::new();
    let mut for_model = Vec::new();
    for (i, o) in found.iter().enumerate() {
        let (obj, _) = objective::import(o).map_err(|e| e.under(&format!("spec.import.objectives[{i}]")))?;
        if classes.contains(&obj.class.as_str()) {
            objectives.push(obj);
        } else if served.as_deref() == Some(obj.class.as_str()) && obj.criticality.is_some() {
            // An InferenceModel for the served model: every request names that model.
            for_model.push(obj);
        } else {
            warnings.push(format!(
                "objective {:?} matches no workload class; name a class {:?} to give its requests that priority",
                obj.class, obj.class
            ));
        }
    }
    for obj in for_model {
        for c in &classes {
            if !objectives.iter().any(|o| o.class == *c) {
                objectives
                    .push(blis_sim::scenario::spec::ObjectiveSpec { class: c.to_string(), ..obj.clone() });
            }
        }
    }
    if !objectives.is_empty() {
        merge_patch(&mut base, &json!({"router": {"objectives": objectives}}));
    }
    let mut sources =
        import_sources(&servers, &scaling, &base, &imp.endpoint_picker_config_ref, pool.as_ref(), spec);

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
    let gpu_defaulted = out.hardware.gpu.is_empty() && out.hardware.profile.is_none();
    if gpu_defaulted {
        out.hardware.gpu = DEFAULT_GPU.to_string();
        for i in 0..out.pools.as_ref().map_or(1, Vec::len) {
            sources.insert(
                format!("pools[{i}].gpu"),
                format!("default: {DEFAULT_GPU} (no GPU named by the manifests)"),
            );
        }
        warnings.push(format!(
            "no GPU is named by the scenario or the model servers' node selection (labels read: {}, {}); simulating {DEFAULT_GPU}, the GPU the llm-d guides are written for: set spec.hardware.gpu to the GPU you run",
            gpu::PRODUCT_KEYS.join(", "),
            gpu::INSTANCE_KEYS.join(", ")
        ));
    }
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
    Ok(Imported { spec: out, warnings, sources, gpu_defaulted })
}

#[cfg(test)]
mod tests;
