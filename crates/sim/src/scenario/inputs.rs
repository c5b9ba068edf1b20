//! What a prediction was made for, read back from a resolved scenario: shown in `blis run`'s JSON and
//! in the controller's `normalizedInputs`, so a result can be read on its own. Beside the first
//! pool's figures (the original flat fields) it lists every pool with its parallelism, GPU, vLLM
//! knobs and autoscaling, the router's plugins, profiles, weights, handler and flow control, the
//! class priorities, and where each input came from.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Resolved;
use crate::sim::router::{Decider, Detector, EppConfig, Handler, Picker, RouterPolicy};
use crate::sim::ScalePolicy;

/// The resolved inputs a prediction was made for, so a result can be read on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inputs {
    /// Model name.
    pub model: String,
    /// GPU profile.
    pub gpu: String,
    /// GPUs per replica.
    pub tensor_parallelism: u32,
    /// Replicas.
    pub replicas: u32,
    /// Step-time model.
    pub latency_model: String,
    /// The vLLM release whose defaults filled the knobs left out.
    pub vllm_version: String,
    /// `--max-num-seqs`.
    pub max_num_seqs: u32,
    /// `--max-num-batched-tokens`.
    pub max_num_batched_tokens: u32,
    /// `--block-size`.
    pub block_size: u32,
    /// KV blocks per replica.
    pub kv_blocks: u32,
    /// `--max-model-len`.
    pub max_model_len: u32,
    /// Prefix caching on.
    pub prefix_caching: bool,
    /// Chunked prefill on.
    pub chunked_prefill: bool,
    /// `--long-prefill-token-threshold`.
    pub long_prefill_token_threshold: u32,
    /// `--async-scheduling`.
    pub async_scheduling: bool,
    /// Every pool as simulated.
    pub pools: Vec<PoolInputs>,
    /// The router (endpoint picker) as simulated.
    pub router: RouterInputs,
    /// Priority of each workload class (from its `priority` or the objectives).
    pub objectives: Vec<ObjectiveInputs>,
    /// Where each input came from, by path (`pools[0].vllm.max_num_seqs`): `scenario`, `default`,
    /// `derived ...`, or the manifest an importer read it from.
    pub sources: BTreeMap<String, String>,
}

/// One pool of engines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolInputs {
    /// Pool name.
    pub name: String,
    /// `both`, `prefill` or `decode`.
    pub role: String,
    /// Replicas at start (groups of `data_parallelism` engines).
    pub replicas: u32,
    /// Engines at start (each an endpoint of the router).
    pub engines: u32,
    /// GPU profile.
    pub gpu: String,
    /// GPUs per engine.
    pub tensor_parallelism: u32,
    /// Engines (data-parallel ranks) per replica.
    pub data_parallelism: u32,
    /// GPUs the routed experts are sharded over (TP x DP), 0 without expert parallelism.
    pub expert_parallelism: u32,
    /// vLLM knobs of each engine.
    pub vllm: VllmInputs,
    /// Autoscaling of the pool.
    pub autoscaling: Option<AutoscalingInputs>,
    /// Pod labels (what label filters match).
    pub labels: BTreeMap<String, String>,
}

/// The engine knobs of a pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VllmInputs {
    /// `--max-num-seqs`.
    pub max_num_seqs: u32,
    /// `--max-num-batched-tokens`.
    pub max_num_batched_tokens: u32,
    /// `--block-size`.
    pub block_size: u32,
    /// KV blocks per engine.
    pub kv_blocks: u32,
    /// `--max-model-len`.
    pub max_model_len: u32,
    /// Prefix caching on.
    pub prefix_caching: bool,
    /// Chunked prefill on.
    pub chunked_prefill: bool,
    /// `--long-prefill-token-threshold`.
    pub long_prefill_token_threshold: u32,
    /// Async scheduling on.
    pub async_scheduling: bool,
    /// CPU offload tier, in KV blocks.
    pub cpu_offload_blocks: u32,
}

/// A pool's autoscaler.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoscalingInputs {
    /// Fewest engines.
    pub min_engines: u32,
    /// Most engines.
    pub max_engines: u32,
    /// `saturation (kv x, queue y, spare kv z, spare queue w)` or `hpa (in-flight n per engine)`.
    pub policy: String,
    /// Seconds between evaluations.
    pub interval_s: f64,
    /// Seconds from a decision to a serving engine.
    pub startup_s: f64,
    /// Scale-down cooldown in seconds.
    pub cooldown_s: f64,
}

