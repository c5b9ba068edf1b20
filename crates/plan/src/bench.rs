//! Built-in speed and memory benchmarks (`blis bench`): fixed scenarios, median wall time over
//! repeats, events per second and nanoseconds per engine event, and each case's peak resident memory.
//!
//! The cases follow the reference simulator comparison of issue 17 (Llama-3.1-8B on H100, measured
//! whole-process on a 2-core machine, against inference-sim at its fastest settings):
//!
//! | run | reference | blis then | target |
//! |---|---|---|---|
//! | 10,000 requests, 1 replica (`10k`) | 1.21 s, 242 MiB | 24 ms, 12 MiB | <= 8 ms |
//! | 100,000 requests, 1 replica | 13.1 s, 1,884 MiB | 209 ms, 26 MiB | - |
//! | 100,000 requests, 16 replicas, weighted scorers (`16r100k`) | 28.8 s, 2,716 MiB | 283 ms, 30 MiB | <= 100 ms |
//! | 1,000,000 requests, 1 replica (`1m`, streaming summary) | does not fit in memory | 2.07 s, 148 MiB | <= 0.6 s, <= 64 MiB |
//! | eval-02 through `blis validate` (9,000 requests) | - | 36 ms, 12 MiB | <= 15 ms |
//!
//! Then about 2.4 µs of wall time per simulated request and 0.6 µs (600 ns) per engine event.
//!
//! Runs use helper threads as `blis run` does (the workload generated ahead, streamed records
//! summarised behind; see `blis_sim::workload::source`), so each case also reports its CPU time over
//! every thread; `--single-thread` measures without them.

use std::time::Instant;

use cpu_time::ProcessTime;

use serde::Serialize;

use blis_import::manifest::parse_scenarios;
use blis_sim::error::InvalidInput;
use blis_sim::metrics::SummaryMode;
use blis_sim::scenario::{self, Resolved};
use blis_sim::sim::{NoObserver, SimOptions};

/// A benchmark scenario.
pub struct BenchCase {
    /// Short name (`10k`, `1m`).
    pub name: &'static str,
    /// How the run summarises its requests (`1m` streams, so its memory does not grow with them).
    pub summary: SummaryMode,
    /// The resolved scenario.
    pub scenario: Resolved,
}

/// One benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Case name.
    pub case: String,
    /// Summary mode of the runs (`exact` or `streaming`).
    pub summary: SummaryMode,
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
    /// Median CPU time of one run over all the process's threads (ms): above the wall time by what
    /// the helper threads did beside the engine.
    pub median_cpu_ms: f64,
    /// Whether the runs used helper threads.
    pub helper_threads: bool,
    /// Engine events per wall second at the median.
    pub events_per_s: f64,
    /// Wall nanoseconds per engine event at the median.
    pub ns_per_event: f64,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    /// Peak resident memory (MB) while this case ran (the process's high-water mark, reset before the
    /// case where the OS allows it), when the OS reports it.
    pub peak_rss_mb: Option<f64>,
    /// How the binary was built: `pgo` by `hack/release.sh` (profile-guided), `plain` otherwise
    /// (`cargo build --release`), as the figures depend on it.
    pub build: &'static str,
}

/// How this binary was built (see [`BenchResult::build`]): `hack/release.sh` sets `BLIS_BUILD=pgo`.
const BUILD: &str = match option_env!("BLIS_BUILD") {
    Some(b) => b,
    None => "plain",
};

