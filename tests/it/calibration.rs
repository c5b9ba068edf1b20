//! Calibration: the shipped profile, the experiment loader, scoring and a reduced fit. The full
//! validation run (ratchet) and the full re-fit (reproducing the shipped coefficients) run in release
//! mode from `hack/test.sh`.

use std::path::{Path, PathBuf};

use blis_plan::calibrate::{self, fit};
use blis_sim::catalog::gpu;
use blis_sim::catalog::Calibration;
use blis_sim::latency::LatencyKind;

const SHIPPED: &str = include_str!("../../crates/sim/data/profiles/H100-SXM-80GB.yaml");

fn validation_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/validation/experiments");
    p.is_dir().then_some(p)
}

#[test]
fn shipped_profile_is_fitted_on_train_and_extra_only() {
    let c: Calibration = serde_yaml::from_str(SHIPPED).expect("profile parses");
    c.coefficients.validate().unwrap();
    assert_eq!(c.gpu, "H100-SXM-80GB");
    assert!(c.transferred_from.is_none());
    let prov = c.provenance.expect("provenance recorded");
    let ids = prov["experiments"].as_array().expect("experiment list");
    assert!(!ids.is_empty());
    for id in ids {
        let id = id.as_str().unwrap();
        assert!(id.starts_with("train-") || id.starts_with("extra-"), "fitted on {id}");
    }
}

#[test]
fn other_gpus_get_transferred_coefficients_and_a_warning() {
    let h100 = gpu::builtin("H100").unwrap();
    assert!(h100.calibration.as_ref().unwrap().transferred_from.is_none());
    for name in ["A100", "L40S", "H200", "B200", "MI300X"] {
        let g = gpu::builtin(name).unwrap();
        let c = g.calibration.expect("transferred calibration");
        assert_eq!(c.transferred_from.as_deref(), Some("H100-SXM-80GB"), "{name}");
        c.coefficients.validate().unwrap();
    }
    // Resolution picks the calibrated model by default and says the coefficients were transferred.
    let yaml = "apiVersion: twin.blis.dev/v1alpha1
kind: SimulationScenario
metadata: {name: t}
spec:
  model: {name: llama-3.1-8b-instruct}
  hardware: {gpu: A100-SXM-80GB}
  workload:
    maxRequests: 10
    arrival: {process: poisson, ratePerSecond: 1}
    classes:
    - {name: c, inputTokens: {distribution: fixed, value: 100}, outputTokens: {distribution: fixed, value: 10}}
";
    let (docs, _) = blis_import::manifest::parse_scenarios(yaml).unwrap();
    let r = blis_import::resolve("t", &docs[0].spec).unwrap();
    assert_eq!(r.latency_kind, LatencyKind::Calibrated);
    // The A100 profile has perLayerUs refitted on A100 cluster data: the warning says that coefficient
    // is measured on the A100 (and on what), and only the others are transferred.
    let note = r.warnings.iter().find(|w| w.contains("A100-SXM-80GB")).expect("a calibration warning");
    assert!(!note.contains("no measurements"), "{note}");
    assert!(note.contains("perLayerUs fitted on A100 cluster data (") && note.contains("exp-2"), "{note}");
    assert!(
        note.contains("other coefficients transferred from H100-SXM-80GB through datasheet ratios"),
        "{note}"
    );
}

