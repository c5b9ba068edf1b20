//! The `spec` of a `SimulationScenario`: the one input format of the CLI, sweeps and the controller.
//!
//! Integers that users type are read as `i64` and floats as `f64` so that a wrong sign or a zero gets
//! our own error naming the field and the fix, not a deserialiser's type error.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::gpu::GpuProfile;
use crate::latency::LatencyKind;
use crate::metrics::gates::GatesSpec;
use crate::metrics::SummaryMode;
use crate::workload::WorkloadSpec;

/// Default master seed.
pub const DEFAULT_SEED: u64 = 42;

/// A deployment of one model on vLLM replicas plus the traffic it serves. It is also the `spec` of
/// the `SimulationScenario` custom resource (the Kubernetes layer wraps it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.model) || has(self.import)",
        "message": "spec.model is required: name the served model, or import the model servers with spec.import",
        "reason": "FieldValueRequired"
    },
    {
        "rule": "has(self.hardware) || has(self.import)",
        "message": "spec.hardware is required: name the GPU, or import the model servers with spec.import",
        "reason": "FieldValueRequired"
    },
    {
        "rule": "!has(self.pools) || (!has(self.replicas) && !has(self.autoscaling))",
        "message": "spec.replicas and spec.autoscaling cannot be combined with spec.pools: set replicas and autoscaling on each pool instead",
        "reason": "FieldValueForbidden"
    },
    {
        "rule": "!has(self.pools) || self.pools.exists(p, !has(p.role) || p.role != 'prefill')",
        "message": "spec.pools: every pool has role prefill, so nothing can decode: give one pool role decode (P/D) or both",
        "reason": "FieldValueInvalid"
    }
]))]
pub struct ScenarioSpec {
    /// Master seed: every random draw of the run derives from it (default 42).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// What is deployed (InferencePool, model-server Deployments / LeaderWorkerSets / DisaggregatedSets, modelservice
    /// values, the endpoint-picker ConfigMap, objectives), inline or by reference to live objects; the
    /// rest of this spec is a JSON merge patch on top of what they give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportSpec>,
    /// The model served (may come from `import`).
    #[serde(default, skip_serializing_if = "ModelSpec::is_unset")]
    pub model: ModelSpec,
    /// GPUs per replica (may come from `import`).
    #[serde(default, skip_serializing_if = "HardwareSpec::is_unset")]
    pub hardware: HardwareSpec,
    /// vLLM serving knobs; vLLM's defaults apply to those left out.
    #[serde(default)]
    pub vllm: VllmSpec,
    /// Number of identical vLLM replicas (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub replicas: Option<i64>,
    /// How requests are spread over replicas.
    #[serde(default)]
    pub router: RouterSpec,
    /// Step-time model (default `roofline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_model: Option<LatencyKind>,
    /// Traffic: client classes, arrivals, lengths, prefixes, sessions, SLOs, or a trace.
    pub workload: WorkloadSpec,
    /// Limits of the simulation run itself.
    #[serde(default)]
    pub simulation: SimulationSpec,
    /// Separate pools of replicas (e.g. prefill and decode for P/D), each with its own replicas,
    /// hardware, vLLM knobs and autoscaling; instead of the top-level `replicas`. A pool without
    /// `hardware`/`vllm` uses the top-level ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub pools: Option<Vec<PoolSpec>>,
    /// Autoscaling of the replicas when there are no `pools`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// KV transfer between prefill and decode pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd: Option<PdSpec>,
    /// Price overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostSpec>,
    /// Pass/fail gates on the prediction (attainment, cost, latency), for GitOps gating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<GatesSpec>,
}

