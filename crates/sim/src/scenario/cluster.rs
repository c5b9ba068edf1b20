//! Resolution of the cluster parts of a scenario: pools, endpoint picker, admission, flow control,
//! P/D transfers, autoscaling, prices.

use std::collections::BTreeMap;

use super::serving::{positive_int, resolve_serving, Serving};
use super::spec::{
    AdmissionCurve, AdmissionSignal, AutoscalingSpec, PoolRole, ProbabilisticSpec, RouterPolicyName,
    ScalePolicyName, ScenarioSpec, VllmSpec,
};
use crate::catalog::model::ModelArch;
use crate::error::InvalidInput;
use crate::latency::LatencyKind;
use crate::sim::gateway::{Curve, GatewayConfig, Probabilistic, Ramp, TokenBucket};
use crate::sim::router::{prefix::SLOTS, EppConfig, Handler, LoadSignal};
use crate::sim::{Autoscaling, PdConfig, PoolConfig, Role, RouterConfig, RouterPolicy, ScalePolicy};

/// The cluster parts of a resolved scenario.
pub struct ClusterParts {
    /// Pools.
    pub pools: Vec<PoolConfig>,
    /// Router.
    pub router: RouterConfig,
    /// Gateway (class priorities filled in later).
    pub gateway: GatewayConfig,
    /// P/D transfers.
    pub pd: PdConfig,
    /// How each pool is built (parallelism, GPU, where its knobs came from), for the inputs.
    pub shapes: Vec<PoolShape>,
}

/// The shape of one pool's engines, beside its [`PoolConfig`]: what the inputs report.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolShape {
    /// GPU profile name.
    pub gpu: String,
    /// GPUs per engine (tensor parallelism).
    pub tensor_parallelism: u32,
    /// Engines (data-parallel ranks) per replica.
    pub data_parallelism: u32,
    /// Whether the experts are sharded over the ranks (expert parallelism).
    pub expert_parallel: bool,
    /// Where each vLLM knob came from: `scenario` (set in the spec), `default` or `derived`.
    pub knobs: Vec<(&'static str, &'static str)>,
}

/// Where each vLLM knob of `v` came from (keys as the inputs name them).
fn knob_sources(v: &VllmSpec) -> Vec<(&'static str, &'static str)> {
    let s = |set: bool, otherwise: &'static str| if set { "scenario" } else { otherwise };
    vec![
        ("max_num_seqs", s(v.max_num_seqs.is_some(), "default")),
        ("max_num_batched_tokens", s(v.max_num_batched_tokens.is_some(), "default")),
        ("block_size", s(v.block_size.is_some(), "default")),
        ("gpu_memory_utilization", s(v.gpu_memory_utilization.is_some(), "default")),
        ("kv_blocks", s(v.kv_blocks.is_some(), "derived from GPU memory")),
        (
            "max_model_len",
            s(v.max_model_len.is_some(), "derived from the model's context and the KV capacity"),
        ),
        ("prefix_caching", s(v.enable_prefix_caching.is_some(), "default")),
        ("chunked_prefill", s(v.enable_chunked_prefill.is_some(), "default")),
        ("long_prefill_token_threshold", s(v.long_prefill_token_threshold.is_some(), "default")),
        ("async_scheduling", s(v.async_scheduling.is_some(), "default")),
        ("cpu_offload_gib", s(v.cpu_offload_gib.is_some(), "default")),
        ("kv_cache_dtype", s(v.kv_cache_dtype.is_some(), "default")),
        ("enforce_eager", s(v.enforce_eager.is_some(), "default")),
    ]
}

fn positive(v: Option<f64>, field: &str, default: f64, fix: &str) -> Result<f64, InvalidInput> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x > 0.0 => Ok(x),
        Some(x) => Err(InvalidInput::new(field, format!("must be a positive number (got {x})"), fix)),
    }
}

fn non_negative(v: Option<f64>, field: &str, default: f64, fix: &str) -> Result<f64, InvalidInput> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Some(x) => Err(InvalidInput::new(field, format!("must be >= 0 (got {x})"), fix)),
    }
}

