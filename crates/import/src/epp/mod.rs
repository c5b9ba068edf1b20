//! Reading an `EndpointPickerConfig` document exactly as operators write it (all three apiVersions,
//! every plugin type of the released EPPs) into the plugin pipeline the simulator runs
//! ([`blis_sim::sim::router::EppConfig`]). Split by concern:
//! * [`catalogue`]: every registered plugin type and what the twin makes of it;
//! * `profiles`: scheduling profiles (filters, weighted scorers, pickers) and the prefix index;
//! * `handler`: profile handlers and P/D deciders;
//! * `flow`: the saturation detector and flow control;
//! * [`builtin`]: the files the charts ship and select by name;
//! * [`params`]: parameter values (numbers, durations, quantities).
//!
//! The real EPP refuses to start on a plugin type it does not register, a plugin without a type, two
//! plugins of one name or two profile handlers; so does this reader, with the EPP's words. Registered
//! plugins the twin does not simulate act as neutral and are named in a warning.

pub mod builtin;
pub mod catalogue;
mod flow;
mod handler;
pub mod params;
mod profiles;

use std::collections::BTreeMap;

use serde_json::Value;

use blis_sim::error::InvalidInput;
use blis_sim::scenario::EppReadOptions;
use blis_sim::sim::router::{EppConfig, PluginNote};
use catalogue::{Entry, Treatment};
pub use params::{duration_us, quantity};

/// The apiVersions an `EndpointPickerConfig` may carry.
pub const API_VERSIONS: [&str; 3] =
    ["inference.networking.x-k8s.io/v1alpha1", "llm-d.ai/v1alpha1", "llm-d.ai/v1"];

/// Annotation the chart renderers put on an EPP ConfigMap naming the file the chart selects
/// (`pluginsConfigFile`), so an import can take the same one.
pub const CONFIG_FILE_ANNOTATION: &str = "blis.dev/epp-config-file";

/// Top-level keys of an EndpointPickerConfig.
const TOP_KEYS: [&str; 10] = [
    "apiVersion",
    "kind",
    "featureGates",
    "plugins",
    "schedulingProfiles",
    "dataLayer",
    "flowControl",
    "requestHandler",
    "saturationDetector",
    "parser",
];

/// One plugin of the config, with its registry entry.
pub(crate) struct Plugin {
    /// Position under `plugins`.
    pub index: usize,
    /// Type (the current name when an old one was written).
    pub ty: String,
    /// Registry entry (None for an allowed unregistered type).
    pub entry: Option<&'static Entry>,
    /// `parameters`.
    pub params: Value,
}

/// The plugins by name, in the order written.
pub(crate) struct Plugins {
    pub by_name: BTreeMap<String, Plugin>,
    pub order: Vec<String>,
}

impl Plugins {
    /// Names of the plugins of type `ty`, in order.
    pub fn named(&self, ty: &str) -> Vec<&str> {
        self.order.iter().filter(|n| self.by_name[*n].ty == ty).map(String::as_str).collect()
    }
}

/// Takes the document out of its wrappers: a YAML string, or Helm values holding
/// `pluginsCustomConfig[pluginsConfigFile]` (under `router.epp`, `inferenceExtension` or at the
/// top); values that select a chart built-in by name get the newest chart's file of that name.
fn unwrap_document(v: &Value, warnings: &mut Vec<String>) -> Result<Value, InvalidInput> {
    let doc = match v {
        Value::String(s) => serde_yaml::from_str::<Value>(s).map_err(|e| {
            InvalidInput::new(
                "",
                crate::yaml_error::problem(&e, s),
                "paste the EndpointPickerConfig file as YAML",
            )
        })?,
        other => other.clone(),
    };
    for (path, chart) in [
        (&["router", "epp"][..], Some(builtin::Chart::Router)),
        (&["inferenceExtension"][..], Some(builtin::Chart::Gaie)),
        (&[][..], None),
    ] {
        let Some(at) = path.iter().try_fold(&doc, |at, k| at.get(*k)) else { continue };
        let file = at.get("pluginsConfigFile").and_then(Value::as_str);
        let custom = at.get("pluginsCustomConfig").and_then(Value::as_object);
        if let Some(inner) = custom.and_then(|c| file.and_then(|f| c.get(f)).or_else(|| c.values().next())) {
            return unwrap_document(inner, warnings);
        }
        if let (Some(f), Some(chart)) = (file, chart) {
            let newest = match chart {
                builtin::Chart::Router => (0, 9, 0),
                builtin::Chart::Gaie => (1, 5, 0),
            };
            if let Some((_, text)) = builtin::files(chart, newest, false).into_iter().find(|(n, _)| *n == f) {
                warnings.push(format!(
                    "endpoint picker values select the chart's built-in {f}; read as the newest chart's ({chart:?} v{}.{}.{})",
                    newest.0, newest.1, newest.2
                ));
                return unwrap_document(&Value::String(text), warnings);
            }
        }
    }
    Ok(doc)
}

