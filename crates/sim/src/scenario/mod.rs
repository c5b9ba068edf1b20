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
pub mod vllm_defaults;

use std::sync::Arc;

pub use inputs::Inputs;
pub use resolve::{resolve, EppReadOptions, EppReader, Resolved};
pub use spec::ScenarioSpec;

use crate::error::InvalidInput;
use crate::metrics::{stream, summarize, SimOutput, StreamSummary, Summary, SummaryContext, SummaryMode};
use crate::sim::{self, Observer, SimError, SimOptions};
use crate::workload::{source, Trace, WorkloadGen};

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

/// Simulates a resolved scenario. `trace` is the trace read by the caller when the workload replays
/// one from a file (the shell reads and parses it; the core does no I/O). The summary is exact or
/// streamed as `opts.summary` says, else as the scenario says.
pub fn simulate(
    resolved: &Resolved,
    trace: Option<Arc<Trace>>,
    opts: &SimOptions,
    observer: &mut dyn Observer,
) -> Result<Outcome, RunError> {
    let (output, workload) = run(resolved, trace, opts, observer)?;
    let summary = summarize(
        &output,
        &SummaryContext {
            class_names: &resolved.class_names,
            slos: &resolved.slos,
            gpus: resolved.gpus(),
            dollars_per_gpu_hour: resolved.gpu.dollars_per_gpu_hour,
            stages: workload.stages(),
            client_timeout_us: workload.client_timeout_us(),
            helper_threads: opts.helper_threads,
        },
    );
    Ok(Outcome { output, summary })
}

/// [`simulate`] without the summary: the records, for callers that score them themselves
/// (validation and calibration against measurements).
pub fn simulate_records(
    resolved: &Resolved,
    trace: Option<Arc<Trace>>,
    opts: &SimOptions,
    observer: &mut dyn Observer,
) -> Result<SimOutput, RunError> {
    Ok(run(resolved, trace, opts, observer)?.0)
}

/// Runs of fewer requests than this use no helper thread: one would cost more to start than it saves.
const HELPER_MIN_REQUESTS: f64 = 2000.0;

/// The engine on `src`, keeping every record, or handing them to `stream`: on a second thread when
/// `behind` (the summary is the same, see [`stream::summarised_behind`]).
fn run_engine(
    cluster: &sim::ClusterConfig,
    src: &mut impl source::RequestSource,
    opts: &SimOptions,
    observer: &mut dyn Observer,
    stream: Option<&mut StreamSummary>,
    behind: bool,
) -> Result<SimOutput, SimError> {
    match stream {
        Some(st) if behind => {
            stream::summarised_behind(st, |sink| sim::run(cluster, src, opts, observer, Some(sink)))
        }
        Some(st) => sim::run(cluster, src, opts, observer, Some(st)),
        None => sim::run(cluster, src, opts, observer, None),
    }
}

/// Runs the simulation: its records and the workload that fed it (for the summary's stages).
fn run(
    resolved: &Resolved,
    trace: Option<Arc<Trace>>,
    opts: &SimOptions,
    observer: &mut dyn Observer,
) -> Result<(SimOutput, WorkloadGen), RunError> {
    // Checked before anything is allocated: one manifest cannot exhaust the machine's memory.
    let estimate = budget::estimate(resolved, trace.as_deref());
    budget::Budget::default().check(&estimate)?;
    let mut workload =
        WorkloadGen::new(&resolved.workload, resolved.seed, trace).map_err(|e| e.under("spec.workload"))?;
    let mut stream = (opts.summary.unwrap_or(resolved.summary) == SummaryMode::Streaming)
        .then(|| StreamSummary::new(&resolved.slos));
    let cluster = resolved.cluster();
    let helpers = opts.helper_threads && estimate.requests >= HELPER_MIN_REQUESTS;
    let mut output = if helpers && workload.worth_generating_ahead() {
        source::prefetched(&mut workload, cluster.horizon_us, |src| {
            run_engine(&cluster, src, opts, observer, stream.as_mut(), helpers)
        })
    } else {
        run_engine(&cluster, &mut workload, opts, observer, stream.as_mut(), helpers)
    }?;
    output.stream = stream;
    if output.stream.is_some() && (!workload.stages().is_empty() || workload.client_timeout_us().is_some()) {
        // Streamed counters are not split by stage nor filtered by the client's timeout (yet).
        return Err(InvalidInput::new(
            "spec.simulation.summary",
            "streaming does not keep per-stage results or apply the client's request timeout",
            "use the exact summary (the default) for staged workloads or a client with timeoutSeconds",
        )
        .into());
    }
    Ok((output, workload))
}
