//! Reading, overriding, resolving and simulating the scenarios of `blis run` and `blis gate`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::progress::Progress;
use super::CliError;
use blis_import::load::{self, LoadedScenario};
use blis_sim::error::InvalidInput;
use blis_sim::scenario::{self, Outcome, Resolved};
use blis_sim::sim::SimOptions;
use blis_sim::workload::WorkloadSpec;

/// The quickstart scenario, embedded so `blis run` works with no file at all.
const QUICKSTART: &str = include_str!("../../examples/quickstart.yaml");

/// What the command line changes in every scenario it reads.
#[derive(Default)]
pub struct Overrides<'a> {
    /// Seed of every scenario.
    pub seed: Option<u64>,
    /// Calibration profile file (`blis calibrate`'s output).
    pub profile: Option<&'a Path>,
    /// Workload profile file (inference-perf config or benchmark_serving parameters): it replaces
    /// every scenario's workload (as `spec.workload.profile`).
    pub workload_profile: Option<&'a Path>,
}

/// Reads every scenario of `files` (and the embedded quickstart first, when asked), applies the
/// command line's overrides, and validates all of them before anything is simulated.
pub fn load_and_resolve(
    files: &[PathBuf],
    embedded_quickstart: bool,
    over: &Overrides<'_>,
) -> Result<(Vec<LoadedScenario>, Vec<Resolved>), CliError> {
    let mut loaded = Vec::new();
    if embedded_quickstart {
        loaded.extend(load::load_text(Path::new("examples/quickstart.yaml"), QUICKSTART)?.0);
    }
    loaded.extend(load::load_paths(files)?);
    if let Some(path) = over.workload_profile {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InvalidInput::new(
                path.display().to_string(),
                format!("cannot be read: {e}"),
                "give the workload profile file",
            )
        })?;
        let p = blis_import::profile::from_file_text(&text, &path.display().to_string())?;
        for l in &mut loaded {
            l.manifest.spec.workload = WorkloadSpec::of_profile(p.clone());
        }
    }
    let (seed, profile) = (over.seed, over.profile.map(load::load_calibration).transpose()?);
    let mut resolved = Vec::with_capacity(loaded.len());
    for l in &loaded {
        let name = &l.manifest.metadata.name;
        let mut spec = l.manifest.spec.clone();
        if let Some(s) = seed {
            spec.seed = Some(s);
        }
        if let Some(p) = &profile {
            blis_plan::calibrate::apply_profile(&mut spec, p);
        }
        let mut r = blis_import::resolve(name, &spec).map_err(|mut e| {
            // A GPU the importer assumed (the manifests name none) is the likeliest wrong input.
            if let Some(gpu) = l.import_sources.iter().filter(|(k, _)| k.ends_with("gpu")).find_map(|(_, v)| v.strip_prefix("default: ")) {
                if e.problem.contains("fit") {
                    e.fix = format!("{}; the GPU was assumed, not read from the manifests: {gpu}; set spec.hardware.gpu to the GPU deployed", e.fix);
                }
            }
            if name.is_empty() {
                e
            } else {
                InvalidInput { field: format!("{name}: {}", e.field), ..e }
            }
        })?;
        r.warnings.extend(l.import_warnings.iter().cloned());
        r.sources.extend(l.import_sources.iter().map(|(k, v)| (k.clone(), v.clone())));
        resolved.push(r);
    }
    Ok((loaded, resolved))
}

/// Simulates each resolved scenario in turn (a progress bar when `interactive`, one wall-time line
/// each on stderr).
pub fn simulate_all(
    loaded: &[LoadedScenario],
    resolved: &[Resolved],
    interactive: bool,
) -> Result<Vec<Outcome>, CliError> {
    let mut outcomes = Vec::with_capacity(resolved.len());
    for (r, l) in resolved.iter().zip(loaded) {
        let started = Instant::now();
        let total_us = r.horizon_us.or(r.workload.duration_seconds.map(|d| (d * 1e6) as i64));
        let mut progress = Progress::new(interactive, &r.name, total_us);
        let outcome = scenario::simulate(r, l.trace.clone(), &SimOptions::default(), &mut progress);
        drop(progress);
        let o = outcome.map_err(|e| CliError::of(&r.name, e))?;
        eprintln!(
            "simulated {} in {:.3} s wall ({} requests, {} events)",
            r.name,
            started.elapsed().as_secs_f64(),
            o.output.generated,
            o.output.events
        );
        outcomes.push(o);
    }
    Ok(outcomes)
}
