//! The Scenario: one typed, validated description of deployment + workload + SLOs, shared by the
//! CLI, sweeps and the controller; and running it.

pub mod budget;
pub mod cluster;
pub mod inputs;
pub mod limits;
pub mod patch;
pub mod resolve;
pub mod serving;
pub mod spec;

use std::sync::Arc;

pub use inputs::Inputs;
pub use resolve::{resolve, EppReader, Resolved};
pub use spec::ScenarioSpec;

use crate::error::InvalidInput;
use crate::metrics::{summarize, SimOutput, Summary, SummaryContext};
use crate::sim::{self, Observer, SimError, SimOptions};
use crate::workload::WorkloadGen;

/// Why a scenario could not produce a prediction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// The input is wrong; the user must change it.
    #[error("{0}")]
    Invalid(#[from] InvalidInput),
    /// The run stopped (cancelled, limit, or an internal invariant).
    #[error("{0}")]
    Sim(#[from] SimError),
}

/// A finished run: the raw records and their summary.
pub struct Outcome {
    /// Per-request records and per-replica totals.
    pub output: SimOutput,
    /// The summary.
    pub summary: Summary,
}

/// Simulates a resolved scenario. `trace_text` is the CSV content when the workload replays a trace
/// from a file (the shell reads it; the core does no I/O).
pub fn simulate(
    resolved: &Resolved,
    trace_text: Option<Arc<str>>,
    opts: &SimOptions,
    observer: &mut dyn Observer,
) -> Result<Outcome, RunError> {
    // Checked before anything is allocated: one manifest cannot exhaust the machine's memory.
    budget::Budget::default().check(&budget::estimate(resolved, trace_text.as_deref()))?;
    let mut workload = WorkloadGen::new(&resolved.workload, resolved.seed, trace_text)
        .map_err(|e| e.under("spec.workload"))?;
    let output = sim::run(&resolved.cluster(), &mut workload, opts, observer)?;
    let summary = summarize(
        &output,
        &SummaryContext {
            class_names: &resolved.class_names,
            slos: &resolved.slos,
            gpus: resolved.gpus(),
            dollars_per_gpu_hour: resolved.gpu.dollars_per_gpu_hour,
        },
    );
    Ok(Outcome { output, summary })
}

/// Validates and simulates one spec with default options and no observer: what sweeps, the
/// optimiser and gates do for each candidate. Errors name fields under `spec.`.
pub fn run_spec(
    name: &str,
    spec: &ScenarioSpec,
    trace_text: Option<Arc<str>>,
    read_epp: EppReader,
) -> Result<Outcome, RunError> {
    let resolved = resolve(name, spec, read_epp)?;
    simulate(&resolved, trace_text, &SimOptions::default(), &mut sim::NoObserver)
}