/// Real llm-d objects the scenario starts from. Each is given inline (an object or a pasted YAML
/// string) or as a reference to an object in the scenario's namespace (the CLI finds it among the
/// other documents of the files it reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportSpec {
    /// The InferencePool (`inference.networking.x-k8s.io/v1alpha2` or `inference.networking.k8s.io/v1`);
    /// its selector picks the model-server Deployments / LeaderWorkerSets / DisaggregatedSets when none are named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_pool_ref: Option<ObjectRef>,
    /// The InferencePool, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub inference_pool: Option<serde_json::Value>,
    /// Model-server Deployments / LeaderWorkerSets / DisaggregatedSets (`kind` defaults to Deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_refs: Option<Vec<ObjectRef>>,
    /// Model-server Deployments / LeaderWorkerSets / DisaggregatedSets, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_list")]
    pub workloads: Option<Vec<serde_json::Value>>,
    /// llm-d-modelservice Helm values (decode / prefill roles), inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub model_service_values: Option<serde_json::Value>,
    /// The ConfigMap key holding the EndpointPickerConfig (`key` may be left out when it has one key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_picker_config_ref: Option<ObjectRef>,
    /// InferenceObjectives / InferenceModels, inline; with a pool, those of the namespace (or files)
    /// whose `poolRef` names it are read too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_list")]
    pub objectives: Option<Vec<serde_json::Value>>,
    /// Simulate model servers whose GPUs per pod do not match their parallelism (TP x DP-local) or
    /// whose pods cannot start every DP rank, instead of refusing them as vLLM would (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_parallelism_mismatch: Option<bool>,
    /// A helmfile (`helmfile.yaml` or `helmfile.yaml.gotmpl`), relative to the scenario file: the llm-d
    /// chart releases it installs are rendered into the objects imported (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helmfile: Option<String>,
    /// The helmfile environment (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helmfile_environment: Option<String>,
    /// Environment variables the helmfile template reads (`env "X"`), as `X=... helmfile apply`
    /// sets them; unset ones take the template's defaults. Chooses between variants such as the
    /// precise-prefix guide's `DISAGGREGATED_TOKENIZATION: "true"` (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helmfile_env: Option<std::collections::BTreeMap<String, String>>,
    /// Helm releases as `helm install NAME CHART --version V -f VALUES...` gives them; values files
    /// relative to the scenario file (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases: Option<Vec<ReleaseRef>>,
    /// Kustomize sources (folders with a kustomization.yaml) relative to the scenario file, rendered
    /// with `kubectl kustomize` (CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<Vec<String>>,
}

/// A Helm release of an llm-d chart (or of a chart folder beside the scenario, rendered with `helm
/// template`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseRef {
    /// Release name (names the InferencePool and the EPP the chart creates).
    pub name: String,
    /// Chart: `llm-d-modelservice`, GAIE `inferencepool` / `standalone`, `llm-d-router-standalone`,
    /// `workload-variant-autoscaler` (any registry prefix), or a local chart folder.
    pub chart: String,
    /// Chart version (default: the newest whose behaviour the importer knows, with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Values files in `-f` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// `--set` entries (dotted paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_object")]
    pub set: Option<serde_json::Value>,
}

/// A reference to an object in the scenario's namespace, with an optional change on top.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    /// Kind (`Deployment`, `LeaderWorkerSet` or `DisaggregatedSet` for workloads; fixed for the other
    /// references).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Object name.
    pub name: String,
    /// ConfigMap data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// JSON merge patch applied to the object (for a ConfigMap, to the document under `key`) before
    /// it is read: "what is deployed, plus my change".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub patch: Option<serde_json::Value>,
}

/// One pool of identical replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSpec {
    /// Pool name (unique).
    pub name: String,
    /// `both` (default, aggregated), `prefill` or `decode`; becomes the `llm-d.ai/role` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<PoolRole>,
    /// Replicas at start (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub replicas: Option<i64>,
    /// Hardware of this pool (default: the top-level `hardware`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareSpec>,
    /// vLLM knobs of this pool (default: the top-level `vllm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vllm: Option<VllmSpec>,
    /// Data-parallel ranks per replica (default 1). Each rank is an engine of TP GPUs and an
    /// endpoint of its own (GPUs per replica = TP x DP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_parallelism: Option<i64>,
    /// `--enable-expert-parallel`: the MoE experts are sharded over all TP x DP GPUs of a replica
    /// (each rank holds 1/DP of them) and tokens reach their experts by all-to-all (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_parallel: Option<bool>,
    /// Extra pod labels (for `label-selector-filter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// Autoscaling of this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
}

/// Role of a pool's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PoolRole {
    /// Whole requests.
    Both,
    /// Prompt passes (P/D).
    Prefill,
    /// Decodes (P/D).
    Decode,
}

