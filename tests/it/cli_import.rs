//! `blis run` on folders of real-shaped llm-d manifests (references resolved from the other
//! documents) and `blis compare` over candidates.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use crate::common;

use common::blis;

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A copy of an example folder with its scenario changed by `edit`; removed when the returned guard
/// is dropped (also on a panic).
fn variant(example: &str, tag: &str, edit: impl Fn(String) -> String) -> TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(example);
    let dir = crate::common::temp_dir(&format!("blis-cli-import-{tag}-"));
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap();
        std::fs::write(dir.path().join(name), if name == "scenario.yaml" { edit(text) } else { text })
            .unwrap();
    }
    dir
}

#[test]
fn every_llm_d_example_folder_runs_from_its_manifests() {
    for (dir, gpus, pools) in [
        ("examples/llm-d/inference-scheduling/", 2, 1),
        ("examples/llm-d/pd-disaggregation/", 4, 2),
        ("examples/llm-d/wide-ep/", 16, 1),
    ] {
        let v: Value =
            serde_json::from_str(&ok(&blis(&["run", "--no-progress", "--output", "json", dir]))).unwrap();
        let s = &v["scenarios"][0];
        assert_eq!(s["cost"]["gpus"], gpus, "{dir}: {s:#}");
        assert_eq!(s["pools"].as_array().map(Vec::len), Some(pools), "{dir}");
        assert!(s["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| !w.as_str().unwrap().contains("GPUs per replica")));
    }
    // The P/D folder's decider split long prompts between the pools.
    let v: Value = serde_json::from_str(&ok(&blis(&[
        "run",
        "--no-progress",
        "--output",
        "json",
        "examples/llm-d/pd-disaggregation/",
    ])))
    .unwrap();
    assert!(v["scenarios"][0]["disaggregated"].as_u64().unwrap() > 0);
}

/// The plugin types an endpoint-picker config file lists, in order.
fn plugin_types(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    text.lines().filter_map(|l| l.trim().strip_prefix("- type:")).map(|t| t.trim().to_string()).collect()
}

/// The JSON `inputs` of each llm-d example folder show what its manifests say: every plugin of the
/// EPP config, the objectives' priorities, each pool's GPU and TP / DP / EP, and which manifest
/// each imported value came from.
#[test]
fn inputs_show_the_imported_router_objectives_and_parallelism() {
    for (dir, pools, objectives) in [
        (
            "examples/llm-d/inference-scheduling/",
            vec![("both", 2, 1, 1, 0)],
            vec![("chat", 10), ("batch", -10)],
        ),
        ("examples/llm-d/pd-disaggregation/", vec![("decode", 2, 1, 1, 0), ("prefill", 2, 1, 1, 0)], vec![]),
        // One LWS group of 2 pods x 8 GPUs: 16 DP ranks of TP1, experts sharded over all 16.
        // No InferenceObjective / InferenceModel among its manifests: chat keeps priority 0.
        ("examples/llm-d/wide-ep/", vec![("decode", 1, 1, 16, 16)], vec![("chat", 0)]),
    ] {
        let v: Value =
            serde_json::from_str(&ok(&blis(&["run", "--no-progress", "--output", "json", dir]))).unwrap();
        let i = &v["scenarios"][0]["inputs"];
        let got: Vec<(String, u64, u64, u64, u64)> = i["pools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let n = |k: &str| p[k].as_u64().unwrap();
                (
                    p["role"].as_str().unwrap().to_string(),
                    n("replicas"),
                    n("tensor_parallelism"),
                    n("data_parallelism"),
                    n("expert_parallelism"),
                )
            })
            .collect();
        let want: Vec<(String, u64, u64, u64, u64)> =
            pools.iter().map(|&(r, a, b, c, d)| (r.to_string(), a, b, c, d)).collect();
        assert_eq!(got, want, "{dir}: {i:#}");
        let types: Vec<&str> =
            i["router"]["plugins"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
        assert_eq!(types, plugin_types(&format!("{dir}epp-config.yaml")), "{dir}");
        assert_eq!(i["router"]["policy"], "endpointPicker", "{dir}");
        for (class, priority) in objectives {
            let o = i["objectives"].as_array().unwrap().iter().find(|o| o["class"] == class);
            assert_eq!(o.map(|o| o["priority"].as_i64().unwrap()), Some(priority), "{dir}: {class}");
        }
        let src = |k: &str| i["sources"][k].as_str().unwrap_or_default().to_string();
        let said = if dir.contains("inference-scheduling") { "manifest: " } else { "default: priority 0" };
        assert!(src("objectives").starts_with(said), "{dir}: sources.objectives = {:?}", src("objectives"));
        for k in ["model", "pools[0].replicas", "pools[0].tensor_parallelism", "router"] {
            assert!(src(k).starts_with("manifest: "), "{dir}: sources.{k} = {:?}", src(k));
        }
    }
}

#[test]
fn missing_reference_is_invalid_input() {
    let dir = variant("examples/llm-d/inference-scheduling", "missing", |s| {
        s.replace("inferencePoolRef: {name: llama-8b}", "inferencePoolRef: {name: nowhere}")
    });
    let o = blis(&["run", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("spec.import.inferencePoolRef.name") && err.contains("nowhere"), "{err}");
}

#[test]
fn compare_marks_the_better_candidate_per_column() {
    let more = variant("examples/llm-d/inference-scheduling", "more", |s| {
        s.replace("name: inference-scheduling", "name: four-replicas").replace(
            "    endpointPickerConfigRef:",
            "    workloadRefs: [{name: llama-8b-decode, patch: {spec: {replicas: 4}}}]\n    endpointPickerConfigRef:",
        )
    });
    let args = ["examples/llm-d/inference-scheduling/", more.path().to_str().unwrap()];
    let json: Value =
        serde_json::from_str(&ok(&blis(&[&["compare", "--output", "json"][..], &args].concat()))).unwrap();
    let rows = json["candidates"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let cell = |r: usize, col: &str| {
        rows[r]["cells"].as_array().unwrap().iter().find(|c| c["column"] == col).unwrap().clone()
    };
    assert_eq!(
        (cell(0, "GPUs")["value"].as_f64(), cell(1, "GPUs")["value"].as_f64()),
        (Some(2.0), Some(4.0))
    );
    assert!(cell(0, "$/h")["best"].as_bool().unwrap() && !cell(1, "$/h")["best"].as_bool().unwrap());
    assert!(cell(1, "TTFT p90 ms")["best"].as_bool().unwrap(), "twice the replicas has the lower TTFT");
    let table = ok(&blis(&[&["compare"][..], &args].concat()));
    assert!(
        table.contains("inference-scheduling") && table.contains("four-replicas") && table.contains('*'),
        "{table}"
    );
    let md = ok(&blis(&[&["compare", "--output", "markdown"][..], &args].concat()));
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines.len(), 4, "{md}");
    assert!(lines[1].starts_with("|---|"), "{md}");
    let pipes = lines[0].matches('|').count();
    assert!(lines.iter().all(|l| l.matches('|').count() == pipes) && md.contains("**"), "{md}");
}

/// A pool, its model server and its EPP config, with a plugin type, TP argument and node selector
/// put in.
fn folder_objects(scorer: &str, tp: u32, gpu_product: &str) -> String {
    let pod = format!("      nodeSelector: {{nvidia.com/gpu.product: {gpu_product}}}\n");
    let deployment = common::vllm_deployment(tp, &pod, "vllm/vllm-openai:v0.23.0", "", "");
    format!(
        r#"apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {{name: p}}
spec:
  targetPorts: [{{number: 8000}}]
  selector: {{matchLabels: {{app: m}}}}
  endpointPickerRef: {{name: p-epp}}
---
{deployment}---
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: p-epp}}
data:
  config.yaml: |
    apiVersion: llm-d.ai/v1alpha1
    kind: EndpointPickerConfig
    plugins:
    - type: {scorer}
    - type: max-score-picker
    schedulingProfiles:
    - name: default
      plugins:
      - pluginRef: {scorer}
      - pluginRef: max-score-picker
"#
    )
}

/// Bad input in a folder of manifests is refused as the real system would refuse it (exit 2), in
/// one line naming the field, the file that holds it and the fix.
#[test]
fn bad_manifests_are_one_line_naming_the_field_the_file_and_the_fix() {
    let workload = "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata: {name: w}\nspec:\n  workload:\n    maxRequests: 10\n    arrival: {process: poisson, ratePerSecond: 2}\n    classes: [{name: chat, inputTokens: {distribution: fixed, value: 50}, outputTokens: {distribution: fixed, value: 5}}]\n";
    let tmp = crate::common::temp_dir("blis-bad-manifests-");
    let base = tmp.path();
    let good = folder_objects("queue-scorer", 2, "NVIDIA-H100-80GB-HBM3");
    let cases: [(&str, String, &str, &[&str]); 4] = [
        // The EPP refuses an unregistered plugin type; the CLI names the ConfigMap's file.
        (
            "typo",
            folder_objects("queue-scorrer", 2, "NVIDIA-H100-80GB-HBM3"),
            "objects.yaml",
            &["plugins[0].type", "'queue-scorrer' is not registered", "did you mean 'queue-scorer'"],
        ),
        // vLLM would not start TP 4 on a pod with 2 GPUs.
        (
            "tp",
            folder_objects("queue-scorer", 4, "NVIDIA-H100-80GB-HBM3"),
            "objects.yaml",
            &[
                "Deployment m in",
                "needs 4 GPUs per pod, the container requests 2",
                "allowParallelismMismatch",
            ],
        ),
        // A GPU label value no profile matches.
        (
            "gpu",
            folder_objects("queue-scorer", 2, "NVIDIA-Foo-9000"),
            "objects.yaml",
            &["nvidia.com/gpu.product", "\"NVIDIA-Foo-9000\"", "HardwareProfile"],
        ),
        // A Helm template given as a file to read.
        (
            "template",
            good.replace("name: m}", "name: {{ .Values.name }}}"),
            "objects.yaml",
            &["is a Helm template", "helm template"],
        ),
    ];
    for (tag, objects, file, words) in cases {
        let dir = base.join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), objects).unwrap();
        std::fs::write(dir.join("scenario.yaml"), workload).unwrap();
        let target = if tag == "template" { dir.join(file) } else { dir.clone() };
        let o = blis(&[
            "run",
            "--no-progress",
            target.to_str().unwrap(),
            dir.join("scenario.yaml").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
        assert_eq!(o.status.code(), Some(2), "{tag}: {err}");
        assert_eq!(err.lines().count(), 1, "{tag}: {err}");
        assert!(err.contains(&dir.join(file).display().to_string()), "{tag}: names the file: {err}");
        assert!(err.contains("; fix: "), "{tag}: {err}");
        for w in words {
            assert!(err.contains(w), "{tag}: {w:?} in {err}");
        }
    }
    // The same folder without the faults runs.
    let dir = base.join("good");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("objects.yaml"), good).unwrap();
    std::fs::write(dir.join("scenario.yaml"), workload).unwrap();
    ok(&blis(&["run", "--no-progress", dir.to_str().unwrap()]));
    tmp.close().unwrap();
}

