//! Validation and resolution: from a user's spec to every derived number the simulator needs.
//! This is the only place that reads the raw spec; everything downstream gets a [`Resolved`].

use std::sync::Arc;

use super::serving::{positive_int, resolve_serving};
use super::spec::{ScenarioSpec, DEFAULT_SEED};

use crate::catalog::gpu::GpuProfile;
use crate::catalog::model::{self, ModelArch};
use crate::error::InvalidInput;
use crate::latency::{LatencyKind, LatencyModel};
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
    /// Things that were derived or approximated, for the user to check.
    pub warnings: Vec<String>,
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
        None => model::builtin(&spec.model.name).ok_or_else(|| {
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

    let top = resolve_serving(&model, &spec.hardware, &spec.vllm, "spec", spec.latency_model, &mut warnings)?;
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

    Ok(Resolved {
        name: name.to_string(),
        seed: spec.seed.unwrap_or(DEFAULT_SEED),
        model,
        gpu: top.gpu,
        tensor_parallelism: top.tp,
        replicas: cluster.pools.iter().map(|p| p.replicas).sum(),
        instance: top.instance,
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
        warnings,
    })
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
