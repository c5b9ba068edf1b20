//! `InferencePool` (GAIE `inference.networking.x-k8s.io/v1alpha2` and `inference.networking.k8s.io/v1`):
//! which pods serve the pool. Its selector picks the model-server Deployments / LeaderWorkerSets / DisaggregatedSets that
//! become the scenario's replicas.

use std::collections::BTreeMap;

use serde_json::Value;

use blis_sim::error::InvalidInput;

/// The apiVersions an `InferencePool` may carry.
pub const API_VERSIONS: [&str; 2] =
    ["inference.networking.x-k8s.io/v1alpha2", "inference.networking.k8s.io/v1"];

/// What the simulator needs of an InferencePool.
#[derive(Debug, Clone, PartialEq)]
pub struct InferencePool {
    /// Object name (what objectives' `poolRef` names).
    pub name: String,
    /// Pod labels the pool selects (all must match).
    pub selector: BTreeMap<String, String>,
    /// Name of the endpoint-picker Service (`extensionRef` / `endpointPickerRef`).
    pub endpoint_picker: Option<String>,
    /// Ports of each pod the pool routes to (`targetPorts` / `targetPortNumber`): every `podIP:port`
    /// is an endpoint of its own (one per data-parallel rank when a pod runs several).
    pub target_ports: Vec<i64>,
    /// What the proxy does when the EPP does not answer (`FailOpen` / `FailClose`).
    pub failure_mode: Option<String>,
}

impl InferencePool {
    /// Whether pods with `labels` belong to the pool.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.selector.is_empty() && self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Reads an InferencePool of either apiVersion.
pub fn import(obj: &Value) -> Result<InferencePool, InvalidInput> {
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !API_VERSIONS.contains(&av) {
        return Err(InvalidInput::new(
            "apiVersion",
            format!("unknown InferencePool apiVersion {av:?}"),
            format!("use one of {}", API_VERSIONS.join(", ")),
        ));
    }
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    // v1alpha2: a flat label map; v1: a LabelSelector with matchLabels.
    let sel = if av.ends_with("v1alpha2") {
        spec.get("selector")
    } else {
        spec.get("selector").and_then(|s| s.get("matchLabels"))
    };
    let selector: BTreeMap<String, String> = sel
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    if selector.is_empty() {
        return Err(InvalidInput::new(
            if av.ends_with("v1alpha2") { "spec.selector" } else { "spec.selector.matchLabels" },
            "selects no pods",
            "give the labels of the model-server pods",
        ));
    }
    let epp_ref = spec.get("extensionRef").or_else(|| spec.get("endpointPickerRef"));
    let epp = epp_ref.and_then(|r| r.get("name")).and_then(Value::as_str).map(str::to_string);
    let target_ports: Vec<i64> = match spec.get("targetPorts").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(|p| p.get("number").and_then(super::workload::int_of)).collect(),
        None => spec.get("targetPortNumber").and_then(super::workload::int_of).into_iter().collect(),
    };
    Ok(InferencePool {
        name: obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string(),
        selector,
        endpoint_picker: epp,
        target_ports,
        failure_mode: epp_ref.and_then(|r| r.get("failureMode")).and_then(Value::as_str).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_api_versions() {
        let p = format!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/llm-d-manifests/{}"),
            "2025-07-gaie-v0.5.1-raw-inference-scheduling/inferencepool-resources.yaml"
        );
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p} must be readable: {e}"));
        let doc = super::super::parse_documents(&text)
            .unwrap()
            .into_iter()
            .find(|d| d["kind"] == "InferencePool")
            .unwrap();
        let a = import(&doc).unwrap();
        assert_eq!(a.selector.get("app").map(String::as_str), Some("vllm-llama3-8b-instruct"));
        assert_eq!(a.endpoint_picker.as_deref(), Some("vllm-llama3-8b-instruct-epp"));
        let v1 = serde_json::json!({"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "p"}, "spec": {"targetPorts": [{"number": 8000}],
            "selector": {"matchLabels": {"llm-d.ai/model": "Qwen3-32B"}}, "endpointPickerRef": {"name": "epp"}}});
        let b = import(&v1).unwrap();
        assert_eq!(b.target_ports, [8000]);
        assert_eq!(a.target_ports, [8000]);
        let labels =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(b.selects(&labels(&[("llm-d.ai/model", "Qwen3-32B"), ("llm-d.ai/role", "decode")])));
        assert!(!b.selects(&labels(&[("llm-d.ai/model", "other")])));
        let mut old = v1.clone();
        old["apiVersion"] = "inference.networking.x-k8s.io/v1alpha1".into();
        assert_eq!(import(&old).unwrap_err().field, "apiVersion");
        let mut empty = v1;
        empty["spec"]["selector"] = serde_json::json!({});
        assert_eq!(import(&empty).unwrap_err().field, "spec.selector.matchLabels");
    }
}
