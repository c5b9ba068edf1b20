//! The `spec.workload` section of a scenario manifest, and its validation.
//!
//! Every type here mirrors a YAML mapping (camelCase keys, unknown keys rejected) so that a typo in a
//! manifest is an error rather than a silently ignored setting.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::slo::Slo;
use crate::error::InvalidInput;

/// What requests arrive, when, and how long they are: the traffic a scenario puts on the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Stop starting new requests and sessions after this many seconds of simulated time (turns of
    /// sessions already started still follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Cap on the number of requests generated, follow-up turns of sessions included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    /// The shared arrival process; each arrival picks a class (without its own `arrival`) by weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<ArrivalSpec>,
    /// The client classes: lengths, prefix sharing, sessions, SLO and priority of their requests
    /// (may come from `profile`).
    #[serde(default)]
    pub classes: Vec<ClassSpec>,
    /// Replay a recorded trace instead of generating arrivals and lengths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceSpec>,
    /// The load generator itself: how many requests it keeps in flight and when it gives up on one
    /// (default: unbounded, no timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientSpec>,
    /// A benchmark harness's own workload profile, which the importer turns into the fields above;
    /// the fields given next to it are applied on top (classes matched by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<WorkloadProfileSpec>,
}

impl WorkloadSpec {
    /// A workload that is a benchmark profile and nothing else (what a profile file given on its own
    /// describes).
    pub fn of_profile(profile: WorkloadProfileSpec) -> Self {
        Self {
            duration_seconds: None,
            max_requests: None,
            arrival: None,
            classes: Vec::new(),
            trace: None,
            client: None,
            profile: Some(profile),
        }
    }
}

/// A load generator's profile as benchmark users write it (give one of the two).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadProfileSpec {
    /// An llm-d-benchmark / inference-perf config (`load`, `data`, `api`, `server`, ...), inline or as
    /// a YAML string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub inference_perf: Option<serde_json::Value>,
    /// vLLM `benchmark_serving` random-dataset parameters (`random-input-len`, `random-output-len`,
    /// `request-rate`, `burstiness`, `num-prompts`, `max-concurrency`, ...), as a mapping, a command
    /// line, or the result JSON it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub benchmark_serving: Option<serde_json::Value>,
}

/// The client (load generator) as part of the model: benchmark harnesses bound their in-flight requests
/// and give up on slow ones, which shapes what they measure past saturation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSpec {
    /// Most requests in flight at once (inference-perf: `num_workers x worker_max_concurrency`;
    /// benchmark_serving: `--max-concurrency`). A request due while every slot is taken waits in the
    /// client, in order, and is sent when a slot frees; its latencies count from the actual send.
    /// Default: unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<i64>,
    /// Whole-request deadline in seconds from sending (inference-perf `request_timeout`): a request
    /// not finished by then counts as failed, is left out of every latency and token figure, and frees
    /// its client slot at the deadline. The server is modelled as finishing it anyway. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

/// What separates consecutive load stages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BetweenStagesSpec {
    /// Wait until every request sent in a stage has finished (completed, failed or timed out) before
    /// the pause and the next stage, as inference-perf does; otherwise the next stage starts when the
    /// previous one's duration ends (default true).
    #[serde(default = "default_true")]
    pub drain: bool,
    /// Idle time before each next stage, in seconds (inference-perf `interval`; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_seconds: Option<f64>,
}

impl BetweenStagesSpec {
    /// The pause in force.
    pub fn pause_seconds(&self) -> f64 {
        self.pause_seconds.unwrap_or(0.0)
    }
}

/// How inter-arrival gaps are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ArrivalProcess {
    /// Exponential gaps (memoryless, coefficient of variation 1).
    #[default]
    Poisson,
    /// Gamma gaps with coefficient of variation `cv` (> 1 is burstier than Poisson).
    Gamma,
    /// Evenly spaced arrivals, one every `1 / ratePerSecond` seconds.
    Constant,
    /// Exponential gaps rescaled so exactly `round(rate x duration)` requests (or the stage's
    /// `requests`) arrive in each stage (the inference-perf load generator's `constant` scheme).
    NormalizedExponential,
    /// inference-perf's `poisson` load type: each one-second slot gets a Poisson(rate) count of arrivals
    /// spread over the slot by exponential gaps rescaled to fill it; a stage sends exactly
    /// `floor(rate x duration)` requests (or its `requests`), however long that takes.
    PoissonPerSecond,
}

