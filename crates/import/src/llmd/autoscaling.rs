//! Autoscaling as llm-d deploys it: a HorizontalPodAutoscaler on the model-server Deployment /
//! LeaderWorkerSet, driven by the workload-variant-autoscaler's `wva_desired_replicas` metric (WVA's
//! saturation analysis, thresholds from its saturation ConfigMap) or by EPP metrics
//! (`epp_running_requests`), with the VariantAutoscaling naming the variant; and the WVA chart's
//! values that create all of these. Each becomes the `autoscaling` of the pool it scales.

use serde_json::{json, Value};

use super::charts::Release;
use super::modelservice::{parse_version, Rendered};
use super::workload::int_of;
use blis_sim::error::InvalidInput;

/// External metrics WVA publishes for the HPA (current and 2025 names).
const WVA_METRICS: [&str; 2] = ["wva_desired_replicas", "inferno_desired_replicas"];

/// The saturation thresholds of a WVA ConfigMap's `default` entry (a YAML document under the key).
fn saturation_thresholds(objects: &[&Value]) -> Option<(Value, String)> {
    let cm = objects.iter().find(|o| {
        o.get("kind").and_then(Value::as_str) == Some("ConfigMap")
            && o.pointer("/metadata/name").and_then(Value::as_str).is_some_and(|n| {
                n.contains("saturation-scaling-config") || n.contains("capacity-scaling-config")
            })
    })?;
    let text = cm.pointer("/data/default").and_then(Value::as_str)?;
    let v: Value = serde_yaml::from_str(text).ok()?;
    Some((v, cm.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string()))
}

/// The `autoscaling` spec for the model-server object `target` (kind, name), from the HPAs,
/// VariantAutoscalings and WVA ConfigMaps among `objects`; None when nothing scales it.
pub fn for_target(
    kind: &str,
    target: &str,
    objects: &[&Value],
    warnings: &mut Vec<String>,
) -> Result<Option<Value>, InvalidInput> {
    let targets = |o: &&&Value| {
        o.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str) == Some(target)
            && o.pointer("/spec/scaleTargetRef/kind").and_then(Value::as_str).is_none_or(|k| k == kind)
    };
    let of_kind =
        |k: &'static str| objects.iter().filter(move |o| o.get("kind").and_then(Value::as_str) == Some(k));
    let hpa = of_kind("HorizontalPodAutoscaler").find(targets);
    let va = of_kind("VariantAutoscaling").find(targets).or_else(|| {
        // 2025 VariantAutoscalings name their Deployment by their own name.
        of_kind("VariantAutoscaling")
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(target))
    });
    if of_kind("ScaledObject")
        .any(|o| o.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str) == Some(target))
    {
        warnings
            .push(format!("{kind} {target}: a KEDA ScaledObject scales it; KEDA triggers are not modelled"));
    }
    if let Some(va) = va {
        let name = va.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        if va.pointer("/spec/modelProfile").is_some() {
            warnings.push(format!(
                "VariantAutoscaling {name}: the model-based WVA (v0.1 to v0.3, alpha/beta/gamma/delta profiles and SLO classes) is not simulated; replicas stay fixed"
            ));
            return Ok(None);
        }
        if va.pointer("/spec/variantCost").is_some() {
            warnings.push(format!(
                "VariantAutoscaling {name}: variantCost chooses between variants of a model; with one variant simulated it has no effect"
            ));
        }
    }
    let Some(hpa) = hpa else {
        if let Some(va) = va {
            warnings.push(format!(
                "VariantAutoscaling {} has no HorizontalPodAutoscaler acting on its desired replicas; replicas stay fixed",
                va.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
            ));
        }
        return Ok(None);
    };
    let name = hpa.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let at = |f: &str| format!("HorizontalPodAutoscaler {name}: spec.{f}");
    let spec = hpa.get("spec").cloned().unwrap_or(Value::Null);
    let max = spec.get("maxReplicas").and_then(int_of).ok_or_else(|| {
        InvalidInput::new(at("maxReplicas"), "is missing or not an integer", "give the HPA's maxReplicas")
    })?;
    let mut out =
        json!({"minReplicas": spec.get("minReplicas").and_then(int_of).unwrap_or(1), "maxReplicas": max});
    let metrics = spec.get("metrics").and_then(Value::as_array).cloned().unwrap_or_default();
    let metric_name = |m: &Value| {
        m.pointer("/external/metric/name")
            .or_else(|| m.pointer("/pods/metric/name"))
            .or_else(|| m.pointer("/object/metric/name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let target_value = |m: &Value| {
        ["external", "pods", "object"].iter().find_map(|k| {
            let t = m.get(*k)?.get("target")?;
            t.get("averageValue")
                .or_else(|| t.get("value"))
                .and_then(|v| crate::epp::quantity(v).map(|q| q as f64).or_else(|| v.as_f64()))
        })
    };
    let mut policy = None;
    for (i, m) in metrics.iter().enumerate() {
        match metric_name(m).as_deref() {
            Some(n) if WVA_METRICS.contains(&n) => {
                policy = Some("saturation");
                if n == "inferno_desired_replicas" {
                    warnings.push(format!(
                        "{}: inferno_desired_replicas is the model-based WVA's metric; simulated with WVA's saturation analysis",
                        at(&format!("metrics[{i}]"))
                    ));
                }
            }
            Some("epp_running_requests") | Some("epp_queue_size") => {
                if policy.is_none() {
                    policy = Some("hpa");
                }
                let v = target_value(m);
                if metric_name(m).as_deref() == Some("epp_running_requests") {
                    if let Some(v) = v {
                        out["targetInFlightPerReplica"] = json!(v);
                    }
                } else {
                    warnings.push(format!(
                        "{}: the EPP queue-size target ({}) is not modelled; the HPA scales on in-flight requests per replica",
                        at(&format!("metrics[{i}]")),
                        v.map(|x| x.to_string()).unwrap_or_default()
                    ));
                }
            }
            other => warnings.push(format!(
                "{}: metric {} is not modelled{}",
                at(&format!("metrics[{i}]")),
                other.unwrap_or_else(|| m.pointer("/resource/name").and_then(Value::as_str).unwrap_or("?")),
                if policy.is_none() { "" } else { "; the other metrics drive scaling" }
            )),
        }
    }
    let Some(policy) = policy else {
        warnings.push(format!(
            "HorizontalPodAutoscaler {name} scales {kind} {target} on metrics the twin does not model; replicas stay fixed"
        ));
        return Ok(None);
    };
    out["policy"] = json!(policy);
    if policy == "saturation" {
        match saturation_thresholds(objects) {
            Some((t, cm)) => {
                for k in ["kvCacheThreshold", "queueLengthThreshold", "kvSpareTrigger", "queueSpareTrigger"] {
                    if let Some(x) = t.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))) {
                        out[k] = json!(x);
                    }
                }
                if t.get("enableLimiter").and_then(Value::as_bool) == Some(true) {
                    warnings.push(format!("ConfigMap {cm}: enableLimiter (GPU capacity limits) is not modelled"));
                }
            }
            None => warnings.push(format!(
                "HorizontalPodAutoscaler {name}: no WVA saturation ConfigMap found; WVA's default thresholds are simulated (kvCacheThreshold 0.8, queueLengthThreshold 5, kvSpareTrigger 0.1, queueSpareTrigger 3)"
            )),
        }
    }
    if let Some(w) = spec.pointer("/behavior/scaleDown/stabilizationWindowSeconds").and_then(Value::as_f64) {
        out["scaleDownCooldownSeconds"] = json!(w);
    }
    if spec.pointer("/behavior/scaleUp").is_some() || spec.pointer("/behavior/scaleDown/policies").is_some() {
        warnings.push(format!(
            "HorizontalPodAutoscaler {name}: scale-up behavior and rate policies are not modelled (the autoscaler acts every intervalSeconds)"
        ));
    }
    Ok(Some(out))
}

