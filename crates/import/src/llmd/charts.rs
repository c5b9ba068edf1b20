//! Helm releases of the llm-d charts, rendered natively into the objects the importers read (the
//! charts live in remote registries, so `helm template` is not an option offline):
//! * llm-d-modelservice → Deployments / LeaderWorkerSets ([`super::modelservice`]);
//! * GAIE `inferencepool` / `standalone` (values under `inferenceExtension` / `inferencePool`) and
//!   llm-d-router `llm-d-router-standalone` / `-gateway` (values under `router`) → the InferencePool
//!   and the EPP ConfigMap holding the chart's built-in config files plus `pluginsCustomConfig`,
//!   annotated with the file `pluginsConfigFile` selects;
//! * workload-variant-autoscaler → its VariantAutoscaling, HPA and saturation ConfigMap;
//! * llm-d-infra (the gateway) → nothing the twin simulates.
//!
//! Values files are merged as `helm -f a -f b` merges them (maps deep-merged, later files win).

use serde_json::{json, Map, Value};

use super::modelservice::{self, parse_version, Rendered, Version};
use crate::epp::builtin::{self, Chart};
use crate::epp::CONFIG_FILE_ANNOTATION;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::patch::merge_patch;

/// Which chart a release installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// llm-d-modelservice.
    ModelService,
    /// GAIE inferencepool / standalone.
    Gaie,
    /// llm-d-router standalone / gateway.
    Router,
    /// workload-variant-autoscaler.
    Wva,
    /// llm-d-infra (gateway); nothing to simulate.
    Infra,
}

/// The chart a chart reference (`repo/name`, `oci://.../name`, URL) names, if it is an llm-d one.
pub fn kind_of_chart(chart: &str) -> Option<ChartKind> {
    let c = chart.to_ascii_lowercase();
    Some(if c.contains("modelservice") {
        ChartKind::ModelService
    } else if c.contains("llm-d-router") {
        ChartKind::Router
    } else if c.contains("inferencepool")
        || c.contains("gateway-api-inference-extension")
        || c.ends_with("/standalone")
    {
        ChartKind::Gaie
    } else if c.contains("workload-variant-autoscaler") {
        ChartKind::Wva
    } else if c.contains("llm-d-infra") {
        ChartKind::Infra
    } else {
        return None;
    })
}

/// The chart whose values a document looks like (no `kind`; the chart's top-level keys).
pub fn kind_of_values(v: &Value) -> Option<ChartKind> {
    let o = v.as_object()?;
    if o.contains_key("kind") || o.contains_key("apiVersion") {
        return None;
    }
    let router = o
        .get("router")
        .is_some_and(|r| ["epp", "modelServers", "inferencePool"].iter().any(|k| r.get(*k).is_some()));
    Some(if modelservice::is_values(v) {
        ChartKind::ModelService
    } else if router {
        ChartKind::Router
    } else if o.contains_key("inferenceExtension")
        || o.get("inferencePool").is_some_and(|p| p.get("modelServers").is_some())
    {
        ChartKind::Gaie
    } else if o.contains_key("wva") || (o.contains_key("va") && o.contains_key("hpa")) {
        ChartKind::Wva
    } else {
        return None;
    })
}

/// One Helm release: chart, version, values (merged) and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// The chart.
    pub kind: ChartKind,
    /// Chart version, when known.
    pub version: Option<String>,
    /// Merged values.
    pub values: Value,
    /// Values files (or `set` entries) in merge order, for messages.
    pub sources: Vec<String>,
}

/// Applies a `--set`-style entry (`a.b[0].c`, `\.` for a literal dot) to `values`.
pub fn set_path(values: &mut Value, path: &str, value: Value) {
    let mut keys: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                cur.push('.');
                chars.next();
            }
            '.' => keys.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    keys.push(cur);
    let mut at = values;
    for (i, k) in keys.iter().enumerate() {
        let (name, index) = match k.split_once('[') {
            Some((n, rest)) => (n.to_string(), rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (k.clone(), None),
        };
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let last = i + 1 == keys.len();
        let slot = at.as_object_mut().expect("an object").entry(name).or_insert(Value::Null);
        at = match index {
            Some(ix) => {
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                let arr = slot.as_array_mut().expect("an array");
                while arr.len() <= ix {
                    arr.push(Value::Null);
                }
                &mut arr[ix]
            }
            None => slot,
        };
        if last {
            *at = value;
            return;
        }
    }
}

/// Merges values documents in `-f` order.
pub fn merge_values(docs: &[Value]) -> Value {
    let mut out = json!({});
    for d in docs {
        merge_patch(&mut out, d);
    }
    out
}