fn autoscaling(
    a: &AutoscalingSpec,
    at: &str,
    model: &ModelArch,
    tp: u32,
    initial: u32,
) -> Result<Autoscaling, InvalidInput> {
    let f = |x: &str| format!("{at}.{x}");
    let min = positive_int(a.min_replicas, &f("minReplicas"), 1, "set minReplicas to 1 or more")?;
    let max =
        positive_int(a.max_replicas, &f("maxReplicas"), 10.max(initial), "set maxReplicas to 1 or more")?;
    if min > max || initial < min || initial > max {
        return Err(InvalidInput::new(
            f("maxReplicas"),
            format!("replicas must satisfy minReplicas <= replicas <= maxReplicas (got {min} <= {initial} <= {max})"),
            "raise maxReplicas or lower minReplicas / the starting replicas",
        ));
    }
    let policy = match a.policy.unwrap_or(ScalePolicyName::Saturation) {
        ScalePolicyName::Saturation => ScalePolicy::Saturation {
            kv_threshold: positive(
                a.kv_cache_threshold,
                &f("kvCacheThreshold"),
                0.8,
                "use a fraction such as 0.8",
            )?,
            queue_threshold: positive(
                a.queue_length_threshold,
                &f("queueLengthThreshold"),
                5.0,
                "use e.g. 5",
            )?,
            kv_spare: non_negative(a.kv_spare_trigger, &f("kvSpareTrigger"), 0.1, "use e.g. 0.1")?,
            queue_spare: non_negative(a.queue_spare_trigger, &f("queueSpareTrigger"), 3.0, "use e.g. 3")?,
        },
        ScalePolicyName::Hpa => ScalePolicy::Hpa {
            target_in_flight: positive(
                a.target_in_flight_per_replica,
                &f("targetInFlightPerReplica"),
                32.0,
                "use a positive number of requests per replica",
            )?,
        },
    };
    let interval = positive(a.interval_seconds, &f("intervalSeconds"), 15.0, "use e.g. 15")?;
    let prov = non_negative(a.provisioning_seconds, &f("provisioningSeconds"), 60.0, "use e.g. 60")?;
    let load_gbps = positive(a.model_load_gbps, &f("modelLoadGBps"), 2.0, "use e.g. 2")?;
    let cooldown =
        non_negative(a.scale_down_cooldown_seconds, &f("scaleDownCooldownSeconds"), 300.0, "use e.g. 300")?;
    // Every GPU of the replica loads its 1/TP shard of the weights in parallel.
    let load_s = model.weight_bytes() / f64::from(tp) / (load_gbps * 1e9);
    Ok(Autoscaling {
        min_replicas: min,
        max_replicas: max,
        policy,
        interval_us: (interval * 1e6) as i64,
        startup_us: ((prov + load_s) * 1e6) as i64,
        cooldown_us: (cooldown * 1e6) as i64,
    })
}

#[allow(clippy::too_many_arguments)]
fn pool_config(
    name: String,
    role: Role,
    labels: BTreeMap<String, String>,
    replicas: u32,
    s: Serving,
    price: Option<f64>,
    autoscaling: Option<Autoscaling>,
) -> PoolConfig {
    let mut labels = labels;
    labels.insert("llm-d.ai/role".into(), role.label().into());
    PoolConfig {
        name,
        role,
        labels,
        replicas,
        kv_bytes_per_token: s.kv_bytes_per_token,
        gpus_per_replica: s.tp,
        dollars_per_gpu_hour: price.unwrap_or(s.gpu.dollars_per_gpu_hour),
        instance: s.instance,
        latency: s.latency,
        autoscaling,
    }
}

