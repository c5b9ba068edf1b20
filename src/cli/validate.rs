//! `blis validate`: replay real measured experiments and score the predictions, with the ratchet.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::validate_cluster::ClusterArgs;
use super::{failed, CliError, Output};
use blis_import::{experiment, load};
use blis_plan::calibrate::{self, ratchet};

#[derive(clap::Args)]
pub struct Args {
    /// Experiment YAML files or folders holding them: single-replica experiments, or cluster
    /// experiments (kind: ClusterExperiment files, folders of validation/cluster/, or their parent).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
    /// Profile file written by `blis calibrate` (overrides the built-in coefficients of its GPU).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Check the medians against a ratchet file (fail if any is worse by more than 0.01 points).
    #[arg(long)]
    ratchet: Option<PathBuf>,
    /// Write the current medians to the ratchet file instead of checking.
    #[arg(long, requires = "ratchet")]
    update_ratchet: bool,
    /// Worker threads (default: the machine's cores, at most 4).
    #[arg(long)]
    threads: Option<usize>,
    /// Manifests folder of a cluster benchmark folder that holds none (an llm-d guide's results).
    #[arg(long)]
    deployment: Option<PathBuf>,
    /// Cluster experiments only: write one self-contained HTML page per experiment into this folder
    /// (output tok/s, TTFT mean and p90 against the request rate, predicted beside measured).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    if blis_import::cluster::any_cluster(&args.paths) {
        return super::validate_cluster::exec(
            &args.paths,
            &ClusterArgs {
                output: args.output,
                ratchet: args.ratchet.as_deref(),
                update_ratchet: args.update_ratchet,
                threads: args.threads.unwrap_or_else(calibrate::default_threads),
                deployment: args.deployment.as_deref(),
                report: args.report.as_deref(),
                profile: args.profile.as_deref(),
            },
        );
    }
    if args.report.is_some() {
        return Err(blis_sim::error::InvalidInput::new(
            "--report",
            "applies to cluster experiments only",
            "give ClusterExperiment files or validation/cluster folders, or drop --report",
        )
        .into());
    }
    let exps = experiment::load_paths(&args.paths)?;
    let profile = args.profile.as_deref().map(load::load_calibration).transpose()?;
    let threads = args.threads.unwrap_or_else(calibrate::default_threads);
    let report = calibrate::validate_with_profile(&exps, profile.as_ref(), threads)?;
    let wall = started.elapsed().as_secs_f64();
    match args.output {
        Output::Json => {
            let mut doc = report.to_json();
            doc["wall_seconds"] = serde_json::json!((wall * 100.0).round() / 100.0);
            super::print_json(&doc)?;
        }
        Output::Table => {
            out!("{}", report.to_table());
            outln!("\n{} experiments in {wall:.2} s wall", report.rows.len());
        }
    }
    let Some(path) = &args.ratchet else { return Ok(ExitCode::SUCCESS) };
    apply_ratchet(
        path,
        &ratchet::medians(&report),
        args.update_ratchet,
        &ratchet::to_text(&ratchet::medians(&report)),
    )
}

/// Writes the current medians to the ratchet file (`update`), or checks them against it: exit 1
/// when any got worse.
pub(super) fn apply_ratchet(
    path: &std::path::Path,
    current: &std::collections::BTreeMap<String, f64>,
    update: bool,
    text_to_write: &str,
) -> Result<ExitCode, CliError> {
    if update {
        std::fs::write(path, text_to_write)
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("ratchet {} updated", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| failed(format!("cannot read ratchet {}: {e}", path.display())))?;
    match ratchet::check(&text, current) {
        Ok(lines) => {
            for l in lines {
                eprintln!("{l}");
            }
            eprintln!("ratchet: no median got worse");
            Ok(ExitCode::SUCCESS)
        }
        Err(worse) => {
            for l in worse {
                eprintln!("ratchet FAILED: {l}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
