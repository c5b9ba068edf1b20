//! The endpoint picker's plugin pipeline as the simulator runs it: scheduling profiles of filters,
//! weighted scorers and a picker, the profile handler (single or P/D), the approximate prefix
//! index's parameters, the saturation detector and flow control. Reading llm-d's own
//! `EndpointPickerConfig` documents into this shape is the importer's job.

use std::collections::BTreeMap;

/// A scorer of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Scorer {
    /// Min-max inverted waiting-queue length.
    Queue,
    /// `1 - KV utilisation`.
    KvUtilization,
    /// Fraction of the prompt's blocks the router-side approximate index places on the endpoint.
    ApproxPrefix,
    /// Consecutive prompt blocks in the endpoint's real KV cache, min-max normalised.
    PrecisePrefix,
    /// `0.5` for an empty queue, else `0.5 (1 - min(q, threshold)/threshold)`.
    LoadAware {
        /// Queue threshold.
        threshold: f64,
    },
    /// Router-owned in-flight requests: idle 1.0, busy `(max - n)/max * maxBusyScore`.
    ActiveRequest {
        /// Score ceiling of busy endpoints.
        max_busy_score: f64,
    },
    /// 1.0 for the endpoint that served the session's previous turn.
    SessionAffinity,
    /// Cold requests (no cached prefix anywhere) go to the least recently used endpoint; "cached"
    /// per the approximate index, or per the endpoints' real KV caches with `precise` (when its
    /// prefix producer is the precise, KV-event one).
    NoHitLru {
        /// Whether hits are read from the real KV caches.
        precise: bool,
    },
    /// Min-max inverted running batch size.
    RunningRequests,
    /// Router-owned in-flight prompt tokens: `1 - min(tokens, threshold)/threshold`.
    TokenLoad {
        /// Token threshold.
        threshold: f64,
    },
    /// Scores every endpoint 1.0 (unmodelled or input-independent plugins).
    Neutral,
}

impl Scorer {
    /// Whether the scores depend only on the candidates and their metric snapshots (not on the
    /// request or the router's own counts), so they hold until a snapshot is re-read.
    pub fn reads_only_snapshots(&self) -> bool {
        matches!(
            self,
            Scorer::Queue
                | Scorer::RunningRequests
                | Scorer::KvUtilization
                | Scorer::LoadAware { .. }
                | Scorer::Neutral
        )
    }
}

/// A filter of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Keeps endpoints with role `decode` or `both` (or no role label).
    Decode,
    /// Keeps endpoints with role `prefill`.
    Prefill,
    /// Keeps endpoints whose `label` is one of `values` (or lacks it, with `allows_no_label`).
    Label {
        /// Label key.
        label: String,
        /// Accepted values (any value when empty and the label is present).
        values: Vec<String>,
        /// Whether endpoints without the label pass.
        allows_no_label: bool,
    },
    /// `matchLabels` selector: all pairs must match.
    Selector(BTreeMap<String, String>),
    /// `prefix-cache-affinity-filter`: keeps the endpoints whose approximate prefix score reaches
    /// `threshold` ("sticky"), unless there are none, or the best sticky endpoint's estimated TTFT
    /// (router in-flight prompt tokens over `peak_prefill_tps`) exceeds the best other one's by more
    /// than `max_ttft_penalty_ms`; with probability `exploration` it keeps everyone.
    PrefixAffinity {
        /// Prefix score at or above which an endpoint is sticky.
        threshold: f64,
        /// Probability of skipping the gate.
        exploration: f64,
        /// Largest TTFT penalty (ms) accepted to stay sticky; 0 = always stick.
        max_ttft_penalty_ms: f64,
        /// Prefill throughput (tokens/s) the TTFT estimate divides in-flight tokens by.
        peak_prefill_tps: f64,
    },
    /// Keeps everyone.
    Neutral,
}

/// A picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picker {
    /// Highest total, ties at random.
    MaxScore,
    /// Uniformly at random.
    Random,
    /// At random with probability proportional to the total.
    WeightedRandom,
}

/// One scheduling profile: filters in order, weighted scorers, a picker.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// Filters, in order.
    pub filters: Vec<Filter>,
    /// Scorers with their weights.
    pub scorers: Vec<(Scorer, f64)>,
    /// The picker.
    pub picker: Picker,
}

/// When a request is split into a prefill on a prefill endpoint and a decode on a decode endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decider {
    /// Always.
    Always,
    /// Never (the decode endpoint serves whole requests).
    Never,
    /// When the prompt has at least `prompt_tokens` tokens and at least `non_cached_tokens` of them
    /// are not cached on the chosen decode endpoint (`prefix-based-pd-decider`).
    PrefixBased {
        /// Least non-cached tokens that trigger the split (> 0; 0 is [`Decider::Never`]).
        non_cached_tokens: u32,
        /// Least prompt tokens that trigger the split (0 = any).
        prompt_tokens: u32,
    },
}

