//! The saturation detector and flow control (the `flowControl` feature gate and section): priority
//! bands with request caps and the queue-wait TTL.

use serde_json::{Map, Value};

use super::catalogue::Role;
use super::params::{duration_us, num, quantity};
use super::Plugins;
use blis_sim::error::InvalidInput;
use blis_sim::sim::router::{Detector, FlowControl};

/// The saturation detector: `flowControl.saturationDetector`, the deprecated top-level
/// `saturationDetector`, or any detector plugin; default `utilization-detector`.
pub(super) fn detector(obj: &Map<String, Value>, plugins: &Plugins) -> Result<Detector, InvalidInput> {
    let dref = obj
        .get("flowControl")
        .and_then(|f| f.get("saturationDetector"))
        .or_else(|| obj.get("saturationDetector"))
        .and_then(|d| d.get("pluginRef"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            plugins
                .order
                .iter()
                .find(|n| plugins.by_name[*n].entry.is_some_and(|e| e.role == Role::Detector))
                .cloned()
        });
    let Some(d) = dref else { return Ok(Detector::default()) };
    let Some(p) = plugins.by_name.get(&d) else {
        return Err(InvalidInput::new(
            "flowControl.saturationDetector.pluginRef",
            format!("saturation detector {d:?} is not defined under plugins"),
            "define it under plugins (e.g. type utilization-detector) or leave the reference out",
        ));
    };
    let q = &p.params;
    Ok(match p.ty.as_str() {
        "concurrency-detector" => Detector::Concurrency {
            max_concurrency: num(q, "maxConcurrency").unwrap_or(100.0).max(1.0),
            headroom: num(q, "headroom").unwrap_or(0.0).max(0.0),
        },
        _ => Detector::Utilization {
            queue_depth: num(q, "queueDepthThreshold").unwrap_or(5.0).max(1e-9),
            kv_util: num(q, "kvCacheUtilThreshold").unwrap_or(0.8).max(1e-9),
            headroom: num(q, "headroom").unwrap_or(0.0).max(0.0),
        },
    })
}

/// Flow control: on with the `flowControl` gate; TTL, global cap and per-band caps from the section.
pub(super) fn flow_control(
    obj: &Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<FlowControl, InvalidInput> {
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
    for g in gates.iter().filter(|g| !g.starts_with("flowControl") && !g.starts_with("prepareDataPlugins")) {
        warnings.push(format!("EPP feature gate {g:?} is not modelled"));
    }
    let mut flow = FlowControl { enabled: gate_on("flowControl"), ..FlowControl::default() };
    let Some(f) = obj.get("flowControl") else { return Ok(flow) };
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
    for k in ["maxBytes", "noEndpointRequestTTL", "enableEviction", "usageLimitPolicyPluginRef"] {
        if f.get(k).is_some() {
            warnings.push(format!("flowControl.{k} is not modelled"));
        }
    }
    Ok(flow)
}