/// The objects the workload-variant-autoscaler chart renders from its values: the HPA on
/// `<llmd.modelName>-decode` reading `wva_desired_replicas`, the VariantAutoscaling and the
/// saturation ConfigMap (chart defaults 0.80 / 5 / 0.1 / 3). Chart versions below 0.5 ran the
/// model-based optimiser, which is not simulated.
pub fn wva_release(r: &Release) -> Result<Rendered, InvalidInput> {
    let v = &r.values;
    let mut out = Rendered::default();
    let model = v.pointer("/llmd/modelName").and_then(Value::as_str).ok_or_else(|| {
        InvalidInput::new(
            format!("release {}: llmd.modelName", r.name),
            "is not set",
            "name the modelservice release the WVA scales",
        )
    })?;
    let target = format!("{model}-decode");
    let old = r.version.as_deref().and_then(parse_version).is_some_and(|v| v < (0, 5, 0));
    if v.pointer("/va/enabled").and_then(Value::as_bool) != Some(false) {
        let mut spec = json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "modelID": v.pointer("/llmd/modelID").cloned().unwrap_or(Value::Null)});
        if old {
            spec["modelProfile"] = json!({"accelerators": []});
        }
        out.objects.push(json!({"apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
            "metadata": {"name": target, "labels": {super::gpu::WVA_ACCELERATOR_LABEL: v.pointer("/va/accelerator").cloned().unwrap_or(Value::Null)}}, "spec": spec}));
    }
    if v.pointer("/hpa/enabled").and_then(Value::as_bool) != Some(false) {
        let metric = if old { "inferno_desired_replicas" } else { "wva_desired_replicas" };
        out.objects.push(json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": format!("{}-hpa", r.name)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "minReplicas": v.pointer("/hpa/minReplicas").cloned().unwrap_or(json!(1)),
                "maxReplicas": v.pointer("/hpa/maxReplicas").cloned().unwrap_or(json!(10)),
                "metrics": [{"type": "External", "external": {"metric": {"name": metric},
                    "target": {"type": "AverageValue", "averageValue": v.pointer("/hpa/targetAverageValue").cloned().unwrap_or(json!("1"))}}}]}}));
    }
    if !old {
        out.objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{}-wva-saturation-scaling-config", r.name)},
            "data": {"default": "kvCacheThreshold: 0.80\nqueueLengthThreshold: 5\nkvSpareTrigger: 0.1\nqueueSpareTrigger: 3\nenableLimiter: false\n"}}));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(metrics: Value, extra: Value) -> Value {
        let mut h = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "minReplicas": 1, "maxReplicas": 4, "metrics": metrics}});
        merge(&mut h, extra);
        h
    }

    fn merge(a: &mut Value, b: Value) {
        blis_sim::scenario::patch::merge_patch(a, &b);
    }

    /// E.16: an HPA on WVA's metric with the saturation ConfigMap.
    #[test]
    fn hpa_on_wva_with_saturation_config() {
        let h = hpa(
            json!([{"type": "External", "external": {"metric": {"name": "wva_desired_replicas", "selector": {"matchLabels": {"variant_name": "d"}}}, "target": {"type": "AverageValue", "averageValue": "1"}}}]),
            json!({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}}}}),
        );
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "wva-saturation-scaling-config"},
            "data": {"default": "kvCacheThreshold: 0.75\nqueueLengthThreshold: 4\nkvSpareTrigger: 0.2\nqueueSpareTrigger: 2"}});
        let mut w = Vec::new();
        let a = for_target("Deployment", "d", &[&h, &cm], &mut w).unwrap().unwrap();
        assert_eq!(
            a,
            json!({"minReplicas": 1, "maxReplicas": 4, "policy": "saturation", "kvCacheThreshold": 0.75,
            "queueLengthThreshold": 4.0, "kvSpareTrigger": 0.2, "queueSpareTrigger": 2.0, "scaleDownCooldownSeconds": 120.0})
        );
        assert!(w.is_empty(), "{w:?}");
        // (b) with a VariantAutoscaling: same scaling, its cost named.
        let va = json!({"kind": "VariantAutoscaling", "metadata": {"name": "v"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "variantCost": "10.0"}});
        let mut w = Vec::new();
        assert!(for_target("Deployment", "d", &[&h, &cm, &va], &mut w).unwrap().is_some());
        assert!(w[0].contains("variantCost"), "{w:?}");
        // (d) the 2025 model-based VA is named and not simulated.
        let old = json!({"kind": "VariantAutoscaling", "metadata": {"name": "d"}, "spec": {"modelProfile": {"accelerators": []}}});
        let mut w = Vec::new();
        assert_eq!(for_target("Deployment", "d", &[&h, &old], &mut w).unwrap(), None);
        assert!(w[0].contains("model-based"), "{w:?}");
    }

    /// E.16(c): an HPA on the EPP's metrics.
    #[test]
    fn hpa_on_epp_metrics() {
        let h = hpa(
            json!([{"type": "External", "external": {"metric": {"name": "epp_queue_size"}, "target": {"type": "Value", "value": "250"}}},
                   {"type": "External", "external": {"metric": {"name": "epp_running_requests"}, "target": {"type": "AverageValue", "averageValue": "250"}}}]),
            json!({}),
        );
        let mut w = Vec::new();
        let a = for_target("Deployment", "d", &[&h], &mut w).unwrap().unwrap();
        assert_eq!(
            (a["policy"].as_str(), a["targetInFlightPerReplica"].as_f64()),
            (Some("hpa"), Some(250.0))
        );
        assert!(w.iter().any(|x| x.contains("queue-size")), "{w:?}");
        let cpu = hpa(json!([{"type": "Resource", "resource": {"name": "cpu"}}]), json!({}));
        let mut w = Vec::new();
        assert_eq!(for_target("Deployment", "d", &[&cpu], &mut w).unwrap(), None);
        assert!(w.iter().any(|x| x.contains("cpu")), "{w:?}");
        assert_eq!(for_target("Deployment", "other", &[&cpu], &mut w).unwrap(), None);
    }

    #[test]
    fn wva_chart_values() {
        let r = Release {
            name: "wva".into(),
            kind: super::super::charts::ChartKind::Wva,
            version: Some("0.5.0".into()),
            values: json!({"hpa": {"maxReplicas": 10}, "va": {"accelerator": "H100"}, "llmd": {"modelName": "m"}}),
            sources: vec![],
        };
        let out = wva_release(&r).unwrap();
        let objs: Vec<&Value> = out.objects.iter().collect();
        let mut w = Vec::new();
        let a = for_target("Deployment", "m-decode", &objs, &mut w).unwrap().unwrap();
        assert_eq!((a["maxReplicas"].as_i64(), a["kvCacheThreshold"].as_f64()), (Some(10), Some(0.8)));
    }
}
