//! `blis compare`: candidate scenarios side by side, from files or from a namespace's status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::{failed, print_json, runtime, CliError};
use blis_import::load;
use blis_report::compare::{self, Candidate};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompareOutput {
    Table,
    Json,
    Markdown,
}

#[derive(clap::Args)]
pub struct Args {
    /// Candidate scenario files or folders (each scenario found is one candidate).
    #[arg(required_unless_present = "namespace", conflicts_with = "namespace")]
    paths: Vec<PathBuf>,
    /// Read the candidates' predictions from the status of the SimulationScenarios in this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Output format (`markdown` renders as a table in pull-request comments).
    #[arg(long, short, value_enum, default_value = "table")]
    output: CompareOutput,
}

pub fn exec(args: Args) -> Result<ExitCode, CliError> {
    let candidates = match &args.namespace {
        Some(ns) => runtime()?
            .block_on(async { blis_k8s::compare::candidates(kube::Client::try_default().await?, ns).await })
            .map_err(|e| failed(format!("cannot read SimulationScenarios in namespace {ns}: {e}")))?,
        None => {
            // Each path is one candidate's set of manifests: its references resolve within it.
            let mut out = Vec::new();
            for p in &args.paths {
                for l in load::load_paths(std::slice::from_ref(p))? {
                    let name = &l.manifest.metadata.name;
                    out.push(
                        Candidate::simulate(name, &l.manifest.spec, l.trace.clone())
                            .map_err(|e| CliError::of(name, e))?,
                    );
                }
            }
            out
        }
    };
    let rows = compare::rows(&candidates);
    match args.output {
        CompareOutput::Table => out!("{}", compare::table(&rows)),
        CompareOutput::Markdown => out!("{}", compare::markdown(&rows)),
        CompareOutput::Json => print_json(&serde_json::json!({ "candidates": rows }))?,
    }
    Ok(ExitCode::SUCCESS)
}
