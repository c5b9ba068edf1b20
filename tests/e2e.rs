//! End-to-end tests against a real kube-apiserver + etcd (built and started by
//! `hack/control-plane.sh`, run by `hack/test.sh`). They drive the API with kubectl and run
//! `blis controller` as a child process under the least-privilege ServiceAccount of
//! `hack/rbac.yaml` (by impersonation), never as cluster-admin.
//!
//! Environment: `BLIS_E2E_KUBECONFIG` (admin kubeconfig), `BLIS_E2E_KUBECTL`, `BLIS_E2E_BIN` (the blis
//! binary, default this build's), `BLIS_E2E_CP` (control-plane script, for the API-server restart).
//! Without `BLIS_E2E_KUBECONFIG` the test returns at once unless `BLIS_E2E_REQUIRED` is set, in which
//! case it fails: `hack/test.sh` sets it, so there it never skips silently.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use blis::api::predictions::{json_eq, to_report_json};
use serde_json::Value;

const SA: &str = "system:serviceaccount:blis-system:blis-controller";

struct Env {
    kubeconfig: PathBuf,
    controller_kubeconfig: PathBuf,
    kubectl: String,
    bin: PathBuf,
    cp: Option<PathBuf>,
    dir: PathBuf,
    metrics_port: u16,
}

impl Env {
    fn from_env() -> Option<Env> {
        let Ok(kubeconfig) = std::env::var("BLIS_E2E_KUBECONFIG") else {
            assert!(
                std::env::var_os("BLIS_E2E_REQUIRED").is_none(),
                "BLIS_E2E_REQUIRED is set but BLIS_E2E_KUBECONFIG is not: the control plane did not start"
            );
            eprintln!("e2e: BLIS_E2E_KUBECONFIG not set; run hack/test.sh for the end-to-end tests");
            return None;
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target/e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let admin = std::fs::read_to_string(&kubeconfig).unwrap();
        let impersonating = admin.replacen("    client-key:", &format!("    as: {SA}\n    client-key:"), 1);
        assert_ne!(admin, impersonating, "admin kubeconfig has no client-key line");
        let controller_kubeconfig = dir.join("controller.kubeconfig");
        std::fs::write(&controller_kubeconfig, impersonating).unwrap();
        Some(Env {
            kubeconfig: kubeconfig.into(),
            controller_kubeconfig,
            kubectl: std::env::var("BLIS_E2E_KUBECTL").unwrap_or_else(|_| "kubectl".into()),
            bin: std::env::var("BLIS_E2E_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_blis").into()),
            cp: std::env::var("BLIS_E2E_CP").ok().map(PathBuf::from),
            dir,
            metrics_port: 18080,
        })
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(text) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args, None);
        assert!(o.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn apply(&self, ns: &str, yaml: &str) {
        let o = self.kubectl(&["apply", "-n", ns, "-f", "-"], Some(yaml));
        assert!(o.status.success(), "apply failed: {}\n{yaml}", String::from_utf8_lossy(&o.stderr));
    }

    fn get(&self, ns: &str, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["get", "simscen", name, "-n", ns, "-o", "json"])).unwrap()
    }

    fn start_controller(&self) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("controller-{}.log", now_ms()))).unwrap();
        Command::new(&self.bin)
            .args([
                "controller",
                "--max-concurrent",
                "2",
                "--leader-election",
                "--leader-election-namespace",
                "blis-system",
            ])
            .args([
                "--metrics-addr",
                &format!("127.0.0.1:{}", self.metrics_port),
                "--max-wall-seconds",
                "120",
            ])
            .env("KUBECONFIG", &self.controller_kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start blis controller")
    }

    fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics")
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn cond<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

fn cond_status(obj: &Value, type_: &str) -> String {
    cond(obj, type_).and_then(|c| c["status"].as_str()).unwrap_or("").to_string()
}

/// Ready=True for the object's current generation.
fn is_ready(obj: &Value) -> bool {
    obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        && cond_status(obj, "Ready") == "True"
}

fn simulations(obj: &Value) -> i64 {
    obj["status"]["simulations"].as_i64().unwrap_or(0)
}

