//! End-to-end: a scenario that imports the live llm-d objects of its namespace (InferencePool,
//! model-server Deployment, endpoint-picker ConfigMap, objectives) against a real kube-apiserver.
//! It becomes Ready with the same predictions as `blis run` on the same folder, and scaling the
//! Deployment or editing the ConfigMap re-simulates in the expected direction.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common;

use common::kube::*;

const NS: &str = "llmd-import";
const NAME: &str = "inference-scheduling";

fn f64_at(obj: &Value, ptr: &str) -> f64 {
    obj.pointer(ptr).and_then(Value::as_f64).unwrap_or_else(|| panic!("{ptr} missing in {obj:#}"))
}

#[test]
fn imported_llm_d_objects_drive_the_prediction() {
    let Some(env) = Env::from_env(18280) else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("examples/llm-d/inference-scheduling");

    let t = step("CRDs (blis + minimal inference extension) and RBAC");
    env.install(&["tests/fixtures/inference-crds.yaml"]);
    let can = |args: &[&str]| env.sa_can(args);
    assert!(can(&["watch", "deployments.apps", "-n", NS]));
    assert!(can(&["list", "inferencepools.inference.networking.k8s.io", "-n", NS]));
    assert!(can(&["list", "inferenceobjectives.inference.networking.x-k8s.io", "-n", NS]));
    assert!(!can(&["patch", "deployments.apps", "-n", NS]), "read only");
    assert!(!can(&["get", "secrets", "-n", NS]));
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let mut controller = env.start_controller();
    wait_until("controller /readyz", Duration::from_secs(30), || {
        http_get(env.metrics_port, "/readyz").contains("ok").then_some(())
    });

    let t = step("the example's manifests + scenario reach Ready, equal to `blis run` on the folder");
    ns(&env, NS);
    env.ok(&["apply", "-n", NS, "-f", example.to_str().unwrap()]);
    env.ok(&["wait", "-n", NS, "--for=condition=Ready", &format!("simscen/{NAME}"), "--timeout=120s"]);
    let first = env.get(NS, NAME);
    let st = &first["status"];
    env.assert_status_equals_cli(&first, &example);
    assert_eq!(f64_at(st, "/predictions/cost/gpus"), 2.0, "2 replicas of the Deployment, 1 GPU each");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("scaling the Deployment re-simulates: more GPUs, lower TTFT p90");
    env.ok(&["scale", "-n", NS, "deployment/llama-8b-decode", "--replicas=4"]);
    let scaled = wait_until("re-simulated with 4 replicas", Duration::from_secs(120), || {
        let o = env.get(NS, NAME);
        (is_ready(&o) && o.pointer("/status/predictions/cost/gpus").and_then(Value::as_f64) == Some(4.0))
            .then_some(o)
    });
    assert!(simulations(&scaled) > simulations(&first));
    let (before, after) = (
        f64_at(st, "/predictions/overall/ttftMs/p90"),
        f64_at(&scaled["status"], "/predictions/overall/ttftMs/p90"),
    );
    assert!(after < before, "TTFT p90 {before} -> {after} with twice the replicas");
    eprintln!("ok in {:.1}s (TTFT p90 {before:.1} -> {after:.1} ms)", t.elapsed().as_secs_f64());

    let t = step("editing the EPP ConfigMap re-simulates: no prefix scorer, fewer prefix-cache hits");
    let hits_before = f64_at(&scaled["status"], "/predictions/kvCache/prefixCacheHitRate");
    let cm = std::fs::read_to_string(example.join("epp-config.yaml")).unwrap();
    let no_prefix = cm.replace("      - pluginRef: prefix-cache-scorer\n        weight: 3\n", "");
    assert_ne!(cm, no_prefix, "the example's prefix scorer reference moved");
    env.apply(NS, &no_prefix);
    let edited = wait_until("re-simulated with the new EPP config", Duration::from_secs(120), || {
        let o = env.get(NS, NAME);
        (is_ready(&o) && simulations(&o) > simulations(&scaled)).then_some(o)
    });
    let hits_after = f64_at(&edited["status"], "/predictions/kvCache/prefixCacheHitRate");
    assert!(
        hits_after < hits_before,
        "prefix hit rate {hits_before} -> {hits_after} without the prefix scorer"
    );
    eprintln!("ok in {:.1}s (prefix hits {hits_before:.3} -> {hits_after:.3})", t.elapsed().as_secs_f64());

    let t = step("editing an InferenceObjective re-simulates (objectives are watched)");
    env.merge_patch(
        NS,
        "inferenceobjectives.inference.networking.x-k8s.io/batch",
        r#"{"spec":{"priority":5}}"#,
    );
    wait_until("re-simulated with the new objective", Duration::from_secs(60), || {
        let o = env.get(NS, NAME);
        (is_ready(&o) && simulations(&o) > simulations(&edited)).then_some(())
    });
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step(
        "a HardwareProfile for the imported GPU re-prices the scenario; deleting it restores the built-in",
    );
    let dollars = |o: &Value| o.pointer("/status/predictions/cost/dollarsPerHour").and_then(Value::as_f64);
    let builtin = env.get(NS, NAME);
    let (gpus, builtin_price) = (f64_at(&builtin["status"], "/predictions/cost/gpus"), dollars(&builtin));
    // The GPU comes from the Deployment's node selector (NVIDIA-H100-80GB-HBM3), not from the scenario.
    let hp = "apiVersion: twin.blis.dev/v1alpha1\nkind: HardwareProfile\nmetadata:\n  name: h100-sxm-80gb\nspec:\n  name: H100-SXM-80GB\n  memoryGib: 80\n  tflopsBf16: 989\n  hbmTbps: 3.35\n  nvlinkGbps: 450\n  dollarsPerGpuHour: 11\n";
    env.apply(NS, hp);
    wait_until("re-priced by the HardwareProfile", Duration::from_secs(60), || {
        let o = env.get(NS, NAME);
        (is_ready(&o) && dollars(&o) == Some(11.0 * gpus)).then_some(())
    });
    env.ok(&["delete", "hardwareprofile", "h100-sxm-80gb"]);
    wait_until("back on the built-in profile", Duration::from_secs(60), || {
        let o = env.get(NS, NAME);
        (is_ready(&o) && dollars(&o) == builtin_price).then_some(())
    });
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("`blis compare --namespace` reads the statuses");
    let other = scenario("baseline", 1, 5, 2.0, "");
    env.apply(NS, &other);
    env.ok(&["wait", "-n", NS, "--for=condition=Ready", "simscen/baseline", "--timeout=60s"]);
    let out = Command::new(&env.bin)
        .args(["compare", "--namespace", NS, "--output", "markdown"])
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains(&format!("| {NAME} |")) && md.contains("| baseline |") && md.contains("**"), "{md}");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let _ = controller.kill();
    let _ = controller.wait();
    eprintln!("e2e-import: all steps passed");
}
