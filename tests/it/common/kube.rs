//! The end-to-end harness shared by every suite under `tests/it/e2e/`: a real kube-apiserver + etcd started
//! by `hack/control-plane.sh` (run by `hack/test.sh`), driven with kubectl, and `blis controller`
//! run as a child process under the least-privilege ServiceAccount of `hack/rbac.yaml` (by
//! impersonation), never as cluster-admin.
//!
//! Environment: `BLIS_E2E_KUBECONFIG` (admin kubeconfig), `BLIS_E2E_KUBECTL`, `BLIS_E2E_BIN` (the blis
//! binary, default this build's), `BLIS_E2E_CP` (control-plane script, for the API-server restart).
//! Without `BLIS_E2E_KUBECONFIG` a test returns at once unless `BLIS_E2E_REQUIRED` is set, in which
//! case it fails: `hack/test.sh` sets it, so there it never skips silently.
#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Leader election flags of the tests' controllers (Lease in `blis-system`).
pub const LEADER_ARGS: &[&str] = &["--leader-election", "--leader-election-namespace", "blis-system"];

/// The controller's ServiceAccount, impersonated.
pub const SA: &str = "system:serviceaccount:blis-system:blis-controller";

/// A running `blis controller`, killed when dropped: a test that fails part-way must not leave it
/// running, holding its metrics port and reconciling for the next run on the same machine.
pub struct Controller(Child);

impl Deref for Controller {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Controller {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Where the control plane and the binaries are.
pub struct Env {
    pub kubeconfig: PathBuf,
    pub controller_kubeconfig: PathBuf,
    pub kubectl: String,
    pub bin: PathBuf,
    pub cp: Option<PathBuf>,
    pub dir: PathBuf,
    pub metrics_port: u16,
}

/// When a step fails, the end of each controller log of the run goes with the failure (CI keeps
/// only the test's output).
impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        let mut logs: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("controller-")))
            .collect();
        logs.sort();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- last lines of {} ---", log.display());
            for l in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("{l}");
            }
        }
    }
}

impl Env {
    /// The environment, or `None` (test skipped) when no control plane was started and none is required.
    /// `metrics_port` must differ between test files (each starts its own controller).
    pub fn from_env(metrics_port: u16) -> Option<Env> {
        Self::from_env_as(metrics_port, SA)
    }

