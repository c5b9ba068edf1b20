//! End-to-end: a `SimulationSweep` of 12 candidates against a real kube-apiserver becomes Ready with
//! the same ranking as `blis sweep --output json` on the same spec; an unchanged spec is not re-run;
//! an invalid spec is Stalled with a message naming the field.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

mod common;

use common::kube::*;

const NS: &str = "sweeps";
const NAME: &str = "replicas";

fn sweep_yaml(extra: &str) -> String {
    format!(
        r#"apiVersion: twin.blis.dev/v1alpha1
kind: SimulationSweep
metadata:
  name: {NAME}
spec:
  seed: 7
  objective: dollarsPerMillionTokens{extra}
  parameters:
  - path: replicas
    range: {{from: 1, to: 4, step: 1}}
  - path: vllm.maxNumSeqs
    values: [16, 64, 256]
  base:
    model: {{name: meta-llama/Llama-3.1-8B-Instruct}}
    hardware: {{gpu: H100-SXM-80GB, tensorParallelism: 1}}
    replicas: 1
    gates: {{maxTtftP90Ms: 400, maxItlP90Ms: 40}}
    workload:
      durationSeconds: 5
      arrival: {{process: poisson, ratePerSecond: 8}}
      classes:
      - name: chat
        inputTokens: {{distribution: lognormal, mean: 400, stdDev: 150, min: 16, max: 2048}}
        outputTokens: {{distribution: normal, mean: 80, stdDev: 20, min: 8, max: 256}}
"#
    )
}

fn get_sweep(env: &Env) -> Value {
    serde_json::from_str(&env.ok(&["get", "simsweep", NAME, "-n", NS, "-o", "json"])).unwrap()
}

fn names(list: &Value, key: Option<&str>) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list:#}"))
        .iter()
        .map(|x| key.map_or(x, |k| &x[k]).as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn sweep_reconciles_into_a_ranking() {
    let Some(env) = Env::from_env(18180) else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let t = step("CRDs and RBAC");
    env.ok(&["apply", "--server-side", "-f", root.join("crds").to_str().unwrap()]);
    env.ok(&["wait", "--for=condition=Established", "crd/simulationsweeps.twin.blis.dev", "--timeout=30s"]);
    env.ok(&["apply", "-f", root.join("hack/rbac.yaml").to_str().unwrap()]);
    let can = |args: &[&str]| {
        env.kubectl(&[&["auth", "can-i", "--as", SA][..], args].concat(), None).status.success()
    };
    assert!(can(&["watch", "simulationsweeps.twin.blis.dev", "-n", NS]));
    assert!(can(&["patch", "simulationsweeps.twin.blis.dev", "--subresource=status", "-n", NS]));
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let mut controller = env.start_controller();
    wait_until("controller /readyz", Duration::from_secs(30), || {
        http_get(env.metrics_port, "/readyz").contains("ok").then_some(())
    });

    let t = step("a sweep of 12 candidates becomes Ready with the ranking of `blis sweep`");
    ns(&env, NS);
    let yaml = sweep_yaml("");
    env.apply(NS, &yaml);
    env.ok(&["wait", "-n", NS, "--for=condition=Ready", &format!("simsweep/{NAME}"), "--timeout=300s"]);
    let first = get_sweep(&env);
    let st = &first["status"];
    let ranking = names(&st["ranking"], Some("name"));
    assert_eq!(ranking.len(), 12, "{st:#}");
    assert_eq!(st["candidates"].as_u64(), Some(12));
    assert_eq!(st["observedGeneration"], first["metadata"]["generation"]);
    let ranks: Vec<u64> =
        st["ranking"].as_array().unwrap().iter().filter_map(|r| r["rank"].as_u64()).collect();
    assert_eq!(ranks, (1..=12).collect::<Vec<u64>>());
    for r in st["ranking"].as_array().unwrap() {
        for k in ["passed", "verdict", "ttftP90Ms", "itlP90Ms", "gpus"] {
            assert!(!r[k].is_null(), "{k} missing in {r:#}");
        }
    }
    let best = st["best"].as_str().expect("a candidate passes the gates");
    assert_eq!(best, ranking[0]);
    assert_eq!(st["ranking"][0]["passed"], Value::Bool(true));
    for c in ["Ready", "Reconciling", "Stalled"] {
        assert_eq!(cond(&first, c).unwrap()["observedGeneration"], first["metadata"]["generation"]);
    }
    assert_eq!(cond_status(&first, "Reconciling"), "False");
    assert_eq!(cond_status(&first, "Stalled"), "False");

    let file = env.dir.join("e2e-sweep.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let cli = Command::new(&env.bin)
        .args(["sweep", "--output", "json"])
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(ranking, names(&cli["ranking"], Some("name")), "controller vs CLI ranking");
    assert_eq!(names(&st["pareto"], None), names(&cli["pareto"], None));
    assert_eq!(st["best"], cli["best"]);
    for (s, c) in st["ranking"].as_array().unwrap().iter().zip(cli["ranking"].as_array().unwrap()) {
        assert_eq!(s["objective"].as_f64(), c["objective"].as_f64(), "{s:#} vs {c:#}");
        assert_eq!(s["ttftP90Ms"].as_f64(), c["figures"]["ttft_p90_ms"].as_f64(), "{s:#} vs {c:#}");
        assert_eq!(s["verdict"], c["verdict"]);
    }
    eprintln!("ok in {:.1}s (best {best}, {} on the Pareto set)", t.elapsed().as_secs_f64(), st["pareto"]);

    let t = step("an unchanged spec is not re-run");
    env.ok(&["annotate", "-n", NS, &format!("simsweep/{NAME}"), "touched=yes"]);
    std::thread::sleep(Duration::from_secs(3));
    let again = get_sweep(&env);
    assert_eq!(
        again["status"]["wallTimeSeconds"].as_f64(),
        st["wallTimeSeconds"].as_f64(),
        "re-ran: {:#}",
        again["status"]
    );
    assert_eq!(again["status"]["inputsHash"], st["inputsHash"]);
    assert_eq!(cond_status(&again, "Ready"), "True");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("an invalid spec is Stalled with a message naming the field");
    env.apply(NS, &sweep_yaml("\n  maxCandidates: 5"));
    let stalled = wait_until("Stalled", Duration::from_secs(60), || {
        let o = get_sweep(&env);
        (cond_status(&o, "Stalled") == "True").then_some(o)
    });
    let msg = cond(&stalled, "Stalled").unwrap()["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("spec.maxCandidates"), "{msg}");
    assert_eq!(cond_status(&stalled, "Ready"), "False");
    assert_eq!(stalled["status"]["observedGeneration"], stalled["metadata"]["generation"]);
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("fixing the spec ranks again");
    env.apply(NS, &yaml);
    let fixed = wait_until("Ready again", Duration::from_secs(300), || {
        let o = get_sweep(&env);
        (is_ready(&o) && o["status"]["observedGeneration"] == o["metadata"]["generation"]).then_some(o)
    });
    assert_eq!(names(&fixed["status"]["ranking"], Some("name")), ranking, "same seed, same order");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let _ = controller.kill();
    let _ = controller.wait();
    eprintln!("e2e-sweep: all steps passed");
}
