//! Guide-shaped folders the importer reads as deployed, with what it assumes said in a warning: the
//! GPU a README names when no manifest does, a node selector with an unexpanded variable, the vLLM
//! release an llm-d image bundles, and LMCache as KV offloading (not P/D). Fixtures are written here.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::{blis, vllm_deployment};

const WORKLOAD: &str = "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata: {name: w}\nspec:\n{extra}  workload:\n    maxRequests: 10\n    arrival: {process: poisson, ratePerSecond: 2}\n    classes: [{name: chat, inputTokens: {distribution: fixed, value: 50}, outputTokens: {distribution: fixed, value: 5}}]\n";

/// A folder with `files` (name, text) and a workload-only scenario with `extra` spec lines.
/// The folder is removed when the returned guard is dropped (also on a panic).
fn folder(tag: &str, files: &[(&str, String)], extra: &str) -> TempDir {
    let dir = crate::common::temp_dir(&format!("blis-guide-folders-{tag}-"));
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(dir.path().join("scenario.yaml"), WORKLOAD.replace("{extra}", extra)).unwrap();
    dir
}

/// `blis run --output json` on a folder: the scenario's JSON and its warnings (exit 0 asserted).
fn run(dir: &Path) -> (Value, Vec<String>) {
    let o = blis(&["run", "--no-progress", "--output", "json", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = v["scenarios"][0].clone();
    let w = s["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
    (s, w)
}

fn has(warnings: &[String], words: &[&str]) -> bool {
    warnings.iter().any(|w| words.iter().all(|x| w.contains(x)))
}

#[test]
fn a_readme_naming_one_gpu_gives_the_gpu_no_manifest_names() {
    let objects = vllm_deployment(2, "", "vllm/vllm-openai:v0.23.0", "", "");
    let readme =
        "# P/D\n\n- This path has been validated on an 8xH200 cluster with InfiniBand.\n".to_string();
    let dir = folder("readme", &[("objects.yaml", objects.clone()), ("README.md", readme)], "");
    let (s, w) = run(dir.path());
    let i = &s["inputs"];
    assert_eq!(i["gpu"], "H200-SXM-141GB", "{i:#}");
    assert_eq!(i["pools"][0]["gpu"], "H200-SXM-141GB");
    assert_eq!(
        (i["pools"][0]["tensor_parallelism"].as_u64(), i["pools"][0]["replicas"].as_u64()),
        (Some(2), Some(2))
    );
    let src = i["sources"]["pools[0].gpu"].as_str().unwrap();
    assert!(src.starts_with("README: ") && src.contains("README.md") && src.contains("8xH200"), "{src}");
    assert!(
        has(&w, &["README.md names one GPU", "simulating H200-SXM-141GB", "spec.hardware.gpu"]),
        "{w:#?}"
    );
    assert!(!has(&w, &["no GPU is named", "simulating H100-SXM-80GB"]), "{w:#?}");

    // A README naming two GPUs decides nothing: the default GPU and its warning, plus a note.
    let readme = "Runs on H100 or H200 nodes.\n".to_string();
    let dir = folder("readme-two", &[("objects.yaml", objects.clone()), ("README.md", readme)], "");
    let (s, w) = run(dir.path());
    assert_eq!(s["inputs"]["gpu"], "H100-SXM-80GB");
    assert!(has(&w, &["names several GPUs", "H100-SXM-80GB, H200-SXM-141GB"]), "{w:#?}");
    assert!(has(&w, &["no GPU is named", "simulating H100-SXM-80GB"]), "{w:#?}");

    // A GPU the manifests name wins over the README, which is then not read.
    let named = vllm_deployment(
        2,
        "      nodeSelector: {nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB}\n",
        "vllm/vllm-openai:v0.23.0",
        "",
        "",
    );
    let readme = "Validated on 8xH200.\n".to_string();
    let dir = folder("readme-selector", &[("objects.yaml", named), ("README.md", readme)], "");
    let (s, w) = run(dir.path());
    assert_eq!(s["inputs"]["gpu"], "A100-SXM-80GB");
    assert!(!has(&w, &["README"]), "{w:#?}");
}

#[test]
fn an_unexpanded_gpu_selector_is_an_error_unless_the_scenario_names_the_gpu() {
    let objects = vllm_deployment(
        2,
        "      nodeSelector: {nvidia.com/gpu.product: $LLMDBENCH_GPU_MODEL}\n",
        "vllm/vllm-openai:v0.23.0",
        "",
        "",
    );
    let dir = folder("unexpanded", &[("objects.yaml", objects.clone())], "");
    let o = blis(&["run", "--no-progress", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for w in [
        "objects.yaml",
        "nvidia.com/gpu.product",
        "\"$LLMDBENCH_GPU_MODEL\" is an unexpanded variable",
        "; fix: set spec.hardware.gpu",
    ] {
        assert!(err.contains(w), "{w:?} in {err}");
    }
    let dir = folder("unexpanded-gpu", &[("objects.yaml", objects)], "  hardware: {gpu: H100-SXM-80GB}\n");
    let (s, w) = run(dir.path());
    assert_eq!(s["inputs"]["gpu"], "H100-SXM-80GB");
    assert_eq!(s["inputs"]["pools"][0]["tensor_parallelism"], 2);
    assert!(
        has(
            &w,
            &[
                "nvidia.com/gpu.product",
                "unexpanded variable",
                "ignored",
                "spec.hardware.gpu \"H100-SXM-80GB\""
            ]
        ),
        "{w:#?}"
    );
}

#[test]
fn llm_d_release_images_bring_their_vllm_release() {
    for (image, version, warned) in [
        ("ghcr.io/llm-d/llm-d-cuda:v0.5.0", "0.14.1", true),
        ("ghcr.io/llm-d/llm-d:v0.2.0", "0.10.0", true),
        ("ghcr.io/llm-d/llm-d-cuda:v0.8.0", "0.23.0", true),
        ("vllm/vllm-openai:v0.19.1", "0.19.1", false),
    ] {
        let gpu = "      nodeSelector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}\n";
        let dir = folder("image", &[("objects.yaml", vllm_deployment(2, gpu, image, "", ""))], "");
        let (s, w) = run(dir.path());
        assert_eq!(s["inputs"]["vllm_version"], version, "{image}");
        assert_eq!(
            has(&w, &[image, &format!("bundles vLLM {version}"), "llm-d/llm-d"]),
            warned,
            "{image}: {w:#?}"
        );
        assert!(!has(&w, &["names no vLLM release"]), "{image}: {w:#?}");
    }
    // A development build names no release: the current default, with the warning saying so.
    let gpu = "      nodeSelector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}\n";
    let dir = folder(
        "image-dev",
        &[("objects.yaml", vllm_deployment(2, gpu, "ghcr.io/llm-d/llm-d-cuda-dev:sha-a1bcf21", "", ""))],
        "",
    );
    let (s, w) = run(dir.path());
    assert_eq!(s["inputs"]["vllm_version"], "0.23.0");
    assert!(has(&w, &["names no vLLM release the twin knows", "spec.vllm.version"]), "{w:#?}");
}

#[test]
fn lmcache_alone_is_a_cpu_kv_tier_not_pd() {
    let gpu = "      nodeSelector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}\n";
    let lmcache = r#", --kv-transfer-config, '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'"#;
    let sized = vllm_deployment(
        2,
        gpu,
        "vllm/vllm-openai:v0.23.0",
        lmcache,
        "{name: LMCACHE_MAX_LOCAL_CPU_SIZE, value: '20'}",
    );
    let (s, w) = run(folder("lmcache", &[("objects.yaml", sized)], "").path());
    // The same CPU tier as vLLM's own offloading connector of 20 GiB.
    let offload = r#", --kv-transfer-config, '{"kv_connector":"OffloadingConnector","kv_role":"kv_both","kv_connector_extra_config":{"cpu_bytes_to_use":21474836480}}'"#;
    let (o, _) = run(folder(
        "offload",
        &[("objects.yaml", vllm_deployment(2, gpu, "vllm/vllm-openai:v0.23.0", offload, ""))],
        "",
    )
    .path());
    let blocks = &s["inputs"]["pools"][0]["vllm"]["cpu_offload_blocks"];
    assert!(blocks.as_u64().unwrap() > 0, "{s:#}");
    assert_eq!(blocks, &o["inputs"]["pools"][0]["vllm"]["cpu_offload_blocks"]);
    assert_eq!(s["inputs"]["pools"][0]["role"], o["inputs"]["pools"][0]["role"]);
    assert!(!has(&w, &["P/D"]) && !has(&w, &["LMCache's default"]), "{w:#?}");

    // Without a size: LMCache's default CPU tier, said in a warning; a remote store is not modelled.
    let unsized_ = vllm_deployment(
        2,
        gpu,
        "vllm/vllm-openai:v0.23.0",
        lmcache,
        "{name: LMCACHE_REMOTE_URL, value: 'lm://cache:65432'}",
    );
    let (s, w) = run(folder("lmcache-default", &[("objects.yaml", unsized_)], "").path());
    assert!(s["inputs"]["pools"][0]["vllm"]["cpu_offload_blocks"].as_u64().unwrap() > 0);
    assert!(has(&w, &["LMCacheConnectorV1 without LMCACHE_MAX_LOCAL_CPU_SIZE", "5 GB"]), "{w:#?}");
    assert!(has(&w, &["LMCACHE_REMOTE_URL", "not modelled"]), "{w:#?}");
}
