//! `blis validate` on the llm-d cluster benchmarks of `../shared/validation/cluster/`: the converters
//! against the published files (stacks, stages, files, measured figures), the scores, determinism,
//! and the errors for a missing deployment, a malformed table and a foreign CSV column.

use std::path::{Path, PathBuf};

use blis_import::cluster::{self, guide_table, lmbench, SourceKind};

fn shared(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/validation/cluster").join(rel);
    assert!(p.exists(), "{} is missing: these tests need the shared validation data", p.display());
    p
}

fn guide() -> PathBuf {
    shared("llmd-guide-optimized-baseline-qwen3-32b")
}

fn manifests() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/llm-d-manifests/2026-06-v0.9-optimized-baseline");
    assert!(p.is_dir(), "{} is missing", p.display());
    p
}

use crate::common::{blis, markers};

#[test]
fn the_folders_are_told_apart() {
    assert_eq!(cluster::kind_of(&guide()), Some(SourceKind::GuideTable));
    assert_eq!(cluster::kind_of(&shared("llmd-benchmark-2025-exp-2")), Some(SourceKind::Lmbench));
    assert_eq!(cluster::kind_of(&shared("llmd-benchmark-2025-exp-7")), Some(SourceKind::ServingRuns));
    assert_eq!(cluster::sources_in(&shared("")).len(), 3, "the parent holds all three");
    let single = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/validation/experiments");
    assert!(!cluster::any_cluster(&[single]), "single-replica experiments stay single-replica");
}

#[test]
fn the_guide_table_gives_sixteen_stages_per_stack_with_the_readme_figures() {
    let exp = guide_table::convert(&guide(), Some(&manifests())).unwrap();
    let names: Vec<&str> = exp.stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["k8s", "llm-d"]);
    for s in &exp.stacks {
        assert_eq!(s.runs.len(), 1, "one ladder per stack");
        let pts = &s.runs[0].points;
        assert_eq!(pts.len(), 16);
        let stages: Vec<u32> = pts.iter().map(|p| p.stage.unwrap()).collect();
        assert_eq!(stages, (1..=16).collect::<Vec<u32>>(), "the warm-up (stage 0) is not in the table");
        assert!(s.runs[0].workload.profile.as_ref().unwrap().inference_perf.is_some());
    }
    let rr = &exp.stacks[0].runs[0].points;
    assert_eq!(rr[3].rate, 20.0);
    assert_eq!(rr[3].measured.ttft_mean_ms, Some(18103.0));
    assert_eq!(rr[3].measured.ttft_p90_ms, Some(35344.0));
    assert_eq!(rr[3].measured.output_tokens_per_s, Some(6205.0));
    let llmd = &exp.stacks[1].runs[0].points;
    assert_eq!(llmd[15].rate, 60.0);
    assert_eq!(llmd[15].measured.ttft_mean_ms, Some(154.0));
    assert_eq!(llmd[15].measured.output_tokens_per_s, Some(17064.0));
    assert_eq!(
        exp.stacks[0].patch["router"]["policy"], "roundRobin",
        "the guide says its Service stack round-robins"
    );
    assert!(exp.stacks[1].patch.is_null(), "the llm-d stack keeps the imported endpoint picker");
}

