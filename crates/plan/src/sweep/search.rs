//! Searching the request rate: the highest rate a configuration sustains under its gates
//! (saturation), found by k-section of a bracket with `k` rates simulated in parallel per round.
//! Assumes feasibility falls with the rate (common random numbers keep it close to monotone).

use blis_sim::error::InvalidInput;
use blis_sim::metrics::Summary;
use blis_sim::scenario::patch::{self, Edit};
use blis_sim::scenario::{RunError, ScenarioSpec};

use super::eval::failed_gates;

/// Evaluates specs, results in input order (e.g. [`super::eval::evaluate`]).
pub type Evaluator<'a> = dyn Fn(&[ScenarioSpec]) -> Vec<Result<Summary, RunError>> + Sync + 'a;

/// Where to search and how finely.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSearch {
    /// Path of the rate in the spec.
    pub rate_path: String,
    /// Lowest rate tried.
    pub min_rate: f64,
    /// Highest rate tried.
    pub max_rate: f64,
    /// Stop when `hi - lo <= tolerance * lo`.
    pub tolerance: f64,
    /// Rates simulated per round (>= 1; 1 is bisection).
    pub points: usize,
}

/// What a saturation search found.
#[derive(Debug, Clone)]
pub struct Saturation {
    /// Highest rate found to pass the gates (None: even `min_rate` fails).
    pub max_rate: Option<f64>,
    /// The run at that rate.
    pub summary: Option<Summary>,
    /// The spec at that rate (the base at `min_rate` when none passes).
    pub spec: ScenarioSpec,
    /// Failed gates at `min_rate` when it fails.
    pub failed: Vec<String>,
    /// Simulations run.
    pub runs: usize,
}

/// `spec` with the rate set to `rate`.
pub fn at_rate(spec: &ScenarioSpec, path: &str, rate: f64) -> Result<ScenarioSpec, InvalidInput> {
    patch::apply(spec, &[Edit::Set { path: path.to_string(), value: rate.into() }], "spec.search.ratePath")
}

type Probe = (ScenarioSpec, Result<Summary, RunError>);

fn passes(p: &Probe) -> bool {
    matches!(&p.1, Ok(s) if failed_gates(&p.0, s).is_empty())
}

/// The highest rate in `[min_rate, max_rate]` under which `spec` passes its gates, to `tolerance`.
pub fn saturation(spec: &ScenarioSpec, s: &RateSearch, eval: &Evaluator) -> Result<Saturation, InvalidInput> {
    let mut runs = 0;
    let mut probe = |rates: &[f64]| -> Result<Vec<Probe>, InvalidInput> {
        let specs = rates.iter().map(|r| at_rate(spec, &s.rate_path, *r)).collect::<Result<Vec<_>, _>>()?;
        runs += specs.len();
        let out = eval(&specs);
        Ok(specs.into_iter().zip(out).collect())
    };
    let mut ends = probe(&[s.min_rate, s.max_rate])?;
    let top = ends.pop().expect("two probes");
    let bottom = ends.pop().expect("two probes");
    if !passes(&bottom) {
        let failed = match &bottom.1 {
            Ok(sum) => failed_gates(&bottom.0, sum),
            Err(e) => vec![format!("cannot run: {e}")],
        };
        return Ok(Saturation { max_rate: None, summary: None, spec: bottom.0, failed, runs });
    }
    let (mut lo, mut hi) = (s.min_rate, s.max_rate);
    let mut best = bottom;
    if passes(&top) {
        lo = hi;
        best = top;
    }
    let k = s.points.max(1);
    while hi - lo > s.tolerance * lo {
        let rates: Vec<f64> = (1..=k).map(|j| lo + (hi - lo) * j as f64 / (k + 1) as f64).collect();
        let probes = probe(&rates)?;
        let first_fail = probes.iter().position(|p| !passes(p));
        let last_pass = first_fail.map_or(k, |j| j).checked_sub(1);
        if let Some(j) = first_fail {
            hi = rates[j];
        }
        if let Some(j) = last_pass {
            lo = rates[j];
            best = probes.into_iter().nth(j).expect("index in range");
        }
    }
    Ok(Saturation { max_rate: Some(lo), summary: best.1.ok(), spec: best.0, failed: Vec::new(), runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::eval::{evaluate, progress_bar, RunControl};
    use crate::sweep::parse_sweep;

    #[test]
    fn saturation_search_agrees_with_a_fine_manual_rate_sweep() {
        let (_, mut sweep) = parse_sweep(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/sweeps/saturation.yaml"
        )))
        .unwrap();
        sweep.base.workload.max_requests = Some(600);
        let base = sweep.base;
        let bar = progress_bar(0, "", false);
        let eval = |specs: &[ScenarioSpec]| evaluate(specs, None, 2, &bar, &RunControl::default());
        let search = RateSearch {
            rate_path: super::super::spec::DEFAULT_RATE_PATH.into(),
            min_rate: 2.0,
            max_rate: 40.0,
            tolerance: 0.01,
            points: 2,
        };
        let found = saturation(&base, &search, &eval).unwrap();
        let found_rate = found.max_rate.expect("2 req/s passes");
        assert!(found.runs < 30, "{} runs", found.runs);
        // Manual sweep: every 0.25 req/s; the last rate before the first failure.
        let rates: Vec<f64> = (0..=152).map(|k| 2.0 + 0.25 * f64::from(k)).collect();
        let specs: Vec<ScenarioSpec> =
            rates.iter().map(|r| at_rate(&base, &search.rate_path, *r).unwrap()).collect();
        let runs = eval(&specs);
        let first_fail = specs
            .iter()
            .zip(&runs)
            .position(|(sp, r)| !passes(&(sp.clone(), r.clone())))
            .expect("40 req/s overloads one replica");
        let manual = rates[first_fail.checked_sub(1).expect("2 req/s passes")];
        eprintln!(
            "saturation search {found_rate:.3} req/s in {} runs; manual sweep {manual} req/s",
            found.runs
        );
        assert!((found_rate - manual).abs() <= 0.05 * manual, "search {found_rate} vs manual {manual}");
    }

    #[test]
    fn a_bad_rate_path_is_invalid_input() {
        let (_, sweep) = parse_sweep(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/sweeps/saturation.yaml"
        )))
        .unwrap();
        let search = RateSearch {
            rate_path: "workload.arrival.ratePerSec".into(),
            min_rate: 1.0,
            max_rate: 2.0,
            tolerance: 0.01,
            points: 1,
        };
        let e = saturation(&sweep.base, &search, &|_| Vec::new()).unwrap_err();
        assert!(e.field.starts_with("spec.search.ratePath"), "{e}");
    }
}
