//! `apply` on the real upstream manifests: references resolve, the scenario's fields win, and the
//! normalised spec carries the deployed replicas, parallelism and knobs.

use serde_json::json;

use super::*;
use crate::manifest::parse_scenarios;
use crate::resolve;

const GAIE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/llm-d-manifests/2025-07-gaie-v0.5.1-raw-inference-scheduling"
);

fn read(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path} must be readable: {e}"));
    parse_documents(&text).unwrap()
}

fn gaie_objects() -> Objects {
    let mut all = Vec::new();
    for f in ["inferencepool-resources.yaml", "vllm/gpu-deployment.yaml", "inferencemodel.yaml"] {
        all.extend(read(&format!("{GAIE}/{f}")));
    }
    Objects::new(all)
}

fn scenario(import: &str, extra: &str) -> ScenarioSpec {
    let text = format!(
        "apiVersion: twin.blis.dev/v1alpha1
kind: SimulationScenario
metadata: {{name: s}}
spec:
  import: {import}
  workload:
    durationSeconds: 2
    arrival: {{process: poisson, ratePerSecond: 5}}
    classes:
    - {{name: food-review, inputTokens: {{distribution: fixed, value: 100}}, outputTokens: {{distribution: fixed, value: 10}}}}
{extra}"
    );
    parse_scenarios(&text).unwrap().0.remove(0).spec
}

#[test]
fn raw_gaie_pool_selects_its_deployment() {
    let spec = scenario(
        "{inferencePoolRef: {name: vllm-llama3-8b-instruct}, endpointPickerConfigRef: {name: plugins-config, key: plugins-v2.yaml}}",
        "  hardware: {gpu: H100-SXM-80GB}\n",
    );
    let objs = gaie_objects();
    let got = apply(&spec, &objs).unwrap();
    let s = &got.spec;
    assert_eq!(s.model.name, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!((s.replicas, s.hardware.tensor_parallelism), (Some(3), Some(1)));
    assert_eq!(s.hardware.gpu, "H100-SXM-80GB", "the scenario's own hardware.gpu is kept");
    assert_eq!(s.vllm.max_num_seqs, Some(1024));
    assert!(s.import.is_none());
    // The EPP config came from the ConfigMap; the InferenceModel of `food-review` gave that class its criticality.
    assert!(s.router.endpoint_picker_config.is_some());
    let o = &s.router.objectives.as_ref().unwrap()[0];
    assert_eq!((o.class.as_str(), o.criticality.as_deref()), ("food-review", Some("Standard")));
    // The base model's InferenceModel covers requests of classes without their own objective:
    // here every class has one.
    assert_eq!(s.router.objectives.as_ref().unwrap().len(), 1);
    // The CPU example's model is not served here: its objective applies to nothing.
    let unmatched: Vec<&String> = got.warnings.iter().filter(|w| w.contains("no workload class")).collect();
    assert!(unmatched.len() == 1 && unmatched[0].contains("Qwen/Qwen2.5-1.5B-Instruct"), "{unmatched:?}");
    assert!(got.warnings.iter().any(|w| w.contains("--enable-lora")));
    // The result resolves and the picker config is the one from the ConfigMap.
    let r = resolve("s", s).unwrap();
    assert_eq!(r.cluster().pools.iter().map(|p| p.replicas).sum::<u32>(), 3);
}

#[test]
fn patches_and_own_fields_override_what_is_deployed() {
    let spec = scenario(
        "{workloadRefs: [{name: vllm-llama3-8b-instruct, patch: {spec: {replicas: 5}}}]}",
        "  hardware: {gpu: H100-SXM-80GB}\n  vllm: {maxNumSeqs: 64}\n",
    );
    let s = apply(&spec, &gaie_objects()).unwrap().spec;
    assert_eq!((s.replicas, s.vllm.max_num_seqs), (Some(5), Some(64)));
    // No GPU anywhere: the guides' reference GPU, with a warning naming the labels read.
    let mut without = spec.clone();
    without.hardware = Default::default();
    let got = apply(&without, &gaie_objects()).unwrap();
    assert_eq!(got.spec.hardware.gpu, DEFAULT_GPU);
    assert!(got
        .warnings
        .iter()
        .any(|w| w.contains("no GPU is named") && w.contains("nvidia.com/gpu.product")));
    let mut missing = spec.clone();
    missing.import.as_mut().unwrap().workload_refs.as_mut().unwrap()[0].name = "nope".into();
    let e = apply(&missing, &gaie_objects()).unwrap_err();
    assert_eq!(e.field, "spec.import.workloadRefs[0].name");
    assert!(e.problem.contains("not found"));
}

#[test]
fn modelservice_pd_values_become_prefill_and_decode_pools() {
    let values = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/llm-d-manifests/2025-07-v0.2-pd-disaggregation/ms-pd/values.yaml"
    ))
    .expect(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/llm-d-manifests must be readable"));
    let spec = scenario(
        &serde_json::to_string(&json!({"modelServiceValues": values})).unwrap(),
        "  hardware: {gpu: H100-SXM-80GB}\n",
    );
    let s = apply(&spec, &Objects::default()).unwrap().spec;
    let pools = s.pools.as_ref().unwrap();
    let shape: Vec<_> = pools
        .iter()
        .map(|p| {
            (p.role.unwrap(), p.replicas.unwrap(), p.hardware.as_ref().unwrap().tensor_parallelism.unwrap())
        })
        .collect();
    assert_eq!(shape, [(PoolRole::Decode, 1, 4), (PoolRole::Prefill, 4, 1)]);
    assert!(pools.iter().all(|p| p.hardware.as_ref().unwrap().gpu == "H100-SXM-80GB"));
    assert_eq!(s.model.name, "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic");
}

