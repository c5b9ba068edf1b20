//! The controller's own objects as it watches them: metadata (without `managedFields` and the
//! last-applied annotation, which the controller never reads) plus the spec and status kept as raw
//! JSON text. Decoding one never fails on what the API server accepted (a number past `i32`, an
//! object nested past serde's depth limit, a wrong type under a free-form field): such an object is
//! parsed in the reconcile, where a failure is that object's `Stalled` status naming the field,
//! instead of a list that fails for every object and stops the controller cluster-wide. Raw text is
//! also the smallest form to cache: memory per stored object is about its JSON size.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use blis_sim::error::InvalidInput;

/// Annotation `kubectl apply` writes with a whole copy of the object; never read here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Most characters of a decoding error kept in a message (a refused string may be huge).
const MAX_PROBLEM_CHARS: usize = 300;

/// An object of kind `K` as watched: its metadata and its spec and status as raw JSON.
pub struct Watched<K> {
    /// Metadata, without `managedFields` and the last-applied annotation.
    pub metadata: ObjectMeta,
    /// `spec` as the API server has it (absent when the object has none).
    pub spec: Option<Box<RawValue>>,
    /// `status` as the API server has it.
    pub status: Option<Box<RawValue>>,
    /// The field managers that wrote the status subresource (from `managedFields`, which is not
    /// kept): a writer other than the controller means the status was changed by someone else,
    /// which the controller can tell even after a restart.
    pub status_managers: Vec<String>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Watched<K> {
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: self.status.clone(),
            status_managers: self.status_managers.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Watched<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("namespace", &self.metadata.namespace)
            .field("name", &self.metadata.name)
            .field("resourceVersion", &self.metadata.resource_version)
            .finish_non_exhaustive()
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Watched<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<'de, K> Deserialize<'de> for Watched<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Skipped and raw values are scanned without recursion, so no depth limit applies to them.
        #[derive(Deserialize)]
        struct Parts {
            #[serde(default)]
            metadata: BTreeMap<String, Box<RawValue>>,
            #[serde(default)]
            spec: Option<Box<RawValue>>,
            #[serde(default)]
            status: Option<Box<RawValue>>,
        }
        /// The part of a `managedFields` entry read here.
        #[derive(Deserialize)]
        struct Managed {
            #[serde(default)]
            manager: String,
            #[serde(default)]
            subresource: String,
        }
        let mut parts = Parts::deserialize(d)?;
        let managed: Vec<Managed> = match parts.metadata.remove("managedFields") {
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or_default(),
            None => Vec::new(),
        };
        let mut status_managers: Vec<String> =
            managed.into_iter().filter(|m| m.subresource == "status").map(|m| m.manager).collect();
        status_managers.sort_unstable();
        status_managers.dedup();
        let fields: Vec<String> = parts
            .metadata
            .iter()
            .map(|(k, v)| Ok(format!("{}:{}", serde_json::to_string(k)?, v.get())))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(D::Error::custom)?;
        let mut metadata: ObjectMeta =
            serde_json::from_str(&format!("{{{}}}", fields.join(","))).map_err(D::Error::custom)?;
        if let Some(a) = metadata.annotations.as_mut() {
            a.remove(LAST_APPLIED);
        }
        let null = |v: &Option<Box<RawValue>>| v.as_ref().is_some_and(|r| r.get() == "null");
        let spec = if null(&parts.spec) { None } else { parts.spec };
        let status = if null(&parts.status) { None } else { parts.status };
        Ok(Self { metadata, spec, status, status_managers, kind: PhantomData })
    }
}

impl<K> Watched<K> {
    /// The spec as `S`: a failure names the field (`spec.<path>`) and what is wrong with it.
    pub fn spec<S: DeserializeOwned>(&self) -> Result<S, InvalidInput> {
        let raw = self
            .spec
            .as_ref()
            .ok_or_else(|| InvalidInput::new("spec", "is missing", "add a spec section"))?;
        parse(raw.get(), "spec")
    }

    /// Whether a field manager other than this controller's wrote the status.
    pub fn status_written_by_another(&self) -> bool {
        self.status_managers.iter().any(|m| m != super::FIELD_MANAGER)
    }

    /// The status as `S`, when it parses. One that does not was not written by this controller and
    /// is rewritten.
    pub fn status<S: DeserializeOwned>(&self) -> Option<S> {
        serde_json::from_str(self.status.as_ref()?.get()).ok()
    }
}

