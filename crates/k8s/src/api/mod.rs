//! Kubernetes API types of BLIS twin (group `twin.blis.dev`, version `v1alpha1`): the
//! `SimulationScenario` status (its typed [`Predictions`]), `SimulationSweep`, `HardwareProfile` and
//! the CRD YAML. The scenario spec is [`ScenarioSpec`] itself: one input format for the CLI and the
//! controller.

pub mod conditions;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use blis_plan::sweep::spec::{
    FanOutMode, Objective, SweepCandidate, SweepFanOut, SweepParameter, SweepSearch, SweepSpec,
};
use blis_report::predictions::Predictions;
use blis_sim::catalog::gpu::GpuProfile;
pub use blis_sim::metrics::gates::GateResult;
pub use blis_sim::scenario::spec::ScenarioSpec;

/// API group.
pub const GROUP: &str = "twin.blis.dev";
/// API version.
pub const VERSION: &str = "v1alpha1";

/// Derefs a custom resource's spec wrapper to the spec it wraps, so code reads the fields directly.
macro_rules! transparent_spec {
    ($outer:ty, $inner:ty) => {
        impl std::ops::Deref for $outer {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }

        impl std::ops::DerefMut for $outer {
            fn deref_mut(&mut self) -> &mut $inner {
                &mut self.0
            }
        }
    };
}

// The scenario spec itself, so the CLI and the controller read one input format; a transparent
// wrapper only because the derive that makes the custom resource must sit on a type of this crate.
// The doc comment is the CRD's description of `spec`.
/// A deployment of one model on vLLM replicas plus the traffic it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[serde(transparent)]
#[schemars(transparent)]
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
pub struct SimulationScenarioSpec(pub ScenarioSpec);

transparent_spec!(SimulationScenarioSpec, ScenarioSpec);

/// Observed state of a `SimulationScenario`: kstatus-compliant conditions plus the last good
/// prediction. Written whole by the controller with server-side apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulationScenarioStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `SLOMet`, `Degraded`, `Reconciling`, `Stalled`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The last good prediction (kept while a newer spec is invalid): whole-run figures under
    /// `overall`, per class, per pool, KV cache, cost and SLO verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<Predictions>,
    /// The generation the predictions were made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_generation: Option<i64>,
    /// Verdict of each gate of `spec.gates` (and of the class SLOs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate_results: Vec<GateResult>,
    /// What the controller understood: resolved inputs and warnings about derived or approximated values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_inputs: Option<NormalizedInputs>,
    /// sha256 of the spec and every object it references, as simulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_hash: Option<String>,
    /// Version of the simulator that made the prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulator_version: Option<String>,
    /// Wall time of the last simulation (s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_time_seconds: Option<f64>,
    /// Number of simulations run for this object (a re-simulation is observable by it growing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulations: Option<i64>,
}

/// The resolved inputs behind a prediction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NormalizedInputs {
    /// Seed used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Resolved model, GPU, parallelism and vLLM knobs (camelCase of `blis run`'s `inputs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "blis_sim::schema::any_object")]
    pub resolved: Option<serde_json::Value>,
    /// What was derived or approximated, for the user to check.
    #[serde(default)]
    pub warnings: Vec<String>,
}

fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = generator.subschema_for::<Vec<Condition>>();
    s.insert("x-kubernetes-list-type".into(), "map".into());
    s.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    s
}

/// A cluster-wide accelerator profile: GPU figures and price. A scenario whose `hardware.gpu`
/// names a HardwareProfile (exactly, or lower-cased) uses it instead of the built-in catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[kube(group = "twin.blis.dev", version = "v1alpha1", kind = "HardwareProfile", shortname = "hwprofile")]
#[kube(category = "blis")]
#[kube(printcolumn(name = "GPU", type_ = "string", json_path = ".spec.name"))]
#[kube(printcolumn(name = "Memory-GiB", type_ = "number", json_path = ".spec.memoryGib"))]
#[kube(printcolumn(name = "$/GPU-h", type_ = "number", json_path = ".spec.dollarsPerGpuHour"))]
#[allow(clippy::duplicated_attributes)] // several `printcolumn(...)` attributes are intended
pub struct HardwareProfileSpec {
    /// The GPU figures, as in an inline `spec.hardware.profile` of a scenario.
    #[serde(flatten)]
    pub gpu: GpuProfile,
}