/// The router.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterInputs {
    /// `endpointPicker`, `leastRequests` or `roundRobin`.
    pub policy: String,
    /// Metric refresh interval, ms.
    pub refresh_interval_ms: f64,
    /// Every plugin of the endpoint-picker config with what the twin does with it.
    pub plugins: Vec<PluginInputs>,
    /// Scheduling profiles.
    pub profiles: Vec<ProfileInputs>,
    /// `single` or `disagg (decode profile, prefill profile)`.
    pub handler: String,
    /// When a request is disaggregated (P/D handler only).
    pub decider: Option<String>,
    /// The approximate prefix index, when a plugin uses it.
    pub prefix_index: Option<String>,
    /// The saturation detector.
    pub saturation_detector: String,
    /// Flow control.
    pub flow_control: String,
    /// µs per prompt token the endpoint picker's request path adds before a model server sees the
    /// request (absent for a plain Service, which never reads the body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_us_per_prompt_token: Option<f64>,
}

/// One plugin as written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginInputs {
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: String,
    /// `modelled`, `inert` or `not modelled`.
    pub treatment: String,
}

/// One scheduling profile as simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileInputs {
    /// Name.
    pub name: String,
    /// Filters in order.
    pub filters: Vec<String>,
    /// Scorers with their weights.
    pub scorers: Vec<ScorerInputs>,
    /// The picker.
    pub picker: String,
}

/// A weighted scorer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScorerInputs {
    /// What it scores.
    pub scorer: String,
    /// Its weight.
    pub weight: f64,
}

/// The priority of one workload class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectiveInputs {
    /// Class name.
    pub class: String,
    /// Priority (higher first; negative is sheddable).
    pub priority: i32,
}

fn router_inputs(r: &Resolved) -> RouterInputs {
    let refresh = r.router.refresh_interval_us as f64 / 1000.0;
    let plain = |policy: &str| RouterInputs {
        policy: policy.into(),
        refresh_interval_ms: refresh,
        plugins: vec![],
        profiles: vec![],
        handler: "single".into(),
        decider: None,
        prefix_index: None,
        saturation_detector: detector(&Detector::default()),
        flow_control: "off".into(),
        gateway_us_per_prompt_token: None,
    };
    let e: &EppConfig = match &r.router.policy {
        RouterPolicy::RoundRobin => return plain("roundRobin"),
        RouterPolicy::LeastRequests => return plain("leastRequests"),
        RouterPolicy::Random => return plain("random"),
        RouterPolicy::EndpointPicker(e) => e,
    };
    let name = |i: usize| e.profiles.get(i).map(|p| p.name.clone()).unwrap_or_default();
    let (handler, decider) = match &e.handler {
        Handler::Single => ("single".to_string(), None),
        Handler::Disagg { decode, prefill, decider } => (
            format!("disagg (decode {:?}, prefill {:?})", name(*decode), name(*prefill)),
            Some(match decider {
                Decider::Always => "always".to_string(),
                Decider::Never => "never".to_string(),
                Decider::PrefixBased { non_cached_tokens, prompt_tokens } => format!(
                    "prefix-based (at least {non_cached_tokens} non-cached tokens{})",
                    if *prompt_tokens > 0 {
                        format!(", prompts of {prompt_tokens}+ tokens")
                    } else {
                        String::new()
                    }
                ),
            }),
        ),
    };
    let p = &e.prefix;
    let f = &e.flow;
    RouterInputs {
        policy: "endpointPicker".into(),
        refresh_interval_ms: refresh,
        plugins: e
            .plugins
            .iter()
            .map(|n| PluginInputs { name: n.name.clone(), ty: n.ty.clone(), treatment: n.treatment.clone() })
            .collect(),
        profiles: e
            .profiles
            .iter()
            .map(|pr| ProfileInputs {
                name: pr.name.clone(),
                filters: pr.filters.iter().map(|x| x.label()).collect(),
                scorers: pr
                    .scorers
                    .iter()
                    .map(|(s, w)| ScorerInputs { scorer: s.label(), weight: *w })
                    .collect(),
                picker: match pr.picker {
                    Picker::MaxScore => "max-score-picker",
                    Picker::Random => "random-picker",
                    Picker::WeightedRandom => "weighted-random-picker",
                }
                .into(),
            })
            .collect(),
        handler,
        decider,
        prefix_index: e.uses_approx_index().then(|| {
            format!(
                "{} tokens per block, {} blocks per server (LRU), {} blocks matched at most{}",
                p.block_size_tokens,
                p.lru_capacity_per_server,
                p.max_blocks,
                if p.auto_tune { ", auto-tuned from the servers' KV cache" } else { "" }
            )
        }),
        saturation_detector: detector(&e.detector),
        flow_control: if f.enabled {
            format!(
                "on: queue TTL {}, max {} requests queued, bands {:?} (priority, max requests), others {}",
                f.ttl_us.map_or("none".to_string(), |t| format!("{} ms", t / 1000)),
                if f.max_requests == 0 { "any".to_string() } else { f.max_requests.to_string() },
                f.bands,
                f.default_band_max
            )
        } else {
            "off".into()
        },
        gateway_us_per_prompt_token: Some(e.gateway_us_per_prompt_token),
    }
}

