//! `blis gate`: simulate scenarios and check their gates and class SLOs for CI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::scenarios::{load_and_resolve, simulate_all, Overrides};
use super::{print_json, CliError};
use blis_report::gate::{GateReport, ScenarioGates};

pub const HELP: &str = "\
Simulate every SimulationScenario in the given files or folders (the manifests the cluster would
get) and check each one's spec.gates and class SLOs with the controller's rules. Every limit is one
case: `PASS`/`FAIL scenario gate[class]: metric predicted V, limit <= L`. Exit status: 0 when every
case passes, 1 when any fails (whatever the scenario's enforcement), 2 on invalid input. `--output
junit` writes JUnit XML (a testsuite per scenario, a testcase per gate) for CI test reports.";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GateOutput {
    Text,
    Json,
    Junit,
}

#[derive(clap::Args)]
pub struct Args {
    /// Scenario files or folders (YAML with SimulationScenario documents).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    output: GateOutput,
    /// Override every scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Profile file written by `blis calibrate`: its coefficients replace the built-in ones of its GPU.
    #[arg(long)]
    profile: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<ExitCode, CliError> {
    let over = Overrides { seed: args.seed, profile: args.profile.as_deref(), ..Overrides::default() };
    let (loaded, resolved) = load_and_resolve(&args.paths, false, &over)?;
    let outcomes = simulate_all(&loaded, &resolved, false)?;
    let scenarios = loaded
        .iter()
        .zip(&outcomes)
        .map(|(l, o)| {
            let file = l.file.display().to_string();
            ScenarioGates::evaluate(
                &l.manifest.metadata.name,
                &file,
                l.manifest.spec.gates.as_ref(),
                &o.summary,
            )
        })
        .collect();
    let report = GateReport::new(scenarios);
    match args.output {
        GateOutput::Text => out!("{}", report.to_text()),
        GateOutput::Json => print_json(&report)?,
        GateOutput::Junit => out!("{}", report.to_junit()),
    }
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
