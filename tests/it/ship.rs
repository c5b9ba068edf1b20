//! What ships: the Helm chart (`charts/blis`, rendered by a real `helm` built by `hack/helm.sh`), its
//! least-privilege RBAC (also `hack/rbac.yaml`, which must not drift from it), its CRDs, and the
//! `Dockerfile` the chart's Deployment runs.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::common;

use common::helm::helm_bin;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm(args: &[&str]) -> Output {
    Command::new(helm_bin()).args(args).current_dir(root()).output().expect("run helm")
}

/// `helm template` of the chart as release `blis` in `blis-system` with `--set` values: the documents.
fn render(sets: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "blis", "charts/blis", "--namespace", "blis-system"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = helm(&args);
    assert!(out.status.success(), "helm template {sets:?}: {}", String::from_utf8_lossy(&out.stderr));
    docs(&String::from_utf8_lossy(&out.stdout))
}

fn docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).expect("YAML document");
            serde_json::to_value(v).expect("JSON-compatible YAML")
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect();
    k.sort();
    k
}

/// A rule set as a sorted list of (group, resource, sorted verbs) triples, for set comparison.
fn flat_rules(rules: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for r in rules.as_array().expect("rules") {
        let mut verbs: Vec<String> =
            r["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        verbs.sort();
        for g in r["apiGroups"].as_array().unwrap() {
            for res in r["resources"].as_array().unwrap() {
                out.push((g.as_str().unwrap().into(), res.as_str().unwrap().into(), verbs.clone()));
            }
        }
    }
    out.sort();
    out
}

fn container(docs: &[Value]) -> &Value {
    let d = find(docs, "Deployment", "blis-controller").expect("Deployment blis-controller");
    &d["spec"]["template"]["spec"]["containers"][0]
}

fn args(docs: &[Value]) -> Vec<String> {
    container(docs)["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

/// The final rule set: everything the controller reads and writes, nothing more.
fn expected_namespaced_rules() -> Vec<(String, String, Vec<String>)> {
    let read = ["get", "list", "watch"];
    let mut r: Vec<(&str, &str, Vec<&str>)> = vec![
        ("twin.blis.dev", "simulationscenarios", read.to_vec()),
        ("twin.blis.dev", "simulationsweeps", read.to_vec()),
        ("twin.blis.dev", "simulationscenarios/status", vec!["get", "patch", "update"]),
        ("twin.blis.dev", "simulationsweeps/status", vec!["get", "patch", "update"]),
        ("", "configmaps", vec!["get", "list", "watch", "delete"]),
        ("apps", "deployments", read.to_vec()),
        ("leaderworkerset.x-k8s.io", "leaderworkersets", read.to_vec()),
        ("disaggregatedset.x-k8s.io", "disaggregatedsets", read.to_vec()),
        ("batch", "jobs", vec!["get", "list", "watch", "create", "delete"]),
        ("events.k8s.io", "events", vec!["create", "patch"]),
    ];
    for g in ["inference.networking.x-k8s.io", "inference.networking.k8s.io"] {
        for res in ["inferencepools", "inferenceobjectives", "inferencemodels"] {
            r.push((g, res, read.to_vec()));
        }
    }
    let mut out: Vec<(String, String, Vec<String>)> = r
        .into_iter()
        .map(|(g, res, mut v)| {
            v.sort();
            (g.into(), res.into(), v.into_iter().map(String::from).collect())
        })
        .collect();
    out.sort();
    out
}

fn hardware_profile_rule() -> (String, String, Vec<String>) {
    ("twin.blis.dev".into(), "hardwareprofiles".into(), vec!["get".into(), "list".into(), "watch".into()])
}

#[test]
fn chart_lints_and_renders_a_locked_down_controller() {
    let out = helm(&["lint", "--strict", "charts/blis"]);
    assert!(
        out.status.success(),
        "helm lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let d = render(&[]);
    // The controller's objects, and the sweep shard pods' ClusterRole, ServiceAccount and RoleBinding.
    assert_eq!(
        kinds(&d),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceAccount"
        ]
    );
    let dep = find(&d, "Deployment", "blis-controller").unwrap();
    assert_eq!(dep["metadata"]["namespace"], "blis-system");
    assert_eq!(dep["spec"]["replicas"], 1);
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "blis-controller");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = container(&d);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    for k in ["requests", "limits"] {
        assert!(c["resources"][k]["memory"].is_string(), "resources.{k}.memory missing: {c}");
        assert!(c["resources"][k]["cpu"].is_string(), "resources.{k}.cpu missing: {c}");
    }
    // Probes hit the health endpoints on the port the controller serves them on.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["ports"][0]["name"], "metrics");
    let port = c["ports"][0]["containerPort"].as_u64().unwrap();
    let a = args(&d);
    assert!(a.contains(&format!("--metrics-addr=0.0.0.0:{port}")), "{a:?}");
    assert!(!a.iter().any(|x| x == "--leader-election" || x.starts_with("--namespace")), "{a:?}");
    let env: Vec<&str> = c["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(env.contains(&"POD_NAMESPACE") && env.contains(&"POD_NAME"), "{env:?}");
    let svc = find(&d, "Service", "blis-controller-metrics").unwrap();
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(svc["spec"]["selector"], dep["spec"]["selector"]["matchLabels"]);
}

#[test]
fn chart_rbac_is_least_privilege_and_hack_rbac_does_not_drift() {
    let d = render(&[]);
    let cr = find(&d, "ClusterRole", "blis-controller").unwrap();
    let mut expected = expected_namespaced_rules();
    expected.push(hardware_profile_rule());
    expected.sort();
    assert_eq!(flat_rules(&cr["rules"]), expected);
    for (g, res, verbs) in flat_rules(&cr["rules"]) {
        assert!(g != "*" && res != "*" && !verbs.contains(&"*".to_string()), "wildcard rule: {g} {res}");
        assert_ne!(res, "secrets", "the controller must never read Secrets");
    }
    let crb = find(&d, "ClusterRoleBinding", "blis-controller").unwrap();
    assert_eq!(
        crb["subjects"],
        json!([{"kind": "ServiceAccount", "name": "blis-controller", "namespace": "blis-system"}])
    );

    // hack/rbac.yaml (what the e2e tests run the controller under) equals the chart's rules.
    let rendered = render(&["leaderElection.enabled=true"]);
    let hack = docs(&std::fs::read_to_string(root().join("hack/rbac.yaml")).unwrap());
    for (kind, name) in [
        ("ClusterRole", "blis-controller"),
        ("Role", "blis-controller-leader-election"),
        ("ClusterRole", "blis-controller-sweep-worker"),
    ] {
        let h = find(&hack, kind, name).unwrap_or_else(|| panic!("hack/rbac.yaml lacks {kind} {name}"));
        let r = find(&rendered, kind, name).unwrap_or_else(|| panic!("chart lacks {kind} {name}"));
        assert_eq!(
            flat_rules(&h["rules"]),
            flat_rules(&r["rules"]),
            "{kind} {name}: hack/rbac.yaml drifted from charts/blis (copy the chart's rules)"
        );
        assert_eq!(h["metadata"]["namespace"], r["metadata"]["namespace"]);
    }
    for (kind, name) in
        [("ClusterRoleBinding", "blis-controller"), ("RoleBinding", "blis-controller-leader-election")]
    {
        let h = find(&hack, kind, name).unwrap_or_else(|| panic!("hack/rbac.yaml lacks {kind} {name}"));
        let r = find(&rendered, kind, name).unwrap();
        assert_eq!((&h["roleRef"], &h["subjects"]), (&r["roleRef"], &r["subjects"]), "{kind} {name}");
    }
}

#[test]
fn sweep_shard_pods_get_a_service_account_that_only_reads_sweeps_and_writes_config_maps() {
    let d = render(&["watchNamespaces={team-a}", "sweepFanOut.namespaces={team-b,team-a}"]);
    let a = args(&d);
    for flag in [
        "--sweep-image=blis:0.1.0",
        "--sweep-service-account=blis-sweep-worker",
        "--sweep-fan-out-threshold=2000",
        "--sweep-shards=4",
    ] {
        assert!(a.iter().any(|x| x == flag), "{flag} missing in {a:?}");
    }
    let cr = find(&d, "ClusterRole", "blis-controller-sweep-worker").expect("worker ClusterRole");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        flat_rules(&cr["rules"]),
        [
            ("".to_string(), "configmaps".to_string(), s(&["create", "get", "patch"])),
            ("twin.blis.dev".to_string(), "simulationsweeps".to_string(), s(&["get"])),
        ]
    );
    let mut bound: Vec<&str> = d
        .iter()
        .filter(|x| x["kind"] == "RoleBinding" && x["metadata"]["name"] == "blis-controller-sweep-worker")
        .map(|rb| {
            let ns = rb["metadata"]["namespace"].as_str().unwrap();
            assert_eq!(rb["roleRef"]["kind"], "ClusterRole");
            assert_eq!(
                rb["subjects"],
                json!([{"kind": "ServiceAccount", "name": "blis-sweep-worker", "namespace": ns}])
            );
            let sa = d.iter().find(|x| {
                x["kind"] == "ServiceAccount"
                    && x["metadata"]["namespace"] == ns
                    && x["metadata"]["name"] == "blis-sweep-worker"
            });
            assert!(sa.is_some(), "no shard ServiceAccount in {ns}");
            ns
        })
        .collect();
    bound.sort();
    assert_eq!(
        bound,
        ["blis-system", "team-a", "team-b"],
        "release, watched and listed namespaces, once each"
    );

    let off = render(&["sweepFanOut.enabled=false"]);
    assert!(!args(&off).iter().any(|x| x.starts_with("--sweep-")), "{:?}", args(&off));
    assert!(find(&off, "ClusterRole", "blis-controller-sweep-worker").is_none());
}

#[test]
fn several_replicas_elect_a_leader_and_listed_namespaces_get_roles_only() {
    let d = render(&["replicaCount=2"]);
    assert!(args(&d).contains(&"--leader-election".to_string()));
    let role = find(&d, "Role", "blis-controller-leader-election").expect("Lease Role");
    assert_eq!(role["metadata"]["namespace"], "blis-system");
    assert_eq!(
        flat_rules(&role["rules"]),
        [(
            "coordination.k8s.io".to_string(),
            "leases".to_string(),
            vec!["create", "get", "patch", "update"].into_iter().map(String::from).collect::<Vec<_>>()
        )]
    );
    assert!(
        find(&render(&["leaderElection.enabled=true"]), "Role", "blis-controller-leader-election").is_some()
    );

    let d = render(&["watchNamespaces={team-a,team-b}"]);
    let a = args(&d);
    assert!(a.contains(&"--namespace=team-a".to_string()) && a.contains(&"--namespace=team-b".to_string()));
    // Cluster-wide: only the cluster-scoped HardwareProfiles.
    let cr = find(&d, "ClusterRole", "blis-controller").unwrap();
    assert_eq!(flat_rules(&cr["rules"]), [hardware_profile_rule()]);
    for ns in ["team-a", "team-b"] {
        let role = d
            .iter()
            .find(|x| x["kind"] == "Role" && x["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("no Role in {ns}"));
        assert_eq!(flat_rules(&role["rules"]), expected_namespaced_rules());
        let rb = d
            .iter()
            .find(|x| {
                x["kind"] == "RoleBinding"
                    && x["metadata"]["namespace"] == ns
                    && x["metadata"]["name"] == "blis-controller"
            })
            .unwrap();
        assert_eq!(rb["subjects"][0]["namespace"], "blis-system");
        assert_eq!(rb["roleRef"]["name"], role["metadata"]["name"]);
    }
}

#[test]
fn optional_objects_render_and_the_values_schema_rejects_bad_values() {
    let d = render(&["serviceMonitor.enabled=true", "networkPolicy.enabled=true"]);
    let sm = find(&d, "ServiceMonitor", "blis-controller").expect("ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    let np = find(&d, "NetworkPolicy", "blis-controller").expect("NetworkPolicy");
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));

    for (set, needle) in [
        ("replicaCount=0", "replicaCount"),
        ("imagee.tag=x", "imagee"),
        ("watchNamespaces={Bad_NS}", "watchNamespaces"),
        ("controller.maxConcurrent=0", "maxConcurrent"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
    ] {
        let out = helm(&["template", "blis", "charts/blis", "--set", set]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} must be rejected by values.schema.json");
        assert!(err.contains(needle), "--set {set}: error does not name {needle}: {err}");
    }
}

#[test]
fn chart_crds_equal_the_generated_ones() {
    let chart = std::fs::read_to_string(root().join("charts/blis/crds/blis.yaml")).unwrap();
    let generated = std::fs::read_to_string(root().join("crds/blis.yaml")).unwrap();
    assert!(
        chart == generated,
        "charts/blis/crds/blis.yaml is out of date: cp crds/blis.yaml charts/blis/crds/"
    );
}

#[test]
fn dockerfile_runs_the_binary_the_chart_expects() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let lines: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let stages: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.starts_with("FROM ")).map(|(i, _)| i).collect();
    assert!(stages.len() >= 2, "multi-stage build expected");
    let build = &lines[stages[0]..stages[stages.len() - 1]].join("\n");
    let runtime = &lines[stages[stages.len() - 1]..];
    // The profile-guided release build, whose last step is a locked release build of `blis`.
    assert!(build.contains("RUN hack/release.sh"), "{build}");
    assert!(build.contains("target/pgo/blis /blis"), "{build}");
    let script = std::fs::read_to_string(root().join("hack/release.sh")).unwrap();
    assert!(script.contains("cargo build --release --locked --bin blis"), "{script}");
    assert!(script.contains("OUT=${OUT:-target/pgo/blis}"), "{script}");
    assert!(runtime[0].contains("distroless") && runtime[0].ends_with(":nonroot"), "{}", runtime[0]);
    assert!(runtime.contains(&"COPY --from=build /blis /blis"), "{runtime:?}");
    assert!(!runtime.iter().any(|l| l.starts_with("RUN ")), "the runtime stage has no shell");
    let user = runtime.iter().find_map(|l| l.strip_prefix("USER ")).expect("USER");
    let uid: u64 = user.split(':').next().unwrap().parse().expect("numeric USER");
    assert_ne!(uid, 0);
    assert!(runtime.contains(&r#"ENTRYPOINT ["/blis"]"#), "{runtime:?}");
    assert!(runtime.contains(&r#"CMD ["controller"]"#), "{runtime:?}");

    // The chart relies on that entrypoint and user.
    let d = render(&[]);
    let c = container(&d);
    assert!(c.get("command").is_none(), "the chart must use the image's ENTRYPOINT");
    assert_eq!(args(&d)[0], "controller");
    let pod = &find(&d, "Deployment", "blis-controller").unwrap()["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], uid);
    assert_eq!(
        pod["securityContext"]["runAsGroup"].as_u64().unwrap().to_string(),
        user.split(':').nth(1).unwrap()
    );
    let appversion = std::fs::read_to_string(root().join("charts/blis/Chart.yaml")).unwrap();
    assert!(c["image"].as_str().unwrap().ends_with(":0.1.0") && appversion.contains("appVersion: \"0.1.0\""));
    assert!(
        appversion.contains(&format!("appVersion: \"{}\"", env!("CARGO_PKG_VERSION"))),
        "appVersion != crate version"
    );
}

#[test]
fn chart_memory_limit_follows_the_admission_limits() {
    let limit = |d: &[Value]| container(d)["resources"]["limits"]["memory"].as_str().unwrap().to_string();
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("charts/blis/values.yaml")).unwrap())
            .unwrap();
    let c = &values["controller"];
    let (per_run, runs, base) = (
        c["maxMemoryMib"].as_u64().unwrap(),
        c["maxConcurrent"].as_u64().unwrap(),
        c["baseMemoryMib"].as_u64().unwrap(),
    );
    let d = render(&[]);
    assert_eq!(limit(&d), format!("{}Mi", per_run * runs + base));
    assert!(args(&d).contains(&format!("--max-memory-mib={per_run}")), "{:?}", args(&d));
    assert_eq!(container(&d)["resources"]["limits"]["cpu"], "2");
    // More runs at once, or a larger budget per run: a larger limit.
    let d = render(&["controller.maxConcurrent=4", "controller.maxMemoryMib=512"]);
    assert_eq!(limit(&d), format!("{}Mi", 4 * 512 + base));
    assert!(args(&d).contains(&"--max-memory-mib=512".to_string()));
    // An explicit limit is kept as given.
    assert_eq!(limit(&render(&["resources.limits.memory=3Gi"])), "3Gi");
}