    /// [`Env::from_env`], with the controller impersonating the user `user` (e.g. the ServiceAccount
    /// a Helm release created) instead of [`SA`].
    pub fn from_env_as(metrics_port: u16, user: &str) -> Option<Env> {
        let Ok(kubeconfig) = std::env::var("BLIS_E2E_KUBECONFIG") else {
            assert!(
                std::env::var_os("BLIS_E2E_REQUIRED").is_none(),
                "BLIS_E2E_REQUIRED is set but BLIS_E2E_KUBECONFIG is not: the control plane did not start"
            );
            eprintln!("e2e: BLIS_E2E_KUBECONFIG not set; run hack/test.sh for the end-to-end tests");
            return None;
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join(format!("target/e2e-{metrics_port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let controller_kubeconfig =
            impersonating(Path::new(&kubeconfig), user, &dir.join("controller.kubeconfig"));
        Some(Env {
            kubeconfig: kubeconfig.into(),
            controller_kubeconfig,
            kubectl: std::env::var("BLIS_E2E_KUBECTL").unwrap_or_else(|_| "kubectl".into()),
            bin: std::env::var("BLIS_E2E_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_blis").into()),
            cp: std::env::var("BLIS_E2E_CP").ok().map(PathBuf::from),
            dir,
            metrics_port,
        })
    }

    /// A kubeconfig (written to `file` in the test's directory) that impersonates `user`.
    pub fn kubeconfig_as(&self, user: &str, file: &str) -> PathBuf {
        impersonating(&self.kubeconfig, user, &self.dir.join(file))
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
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

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args, None);
        assert!(o.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn apply(&self, ns: &str, yaml: &str) {
        let o = self.kubectl(&["apply", "-n", ns, "-f", "-"], Some(yaml));
        assert!(o.status.success(), "apply failed: {}\n{yaml}", String::from_utf8_lossy(&o.stderr));
    }

    pub fn get(&self, ns: &str, name: &str) -> Value {
        let text = self.ok(&["get", "simscen", name, "-n", ns, "-o", "json"]);
        serde_json::from_str(&text).unwrap_or_else(|_| {
            // A spec nested past serde's depth limit (the hostile step): its metadata and status only.
            let part = |p: &str| {
                let out = self.ok(&["get", "simscen", name, "-n", ns, "-o", &format!("jsonpath={{.{p}}}")]);
                serde_json::from_str::<Value>(&out).unwrap_or(Value::Null)
            };
            serde_json::json!({"metadata": part("metadata"), "status": part("status")})
        })
    }

    /// The SimulationSweep `ns/name` as JSON.
    pub fn get_sweep(&self, ns: &str, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["get", "simsweep", name, "-n", ns, "-o", "json"])).unwrap()
    }

    pub fn start_controller(&self) -> Controller {
        self.start_controller_with(LEADER_ARGS)
    }

    /// Starts `blis controller` with `args` added (scope, leader election) to the common ones.
    pub fn start_controller_with(&self, args: &[&str]) -> Controller {
        self.start_controller_on(self.metrics_port, args)
    }

    /// Starts `blis controller` serving metrics on `metrics_port` (a second replica needs its own).
    pub fn start_controller_on(&self, metrics_port: u16, args: &[&str]) -> Controller {
        let log = std::fs::File::create(self.dir.join(format!("controller-{}.log", now_ms()))).unwrap();
        let child = Command::new(&self.bin)
            .args(["controller", "--max-concurrent", "2"])
            .args(args)
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}"), "--max-wall-seconds", "120"])
            .env("KUBECONFIG", &self.controller_kubeconfig)
            .env("RUST_LOG", std::env::var("BLIS_E2E_RUST_LOG").unwrap_or_else(|_| "info,kube=warn".into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start blis controller");
        Controller(child)
    }

    /// Stops a controller with SIGTERM (it releases its Lease) and waits for it.
    pub fn stop_controller(&self, mut child: Controller) {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The leader Lease's holder.
    pub fn lease_holder(&self) -> String {
        let o = self.kubectl(
            &[
                "get",
                "lease",
                "blis-controller",
                "-n",
                "blis-system",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
            None,
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics")
    }

    /// Installs the CRDs of `crds/` and of `extra` (paths from the repository root), waits until
    /// every CRD is Established, and applies the controller's RBAC (`hack/rbac.yaml`). Scenarios,
    /// sweeps and HardwareProfiles an earlier test left on the shared API server are deleted first:
    /// a controller started later would otherwise re-simulate them in the background (the import
    /// test's HardwareProfile re-prices every H100 scenario), and a test's timings would depend on
    /// which tests ran before it.
    pub fn install(&self, extra: &[&str]) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in std::iter::once("crds").chain(extra.iter().copied()) {
            self.ok(&["apply", "--server-side", "-f", root.join(f).to_str().unwrap()]);
        }
        self.ok(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=30s"]);
        self.ok(&["apply", "-f", root.join("hack/rbac.yaml").to_str().unwrap()]);
        self.delete_twin_objects();
    }

    /// Deletes every SimulationScenario, SimulationSweep and HardwareProfile: one DeleteCollection
    /// per namespace and kind (`kubectl delete --all` sends a request per object, and kubectl's
    /// client-side rate limit makes hundreds of them take minutes), then waits until none is left.
    fn delete_twin_objects(&self) {
        const API: &str = "/apis/twin.blis.dev/v1alpha1";
        for kind in ["simulationscenarios", "simulationsweeps"] {
            let list = self.ok(&[
                "get",
                &format!("{kind}.twin.blis.dev"),
                "--all-namespaces",
                "-o",
                "jsonpath={range .items[*]}{.metadata.namespace}{\"\\n\"}{end}",
            ]);
            let namespaces: std::collections::BTreeSet<&str> =
                list.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            for ns in namespaces {
                self.ok(&["delete", "--raw", &format!("{API}/namespaces/{ns}/{kind}")]);
            }
        }
        self.ok(&["delete", "--raw", &format!("{API}/hardwareprofiles")]);
        let kinds =
            "simulationscenarios.twin.blis.dev,simulationsweeps.twin.blis.dev,hardwareprofiles.twin.blis.dev";
        wait_until("the objects of earlier tests deleted", Duration::from_secs(60), || {
            self.ok(&["get", kinds, "--all-namespaces", "-o", "name"]).trim().is_empty().then_some(())
        });
    }

    /// Whether the controller's ServiceAccount may do `args` (`kubectl auth can-i` words).
    pub fn sa_can(&self, args: &[&str]) -> bool {
        self.kubectl(&[&["auth", "can-i", "--as", SA][..], args].concat(), None).status.success()
    }

    /// `kubectl patch --type=merge` of `object` (e.g. `simscen/quickstart`) in `ns` with `patch`.
    pub fn merge_patch(&self, ns: &str, object: &str, patch: &str) {
        self.ok(&["patch", "-n", ns, object, "--type=merge", "-p", patch]);
    }

    /// Asserts that the predictions in scenario `obj`'s status are exactly what `blis run --output
    /// json path` prints for it (same seed, same inputs).
    pub fn assert_status_equals_cli(&self, obj: &Value, path: &Path) {
        use blis_report::predictions::{camel_keys, Predictions};
        use blis_sim::metrics::Summary;
        let out =
            Command::new(&self.bin).args(["run", "--no-progress", "--output", "json"]).arg(path).output();
        let out = out.unwrap();
        assert!(
            out.status.success(),
            "blis run {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
        let cli = &cli["scenarios"][0];
        let st = &obj["status"];
        let summary: Summary = serde_json::from_value(cli.clone()).expect("the CLI JSON is a summary");
        let status: Predictions =
            serde_json::from_value(st["predictions"].clone()).expect("status.predictions is typed");
        assert_eq!(status, Predictions::from(&summary), "status predictions != CLI");
        assert_eq!(st["normalizedInputs"]["seed"], cli["seed"]);
        assert_eq!(st["normalizedInputs"]["warnings"], cli["warnings"]);
        let (status_inputs, cli_inputs) =
            (&st["normalizedInputs"]["resolved"], camel_keys(cli["inputs"].clone()));
        assert!(
            json_eq(status_inputs, &cli_inputs),
            "status inputs != CLI\n{status_inputs:#}\n{cli_inputs:#}"
        );
    }

    /// Waits until the controller has cancelled a run (its counter passed `before`) and has none in
    /// flight; returns how long that took.
    pub fn wait_cancelled(&self, before: f64, what: &str) -> Duration {
        let start = Instant::now();
        wait_until(what, Duration::from_secs(30), || {
            let m = self.metrics();
            (metric(&m, "blis_controller_simulations_cancelled_total") > before
                && metric(&m, "blis_controller_simulations_in_flight") == 0.0)
                .then_some(())
        });
        start.elapsed()
    }
}

/// Writes to `out` the admin kubeconfig `admin` with every request impersonating `user`.
fn impersonating(admin: &Path, user: &str, out: &Path) -> PathBuf {
    let text = std::fs::read_to_string(admin).unwrap();
    let as_user = text.replacen("    client-key:", &format!("    as: {user}\n    client-key:"), 1);
    assert_ne!(text, as_user, "admin kubeconfig has no client-key line");
    std::fs::write(out, as_user).unwrap();
    out.to_path_buf()
}

/// The value of the Prometheus sample `name` (no labels) in the text `m`, 0 when absent.
pub fn metric(m: &str, name: &str) -> f64 {
    m.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

pub fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn cond<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn cond_status(obj: &Value, type_: &str) -> String {
    cond(obj, type_).and_then(|c| c["status"].as_str()).unwrap_or("").to_string()
}

/// Ready=True for the object's current generation.
pub fn is_ready(obj: &Value) -> bool {
    obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        && cond_status(obj, "Ready") == "True"
}

pub fn simulations(obj: &Value) -> i64 {
    obj["status"]["simulations"].as_i64().unwrap_or(0)
}

/// A SimulationSweep over `replicas` of a heavy base (100 requests/s of 400 -> 80 tokens for
/// `duration_s` seconds): long to simulate, for cancellation and limits.
pub fn heavy_sweep(name: &str, replicas: &[u32], duration_s: u32) -> String {
    format!(
        "apiVersion: twin.blis.dev/v1alpha1
kind: SimulationSweep
metadata: {{name: {name}}}
spec:
  parameters:
  - {{path: replicas, values: {replicas:?}}}
  base:
    model: {{name: meta-llama/Llama-3.1-8B-Instruct}}
    hardware: {{gpu: H100-SXM-80GB}}
    workload:
      durationSeconds: {duration_s}
      arrival: {{process: poisson, ratePerSecond: 100}}
      classes:
      - {{name: chat, inputTokens: {{distribution: fixed, value: 400}}, outputTokens: {{distribution: fixed, value: 80}}}}
"
    )
}

pub fn scenario(name: &str, replicas: u32, duration_s: u32, rate: f64, extra: &str) -> String {
    format!(
        "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata:\n  name: {name}\nspec:\n  model: {{name: meta-llama/Llama-3.1-8B-Instruct}}\n  hardware: {{gpu: H100-SXM-80GB}}\n  replicas: {replicas}\n  workload:\n    durationSeconds: {duration_s}\n    arrival: {{process: poisson, ratePerSecond: {rate}}}\n    classes:\n    - name: chat\n      inputTokens: {{distribution: fixed, value: 500}}\n      outputTokens: {{distribution: fixed, value: 100}}\n      slo: {{ttftMs: 500, attainment: 0.9}}\n{extra}"
    )
}

pub fn ns(env: &Env, name: &str) {
    let o = env.kubectl(&["create", "namespace", name], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() || err.contains("AlreadyExists"), "create namespace {name}: {err}");
}

pub fn step(name: &str) -> Instant {
    eprintln!("\n=== e2e: {name}");
    Instant::now()
}

/// JSON equality where numbers compare as f64 (the API server may write `150.0` back as `150`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Peak resident memory of process `pid` in KiB (`VmHWM`), 0 when unknown.
pub fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
