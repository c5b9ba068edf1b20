//! The budget of one simulation, checked before anything is allocated: an estimate of the memory
//! and work a resolved scenario needs (replicas and their KV blocks, requests), refused with an
//! error naming the field and the limit when it is over the configured budget. The CLI, sweeps and
//! the controller check the same estimate, so one manifest cannot exhaust the machine's memory.

use crate::error::InvalidInput;
use crate::scenario::Resolved;
use crate::workload::Trace;

/// Bytes one KV block costs in the simulator (block record plus its free-list entry).
pub const BYTES_PER_KV_BLOCK: f64 = 28.0;
/// Bytes one replica costs besides its KV blocks (queues, counters, timelines).
pub const BYTES_PER_REPLICA: f64 = 64.0 * 1024.0;
/// Bytes one simulated request costs until the summary (its record and latencies), measured on
/// the largest runs (about 280 B; rounded up).
pub const BYTES_PER_REQUEST: f64 = 320.0;
/// Bytes of a run whatever its size.
pub const BASE_BYTES: f64 = 8.0 * 1024.0 * 1024.0;

/// What one simulation may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Most replicas (at the autoscaler's maximum), over every pool.
    pub max_replicas: u64,
    /// Most KV blocks over every replica.
    pub max_kv_blocks: u64,
    /// Most requests the workload may generate.
    pub max_requests: u64,
    /// Most estimated memory of the run, bytes.
    pub max_memory_bytes: f64,
}

impl Default for Budget {
    /// The CLI's and the controller's default: 10,000 replicas, 200 million KV blocks (5.6 GB of
    /// blocks), 20 million requests, 6 GiB in all.
    fn default() -> Self {
        Self {
            max_replicas: 10_000,
            max_kv_blocks: 200_000_000,
            max_requests: 20_000_000,
            max_memory_bytes: 6.0 * 1024.0 * 1024.0 * 1024.0,
        }
    }
}

/// The estimate of one run, and the field that drives each part of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Replicas at their most, over every pool.
    pub replicas: u64,
    /// The field setting the most replicas.
    pub replicas_field: String,
    /// KV blocks over every replica.
    pub kv_blocks: f64,
    /// The field that sizes the KV cache of the largest pool.
    pub kv_field: String,
    /// Requests the workload generates (at most).
    pub requests: f64,
    /// The field that sets how many.
    pub requests_field: String,
    /// Memory, bytes.
    pub memory_bytes: f64,
}

/// Estimates a run of `r` (with `trace`, a file's or a ConfigMap's trace, if any) from its resolved
/// figures only: nothing is allocated.
pub fn estimate(r: &Resolved, trace: Option<&Trace>) -> Estimate {
    let mut replicas = 0u64;
    let mut kv_blocks = 0f64;
    let (mut most, mut replicas_field, mut kv_field) = (0u64, "spec.replicas".to_string(), String::new());
    let pooled = r.pools.len() > 1;
    for (i, p) in r.pools.iter().enumerate() {
        let n = u64::from(p.replicas.max(p.autoscaling.as_ref().map_or(0, |a| a.max_replicas)));
        replicas = replicas.saturating_add(n);
        let blocks = f64::from(p.instance.total_blocks) + f64::from(p.instance.cpu_offload_blocks);
        kv_blocks += n as f64 * blocks;
        if n >= most {
            most = n;
            let at = if pooled { format!("spec.pools[{i}]") } else { "spec".to_string() };
            replicas_field = if p.autoscaling.as_ref().is_some_and(|a| a.max_replicas > p.replicas) {
                format!("{at}.autoscaling.maxReplicas")
            } else {
                format!("{at}.replicas")
            };
            kv_field = format!("{at}.hardware");
        }
    }
    if kv_field.is_empty() {
        kv_field = "spec.hardware".into();
    }
    let (requests, requests_field) = requests(r, trace);
    let memory_bytes = BASE_BYTES
        + kv_blocks * BYTES_PER_KV_BLOCK
        + replicas as f64 * BYTES_PER_REPLICA
        + requests * BYTES_PER_REQUEST;
    Estimate { replicas, replicas_field, kv_blocks, kv_field, requests, requests_field, memory_bytes }
}

