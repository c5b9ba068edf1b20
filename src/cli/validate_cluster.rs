//! `blis validate` on cluster experiments: converts the published cluster benchmarks (or reads
//! ClusterExperiment files), simulates every stack and prints its per-stage table and scores, with
//! the cluster ratchet.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::{CliError, Output};
use blis_plan::calibrate::ratchet;
use blis_plan::cluster;

/// The options of `blis validate` that apply to clusters.
pub struct ClusterArgs<'a> {
    /// Output format.
    pub output: Output,
    /// Ratchet file to check (or write).
    pub ratchet: Option<&'a Path>,
    /// Write the ratchet instead of checking it.
    pub update_ratchet: bool,
    /// Worker threads.
    pub threads: usize,
    /// Manifests folder for a benchmark folder that holds none.
    pub deployment: Option<&'a Path>,
    /// Folder to write one HTML page per experiment into.
    pub report: Option<&'a Path>,
    /// Calibration profile file whose coefficients replace the built-in ones of its GPU.
    pub profile: Option<&'a Path>,
}

/// What the cluster ratchet file says it records.
const RATCHET_COMMENT: &str = "median APE % per cluster stack (below / at or above the measured knee) reached by `blis validate validation/cluster`; hack/test.sh fails if any gets worse. Regenerate with `blis validate validation/cluster --ratchet data/cluster-ratchet.json --update-ratchet`.";

pub fn exec(paths: &[PathBuf], args: &ClusterArgs<'_>) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let exps = blis_import::cluster::load_paths(paths, args.deployment)?;
    let profile = args.profile.map(blis_import::load::load_calibration).transpose()?;
    let report = cluster::validate(&exps, profile.as_ref(), args.threads);
    let wall = started.elapsed().as_secs_f64();
    match args.output {
        Output::Json => super::print_json(&blis_report::cluster::to_json(&report))?,
        Output::Table => out!("{}", blis_report::cluster::to_table(&report)),
    }
    eprintln!("{} cluster stacks in {wall:.2} s wall", report.stacks.len());
    if let Some(dir) = args.report {
        std::fs::create_dir_all(dir)
            .map_err(|e| super::failed(format!("cannot create {}: {e}", dir.display())))?;
        for (file, html) in blis_report::cluster::to_html(&report) {
            super::write_file(&dir.join(file), html)?;
        }
    }
    let Some(path) = args.ratchet else { return Ok(ExitCode::SUCCESS) };
    let current = cluster::ratchet_medians(&report);
    let text = ratchet::to_text_with(RATCHET_COMMENT, &current);
    super::validate::apply_ratchet(path, &current, args.update_ratchet, &text)
}
