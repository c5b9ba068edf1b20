//! The pure steps of a sweep reconcile: validate + plan, hash, decide, and the status that follows
//! each outcome. No client, no I/O: unit-tested.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::conditions::{self, Desired, READY, RECONCILING, STALLED};
use crate::api::{SimulationSweepSpec, SimulationSweepStatus, SweepFanOutStatus, SweepRankEntry};
use crate::controller::scenario::steps::SIMULATOR_VERSION;
use blis_plan::sweep::expand::Candidate;
use blis_plan::sweep::{self, SweepReport};
use blis_sim::error::InvalidInput;

/// A sweep ready to run.
#[derive(Debug, Clone)]
pub struct PreparedSweep {
    /// The expanded candidates.
    pub candidates: Vec<Candidate>,
    /// sha256 of the spec and the simulator version.
    pub hash: String,
}

/// Validate and plan: the same checks and expansion as `blis sweep`; traces must be inline.
pub fn prepare(spec: &SimulationSweepSpec) -> Result<PreparedSweep, InvalidInput> {
    if let Some(t) = &spec.base.workload.trace {
        if t.path.is_some() || t.config_map_ref.is_some() {
            let field = if t.path.is_some() {
                "spec.base.workload.trace.path"
            } else {
                "spec.base.workload.trace.configMapRef"
            };
            return Err(InvalidInput::new(
                field,
                "is not supported by the sweep controller",
                "inline the CSV as spec.base.workload.trace.csv",
            ));
        }
    }
    let candidates = sweep::plan(spec)?;
    Ok(PreparedSweep { candidates, hash: inputs_hash(spec) })
}

