//! vLLM model servers as operators deploy them: a `Deployment` or a `LeaderWorkerSet` (one replica =
//! one group of pods) whose container runs `vllm serve`, or a `DisaggregatedSet` (LWS roles such as
//! prefill and decode, repeated in slices). Replicas, parallelism, knobs, GPU count and the GPU
//! product named by node selectors become one [`ModelServer`] per role.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::vllm_args::{self, VllmArgs};
use blis_sim::error::InvalidInput;
use blis_sim::scenario::spec::PoolRole;

/// One group of identical vLLM replicas, as the importers understand it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelServer {
    /// Object name (becomes the pool name).
    pub name: String,
    /// `llm-d.ai/role` of its pods, when they carry one.
    pub role: Option<PoolRole>,
    /// Replicas (Deployment pods, LeaderWorkerSet groups).
    pub replicas: i64,
    /// Pod labels (what an InferencePool selector matches).
    pub labels: BTreeMap<String, String>,
    /// GPU product named by node selectors / affinity, as a catalog name.
    pub gpu: Option<String>,
    /// GPUs one replica requests (`nvidia.com/gpu` and friends, summed over a group's pods).
    pub gpus_per_replica: Option<i64>,
    /// The vLLM command line.
    pub args: VllmArgs,
}

impl ModelServer {
    /// Tensor parallelism: the flag, else the GPUs per data-parallel rank.
    pub fn tensor_parallel(&self) -> i64 {
        self.args.tensor_parallel.unwrap_or_else(|| match self.gpus_per_replica {
            Some(g) if g > 0 => (g / self.data_parallel()).max(1),
            _ => 1,
        })
    }

    /// Data-parallel ranks of one replica.
    pub fn data_parallel(&self) -> i64 {
        self.args.data_parallel.unwrap_or(1).max(1)
    }
}

/// The kinds of model-server objects the importers read.
pub const KINDS: [&str; 3] = ["Deployment", "LeaderWorkerSet", "DisaggregatedSet"];

/// Maps a node label value naming a GPU product (`NVIDIA-H100-80GB-HBM3`, `nvidia-h100-80gb`,
/// `nvidia-a100-80gb`...) to a catalog GPU name.
pub fn gpu_from_product(product: &str) -> Option<&'static str> {
    let p = product.to_ascii_uppercase();
    let table: [(&[&str], &str); 7] = [
        (&["H200"], "H200-SXM-141GB"),
        (&["H100"], "H100-SXM-80GB"),
        (&["B200"], "B200-180GB"),
        (&["GB200"], "B200-180GB"),
        (&["A100"], "A100-SXM-80GB"),
        (&["L40S"], "L40S-48GB"),
        (&["MI300X"], "MI300X-192GB"),
    ];
    table.iter().find(|(keys, _)| keys.iter().all(|k| p.contains(k))).map(|(_, name)| *name)
}

/// Node label keys that name the GPU product.
const PRODUCT_KEYS: [&str; 4] =
    ["nvidia.com/gpu.product", "cloud.google.com/gke-accelerator", "amd.com/gpu.product", "gpu.product"];

/// Resource names that count accelerators.
const GPU_RESOURCES: [&str; 3] = ["nvidia.com/gpu", "amd.com/gpu", "google.com/tpu"];

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect())
        .unwrap_or_default()
}

/// Reads an integer that may be written as a string (`"4"`).
pub fn int_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The GPU product a pod spec asks for through `nodeSelector` or required node affinity.
fn gpu_of_pod(pod: &Value) -> Option<String> {
    let sel = str_map(pod.get("nodeSelector"));
    for k in PRODUCT_KEYS {
        if let Some(g) = sel.get(k).and_then(|v| gpu_from_product(v)) {
            return Some(g.to_string());
        }
    }
    let terms = pod
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    for t in terms.into_iter().flatten() {
        for e in t.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            if PRODUCT_KEYS.contains(&key) {
                if let Some(g) = strings(e.get("values")).iter().find_map(|v| gpu_from_product(v)) {
                    return Some(g.to_string());
                }
            }
        }
    }
    None
}

/// Accelerators a container requests (limits if no requests).
pub fn gpus_of_container(c: &Value) -> Option<i64> {
    let res = c.get("resources")?;
    for part in ["requests", "limits"] {
        for r in GPU_RESOURCES {
            if let Some(n) = res.get(part).and_then(|p| p.get(r)).and_then(int_of) {
                return Some(n);
            }
        }
    }
    None
}

