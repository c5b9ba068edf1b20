//! vLLM model servers as operators deploy them: a `Deployment` or a `LeaderWorkerSet` (one replica =
//! one group of pods) whose container runs `vllm serve` (directly or from a launch script), or a
//! `DisaggregatedSet` (LWS roles such as prefill and decode, repeated in slices). Replicas,
//! parallelism (tensor, data, expert), knobs, GPUs per pod and the GPU product named by node
//! selectors become one [`ModelServer`] per role.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::gpu::{self, GpuPick};
use super::shell::Env;
use super::vllm_args::{self, VllmArgs};
use blis_sim::error::InvalidInput;
use blis_sim::scenario::spec::PoolRole;

/// One group of identical vLLM replicas, as the importers understand it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelServer {
    /// Object name (becomes the pool name).
    pub name: String,
    /// What it was read from (`LeaderWorkerSet wide-ep`, `modelservice values decode`), for messages.
    pub source: String,
    /// The file (or release) the object came from, when read from files: named in refusals.
    pub file: Option<String>,
    /// `llm-d.ai/role` of its pods, when they carry one.
    pub role: Option<PoolRole>,
    /// Replicas (Deployment pods, LeaderWorkerSet groups).
    pub replicas: i64,
    /// Pods of one replica (LeaderWorkerSet `size`; 1 for a Deployment).
    pub pods_per_replica: i64,
    /// Pod labels (what an InferencePool selector matches).
    pub labels: BTreeMap<String, String>,
    /// GPU named by node selectors / affinity.
    pub gpu: Option<GpuPick>,
    /// A node-selection label whose value names no GPU the twin knows (an unexpanded variable, a product
    /// not in the catalog): the import fails on it unless the scenario names the GPU itself.
    pub gpu_error: Option<InvalidInput>,
    /// GPUs one pod requests (`nvidia.com/gpu` and friends).
    pub gpus_per_pod: Option<i64>,
    /// The vLLM command line.
    pub args: VllmArgs,
    /// Whether the container runs llm-d-inference-sim (a simulator, not vLLM on GPUs).
    pub simulator: bool,
}

impl ModelServer {
    /// Data-parallel ranks of one replica (`--data-parallel-size`, default 1).
    pub fn data_parallel(&self) -> i64 {
        self.args.data_parallel.unwrap_or(1).max(1)
    }

    /// Data-parallel ranks in one pod (`--data-parallel-size-local`; vLLM's default is all of them).
    pub fn data_parallel_local(&self) -> i64 {
        self.args.data_parallel_local.unwrap_or_else(|| self.data_parallel()).max(1)
    }

    /// Tensor parallelism: the flag, else the GPUs of a pod over its local DP ranks.
    pub fn tensor_parallel(&self) -> i64 {
        self.args.tensor_parallel.unwrap_or_else(|| match self.gpus_per_pod {
            Some(g) if g > 0 => (g / self.data_parallel_local()).max(1),
            _ => 1,
        })
    }

    /// Expert parallelism: MoE experts sharded over every GPU of the replica (TP x DP) with
    /// `--enable-expert-parallel`; None without it.
    pub fn expert_parallel(&self) -> Option<i64> {
        self.args.expert_parallel.then(|| self.tensor_parallel() * self.data_parallel())
    }

    /// GPUs one replica requests, over its pods.
    pub fn gpus_per_replica(&self) -> Option<i64> {
        self.gpus_per_pod.map(|g| g * self.pods_per_replica)
    }