#[test]
fn lmbench_files_match_the_derived_summary() {
    let folder = shared("llmd-benchmark-2025-exp-2");
    let exp = lmbench::convert(&folder).unwrap();
    assert_eq!(exp.stacks.len(), 4, "2 deployments x 2 scenarios");
    let files: usize = exp.stacks.iter().map(|s| s.runs.len()).sum();
    let derived = std::fs::read_to_string(folder.join("DERIVED-per-file-summary.csv")).unwrap();
    let rows: Vec<Vec<&str>> = derived.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(files, rows.len(), "one run per CSV file");
    let mut censored = 0;
    for r in &rows {
        let stack = exp.stacks.iter().find(|s| s.name == format!("{} {}", r[1], r[2])).unwrap();
        let run = stack.runs.iter().find(|x| x.label == r[14]).unwrap_or_else(|| panic!("{}", r[14]));
        let p = &run.points[0];
        let f = p.measured;
        let close = |got: f64, want: &str, what: &str| {
            let w: f64 = want.parse().unwrap();
            assert!((got - w).abs() <= 0.0051 * w.abs().max(1e-3), "{} {what}: {got} vs {w}", r[14]);
        };
        assert_eq!(f.n, Some(r[4].parse().unwrap()));
        close(f.ttft_mean_ms.unwrap() / 1e3, r[8], "ttft mean");
        // The derived file takes the nearest rank; both sides here interpolate linearly (the
        // twin's convention), which differs by less than one order-statistic gap: small once a
        // file has a few hundred requests (the censored files have 55-160).
        let p90: f64 = r[10].parse().unwrap();
        if f.n.unwrap() >= 200 {
            assert!((f.ttft_p90_ms.unwrap() / 1e3 - p90).abs() <= 0.03 * p90, "{} ttft p90", r[14]);
        }
        close(f.itl_mean_ms.unwrap() / 1e3, r[11], "itl mean");
        close(f.output_tokens_per_s.unwrap(), r[13], "output tok/s");
        assert!((p.rate - r[3].parse::<f64>().unwrap()).abs() < 1e-9);
        if p.unscored.is_some() {
            censored += 1;
            assert!(
                r[1].starts_with("llm-d") && r[2] == "sharegpt",
                "only llm-d's sharegpt files are censored"
            );
            assert!(p.rate >= 2.0, "{}: the report scores llm-d sharegpt up to 1.5 QPS", r[14]);
            assert!(p.censored, "{}: an unscored LMBench file is a censored one", r[14]);
            // The load that was sent: the other stack's file of the same scenario and rate.
            let full = exp.stacks.iter().find(|s| s.name == format!("vllm-70b-2replicas {}", r[2])).unwrap();
            let sent = full.runs.iter().find(|x| x.points[0].rate == p.rate).unwrap();
            let (mine, theirs) = (run.trace.as_ref().unwrap(), sent.trace.as_ref().unwrap());
            assert!(std::sync::Arc::ptr_eq(mine, theirs), "{}: replays every request sent", r[14]);
            assert!(sent.points[0].measured.n > f.n);
        } else {
            let trace = run.trace.as_ref().unwrap();
            assert_eq!(trace.rows() as u64, f.n.unwrap(), "every logged request replayed");
        }
    }
    assert_eq!(censored, 17, "llm-d sharegpt 2 .. 10 QPS");
}

/// exp-2's ShareGPT replays finish some requests faster than a cold prefill of their prompt allows
/// (cache hits on prompts that extend earlier ones); the converter gives every replay of those stacks
/// the warm prefixes their lowest-rate file shows, and short_input (75-token prompts) none.
#[test]
fn lmbench_sharegpt_stacks_get_the_warm_prefixes_of_their_lowest_rate_file() {
    let exp = lmbench::convert(&shared("llmd-benchmark-2025-exp-2")).unwrap();
    for s in &exp.stacks {
        let warm: Vec<_> = s.runs.iter().map(|r| r.workload.trace.as_ref().unwrap().warm_prefix).collect();
        assert!(warm.windows(2).all(|w| w[0] == w[1]), "{}: one estimate for every file", s.name);
        if s.name.ends_with("short_input") {
            assert_eq!(warm[0], None, "{}", s.name);
            continue;
        }
        let w = warm[0].unwrap_or_else(|| panic!("{}: no warm prefix", s.name));
        assert!((0.2..0.6).contains(&w.share) && (0.4..0.8).contains(&w.fraction), "{}: {w:?}", s.name);
        let lowest = s.runs.iter().map(|r| r.points[0].rate).fold(f64::MAX, f64::min);
        assert!(s.notes.iter().any(|n| n.contains("warm prefixes") && n.contains(&format!("QPS {lowest}"))));
    }
}