#[test]
fn v1_pool_and_epp_patch() {
    let pool = json!({"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": {"name": "p"}, "spec": {"selector": {"matchLabels": {"app": "m"}}, "targetPorts": [{"number": 8000}]}});
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "m"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "m"}}, "spec": {
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            "containers": [{"name": "vllm", "command": ["vllm", "serve"], "args": ["meta-llama/Llama-3.1-8B-Instruct", "--tensor-parallel-size=2"],
                "resources": {"limits": {"nvidia.com/gpu": 2}}}]}}}});
    let epp = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: kv-cache-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n    weight: 1\n  - pluginRef: kv-cache-scorer\n    weight: 1\n";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "epp"}, "data": {"config.yaml": epp}});
    let objs = Objects::new(vec![pool, dep, cm]);
    let spec = scenario("{inferencePoolRef: {name: p}, endpointPickerConfigRef: {name: epp, patch: {featureGates: [flowControl]}}}", "");
    let got = apply(&spec, &objs).unwrap();
    assert_eq!((got.spec.replicas, got.spec.hardware.tensor_parallelism), (Some(2), Some(2)));
    assert_eq!(got.spec.hardware.gpu, "H100-SXM-80GB");
    let cfg = got.spec.router.endpoint_picker_config.clone().unwrap();
    assert_eq!(cfg["featureGates"], json!(["flowControl"]));
    // The old scorer name is read as the new one, with a warning naming it.
    let r = resolve("s", &got.spec).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("\"kv-cache-scorer\"") && w.contains("\"kv-cache-utilization-scorer\"")),
        "{:?}",
        r.warnings
    );
}

const DISAGG_SET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/llm-d-manifests/2026-h2-latest-pd-disaggregation/src/guides/pd-disaggregation/modelserver/gpu/vllm/base/disaggregatedset.yaml");

/// The (role, replicas, TP) of each imported pool.
fn pool_shape(s: &ScenarioSpec) -> Vec<(PoolRole, i64, i64)> {
    s.pools
        .iter()
        .flatten()
        .map(|p| {
            (p.role.unwrap(), p.replicas.unwrap(), p.hardware.as_ref().unwrap().tensor_parallelism.unwrap())
        })
        .collect()
}

#[test]
fn disaggregated_set_roles_become_pools_times_slices() {
    let objs = Objects::new(read(DISAGG_SET));
    let spec = scenario(
        "{workloadRefs: [{kind: DisaggregatedSet, name: pd-disagg-vllm}]}",
        "  hardware: {gpu: H200-SXM-141GB}\n",
    );
    let got = apply(&spec, &objs).unwrap();
    let s = &got.spec;
    // 2 slices x (4 prefill at TP 1 + 1 decode at TP 4); decode first.
    assert_eq!(pool_shape(s), [(PoolRole::Decode, 2, 4), (PoolRole::Prefill, 8, 1)]);
    assert_eq!(s.model.name, "openai/gpt-oss-120b");
    assert_eq!(s.vllm.block_size, Some(128));
    assert!(s.pools.iter().flatten().all(|p| p.vllm.as_ref().unwrap().block_size == Some(128)));

    // The same object selected by an inline pool, and with one slice.
    let mut one = read(DISAGG_SET).remove(0);
    one["spec"]["slices"] = json!(1);
    let pool = json!({"inferencePool": {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": {"name": "p"}, "spec": {"selector": {"matchLabels": {"llm-d.ai/guide": "pd-disaggregation"}},
        "targetPorts": [{"number": 8000}], "endpointPickerRef": {"name": "epp", "port": {"number": 9002}}}}});
    let spec = scenario(&pool.to_string(), "  hardware: {gpu: H200-SXM-141GB}\n");
    let s = apply(&spec, &Objects::new(vec![one.clone()])).unwrap().spec;
    assert_eq!(pool_shape(&s), [(PoolRole::Decode, 1, 4), (PoolRole::Prefill, 4, 1)]);

    // Bad shapes name the field.
    one["spec"]["slices"] = json!("two");
    let e = apply(&spec, &Objects::new(vec![one.clone()])).unwrap_err();
    assert!(e.field.contains("DisaggregatedSet pd-disagg-vllm: spec.slices"), "{e:?}");
    one["spec"]["slices"] = json!(1);
    one["spec"]["roles"] = json!([]);
    let by_ref = scenario(
        "{workloadRefs: [{kind: DisaggregatedSet, name: pd-disagg-vllm}]}",
        "  hardware: {gpu: H200-SXM-141GB}\n",
    );
    let e = apply(&by_ref, &Objects::new(vec![one])).unwrap_err();
    assert_eq!(e.field, "spec.import.workloadRefs[0].DisaggregatedSet pd-disagg-vllm: spec.roles");
}
