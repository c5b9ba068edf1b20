//! Policy search end to end: determinism for a seed and budget, constraint handling, and the emitted
//! scenario reproducing the reported numbers (through the library and through `blis run`).

use std::path::{Path, PathBuf};

use blis_import::manifest::parse_scenarios;
use blis_import::run_spec;
use blis_plan::optimize::{self, emit, evaluate, spec::LoadedSearch, SearchResult};

const SEARCH: &str = "examples/admission-case-study/search.yaml";

/// The case study, shortened so a debug build searches it in seconds.
fn small_case() -> LoadedSearch {
    let mut l = optimize::spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(SEARCH)).unwrap();
    l.base.workload.duration_seconds = Some(8.0);
    let s = &mut l.manifest.spec;
    s.budget = Some(16);
    s.population = Some(8);
    s.tuning_seeds = vec![1];
    s.check_seeds = vec![101, 102];
    l
}

fn search(l: &LoadedSearch) -> SearchResult {
    let mut calls = Vec::new();
    let r = optimize::run("case", &l.manifest.spec, &l.base, None, &mut |d, t| calls.push((d, t))).unwrap();
    assert_eq!(calls, vec![(8, 16), (16, 16)], "progress after each generation");
    r
}

#[test]
fn the_search_is_deterministic_and_its_winner_round_trips() {
    let l = small_case();
    let a = search(&l);
    let b = search(&l);
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert_eq!(a.evaluations, 16);
    assert_eq!(a.best_by_evaluation.len(), 16);
    // The winner is the best feasible candidate: the running best never gets worse and ends at the
    // winner's objective on the tuning seeds.
    let bests: Vec<f64> = a.best_by_evaluation.iter().flatten().copied().collect();
    assert!(bests.windows(2).all(|w| w[1] <= w[0]), "{bests:?}");
    if a.winner_feasible {
        assert_eq!(bests.last().copied(), Some(a.winner_tuning.mean(0)));
        assert!(a.constraints.iter().all(|c| c.tuning_met), "{:?}", a.constraints);
    }
    // Every knob of the winner is in the emitted spec, and the emitted YAML reproduces every
    // held-out number exactly.
    let yaml = emit::scenario_yaml("case-optimized", &a.winner_spec);
    let (docs, _) = parse_scenarios(&yaml).unwrap();
    assert_eq!(docs[0].spec, a.winner_spec);
    let v = serde_json::to_value(&docs[0].spec).unwrap();
    for k in &a.knobs {
        let got = blis_sim::scenario::patch::get_path(&v, &k.path).and_then(|x| x.as_f64());
        assert_eq!(got, Some(k.value), "{}", k.path);
    }
    let check = &a.winner_check;
    for (k, &seed) in check.seeds.iter().enumerate() {
        let mut s = docs[0].spec.clone();
        s.seed = Some(seed);
        let summary = serde_json::to_value(run_spec("case", &s, None).unwrap().summary).unwrap();
        for (m, name) in check.metrics.iter().enumerate() {
            let (got, want) = (evaluate::metric(&summary, name), check.values[m][k]);
            assert!(got == want || (got.is_nan() && want.is_nan()), "seed {seed} {name}: {got} != {want}");
        }
    }
    // Another search seed explores other candidates.
    let mut other = small_case();
    other.manifest.spec.seed = Some(99);
    let c = search(&other);
    assert_ne!(serde_json::to_string(&a.knobs).unwrap(), serde_json::to_string(&c.knobs).unwrap());
}

#[test]
fn an_unreachable_constraint_leaves_no_feasible_winner() {
    let mut l = small_case();
    l.manifest.spec.constraints[0].min = Some(50.0); // 50 x the baseline goodput
    let r = search(&l);
    assert!(!r.winner_feasible);
    assert_eq!(r.feasible_candidates, 0);
    assert!(r.best_by_evaluation.iter().all(Option::is_none));
    assert!(!r.constraints[0].tuning_met);
    assert!(emit::table(&r).contains("NO candidate met the constraints"));
}

use crate::common::blis;

#[test]
fn cli_writes_a_scenario_that_blis_run_reproduces() {
    let tmp = crate::common::temp_dir("blis-optimize-test-");
    let dir = tmp.path();
    // A small copy of the case study next to its baseline.
    let base_text = std::fs::read_to_string("examples/admission-case-study/baseline.yaml").unwrap();
    std::fs::write(dir.join("baseline.yaml"), base_text.replace("durationSeconds: 30", "durationSeconds: 6"))
        .unwrap();
    let search_text = std::fs::read_to_string(SEARCH).unwrap();
    let file: PathBuf = dir.join("search.yaml");
    std::fs::write(&file, search_text.replace("checkSeeds: [101, 102, 103, 104, 105]", "checkSeeds: [101]"))
        .unwrap();
    let out = dir.join("out");
    let o = blis(&[
        "optimize",
        file.to_str().unwrap(),
        "--budget",
        "8",
        "--output",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["evaluations"], 8);
    for f in ["scenario.yaml", "router.yaml"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let run =
        blis(&["run", "--output", "json", "--seed", "101", out.join("scenario.yaml").to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let summary = &summary["scenarios"][0];
    let check = &r["winner_check"];
    for (m, name) in check["metrics"].as_array().unwrap().iter().enumerate() {
        let want = check["values"][m][0].as_f64();
        let got = evaluate::metric(summary, name.as_str().unwrap());
        assert_eq!(want, Some(got).filter(|g| g.is_finite()), "{name}");
    }
    // A bad budget is invalid input: exit 2 naming the field.
    let bad = blis(&["optimize", file.to_str().unwrap(), "--budget", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("spec.budget"));
}