#[test]
fn a100_profile_is_the_h100_transfer_except_its_refitted_coefficients() {
    let shipped = gpu::shipped_calibrations();
    assert_eq!(shipped.len(), 2, "every shipped profile parses");
    let h100 = shipped.iter().find(|c| c.gpu == "H100-SXM-80GB").expect("H100 profile");
    let a100 = gpu::builtin("A100").unwrap().calibration.expect("A100 profile");
    assert_eq!(a100.transferred_from.as_deref(), Some("H100-SXM-80GB"));
    let refitted: Vec<&str> = a100.refitted.iter().map(|r| r.coefficient.as_str()).collect();
    assert!(!refitted.is_empty());
    let transfer = h100.transferred(&gpu::builtin("H100").unwrap(), &gpu::builtin("A100").unwrap());
    let names = blis_sim::catalog::calibration::PARAM_NAMES;
    for ((name, got), want) in
        names.iter().zip(a100.coefficients.to_vec()).zip(transfer.coefficients.to_vec())
    {
        if refitted.contains(name) {
            continue;
        }
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{name}: {got} vs the transfer's {want}");
    }
    // A refined transfer is not a source for other GPUs: the A100-40GB still transfers from the H100.
    let a40 = gpu::builtin("a100-40gb").unwrap().calibration.unwrap();
    assert_eq!(a40.coefficients.per_layer_us, h100.coefficients.per_layer_us);
}

#[test]
fn reduced_fit_is_deterministic_and_improves_its_loss() {
    let Some(dir) = validation_dir() else {
        eprintln!("skipped: no validation folder");
        return;
    };
    // Two small, representative experiments (dense TP1 trace replay, dense TP4 generated workload).
    let files: Vec<PathBuf> =
        ["train-20260217-162547.yaml", "train-60.yaml"].iter().map(|f| dir.join(f)).collect();
    let exps = blis_import::experiment::load_paths(&files).unwrap();
    assert!(exps.iter().all(|e| e.is_training()));
    let opts = fit::FitOptions { iterations: 2, threads: 2, ..fit::FitOptions::default() };
    let a = fit::fit(&exps, "H100-SXM-80GB", &opts).unwrap();
    let b = fit::fit(&exps, "H100-SXM-80GB", &opts).unwrap();
    assert_eq!(a.calibration, b.calibration, "the fit is deterministic");
    let first = a.iterations.first().unwrap().loss;
    let last = a.iterations.iter().map(|i| i.loss).fold(f64::INFINITY, f64::min);
    assert!(last < first, "loss {first} -> {last}");
}

#[test]
fn validate_scores_experiments_the_readme_way() {
    let Some(dir) = validation_dir() else {
        eprintln!("skipped: no validation folder");
        return;
    };
    let exps =
        blis_import::experiment::load_paths(&[dir.join("eval-16.yaml"), dir.join("eval-02.yaml")]).unwrap();
    let r = calibrate::validate(&exps, None, 2).unwrap();
    let again = calibrate::validate(&exps, None, 1).unwrap();
    assert_eq!(r.to_json(), again.to_json(), "same numbers whatever the thread count");
    for row in &r.rows {
        assert_eq!(row.set, "eval");
        // ITL is the ratio of means, for the measurement as for the prediction.
        let m = row.measured;
        let e = &exps.iter().find(|e| e.id == row.id).unwrap();
        if let Some(o) = e.measured_output_tokens() {
            let itl = (m[0].unwrap() - m[3].unwrap()) / (o - 1.0);
            assert!((itl - m[6].unwrap()).abs() / itl < 0.01, "{}: {itl} vs {:?}", row.id, m[6]);
        }
        let p = row.predicted;
        let itl = (p[0].unwrap() - p[3].unwrap()) / (f64::from(e.workload.shared_prefix.output_tokens) - 1.0);
        assert!((itl - p[6].unwrap()).abs() < 1e-9, "{}: predicted ITL is the ratio of means", row.id);
        assert!(row.reference_ape.is_some());
        assert!(row.ape[0].unwrap() < 25.0, "{}: E2E mean APE {:?}", row.id, row.ape[0]);
    }
    let doc = r.to_json();
    assert!(doc["experiments"][0]["predicted"]["e2e_ms"]["p90"].is_number());
    assert!(doc["summary"]["median"]["itl_ms"]["mean"].is_number());
    let traced = doc["experiments"].as_array().unwrap().iter().find(|x| x["id"] == "eval-02").unwrap();
    assert!(traced["derived"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d.as_str().unwrap().contains("trace replay")));
}