/// An arrival process: its kind and either one rate or a list of consecutive load stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArrivalSpec {
    /// The gap distribution (default `poisson`).
    #[serde(default)]
    pub process: ArrivalProcess,
    /// Mean arrivals per second for the whole run (give this or `stages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
    /// Consecutive load stages (give this or `ratePerSecond`); the run lasts their total duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageSpec>>,
    /// Coefficient of variation of the gaps; `gamma` only (1 behaves like Poisson).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<f64>,
    /// What separates the stages (default: back to back). With `drain`, a stage starts only after
    /// every request of the previous one has finished, so stages never overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_stages: Option<BetweenStagesSpec>,
}

/// One load stage: a rate held for a duration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageSpec {
    /// Mean arrivals per second during the stage.
    pub rate_per_second: f64,
    /// How long the stage lasts, in seconds.
    pub duration_seconds: f64,
    /// Exact number of requests the stage sends (`normalizedExponential` and `poissonPerSecond`
    /// only; default `round(rate x duration)`, `floor` for `poissonPerSecond`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<i64>,
}

/// A client class: a kind of traffic with its own lengths, sharing, sessions and SLO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassSpec {
    /// Unique name, used in results and to match a trace's `class` column.
    pub name: String,
    /// Relative share of the shared arrival process (default 1); ignored when the class has its own `arrival`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// The class's own independent arrival process, instead of a share of the shared one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<ArrivalSpec>,
    /// Prompt length in tokens (the question, after any shared prefix). Required unless replaying a trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<LengthDist>,
    /// Generated length in tokens. Required unless replaying a trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<LengthDist>,
    /// Shared system prompts prepended to the input (what makes prefix caching pay off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixSpec>,
    /// Multi-turn conversations: each arrival opens a session whose later turns follow completions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionSpec>,
    /// Latency targets the class's requests are judged against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// Integer priority (larger is more important), used by admission and scheduling policies.
    #[serde(default)]
    #[schemars(range(min = -1000000, max = 1000000))]
    pub priority: i32,
}

/// Shared system prompts: `groups` prompts of `tokens` tokens, optionally each with a fixed bank of questions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrefixSpec {
    /// Number of distinct system prompts; each request picks one uniformly.
    #[schemars(range(min = 1, max = 1000000))]
    pub groups: u32,
    /// Length of each system prompt in tokens.
    pub tokens: u32,
    /// Distinct questions per group that repeat exactly (same tokens, same length); omit for every
    /// question unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions_per_group: Option<u32>,
    /// How a request picks its (group, question): `random` (default, uniformly) or `cycle`: the
    /// `groups x questionsPerGroup` prompts are shuffled once and sent in that order, starting again
    /// from the first at every load stage (inference-perf's `shared_prefix` data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<PromptOrder>,
}

/// How requests pick their prompt from a prefix spec's prompt set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PromptOrder {
    /// Each request picks a group (and question) uniformly at random.
    #[default]
    Random,
    /// A fixed shuffled prompt list replayed in order, restarting at every load stage.
    Cycle,
}

/// Multi-turn sessions (closed loop): the next turn is sent a think time after the previous one completes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionSpec {
    /// Number of turns per session (samples are rounded, at least 1).
    pub turns: LengthDist,
    /// User think time between a completion and the next turn, in milliseconds (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time_ms: Option<LengthDist>,
    /// Whether each turn resends the whole conversation so far (default true, as chat APIs do).
    #[serde(default = "default_true")]
    pub accumulate: bool,
}

fn default_true() -> bool {
    true
}

/// One outcome of an empirical distribution and its relative weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmpiricalPoint {
    /// The value (a token count or milliseconds).
    pub value: f64,
    /// Relative weight (need not sum to 1).
    pub weight: f64,
}

