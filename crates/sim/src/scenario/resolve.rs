//! Validation and resolution: from a user's spec to every derived number the simulator needs.
//! This is the only place that reads the raw spec; everything downstream gets a [`Resolved`].

use std::sync::Arc;

use super::serving::{positive_int, resolve_serving};
use super::spec::{ScenarioSpec, DEFAULT_SEED};

use crate::catalog::gpu::GpuProfile;
use crate::catalog::model::{self, ModelArch};
use crate::error::InvalidInput;
use crate::latency::{LatencyKind, LatencyModel};
use crate::metrics::SummaryMode;
use crate::sim::gateway::GatewayConfig;
use crate::sim::router::EppConfig;
use crate::sim::{ClusterConfig, InstanceConfig, PdConfig, PoolConfig, RouterConfig};
use crate::workload::Slo;
use crate::workload::{self, WorkloadSpec};

/// A validated scenario with every default and derived value filled in.
#[derive(Clone)]
pub struct Resolved {
    /// Scenario name.
    pub name: String,
    /// Master seed.
    pub seed: u64,
    /// Model architecture.
    pub model: ModelArch,
    /// GPU profile.
    pub gpu: GpuProfile,
    /// GPUs per replica.
    pub tensor_parallelism: u32,
    /// Replicas at start, over all pools.
    pub replicas: u32,
    /// Serving knobs per replica.
    pub instance: InstanceConfig,
    /// The vLLM release whose defaults filled the knobs left out.
    pub vllm_version: super::vllm_defaults::VllmVersion,
    /// Latency model kind.
    pub latency_kind: LatencyKind,
    /// The step-time model.
    pub latency: Arc<dyn LatencyModel>,
    /// Routing (endpoint picker).
    pub router: RouterConfig,
    /// Admission and flow control.
    pub gateway: GatewayConfig,
    /// Pools of replicas (one `default` pool without `spec.pools`).
    pub pools: Vec<PoolConfig>,
    /// KV transfers (P/D).
    pub pd: PdConfig,
    /// Traffic.
    pub workload: WorkloadSpec,
    /// Class names by index.
    pub class_names: Vec<String>,
    /// Class SLOs by index.
    pub slos: Vec<Option<Slo>>,
    /// Horizon (µs).
    pub horizon_us: Option<i64>,
    /// Exact or streaming summary.
    pub summary: SummaryMode,
    /// Things that were derived or approximated, for the user to check.
    pub warnings: Vec<String>,
    /// How each pool is built (GPU, parallelism, where its knobs came from), in pool order.
    pub shapes: Vec<super::cluster::PoolShape>,
    /// Where the inputs came from, by inputs path (`pools[0].vllm.max_num_seqs`): `scenario`,
    /// `default`, `derived ...`, or (filled in by the importers) the manifest that gave it.
    pub sources: std::collections::BTreeMap<String, String>,
}

impl Resolved {
    /// The cluster configuration for the simulator.
    pub fn cluster(&self) -> ClusterConfig {
        ClusterConfig {
            pools: self.pools.clone(),
            router: self.router.clone(),
            gateway: self.gateway.clone(),
            pd: self.pd,
            horizon_us: self.horizon_us,
            seed: self.seed,
        }
    }

    /// Replaces the step-time model of the scenario and of every pool (e.g. by a recording wrapper).
    pub fn set_latency(&mut self, latency: Arc<dyn LatencyModel>) {
        for p in &mut self.pools {
            p.latency = latency.clone();
        }
        self.latency = latency;
    }

    /// GPUs in the deployment at start.
    pub fn gpus(&self) -> u32 {
        self.pools.iter().map(|p| p.replicas * p.gpus_per_replica).sum()
    }
}

/// What the spec lets the endpoint-picker reader accept that the real EPP refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EppReadOptions {
    /// Plugin types no EPP registers run as neutral plugins (with a warning) instead of being
    /// refused (`spec.router.allowUnregisteredPlugins`).
    pub allow_unregistered_plugins: bool,
}

/// Reads `spec.router.endpointPickerConfig` (llm-d's own document) into the pipeline the simulator
/// runs, adding what it approximates to the warnings. The importer supplies it, so the core parses
/// no foreign format.
pub type EppReader =
    fn(&serde_json::Value, &EppReadOptions, &mut Vec<String>) -> Result<EppConfig, InvalidInput>;