#[test]
fn benchmark_serving_runs_are_grouped_by_gpu_and_stack() {
    let exp = cluster::serving_runs::convert(&shared("llmd-benchmark-2025-exp-7")).unwrap();
    let names: Vec<&str> = exp.stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "A100 llm-d-1p1d",
            "A100 llm-d-2p1d",
            "A100 vllm-2replicas",
            "A100 vllm-3replicas",
            "H100 llm-d-1p1d",
            "H100 llm-d-2p1d",
            "H100 vllm-2replicas",
            "H100 vllm-3replicas"
        ]
    );
    let h = exp.stacks.iter().find(|s| s.name == "H100 llm-d-1p1d").unwrap();
    let p = &h.runs[0].points[0];
    assert_eq!(p.rate, 3.6);
    // Means over the three result files (report section 5.2: TTFT 252 ms, ITL 17.9 ms).
    assert!((p.measured.ttft_mean_ms.unwrap() - 252.0).abs() < 1.0, "{:?}", p.measured);
    assert!((p.measured.itl_mean_ms.unwrap() - 17.9).abs() < 0.1);
    let bs = h.runs[0].workload.profile.as_ref().unwrap().benchmark_serving.as_ref().unwrap();
    assert_eq!(bs["random_input_len"], 8000.0);
    assert_eq!(bs["burstiness"], 100.0);
    assert_eq!(bs["num_prompts"], 200.0);
    let three = exp.stacks.iter().find(|s| s.name == "A100 vllm-3replicas").unwrap();
    assert_eq!(three.patch["replicas"], 3);
    // benchmark_serving opens a connection per request, so kube-proxy's per-connection pick is per request.
    assert_eq!(three.patch["router"]["policy"], "random");
}