/// Requests the workload of `r` generates at most, and the field that sets it.
fn requests(r: &Resolved, trace: Option<&Trace>) -> (f64, String) {
    let w = &r.workload;
    let cap = w.max_requests.map(|m| m as f64);
    let capped = |n: f64, field: &str| match cap {
        Some(c) if c < n => (c, "spec.workload.maxRequests".to_string()),
        _ => (n, field.to_string()),
    };
    if let Some(t) = &w.trace {
        let rows = match (&t.csv, trace) {
            (Some(text), _) => text.lines().count().saturating_sub(1) as f64,
            (None, Some(trace)) => trace.lines() as f64,
            (None, None) => 0.0,
        };
        return capped(rows, "spec.workload.trace");
    }
    let horizon_s = w.duration_seconds.or(r.horizon_us.map(|h| h as f64 / 1e6)).unwrap_or(0.0);
    let rate_of = |a: &crate::workload::ArrivalSpec| -> f64 {
        match &a.stages {
            Some(stages) => {
                stages.iter().map(|s| s.rate_per_second.max(0.0) * s.duration_seconds.max(0.0)).sum()
            }
            // Without a duration the arrivals go on until `maxRequests` stops them.
            None => match a.rate_per_second.unwrap_or(0.0).max(0.0) {
                r if r > 0.0 && horizon_s <= 0.0 => f64::INFINITY,
                r => r * horizon_s,
            },
        }
    };
    let mut n = w.arrival.as_ref().map_or(0.0, rate_of);
    n += w.classes.iter().filter_map(|c| c.arrival.as_ref()).map(rate_of).sum::<f64>();
    let field = if w.arrival.as_ref().is_some_and(|a| a.stages.is_some()) {
        "spec.workload.arrival.stages"
    } else {
        // Times spec.workload.durationSeconds: the rate is the field to change.
        "spec.workload.arrival.ratePerSecond"
    };
    // NaN (from a non-finite input) is refused as over any limit.
    capped(if n.is_nan() { f64::INFINITY } else { n }, field)
}