/// Resolves pools, router, admission and P/D settings.
pub(super) fn resolve_cluster(
    spec: &ScenarioSpec,
    model: &ModelArch,
    top: &Serving,
    replicas: u32,
    latency_model: Option<LatencyKind>,
    read_epp: super::EppReader,
    warnings: &mut Vec<String>,
) -> Result<ClusterParts, InvalidInput> {
    let price = match spec.cost.as_ref().and_then(|c| c.dollars_per_gpu_hour) {
        None => None,
        Some(x) if x.is_finite() && x >= 0.0 => Some(x),
        Some(x) => {
            return Err(InvalidInput::new(
                "spec.cost.dollarsPerGpuHour",
                format!("must be >= 0 (got {x})"),
                "give a price in dollars per GPU-hour",
            ))
        }
    };
    let mut pools = Vec::new();
    let mut shapes = Vec::new();
    match &spec.pools {
        None => {
            shapes.push(PoolShape {
                gpu: top.gpu.name.clone(),
                tensor_parallelism: top.tp,
                data_parallelism: 1,
                expert_parallel: false,
                knobs: knob_sources(&spec.vllm),
            });
            let a = spec
                .autoscaling
                .as_ref()
                .map(|a| autoscaling(a, "spec.autoscaling", model, top.tp, replicas))
                .transpose()?;
            let s = top.clone();
            pools.push(pool_config("default".into(), Role::Both, BTreeMap::new(), replicas, s, price, a));
        }
        Some(list) => {
            if list.is_empty() {
                return Err(InvalidInput::new(
                    "spec.pools",
                    "is empty",
                    "list at least one pool or leave pools out",
                ));
            }
            if spec.replicas.is_some() || spec.autoscaling.is_some() {
                return Err(InvalidInput::new(
                    "spec.replicas",
                    "top-level replicas/autoscaling cannot be combined with spec.pools",
                    "give replicas and autoscaling per pool under spec.pools",
                ));
            }
            for (i, p) in list.iter().enumerate() {
                let at = format!("spec.pools[{i}]");
                if list[..i].iter().any(|q| q.name == p.name) {
                    return Err(InvalidInput::new(
                        format!("{at}.name"),
                        format!("pool name {:?} is used twice", p.name),
                        "give each pool a unique name",
                    ));
                }
                let hw = p.hardware.as_ref().unwrap_or(&spec.hardware);
                let v = p.vllm.as_ref().unwrap_or(&spec.vllm);
                let n = positive_int(p.replicas, &format!("{at}.replicas"), 1, "set replicas to 1 or more")?;
                let dp =
                    positive_int(p.data_parallelism, &format!("{at}.dataParallelism"), 1, "use 1 or more")?;
                // Expert parallelism shards the routed experts over the DP ranks of a replica.
                let ep = p.expert_parallel.unwrap_or(false);
                let pool_model = match (ep, model.is_moe()) {
                    (true, true) => model.with_expert_shards(dp),
                    (true, false) => {
                        warnings.push(format!(
                            "{at}: expertParallel on {}, which has no experts; it has no effect",
                            model.name
                        ));
                        model.clone()
                    }
                    _ => model.clone(),
                };
                let s = resolve_serving(&pool_model, hw, v, &at, latency_model, warnings)?;
                let a = p
                    .autoscaling
                    .as_ref()
                    .map(|a| autoscaling(a, &format!("{at}.autoscaling"), &pool_model, s.tp, n))
                    .transpose()?
                    .map(|mut a| {
                        // The simulator scales engines; a replica is `dp` of them.
                        a.min_replicas *= dp;
                        a.max_replicas *= dp;
                        a
                    });
                if dp > 1 {
                    warnings.push(format!(
                        "{at}: {n} replica(s) x DP {dp} = {} engines of TP {} GPUs, each an endpoint of its own; their MoE steps are not synchronised across ranks{}",
                        n * dp,
                        s.tp,
                        if a.is_some() { "; autoscaling adds and removes single engines, not groups of DP ranks" } else { "" }
                    ));
                }
                shapes.push(PoolShape {
                    gpu: s.gpu.name.clone(),
                    tensor_parallelism: s.tp,
                    data_parallelism: dp,
                    expert_parallel: ep && model.is_moe(),
                    knobs: knob_sources(v),
                });
                let role = match p.role.unwrap_or(PoolRole::Both) {
                    PoolRole::Both => Role::Both,
                    PoolRole::Prefill => Role::Prefill,
                    PoolRole::Decode => Role::Decode,
                };
                pools.push(pool_config(
                    p.name.clone(),
                    role,
                    p.labels.clone().unwrap_or_default(),
                    n * dp,
                    s,
                    price,
                    a,
                ));
            }
            if pools.iter().all(|p| p.role == Role::Prefill) {
                return Err(InvalidInput::new(
                    "spec.pools",
                    "every pool has role prefill, so nothing can decode",
                    "add a pool with role decode or both",
                ));
            }
        }
    }

    // Router.
    let r = &spec.router;
    let refresh = non_negative(
        r.refresh_interval_ms,
        "spec.router.refreshIntervalMs",
        50.0,
        "use e.g. 50, or 0 for live metrics",
    )?;
    let policy = match (r.policy, &r.endpoint_picker_config) {
        (Some(RouterPolicyName::RoundRobin), None) => RouterPolicy::RoundRobin,
        (Some(RouterPolicyName::LeastRequests), None) => RouterPolicy::LeastRequests,
        (Some(RouterPolicyName::Random), None) => RouterPolicy::Random,
        (None, None) => RouterPolicy::LeastRequests,
        (Some(RouterPolicyName::EndpointPicker), None) => {
            RouterPolicy::EndpointPicker(Box::new(EppConfig::well_lit_default()))
        }
        (
            Some(RouterPolicyName::RoundRobin | RouterPolicyName::LeastRequests | RouterPolicyName::Random),
            Some(_),
        ) => {
            return Err(InvalidInput::new(
                "spec.router.policy",
                "a plain policy cannot be combined with endpointPickerConfig",
                "leave policy out (or set endpointPicker) to use the config, or drop the config",
            ))
        }
        (_, Some(v)) => {
            let opts = super::EppReadOptions {
                allow_unregistered_plugins: r.allow_unregistered_plugins.unwrap_or(false),
            };
            let e = read_epp(v, &opts, warnings).map_err(|e| e.under("spec.router.endpointPickerConfig"))?;
            RouterPolicy::EndpointPicker(Box::new(e))
        }
    };
    let mut policy = policy;
    if let RouterPolicy::EndpointPicker(e) = &mut policy {
        // autoTune: the index follows the servers' KV cache (block size and block count).
        if e.prefix.auto_tune {
            if let Some(p) = pools.iter().find(|p| p.role != Role::Prefill).or(pools.first()) {
                let tokens = u64::from(p.instance.total_blocks) * u64::from(p.instance.block_size);
                let max_tokens = u64::from(e.prefix.max_blocks) * u64::from(e.prefix.block_size_tokens);
                e.prefix.block_size_tokens = p.instance.block_size;
                e.prefix.lru_capacity_per_server =
                    u32::try_from(tokens / u64::from(p.instance.block_size)).unwrap_or(u32::MAX).max(1);
                e.prefix.max_blocks =
                    u32::try_from(max_tokens / u64::from(p.instance.block_size)).unwrap_or(u32::MAX).max(1);
            }
        }
    }
    if let RouterPolicy::EndpointPicker(e) = &policy {
        let has_prefill = pools.iter().any(|p| p.role == Role::Prefill);
        match e.handler {
            Handler::Single if has_prefill => warnings.push(
                "a prefill pool exists but the endpoint picker config has no P/D profile handler (pd-profile-handler or disagg-profile-handler); requests are not disaggregated".into(),
            ),
            Handler::Disagg { .. } if !has_prefill => warnings.push(
                "the endpoint picker config disaggregates but no pool has role prefill; decode replicas serve whole requests".into(),
            ),
            _ => {}
        }
        if let Some(b) = e.precise_block_tokens {
            for p in pools.iter().filter(|p| p.instance.block_size != b) {
                warnings.push(format!(
                    "the precise prefix index hashes blocks of {b} tokens but pool {:?} runs --block-size {}; the real index would match nothing until they agree (the twin scores its real cache anyway)",
                    p.name, p.instance.block_size
                ));
            }
        }
        let most: u32 = pools.iter().map(|p| p.autoscaling.map_or(p.replicas, |a| a.max_replicas)).sum();
        if e.uses_approx_index() && most as usize > SLOTS {
            warnings.push(format!(
                "the approximate prefix index tracks at most {SLOTS} replicas; replicas beyond that get no prefix score"
            ));
        }
    } else if pools.iter().any(|p| p.role == Role::Prefill) {
        warnings.push(
            "prefill pools need an endpoint picker config with a P/D profile handler; they get no traffic"
                .into(),
        );
    }

    // Admission.
    let mut gateway = GatewayConfig { dispatch_interval_us: 1000, ..GatewayConfig::default() };
    if let Some(ms) = r.dispatch_interval_ms {
        gateway.dispatch_interval_us =
            (positive(Some(ms), "spec.router.dispatchIntervalMs", 1.0, "use e.g. 1")? * 1000.0).max(1.0)
                as i64;
    }
    if let Some(a) = &r.admission {
        if let Some(tb) = &a.token_bucket {
            gateway.token_bucket = Some(TokenBucket {
                capacity: positive(
                    Some(tb.capacity),
                    "spec.router.admission.tokenBucket.capacity",
                    1.0,
                    "use e.g. 10000",
                )?,
                refill_per_s: positive(
                    Some(tb.refill_per_second),
                    "spec.router.admission.tokenBucket.refillPerSecond",
                    1.0,
                    "use e.g. 1000",
                )?,
            });
        }
        if let Some(p) = &a.probabilistic {
            gateway.probabilistic = Some(probabilistic(p)?);
        }
    }

    // P/D transfers.
    let pd = match &spec.pd {
        None => PdConfig::default(),
        Some(p) => PdConfig {
            bytes_per_us: positive(
                p.transfer_bandwidth_gbps,
                "spec.pd.transferBandwidthGBps",
                25.0,
                "use e.g. 25",
            )? * 1e3,
            latency_us: (non_negative(
                p.transfer_latency_ms,
                "spec.pd.transferLatencyMs",
                0.05,
                "use e.g. 0.05",
            )? * 1e3) as i64,
            contention: p.contention.unwrap_or(true),
        },
    };

    Ok(ClusterParts {
        pools,
        router: RouterConfig { policy, refresh_interval_us: (refresh * 1000.0) as i64 },
        gateway,
        pd,
        shapes,
    })
}