/// The literal env values of a container, for `$(VAR)` expansion.
pub fn env_of(c: &Value) -> Vec<(String, String)> {
    c.get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e.get("name")?.as_str()?.to_string(), e.get("value")?.as_str()?.to_string())))
        .collect()
}

/// The vLLM release of an upstream vLLM image (`vllm/vllm-openai:v0.19.1`), so the twin applies that
/// release's defaults; other images (llm-d builds, `latest`) name no vLLM release.
pub fn image_vllm_version(image: &str) -> Option<String> {
    let (repo, tag) = image.rsplit_once(':')?;
    let last = repo.rsplit('/').next()?;
    let release = tag.trim_start_matches('v');
    (last.starts_with("vllm-openai")
        && release.starts_with(|c: char| c.is_ascii_digit())
        && release.contains('.'))
    .then(|| release.to_string())
}

fn with_image_version(mut args: VllmArgs, container: &Value) -> VllmArgs {
    if args.vllm.version.is_none() {
        args.vllm.version = container.get("image").and_then(Value::as_str).and_then(image_vllm_version);
    }
    args
}

/// The vLLM container of a pod spec and its parsed command line. `where_` names the pod spec.
fn vllm_container(pod: &Value, where_: &str) -> Result<(Value, VllmArgs), InvalidInput> {
    let containers = pod.get("containers").and_then(Value::as_array).cloned().unwrap_or_default();
    for c in &containers {
        let env = env_of(c);
        let command: Vec<String> =
            strings(c.get("command")).iter().map(|a| vllm_args::expand_env(a, &env)).collect();
        let args: Vec<String> =
            strings(c.get("args")).iter().map(|a| vllm_args::expand_env(a, &env)).collect();
        if let Some(server) = vllm_args::server_args(&command, &args) {
            return Ok((c.clone(), with_image_version(vllm_args::parse(&server), c)));
        }
    }
    // An image-only vLLM container (the image's entrypoint is `vllm serve`): its args are the server's.
    if let Some(c) = containers.iter().find(|c| {
        c.get("image").and_then(Value::as_str).is_some_and(|i| i.contains("vllm"))
            && c.get("command").is_none()
    }) {
        let env = env_of(c);
        let args: Vec<String> =
            strings(c.get("args")).iter().map(|a| vllm_args::expand_env(a, &env)).collect();
        return Ok((c.clone(), with_image_version(vllm_args::parse(&args), c)));
    }
    Err(InvalidInput::new(
        format!("{where_}.containers"),
        "no container runs vLLM (`vllm serve ...` or `python -m vllm.entrypoints.openai.api_server`)",
        "reference the Deployment or LeaderWorkerSet of the vLLM model server",
    ))
}

fn role_of(labels: &BTreeMap<String, String>) -> Option<PoolRole> {
    match labels.get("llm-d.ai/role").map(String::as_str) {
        Some("prefill") => Some(PoolRole::Prefill),
        Some("decode") => Some(PoolRole::Decode),
        Some("both") => Some(PoolRole::Both),
        _ => None,
    }
}

/// The pod labels of a model-server object's template (what an InferencePool selector matches);
/// for a DisaggregatedSet, those of every role.
pub fn template_labels(obj: &Value) -> Vec<BTreeMap<String, String>> {
    let lws = |spec: &Value| {
        spec.pointer("/leaderWorkerTemplate/leaderTemplate/metadata/labels")
            .or_else(|| spec.pointer("/leaderWorkerTemplate/workerTemplate/metadata/labels"))
            .map(|l| str_map(Some(l)))
    };
    match obj.get("kind").and_then(Value::as_str) {
        Some("DisaggregatedSet") => roles(obj).iter().filter_map(|r| r.get("spec").and_then(lws)).collect(),
        Some("LeaderWorkerSet") => obj.get("spec").and_then(lws).into_iter().collect(),
        _ => obj.pointer("/spec/template/metadata/labels").map(|l| str_map(Some(l))).into_iter().collect(),
    }
}