/// A distribution of a non-negative count (tokens, turns) or duration (ms); samples are rounded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "distribution", rename_all = "lowercase", rename_all_fields = "camelCase", deny_unknown_fields)]
#[schemars(schema_with = "length_dist_schema")]
pub enum LengthDist {
    /// Always `value`.
    Fixed {
        /// The value.
        value: f64,
    },
    /// Integers from `min` to `max` inclusive, equally likely.
    Uniform {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// Gaussian, clamped to `[min, max]` when given.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std_dev: f64,
        /// Lower clamp.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Upper clamp.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Log-normal, given by its own `mean` and `stdDev` or by the underlying normal's `mu` and `sigma`;
    /// clamped to `[min, max]` when given.
    Lognormal {
        /// Mean of the distribution itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mean: Option<f64>,
        /// Standard deviation of the distribution itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        std_dev: Option<f64>,
        /// Mean of the logarithm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mu: Option<f64>,
        /// Standard deviation of the logarithm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma: Option<f64>,
        /// Lower clamp.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Upper clamp.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Exponential with the given mean, clamped to `[min, max]` when given.
    Exponential {
        /// Mean.
        mean: f64,
        /// Lower clamp.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Upper clamp.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// A finite set of values with relative weights (e.g. a measured histogram).
    Empirical {
        /// The outcomes.
        values: Vec<EmpiricalPoint>,
    },
}

/// One flat object schema for [`LengthDist`] (Kubernetes structural schemas cannot express the
/// per-variant shapes; validation names the field instead).
fn length_dist_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let point = generator.subschema_for::<EmpiricalPoint>();
    let num = |d: &str| schemars::json_schema!({"type": "number", "description": d});
    schemars::json_schema!({
        "type": "object",
        "description": "A distribution of a count or duration: fixed {value}, uniform {min, max}, normal {mean, stdDev, min?, max?}, lognormal {mean, stdDev | mu, sigma, min?, max?}, exponential {mean, min?, max?}, empirical {values: [{value, weight}]}.",
        "required": ["distribution"],
        "properties": {
            "distribution": {"type": "string", "enum": ["fixed", "uniform", "normal", "lognormal", "exponential", "empirical"]},
            "value": num("fixed: the value"),
            "min": num("smallest value / lower clamp"),
            "max": num("largest value / upper clamp"),
            "mean": num("mean"),
            "stdDev": num("standard deviation"),
            "mu": num("lognormal: mean of the logarithm"),
            "sigma": num("lognormal: standard deviation of the logarithm"),
            "values": {"type": "array", "items": point, "description": "empirical: the outcomes"}
        }
    })
}

/// Replay of a recorded per-request trace (CSV) instead of generated traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraceSpec {
    /// Path of the CSV file (read by the CLI / controller); give this or `csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The CSV text inline; give this or `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000000))]
    pub csv: Option<String>,
    /// A key of a ConfigMap in the scenario's namespace holding the CSV (controller only); give this,
    /// `path` or `csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,
    /// Length of each prefix group's shared prompt, for rows that carry a prefix group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_tokens: Option<u32>,
    /// For traces without a `prefix_group` column: assign each row one of this many groups uniformly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_groups: Option<u32>,
    /// Multiplier on arrival times (0.5 replays twice as fast). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    /// Prompt prefixes the serving engine already holds when the replayed requests arrive (the
    /// recorded benchmark warmed it up, or replayed the same prompts before); absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_prefix: Option<WarmPrefixSpec>,
}

/// Warm prefixes of a replayed trace: a `share` of the requests, drawn from the seed (stream
/// `workload.trace.warm`), arrive with the first `fraction` of their prompt already in the prefix
/// cache of the replica they are routed to; the rest arrive cold. The share is of all requests, so
/// it already counts the hits that routing loses (a prefix cached on one replica helps only the
/// requests sent there). What a recording shows when its prompts repeat or extend earlier ones
/// (multi-round conversations with a warm-up) and the trace has no token identities to say which.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmPrefixSpec {
    /// Share of the requests (0..1) that arrive with a warm prefix.
    pub share: f64,
    /// Fraction (0..1) of such a request's prompt that is cached (rounded down to whole KV blocks
    /// by the engine; at least one token is always computed).
    pub fraction: f64,
}

impl WarmPrefixSpec {
    /// The warm tokens of a prompt of `input_tokens` tokens, given a uniform draw `u` in [0, 1).
    pub fn tokens(&self, input_tokens: u32, u: f64) -> u32 {
        if u < self.share {
            (f64::from(input_tokens) * self.fraction).floor() as u32
        } else {
            0
        }
    }
}

