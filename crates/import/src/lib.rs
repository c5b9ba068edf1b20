//! BLIS twin's importers: everything that reads a format the simulator core does not know. Scenario
//! manifests and the files they name ([`manifest`], [`load`]), llm-d's own objects ([`llmd`]) and
//! endpoint-picker configs ([`epp`]), and the shared validation experiments ([`experiment`]).
//! The core then sees only typed scenario specs ([`resolve`] hands it the parsed router pipeline).

pub mod epp;
pub mod experiment;
pub mod folder;
pub mod llmd;
pub mod load;
pub mod manifest;
pub mod render;

pub use llmd::{apply, Objects};

use std::sync::Arc;

use blis_sim::error::InvalidInput;
use blis_sim::scenario::{Outcome, Resolved, RunError, ScenarioSpec};

/// Validates and resolves a scenario spec, reading its endpoint-picker config with [`epp::parse`]:
/// what every caller above the simulator core uses.
pub fn resolve(name: &str, spec: &ScenarioSpec) -> Result<Resolved, InvalidInput> {
    blis_sim::scenario::resolve(name, spec, epp::parse)
}

/// Resolves and simulates one spec with default options and no observer: what sweeps, the
/// optimiser and gates do for each candidate. Errors name fields under `spec.`.
pub fn run_spec(name: &str, spec: &ScenarioSpec, trace_text: Option<Arc<str>>) -> Result<Outcome, RunError> {
    blis_sim::scenario::run_spec(name, spec, trace_text, epp::parse)
}

/// A path into the shared validation data and manifests beside the project, for tests (which fail
/// loudly when it is missing).
#[cfg(test)]
pub(crate) fn shared(rel: &str) -> String {
    format!("{}/../../../shared/{rel}", env!("CARGO_MANIFEST_DIR"))
}