impl BenchResult {
    /// One line for the table output.
    pub fn line(&self) -> String {
        format!(
            "{:<7} {:>9} requests {:>10} events  median {:>9.1} ms (min {:.1}, max {:.1}, {} runs; cpu {:.1} ms{})  {:>6.1} M events/s  {:>6.0} ns/event  {:>9.0}x real time  peak RSS {}{}  build: {}",
            self.case,
            self.requests,
            self.events,
            self.median_ms,
            self.min_ms,
            self.max_ms,
            self.repeats,
            self.median_cpu_ms,
            if self.helper_threads { "" } else { ", one thread" },
            self.events_per_s / 1e6,
            self.ns_per_event,
            self.speedup,
            self.peak_rss_mb.map_or("n/a".to_string(), |m| format!("{m:.1} MB")),
            if self.summary == SummaryMode::Streaming { "  (streaming summary)" } else { "" },
            self.build,
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

/// Every case: name, requests, replicas (1: least-requests at 12/s; 16: the prefix-aware endpoint
/// picker at 190/s) and summary mode.
const CASES: &[(&str, u64, u32, SummaryMode)] = &[
    ("10k", 10_000, 1, SummaryMode::Exact),
    ("100k", 100_000, 1, SummaryMode::Exact),
    ("16r100k", 100_000, 16, SummaryMode::Exact),
    ("1m", 1_000_000, 1, SummaryMode::Streaming),
    ("1m-exact", 1_000_000, 1, SummaryMode::Exact),
    ("16r", 1_000_000, 16, SummaryMode::Exact),
];

/// The cases `all` runs: the ones issue 17's acceptance names.
const ALL: &[&str] = &["10k", "16r100k", "1m"];

/// The benchmark cases selected by `which` (a case name or `all`).
pub fn cases(which: &str) -> Result<Vec<BenchCase>, InvalidInput> {
    let picked: Vec<_> =
        CASES.iter().filter(|c| if which == "all" { ALL.contains(&c.0) } else { c.0 == which }).collect();
    if picked.is_empty() {
        let names: Vec<&str> = CASES.iter().map(|c| c.0).collect();
        return Err(InvalidInput::new(
            "--case",
            format!("unknown benchmark {which:?}"),
            format!("use one of {} or all", names.join(", ")),
        ));
    }
    picked
        .into_iter()
        .map(|&(name, n, replicas, summary)| {
            let text = if replicas > 1 {
                scenario_text(name, n, replicas, "endpointPicker", 190, 64, 256)
            } else {
                scenario_text(name, n, 1, "leastRequests", 12, 8, 128)
            };
            let (mut docs, _) = parse_scenarios(&text)?;
            let m = docs.remove(0);
            Ok(BenchCase { name, summary, scenario: blis_import::resolve(&m.metadata.name, &m.spec)? })
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

/// Resets the process's peak resident set size to its current size (Linux 4.0+), so the next
/// [`peak_rss_mb`] is the peak of what runs in between; does nothing where that is not possible.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Median of sorted values.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Runs a case `repeat` times (at least once), with or without `helper_threads`, and reports the
/// median.
pub fn measure(
    case: &BenchCase,
    repeat: usize,
    helper_threads: bool,
) -> Result<BenchResult, scenario::RunError> {
    let repeat = repeat.max(1);
    let mut times = Vec::with_capacity(repeat);
    let mut cpu = Vec::with_capacity(repeat);
    let mut requests = 0;
    let mut events = 0;
    let mut simulated_s = 0.0;
    let opts = SimOptions { summary: Some(case.summary), helper_threads, ..SimOptions::default() };
    reset_peak_rss();
    for _ in 0..repeat {
        let (t0, c0) = (Instant::now(), ProcessTime::now());
        let o = scenario::simulate(&case.scenario, None, &opts, &mut NoObserver)?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        cpu.push(c0.elapsed().as_secs_f64() * 1000.0);
        requests = o.output.generated;
        events = o.output.events;
        simulated_s = o.summary.duration_s;
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let median_cpu_ms = median(&cpu);
    let median = median(&times);
    let per_s = |x: f64| if median > 0.0 { x * 1000.0 / median } else { 0.0 };
    Ok(BenchResult {
        case: case.name.to_string(),
        summary: case.summary,
        requests,
        events,
        repeats: repeat,
        median_ms: median,
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        median_cpu_ms,
        helper_threads,
        events_per_s: per_s(events as f64),
        ns_per_event: if events > 0 { median * 1e6 / events as f64 } else { 0.0 },
        speedup: per_s(simulated_s),
        peak_rss_mb: peak_rss_mb(),
        build: BUILD,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_runs_the_acceptance_cases_and_unknown_names_are_refused() {
        let names: Vec<&str> = cases("all").expect("cases resolve").iter().map(|c| c.name).collect();
        assert_eq!(names, ["10k", "16r100k", "1m"]);
        assert_eq!(cases("1m").expect("1m")[0].summary, SummaryMode::Streaming);
        let err = cases("2m").err().expect("unknown case refused").to_string();
        assert!(err.contains("--case") && err.contains("16r100k"), "{err}");
    }

    #[test]
    fn rates_per_event_agree_with_the_median_and_the_event_count() {
        let text = scenario_text("tiny", 300, 2, "endpointPicker", 50, 4, 64);
        let (mut docs, _) = parse_scenarios(&text).expect("parses");
        let m = docs.remove(0);
        let scenario = blis_import::resolve(&m.metadata.name, &m.spec).expect("resolves");
        for (summary, helpers) in [(SummaryMode::Exact, true), (SummaryMode::Streaming, false)] {
            let case = BenchCase { name: "tiny", summary, scenario: scenario.clone() };
            let r = measure(&case, 3, helpers).expect("runs");
            assert_eq!(r.requests, 300);
            assert!(r.events > r.requests, "at least an arrival and a step per request: {}", r.events);
            assert!(r.min_ms <= r.median_ms && r.median_ms <= r.max_ms);
            let product = r.events_per_s * r.ns_per_event;
            assert!((product - 1e9).abs() < 1e-3 * 1e9, "events/s x ns/event = {product}");
            assert!(
                (r.ns_per_event * r.events as f64 / 1e6 - r.median_ms).abs() < 1e-9 * r.median_ms.max(1.0)
            );
            assert!(r.line().contains("ns/event"));
            assert!(r.median_cpu_ms > 0.0, "no CPU time measured");
            assert_eq!(r.line().contains("one thread"), !helpers);
        }
    }
}
