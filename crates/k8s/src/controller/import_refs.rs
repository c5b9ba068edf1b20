//! Fetching the live objects a scenario's `spec.import` references (InferencePool, model-server
//! Deployments / LeaderWorkerSets / DisaggregatedSets, the endpoint-picker ConfigMap, objectives) into the
//! [`Objects`] the importers read, and deciding which scenarios a changed object concerns.
//! Kinds whose CRD is not installed are simply absent.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use serde_json::Value;

use blis_import::Objects;
use blis_sim::scenario::spec::{ImportSpec, ScenarioSpec};

/// The custom kinds the importers read, with their API coordinates (newest first per kind).
pub const CUSTOM: [(&str, &str, &str, &str); 6] = [
    ("inference.networking.k8s.io", "v1", "InferencePool", "inferencepools"),
    ("inference.networking.x-k8s.io", "v1alpha2", "InferencePool", "inferencepools"),
    ("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets"),
    ("disaggregatedset.x-k8s.io", "v1", "DisaggregatedSet", "disaggregatedsets"),
    ("inference.networking.x-k8s.io", "v1alpha2", "InferenceObjective", "inferenceobjectives"),
    ("inference.networking.x-k8s.io", "v1alpha2", "InferenceModel", "inferencemodels"),
];

/// The ApiResource of one of [`CUSTOM`].
pub fn resource((group, version, kind, plural): (&str, &str, &str, &str)) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// As the importers read it: JSON with `apiVersion` and `kind` set (list items lack them).
fn typed(obj: &impl serde::Serialize, api_version: &str, kind: &str) -> Option<Value> {
    let mut v = serde_json::to_value(obj).ok()?;
    v["apiVersion"] = api_version.into();
    v["kind"] = kind.into();
    Some(v)
}

fn custom_of(kind: &str) -> impl Iterator<Item = ApiResource> + '_ {
    CUSTOM.into_iter().filter(move |c| c.2 == kind).map(resource)
}

async fn get_custom(client: &Client, ns: &str, kind: &str, name: &str) -> Result<Option<Value>, kube::Error> {
    for ar in custom_of(kind) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        // A 404 (object or whole CRD absent) is `None`.
        if let Some(o) = api.get_opt(name).await? {
            return Ok(typed(&o, &ar.api_version, kind));
        }
    }
    Ok(None)
}

async fn list_custom(client: &Client, ns: &str, kind: &str, out: &mut Objects) {
    for ar in custom_of(kind) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        match api.list(&ListParams::default()).await {
            Ok(l) => l.items.iter().filter_map(|o| typed(o, &ar.api_version, kind)).for_each(|v| out.push(v)),
            // Not installed (404) or not allowed: the importers then find none of this kind.
            Err(e) => tracing::debug!(kind, error = %e, "cannot list"),
        }
    }
}

/// Whether the import selects model servers by the pool's selector (so any Deployment /
/// LeaderWorkerSet of the namespace may matter).
fn selects_by_pool(imp: &ImportSpec) -> bool {
    (imp.inference_pool_ref.is_some() || imp.inference_pool.is_some())
        && imp.workload_refs.as_ref().is_none_or(Vec::is_empty)
        && imp.workloads.as_ref().is_none_or(Vec::is_empty)
        && imp.model_service_values.is_none()
}

/// Fetches what `spec.import` references from namespace `ns`.
pub async fn fetch(client: &Client, ns: &str, spec: &ScenarioSpec) -> Result<Objects, kube::Error> {
    let mut out = Objects::default();
    let Some(imp) = &spec.import else { return Ok(out) };
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    if let Some(r) = &imp.inference_pool_ref {
        if let Some(v) = get_custom(client, ns, "InferencePool", &r.name).await? {
            out.push(v);
        }
    }
    for r in imp.workload_refs.iter().flatten() {
        let kind = r.kind.as_deref().unwrap_or("Deployment");
        let found = if kind == "Deployment" {
            deployments.get_opt(&r.name).await?.and_then(|d| typed(&d, "apps/v1", kind))
        } else {
            get_custom(client, ns, kind, &r.name).await?
        };
        out.extend(found);
    }
    if let Some(r) = &imp.endpoint_picker_config_ref {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        out.extend(cms.get_opt(&r.name).await?.and_then(|c| typed(&c, "v1", "ConfigMap")));
    }
    if selects_by_pool(imp) {
        for d in deployments.list(&ListParams::default()).await?.items {
            out.extend(typed(&d, "apps/v1", "Deployment"));
        }
        list_custom(client, ns, "LeaderWorkerSet", &mut out).await;
        list_custom(client, ns, "DisaggregatedSet", &mut out).await;
    }
    if imp.inference_pool_ref.is_some() || imp.inference_pool.is_some() {
        list_custom(client, ns, "InferenceObjective", &mut out).await;
        list_custom(client, ns, "InferenceModel", &mut out).await;
    }
    Ok(out)
}

/// Whether a change of the object `kind`/`name` may change the scenario's imported inputs.
pub fn concerns(spec: &ScenarioSpec, kind: &str, name: &str) -> bool {
    spec.import.as_ref().is_some_and(|imp| concerns_import(imp, kind, name))
}

/// Whether a change of the object `kind`/`name` may change what the import `imp` reads.
pub fn concerns_import(imp: &ImportSpec, kind: &str, name: &str) -> bool {
    let named = |r: &Option<blis_sim::scenario::spec::ObjectRef>| r.as_ref().is_some_and(|r| r.name == name);
    match kind {
        "InferencePool" => named(&imp.inference_pool_ref),
        "ConfigMap" => named(&imp.endpoint_picker_config_ref),
        // Every objective of the namespace is read when a pool is imported.
        "InferenceObjective" | "InferenceModel" => {
            imp.inference_pool_ref.is_some() || imp.inference_pool.is_some()
        }
        "Deployment" | "LeaderWorkerSet" | "DisaggregatedSet" => {
            selects_by_pool(imp)
                || imp
                    .workload_refs
                    .iter()
                    .flatten()
                    .any(|r| r.name == name && r.kind.as_deref().unwrap_or("Deployment") == kind)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_map_to_the_scenarios_that_read_them() {
        let spec = |import: Value| -> ScenarioSpec {
            serde_json::from_value(serde_json::json!({
                "import": import,
                "workload": {"classes": [{"name": "c", "inputTokens": {"distribution": "fixed", "value": 1},
                    "outputTokens": {"distribution": "fixed", "value": 1}}]}
            }))
            .unwrap()
        };
        let by_pool = spec(serde_json::json!({"inferencePoolRef": {"name": "p"},
            "endpointPickerConfigRef": {"name": "epp", "key": "c.yaml"}}));
        assert!(concerns(&by_pool, "InferencePool", "p") && !concerns(&by_pool, "InferencePool", "q"));
        assert!(concerns(&by_pool, "Deployment", "anything") && concerns(&by_pool, "ConfigMap", "epp"));
        assert!(!concerns(&by_pool, "ConfigMap", "other"));
        assert!(concerns(&by_pool, "InferenceObjective", "any") && concerns(&by_pool, "InferenceModel", "m"));
        let named = spec(
            serde_json::json!({"workloadRefs": [{"name": "d"}, {"kind": "LeaderWorkerSet", "name": "l"}]}),
        );
        assert!(concerns(&named, "Deployment", "d") && !concerns(&named, "Deployment", "l"));
        assert!(concerns(&named, "LeaderWorkerSet", "l") && !concerns(&named, "Deployment", "x"));
        assert!(!concerns(&named, "InferenceObjective", "any"), "no pool imported, no objectives read");
    }
}
