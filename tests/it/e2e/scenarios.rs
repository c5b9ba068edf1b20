//! End-to-end tests of the scenario controller against a real kube-apiserver + etcd (harness:
//! `tests/common/kube.rs`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

use common::kube::*;

#[test]
fn e2e_against_a_real_api_server() {
    let Some(env) = Env::from_env(18080) else { return };
    let t_all = Instant::now();

    let t = step("CRDs and RBAC");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    env.install(&[]);
    // Least privilege: the controller's ServiceAccount can do what it needs and nothing more.
    let can = |args: &[&str]| env.sa_can(args);
    assert!(can(&["patch", "simulationscenarios.twin.blis.dev", "--subresource=status", "-n", "any"]));
    assert!(can(&["watch", "configmaps", "-n", "any"]));
    assert!(can(&["create", "events.events.k8s.io", "-n", "any"]));
    assert!(!can(&["create", "secrets", "-n", "any"]));
    assert!(!can(&["get", "secrets", "-n", "any"]));
    assert!(!can(&["patch", "simulationscenarios.twin.blis.dev", "-n", "any"]), "spec must stay the user's");
    assert!(!can(&["*", "*"]), "never cluster-admin");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let mut controller = env.start_controller();
    wait_until("controller /readyz", Duration::from_secs(30), || {
        http_get(env.metrics_port, "/readyz").contains("ok").then_some(())
    });
    assert!(http_get(env.metrics_port, "/healthz").contains("ok"));

    let t = step("quickstart reaches Ready and equals `blis run --output json`");
    ns(&env, "qs");
    env.ok(&["apply", "-n", "qs", "-f", root.join("examples/quickstart.yaml").to_str().unwrap()]);
    env.ok(&["wait", "-n", "qs", "--for=condition=Ready", "simscen/quickstart", "--timeout=60s"]);
    let time_to_ready = t.elapsed();
    let table = env.ok(&["get", "simscen", "-n", "qs"]);
    eprintln!("{table}");
    let header = table.lines().next().unwrap();
    for col in ["SLO", "TTFT-P90", "ITL-P90", "$/H", "AGE"] {
        assert!(header.contains(col), "missing column {col}: {header}");
    }
    assert!(!table.lines().nth(1).unwrap().contains("<none>"), "printer columns not filled: {table}");
    let wide = env.ok(&["get", "simscen", "-n", "qs", "-o", "wide"]);
    assert!(wide.contains("TTFT-P99") && wide.contains("$/1M TOKENS") && !wide.contains("<none>"), "{wide}");
    let obj = env.get("qs", "quickstart");
    env.assert_status_equals_cli(&obj, &root.join("examples/quickstart.yaml"));
    let st = &obj["status"];
    for c in ["Ready", "SLOMet", "Degraded", "Reconciling", "Stalled"] {
        let c = cond(&obj, c).unwrap_or_else(|| panic!("condition {c} missing"));
        assert_eq!(c["observedGeneration"], obj["metadata"]["generation"]);
        assert!(c["lastTransitionTime"].is_string());
    }
    assert_eq!(cond_status(&obj, "Stalled"), "False");
    assert_eq!(cond_status(&obj, "Reconciling"), "False");
    assert!(st["inputsHash"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(simulations(&obj), 1);
    let events = env.ok(&["get", "events.events.k8s.io", "-n", "qs", "-o", "json"]);
    assert!(events.contains("SimulationStarted") && events.contains("SimulationSucceeded"), "{events}");
    eprintln!("ok: quickstart Ready in {:.2}s", time_to_ready.as_secs_f64());

    let t = step("unchanged spec does not re-simulate");
    env.ok(&["annotate", "-n", "qs", "simscen/quickstart", "touched=yes"]);
    env.ok(&["label", "-n", "qs", "simscen/quickstart", "touched=yes"]);
    std::thread::sleep(Duration::from_secs(3));
    let again = env.get("qs", "quickstart");
    assert_eq!(simulations(&again), 1, "re-simulated an unchanged spec");
    assert_eq!(again["status"]["inputsHash"], st["inputsHash"]);
    assert!(env.metrics().contains("blis_controller_reconciles_skipped_total"), "metrics");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("spec edit: new generation, new predictions");
    env.ok(&["patch", "-n", "qs", "simscen/quickstart", "--type=merge", "-p", r#"{"spec":{"replicas":2}}"#]);
    let edited = wait_until("generation 2 Ready", Duration::from_secs(60), || {
        let o = env.get("qs", "quickstart");
        (o["metadata"]["generation"] == 2 && is_ready(&o)).then_some(o)
    });
    assert_eq!(edited["status"]["observedGeneration"], 2);
    assert_eq!(edited["status"]["predictedGeneration"], 2);
    assert_eq!(simulations(&edited), 2);
    assert_ne!(edited["status"]["predictions"], st["predictions"]);
    assert_eq!(edited["status"]["predictions"]["cost"]["gpus"], 2);
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("invalid spec: Stalled naming the field, predictions kept");
    // Schema-valid but wrong: only the controller knows which block sizes vLLM supports.
    env.merge_patch("qs", "simscen/quickstart", r#"{"spec":{"vllm":{"blockSize":7}}}"#);
    let bad = wait_until("Stalled=True", Duration::from_secs(30), || {
        let o = env.get("qs", "quickstart");
        (o["status"]["observedGeneration"] == 3 && cond_status(&o, "Stalled") == "True").then_some(o)
    });
    let stalled = cond(&bad, "Stalled").unwrap();
    assert_eq!(stalled["reason"], "InvalidSpec");
    assert!(stalled["message"].as_str().unwrap().contains("spec.vllm.blockSize"), "{stalled}");
    assert_eq!(cond_status(&bad, "Ready"), "False");
    assert_eq!(
        bad["status"]["predictions"], edited["status"]["predictions"],
        "previous predictions must stay"
    );
    let o = env
        .kubectl(&["wait", "-n", "qs", "--for=condition=Ready", "simscen/quickstart", "--timeout=2s"], None);
    assert!(!o.status.success());
    let events = env.ok(&["get", "events.events.k8s.io", "-n", "qs", "-o", "json"]);
    assert!(events.contains("InvalidInput"));
    assert!(env.metrics().contains("blis_controller_errors_total{reason=\"InvalidSpec\"}"));
    env.merge_patch("qs", "simscen/quickstart", r#"{"spec":{"vllm":{"blockSize":16}}}"#);
    env.ok(&["wait", "-n", "qs", "--for=condition=Ready", "simscen/quickstart", "--timeout=60s"]);
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("schema rejects what it can, with a clear message");
    let o = env.kubectl(
        &["apply", "-n", "qs", "-f", "-"],
        Some(&scenario("typo", 1, 5, 1.0, "").replace("replicas: 1", "replicas: three")),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("spec.replicas") && err.contains("integer"), "{err}");
    let o = env.kubectl(
        &["apply", "-n", "qs", "-f", "-"],
        Some(
            &scenario("typo", 1, 5, 1.0, "")
                .replace("  model: {name: meta-llama/Llama-3.1-8B-Instruct}\n", ""),
        ),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("spec.model is required"), "{err}");
    // CEL rules: cross-field mistakes are refused at apply time with the fix in the message.
    for (extra, expect) in [
        ("  pools:\n  - {name: a, replicas: 1}\n", "cannot be combined with spec.pools"),
        ("  autoscaling: {minReplicas: 3, maxReplicas: 2}\n", "minReplicas must not exceed maxReplicas"),
        ("  vllm: {gpuMemoryUtilization: 1.5}\n", "a number in (0, 1]"),
    ] {
        let o = env.kubectl(&["apply", "-n", "qs", "-f", "-"], Some(&scenario("cel", 1, 5, 1.0, extra)));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(expect), "expected `{expect}` for {extra:?}: {err}");
    }
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("enforced failing gate: SLOMet=False, Ready=False, Stalled=True");
    ns(&env, "gates");
    env.apply(
        "gates",
        &scenario("strict", 1, 10, 2.0, "  gates: {maxTtftP90Ms: 0.001, enforcement: Enforce}\n"),
    );
    env.apply("gates", &scenario("lenient", 1, 10, 2.0, "  gates: {maxTtftP90Ms: 0.001}\n"));
    let strict = wait_until("strict Stalled", Duration::from_secs(60), || {
        let o = env.get("gates", "strict");
        (cond_status(&o, "Stalled") == "True").then_some(o)
    });
    assert_eq!(cond_status(&strict, "SLOMet"), "False");
    assert_eq!(cond_status(&strict, "Ready"), "False");
    assert_eq!(cond(&strict, "Stalled").unwrap()["reason"], "GateFailed");
    assert!(strict["status"]["gateResults"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "maxTtftP90Ms" && g["passed"] == false));
    let o = env
        .kubectl(&["wait", "-n", "gates", "--for=condition=Ready", "simscen/strict", "--timeout=2s"], None);
    assert!(!o.status.success());
    env.ok(&["wait", "-n", "gates", "--for=condition=Ready", "simscen/lenient", "--timeout=60s"]);
    assert_eq!(cond_status(&env.get("gates", "lenient"), "SLOMet"), "False");
    let events = env.ok(&["get", "events.events.k8s.io", "-n", "gates", "-o", "json"]);
    assert!(events.contains("SLOViolated"));
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("editing a referenced ConfigMap re-simulates");
    ns(&env, "cm");
    let csv1 = "arrival_time_s,input_tokens,output_tokens\n0,100,10\n1,200,20\n2,300,30\n";
    let csv2 = "arrival_time_s,input_tokens,output_tokens\n0,1000,100\n1,2000,200\n2,3000,300\n3,100,10\n";
    let cm = |csv: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "trace"}, "data": {"trace.csv": csv}}).to_string()
    };
    env.apply("cm", &cm(csv1));
    let traced = "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata:\n  name: traced\nspec:\n  model: {name: meta-llama/Llama-3.1-8B-Instruct}\n  hardware: {gpu: H100-SXM-80GB}\n  workload:\n    classes: [{name: all}]\n    trace: {configMapRef: {name: trace, key: trace.csv}}\n";
    env.apply("cm", traced);
    env.ok(&["wait", "-n", "cm", "--for=condition=Ready", "simscen/traced", "--timeout=60s"]);
    let first = env.get("cm", "traced");
    assert_eq!(first["status"]["predictions"]["overall"]["requests"]["completed"], 3);
    env.apply("cm", &cm(csv2));
    let second = wait_until("re-simulation after ConfigMap edit", Duration::from_secs(60), || {
        let o = env.get("cm", "traced");
        (simulations(&o) == 2 && is_ready(&o)).then_some(o)
    });
    assert_eq!(second["metadata"]["generation"], first["metadata"]["generation"]);
    assert_eq!(second["status"]["predictions"]["overall"]["requests"]["completed"], 4);
    assert_ne!(second["status"]["inputsHash"], first["status"]["inputsHash"]);
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("HardwareProfile by name; editing it re-simulates");
    let hp = |price: f64| {
        format!("apiVersion: twin.blis.dev/v1alpha1\nkind: HardwareProfile\nmetadata:\n  name: lab-gpu\nspec:\n  name: lab-gpu\n  memoryGib: 80\n  tflopsBf16: 989\n  hbmTbps: 3.35\n  nvlinkGbps: 450\n  dollarsPerGpuHour: {price}\n")
    };
    env.apply("cm", &hp(10.0));
    env.apply("cm", &scenario("lab", 1, 5, 2.0, "").replace("gpu: H100-SXM-80GB", "gpu: lab-gpu"));
    let lab = wait_until("lab Ready", Duration::from_secs(60), || {
        let o = env.get("cm", "lab");
        is_ready(&o).then_some(o)
    });
    assert_eq!(lab["status"]["predictions"]["cost"]["dollarsPerHour"].as_f64(), Some(10.0));
    env.apply("cm", &hp(20.0));
    wait_until("lab re-priced", Duration::from_secs(60), || {
        let o = env.get("cm", "lab");
        (is_ready(&o) && o["status"]["predictions"]["cost"]["dollarsPerHour"].as_f64() == Some(20.0))
            .then_some(())
    });
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("hostile input: refused by the schema, or Stalled once while others reconcile");
    ns(&env, "hostile");
    for (text, expect) in [
        (scenario("huge", 100_000_000, 10, 1.0, ""), "spec.replicas"),
        (
            scenario("prio", 1, 10, 1.0, "")
                .replace("      slo: {ttftMs", "      priority: 3000000000\n      slo: {ttftMs"),
            "priority",
        ),
    ] {
        let o = env.kubectl(&["apply", "-n", "hostile", "-f", "-"], Some(&text));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(expect), "expected a refusal naming {expect}: {err}");
    }
    const SENTINEL: &str = "e2e-sentinel-DB_PASSWORD";
    env.apply(
        "hostile",
        &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "private"},
            "data": {"t.csv": format!("{SENTINEL},API_KEY=e2e-sentinel-key\n0,1\n")}})
        .to_string(),
    );
    let deep = format!("{}1{}", "{\"a\": ".repeat(140), "}".repeat(140));
    let trace = |name: &str, trace: &str| {
        format!("apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata:\n  name: {name}\nspec:\n  model: {{name: meta-llama/Llama-3.1-8B-Instruct}}\n  hardware: {{gpu: H100-SXM-80GB}}\n  workload:\n    classes: [{{name: all}}]\n    trace: {trace}\n")
    };
    let sims_before = metric(&env.metrics(), "blis_controller_simulations_total");
    let applied = Instant::now();
    let hostile = [
        scenario("flood", 1, 60, 1e12, ""),
        scenario("deep", 1, 10, 1.0, "").replace(
            "model: {name: meta-llama/Llama-3.1-8B-Instruct}",
            &format!("model: {{name: meta-llama/Llama-3.1-8B-Instruct, config: {deep}}}"),
        ),
        trace("badtrace", r#"{csv: "arrival_time_s,input_tokens,output_tokens\n0,10,5\n1,ten,5\n"}"#),
        trace("leak", "{configMapRef: {name: private, key: t.csv}}"),
        scenario("fine", 1, 10, 2.0, ""),
    ]
    .map(|y| format!("---\n{y}"))
    .concat();
    env.apply("hostile", &hostile);
    let stalled = |name: &str| {
        wait_until(&format!("{name} Stalled"), Duration::from_secs(30), || {
            let o = env.get("hostile", name);
            (cond_status(&o, "Stalled") == "True").then_some(o)
        })
    };
    let flood = stalled("flood");
    let flood_s = applied.elapsed().as_secs_f64();
    let c = cond(&flood, "Stalled").unwrap();
    assert_eq!(c["reason"], "SimulationLimitExceeded", "{c}");
    assert!(c["message"].as_str().unwrap().contains("ratePerSecond"), "{c}");
    let deep = stalled("deep");
    let c = cond(&deep, "Stalled").unwrap();
    assert!(c["message"].as_str().unwrap().contains("spec.model.config"), "{c}");
    env.ok(&["wait", "-n", "hostile", "--for=condition=Ready", "simscen/fine", "--timeout=60s"]);
    let bad = stalled("badtrace");
    assert!(cond(&bad, "Stalled").unwrap()["message"].as_str().unwrap().contains("row 2"), "{bad}");
    let leak = stalled("leak");
    // Stalled once: neither rerun nor rewritten.
    std::thread::sleep(Duration::from_secs(4));
    for (name, was) in [("flood", &flood), ("deep", &deep), ("badtrace", &bad), ("leak", &leak)] {
        let now = env.get("hostile", name);
        assert_eq!(
            now["metadata"]["resourceVersion"], was["metadata"]["resourceVersion"],
            "{name} looped: {now}"
        );
    }
    // fine, badtrace and leak ran once each; flood and deep never started.
    let sims = metric(&env.metrics(), "blis_controller_simulations_total") - sims_before;
    assert!(sims <= 3.0, "{sims} simulations for 3 runnable scenarios");
    let events = env.ok(&["get", "events.events.k8s.io", "-n", "hostile", "-o", "json"]);
    let everything = format!("{events}{}", env.ok(&["get", "simscen", "-n", "hostile", "-o", "json"]));
    assert!(!everything.contains("e2e-sentinel"), "a private ConfigMap's content leaked: {everything}");
    eprintln!("ok: flood Stalled {flood_s:.2}s after the apply");

    let t2 = step("a status written by someone else is repaired");
    let fine = env.get("hostile", "fine");
    let fake = r#"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"Fake","message":"fake","lastTransitionTime":"2020-01-01T00:00:00Z"}]}}"#;
    env.ok(&["patch", "-n", "hostile", "simscen/fine", "--subresource=status", "--type=merge", "-p", fake]);
    let repaired = wait_until("fine repaired", Duration::from_secs(60), || {
        let o = env.get("hostile", "fine");
        (is_ready(&o) && cond(&o, "Stalled").is_some()).then_some(o)
    });
    assert_eq!(repaired["status"]["predictions"], fine["status"]["predictions"]);
    eprintln!("ok in {:.1}s (hostile step {:.1}s)", t2.elapsed().as_secs_f64(), t.elapsed().as_secs_f64());

    let t = step("controller killed mid-simulation: the restarted one finishes");
    ns(&env, "restart");
    env.apply("restart", &scenario("long", 8, 3600, 100.0, ""));
    wait_until("long simulating", Duration::from_secs(30), || {
        (cond_status(&env.get("restart", "long"), "Reconciling") == "True").then_some(())
    });
    controller.kill().unwrap();
    controller.wait().unwrap();
    // A status changed while the controller is down is repaired by the restarted one (it keeps no
    // memory of what it wrote; the object's managedFields name the other writer).
    env.ok(&["patch", "-n", "hostile", "simscen/fine", "--subresource=status", "--type=merge", "-p", fake]);
    let mut controller = env.start_controller();
    let down_repaired = Instant::now();
    let again = wait_until("fine repaired after a restart", Duration::from_secs(60), || {
        let o = env.get("hostile", "fine");
        (is_ready(&o) && cond(&o, "Stalled").is_some()).then_some(o)
    });
    assert_eq!(again["status"]["predictions"], fine["status"]["predictions"]);
    eprintln!(
        "ok: a status faked while the controller was down repaired {:.1}s after its restart",
        down_repaired.elapsed().as_secs_f64()
    );
    let long = wait_until("long Ready after restart", Duration::from_secs(240), || {
        let o = env.get("restart", "long");
        is_ready(&o).then_some(o)
    });
    assert_eq!(cond_status(&long, "Reconciling"), "False");
    assert!(long["status"]["predictions"]["overall"]["requests"]["completed"].as_u64().unwrap() > 100_000);
    eprintln!(
        "ok in {:.1}s (wall of the long run {}s)",
        t.elapsed().as_secs_f64(),
        long["status"]["wallTimeSeconds"]
    );

    if let Some(cp) = &env.cp {
        let t = step("API server restart: controller recovers and keeps reconciling");
        let o = Command::new(cp).arg("restart-apiserver").status().unwrap();
        assert!(o.success());
        wait_until("API server back", Duration::from_secs(60), || {
            env.kubectl(&["get", "--raw", "/readyz"], None).status.success().then_some(())
        });
        env.merge_patch("qs", "simscen/quickstart", r#"{"spec":{"replicas":3}}"#);
        // A controller that cannot renew its Lease in time stops (as client-go's leader election
        // does) and its Deployment restarts it; play the Deployment here.
        let restarted =
            wait_until("quickstart Ready after API-server restart", Duration::from_secs(120), || {
                if let Ok(Some(code)) = controller.try_wait() {
                    eprintln!("controller exited ({code}) after the API-server restart; restarting it");
                    controller = env.start_controller();
                }
                let o = env.get("qs", "quickstart");
                (is_ready(&o) && o["metadata"]["generation"] == 5).then_some(o)
            });
        assert_eq!(restarted["status"]["predictions"]["cost"]["gpus"], 3);
        eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());
    }

    let t = step("50 scenarios applied at once all reach Ready");
    ns(&env, "fifty");
    let many: String = (0..50)
        .map(|i| format!("---\n{}", scenario(&format!("s{i:02}"), 1 + i % 3, 30, 4.0 + f64::from(i % 5), "")))
        .collect();
    let mut peak_kb = 0u64;
    let pid = controller.id();
    let sims_before = metric(&env.metrics(), "blis_controller_simulations_total");
    env.apply("fifty", &many);
    wait_until("50 Ready", Duration::from_secs(300), || {
        peak_kb = peak_kb.max(vm_hwm_kb(pid));
        let list: Value =
            serde_json::from_str(&env.ok(&["get", "simscen", "-n", "fifty", "-o", "json"])).unwrap();
        let items = list["items"].as_array().unwrap();
        (items.len() == 50 && items.iter().all(is_ready)).then_some(())
    });
    let all_ready = t.elapsed();
    peak_kb = peak_kb.max(vm_hwm_kb(pid));
    eprintln!(
        "E2E-50: all 50 Ready in {:.2}s; controller peak RSS {:.1} MiB",
        all_ready.as_secs_f64(),
        peak_kb as f64 / 1024.0
    );

    // Each scenario is simulated exactly once: no reconcile on a lagging cache starts a second run
    // (which would also flip Ready back to False while it runs).
    std::thread::sleep(Duration::from_secs(2));
    let sims = metric(&env.metrics(), "blis_controller_simulations_total") - sims_before;
    assert_eq!(sims, 50.0, "50 scenarios must take 50 simulations");
    let list: Value =
        serde_json::from_str(&env.ok(&["get", "simscen", "-n", "fifty", "-o", "json"])).unwrap();
    assert!(list["items"].as_array().unwrap().iter().all(is_ready), "a Ready scenario went back: {list}");
    let m = env.metrics();
    assert!(
        m.contains("blis_controller_simulations_in_flight 0")
            && m.contains("blis_controller_simulations_total")
            && m.contains("blis_controller_reconcile_duration_seconds"),
        "{m}"
    );
    assert!(!env.lease_holder().is_empty(), "leader-election lease not held");

    let t = step("deleting a scenario cancels its running simulation");
    ns(&env, "cancel");
    let cancelled_before = metric(&env.metrics(), "blis_controller_simulations_cancelled_total");
    // Under the default memory budget of one run (--max-memory-mib 384): about 1.1 million requests.
    env.apply("cancel", &scenario("doomed", 8, 3600, 300.0, ""));
    wait_until("doomed simulating", Duration::from_secs(30), || {
        (metric(&env.metrics(), "blis_controller_simulations_in_flight") >= 1.0).then_some(())
    });
    env.ok(&["delete", "simscen", "doomed", "-n", "cancel", "--wait=false"]);
    let after = env.wait_cancelled(cancelled_before, "the deleted scenario's run cancelled");
    eprintln!(
        "ok in {:.1}s (cancelled {:.2}s after the delete)",
        t.elapsed().as_secs_f64(),
        after.as_secs_f64()
    );

    let t = step("two replicas: the standby waits, then takes over when the leader dies");
    let standby_port = env.metrics_port + 1;
    let standby =
        env.start_controller_on(standby_port, &[LEADER_ARGS, &["--identity", "e2e-standby"]].concat());
    wait_until("standby /readyz", Duration::from_secs(30), || {
        http_get(standby_port, "/readyz").contains("ok").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(metric(&http_get(standby_port, "/metrics"), "blis_controller_leader"), 0.0, "standby leads");
    assert_eq!(metric(&env.metrics(), "blis_controller_leader"), 1.0, "leader does not lead");
    assert_ne!(env.lease_holder(), "e2e-standby");
    ns(&env, "failover");
    env.apply("failover", &scenario("fo", 1, 10, 2.0, ""));
    env.ok(&["wait", "-n", "failover", "--for=condition=Ready", "simscen/fo", "--timeout=60s"]);
    assert_eq!(metric(&http_get(standby_port, "/metrics"), "blis_controller_reconciles_total"), 0.0);
    controller.kill().unwrap(); // no Lease release: the standby must wait for it to expire
    controller.wait().unwrap();
    env.ok(&["patch", "-n", "failover", "simscen/fo", "--type=merge", "-p", r#"{"spec":{"replicas":2}}"#]);
    let fo = wait_until("fo Ready after failover", Duration::from_secs(90), || {
        let o = env.get("failover", "fo");
        (is_ready(&o) && o["metadata"]["generation"] == 2).then_some(o)
    });
    assert_eq!(fo["status"]["predictions"]["cost"]["gpus"], 2);
    assert_eq!(env.lease_holder(), "e2e-standby");
    assert_eq!(metric(&http_get(standby_port, "/metrics"), "blis_controller_leader"), 1.0);
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("simulated-request limit: Stalled with SimulationLimitExceeded");
    env.stop_controller(standby);
    let limited = env.start_controller_with(&[LEADER_ARGS, &["--max-requests", "20000"]].concat());
    ns(&env, "limits");
    env.apply("limits", &scenario("big", 2, 600, 100.0, ""));
    let big = wait_until("big Stalled", Duration::from_secs(60), || {
        let o = env.get("limits", "big");
        (cond_status(&o, "Stalled") == "True").then_some(o)
    });
    let stalled = cond(&big, "Stalled").unwrap();
    assert_eq!(stalled["reason"], "SimulationLimitExceeded", "{stalled}");
    assert!(stalled["message"].as_str().unwrap().contains("20000"), "{stalled}");
    assert_eq!(cond_status(&big, "Ready"), "False");
    // The same limits hold for a sweep run inside the controller, and it is not rerun in a loop.
    env.apply("limits", &heavy_sweep("big-sweep", &[2, 3], 600));
    let get_sweep = || env.get_sweep("limits", "big-sweep");
    let big_sweep = wait_until("big sweep Stalled", Duration::from_secs(60), || {
        let o = get_sweep();
        (cond_status(&o, "Stalled") == "True").then_some(o)
    });
    let stalled = cond(&big_sweep, "Stalled").unwrap();
    assert_eq!(stalled["reason"], "SimulationLimitExceeded", "{stalled}");
    assert!(stalled["message"].as_str().unwrap().contains("20000"), "{stalled}");
    // A rerun would write Reconciling and then Stalled again, changing the object.
    std::thread::sleep(Duration::from_secs(3));
    let later = get_sweep();
    assert_eq!(
        later["metadata"]["resourceVersion"], big_sweep["metadata"]["resourceVersion"],
        "rerun: {later}"
    );
    env.stop_controller(limited);
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    eprintln!("\ne2e: all steps passed in {:.1}s", t_all.elapsed().as_secs_f64());
}
