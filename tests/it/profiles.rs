//! Workload profiles as benchmark users write them (`spec.workload.profile`, `blis run
//! --workload-profile`) and the vLLM defaults a release picks on a GPU when a deployment leaves the
//! batching knobs out.

use serde_json::Value;

use crate::common::{self, blis};

const LADDER: &str = "tests/fixtures/profiles/inference-perf-ladder.yaml";
const BENCHMARK_SERVING: &str = "tests/fixtures/profiles/benchmark-serving.json";

fn json_of(args: &[&str]) -> Value {
    let o = blis(args);
    assert!(o.status.success(), "blis {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON")
}

/// The quickstart's deployment under the workload profile `file`, as JSON.
fn quickstart_under(file: &str) -> Value {
    json_of(&[
        "run",
        "--no-progress",
        "--output",
        "json",
        "--workload-profile",
        file,
        "examples/quickstart.yaml",
    ])
}

/// One Llama-3.1-8B replica with the given GPU and `vllm:` section (flow style).
fn deployment(gpu: &str, vllm: &str) -> String {
    common::manifest(&format!(
        "  model: {{name: meta-llama/Llama-3.1-8B-Instruct}}\n  hardware: {{gpu: {gpu}}}\n  vllm: {vllm}\n{}",
        common::simple_workload(2.0, 10, 100, 10)
    ))
}

#[test]
fn vllm_defaults_follow_the_gpu_and_the_release() {
    let knobs = |gpu: &str, vllm: &str| {
        let r = common::resolve(&deployment(gpu, vllm));
        (r.vllm_version.to_string(), r.instance.max_num_seqs, r.instance.max_num_batched_tokens)
    };
    assert_eq!(knobs("H100-SXM-80GB", "{}"), ("0.23.0".into(), 1024, 8192), "current release on H100");
    assert_eq!(knobs("A100-SXM-80GB", "{}"), ("0.23.0".into(), 256, 2048), "A100 is excluded");
    assert_eq!(knobs("L40S-48GB", "{}"), ("0.23.0".into(), 256, 2048), "below 70 GiB");
    assert_eq!(knobs("A100-SXM-80GB", "{version: v0.8.5.post1}"), ("0.8.5".into(), 1024, 8192));
    assert_eq!(knobs("H100-SXM-80GB", "{version: 0.8.4}").1, 1024, "H100/H200 kept 1024 in 0.8.4");
    assert_eq!(knobs("A100-SXM-80GB", "{version: 0.8.4}").1, 256);
    assert_eq!(
        knobs("H100-SXM-80GB", "{maxNumSeqs: 64, maxNumBatchedTokens: 4096}"),
        ("0.23.0".into(), 64, 4096),
        "knobs the deployment sets win over the defaults"
    );
    let async_on = |v: &str| common::resolve(&deployment("H100-SXM-80GB", v)).instance.async_scheduling;
    assert!(async_on("{version: 0.19.1}") && !async_on("{version: 0.11.0}"));
    assert!(async_on("{version: 0.11.0, asyncScheduling: true}"));
    let (mut docs, _) =
        blis_import::manifest::parse_scenarios(&deployment("H100-SXM-80GB", "{version: latest}")).unwrap();
    let e = blis_import::resolve("t", &docs.remove(0).spec).err().expect("an unknown release is an error");
    assert!(e.field.ends_with("vllm.version"), "{e}");
}

#[test]
fn the_resolved_defaults_are_shown_in_the_inputs() {
    // The manifests name vllm/vllm-openai:v0.11.0 and set neither knob on the prefill pods.
    let v = json_of(&["run", "--no-progress", "--output", "json", "examples/llm-d/pd-disaggregation/"]);
    let inputs = &v["scenarios"][0]["inputs"];
    assert_eq!(inputs["vllm_version"], "0.11.0", "read from the image tag");
    assert_eq!(inputs["max_num_seqs"], 1024, "H100 default since vLLM 0.9");
    assert_eq!(inputs["async_scheduling"], false, "off by default before vLLM 0.14");
    let table = blis(&["run", "--no-progress", "examples/llm-d/pd-disaggregation/"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("vLLM 0.11.0: max_num_seqs 1024"));
}

#[test]
fn workload_profile_file_replaces_the_workload_stage_by_stage() {
    let v = quickstart_under(LADDER);
    let s = &v["scenarios"][0];
    let classes: Vec<&str> =
        s["classes"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(classes, ["shared-prefix"], "the quickstart's own classes are replaced");
    let stages = s["stages"].as_array().unwrap();
    let sent: Vec<u64> = stages.iter().map(|st| st["requests"]["generated"].as_u64().unwrap()).collect();
    assert_eq!(sent, [24, 10, 32], "int(rate x duration) requests per stage");
    for w in stages.windows(2) {
        let end = w[0]["start_s"].as_f64().unwrap() + w[0]["window_s"].as_f64().unwrap();
        assert!(
            w[1]["start_s"].as_f64().unwrap() >= end + 5.0,
            "a stage starts after the previous one drained plus the interval: {} vs {end}",
            w[1]["start_s"]
        );
    }
    assert_eq!(s["requests"]["completed"], 66);
    let warnings = s["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("load.ramp_up")), "{warnings:?}");
}

#[test]
fn benchmark_serving_parameters_set_count_burstiness_and_concurrency() {
    let v = quickstart_under(BENCHMARK_SERVING);
    let s = &v["scenarios"][0];
    assert_eq!(s["requests"]["generated"], 36);
    assert_eq!(s["requests"]["completed"], 36);
    assert_eq!(s["mean_input_tokens"], 600.0);
    assert_eq!(s["mean_output_tokens"], 40.0);
}

#[test]
fn a_bad_workload_profile_exits_2_naming_the_field() {
    let tmp = crate::common::temp_dir("blis-profiles-");
    let dir = tmp.path();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "load: {type: poisson, stages: [{rate: 3}]}\ndata: {type: random}\n").unwrap();
    let o = blis(&["run", "--workload-profile", bad.to_str().unwrap(), "examples/quickstart.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("spec.workload.profile.inferencePerf.load.stages[0].duration"), "{err}");
    let o = blis(&["run", "--workload-profile", "no/such/file.yaml", "examples/quickstart.yaml"]);
    assert_eq!(o.status.code(), Some(2));
}