/// Autoscaling of a pool (workload-variant-autoscaler saturation analysis, or HPA on in-flight requests).
///
/// A new replica serves after `provisioningSeconds + weights bytes / TP / (modelLoadGBps x 1e9)`:
/// node provisioning plus every GPU loading its shard of the weights in parallel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
    "message": "minReplicas must not exceed maxReplicas",
    "fieldPath": ".maxReplicas",
    "reason": "FieldValueInvalid"
}]))]
pub struct AutoscalingSpec {
    /// Fewest replicas (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i64>,
    /// Most replicas (default 10, the WVA chart's HPA default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_replicas: Option<i64>,
    /// `saturation` (default) or `hpa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ScalePolicyName>,
    /// WVA `kvCacheThreshold` (0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_threshold: Option<f64>,
    /// WVA `queueLengthThreshold` (5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_length_threshold: Option<f64>,
    /// WVA `kvSpareTrigger` (0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_spare_trigger: Option<f64>,
    /// WVA `queueSpareTrigger` (3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_spare_trigger: Option<f64>,
    /// HPA target: in-flight requests per replica (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_in_flight_per_replica: Option<f64>,
    /// Seconds between evaluations (default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<f64>,
    /// Node provisioning time before the model loads (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_seconds: Option<f64>,
    /// Weight loading speed per GPU in GB/s (default 2).
    #[serde(default, rename = "modelLoadGBps", skip_serializing_if = "Option::is_none")]
    pub model_load_gbps: Option<f64>,
    /// A scale-down waits until its condition held this long and this long after the last change (default 300 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_cooldown_seconds: Option<f64>,
}

/// Autoscaler kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScalePolicyName {
    /// WVA saturation thresholds.
    Saturation,
    /// HPA on in-flight requests per replica.
    Hpa,
}

/// KV transfer between prefill and decode replicas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PdSpec {
    /// Link bandwidth in GB/s (default 25).
    #[serde(default, rename = "transferBandwidthGBps", skip_serializing_if = "Option::is_none")]
    pub transfer_bandwidth_gbps: Option<f64>,
    /// Fixed latency per transfer in ms (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_latency_ms: Option<f64>,
    /// Whether overlapping transfers share the link (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contention: Option<bool>,
}

/// Price overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CostSpec {
    /// Dollars per GPU-hour, instead of the GPU profile's on-demand price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dollars_per_gpu_hour: Option<f64>,
}

/// Which model: a built-in name, or any name plus its Hugging Face `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelSpec {
    /// Built-in model name or Hugging Face id (e.g. `meta-llama/Llama-3.1-8B-Instruct`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Inline Hugging Face `config.json`; when given, it defines the architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_object")]
    pub config: Option<serde_json::Value>,
}

impl ModelSpec {
    /// Whether nothing was given (the model then comes from `import`).
    pub fn is_unset(&self) -> bool {
        self.name.is_empty() && self.config.is_none()
    }
}

/// The accelerator of each replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HardwareSpec {
    /// Built-in GPU profile name (e.g. `H100-SXM-80GB`), or the name of the inline `profile`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gpu: String,
    /// GPUs per replica (vLLM `--tensor-parallel-size`, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tensor_parallelism: Option<i64>,
    /// Inline GPU profile, for hardware the catalog lacks or to override its figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<GpuProfile>,
}

impl HardwareSpec {
    /// Whether nothing was given (the hardware then comes from `import`).
    pub fn is_unset(&self) -> bool {
        self.gpu.is_empty() && self.tensor_parallelism.is_none() && self.profile.is_none()
    }
}