#[test]
fn validate_prints_every_stack_and_is_reproducible_byte_for_byte() {
    let a = blis(&["validate", "validation/cluster", "--output", "json"]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = blis(&["validate", "validation/cluster", "--output", "json", "--threads", "1"]);
    assert_eq!(a.stdout, b.stdout, "same bytes whatever the thread count");
    let doc: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let stacks = doc["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 2 + 4 + 8);
    let rr = stacks.iter().find(|s| s["stack"] == "k8s").unwrap();
    assert!(rr["not_scored"].is_null(), "{}", rr["not_scored"]);
    assert_eq!(rr["scores"]["knee_measured"], 20.0);
    for s in stacks {
        let unscored = s["not_scored"].as_str();
        let predicted = s["points"].as_array().unwrap().iter().all(|p| !p["predicted"].is_null());
        assert!(unscored.is_some() || predicted, "{}: scored but a point has no prediction", s["stack"]);
    }
    let t = blis(&["validate", "validation/cluster/llmd-benchmark-2025-exp-7.yaml"]);
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(text.contains("== llmd-benchmark-2025-exp-7 / H100 vllm-2replicas"), "{text}");
    assert!(text.contains("knee (TTFT mean > 5x the lowest rate's)"));
}

#[test]
fn the_html_report_plots_every_stage_predicted_and_measured_and_is_reproducible() {
    let tmp = crate::common::temp_dir("blis-cluster-html-");
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let exp = "validation/cluster/llmd-benchmark-2025-exp-2.yaml";
    let out = blis(&["validate", exp, "--output", "json", "--report", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = dir.join("llmd-benchmark-2025-exp-2.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stacks = doc["stacks"].as_array().unwrap();
    assert_eq!(html.matches("<h2 ").count(), stacks.len(), "a section per stack");
    // Expected markers, from the JSON report: a predicted point per stage and chart, a measured one per
    // scored stage, a hollow one per unscored stage.
    let (mut pred, mut meas, mut hollow) = (Vec::new(), Vec::new(), Vec::new());
    for s in stacks {
        for p in s["points"].as_array().unwrap() {
            let rate = p["rate"].as_f64().unwrap();
            for key in ["output_tokens_per_s", "ttft_mean_ms", "ttft_p90_ms"] {
                pred.push((rate, p["predicted"][key].as_f64().unwrap()));
                let m = (rate, p["measured"][key].as_f64().unwrap());
                if p["unscored"].is_null() {
                    meas.push(m)
                } else {
                    hollow.push(m)
                }
            }
        }
    }
    let sorted = |mut v: Vec<(f64, f64)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        v
    };
    // The page may round in the last bit of a double (its figures come from the stages, the JSON's
    // from the same sums in another order): equal to 1e-9, relatively.
    let same = |a: Vec<(f64, f64)>, b: Vec<(f64, f64)>, what: &str| {
        let (a, b) = (sorted(a), sorted(b));
        assert_eq!(a.len(), b.len(), "{what}: {a:?} vs {b:?}");
        for (x, y) in a.iter().zip(&b) {
            let close = |p: f64, q: f64| (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1.0);
            assert!(close(x.0, y.0) && close(x.1, y.1), "{what}: {x:?} vs {y:?}");
        }
    };
    assert!(meas.len() > 50 && !hollow.is_empty());
    same(markers(&html, "pred"), pred, "predicted values read back");
    same(markers(&html, "meas"), meas, "measured values read back");
    same(markers(&html, "meas-unscored"), hollow, "unscored values read back");
    let knees = stacks.iter().filter(|s| !s["scores"]["knee_measured"].is_null()).count();
    assert!(knees > 0 && html.matches("measured knee (").count() >= 3 * knees, "knees marked on every chart");
    let again = blis(&["validate", exp, "--report", d, "--threads", "1"]);
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&page).unwrap(), html, "same bytes on a rerun");
    let single = blis(&["validate", "../shared/validation/experiments", "--report", d]);
    assert_eq!(single.status.code(), Some(2), "--report is for cluster experiments");
    assert!(String::from_utf8_lossy(&single.stderr).contains("--report"));
}

#[test]
fn the_ratchet_passes_on_the_recorded_medians_and_fails_when_one_is_worse() {
    let ok = blis(&[
        "validate",
        "validation/cluster/llmd-benchmark-2025-exp-2.yaml",
        "--ratchet",
        "data/cluster-ratchet.json",
    ]);
    // Medians of stacks not validated here are "missing": only exp-2's run, so use a copy of its keys.
    let tmp = crate::common::temp_dir("blis-cluster-ratchet-");
    let dir = tmp.path();
    let file = dir.join("r.json");
    let f = file.to_str().unwrap();
    let w = blis(&[
        "validate",
        "validation/cluster/llmd-benchmark-2025-exp-2.yaml",
        "--ratchet",
        f,
        "--update-ratchet",
    ]);
    assert!(w.status.success());
    let again = blis(&["validate", "validation/cluster/llmd-benchmark-2025-exp-2.yaml", "--ratchet", f]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let text = std::fs::read_to_string(&file).unwrap();
    let key = "llmd-benchmark-2025-exp-2/vllm-70b-2replicas sharegpt.below.ttft_mean";
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let v = doc["medians"][key].as_f64().unwrap();
    doc["medians"][key] = serde_json::json!(v - 1.0);
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    let worse = blis(&["validate", "validation/cluster/llmd-benchmark-2025-exp-2.yaml", "--ratchet", f]);
    assert_eq!(worse.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&worse.stderr).contains(key));
    assert_eq!(ok.status.code(), Some(1), "the full ratchet names stacks this run does not have");
}

#[test]
fn a_guide_folder_without_a_deployment_names_the_flag() {
    let out = blis(&["validate", guide().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("deployment") && err.contains("--deployment"), "{err}");
    let e = guide_table::convert(&guide(), Some(Path::new("/nonexistent/manifests"))).unwrap_err();
    assert!(e.field.ends_with(": deployment") && e.problem.contains("/nonexistent/manifests"), "{e}");
}

#[test]
fn malformed_tables_and_foreign_columns_name_the_file_and_field() {
    let e = guide_table::parse_table("# no table\n", "R.md").unwrap_err();
    assert_eq!(e.field, "R.md");
    let bad = "| Rate | k8s Output | k8s TTFT mean |\n| --- | --- | --- |\n| 3 | 1,797 | fast |\n";
    let e = guide_table::parse_table(bad, "R.md").unwrap_err();
    assert_eq!(e.field, "R.md: line 3, column \"k8s TTFT mean\"");
    let e =
        guide_table::parse_table("| Rate | k8s Latency |\n| --- | --- |\n| 3 | 1 |\n", "R.md").unwrap_err();
    assert_eq!(e.field, "R.md: table column \"k8s Latency\"");
    let ok = guide_table::parse_table(bad.replace("fast", "0.415").as_str(), "R.md").unwrap();
    assert_eq!(ok.stacks[0].1[0].ttft_mean_ms, Some(415.0));
    assert_eq!(ok.stacks[0].1[0].output_tokens_per_s, Some(1797.0));
    let e = lmbench::read_csv("prompt_tokens,gen,ttft\n", "x.csv").unwrap_err();
    assert_eq!(e.field, "x.csv: column \"gen\"");
}

#[test]
fn a_cluster_experiment_file_is_read_checked_and_scored() {
    let tmp = crate::common::temp_dir("blis-cluster-format-");
    let dir = tmp.path();
    let trace = "arrival_time_s,input_tokens,output_tokens\n0,100,10\n0.5,100,10\n1.0,100,10\n";
    std::fs::write(dir.join("t.csv"), trace).unwrap();
    let deployment = shared("llmd-benchmark-2025-exp-2/yamls/exp-2/baseline-vllm");
    let doc = format!(
        "kind: ClusterExperiment\nname: tiny\nstacks:\n- name: svc\n  deployment: [{}]\n  spec: {{router: {{policy: roundRobin}}}}\n  runs:\n  - workload: {{classes: [{{name: t}}], trace: {{path: t.csv}}}}\n    measured:\n    - {{rate: 2, ttft_mean_ms: 50, output_tokens_per_s: 20}}\n",
        deployment.display()
    );
    let file = dir.join("e.yaml");
    std::fs::write(&file, &doc).unwrap();
    let exps = cluster::load_paths(std::slice::from_ref(&file), None).unwrap();
    assert_eq!((exps.len(), exps[0].stacks.len()), (1, 1));
    assert!(exps[0].stacks[0].runs[0].trace.is_some(), "the trace is read beside the file");
    let r = blis_plan::cluster::validate(&exps, None, 1);
    let s = &r.stacks[0];
    assert!(s.not_scored.is_none(), "{:?}", s.not_scored);
    let p = &s.points[0];
    assert_eq!(p.predicted.unwrap().n, Some(3));
    // A calibration profile for the stack's GPU (exp-2 runs on A100) replaces its coefficients.
    let mut slow = blis_sim::catalog::gpu::builtin("A100-SXM-80GB").unwrap().calibration.unwrap();
    slow.coefficients.before_first_token_us += 100_000.0;
    let with = blis_plan::cluster::validate(&exps, Some(&slow), 1);
    let ttft = |r: &blis_plan::cluster::ClusterReport| {
        r.stacks[0].points[0].predicted.unwrap().ttft_mean_ms.unwrap()
    };
    assert!((ttft(&with) - ttft(&r) - 100.0).abs() < 1.0, "{} vs {}", ttft(&with), ttft(&r));
    assert!(
        p.ape[0].is_some() && p.ape[2].is_some() && p.ape[1].is_none(),
        "only measured figures are scored"
    );
    let bad = doc.replace("ttft_mean_ms: 50", "ttft_mean_ms: -5");
    std::fs::write(&file, bad).unwrap();
    let e = cluster::load_paths(std::slice::from_ref(&file), None).unwrap_err();
    assert!(e.field.ends_with("stacks[0].runs[0].measured[0].ttft_mean_ms"), "{e}");
    let gone = doc.replace("baseline-vllm", "no-such-folder");
    std::fs::write(&file, gone).unwrap();
    let e = cluster::load_paths(std::slice::from_ref(&file), None).unwrap_err();
    assert!(e.field.ends_with("e.yaml: deployment") && e.problem.contains("no-such-folder"), "{e}");
}

/// The project's exp-7 file names the vLLM release the folder does not record: every converted
/// stack simulates it, and the import no longer says a default release applies.
#[test]
fn a_from_spec_patch_reaches_every_converted_stack() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("validation/cluster/llmd-benchmark-2025-exp-7.yaml");
    let exps = cluster::format::load_file(&file, None).unwrap();
    let stacks: Vec<_> = exps.iter().flat_map(|e| &e.stacks).collect();
    assert_eq!(stacks.len(), 8);
    for s in stacks {
        assert_eq!(s.patch["vllm"]["version"], "0.8.5", "{}", s.name);
        let (spec, warnings) = cluster::scenario_for(s, &s.runs[0]).unwrap();
        assert_eq!(spec.vllm.version.as_deref(), Some("0.8.5"), "{}", s.name);
        assert!(!warnings.iter().any(|w| w.contains("names no vLLM release")), "{}: {warnings:?}", s.name);
    }
}

/// `from.stacks` patches and annotates one converted stack (by its name, or every scenario of a stack
/// folder) and leaves the others alone; a key that names no stack is refused with the names to use.
#[test]
fn a_from_stacks_override_reaches_only_the_stacks_it_names() {
    let tmp = crate::common::temp_dir("blis-cluster-override-");
    let dir = tmp.path();
    let file = dir.join("e.yaml");
    let doc = |key: &str| {
        format!(
            "kind: ClusterExperiment\nfrom:\n  folder: {}\n  spec: {{vllm: {{version: '0.8.5'}}}}\n  stacks:\n    {key}: {{spec: {{replicas: 3}}, notes: [told apart]}}\n",
            shared("llmd-benchmark-2025-exp-2").display()
        )
    };
    std::fs::write(&file, doc("llm-d-70b-2replicas")).unwrap();
    let exps = cluster::load_paths(std::slice::from_ref(&file), None).unwrap();
    let stacks: Vec<_> = exps.iter().flat_map(|e| &e.stacks).collect();
    assert_eq!(stacks.len(), 4);
    for s in &stacks {
        let mine = s.name.starts_with("llm-d-70b-2replicas ");
        assert_eq!(s.patch["vllm"]["version"], "0.8.5", "{}: the common patch stays", s.name);
        assert_eq!(s.patch["replicas"], if mine { 3 } else { 2 }, "{}", s.name);
        assert_eq!(s.notes.iter().any(|n| n == "told apart"), mine, "{}", s.name);
    }
    std::fs::write(&file, doc("'llm-d-70b-2replicas sharegpt'")).unwrap();
    let exps = cluster::load_paths(std::slice::from_ref(&file), None).unwrap();
    let patched: Vec<&str> = exps
        .iter()
        .flat_map(|e| &e.stacks)
        .filter(|s| s.patch["replicas"] == 3)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(patched, ["llm-d-70b-2replicas sharegpt"]);
    // A patch that sets the router says so, since the conversion's notes describe the one it replaced.
    std::fs::write(
        &file,
        doc("llm-d-70b-2replicas").replace("replicas: 3", "router: {policy: leastRequests}"),
    )
    .unwrap();
    let exps = cluster::load_paths(std::slice::from_ref(&file), None).unwrap();
    for s in exps.iter().flat_map(|e| &e.stacks) {
        let mine = s.name.starts_with("llm-d-70b-2replicas ");
        assert_eq!(
            s.patch["router"]["policy"],
            if mine { "leastRequests" } else { "roundRobin" },
            "{}",
            s.name
        );
        let said = s.notes.iter().any(|n| n.contains("from.stacks.llm-d-70b-2replicas.spec.router"));
        assert_eq!(said, mine, "{}: {:?}", s.name, s.notes);
    }
    std::fs::write(&file, doc("llm-d")).unwrap();
    let e = cluster::load_paths(std::slice::from_ref(&file), None).unwrap_err();
    assert!(e.field.ends_with("from.stacks.llm-d"), "{e}");
    assert!(e.fix.contains("vllm-70b-2replicas short_input"), "the fix lists the stacks: {e}");
}

/// `blis run --report --measured`: a measurement of the scenario's load ladder is drawn over the
/// per-stage plots (solid where scored, hollow where the file says not to score); a measurement of
/// other rates, or a path that holds none, is refused in one line (exit 2).
#[test]
fn run_report_overlays_a_measured_ladder_and_refuses_another() {
    let tmp = crate::common::temp_dir("blis-run-measured-");
    let dir = tmp.path();
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        crate::common::manifest(
            "  model: {name: llama-3.1-8b-instruct}\n  hardware: {gpu: H100-SXM-80GB}\n  workload: {maxRequests: 1}\n",
        ),
    )
    .unwrap();
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/profiles/inference-perf-ladder.yaml");
    let measurement = |points: &str| {
        let f = dir.join("measured.yaml");
        std::fs::write(&f, format!("kind: ClusterExperiment\nname: mine\nstacks:\n- name: llm-d\n  deployment: [scenario.yaml]\n  runs:\n  - label: ladder\n    workload: {{maxRequests: 1}}\n    measured:\n{points}")).unwrap();
        f
    };
    let page = dir.join("run.html");
    let run = |measured: &std::path::Path| {
        blis(&[
            "run",
            "--no-progress",
            scenario.to_str().unwrap(),
            "--workload-profile",
            profile,
            "--report",
            page.to_str().unwrap(),
            "--measured",
            measured.to_str().unwrap(),
        ])
    };
    let good = measurement(
        "    - {stage: 0, rate: 2, ttft_mean_ms: 41.5, ttft_p90_ms: 55, output_tokens_per_s: 300}\n    - {stage: 1, rate: 4, ttft_mean_ms: 45, ttft_p90_ms: 70.25, output_tokens_per_s: 590}\n    - {stage: 2, rate: 8, ttft_mean_ms: 60, ttft_p90_ms: 110, output_tokens_per_s: 1100, unscored: censored}\n",
    );
    let o = run(&good);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(markers(&html, "meas-tput"), [(2.0, 300.0), (4.0, 590.0)]);
    assert_eq!(markers(&html, "meas-unscored-tput"), [(8.0, 1100.0)]);
    assert_eq!(markers(&html, "meas-ttft-mean"), [(2.0, 41.5), (4.0, 45.0)]);
    assert_eq!(markers(&html, "meas-ttft-p90"), [(2.0, 55.0), (4.0, 70.25)]);
    assert_eq!(markers(&html, "meas-unscored-ttft-p90"), [(8.0, 110.0)]);

    let other_rate = measurement("    - {rate: 3, ttft_mean_ms: 40, output_tokens_per_s: 300}\n");
    let not_a_measurement = dir.join("notes.txt");
    std::fs::write(&not_a_measurement, "just notes\n").unwrap();
    for (bad, words) in [
        (other_rate.as_path(), &["--measured: llm-d", "3 req/s", "its stages: 4, 2, 8"][..]),
        // The guide's published table (another ladder) in the converters' own format.
        (guide().as_path(), &["--measured: k8s", "req/s", "its stages: 4, 2, 8"][..]),
        (not_a_measurement.as_path(), &["--measured", "is not a measurement blis reads"][..]),
    ] {
        let o = run(bad);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", bad.display());
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(words.iter().all(|w| err.contains(w)), "{}: {err}", bad.display());
    }
}
