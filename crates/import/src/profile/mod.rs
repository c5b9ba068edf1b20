//! Workload profiles as benchmark users write them: llm-d-benchmark / inference-perf configs
//! ([`inference_perf`]) and vLLM `benchmark_serving` parameters ([`benchmark_serving`]), turned into
//! the scenario's typed workload fields (stages, arrival process, prompt set, client limits). Keys a
//! reader does not know are listed as warnings, never dropped silently; keys it knows but that do
//! not change the simulated load are listed once.

pub mod benchmark_serving;
pub mod inference_perf;

use serde_json::{Map, Value};

use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::merge_patch;
use blis_sim::scenario::ScenarioSpec;
use blis_sim::workload::{WorkloadProfileSpec, WorkloadSpec};

/// A profile turned into workload fields, with what the reader ignored or approximated.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The workload the profile describes.
    pub workload: WorkloadSpec,
    /// Unknown keys, unmodelled settings and approximations.
    pub warnings: Vec<String>,
}

/// Field path of the profile in a scenario.
pub const FIELD: &str = "spec.workload.profile";

/// Reads `spec.workload.profile` (one of its formats).
pub fn import(p: &WorkloadProfileSpec) -> Result<Imported, InvalidInput> {
    match (&p.inference_perf, &p.benchmark_serving) {
        (Some(doc), None) => inference_perf::import(&as_document(doc, "inferencePerf")?)
            .map_err(|e| e.under(&format!("{FIELD}.inferencePerf"))),
        (None, Some(doc)) => {
            benchmark_serving::import(doc).map_err(|e| e.under(&format!("{FIELD}.benchmarkServing")))
        }
        (Some(_), Some(_)) => Err(InvalidInput::new(
            FIELD,
            "gives both inferencePerf and benchmarkServing",
            "keep the profile of the harness that ran the benchmark",
        )),
        (None, None) => Err(InvalidInput::new(
            FIELD,
            "is empty",
            "give inferencePerf (an inference-perf config) or benchmarkServing (its parameters)",
        )),
    }
}

/// A profile given inline or as a YAML / JSON string.
fn as_document(v: &Value, field: &str) -> Result<Value, InvalidInput> {
    match v {
        Value::String(text) => serde_yaml::from_str(text).map_err(|e| {
            InvalidInput::new(field, format!("is not valid YAML: {e}"), "paste the profile file as it is")
        }),
        other => Ok(other.clone()),
    }
}

/// Reads a profile file as `blis run --workload-profile` gets it: an inference-perf config (it has
/// `load` or `data`) or benchmark_serving parameters / results (anything else).
pub fn from_file_text(text: &str, file: &str) -> Result<WorkloadProfileSpec, InvalidInput> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        InvalidInput::new(
            file,
            format!("is not YAML or JSON: {e}"),
            "give an inference-perf config or benchmark_serving parameters",
        )
    })?;
    let Some(map) = doc.as_object() else {
        return Err(InvalidInput::new(
            file,
            "is not a mapping",
            "give an inference-perf config (load, data, ...) or benchmark_serving parameters",
        ));
    };
    if map.contains_key("load") || map.contains_key("data") {
        Ok(WorkloadProfileSpec { inference_perf: Some(doc), benchmark_serving: None })
    } else {
        Ok(WorkloadProfileSpec { inference_perf: None, benchmark_serving: Some(doc) })
    }
}

/// Expands `spec.workload.profile` in place: the profile's workload, with the fields the scenario
/// gives next to it applied on top (a JSON merge patch; classes matched by name). Returns what the
/// reader ignored or approximated; a spec without a profile is left as it is.
pub fn expand(spec: &mut ScenarioSpec) -> Result<Vec<String>, InvalidInput> {
    let Some(profile) = spec.workload.profile.take() else { return Ok(Vec::new()) };
    let imported = import(&profile)?;
    let ser = |w: &WorkloadSpec| serde_json::to_value(w).unwrap_or(Value::Null);
    let mut base = ser(&imported.workload);
    let mut overlay = ser(&spec.workload);
    let own_classes = overlay.as_object_mut().and_then(|o| o.remove("classes")).unwrap_or(Value::Null);
    merge_patch(&mut base, &overlay);
    if let (Some(list), Value::Array(own)) =
        (base.get_mut("classes").and_then(Value::as_array_mut), own_classes)
    {
        for c in own {
            let name = c.get("name").cloned();
            match list.iter_mut().find(|b| b.get("name") == name.as_ref()) {
                Some(b) => merge_patch(b, &c),
                None => list.push(c),
            }
        }
    }
    spec.workload = serde_json::from_value(base).map_err(|e| {
        InvalidInput::new(
            "spec.workload",
            format!("the profile and the fields beside it do not combine: {e}"),
            "fix the workload fields",
        )
    })?;
    Ok(imported.warnings)
}

