//! A sweep: which candidates to try over a base scenario and how to judge them ([`SweepSpec`]), the
//! spec of a `SimulationSweep` custom resource and of the file `blis sweep` reads.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use blis_sim::metrics::Summary;
use blis_sim::scenario::ScenarioSpec;

/// One swept parameter: a spec path and the values it takes, given as a list, a range or random
/// draws (exactly one of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepParameter {
    /// Dotted path into the scenario spec, e.g. `replicas` or `vllm.maxNumSeqs`.
    pub path: String,
    /// Values to try.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "blis_sim::schema::any_list")]
    pub values: Vec<Value>,
    /// Evenly spaced values `from, from+step, ...` up to `to` (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ParameterRange>,
    /// Uniform random draws in `[from, to]` (one per sample; needs `spec.samples`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomRange>,
}

/// An inclusive range of evenly spaced values. Integer bounds and step give integer values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterRange {
    /// First value.
    pub from: f64,
    /// Last value (included when the steps land on it).
    pub to: f64,
    /// Distance between values (> 0).
    pub step: f64,
}

/// Bounds of a random parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RandomRange {
    /// Lower bound.
    pub from: f64,
    /// Upper bound.
    pub to: f64,
    /// Draw whole numbers (default: when both bounds are whole numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integer: Option<bool>,
}

/// An explicit candidate: the base changed by a JSON merge patch and/or fields set by path (e.g. a
/// candidate manifest from another branch, pasted as a patch).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepCandidate {
    /// Candidate name (unique within the sweep).
    pub name: String,
    /// JSON merge patch (RFC 7386) applied to the base spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "blis_sim::schema::any_object")]
    pub patch: Option<Value>,
    /// Fields set by dotted path after the patch, e.g. `{replicas: 4}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "blis_sim::schema::any_object")]
    pub set: BTreeMap<String, Value>,
}

/// What the sweep minimises among candidates that pass the gates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Objective {
    /// Dollars per million tokens (input + output), the default.
    #[default]
    DollarsPerMillionTokens,
    /// Dollars per million output tokens.
    DollarsPerMillionOutputTokens,
    /// Dollars per hour of the deployment.
    DollarsPerHour,
    /// GPUs used.
    Gpus,
    /// p90 time to first token (ms).
    TtftP90Ms,
    /// p99 time to first token (ms).
    TtftP99Ms,
    /// p90 inter-token latency (ms).
    ItlP90Ms,
    /// p99 end-to-end latency (ms).
    E2eP99Ms,
}

impl Objective {
    /// Short human label with its unit.
    pub fn label(self) -> &'static str {
        match self {
            Self::DollarsPerMillionTokens => "$/1M tokens",
            Self::DollarsPerMillionOutputTokens => "$/1M output tokens",
            Self::DollarsPerHour => "$/h",
            Self::Gpus => "GPUs",
            Self::TtftP90Ms => "TTFT p90 ms",
            Self::TtftP99Ms => "TTFT p99 ms",
            Self::ItlP90Ms => "ITL p90 ms",
            Self::E2eP99Ms => "E2E p99 ms",
        }
    }

    /// The objective's value for a candidate's figures (infinite when the run produced none).
    pub fn value(self, m: &Figures) -> f64 {
        let v = match self {
            Self::DollarsPerMillionTokens => m.dollars_per_million_tokens,
            Self::DollarsPerMillionOutputTokens => m.dollars_per_million_output_tokens,
            Self::DollarsPerHour => Some(m.dollars_per_hour),
            Self::Gpus => Some(f64::from(m.gpus)),
            Self::TtftP90Ms => Some(m.ttft_p90_ms),
            Self::TtftP99Ms => Some(m.ttft_p99_ms),
            Self::ItlP90Ms => Some(m.itl_p90_ms),
            Self::E2eP99Ms => Some(m.e2e_p99_ms),
        };
        v.unwrap_or(f64::INFINITY)
    }
}

/// What to search for instead of ranking a fixed set of runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SearchMode {
    /// Per candidate, the highest request rate that still passes the gates.
    Saturation,
    /// Every candidate at `targetRate`; the best feasible one by the objective wins.
    CheapestForRate,
}

/// A search over the request rate (saturation) or at a fixed target rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepSearch {
    /// `saturation` or `cheapestForRate`.
    pub mode: SearchMode,
    /// Path of the rate (default `workload.arrival.ratePerSecond`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_path: Option<String>,
    /// Saturation: lowest rate tried (requests/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rate: Option<f64>,
    /// Saturation: highest rate tried (requests/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
    /// Saturation: stop when the bracket is narrower than this fraction of its low end (default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// cheapestForRate: the rate every candidate must sustain (requests/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
}

/// Default path of the request rate.
pub const DEFAULT_RATE_PATH: &str = "workload.arrival.ratePerSecond";

