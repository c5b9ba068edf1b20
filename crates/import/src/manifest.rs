//! Reading `SimulationScenario` manifests (one or more YAML documents) into typed specs.

use serde::{Deserialize, Serialize};

use blis_sim::error::InvalidInput;
use blis_sim::scenario::spec::ScenarioSpec;

/// API group/version of BLIS twin's resources.
pub const API_VERSION: &str = "twin.blis.dev/v1alpha1";
/// Kind of a scenario manifest.
pub const KIND: &str = "SimulationScenario";

/// The parts of `metadata` the CLI uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Object name.
    #[serde(default)]
    pub name: String,
    /// Namespace, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A `SimulationScenario` as written in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioManifest {
    /// Its metadata.
    pub metadata: Metadata,
    /// Its spec.
    pub spec: ScenarioSpec,
}

impl ScenarioManifest {
    /// The manifest as YAML (the spec as parsed, defaults left out), for reports that show their inputs.
    pub fn to_yaml(&self) -> String {
        let spec = serde_yaml::to_string(&self.spec).unwrap_or_default();
        let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
        format!(
            "apiVersion: {API_VERSION}\nkind: {KIND}\nmetadata:\n  name: {}\nspec:\n{spec}",
            self.metadata.name
        )
    }
}

/// Reads every `SimulationScenario` in a (multi-document) YAML text. Documents of other kinds are
/// skipped and returned by kind, so callers can say what they ignored. Any malformed scenario is an
/// error naming the document and field.
pub fn parse_scenarios(text: &str) -> Result<(Vec<ScenarioManifest>, Vec<String>), InvalidInput> {
    let mut scenarios = Vec::new();
    let mut skipped = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let where_ = format!("document {}", i + 1);
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| {
            InvalidInput::new(&where_, format!("is not valid YAML: {e}"), "fix the YAML syntax")
        })?;
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        if kind != KIND {
            skipped.push(if kind.is_empty() { "(no kind)".to_string() } else { kind.to_string() });
            continue;
        }
        let api = value.get("apiVersion").and_then(|k| k.as_str()).unwrap_or("");
        if api != API_VERSION {
            return Err(InvalidInput::new(
                format!("{where_}: apiVersion"),
                format!("is {api:?}"),
                format!("set apiVersion: {API_VERSION}"),
            ));
        }
        let metadata: Metadata = match value.get("metadata") {
            Some(m) => serde_yaml::from_value(m.clone()).map_err(|e| {
                InvalidInput::new(format!("{where_}: metadata"), e.to_string(), "give metadata.name")
            })?,
            None => Metadata::default(),
        };
        let name = if metadata.name.is_empty() { where_.clone() } else { metadata.name.clone() };
        let spec_value = value
            .get("spec")
            .cloned()
            .ok_or_else(|| InvalidInput::new(format!("{name}: spec"), "is missing", "add a spec section"))?;
        let spec: ScenarioSpec = serde_path_to_error::deserialize(spec_value).map_err(|e| {
            let path = e.path().to_string();
            let field = match path.as_str() {
                "." => "spec".to_string(),
                p if p.starts_with('[') => format!("spec{p}"),
                p => format!("spec.{p}"),
            };
            let inner = e.into_inner().to_string();
            let fix = if inner.contains("unknown field") {
                "remove or rename the field (see `blis run --help` for the format)"
            } else if inner.contains("missing field") {
                "add the missing field"
            } else {
                "give a value of the expected type"
            };
            InvalidInput::new(format!("{name}: {field}"), inner, fix)
        })?;
        scenarios.push(ScenarioManifest { metadata, spec });
    }
    Ok((scenarios, skipped))
}