/// Priority of each class: its `priority`, overridden by `spec.router.objectives` (criticality
/// Critical → 10, Standard → 0, Sheddable → -10).
pub fn class_priorities(spec: &ScenarioSpec) -> Result<Vec<i32>, InvalidInput> {
    let classes = &spec.workload.classes;
    let mut out: Vec<i32> = classes.iter().map(|c| c.priority).collect();
    for (i, o) in spec.router.objectives.iter().flatten().enumerate() {
        let at = format!("spec.router.objectives[{i}]");
        let Some(k) = classes.iter().position(|c| c.name == o.class) else {
            return Err(InvalidInput::new(
                format!("{at}.class"),
                format!("no workload class is named {:?}", o.class),
                format!(
                    "use one of: {}",
                    classes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        out[k] = match (o.priority, o.criticality.as_deref()) {
            (Some(p), None) => p.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            (None, Some(c)) => match c.to_ascii_lowercase().as_str() {
                "critical" => 10,
                "standard" => 0,
                "sheddable" => -10,
                _ => {
                    return Err(InvalidInput::new(
                        format!("{at}.criticality"),
                        format!("unknown criticality {c:?}"),
                        "use Critical, Standard or Sheddable, or give an integer priority",
                    ))
                }
            },
            _ => {
                return Err(InvalidInput::new(
                    at.clone(),
                    "needs exactly one of priority and criticality",
                    "give an integer priority (e.g. 10, 0, -10) or a criticality",
                ))
            }
        };
    }
    Ok(out)
}

/// Validates probabilistic admission; every field error names its path and a fix.
fn probabilistic(p: &ProbabilisticSpec) -> Result<Probabilistic, InvalidInput> {
    const AT: &str = "spec.router.admission.probabilistic";
    let ramp = |start: Option<f64>, full: Option<f64>, dflt: Ramp, at: &str| -> Result<Ramp, InvalidInput> {
        let start = non_negative(start, &format!("{at}.startSaturation"), dflt.start, "use e.g. 0.8")?;
        let full = positive(full, &format!("{at}.fullSaturation"), dflt.full, "use e.g. 1.2")?;
        if full <= start {
            return Err(InvalidInput::new(
                format!("{at}.fullSaturation"),
                format!("must exceed startSaturation ({full} <= {start})"),
                "use e.g. startSaturation 0.8 and fullSaturation 1.2",
            ));
        }
        Ok(Ramp { start, full })
    };
    let top = ramp(p.start_saturation, p.full_saturation, Ramp { start: 0.8, full: 1.2 }, AT)?;
    let curve = match p.curve.unwrap_or(AdmissionCurve::Linear) {
        AdmissionCurve::Linear => Curve::Linear,
        AdmissionCurve::Power => Curve::Power {
            exponent: positive(p.exponent, &format!("{AT}.exponent"), 2.0, "use e.g. 2 (or 0.5)")?,
        },
        AdmissionCurve::Logistic => Curve::Logistic {
            steepness: positive(p.steepness, &format!("{AT}.steepness"), 8.0, "use e.g. 8")?,
        },
    };
    for (field, v, needs) in [
        ("exponent", p.exponent, AdmissionCurve::Power),
        ("steepness", p.steepness, AdmissionCurve::Logistic),
    ] {
        if v.is_some() && p.curve != Some(needs) {
            return Err(InvalidInput::new(
                format!("{AT}.{field}"),
                format!(
                    "applies only to curve {needs:?} (curve is {:?})",
                    p.curve.unwrap_or(AdmissionCurve::Linear)
                ),
                format!(
                    "set curve to {} or remove {field}",
                    if needs == AdmissionCurve::Power { "power" } else { "logistic" }
                ),
            ));
        }
    }
    let prio = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    let mut bands: Vec<(i32, Ramp)> = Vec::new();
    for (i, b) in p.bands.iter().flatten().enumerate() {
        let at = format!("{AT}.bands[{i}]");
        let r = ramp(b.start_saturation, b.full_saturation, top, &at)?;
        if bands.iter().any(|(q, _)| *q == prio(b.priority)) {
            return Err(InvalidInput::new(
                format!("{at}.priority"),
                format!("priority {} has a ramp already", b.priority),
                "give each priority at most one band",
            ));
        }
        bands.push((prio(b.priority), r));
    }
    Ok(Probabilistic {
        signal: match p.signal.unwrap_or(AdmissionSignal::Saturation) {
            AdmissionSignal::Saturation => LoadSignal::Saturation,
            AdmissionSignal::QueueDepth => LoadSignal::QueueDepth,
            AdmissionSignal::KvUtilization => LoadSignal::KvUtilization,
            AdmissionSignal::InFlightTokens => LoadSignal::InFlightTokens,
        },
        curve,
        ramp: top,
        bands,
        exempt_priority: prio(p.exempt_priority.unwrap_or(0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> ProbabilisticSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn probabilistic_defaults_are_the_linear_saturation_ramp() {
        let p = probabilistic(&spec(serde_json::json!({}))).unwrap();
        assert_eq!(p.signal, LoadSignal::Saturation);
        assert_eq!(p.curve, Curve::Linear);
        assert_eq!(p.ramp, Ramp { start: 0.8, full: 1.2 });
        assert_eq!(p.exempt_priority, 0);
        let p = probabilistic(&spec(serde_json::json!({
            "signal": "queueDepth", "curve": "power", "exponent": 3, "startSaturation": 1,
            "fullSaturation": 4, "bands": [{"priority": -10, "fullSaturation": 2}]
        })))
        .unwrap();
        assert_eq!(p.curve, Curve::Power { exponent: 3.0 });
        assert_eq!(p.bands, vec![(-10, Ramp { start: 1.0, full: 2.0 })]);
    }

    #[test]
    fn probabilistic_errors_name_the_field() {
        for (v, field) in [
            (serde_json::json!({"startSaturation": 2, "fullSaturation": 1}), "probabilistic.fullSaturation"),
            (serde_json::json!({"curve": "power", "exponent": -1}), "probabilistic.exponent"),
            (serde_json::json!({"steepness": 3}), "probabilistic.steepness"),
            (serde_json::json!({"curve": "logistic", "steepness": 0}), "probabilistic.steepness"),
            (
                serde_json::json!({"bands": [{"priority": -1, "startSaturation": -1}]}),
                "bands[0].startSaturation",
            ),
            (serde_json::json!({"bands": [{"priority": -1}, {"priority": -1}]}), "bands[1].priority"),
        ] {
            let e = probabilistic(&spec(v.clone())).unwrap_err();
            assert!(e.field.ends_with(field), "{v}: {e}");
            assert!(!e.fix.is_empty());
        }
    }
}