/// Which profiles run for a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Handler {
    /// The only profile.
    Single,
    /// Decode profile first, then (if the decider says so) the prefill profile.
    Disagg {
        /// Index of the decode profile.
        decode: usize,
        /// Index of the prefill profile.
        prefill: usize,
        /// The decider.
        decider: Decider,
    },
}

/// The router-side approximate prefix index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefixIndexConfig {
    /// Tokens per hashed block.
    pub block_size_tokens: u32,
    /// Blocks remembered per endpoint (LRU).
    pub lru_capacity_per_server: u32,
    /// Most leading blocks matched per request.
    pub max_blocks: u32,
    /// `autoTune`: block size and per-server capacity follow the model servers' KV cache (their
    /// `--block-size` and KV block count, as the EPP reads them from metrics); resolved with the pools.
    pub auto_tune: bool,
}

impl Default for PrefixIndexConfig {
    fn default() -> Self {
        Self {
            block_size_tokens: 16,
            lru_capacity_per_server: 31_250,
            max_blocks: 131_072 / 16,
            auto_tune: false,
        }
    }
}

/// The saturation detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detector {
    /// Per endpoint `max(queue/queueThr, kv/kvThr)`; saturated when the mean reaches `1 + headroom`.
    Utilization {
        /// `queueDepthThreshold` (default 5).
        queue_depth: f64,
        /// `kvCacheUtilThreshold` (default 0.8).
        kv_util: f64,
        /// `headroom` (default 0).
        headroom: f64,
    },
    /// In-flight requests over `endpoints x maxConcurrency`.
    Concurrency {
        /// `maxConcurrency` per endpoint.
        max_concurrency: f64,
        /// `headroom`.
        headroom: f64,
    },
}

impl Default for Detector {
    fn default() -> Self {
        Detector::Utilization { queue_depth: 5.0, kv_util: 0.8, headroom: 0.0 }
    }
}

/// Flow control (the `flowControl` feature gate and section).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowControl {
    /// Whether the gate is on (requests queue at the gateway instead of being shed).
    pub enabled: bool,
    /// Queue-wait budget (µs); `None` = no expiry.
    pub ttl_us: Option<i64>,
    /// Global cap on queued requests (0 = none).
    pub max_requests: u64,
    /// Per-priority caps on queued requests; bands not listed get `default_band_max`.
    pub bands: Vec<(i32, u64)>,
    /// Cap of unlisted bands.
    pub default_band_max: u64,
}

impl Default for FlowControl {
    fn default() -> Self {
        Self {
            enabled: false,
            ttl_us: Some(60_000_000),
            max_requests: 0,
            bands: Vec::new(),
            default_band_max: 5000,
        }
    }
}

/// One plugin of the config as written, for the inputs: its name, type and what the twin does with it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginNote {
    /// Plugin name.
    pub name: String,
    /// Plugin type (the current name when an old one was written).
    pub ty: String,
    /// `modelled`, `inert` (no effect on what is simulated) or `not modelled` (neutral).
    pub treatment: String,
}

/// A parsed `EndpointPickerConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct EppConfig {
    /// Scheduling profiles.
    pub profiles: Vec<Profile>,
    /// Profile handler.
    pub handler: Handler,
    /// Parameters of the approximate prefix index (when a plugin uses it).
    pub prefix: PrefixIndexConfig,
    /// Saturation detector.
    pub detector: Detector,
    /// Flow control.
    pub flow: FlowControl,
    /// Block size (tokens) of the precise prefix index, when the config names one: it must equal
    /// the model servers' `--block-size` for the real index to match anything.
    pub precise_block_tokens: Option<u32>,
    /// Every plugin of the config, as written.
    pub plugins: Vec<PluginNote>,
    /// µs per prompt token the gateway path spends on a request before it reaches a model server
    /// ([`GATEWAY_US_PER_PROMPT_TOKEN`] unless set otherwise).
    pub gateway_us_per_prompt_token: f64,
}

/// µs per prompt token that the endpoint picker's request path (the proxy buffering the request body and
/// streaming it to the picker over ext-proc, the picker parsing the JSON and hashing the prompt for its
/// prefix index, the proxy sending the body on) adds before the model server sees a request. It grows
/// with the body, is paid once per request before its first token whatever the model server's prefix
/// cache holds, and is absent behind a plain Kubernetes Service (an L4 proxy that never reads the body).
/// Measured on the only data that separates it from prefill compute: the llm-d stages of llm-d's
/// optimized-baseline guide (`../shared/validation/cluster`, Qwen3-32B, 7,200-token prompts that nearly
/// all hit the prefix cache after the warm-up), least squares on the relative errors of the 16 ladder
/// stages' TTFT mean and p90 against the twin without it, refitted once the step model priced long prompts'
/// tokens on their own (`longPromptCompute`, which took over part of what this residual held): 25 ms
/// per request, 3.5 µs per prompt token (6.25 before).
pub const GATEWAY_US_PER_PROMPT_TOKEN: f64 = 3.5;

