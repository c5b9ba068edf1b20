//! Built-in speed and memory benchmarks (`blis bench`): fixed scenarios, median wall time over
//! repeats, and the process's peak resident memory.

use std::time::Instant;

use serde::Serialize;

use blis_import::manifest::parse_scenarios;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::{self, Resolved};
use blis_sim::sim::{NoObserver, SimOptions};

/// A benchmark scenario.
pub struct BenchCase {
    /// Short name (`10k`, `1m`).
    pub name: &'static str,
    /// The resolved scenario.
    pub scenario: Resolved,
}

/// One benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Case name.
    pub case: String,
    /// Requests simulated per run.
    pub requests: u64,
    /// Events per run.
    pub events: u64,
    /// Runs measured.
    pub repeats: usize,
    /// Median wall time of one run (ms).
    pub median_ms: f64,
    /// Fastest run (ms).
    pub min_ms: f64,
    /// Slowest run (ms).
    pub max_ms: f64,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    /// Peak resident memory of the process so far (MB), when the OS reports it.
    pub peak_rss_mb: Option<f64>,
}

impl BenchResult {
    /// One line for the table output.
    pub fn line(&self) -> String {
        format!(
            "{:<4} {:>9} requests {:>10} events  median {:>9.1} ms (min {:.1}, max {:.1}, {} runs)  {:>10.0}x real time  peak RSS {}",
            self.case,
            self.requests,
            self.events,
            self.median_ms,
            self.min_ms,
            self.max_ms,
            self.repeats,
            self.speedup,
            self.peak_rss_mb.map_or("n/a".to_string(), |m| format!("{m:.1} MB"))
        )
    }
}

/// A benchmark scenario: Llama-3.1-8B on H100 replicas, ~600-token prompts sharing `groups` system
/// prompts of `prefix` tokens, ~250-token outputs, Poisson arrivals at `rate` per second.
fn scenario_text(
    name: &str,
    requests: u64,
    replicas: u32,
    policy: &str,
    rate: u32,
    groups: u32,
    prefix: u32,
) -> String {
    format!(
        r#"
apiVersion: twin.blis.dev/v1alpha1
kind: SimulationScenario
metadata: {{name: bench-{name}}}
spec:
  seed: 7
  model: {{name: llama-3.1-8b-instruct}}
  hardware: {{gpu: H100-SXM-80GB, tensorParallelism: 1}}
  vllm: {{maxNumSeqs: 256, maxNumBatchedTokens: 2048}}
  replicas: {replicas}
  router: {{policy: {policy}}}
  workload:
    maxRequests: {requests}
    arrival: {{process: poisson, ratePerSecond: {rate}}}
    classes:
    - name: chat
      inputTokens: {{distribution: normal, mean: 600, stdDev: 100, min: 32, max: 2048}}
      outputTokens: {{distribution: normal, mean: 250, stdDev: 50, min: 8, max: 1024}}
      prefix: {{groups: {groups}, tokens: {prefix}}}
"#
    )
}

/// The benchmark cases selected by `which` (`10k`, `1m` or `all`).
pub fn cases(which: &str) -> Result<Vec<BenchCase>, InvalidInput> {
    let names: &[(&'static str, u64)] = match which {
        "10k" => &[("10k", 10_000)],
        "1m" => &[("1m", 1_000_000)],
        "16r" => &[("16r", 1_000_000)],
        "all" => &[("10k", 10_000), ("1m", 1_000_000), ("16r", 1_000_000)],
        other => {
            return Err(InvalidInput::new(
                "--case",
                format!("unknown benchmark {other:?}"),
                "use 10k, 1m, 16r or all",
            ))
        }
    };
    names
        .iter()
        .map(|&(name, n)| {
            let text = if name == "16r" {
                scenario_text(name, n, 16, "endpointPicker", 190, 64, 256)
            } else {
                scenario_text(name, n, 1, "leastRequests", 12, 8, 128)
            };
            let (mut docs, _) = parse_scenarios(&text)?;
            let m = docs.remove(0);
            Ok(BenchCase { name, scenario: blis_import::resolve(&m.metadata.name, &m.spec)? })
        })
        .collect()
}

/// Peak resident set size of this process in MB (Linux), if known.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs a case `repeat` times and reports the median.
pub fn measure(case: &BenchCase, repeat: usize) -> Result<BenchResult, scenario::RunError> {
    let mut times = Vec::with_capacity(repeat);
    let mut requests = 0;
    let mut events = 0;
    let mut simulated_s = 0.0;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let o = scenario::simulate(&case.scenario, None, &SimOptions::default(), &mut NoObserver)?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        requests = o.output.generated;
        events = o.output.events;
        simulated_s = o.summary.duration_s;
    }
    times.sort_by(f64::total_cmp);
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2.0
    };
    Ok(BenchResult {
        case: case.name.to_string(),
        requests,
        events,
        repeats: repeat,
        median_ms: median,
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        speedup: if median > 0.0 { simulated_s * 1000.0 / median } else { 0.0 },
        peak_rss_mb: peak_rss_mb(),
    })
}
