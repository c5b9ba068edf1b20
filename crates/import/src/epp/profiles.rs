//! Scheduling profiles: each plugin reference becomes a filter, a weighted scorer or the picker, with
//! the plugin's parameters read as its factory reads them; and the approximate prefix index the
//! prefix plugins share.

use serde_json::{Map, Value};

use super::catalogue::{Role, Treatment};
use super::params::{num, text};
use super::{Plugin, Plugins};
use blis_sim::error::InvalidInput;
use blis_sim::sim::router::{Filter, Picker, PrefixIndexConfig, Profile, Scorer};

/// Characters per token the older (character-based) block sizes are converted with.
const CHARS_PER_TOKEN: f64 = 4.0;

/// Whether a `prefix-cache-scorer` reads the precise (KV-event) index: its producer is the precise
/// one, or (scheduler v0.2) its `mode` is `cache_tracking`.
fn precise(p: &Plugin, plugins: &Plugins) -> Result<bool, InvalidInput> {
    if p.ty == "precise-prefix-cache-scorer" {
        return Ok(true);
    }
    if let Some(mode) = text(&p.params, "mode") {
        return match mode {
            "cache_tracking" => Ok(true),
            "estimate" => Ok(false),
            other => Err(InvalidInput::new(
                format!("plugins[{}].parameters.mode", p.index),
                format!("unknown mode for prefix-cache-scorer plugin: {other}"),
                "use mode estimate (approximate index) or cache_tracking (KV events)",
            )),
        };
    }
    let producer = text(&p.params, "prefixMatchInfoProducerName").unwrap_or("");
    Ok(plugins.by_name.get(producer).is_some_and(|x| x.ty == "precise-prefix-cache-producer"))
}

/// The approximate prefix index. Its owners are the `approx-prefix-cache-producer`s when the config
/// has any (scorers then read them), else each approximate `prefix-cache-scorer` (GAIE v1.4 and
/// older kept the index in the scorer). Block sizes in characters (`hashBlockSize`, `blockSize`) are
/// read at four characters a token. With `autoTune` (the producer's default, so every `llm-d.ai`
/// config's; `router_era`) the index follows the model servers' KV cache. Several owners (tiered GPU + CPU indexes) are one index here,
/// with a warning.
pub(super) fn prefix_index(
    plugins: &Plugins,
    router_era: bool,
    warnings: &mut Vec<String>,
) -> Result<PrefixIndexConfig, InvalidInput> {
    let producers = plugins.named("approx-prefix-cache-producer");
    let mut owners: Vec<&str> = producers.clone();
    if owners.is_empty() {
        for n in plugins.named("prefix-cache-scorer") {
            if !precise(&plugins.by_name[n], plugins)? {
                owners.push(n);
            }
        }
    }
    let mut prefix = PrefixIndexConfig::default();
    for (k, name) in owners.iter().enumerate() {
        let q = &plugins.by_name[*name].params;
        let mut own = PrefixIndexConfig::default();
        if let Some(b) = num(q, "blockSizeTokens") {
            own.block_size_tokens = (b as u32).max(1);
        } else if let Some(c) = num(q, "blockSize").or_else(|| num(q, "hashBlockSize")) {
            own.block_size_tokens = ((c / CHARS_PER_TOKEN).round() as u32).max(1);
        }
        if let Some(c) = num(q, "lruCapacityPerServer") {
            own.lru_capacity_per_server = (c as u32).max(1);
        }
        if let Some(m) = num(q, "maxPrefixTokensToMatch") {
            own.max_blocks = ((m as u32) / own.block_size_tokens).max(1);
        } else if let Some(m) = num(q, "maxPrefixBlocksToMatch") {
            own.max_blocks = (m as u32).max(1);
        }
        // autoTune defaults to true on the producer (llm-d-router) and is absent from older scorers.
        own.auto_tune =
            q.get("autoTune").and_then(Value::as_bool).unwrap_or(!producers.is_empty() || router_era);
        if k == 0 {
            prefix = own;
        }
    }
    if owners.len() > 1 {
        warnings.push(format!(
            "endpoint picker plugins {owners:?} keep {} approximate prefix indexes (e.g. GPU and CPU tiers); the twin keeps one, with {:?}'s parameters",
            owners.len(),
            owners[0]
        ));
    }
    Ok(prefix)
}