    /// Checks that the pods can run the parallelism vLLM is asked for, as vLLM would refuse to start
    /// (or wait forever for ranks) otherwise; with `allow`, each mismatch is a warning instead.
    /// Returns the warnings (idle GPUs, allowed mismatches).
    pub fn check_parallelism(&self, allow: bool) -> Result<Vec<String>, InvalidInput> {
        let (tp, dp, dpl, pods) =
            (self.tensor_parallel(), self.data_parallel(), self.data_parallel_local(), self.pods_per_replica);
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        if let Some(g) = self.gpus_per_pod {
            let need = tp * dpl;
            if need > g {
                problems.push(format!(
                    "TP {tp} x DP-local {dpl} needs {need} GPUs per pod, the container requests {g} (vLLM would not start)"
                ));
            } else if need < g {
                warnings.push(format!(
                    "{} requests {g} GPUs per pod but TP {tp} x DP-local {dpl} uses {need}; the idle GPUs are not simulated or billed",
                    self.source
                ));
            }
        }
        if dpl * pods != dp {
            problems.push(format!(
                "vLLM runs DP {dp} ranks but {pods} pod(s) x DP-local {dpl} start {} (vLLM would wait for the missing ranks or fail)",
                dpl * pods
            ));
        }
        for p in problems {
            if !allow {
                // The parallelism flags are the container's args.
                let field = match &self.file {
                    Some(f) => format!("{} in {f}: args", self.source),
                    None => format!("{}: args", self.source),
                };
                return Err(InvalidInput::new(
                    field,
                    p,
                    "make the GPUs per pod equal TP x DP-local and the pods x DP-local equal DP, or set spec.import.allowParallelismMismatch: true to simulate it anyway",
                ));
            }
            warnings.push(format!("{}: {p}; simulated as written (allowParallelismMismatch)", self.source));
        }
        Ok(warnings)
    }
}

/// The kinds of model-server objects the importers read. A bare `Pod` is one replica (early llm-d
/// P/D examples ran their decode server as a Pod).
pub const KINDS: [&str; 4] = ["Deployment", "LeaderWorkerSet", "DisaggregatedSet", "Pod"];

/// Resource names that count accelerators.
const GPU_RESOURCES: [&str; 6] = [
    "nvidia.com/gpu",
    "amd.com/gpu",
    "google.com/tpu",
    "habana.ai/gaudi",
    "gpu.intel.com/i915",
    "gpu.intel.com/xe",
];

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    gpu::pairs_of(v).into_iter().collect()
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

