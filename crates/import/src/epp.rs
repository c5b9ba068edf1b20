//! Reading an `EndpointPickerConfig` document exactly as operators write it (all three apiVersions,
//! old plugin names through an alias table) into the plugin pipeline the simulator runs
//! ([`blis_sim::sim::router::EppConfig`]).
//!
//! What is modelled: the scorers, filters, pickers and profile handlers listed in [`canonical`];
//! the approximate prefix index's parameters; the saturation detector; the `flowControl` section
//! (priority bands with request caps, request TTL) behind the `flowControl` feature gate. Plugins the
//! simulator does not model (parsers, data sources, latency predictors...) are accepted, act as
//! neutral (a filter that keeps everyone, a scorer that scores everyone 1.0) and produce a warning.

use std::collections::BTreeMap;

use serde_json::Value;

use blis_sim::error::InvalidInput;
use blis_sim::sim::router::{
    Decider, Detector, EppConfig, Filter, FlowControl, Handler, Picker, PrefixIndexConfig, Profile, Scorer,
};

/// The apiVersions an `EndpointPickerConfig` may carry.
pub const API_VERSIONS: [&str; 3] =
    ["inference.networking.x-k8s.io/v1alpha1", "llm-d.ai/v1alpha1", "llm-d.ai/v1"];

/// What a plugin type is, after aliasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scorer,
    Filter,
    Picker,
    Handler,
    Decider,
    Detector,
    /// Accepted and irrelevant to the simulation (no warning): producers, parsers, policies, sources.
    Inert,
    /// Not modelled: neutral, with a warning.
    Unknown,
}

/// Old and alternative plugin names → current name.
pub fn canonical(t: &str) -> &str {
    match t {
        "kv-cache-scorer" | "kvcache-utilization-scorer" | "kv-cache-utilization" => {
            "kv-cache-utilization-scorer"
        }
        "queue" | "queue-depth-scorer" => "queue-scorer",
        "prefix-cache" | "prefix-aware-scorer" => "prefix-cache-scorer",
        "precise-prefix-cache-aware-scorer" => "precise-prefix-cache-scorer",
        "load-aware" => "load-aware-scorer",
        "active-request" => "active-request-scorer",
        "session-affinity" => "session-affinity-scorer",
        "no-hit-lru" => "no-hit-lru-scorer",
        "running-requests-scorer" => "running-requests-size-scorer",
        "by-label" | "by-label-selector" | "label-selector" => "label-selector-filter",
        "max-score" => "max-score-picker",
        "random" => "random-picker",
        "weighted-random" => "weighted-random-picker",
        "single-profile" => "single-profile-handler",
        "tokenizer" => "token-producer",
        other => other,
    }
}

fn kind_of(t: &str) -> Kind {
    match t {
        "queue-scorer"
        | "kv-cache-utilization-scorer"
        | "prefix-cache-scorer"
        | "precise-prefix-cache-scorer"
        | "load-aware-scorer"
        | "active-request-scorer"
        | "session-affinity-scorer"
        | "no-hit-lru-scorer"
        | "running-requests-size-scorer"
        | "token-load-scorer"
        | "lora-affinity-scorer" => Kind::Scorer,
        "decode-filter" | "prefill-filter" | "label-selector-filter" => Kind::Filter,
        "max-score-picker" | "random-picker" | "weighted-random-picker" => Kind::Picker,
        "single-profile-handler" | "pd-profile-handler" | "disagg-profile-handler" => Kind::Handler,
        "always-disagg-pd-decider" | "prefix-based-pd-decider" => Kind::Decider,
        "utilization-detector" | "concurrency-detector" => Kind::Detector,
        "approx-prefix-cache-producer"
        | "precise-prefix-cache-producer"
        | "inflight-load-producer"
        | "token-producer"
        | "session-id-producer"
        | "prefill-header-handler"
        | "disagg-headers-handler"
        | "openai-parser"
        | "passthrough-parser"
        | "vllmgrpc-parser"
        | "metrics-data-source"
        | "core-metrics-extractor"
        | "endpoint-notification-source"
        | "models-data-source"
        | "fcfs-ordering-policy"
        | "global-strict-fairness-policy"
        | "round-robin-fairness-policy"
        | "static-usage-limit-policy" => Kind::Inert,
        _ => Kind::Unknown,
    }
}

struct Plugin {
    ty: String,
    params: Value,
}