// The sweep spec itself (`blis sweep` reads the same from a file), wrapped only because the derive
// that makes the custom resource must sit on a type of this crate. The doc comment is the CRD's
// description of `spec`.
/// Candidate comparison over a base scenario: a grid, random samples or explicit candidates, ranked
/// by an objective among those passing the gates (`blis sweep` reads the same spec from a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[serde(transparent)]
#[schemars(transparent)]
#[kube(group = "twin.blis.dev", version = "v1alpha1", kind = "SimulationSweep", namespaced)]
#[kube(status = "SimulationSweepStatus", shortname = "simsweep", category = "blis")]
#[kube(printcolumn(name = "Best", type_ = "string", json_path = ".status.best"))]
#[kube(printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"))]
#[allow(clippy::duplicated_attributes)] // several `printcolumn(...)` attributes are intended
pub struct SimulationSweepSpec(pub SweepSpec);

transparent_spec!(SimulationSweepSpec, SweepSpec);

/// Progress of a fanned-out sweep.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SweepFanOutStatus {
    /// The Indexed Job running the shards (deleted once its results are merged).
    pub job: String,
    /// Shards (the Job's completions and parallelism).
    pub shards: u32,
    /// Shards whose results the controller has read.
    pub collected: u32,
}

/// Observed state of a sweep.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulationSweepStatus {
    /// The generation this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Name of the best feasible candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<String>,
    /// Candidates ranked best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranking: Vec<SweepRankEntry>,
    /// Names of the Pareto set (cost vs TTFT p90 vs ITL p90), best rank first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pareto: Vec<String>,
    /// Candidates simulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<u32>,
    /// sha256 of the spec and simulator version the ranking was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_hash: Option<String>,
    /// Wall time of the last sweep run (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_time_seconds: Option<f64>,
    /// The Indexed Job of a fanned-out run and how many shard results are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<SweepFanOutStatus>,
}

/// One candidate of a sweep's ranking in status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SweepRankEntry {
    /// Candidate name.
    pub name: String,
    /// 1 = best.
    pub rank: u32,
    /// Passed every gate.
    pub passed: bool,
    /// The objective's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<f64>,
    /// TTFT p90 (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p90_ms: Option<f64>,
    /// ITL p90 (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_p90_ms: Option<f64>,
    /// $ per million tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dollars_per_million_tokens: Option<f64>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Why it won, or why it lost.
    pub verdict: String,
}

/// Every CRD of the API, in a fixed order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![SimulationScenario::crd(), SimulationSweep::crd(), HardwareProfile::crd()]
}

/// Every CRD as one multi-document YAML text (what `blis crd` prints and `crds/blis.yaml` holds).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out =
        String::from("# Generated by `blis crd`; do not edit (a test checks it matches the code).\n");
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_are_structural_where_it_matters() {
        let y = crds_yaml().unwrap();
        assert!(y.contains("shortNames:\n    - simscen"));
        assert!(y.contains("x-kubernetes-list-type: map"));
        assert!(y.contains("x-kubernetes-preserve-unknown-fields: true"));
        assert!(!y.contains("additionalProperties: false"));
        let hp = HardwareProfile::crd();
        assert_eq!(hp.spec.scope, "Cluster");
    }

    #[test]
    fn hardware_profile_spec_reads_gpu_fields() {
        let hp: HardwareProfileSpec = serde_json::from_value(serde_json::json!({
            "name": "my-gpu", "memoryGib": 80.0, "tflopsBf16": 989.0, "hbmTbps": 3.35, "nvlinkGbps": 450.0,
            "dollarsPerGpuHour": 2.5
        }))
        .unwrap();
        assert_eq!(hp.gpu.dollars_per_gpu_hour, 2.5);
        hp.gpu.validate().unwrap();
    }
}
