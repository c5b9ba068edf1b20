//! Helpers shared by the integration tests: build scenarios from YAML snippets and run them.
#![allow(dead_code)]

pub mod helm;
pub mod kube;

use blis_import::manifest::parse_scenarios;
use blis_sim::metrics::SimOutput;
use blis_sim::scenario::{self, Outcome, Resolved};
use blis_sim::sim::{NoObserver, SimOptions};

/// A scenario manifest around `spec` (YAML, indented by two spaces under `spec:`).
pub fn manifest(spec: &str) -> String {
    format!(
        "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata: {{name: t}}\nspec:\n{spec}"
    )
}

/// Resolves the only scenario in `yaml`.
pub fn resolve(yaml: &str) -> Resolved {
    let (mut docs, _) = parse_scenarios(yaml).expect("parses");
    let m = docs.remove(0);
    blis_import::resolve(&m.metadata.name, &m.spec).expect("valid scenario")
}

/// Runs with invariant checks on.
pub fn run_checked(r: &Resolved, fast_forward: bool) -> Outcome {
    let opts =
        SimOptions { decode_fast_forward: fast_forward, check_invariants: true, ..SimOptions::default() };
    scenario::simulate(r, None, &opts, &mut NoObserver).expect("simulation succeeds")
}

/// Runs with default options.
pub fn run(r: &Resolved) -> Outcome {
    scenario::simulate(r, None, &SimOptions::default(), &mut NoObserver).expect("simulation succeeds")
}

/// Asserts the per-request invariants of a run's output.
pub fn assert_request_invariants(out: &SimOutput) {
    assert_eq!(
        out.generated,
        out.completed.len() as u64 + out.rejected.len() as u64 + out.unfinished,
        "every generated request is completed, rejected or unfinished"
    );
    for r in &out.completed {
        assert!(r.queue_us >= 0, "scheduled before arrival: {r:?}");
        assert!(r.ttft_us >= r.queue_us, "first token before scheduling: {r:?}");
        assert!(r.ttft_us <= r.e2e_us, "TTFT > E2E: {r:?}");
        assert_eq!(r.itl_sum_us, r.e2e_us - r.ttft_us, "ITLs must sum to E2E - TTFT: {r:?}");
        assert!(r.cached_tokens <= r.input_tokens);
    }
}

/// A single-class workload section.
pub fn simple_workload(rate: f64, requests: u64, input: u32, output: u32) -> String {
    format!(
        "  workload:
    maxRequests: {requests}
    arrival: {{process: poisson, ratePerSecond: {rate}}}
    classes:
    - name: c
      inputTokens: {{distribution: normal, mean: {input}, stdDev: {sd_in}, min: 1}}
      outputTokens: {{distribution: normal, mean: {output}, stdDev: {sd_out}, min: 1}}
",
        sd_in = input / 5,
        sd_out = output / 5
    )
}

/// Model/hardware header for an 8B model on one H100.
pub const LLAMA8B_H100: &str = "  model: {name: llama-3.1-8b-instruct}
  hardware: {gpu: H100-SXM-80GB}
";

/// Runs this build's `blis` binary with `args` in the project root.
pub fn blis(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_blis"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("blis runs")
}

/// One vLLM Deployment `m` of Qwen3-32B (2 replicas, 2 GPUs per pod) at tensor parallelism `tp`,
/// with `pod` lines put into its pod spec, `image`, `args` appended to `vllm serve` and `env`
/// entries: the fixture the folder and import tests vary.
pub fn vllm_deployment(tp: u32, pod: &str, image: &str, args: &str, env: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: m}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: m}}}}
  template:
    metadata: {{labels: {{app: m}}}}
    spec:
{pod}      containers:
      - name: vllm
        image: {image}
        command: [vllm, serve]
        args: [Qwen/Qwen3-32B, --tensor-parallel-size={tp}{args}]
        env: [{env}]
        resources: {{limits: {{nvidia.com/gpu: 2}}}}
"#
    )
}

/// The values of the `<circle class="{class}"` markers of an HTML page: `(data-x, data-y)`.
pub fn markers(html: &str, class: &str) -> Vec<(f64, f64)> {
    let attr = |s: &str, name: &str| -> f64 {
        let at = s.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        s[at..at + s[at..].find('"').unwrap()].parse().unwrap()
    };
    html.split(&format!("<circle class=\"{class}\""))
        .skip(1)
        .map(|c| (attr(c, "data-x"), attr(c, "data-y")))
        .collect()
}

/// A fresh temporary folder whose name starts with `prefix`, removed when the guard is dropped (also
/// when a test panics), so test runs leave nothing behind.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().expect("temp dir")
}

/// A file in a fresh temporary folder, removed with the folder when this is dropped (also when a
/// test panics), so test runs leave nothing behind.
pub struct TempFile {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TempFile {
    /// Writes `text` to `name` in a new folder whose name starts with `prefix`.
    pub fn new(prefix: &str, name: &str, text: &str) -> Self {
        let dir = temp_dir(prefix);
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write temp file");
        TempFile { path, _dir: dir }
    }
}

impl std::ops::Deref for TempFile {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.path
    }
}
