//! Every folder of `../shared/llm-d-manifests/`, imported whole as its README deploys it with only a
//! workload added: the JSON `inputs` (pools with TP / DP / EP, GPU, replicas, vLLM knobs and where
//! each came from, router plugins and weights, objectives, autoscaling) are compared field by field
//! with what the manifests say, and every warning is accounted for (what the twin does not model is
//! listed, nothing else). The expected values were written from reading the manifests.

use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::common::blis;

/// The shared folder, copied (so scenario files can be added beside it) under a fresh temp folder.
/// The gateway request-path cost every endpoint-picker stack carries in its inputs.
const GATEWAY: f64 = blis_sim::sim::router::GATEWAY_US_PER_PROMPT_TOKEN;

/// The copy is removed when the returned guard is dropped (also on a panic).
fn copy_of(folder: &str, tag: &str) -> TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/llm-d-manifests").join(folder);
    assert!(src.is_dir(), "{} is missing: the shared manifests are needed", src.display());
    let dst = crate::common::temp_dir(&format!("blis-shared-{tag}-"));
    copy_dir(&src, dst.path());
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

/// A scenario with a small chat workload and `extra` spec lines (YAML, two-space indented).
fn add_scenario(dir: &Path, extra: &str) {
    let text = format!(
        "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata: {{name: as-is}}\nspec:\n{extra}  workload:\n    maxRequests: 40\n    arrival: {{process: poisson, ratePerSecond: 4}}\n    classes:\n    - name: chat\n      inputTokens: {{distribution: fixed, value: 100}}\n      outputTokens: {{distribution: fixed, value: 10}}\n"
    );
    std::fs::write(dir.join("zz-scenario.yaml"), text).unwrap();
}