/// The figures of one candidate that ranking, the Pareto set and reports use (means over
/// replications), rounded to 1e-6 so they survive a JSON round trip between shards unchanged in
/// order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// $ per million tokens (input + output).
    pub dollars_per_million_tokens: Option<f64>,
    /// $ per million output tokens.
    pub dollars_per_million_output_tokens: Option<f64>,
    /// $ per hour.
    pub dollars_per_hour: f64,
    /// GPUs.
    pub gpus: u32,
    /// TTFT p50 (ms).
    pub ttft_p50_ms: f64,
    /// TTFT p90 (ms).
    pub ttft_p90_ms: f64,
    /// TTFT p99 (ms).
    pub ttft_p99_ms: f64,
    /// ITL p90 (ms).
    pub itl_p90_ms: f64,
    /// E2E p90 (ms).
    pub e2e_p90_ms: f64,
    /// E2E p99 (ms).
    pub e2e_p99_ms: f64,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Fraction of SLO-bearing requests meeting their SLO.
    pub slo_attainment: Option<f64>,
    /// Completed requests.
    pub completed: u64,
}

fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Figures {
    /// The figures of one run.
    pub fn of(s: &Summary) -> Self {
        Self {
            dollars_per_million_tokens: s.cost.dollars_per_million_tokens.map(r6),
            dollars_per_million_output_tokens: s.cost.dollars_per_million_output_tokens.map(r6),
            dollars_per_hour: r6(s.cost.dollars_per_hour),
            gpus: s.cost.gpus,
            ttft_p50_ms: r6(s.overall.ttft_ms.p50),
            ttft_p90_ms: r6(s.overall.ttft_ms.p90),
            ttft_p99_ms: r6(s.overall.ttft_ms.p99),
            itl_p90_ms: r6(s.overall.itl_ms.p90),
            e2e_p90_ms: r6(s.overall.e2e_ms.p90),
            e2e_p99_ms: r6(s.overall.e2e_ms.p99),
            throughput_rps: r6(s.overall.throughput.requests_per_s),
            slo_attainment: s.slo_attainment.map(r6),
            completed: s.overall.requests.completed,
        }
    }

    /// The mean of several replications' figures (the first one's when there is one).
    pub fn mean(all: &[Figures]) -> Self {
        let n = all.len().max(1) as f64;
        let avg = |f: &dyn Fn(&Figures) -> f64| r6(all.iter().map(f).sum::<f64>() / n);
        let avg_opt = |f: &dyn Fn(&Figures) -> Option<f64>| {
            all.iter().map(f).collect::<Option<Vec<f64>>>().map(|v| r6(v.iter().sum::<f64>() / n))
        };
        Self {
            dollars_per_million_tokens: avg_opt(&|m| m.dollars_per_million_tokens),
            dollars_per_million_output_tokens: avg_opt(&|m| m.dollars_per_million_output_tokens),
            dollars_per_hour: avg(&|m| m.dollars_per_hour),
            gpus: all.first().map_or(0, |m| m.gpus),
            ttft_p50_ms: avg(&|m| m.ttft_p50_ms),
            ttft_p90_ms: avg(&|m| m.ttft_p90_ms),
            ttft_p99_ms: avg(&|m| m.ttft_p99_ms),
            itl_p90_ms: avg(&|m| m.itl_p90_ms),
            e2e_p90_ms: avg(&|m| m.e2e_p90_ms),
            e2e_p99_ms: avg(&|m| m.e2e_p99_ms),
            throughput_rps: avg(&|m| m.throughput_rps),
            slo_attainment: avg_opt(&|m| m.slo_attainment),
            completed: (all.iter().map(|m| m.completed).sum::<u64>() as f64 / n).round() as u64,
        }
    }
}

/// Candidate comparison over a base scenario: a grid, random samples or explicit candidates, ranked
/// by an objective among those passing the gates: the spec of a `SimulationSweep` and of the file
/// `blis sweep` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepSpec {
    /// The scenario every candidate starts from.
    pub base: ScenarioSpec,
    /// Swept parameters: every combination of their values is a candidate (or, with `samples`, that
    /// many random combinations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<SweepParameter>,
    /// Explicit candidates (patches of the base); with `parameters`, each one is swept over the grid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<SweepCandidate>,
    /// Draw this many random combinations instead of the full grid (needed by `random` parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub samples: Option<u32>,
    /// What to minimise among candidates that pass the gates (default `dollarsPerMillionTokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// Refuse sweeps that expand to more candidates than this (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_candidates: Option<u32>,
    /// Runs per candidate with seeds `seed, seed+1, ...`; figures are means, with a 95% confidence
    /// interval of the objective when more than one (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replications: Option<u32>,
    /// Seed of every candidate (common random numbers: differences are not noise); default the
    /// base's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Search the rate instead of ranking fixed runs: `saturation` or `cheapestForRate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SweepSearch>,
    /// Most candidates simulated at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<i64>,
    /// Run the candidates as a Kubernetes Indexed Job, one pod per shard, instead of inside the
    /// controller (controller only; `blis sweep` ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<SweepFanOut>,
}

/// When and how wide a sweep fans out to an Indexed Job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepFanOut {
    /// `Auto` (default): fan out at or above the controller's `--sweep-fan-out-threshold`
    /// candidates, when it has a `--sweep-image`; `Always`; `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FanOutMode>,
    /// Pods of the Job, each simulating every n-th candidate (default the controller's
    /// `--sweep-shards`, at most one per candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub shards: Option<u32>,
}

/// Whether a sweep fans out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FanOutMode {
    /// Above the controller's size threshold.
    #[default]
    Auto,
    /// Always (fails when the controller has no sweep image).
    Always,
    /// Never: the controller simulates every candidate itself.
    Never,
}
