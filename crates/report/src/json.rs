//! The JSON shape of `blis run --output json`: stable snake_case names, latencies in milliseconds.

use std::sync::Arc;

use serde::Serialize;

use blis_sim::metrics::{SimOutput, Summary};
use blis_sim::scenario::{self, Inputs, Resolved, RunError, ScenarioSpec};
use blis_sim::sim::{NoObserver, SimOptions};
use blis_sim::workload::Trace;

/// One scenario's prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// Seed used.
    pub seed: u64,
    /// Resolved inputs.
    pub inputs: Inputs,
    /// What was derived or approximated.
    pub warnings: Vec<String>,
    /// The prediction.
    #[serde(flatten)]
    pub summary: Summary,
}

impl ScenarioReport {
    /// Resolves and simulates `spec` once more for a report page that draws a chosen run in full (a
    /// sweep's winner, an optimised policy and its baseline): the report and the raw records.
    pub fn simulate(
        name: &str,
        spec: &ScenarioSpec,
        trace: Option<Arc<Trace>>,
    ) -> Result<(Self, SimOutput), RunError> {
        let resolved = blis_import::resolve(name, spec)?;
        let o = scenario::simulate(&resolved, trace, &SimOptions::default(), &mut NoObserver)?;
        Ok((Self::new(&resolved, o.summary), o.output))
    }

    /// Builds the report of a finished run.
    pub fn new(r: &Resolved, summary: Summary) -> Self {
        Self {
            name: r.name.clone(),
            seed: r.seed,
            inputs: Inputs::of(r),
            warnings: r.warnings.clone(),
            summary,
        }
    }
}
