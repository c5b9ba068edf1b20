//! The `blis` commands, one file each. A command gets its parsed arguments, calls the libraries,
//! prints, and returns `Result<ExitCode, CliError>`; [`CliError::exit_code`] is the one mapping of
//! failures to exit statuses.

/// `print!` for command output: a reader that went away (`blis run | head`) ends the process
/// quietly, as Unix tools do, instead of a panic.
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!($($t)*)) };
}

/// `println!` for command output, with [`out!`]'s handling of a closed pipe.
macro_rules! outln {
    () => { $crate::cli::write_stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($t)*))) };
}

mod bench;
mod calibrate;
mod compare;
mod controller;
mod gate;
mod optimize;
mod progress;
mod run;
mod scenarios;
mod sweep;
mod sweep_shard;
mod validate;

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use blis_sim::error::InvalidInput;
use blis_sim::scenario::RunError;

#[derive(Parser)]
#[command(
    name = "blis",
    version,
    about = "BLIS twin: predict llm-d / vLLM serving latency, throughput and cost without GPUs"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate every SimulationScenario in the given files and print the predictions.
    #[command(long_about = run::HELP)]
    Run(run::Args),
    /// Simulate every scenario and check its gates and class SLOs: exit 0 when all pass, 1 when any
    /// fails, 2 on invalid input.
    #[command(long_about = gate::HELP)]
    Gate(gate::Args),
    /// Measure simulator speed and memory on built-in benchmark scenarios (medians over repeats).
    Bench(bench::Args),
    /// Simulate real-measurement experiments (shared validation format) and score the predictions.
    Validate(validate::Args),
    /// Fit a GPU profile's latency coefficients to measured experiments and write a profile file.
    Calibrate(calibrate::Args),
    /// Print the CustomResourceDefinitions (SimulationScenario, SimulationSweep, HardwareProfile) as YAML.
    Crd,
    /// Search admission / routing / autoscaling knobs of a scenario for the best policy (PolicySearch file).
    #[command(long_about = optimize::HELP)]
    Optimize(optimize::Args),
    /// Run the Kubernetes controller: reconcile SimulationScenarios into predictions in their status.
    Controller(controller::Args),
    /// Compare candidate scenarios side by side (predictions, gates, cost; best per column marked),
    /// simulated from files or read from the scenarios' status in a namespace.
    Compare(compare::Args),
    /// Rank candidate configurations: expand a SimulationSweep, simulate in parallel, rank, Pareto set.
    #[command(long_about = sweep::HELP)]
    Sweep(sweep::Args),
    /// Simulate one shard of a SimulationSweep read from the cluster and write its result into a
    /// ConfigMap (what the pods of a fanned-out sweep's Indexed Job run).
    SweepShard(sweep_shard::Args),
}

/// Runs the parsed command.
pub fn execute(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run(a) => run::exec(a),
        Command::Gate(a) => gate::exec(a),
        Command::Bench(a) => bench::exec(a),
        Command::Validate(a) => validate::exec(a),
        Command::Calibrate(a) => calibrate::exec(a),
        Command::Optimize(a) => optimize::exec(a),
        Command::Crd => {
            out!(
                "{}",
                blis_k8s::api::crds_yaml().map_err(|e| failed(format!("cannot encode the CRDs: {e}")))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Controller(a) => controller::exec(a),
        Command::Compare(a) => compare::exec(a),
        Command::Sweep(a) => sweep::exec(a),
        Command::SweepShard(a) => sweep_shard::exec(a),
    }
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The input is wrong (exit 2): one line naming the field and the fix.
    Invalid(InvalidInput),
    /// Anything else (exit 1).
    Failed(String),
}

impl CliError {
    /// The exit status of this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Invalid(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::from(1),
        }
    }

    /// The same failure of the named scenario (or file): invalid fields are prefixed with it.
    fn of(name: &str, e: RunError) -> Self {
        match e {
            RunError::Invalid(e) if name.is_empty() => CliError::Invalid(e),
            RunError::Invalid(e) => {
                CliError::Invalid(InvalidInput { field: format!("{name}: {}", e.field), ..e })
            }
            RunError::Sim(e) if name.is_empty() => failed(e),
            RunError::Sim(e) => failed(format!("{name}: {e}")),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Invalid(e) => e.fmt(f),
            CliError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<InvalidInput> for CliError {
    fn from(e: InvalidInput) -> Self {
        CliError::Invalid(e)
    }
}

impl From<RunError> for CliError {
    fn from(e: RunError) -> Self {
        CliError::of("", e)
    }
}

/// A failure that is not the input's fault.
fn failed(message: impl fmt::Display) -> CliError {
    CliError::Failed(message.to_string())
}

/// Output format of the commands that print a table or JSON.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

/// `--summary`: how a run summarises its completed requests.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SummaryArg {
    /// Keep every request's record: exact percentiles.
    Exact,
    /// Counters and quantile sketches: memory independent of the number of requests, percentiles
    /// within 0.5 %.
    Streaming,
}

impl From<SummaryArg> for blis_sim::metrics::SummaryMode {
    fn from(a: SummaryArg) -> Self {
        match a {
            SummaryArg::Exact => Self::Exact,
            SummaryArg::Streaming => Self::Streaming,
        }
    }
}

/// Prints `v` as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| failed(format!("cannot encode JSON: {e}")))?;
    outln!("{s}");
    Ok(())
}

/// Writes command output to stdout. A closed pipe exits 0 (the reader has what it wanted); any
/// other write error exits 1 with the cause, since output the user asked for was lost.
pub(crate) fn write_stdout(args: fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Writes `text` to `path` and says so on stderr.
fn write_file(path: &Path, text: impl AsRef<[u8]>) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// A multi-threaded async runtime for the commands that talk to a cluster.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start the async runtime: {e}")))
}

/// The scenario spec as YAML, for report pages that show their inputs.
fn spec_yaml(spec: &blis_sim::scenario::ScenarioSpec) -> Result<String, CliError> {
    serde_yaml::to_string(spec).map_err(|e| failed(format!("cannot encode the scenario: {e}")))
}