/// The keys of a mapping section, checked against the known ones: unknown keys become warnings
/// naming their path.
pub(crate) fn check_keys(
    section: &Map<String, Value>,
    path: &str,
    known: &[&str],
    warnings: &mut Vec<String>,
) {
    for k in section.keys() {
        if !known.contains(&k.as_str()) {
            let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            warnings.push(format!("workload profile: unknown key {at} ignored"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blis_sim::scenario::ScenarioSpec;
    use blis_sim::workload::{ArrivalProcess, ClientSpec, LengthDist, PromptOrder};

    #[test]
    fn scenario_fields_apply_on_top_of_the_profile() {
        let mut spec: ScenarioSpec = serde_yaml::from_str(
            r#"
model: {name: qwen3-32b}
hardware: {gpu: H100-SXM-80GB, tensorParallelism: 2}
workload:
  profile:
    benchmarkServing: "--random-input-len 800 --random-output-len 20 --request-rate 4 --num-prompts 50"
  client: {timeoutSeconds: 60}
  classes:
  - name: random
    slo: {ttftMs: 500}
  - name: extra
    inputTokens: {distribution: fixed, value: 5}
    outputTokens: {distribution: fixed, value: 5}
"#,
        )
        .unwrap();
        expand(&mut spec).unwrap();
        let w = &spec.workload;
        assert!(w.profile.is_none());
        assert_eq!(w.max_requests, Some(50));
        assert_eq!(w.client.as_ref().and_then(|c| c.timeout_seconds), Some(60.0));
        assert_eq!(w.classes.len(), 2);
        assert_eq!(w.classes[0].slo.as_ref().and_then(|s| s.ttft_ms), Some(500.0), "patched by name");
        assert!(w.classes[0].input_tokens.is_some(), "the profile's lengths stay");
        blis_sim::workload::validate(w).unwrap();
    }

    fn fixture(name: &str) -> String {
        let path = format!("{}/../../tests/fixtures/profiles/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_written_inference_perf_file_imports_stage_by_stage() {
        let p = from_file_text(&fixture("inference-perf-ladder.yaml"), "ladder.yaml").unwrap();
        let got = import(&p).unwrap();
        let w = &got.workload;
        let a = w.arrival.as_ref().unwrap();
        assert_eq!(a.process, ArrivalProcess::PoissonPerSecond);
        let stages = a.stages.as_ref().unwrap();
        let sizes: Vec<_> = stages.iter().map(|s| s.requests).collect();
        assert_eq!(sizes, [Some(24), Some(10), Some(32)], "int(rate x duration) per stage");
        let rates: Vec<f64> = stages.iter().map(|s| s.rate_per_second).collect();
        assert_eq!(rates, [4.0, 2.0, 8.0]);
        let b = a.between_stages.as_ref().unwrap();
        assert!(b.drain);
        assert_eq!(b.pause_seconds, Some(6.0), "interval 5 s + the timer's 1 s start");
        assert_eq!(
            w.client,
            Some(ClientSpec { max_in_flight: Some(32), timeout_seconds: Some(120.0) }),
            "2 workers x 16 in flight"
        );
        let c = &w.classes[0];
        let pre = c.prefix.as_ref().unwrap();
        assert_eq!((pre.groups, pre.tokens, pre.questions_per_group), (4, 512, Some(3)));
        assert_eq!(pre.order, Some(PromptOrder::Cycle));
        assert_eq!(c.input_tokens, Some(LengthDist::Fixed { value: 128.0 }));
        assert_eq!(c.output_tokens, Some(LengthDist::Fixed { value: 64.0 }));
        assert!(got.warnings.iter().any(|x| x.contains("load.ramp_up")), "{:?}", got.warnings);
        assert!(!got.warnings.iter().any(|x| x.contains("num_workers")), "the worker count is given");
        blis_sim::workload::validate(w).unwrap();
    }

    #[test]
    fn a_written_benchmark_serving_file_imports_its_parameters() {
        let p = from_file_text(&fixture("benchmark-serving.json"), "bs.json").unwrap();
        assert!(p.benchmark_serving.is_some());
        let got = import(&p).unwrap();
        let w = &got.workload;
        assert_eq!(w.max_requests, Some(36));
        let a = w.arrival.as_ref().unwrap();
        assert_eq!((a.process, a.rate_per_second), (ArrivalProcess::Gamma, Some(5.0)));
        assert!((a.cv.unwrap() - 0.5).abs() < 1e-12, "burstiness 4 -> gaps with cv 1/2");
        assert_eq!(w.client.as_ref().and_then(|c| c.max_in_flight), Some(6));
        assert_eq!(w.classes[0].input_tokens, Some(LengthDist::Fixed { value: 600.0 }));
        assert_eq!(w.classes[0].output_tokens, Some(LengthDist::Fixed { value: 40.0 }));
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
        blis_sim::workload::validate(w).unwrap();
    }

    #[test]
    fn errors_inside_a_profile_name_the_scenario_field() {
        let bad = WorkloadProfileSpec {
            inference_perf: Some(Value::from(
                "load: {type: poisson, stages: [{rate: 0, duration: 5}]}\ndata: {type: random}",
            )),
            benchmark_serving: None,
        };
        let e = import(&bad).unwrap_err();
        assert_eq!(e.field, "spec.workload.profile.inferencePerf.load.stages[0].rate");
        let both =
            WorkloadProfileSpec { inference_perf: Some(Value::Null), benchmark_serving: Some(Value::Null) };
        assert_eq!(import(&both).unwrap_err().field, FIELD);
    }

    #[test]
    fn file_format_is_told_by_its_keys() {
        let ip = from_file_text("load: {type: poisson}\ndata: {type: random}\n", "f").unwrap();
        assert!(ip.inference_perf.is_some() && ip.benchmark_serving.is_none());
        let bs = from_file_text(r#"{"request_rate": 3.6, "num_prompts": 200}"#, "f").unwrap();
        assert!(bs.benchmark_serving.is_some());
        assert_eq!(from_file_text("- 1\n", "f").unwrap_err().field, "f");
    }
}