/// A key of a ConfigMap in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapKeyRef {
    /// ConfigMap name.
    pub name: String,
    /// Key in its `data`.
    pub key: String,
}

impl TraceSpec {
    /// The arrival-time multiplier in force.
    pub fn time_scale(&self) -> f64 {
        self.time_scale.unwrap_or(1.0)
    }
}

impl ClassSpec {
    /// The class's weight in the shared arrival process (default 1).
    pub fn weight(&self) -> f64 {
        self.weight.unwrap_or(1.0)
    }
}

/// Largest number of classes (class indices are `u16`).
pub const MAX_CLASSES: usize = u16::MAX as usize;

type V = Result<(), InvalidInput>;

fn err(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> InvalidInput {
    InvalidInput::new(field, problem, fix)
}

fn positive(field: &str, v: f64, fix: &str) -> V {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(err(field, format!("must be a finite number > 0 (got {v})"), fix))
    }
}

/// Checks a workload section before any simulation; field paths are relative to `spec.workload`.
pub fn validate(spec: &WorkloadSpec) -> V {
    if let Some(d) = spec.duration_seconds {
        positive("durationSeconds", d, "set durationSeconds to a positive number of seconds, or omit it")?;
    }
    if spec.max_requests == Some(0) {
        return Err(err(
            "maxRequests",
            "must be >= 1 (got 0)",
            "set maxRequests to a positive count, or omit it",
        ));
    }
    if spec.classes.is_empty() {
        return Err(err(
            "classes",
            "no class given",
            "add at least one entry under classes (name, inputTokens, outputTokens)",
        ));
    }
    if spec.classes.len() > MAX_CLASSES {
        return Err(err(
            "classes",
            format!("{} classes given, at most {MAX_CLASSES} are supported", spec.classes.len()),
            "merge classes",
        ));
    }
    if spec.profile.is_some() {
        return Err(err(
            "profile",
            "was not expanded: workload profiles are read by the importer",
            "resolve the scenario through blis_import::resolve (the CLI and controller do)",
        ));
    }
    if let Some(c) = &spec.client {
        validate_client(c).map_err(|e| e.under("client"))?;
    }
    let replay = spec.trace.is_some();
    if let Some(t) = &spec.trace {
        validate_trace(t).map_err(|e| e.under("trace"))?;
    }
    for (i, c) in spec.classes.iter().enumerate() {
        validate_class(c, replay).map_err(|e| e.under(&format!("classes[{i}]")))?;
        if let Some(j) = spec.classes[..i].iter().position(|o| o.name == c.name) {
            return Err(err(
                format!("classes[{i}].name"),
                format!("duplicate class name {:?} (also classes[{j}])", c.name),
                "give every class a unique name",
            ));
        }
    }
    if replay {
        // Arrivals come from the trace; the arrival sections and weights are not used.
        return Ok(());
    }
    let shared_users: Vec<usize> =
        spec.classes.iter().enumerate().filter(|(_, c)| c.arrival.is_none()).map(|(i, _)| i).collect();
    let bounded = spec.duration_seconds.is_some() || spec.max_requests.is_some();
    if !shared_users.is_empty() {
        let Some(a) = &spec.arrival else {
            return Err(err(
                "arrival",
                format!(
                    "missing, but class {:?} has no arrival of its own",
                    spec.classes[shared_users[0]].name
                ),
                "add arrival: {process: poisson, ratePerSecond: ...}, or give every class its own arrival",
            ));
        };
        validate_arrival(a, spec.duration_seconds).map_err(|e| e.under("arrival"))?;
        let total: f64 = shared_users.iter().map(|&i| spec.classes[i].weight()).sum();
        if !(total.is_finite() && total > 0.0) {
            return Err(err(
                format!("classes[{}].weight", shared_users[0]),
                format!("weights of the classes sharing the arrival process sum to {total}"),
                "give at least one class a positive weight",
            ));
        }
    }
    if !bounded {
        // Without a duration or request cap, every arrival process in use must end by itself.
        let shared_ends =
            shared_users.is_empty() || spec.arrival.as_ref().is_some_and(|a| a.stages.is_some());
        let own_end = spec.classes.iter().all(|c| c.arrival.as_ref().is_none_or(|a| a.stages.is_some()));
        if !(shared_ends && own_end) {
            return Err(err(
                "",
                "the workload never ends: no durationSeconds, maxRequests, arrival stages or trace",
                "set durationSeconds or maxRequests, or use arrival stages",
            ));
        }
    }
    for (i, c) in spec.classes.iter().enumerate() {
        if let Some(a) = &c.arrival {
            validate_arrival(a, spec.duration_seconds)
                .map_err(|e| e.under(&format!("classes[{i}].arrival")))?;
        }
    }
    if let (true, Some(a)) = (shared_users.is_empty(), &spec.arrival) {
        // Unused (every class has its own arrival), but a broken section is still a mistake worth reporting.
        validate_arrival(a, spec.duration_seconds).map_err(|e| e.under("arrival"))?;
    }
    Ok(())
}