/// Validates `spec` and derives everything the simulator needs.
pub fn resolve(name: &str, spec: &ScenarioSpec, read_epp: EppReader) -> Result<Resolved, InvalidInput> {
    let mut warnings = Vec::new();

    // Model.
    let model = match &spec.model.config {
        Some(cfg) => {
            ModelArch::from_hf_config(&spec.model.name, cfg).map_err(|e| e.under("spec.model.config"))?
        }
        None => model::builtin_noting(&spec.model.name)
            .map(|(m, note)| {
                warnings.extend(note);
                m
            })
            .ok_or_else(|| {
                InvalidInput::new(
                    "spec.model.name",
                    format!("unknown model {:?}", spec.model.name),
                    format!(
                    "use a built-in model ({}) or give its Hugging Face config.json under spec.model.config",
                    model::builtin_names().join(", ")
                ),
                )
            })?,
    };

    // The top-level serving describes the first pool's engines; with expert parallelism they hold
    // a share of the experts (the whole model may not fit one engine).
    let top_model = match spec.pools.as_ref().and_then(|p| p.first()) {
        Some(p) if p.expert_parallel == Some(true) && model.is_moe() => {
            model.with_expert_shards(p.data_parallelism.unwrap_or(1).clamp(1, i64::from(u32::MAX)) as u32)
        }
        _ => model.clone(),
    };
    let top =
        resolve_serving(&top_model, &spec.hardware, &spec.vllm, "spec", spec.latency_model, &mut warnings)?;
    let latency_kind = top.latency_kind;
    let replicas = positive_int(spec.replicas, "spec.replicas", 1, "set replicas to 1 or more")?;

    // Workload.
    workload::validate(&spec.workload).map_err(|e| e.under("spec.workload"))?;
    let class_names: Vec<String> = spec.workload.classes.iter().map(|c| c.name.clone()).collect();
    let slos = spec.workload.classes.iter().map(|c| c.slo.clone()).collect();
    if let Some(slo_err) = spec.workload.classes.iter().enumerate().find_map(|(i, c)| {
        c.slo
            .as_ref()
            .and_then(|s| validate_slo(s).err().map(|e| e.under(&format!("spec.workload.classes[{i}].slo"))))
    }) {
        return Err(slo_err);
    }

    let horizon_us = match spec.simulation.horizon_seconds {
        None => None,
        Some(h) if h.is_finite() && h > 0.0 => Some((h * 1e6) as i64),
        Some(h) => {
            return Err(InvalidInput::new(
                "spec.simulation.horizonSeconds",
                format!("must be a positive number of seconds (got {h})"),
                "give a positive horizon or leave it out to run until all requests finish",
            ))
        }
    };

    if let Some(g) = &spec.gates {
        g.validate().map_err(|e| e.under("spec.gates"))?;
    }

    let mut cluster = super::cluster::resolve_cluster(
        spec,
        &model,
        &top,
        replicas,
        spec.latency_model,
        read_epp,
        &mut warnings,
    )?;
    cluster.gateway.class_priority = super::cluster::class_priorities(spec)?;

    let sources = input_sources(spec, &cluster.shapes);
    Ok(Resolved {
        name: name.to_string(),
        seed: spec.seed.unwrap_or(DEFAULT_SEED),
        model,
        gpu: top.gpu,
        tensor_parallelism: top.tp,
        replicas: cluster.pools.iter().map(|p| p.replicas).sum(),
        instance: top.instance,
        vllm_version: top.version,
        latency_kind,
        latency: top.latency,
        router: cluster.router,
        gateway: cluster.gateway,
        pools: cluster.pools,
        pd: cluster.pd,
        workload: spec.workload.clone(),
        class_names,
        slos,
        horizon_us,
        summary: spec.simulation.summary.unwrap_or_default(),
        warnings,
        shapes: cluster.shapes,
        sources,
    })
}

/// Where each reported input came from: set in the spec (`scenario`), a default, or derived.
fn input_sources(
    spec: &ScenarioSpec,
    shapes: &[super::cluster::PoolShape],
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let said = |set: bool| if set { "scenario" } else { "default" }.to_string();
    out.insert("model".to_string(), said(!spec.model.is_unset()));
    for (i, shape) in shapes.iter().enumerate() {
        for (k, v) in &shape.knobs {
            out.insert(format!("pools[{i}].vllm.{k}"), v.to_string());
        }
        let pool = spec.pools.as_ref().and_then(|p| p.get(i));
        let hw = pool.and_then(|p| p.hardware.as_ref()).unwrap_or(&spec.hardware);
        let replicas = pool.map_or(spec.replicas.is_some(), |p| p.replicas.is_some());
        out.insert(format!("pools[{i}].replicas"), said(replicas));
        out.insert(format!("pools[{i}].gpu"), said(!hw.gpu.is_empty() || hw.profile.is_some()));
        out.insert(format!("pools[{i}].tensor_parallelism"), said(hw.tensor_parallelism.is_some()));
        out.insert(
            format!("pools[{i}].data_parallelism"),
            said(pool.is_some_and(|p| p.data_parallelism.is_some())),
        );
        let scaled = pool.map_or(spec.autoscaling.is_some(), |p| p.autoscaling.is_some());
        if scaled {
            out.insert(format!("pools[{i}].autoscaling"), "scenario".to_string());
        }
    }
    let routed = spec.router.endpoint_picker_config.is_some() || spec.router.policy.is_some();
    out.insert("router".to_string(), said(routed));
    if spec.router.objectives.is_some() {
        out.insert("objectives".to_string(), "scenario".to_string());
    }
    out
}

fn validate_slo(s: &Slo) -> Result<(), InvalidInput> {
    for (field, v) in [("ttftMs", s.ttft_ms), ("itlMs", s.itl_ms), ("e2eMs", s.e2e_ms)] {
        if let Some(v) = v {
            if !(v.is_finite() && v > 0.0) {
                return Err(InvalidInput::new(
                    field,
                    format!("must be a positive number of milliseconds (got {v})"),
                    "give a positive limit or leave it out",
                ));
            }
        }
    }
    if let Some(a) = s.attainment {
        if !(0.0..=1.0).contains(&a) {
            return Err(InvalidInput::new(
                "attainment",
                format!("must be a fraction in [0, 1] (got {a})"),
                "use e.g. 0.9 for 90% of requests",
            ));
        }
    }
    Ok(())
}