/// The literal env values of a container (`valueFrom` entries are not known offline).
pub fn env_of(c: &Value) -> Env {
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

/// The vLLM release llm-d's CUDA images bundle (`ghcr.io/llm-d/llm-d` up to v0.2, `llm-d-cuda` from
/// v0.3, and one `llm-d-cuda-dev` build a guide pins): (image, tag, vLLM release, where llm-d/llm-d's image build pins it).
const LLMD_IMAGE_VLLM: [(&str, &str, &str, &str); 10] = [
    ("llm-d", "v0.2.0", "0.10.0", "Dockerfile.ubi installs vllm==0.10.0 (commit 4a6c79e, 2025-07-24)"),
    ("llm-d", "v0.2.1", "0.10.0", "Dockerfile.ubi installs vllm==0.10.0 (commit 2bbe935, 2025-07-28)"),
    ("llm-d-cuda", "v0.3.0", "0.11.0", "docker/Dockerfile.cuda pins the vllm-0.11.0 wheel (commit 116093b, 2025-10-10)"),
    ("llm-d-cuda", "v0.3.1", "0.11.0", "docker/Dockerfile.cuda pins the v0.11.0 tag commit b8b302c (commit 860da64, 2025-11-05)"),
    ("llm-d-cuda", "v0.4.0", "0.11.2", "docker/Dockerfile.cuda builds vLLM 0.11.2 + patches for 0.4 (commit 04560f5, 2025-11-25)"),
    ("llm-d-cuda-dev", "sha-1483316", "0.13.0", "docker/Dockerfile.cuda at 1483316 pins 72506c9, set by 'update vllm to v0.13' (commit 93aef56, 2026-01-20)"),
    ("llm-d-cuda", "v0.5.0", "0.14.1", "Release v0.5.0 prep pins vLLM v0.14.1 (commit e6ee957, 2026-02-03)"),
    ("llm-d-cuda", "v0.6.0", "0.17.1", "docker/common-versions pins the v0.17.1 tag (commit 67c983c, 2026-04-03)"),
    ("llm-d-cuda", "v0.7.0", "0.19.1", "docker/common-versions pins v0.19.1 plus fixes (commit 08fe5b6, 2026-05-12)"),
    ("llm-d-cuda", "v0.8.0", "0.23.0", "docker/common-versions pins the v0.23.0 release (commit 93a7b5d, 2026-06-22)"),
];

/// The vLLM release an llm-d image bundles, and where that is recorded; `None` for other images and
/// for tags not in its table (`LLMD_IMAGE_VLLM`) (other development builds, release candidates, XPU / ROCm).
pub fn llmd_image_vllm(image: &str) -> Option<(&'static str, &'static str)> {
    let (repo, tag) = image.rsplit_once(':')?;
    let (owner, last) = repo.rsplit_once('/')?;
    if !owner.ends_with("llm-d") {
        return None;
    }
    LLMD_IMAGE_VLLM.iter().find(|(i, t, _, _)| *i == last && *t == tag).map(|&(_, _, v, src)| (v, src))
}

/// Reads what the container around a vLLM command line says: the vLLM release its image bundles, and
/// LMCache's CPU tier from its `LMCACHE_*` env.
fn with_container(mut args: VllmArgs, container: &Value, env: &Env) -> VllmArgs {
    let image = container.get("image").and_then(Value::as_str).unwrap_or("");
    if args.vllm.version.is_none() {
        args.vllm.version = image_vllm_version(image);
    }
    if args.vllm.version.is_none() {
        if let Some((v, src)) = llmd_image_vllm(image) {
            args.vllm.version = Some(v.to_string());
            args.warnings.push(format!(
                "image {image} bundles vLLM {v} (llm-d/llm-d: {src}); that release's defaults are simulated"
            ));
        }
    }
    if args.lmcache {
        lmcache(&mut args, env);
    }
    args
}

/// LMCache's default CPU tier (`max_local_cpu_size`, GB) when `LMCACHE_MAX_LOCAL_CPU_SIZE` is not set.
const LMCACHE_DEFAULT_CPU_GB: f64 = 5.0;

/// `LMCacheConnectorV1` (without a P/D role): a CPU tier of `LMCACHE_MAX_LOCAL_CPU_SIZE` GB per engine
/// (LMCache's `LMCACHE_LOCAL_CPU`, on by default), simulated as the CPU KV offload tier; disk and remote
/// backends (shared across replicas) are not modelled and say so.
fn lmcache(args: &mut VllmArgs, env: &Env) {
    let on =
        |k: &str| env.get(k).map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    if on("LMCACHE_LOCAL_CPU") == Some(false) {
        args.warnings.push(
            "--kv-transfer-config LMCacheConnectorV1 with LMCACHE_LOCAL_CPU off: its backends (disk / remote) are not modelled; no KV offload is simulated".into(),
        );
    } else if args.vllm.cpu_offload_gib.is_none() {
        let size = env.get("LMCACHE_MAX_LOCAL_CPU_SIZE").map(|v| (v, v.trim().parse::<f64>().ok()));
        let gb = match size {
            Some((_, Some(gb))) if gb.is_finite() && gb >= 0.0 => gb,
            Some((v, _)) => {
                args.warnings.push(format!(
                    "LMCACHE_MAX_LOCAL_CPU_SIZE {v:?} is not a size in GB; LMCache's default {LMCACHE_DEFAULT_CPU_GB} GB CPU tier is simulated"
                ));
                LMCACHE_DEFAULT_CPU_GB
            }
            None => {
                args.warnings.push(format!(
                    "--kv-transfer-config LMCacheConnectorV1 without LMCACHE_MAX_LOCAL_CPU_SIZE: LMCache's default {LMCACHE_DEFAULT_CPU_GB} GB CPU tier is simulated as the CPU KV offload tier"
                ));
                LMCACHE_DEFAULT_CPU_GB
            }
        };
        args.vllm.cpu_offload_gib = Some(gb);
    }
    for (k, what) in [
        ("LMCACHE_LOCAL_DISK", "its local disk tier"),
        ("LMCACHE_REMOTE_URL", "its remote store shared across replicas"),
    ] {
        if env.get(k).is_some_and(|v| !v.trim().is_empty() && v.trim() != "None") {
            args.warnings.push(format!("LMCache {k}: {what} is not modelled (only its CPU tier is)"));
        }
    }
}

/// Whether a container image is llm-d's inference simulator.
pub fn is_simulator_image(c: &Value) -> bool {
    c.get("image").and_then(Value::as_str).is_some_and(|i| i.contains("inference-sim"))
}

/// The vLLM container of a pod spec and its parsed command line, with `extra` variables (what
/// LeaderWorkerSet or a chart injects) under the container's own env. `where_` names the pod spec.
pub fn vllm_container(
    pod: &Value,
    extra: &Env,
    where_: &str,
) -> Result<(Value, VllmArgs, bool), InvalidInput> {
    let containers = pod.get("containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let env_for = |c: &Value| {
        let mut env = extra.clone();
        env.extend(env_of(c));
        env
    };
    for c in &containers {
        let env = env_for(c);
        if let Some(a) = vllm_args::from_container(&strings(c.get("command")), &strings(c.get("args")), &env)
        {
            return Ok((c.clone(), with_container(a, c, &env), is_simulator_image(c)));
        }
    }
    // An image-only container whose entrypoint is the server (vLLM, or llm-d's simulator).
    if let Some(c) = containers.iter().find(|c| {
        c.get("image")
            .and_then(Value::as_str)
            .is_some_and(|i| i.contains("vllm") || i.contains("inference-sim"))
            && c.get("command").is_none()
    }) {
        let env = env_for(c);
        let args: Vec<String> =
            strings(c.get("args")).iter().map(|a| super::shell::expand_k8s(a, &env)).collect();
        return Ok((c.clone(), with_container(vllm_args::parse(&args), c, &env), is_simulator_image(c)));
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
        Some("Pod") => obj.pointer("/metadata/labels").map(|l| str_map(Some(l))).into_iter().collect(),
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

/// The variables LeaderWorkerSet injects into every container of a group (read for the leader, worker
/// index 0, which stands for every pod of the group).
pub fn lws_env(name: &str, namespace: &str, size: i64) -> Env {
    Env::from([
        ("LWS_GROUP_SIZE".to_string(), size.to_string()),
        ("LWS_WORKER_INDEX".to_string(), "0".to_string()),
        ("LWS_LEADER_ADDRESS".to_string(), format!("{name}-0.{name}.{namespace}")),
    ])
}

/// Reads a `Deployment` (apps/v1), a `LeaderWorkerSet` (leaderworkerset.x-k8s.io/v1) or a bare `Pod`.
pub fn import(obj: &Value) -> Result<ModelServer, InvalidInput> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
    let replicas = obj.pointer("/spec/replicas").map(|v| int_of(v).unwrap_or(-1)).unwrap_or(1);
    if replicas < 0 {
        return Err(InvalidInput::new(
            format!("{kind} {name}: spec.replicas"),
            "is not a non-negative integer",
            "set replicas to 0 or more",
        ));
    }
    let (template, pods_per_replica, extra) = match kind {
        "Deployment" | "StatefulSet" => (obj.pointer("/spec/template"), 1, Env::new()),
        // A Pod is its own template: metadata and spec at the top.
        "Pod" => (Some(obj), 1, Env::new()),
        "LeaderWorkerSet" => {
            let lwt = obj.pointer("/spec/leaderWorkerTemplate");
            let size = lwt.and_then(|t| t.get("size")).and_then(int_of).unwrap_or(1).max(1);
            let t = lwt.and_then(|t| t.get("leaderTemplate").or_else(|| t.get("workerTemplate")));
            (t, size, lws_env(&name, namespace, size))
        }
        other => {
            return Err(InvalidInput::new(
                format!("{other} {name}: kind"),
                "is not a model server kind",
                "reference a Deployment, a LeaderWorkerSet or a Pod",
            ))
        }
    };
    let file = super::file_of(obj).map(str::to_string);
    let pod_spec = if kind == "Pod" { "spec" } else { "spec.template.spec" };
    let where_ = match &file {
        Some(f) => format!("{kind} {name} in {f}: {pod_spec}"),
        None => format!("{kind} {name}: {pod_spec}"),
    };
    let Some(template) = template else {
        return Err(InvalidInput::new(&where_, "is missing", "give the pod template"));
    };
    let pod = template.get("spec").cloned().unwrap_or(Value::Null);
    let (container, args, simulator) = vllm_container(&pod, &extra, &where_)?;
    let gpu = gpu::of_pod(&pod, &where_);
    let mut labels = str_map(template.pointer("/metadata/labels"));
    if labels.is_empty() {
        labels = str_map(obj.pointer("/metadata/labels"));
    }
    Ok(ModelServer {
        role: role_of(&labels),
        source: format!("{kind} {name}"),
        file,
        name,
        replicas,
        pods_per_replica,
        labels,
        gpu: gpu.clone().ok().flatten(),
        gpu_error: gpu.err(),
        gpus_per_pod: gpus_of_container(&container),
        args,
        simulator,
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
        assert_eq!((m.replicas, m.tensor_parallel(), m.gpus_per_replica()), (8, 2, Some(2)));
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
    fn llm_d_release_images_map_to_the_vllm_they_bundle() {
        for (image, want) in [
            ("ghcr.io/llm-d/llm-d:v0.2.0", Some("0.10.0")),
            ("ghcr.io/llm-d/llm-d-cuda:v0.3.1", Some("0.11.0")),
            ("ghcr.io/llm-d/llm-d-cuda:v0.4.0", Some("0.11.2")),
            ("ghcr.io/llm-d/llm-d-cuda:v0.5.0", Some("0.14.1")),
            ("ghcr.io/llm-d/llm-d-cuda:v0.7.0", Some("0.19.1")),
            // Development builds, release candidates, other accelerators and other llm-d images: unknown.
            ("ghcr.io/llm-d/llm-d-cuda-dev:sha-1483316", Some("0.13.0")),
            ("ghcr.io/llm-d/llm-d-cuda-dev:sha-a1bcf21", None),
            ("ghcr.io/llm-d/llm-d-dev:v0.2.0-rc.1", None),
            ("ghcr.io/llm-d/llm-d-xpu:v0.4.0", None),
            ("ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.1", None),
            ("ghcr.io/someone/llm-d-cuda:v0.5.0", None),
        ] {
            assert_eq!(llmd_image_vllm(image).map(|x| x.0), want, "{image}");
        }
    }

    #[test]
    fn lmcache_env_gives_the_cpu_tier() {
        let args = |env: &[(&str, &str)]| {
            let mut a = VllmArgs { lmcache: true, ..VllmArgs::default() };
            let env: Env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            lmcache(&mut a, &env);
            a
        };
        let sized = args(&[("LMCACHE_MAX_LOCAL_CPU_SIZE", "40")]);
        assert_eq!((sized.vllm.cpu_offload_gib, sized.warnings.len()), (Some(40.0), 0));
        let default = args(&[]);
        assert_eq!(default.vllm.cpu_offload_gib, Some(LMCACHE_DEFAULT_CPU_GB));
        assert!(default.warnings[0].contains("default 5 GB"), "{:?}", default.warnings);
        let off = args(&[("LMCACHE_LOCAL_CPU", "False"), ("LMCACHE_LOCAL_DISK", "file:///tmp/")]);
        assert_eq!(off.vllm.cpu_offload_gib, None);
        assert_eq!(off.warnings.len(), 2, "{:?}", off.warnings);
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
                    "args": ["vllm serve deepseek-ai/DeepSeek-V2-Lite --data-parallel-size $(DP) --data-parallel-size-local 8 --enable-expert-parallel --tensor-parallel-size 1"],
                    "env": [{"name": "DP", "value": "16"}],
                    "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}
        });
        let m = import(&lws).unwrap();
        assert_eq!(
            (m.replicas, m.gpus_per_replica(), m.data_parallel(), m.tensor_parallel(), m.expert_parallel()),
            (2, Some(16), 16, 1, Some(16))
        );
        assert_eq!(m.gpu.as_ref().map(|g| g.name.as_str()), Some("H200-SXM-141GB"));
        assert_eq!(m.check_parallelism(false).unwrap(), Vec::<String>::new());
        let mut bad = lws.clone();
        bad["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["args"] =
            serde_json::json!(["envoy"]);
        let e = import(&bad).unwrap_err();
        assert!(e.field.ends_with("containers"), "{e}");
    }

    /// The wide-EP launch script shape: LWS-injected variables, shell arithmetic, a multi-line quoted
    /// JSON argument, and a worker template only.
    #[test]
    fn lws_launch_script_gives_dp_ep_ranks() {
        let script = "# comment mentioning vllm serve in prose\nSTART_RANK=$(( ${LWS_WORKER_INDEX:-0} * DP_SIZE_LOCAL ))\n\
            source ${VENV_PATH}/bin/activate\nexec vllm serve \\\n  deepseek-ai/DeepSeek-V2-Lite \\\n  --port 8200 \\\n  \
            --enforce-eager \\\n  --enable-expert-parallel \\\n  --tensor-parallel-size $TP_SIZE \\\n  \
            --max-num-seqs ${MAX_TOKENS} \\\n  --data-parallel-size $((LWS_GROUP_SIZE * DP_SIZE_LOCAL)) \\\n  \
            --data-parallel-size-local $DP_SIZE_LOCAL \\\n  --data-parallel-address ${LWS_LEADER_ADDRESS} \\\n  \
            --data-parallel-start-rank $START_RANK \\\n  --kv_transfer_config '{\"kv_connector\":\"NixlConnector\",\n  \
            \"kv_role\":\"kv_both\"}' \\\n  --kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}\n";
        let lws = serde_json::json!({"kind": "LeaderWorkerSet", "metadata": {"name": "wep"},
            "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {
                "metadata": {"labels": {"llm-d.ai/role": "decode", "llm-d.ai/guide": "wep"}},
                "spec": {"containers": [{"name": "vllm", "command": ["/bin/bash", "-c"], "args": [script],
                    "env": [{"name": "DP_SIZE_LOCAL", "value": "8"}, {"name": "TP_SIZE", "value": "1"},
                            {"name": "MAX_TOKENS", "value": "256"}],
                    "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}});
        let m = import(&lws).unwrap();
        assert_eq!((m.replicas, m.pods_per_replica, m.gpus_per_replica()), (1, 2, Some(16)));
        assert_eq!(
            (m.tensor_parallel(), m.data_parallel(), m.data_parallel_local(), m.expert_parallel()),
            (1, 16, 8, Some(16))
        );
        assert_eq!((m.args.vllm.max_num_seqs, m.args.vllm.enforce_eager), (Some(256), Some(true)));
        assert!(m.args.pd_connector);
        assert_eq!(m.args.model.as_deref(), Some("deepseek-ai/DeepSeek-V2-Lite"));
        let w = m.args.warnings.join("\n");
        for bad in ["$TP_SIZE", "$((", "\"*\"", "DP_SIZE_LOCAL))"] {
            assert!(!w.contains(bad), "{w}");
        }
        assert!(w.contains("$VENV_PATH") && w.contains("empty value"), "{w}");
    }

    #[test]
    fn parallelism_beyond_the_gpus_is_refused_unless_allowed() {
        let dep = |tp: &str, gpus: i64| {
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1,
                "template": {"spec": {"containers": [{"name": "vllm", "command": ["vllm", "serve"],
                    "args": ["m", "--tensor-parallel-size", tp], "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}}})
        };
        let m = import(&dep("4", 2)).unwrap();
        let e = m.check_parallelism(false).unwrap_err();
        assert_eq!(e.field, "Deployment d: args");
        assert!(
            e.problem.contains("TP 4 x DP-local 1 needs 4 GPUs per pod, the container requests 2"),
            "{e}"
        );
        assert!(e.fix.contains("allowParallelismMismatch"));
        assert_eq!(m.check_parallelism(true).unwrap().len(), 1);
        let idle = import(&dep("1", 2)).unwrap().check_parallelism(false).unwrap();
        assert!(idle[0].contains("idle"), "{idle:?}");
    }

    #[test]
    fn a_bare_pod_is_one_replica_with_its_own_labels() {
        let pod = serde_json::json!({"kind": "Pod", "metadata": {"name": "dec", "labels": {"app": "m", "llm-d.ai/role": "decode"}},
            "spec": {"containers": [{"name": "vllm", "command": ["vllm", "serve"], "args": ["m", "--tensor-parallel-size", "1"],
                "resources": {"limits": {"nvidia.com/gpu": 1}}}]}});
        let m = import(&pod).unwrap();
        assert_eq!((m.replicas, m.pods_per_replica, m.gpus_per_pod), (1, 1, Some(1)));
        assert_eq!(m.labels.get("app").map(String::as_str), Some("m"));
        assert_eq!(template_labels(&pod), vec![m.labels.clone()]);
        let e = import(
            &serde_json::json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}),
        )
        .unwrap_err();
        assert!(e.field.starts_with("Pod p: spec"), "{e}");
    }
}