/// The precise index's block size (tokens), from `tokenProcessorConfig.blockSize`.
pub(super) fn precise_block(plugins: &Plugins) -> Option<u32> {
    plugins.order.iter().find_map(|n| {
        let p = &plugins.by_name[n];
        let q = &p.params;
        let cfg =
            q.get("tokenProcessorConfig").or_else(|| q.pointer("/indexerConfig/tokenProcessorConfig"))?;
        let tracking =
            matches!(p.ty.as_str(), "precise-prefix-cache-scorer" | "precise-prefix-cache-producer")
                || text(q, "mode") == Some("cache_tracking");
        tracking.then(|| num(cfg, "blockSize")).flatten().map(|b| (b as u32).max(1))
    })
}

fn scorer(p: &Plugin, plugins: &Plugins) -> Result<Scorer, InvalidInput> {
    let q = &p.params;
    Ok(match p.ty.as_str() {
        "queue-scorer" => Scorer::Queue,
        "kv-cache-utilization-scorer" => Scorer::KvUtilization,
        "prefix-cache-scorer" | "precise-prefix-cache-scorer" if precise(p, plugins)? => {
            Scorer::PrecisePrefix
        }
        "prefix-cache-scorer" => Scorer::ApproxPrefix,
        "load-aware-scorer" => Scorer::LoadAware { threshold: num(q, "threshold").unwrap_or(128.0).max(1.0) },
        "active-request-scorer" => {
            Scorer::ActiveRequest { max_busy_score: num(q, "maxBusyScore").unwrap_or(1.0).clamp(0.0, 1.0) }
        }
        "session-affinity-scorer" => Scorer::SessionAffinity,
        "no-hit-lru-scorer" => {
            let producer =
                text(q, "prefixMatchInfoProducerName").or_else(|| text(q, "prefixPluginName")).unwrap_or("");
            let precise = plugins.by_name.get(producer).is_some_and(|x| {
                x.ty == "precise-prefix-cache-producer"
                    || x.ty == "precise-prefix-cache-scorer"
                    || text(&x.params, "mode") == Some("cache_tracking")
            });
            Scorer::NoHitLru { precise }
        }
        "running-requests-size-scorer" => Scorer::RunningRequests,
        "token-load-scorer" => {
            Scorer::TokenLoad { threshold: num(q, "queueThresholdTokens").unwrap_or(4_194_304.0).max(1.0) }
        }
        _ => Scorer::Neutral,
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn filter(name: &str, p: &Plugin, warnings: &mut Vec<String>) -> Filter {
    let q = &p.params;
    match p.ty.as_str() {
        "decode-filter" => Filter::Decode,
        "prefill-filter" => Filter::Prefill,
        "label-selector-filter" => {
            if let Some(m) = q.get("matchLabels").and_then(Value::as_object) {
                if q.get("matchExpressions").is_some() {
                    warnings.push(format!(
                        "endpoint picker plugin {name:?}: matchExpressions are not modelled; only matchLabels filter"
                    ));
                }
                Filter::Selector(
                    m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect(),
                )
            } else if let Some(label) = text(q, "label") {
                Filter::Label {
                    label: label.to_string(),
                    values: strings(q.get("validValues")),
                    allows_no_label: q.get("allowsNoLabel").and_then(Value::as_bool).unwrap_or(false),
                }
            } else {
                warnings.push(format!(
                    "endpoint picker plugin {name:?} has no label selector; it keeps every endpoint"
                ));
                Filter::Neutral
            }
        }
        "prefix-cache-affinity-filter" => {
            if text(q, "ttftSource") == Some("latencyPredictor") {
                warnings.push(format!(
                    "endpoint picker plugin {name:?}: ttftSource latencyPredictor is not modelled; TTFT is estimated from in-flight tokens and peakPrefillThroughput"
                ));
            }
            Filter::PrefixAffinity {
                threshold: num(q, "affinityThreshold").unwrap_or(0.80),
                exploration: num(q, "explorationProbability").unwrap_or(0.0).clamp(0.0, 1.0),
                max_ttft_penalty_ms: num(q, "maxTTFTPenaltyMs").unwrap_or(18_000.0).max(0.0),
                peak_prefill_tps: num(q, "peakPrefillThroughput").unwrap_or(15_928.0).max(1e-9),
            }
        }
        _ => Filter::Neutral,
    }
}

fn picker(name: &str, p: &Plugin, warnings: &mut Vec<String>) -> Picker {
    if num(&p.params, "maxNumOfEndpoints").is_some_and(|n| n > 1.0) {
        warnings.push(format!(
            "endpoint picker plugin {name:?}: maxNumOfEndpoints above 1 (fallback endpoints) is not modelled; one endpoint is picked"
        ));
    }
    match p.ty.as_str() {
        "random-picker" => Picker::Random,
        "weighted-random-picker" => Picker::WeightedRandom,
        _ => Picker::MaxScore,
    }
}

/// Adds plugin `name` (referenced with `weight`) to `profile` by its role.
fn add(
    profile: &mut Profile,
    name: &str,
    p: &Plugin,
    weight: f64,
    plugins: &Plugins,
    warnings: &mut Vec<String>,
) -> Result<(), InvalidInput> {
    let role = p.entry.map(|e| e.role);
    let neutral = p.entry.is_none_or(|e| matches!(e.treatment, Treatment::Unmodelled(_)));
    match role {
        Some(Role::Scorer) => {
            profile.scorers.push((if neutral { Scorer::Neutral } else { scorer(p, plugins)? }, weight))
        }
        Some(Role::Filter) => {
            profile.filters.push(if neutral { Filter::Neutral } else { filter(name, p, warnings) })
        }
        Some(Role::Picker) => profile.picker = picker(name, p, warnings),
        // An allowed unregistered type: a neutral scorer.
        None => profile.scorers.push((Scorer::Neutral, weight)),
        _ => {}
    }
    Ok(())
}

/// The scheduling profiles; with none, one `default` profile of every filter, scorer and picker.
pub(super) fn profiles(
    obj: &Map<String, Value>,
    plugins: &Plugins,
    warnings: &mut Vec<String>,
) -> Result<Vec<Profile>, InvalidInput> {
    let new_profile = |name: &str| Profile {
        name: name.to_string(),
        filters: vec![],
        scorers: vec![],
        picker: Picker::MaxScore,
    };
    let mut out = Vec::new();
    let list = obj.get("schedulingProfiles").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, prof) in list.iter().enumerate() {
        let pname = prof.get("name").and_then(Value::as_str).unwrap_or("default").to_string();
        if out.iter().any(|p: &Profile| p.name == pname) {
            return Err(InvalidInput::new(
                format!("schedulingProfiles[{i}].name"),
                format!("duplicate profile name '{pname}'"),
                "give each scheduling profile a unique name",
            ));
        }
        let mut profile = new_profile(&pname);
        for (j, r) in prof.get("plugins").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let field = format!("schedulingProfiles[{i}].plugins[{j}]");
            let Some(pref) = r.get("pluginRef").and_then(Value::as_str) else {
                return Err(InvalidInput::new(
                    format!("{field}.pluginRef"),
                    "is missing",
                    "name a plugin defined under plugins",
                ));
            };
            let Some(p) = plugins.by_name.get(pref) else {
                return Err(InvalidInput::new(
                    format!("{field}.pluginRef"),
                    format!("scheduling profile {pname:?} references plugin {pref:?}, which is not defined under plugins"),
                    format!("define a plugin named {pref:?} under plugins, or reference one of: {}", plugins.order.join(", ")),
                ));
            };
            let weight = match r.get("weight") {
                None | Some(Value::Null) => 1.0,
                Some(w) => match num(r, "weight") {
                    Some(x) if x.is_finite() && x >= 0.0 => x,
                    _ => {
                        return Err(InvalidInput::new(
                            format!("{field}.weight"),
                            format!("must be a non-negative number (got {w})"),
                            "use a weight such as 1, 2 or 0.5",
                        ))
                    }
                },
            };
            add(&mut profile, pref, p, weight, plugins, warnings)?;
        }
        out.push(profile);
    }
    if out.is_empty() {
        let mut profile = new_profile("default");
        for name in &plugins.order {
            add(&mut profile, name, &plugins.by_name[name], 1.0, plugins, warnings)?;
        }
        out.push(profile);
    }
    Ok(out)
}