/// The version to render `kind` at, with a warning when it had to be assumed.
fn version_of(
    r: &Release,
    newest: Version,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<Version, InvalidInput> {
    match &r.version {
        Some(v) => parse_version(v).ok_or_else(|| {
            InvalidInput::new(
                format!("release {}: version", r.name),
                format!("{v:?} is not a chart version"),
                "give a version such as v1.0.1",
            )
        }),
        None => {
            warnings.push(format!(
                "release {}: {what} chart version not given; rendered as v{}.{}.{} (name it with the release's version)",
                r.name, newest.0, newest.1, newest.2
            ));
            Ok(newest)
        }
    }
}

/// Renders a release natively into the objects its chart creates.
pub fn render(r: &Release) -> Result<Rendered, InvalidInput> {
    match r.kind {
        ChartKind::ModelService => modelservice::render(&r.values, &r.name, r.version.as_deref().or(None))
            .map_err(|e| e.within(&format!("release {}", r.name))),
        ChartKind::Gaie | ChartKind::Router => router_objects(r),
        ChartKind::Wva => super::autoscaling::wva_release(r),
        ChartKind::Infra => Ok(Rendered::default()),
    }
}

/// The InferencePool and EPP ConfigMap of a GAIE or llm-d-router release.
fn router_objects(r: &Release) -> Result<Rendered, InvalidInput> {
    let mut out = Rendered::default();
    let v = &r.values;
    let router = r.kind == ChartKind::Router;
    let (chart, ver) = if router {
        (Chart::Router, version_of(r, (0, 9, 0), "llm-d-router", &mut out.warnings)?)
    } else {
        (Chart::Gaie, version_of(r, (1, 5, 0), "GAIE inferencepool", &mut out.warnings)?)
    };
    let at = |p: &str| v.pointer(p);
    let (epp, pool) = if router {
        ("/router/epp", "/router/modelServers")
    } else {
        ("/inferenceExtension", "/inferencePool/modelServers")
    };
    let selector = at(&format!("{pool}/matchLabels")).cloned().unwrap_or(Value::Null);
    let field = |p: &str| format!("release {}: {}", r.name, p.trim_start_matches('/').replace('/', "."));
    if selector.as_object().is_none_or(Map::is_empty) {
        return Err(InvalidInput::new(
            field(&format!("{pool}/matchLabels")),
            "is not set: the pool selects no model servers (the chart requires it)",
            "give the labels of the model-server pods",
        ));
    }
    let epp_name = format!("{}-epp", r.name);
    let latency = at(if router {
        "/router/latencyPredictor/enabled"
    } else {
        "/inferenceExtension/latencyPredictor/enabled"
    })
    .and_then(Value::as_bool)
    .unwrap_or(false);
    let ports: Vec<Value> =
        at(if router { "/router/modelServers/targetPorts" } else { "/inferencePool/targetPorts" })
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| {
                vec![json!({"number": at("/inferencePool/targetPortNumber").cloned().unwrap_or(json!(8000))})]
            });
    let failure =
        at(if router { "/router/inferencePool/failureMode" } else { "/inferenceExtension/failureMode" })
            .cloned()
            .unwrap_or(json!(if router || ver >= (1, 5, 0) { "FailOpen" } else { "FailClose" }));
    let api = match at("/inferencePool/apiVersion").and_then(Value::as_str) {
        Some(a) if !router => a.to_string(),
        _ if !router && ver < (1, 0, 0) => "inference.networking.x-k8s.io/v1alpha2".to_string(),
        _ => "inference.networking.k8s.io/v1".to_string(),
    };
    let create = !router || at("/router/inferencePool/create").and_then(Value::as_bool) != Some(false);
    if create {
        out.objects.push(if api.ends_with("v1alpha2") {
            json!({"apiVersion": api, "kind": "InferencePool", "metadata": {"name": r.name},
                "spec": {"selector": selector, "targetPortNumber": ports.first().and_then(|p| p.get("number")).cloned().unwrap_or(json!(8000)),
                    "extensionRef": {"name": epp_name, "failureMode": failure}}})
        } else {
            json!({"apiVersion": api, "kind": "InferencePool", "metadata": {"name": r.name},
                "spec": {"selector": {"matchLabels": selector}, "targetPorts": ports,
                    "endpointPickerRef": {"name": epp_name, "port": {"number": 9002}, "failureMode": failure}}})
        });
    } else {
        out.warnings.push(format!(
            "release {}: router.inferencePool.create is false; the pool must exist already",
            r.name
        ));
    }
    let file =
        at(&format!("{epp}/pluginsConfigFile")).and_then(Value::as_str).unwrap_or("default-plugins.yaml");
    let mut data = Map::new();
    for (k, text) in builtin::files(chart, ver, latency) {
        data.insert(k.to_string(), Value::String(text));
    }
    for (k, text) in
        at(&format!("{epp}/pluginsCustomConfig")).and_then(Value::as_object).into_iter().flatten()
    {
        data.insert(k.clone(), text.clone());
    }
    if !data.contains_key(file) {
        return Err(InvalidInput::new(
            field(&format!("{epp}/pluginsConfigFile")),
            format!("{file:?} is neither a built-in file of the chart nor a key of pluginsCustomConfig (keys: {:?})", data.keys().collect::<Vec<_>>()),
            "name one of those files, or add it under pluginsCustomConfig",
        ));
    }
    out.objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": epp_name, "annotations": {CONFIG_FILE_ANNOTATION: file}}, "data": data}));
    let replicas = at(if router { "/router/epp/replicas" } else { "/inferenceExtension/replicas" })
        .and_then(super::workload::int_of)
        .unwrap_or(1);
    if replicas > 1 {
        out.warnings.push(format!(
            "release {}: {replicas} EPP replicas: each keeps its own in-flight counts and approximate prefix index; the twin simulates one EPP",
            r.name
        ));
    }
    if router {
        if let Some(t) = at("/router/modelServers/type").and_then(Value::as_str).filter(|t| *t != "vllm") {
            out.warnings.push(format!("release {}: model servers of type {t:?}: simulated as vLLM", r.name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(kind: ChartKind, version: Option<&str>, docs: &[Value]) -> Release {
        Release {
            name: "g".into(),
            kind,
            version: version.map(str::to_string),
            values: merge_values(docs),
            sources: vec![],
        }
    }

    /// E.13: llm-d-router values, base then guide, as `helm install -f base -f guide` merges them.
    #[test]
    fn router_values_give_pool_and_config() {
        let base = json!({"router": {"epp": {"pluginsConfigFile": "default-plugins.yaml"}, "inferencePool": {"failureMode": "FailOpen"}}});
        let guide = json!({"router": {"modelServers": {"matchLabels": {"llm-d.ai/guide": "g"}}, "epp": {"pluginsConfigFile": "custom.yaml",
            "pluginsCustomConfig": {"custom.yaml": "plugins: [{type: queue-scorer}]"}}}});
        let r = render(&release(ChartKind::Router, Some("v0.9.0"), &[base.clone(), guide.clone()])).unwrap();
        let pool = &r.objects[0];
        assert_eq!(pool["apiVersion"], "inference.networking.k8s.io/v1");
        assert_eq!(pool["spec"]["targetPorts"], json!([{"number": 8000}]));
        assert_eq!(pool["spec"]["selector"]["matchLabels"], json!({"llm-d.ai/guide": "g"}));
        assert_eq!(pool["spec"]["endpointPickerRef"]["name"], "g-epp");
        let cm = &r.objects[1];
        assert_eq!(cm["metadata"]["annotations"][CONFIG_FILE_ANNOTATION], "custom.yaml");
        assert!(cm["data"]["payload-agnostic.yaml"].is_string() && cm["data"]["custom.yaml"].is_string());
        // Without the custom file the chart's built-in default is selected.
        let mut g2 = guide.clone();
        g2["router"]["epp"] = json!({"replicas": 2});
        let r = render(&release(ChartKind::Router, None, &[base, g2])).unwrap();
        assert_eq!(r.objects[1]["metadata"]["annotations"][CONFIG_FILE_ANNOTATION], "default-plugins.yaml");
        assert!(r.warnings.iter().any(|w| w.contains("2 EPP replicas")), "{:?}", r.warnings);
        assert!(r.warnings.iter().any(|w| w.contains("version not given")), "{:?}", r.warnings);
    }

    #[test]
    fn gaie_values_by_version() {
        let v = json!({"inferenceExtension": {"pluginsConfigFile": "plugins-v2.yaml"},
            "inferencePool": {"targetPortNumber": 8000, "modelServers": {"matchLabels": {"llm-d.ai/inferenceServing": "true"}}}});
        let r = render(&release(ChartKind::Gaie, Some("v0.5.1"), std::slice::from_ref(&v))).unwrap();
        assert_eq!(r.objects[0]["apiVersion"], "inference.networking.x-k8s.io/v1alpha2");
        assert_eq!(r.objects[0]["spec"]["selector"], json!({"llm-d.ai/inferenceServing": "true"}));
        assert!(r.objects[1]["data"]["plugins-v2.yaml"].is_string());
        // plugins-v2.yaml is no built-in of v1.0.1.
        let e = render(&release(ChartKind::Gaie, Some("v1.0.1"), &[v])).unwrap_err();
        assert!(e.field.ends_with("inferenceExtension.pluginsConfigFile"), "{e}");
        let e = render(&release(ChartKind::Gaie, Some("v1.0.1"), &[json!({"inferenceExtension": {}})]))
            .unwrap_err();
        assert!(e.problem.contains("selects no model servers"), "{e}");
    }

    #[test]
    fn shapes_and_set_paths() {
        assert_eq!(
            kind_of_chart("oci://ghcr.io/llm-d/charts/llm-d-router-standalone"),
            Some(ChartKind::Router)
        );
        assert_eq!(kind_of_chart("llm-d-modelservice/llm-d-modelservice"), Some(ChartKind::ModelService));
        assert_eq!(
            kind_of_chart("oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool"),
            Some(ChartKind::Gaie)
        );
        assert_eq!(kind_of_values(&json!({"router": {"epp": {}}})), Some(ChartKind::Router));
        assert_eq!(kind_of_values(&json!({"inferenceExtension": {}})), Some(ChartKind::Gaie));
        assert_eq!(kind_of_values(&json!({"kind": "Deployment"})), None);
        let mut v = json!({});
        set_path(&mut v, "routing.parentRefs[0].name", json!("gw"));
        set_path(&mut v, "a\\.b.c", json!(1));
        assert_eq!(v, json!({"routing": {"parentRefs": [{"name": "gw"}]}, "a.b": {"c": 1}}));
    }
}