fn roles(obj: &Value) -> Vec<Value> {
    obj.pointer("/spec/roles").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Reads every model server of an object: one for a Deployment or LeaderWorkerSet, one per role of a
/// `DisaggregatedSet` (disaggregatedset.x-k8s.io/v1), whose replicas are the role's times `slices`.
pub fn import_all(obj: &Value) -> Result<Vec<ModelServer>, InvalidInput> {
    if obj.get("kind").and_then(Value::as_str) != Some("DisaggregatedSet") {
        return import(obj).map(|m| vec![m]);
    }
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let at = |field: &str| format!("DisaggregatedSet {name}: spec.{field}");
    let slices = match obj.pointer("/spec/slices") {
        None => 1,
        Some(v) => int_of(v).filter(|n| *n >= 0).ok_or_else(|| {
            InvalidInput::new(at("slices"), "is not a non-negative integer", "set slices to 0 or more")
        })?,
    };
    let roles = roles(obj);
    if roles.is_empty() {
        return Err(InvalidInput::new(at("roles"), "is empty", "list the prefill and decode roles"));
    }
    roles
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let role = r.get("name").and_then(Value::as_str).unwrap_or("");
            let spec = r.get("spec").cloned().unwrap_or(Value::Null);
            let per_slice = match spec.get("replicas") {
                None => 1,
                Some(v) => int_of(v).filter(|n| *n >= 0).ok_or_else(|| {
                    InvalidInput::new(
                        at(&format!("roles[{i}].spec.replicas")),
                        "is not a non-negative integer",
                        "set the role's replicas per slice to 0 or more",
                    )
                })?,
            };
            // Each role runs as a LeaderWorkerSet; read it as one.
            let lws = json!({
                "kind": "LeaderWorkerSet",
                "metadata": {"name": format!("{name}-{role}")},
                "spec": {"replicas": per_slice * slices, "leaderWorkerTemplate": spec.get("leaderWorkerTemplate")},
            });
            let mut m = import(&lws).map_err(|e| e.under(&at(&format!("roles[{i}]"))))?;
            if m.role.is_none() {
                m.role = role_of(&BTreeMap::from([("llm-d.ai/role".to_string(), role.to_string())]));
            }
            Ok(m)
        })
        .collect()
}