/// `blis run --output json` of the folder: the first scenario's inputs and warnings.
fn run(dir: &Path) -> (Value, Vec<String>) {
    let o = blis(&["run", "--no-progress", "--output", "json", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v["scenarios"][0];
    let w = s["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
    (s["inputs"].clone(), w)
}

/// The one-line error of a folder that must be refused (exit 2).
fn refused(dir: &Path) -> String {
    let o = blis(&["run", "--no-progress", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(o.status.code(), Some(2), "{}: {err}", dir.display());
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// Replaces what is derived from GPU memory (KV blocks; maxModelLen when no flag set it) by null
/// after checking it: blocks > 0, a derived maxModelLen = min(model context, KV capacity beside the
/// `window` sliding-window blocks a running sequence holds), the top-level copy equal to pool 0's,
/// and the prefix index sized by pool 0's blocks.
fn strip_derived(inputs: &mut Value, context: u64, window: u64) {
    let sources = inputs["sources"].clone();
    let pools = inputs["pools"].as_array_mut().unwrap();
    let mut first = None;
    for (i, p) in pools.iter_mut().enumerate() {
        let v = &mut p["vllm"];
        let kv = v["kv_blocks"].as_u64().unwrap();
        assert!(kv > 0, "pool {i}: {v}");
        let len = v["max_model_len"].as_u64().unwrap();
        let derived =
            sources[format!("pools[{i}].vllm.max_model_len")].as_str().unwrap().starts_with("derived");
        if derived {
            assert_eq!(len, context.min((kv - window) * v["block_size"].as_u64().unwrap()), "pool {i}: {v}");
            v["max_model_len"] = Value::Null;
        }
        v["kv_blocks"] = Value::Null;
        first.get_or_insert((kv, len, derived));
    }
    let (kv, len, derived) = first.unwrap();
    assert_eq!((inputs["kv_blocks"].as_u64(), inputs["max_model_len"].as_u64()), (Some(kv), Some(len)));
    inputs["kv_blocks"] = Value::Null;
    if derived {
        inputs["max_model_len"] = Value::Null;
    }
    if let Some(ix) = inputs["router"]["prefix_index"].as_str() {
        let ix = ix.replace(&format!(" {kv} blocks per server"), " KV blocks per server");
        inputs["router"]["prefix_index"] = json!(ix);
    }
}

/// vLLM knobs of a pool on a large GPU with vLLM's defaults (1024 sequences, 8192 tokens per step,
/// async scheduling, chunked prefill, prefix caching) and `block` tokens per block.
fn vllm(block: u64, max_model_len: Option<u64>) -> Value {
    json!({"async_scheduling": true, "block_size": block, "chunked_prefill": true, "cpu_offload_blocks": 0,
        "kv_blocks": null, "long_prefill_token_threshold": 0, "max_model_len": max_model_len,
        "max_num_batched_tokens": 8192, "max_num_seqs": 1024, "prefix_caching": true})
}

/// One pool of `replicas` x TP `tp` (DP 1, no EP).
fn pool(name: &str, role: &str, replicas: u64, tp: u64, gpu: &str, labels: Value, vllm: Value) -> Value {
    json!({"autoscaling": null, "data_parallelism": 1, "engines": replicas, "expert_parallelism": 0,
        "gpu": gpu, "labels": labels, "name": name, "replicas": replicas, "role": role,
        "tensor_parallelism": tp, "vllm": vllm})
}

/// The top-level (legacy) inputs: pool 0's, with the total replicas.
fn top(model: &str, pools: Vec<Value>, objectives: Value, router: Value, version: &str) -> Value {
    let p0 = pools[0].clone();
    let v = &p0["vllm"];
    let replicas: u64 = pools.iter().map(|p| p["replicas"].as_u64().unwrap()).sum();
    json!({"async_scheduling": v["async_scheduling"], "block_size": v["block_size"],
        "chunked_prefill": v["chunked_prefill"], "gpu": p0["gpu"], "kv_blocks": null,
        "latency_model": "calibrated", "long_prefill_token_threshold": 0, "max_model_len": v["max_model_len"],
        "max_num_batched_tokens": v["max_num_batched_tokens"], "max_num_seqs": v["max_num_seqs"],
        "model": model, "objectives": objectives, "pools": pools, "prefix_caching": v["prefix_caching"],
        "replicas": replicas, "router": router, "tensor_parallelism": p0["tensor_parallelism"],
        "vllm_version": version})
}

fn plugins(list: &[(&str, &str, &str)]) -> Value {
    list.iter().map(|(name, ty, t)| json!({"name": name, "treatment": t, "type": ty})).collect()
}

fn scorers(list: &[(&str, f64)]) -> Value {
    list.iter().map(|(s, w)| json!({"scorer": s, "weight": w})).collect()
}

const DEFAULT_DETECTOR: &str =
    "utilization-detector (queueDepthThreshold 5, kvCacheUtilThreshold 0.8, headroom 0)";
const ASSUMED_H100: &str = "default: H100-SXM-80GB (no GPU named by the manifests)";

/// Where each input of pool `i` came from: `server` is the manifest that runs it; `set` the values
/// read from it (key under `pools[i].`, how); the GPU and every other knob are defaults.
fn pool_sources(out: &mut Value, i: usize, server: &str, gpu: &str, set: &[(&str, &str)]) {
    let mut m = serde_json::Map::new();
    for k in [
        "data_parallelism",
        "vllm.async_scheduling",
        "vllm.block_size",
        "vllm.chunked_prefill",
        "vllm.cpu_offload_gib",
        "vllm.enforce_eager",
        "vllm.gpu_memory_utilization",
        "vllm.kv_cache_dtype",
        "vllm.long_prefill_token_threshold",
        "vllm.max_num_batched_tokens",
        "vllm.max_num_seqs",
        "vllm.prefix_caching",
    ] {
        m.insert(k.to_string(), json!("default"));
    }
    m.insert("gpu".into(), json!(gpu));
    m.insert("replicas".into(), json!(format!("manifest: {server} (replicas)")));
    m.insert("vllm.kv_blocks".into(), json!("derived from GPU memory"));
    m.insert("vllm.max_model_len".into(), json!("derived from the model's context and the KV capacity"));
    for (k, how) in set {
        let v =
            if how.starts_with("default") { how.to_string() } else { format!("manifest: {server} ({how})") };
        m.insert(k.to_string(), json!(v));
    }
    for (k, v) in m {
        out[format!("pools[{i}].{k}")] = v;
    }
}

/// Every warning matches one of `expected` (substring, how many times), and each pattern matches
/// exactly that many warnings: nothing unexplained, nothing the manifests set left unsaid.
fn assert_warnings(folder: &str, got: &[String], expected: &[(&str, usize)]) {
    for w in got {
        assert!(
            expected.iter().any(|(p, _)| w.contains(p)),
            "{folder}: unexpected warning: {w}\nall: {got:#?}"
        );
    }
    for (p, n) in expected {
        let hits = got.iter().filter(|w| w.contains(p)).count();
        assert_eq!(hits, *n, "{folder}: warning {p:?} seen {hits} times, want {n}\nall: {got:#?}");
    }
}

fn assert_inputs(folder: &str, mut got: Value, context: (u64, u64), mut want: Value, sources: Value) {
    strip_derived(&mut got, context.0, context.1);
    want["sources"] = sources;
    for k in want.as_object().unwrap().keys() {
        assert_eq!(got[k], want[k], "{folder}: inputs.{k}");
    }
    assert_eq!(got, want, "{folder}: inputs");
}

/// GAIE v0.5.1 raw manifests: two Deployments of the same name (GPU vLLM and the simulator); the
/// later file (the simulator) replaces the first as `kubectl apply -f` of the folder would, and both
/// facts are said. The EPP's decision-tree filters are named as not modelled; the InferenceModel of
/// the served model (Critical) gives every request priority 10; the two other models' are named.
#[test]
fn gaie_v0_5_1_raw_inference_scheduling() {
    let folder = "2025-07-gaie-v0.5.1-raw-inference-scheduling";
    let dir = copy_of(folder, "gaie");
    add_scenario(dir.path(), "");
    let (inputs, warnings) = run(dir.path());
    let server = "Deployment vllm-llama3-8b-instruct";
    let router = json!({"decider": null, "flow_control": "off", "gateway_us_per_prompt_token": GATEWAY, "handler": "single",
        "plugins": plugins(&[
            ("low-queue-filter", "low-queue-filter", "not modelled"),
            ("lora-affinity-filter", "lora-affinity-filter", "not modelled"),
            ("least-queue-filter", "least-queue-filter", "not modelled"),
            ("least-kv-cache-filter", "least-kv-cache-filter", "not modelled"),
            ("low-latency-filter", "decision-tree-filter", "not modelled"),
            ("random-picker", "random-picker", "modelled"),
            ("single-profile-handler", "single-profile-handler", "modelled"),
        ]),
        "policy": "endpointPicker", "prefix_index": null,
        "profiles": [{"filters": ["neutral (not modelled)"], "name": "default", "picker": "random-picker", "scorers": []}],
        "refresh_interval_ms": 50.0, "saturation_detector": DEFAULT_DETECTOR});
    let pools = vec![pool(
        "default",
        "both",
        3,
        1,
        "H100-SXM-80GB",
        json!({"llm-d.ai/role": "both"}),
        vllm(16, None),
    )];
    let want = top(
        "meta-llama/Llama-3.1-8B-Instruct",
        pools,
        json!([{"class": "chat", "priority": 10}]),
        router,
        "0.23.0",
    );
    let mut sources = json!({
        "model": format!("manifest: {server} (vllm serve)"),
        "objectives": "manifest: InferenceObjectives / InferenceModels of the pool",
        "router": "manifest: endpoint picker vllm-llama3-8b-instruct-epp of InferencePool vllm-llama3-8b-instruct"});
    pool_sources(
        &mut sources,
        0,
        server,
        ASSUMED_H100,
        &[("tensor_parallelism", "default: 1 (the pod requests no GPU)")],
    );
    assert_inputs(folder, inputs, (131_072, 0), want, sources);
    assert_warnings(
        folder,
        &warnings,
        &[
            ("Deployment vllm-llama3-8b-instruct is defined in", 1),
            ("runs llm-d-inference-sim", 1),
            ("KV blocks derived from memory", 1),
            ("\"low-queue-filter\" of type \"low-queue-filter\" is not modelled", 1),
            ("\"lora-affinity-filter\" of type \"lora-affinity-filter\" is not modelled", 1),
            ("\"least-queue-filter\" of type \"least-queue-filter\" is not modelled", 1),
            ("\"least-kv-cache-filter\" of type \"least-kv-cache-filter\" is not modelled", 1),
            ("\"low-latency-filter\" of type \"decision-tree-filter\" is not modelled", 1),
            ("--max-loras is not modelled", 1),
            ("--lora-modules is not modelled", 1),
            ("objective \"food-review\" matches no workload class", 1),
            ("objective \"Qwen/Qwen2.5-1.5B-Instruct\" matches no workload class", 1),
            ("no GPU is named", 1),
        ],
    );
}

/// llm-d v0.2 P/D (helmfile apply): GAIE + modelservice releases; the chart's own example and
/// template under sub-folders are not deployed by the helmfile and are named as left out. The
/// manifests name no GPU; the README names the one it was validated on (H200), which is simulated
/// with a warning, and the image llm-d:v0.2.0 brings vLLM 0.10.0. Without the README, 70B FP8 at TP1
/// does not fit an assumed H100 with 32000 tokens: refused, saying the GPU was assumed.
#[test]
fn v0_2_pd_disaggregation() {
    let folder = "2025-07-v0.2-pd-disaggregation";
    let dir = copy_of(folder, "pd02");
    // No manifest names a GPU; the README's "validated on an 8xH200 cluster" does: imported as is.
    add_scenario(dir.path(), "");
    let (inputs, warnings) = run(dir.path());
    let labels = |role: &str| json!({"llm-d.ai/inferenceServing": "true", "llm-d.ai/model": "ms-pd-llm-d-modelservice", "llm-d.ai/role": role});
    // vLLM 0.10.0 (the image's release) schedules synchronously.
    let vllm = |block, len| {
        let mut v = vllm(block, len);
        v["async_scheduling"] = json!(false);
        v
    };
    let pools = vec![
        pool(
            "ms-pd-llm-d-modelservice-decode",
            "decode",
            1,
            4,
            "H200-SXM-141GB",
            labels("decode"),
            vllm(128, Some(32000)),
        ),
        pool(
            "ms-pd-llm-d-modelservice-prefill",
            "prefill",
            4,
            1,
            "H200-SXM-141GB",
            labels("prefill"),
            vllm(128, Some(32000)),
        ),
    ];
    let router = json!({"decider": "always", "flow_control": "off", "gateway_us_per_prompt_token": GATEWAY,
        "handler": "disagg (decode \"decode\", prefill \"prefill\")",
        "plugins": plugins(&[
            ("prefill-header-handler", "prefill-header-handler", "inert"),
            ("prefill-filter", "prefill-filter", "modelled"),
            ("decode-filter", "decode-filter", "modelled"),
            ("max-score-picker", "max-score-picker", "modelled"),
            ("queue-scorer", "queue-scorer", "modelled"),
            ("pd-profile-handler", "pd-profile-handler", "modelled"),
        ]),
        "policy": "endpointPicker", "prefix_index": null,
        "profiles": [
            {"filters": ["prefill-filter"], "name": "prefill", "picker": "max-score-picker", "scorers": scorers(&[("queue-scorer", 1.0)])},
            {"filters": ["decode-filter"], "name": "decode", "picker": "max-score-picker", "scorers": scorers(&[("queue-scorer", 1.0)])},
        ],
        "refresh_interval_ms": 50.0, "saturation_detector": DEFAULT_DETECTOR});
    let want = top(
        "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
        pools,
        json!([{"class": "chat", "priority": 10}]),
        router,
        "0.10.0",
    );
    let (decode, prefill) =
        ("Deployment ms-pd-llm-d-modelservice-decode", "Deployment ms-pd-llm-d-modelservice-prefill");
    let mut sources = json!({
        "model": format!("manifest: {decode} (vllm serve)"),
        "objectives": "manifest: InferenceObjectives / InferenceModels of the pool",
        "router": "manifest: endpoint picker gaie-pd-epp of InferencePool gaie-pd"});
    let read = |tp: &'static str| {
        [
            ("tensor_parallelism", tp),
            ("vllm.block_size", "--block-size"),
            ("vllm.max_model_len", "--max-model-len"),
        ]
    };
    let readme = format!("README: {} names \"8xH200\"", dir.path().join("README.md").display());
    pool_sources(&mut sources, 0, decode, &readme, &read("--tensor-parallel-size"));
    pool_sources(&mut sources, 1, prefill, &readme, &read("GPUs per pod / DP-local"));
    assert_inputs(folder, inputs, (131_072, 0), want, sources);
    assert_warnings(
        folder,
        &warnings,
        &[
            ("read as meta-llama/Llama-3.3-70B-Instruct with 1 bytes per weight", 1),
            ("KV blocks derived from memory", 3),
            ("no measurements on H200-SXM-141GB", 3),
            ("\"prefill-header-handler\" is deprecated", 1),
            ("\"pd-profile-handler\" is deprecated", 1),
            ("chart-templates/gaie-inferencepool-v0.5.1/inferencepool.yaml is not deployed by", 1),
            ("modelservice-example/output-pd.yaml is not deployed by", 1),
            ("modelservice-example/values-pd.yaml is not deployed by", 1),
            ("image ghcr.io/llm-d/llm-d:v0.2.0 bundles vLLM 0.10.0 (llm-d/llm-d: Dockerfile.ubi", 2),
            ("README.md names one GPU, \"8xH200\": simulating H200-SXM-141GB", 1),
        ],
    );
    std::fs::remove_file(dir.path().join("README.md")).unwrap();
    let err = refused(dir.path());
    assert!(
        err.contains("spec.pools[1].vllm.maxModelLen")
            && err.contains("H100-SXM-80GB")
            && err.contains("set spec.hardware.gpu"),
        "{err}"
    );
}

/// llm-d v0.5 precise prefix cache (helmfile.yaml.gotmpl): the default environment (no
/// DISAGGREGATED_TOKENIZATION) takes `gaie-kv-events/values.yaml`; the other variant is named and
/// left out. modelservice v0.4.5: 8 x TP2 Qwen3-32B with vLLM 0.14.1, block 64, 0.95 of GPU memory.
#[test]
fn v0_5_precise_prefix_cache_aware() {
    let folder = "2026-02-v0.5-precise-prefix-cache-aware";
    let dir = copy_of(folder, "precise");
    add_scenario(dir.path(), "");
    let (inputs, warnings) = run(dir.path());
    let server = "Deployment ms-kv-events-llm-d-modelservice-decode";
    let router = json!({"decider": null, "flow_control": "off", "gateway_us_per_prompt_token": GATEWAY, "handler": "single",
        "plugins": plugins(&[
            ("single-profile-handler", "single-profile-handler", "modelled"),
            ("precise-prefix-cache-scorer", "precise-prefix-cache-scorer", "modelled"),
            ("kv-cache-utilization-scorer", "kv-cache-utilization-scorer", "modelled"),
            ("queue-scorer", "queue-scorer", "modelled"),
            ("max-score-picker", "max-score-picker", "modelled"),
        ]),
        "policy": "endpointPicker", "prefix_index": null,
        "profiles": [{"filters": [], "name": "default", "picker": "max-score-picker", "scorers": scorers(&[
            ("prefix-cache-scorer (precise, KV events)", 3.0), ("kv-cache-utilization-scorer", 2.0), ("queue-scorer", 2.0)])}],
        "refresh_interval_ms": 50.0, "saturation_detector": DEFAULT_DETECTOR});
    let pools = vec![pool(
        "default",
        "both",
        8,
        2,
        "H100-SXM-80GB",
        json!({"llm-d.ai/role": "both"}),
        vllm(64, None),
    )];
    let want = top("Qwen/Qwen3-32B", pools, json!([{"class": "chat", "priority": 0}]), router, "0.14.1");
    let mut sources = json!({
        "model": format!("manifest: {server} (vllm serve)"),
        "objectives": "default: priority 0 (no InferenceObjective or InferenceModel names InferencePool gaie-kv-events)",
        "router": "manifest: endpoint picker gaie-kv-events-epp of InferencePool gaie-kv-events"});
    pool_sources(
        &mut sources,
        0,
        server,
        ASSUMED_H100,
        &[
            ("tensor_parallelism", "--tensor-parallel-size"),
            ("vllm.block_size", "--block-size"),
            ("vllm.gpu_memory_utilization", "--gpu-memory-utilization"),
        ],
    );
    assert_inputs(folder, inputs, (40_960, 0), want, sources);
    assert_warnings(
        folder,
        &warnings,
        &[
            ("KV blocks derived from memory", 1),
            ("environment variables [\"RELEASE_NAME_POSTFIX\", \"DISAGGREGATED_TOKENIZATION\"] are read as unset", 1),
            ("gaie-kv-events-disaggregated-tokenization/values.yaml is named by", 1),
            ("chart-templates/gaie-inferencepool-v1.3.0/inferencepool.yaml is not deployed by", 1),
            ("no GPU is named", 1),
        ],
    );
    // The other variant, chosen as `DISAGGREGATED_TOKENIZATION=true helmfile apply` would: the same
    // release (one pool), and the notes of the default reading are gone.
    add_scenario(
        dir.path(),
        "  import: {helmfile: helmfile.yaml.gotmpl, helmfileEnv: {DISAGGREGATED_TOKENIZATION: \"true\"}}\n",
    );
    let (inputs, warnings) = run(dir.path());
    assert_eq!(inputs["pools"].as_array().map(Vec::len), Some(1), "{inputs:#}");
    assert_eq!(
        inputs["router"]["profiles"][0]["scorers"][0]["scorer"],
        "prefix-cache-scorer (precise, KV events)"
    );
    assert_warnings(
        folder,
        &warnings,
        &[
            ("KV blocks derived from memory", 1),
            ("environment variables [\"RELEASE_NAME_POSTFIX\"] are read as unset", 1),
            ("chart-templates/gaie-inferencepool-v1.3.0/inferencepool.yaml is not deployed by", 1),
            ("no GPU is named", 1),
        ],
    );
}

/// llm-d-router v0.9 flow control: the folder holds the router and objectives but no model server
/// (its README renders optimized-baseline's with sed): refused, naming the pool's selector. With the
/// model server the README deploys (a fixture), the flow-control bands, TTL, queue bound and the
/// concurrency detector are read; the InferenceObjectives name `default-pool`, not the pool deployed,
/// so they apply to nothing, which is said.
#[test]
fn v0_9_flow_control() {
    let folder = "2026-06-v0.9-flow-control";
    let dir = copy_of(folder, "flow");
    add_scenario(dir.path(), "");
    let err = refused(dir.path());
    assert!(
        err.contains("InferencePool \"flow-control\" selects no Deployment")
            && err.contains("llm-d.ai/guide"),
        "{err}"
    );
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm-d/flow-control-model-server.yaml");
    std::fs::copy(fixture, dir.path().join("model-server.yaml")).unwrap();
    let (inputs, warnings) = run(dir.path());
    let server = "Deployment flow-control-decode";
    let router = json!({"decider": null,
        "flow_control": "on: queue TTL 60000 ms, max 1000 requests queued, bands [(100, 500), (0, 200), (-10, 50)] (priority, max requests), others 5000",
        "gateway_us_per_prompt_token": GATEWAY,
        "handler": "single",
        "plugins": plugins(&[
            ("queue-scorer", "queue-scorer", "modelled"),
            ("kv-cache-utilization-scorer", "kv-cache-utilization-scorer", "modelled"),
            ("prefix-cache-scorer", "prefix-cache-scorer", "modelled"),
            ("round-robin-fairness-policy", "round-robin-fairness-policy", "not modelled"),
            ("fcfs-ordering-policy", "fcfs-ordering-policy", "inert"),
            ("concurrency-detector", "concurrency-detector", "modelled"),
        ]),
        "policy": "endpointPicker",
        "prefix_index": "16 tokens per block, KV blocks per server (LRU), 8192 blocks matched at most, auto-tuned from the servers' KV cache",
        "profiles": [{"filters": [], "name": "default", "picker": "max-score-picker", "scorers": scorers(&[
            ("queue-scorer", 2.0), ("kv-cache-utilization-scorer", 2.0), ("prefix-cache-scorer (approximate index)", 3.0)])}],
        "refresh_interval_ms": 50.0, "saturation_detector": "concurrency-detector (maxConcurrency 132, headroom 0)"});
    let pools = vec![pool(
        "default",
        "both",
        8,
        2,
        "H100-SXM-80GB",
        json!({"llm-d.ai/role": "both"}),
        vllm(16, None),
    )];
    let want = top("Qwen/Qwen3-32B", pools, json!([{"class": "chat", "priority": 0}]), router, "0.23.0");
    let mut sources = json!({
        "model": format!("manifest: {server} (vllm serve)"),
        "objectives": "default: priority 0 (no InferenceObjective or InferenceModel names InferencePool flow-control)",
        "router": "manifest: endpoint picker flow-control-epp of InferencePool flow-control"});
    pool_sources(&mut sources, 0, server, ASSUMED_H100, &[("tensor_parallelism", "--tensor-parallel-size")]);
    assert_inputs(folder, inputs, (40_960, 0), want, sources);
    assert_warnings(
        folder,
        &warnings,
        &[
            ("KV blocks derived from memory", 1),
            ("\"round-robin-fairness-policy\" of type \"round-robin-fairness-policy\" is not modelled", 1),
            ("flowControl.maxBytes is not modelled", 1),
            ("chart-templates/llm-d-router-v0.9.0/", 5),
            ("recipes/router/features/httproute-flags.yaml holds no Kubernetes object", 1),
            ("read as one llm-d-router release \"flow-control\"", 1),
            ("release flow-control: llm-d-router chart version not given", 1),
            ("names poolRef \"default-pool\", which is not deployed", 3),
            ("no GPU is named", 1),
        ],
    );
}

/// llm-d-router v0.9 optimized baseline: router values (base then guide) and the Kustomize model
/// server (8 x TP2 Qwen3-32B, vllm/vllm-openai:v0.23.0 from the image component); the committed
/// rendered copy of the same objects is identical to the Kustomize output, so nothing is replaced.
#[test]
fn v0_9_optimized_baseline() {
    let folder = "2026-06-v0.9-optimized-baseline";
    let dir = copy_of(folder, "ob");
    add_scenario(dir.path(), "");
    let (inputs, warnings) = run(dir.path());
    let server = "Deployment optimized-baseline-nvidia-gpu-vllm-decode";
    let router = json!({"decider": null, "flow_control": "off", "gateway_us_per_prompt_token": GATEWAY, "handler": "single",
        "plugins": plugins(&[
            ("queue-scorer", "queue-scorer", "modelled"),
            ("kv-cache-utilization-scorer", "kv-cache-utilization-scorer", "modelled"),
            ("prefix-cache-scorer", "prefix-cache-scorer", "modelled"),
            ("no-hit-lru-scorer", "no-hit-lru-scorer", "modelled"),
        ]),
        "policy": "endpointPicker",
        "prefix_index": "16 tokens per block, KV blocks per server (LRU), 8192 blocks matched at most, auto-tuned from the servers' KV cache",
        "profiles": [{"filters": [], "name": "default", "picker": "max-score-picker", "scorers": scorers(&[
            ("queue-scorer", 2.0), ("kv-cache-utilization-scorer", 2.0), ("prefix-cache-scorer (approximate index)", 3.0), ("no-hit-lru-scorer", 2.0)])}],
        "refresh_interval_ms": 50.0, "saturation_detector": DEFAULT_DETECTOR});
    let pools = vec![pool(
        "default",
        "both",
        8,
        2,
        "H100-SXM-80GB",
        json!({"llm-d.ai/role": "both"}),
        vllm(16, None),
    )];
    let want = top("Qwen/Qwen3-32B", pools, json!([{"class": "chat", "priority": 0}]), router, "0.23.0");
    let mut sources = json!({
        "model": format!("manifest: {server} (vllm serve)"),
        "objectives": "default: priority 0 (no InferenceObjective or InferenceModel names InferencePool optimized-baseline)",
        "router": "manifest: endpoint picker optimized-baseline-epp of InferencePool optimized-baseline"});
    pool_sources(&mut sources, 0, server, ASSUMED_H100, &[("tensor_parallelism", "--tensor-parallel-size")]);
    assert_inputs(folder, inputs, (40_960, 0), want, sources);
    assert_warnings(
        folder,
        &warnings,
        &[
            ("KV blocks derived from memory", 1),
            ("rendered the kustomization", 1),
            ("chart-templates/llm-d-router-v0.9.0/", 5),
            ("recipes/router/features/httproute-flags.yaml holds no Kubernetes object", 1),
            ("read as one llm-d-router release \"optimized-baseline\"", 1),
            ("release optimized-baseline: llm-d-router chart version not given", 1),
            ("no GPU is named", 1),
        ],
    );
}

/// The latest P/D guide: router values with the `llm-d.ai/v1` disagg-profile-handler config and a
/// DisaggregatedSet of 2 slices (prefill 4 x TP1 and decode 1 x TP4 per slice) of gpt-oss-120b,
/// block 128. `--no-disable-hybrid-kv-cache-manager` keeps vLLM's default and is not reported.
#[test]
fn latest_pd_disaggregation() {
    let folder = "2026-h2-latest-pd-disaggregation";
    let dir = copy_of(folder, "pdh2");
    add_scenario(dir.path(), "");
    let (inputs, warnings) = run(dir.path());
    let labels = |role: &str| {
        json!({"llm-d.ai/accelerator-variant": "gpu", "llm-d.ai/accelerator-vendor": "nvidia",
            "llm-d.ai/engine-type": "vllm", "llm-d.ai/guide": "pd-disaggregation",
            "llm-d.ai/inference-serving": "true", "llm-d.ai/model": "gpt-oss-120b", "llm-d.ai/role": role})
    };
    let pools = vec![
        pool("pd-disagg-vllm-decode", "decode", 2, 4, "H100-SXM-80GB", labels("decode"), vllm(128, None)),
        pool("pd-disagg-vllm-prefill", "prefill", 8, 1, "H100-SXM-80GB", labels("prefill"), vllm(128, None)),
    ];
    let router = json!({"decider": "always", "flow_control": "off", "gateway_us_per_prompt_token": GATEWAY,
        "handler": "disagg (decode \"decode\", prefill \"prefill\")",
        "plugins": plugins(&[
            ("always-disagg-pd-decider", "always-disagg-pd-decider", "modelled"),
            ("disagg-profile-handler", "disagg-profile-handler", "modelled"),
            ("prefill-filter", "prefill-filter", "modelled"),
            ("decode-filter", "decode-filter", "modelled"),
            ("approx-prefix-cache-producer", "approx-prefix-cache-producer", "modelled"),
            ("inflight-load-producer", "inflight-load-producer", "inert"),
            ("prefix-cache-affinity-filter", "prefix-cache-affinity-filter", "modelled"),
            ("token-load-scorer", "token-load-scorer", "modelled"),
            ("active-request-scorer", "active-request-scorer", "modelled"),
            ("max-score-picker", "max-score-picker", "modelled"),
        ]),
        "policy": "endpointPicker",
        // maxPrefixTokensToMatch 131072 over blocks of 128 tokens.
        "prefix_index": "128 tokens per block, KV blocks per server (LRU), 1024 blocks matched at most, auto-tuned from the servers' KV cache",
        "profiles": [
            {"filters": ["prefill-filter", "prefix-cache-affinity-filter (affinityThreshold 0.8, maxTTFTPenaltyMs 18000, peakPrefillThroughput 33821)"],
             "name": "prefill", "picker": "max-score-picker", "scorers": scorers(&[("token-load-scorer (queueThresholdTokens 4194304)", 1.0)])},
            {"filters": ["decode-filter"], "name": "decode", "picker": "max-score-picker",
             "scorers": scorers(&[("active-request-scorer (maxBusyScore 1)", 1.0)])},
        ],
        "refresh_interval_ms": 50.0, "saturation_detector": DEFAULT_DETECTOR});
    let want = top("openai/gpt-oss-120b", pools, json!([{"class": "chat", "priority": 0}]), router, "0.23.0");
    let (decode, prefill) =
        ("LeaderWorkerSet pd-disagg-vllm-decode", "LeaderWorkerSet pd-disagg-vllm-prefill");
    let mut sources = json!({
        "model": format!("manifest: {decode} (vllm serve)"),
        "objectives": "default: priority 0 (no InferenceObjective or InferenceModel names InferencePool pd-disaggregation)",
        "router": "manifest: endpoint picker pd-disaggregation-epp of InferencePool pd-disaggregation"});
    let read = [("tensor_parallelism", "--tensor-parallel-size"), ("vllm.block_size", "--block-size")];
    pool_sources(&mut sources, 0, decode, ASSUMED_H100, &read);
    pool_sources(&mut sources, 1, prefill, ASSUMED_H100, &read);
    // gpt-oss: a running sequence holds ceil(128 / 128) + 1 = 2 blocks for its sliding-window layers.
    assert_inputs(folder, inputs, (131_072, 2), want, sources);
    assert_warnings(
        folder,
        &warnings,
        &[
            ("sliding-window layers keep up to 128 tokens", 3),
            ("KV blocks derived from memory", 3),
            ("spec.pools[1]: maxModelLen capped from the model's 131072", 1),
            ("apiVersion llm-d.ai/v1 is newer", 1),
            ("read as one llm-d-router release \"pd-disaggregation\"", 1),
            ("release pd-disaggregation: llm-d-router chart version not given", 1),
            ("pd-disagg-vllm-decode\": its image names no vLLM release", 1),
            ("pd-disagg-vllm-prefill\": its image names no vLLM release", 1),
            ("no GPU is named", 1),
        ],
    );
}
