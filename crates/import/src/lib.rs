//! BLIS twin's importers: everything that reads a format the simulator core does not know. Scenario
//! manifests and the files they name ([`manifest`], [`load`]), llm-d's own objects ([`llmd`]) and
//! endpoint-picker configs ([`epp`]), and the shared validation experiments ([`experiment`]).
//! The core then sees only typed scenario specs ([`resolve`] hands it the parsed router pipeline).

pub mod cluster;
pub mod epp;
pub mod experiment;
pub mod folder;
pub mod llmd;
pub mod load;
pub mod manifest;
pub mod profile;
pub mod render;
pub mod yaml_error;

pub use llmd::{apply, Objects};

use std::sync::Arc;

use blis_sim::error::InvalidInput;
use blis_sim::scenario::{Outcome, Resolved, RunError, ScenarioSpec};
use blis_sim::workload::Trace;

/// Validates and resolves a scenario spec, expanding its workload profile ([`profile::expand`]) and
/// reading its endpoint-picker config with [`epp::parse`]: what every caller above the simulator
/// core uses.
pub fn resolve(name: &str, spec: &ScenarioSpec) -> Result<Resolved, InvalidInput> {
    if spec.workload.profile.is_none() {
        return blis_sim::scenario::resolve(name, spec, epp::parse);
    }
    let mut expanded = spec.clone();
    let notes = profile::expand(&mut expanded)?;
    let mut r = blis_sim::scenario::resolve(name, &expanded, epp::parse)?;
    r.warnings.extend(notes);
    Ok(r)
}

/// Resolves and simulates one spec with default options and no observer: what sweeps, the
/// optimiser and gates do for each candidate. Errors name fields under `spec.`.
pub fn run_spec(name: &str, spec: &ScenarioSpec, trace: Option<Arc<Trace>>) -> Result<Outcome, RunError> {
    let r = resolve(name, spec)?;
    blis_sim::scenario::simulate(
        &r,
        trace,
        &blis_sim::sim::SimOptions::default(),
        &mut blis_sim::sim::NoObserver,
    )
}

/// A path into the shared validation data and manifests beside the project, for tests (which fail
/// loudly when it is missing).
#[cfg(test)]
pub(crate) fn shared(rel: &str) -> String {
    format!("{}/../../../shared/{rel}", env!("CARGO_MANIFEST_DIR"))
}