fn validate_client(c: &ClientSpec) -> V {
    if let Some(n) = c.max_in_flight {
        if n < 1 {
            return Err(err(
                "maxInFlight",
                format!("must be >= 1 (got {n})"),
                "set the most requests the client keeps in flight, or omit it for no bound",
            ));
        }
    }
    if let Some(t) = c.timeout_seconds {
        positive("timeoutSeconds", t, "set the request timeout in seconds, or omit it for none")?;
    }
    Ok(())
}

fn validate_trace(t: &TraceSpec) -> V {
    let given = usize::from(t.path.is_some())
        + usize::from(t.csv.is_some())
        + usize::from(t.config_map_ref.is_some());
    if given > 1 {
        return Err(err(
            "",
            "more than one of path, csv and configMapRef is given",
            "keep one of trace.path, trace.csv and trace.configMapRef",
        ));
    }
    if let Some(r) = &t.config_map_ref {
        if r.name.trim().is_empty() || r.key.trim().is_empty() {
            return Err(err("configMapRef", "needs a name and a key", "name the ConfigMap and its data key"));
        }
    }
    match (&t.path, &t.csv) {
        (None, None) if t.config_map_ref.is_none() => {
            return Err(err(
                "",
                "neither path nor csv is given",
                "set trace.path to a CSV file or trace.csv to inline CSV text",
            ));
        }
        (Some(p), None) if p.trim().is_empty() => {
            return Err(err("path", "is empty", "set path to the trace CSV file"));
        }
        _ => {}
    }
    if let Some(s) = t.time_scale {
        positive("timeScale", s, "set timeScale to a positive multiplier (1 = recorded speed)")?;
    }
    if t.prefix_tokens == Some(0) {
        return Err(err(
            "prefixTokens",
            "must be >= 1 (got 0)",
            "set the shared prompt length, or omit prefixTokens",
        ));
    }
    if t.prefix_groups == Some(0) {
        return Err(err(
            "prefixGroups",
            "must be >= 1 (got 0)",
            "set the number of prefix groups, or omit prefixGroups",
        ));
    }
    if let Some(w) = &t.warm_prefix {
        for (name, v) in [("warmPrefix.share", w.share), ("warmPrefix.fraction", w.fraction)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(err(
                    name,
                    format!("must be between 0 and 1 (got {v})"),
                    "give a fraction from 0 to 1",
                ));
            }
        }
    }
    if t.prefix_groups.is_some() && t.prefix_tokens.is_none() {
        return Err(err(
            "prefixTokens",
            "missing while prefixGroups is set",
            "set prefixTokens to the shared prompt length",
        ));
    }
    Ok(())
}

