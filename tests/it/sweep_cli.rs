//! `blis sweep`: ranking table and JSON, exit status 2 naming the bad sweep field, and shards merged
//! into exactly the single run's ranking.

use crate::common;

use common::blis;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp_file(name: &str, text: &str) -> common::TempFile {
    common::TempFile::new("blis-sweep-test-", name, text)
}

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sweeps/sweep-replicas.yaml"))
        .unwrap()
        .replace("durationSeconds: 60", "durationSeconds: 15")
}

#[test]
fn the_example_sweep_prints_a_winner_and_why_others_lost() {
    let o = blis(&["sweep", "--no-progress", "examples/sweeps/sweep-replicas.yaml"]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    for needle in ["Sweep sweep-replicas: 12 candidates", "winner: ", "Pareto set", "fails: ", "seed 42"] {
        assert!(out.contains(needle), "table lacks {needle:?}:\n{out}");
    }
}

#[test]
fn a_bad_parameter_path_exits_2_naming_the_parameter() {
    let bad = example().replace("path: vllm.maxNumSeqs", "path: vllm.maxNumSeq");
    let f = temp_file("bad-path.yaml", &bad);
    let o = blis(&["sweep", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "stdout: {}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("spec.parameters[1]") && err.contains("fix:"), "{err}");
    let o = blis(&["sweep", f.to_str().unwrap(), "--shard", "4/4"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--shard"));
}

#[test]
fn four_shard_processes_merge_into_the_single_run_ranking() {
    let f = temp_file("sweep.yaml", &example());
    let file = f.to_str().unwrap();
    let single = blis(&["sweep", "--no-progress", "--output", "json", file]);
    assert!(single.status.success(), "{}", text(&single.stderr));
    let mut shard_files = Vec::new();
    for i in 0..4 {
        let o = blis(&["sweep", "--no-progress", "--threads", "1", "--shard", &format!("{i}/4"), file]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        shard_files.push(temp_file(&format!("shard-{i}.json"), &text(&o.stdout)));
    }
    let mut args = vec!["sweep", "--output", "json", file, "--merge"];
    args.extend(shard_files.iter().map(|p| p.to_str().unwrap()));
    let merged = blis(&args);
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    let a: serde_json::Value = serde_json::from_slice(&single.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(a, b, "merged shards rank exactly like the single run");
    assert_eq!(a["candidates"], 12);
    assert!(a["best"].is_string());
    let missing = blis(&["sweep", file, "--merge", shard_files[0].to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("shards missing"), "{}", text(&missing.stderr));
}
