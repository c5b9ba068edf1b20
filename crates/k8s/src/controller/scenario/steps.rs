//! The pure steps of a reconcile: validate + build (from the raw object and the objects it
//! references), hash, and the status that follows each outcome. No client, no I/O: unit-tested.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::conditions::{self, Desired, DEGRADED, READY, RECONCILING, SLO_MET, STALLED};
use crate::api::{HardwareProfile, NormalizedInputs, SimulationScenarioStatus};
use blis_import::{resolve, Objects};
use blis_report::predictions::{self, Predictions};
use blis_sim::catalog::gpu::GpuProfile;
use blis_sim::error::InvalidInput;
use blis_sim::metrics::gates::{self, Enforcement};
use blis_sim::metrics::Summary;
use blis_sim::scenario::spec::HardwareSpec;
use blis_sim::scenario::Inputs;
use blis_sim::scenario::{Resolved, ScenarioSpec};
use blis_sim::workload::Trace;

/// Version of the simulator, recorded in status and part of the inputs hash (an upgrade re-simulates).
pub const SIMULATOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The objects a scenario references, as fetched from the API (absent when they do not exist).
#[derive(Debug, Clone, Default)]
pub struct Referenced {
    /// The ConfigMap of `spec.workload.trace.configMapRef`, if referenced and found.
    pub trace_config_map: Option<ConfigMap>,
    /// The HardwareProfiles found for the GPU names the scenario uses ([`profile_gpus`]), by GPU name.
    pub hardware_profiles: BTreeMap<String, HardwareProfile>,
    /// The objects `spec.import` references (InferencePool, Deployments, ConfigMap, objectives).
    pub objects: Objects,
}

/// A scenario ready to simulate.
#[derive(Clone)]
pub struct Prepared {
    /// Validated, resolved scenario.
    pub resolved: Resolved,
    /// The trace read from a ConfigMap, if any.
    pub trace: Option<Arc<Trace>>,
    /// sha256 of everything the prediction depends on.
    pub hash: String,
    /// The effective spec (with a referenced HardwareProfile filled in).
    pub spec: ScenarioSpec,
}

/// Names of the HardwareProfile objects a `hardware.gpu` value may refer to, most specific first.
pub fn hardware_profile_names(gpu: &str) -> Vec<String> {
    let lower = gpu.to_ascii_lowercase();
    if lower == gpu {
        vec![gpu.to_string()]
    } else {
        vec![gpu.to_string(), lower]
    }
}