/// vLLM engine arguments that change serving behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VllmSpec {
    /// The vLLM release (e.g. `0.19.1`, or an image tag such as `v0.8.5.post1`): the knobs left out
    /// get the defaults this release picks on the pool's GPU (default: a current release, 0.23.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `--max-num-batched-tokens`: token budget per engine step (default: vLLM's for the release and
    /// GPU, e.g. 8192 on H100 and 2048 on A100 in current releases; with chunked prefill off, at least
    /// maxModelLen).
    #[serde(default, alias = "max_num_batched_tokens", skip_serializing_if = "Option::is_none")]
    pub max_num_batched_tokens: Option<i64>,
    /// `--max-num-seqs`: most requests in a batch (default: vLLM's for the release and GPU, e.g. 1024
    /// on H100 and 256 on A100 in current releases).
    #[serde(default, alias = "max_num_seqs", skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<i64>,
    /// `--gpu-memory-utilization`: fraction of GPU memory vLLM may use (default 0.9).
    #[serde(default, alias = "gpu_memory_utilization", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self > 0.0 && self <= 1.0",
        "message": "gpuMemoryUtilization is the fraction of GPU memory vLLM may use: a number in (0, 1], e.g. 0.9"
    }]))]
    pub gpu_memory_utilization: Option<f64>,
    /// `--block-size`: tokens per KV block (default 16).
    #[serde(default, alias = "block_size", skip_serializing_if = "Option::is_none")]
    pub block_size: Option<i64>,
    /// `--max-model-len`: longest prompt + output (default: the model's context, capped to KV capacity).
    #[serde(default, alias = "max_model_len", skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<i64>,
    /// `--enable-prefix-caching` (default true from vLLM 0.8, the V1 engine).
    #[serde(default, alias = "enable_prefix_caching", skip_serializing_if = "Option::is_none")]
    pub enable_prefix_caching: Option<bool>,
    /// `--enable-chunked-prefill` (default true from vLLM 0.8; before, only above 32K context).
    #[serde(default, alias = "enable_chunked_prefill", skip_serializing_if = "Option::is_none")]
    pub enable_chunked_prefill: Option<bool>,
    /// `--long-prefill-token-threshold`: cap on one request's prefill chunk (default 0 = none).
    #[serde(default, alias = "long_prefill_token_threshold", skip_serializing_if = "Option::is_none")]
    pub long_prefill_token_threshold: Option<i64>,
    /// `--num-gpu-blocks-override`: KV blocks per replica, instead of deriving them from memory.
    #[serde(
        default,
        alias = "kv_blocks",
        alias = "num_gpu_blocks_override",
        skip_serializing_if = "Option::is_none"
    )]
    pub kv_blocks: Option<i64>,
    /// `--async-scheduling`: schedule the next batch while the current step runs (default true from
    /// vLLM 0.14); a request queued during a step then joins the batch after next.
    #[serde(default, alias = "async_scheduling", skip_serializing_if = "Option::is_none")]
    pub async_scheduling: Option<bool>,
    /// KV cache offload to CPU memory (vLLM OffloadingConnector), in GiB per replica (default 0 = off).
    #[serde(default, alias = "cpu_offload_gib", skip_serializing_if = "Option::is_none")]
    pub cpu_offload_gib: Option<f64>,
    /// `--kv-cache-dtype`: the KV cache element type (default `auto`, the model dtype). An FP8 cache
    /// holds twice the tokens in the same memory and halves the KV bytes each step reads.
    #[serde(default, alias = "kv_cache_dtype", skip_serializing_if = "Option::is_none")]
    pub kv_cache_dtype: Option<KvCacheDtype>,
    /// `--enforce-eager`: run without CUDA graphs. Every step then pays the GPU profile's kernel-launch
    /// cost per layer (`eagerUsPerLayer`); on a GPU without a fitted cost a warning says it is not modelled.
    #[serde(default, alias = "enforce_eager", skip_serializing_if = "Option::is_none")]
    pub enforce_eager: Option<bool>,
}

/// vLLM's `--kv-cache-dtype` choices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KvCacheDtype {
    /// The model's dtype.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// 16-bit brain float.
    #[serde(rename = "bfloat16")]
    Bfloat16,
    /// 8-bit float (E4M3 on CUDA).
    #[serde(rename = "fp8")]
    Fp8,
    /// 8-bit float, E4M3.
    #[serde(rename = "fp8_e4m3")]
    Fp8E4m3,
    /// 8-bit float, E5M2.
    #[serde(rename = "fp8_e5m2")]
    Fp8E5m2,
    /// 8-bit float through Intel Neural Compressor.
    #[serde(rename = "fp8_inc")]
    Fp8Inc,
    /// DeepSeek's 8-bit MLA cache layout.
    #[serde(rename = "fp8_ds_mla")]
    Fp8DsMla,
}

impl KvCacheDtype {
    /// Bytes per KV element (`None`: the model dtype).
    pub fn element_bytes(self) -> Option<f64> {
        match self {
            KvCacheDtype::Auto => None,
            KvCacheDtype::Bfloat16 => Some(2.0),
            KvCacheDtype::Fp8
            | KvCacheDtype::Fp8E4m3
            | KvCacheDtype::Fp8E5m2
            | KvCacheDtype::Fp8Inc
            | KvCacheDtype::Fp8DsMla => Some(1.0),
        }
    }
}

/// The gateway: admission, flow control and the endpoint picker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterSpec {
    /// `leastRequests` (default without an endpoint picker config), `roundRobin`, `random` (a plain
    /// Kubernetes Service: kube-proxy picks a backend per connection), or `endpointPicker`
    /// (the llm-d plugin pipeline; implied by `endpointPickerConfig`, and with no config it runs the
    /// built-in default: queue 2, kv-cache-utilization 2, prefix-cache 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RouterPolicyName>,
    /// An `EndpointPickerConfig` exactly as operators write it (apiVersion
    /// `inference.networking.x-k8s.io/v1alpha1`, `llm-d.ai/v1alpha1` or `llm-d.ai/v1`), inline or as a
    /// YAML string; Helm values with `pluginsCustomConfig` are unwrapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub endpoint_picker_config: Option<serde_json::Value>,
    /// How often replica metrics reach the router, in ms (default 50; 0 = live).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval_ms: Option<f64>,
    /// Priorities per class (InferenceObjective), overriding the classes' `priority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectives: Option<Vec<ObjectiveSpec>>,
    /// Token-bucket and probabilistic admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionSpec>,
    /// Interval between flow-control dispatch attempts while requests are queued, in ms (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_interval_ms: Option<f64>,
    /// Run endpoint-picker plugin types that no EPP registers as neutral plugins (with a warning)
    /// instead of refusing the config as the real EPP does (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_unregistered_plugins: Option<bool>,
}