fn num(p: &Value, key: &str) -> Option<f64> {
    match p.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a Kubernetes duration (`60s`, `200ms`, `2m`, `1h`, `0s`) as microseconds.
pub fn duration_us(v: &Value) -> Option<i64> {
    let s = match v {
        Value::Number(n) => return n.as_f64().map(|x| (x * 1e6) as i64),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let (num, mult) = if let Some(x) = s.strip_suffix("ms") {
        (x, 1e3)
    } else if let Some(x) = s.strip_suffix("us").or_else(|| s.strip_suffix("µs")) {
        (x, 1.0)
    } else if let Some(x) = s.strip_suffix('s') {
        (x, 1e6)
    } else if let Some(x) = s.strip_suffix('m') {
        (x, 6e7)
    } else if let Some(x) = s.strip_suffix('h') {
        (x, 3.6e9)
    } else {
        (s, 1e6)
    };
    let x: f64 = num.trim().parse().ok()?;
    (x.is_finite() && x >= 0.0).then_some((x * mult) as i64)
}

/// Reads a Kubernetes quantity (`500`, `1k`, `10Gi`) as a number.
pub fn quantity(v: &Value) -> Option<u64> {
    let s = match v {
        Value::Number(n) => return n.as_f64().filter(|x| *x >= 0.0).map(|x| x as u64),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let suffixes: [(&str, f64); 10] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("m", 1e-3),
    ];
    for (suf, mult) in suffixes {
        if let Some(x) = s.strip_suffix(suf) {
            let x: f64 = x.trim().parse().ok()?;
            return (x >= 0.0).then_some((x * mult) as u64);
        }
    }
    let x: f64 = s.parse().ok()?;
    (x >= 0.0).then_some(x as u64)
}

/// Takes the document out of its wrappers: a YAML string, or Helm values holding
/// `pluginsCustomConfig[pluginsConfigFile]` (under `router.epp`, `inferenceExtension` or at the top).
fn unwrap_document(v: &Value) -> Result<Value, InvalidInput> {
    let doc = match v {
        Value::String(s) => serde_yaml::from_str::<Value>(s).map_err(|e| {
            InvalidInput::new(
                "",
                format!("is not valid YAML: {e}"),
                "paste the EndpointPickerConfig file as YAML",
            )
        })?,
        other => other.clone(),
    };
    for path in [&["router", "epp"][..], &["inferenceExtension"][..], &[][..]] {
        let mut at = &doc;
        for k in path {
            match at.get(*k) {
                Some(x) => at = x,
                None => break,
            }
        }
        if let Some(custom) = at.get("pluginsCustomConfig").and_then(Value::as_object) {
            let file = at.get("pluginsConfigFile").and_then(Value::as_str);
            let inner = file.and_then(|f| custom.get(f)).or_else(|| custom.values().next());
            if let Some(inner) = inner {
                return unwrap_document(inner);
            }
        }
    }
    Ok(doc)
}

/// Parses an `EndpointPickerConfig` (a YAML string or an object). Field paths in errors are relative
/// to the config (callers prefix them). Warnings name every plugin the simulator does not model.
pub fn parse(v: &Value, warnings: &mut Vec<String>) -> Result<EppConfig, InvalidInput> {
    let doc = unwrap_document(v)?;
    let Some(obj) = doc.as_object() else {
        return Err(InvalidInput::new(
            "",
            "must be an EndpointPickerConfig mapping",
            "give plugins and schedulingProfiles",
        ));
    };
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str) {
        if !API_VERSIONS.contains(&av) {
            return Err(InvalidInput::new(
                "apiVersion",
                format!("unknown EndpointPickerConfig apiVersion {av:?}"),
                format!("use one of {}", API_VERSIONS.join(", ")),
            ));
        }
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str) {
        if k != "EndpointPickerConfig" {
            return Err(InvalidInput::new("kind", format!("is {k:?}"), "use kind: EndpointPickerConfig"));
        }
    }
    let gates: Vec<String> = obj
        .get("featureGates")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let gate_on = |name: &str| {
        gates
            .iter()
            .any(|g| g == name || g.strip_prefix(name).is_some_and(|r| r.eq_ignore_ascii_case("=true")))
    };

    // Plugins by name.
    let mut plugins: BTreeMap<String, Plugin> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let list = obj.get("plugins").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, p) in list.iter().enumerate() {
        let Some(ty) = p.get("type").and_then(Value::as_str) else {
            return Err(InvalidInput::new(
                format!("plugins[{i}].type"),
                "is missing",
                "give every plugin a type",
            ));
        };
        let name = p.get("name").and_then(Value::as_str).unwrap_or(ty).to_string();
        let new = canonical(ty);
        if new != ty {
            warnings.push(format!(
                "endpoint picker plugin type {ty:?} is the old name of {new:?}; read as {new:?}"
            ));
        }
        let ty = new.to_string();
        if kind_of(&ty) == Kind::Unknown {
            warnings.push(format!(
                "endpoint picker plugin {name:?} of type {ty:?} is not modelled by the simulator; it is treated as neutral"
            ));
        }
        if plugins.contains_key(&name) {
            return Err(InvalidInput::new(
                format!("plugins[{i}].name"),
                format!("plugin name {name:?} is defined twice"),
                "give each plugin a unique name",
            ));
        }
        order.push(name.clone());
        plugins.insert(name, Plugin { ty, params: p.get("parameters").cloned().unwrap_or(Value::Null) });
    }

    // Approximate prefix index parameters: producer first, then the scorer's own (older) parameters.
    let mut prefix = PrefixIndexConfig::default();
    for name in &order {
        let p = &plugins[name];
        if p.ty == "approx-prefix-cache-producer" || p.ty == "prefix-cache-scorer" {
            let q = &p.params;
            if let Some(b) =
                num(q, "blockSizeTokens").or_else(|| num(q, "blockSize").map(|c| (c / 4.0).max(1.0)))
            {
                prefix.block_size_tokens = (b as u32).max(1);
            }
            if let Some(c) = num(q, "lruCapacityPerServer") {
                prefix.lru_capacity_per_server = (c as u32).max(1);
            }
            if let Some(m) = num(q, "maxPrefixTokensToMatch") {
                prefix.max_blocks = ((m as u32) / prefix.block_size_tokens).max(1);
            } else if let Some(m) = num(q, "maxPrefixBlocksToMatch") {
                prefix.max_blocks = (m as u32).max(1);
            }
        }
    }

    let build_scorer = |p: &Plugin| -> Scorer {
        let q = &p.params;
        match p.ty.as_str() {
            "queue-scorer" => Scorer::Queue,
            "kv-cache-utilization-scorer" => Scorer::KvUtilization,
            "prefix-cache-scorer" => {
                let producer = q.get("prefixMatchInfoProducerName").and_then(Value::as_str).unwrap_or("");
                let precise = plugins.get(producer).is_some_and(|x| x.ty == "precise-prefix-cache-producer");
                if precise {
                    Scorer::PrecisePrefix
                } else {
                    Scorer::ApproxPrefix
                }
            }
            "precise-prefix-cache-scorer" => Scorer::PrecisePrefix,
            "load-aware-scorer" => {
                Scorer::LoadAware { threshold: num(q, "threshold").unwrap_or(128.0).max(1.0) }
            }
            "active-request-scorer" => Scorer::ActiveRequest {
                max_busy_score: num(q, "maxBusyScore").unwrap_or(1.0).clamp(0.0, 1.0),
            },
            "session-affinity-scorer" => Scorer::SessionAffinity,
            "no-hit-lru-scorer" => Scorer::NoHitLru,
            "running-requests-size-scorer" => Scorer::RunningRequests,
            "token-load-scorer" => Scorer::TokenLoad {
                threshold: num(q, "queueThresholdTokens").unwrap_or(4_194_304.0).max(1.0),
            },
            _ => Scorer::Neutral,
        }
    };
    let build_filter = |p: &Plugin| -> Filter {
        let q = &p.params;
        match p.ty.as_str() {
            "decode-filter" => Filter::Decode,
            "prefill-filter" => Filter::Prefill,
            "label-selector-filter" => {
                if let Some(m) = q.get("matchLabels").and_then(Value::as_object) {
                    Filter::Selector(
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect(),
                    )
                } else if let Some(label) = q.get("label").and_then(Value::as_str) {
                    Filter::Label {
                        label: label.to_string(),
                        values: q
                            .get("validValues")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                            .unwrap_or_default(),
                        allows_no_label: q.get("allowsNoLabel").and_then(Value::as_bool).unwrap_or(false),
                    }
                } else {
                    Filter::Neutral
                }
            }
            _ => Filter::Neutral,
        }
    };

    // Scheduling profiles.
    let mut profiles = Vec::new();
    let plist = obj.get("schedulingProfiles").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, prof) in plist.iter().enumerate() {
        let pname = prof.get("name").and_then(Value::as_str).unwrap_or("default").to_string();
        let mut profile =
            Profile { name: pname.clone(), filters: vec![], scorers: vec![], picker: Picker::MaxScore };
        let refs = prof.get("plugins").and_then(Value::as_array).cloned().unwrap_or_default();
        for (j, r) in refs.iter().enumerate() {
            let field = format!("schedulingProfiles[{i}].plugins[{j}]");
            let Some(pref) = r.get("pluginRef").and_then(Value::as_str) else {
                return Err(InvalidInput::new(
                    format!("{field}.pluginRef"),
                    "is missing",
                    "name a plugin defined under plugins",
                ));
            };
            let Some(p) = plugins.get(pref) else {
                return Err(InvalidInput::new(
                    format!("{field}.pluginRef"),
                    format!("scheduling profile {pname:?} references plugin {pref:?}, which is not defined under plugins"),
                    format!("define a plugin named {pref:?} under plugins, or reference one of: {}", order.join(", ")),
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
            match kind_of(&p.ty) {
                Kind::Scorer => profile.scorers.push((build_scorer(p), weight)),
                Kind::Filter => profile.filters.push(build_filter(p)),
                Kind::Picker => {
                    profile.picker = match p.ty.as_str() {
                        "random-picker" => Picker::Random,
                        "weighted-random-picker" => Picker::WeightedRandom,
                        _ => Picker::MaxScore,
                    }
                }
                Kind::Unknown => profile.scorers.push((Scorer::Neutral, weight)),
                _ => {}
            }
        }
        profiles.push(profile);
    }
    if profiles.is_empty() {
        // No profiles: one "default" profile with every filter, scorer and picker.
        let mut profile =
            Profile { name: "default".into(), filters: vec![], scorers: vec![], picker: Picker::MaxScore };
        for name in &order {
            let p = &plugins[name];
            match kind_of(&p.ty) {
                Kind::Scorer => profile.scorers.push((build_scorer(p), 1.0)),
                Kind::Filter => profile.filters.push(build_filter(p)),
                Kind::Picker => {
                    profile.picker = match p.ty.as_str() {
                        "random-picker" => Picker::Random,
                        "weighted-random-picker" => Picker::WeightedRandom,
                        _ => Picker::MaxScore,
                    }
                }
                _ => {}
            }
        }
        if plugins.is_empty() {
            return Ok(EppConfig::well_lit_default());
        }
        profiles.push(profile);
    }

    // Profile handler and decider.
    let find_profile = |name: &str| profiles.iter().position(|p| p.name == name);
    let mut handler = Handler::Single;
    for name in &order {
        let p = &plugins[name];
        let q = &p.params;
        let disagg =
            |decode_name: &str, prefill_name: &str, decider: Decider| -> Result<Handler, InvalidInput> {
                let decode = find_profile(decode_name).ok_or_else(|| {
                    InvalidInput::new(
                        format!("plugins[{}].parameters", order.iter().position(|n| n == name).unwrap_or(0)),
                        format!("profile handler {name:?} needs a scheduling profile named {decode_name:?}"),
                        "add decode and prefill scheduling profiles or name them in the handler's parameters",
                    )
                })?;
                let prefill = find_profile(prefill_name).ok_or_else(|| {
                    InvalidInput::new(
                        format!("plugins[{}].parameters", order.iter().position(|n| n == name).unwrap_or(0)),
                        format!("profile handler {name:?} needs a scheduling profile named {prefill_name:?}"),
                        "add decode and prefill scheduling profiles or name them in the handler's parameters",
                    )
                })?;
                Ok(Handler::Disagg { decode, prefill, decider })
            };
        let decider_named = |dname: Option<&str>| -> Decider {
            match dname.and_then(|d| plugins.get(d)) {
                Some(d) if d.ty == "prefix-based-pd-decider" => Decider::PrefixBased {
                    non_cached_tokens: num(&d.params, "nonCachedTokens").unwrap_or(16.0).max(0.0) as u32,
                },
                Some(_) => Decider::Always,
                None => Decider::Always,
            }
        };
        match p.ty.as_str() {
            "pd-profile-handler" => {
                // `threshold` (prompt length not cached on the decode endpoint) is read as tokens.
                let t = num(q, "threshold").unwrap_or(0.0).max(0.0) as u32;
                let decider = match q.get("deciderPluginName").and_then(Value::as_str) {
                    Some(d) => decider_named(Some(d)),
                    None if t == 0 => Decider::Always,
                    None => Decider::PrefixBased { non_cached_tokens: t },
                };
                handler = disagg(
                    q.get("decodeProfile").and_then(Value::as_str).unwrap_or("decode"),
                    q.get("prefillProfile").and_then(Value::as_str).unwrap_or("prefill"),
                    decider,
                )?;
            }
            "disagg-profile-handler" => {
                let profs = q.get("profiles");
                let dname = q
                    .get("deciders")
                    .and_then(|d| d.get("prefill"))
                    .and_then(Value::as_str)
                    .or_else(|| q.get("deciderPluginName").and_then(Value::as_str));
                if let Some(d) = dname {
                    if !plugins.contains_key(d) {
                        return Err(InvalidInput::new(
                            format!("plugins[{}].parameters.deciders.prefill", order.iter().position(|n| n == name).unwrap_or(0)),
                            format!("profile handler {name:?} references decider {d:?}, which is not defined under plugins"),
                            format!("define a plugin named {d:?} (e.g. type prefix-based-pd-decider)"),
                        ));
                    }
                }
                handler = disagg(
                    profs.and_then(|x| x.get("decode")).and_then(Value::as_str).unwrap_or("decode"),
                    profs.and_then(|x| x.get("prefill")).and_then(Value::as_str).unwrap_or("prefill"),
                    decider_named(dname),
                )?;
            }
            _ => {}
        }
    }
    if handler == Handler::Single && profiles.len() > 1 {
        warnings.push(format!(
            "endpoint picker config has {} scheduling profiles but no P/D profile handler; only {:?} is used",
            profiles.len(),
            profiles[0].name
        ));
    }

    // Saturation detector: flowControl.saturationDetector, deprecated top-level saturationDetector, or
    // any detector plugin; default utilization-detector.
    let fc = obj.get("flowControl");
    let dref = fc
        .and_then(|f| f.get("saturationDetector"))
        .or_else(|| obj.get("saturationDetector"))
        .and_then(|d| d.get("pluginRef"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| order.iter().find(|n| kind_of(&plugins[*n].ty) == Kind::Detector).cloned());
    let mut detector = Detector::default();
    if let Some(d) = dref {
        let Some(p) = plugins.get(&d) else {
            return Err(InvalidInput::new(
                "flowControl.saturationDetector.pluginRef",
                format!("saturation detector {d:?} is not defined under plugins"),
                "define it under plugins (e.g. type utilization-detector) or leave the reference out",
            ));
        };
        let q = &p.params;
        detector = match p.ty.as_str() {
            "concurrency-detector" => Detector::Concurrency {
                max_concurrency: num(q, "maxConcurrency").unwrap_or(100.0).max(1.0),
                headroom: num(q, "headroom").unwrap_or(0.0).max(0.0),
            },
            _ => Detector::Utilization {
                queue_depth: num(q, "queueDepthThreshold").unwrap_or(5.0).max(1e-9),
                kv_util: num(q, "kvCacheUtilThreshold").unwrap_or(0.8).max(1e-9),
                headroom: num(q, "headroom").unwrap_or(0.0).max(0.0),
            },
        };
    }

    let mut flow = FlowControl { enabled: gate_on("flowControl"), ..FlowControl::default() };
    if let Some(f) = fc {
        if let Some(ttl) = f.get("defaultRequestTTL") {
            let us = duration_us(ttl).ok_or_else(|| {
                InvalidInput::new(
                    "flowControl.defaultRequestTTL",
                    format!("is not a duration ({ttl})"),
                    "use e.g. 60s or 500ms",
                )
            })?;
            flow.ttl_us = (us > 0).then_some(us);
        }
        if let Some(m) = f.get("maxRequests") {
            flow.max_requests = quantity(m).ok_or_else(|| {
                InvalidInput::new(
                    "flowControl.maxRequests",
                    format!("is not a quantity ({m})"),
                    "use e.g. 1k or 500",
                )
            })?;
        }
        if let Some(m) = f.get("defaultPriorityBand").and_then(|b| b.get("maxRequests")).and_then(quantity) {
            flow.default_band_max = m;
        }
        for (i, b) in
            f.get("priorityBands").and_then(Value::as_array).cloned().unwrap_or_default().iter().enumerate()
        {
            let Some(pr) = num(b, "priority") else {
                return Err(InvalidInput::new(
                    format!("flowControl.priorityBands[{i}].priority"),
                    "is missing",
                    "give each band an integer priority",
                ));
            };
            let cap = b.get("maxRequests").and_then(quantity).unwrap_or(5000);
            flow.bands.push((pr as i32, cap));
        }
    }

    Ok(EppConfig { profiles, handler, prefix, detector, flow })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> (Result<EppConfig, InvalidInput>, Vec<String>) {
        let mut w = Vec::new();
        (parse(&Value::String(s.to_string()), &mut w), w)
    }

    #[test]
    fn well_lit_inference_scheduling_parses_with_weights() {
        let (c, w) = parse_str(
            "apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-scorer
- type: prefix-cache-scorer
  parameters: {hashBlockSize: 64, lruCapacityPerServer: 1000}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3.0}
",
        );
        let c = c.unwrap();
        // The 2025 name `kv-cache-scorer` is read as the current one, with a warning naming both.
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("\"kv-cache-scorer\"") && w[0].contains("\"kv-cache-utilization-scorer\""));
        assert_eq!(
            c.profiles[0].scorers,
            vec![(Scorer::Queue, 2.0), (Scorer::KvUtilization, 2.0), (Scorer::ApproxPrefix, 3.0)]
        );
        assert_eq!(c.prefix.lru_capacity_per_server, 1000);
        assert_eq!(c.handler, Handler::Single);
    }

    #[test]
    fn unknown_plugin_warns_and_undefined_ref_errors_naming_both() {
        let (c, w) = parse_str(
            "apiVersion: llm-d.ai/v1
kind: EndpointPickerConfig
plugins:
- type: latency-scorer
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins: [{pluginRef: latency-scorer}, {pluginRef: queue-scorer}]
",
        );
        assert!(c.is_ok());
        assert!(w.iter().any(|x| x.contains("latency-scorer")));
        let (c, _) = parse_str(
            "plugins: [{type: queue-scorer}]
schedulingProfiles:
- name: fast
  plugins: [{pluginRef: nope}]
",
        );
        let e = c.unwrap_err();
        assert!(e.problem.contains("\"fast\"") && e.problem.contains("\"nope\""), "{e:?}");
    }

    #[test]
    fn helm_values_and_flow_control_are_read() {
        let (c, _) = parse_str(
            "router:
  epp:
    pluginsConfigFile: c.yaml
    pluginsCustomConfig:
      c.yaml: |
        apiVersion: llm-d.ai/v1alpha1
        kind: EndpointPickerConfig
        featureGates: [flowControl]
        plugins:
        - type: queue-scorer
        - type: concurrency-detector
          parameters: {maxConcurrency: 132}
        schedulingProfiles:
        - name: default
          plugins: [{pluginRef: queue-scorer, weight: 2}]
        flowControl:
          maxRequests: 1k
          defaultRequestTTL: 30s
          saturationDetector: {pluginRef: concurrency-detector}
          priorityBands:
          - {priority: 100, maxRequests: '500'}
          - {priority: -10, maxRequests: '50'}
",
        );
        let c = c.unwrap();
        assert!(c.flow.enabled);
        assert_eq!(c.flow.max_requests, 1000);
        assert_eq!(c.flow.ttl_us, Some(30_000_000));
        assert_eq!(c.flow.bands, vec![(100, 500), (-10, 50)]);
        assert_eq!(c.detector, Detector::Concurrency { max_concurrency: 132.0, headroom: 0.0 });
    }

    #[test]
    fn disagg_handler_with_prefix_decider() {
        let (c, _) = parse_str(
            "apiVersion: llm-d.ai/v1
kind: EndpointPickerConfig
plugins:
- type: prefix-based-pd-decider
  parameters: {nonCachedTokens: 256}
- type: disagg-profile-handler
  parameters: {deciders: {prefill: prefix-based-pd-decider}}
- type: prefill-filter
- type: decode-filter
- type: prefix-cache-scorer
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: prefix-cache-scorer}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: prefix-cache-scorer}]
",
        );
        let c = c.unwrap();
        assert_eq!(
            c.handler,
            Handler::Disagg {
                decode: 1,
                prefill: 0,
                decider: Decider::PrefixBased { non_cached_tokens: 256 }
            }
        );
    }

    #[test]
    fn durations_and_quantities() {
        assert_eq!(duration_us(&Value::String("200ms".into())), Some(200_000));
        assert_eq!(duration_us(&Value::String("2m".into())), Some(120_000_000));
        assert_eq!(quantity(&Value::String("10Gi".into())), Some(10 * 1024 * 1024 * 1024));
        assert_eq!(quantity(&Value::String("1k".into())), Some(1000));
    }
}
