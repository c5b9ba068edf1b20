//! The `spec` of a `SimulationScenario`: the one input format of the CLI, sweeps and the controller.
//!
//! Integers that users type are read as `i64` and floats as `f64` so that a wrong sign or a zero gets
//! our own error naming the field and the fix, not a deserialiser's type error.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::gpu::GpuProfile;
use crate::latency::LatencyKind;
use crate::metrics::gates::GatesSpec;
use crate::workload::WorkloadSpec;

/// Default master seed.
pub const DEFAULT_SEED: u64 = 42;

/// A deployment of one model on vLLM replicas plus the traffic it serves. It is also the `spec` of
/// the `SimulationScenario` custom resource ([`crate::api`] holds its status and the other kinds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, kube::CustomResource)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[kube(group = "twin.blis.dev", version = "v1alpha1", kind = "SimulationScenario", namespaced)]
#[kube(status = "crate::api::SimulationScenarioStatus", shortname = "simscen", category = "blis")]
#[kube(printcolumn(
    name = "SLO",
    type_ = "string",
    json_path = ".status.conditions[?(@.type==\"SLOMet\")].status"
))]
#[kube(printcolumn(
    name = "TTFT-P90",
    type_ = "number",
    json_path = ".status.predictions.overall.ttftMs.p90"
))]
#[kube(printcolumn(name = "ITL-P90", type_ = "number", json_path = ".status.predictions.overall.itlMs.p90"))]
#[kube(printcolumn(name = "$/h", type_ = "number", json_path = ".status.predictions.cost.dollarsPerHour"))]
#[kube(printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"))]
#[kube(printcolumn(
    name = "TTFT-P99",
    type_ = "number",
    json_path = ".status.predictions.overall.ttftMs.p99",
    priority = 1
))]
#[kube(printcolumn(
    name = "$/1M tokens",
    type_ = "number",
    json_path = ".status.predictions.cost.dollarsPerMillionTokens",
    priority = 1
))]
#[allow(clippy::duplicated_attributes)] // several `printcolumn(...)` attributes are intended
pub struct ScenarioSpec {
    /// Master seed: every random draw of the run derives from it (default 42).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The model served.
    pub model: ModelSpec,
    /// GPUs per replica.
    pub hardware: HardwareSpec,
    /// vLLM serving knobs; vLLM's defaults apply to those left out.
    #[serde(default)]
    pub vllm: VllmSpec,
    /// Number of identical vLLM replicas (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Pass/fail gates on the prediction (attainment, cost, latency), for GitOps gating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<GatesSpec>,
}

/// Which model: a built-in name, or any name plus its Hugging Face `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelSpec {
    /// Built-in model name or Hugging Face id (e.g. `meta-llama/Llama-3.1-8B-Instruct`).
    pub name: String,
    /// Inline Hugging Face `config.json`; when given, it defines the architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub config: Option<serde_json::Value>,
}

/// Schema of a free-form object kept as is (Kubernetes `x-kubernetes-preserve-unknown-fields`).
pub fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// The accelerator of each replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HardwareSpec {
    /// Built-in GPU profile name (e.g. `H100-SXM-80GB`), or the name of the inline `profile`.
    pub gpu: String,
    /// GPUs per replica (vLLM `--tensor-parallel-size`, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_parallelism: Option<i64>,
    /// Inline GPU profile, for hardware the catalog lacks or to override its figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<GpuProfile>,
}

/// vLLM engine arguments that change serving behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VllmSpec {
    /// `--max-num-batched-tokens`: token budget per engine step (default 2048; with chunked prefill
    /// off, at least maxModelLen).
    #[serde(default, alias = "max_num_batched_tokens", skip_serializing_if = "Option::is_none")]
    pub max_num_batched_tokens: Option<i64>,
    /// `--max-num-seqs`: most requests in a batch (default 256).
    #[serde(default, alias = "max_num_seqs", skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<i64>,
    /// `--gpu-memory-utilization`: fraction of GPU memory vLLM may use (default 0.9).
    #[serde(default, alias = "gpu_memory_utilization", skip_serializing_if = "Option::is_none")]
    pub gpu_memory_utilization: Option<f64>,
    /// `--block-size`: tokens per KV block (default 16).
    #[serde(default, alias = "block_size", skip_serializing_if = "Option::is_none")]
    pub block_size: Option<i64>,
    /// `--max-model-len`: longest prompt + output (default: the model's context, capped to KV capacity).
    #[serde(default, alias = "max_model_len", skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<i64>,
    /// `--enable-prefix-caching` (default true).
    #[serde(default, alias = "enable_prefix_caching", skip_serializing_if = "Option::is_none")]
    pub enable_prefix_caching: Option<bool>,
    /// `--enable-chunked-prefill` (default true).
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
}

/// Routing between replicas. (The endpoint-picker pipeline will extend this.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterSpec {
    /// `leastRequests` (default) or `roundRobin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RouterPolicyName>,
}

/// Named routing policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RouterPolicyName {
    /// Fewest requests in flight; ties at random.
    LeastRequests,
    /// Cycle through replicas.
    RoundRobin,
}

/// Limits of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulationSpec {
    /// Stop at this simulated time; requests still in flight are reported as unfinished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_seconds: Option<f64>,
}