fn validate_class(c: &ClassSpec, replay: bool) -> V {
    if c.name.trim().is_empty() {
        return Err(err("name", "is empty", "give the class a name"));
    }
    if let Some(w) = c.weight {
        if !(w.is_finite() && w >= 0.0) {
            return Err(err(
                "weight",
                format!("must be a finite number >= 0 (got {w})"),
                "set a non-negative weight",
            ));
        }
    }
    match &c.input_tokens {
        Some(d) => validate_dist(d, 1.0).map_err(|e| e.under("inputTokens"))?,
        None if !replay => {
            return Err(err(
                "inputTokens",
                "missing",
                "add inputTokens, e.g. {distribution: normal, mean: 512, stdDev: 128, min: 1, max: 4096}",
            ))
        }
        None => {}
    }
    match &c.output_tokens {
        Some(d) => validate_dist(d, 1.0).map_err(|e| e.under("outputTokens"))?,
        None if !replay => {
            return Err(err(
                "outputTokens",
                "missing",
                "add outputTokens, e.g. {distribution: fixed, value: 256}",
            ))
        }
        None => {}
    }
    if let Some(p) = &c.prefix {
        if p.groups == 0 {
            return Err(err(
                "prefix.groups",
                "must be >= 1 (got 0)",
                "set the number of shared system prompts",
            ));
        }
        if p.tokens == 0 {
            return Err(err(
                "prefix.tokens",
                "must be >= 1 (got 0)",
                "set the system prompt length, or remove prefix",
            ));
        }
        if p.questions_per_group == Some(0) {
            return Err(err(
                "prefix.questionsPerGroup",
                "must be >= 1 (got 0)",
                "set the number of distinct questions per group, or omit it for unique questions",
            ));
        }
        if p.order == Some(PromptOrder::Cycle) && p.questions_per_group.is_none() {
            return Err(err(
                "prefix.order",
                "cycle needs a fixed prompt set, but questionsPerGroup is not set",
                "set questionsPerGroup (the distinct questions of each group), or use order: random",
            ));
        }
        if p.order == Some(PromptOrder::Cycle) && c.session.is_some() {
            return Err(err(
                "prefix.order",
                "cycle replays single prompts and cannot drive sessions",
                "remove session, or use order: random",
            ));
        }
    }
    if let Some(s) = &c.session {
        validate_dist(&s.turns, 1.0).map_err(|e| e.under("session.turns"))?;
        if let Some(t) = &s.think_time_ms {
            validate_dist(t, 0.0).map_err(|e| e.under("session.thinkTimeMs"))?;
        }
    }
    if let Some(slo) = &c.slo {
        for (name, v) in [("ttftMs", slo.ttft_ms), ("itlMs", slo.itl_ms), ("e2eMs", slo.e2e_ms)] {
            if let Some(v) = v {
                positive(&format!("slo.{name}"), v, "set a positive limit in milliseconds, or omit it")?;
            }
        }
        if let Some(a) = slo.attainment {
            if !(a.is_finite() && (0.0..=1.0).contains(&a)) {
                return Err(err(
                    "slo.attainment",
                    format!("must be between 0 and 1 (got {a})"),
                    "set the fraction of requests that must meet the limits, e.g. 0.9",
                ));
            }
        }
    }
    Ok(())
}

