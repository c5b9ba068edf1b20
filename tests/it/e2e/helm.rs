//! End-to-end test of the Helm chart against a real kube-apiserver + etcd (harness:
//! `tests/common/kube.rs`): `helm install` creates every object; the controller, run locally under the
//! chart's ServiceAccount (by impersonation; the test API server has no kubelet to start its pod),
//! reconciles scenarios in the namespaces the release watches, ignores the others, and is forbidden
//! from reading Secrets.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

use common::helm::helm_bin;
use common::kube::*;

const RELEASE: &str = "blis-e2e";
const RELEASE_NS: &str = "blis-helm";
const WATCHED: [&str; 2] = ["helm-a", "helm-b"];
const UNWATCHED: &str = "helm-c";
const CHART_SA: &str = "system:serviceaccount:blis-helm:blis-e2e-controller";

fn helm(env: &Env, args: &[&str]) -> String {
    let out = std::process::Command::new(helm_bin())
        .args(args)
        .args(["--kubeconfig", env.kubeconfig.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run helm");
    assert!(out.status.success(), "helm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn helm_release_installs_and_its_service_account_runs_the_controller() {
    let Some(env) = Env::from_env_as(18380, CHART_SA) else { return };
    let t_all = Instant::now();

    let t = step("helm install (namespaced mode, 2 replicas: leader election)");
    for n in [RELEASE_NS, WATCHED[0], WATCHED[1], UNWATCHED] {
        ns(&env, n);
    }
    let watch = format!("watchNamespaces={{{}}}", WATCHED.join(","));
    helm(
        &env,
        &[
            "upgrade",
            "--install",
            RELEASE,
            "charts/blis",
            "--namespace",
            RELEASE_NS,
            "--set",
            &watch,
            "--set",
            "replicaCount=2",
        ],
    );
    // Every object of the release exists, where the chart put it.
    let manifest = helm(&env, &["get", "manifest", RELEASE, "--namespace", RELEASE_NS]);
    let mut created = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&manifest) {
        let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
        let v: Value = serde_json::to_value(v).unwrap();
        if v.is_null() {
            continue;
        }
        let kind = v["kind"].as_str().unwrap().to_string();
        let name = v["metadata"]["name"].as_str().unwrap().to_string();
        let mut args = vec!["get".to_string(), kind.clone(), name.clone(), "-o".into(), "name".into()];
        if let Some(n) = v["metadata"]["namespace"].as_str() {
            args.extend(["-n".into(), n.into()]);
        }
        env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        created.push(format!("{kind}/{name}"));
    }
    created.sort();
    eprintln!("release objects: {}", created.join(", "));
    for want in [
        "ServiceAccount/blis-e2e-controller",
        "Deployment/blis-e2e-controller",
        "Service/blis-e2e-controller-metrics",
        "ClusterRole/blis-e2e-controller",
        "Role/blis-e2e-controller",
        "RoleBinding/blis-e2e-controller",
        "Role/blis-e2e-controller-leader-election",
    ] {
        assert!(created.iter().any(|c| c == want), "release lacks {want}: {created:?}");
    }
    for crd in ["simulationscenarios", "simulationsweeps", "hardwareprofiles"] {
        env.ok(&["get", "crd", &format!("{crd}.twin.blis.dev")]);
    }
    env.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/simulationscenarios.twin.blis.dev",
        "--timeout=30s",
    ]);
    let dep: Value = serde_json::from_str(&env.ok(&[
        "get",
        "deployment",
        "blis-e2e-controller",
        "-n",
        RELEASE_NS,
        "-o",
        "json",
    ]))
    .unwrap();
    let args: Vec<&str> = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--leader-election") && args.contains(&"--namespace=helm-a"), "{args:?}");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("the chart's ServiceAccount: what it may and may not do");
    let can = |args: &[&str]| {
        env.kubectl(&[&["auth", "can-i", "--as", CHART_SA][..], args].concat(), None).status.success()
    };
    for n in WATCHED {
        assert!(can(&["watch", "simulationscenarios.twin.blis.dev", "-n", n]));
        assert!(can(&["patch", "simulationscenarios.twin.blis.dev", "--subresource=status", "-n", n]));
        assert!(can(&["create", "events.events.k8s.io", "-n", n]));
        assert!(!can(&["get", "secrets", "-n", n]), "Secrets must stay out of reach");
        assert!(!can(&["patch", "simulationscenarios.twin.blis.dev", "-n", n]), "spec stays the user's");
    }
    assert!(!can(&["list", "simulationscenarios.twin.blis.dev", "-n", UNWATCHED]), "unwatched namespace");
    assert!(!can(&["list", "simulationscenarios.twin.blis.dev", "--all-namespaces"]));
    assert!(can(&["list", "hardwareprofiles.twin.blis.dev"]));
    assert!(can(&["update", "leases.coordination.k8s.io", "-n", RELEASE_NS]));
    assert!(!can(&["update", "leases.coordination.k8s.io", "-n", WATCHED[0]]));
    // The controller's own credentials (impersonation) really are refused Secrets.
    let o = std::process::Command::new(&env.kubectl)
        .args(["--kubeconfig", env.controller_kubeconfig.to_str().unwrap()])
        .args(["get", "secrets", "-n", WATCHED[0]])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("Forbidden"), "reading Secrets must be forbidden: {err}");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let t = step("the controller under the chart's ServiceAccount reconciles the watched namespaces");
    let mut controller = env.start_controller_with(&[
        &format!("--namespace={}", WATCHED.join(",")),
        "--leader-election",
        "--leader-election-namespace",
        RELEASE_NS,
    ]);
    wait_until("controller /readyz", Duration::from_secs(30), || {
        http_get(env.metrics_port, "/readyz").contains("ok").then_some(())
    });
    let yaml = scenario("helm-candidate", 1, 5, 4.0, "");
    for n in [WATCHED[0], WATCHED[1], UNWATCHED] {
        env.apply(n, &yaml);
    }
    for n in WATCHED {
        env.ok(&["wait", "-n", n, "--for=condition=Ready", "simscen/helm-candidate", "--timeout=90s"]);
        let obj = env.get(n, "helm-candidate");
        assert!(is_ready(&obj), "{n}: {obj}");
        assert_eq!(cond_status(&obj, "SLOMet"), "True", "{n}: {obj}");
    }
    let lease: Value =
        serde_json::from_str(&env.ok(&["get", "lease", "blis-controller", "-n", RELEASE_NS, "-o", "json"]))
            .unwrap();
    assert!(lease["spec"]["holderIdentity"].is_string(), "leader Lease in the release namespace: {lease}");
    // Outside its namespaces the controller does nothing; inside, each scenario took one simulation
    // and stays Ready.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(metric(&env.metrics(), "blis_controller_simulations_total"), 2.0, "one run per scenario");
    for n in WATCHED {
        let obj = env.get(n, "helm-candidate");
        assert!(is_ready(&obj), "{n} went back from Ready: {obj}");
    }
    let ignored = env.get(UNWATCHED, "helm-candidate");
    assert!(ignored.get("status").is_none_or(Value::is_null), "unwatched namespace reconciled: {ignored}");
    eprintln!("ok in {:.1}s", t.elapsed().as_secs_f64());

    let _ = controller.kill();
    let _ = controller.wait();
    helm(&env, &["uninstall", RELEASE, "--namespace", RELEASE_NS]);
    // Namespaces stay (the test API server runs no namespace controller to finish deleting them).
    for n in [WATCHED[0], WATCHED[1], UNWATCHED] {
        env.ok(&["delete", "simscen", "helm-candidate", "-n", n]);
    }
    eprintln!("e2e-helm: all steps passed in {:.1}s", t_all.elapsed().as_secs_f64());
}
