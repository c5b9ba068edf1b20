//! What each scenario references (trace ConfigMap, HardwareProfile names, imported objects), kept
//! from its last reconcile so that a change of a referenced object maps to the scenarios it
//! concerns without parsing every cached spec on every event.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::runtime::reflector::{ObjectRef, Store};

use super::import_refs;
use super::scenario::steps;
use super::watched::Watched;
use crate::api::SimulationScenario;
use blis_sim::scenario::spec::ImportSpec;
use blis_sim::scenario::ScenarioSpec;

type Key = ObjectRef<Watched<SimulationScenario>>;

/// The references of one scenario.
#[derive(Debug, Clone, Default)]
struct Refs {
    trace_config_map: Option<String>,
    profile_names: Vec<String>,
    import: Option<ImportSpec>,
}

/// The references of every reconciled scenario, by object.
#[derive(Default)]
pub struct RefIndex(Mutex<HashMap<Key, Refs>>);

impl RefIndex {
    /// Records what `spec` (of `obj`) references.
    pub fn record(&self, obj: &Watched<SimulationScenario>, spec: &ScenarioSpec) {
        let refs = Refs {
            trace_config_map: steps::config_map_ref(spec).map(|(n, _)| n.to_string()),
            profile_names: steps::profile_gpus(spec)
                .into_iter()
                .flat_map(steps::hardware_profile_names)
                .collect(),
            import: spec.import.clone(),
        };
        self.0.lock().expect("lock").insert(ObjectRef::from_obj(obj), refs);
    }

    /// Forgets `key` (its spec no longer parses, or it is gone).
    pub fn forget(&self, key: &Key) {
        self.0.lock().expect("lock").remove(key);
    }

    /// The scenarios in `store` whose references satisfy `f`; entries of objects gone are dropped.
    fn select(
        &self,
        store: &Store<Watched<SimulationScenario>>,
        f: impl Fn(&Key, &Refs) -> bool,
    ) -> Vec<Key> {
        let mut index = self.0.lock().expect("lock");
        index.retain(|k, _| store.get(k).is_some());
        index.iter().filter(|(k, r)| f(k, r)).map(|(k, _)| k.clone()).collect()
    }

    /// The scenarios a change of ConfigMap `ns/name` concerns (trace or imported config).
    pub fn config_map(
        &self,
        store: &Store<Watched<SimulationScenario>>,
        ns: Option<String>,
        name: &str,
    ) -> Vec<Key> {
        self.select(store, |k, r| {
            k.namespace == ns
                && (r.trace_config_map.as_deref() == Some(name)
                    || r.import.as_ref().is_some_and(|i| import_refs::concerns_import(i, "ConfigMap", name)))
        })
    }

    /// The scenarios a change of HardwareProfile `name` concerns: those naming it, and every importing
    /// one (an imported model server may name the GPU; its inputs hash skips the run when it is not theirs).
    pub fn hardware_profile(&self, store: &Store<Watched<SimulationScenario>>, name: &str) -> Vec<Key> {
        self.select(store, |_, r| r.import.is_some() || r.profile_names.iter().any(|n| n == name))
    }

    /// The scenarios of `ns` whose imported inputs the object `kind`/`name` may change.
    pub fn imported(
        &self,
        store: &Store<Watched<SimulationScenario>>,
        ns: Option<String>,
        kind: &str,
        name: &str,
    ) -> Vec<Key> {
        self.select(store, |k, r| {
            k.namespace == ns
                && r.import.as_ref().is_some_and(|i| import_refs::concerns_import(i, kind, name))
        })
    }

    /// Number of indexed scenarios.
    pub fn len(&self) -> usize {
        self.0.lock().expect("lock").len()
    }

    /// True when no scenario is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