fn detector(d: &Detector) -> String {
    match d {
        Detector::Utilization { queue_depth, kv_util, headroom } => format!(
            "utilization-detector (queueDepthThreshold {queue_depth}, kvCacheUtilThreshold {kv_util}, headroom {headroom})"
        ),
        Detector::Concurrency { max_concurrency, headroom } => {
            format!("concurrency-detector (maxConcurrency {max_concurrency}, headroom {headroom})")
        }
    }
}

impl Inputs {
    /// The inputs of a resolved scenario.
    pub fn of(r: &Resolved) -> Self {
        let i = &r.instance;
        let pools = r
            .pools
            .iter()
            .zip(&r.shapes)
            .map(|(p, s)| {
                let c = &p.instance;
                PoolInputs {
                    name: p.name.clone(),
                    role: p.role.label().to_string(),
                    replicas: p.replicas / s.data_parallelism.max(1),
                    engines: p.replicas,
                    gpu: s.gpu.clone(),
                    tensor_parallelism: s.tensor_parallelism,
                    data_parallelism: s.data_parallelism,
                    expert_parallelism: if s.expert_parallel { s.tensor_parallelism * s.data_parallelism } else { 0 },
                    vllm: VllmInputs {
                        max_num_seqs: c.max_num_seqs,
                        max_num_batched_tokens: c.max_num_batched_tokens,
                        block_size: c.block_size,
                        kv_blocks: c.total_blocks,
                        max_model_len: c.max_model_len,
                        prefix_caching: c.prefix_caching,
                        chunked_prefill: c.chunked_prefill,
                        long_prefill_token_threshold: c.long_prefill_token_threshold,
                        async_scheduling: c.async_scheduling,
                        cpu_offload_blocks: c.cpu_offload_blocks,
                    },
                    autoscaling: p.autoscaling.map(|a| AutoscalingInputs {
                        min_engines: a.min_replicas,
                        max_engines: a.max_replicas,
                        policy: match a.policy {
                            ScalePolicy::Saturation { kv_threshold, queue_threshold, kv_spare, queue_spare } => format!(
                                "saturation (kvCacheThreshold {kv_threshold}, queueLengthThreshold {queue_threshold}, kvSpareTrigger {kv_spare}, queueSpareTrigger {queue_spare})"
                            ),
                            ScalePolicy::Hpa { target_in_flight } => {
                                format!("hpa ({target_in_flight} in-flight requests per engine)")
                            }
                        },
                        interval_s: a.interval_us as f64 / 1e6,
                        startup_s: a.startup_us as f64 / 1e6,
                        cooldown_s: a.cooldown_us as f64 / 1e6,
                    }),
                    labels: p.labels.clone(),
                }
            })
            .collect();
        Self {
            model: r.model.name.clone(),
            gpu: r.gpu.name.clone(),
            tensor_parallelism: r.tensor_parallelism,
            replicas: r.replicas,
            latency_model: r.latency.name().to_string(),
            vllm_version: r.vllm_version.to_string(),
            max_num_seqs: i.max_num_seqs,
            max_num_batched_tokens: i.max_num_batched_tokens,
            block_size: i.block_size,
            kv_blocks: i.total_blocks,
            max_model_len: i.max_model_len,
            prefix_caching: i.prefix_caching,
            chunked_prefill: i.chunked_prefill,
            long_prefill_token_threshold: i.long_prefill_token_threshold,
            async_scheduling: i.async_scheduling,
            pools,
            router: router_inputs(r),
            objectives: r
                .class_names
                .iter()
                .zip(&r.gateway.class_priority)
                .map(|(c, p)| ObjectiveInputs { class: c.clone(), priority: *p })
                .collect(),
            sources: r.sources.clone(),
        }
    }
}
