//! End-to-end: a `SimulationSweep` of 12 candidates against a real kube-apiserver becomes Ready with
//! the same ranking as `blis sweep --output json` on the same spec; an unchanged spec is not re-run;
//! an invalid spec is Stalled with a message naming the field. With fan-out forced, the controller
//! creates the Indexed Job; the test runs the shard command the Job's pods would (under their
//! ServiceAccount), and the controller merges the shards into the same ranking and cleans up.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common;

use common::kube::*;

const NS: &str = "sweeps";
const NAME: &str = "replicas";
const FANNED: &str = "fanned";
const WORKER: &str = "system:serviceaccount:sweeps:blis-sweep-worker";

/// What the chart renders for a namespace where sweeps fan out: the shard pods' ServiceAccount,
/// bound to the worker ClusterRole of hack/rbac.yaml.
const WORKER_RBAC: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: blis-sweep-worker
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: blis-controller-sweep-worker
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: blis-controller-sweep-worker}
subjects:
- {kind: ServiceAccount, name: blis-sweep-worker, namespace: sweeps}
"#;

fn sweep_yaml(extra: &str) -> String {
    named_sweep_yaml(NAME, extra)
}

fn named_sweep_yaml(name: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: twin.blis.dev/v1alpha1
kind: SimulationSweep
metadata:
  name: {name}
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
    get_named(env, NAME)
}

