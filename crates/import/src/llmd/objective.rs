//! `InferenceObjective` (priority per objective) and the older `InferenceModel` (criticality per
//! model name): the request priorities flow control and shedding act on, keyed by the workload class
//! that carries the objective's name.

use serde_json::Value;

use blis_sim::error::InvalidInput;
use blis_sim::scenario::spec::ObjectiveSpec;

/// Reads an InferenceObjective (class = its name) or an InferenceModel (class = `spec.modelName`),
/// with the name of the pool it applies to.
pub fn import(obj: &Value) -> Result<(ObjectiveSpec, Option<String>), InvalidInput> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let pool = spec.pointer("/poolRef/name").and_then(Value::as_str).map(str::to_string);
    let o = match kind {
        "InferenceObjective" => {
            let priority = match spec.get("priority") {
                None => 0,
                Some(p) => p.as_i64().ok_or_else(|| {
                    InvalidInput::new(
                        format!("InferenceObjective {name}: spec.priority"),
                        format!("is {p}, not an integer"),
                        "give an integer priority (higher is more important)",
                    )
                })?,
            };
            ObjectiveSpec { class: name, priority: Some(priority), criticality: None }
        }
        "InferenceModel" => {
            let class = spec.get("modelName").and_then(Value::as_str).unwrap_or(&name).to_string();
            let crit = spec.get("criticality").and_then(Value::as_str).unwrap_or("Standard").to_string();
            ObjectiveSpec { class, priority: None, criticality: Some(crit) }
        }
        other => {
            return Err(InvalidInput::new(
                format!("{other} {name}: kind"),
                "is not an objective",
                "give an InferenceObjective or an InferenceModel",
            ))
        }
    };
    Ok((o, pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(path: &str) -> Vec<Value> {
        let p = crate::shared(&format!("llm-d-manifests/{path}"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p} must be readable: {e}"));
        super::super::parse_documents(&text).unwrap()
    }

    #[test]
    fn objectives_and_models() {
        let got: Vec<_> = docs("2026-06-v0.9-flow-control/src/guides/flow-control/objectives.yaml")
            .iter()
            .map(|d| import(d).unwrap())
            .collect();
        let prios: Vec<_> = got.iter().map(|(o, _)| (o.class.as_str(), o.priority.unwrap())).collect();
        assert_eq!(prios, [("premium-traffic", 100), ("standard-traffic", 0), ("best-effort-traffic", -10)]);
        assert!(got.iter().all(|(_, p)| p.as_deref() == Some("default-pool")));
        let models: Vec<_> = docs("2025-07-gaie-v0.5.1-raw-inference-scheduling/inferencemodel.yaml")
            .iter()
            .map(|d| import(d).unwrap().0)
            .collect();
        assert_eq!(models[0].class, "food-review");
        assert_eq!(models[0].criticality.as_deref(), Some("Standard"));
        assert_eq!(models[1].criticality.as_deref(), Some("Critical"));
        let bad = serde_json::json!({"kind": "InferenceObjective", "metadata": {"name": "x"}, "spec": {"priority": "hi"}});
        assert_eq!(import(&bad).unwrap_err().field, "InferenceObjective x: spec.priority");
    }
}