fn validate_arrival(a: &ArrivalSpec, duration_seconds: Option<f64>) -> V {
    match (&a.rate_per_second, &a.stages) {
        (Some(_), Some(_)) => {
            return Err(err(
                "stages",
                "both ratePerSecond and stages are given",
                "keep one of ratePerSecond and stages",
            ));
        }
        (None, None) => {
            return Err(err("ratePerSecond", "missing (and no stages)", "set ratePerSecond, or list stages"));
        }
        (Some(r), None) => {
            positive("ratePerSecond", *r, "set a positive request rate per second")?;
            if a.process == ArrivalProcess::NormalizedExponential && duration_seconds.is_none() {
                return Err(err(
                    "process",
                    "normalizedExponential with a single rate needs spec.workload.durationSeconds",
                    "set durationSeconds, or give the arrival stages",
                ));
            }
        }
        (None, Some(stages)) => {
            if stages.is_empty() {
                return Err(err(
                    "stages",
                    "is empty",
                    "list at least one {ratePerSecond, durationSeconds} stage",
                ));
            }
            for (i, s) in stages.iter().enumerate() {
                positive(
                    &format!("stages[{i}].ratePerSecond"),
                    s.rate_per_second,
                    "set a positive request rate",
                )?;
                positive(
                    &format!("stages[{i}].durationSeconds"),
                    s.duration_seconds,
                    "set a positive duration",
                )?;
                match s.requests {
                    None => {}
                    Some(n) if n < 1 => {
                        return Err(err(
                            format!("stages[{i}].requests"),
                            format!("must be >= 1 (got {n})"),
                            "set the number of requests the stage sends, or omit it",
                        ))
                    }
                    Some(_)
                        if !matches!(
                            a.process,
                            ArrivalProcess::NormalizedExponential | ArrivalProcess::PoissonPerSecond
                        ) =>
                    {
                        return Err(err(
                            format!("stages[{i}].requests"),
                            format!(
                                "is set but process is {:?}, whose stages end with their duration",
                                a.process
                            ),
                            "use process normalizedExponential or poissonPerSecond, or remove requests",
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    if let Some(b) = &a.between_stages {
        if a.stages.is_none() {
            return Err(err(
                "betweenStages",
                "is set but there are no stages",
                "list arrival stages, or remove betweenStages",
            ));
        }
        if let Some(p) = b.pause_seconds {
            finite_at_least("betweenStages.pauseSeconds", p, 0.0)?;
        }
    }
    match (a.process, a.cv) {
        (ArrivalProcess::Gamma, None) => Err(err(
            "cv",
            "missing for process gamma",
            "set cv, the coefficient of variation of gaps (1 = Poisson)",
        )),
        (ArrivalProcess::Gamma, Some(cv)) => positive("cv", cv, "set a positive coefficient of variation"),
        (p, Some(cv)) => Err(err(
            "cv",
            format!("is set ({cv}) but process is {p:?}; cv applies only to gamma"),
            "remove cv, or set process: gamma",
        )),
        (_, None) => Ok(()),
    }
}

fn finite_at_least(field: &str, v: f64, floor: f64) -> V {
    if v.is_finite() && v >= floor {
        Ok(())
    } else {
        Err(err(
            field,
            format!("must be a finite number >= {floor} (got {v})"),
            format!("use a value >= {floor}"),
        ))
    }
}

fn clamp_bounds(min: Option<f64>, max: Option<f64>, floor: f64) -> V {
    if let Some(lo) = min {
        finite_at_least("min", lo, floor)?;
    }
    if let Some(hi) = max {
        finite_at_least("max", hi, floor)?;
    }
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(err("min", format!("min {lo} is above max {hi}"), "make min <= max"));
        }
    }
    Ok(())
}

/// Checks a distribution's parameters; `floor` is the smallest meaningful sample (1 token, 0 ms).
pub(crate) fn validate_dist(d: &LengthDist, floor: f64) -> V {
    match d {
        LengthDist::Fixed { value } => finite_at_least("value", *value, floor),
        LengthDist::Uniform { min, max } => clamp_bounds(Some(*min), Some(*max), floor),
        LengthDist::Normal { mean, std_dev, min, max } => {
            positive("mean", *mean, "set a positive mean")?;
            finite_at_least("stdDev", *std_dev, 0.0)?;
            clamp_bounds(*min, *max, floor)
        }
        LengthDist::Exponential { mean, min, max } => {
            positive("mean", *mean, "set a positive mean")?;
            clamp_bounds(*min, *max, floor)
        }
        LengthDist::Lognormal { mean, std_dev, mu, sigma, min, max } => {
            match (mean, std_dev, mu, sigma) {
                (Some(m), Some(s), None, None) => {
                    positive("mean", *m, "set a positive mean")?;
                    finite_at_least("stdDev", *s, 0.0)?;
                }
                (None, None, Some(m), Some(s)) => {
                    if !m.is_finite() {
                        return Err(err(
                            "mu",
                            format!("must be finite (got {m})"),
                            "set mu, the mean of ln(x)",
                        ));
                    }
                    finite_at_least("sigma", *s, 0.0)?;
                }
                _ => {
                    return Err(err(
                        "",
                        "lognormal needs exactly one parameter pair: mean and stdDev, or mu and sigma",
                        "give {mean, stdDev} (of the lengths) or {mu, sigma} (of their logarithm)",
                    ))
                }
            }
            clamp_bounds(*min, *max, floor)
        }
        LengthDist::Empirical { values } => {
            if values.is_empty() {
                return Err(err("values", "is empty", "list at least one {value, weight}"));
            }
            let mut total = 0.0;
            for (i, p) in values.iter().enumerate() {
                finite_at_least(&format!("values[{i}].value"), p.value, floor)?;
                finite_at_least(&format!("values[{i}].weight"), p.weight, 0.0)?;
                total += p.weight;
            }
            if !(total.is_finite() && total > 0.0) {
                return Err(err(
                    "values",
                    format!("weights sum to {total}"),
                    "give at least one value a positive weight",
                ));
            }
            Ok(())
        }
    }
}