/// An InferenceObjective: the priority of one class's requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectiveSpec {
    /// Class name.
    pub class: String,
    /// Integer priority (higher is more important; negative is sheddable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Old InferenceModel criticality: `Critical` (+10), `Standard` (0) or `Sheddable` (-10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
}

/// Admission before flow control.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionSpec {
    /// Token bucket on prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_bucket: Option<TokenBucketSpec>,
    /// Probabilistic shedding of low-priority requests as the pool saturates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilistic: Option<ProbabilisticSpec>,
}

/// Token bucket: a request costs its prompt tokens; refused when the bucket lacks them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenBucketSpec {
    /// Bucket size in tokens (starts full).
    pub capacity: f64,
    /// Tokens added per second.
    pub refill_per_second: f64,
}

/// Probabilistic admission: a request below `exemptPriority` is admitted with probability
/// `1 - curve(clamp((signal - start) / (full - start), 0, 1))`, so operators shed low-priority load
/// smoothly before the pool saturates. The defaults (saturation signal, linear curve, 0.8 to 1.2,
/// exempt from 0) are the linear shedder of earlier versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbabilisticSpec {
    /// Load signal: `saturation` (default; the saturation detector's pool saturation), `queueDepth`
    /// (mean waiting requests per replica), `kvUtilization` (mean KV fraction, 0..1) or
    /// `inFlightTokens` (mean router-owned in-flight prompt tokens per replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<AdmissionSignal>,
    /// Shape of the shed probability: `linear` (default), `power` (`x^exponent`) or `logistic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<AdmissionCurve>,
    /// Exponent of the `power` curve (default 2; > 1 sheds gently first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponent: Option<f64>,
    /// Steepness of the `logistic` curve (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steepness: Option<f64>,
    /// Signal value where shedding starts, in the signal's units (default 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_saturation: Option<f64>,
    /// Signal value where everything non-exempt is shed (default 1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_saturation: Option<f64>,
    /// Priorities at or above are always admitted (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt_priority: Option<i64>,
    /// Per-priority ramps overriding `startSaturation`/`fullSaturation` for that priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bands: Option<Vec<AdmissionBandSpec>>,
}

/// The shedding ramp of one priority band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionBandSpec {
    /// The priority this ramp applies to.
    pub priority: i64,
    /// Signal value where shedding of this band starts (default: the top-level one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_saturation: Option<f64>,
    /// Signal value where this band is fully shed (default: the top-level one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_saturation: Option<f64>,
}

/// Load signals of probabilistic admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AdmissionSignal {
    /// The saturation detector's pool saturation.
    Saturation,
    /// Mean waiting requests per replica.
    QueueDepth,
    /// Mean KV cache utilisation per replica.
    KvUtilization,
    /// Mean router-owned in-flight prompt tokens per replica.
    InFlightTokens,
}

/// Shapes of the shed-probability curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AdmissionCurve {
    /// Straight ramp.
    Linear,
    /// `x^exponent`.
    Power,
    /// Logistic step, rescaled to span exactly 0..1.
    Logistic,
}

/// Named routing policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RouterPolicyName {
    /// Fewest requests in flight; ties at random.
    LeastRequests,
    /// Cycle through replicas.
    RoundRobin,
    /// A replica drawn uniformly at random per request, as kube-proxy picks one per connection for
    /// clients that open a connection per request.
    Random,
    /// The llm-d endpoint picker pipeline.
    EndpointPicker,
}

/// Limits of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulationSpec {
    /// Stop at this simulated time; requests still in flight are reported as unfinished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_seconds: Option<f64>,
    /// `exact` (default): keep every completed request's record, exact percentiles; `streaming`:
    /// memory independent of the number of requests, percentiles within 0.5 % (counts, means,
    /// goodput and attainment stay exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryMode>,
}