fn get_named(env: &Env, name: &str) -> Value {
    env.get_sweep(NS, name)
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

    let t = step("CRDs and RBAC");
    env.install(&[]);
    let can = |args: &[&str]| env.sa_can(args);
    assert!(can(&["watch", "simulationsweeps.twin.blis.dev", "-n", NS]));
    assert!(can(&["patch", "simulationsweeps.twin.blis.dev", "--subresource=status", "-n", NS]));
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    // With an image, sweeps of 1000+ candidates (or asking for it) fan out; the 12-candidate one does not.
    let fan_out_args = ["--sweep-image", "blis:e2e", "--sweep-fan-out-threshold", "1000"];
    let mut controller = env.start_controller_with(&[LEADER_ARGS, &fan_out_args[..]].concat());
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

    let t = step("fan-out forced: an Indexed Job of 4 shards; shard results merged into the same ranking");
    env.apply(NS, WORKER_RBAC);
    let worker_can = |args: &[&str]| {
        env.kubectl(&[&["auth", "can-i", "--as", WORKER, "-n", NS][..], args].concat(), None).status.success()
    };
    assert!(worker_can(&["get", "simulationsweeps.twin.blis.dev"]) && worker_can(&["create", "configmaps"]));
    assert!(
        !worker_can(&["get", "secrets"]) && !worker_can(&["list", "configmaps"]),
        "worker over-privileged"
    );
    // A fresh object (a rerun on the same control plane would find it ranked already).
    env.ok(&["delete", "simsweep", FANNED, "-n", NS, "--ignore-not-found", "--wait"]);
    env.apply(NS, &named_sweep_yaml(FANNED, "\n  fanOut: {mode: Always, shards: 4}"));
    let job_name = format!("{FANNED}-shards");
    let job: Value = wait_until("the shard Job", Duration::from_secs(60), || {
        let o = env.kubectl(&["get", "job", &job_name, "-n", NS, "-o", "json"], None);
        o.status.success().then(|| serde_json::from_slice(&o.stdout).unwrap())
    });
    let sweep = get_named(&env, FANNED);
    let js = &job["spec"];
    assert_eq!(js["completionMode"], "Indexed");
    assert_eq!((js["completions"].as_u64(), js["parallelism"].as_u64()), (Some(4), Some(4)));
    let owner = &job["metadata"]["ownerReferences"][0];
    assert_eq!((&owner["kind"], &owner["uid"]), (&Value::from("SimulationSweep"), &sweep["metadata"]["uid"]));
    let pod = &js["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "blis-sweep-worker");
    assert_eq!(pod["containers"][0]["image"], "blis:e2e");
    let args: Vec<String> = names(&pod["containers"][0]["args"], None);
    assert_eq!(args[..7], ["sweep-shard", "--namespace", NS, "--sweep", FANNED, "--shards", "4"]);
    let hash = job["metadata"]["annotations"]["twin.blis.dev/spec-hash"].as_str().unwrap().to_string();
    let waiting = wait_until("Reconciling=FanOut", Duration::from_secs(30), || {
        let o = get_named(&env, FANNED);
        (cond(&o, "Reconciling").is_some_and(|c| c["reason"] == "FanOut")).then_some(o)
    });
    assert_eq!(waiting["status"]["fanOut"]["shards"].as_u64(), Some(4), "{:#}", waiting["status"]);
    assert_eq!(cond_status(&waiting, "Ready"), "False");
    // No pods run on this control plane: do the pods' work, each shard as its JOB_COMPLETION_INDEX.
    let worker_kubeconfig = env.kubeconfig_as(WORKER, "worker.kubeconfig");
    for i in 0..4 {
        let out = Command::new(&env.bin)
            .args([
                "sweep-shard",
                "--namespace",
                NS,
                "--sweep",
                FANNED,
                "--shards",
                "4",
                "--spec-hash",
                &hash,
            ])
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("KUBECONFIG", &worker_kubeconfig)
            .output()
            .unwrap();
        assert!(out.status.success(), "shard {i}: {}", String::from_utf8_lossy(&out.stderr));
        if i == 1 {
            wait_until("2 of 4 shards collected", Duration::from_secs(30), || {
                let o = get_named(&env, FANNED);
                (o["status"]["fanOut"]["collected"].as_u64() == Some(2)).then_some(())
            });
        }
    }
    let merged = wait_until("the fanned-out sweep Ready", Duration::from_secs(60), || {
        let o = get_named(&env, FANNED);
        is_ready(&o).then_some(o)
    });
    assert_eq!(names(&merged["status"]["ranking"], Some("name")), ranking, "sharded vs single ranking");
    assert_eq!(merged["status"]["best"], st["best"]);
    assert_eq!(merged["status"]["fanOut"]["collected"].as_u64(), Some(4));
    let uid = sweep["metadata"]["uid"].as_str().unwrap();
    wait_until("the Job and shard ConfigMaps deleted", Duration::from_secs(30), || {
        let job = env.kubectl(&["get", "job", &job_name, "-n", NS], None);
        let label = format!("twin.blis.dev/sweep-uid={uid}");
        let cms = env.ok(&["get", "configmaps", "-n", NS, "-l", &label, "-o", "name"]);
        (!job.status.success() && cms.trim().is_empty()).then_some(())
    });
    eprintln!(
        "ok in {:.1}s (Job indexed 4/4, shards merged, Job and ConfigMaps deleted)",
        t.elapsed().as_secs_f64()
    );

    let t = step("deleting a sweep that runs in the controller cancels its run");
    let cancelled_before = metric(&env.metrics(), "blis_controller_simulations_cancelled_total");
    // Eight candidates of 720k requests each: over ten seconds of work even in a release build, so
    // it is still running when deleted (and would outlast the wait were it not cancelled).
    env.apply(NS, &heavy_sweep("doomed", &[6, 7, 8, 9, 10, 11, 12, 13], 7200));
    // Its own status says its run started (written before the run is spawned), and a run is in flight.
    wait_until("doomed simulating", Duration::from_secs(30), || {
        let o = get_named(&env, "doomed");
        (cond(&o, "Reconciling").is_some_and(|c| c["status"] == "True" && c["reason"] == "Simulating")
            && metric(&env.metrics(), "blis_controller_simulations_in_flight") >= 1.0)
            .then_some(())
    });
    env.ok(&["delete", "simsweep", "doomed", "-n", NS, "--wait=false"]);
    let after = env.wait_cancelled(cancelled_before, "the deleted sweep's run cancelled");
    eprintln!(
        "ok in {:.1}s (cancelled {:.2}s after the delete)",
        t.elapsed().as_secs_f64(),
        after.as_secs_f64()
    );

    let _ = controller.kill();
    let _ = controller.wait();
    eprintln!("e2e-sweep: all steps passed");
}