/// The GPU names of `spec` that a HardwareProfile object may define: the top-level and every pool's
/// `hardware.gpu` given without an inline profile.
pub fn profile_gpus(spec: &ScenarioSpec) -> Vec<&str> {
    let pools = spec.pools.iter().flatten().filter_map(|p| p.hardware.as_ref());
    let mut names: Vec<&str> = std::iter::once(&spec.hardware)
        .chain(pools)
        .filter(|h| h.profile.is_none() && !h.gpu.is_empty())
        .map(|h| h.gpu.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Inlines the HardwareProfile found for `hw.gpu` (named as the spec names it), if any.
fn inline_profile(
    hw: &mut HardwareSpec,
    refs: &Referenced,
    at: &str,
) -> Result<Option<GpuProfile>, InvalidInput> {
    let Some(hp) = refs.hardware_profiles.get(&hw.gpu).filter(|_| hw.profile.is_none()) else {
        return Ok(None);
    };
    let mut p = hp.spec.gpu.clone();
    p.name = hw.gpu.clone();
    p.validate().map_err(|e| {
        e.under(&format!(
            "HardwareProfile {} (for {at}.hardware.gpu): spec",
            hp.metadata.name.as_deref().unwrap_or("")
        ))
    })?;
    hw.profile = Some(p.clone());
    Ok(Some(p))
}

/// The ConfigMap name a scenario references, if any.
pub fn config_map_ref(spec: &ScenarioSpec) -> Option<(&str, &str)> {
    let r = spec.workload.trace.as_ref()?.config_map_ref.as_ref()?;
    Some((r.name.as_str(), r.key.as_str()))
}

/// Validate and build: the one step that reads the raw spec (plus what it references).
pub fn prepare(name: &str, spec: &ScenarioSpec, refs: &Referenced) -> Result<Prepared, InvalidInput> {
    // The same import as `blis run`: the effective spec (hashed below) includes what is deployed.
    let imported = blis_import::apply(spec, &refs.objects)?;
    let mut spec = imported.spec;
    let profile = inline_profile(&mut spec.hardware, refs, "spec")?;
    for (i, pool) in spec.pools.iter_mut().flatten().enumerate() {
        if let Some(hw) = pool.hardware.as_mut() {
            inline_profile(hw, refs, &format!("spec.pools[{i}]"))?;
        }
    }
    let mut trace_text = None;
    if let Some((cm, key)) = config_map_ref(&spec) {
        let found = refs.trace_config_map.as_ref().ok_or_else(|| {
            InvalidInput::new(
                "spec.workload.trace.configMapRef.name",
                format!("ConfigMap {cm:?} not found in the scenario's namespace"),
                "create the ConfigMap or fix the name",
            )
        })?;
        let text = found.data.as_ref().and_then(|d| d.get(key)).ok_or_else(|| {
            InvalidInput::new(
                "spec.workload.trace.configMapRef.key",
                format!("ConfigMap {cm:?} has no data key {key:?}"),
                "name a key of the ConfigMap's data that holds the trace CSV",
            )
        })?;
        trace_text = Some(text.as_str());
    }
    if spec.workload.trace.as_ref().is_some_and(|t| t.path.is_some()) {
        return Err(InvalidInput::new(
            "spec.workload.trace.path",
            "files cannot be read by the controller",
            "inline the CSV as trace.csv or put it in a ConfigMap and use trace.configMapRef",
        ));
    }
    let mut resolved = resolve(name, &spec)?;
    resolved.warnings.extend(imported.warnings);
    resolved.sources.extend(imported.sources);
    let hash = inputs_hash(&spec, trace_text, profile.as_ref());
    let trace = trace_text.map(|t| Arc::new(Trace::parse_csv(t)));
    Ok(Prepared { resolved, trace, hash, spec })
}

/// sha256 (hex) of the spec, the dereferenced inputs and the simulator version, over canonical JSON
/// (object keys sorted).
pub fn inputs_hash(spec: &ScenarioSpec, trace: Option<&str>, profile: Option<&GpuProfile>) -> String {
    let doc = json!({
        "simulator": SIMULATOR_VERSION,
        "spec": spec,
        "trace": trace,
        "hardwareProfile": profile,
    });
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// What reconcile should do with a prepared scenario given its current status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The status already holds the prediction for these inputs and this generation.
    UpToDate,
    /// Simulate.
    Simulate,
}

/// Skip when the status already tells the outcome (a prediction, or why there is none) of exactly
/// these inputs and this generation, and no run is pending: every outcome of a run records its
/// inputs hash, so no outcome is simulated twice.
pub fn decide(status: Option<&SimulationScenarioStatus>, generation: Option<i64>, hash: &str) -> Decision {
    match status {
        Some(s)
            if s.inputs_hash.as_deref() == Some(hash)
                && s.observed_generation == generation
                && conditions::status_of(&s.conditions, RECONCILING) != Some("True")
                && conditions::status_of(&s.conditions, READY).is_some() =>
        {
            Decision::UpToDate
        }
        _ => Decision::Simulate,
    }
}

/// Checks every object name the spec references before it goes into a request (a name with `/`
/// would address another resource, and be refused forever).
pub fn check_names(spec: &ScenarioSpec) -> Result<(), InvalidInput> {
    let mut names: Vec<(String, &str)> = Vec::new();
    if let Some((cm, _)) = config_map_ref(spec) {
        names.push(("spec.workload.trace.configMapRef.name".into(), cm));
    }
    if let Some(imp) = &spec.import {
        if let Some(r) = &imp.inference_pool_ref {
            names.push(("spec.import.inferencePoolRef.name".into(), &r.name));
        }
        if let Some(r) = &imp.endpoint_picker_config_ref {
            names.push(("spec.import.endpointPickerConfigRef.name".into(), &r.name));
        }
        for (i, r) in imp.workload_refs.iter().flatten().enumerate() {
            names.push((format!("spec.import.workloadRefs[{i}].name"), &r.name));
        }
    }
    for (field, name) in names {
        if !crate::controller::client::is_dns_name(name) {
            return Err(InvalidInput::new(
                field,
                format!("{:?} is not an object name", crate::controller::watched::shorten(name, 80)),
                "give the name of an object in the scenario's namespace (lower-case letters, digits, '-', '.')",
            ));
        }
    }
    Ok(())
}

/// Status while a simulation for `generation` runs: previous predictions kept.
pub fn status_simulating(
    prev: &SimulationScenarioStatus,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> SimulationScenarioStatus {
    let msg = "simulating the current spec";
    let mut s = prev.clone();
    s.observed_generation = generation;
    s.conditions = conditions::merge(
        &prev.conditions,
        &[
            Desired::new(READY, false, "Simulating", msg),
            Desired::unknown(SLO_MET, "Simulating", msg),
            Desired::unknown(DEGRADED, "Simulating", msg),
            Desired::new(RECONCILING, true, "Simulating", msg),
            Desired::new(STALLED, false, "Simulating", msg),
        ],
        generation,
        now,
    );
    s
}

/// The verdict of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Every SLO and gate met.
    pub slo_met: bool,
    /// A failure is enforced (Ready=False, Stalled=True).
    pub enforced_failure: bool,
}

/// Status after a successful run: predictions, gate results, conditions.
pub fn status_succeeded(
    prev: &SimulationScenarioStatus,
    generation: Option<i64>,
    prepared: &Prepared,
    summary: &Summary,
    wall_seconds: f64,
    now: jiff::Timestamp,
) -> (SimulationScenarioStatus, Verdict) {
    let gates_spec = prepared.spec.gates.clone().unwrap_or_default();
    let results = gates::evaluate(&gates_spec, summary);
    let failed: Vec<&str> = results.iter().filter(|g| !g.passed).map(|g| g.message.as_str()).collect();
    let slo_met = failed.is_empty();
    let enforced_failure = !slo_met && gates_spec.enforcement == Enforcement::Enforce;
    let o = &summary.overall;
    let headline = format!(
        "TTFT p90 {:.1} ms, ITL p90 {:.2} ms, {:.2} req/s, ${:.2}/h",
        o.ttft_ms.p90, o.itl_ms.p90, o.throughput.requests_per_s, summary.cost.dollars_per_hour
    );
    let slo_cond = if results.is_empty() {
        Desired::new(SLO_MET, true, "NoObjectives", "no SLO or gate is defined")
    } else if slo_met {
        Desired::new(SLO_MET, true, "SLOMet", format!("all {} objectives met", results.len()))
    } else {
        Desired::new(SLO_MET, false, "SLONotMet", failed.join("; "))
    };
    let (ready, stalled) = if enforced_failure {
        let m = format!("enforced gates failed: {}", failed.join("; "));
        (Desired::new(READY, false, "GateFailed", &m), Desired::new(STALLED, true, "GateFailed", &m))
    } else {
        (
            Desired::new(READY, true, "Simulated", &headline),
            Desired::new(STALLED, false, "Simulated", "prediction is current"),
        )
    };
    let degraded = if o.requests.rejected > 0 {
        Desired::new(
            DEGRADED,
            true,
            "RequestsRejected",
            format!("{} requests cannot be served as configured", o.requests.rejected),
        )
    } else if o.requests.unfinished > 0 {
        Desired::new(
            DEGRADED,
            true,
            "RequestsUnfinished",
            format!("{} requests unfinished at the horizon", o.requests.unfinished),
        )
    } else {
        Desired::new(DEGRADED, false, "AsRequested", "every request was served")
    };
    let conds = [
        ready,
        slo_cond,
        degraded,
        Desired::new(RECONCILING, false, "Simulated", "prediction is current"),
        stalled,
    ];
    let r = &prepared.resolved;
    let status = SimulationScenarioStatus {
        observed_generation: generation,
        conditions: conditions::merge(&prev.conditions, &conds, generation, now),
        predictions: Some(Predictions::from(summary)),
        predicted_generation: generation,
        gate_results: results,
        normalized_inputs: Some(NormalizedInputs {
            seed: Some(r.seed),
            resolved: Some(predictions::from_inputs(&Inputs::of(r))),
            warnings: r.warnings.clone(),
        }),
        inputs_hash: Some(prepared.hash.clone()),
        simulator_version: Some(SIMULATOR_VERSION.to_string()),
        wall_time_seconds: Some((wall_seconds * 1000.0).round() / 1000.0),
        simulations: Some(prev.simulations.unwrap_or(0) + 1),
    };
    (status, Verdict { slo_met, enforced_failure })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::status::status_stalled;
    use crate::controller::Error;
    use blis_import::manifest::parse_scenarios;
    use blis_sim::sim::{NoObserver, SimOptions};

    fn spec(extra: &str) -> ScenarioSpec {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart.yaml"))
            .replace("durationSeconds: 60", "durationSeconds: 3");
        let text = format!("{text}{extra}");
        parse_scenarios(&text).unwrap().0.remove(0).spec
    }

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn hash_changes_with_inputs_only() {
        let s = spec("");
        let a = prepare("q", &s, &Referenced::default()).unwrap();
        let b = prepare("q", &s, &Referenced::default()).unwrap();
        assert_eq!(a.hash, b.hash);
        let mut s2 = s.clone();
        s2.replicas = Some(2);
        assert_ne!(prepare("q", &s2, &Referenced::default()).unwrap().hash, a.hash);
        assert_ne!(inputs_hash(&s, Some("x"), None), inputs_hash(&s, Some("y"), None));
    }

    #[test]
    fn missing_config_map_names_the_field() {
        let mut s = spec("");
        s.workload.trace =
            Some(serde_json::from_value(json!({"configMapRef": {"name": "t", "key": "csv"}})).unwrap());
        let e = prepare("q", &s, &Referenced::default()).err().unwrap();
        assert_eq!(e.field, "spec.workload.trace.configMapRef.name");
        let cm =
            ConfigMap { data: Some([("other".to_string(), "x".to_string())].into()), ..Default::default() };
        let e =
            prepare("q", &s, &Referenced { trace_config_map: Some(cm), ..Default::default() }).err().unwrap();
        assert_eq!(e.field, "spec.workload.trace.configMapRef.key");
    }

    /// A HardwareProfile object named `name` with H100-like figures at `price` $/GPU-hour.
    fn profile_object(name: &str, price: f64) -> HardwareProfile {
        let gpu = json!({"name": "x", "memoryGib": 80.0, "tflopsBf16": 989.0, "hbmTbps": 3.35,
            "nvlinkGbps": 450.0, "dollarsPerGpuHour": price});
        HardwareProfile::new(name, serde_json::from_value(gpu).unwrap())
    }

    #[test]
    fn hardware_profile_object_is_used() {
        let mut s = spec("");
        s.hardware.gpu = "My-GPU".into();
        assert!(prepare("q", &s, &Referenced::default()).is_err());
        let hp = profile_object("my-gpu", 7.0);
        assert_eq!(hardware_profile_names("My-GPU"), vec!["My-GPU".to_string(), "my-gpu".to_string()]);
        let refs = Referenced {
            hardware_profiles: [("My-GPU".to_string(), hp)].into_iter().collect(),
            ..Default::default()
        };
        let p = prepare("q", &s, &refs).unwrap();
        assert_eq!(p.resolved.gpu.dollars_per_gpu_hour, 7.0);
        assert_eq!(p.resolved.gpu.name, "My-GPU");
    }

    #[test]
    fn pools_take_their_own_hardware_profile_objects() {
        let mut s = spec("");
        s.replicas = None;
        let pool = |name: &str, gpu: Option<&str>| -> blis_sim::scenario::spec::PoolSpec {
            let mut p: blis_sim::scenario::spec::PoolSpec =
                serde_json::from_value(json!({"name": name, "replicas": 1})).unwrap();
            p.hardware = gpu.map(|g| HardwareSpec { gpu: g.into(), ..Default::default() });
            p
        };
        s.pools = Some(vec![pool("a", None), pool("b", Some("Pool-GPU"))]);
        assert_eq!(profile_gpus(&s), vec!["H100-SXM-80GB", "Pool-GPU"]);
        let e = prepare("q", &s, &Referenced::default()).err().expect("unknown pool GPU");
        assert_eq!(e.field, "spec.pools[1].hardware.gpu");
        let hp = profile_object("pool-gpu", 5.0);
        let refs = Referenced {
            hardware_profiles: [("Pool-GPU".to_string(), hp)].into_iter().collect(),
            ..Default::default()
        };
        let p = prepare("q", &s, &refs).unwrap();
        let b = p.resolved.pools.iter().find(|x| x.name == "b").unwrap();
        let a = p.resolved.pools.iter().find(|x| x.name == "a").unwrap();
        assert_eq!((a.dollars_per_gpu_hour != 5.0, b.dollars_per_gpu_hour), (true, 5.0));
        // The profile is part of the inputs: a changed price is a new hash.
        let mut refs2 = refs.clone();
        refs2.hardware_profiles.get_mut("Pool-GPU").unwrap().spec.gpu.dollars_per_gpu_hour = 6.0;
        assert_ne!(prepare("q", &s, &refs2).unwrap().hash, p.hash);
    }

    #[test]
    fn outcomes_map_to_conditions() {
        let gen = Some(3);
        let p = prepare("q", &spec(""), &Referenced::default()).unwrap();
        let o =
            blis_sim::scenario::simulate(&p.resolved, None, &SimOptions::default(), &mut NoObserver).unwrap();
        let sim = status_simulating(&SimulationScenarioStatus::default(), gen, now());
        assert_eq!(conditions::status_of(&sim.conditions, RECONCILING), Some("True"));
        assert_eq!(decide(Some(&sim), gen, &p.hash), Decision::Simulate);
        let (ok, v) = status_succeeded(&sim, gen, &p, &o.summary, 0.5, now());
        assert_eq!(ok.simulations, Some(1));
        assert!(ok.conditions.iter().all(|c| c.observed_generation == gen));
        assert_eq!(conditions::status_of(&ok.conditions, STALLED), Some("False"));
        assert_eq!(
            conditions::status_of(&ok.conditions, READY),
            Some(if v.enforced_failure { "False" } else { "True" })
        );
        assert_eq!(decide(Some(&ok), gen, &p.hash), Decision::UpToDate);
        assert_eq!(decide(Some(&ok), Some(4), &p.hash), Decision::Simulate);

        // Invalid input later: Stalled, predictions kept, then a fix re-simulates.
        let err =
            Error::Invalid(InvalidInput::new("spec.replicas", "must be at least 1 (got 0)", "set replicas"));
        let bad = status_stalled(&ok, Some(4), None, &err, now());
        assert_eq!(bad.predictions, ok.predictions);
        let stalled = bad.conditions.iter().find(|c| c.type_ == STALLED).unwrap();
        assert_eq!((stalled.status.as_str(), stalled.reason.as_str()), ("True", "InvalidSpec"));
        assert!(stalled.message.contains("spec.replicas"));
        assert_eq!(decide(Some(&bad), Some(4), &p.hash), Decision::Simulate);

        // A limit is not retried for the same inputs.
        let lim = status_stalled(&ok, Some(5), Some("sha256:x"), &Error::Limit("wall".into()), now());
        assert_eq!(decide(Some(&lim), Some(5), "sha256:x"), Decision::UpToDate);
        assert_eq!(decide(Some(&lim), Some(5), "sha256:y"), Decision::Simulate);
    }

    #[test]
    fn enforced_gate_failure_is_stalled() {
        let s = spec("  gates: {maxTtftP90Ms: 0.001, enforcement: Enforce}\n");
        let p = prepare("q", &s, &Referenced::default()).unwrap();
        let o =
            blis_sim::scenario::simulate(&p.resolved, None, &SimOptions::default(), &mut NoObserver).unwrap();
        let (st, v) =
            status_succeeded(&SimulationScenarioStatus::default(), Some(1), &p, &o.summary, 0.1, now());
        assert!(!v.slo_met && v.enforced_failure);
        assert_eq!(conditions::status_of(&st.conditions, SLO_MET), Some("False"));
        assert_eq!(conditions::status_of(&st.conditions, READY), Some("False"));
        assert_eq!(conditions::status_of(&st.conditions, STALLED), Some("True"));
        let s = spec("  gates: {maxTtftP90Ms: 0.001}\n");
        let p = prepare("q", &s, &Referenced::default()).unwrap();
        let (st, _) =
            status_succeeded(&SimulationScenarioStatus::default(), Some(1), &p, &o.summary, 0.1, now());
        assert_eq!(conditions::status_of(&st.conditions, SLO_MET), Some("False"));
        assert_eq!(conditions::status_of(&st.conditions, STALLED), Some("False"));
    }
}