/// Parses the JSON `text` found at `root` as `S`; an error names the field and is kept short.
pub fn parse<S: DeserializeOwned>(text: &str, root: &str) -> Result<S, InvalidInput> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = match path.as_str() {
            "." => root.to_string(),
            p if p.starts_with('[') => format!("{root}{p}"),
            p => format!("{root}.{p}"),
        };
        let inner = e.into_inner().to_string();
        let fix = if inner.contains("recursion limit") {
            "nest objects less deeply"
        } else if inner.contains("unknown field") {
            "remove or rename the field"
        } else if inner.contains("missing field") {
            "add the missing field"
        } else {
            "give a value of the expected type and range"
        };
        InvalidInput::new(shorten(&field, 150), shorten(&inner, MAX_PROBLEM_CHARS), fix)
    })
}

/// `s` cut to at most `max` characters, marking the cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}… ({} characters)", s.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SimulationScenario;
    use blis_sim::scenario::ScenarioSpec;

    fn nested(depth: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn a_list_decodes_whatever_the_server_accepted_and_each_object_fails_alone() {
        let deep = nested(140);
        let list = format!(
            r#"{{"apiVersion":"v1","items":[
            {{"metadata":{{"name":"deep","namespace":"n","uid":"u1","generation":2,
              "managedFields":[{{"fieldsV1":{deep}}},{{"manager":"kubectl","operation":"Update"}},
                {{"manager":"blis-controller","operation":"Apply","subresource":"status"}}],
              "annotations":{{"{LAST_APPLIED}":"x","keep":"y"}}}},
              "spec":{{"model":{{"name":"m","config":{deep}}}}}}},
            {{"metadata":{{"name":"big","namespace":"n"}},"spec":{{"workload":{{"classes":[{{"name":"c","priority":3000000000}}]}}}},"status":null}},
            {{"metadata":{{"name":"none","namespace":"n"}}}}]}}"#
        );
        let parsed: kube::core::ObjectList<Watched<SimulationScenario>> =
            serde_json::from_str(&list).unwrap();
        let [deep, big, none] = &parsed.items[..] else { panic!("three items") };
        assert_eq!(deep.metadata.generation, Some(2));
        assert!(deep.metadata.managed_fields.is_none());
        assert!(!deep.status_written_by_another(), "{:?}", deep.status_managers);
        assert_eq!(deep.metadata.annotations.as_ref().unwrap().keys().collect::<Vec<_>>(), ["keep"]);
        let e = deep.spec::<ScenarioSpec>().unwrap_err();
        assert!(e.field.starts_with("spec.model.config.a.a"), "{e}");
        assert!(e.problem.contains("recursion limit") && e.field.chars().count() < 200, "{e}");
        let e = big.spec::<ScenarioSpec>().unwrap_err();
        assert_eq!(e.field, "spec.workload.classes[0].priority", "{e}");
        assert!(big.status.is_none());
        assert_eq!(none.spec::<ScenarioSpec>().unwrap_err().field, "spec");
    }

    #[test]
    fn another_writer_of_the_status_is_seen_in_managed_fields() {
        let w: Watched<SimulationScenario> = serde_json::from_str(
            r#"{"metadata":{"name":"s","managedFields":[
              {"manager":"blis-controller","operation":"Apply","subresource":"status","fieldsV1":{"f:status":{}}},
              {"manager":"kubectl-patch","operation":"Update","subresource":"status","fieldsV1":{"f:status":{}}},
              {"manager":"kubectl-client-side-apply","operation":"Update","fieldsV1":{"f:spec":{}}}]},
              "spec":{}}"#,
        )
        .unwrap();
        assert_eq!(w.status_managers, ["blis-controller", "kubectl-patch"]);
        assert!(w.status_written_by_another());
        assert!(w.metadata.managed_fields.is_none());
    }

    #[test]
    fn huge_values_are_not_echoed_whole() {
        let w: Watched<SimulationScenario> = serde_json::from_str(&format!(
            r#"{{"metadata":{{"name":"s"}},"spec":{{"replicas":"{}"}}}}"#,
            "x".repeat(100_000)
        ))
        .unwrap();
        let e = w.spec::<ScenarioSpec>().unwrap_err();
        assert!(e.to_string().len() < 1000, "{}", e.to_string().len());
    }
}