impl Budget {
    /// Refuses `e` when it is over this budget, naming the field and the limit.
    pub fn check(&self, e: &Estimate) -> Result<(), InvalidInput> {
        if e.replicas > self.max_replicas {
            return Err(InvalidInput::new(
                &e.replicas_field,
                format!("asks for {} replicas in all, over the limit of {}", e.replicas, self.max_replicas),
                "simulate fewer replicas (a representative share of the fleet with its share of the traffic)",
            ));
        }
        if e.kv_blocks > self.max_kv_blocks as f64 {
            return Err(InvalidInput::new(
                &e.kv_field,
                format!(
                    "gives {:.3e} KV blocks over all replicas (GPU memory, gpuMemoryUtilization or vllm.kvBlocks size them), over the limit of {}",
                    e.kv_blocks, self.max_kv_blocks
                ),
                "check the GPU memory figure (profile.memoryGib) and vllm.kvBlocks, or simulate fewer replicas",
            ));
        }
        if e.requests > self.max_requests as f64 {
            return Err(InvalidInput::new(
                &e.requests_field,
                format!(
                    "generates about {:.3e} requests, over the limit of {}",
                    e.requests, self.max_requests
                ),
                "lower the rate or the duration, or set spec.workload.maxRequests",
            ));
        }
        if e.memory_bytes > self.max_memory_bytes {
            let gib = |b: f64| b / (1024.0 * 1024.0 * 1024.0);
            return Err(InvalidInput::new(
                &e.requests_field,
                format!(
                    "the run would need about {:.1} GiB ({} replicas, {:.3e} KV blocks, {:.3e} requests), over the limit of {:.1} GiB",
                    gib(e.memory_bytes),
                    e.replicas,
                    e.kv_blocks,
                    e.requests,
                    gib(self.max_memory_bytes)
                ),
                "simulate fewer replicas or fewer requests",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolve;

    fn resolved(replicas: u32, rate: f64, duration: f64) -> Resolved {
        let yaml = format!(
            "model: {{name: meta-llama/Llama-3.1-8B-Instruct}}\nhardware: {{gpu: H100-SXM-80GB}}\nreplicas: {replicas}\nworkload:\n  durationSeconds: {duration}\n  arrival: {{process: poisson, ratePerSecond: {rate}}}\n  classes:\n  - {{name: c, inputTokens: {{distribution: fixed, value: 100}}, outputTokens: {{distribution: fixed, value: 10}}}}\n"
        );
        let spec = serde_yaml::from_str(&yaml).unwrap();
        resolve("b", &spec, |_, _, _| Err(InvalidInput::new("epp", "not read here", ""))).unwrap()
    }

    #[test]
    fn small_runs_pass_and_each_excess_names_its_field() {
        let b = Budget::default();
        let e = estimate(&resolved(2, 10.0, 60.0), None);
        assert_eq!(e.replicas, 2);
        assert!((e.requests - 600.0).abs() < 1e-9);
        assert!(e.memory_bytes < 100.0 * 1024.0 * 1024.0, "{e:?}");
        b.check(&e).unwrap();
        let err = b.check(&estimate(&resolved(100_000_000, 1.0, 10.0), None)).unwrap_err();
        assert_eq!(err.field, "spec.replicas", "{err}");
        assert!(err.problem.contains("100000000") && err.problem.contains("10000"), "{err}");
        let err = b.check(&estimate(&resolved(1, 1e12, 60.0), None)).unwrap_err();
        assert!(err.field.starts_with("spec.workload.arrival.ratePerSecond"), "{err}");
        assert!(err.problem.contains("over the limit of 20000000"), "{err}");
        let tight = Budget { max_memory_bytes: 10.0 * 1024.0 * 1024.0, ..b };
        assert!(tight
            .check(&estimate(&resolved(10, 100.0, 600.0), None))
            .unwrap_err()
            .problem
            .contains("GiB"));
    }

    /// A resolved scenario with an inline GPU profile of `memory_gib`.
    fn with_memory(memory_gib: f64) -> Resolved {
        let yaml = format!(
            "model: {{name: meta-llama/Llama-3.1-8B-Instruct}}\nhardware: {{gpu: big, profile: {{name: big, memoryGib: {memory_gib}, tflopsBf16: 989, hbmTbps: 3.35, nvlinkGbps: 450, dollarsPerGpuHour: 2}}}}\nworkload:\n  durationSeconds: 10\n  arrival: {{process: poisson, ratePerSecond: 1}}\n  classes:\n  - {{name: c, inputTokens: {{distribution: fixed, value: 100}}, outputTokens: {{distribution: fixed, value: 10}}}}\n"
        );
        let spec = serde_yaml::from_str(&yaml).unwrap();
        resolve("b", &spec, |_, _, _| Err(InvalidInput::new("epp", "not read here", ""))).unwrap()
    }

    #[test]
    fn a_huge_gpu_memory_is_refused_by_its_kv_blocks() {
        let e = estimate(&with_memory(1e12), None);
        let err = Budget::default().check(&e).unwrap_err();
        assert_eq!(err.field, "spec.hardware", "{err}");
        assert!(err.problem.contains("KV blocks") && err.problem.contains("200000000"), "{err}");
        Budget::default().check(&estimate(&with_memory(80.0), None)).unwrap();
    }

    /// The check comes before anything the run allocates: `simulate` refuses an over-budget
    /// scenario before it reads the workload (a broken trace here), and the workload is read before
    /// the KV caches and replicas are built, so no over-budget run allocates them.
    #[test]
    fn simulate_checks_the_budget_before_it_builds_the_workload_or_the_kv_caches() {
        use crate::scenario::simulate;
        use crate::sim::{NoObserver, SimOptions};
        use std::sync::Arc;
        let mut r = with_memory(1e12);
        r.workload.trace = Some(serde_yaml::from_str("{configMapRef: {name: t, key: k}}").unwrap());
        r.workload.arrival = None;
        let broken = Arc::new(crate::workload::Trace::parse_csv("not,a,trace\n"));
        let err = simulate(&r, Some(broken.clone()), &SimOptions::default(), &mut NoObserver).err().unwrap();
        assert!(err.to_string().contains("KV blocks"), "the budget was not checked first: {err}");
        // Within the budget, the same broken trace is what fails.
        let mut ok = with_memory(80.0);
        ok.workload.trace = r.workload.trace.clone();
        ok.workload.arrival = None;
        let err = simulate(&ok, Some(broken), &SimOptions::default(), &mut NoObserver).err().unwrap();
        assert!(err.to_string().contains("trace"), "{err}");
    }

    /// A workload stopped by `maxRequests` alone (no duration) is estimated at that count, so a
    /// huge one is refused like a huge rate.
    #[test]
    fn a_request_cap_without_a_duration_is_the_estimate() {
        let capped = |max: u64| {
            let mut r = resolved(1, 10.0, 60.0);
            r.workload.duration_seconds = None;
            r.workload.max_requests = Some(max);
            estimate(&r, None)
        };
        let e = capped(250_000);
        assert_eq!(e.requests, 250_000.0);
        assert_eq!(e.requests_field, "spec.workload.maxRequests");
        Budget::default().check(&e).unwrap();
        let err = Budget::default().check(&capped(50_000_000)).unwrap_err();
        assert_eq!(err.field, "spec.workload.maxRequests", "{err}");
    }

    #[test]
    fn the_estimate_grows_with_what_the_run_holds() {
        let small = estimate(&resolved(1, 10.0, 60.0), None);
        let more_replicas = estimate(&resolved(4, 10.0, 60.0), None);
        let more_requests = estimate(&resolved(1, 100.0, 60.0), None);
        assert!(more_replicas.kv_blocks == 4.0 * small.kv_blocks && small.kv_blocks > 0.0);
        assert!(more_replicas.memory_bytes > small.memory_bytes);
        assert!(more_requests.memory_bytes > small.memory_bytes);
    }
}
