//! Calibration against real measurements: loading the shared experiment format, simulating each
//! experiment, scoring the predictions (`blis validate`) and fitting a GPU profile's latency
//! coefficients (`blis calibrate`).

pub mod fit;
pub mod ratchet;
pub mod score;

use std::sync::Arc;
use std::time::Instant;

pub use score::{Metrics, Report, Scored};

use blis_import::experiment::Experiment;
use blis_sim::catalog::gpu;
use blis_sim::catalog::Calibration;
use blis_sim::latency::LatencyModel;
use blis_sim::metrics::SimOutput;
use blis_sim::scenario::spec::HardwareSpec;
use blis_sim::scenario::{self, RunError, ScenarioSpec};
use blis_sim::sim::{NoObserver, SimOptions};

/// A simulated experiment.
pub struct Simulated {
    /// Raw records.
    pub output: SimOutput,
    /// Derived knobs and modelling choices.
    pub derived: Vec<String>,
    /// Warnings from resolution.
    pub warnings: Vec<String>,
    /// Wall time, s.
    pub wall_s: f64,
}

/// Simulates experiment `e` with the built-in coefficients, or `calibration` when given; `latency`
/// replaces the step-time model entirely (the fit's recording wrapper).
pub fn simulate(
    e: &Experiment,
    calibration: Option<&Calibration>,
    latency: Option<Arc<dyn LatencyModel>>,
    opts: &SimOptions,
) -> Result<Simulated, RunError> {
    let started = Instant::now();
    let built = e.scenario(calibration)?;
    let mut resolved = blis_import::resolve(&e.id, &built.spec)?;
    if let Some(l) = latency {
        resolved.set_latency(l);
    }
    let output = scenario::simulate_records(&resolved, built.trace.clone(), opts, &mut NoObserver)?;
    Ok(Simulated {
        output,
        derived: built.derived,
        warnings: resolved.warnings,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// Runs `f` over `items` on up to `threads` worker threads, keeping the input order of the results.
pub fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let results = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    slots.into_iter().map(|r| r.expect("every item was processed")).collect()
}

/// Worker threads to use: the machine's parallelism, at most 4.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// Puts `profile`'s coefficients on every GPU of `spec` the profile was made for (the top-level hardware
/// and each pool's own, as an inline profile or the built-in one of its name); other GPUs keep their own.
pub fn apply_profile(spec: &mut ScenarioSpec, profile: &Calibration) {
    apply_to_hardware(&mut spec.hardware, profile);
    for pool in spec.pools.iter_mut().flatten() {
        if let Some(h) = pool.hardware.as_mut() {
            apply_to_hardware(h, profile);
        }
    }
}

fn apply_to_hardware(hardware: &mut HardwareSpec, profile: &Calibration) {
    let base = hardware.profile.clone().or_else(|| gpu::builtin(&hardware.gpu));
    if let Some(mut g) = base.filter(|g| g.name == profile.gpu) {
        g.calibration = Some(profile.clone());
        hardware.profile = Some(g);
    }
}

/// Simulates and scores every experiment, the ones on `profile`'s GPU with its coefficients (when
/// given) and the others with the built-in ones; rows keep the order of `exps`.
pub fn validate_with_profile(
    exps: &[Experiment],
    profile: Option<&Calibration>,
    threads: usize,
) -> Result<Report, RunError> {
    let Some(p) = profile else { return validate(exps, None, threads) };
    let (mine, others): (Vec<_>, Vec<_>) =
        exps.iter().cloned().partition(|e| gpu::builtin(&e.gpu).is_some_and(|g| g.name == p.gpu));
    let mut rows = validate(&mine, Some(p), threads)?.rows;
    rows.extend(validate(&others, None, threads)?.rows);
    let order: Vec<&str> = exps.iter().map(|e| e.id.as_str()).collect();
    rows.sort_by_key(|r| order.iter().position(|id| *id == r.id));
    Ok(Report::new(rows))
}

/// Simulates and scores every experiment.
pub fn validate(
    exps: &[Experiment],
    calibration: Option<&Calibration>,
    threads: usize,
) -> Result<Report, RunError> {
    let opts = SimOptions::sharing(threads.min(exps.len()));
    let rows = par_map(exps, threads, |e| -> Result<Scored, RunError> {
        let sim = simulate(e, calibration, None, &opts)?;
        let predicted = score::predicted(&sim.output);
        let measured = score::measured(e);
        let reference = e.reference().map(|r| score::from_summary(r, None));
        Ok(Scored {
            id: e.id.clone(),
            model: e.model.clone(),
            gpu: e.gpu.clone(),
            set: if e.is_training() { "fit" } else { "eval" },
            ape: score::ape(&predicted, &measured),
            reference_ape: reference.as_ref().map(|r| score::ape(r, &measured)),
            predicted,
            measured,
            reference,
            derived: sim.derived,
            warnings: sim.warnings,
            wall_s: sim.wall_s,
        })
    });
    Ok(Report::new(rows.into_iter().collect::<Result<Vec<_>, _>>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P/D stacks built from manifests give each pool its own hardware: a profile must reach those too.
    #[test]
    fn a_profile_reaches_every_pool_on_its_gpu_and_no_other() {
        let mut spec: ScenarioSpec = serde_yaml::from_str(
            "workload: {classes: [{name: c}]}\nhardware: {gpu: A100-SXM-80GB}\npools:\n- {name: p, hardware: {gpu: A100-SXM-80GB}}\n- {name: d, hardware: {gpu: H100-SXM-80GB}}\n- {name: e}\n",
        )
        .unwrap();
        let mut profile = gpu::builtin("A100-SXM-80GB").unwrap().calibration.unwrap();
        profile.coefficients.before_first_token_us += 1.0;
        apply_profile(&mut spec, &profile);
        let cal = |h: &HardwareSpec| h.profile.as_ref().and_then(|g| g.calibration.clone());
        assert_eq!(cal(&spec.hardware), Some(profile.clone()));
        let pools = spec.pools.as_ref().unwrap();
        assert_eq!(cal(pools[0].hardware.as_ref().unwrap()), Some(profile.clone()));
        assert!(pools[1].hardware.as_ref().unwrap().profile.is_none(), "an H100 pool keeps its own");
        assert!(pools[2].hardware.is_none(), "a pool without hardware inherits the top level");
    }
}
