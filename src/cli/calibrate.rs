//! `blis calibrate`: fit a GPU profile's latency coefficients to measured experiments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::{failed, write_file, CliError};
use blis_import::{experiment, load};
use blis_plan::calibrate::{self, fit};
use blis_sim::catalog::calibration::{PARAM_NAMES, STEP_FITTED};
use blis_sim::catalog::gpu;
use blis_sim::error::InvalidInput;

#[derive(clap::Args)]
pub struct Args {
    /// Experiment YAML files or folders; only `train-*` and `extra-*` experiments on --gpu are used.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// GPU profile to fit.
    #[arg(long)]
    gpu: String,
    /// Write the profile here (YAML).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compare the fit with this profile file and fail if a coefficient differs by more than 1e-3
    /// (relative): checks that shipped coefficients are reproducible.
    #[arg(long)]
    check: Option<PathBuf>,
    /// Profile whose step-fitted coefficients (prefillAttention, longContextKv, longPromptCompute:
    /// fitted to long-context cluster steps, invisible in single-replica means) the result carries
    /// (default: the built-in profile of --gpu; without one, prefillAttention = prefillCompute and the
    /// long-context ones 0).
    #[arg(long, value_name = "FILE")]
    hold_from: Option<PathBuf>,
    /// Outer iterations.
    #[arg(long)]
    iterations: Option<usize>,
    /// Worker threads (default: the machine's cores, at most 4).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn exec(args: Args) -> Result<ExitCode, CliError> {
    let exps = experiment::load_paths(&args.paths)?;
    let gpu = gpu::builtin(&args.gpu).ok_or_else(|| {
        InvalidInput::new("--gpu", format!("unknown GPU {:?}", args.gpu), "use a built-in GPU profile name")
    })?;
    let fit_set: Vec<_> = exps
        .into_iter()
        .filter(|e| e.is_training() && gpu::builtin(&e.gpu).is_some_and(|g| g.name == gpu.name))
        .collect();
    if fit_set.is_empty() {
        return Err(InvalidInput::new(
            "PATH",
            format!("no train-* or extra-* experiment on {}", gpu.name),
            "give experiment files measured on that GPU (eval-* files are never used for fitting)",
        )
        .into());
    }
    let mut opts = fit::FitOptions::default();
    if let Some(i) = args.iterations {
        opts.iterations = i.max(1);
    }
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    eprintln!(
        "fitting {} on {} experiments: {}",
        gpu.name,
        fit_set.len(),
        fit_set.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", ")
    );
    let held = match &args.hold_from {
        Some(f) => Some(load::load_calibration(f)?),
        None => gpu.calibration.clone().filter(|c| c.transferred_from.is_none()),
    };
    if let Some(h) = held {
        let held = fit::step_fitted_of(&h.coefficients);
        let named: Vec<String> = STEP_FITTED.iter().zip(held).map(|(n, v)| format!("{n} {v}")).collect();
        eprintln!("carrying the step-fitted coefficients: {}", named.join(", "));
        opts.step_fitted = Some(held);
    }
    let started = Instant::now();
    let result = fit::fit(&fit_set, &gpu.name, &opts)?;
    for it in &result.iterations {
        outln!(
            "iteration {:>2}: loss {:.5}  median APE on fit set: e2e mean {:.2} %, ttft mean {:.2} %",
            it.iteration,
            it.loss,
            it.median_e2e_ape,
            it.median_ttft_ape
        );
    }
    // Fit quality at the final point.
    let cal = result.calibration.clone();
    match calibrate::validate(&fit_set, Some(&cal), opts.threads) {
        Ok(r) => {
            let f = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2}"));
            let m = &r.all.median;
            outln!(
                "fit quality (median APE % over {} experiments): e2e mean {} p90 {} p99 {}, ttft mean {} p90 {} p99 {}, itl mean {}",
                r.all.count, f(m[0]), f(m[1]), f(m[2]), f(m[3]), f(m[4]), f(m[5]), f(m[6])
            );
        }
        Err(e) => eprintln!("warning: could not score the fit: {e}"),
    }
    outln!("coefficients:");
    for (name, v) in PARAM_NAMES.iter().zip(cal.coefficients.to_vec()) {
        outln!("  {name:<26} {v}");
    }
    eprintln!("fit took {:.1} s", started.elapsed().as_secs_f64());
    let text = serde_yaml::to_string(&cal).map_err(|e| failed(format!("cannot encode the profile: {e}")))?;
    if let Some(out) = &args.out {
        let header = format!(
            "# Written by `blis calibrate --gpu {}` from train-* and extra-* experiments only.\n",
            gpu.name
        );
        write_file(out, header + &text)?;
    }
    if let Some(check) = &args.check {
        let shipped = load::load_calibration(check)?;
        let (d, name) = fit::max_relative_difference(&shipped.coefficients, &cal.coefficients, 1e-3);
        if d > 1e-3 {
            eprintln!("check FAILED: {name} differs by {:.3} % from {}", d * 100.0, check.display());
            return Ok(ExitCode::from(1));
        }
        eprintln!(
            "check: the fit reproduces {} (largest relative difference {d:.2e}, {name})",
            check.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