/// A P/D deployment of llm-d's first releases: an EPP Deployment configured by environment variables
/// (image tag `tag`), two prefill pods and one decode pod, all `--enforce-eager` when `eager`.
fn env_pd_objects(tag: &str, eager: bool) -> String {
    let eager = if eager { ", --enforce-eager" } else { "" };
    format!(
        r#"apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {{name: pool}}
spec:
  selector: {{llm-d.ai/inferenceServing: "true"}}
  targetPortNumber: 8000
  extensionRef: {{name: pool-epp}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: pool-epp}}
spec:
  selector: {{matchLabels: {{app: epp}}}}
  template:
    metadata: {{labels: {{app: epp}}}}
    spec:
      containers:
      - name: epp
        image: quay.io/llm-d/llm-d-inference-scheduler:{tag}
        args: [--poolName, pool]
        env:
        - {{name: PD_ENABLED, value: "true"}}
        - {{name: PD_PROMPT_LEN_THRESHOLD, value: "10"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: prefill}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: prefill}}}}
  template:
    metadata: {{labels: {{app: prefill, llm-d.ai/inferenceServing: "true", llm-d.ai/role: prefill}}}}
    spec:
      nodeSelector: {{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}}
      containers:
      - name: vllm
        image: vllm/vllm-openai:v0.8.5
        args: [--model, meta-llama/Llama-3.1-8B-Instruct, --port, "8000"{eager}]
        resources: {{limits: {{nvidia.com/gpu: 1}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: decode
  labels: {{app: decode, llm-d.ai/inferenceServing: "true", llm-d.ai/role: decode}}
spec:
  nodeSelector: {{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}}
  containers:
  - name: vllm
    image: vllm/vllm-openai:v0.8.5
    args: [--model, meta-llama/Llama-3.1-8B-Instruct, --port, "8200"{eager}]
    resources: {{limits: {{nvidia.com/gpu: 1}}}}
"#
    )
}

/// Runs `objects` with a workload of `n` requests at `rate` per second; the scenario's JSON.
fn run_env_pd(tag: &str, objects: String, n: u32, rate: f64) -> Value {
    let tmp = crate::common::temp_dir(&format!("blis-env-pd-{tag}-"));
    let dir = tmp.path();
    std::fs::write(dir.join("objects.yaml"), objects).unwrap();
    std::fs::write(
        dir.join("scenario.yaml"),
        format!("apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata: {{name: w}}\nspec:\n  workload:\n    maxRequests: {n}\n    arrival: {{process: poisson, ratePerSecond: {rate}}}\n    classes: [{{name: chat, inputTokens: {{distribution: fixed, value: 1000}}, outputTokens: {{distribution: fixed, value: 50}}}}]\n"),
    )
    .unwrap();
    let out = ok(&blis(&["run", "--no-progress", dir.to_str().unwrap(), "--output", "json"]));
    tmp.close().unwrap();
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["scenarios"][0].clone()
}

fn routed(s: &Value, pool: &str) -> u64 {
    let p = s["pools"].as_array().unwrap().iter().find(|p| p["name"] == pool).unwrap();
    p["routed"].as_u64().unwrap()
}

/// EPP 0.0.1 ignores its P/D variables: each request goes whole to a pod drawn uniformly from the
/// pool (prefill pods included); 0.0.4 reads them and disaggregates every prompt of >= 10 characters.
#[test]
fn env_configured_epp_schedules_as_its_image_tag_does() {
    let n = 600u64;
    let s = run_env_pd("0.0.1", env_pd_objects("0.0.1", true), n as u32, 4.0);
    assert_eq!(s["requests"]["completed"], n, "every request completes");
    assert_eq!(s["disaggregated"], 0, "no request is split");
    let (d, p) = (routed(&s, "decode"), routed(&s, "prefill"));
    assert_eq!(d + p, n, "each request is routed once, to one pod");
    // Uniform over 3 pods: the decode pod's share is 1/3 (binomial sd 11.5; 4 sd either side).
    assert!((154..=246).contains(&d), "decode pod got {d} of {n}");
    let w = s["warnings"].as_array().unwrap();
    assert!(w.iter().any(|w| w.as_str().unwrap().contains("demo dual scheduler")), "{w:?}");

    let s = run_env_pd("0.0.4", env_pd_objects("0.0.4", true), n as u32, 4.0);
    assert_eq!(s["requests"]["completed"], n);
    assert_eq!((routed(&s, "decode"), routed(&s, "prefill"), s["disaggregated"].as_u64()), (n, n, Some(n)));
}

/// `--enforce-eager` lengthens every step by the GPU's measured launch cost (H100: 33 µs x 32 layers);
/// one request at a time, so each inter-token gap is one decode step.
#[test]
fn enforce_eager_adds_the_launch_cost_to_every_step() {
    let itl = |eager: bool| {
        let s = run_env_pd(if eager { "e" } else { "g" }, env_pd_objects("0.0.1", eager), 20, 0.05);
        s["itl_ms"]["mean"].as_f64().unwrap()
    };
    let (graphs, eager) = (itl(false), itl(true));
    assert!((eager - graphs - 1.056).abs() < 0.01, "eager {eager} ms vs graphs {graphs} ms");
}

/// A helmfile release of a local chart is rendered with `helm template` (here a stand-in named by
/// `BLIS_HELM`); its inline values reach helm as files, and those files are gone once the run ends.
#[cfg(unix)]
#[test]
fn inline_values_of_a_local_chart_reach_helm_and_are_removed() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = crate::common::temp_dir("blis-local-chart-");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("chart")).unwrap();
    std::fs::write(dir.join("chart/Chart.yaml"), "apiVersion: v2\nname: mine\nversion: 0.1.0\n").unwrap();
    std::fs::write(
        dir.join("helmfile.yaml"),
        "releases:\n- name: mine\n  chart: ./chart\n  values:\n  - {replicas: 2}\n",
    )
    .unwrap();
    std::fs::write(dir.join("objects.yaml"), folder_objects("queue-scorer", 2, "NVIDIA-H100-80GB-HBM3"))
        .unwrap();
    std::fs::write(
        dir.join("workload.yaml"),
        "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata: {name: w}\nspec:\n  workload:\n    maxRequests: 10\n    arrival: {process: poisson, ratePerSecond: 2}\n    classes: [{name: chat, inputTokens: {distribution: fixed, value: 50}, outputTokens: {distribution: fixed, value: 5}}]\n",
    )
    .unwrap();
    // The stand-in logs each values file it was given (and whether it held the inline values),
    // then prints the objects as the chart would render them.
    let log = dir.join("helm.log");
    let helm = dir.join("helm");
    std::fs::write(
        &helm,
        format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = -f ]; then shift; grep -q 'replicas: 2' \"$1\" && echo \"$1\" >> {log}; fi\n  shift\ndone\ncat {objects}\n",
            log = log.display(),
            objects = dir.join("objects.yaml").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_blis"))
        .args(["run", "--no-progress", "--output", "json"])
        .arg(dir.join("helmfile.yaml"))
        .arg(dir.join("workload.yaml"))
        .env("BLIS_HELM", &helm)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v["scenarios"][0]["cost"]["gpus"], 4, "{v:#}");
    let given = std::fs::read_to_string(&log).expect("helm was given the inline values as a file");
    let files: Vec<&str> = given.lines().collect();
    assert_eq!(files.len(), 1, "{given}");
    assert!(files.iter().all(|f| !Path::new(f).exists()), "left behind: {given}");
}