fn scenario(name: &str, replicas: u32, duration_s: u32, rate: f64, extra: &str) -> String {
    format!(
        "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata:\n  name: {name}\nspec:\n  model: {{name: meta-llama/Llama-3.1-8B-Instruct}}\n  hardware: {{gpu: H100-SXM-80GB}}\n  replicas: {replicas}\n  workload:\n    durationSeconds: {duration_s}\n    arrival: {{process: poisson, ratePerSecond: {rate}}}\n    classes:\n    - name: chat\n      inputTokens: {{distribution: fixed, value: 500}}\n      outputTokens: {{distribution: fixed, value: 100}}\n      slo: {{ttftMs: 500, attainment: 0.9}}\n{extra}"
    )
}

fn ns(env: &Env, name: &str) {
    let o = env.kubectl(&["create", "namespace", name], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() || err.contains("AlreadyExists"), "create namespace {name}: {err}");
}

fn step(name: &str) -> Instant {
    eprintln!("\n=== e2e: {name}");
    Instant::now()
}

#[test]
fn e2e_against_a_real_api_server() {
    let Some(env) = Env::from_env() else { return };
    let t_all = Instant::now();

    let t = step("CRDs and RBAC");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    env.ok(&["apply", "--server-side", "-f", root.join("crds").to_str().unwrap()]);
    env.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/simulationscenarios.twin.blis.dev",
        "crd/hardwareprofiles.twin.blis.dev",
        "crd/simulationsweeps.twin.blis.dev",
        "--timeout=30s",
    ]);
    env.ok(&["apply", "-f", root.join("hack/rbac.yaml").to_str().unwrap()]);
    // Least privilege: the controller's ServiceAccount can do what it needs and nothing more.
    let can = |args: &[&str]| {
        env.kubectl(&[&["auth", "can-i", "--as", SA][..], args].concat(), None).status.success()
    };
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
    let cli = Command::new(&env.bin)
        .args(["run", "--no-progress", "--output", "json"])
        .arg(root.join("examples/quickstart.yaml"))
        .output()
        .unwrap();
    assert!(cli.status.success());
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    let st = &obj["status"];
    let warnings: Vec<String> = serde_json::from_value(st["normalizedInputs"]["warnings"].clone()).unwrap();
    let rebuilt = to_report_json(
        "quickstart",
        st["normalizedInputs"]["seed"].as_u64(),
        &st["normalizedInputs"]["resolved"],
        &warnings,
        &st["predictions"],
    );
    assert!(
        json_eq(&cli["scenarios"][0], &rebuilt),
        "status != CLI\nCLI: {:#}\nstatus: {rebuilt:#}",
        cli["scenarios"][0]
    );
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
    env.ok(&["patch", "-n", "qs", "simscen/quickstart", "--type=merge", "-p", r#"{"spec":{"replicas":0}}"#]);
    let bad = wait_until("Stalled=True", Duration::from_secs(30), || {
        let o = env.get("qs", "quickstart");
        (o["status"]["observedGeneration"] == 3 && cond_status(&o, "Stalled") == "True").then_some(o)
    });
    let stalled = cond(&bad, "Stalled").unwrap();
    assert_eq!(stalled["reason"], "InvalidSpec");
    assert!(stalled["message"].as_str().unwrap().contains("spec.replicas"), "{stalled}");
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
    env.ok(&["patch", "-n", "qs", "simscen/quickstart", "--type=merge", "-p", r#"{"spec":{"replicas":1}}"#]);
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
    assert!(!o.status.success() && err.contains("spec.model") && err.contains("Required"), "{err}");
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

    let t = step("controller killed mid-simulation: the restarted one finishes");
    ns(&env, "restart");
    env.apply("restart", &scenario("long", 8, 3600, 100.0, ""));
    wait_until("long simulating", Duration::from_secs(30), || {
        (cond_status(&env.get("restart", "long"), "Reconciling") == "True").then_some(())
    });
    controller.kill().unwrap();
    controller.wait().unwrap();
    let mut controller = env.start_controller();
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
        env.ok(&[
            "patch",
            "-n",
            "qs",
            "simscen/quickstart",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ]);
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

    let m = env.metrics();
    assert!(
        m.contains("blis_controller_simulations_in_flight 0")
            && m.contains("blis_controller_simulations_total")
            && m.contains("blis_controller_reconcile_duration_seconds"),
        "{m}"
    );
    let lease = env.ok(&[
        "get",
        "lease",
        "blis-controller",
        "-n",
        "blis-system",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert!(!lease.is_empty(), "leader-election lease not held");

    controller.kill().unwrap();
    controller.wait().unwrap();
    eprintln!("\ne2e: all steps passed in {:.1}s", t_all.elapsed().as_secs_f64());
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
