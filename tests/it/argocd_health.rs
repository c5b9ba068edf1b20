//! The Argo CD health check of `charts/blis/files/argocd-health.lua`, run in a Lua 5.1 interpreter (as
//! Argo CD's gopher-lua is) against the statuses the controller really writes (`controller::steps`):
//! Progressing while simulating, Degraded when a gate fails or the scenario is stalled, Healthy when
//! Ready.

use std::path::Path;

use blis_import::manifest::parse_scenarios;
use blis_k8s::api::SimulationScenarioStatus;
use blis_k8s::controller::scenario::steps::{self, Referenced};
use blis_k8s::controller::status::status_stalled;
use blis_k8s::controller::Error;
use blis_sim::error::InvalidInput;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::json;

fn script() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/blis/files/argocd-health.lua");
    std::fs::read_to_string(p).expect("the health check file")
}

/// Runs the check as Argo CD does: a global `obj` (the object as a table), the script's return value
/// is `{status, message}`.
fn health(generation: i64, status: Option<&SimulationScenarioStatus>) -> (String, String) {
    let mut obj = json!({
        "apiVersion": "twin.blis.dev/v1alpha1",
        "kind": "SimulationScenario",
        "metadata": {"name": "s", "namespace": "ns", "generation": generation},
        "spec": {},
    });
    if let Some(s) = status {
        obj["status"] = serde_json::to_value(s).unwrap();
    }
    let lua = Lua::new();
    // JSON null becomes nil, as in Argo CD's conversion of the object.
    let opts = mlua::SerializeOptions::new().serialize_none_to_null(false).serialize_unit_to_null(false);
    lua.globals().set("obj", lua.to_value_with(&obj, opts).unwrap()).unwrap();
    let hs: Table = lua.load(script()).eval().expect("the health check runs");
    (hs.get("status").unwrap(), hs.get::<Option<String>>("message").unwrap().unwrap_or_default())
}

fn spec(gates: &str) -> blis_sim::scenario::ScenarioSpec {
    let text =
        include_str!("../../examples/quickstart.yaml").replace("durationSeconds: 60", "durationSeconds: 3");
    parse_scenarios(&format!("{text}{gates}")).unwrap().0.remove(0).spec
}

fn now() -> jiff::Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// The status after a finished simulation of `spec` at `generation`, starting from `prev`.
fn succeeded(prev: &SimulationScenarioStatus, generation: i64, gates: &str) -> SimulationScenarioStatus {
    let prepared = steps::prepare("s", &spec(gates), &Referenced::default()).unwrap();
    let outcome = blis_import::run_spec("s", &prepared.spec, None).unwrap();
    steps::status_succeeded(prev, Some(generation), &prepared, &outcome.summary, 0.1, now()).0
}

#[test]
fn progressing_before_and_while_simulating() {
    assert_eq!(health(1, None).0, "Progressing", "a new object has no status yet");
    let simulating = steps::status_simulating(&SimulationScenarioStatus::default(), Some(1), now());
    let (st, msg) = health(1, Some(&simulating));
    assert_eq!(st, "Progressing");
    assert!(msg.contains("simulating"), "{msg}");
    // A prediction of an older generation is not the verdict on the current spec.
    let done = succeeded(&SimulationScenarioStatus::default(), 1, "");
    assert_eq!(health(1, Some(&done)).0, "Healthy");
    assert_eq!(health(2, Some(&done)).0, "Progressing");
    // Re-simulating after a failed verdict: Progressing, not the stale Degraded.
    let failed = succeeded(&SimulationScenarioStatus::default(), 1, "  gates: {maxTtftP90Ms: 0.001}\n");
    assert_eq!(health(1, Some(&failed)).0, "Degraded");
    assert_eq!(health(2, Some(&steps::status_simulating(&failed, Some(2), now()))).0, "Progressing");
}

#[test]
fn healthy_when_ready_and_every_gate_met() {
    let s = succeeded(&SimulationScenarioStatus::default(), 3, "  gates: {maxTtftP90Ms: 100000}\n");
    let (st, msg) = health(3, Some(&s));
    assert_eq!(st, "Healthy");
    assert!(msg.contains("TTFT p90"), "the Ready message is shown: {msg}");
}

#[test]
fn degraded_when_a_gate_fails_or_the_scenario_is_stalled() {
    // Report mode: Ready stays True, SLOMet=False; Argo CD must still hold the rollout.
    let report = succeeded(&SimulationScenarioStatus::default(), 1, "  gates: {maxTtftP90Ms: 0.001}\n");
    let ready = report.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "True", "precondition: Report mode keeps Ready=True");
    let (st, msg) = health(1, Some(&report));
    assert_eq!(st, "Degraded");
    assert!(msg.contains("maxTtftP90Ms"), "the failing gate is named: {msg}");
    // Enforce mode: Ready=False, Stalled=True.
    let enforced = succeeded(
        &SimulationScenarioStatus::default(),
        1,
        "  gates: {maxTtftP90Ms: 0.001, enforcement: Enforce}\n",
    );
    assert_eq!(health(1, Some(&enforced)).0, "Degraded");
    // Invalid input keeps the last good prediction but is Stalled.
    let good = succeeded(&SimulationScenarioStatus::default(), 1, "");
    let err =
        Error::Invalid(InvalidInput::new("spec.replicas", "must be at least 1", "set replicas to 1 or more"));
    let stalled = status_stalled(&good, Some(2), None, &err, now());
    let (st, msg) = health(2, Some(&stalled));
    assert_eq!(st, "Degraded");
    assert!(msg.contains("spec.replicas"), "{msg}");
}

#[test]
fn a_status_without_conditions_is_progressing() {
    let s = json!({"observedGeneration": 1});
    let s: SimulationScenarioStatus = serde_json::from_value(s).unwrap();
    assert_eq!(health(1, Some(&s)), ("Progressing".to_string(), "waiting for the prediction".to_string()));
}