/// Reads the `plugins` list, refusing what the real EPP refuses.
fn read_plugins(
    list: &[Value],
    opts: &EppReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Plugins, InvalidInput> {
    let mut out = Plugins { by_name: BTreeMap::new(), order: Vec::new() };
    for (i, p) in list.iter().enumerate() {
        let name = p.get("name").and_then(Value::as_str);
        let Some(written) = p.get("type").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
            return Err(InvalidInput::new(
                format!("plugins[{i}].type"),
                format!("plugin '{}' is missing a type", name.unwrap_or("")),
                "give every plugin a type (the EPP refuses to start without one)",
            ));
        };
        let name = name.unwrap_or(written).to_string();
        if out.by_name.contains_key(&name) {
            return Err(InvalidInput::new(
                format!("plugins[{i}].name"),
                format!("duplicate plugin name '{name}'"),
                "give each plugin a unique name (the EPP refuses to start otherwise)",
            ));
        }
        let entry = catalogue::lookup(written);
        let ty = match entry {
            None if opts.allow_unregistered_plugins => {
                warnings.push(format!(
                    "endpoint picker plugin {name:?}: type {written:?} is not registered in any EPP (the real EPP would refuse to start); run as neutral (allowUnregisteredPlugins)"
                ));
                written.to_string()
            }
            None => {
                let hint =
                    catalogue::closest(written).map(|c| format!("did you mean '{c}'? ")).unwrap_or_default();
                return Err(InvalidInput::new(
                    format!("plugins[{i}].type"),
                    format!("plugin type '{written}' is not registered (the EPP refuses to start: failed to load the configuration)"),
                    format!("{hint}use a registered plugin type, or set spec.router.allowUnregisteredPlugins: true to simulate it as neutral"),
                ));
            }
            Some(e) => {
                let canonical = match e.renamed_to {
                    // The P/D handler and the header handlers keep their own semantics; only plain renames are read as the new type.
                    Some(new) if e.treatment == Treatment::Modelled && e.ty != "pd-profile-handler" => new,
                    _ => e.ty,
                };
                if let Some(new) = e.renamed_to {
                    warnings.push(if canonical == new {
                        format!("endpoint picker plugin type {written:?} is the old name of {new:?}; read as {new:?}")
                    } else {
                        format!("endpoint picker plugin type {written:?} is deprecated (replaced by {new:?})")
                    });
                }
                if let Treatment::Unmodelled(why) = e.treatment {
                    warnings.push(format!(
                        "endpoint picker plugin {name:?} of type {written:?} is not modelled ({why}); it acts as neutral"
                    ));
                }
                canonical.to_string()
            }
        };
        let entry = catalogue::lookup(&ty).or(entry);
        out.order.push(name.clone());
        out.by_name.insert(
            name,
            Plugin { index: i, ty, entry, params: p.get("parameters").cloned().unwrap_or(Value::Null) },
        );
    }
    Ok(out)
}

/// Parses an `EndpointPickerConfig` (a YAML string or an object). Field paths in errors are relative
/// to the config (callers prefix them). Warnings name every plugin and setting the simulator does
/// not model.
pub fn parse(
    v: &Value,
    opts: &EppReadOptions,
    warnings: &mut Vec<String>,
) -> Result<EppConfig, InvalidInput> {
    let doc = unwrap_document(v, warnings)?;
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
        if av == "llm-d.ai/v1" {
            warnings.push(
                "EndpointPickerConfig apiVersion llm-d.ai/v1 is newer than the llm-d-router releases to 2026-08 accept (llm-d.ai/v1alpha1); read with their plugin semantics".into(),
            );
        }
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str) {
        if k != "EndpointPickerConfig" {
            return Err(InvalidInput::new("kind", format!("is {k:?}"), "use kind: EndpointPickerConfig"));
        }
    }
    for k in obj.keys().filter(|k| !TOP_KEYS.contains(&k.as_str())) {
        warnings.push(format!("EndpointPickerConfig key {k:?} is not an EPP setting; ignored"));
    }
    let list = obj.get("plugins").and_then(Value::as_array).cloned().unwrap_or_default();
    let plugins = read_plugins(&list, opts, warnings)?;
    if plugins.order.is_empty() && obj.get("schedulingProfiles").is_none() {
        return Ok(EppConfig::well_lit_default());
    }
    // llm-d-router configs get the approximate producer (autoTune on) inserted by default.
    let router_era =
        obj.get("apiVersion").and_then(Value::as_str).is_some_and(|a| a.starts_with("llm-d.ai/"));
    let prefix = profiles::prefix_index(&plugins, router_era, warnings)?;
    let profiles = profiles::profiles(obj, &plugins, warnings)?;
    let handler = handler::handler(&plugins, &profiles, warnings)?;
    let detector = flow::detector(obj, &plugins)?;
    let flow = flow::flow_control(obj, warnings)?;
    let notes = plugins
        .order
        .iter()
        .map(|n| {
            let p = &plugins.by_name[n];
            let treatment = match p.entry.map(|e| e.treatment) {
                Some(Treatment::Modelled) => "modelled",
                Some(Treatment::Inert) => "inert",
                Some(Treatment::Unmodelled(_)) | None => "not modelled",
            };
            PluginNote { name: n.clone(), ty: p.ty.clone(), treatment: treatment.into() }
        })
        .collect();
    Ok(EppConfig {
        profiles,
        handler,
        prefix,
        detector,
        flow,
        precise_block_tokens: profiles::precise_block(&plugins),
        plugins: notes,
        gateway_us_per_prompt_token: blis_sim::sim::router::GATEWAY_US_PER_PROMPT_TOKEN,
    })
}

#[cfg(test)]
mod tests;