impl EppConfig {
    /// µs the gateway path spends on a request of `prompt_tokens` before a model server receives it.
    pub fn gateway_us(&self, prompt_tokens: u32) -> i64 {
        let us = self.gateway_us_per_prompt_token * f64::from(prompt_tokens);
        if us.is_finite() {
            us.round().max(0.0) as i64
        } else {
            0
        }
    }
}

impl Scorer {
    /// The llm-d plugin this scorer simulates, for reports.
    pub fn label(&self) -> String {
        match self {
            Scorer::Queue => "queue-scorer".into(),
            Scorer::KvUtilization => "kv-cache-utilization-scorer".into(),
            Scorer::ApproxPrefix => "prefix-cache-scorer (approximate index)".into(),
            Scorer::PrecisePrefix => "prefix-cache-scorer (precise, KV events)".into(),
            Scorer::LoadAware { threshold } => format!("load-aware-scorer (threshold {threshold})"),
            Scorer::ActiveRequest { max_busy_score } => {
                format!("active-request-scorer (maxBusyScore {max_busy_score})")
            }
            Scorer::SessionAffinity => "session-affinity-scorer".into(),
            Scorer::NoHitLru { precise: false } => "no-hit-lru-scorer".into(),
            Scorer::NoHitLru { precise: true } => "no-hit-lru-scorer (precise hits)".into(),
            Scorer::RunningRequests => "running-requests-size-scorer".into(),
            Scorer::TokenLoad { threshold } => {
                format!("token-load-scorer (queueThresholdTokens {threshold})")
            }
            Scorer::Neutral => "neutral (not modelled)".into(),
        }
    }
}

impl Filter {
    /// The llm-d plugin this filter simulates, for reports.
    pub fn label(&self) -> String {
        match self {
            Filter::Decode => "decode-filter".into(),
            Filter::Prefill => "prefill-filter".into(),
            Filter::Label { label, values, allows_no_label } => {
                format!("label-selector-filter ({label} in {values:?}, allowsNoLabel {allows_no_label})")
            }
            Filter::Selector(m) => format!("label-selector-filter ({m:?})"),
            Filter::PrefixAffinity { threshold, max_ttft_penalty_ms, peak_prefill_tps, .. } => format!(
                "prefix-cache-affinity-filter (affinityThreshold {threshold}, maxTTFTPenaltyMs {max_ttft_penalty_ms}, peakPrefillThroughput {peak_prefill_tps})"
            ),
            Filter::Neutral => "neutral (not modelled)".into(),
        }
    }
}

impl EppConfig {
    /// The built-in default (no file): queue 2, kv-cache-utilization 2, prefix-cache 3, max-score.
    pub fn well_lit_default() -> Self {
        EppConfig {
            profiles: vec![Profile {
                name: "default".into(),
                filters: vec![],
                scorers: vec![
                    (Scorer::Queue, 2.0),
                    (Scorer::KvUtilization, 2.0),
                    (Scorer::ApproxPrefix, 3.0),
                ],
                picker: Picker::MaxScore,
            }],
            handler: Handler::Single,
            prefix: PrefixIndexConfig::default(),
            detector: Detector::default(),
            flow: FlowControl::default(),
            precise_block_tokens: None,
            plugins: ["queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer"]
                .iter()
                .map(|t| PluginNote { name: t.to_string(), ty: t.to_string(), treatment: "modelled".into() })
                .collect(),
            gateway_us_per_prompt_token: GATEWAY_US_PER_PROMPT_TOKEN,
        }
    }

    /// Whether any profile uses the approximate prefix index (scorers or the affinity filter).
    pub fn uses_approx_index(&self) -> bool {
        self.profiles.iter().any(|p| {
            p.scorers
                .iter()
                .any(|(s, _)| matches!(s, Scorer::ApproxPrefix | Scorer::NoHitLru { precise: false }))
                || p.filters.iter().any(|f| matches!(f, Filter::PrefixAffinity { .. }))
        })
    }
}

#[cfg(test)]
mod gateway_cost_tests {
    use super::*;

    #[test]
    fn gateway_cost_grows_with_the_prompt_and_is_zero_without_one() {
        let e = EppConfig::well_lit_default();
        assert_eq!(e.gateway_us(0), 0);
        let mut last = 0;
        for tokens in [1, 100, 1_000, 7_200, 100_000] {
            let us = e.gateway_us(tokens);
            assert!(us > last, "{tokens} tokens: {us} µs after {last}");
            last = us;
        }
        let off = EppConfig { gateway_us_per_prompt_token: 0.0, ..EppConfig::well_lit_default() };
        assert_eq!(off.gateway_us(7_200), 0);
    }
}