/// Reads a `Deployment` (apps/v1) or a `LeaderWorkerSet` (leaderworkerset.x-k8s.io/v1).
pub fn import(obj: &Value) -> Result<ModelServer, InvalidInput> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let replicas = obj.pointer("/spec/replicas").map(|v| int_of(v).unwrap_or(-1)).unwrap_or(1);
    if replicas < 0 {
        return Err(InvalidInput::new(
            format!("{kind} {name}: spec.replicas"),
            "is not a non-negative integer",
            "set replicas to 0 or more",
        ));
    }
    let (template, pods_per_replica) = match kind {
        "Deployment" | "StatefulSet" => (obj.pointer("/spec/template"), 1),
        "LeaderWorkerSet" => {
            let lwt = obj.pointer("/spec/leaderWorkerTemplate");
            let size = lwt.and_then(|t| t.get("size")).and_then(int_of).unwrap_or(1).max(1);
            let t = lwt.and_then(|t| t.get("leaderTemplate").or_else(|| t.get("workerTemplate")));
            (t, size)
        }
        other => {
            return Err(InvalidInput::new(
                format!("{other} {name}: kind"),
                "is not a model server kind",
                "reference a Deployment or a LeaderWorkerSet",
            ))
        }
    };
    let where_ = format!("{kind} {name}: spec.template.spec");
    let Some(template) = template else {
        return Err(InvalidInput::new(&where_, "is missing", "give the pod template"));
    };
    let pod = template.get("spec").cloned().unwrap_or(Value::Null);
    let (container, args) = vllm_container(&pod, &where_)?;
    let mut labels = str_map(template.pointer("/metadata/labels"));
    if labels.is_empty() {
        labels = str_map(obj.pointer("/metadata/labels"));
    }
    // In a LeaderWorkerSet every pod of a group holds the same share of the GPUs.
    let gpus_per_replica = gpus_of_container(&container).map(|g| g * pods_per_replica);
    Ok(ModelServer {
        role: role_of(&labels),
        name,
        replicas,
        labels,
        gpu: gpu_of_pod(&pod),
        gpus_per_replica,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(path: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(crate::shared(&format!("llm-d-manifests/{path}")))
            .unwrap_or_else(|e| panic!("../shared/llm-d-manifests/{path} must be readable: {e}"));
        super::super::parse_documents(&text).unwrap()
    }

    fn deployment(path: &str, name_part: &str) -> Value {
        docs(path)
            .into_iter()
            .find(|d| {
                d["kind"] == "Deployment" && d["metadata"]["name"].as_str().unwrap_or("").contains(name_part)
            })
            .unwrap()
    }

    #[test]
    fn gaie_raw_deployment() {
        let d = deployment("2025-07-gaie-v0.5.1-raw-inference-scheduling/vllm/gpu-deployment.yaml", "vllm");
        let m = import(&d).unwrap();
        assert_eq!((m.name.as_str(), m.replicas, m.tensor_parallel()), ("vllm-llama3-8b-instruct", 3, 1));
        assert_eq!(m.args.model.as_deref(), Some("meta-llama/Llama-3.1-8B-Instruct"));
        assert_eq!(m.args.vllm.max_num_seqs, Some(1024));
        assert_eq!(m.labels.get("app").map(String::as_str), Some("vllm-llama3-8b-instruct"));
        // LoRA flags are listed, not dropped.
        assert!(m.args.warnings.iter().any(|w| w.contains("--enable-lora")), "{:?}", m.args.warnings);
    }

    #[test]
    fn kustomize_rendered_decode_deployment() {
        let d =
            deployment("2026-06-v0.9-optimized-baseline/rendered/modelserver-gpu-vllm-base.yaml", "decode");
        let m = import(&d).unwrap();
        assert_eq!((m.replicas, m.tensor_parallel(), m.gpus_per_replica), (8, 2, Some(2)));
        assert_eq!(m.role, Some(PoolRole::Decode));
        assert_eq!(m.args.model.as_deref(), Some("Qwen/Qwen3-32B"));
        assert_eq!(m.args.vllm.version.as_deref(), Some("0.23.0"), "from the image vllm/vllm-openai:v0.23.0");
    }

    #[test]
    fn only_upstream_vllm_images_name_a_release() {
        assert_eq!(
            image_vllm_version("docker.io/vllm/vllm-openai:v0.8.5.post1").as_deref(),
            Some("0.8.5.post1")
        );
        assert_eq!(image_vllm_version("vllm/vllm-openai:latest"), None);
        assert_eq!(image_vllm_version("ghcr.io/llm-d/llm-d:v0.2.0"), None, "llm-d's own release");
        assert_eq!(image_vllm_version("vllm/vllm-openai"), None);
    }

    #[test]
    fn modelservice_rendered_pd_deployments() {
        let all: Vec<ModelServer> =
            docs("2025-07-v0.2-pd-disaggregation/modelservice-example/output-pd.yaml")
                .iter()
                .filter(|d| d["kind"] == "Deployment")
                .filter_map(|d| import(d).ok())
                .collect();
        let roles: Vec<_> = all.iter().filter_map(|m| m.role).collect();
        assert!(roles.contains(&PoolRole::Prefill) && roles.contains(&PoolRole::Decode), "{roles:?}");
        assert!(all
            .iter()
            .all(|m| m.args.pd_connector && m.args.model.as_deref() == Some("facebook/opt-125m")));
    }

    #[test]
    fn leader_worker_set_and_node_selectors() {
        let lws: Value = serde_json::json!({
            "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
            "metadata": {"name": "wide-ep"},
            "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 2, "leaderTemplate": {
                "metadata": {"labels": {"llm-d.ai/role": "decode"}},
                "spec": {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H200"},
                  "containers": [{"name": "vllm", "command": ["/bin/sh", "-c"],
                    "args": ["vllm serve deepseek-ai/DeepSeek-V2-Lite --data-parallel-size $(DP) --enable-expert-parallel --tensor-parallel-size 1"],
                    "env": [{"name": "DP", "value": "16"}],
                    "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}
        });
        let m = import(&lws).unwrap();
        assert_eq!(
            (m.replicas, m.gpus_per_replica, m.data_parallel(), m.tensor_parallel()),
            (2, Some(16), 16, 1)
        );
        assert_eq!(m.gpu.as_deref(), Some("H200-SXM-141GB"));
        assert_eq!(gpu_from_product("nvidia-a100-80gb"), Some("A100-SXM-80GB"));
        let mut bad = lws.clone();
        bad["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["args"] =
            serde_json::json!(["envoy"]);
        let e = import(&bad).unwrap_err();
        assert!(e.field.ends_with("containers"), "{e}");
    }
}