/// sha256 (hex) of the spec and the simulator version (an upgrade re-runs the sweep).
pub fn inputs_hash(spec: &SimulationSweepSpec) -> String {
    let doc = json!({ "simulator": SIMULATOR_VERSION, "spec": spec });
    let digest = Sha256::digest(serde_json::to_vec(&doc).unwrap_or_default());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Skip when the status already holds the ranking for these inputs and this generation, or says
/// that these inputs exceed the controller's limits (rerunning would only exceed them again).
pub fn decide(status: Option<&SimulationSweepStatus>, generation: Option<i64>, hash: &str) -> bool {
    status.is_some_and(|s| {
        s.inputs_hash.as_deref() == Some(hash)
            && s.observed_generation == generation
            && (conditions::status_of(&s.conditions, READY) == Some("True")
                || conditions::status_of(&s.conditions, STALLED) == Some("True"))
    })
}

/// Status while the sweep of `generation` runs (`reason` `Simulating` in the controller, `FanOut`
/// in a Job, with its progress): the previous ranking is kept.
pub fn status_running(
    prev: &SimulationSweepStatus,
    generation: Option<i64>,
    reason: &str,
    msg: &str,
    fan_out: Option<SweepFanOutStatus>,
    now: jiff::Timestamp,
) -> SimulationSweepStatus {
    let mut s = prev.clone();
    s.observed_generation = generation;
    s.fan_out = fan_out;
    s.conditions = conditions::merge(
        &prev.conditions,
        &[
            Desired::new(READY, false, reason, msg),
            Desired::new(RECONCILING, true, reason, msg),
            Desired::new(STALLED, false, reason, msg),
        ],
        generation,
        now,
    );
    s
}

/// Status of a finished sweep: the ranking of `report`, Ready=True.
pub fn status_ranked(
    prev: &SimulationSweepStatus,
    generation: Option<i64>,
    hash: &str,
    report: &SweepReport,
    wall_seconds: f64,
    now: jiff::Timestamp,
) -> SimulationSweepStatus {
    let msg = match &report.best {
        Some(b) => {
            format!("best of {} candidates: {b} ({} pass the gates)", report.candidates, report.feasible)
        }
        None => format!("none of {} candidates passes the gates", report.candidates),
    };
    let ranking = report
        .ranking
        .iter()
        .map(|r| {
            let f = r.result.figures.as_ref();
            SweepRankEntry {
                name: r.result.name.clone(),
                rank: u32::try_from(r.rank).unwrap_or(u32::MAX),
                passed: r.result.feasible,
                objective: r.objective,
                ttft_p90_ms: f.map(|f| f.ttft_p90_ms),
                itl_p90_ms: f.map(|f| f.itl_p90_ms),
                dollars_per_million_tokens: f.and_then(|f| f.dollars_per_million_tokens),
                gpus: f.map(|f| f.gpus),
                verdict: r.verdict.clone(),
            }
        })
        .collect();
    SimulationSweepStatus {
        observed_generation: generation,
        conditions: conditions::merge(
            &prev.conditions,
            &[
                Desired::new(READY, true, "Ranked", &msg),
                Desired::new(RECONCILING, false, "Ranked", &msg),
                Desired::new(STALLED, false, "Ranked", &msg),
            ],
            generation,
            now,
        ),
        best: report.best.clone(),
        ranking,
        pareto: report.pareto.clone(),
        candidates: Some(u32::try_from(report.candidates).unwrap_or(u32::MAX)),
        inputs_hash: Some(hash.to_string()),
        wall_time_seconds: Some((wall_seconds * 1000.0).round() / 1000.0),
        fan_out: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::status::status_stalled;
    use crate::controller::Error;
    use blis_plan::sweep::eval::CandidateResult;
    use blis_plan::sweep::spec::Figures;

    fn spec(extra: &str) -> SimulationSweepSpec {
        let yaml = format!(
            "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationSweep\nmetadata: {{name: s}}\nspec:\n{extra}  parameters:\n  - path: replicas\n    values: [1, 2]\n  base:\n    model: {{name: meta-llama/Llama-3.1-8B-Instruct}}\n    hardware: {{gpu: H100-SXM-80GB}}\n    workload:\n      durationSeconds: 5\n      arrival: {{process: poisson, ratePerSecond: 2}}\n      classes:\n      - name: chat\n        inputTokens: {{distribution: fixed, value: 100}}\n        outputTokens: {{distribution: fixed, value: 10}}\n"
        );
        SimulationSweepSpec(sweep::parse_sweep(&yaml).unwrap().1)
    }

    #[test]
    fn prepare_plans_hashes_and_names_invalid_fields() {
        let p = prepare(&spec("")).unwrap();
        assert_eq!(p.candidates.len(), 2);
        assert_eq!(p.hash, prepare(&spec("")).unwrap().hash, "deterministic");
        assert_ne!(p.hash, prepare(&spec("  seed: 3\n")).unwrap().hash);
        let e = prepare(&spec("  maxCandidates: 1\n")).unwrap_err();
        assert_eq!(e.field, "spec.maxCandidates");
    }

    #[test]
    fn ranked_status_is_ready_and_skips_the_same_inputs() {
        let s = spec("");
        let fig = |c: f64| Figures { dollars_per_million_tokens: Some(c), gpus: 1, ..Default::default() };
        let result = |i: usize, c: f64| CandidateResult {
            index: i,
            name: format!("c{i}"),
            settings: Default::default(),
            feasible: true,
            failed: vec![],
            figures: Some(fig(c)),
            objective_ci95: None,
            max_rate: None,
        };
        let report = SweepReport::new("s", &s, &[result(0, 2.0), result(1, 1.0)]);
        let now = jiff::Timestamp::UNIX_EPOCH;
        let st = status_ranked(&SimulationSweepStatus::default(), Some(3), "h", &report, 1.23456, now);
        assert_eq!(st.best.as_deref(), Some("c1"));
        assert_eq!(st.ranking.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["c1", "c0"]);
        assert_eq!((st.ranking[0].rank, st.ranking[0].gpus), (1, Some(1)));
        assert_eq!((st.candidates, st.wall_time_seconds), (Some(2), Some(1.235)));
        assert!(decide(Some(&st), Some(3), "h"));
        assert!(!decide(Some(&st), Some(4), "h") && !decide(Some(&st), Some(3), "other"));
        let running = status_running(&st, Some(4), "Simulating", "simulating 2", None, now);
        assert!(!decide(Some(&running), Some(4), "h"));
        assert_eq!(running.ranking, st.ranking, "previous ranking kept while running");
        let err = Error::Invalid(InvalidInput::new("spec.x", "bad", "fix"));
        let stalled = status_stalled(&st, Some(5), None, &err, now);
        assert_eq!(conditions::status_of(&stalled.conditions, STALLED), Some("True"));
        assert!(stalled.conditions.iter().all(|c| c.observed_generation == Some(5)));
        assert!(!decide(Some(&stalled), Some(5), "h2"), "an invalid spec's fix runs");
        // Inputs over the limits are not rerun until they change.
        let limited = status_stalled(&st, Some(5), Some("h2"), &Error::Limit("wall".into()), now);
        assert_eq!(limited.ranking, st.ranking, "previous ranking kept");
        assert!(decide(Some(&limited), Some(5), "h2") && !decide(Some(&limited), Some(5), "h3"));
    }
}
